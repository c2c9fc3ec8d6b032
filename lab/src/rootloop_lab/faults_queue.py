"""Queue faults the consumer survives: messages that fail one by one into the DLQ.

``queue-dlq-redrive``: a configuration deploy narrows the worker's ``CURRENCIES`` to
``usd``; then a merchant's customers pay in ``eur``. Those payments succeed at the API,
and their queue messages fail in the worker — alone, thanks to partial-batch
responses, while every usd message flows — until ``maxReceiveCount`` sends them to
the DLQ. The fix is two steps: restore the consumer's configuration, then redrive the
DLQ (an SQS message move task). Fixed means the DLQ drained and each of those
payments has its receipt: the probe asks the worker's own table, with its own client.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import psycopg

from rootloop.errors import PlatformError
from rootloop.reasoning import categories as cat
from rootloop_lab.cloud import client
from rootloop_lab.layout import FUNCTION
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import DEPLOY_TIMEOUT, Scenario, with_payments

NAME = "queue-dlq-redrive"
EUR_PAYMENTS = 4


def _set_worker_env(state: Any, **changes: str) -> None:
    lam = client("lambda", state.endpoint_url)
    env = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=FUNCTION, Environment={"Variables": {**env, **changes}}
    )


def _pay(state: Any, currency: str, amount: int) -> int:
    body = json.dumps({"amount_cents": amount, "merchant_id": 2, "currency": currency}).encode()
    req = urllib.request.Request(
        f"{state.url('api-gateway')}/api/payments",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(json.loads(resp.read())["id"])


def _dlq_depth(state: Any) -> int:
    sqs = client("sqs", state.endpoint_url)
    attrs = sqs.get_queue_attributes(
        QueueUrl=state.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def _narrow_currencies(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    _set_worker_env(state, CURRENCIES="usd")
    time.sleep(3)  # the worker re-reads its function configuration every 2 s
    ids = [_pay(state, "eur", 1000 + i) for i in range(EUR_PAYMENTS)]
    if wait:  # in place once every eur message has exhausted its receives
        deadline = time.monotonic() + DEPLOY_TIMEOUT
        while _dlq_depth(state) < EUR_PAYMENTS:
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"the eur messages did not reach the DLQ within {DEPLOY_TIMEOUT:g}s",
                    f"see {lab.layout.logs / 'lambda-worker.log'}",
                )
            time.sleep(1.0)
    return {"function_name": FUNCTION, "env": {"CURRENCIES": "usd"}, "payment_ids": ids}


def _injected_ids(lab: Any) -> list[int]:
    faults = json.loads((lab.root / "faults.json").read_text())
    mine = [f for f in faults if f.get("scenario") == NAME]
    return [int(i) for i in mine[-1].get("payment_ids", [])] if mine else []


def _redriven_and_processed(lab: Any, state: Any) -> tuple[bool, str]:
    """The DLQ is empty and every eur payment of the fault has its receipt."""
    ids = _injected_ids(lab)
    left = _dlq_depth(state)
    with psycopg.connect(state.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM receipts WHERE payment_id = ANY(%s)", (ids,)
        ).fetchone()
    done = int(row[0]) if row else 0
    return bool(ids) and left == 0 and done == len(ids), (
        f"{left} message(s) in the DLQ; {done}/{len(ids)} eur payments have their receipt"
    )


SCENARIOS = [
    PackScenario(
        Scenario(
            name=NAME,
            root_cause="lambda-worker",
            category=cat.MESSAGES_FAILING,
            description="a config deploy narrows lambda-worker's CURRENCIES to usd; eur "
            "payments' messages fail one by one (partial-batch responses: usd ones flow) "
            "and land in the DLQ",
            fix="set CURRENCIES=usd,eur on the function, then redrive the DLQ (SQS message "
            "move task): the DLQ drains and every eur payment gets its receipt",
            fix_kinds=["set-function-env", "redrive-dlq"],
            iterations=2,
        ),
        _narrow_currencies,
        with_payments(_redriven_and_processed),
    ),
]
