"""aws-lambda's verdict table gives the statuses its hand-written verdict gave: the
old formulas are written out here and compared over a grid of measurements."""

from __future__ import annotations

import itertools

import pytest

from rootloop.models import Status, worst
from rootloop.models.nodes import Node
from rootloop.skills.aws_lambda import LambdaSkill, LambdaState
from rootloop.skills.cloudwatch_metrics import MetricAssessment, MetricSpec

NAMES = ("invocations", "errors", "throttles", "duration_max", "concurrent_executions")


def state(inv: float, errs: float, thr: float, fn_state: str) -> LambdaState:
    series = {"invocations": inv, "errors": errs, "throttles": thr}
    metrics = {
        n: MetricAssessment(
            spec=MetricSpec(namespace="AWS/Lambda", name=n, label=n),
            incident=[series[n]] if n in series else [],
        )
        for n in NAMES
    }
    return LambdaState(
        config={"State": fn_state, "Timeout": 3},
        reserved=None,
        account_limit=1000,
        account_limit_known=True,
        metrics=metrics,
    )


def old_statuses(inv: float, errs: float, thr: float, fn_state: str, s) -> dict[str, Status]:
    attempts = inv + thr
    err_rate = errs / inv if inv else (1.0 if errs else 0.0)
    thr_rate = thr / attempts if attempts else 0.0
    err = (
        Status.CRITICAL
        if err_rate >= s.error_rate_crit
        else Status.DEGRADED
        if errs and err_rate >= s.error_rate_warn
        else Status.OK
    )
    throttled = (
        Status.CRITICAL
        if thr and thr_rate >= s.throttle_rate_crit
        else Status.DEGRADED
        if thr
        else Status.OK
    )
    st = Status.CRITICAL if fn_state in ("Failed", "Inactive") else Status.OK
    return {
        "errors": err,
        "error_rate": err,
        "throttles": throttled,
        "throttle_rate": throttled,
        "state": st,
        "finding": worst([err, throttled, st]),
    }


@pytest.mark.parametrize(
    ("inv", "errs", "thr", "fn_state"),
    list(
        itertools.product(
            [0, 1, 20, 100],
            [0, 1, 5, 30, 100],
            [0, 1, 10],
            ["Active", "Failed", "Pending", "Inactive"],
        )
    ),
)
def test_the_table_judges_as_the_old_verdict_did(inv, errs, thr, fn_state):
    skill = LambdaSkill()
    s = skill.Settings.model_validate({"function_name": "worker"})
    node = Node(
        name="worker",
        type="lambda",
        skill="aws-lambda",
        role="downstream",
        component="worker",
        service="svc",
        timeout=5,
        settings=s,
    )
    f = skill.judge(node, s, state(inv, errs, thr, fn_state))
    want = old_statuses(inv, errs, thr, fn_state, s)
    for name in ("errors", "error_rate", "throttles", "throttle_rate", "state"):
        assert f.signal(name).status is want[name], name
    assert f.status is want["finding"]


MAPPING_STATES = ("Enabled", "Disabled", "Disabling", "Creating", None)
RESULTS = ("OK", "PROBLEM: Function call failed", "", "No records processed", None)


def old_mapping_status(mappings: list[dict]) -> Status:
    """The hand-written verdict on the event-source mappings, as it was."""
    status = Status.OK
    for mp in mappings:
        if mp.get("State") in ("Disabled", "Disabling"):
            status = Status.CRITICAL
        elif str(mp.get("LastProcessingResult", "")).startswith("PROBLEM"):
            status = worst([status, Status.DEGRADED])
    return status


def mapping(state_: str | None, result: str | None) -> dict:
    mp: dict = {"EventSourceArn": "arn:aws:sqs:us-east-1:1:orders"}
    if state_ is not None:
        mp["State"] = state_
    if result is not None:
        mp["LastProcessingResult"] = result
    return mp


PAIRS = list(itertools.product(MAPPING_STATES, RESULTS))


@pytest.mark.parametrize(
    "mappings",
    [[]]
    + [[mapping(*p)] for p in PAIRS]
    + [[mapping(*a), mapping(*b)] for a, b in itertools.product(PAIRS[::3], PAIRS[1::4])],
)
def test_the_event_source_row_judges_as_the_old_verdict_did(mappings):
    skill = LambdaSkill()
    s = skill.Settings.model_validate({"function_name": "worker"})
    node = Node(
        name="worker",
        type="lambda",
        skill="aws-lambda",
        role="downstream",
        component="worker",
        service="svc",
        timeout=5,
        settings=s,
    )
    st = state(10, 0, 0, "Active")
    st.mappings = mappings
    f = skill.judge(node, s, st)
    assert f.signal("event_source_problems").status is old_mapping_status(mappings)
    assert f.status is old_mapping_status(mappings)
