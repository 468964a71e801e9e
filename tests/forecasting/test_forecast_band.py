"""The upper band: conformal arithmetic, shape invariants, and coverage on a golden series."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting import History
from forecasting.direct import (
    PHASE_GROUPS,
    Band,
    ScaleInputs,
    assemble_path,
    calibrate_band,
    quantile_score,
    weighted_conformal_quantile,
)
from forecasting.evaluation import evaluate
from forecasting.traces import Trace

SeriesFactory = Callable[..., History]


def test_equal_weights_give_the_split_conformal_rank() -> None:
    errors = np.arange(1.0, 20.0)  # 19 errors
    # ceil((19 + 1) * 0.9) = 18th smallest
    assert weighted_conformal_quantile(errors, np.ones(19), 0.9) == 18.0


def test_recent_errors_weigh_more() -> None:
    errors = np.array([10.0] * 50 + [1.0] * 50)  # old errors large, recent ones small
    old_first = np.concatenate((np.full(50, 0.01), np.ones(50)))
    assert weighted_conformal_quantile(errors, old_first, 0.9) == 1.0
    assert weighted_conformal_quantile(errors, np.ones(100), 0.9) == 10.0


@settings(max_examples=60, deadline=None)
@given(
    means=st.lists(st.floats(0.0, 1e4), min_size=1, max_size=6),
    n_steps=st.integers(1, 400),
)
def test_assembled_path_is_finite_non_negative_and_sized(means: list[float], n_steps: int) -> None:
    ks = np.array([1, 5, 15, 30, 60, 120][: len(means)])
    path = assemble_path(ks, np.array(means), n_steps)
    assert path.shape == (n_steps,)
    assert np.all(np.isfinite(path)) and np.all(path >= 0.0)


@settings(max_examples=40, deadline=None)
@given(
    errors=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=50),
    quantile=st.floats(0.5, 0.99),
)
def test_conformal_quantile_is_one_of_the_errors(errors: list[float], quantile: float) -> None:
    e = np.array(errors)
    q = weighted_conformal_quantile(e, np.ones(len(e)), quantile)
    assert q in e
    # At least a `quantile` share of errors lies at or below it (finite-sample guarantee;
    # the rank tolerates float rounding of (n + 1) q, as the implementation does).
    rank = math.ceil((len(e) + 1) * quantile - 1e-9)
    assert np.mean(e <= q) >= min(1.0, rank / len(e)) - 1e-9


def test_coverage_is_near_nominal_on_a_golden_series(daily: SeriesFactory) -> None:
    # Eight days of Poisson traffic around a daily sine; hourly origins over the last two days.
    history = daily(days=8, step_s=300.0, level_rps=5.0, seed=21)
    trace = Trace(name="golden", start_s=0.0, step_s=300.0, counts=history.values * 300.0)
    results = evaluate(trace, (900.0, 3600.0), ["persistence", "seasonal-naive"])
    for r in results:
        # 48 origins: the band is honest if coverage is 0.9 give or take sampling noise.
        assert 0.78 <= r.coverage <= 1.0, r


def _band_case(
    n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, ScaleInputs, dict[str, np.ndarray]]:
    """Origins whose level and roughness vary independently; the next step's errors scale with
    the roughness, the long bucket's with the level (a noisy series with a daily swing)."""
    rng = np.random.default_rng(seed)
    level = rng.choice([10.0, 100.0], n)
    rough = rng.choice([1.0, 10.0], n)
    pred = np.column_stack([level, level])
    noise = rng.normal(0.0, 1.0, (n, 2))
    target = pred + noise * np.column_stack([rough, 0.1 * level])
    phase = rng.integers(0, PHASE_GROUPS, n).astype(np.int64)
    inputs = ScaleInputs(level=level, roughness=rough, phase=phase)
    return pred, target, inputs, {"level": level, "rough": rough}


def test_each_bucket_gets_the_scale_its_errors_have() -> None:
    # One step ahead the errors follow the noise, six hours ahead the level: a band with one
    # scale for every bucket is too narrow for some origins in one of them.
    pred, target, inputs, _ = _band_case(1600, seed=3)
    band = calibrate_band(pred, target, inputs, 0.9, np.arange(1600.0))
    assert band is not None
    assert band.scale_kinds[0] == "roughness"
    assert band.scale_kinds[1] in ("level", "forecast")  # forecast = 1.25 level here
    fresh_pred, fresh_target, fresh_inputs, by = _band_case(4000, seed=4)
    covered = fresh_target <= band.upper(fresh_pred, fresh_inputs)
    for lv in (10.0, 100.0):
        for rg in (1.0, 10.0):
            cell = (by["level"] == lv) & (by["rough"] == rg)
            for j in (0, 1):
                # 0.9 in every cell, give or take the noise of ~1,000 fresh origins
                assert 0.85 <= covered[cell, j].mean() <= 0.95, (lv, rg, j)


def test_band_upper_uses_each_buckets_scale() -> None:
    inputs = ScaleInputs(
        level=np.array([100.0]), roughness=np.array([4.0]), phase=np.array([0], dtype=np.int64)
    )
    band = Band(quantile=0.9, scale_kinds=("roughness", "level"), widths=np.array([[0.5, 0.1]]))
    upper = band.upper(np.array([[50.0, 50.0]]), inputs)
    assert upper.tolist() == [[52.0, 60.0]]  # 50 + 0.5 * 4, 50 + 0.1 * 100


def test_quantile_score_is_least_at_the_quantile() -> None:
    y = np.random.default_rng(5).exponential(1.0, 20_000)
    true_q90 = -math.log(0.1)  # exponential(1): P(Y <= 2.303) = 0.9
    scores = {
        u: float(np.mean(quantile_score(y, np.full_like(y, u), 0.9)))
        for u in (0.8 * true_q90, true_q90, 1.25 * true_q90)
    }
    assert min(scores, key=lambda u: scores[u]) == true_q90
