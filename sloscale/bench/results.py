"""Scoring a run from the simulator's ground truth, and ``hpa*``.

Purely computational: the ``SimReport`` (exact latencies, card-seconds, actions) goes in,
frozen per-policy results come out. Nothing here reaches a policy while it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from actuators.sim.model import FloatArray
from actuators.sim.report import SimReport
from sloscale.bench.setup import SERVICE, BenchSetup


@dataclass(frozen=True)
class MinuteSeries:
    """Per-minute ground truth of one run, for the plots."""

    arrival_rate_rps: FloatArray
    allocated_share_pct: FloatArray
    latency_ms: FloatArray  # NaN where the minute had no request
    requests: FloatArray
    good: FloatArray


@dataclass(frozen=True)
class PolicyResult:
    """One policy's score over the whole run."""

    name: str
    hpa_target_pct: int | None
    requests: int
    slo_attainment: float | None  # request-weighted: good / all
    good_minutes: float | None  # share of minutes with requests whose quantile met the target
    gpu_hours: float  # card-hours allocated to inference (starting pods included)
    utilisation: float | None  # used / allocated card-hours
    scale_actions: int
    resize_actions: int
    batch_gpu_hours: float | None  # low-priority work delivered (None: no jobs in the world)
    lost_gpu_hours: float | None  # low-priority work lost to preemption
    met: bool  # attainment reached the objective
    minutes: MinuteSeries
    wall_s: float

    @property
    def actions(self) -> int:
        return self.scale_actions + self.resize_actions


def score(
    name: str, hpa_target_pct: int | None, report: SimReport, setup: BenchSetup, wall_s: float
) -> PolicyResult:
    w = report.workload(SERVICE.key)
    rows = w.timeline
    target_ms = setup.settings.slo_ms
    latency = np.array([np.nan if r.latency_ms is None else r.latency_ms for r in rows])
    requests = np.array([r.requests for r in rows], dtype=np.float64)
    has = requests > 0
    good_minutes = (
        float(np.count_nonzero(latency[has] <= target_ms)) / int(np.count_nonzero(has))
        if has.any()
        else None
    )
    attainment = w.attainment
    jobs = report.jobs
    return PolicyResult(
        name=name,
        hpa_target_pct=hpa_target_pct,
        requests=w.requests,
        slo_attainment=attainment,
        good_minutes=good_minutes,
        gpu_hours=w.allocated_gpu_h,
        utilisation=w.used_gpu_h / w.allocated_gpu_h if w.allocated_gpu_h > 0 else None,
        scale_actions=w.scale_actions,
        resize_actions=w.resize_actions,
        batch_gpu_hours=sum(j.delivered_gpu_h for j in jobs) if jobs else None,
        lost_gpu_hours=sum(j.lost_gpu_h for j in jobs) if jobs else None,
        met=attainment is not None and attainment >= setup.objective_ratio,
        minutes=MinuteSeries(
            arrival_rate_rps=np.array([r.arrival_rate_rps for r in rows]),
            allocated_share_pct=np.array([r.allocated_share_pct for r in rows]),
            latency_ms=latency,
            requests=requests,
            good=np.array([r.good for r in rows], dtype=np.float64),
        ),
        wall_s=wall_s,
    )


def hpa_star(results: Mapping[str, PolicyResult]) -> PolicyResult | None:
    """The cheapest HPA target that met the objective, or ``None`` when none did."""
    met = [r for r in results.values() if r.hpa_target_pct is not None and r.met]
    return min(met, key=lambda r: (r.gpu_hours, r.hpa_target_pct or 0)) if met else None
