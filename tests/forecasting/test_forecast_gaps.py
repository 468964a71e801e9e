"""Missing data is missing: NaN never reads as zero, and outage zeros become NaN."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting import MODEL_NAMES, History, make
from forecasting.gaps import mask_zero_runs, zero_run_mask
from forecasting.windows import Windows


def test_window_mean_ignores_missing_points() -> None:
    win = Windows(start_s=0.0, step_s=60.0, values=np.array([10.0, np.nan, 20.0, np.nan]))
    assert win.mean(0, 4) == pytest.approx(15.0)  # (10 + 20) / 2, not (10 + 0 + 20 + 0) / 4
    assert np.isnan(win.mean(3, 4))  # nothing present: no mean at all
    assert np.isnan(win.full_mean(0, 3))  # a target window with a hole is not a target


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_gap_before_the_origin_is_not_read_as_an_outage_of_load(name: str) -> None:
    # Flat 50 rps for two days, then the last 40 minutes missing: every model must still
    # forecast about 50, not something dragged toward zero.
    rng = np.random.default_rng(5)
    values = rng.poisson(50.0 * 60, 2 * 1440) / 60.0
    values[-40:] = np.nan
    forecast = make(name).fit(History(start_s=0.0, step_s=60.0, values=values)).predict(900.0)
    assert 45.0 <= forecast.mean_over(900.0) <= 55.0
    assert forecast.upper_over(900.0) >= forecast.mean_over(900.0)


ZERO_RUN_CASES = {
    # name: (values, step_s, min_run_s, expected mask)
    "dense series, long run is an outage": ([5.0, 5, 0, 0, 0] + [5.0] * 60, 60.0, 180.0, [2, 3, 4]),
    "dense series, short run is load": ([5.0, 0, 5] + [5.0] * 60, 60.0, 180.0, []),
    "one zero ten-minute window is a gap": (
        [900.0] * 40 + [0.0] + [900.0] * 40,
        600.0,
        600.0,
        [40],
    ),
    "sparse series keeps its zeros": ([0.0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 1, 0], 60.0, 180.0, []),
}


@pytest.mark.parametrize("case", ZERO_RUN_CASES, ids=list(ZERO_RUN_CASES))
def test_zero_run_rule(case: str) -> None:
    values, step_s, min_run_s, expected = ZERO_RUN_CASES[case]
    mask = zero_run_mask(np.array(values, dtype=float), step_s, min_run_s=min_run_s)
    assert np.flatnonzero(mask).tolist() == expected


def test_mask_zero_runs_turns_outages_into_nan() -> None:
    # 20 zero minutes in 500: zeros are rare (4 %), so the run is a collection gap.
    values = np.array([100.0] * 250 + [0.0] * 20 + [100.0] * 230)
    masked = mask_zero_runs(History(0.0, 60.0, values), min_run_s=600.0)
    assert np.isnan(masked.values[250:270]).all()
    assert not np.isnan(masked.values[:250]).any()
