"""Finding a series' season from its data: daily, weekly or none.

Inference traffic is usually diurnal, sometimes weekly (weekday/weekend), and sometimes not
periodic at all (a batch client, a new launch). Assuming a season where there is none makes
seasonal models copy noise from yesterday; so the season is a finding, not a setting.

Method: aggregate to about one point per hour, remove a centred moving average one candidate
period long (so trends and level shifts do not pass for seasonality), and take the
autocorrelation at the candidate lag over pairs where both points are present. A candidate
needs two full periods of history. Purely computational, no side effects.
"""

from __future__ import annotations

import numpy as np

from forecasting.base import FloatArray
from forecasting.windows import DAY_S, WEEK_S, Windows

MIN_AUTOCORRELATION = 0.3
"""Below this autocorrelation at the candidate lag there is no usable season."""

WEEKLY_MARGIN = 0.1
"""Weekly wins over daily only when it explains clearly more (its lag is 7x costlier)."""


def _hourly(win: Windows) -> tuple[FloatArray, float]:
    """Means over about an hour each (NaN where less than half of the points are present)."""
    per = max(1, round(3600.0 / win.step_s))
    n = len(win) // per
    a = np.arange(n) * per
    means = win.mean(a, a + per)
    enough = win.count(a, a + per) >= 0.5 * per
    return np.where(enough, means, np.nan), per * win.step_s


def _detrended(y: FloatArray, period: int) -> FloatArray:
    """``y`` minus its centred moving average over ``period`` points (NaN-aware)."""
    w = Windows(start_s=0.0, step_s=1.0, values=y)
    i = np.arange(len(y))
    half = period // 2
    ma = w.mean(i - half, i - half + period)
    return y - ma


def autocorrelation_at(y: FloatArray, lag: int) -> float:
    """Pearson correlation of ``y[t]`` and ``y[t-lag]`` over pairs where both are present.

    NaN when fewer than ``lag`` pairs exist or either side is constant. Purely computational.
    """
    if lag <= 0 or lag >= len(y):
        return float("nan")
    a, b = y[lag:], y[:-lag]
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < max(lag, 8):
        return float("nan")
    a, b = a[ok], b[ok]
    sa, sb = float(np.std(a)), float(np.std(b))
    if sa <= 0.0 or sb <= 0.0:
        return float("nan")
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def season_scores(win: Windows) -> dict[float, float]:
    """Autocorrelation at each candidate period (seconds) the history is long enough to test.

    Purely computational, no side effects.
    """
    hourly, agg_s = _hourly(win)
    scores: dict[float, float] = {}
    for period_s in (DAY_S, WEEK_S):
        lag = round(period_s / agg_s)
        if lag < 2 or len(hourly) < 2 * lag:
            continue
        r = autocorrelation_at(_detrended(hourly, lag), lag)
        if np.isfinite(r):
            scores[period_s] = r
    return scores


def detect_season_s(win: Windows) -> float | None:
    """The series' season in seconds (one day or one week), or None when it has none.

    Purely computational, no side effects.
    """
    scores = season_scores(win)
    daily = scores.get(DAY_S, float("-inf"))
    weekly = scores.get(WEEK_S, float("-inf"))
    if weekly >= MIN_AUTOCORRELATION and weekly > daily + WEEKLY_MARGIN:
        return WEEK_S
    if daily >= MIN_AUTOCORRELATION:
        return DAY_S
    if weekly >= MIN_AUTOCORRELATION:
        return WEEK_S
    return None
