"""The oracle's knowledge: exact sizing from the hidden model parameters.

Only the benchmark's oracle (and the set-up that rescales a trace so that the oracle needs a
given share of the pool at the peak) may use this module: it reads ``ModelParams``, which
``sloscale`` and the baselines never see.

How it sizes: requests are dispatched uniformly at random over ``k`` replicas, so each
replica is an M/G/1 FIFO queue with arrival rate ``lambda / k`` and gamma service times of
mean ``t(s)`` and coefficient of variation ``cv``. The sojourn-time quantile of such a queue,
in units of the mean service time, depends only on its utilisation ``rho`` and ``cv``. The
table of that quantile against ``rho`` is measured once, with the simulator's own FIFO
engine on a long run with common random numbers, and inverted: the largest ``rho`` whose
quantile stays under the target gives the largest rate one replica may take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from actuators.sim.model import FloatArray, ModelParams
from actuators.sim.queueing import Arrivals, serve_fifo
from controller.domain import SHARE_UNIT_PCT

RHO_GRID = tuple(round(0.02 * i, 2) for i in range(1, 50))  # 0.02 .. 0.98
TABLE_REQUESTS = 200_000
TABLE_SEED = 20240807


@dataclass(frozen=True, slots=True)
class QuantileTable:
    """Sojourn-time quantile / mean service time, per utilisation (non-decreasing)."""

    rho: FloatArray
    multiple: FloatArray

    def max_rho(self, multiple_budget: float) -> float:
        """Largest utilisation whose quantile stays within ``multiple_budget`` service times."""
        ok = self.multiple <= multiple_budget
        if not ok[0]:
            return 0.0
        i = int(np.argmin(ok)) if not ok.all() else len(ok)
        if i == len(ok):
            return float(self.rho[-1])
        lo_r, hi_r = self.rho[i - 1], self.rho[i]
        lo_m, hi_m = self.multiple[i - 1], self.multiple[i]
        frac = (multiple_budget - lo_m) / (hi_m - lo_m) if hi_m > lo_m else 0.0
        return float(lo_r + frac * (hi_r - lo_r))


@lru_cache(maxsize=8)
def quantile_table(service_cv: float, quantile: float) -> QuantileTable:
    """Measure the M/G/1 sojourn quantile at every utilisation of ``RHO_GRID``.

    Deterministic (fixed seed); the same inter-arrival and work draws at every ``rho``.
    """
    rng = np.random.default_rng(TABLE_SEED)
    gaps = rng.standard_exponential(TABLE_REQUESTS)
    model = ModelParams(t0_s=1.0, s_sat_pct=100.0, service_cv=service_cv)
    work = model.work_multipliers(rng, TABLE_REQUESTS)
    dispatch = np.zeros(TABLE_REQUESTS)
    warm = TABLE_REQUESTS // 20
    multiples = []
    for rho in RHO_GRID:
        times = np.cumsum(gaps) / rho
        result = serve_fifo(
            0.0,
            float(times[-1]) + 1.0,
            Arrivals(times, dispatch, work),
            service_s=np.ones(1),
            residual_s=np.zeros(1),
        )
        multiples.append(float(np.quantile(result.latency_s[warm:], quantile)))
    return QuantileTable(np.array(RHO_GRID), np.maximum.accumulate(np.array(multiples)))


def max_rate_per_replica_rps(
    model: ModelParams, slice_pct: int, slo_ms: float, quantile: float
) -> float:
    """The largest arrival rate one replica of ``slice_pct`` serves within the SLO."""
    t = model.mean_service_s(slice_pct)
    rho = quantile_table(model.service_cv, quantile).max_rho(slo_ms / 1000.0 / t)
    return rho / t


def slice_options_pct(model: ModelParams) -> tuple[int, ...]:
    """Slices worth holding: 10 % steps up to the first one that reaches saturation."""
    top = SHARE_UNIT_PCT * math.ceil(model.s_sat_pct / SHARE_UNIT_PCT - 1e-9)
    return tuple(range(SHARE_UNIT_PCT, min(100, top) + 1, SHARE_UNIT_PCT))


def replicas_for(rate_rps: float, per_replica_rps: float, min_replicas: int = 1) -> int:
    """``max(min_replicas, ceil(rate / per-replica rate))``; purely computational."""
    if rate_rps <= 0:
        return min_replicas
    return max(min_replicas, math.ceil(rate_rps / per_replica_rps - 1e-9))
