"""Cost of the forecast phase: per tick (update + predict) and per refit (fit), many series.

The control loop refits on a schedule and, every tick, only re-anchors and predicts; these
benchmarks time both on 14 days of per-minute history per series. In the normal suite
(``--benchmark-disable``) each runs once on a few series, as a plain test. For the numbers:

    SLOSCALE_BENCH_SERIES=1000 SLOSCALE_BENCH_FIT_SERIES=50 \\
        pytest tests/forecasting/test_forecast_benchmark.py --benchmark-enable -s

The tick benchmark fits ``SLOSCALE_BENCH_MODELS`` models per kind (default 2) and lets them
serve all series round-robin: an update's cost does not depend on which series its
parameters came from, and fitting 1,000 ``auto`` models just to time their ticks would take
the fit benchmark's time again.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest

from benchmarks.forecast_phase import STEP_S, series
from forecasting import History, OnlineForecaster, make

LEAD_S = 300.0
N_SERIES = int(os.environ.get("SLOSCALE_BENCH_SERIES", "20"))
N_FIT = int(os.environ.get("SLOSCALE_BENCH_FIT_SERIES", "2"))
N_MODELS = int(os.environ.get("SLOSCALE_BENCH_MODELS", "2"))


@pytest.fixture(scope="module")
def rates() -> np.ndarray[Any, np.dtype[np.float64]]:
    return series(max(N_SERIES, N_FIT, N_MODELS))


def _history(values: np.ndarray[Any, np.dtype[np.float64]], end: int) -> History:
    return History(start_s=0.0, step_s=STEP_S, values=values[:end])


@pytest.mark.parametrize("name", ["persistence", "auto"])
def test_tick_cost(name: str, rates: np.ndarray[Any, np.dtype[np.float64]], benchmark: Any) -> None:
    n_steps = rates.shape[1]
    start = n_steps - 60  # fitted an hour ago; ticks re-anchor on the newer points
    models: list[OnlineForecaster] = [
        make(name).fit(_history(rates[k], start)) for k in range(min(N_MODELS, N_SERIES))
    ]
    clock = {"end": start}

    def tick() -> float:
        clock["end"] = min(clock["end"] + 1, n_steps)
        total = 0.0
        for i in range(N_SERIES):
            model = models[i % len(models)]
            total += (
                model.update(_history(rates[i], clock["end"])).predict(LEAD_S).upper_over(LEAD_S)
            )
        return total

    started = time.perf_counter()
    assert np.isfinite(
        benchmark.pedantic(tick, rounds=int(os.environ.get("SLOSCALE_BENCH_ROUNDS", "1")))
    )
    benchmark.extra_info.update(
        {"series": N_SERIES, "wall_s_incl_setup": time.perf_counter() - started}
    )


@pytest.mark.parametrize("name", ["persistence", "holt-winters", "gbm", "auto"])
def test_fit_cost(name: str, rates: np.ndarray[Any, np.dtype[np.float64]], benchmark: Any) -> None:
    histories = [_history(rates[i], rates.shape[1]) for i in range(N_FIT)]

    def refit() -> int:
        return sum(len(make(name).fit(h).predict(LEAD_S).mean) for h in histories)

    assert benchmark.pedantic(refit, rounds=1) == N_FIT * 5
    benchmark.extra_info.update({"series": N_FIT})
