"""The one judge of skill signals: thresholds, directions, and missing values."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from rootloop.models import Status
from rootloop.skills.verdicts import Rule, assess, judge_value

OK, DEG, CRIT, UNKNOWN = Status.OK, Status.DEGRADED, Status.CRITICAL, Status.UNKNOWN


class Settings(BaseModel):
    warn_ms: float = 100.0
    crit_ms: float = 500.0
    opt_in: int | None = None


S = Settings()
LATENCY = Rule("latency_ms", "above", warn="warn_ms", crit="crit_ms", unit="ms")
FREE = Rule("free_ratio", "below", warn=0.2, crit=0.05)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, OK), (99.9, OK), (100, DEG), (499, DEG), (500, CRIT), (10_000, CRIT)],
)
def test_above_reaches_warn_then_crit_from_the_settings(value, expected):
    assert judge_value(LATENCY, value, S, {}) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [(1.0, OK), (0.21, OK), (0.2, DEG), (0.06, DEG), (0.05, CRIT), (0, CRIT)]
)
def test_below_falls_to_warn_then_crit(value, expected):
    assert judge_value(FREE, value, None, {}) is expected


def test_thresholds_come_from_the_settings_each_time():
    strict = Settings(warn_ms=10, crit_ms=20)
    assert judge_value(LATENCY, 15, strict, {}) is DEG
    assert judge_value(LATENCY, 15, S, {}) is OK


@pytest.mark.parametrize("value", [None, "fast", True])
def test_a_missing_or_non_numeric_value_is_unknown_never_ok(value):
    assert judge_value(LATENCY, value, S, {}) is UNKNOWN
    assert judge_value(FREE, value, None, {}) is UNKNOWN


def test_a_flag_is_bad_when_set_and_unknown_when_missing():
    rule = Rule("oom", "flag", severity=CRIT)
    assert [judge_value(rule, v, None, {}) for v in (True, 3, False, 0, None)] == [
        CRIT,
        CRIT,
        OK,
        OK,
        UNKNOWN,
    ]
    by_fact = Rule("oom_errors", "flag", on="new_oom")
    assert judge_value(by_fact, 12, None, {"new_oom": True}) is DEG
    assert judge_value(by_fact, 12, None, {"new_oom": False}) is OK
    assert judge_value(by_fact, 12, None, {}) is UNKNOWN  # the fact was not measured


def test_a_switched_off_threshold_reports_without_judging():
    rule = Rule("blocked", "above", warn="opt_in")
    assert judge_value(rule, 10_000, S, {}) is OK
    assert judge_value(rule, 10_000, Settings(opt_in=5), {}) is DEG


def test_when_a_precondition_does_not_hold_the_signal_is_ok():
    rule = Rule("mem_ratio", "above", warn=0.9, crit=0.98, when="noeviction")
    assert judge_value(rule, 0.99, None, {"noeviction": False}) is OK
    assert judge_value(rule, 0.99, None, {"noeviction": True}) is CRIT


def test_info_is_never_judged():
    assert judge_value(Rule("policy"), None, None, {}) is OK


def test_assess_reports_measured_signals_in_order_with_notes_of_the_bad_ones():
    rules = (
        Rule("policy"),
        Rule(
            "latency_ms", "above", warn="warn_ms", crit="crit_ms", show="crit", note="slow {value}"
        ),
        Rule("not_measured", "above", warn=1),
        Rule("lag", "above", warn=1, note="lag {value}", crit=5, crit_note="lag {value} of {max}"),
    )
    v = assess(rules, {"lag": 7, "latency_ms": 150, "policy": "lru"}, S, {"max": 9})
    assert [s.name for s in v.signals] == ["policy", "latency_ms", "lag"]
    assert [s.status for s in v.signals] == [OK, DEG, CRIT]
    assert v.signals[1].threshold == 500.0  # the threshold it shows is the critical one
    assert v.notes == ["slow 150", "lag 7 of 9"]
    assert v.status is CRIT


def test_a_missing_measurement_makes_the_verdict_unknown_not_ok():
    v = assess((LATENCY,), {"latency_ms": None}, S)
    assert v.status is UNKNOWN and v.signals[0].status is UNKNOWN


def test_a_threshold_that_is_not_a_number_is_an_error_not_a_pass():
    class Bad(BaseModel):
        warn_ms: str = "fast"

    with pytest.raises(TypeError):
        judge_value(Rule("latency_ms", "above", warn="warn_ms"), 1, Bad(), {})


def test_a_flag_is_critical_whenever_its_crit_fact_holds():
    rule = Rule("cluster_status", "flag", on="unavailable", crit_on="failed")
    assert judge_value(rule, "available", None, {"unavailable": False, "failed": False}) is OK
    assert judge_value(rule, "modifying", None, {"unavailable": True, "failed": False}) is DEG
    assert judge_value(rule, "deleted", None, {"unavailable": True, "failed": True}) is CRIT


ROLLOUT = Rule("rollout_state", "among", bad=("FAILED",), severity=CRIT)
CONCLUSION = Rule("ci_conclusion", "among", good=("success",))
PASSED = Rule("deployed_passed", "among", good=(True,))


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        (ROLLOUT, "FAILED", CRIT),
        (ROLLOUT, "COMPLETED", OK),
        (ROLLOUT, "IN_PROGRESS", OK),
        (ROLLOUT, "failed", OK),  # states are exact, as the platform spells them
        (ROLLOUT, None, UNKNOWN),
        (ROLLOUT, 3, UNKNOWN),  # a number is no state
        (CONCLUSION, "success", OK),
        (CONCLUSION, "failure", DEG),
        (CONCLUSION, "", DEG),  # not one of the good ones
        (CONCLUSION, None, UNKNOWN),
        (PASSED, True, OK),
        (PASSED, False, DEG),
        (PASSED, None, UNKNOWN),
    ],
)
def test_a_state_is_judged_by_the_set_it_is_in_and_unknown_when_missing(rule, value, expected):
    assert judge_value(rule, value, None, {}) is expected


def test_a_state_is_critical_whenever_its_crit_fact_holds():
    rule = Rule("ci_conclusion", "among", bad=("failure",), crit_on="breaks_deployed")
    assert judge_value(rule, "failure", None, {"breaks_deployed": False}) is DEG
    assert judge_value(rule, "failure", None, {"breaks_deployed": True}) is CRIT
    assert judge_value(rule, "success", None, {}) is OK
