"""Robust anomaly scoring: direction, zero spread, missing data, persistence, onset."""

from __future__ import annotations

import numpy as np
import pytest

from rootloop.analysis.anomaly import DEFAULT_THRESHOLD, robust_scale, score_series

RNG = np.random.default_rng(7)
BASE = 100 + RNG.normal(0, 1, 300)


def test_latency_up_is_abnormal_with_onset_at_first_bad_point() -> None:
    inc = np.array([100.0, 100.5, 130.0, 131.0, 129.0])
    s = score_series(BASE, inc, "up")
    assert s.abnormal
    assert s.onset_index == 2
    assert s.score > DEFAULT_THRESHOLD
    assert s.incident_median == pytest.approx(129.0)
    assert s.baseline_median == pytest.approx(float(np.median(BASE)))


def test_direction_decides_what_hurts() -> None:
    drop = np.array([60.0, 60.0, 60.0, 60.0])
    assert not score_series(BASE, drop, "up").abnormal
    assert score_series(BASE, drop, "down").abnormal
    assert score_series(BASE, drop, "both").abnormal
    assert score_series(BASE, drop, "up").score == 0.0


def test_normal_window_is_not_abnormal() -> None:
    s = score_series(BASE, 100 + RNG.normal(0, 1, 20), "both")
    assert not s.abnormal
    assert s.onset_index is None


def test_zero_mad_baseline_still_scores_a_real_drop() -> None:
    flat = np.full(200, 100.0)  # availability always 100: MAD and mean deviation are 0
    assert robust_scale(flat) == pytest.approx(0.1)  # floored at 0.1% of the median
    assert score_series(flat, [100.0, 97.0, 96.0], "down").abnormal
    assert not score_series(flat, [100.0, 99.9, 99.95], "down").abnormal


def test_mostly_flat_baseline_falls_back_to_mean_deviation() -> None:
    b = np.full(100, 100.0)
    b[:10] = 99.0  # MAD is 0 but the series does wobble
    assert robust_scale(b) == pytest.approx(1.2533 * 0.1)


def test_nans_are_ignored_and_no_data_is_not_an_incident() -> None:
    b = BASE.copy()
    b[::3] = np.nan
    s = score_series(b, [np.nan, 140.0, 141.0], "up")
    assert s.abnormal and s.onset_index == 1
    empty = score_series([np.nan, np.nan], [150.0], "up")
    assert not empty.abnormal and empty.insufficient and empty.score == 0.0
    assert score_series(BASE, [], "up").insufficient


def test_min_run_ignores_a_single_spike() -> None:
    spike = np.array([100.0, 150.0, 100.0, 100.0])
    assert score_series(BASE, spike, "up").abnormal
    held = score_series(BASE, spike, "up", min_run=2)
    assert not held.abnormal
    step = np.array([100.0, 150.0, 150.0, 100.0])
    assert score_series(BASE, step, "up", min_run=2).onset_index == 1


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="direction"):
        score_series(BASE, [1.0], "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1-D"):
        score_series(np.ones((3, 3)), [1.0])
    with pytest.raises(ValueError, match="incident"):
        score_series(BASE, ["a", "b"])
