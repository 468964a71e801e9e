"""The upper band: conformal arithmetic, shape invariants, and coverage on a golden series."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting import History
from forecasting.direct import assemble_path, weighted_conformal_quantile
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
