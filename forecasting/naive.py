"""The two naive forecasters every other model must beat: persistence and seasonal naive.

``persistence`` carries the smoothed last level forward (the mean of the last 15 minutes by
default): hard to beat at short horizons, blind to the daily ramp. ``seasonal-naive`` copies
the same window one season ago, with the season (day, week or none) found in the data; where
that window is missing it looks one or two seasons further back.
"""

from __future__ import annotations

import numpy as np

from forecasting.base import FloatArray
from forecasting.direct import DirectForecaster
from forecasting.seasonality import detect_season_s
from forecasting.windows import IntArray, Windows

PERSISTENCE_WINDOW_S = 900.0


def window_level(win: Windows, origins: IntArray, window_steps: int, n_buckets: int) -> FloatArray:
    """The mean of the ``window_steps`` points before each origin, repeated for every bucket.

    Purely computational, no side effects.
    """
    level = win.mean(origins - window_steps, origins)
    return np.repeat(level[:, None], n_buckets, axis=1)


class PersistenceForecaster(DirectForecaster):
    """Tomorrow looks like the last ``window_s``: the mean over it, for every horizon."""

    def __init__(self, *, window_s: float = PERSISTENCE_WINDOW_S, quantile: float = 0.9) -> None:
        super().__init__(quantile=quantile)
        self.window_s = window_s

    def _fit_point(self, win: Windows, head_end: int, origins: IntArray) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        self.window_steps_ = win.steps_for(self.window_s)

    def _point_at(self, win: Windows, origins: IntArray) -> FloatArray:
        return window_level(win, origins, self.window_steps_, len(self.buckets_))

    def _lookback_steps(self) -> int:
        return self.window_steps_


class SeasonalNaiveForecaster(DirectForecaster):
    """The same window one season ago; the season is ``season_s`` or found in the data.

    With no season found it is persistence over ``PERSISTENCE_WINDOW_S``.
    """

    def __init__(self, *, season_s: float | None = None, quantile: float = 0.9) -> None:
        super().__init__(quantile=quantile)
        self.season_s = season_s

    def _fit_point(self, win: Windows, head_end: int, origins: IntArray) -> None:
        if self.season_s is not None and not self.season_s > 0:
            raise ValueError(f"season_s must be positive, got {self.season_s}")
        head = Windows(start_s=win.start_s, step_s=win.step_s, values=win.values[:head_end])
        season = self.season_s if self.season_s is not None else detect_season_s(head)
        self.season_s_ = season
        self.season_steps_ = 0 if season is None else max(1, round(season / win.step_s))
        self.level_steps_ = win.steps_for(PERSISTENCE_WINDOW_S)

    def _point_at(self, win: Windows, origins: IntArray) -> FloatArray:
        ks = self.buckets_
        if self.season_steps_ == 0:
            return window_level(win, origins, self.level_steps_, len(ks))
        o = origins[:, None]
        out = np.full((len(origins), len(ks)), np.nan)
        for cycles in (1, 2, 3):
            lag = cycles * self.season_steps_
            seen = win.mean(o - lag, np.minimum(o - lag + ks[None, :], o))
            out = np.where(np.isnan(out), seen, out)
        return out

    def _lookback_steps(self) -> int:
        return max(3 * self.season_steps_, self.level_steps_)
