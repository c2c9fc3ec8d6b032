"""http-health's verdict table against its hand-written verdict (written out here) over
status codes, expected statuses, latencies at and around the thresholds and bodies.

Deliberate differences, asserted as such — the finding is as bad as its worst signal:
- ``http_status`` was critical for any unexpected status while the finding was degraded
  for a 4xx; now the signal says what the finding says (critical for a 5xx);
- an unexpected status or a body without the expected text returned early, ignoring a
  critical latency; now a critical latency keeps the finding critical;
- a body without the expected text is a signal of its own (``expected_body``)."""

from __future__ import annotations

import itertools

import pytest

from rootloop.models import Status, worst
from rootloop.skills.http_health import HttpHealthSettings, judge_response

OK, DEG, CRIT = Status.OK, Status.DEGRADED, Status.CRITICAL


def old_verdict(s: HttpHealthSettings, code: int, latency: float, text: str):
    unexpected = code not in s.expect_status
    lat = CRIT if latency >= s.latency_crit_ms else DEG if latency >= s.latency_warn_ms else OK
    signals = {"http_status": CRIT if unexpected else OK, "latency_ms": lat}
    if unexpected:
        return (CRIT if code >= 500 else DEG), signals
    if s.expect_body and s.expect_body not in text:
        return DEG, signals
    return lat, signals


GRID = list(
    itertools.product(
        [200, 204, 301, 404, 429, 500, 503],
        [[200], [200, 204], [404]],
        [0.0, 499.9, 500.0, 1999.9, 2000.0, 5000.0],
        [None, "ok"],
        ["status: ok", "status: down"],
    )
)


@pytest.mark.parametrize("expect_status", [[200], [200, 204], [404]])
def test_the_table_judges_as_the_old_verdict_did_but_for_the_listed_changes(expect_status):
    wrong = []
    for code, want_codes, latency, body, text in GRID:
        if want_codes != expect_status:
            continue
        s = HttpHealthSettings(url="http://127.0.0.1:9", expect_status=want_codes,
                               expect_body=body)  # fmt: skip
        old_status, old_signals = old_verdict(s, code, latency, text)
        unexpected = code not in want_codes
        want = dict(old_signals)
        if unexpected:
            want["http_status"] = CRIT if code >= 500 else DEG
        elif body:
            want["expected_body"] = OK if body in text else DEG
        v = judge_response(s, code, latency, text)
        got = {x.name: x.status for x in v.signals}
        case = (code, want_codes, latency, body, text)
        if got != want:
            wrong.append(f"{case}: {got} != {want}")
        # the old finding, unless a worse latency now keeps it worse
        if v.status is not worst([old_status, want["latency_ms"]]):
            wrong.append(f"{case}: finding {v.status} (old {old_status})")
        if v.status is not worst(list(got.values())):
            wrong.append(f"{case}: finding is not its worst signal")
    assert not wrong, "\n".join(wrong[:20])
