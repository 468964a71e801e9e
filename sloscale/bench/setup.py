"""The bench's world: one inference Deployment replaying a rescaled trace on a GPU pool.

Why one world for every policy: the same ``SimWorld`` (nodes, model, seed, initial pods) is
rebuilt for each policy, so every policy sees identical arrivals and request sizes (the
simulator draws them from the seed and the load pattern alone, whatever the policy does).

The trace's level is rescaled so that its busiest step, served by the oracle, needs
``peak_share`` of the pool (ARCHITECTURE §6); the shape is left as recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from actuators.sim.load import TracePattern
from actuators.sim.model import FloatArray, ModelParams
from actuators.sim.world import SimDeployment, SimNode, SimWorld
from controller.domain import WorkloadRef
from forecasting.traces import Trace, TraceError, load_trace
from sloscale.bench.settings import BenchError, BenchSettings
from sloscale.bench.sizing import (
    max_rate_per_replica_rps,
    replicas_for,
    slice_options_pct,
)

MINUTE_S = 60.0
CARDS_PER_NODE = 8
LATENCY_QUANTILE = 0.99
OBJECTIVE_PCT = 99.0
SERVICE = WorkloadRef("bench", "inference")

BENCH_MODEL = ModelParams(
    t0_s=0.2, s_sat_pct=50.0, service_cv=0.5, memory_mib=16384, cold_start_s=60.0
)
"""The hidden model: 200 ms per request on half a card (an image or small LLM model), no
faster on more, gamma service times (cv 0.5), 60 s cold start."""


@dataclass(frozen=True)
class OraclePlan:
    """What the oracle knows in advance: the replicas it needs each minute at its slice."""

    slice_pct: int
    need_by_minute: tuple[int, ...]
    per_replica_rps: float

    @property
    def peak_replicas(self) -> int:
        return max(self.need_by_minute, default=1)


@dataclass(frozen=True)
class BenchSetup:
    """Everything a policy run needs; the same for every policy of one bench."""

    settings: BenchSettings
    trace: Trace
    world: SimWorld
    duration_s: float
    scale: float  # requests/s of the bench per request/s of the trace
    peak_rps: float
    template_slice_pct: int
    max_replicas: int
    oracle: OraclePlan
    minute_rates_rps: FloatArray

    @property
    def pool_pct(self) -> int:
        return 100 * self.settings.cluster_gpus

    @property
    def objective_ratio(self) -> float:
        return OBJECTIVE_PCT / 100.0


def prepare(settings: BenchSettings) -> BenchSetup:
    """Load the trace, rescale it, size the oracle and build the world; ``BenchError`` on
    anything a run could not satisfy."""
    settings.validate()
    try:
        trace = load_trace(settings.trace)
    except TraceError as e:
        raise BenchError(str(e)) from None
    rates = trace.rates_rps()
    finite = rates[np.isfinite(rates)]
    trace_peak = float(finite.max()) if finite.size else 0.0
    if not trace_peak > 0:
        raise BenchError(f"{settings.trace}: trace has no requests")
    duration_s = trace.duration_s
    if settings.hours is not None:
        if settings.hours * 3600.0 > trace.duration_s + 1e-6:
            raise BenchError(
                f"--hours {settings.hours:g} exceeds the trace ({trace.duration_s / 3600.0:.1f} h)"
            )
        duration_s = settings.hours * 3600.0
    duration_s = math.floor(duration_s / MINUTE_S) * MINUTE_S
    if duration_s < MINUTE_S:
        raise BenchError(f"{settings.trace}: less than a minute to replay")

    model = BENCH_MODEL
    pool_pct = 100 * settings.cluster_gpus
    max_replicas = pool_pct // 10
    peak_rps, _ = _peak_capacity(settings, model, max_replicas)
    scale = peak_rps / trace_peak
    pattern = TracePattern(trace, scale=scale)
    minute_rates = pattern.rates(0.0, duration_s, MINUTE_S)
    oracle = _oracle_plan(settings, model, minute_rates, max_replicas)
    template = slice_options_pct(model)[-1]
    initial = replicas_for(
        float(np.max(minute_rates[:5])),
        max_rate_per_replica_rps(model, template, settings.slo_ms, LATENCY_QUANTILE),
    )
    world = SimWorld(
        nodes=tuple(
            SimNode(f"gpu-node-{i}", min(CARDS_PER_NODE, settings.cluster_gpus - i * 8))
            for i in range(math.ceil(settings.cluster_gpus / CARDS_PER_NODE))
        ),
        deployments=(
            SimDeployment(
                ref=SERVICE,
                annotations=_annotations(settings, max_replicas),
                model=model,
                load=pattern,
                replicas=initial,
                slice_pct=template,
            ),
        ),
        seed=settings.seed,
    )
    return BenchSetup(
        settings=settings,
        trace=trace,
        world=world,
        duration_s=duration_s,
        scale=scale,
        peak_rps=peak_rps,
        template_slice_pct=template,
        max_replicas=max_replicas,
        oracle=oracle,
        minute_rates_rps=minute_rates,
    )


def _annotations(settings: BenchSettings, max_replicas: int) -> dict[str, str]:
    """The Deployment's SLO, as a user would write it (the only thing sloscale is told)."""
    return {
        "sloscale.io/enabled": "true",
        "sloscale.io/latency-target-ms": f"{settings.slo_ms:g}",
        "sloscale.io/latency-quantile": f"{LATENCY_QUANTILE:g}",
        "sloscale.io/objective": f"{OBJECTIVE_PCT:g}",
        "sloscale.io/priority": "critical",
        "sloscale.io/min-replicas": "1",
        "sloscale.io/max-replicas": str(max_replicas),
    }


def _replica_capacity(settings: BenchSettings, slice_pct: int, max_replicas: int) -> int:
    """How many replicas of ``slice_pct`` the pool holds (slices do not span cards)."""
    return min(max_replicas, settings.cluster_gpus * (100 // slice_pct))


def _peak_capacity(
    settings: BenchSettings, model: ModelParams, max_replicas: int
) -> tuple[float, int]:
    """The largest rate the oracle serves within ``peak_share`` of the pool, and its slice."""
    budget_pct = settings.peak_share * 100 * settings.cluster_gpus
    best = (0.0, 0)
    for s in slice_options_pct(model):
        per_replica = max_rate_per_replica_rps(model, s, settings.slo_ms, LATENCY_QUANTILE)
        replicas = min(
            math.floor(budget_pct / s + 1e-9), _replica_capacity(settings, s, max_replicas)
        )
        best = max(best, (replicas * per_replica, s))
    if best[0] <= 0:
        if all(
            max_rate_per_replica_rps(model, s, settings.slo_ms, LATENCY_QUANTILE) <= 0
            for s in slice_options_pct(model)
        ):
            raise BenchError(
                f"--slo-ms {settings.slo_ms:g} is impossible: even an idle replica's "
                f"p{100 * LATENCY_QUANTILE:g} latency exceeds it"
            )
        raise BenchError(
            f"--peak-share {settings.peak_share:g} of {settings.cluster_gpus} GPUs holds no "
            "replica that meets the SLO: the peak is above the cluster"
        )
    return best


def _oracle_plan(
    settings: BenchSettings, model: ModelParams, minute_rates: FloatArray, max_replicas: int
) -> OraclePlan:
    """The slice with the least total share over the run, and the replicas per minute."""
    best: OraclePlan | None = None
    best_cost = math.inf
    for s in slice_options_pct(model):
        per_replica = max_rate_per_replica_rps(model, s, settings.slo_ms, LATENCY_QUANTILE)
        if per_replica <= 0:
            continue
        need = np.maximum(1, np.ceil(minute_rates / per_replica - 1e-9)).astype(int)
        if int(need.max()) > _replica_capacity(settings, s, max_replicas):
            continue
        cost = float(need.sum()) * s
        if cost < best_cost - 1e-9 or (
            best is not None and cost <= best_cost and s > best.slice_pct
        ):
            best_cost = cost
            best = OraclePlan(s, tuple(int(n) for n in need), per_replica)
    if best is None:  # pragma: no cover - _peak_capacity guarantees a feasible slice
        raise BenchError("no slice serves the trace's peak within the cluster")
    return best
