"""``auto``: per series and per horizon, the model (or pair of models) that backtests best.

No model wins everywhere: a smoothed last level is hard to beat five minutes out on a noisy
series, boosting wins an hour out on a diurnal one, and on a short history nothing learned is
trustworthy. So ``auto`` fits every candidate on the head of the history, forecasts out of
sample at the holdout origins (rolling origin, the same split the band uses), and for each
horizon bucket keeps whichever single candidate or equal-weight pair of the three best has
the lowest absolute error. A choice must beat the better of the two obvious baselines by
``margin`` to replace it, so noise in the backtest does not swap a sound baseline for a lucky
model. The baselines are the ones ``forecast-eval``'s ``rel_mae`` divides by: persistence over
15 minutes (the reference) and the same window a day earlier; the fallback is whichever of
them backtests better for that bucket, so ``rel_mae <= 1`` is what selection aims at. (With
persistence as the only fallback, a bucket where yesterday is the better baseline kept
persistence whenever nothing beat *it* by the margin: up to ``1 / (1 - margin)`` in
``rel_mae``.)

Candidates: persistence over one step, 5, 15 (the reference), 30 and 60 minutes; the same
window a day earlier (the other baseline); seasonal-naive (with the season found in the
data, which may be a week); holt-winters; gbm. Averaging two is the cheap, robust kind of
combining: the average's error is never above the mean of theirs, and usually well below when
they err differently. Members stay fitted on the head only (a second fit would double the cost);
``update`` re-anchors them on the newest points like any model.

With less than ``min_history_s`` (two daily seasons by default), or no room for a holdout,
it is the reference persistence alone. The band is calibrated on the chosen combination's own
holdout errors.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import numpy as np

from forecasting.base import FloatArray
from forecasting.boosting import GradientBoostingForecaster
from forecasting.direct import DirectForecaster
from forecasting.holt_winters import HoltWintersForecaster
from forecasting.naive import PERSISTENCE_WINDOW_S, PersistenceForecaster, SeasonalNaiveForecaster
from forecasting.windows import DAY_S, IntArray, Windows

REFERENCE = "persistence"
YESTERDAY = "seasonal-naive:1d"
BASELINES = (REFERENCE, YESTERDAY)
"""What ``forecast-eval``'s ``rel_mae`` compares against: the better of the two, per horizon."""
PERSISTENCE_VARIANTS_S = (0.0, 300.0, 1800.0, 3600.0)
"""Extra persistence windows tried besides the 15-minute reference (0 = one step)."""

DEFAULT_CANDIDATES = ("persistence", "seasonal-naive", "holt-winters", "gbm")
MIN_SELECTION_ORIGINS = 20


def _candidate_factories(quantile: float) -> dict[str, Callable[[], DirectForecaster]]:
    return {
        "seasonal-naive": lambda: SeasonalNaiveForecaster(quantile=quantile),
        "holt-winters": lambda: HoltWintersForecaster(quantile=quantile),
        "gbm": lambda: GradientBoostingForecaster(quantile=quantile),
    }


def choose_combination(
    preds: dict[str, FloatArray],
    target: FloatArray,
    baselines: str | tuple[str, ...],
    margin: float,
) -> tuple[str, ...]:
    """The candidate or equal-weight pair with the lowest MAE on ``target`` (one bucket).

    ``preds`` map names to forecasts at the same origins. The fallback is whichever of
    ``baselines`` (one name or several, all in ``preds``) has the lowest MAE, and it is kept
    unless the best beats it by ``margin`` (relative); with too few targets it is the first
    baseline. Purely computational, no side effects.
    """
    names = (baselines,) if isinstance(baselines, str) else baselines
    ok = ~np.isnan(target)
    if ok.sum() < MIN_SELECTION_ORIGINS:
        return (names[0],)
    t = target[ok]

    def mae(names: tuple[str, ...]) -> float:
        p = np.mean([preds[n][ok] for n in names], axis=0)
        return float(np.mean(np.abs(t - p)))

    fallback = min(names, key=lambda n: mae((n,)))
    singles = sorted(preds, key=lambda n: mae((n,)))
    options: list[tuple[str, ...]] = [(n,) for n in singles]
    options += [tuple(sorted(pair)) for pair in combinations(singles[:3], 2)]
    if fallback not in singles[:1]:
        options.append(tuple(sorted((singles[0], fallback))))
    best = min(options, key=mae)
    if mae(best) > (1.0 - margin) * mae((fallback,)):
        return (fallback,)
    return best


class AutoForecaster(DirectForecaster):
    """Chooses per horizon bucket among ``candidates`` by holdout backtest; see the module."""

    def __init__(
        self,
        *,
        candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
        margin: float = 0.02,
        min_history_s: float = 2 * DAY_S,
        quantile: float = 0.9,
    ) -> None:
        super().__init__(quantile=quantile)
        self.candidates = candidates
        self.margin = margin
        self.min_history_s = min_history_s

    def _pool(self) -> dict[str, DirectForecaster]:
        factories = _candidate_factories(self.quantile)
        unknown = [c for c in self.candidates if c not in (*factories, "persistence")]
        if unknown:
            raise ValueError(f"unknown auto candidate(s): {', '.join(unknown)}")
        pool: dict[str, DirectForecaster] = {
            REFERENCE: PersistenceForecaster(window_s=PERSISTENCE_WINDOW_S, quantile=self.quantile),
            YESTERDAY: SeasonalNaiveForecaster(season_s=DAY_S, quantile=self.quantile),
        }
        if "persistence" in self.candidates:
            for w_s in PERSISTENCE_VARIANTS_S:
                pool[f"persistence:{w_s:g}s"] = PersistenceForecaster(
                    window_s=max(w_s, 1e-9), quantile=self.quantile
                )
        for name in self.candidates:
            if name in factories:
                pool[name] = factories[name]()
        return pool

    def _fit_point(self, win: Windows, head_end: int, origins: IntArray) -> None:
        ks = self.buckets_
        enough = len(win) * win.step_s >= self.min_history_s and head_end < len(win)
        pool = (
            self._pool() if enough else {REFERENCE: PersistenceForecaster(quantile=self.quantile)}
        )
        preds: dict[str, FloatArray] = {}
        for name, model in pool.items():
            model._prepare(win)
            model._fit_point(win, head_end, origins)
            if enough:
                preds[name] = model._safe_point_at(win, origins)
        if enough:
            target = win.full_mean(origins[:, None], origins[:, None] + ks[None, :])
            choice = tuple(
                choose_combination(
                    {n: p[:, j] for n, p in preds.items()}, target[:, j], BASELINES, self.margin
                )
                for j in range(len(ks))
            )
        else:
            choice = tuple((REFERENCE,) for _ in ks)
        used = sorted({name for names in choice for name in names})
        self.members_ = {name: pool[name] for name in used}
        weights = np.zeros((len(used), len(ks)))
        for j, names in enumerate(choice):
            for name in names:
                weights[used.index(name), j] = 1.0 / len(names)
        self.weights_ = weights
        self.choice_ = tuple("+".join(names) for names in choice)

    def _point_at(self, win: Windows, origins: IntArray) -> FloatArray:
        out = np.zeros((len(origins), len(self.buckets_)))
        for weight, model in zip(self.weights_, self.members_.values(), strict=True):
            out += weight[None, :] * model._safe_point_at(win, origins)
        return out

    def _lookback_steps(self) -> int:
        return max(m._lookback_steps() for m in self.members_.values())

    def _after_update(self) -> None:
        for model in self.members_.values():
            model._after_update()
