"""The simulated Prometheus's long-term memory: request rates from before the run started.

A controller that starts (or restarts) on a real cluster finds weeks of request counters in
Prometheus, recorded while the services ran under whatever managed them before; it reads them
with ``query_range`` to warm-start its forecaster. ``SimRateArchive`` plays that part for the
simulated cluster through the same ``RateHistorySource`` port: for each step before the
run's start it reports the request count a Prometheus would have recorded, a Poisson draw
from the workload's load pattern (requests are counted on arrival, so what happened to them
does not matter), on its own RNG stream so the run's arrivals are untouched.

Only the past is archived: steps at or after the run's start are NaN (the controller reads
those live), and so are steps before a trace began (an unrecorded past is missing, not zero).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from actuators.sim.load import LoadPattern, TracePattern
from actuators.sim.world import SimWorld
from controller.ports import ObserveTarget
from forecasting.base import History


class SimRateArchive:
    """``RateHistorySource`` for a ``SimWorld``: what Prometheus recorded before ``start_s``."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self._loads: dict[str, LoadPattern] = {d.ref.key: d.load for d in world.deployments}
        self.queries_total = 0

    def rate_history(
        self, targets: Sequence[ObserveTarget], start_s: float, end_s: float, step_s: float
    ) -> Mapping[str, History]:
        self.queries_total += 1
        if not (step_s > 0 and end_s > start_s):
            return {}
        n = math.ceil((end_s - start_s) / step_s - 1e-9)
        left = start_s + step_s * np.arange(n, dtype=np.float64)
        out: dict[str, History] = {}
        for target in targets:
            key = target.ref.key
            load = self._loads.get(key)
            if load is None:
                continue
            rates = np.maximum(load.rates(start_s, start_s + n * step_s, step_s), 0.0)
            rng = np.random.default_rng([self.world.seed, zlib.crc32(key.encode()), 0xA4C])
            counts = rng.poisson(rates * step_s).astype(np.float64)
            values = counts / step_s
            recorded = left + step_s <= self.world.start_s + 1e-9
            if isinstance(load, TracePattern):
                recorded &= left >= load.origin_s - 1e-9
            values[~recorded] = np.nan
            if np.isfinite(values).any():
                out[key] = History(start_s, step_s, values)
        return out
