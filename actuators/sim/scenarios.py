"""Ready-made simulated worlds: the one ``sloscale demo`` runs by default, and small ones.

The demo world is sized so that a good policy has something to win: three inference models
whose peaks do not coincide and whose slices saturate at different shares, two low-priority
training jobs that can soak up what inference leaves, and only eight cards, so that
preemption and fragmentation matter at the daily peak.
"""

from __future__ import annotations

from actuators.sim.load import DiurnalPattern
from actuators.sim.model import ModelParams
from actuators.sim.world import SimDeployment, SimJob, SimNode, SimWorld
from controller.domain import WorkloadRef

DEMO_NAMESPACE = "demo"


def _annotations(target_ms: int, priority: str, *, max_replicas: int = 8) -> dict[str, str]:
    return {
        "sloscale.io/enabled": "true",
        "sloscale.io/latency-target-ms": str(target_ms),
        "sloscale.io/latency-quantile": "0.99",
        "sloscale.io/objective": "99",
        "sloscale.io/priority": priority,
        "sloscale.io/min-replicas": "1",
        "sloscale.io/max-replicas": str(max_replicas),
    }


def _load(base_rps: float, peak_rps: float, peak_hour: float, seed: int) -> DiurnalPattern:
    """A daily curve with flash crowds a policy with sensible headroom can ride out: two a
    day of x1.5-2 for 2-5 minutes (the pattern's defaults are harsher)."""
    return DiurnalPattern(
        base_rps=base_rps,
        peak_rps=peak_rps,
        peak_hour=peak_hour,
        bursts_per_day=2.0,
        burst_factor=(1.5, 2.0),
        burst_duration_s=(120.0, 300.0),
        seed=seed,
    )


def demo_world(seed: int = 0) -> SimWorld:
    """2 nodes x 4 cards of 80 GiB, 3 inference Deployments, 2 preemptible training Jobs."""
    ns = DEMO_NAMESPACE
    deployments = (
        SimDeployment(
            ref=WorkloadRef(ns, "chat"),
            annotations=_annotations(100, "critical"),
            model=ModelParams(t0_s=0.02, s_sat_pct=30, memory_mib=6144),
            load=_load(10, 60, 14, seed * 3 + 1),
            replicas=2,
            slice_pct=30,
        ),
        SimDeployment(
            ref=WorkloadRef(ns, "vision"),
            annotations=_annotations(400, "high"),
            model=ModelParams(t0_s=0.06, s_sat_pct=50, memory_mib=12288),
            load=_load(8, 40, 11, seed * 3 + 2),
            replicas=3,
            slice_pct=50,
        ),
        SimDeployment(
            ref=WorkloadRef(ns, "rerank"),
            annotations=_annotations(800, "normal"),
            model=ModelParams(t0_s=0.12, s_sat_pct=80, memory_mib=24576),
            load=_load(4, 20, 19, seed * 3 + 3),
            replicas=3,
            slice_pct=80,
        ),
    )
    job_annotations = {
        "sloscale.io/priority": "low",
        "sloscale.io/preemptible": "true",
        "sloscale.io/min-runtime": "10m",
    }
    jobs = (
        SimJob(
            ref=WorkloadRef(ns, "train-llm", kind="Job"),
            annotations={**job_annotations, "sloscale.io/checkpoint-interval": "30m"},
            pods=2,
            share_pct_per_pod=100,
            memory_mib_per_pod=40960,
            work_gpu_s=30 * 3600.0,
            checkpoint_interval_s=1800.0,
            submit_s=0.0,
        ),
        SimJob(
            ref=WorkloadRef(ns, "finetune-vision", kind="Job"),
            annotations={**job_annotations, "sloscale.io/checkpoint-interval": "15m"},
            pods=1,
            share_pct_per_pod=50,
            memory_mib_per_pod=20480,
            work_gpu_s=6 * 3600.0,
            checkpoint_interval_s=900.0,
            submit_s=2 * 3600.0,
        ),
    )
    return SimWorld(
        nodes=(SimNode("gpu-node-a", 4), SimNode("gpu-node-b", 4)),
        deployments=deployments,
        jobs=jobs,
        seed=seed,
    )
