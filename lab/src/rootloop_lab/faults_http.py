"""HTTP faults between services: a dependency's rate limit, and callers that storm it.

``notification-rate-limit``: a configuration deploy of notification-svc lowers its rate
limit (``RATE_LIMIT_PER_S`` 50 -> 1, a value meant for a sandbox). Every request over
it — health checks included — is answered ``429 Too Many Requests`` with
``Retry-After``; payments-api retries a 429 at once, three times, ignoring
``Retry-After``, so each payment spends up to four requests of a one-a-second budget:
the storm keeps the limit exhausted and most payments fail at the notify step. The
probe reads the limit in the service's running task definition with its own ECS client,
asks /health itself, and sends payments.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

from rootloop.errors import PlatformError
from rootloop.reasoning import categories as cat
from rootloop_lab.cloud import client
from rootloop_lab.deployer import _KEEP  # the fields a new revision copies
from rootloop_lab.layout import CLUSTER
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import Scenario, with_payments

SERVICE = "notification-svc"
LIMIT = "RATE_LIMIT_PER_S"
NORMAL, LOWERED = "50", "1"
WAIT_S = 90.0


def deploy_env(state: Any, name: str, value: str, service: str = SERVICE) -> str:
    """A config-only revision of ``service`` with ``name=value``, deployed; its ARN."""
    ecs = client("ecs", state.endpoint_url)
    svc = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    spec = {k: td[k] for k in _KEEP if td.get(k) not in (None, [], "")}
    for c in spec["containerDefinitions"]:
        env = [e for e in c.get("environment", []) if e["name"] != name]
        c["environment"] = [*env, {"name": name, "value": value}]
    new = ecs.register_task_definition(**spec)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=CLUSTER, service=service, taskDefinition=new)
    return str(new)


def _health(state: Any) -> tuple[int, str | None]:
    try:
        with urllib.request.urlopen(f"{state.url(SERVICE)}/health", timeout=5) as r:
            return r.status, r.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")
    except OSError:
        return 0, None


def _lower_the_limit(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    revision = deploy_env(state, LIMIT, LOWERED)
    if wait:  # in place once the new tasks serve and turn requests away
        deadline = time.monotonic() + WAIT_S
        while _health(state)[0] != 429:
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"{SERVICE} did not answer 429 within {WAIT_S:g}s of the deploy",
                    f"see {lab.layout.logs / 'supervisor.log'}",
                )
            time.sleep(1.0)
    return {"service": SERVICE, "revision": revision.rsplit("/", 1)[-1], LIMIT: LOWERED}


def _limit_in_force(state: Any) -> str | None:
    ecs = client("ecs", state.endpoint_url)
    svc = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    for c in td["containerDefinitions"]:
        for e in c.get("environment", []):
            if e["name"] == LIMIT:
                return str(e["value"])
    return None


def _limit_restored(lab: Any, state: Any) -> tuple[bool, str]:
    """The running revision's limit is back at the normal one and /health answers 200
    three times in a row, a second apart (under a one-a-second limit with the storm,
    it would not)."""
    limit = _limit_in_force(state)
    answers = []
    for _ in range(3):
        answers.append(_health(state)[0])
        time.sleep(1.0)
    try:
        restored = limit is not None and float(limit) >= float(NORMAL)
    except ValueError:
        restored = False
    return restored and answers == [200, 200, 200], (
        f"{SERVICE} {LIMIT}={limit or 'unset'} in its running revision; /health {answers}"
    )


SCENARIOS = [
    PackScenario(
        Scenario(
            name="notification-rate-limit",
            root_cause=SERVICE,
            category=cat.RATE_LIMITED,
            description="a config deploy lowers notification-svc's rate limit to 1/s; it "
            "answers 429 with Retry-After, and payments-api's immediate retries (3, "
            "Retry-After ignored) keep the limit exhausted: most payments fail",
            fix=f"set {LIMIT}={NORMAL} on notification-svc (a new revision, deployed)",
            fix_kinds=["set-env"],
        ),
        _lower_the_limit,
        with_payments(_limit_restored),
    ),
]
