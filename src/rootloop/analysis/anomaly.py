"""Robust anomaly score of an incident window against a baseline window, for one series.

Why robust: baselines of real services hold spikes (cold starts, deploys, retries); a mean
and a standard deviation would let one spike hide the next. The score is a robust z-score
(distance from the baseline median in units of the baseline's scaled median absolute
deviation), counted only in the direction that hurts (latency up, availability down), and
it must hold for ``min_run`` consecutive points so a single noisy sample is not an incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Direction = Literal["up", "down", "both"]

DEFAULT_THRESHOLD = 5.0
"""Robust z above which a series is abnormal (the PetShop authors' MAD threshold)."""

_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its sigma
_MEANAD_TO_SIGMA = 1.2533  # mean absolute deviation of a normal distribution, idem


@dataclass(frozen=True)
class AnomalyScore:
    """How abnormal the incident window is, in the direction that hurts.

    ``score`` is the largest robust z held for ``min_run`` consecutive incident points (0 when
    the series never moves the bad way); ``onset_index`` is the first incident point of the
    first such run above the threshold, ``None`` when the window is normal.
    """

    score: float
    abnormal: bool
    direction: Direction
    onset_index: int | None
    baseline_median: float
    incident_median: float
    scale: float = 0.0
    threshold: float = DEFAULT_THRESHOLD
    peak_index: int | None = None
    n_baseline: int = 0
    n_incident: int = 0
    zscores: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)

    @property
    def insufficient(self) -> bool:
        """True when there was too little data to judge (the score is then 0)."""
        return self.n_baseline == 0 or self.n_incident == 0


def _as_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a sequence of numbers ({exc})") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D series, got shape {arr.shape}")
    return arr


def robust_scale(
    baseline: np.ndarray, *, rel_floor: float = 1e-3, abs_floor: float = 1e-9
) -> float:
    """Spread of a NaN-free baseline: scaled MAD, else scaled mean absolute deviation, floored.

    The floors keep a perfectly flat baseline (availability always 100) from turning the
    smallest wobble into an infinite score: a change must exceed ``rel_floor`` of the median.
    """
    med = float(np.median(baseline))
    dev = np.abs(baseline - med)
    scale = _MAD_TO_SIGMA * float(np.median(dev))
    if scale == 0.0:
        scale = _MEANAD_TO_SIGMA * float(np.mean(dev))
    return max(scale, rel_floor * abs(med), abs_floor)


def zscores(
    baseline: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    direction: Direction = "both",
    **floors: float,
) -> np.ndarray:
    """Robust z of each value in the harmful direction (NaN stays NaN; negative = benign)."""
    b = _as_array(baseline, "baseline")
    b = b[np.isfinite(b)]
    v = _as_array(values, "incident")
    if b.size == 0:
        return np.full(v.shape, np.nan)
    med = float(np.median(b))
    z = (v - med) / robust_scale(b, **floors)
    if direction == "down":
        return -z
    if direction == "both":
        return np.abs(z)
    return z


def _sustained(z: np.ndarray, run: int) -> np.ndarray:
    """For each start t, the smallest z over ``z[t:t+run]`` (NaN counts as normal)."""
    zz = np.where(np.isfinite(z), z, -np.inf)
    if run <= 1 or zz.size == 0:
        return zz
    run = min(run, zz.size)
    windows = np.lib.stride_tricks.sliding_window_view(zz, run)
    return windows.min(axis=1)


def score_series(
    baseline: Sequence[float] | np.ndarray,
    incident: Sequence[float] | np.ndarray,
    direction: Direction = "both",
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_run: int = 1,
    rel_floor: float = 1e-3,
    abs_floor: float = 1e-9,
) -> AnomalyScore:
    """Score ``incident`` against ``baseline``; NaNs (missing samples) are ignored.

    Empty or all-NaN input gives a normal score with ``insufficient`` set, never an error:
    a series with no data is not evidence of a fault.
    """
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be 'up', 'down' or 'both', got {direction!r}")
    if min_run < 1:
        raise ValueError(f"min_run must be at least 1, got {min_run}")
    b_all = _as_array(baseline, "baseline")
    v = _as_array(incident, "incident")
    b = b_all[np.isfinite(b_all)]
    v_ok = v[np.isfinite(v)]
    b_med = float(np.median(b)) if b.size else float("nan")
    v_med = float(np.median(v_ok)) if v_ok.size else float("nan")
    if b.size == 0 or v_ok.size == 0:
        return AnomalyScore(
            score=0.0,
            abnormal=False,
            direction=direction,
            onset_index=None,
            baseline_median=b_med,
            incident_median=v_med,
            threshold=threshold,
            n_baseline=int(b.size),
            n_incident=int(v_ok.size),
            zscores=np.full(v.shape, np.nan),
        )
    scale = robust_scale(b, rel_floor=rel_floor, abs_floor=abs_floor)
    z = zscores(b, v, direction, rel_floor=rel_floor, abs_floor=abs_floor)
    held = _sustained(z, min_run)
    peak = int(np.argmax(held))
    score = max(float(held[peak]), 0.0)
    above = np.flatnonzero(held >= threshold)
    return AnomalyScore(
        score=score,
        abnormal=bool(above.size),
        direction=direction,
        onset_index=int(above[0]) if above.size else None,
        baseline_median=b_med,
        incident_median=v_med,
        scale=scale,
        threshold=threshold,
        peak_index=peak if score > 0 else None,
        n_baseline=int(b.size),
        n_incident=int(v_ok.size),
        zscores=z,
    )
