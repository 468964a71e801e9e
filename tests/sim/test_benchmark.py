"""How fast the simulator runs the demo's day: 24 h, 15 s ticks, 3 Deployments, 2 Jobs.

With ``--benchmark-disable`` (the default in pyproject) this runs once as a plain test; run
``pytest tests/sim/test_benchmark.py --benchmark-enable`` for the timing table. The budget is
15 s of wall time for the simulator alone on a 2-core machine.
"""

from __future__ import annotations

import math
import time
from typing import Any

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.metrics import SimMetricsSource
from actuators.sim.scenarios import demo_world
from controller.domain import Allocation, Plan, Reason, ScaleAction, SloSpec
from controller.ports import ObserveTarget

TICK_S = 15.0
DAY_S = 86400.0


def simulate_day(seed: int = 0) -> tuple[SimulatedCluster, float]:
    """The demo's 24 h with a crude utilisation-target policy standing in for the controller
    (so that scale-ups, cold starts and a rollout cost what they cost)."""
    world = demo_world(seed)
    cluster = SimulatedCluster(world)
    metrics = SimMetricsSource(cluster.metrics_history)
    targets = [
        ObserveTarget(d.ref, SloSpec(float(d.annotations["sloscale.io/latency-target-ms"])))
        for d in world.deployments
    ]
    started = time.perf_counter()
    for tick in range(int(DAY_S / TICK_S)):
        cluster.advance(TICK_S)
        snap = cluster.snapshot()
        obs = metrics.observe(targets, cluster.now())
        if tick % 4:
            continue
        actions = []
        for d in snap.deployments:
            util = obs.get(d.ref.key).gpu_util
            if util is None or d.rollout_in_progress:
                continue
            want = max(1, min(8, math.ceil(d.replicas * util / 0.5)))
            slice_pct = 40 if d.ref.name == "chat" and cluster.now() > DAY_S / 2 else d.slice_pct
            if (want, slice_pct) != (d.replicas, d.slice_pct):
                actions.append(
                    ScaleAction(d.ref, Allocation(want, slice_pct), d.memory_mib, Reason.SCALE_UP)
                )
        cluster.apply(Plan(scale=tuple(actions)))
    return cluster, time.perf_counter() - started


def test_simulated_day_runs(benchmark: Any) -> None:
    cluster, elapsed_s = benchmark.pedantic(simulate_day, rounds=1, iterations=1)
    benchmark.extra_info["simulated_day_s"] = elapsed_s
    report = cluster.report()
    assert report.end_s == DAY_S
    assert sum(w.requests for w in report.workloads) > 3_000_000
    assert all(len(w.timeline) == 1440 for w in report.workloads)
    assert report.workload("demo/chat").resize_actions == 1
    assert sum(w.scale_actions for w in report.workloads) > 10
    # no wall-time assertion: speed is the benchmark's to measure (``--benchmark-enable``,
    # ``sloscale bench``), and a shared 2-core machine took 72 s where an idle one takes 15
