"""Direct multi-horizon forecasting: a point forecast per horizon bucket and a calibrated band.

Why this shape: the controller asks for the mean rate over the next lead time, not for the
rate at minute 7, and errors of per-step forecasts do not add up to errors of their mean.
So every model here predicts, at an origin, the mean rate over the next ``k`` steps for a
fixed ladder of buckets (one step, 5 min, 15 min, 30 min, 1 h, 2 h, 6 h), and a per-step
path is assembled from those so that ``Forecast.mean_over(k * step_s)`` is exactly the
bucket's forecast.

The upper band is split-conformal, so its coverage is measured rather than assumed: ``fit``
estimates the model on the older part of the history (the head), forecasts out of sample at
origins in the newer part (the holdout: the last quarter, at least a day), and keeps, per
bucket, the recency-weighted empirical ``quantile`` of the errors divided by a scale. Per
bucket, the scale (the last day's level, its step-to-step roughness, or the forecast itself)
and whether widths differ by minute of the hour (hourly batch clients) are chosen by which
scores best out of sample, within the holdout, on the quantile (pinball) loss. Histories too
short to hold out a day are calibrated in sample.

The life cycle the control loop uses: ``fit`` on a schedule (it estimates parameters and the
band), ``update`` every tick (it re-anchors on the newest points, estimating nothing) and
``predict``. ``fit`` calls ``update`` at its end, so a freshly fitted model is anchored.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal, Self

import numpy as np

from forecasting.base import FloatArray, Forecast, History
from forecasting.windows import DAY_S, BoolArray, IntArray, Windows

BUCKET_DURATIONS_S = (0.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0)
"""Horizons (seconds) with a direct forecast; 0 stands for one step."""

MIN_RESIDUALS = 20
"""Fewest out-of-sample errors from which a bucket's band quantile is taken."""

MAX_CALIBRATION_ORIGINS = 720
"""Calibration origins are thinned to about this many (enough for a 0.9 quantile)."""

BAND_HALF_LIFE_S = DAY_S
"""Calibration errors a day older count half: bands follow a series whose noise drifts."""

HOUR_S = 3600.0
PHASE_GROUPS = 6

ScaleKind = Literal["level", "forecast", "roughness"]
SCALE_KINDS: tuple[ScaleKind, ...] = ("level", "forecast", "roughness")


class NotFittedError(RuntimeError):
    """``update`` or ``predict`` called before ``fit``."""


def horizon_steps(horizon_s: float, step_s: float) -> int:
    """Steps a horizon covers, at least one: the same rule as ``Forecast.mean_over``.

    Purely computational, no side effects.
    """
    return max(1, int(np.ceil(horizon_s / step_s)))


def bucket_steps(step_s: float) -> IntArray:
    """The bucket ladder in steps for a series with this step (deduplicated, ascending).

    Purely computational, no side effects.
    """
    ks = {horizon_steps(d, step_s) for d in BUCKET_DURATIONS_S}
    return np.array(sorted(ks), dtype=np.int64)


def assemble_path(ks: IntArray, bucket_means: FloatArray, n_steps: int) -> FloatArray:
    """A per-step path whose mean over the first ``k`` steps is ``bucket_means`` at each ``k``.

    Each segment between two buckets gets the rate that makes the cumulative sums match;
    a negative segment is clipped to zero; beyond the last bucket the path stays at the last
    bucket's mean. Purely computational, no side effects.
    """
    path = np.empty(n_steps)
    prev_k, prev_sum = 0, 0.0
    for k, m in zip(ks.tolist(), bucket_means.tolist(), strict=True):
        if prev_k >= n_steps:
            break
        seg = (k * m - prev_sum) / (k - prev_k)
        path[prev_k : min(k, n_steps)] = max(seg, 0.0)
        prev_k, prev_sum = k, k * m
    if prev_k < n_steps:
        path[prev_k:] = max(float(bucket_means[-1]), 0.0)
    return path


@dataclass(frozen=True)
class ScaleInputs:
    """What band widths depend on at each origin (one value per origin in each array).

    ``level``: the mean over the last day; ``roughness``: the mean absolute step-to-step
    change over the last day (both floored so no width collapses to zero); ``phase``: which
    sixth of the hour the origin falls in, since batch clients make some minutes of every
    hour burstier than others.
    """

    level: FloatArray
    roughness: FloatArray
    phase: IntArray

    @classmethod
    def at(cls, win: Windows, origins: IntArray, global_level: float) -> ScaleInputs:
        """Scale inputs at ``origins``, read only from points before each."""
        level = win.recent_level(origins)
        level = np.where(np.isnan(level), global_level, level)
        level = np.maximum(level, max(0.1 * global_level, 1e-9))
        day = win.steps_for(DAY_S)
        rough = win.roughness(origins - day, origins)
        rough = np.where(np.isnan(rough), 0.0, rough) + 0.05 * level
        t_s = win.start_s + origins * win.step_s
        phase = (np.floor((t_s % HOUR_S) / (HOUR_S / PHASE_GROUPS))).astype(np.int64)
        return cls(level=level, roughness=rough, phase=np.clip(phase, 0, PHASE_GROUPS - 1))


def band_scale(kind: ScaleKind, pred: FloatArray, inputs: ScaleInputs) -> FloatArray:
    """The unit of band widths per (origin, bucket): level, forecast (+ a floor) or roughness.

    Purely computational, no side effects.
    """
    if kind == "level":
        column = inputs.level
    elif kind == "roughness":
        column = inputs.roughness
    else:
        return np.maximum(pred, 0.0) + 0.25 * inputs.level[:, None]
    return np.broadcast_to(column[:, None], pred.shape).copy()


@dataclass(frozen=True)
class Band:
    """Upper-band widths per (phase group, bucket), each bucket in units of its scale kind.

    ``scale_kinds`` has one kind per bucket. ``widths`` has one row (the same band at every
    minute of the hour) or ``PHASE_GROUPS``; a bucket whose band does not depend on the minute
    repeats its width in every row.
    """

    quantile: float
    scale_kinds: tuple[ScaleKind, ...]
    widths: FloatArray

    def upper(self, pred: FloatArray, inputs: ScaleInputs) -> FloatArray:
        """Upper quantile per (origin, bucket)."""
        rows = inputs.phase if len(self.widths) > 1 else np.zeros(len(pred), dtype=np.int64)
        scale = np.empty_like(pred)
        for kind in set(self.scale_kinds):
            cols = [j for j, k in enumerate(self.scale_kinds) if k == kind]
            scale[:, cols] = band_scale(kind, pred, inputs)[:, cols]
        return pred + self.widths[rows] * scale


def weighted_conformal_quantile(errors: FloatArray, weights: FloatArray, quantile: float) -> float:
    """The smallest error whose weight share reaches ``quantile`` when the new point (weight 1)
    is counted above every error: split conformal, weighted for drift (Barber et al., 2023).

    With equal weights this is the ``ceil((n+1) q)``-th smallest error. Purely computational.
    """
    order = np.argsort(errors)
    cum = np.cumsum(weights[order])
    reach = quantile * (cum[-1] + 1.0)
    i = int(np.searchsorted(cum, reach - 1e-12))
    return float(errors[order][min(i, len(errors) - 1)])


def recency_weights(times_s: FloatArray, half_life_s: float) -> FloatArray:
    """Weights halving every ``half_life_s`` back from the newest time. Purely computational."""
    if len(times_s) == 0 or not math.isfinite(half_life_s):
        return np.ones(len(times_s))
    return np.asarray(0.5 ** ((times_s[-1] - times_s) / half_life_s), dtype=np.float64)


def band_widths(
    errors: FloatArray,
    valid: BoolArray,
    weights: FloatArray,
    quantile: float,
    phase: IntArray | None,
) -> FloatArray:
    """Conformal widths per (phase group, bucket) from normalised errors (origins x buckets).

    A bucket with too few errors borrows the shorter bucket's width, a phase group with too few
    the pooled width; all NaN when even the shortest pooled bucket has too few. Purely
    computational, no side effects.
    """
    n_k = errors.shape[1]
    pooled = np.full(n_k, np.nan)
    for j in range(n_k):
        ok = valid[:, j]
        if ok.sum() >= MIN_RESIDUALS:
            pooled[j] = weighted_conformal_quantile(errors[ok, j], weights[ok], quantile)
    for j in range(1, n_k):
        if np.isnan(pooled[j]):
            pooled[j] = pooled[j - 1]
    if phase is None:
        return pooled[None, :]
    grouped = np.tile(pooled, (PHASE_GROUPS, 1))
    for g in range(PHASE_GROUPS):
        for j in range(n_k):
            ok = valid[:, j] & (phase == g)
            if ok.sum() >= MIN_RESIDUALS:
                grouped[g, j] = weighted_conformal_quantile(errors[ok, j], weights[ok], quantile)
    return grouped


def quantile_score(target: FloatArray, upper: FloatArray, quantile: float) -> FloatArray:
    """The pinball loss of ``upper`` as a ``quantile`` forecast of ``target``, elementwise.

    ``q (y - u)`` when the target is above, ``(1 - q) (u - y)`` when below: its expectation is
    least at the true quantile, so a lower mean score is a band that is calibrated *and* sharp
    (Gneiting & Raftery, 2007). Purely computational, no side effects.
    """
    gap = target - upper
    return np.where(gap >= 0.0, quantile * gap, (quantile - 1.0) * gap)


def _holdout_score(
    errors: FloatArray,
    scale: FloatArray,
    valid: BoolArray,
    times_s: FloatArray,
    half_life_s: float,
    quantile: float,
    phase: IntArray | None,
) -> FloatArray:
    """Per bucket, the mean quantile score on the newer half of the origins of the widths
    taken from the older half (zero where either half has too few errors).

    The score is in the target's units (``errors * scale`` is the error itself), so forms with
    different scales compare fairly within a bucket.
    """
    half = len(errors) // 2
    n_k = errors.shape[1]
    older_phase = None if phase is None else phase[:half]
    older_weights = recency_weights(times_s[:half], half_life_s)
    older = band_widths(errors[:half], valid[:half], older_weights, quantile, older_phase)
    newer = valid[half:]
    if np.isnan(older[0, 0]) or not newer.any():
        return np.zeros(n_k)
    rows = phase[half:] if phase is not None else np.zeros(len(errors) - half, dtype=np.int64)
    gap = (errors[half:] - older[rows]) * scale[half:]  # target - upper
    score = quantile_score(np.where(newer, gap, 0.0), np.zeros_like(gap), quantile)
    count = newer.sum(axis=0)
    return np.where(count > 0, score.sum(axis=0) / np.maximum(count, 1), 0.0)


def calibrate_band(
    pred: FloatArray,
    target: FloatArray,
    inputs: ScaleInputs,
    quantile: float,
    times_s: FloatArray,
    half_life_s: float = math.inf,
) -> Band | None:
    """Per-bucket conformal widths from out-of-sample errors; None when there are too few.

    ``pred`` and ``target`` are (origins, buckets) in time order, NaN target = no target.
    Errors are weighted by recency (``half_life_s``) so a band follows a drifting series.
    The band's form — which scale errors are divided by, and whether widths differ by minute
    of the hour — is itself chosen out of sample and per bucket: widths from the older half
    of the origins are applied to the newer half, and the form with the lowest quantile score
    there wins (the narrower band breaks ties). Per bucket, because what errors scale with
    changes with the horizon: the next step's with the minute of the hour and the noise, six
    hours' with the level. By the score, because coverage alone is too noisy to rank forms
    on: an hour-long bucket's holdout holds only a few dozen independent windows, and a
    lexicographic "coverage, then width" rule then picks by noise. The widths kept are then
    taken from all origins. Purely computational, no side effects.
    """
    valid = ~np.isnan(target) & ~np.isnan(pred)
    n_k = pred.shape[1]
    weights = recency_weights(times_s, half_life_s)
    every = np.zeros(len(pred), dtype=np.int64)
    best = [(math.inf, math.inf)] * n_k
    kinds: list[ScaleKind] = ["level"] * n_k
    table = np.full((PHASE_GROUPS, n_k), np.nan)
    for kind in SCALE_KINDS:
        scale = band_scale(kind, pred, inputs)
        errors = (target - pred) / scale
        for phase in (None, inputs.phase):
            widths = band_widths(errors, valid, weights, quantile, phase)
            if np.isnan(widths[0, 0]):
                continue
            score = _holdout_score(errors, scale, valid, times_s, half_life_s, quantile, phase)
            spread = np.maximum(widths[every if phase is None else phase], 0.0) * scale
            for j in range(n_k):
                ok = valid[:, j] if valid[:, j].any() else np.ones(len(pred), dtype=np.bool_)
                candidate = (float(score[j]), float(np.mean(spread[ok, j])))
                if candidate < best[j]:
                    best[j], kinds[j] = candidate, kind
                    table[:, j] = widths[:, j] if phase is not None else widths[0, j]
    if np.isnan(table[0, 0]):
        return None
    same = bool(np.all(table == table[:1]))
    return Band(quantile=quantile, scale_kinds=tuple(kinds), widths=table[:1] if same else table)


def dispersion_band(win: Windows, n_buckets: int, quantile: float) -> Band:
    """A conservative band from the spread of the points around their mean, for tiny histories.

    Purely computational, no side effects.
    """
    y = win.values[~np.isnan(win.values)]
    level = float(np.mean(y)) if len(y) else 0.0
    if level <= 0.0 or len(y) < 2:
        width = 1.0
    else:
        width = max(float(np.quantile((y - level) / level, quantile)), 0.0) + 0.1
    by_level: ScaleKind = "level"
    kinds = (by_level,) * n_buckets
    return Band(quantile=quantile, scale_kinds=kinds, widths=np.full((1, n_buckets), width))


class DirectForecaster(ABC):
    """Base of every model: split-conformal ``fit``, cheap ``update``, ``predict``.

    Subclasses implement three hooks: ``_fit_point`` (estimate on ``win[:head_end]``),
    ``_point_at`` (bucket means at given origins, reading only points before each origin)
    and ``_lookback_steps`` (how much recent history ``_point_at`` reads).
    """

    def __init__(self, *, quantile: float = 0.9) -> None:
        self.quantile = quantile

    # -- scikit-learn style introspection -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, object]:
        """The constructor's settings, by name."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the protocol -----------------------------------------------------------------------
    def fit(self, history: History) -> Self:
        """Estimate the model and its band on ``history`` (NaN = missing); return ``self``."""
        if not 0.5 <= self.quantile < 1.0:
            raise ValueError(f"quantile must be in [0.5, 1), got {self.quantile}")
        win = _checked_windows(history)
        self._prepare(win)
        head_end, origins = calibration_origins(len(win), win.step_s)
        self._fit_point(win, head_end, origins)
        self.band_ = self._calibrate(win, origins)
        return self.update(history)

    def _prepare(self, win: Windows) -> None:
        """Set the fitted attributes every hook may read: step, buckets, overall level."""
        self.step_s_ = win.step_s
        self.buckets_ = bucket_steps(win.step_s)
        present = win.values[~np.isnan(win.values)]
        self.global_level_ = float(np.mean(present)) if len(present) else 0.0

    def update(self, history: History) -> Self:
        """Re-anchor on the newest points of ``history``; no parameter is re-estimated."""
        if not hasattr(self, "band_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        if not math.isclose(history.step_s, self.step_s_, rel_tol=1e-6):
            raise ValueError(
                f"history step {history.step_s:g} s differs from the fitted step {self.step_s_:g} s"
            )
        if len(history) == 0:
            raise ValueError("history is empty")
        lookback = max(self._lookback_steps(), math.ceil(DAY_S / history.step_s)) + 1
        win = Windows.of(history, last_steps=lookback)
        _check_values(win.values)
        origins = np.array([len(win)], dtype=np.int64)
        pred = self._safe_point_at(win, origins)
        inputs = ScaleInputs.at(win, origins, self.global_level_)
        self.origin_s_ = history.end_s
        self.means_ = pred[0]
        self.uppers_ = np.maximum(self.band_.upper(pred, inputs)[0], self.means_)
        self._after_update()
        return self

    def predict(self, horizon_s: float) -> Forecast:
        """Mean and upper quantile per step from the anchored origin over ``horizon_s``."""
        if not hasattr(self, "means_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        if not (math.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"horizon_s must be a positive number of seconds, got {horizon_s}")
        n = horizon_steps(horizon_s, self.step_s_)
        mean = assemble_path(self.buckets_, self.means_, n)
        upper = np.maximum(assemble_path(self.buckets_, self.uppers_, n), mean)
        return Forecast(
            start_s=self.origin_s_,
            step_s=self.step_s_,
            mean=mean,
            upper=upper,
            quantile=self.quantile,
        )

    # -- hooks ------------------------------------------------------------------------------
    @abstractmethod
    def _fit_point(self, win: Windows, head_end: int, origins: IntArray) -> None:
        """Estimate point-forecast parameters from ``win`` before ``head_end``."""

    @abstractmethod
    def _point_at(self, win: Windows, origins: IntArray) -> FloatArray:
        """Bucket means (origins x buckets) reading only points before each origin."""

    @abstractmethod
    def _lookback_steps(self) -> int:
        """How many trailing points ``_point_at`` reads at one origin."""

    def _after_update(self) -> None:  # noqa: B027 - a hook, deliberately a no-op by default
        """Drop state that no later forecast can need (stateful models override)."""

    # -- shared machinery ---------------------------------------------------------------------
    def _scale_level(self, win: Windows, origins: IntArray) -> FloatArray:
        level = win.recent_level(origins)
        floor = max(0.1 * self.global_level_, 1e-9)
        return np.maximum(np.where(np.isnan(level), self.global_level_, level), floor)

    def _safe_point_at(self, win: Windows, origins: IntArray) -> FloatArray:
        """``_point_at`` with gaps filled by the recent level, never negative, never NaN."""
        pred = self._point_at(win, origins)
        fallback = win.recent_level(origins)
        fallback = np.where(np.isnan(fallback), self.global_level_, fallback)
        pred = np.where(np.isnan(pred), fallback[:, None], pred)
        return np.maximum(pred, 0.0)

    def _calibrate(self, win: Windows, origins: IntArray) -> Band:
        ks = self.buckets_
        pred = self._safe_point_at(win, origins)
        target = win.full_mean(origins[:, None], origins[:, None] + ks[None, :])
        inputs = ScaleInputs.at(win, origins, self.global_level_)
        times_s = origins.astype(np.float64) * win.step_s
        band = calibrate_band(pred, target, inputs, self.quantile, times_s, BAND_HALF_LIFE_S)
        return band if band is not None else dispersion_band(win, len(ks), self.quantile)


def _check_values(values: FloatArray) -> None:
    """Rates are finite and non-negative, or NaN (missing)."""
    if np.any(np.isinf(values)):
        raise ValueError("history has infinite values")
    if np.any(values < 0):
        raise ValueError("history has negative rates")


def _checked_windows(history: History) -> Windows:
    if len(history) == 0:
        raise ValueError("history is empty")
    _check_values(history.values)
    if np.all(np.isnan(history.values)):
        raise ValueError("history has no observed point (all NaN)")
    return Windows.of(history)


def calibration_origins(n: int, step_s: float) -> tuple[int, IntArray]:
    """Where the head ends and which origins calibrate the band.

    With at least two days, the newest quarter (at least a day) is held out and origins are
    spread over it; with less, the whole history is calibrated in sample. Purely computational.
    """
    day = max(1, int(np.ceil(DAY_S / step_s)))
    if n >= 2 * day:
        head_end = n - max(n // 4, day)
        first = head_end
    else:
        head_end = n
        first = 1
    stride = max(1, (n - first) // MAX_CALIBRATION_ORIGINS)
    return head_end, np.arange(first, n, stride, dtype=np.int64)
