"""Lambda faults, played on lambda-worker's real configuration in the emulator.

The lab's worker is the function's execution environment and enforces what the Lambda
service enforces (``rootloop_lab.apps.lambda_runtime``): its timeout, its reserved
concurrency, its handler. Each fault is a change an operator or a release pipeline
makes through the Lambda API; the symptoms are what the worker then does (timed-out,
throttled or failing invocations, a queue that backs up, payments refused under
backpressure).

Releases publish a version, as a pipeline with ``AutoPublishAlias`` does: the version
before a release is the configuration to go back to.

- ``lambda-timeout``: a release lowers the timeout from 10 s to 1 s; every invocation
  (about 1.2 s: the receipt renderer's start) is ended at 1 s.
- ``lambda-throttled``: someone pressed "Throttle" during an incident (reserved
  concurrency 0) and never undid it: every invocation is throttled.
- ``lambda-config-change``: a release renames the handler to ``receipts.handler``; the
  code package still ships ``worker.py``: every invocation fails on import.

The probes read the function's configuration and the queue with their own boto3
clients, and send payments through the gateway.
"""

from __future__ import annotations

from typing import Any

from rootloop.reasoning import categories as cat
from rootloop_lab.apps.lambda_runtime import PACKAGE, RENDER_SECONDS
from rootloop_lab.cloud import client
from rootloop_lab.layout import FUNCTION
from rootloop_lab.packs import PackScenario
from rootloop_lab.scenarios import Scenario, queue_keeps_up, with_payments

LOWERED_TIMEOUT = 1
BAD_HANDLER = "receipts.handler"


def _release(state: Any, note: str, **config: Any) -> dict[str, str]:
    """Publish the configuration in force (the release before), change it, publish the
    change: (previous version, new version)."""
    lam = client("lambda", state.endpoint_url)
    before = lam.publish_version(FunctionName=FUNCTION, Description="the release before")
    lam.update_function_configuration(FunctionName=FUNCTION, **config)
    after = lam.publish_version(FunctionName=FUNCTION, Description=note)
    return {"previous_version": before["Version"], "version": after["Version"]}


def _lower_timeout(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    versions = _release(state, "timeout 1 s: fail fast", Timeout=LOWERED_TIMEOUT)
    return {"function_name": FUNCTION, "timeout": LOWERED_TIMEOUT, **versions}


def _throttle(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    lam = client("lambda", state.endpoint_url)
    lam.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=0)
    return {"function_name": FUNCTION, "reserved_concurrency": 0}


def _rename_handler(lab: Any, state: Any, wait: bool) -> dict[str, Any]:
    versions = _release(state, "handler in receipts.py", Handler=BAD_HANDLER)
    return {"function_name": FUNCTION, "handler": BAD_HANDLER, **versions}


def _config(state: Any) -> dict[str, Any]:
    lam = client("lambda", state.endpoint_url)
    return dict(lam.get_function_configuration(FunctionName=FUNCTION))


def _timeout_fits(lab: Any, state: Any) -> tuple[bool, str]:
    """The timeout leaves room for an invocation (the renderer alone takes ~1.2 s)."""
    timeout = int(_config(state).get("Timeout", 0))
    consumed, why = queue_keeps_up(state)
    fits = timeout > RENDER_SECONDS * 2
    return fits and consumed, f"{FUNCTION} timeout {timeout} s; {why}"


def _not_throttled(lab: Any, state: Any) -> tuple[bool, str]:
    lam = client("lambda", state.endpoint_url)
    reserved = lam.get_function_concurrency(FunctionName=FUNCTION).get(
        "ReservedConcurrentExecutions"
    )
    consumed, why = queue_keeps_up(state)
    admits = reserved is None or int(reserved) >= 1
    return admits and consumed, f"{FUNCTION} reserved concurrency {reserved}; {why}"


def _handler_loads(lab: Any, state: Any) -> tuple[bool, str]:
    handler = str(_config(state).get("Handler", ""))
    module, _, func = handler.rpartition(".")
    loads = func in PACKAGE.get(module, set())
    consumed, why = queue_keeps_up(state)
    return loads and consumed, (
        f"{FUNCTION} handler {handler} ({'in' if loads else 'not in'} the code package); {why}"
    )


SCENARIOS = [
    PackScenario(
        Scenario(
            name="lambda-timeout",
            root_cause="lambda-worker",
            category=cat.FUNCTION_TIMEOUT,
            description="a release lowers lambda-worker's timeout from 10 s to 1 s: every "
            "invocation (~1.2 s) is ended at its timeout, its batch returns to the queue, "
            "the queue backs up",
            fix="restore the configuration of the version before the release (timeout 10 s)",
            fix_kinds=["revert-function-config"],
        ),
        _lower_timeout,
        with_payments(_timeout_fits),
    ),
    PackScenario(
        Scenario(
            name="lambda-throttled",
            root_cause="lambda-worker",
            category=cat.THROTTLING,
            description="lambda-worker's reserved concurrency set to 0 (the console's "
            "Throttle) and never undone: every invocation is throttled, nothing is consumed",
            fix="remove the reservation of 0 in the lower environment",
            fix_kinds=["set-function-concurrency"],
        ),
        _throttle,
        with_payments(_not_throttled),
    ),
    PackScenario(
        Scenario(
            name="lambda-config-change",
            root_cause="lambda-worker",
            category=cat.CONFIG_CHANGE,
            description="a release renames lambda-worker's handler to receipts.handler; the "
            "package ships worker.py: every invocation fails (Runtime.ImportModuleError) "
            "from the release on",
            fix="restore the configuration of the version before the release",
            fix_kinds=["revert-function-config"],
        ),
        _rename_handler,
        with_payments(_handler_loads),
    ),
]
