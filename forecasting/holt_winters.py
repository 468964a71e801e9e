"""Holt-Winters (additive season, damped additive trend) on a downsampled series.

statsmodels' ``ExponentialSmoothing`` estimates the smoothing parameters and initial states;
after that the recursion is ours, so that ``update`` can feed new points into the fitted
state in O(new points) without re-estimating anything, and so that missing points can be
skipped (the state coasts on its forecast) instead of being interpolated.

Per-minute data is averaged into 15-minute buckets (one hour for a weekly season), which keeps
a daily season at 96 states: estimating 1,440 seasonal states is slow and no more accurate.
The recursion, for bucket mean ``y`` and season ``s`` of that bucket (one period ago)::

    level'  = a (y - s) + (1 - a) (level + phi trend)
    trend'  = b (level' - level) + (1 - b) phi trend
    season' = g (y - level - phi trend) + (1 - g) s        # for the same bucket next period

and the forecast ``h`` buckets ahead is ``level + (phi + ... + phi^h) trend + season``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from forecasting.base import FloatArray
from forecasting.direct import DirectForecaster
from forecasting.naive import PERSISTENCE_WINDOW_S, window_level
from forecasting.seasonality import detect_season_s
from forecasting.windows import WEEK_S, IntArray, Windows

DAILY_AGG_S = 900.0
WEEKLY_AGG_S = 3600.0
OUTLIER_QUANTILE = 0.995
"""Bucket means beyond this quantile (or below its mirror) are clipped before estimation."""


def damped_sum(phi: float, h: IntArray) -> FloatArray:
    """``phi + phi^2 + ... + phi^h`` for each ``h``. Purely computational."""
    steps = h.astype(np.float64)
    if phi >= 1.0:
        return steps
    return np.asarray(phi * (1.0 - phi**steps) / (1.0 - phi), dtype=np.float64)


class HoltWintersForecaster(DirectForecaster):
    """Holt-Winters via statsmodels; season found in the data unless ``season_s`` is given."""

    def __init__(
        self,
        *,
        season_s: float | None = None,
        agg_s: float | None = None,
        quantile: float = 0.9,
    ) -> None:
        super().__init__(quantile=quantile)
        self.season_s = season_s
        self.agg_s = agg_s

    # -- estimation -----------------------------------------------------------------------
    def _fit_point(self, win: Windows, head_end: int, origins: IntArray) -> None:
        head = Windows(start_s=win.start_s, step_s=win.step_s, values=win.values[:head_end])
        season = self.season_s if self.season_s is not None else detect_season_s(head)
        agg_s = self.agg_s or (WEEKLY_AGG_S if season == WEEK_S else DAILY_AGG_S)
        self.agg_steps_ = max(1, math.floor(agg_s / win.step_s + 1e-9))
        bucket_s = self.agg_steps_ * win.step_s
        m = 0 if season is None else round(season / bucket_s)
        self.season_s_ = season if m >= 2 else None
        self.season_buckets_ = m if m >= 2 else 0
        self.level_steps_ = win.steps_for(PERSISTENCE_WINDOW_S)
        self.fallback_ = True
        first_id, y = self._bucket_means(head, None)
        need = max(2 * self.season_buckets_ + 2, 16)
        if np.sum(~np.isnan(y)) < need:
            return
        params = self._estimate(y)
        if params is None:
            return
        alpha, beta, gamma, phi, level0, trend0, seasons0 = params
        self.smoothing_ = (alpha, beta, gamma, phi)
        self.path_first_id_ = first_id
        self.levels_ = np.empty(0)
        self.trends_ = np.empty(0)
        self.seasons_ = seasons0
        self.state_ = (level0, trend0)
        self.fallback_ = False
        self._consume(self._bucket_means(win, None)[1])

    def _estimate(
        self, y: FloatArray
    ) -> tuple[float, float, float, float, float, float, FloatArray] | None:
        """statsmodels' estimate on gap-filled, outlier-clipped bucket means (None on failure)."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        idx = np.arange(len(y))
        ok = ~np.isnan(y)
        filled = np.interp(idx, idx[ok], y[ok])
        lo, hi = np.quantile(filled, [1.0 - OUTLIER_QUANTILE, OUTLIER_QUANTILE])
        filled = np.clip(filled, lo, hi)
        m = self.season_buckets_
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = ExponentialSmoothing(
                    filled,
                    trend="add",
                    damped_trend=True,
                    seasonal="add" if m else None,
                    seasonal_periods=m if m else None,
                    initialization_method="heuristic" if m else "estimated",
                )
                fitted = model.fit()
        except (ValueError, np.linalg.LinAlgError):
            return None
        p = fitted.params
        seasons0 = np.asarray(p["initial_seasons"], dtype=np.float64) if m else np.empty(0)
        values = (
            float(p["smoothing_level"]),
            float(p["smoothing_trend"]),
            float(p["smoothing_seasonal"]) if m else 0.0,
            float(p["damping_trend"]),
            float(p["initial_level"]),
            float(p["initial_trend"]),
        )
        if not all(math.isfinite(v) for v in values) or not np.all(np.isfinite(seasons0)):
            return None
        return (*values, seasons0)

    # -- the recursion ----------------------------------------------------------------------
    def _bucket_means(self, win: Windows, from_id: int | None) -> tuple[int, FloatArray]:
        """Means of the complete buckets in ``win`` from ``from_id`` (absolute bucket ids)."""
        r = self.agg_steps_
        g0 = win.first_step
        first = -(-g0 // r) if from_id is None else from_id
        last = (g0 + len(win)) // r - 1
        ids = np.arange(first, last + 1, dtype=np.int64)
        a = ids * r - g0
        means = win.mean(a, a + r)
        enough = win.count(a, a + r) >= 0.5 * r
        return first, np.where(enough, means, np.nan)

    def _consume(self, y: FloatArray) -> None:
        """Run the recursion over bucket means ``y`` (NaN: coast), appending to the path."""
        alpha, beta, gamma, phi = self.smoothing_
        m = self.season_buckets_
        level, trend = self.state_
        n0 = len(self.levels_)
        levels = np.empty(len(y))
        trends = np.empty(len(y))
        seasons = list(self.seasons_[n0:]) if m else []
        new_seasons = np.empty(len(y) if m else 0)
        for i, value in enumerate(y.tolist()):
            s = seasons[i] if m else 0.0
            forecast = level + phi * trend
            if math.isnan(value):
                new_level, new_trend, new_season = forecast, phi * trend, s
            else:
                new_level = alpha * (value - s) + (1.0 - alpha) * forecast
                new_trend = beta * (new_level - level) + (1.0 - beta) * phi * trend
                new_season = gamma * (value - forecast) + (1.0 - gamma) * s
            if m:
                seasons.append(new_season)
                new_seasons[i] = new_season
            level, trend = new_level, new_trend
            levels[i], trends[i] = level, trend
        self.state_ = (level, trend)
        self.levels_ = np.concatenate((self.levels_, levels))
        self.trends_ = np.concatenate((self.trends_, trends))
        if m:
            self.seasons_ = np.concatenate((self.seasons_, new_seasons))

    def _advance(self, win: Windows, to_id: int) -> None:
        """Feed the buckets after the path's end up to ``to_id`` (missing ones coast)."""
        next_id = self.path_first_id_ + len(self.levels_)
        if to_id < next_id:
            return
        _, y = self._bucket_means(win, next_id)
        y = y[: to_id - next_id + 1]
        if len(y) < to_id - next_id + 1:
            y = np.concatenate((np.full(to_id - next_id + 1 - len(y), np.nan), y))
        self._consume(y)

    def _after_update(self) -> None:
        """Keep only the states the next forecast can need."""
        if self.fallback_:
            return
        keep = 2
        drop = len(self.levels_) - keep
        if drop > 0:
            self.levels_ = self.levels_[drop:]
            self.trends_ = self.trends_[drop:]
            if self.season_buckets_:
                self.seasons_ = self.seasons_[drop:]
            self.path_first_id_ += drop

    # -- forecasting ------------------------------------------------------------------------
    def _point_at(self, win: Windows, origins: IntArray) -> FloatArray:
        ks = self.buckets_
        if self.fallback_:
            return window_level(win, origins, self.level_steps_, len(ks))
        r = self.agg_steps_
        g = win.first_step + origins
        last_complete = g // r - 1
        self._advance(win, int(last_complete.max()))
        row = last_complete - self.path_first_id_
        known = row >= 0
        row = np.where(known, row, 0)
        steps = np.arange(int(ks[-1]), dtype=np.int64)
        h = (g[:, None] + steps[None, :]) // r - last_complete[:, None]
        _, _, _, phi = self.smoothing_
        path: FloatArray = (
            self.levels_[row][:, None] + damped_sum(phi, h) * self.trends_[row][:, None]
        )
        m = self.season_buckets_
        if m:
            season_row = row[:, None] + 1 + (h - 1) % m
            path = path + self.seasons_[season_row]
        cum = np.cumsum(path, axis=1)
        out = cum[:, ks - 1] / ks[None, :]
        return np.where(known[:, None], out, np.nan)

    def _lookback_steps(self) -> int:
        return max(self.level_steps_, 2 * self.agg_steps_)
