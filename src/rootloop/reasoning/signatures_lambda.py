"""Lambda faults named by their mechanism: timeouts, throttling at a reservation, and
errors that began with a configuration change.

Each reads the ``aws-lambda`` check's finding alone: its metrics (Errors, Throttles,
Duration, ConcurrentExecutions), its configuration (timeout, reserved concurrency) and
its configuration history (``rootloop.skills.lambda_history``: the published version
before the configuration in force, when that configuration went out, when the errors
began). A missing signal counts as a precondition that does not hold.

Specificity, from the mechanism each names: a duration at the configured timeout
(0.93) and throttling at the function's own reservation (0.92) name how invocations
fail; a configuration change the errors began with (0.9) names when and what, not how.
All three say more than a queue whose consumer stopped (consumer-down, 0.85), which is
how the same faults look from the queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rootloop.models import Finding
from rootloop.reasoning import categories as cat
from rootloop.reasoning.signatures import (
    Hit,
    _when,
    bad,
    bad_signal,
    component_of,
    consumer_down_across,
    num,
)
from rootloop.topology import Topology

#: Lambda ends a timed-out invocation at its timeout and reports that as its Duration;
#: the runtime's own overhead and the metric's millisecond rounding sit within 5 %, and
#: an invocation merely slow (not ended) does not report a duration at its timeout
AT_TIMEOUT = 0.95
#: the longest timeout Lambda allows (seconds)
MAX_TIMEOUT_S = 900
#: the metrics' resolution: an error period that starts up to one period before a change
#: may still hold only errors after it
METRIC_PERIOD = timedelta(seconds=60)


def _errors_bad(f: Finding) -> bool:
    return bad_signal(f, "errors") or bad_signal(f, "error_rate")


def function_timeout(f: Finding, topo: Topology) -> list[Hit]:
    """Invocations ended at the function's configured timeout.

    Preconditions, all of them:
    - the Lambda check is unhealthy and judged its errors bad (a timed-out invocation is
      an error);
    - the configured timeout is known (``timeout`` > 0) and the longest invocation of the
      window (``duration_max``, ms) reached at least ``AT_TIMEOUT`` of it.
    Facts: the timeout, twice it (at most Lambda's 900 s), and the previous published
    version when its timeout was longer (going back to it restores that timeout).
    """
    if f.skill != "aws-lambda" or not bad(f) or not _errors_bad(f):
        return []
    timeout_s, longest_ms = num(f, "timeout"), num(f, "duration_max")
    if not timeout_s or timeout_s <= 0 or longest_ms is None:
        return []
    if longest_ms < AT_TIMEOUT * timeout_s * 1000:
        return []
    facts: dict[str, Any] = {
        "timeout": int(timeout_s),
        "timeout_x2": min(MAX_TIMEOUT_S, int(timeout_s) * 2),
    }
    held = [
        "the function's errors are judged bad",
        f"the longest invocation took {longest_ms:g} ms of a {timeout_s:g} s timeout "
        f"(>= {AT_TIMEOUT:.0%})",
    ]
    previous, previous_timeout = f.value("previous_version"), num(f, "previous_timeout")
    if previous and previous_timeout is not None and previous_timeout > timeout_s:
        facts["previous_version"] = str(previous)
        held.append(f"version {previous} had a longer timeout ({previous_timeout:g} s)")
    return [
        Hit(
            component_of(f, topo),
            cat.FUNCTION_TIMEOUT,
            0.93,
            f"invocations end at the {timeout_s:g} s timeout (longest {longest_ms:g} ms)",
            facts,
            [f.summary],
            f.anomaly_started_at,
            f.node,
            held,
        )
    ]


def reserved_concurrency_throttling(f: Finding, topo: Topology) -> list[Hit]:
    """Invocations throttled at the function's own reserved concurrency.

    Preconditions, all of them:
    - the Lambda check is unhealthy and judged its throttles bad (``throttles`` or
      ``throttle_rate``);
    - the function has a reservation (``reserved_concurrency`` is a number): that, not
      the account's pool, is its ceiling;
    - concurrency in use reached it: ``concurrent_executions`` at or over the reservation
      (a reservation of 0 admits nothing, so it is reached by definition); below it, the
      throttles came from elsewhere (the account's pool, a burst limit).
    Facts: the reservation now, and the one to restore: -1 (remove the reservation) for
    0, which is a stop (the console's "Throttle"), not a size; otherwise twice it, one
    step that the next iteration verifies.
    """
    if f.skill != "aws-lambda" or not bad(f):
        return []
    if not (bad_signal(f, "throttles") or bad_signal(f, "throttle_rate")):
        return []
    reserved = num(f, "reserved_concurrency")
    if reserved is None or reserved < 0:
        return []
    in_use = num(f, "concurrent_executions")
    if reserved > 0 and (in_use is None or in_use < reserved):
        return []
    return [
        _at_reservation(
            f,
            component_of(f, topo),
            int(reserved),
            [
                f"{num(f, 'throttles') or 0:g} throttled invocations, judged bad",
                f"reserved concurrency {int(reserved)} is the function's ceiling",
                "nothing can run under a reservation of 0"
                if reserved == 0
                else f"concurrency in use reached it ({in_use:g})",
            ],
        )
    ]


def _at_reservation(
    f: Finding, component: str, reserved: int, why: list[str], also: list[str] | None = None
) -> Hit:
    """The throttling hit: restore -1 (no reservation) for 0, which is a stop (the
    console's "Throttle"), not a size; otherwise twice the reservation."""
    restore = -1 if reserved == 0 else reserved * 2
    return Hit(
        component,
        cat.THROTTLING,
        0.92,
        f"throttled at its reserved concurrency of {reserved}",
        {"reserved_now": reserved, "reserved_restore": restore},
        [f.summary, *(also or [])],
        f.anomaly_started_at,
        f.node,
        why,
    )


def stopped_consumer(findings: list[Finding], topo: Topology) -> list[Hit]:
    """A queue's consumer that is not consuming because its reservation is 0.

    Why a cross signature: a reservation of 0 admits no invocation at all, and until
    something tries one the function's own metrics show nothing (no invocations, no
    throttles yet: the metrics lag the stop). The queue shows it first. Preconditions,
    all of them:
    - ``consumer_down`` holds for a queue (stalled, the consumer named, and the queue
      backing up or the consumer's check failing: see its preconditions);
    - that consumer has an ``aws-lambda`` check whose ``reserved_concurrency`` is 0.
    A reservation above 0 is a size, not a stop: without throttles judged bad it says
    nothing about why the queue backs up, and ``reserved_concurrency_throttling`` needs
    them.
    """
    stalled = {h.component: h for h in consumer_down_across(findings, topo)}
    hits = []
    for f in findings:
        if f.skill != "aws-lambda" or num(f, "reserved_concurrency") != 0:
            continue
        component = component_of(f, topo)
        queue_hit = stalled.get(component)
        if queue_hit is None:
            continue
        hits.append(
            _at_reservation(
                f,
                component,
                0,
                [
                    *queue_hit.preconditions,
                    f"{component}'s reserved concurrency is 0: no invocation can run",
                ],
                also=queue_hit.evidence,
            )
        )
    return hits


def config_change_errors(f: Finding, topo: Topology) -> list[Hit]:
    """Errors that began with a change of the function's configuration.

    Preconditions, all of them:
    - the Lambda check is unhealthy and judged its errors bad;
    - a published version before the configuration in force differs from it
      (``previous_version``, ``config_changes``): what changed is known, and what to
      go back to;
    - when the configuration in force went out is known (``config_released_at``) and the
      window read starts before it (``window_start``): the metrics saw before and after;
    - the errors began with it: their first period (``errors_began_at``) starts no
      earlier than one metric period before the release.
    """
    if f.skill != "aws-lambda" or not bad(f) or not _errors_bad(f):
        return []
    previous, changes = f.value("previous_version"), f.value("config_changes")
    released = _when(f.value("config_released_at"))
    began, window = _when(f.value("errors_began_at")), _when(f.value("window_start"))
    if not previous or not changes or released is None or began is None or window is None:
        return []
    if window > released or began < released - METRIC_PERIOD:
        return []
    return [
        Hit(
            component_of(f, topo),
            cat.CONFIG_CHANGE,
            0.9,
            f"errors began with the configuration released at {released:%H:%M:%S}: {changes}",
            {"previous_version": str(previous)},
            [f"{changes} (against version {previous})", f.summary],
            began,
            f.node,
            [
                f"the configuration in force differs from version {previous}: {changes}",
                f"it went out at {released:%H:%M:%S}, inside the window read",
                f"errors began at {began:%H:%M:%S}, with it",
            ],
        )
    ]


SIGNATURES = [function_timeout, reserved_concurrency_throttling, config_change_errors]
CROSS_SIGNATURES = [stopped_consumer]
