"""Gradient boosting with quantile loss on lag and calendar features (scikit-learn).

What a smoothed last level misses is the shape around it: where in the day we are, what the
same window looked like yesterday and last week, whether the last five minutes run above the
last hour. A ``HistGradientBoostingRegressor`` with quantile loss at 0.5 (the median, which
is what minimises absolute error) learns how to weigh those per series, one model for all
horizon buckets with the horizon as a feature.

Every rate feature and the target are divided by the recent level (the last hour's, at least
half the last day's), so the trees learn shapes rather than levels: a level shift next week
does not fall outside anything they saw, and one model serves a series whatever its units.
Missing points stay NaN in the features, which the trees route on their own. The upper band
is the conformal band of ``direct``.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from functools import cache
from typing import Any

import numpy as np

from forecasting.base import FloatArray
from forecasting.direct import DirectForecaster
from forecasting.naive import PERSISTENCE_WINDOW_S, window_level
from forecasting.windows import DAY_S, WEEK_S, IntArray, Windows

LEVEL_WINDOWS_S = (0.0, 300.0, 900.0, 3600.0, 10800.0)
"""Trailing windows whose mean rates are features (0 stands for one step)."""

SCALE_WINDOW_S = 3600.0
SCALE_FLOOR_SHARE = 0.5
PROFILE_DAYS = 7
TRAIN_STRIDE_S = 600.0
MAX_TRAIN_ORIGINS = 3000
MIN_TRAIN_ROWS = 300
WEEKDAY_MIN_HISTORY_S = 3 * WEEK_S
"""The day of the week is a feature only with three weeks to learn from: with two, the trees
memorise each day's level instead of the weekly shape."""


@cache
def _threadpools() -> Any:
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    return ThreadpoolController()


def single_threaded() -> AbstractContextManager[object]:
    """Limit OpenMP to one thread: a control loop parallelises over series, not inside a fit,
    and OpenMP spin-waiting on a busy machine turns a 0.5 s fit into seconds."""
    limit: AbstractContextManager[object] = _threadpools().limit(limits=1, user_api="openmp")
    return limit


def _profile(win: Windows, a: IntArray, b: IntArray, period: int) -> FloatArray:
    """Median over the last ``PROFILE_DAYS`` periods of the window ``[a, b)`` shifted back."""
    stacked = np.stack(
        [win.mean(a - d * period, b - d * period) for d in range(1, PROFILE_DAYS + 1)]
    )
    return column_nanmedian(stacked)


def column_nanmedian(stacked: FloatArray) -> FloatArray:
    """Median of each column ignoring NaN (NaN for an all-NaN column), without numpy's
    masked-array detour: sort puts NaN last, so the middle of the present values is indexed.

    Purely computational, no side effects.
    """
    ordered = np.sort(stacked, axis=0)
    count = np.sum(~np.isnan(stacked), axis=0)
    lo = np.maximum((count - 1) // 2, 0)
    hi = np.maximum(count // 2, 0)
    cols = np.arange(stacked.shape[1])
    median = 0.5 * (ordered[lo, cols] + ordered[hi, cols])
    return np.where(count > 0, median, np.nan)


def lag_features(
    win: Windows, origins: IntArray, ks: IntArray, scale: FloatArray, *, weekday: bool
) -> FloatArray:
    """Feature rows for every (origin, bucket) pair, origin-major, rates divided by ``scale``.

    Reads only points before each origin. Purely computational, no side effects.
    """
    n_o, n_k = len(origins), len(ks)
    o = np.repeat(origins, n_k)
    k = np.tile(ks, n_o)
    s = np.repeat(scale, n_k)
    day = round(DAY_S / win.step_s)
    week = round(WEEK_S / win.step_s)
    recent = win.steps_for(PERSISTENCE_WINDOW_S)
    cols: list[FloatArray] = []
    for w in sorted({win.steps_for(w_s) for w_s in LEVEL_WINDOWS_S}):
        cols.append(win.mean(o - w, o) / s)
    for lag in (day, 2 * day, week):
        cols.append(win.mean(o - lag, np.minimum(o - lag + k, o)) / s)
        cols.append(win.mean(o - lag - recent, o - lag) / s)
    cols.append(_profile(win, o, o + k, day) / s)
    cols.append(_profile(win, o - recent, o, day) / s)
    t_s = win.start_s + o.astype(np.float64) * win.step_s
    cols.append((t_s % DAY_S) / DAY_S)
    if weekday:
        cols.append(np.floor(t_s / DAY_S) % 7)
    cols.append(np.log(k.astype(np.float64) * win.step_s))
    hour = win.steps_for(3600.0)
    cols.append(win.count(o - hour, o) / hour)
    return np.column_stack(cols)


class GradientBoostingForecaster(DirectForecaster):
    """``HistGradientBoostingRegressor(loss="quantile")`` on lags, calendar and horizon."""

    def __init__(
        self,
        *,
        max_iter: int = 150,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        random_state: int = 0,
        quantile: float = 0.9,
    ) -> None:
        super().__init__(quantile=quantile)
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def _fit_point(self, win: Windows, head_end: int, origins: IntArray) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.level_steps_ = win.steps_for(PERSISTENCE_WINDOW_S)
        self.fallback_ = True
        head = Windows(start_s=win.start_s, step_s=win.step_s, values=win.values[:head_end])
        ks = self.buckets_
        day = win.steps_for(DAY_S)
        stride = max(win.steps_for(TRAIN_STRIDE_S), math.ceil(head_end / MAX_TRAIN_ORIGINS))
        train = np.arange(day, head_end - 1, stride, dtype=np.int64)
        if len(train) * len(ks) < MIN_TRAIN_ROWS:
            return
        scale = self._feature_scale(head, train)
        self.weekday_ = head_end * win.step_s >= WEEKDAY_MIN_HISTORY_S
        features = lag_features(head, train, ks, scale, weekday=self.weekday_)
        target = head.full_mean(train[:, None], train[:, None] + ks[None, :]) / scale[:, None]
        target = target.ravel()
        ok = ~np.isnan(target)
        if ok.sum() < MIN_TRAIN_ROWS:
            return
        model = HistGradientBoostingRegressor(
            loss="quantile",
            quantile=0.5,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=self.random_state,
        )
        # Columns that never vary (a weekly lag with less than a week of history) carry no
        # information, and scikit-learn's binning rejects an all-NaN column.
        rows = features[ok]
        self.feature_mask_ = np.array(
            [len(np.unique(col[~np.isnan(col)])) >= 2 for col in rows.T], dtype=np.bool_
        )
        with single_threaded():
            self.model_ = model.fit(rows[:, self.feature_mask_], target[ok])
        self.n_features_in_ = int(self.feature_mask_.sum())
        self.fallback_ = False

    def _point_at(self, win: Windows, origins: IntArray) -> FloatArray:
        ks = self.buckets_
        if self.fallback_:
            return window_level(win, origins, self.level_steps_, len(ks))
        scale = self._feature_scale(win, origins)
        features = lag_features(win, origins, ks, scale, weekday=self.weekday_)
        with single_threaded():
            pred = np.asarray(self.model_.predict(features[:, self.feature_mask_]), np.float64)
        return pred.reshape(len(origins), len(ks)) * scale[:, None]

    def _feature_scale(self, win: Windows, origins: IntArray) -> FloatArray:
        """What rates are divided by: the last hour's level, at least half the last day's.

        The hour follows level shifts (a new tenant tomorrow is the same shape, higher); the
        floor keeps a quiet hour in a sparse series from blowing every ratio up.
        """
        day = self._scale_level(win, origins)
        hour = win.mean(origins - win.steps_for(SCALE_WINDOW_S), origins)
        return np.maximum(np.where(np.isnan(hour), day, hour), SCALE_FLOOR_SHARE * day)

    def _lookback_steps(self) -> int:
        return (
            round(max(WEEK_S, PROFILE_DAYS * DAY_S) / self.step_s_)
            + round(3600.0 / self.step_s_)
            + 1
        )
