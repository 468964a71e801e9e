"""Per-workload rate history and the forecast the planner sizes for.

Purely computational, no side effects. The loop appends each tick's observed request rate;
``predict_upper`` returns the upper band of the rate over the lead time. Missing samples are
NaN and never read as zero. The forecaster itself is pluggable (``forecasting``); until it has
enough history, a short-term model (level + non-negative trend + noise band) is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecasting.base import FloatArray


@dataclass(frozen=True, slots=True)
class RateForecast:
    """What the planner needs: the expected and the upper rate over the lead time."""

    mean_rps: float
    upper_rps: float
    model: str


class RateHistory:
    """A fixed-size ring of per-tick rates (NaN = missing), oldest first when read."""

    def __init__(self, capacity: int):
        self._values: FloatArray = np.full(capacity, np.nan)
        self._times: FloatArray = np.full(capacity, np.nan)
        self._next = 0
        self._count = 0

    def append(self, time_s: float, rate_rps: float | None) -> None:
        value = rate_rps if rate_rps is not None and math.isfinite(rate_rps) else np.nan
        self._values[self._next] = value
        self._times[self._next] = time_s
        self._next = (self._next + 1) % len(self._values)
        self._count = min(self._count + 1, len(self._values))

    def __len__(self) -> int:
        return self._count

    def last(self, n: int) -> tuple[FloatArray, FloatArray]:
        """The last ``n`` (times, values), oldest first."""
        n = min(n, self._count)
        idx = (self._next - n + np.arange(n)) % len(self._values)
        return self._times[idx], self._values[idx]


def short_term_forecast(
    times_s: FloatArray, rates_rps: FloatArray, lead_s: float, *, z: float = 1.64
) -> RateForecast | None:
    """Level + upward trend over the recent past, with a band from the residual noise.

    Only upward trends are extrapolated: a falling trend is left to the scale-down delay, so
    a dip does not make the planner under-provision ahead of a recovery.
    """
    ok = np.isfinite(rates_rps)
    if ok.sum() < 2:
        if ok.sum() == 1:
            v = float(rates_rps[ok][0])
            return RateForecast(v, v * 1.2, "last")
        return None
    t, r = times_s[ok], rates_rps[ok]
    recent = max(2, len(r) // 2)
    slope, intercept = np.polyfit(t[-recent:] - t[-1], r[-recent:], 1)
    # noise from the median absolute first difference: robust to a level shift in the window
    diffs = np.abs(np.diff(r))
    resid = float(1.4826 * np.median(diffs) / np.sqrt(2.0)) if len(diffs) else 0.0
    level = float(max(intercept, np.mean(r[-3:])))
    mean = max(0.0, level + max(0.0, float(slope)) * lead_s)
    upper = mean + z * resid
    return RateForecast(mean, max(upper, float(r[-1])), "short-term")


def rate_profile(step_rates_rps: FloatArray, points: int, min_steps: int) -> tuple[float, ...]:
    """``points`` equally likely quantiles of the measured step rates (the midpoints of
    ``points`` equal shares), smallest first; ``()`` with fewer than ``min_steps`` measured.
    Missing steps are left out, never read as zero. Purely computational."""
    x = np.asarray(step_rates_rps, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < max(1, min_steps) or points < 1:
        return ()
    q = (np.arange(points) + 0.5) / points
    return tuple(float(v) for v in np.quantile(x, q))
