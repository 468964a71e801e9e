"""Model behaviour on golden series: fallbacks, the Holt-Winters recursion, auto's choices."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest

from forecasting import History, make
from forecasting.auto import BASELINES, REFERENCE, YESTERDAY, AutoForecaster, choose_combination
from forecasting.boosting import GradientBoostingForecaster
from forecasting.direct import assemble_path, bucket_steps
from forecasting.holt_winters import HoltWintersForecaster

SeriesFactory = Callable[..., History]


def test_short_history_falls_back_to_persistence(daily: SeriesFactory) -> None:
    three_hours = daily(days=0.125, step_s=60.0)
    auto = make("auto").fit(three_hours)
    assert isinstance(auto, AutoForecaster)
    assert set(auto.choice_) == {REFERENCE}
    assert make("gbm").fit(three_hours).fallback_  # type: ignore[attr-defined]
    assert make("holt-winters").fit(three_hours).fallback_  # type: ignore[attr-defined]
    # Persistence over 15 minutes: the forecast is the mean of the last 15 points.
    forecast = auto.predict(300.0)
    assert forecast.mean_over(300.0) == pytest.approx(np.mean(three_hours.values[-15:]))


def test_one_and_a_half_days_is_still_too_short_for_auto(daily: SeriesFactory) -> None:
    # Fewer than two daily seasons: nothing learned from the data is trusted.
    auto = make("auto").fit(daily(days=1.5, step_s=300.0))
    assert set(auto.choice_) == {REFERENCE}  # type: ignore[attr-defined]


def test_auto_leaves_persistence_on_a_strong_daily_ramp(daily: SeriesFactory) -> None:
    # Smooth, strongly diurnal, low noise: an hour ahead the ramp matters, so auto must
    # pick something that knows the season over the flat last level.
    history = daily(days=6, step_s=300.0, level_rps=200.0, daily_amp=0.8, seed=11)
    auto = make("auto").fit(history)
    hour_bucket = list(bucket_steps(300.0)).index(12)
    assert auto.choice_[hour_bucket] != REFERENCE  # type: ignore[attr-defined]


def test_choose_combination_keeps_the_reference_without_a_clear_win() -> None:
    rng = np.random.default_rng(2)
    target = rng.normal(10.0, 1.0, 200)
    ref = target + rng.normal(0.0, 1.0, 200)
    slightly_better = target + 0.99 * (ref - target)  # the same errors, 1 % smaller
    much_better = target + rng.normal(0.0, 0.3, 200)
    keep = choose_combination({REFERENCE: ref, "m": slightly_better}, target, REFERENCE, 0.05)
    assert keep == (REFERENCE,)
    switch = choose_combination({REFERENCE: ref, "m": much_better}, target, REFERENCE, 0.05)
    assert "m" in switch


def _with_mae(target: np.ndarray, mae: float, sign: np.ndarray) -> np.ndarray:
    """A forecast whose absolute error is ``mae`` at every origin."""
    return target + mae * sign


# Per bucket, what rel_mae divides by is the better of persistence and yesterday's window.
# name: (persistence MAE, yesterday MAE, model MAE, expected choice)
FALLBACK_CASES = {
    # yesterday 1.5 % better than persistence, the model 0.5 % better than yesterday: no clear
    # win over the baseline that counts, so yesterday (persistence was kept before: rel 1.015)
    "yesterday_is_the_better_baseline": (1.0, 0.985, 0.98, (YESTERDAY,)),
    # persistence the better baseline, the model only 1 % better: persistence
    "persistence_is_the_better_baseline": (0.985, 1.0, 0.975, (REFERENCE,)),
    # the model 10 % better than both: the model
    "a_clear_win_over_both": (1.0, 0.985, 0.88, ("m",)),
}


@pytest.mark.parametrize("case", list(FALLBACK_CASES), ids=list(FALLBACK_CASES))
def test_choose_combination_falls_back_to_the_better_baseline(case: str) -> None:
    a, b, m, expected = FALLBACK_CASES[case]
    rng = np.random.default_rng(7)
    target = rng.normal(10.0, 1.0, 300)
    # Errors of one sign each, so no equal-weight pair averages them away.
    up, down = np.ones(300), -np.ones(300)
    preds = {
        REFERENCE: _with_mae(target, a, up),
        YESTERDAY: _with_mae(target, b, up),
        "m": _with_mae(target, m, up),
        "worse": _with_mae(target, 2.0, down),
    }
    assert choose_combination(preds, target, BASELINES, 0.02) == expected


def test_auto_backtests_both_baselines_whatever_the_candidates() -> None:
    pool = AutoForecaster(candidates=("gbm",))._pool()
    assert set(BASELINES) <= set(pool)


def test_holt_winters_recursion_matches_statsmodels() -> None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.default_rng(4)
    m = 24
    t = np.arange(10 * m)
    y = 50.0 + 10.0 * np.sin(2 * np.pi * t / m) + 0.05 * t + rng.normal(0.0, 1.0, len(t))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ExponentialSmoothing(
            y,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=m,
            initialization_method="heuristic",
        ).fit()
    p = fitted.params
    model = HoltWintersForecaster(season_s=86_400.0, agg_s=3600.0)
    model.season_buckets_ = m
    model.smoothing_ = (
        p["smoothing_level"],
        p["smoothing_trend"],
        p["smoothing_seasonal"],
        p["damping_trend"],
    )
    model.levels_, model.trends_ = np.empty(0), np.empty(0)
    model.seasons_ = np.asarray(p["initial_seasons"], dtype=float)
    model.state_ = (p["initial_level"], p["initial_trend"])
    model._consume(y)
    phi = p["damping_trend"]
    # One-step prediction of y[i] from the state after y[i-1], as statsmodels fits it.
    ours = model.levels_[:-1] + phi * model.trends_[:-1] + model.seasons_[1 : len(y)]
    np.testing.assert_allclose(ours, fitted.fittedvalues[1:], rtol=1e-9, atol=1e-9)


def test_gbm_learns_the_daily_shape(daily: SeriesFactory) -> None:
    history = daily(days=6, step_s=300.0, level_rps=100.0, seed=9)
    model = GradientBoostingForecaster(max_iter=60).fit(history)
    assert not model.fallback_
    # 6 hours ahead the sine has moved; the forecast must not be the flat last level.
    t_end = history.end_s
    ahead = 100.0 * (1 + 0.6 * np.sin(2 * np.pi * (t_end + np.arange(72) * 300.0) / 86_400))
    forecast = model.predict(6 * 3600.0)
    last = np.mean(history.values[-3:])
    assert np.mean(np.abs(forecast.mean - ahead)) < np.mean(np.abs(last - ahead))


def test_horizon_shorter_than_a_step_is_one_step(daily: SeriesFactory) -> None:
    # A 10-minute trace asked for 5 minutes: one step, the next 10-minute window.
    forecast = make("persistence").fit(daily(days=2, step_s=600.0)).predict(300.0)
    assert forecast.mean.shape == (1,)
    assert forecast.mean_over(300.0) == forecast.mean[0]


def test_assembled_path_reproduces_the_bucket_means() -> None:
    ks = np.array([1, 5, 15, 60])
    means = np.array([10.0, 12.0, 11.0, 9.0])
    path = assemble_path(ks, means, 100)
    for k, m in zip(ks, means, strict=True):
        assert np.mean(path[:k]) == pytest.approx(m)
    assert path[60:].tolist() == [9.0] * 40  # beyond the last bucket: its mean
