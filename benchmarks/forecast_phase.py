"""Cost of the loop's forecast phase for many workloads with 14 days of per-minute history.

What one tick of ``ForecastBank`` costs in steady state (samples in, capped re-anchoring,
the forecast every workload's plan reads), for the ``auto`` model against ``persistence`` in
the same process, plus what the scheduled refits add per tick on average (one fit per
workload per ``refit_interval_s``, timed on a few workloads). Usage:

    python -m benchmarks.forecast_phase [--workloads 1000] [--ticks 40] [--fits 3]

Fitting 1,000 ``auto`` models only to time their ticks would take as long as the refits
themselves, so ``--models`` fitted models (default 4) serve all workloads round-robin: a
re-anchor's cost does not depend on which series its parameters were learned from.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from controller.forecast import ForecastBank, ForecastSettings
from forecasting import History, make

STEP_S = 60.0
DAYS = 14
INTERVAL_S = 15.0
LEAD_S = 90.0


def series(n: int, seed: int = 0) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Per-minute rates: daily and weekly shape, random level and phase, Poisson noise."""
    rng = np.random.default_rng(seed)
    t_s = np.arange(round(DAYS * 86_400 / STEP_S)) * STEP_S
    level = rng.uniform(0.5, 50.0, (n, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n, 1))
    daily = 1.0 + 0.6 * np.sin(2 * np.pi * t_s / 86_400 + phase)
    weekly = 1.0 - 0.3 * ((np.floor(t_s / 86_400) % 7) >= 5)
    counts = rng.poisson(level * daily * weekly * STEP_S).astype(np.float64)
    return counts / STEP_S


def build(model: str, rates: np.ndarray[Any, np.dtype[np.float64]], n_models: int) -> ForecastBank:
    settings = ForecastSettings(model=model, max_refits_per_tick=0)  # refits timed apart
    bank = ForecastBank(settings, INTERVAL_S)
    fitted = [make(model).fit(History(0.0, STEP_S, rates[k])) for k in range(n_models)]
    for i, row in enumerate(rates):
        key = f"bench/w{i}"
        bank.track(key)
        bank.seed(key, History(0.0, STEP_S, row))
        state = bank._series[key]  # a benchmark may install models directly
        state.model, state.model_name = fitted[i % n_models], model
        state.next_refit_s = float("inf")
    return bank


def time_ticks(
    bank: ForecastBank, rates: np.ndarray[Any, np.dtype[np.float64]], ticks: int
) -> list[float]:
    """Seconds per tick: observe every workload, refresh (re-anchor, capped), forecast."""
    now = rates.shape[1] * STEP_S
    keys = [f"bench/w{i}" for i in range(len(rates))]
    last = rates[:, -60:].mean(axis=1)
    seconds = []
    for _ in range(ticks):
        now += INTERVAL_S
        started = time.perf_counter()
        for key, rate in zip(keys, last, strict=True):
            bank.observe(key, now, float(rate), STEP_S)
        bank.refresh(now)
        for key in keys:
            bank.record_prediction(key, now, LEAD_S, bank.forecast(key, now, LEAD_S))
        seconds.append(time.perf_counter() - started)
    return seconds


def time_fits(model: str, rates: np.ndarray[Any, np.dtype[np.float64]], fits: int) -> float:
    started = time.perf_counter()
    for k in range(fits):
        make(model).fit(History(0.0, STEP_S, rates[k]))
    return (time.perf_counter() - started) / fits


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--workloads", type=int, default=1000)
    p.add_argument("--ticks", type=int, default=40, help="ticks timed per model (40 = 10 min)")
    p.add_argument("--fits", type=int, default=3, help="refits timed per model")
    p.add_argument("--models", type=int, default=4, help="fitted models shared round-robin")
    args = p.parse_args(argv)
    rates = series(args.workloads)
    refit_interval_s = ForecastSettings().refit_interval_s
    rows = {}
    for model in ("persistence", "auto"):
        bank = build(model, rates, args.models)
        ticks = time_ticks(bank, rates, args.ticks)
        fit_s = time_fits(model, rates, args.fits)
        refit_per_tick_s = fit_s * args.workloads * INTERVAL_S / refit_interval_s
        rows[model] = (statistics.median(ticks), max(ticks), fit_s, refit_per_tick_s)
    print(
        f"forecast phase, {args.workloads} workloads x {DAYS} days of per-minute history, "
        f"{INTERVAL_S:g} s ticks, {args.ticks} ticks"
    )
    print(f"{'model':<12} {'tick p50':>10} {'tick max':>10} {'fit/series':>11} {'refits/tick':>12}")
    for model, (p50, worst, fit_s, amortised) in rows.items():
        print(
            f"{model:<12} {1000 * p50:>8.1f}ms {1000 * worst:>8.1f}ms {fit_s:>10.2f}s "
            f"{1000 * amortised:>10.1f}ms"
        )
    base, auto = rows["persistence"], rows["auto"]
    total_s = auto[0] + auto[3]
    print(
        f"auto / persistence per tick: {auto[0] / base[0]:.1f}x; auto tick + amortised refits "
        f"= {1000 * total_s:.0f} ms, {100 * total_s / INTERVAL_S:.1f} % of a {INTERVAL_S:g} s tick"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
