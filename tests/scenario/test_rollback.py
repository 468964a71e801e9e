"""Faults: a failed resize rolls back, through the real loop and the simulated cluster.

A Deployment serving at 2 x 50 % (8 GiB, what its model needs) is resized to 30 % at 4 GiB
(a resize the loop did not choose here, so the test does not wait for the planner to want
it): the new pods are OOMKilled loading the model and never become ready. Before the fix the
loop held that template forever (a rollout never settles, so no resize was allowed), the
old pods serving alone; now it rolls back to 50 % at 8 GiB, says why, and does not choose
30 % again before the backoff expires, across a restart too.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.load import ConstantPattern
from actuators.sim.metrics import SimMetricsSource
from actuators.sim.model import ModelParams
from actuators.sim.snapshots import InMemorySnapshotStore
from actuators.sim.world import SimDeployment, SimNode, SimWorld
from controller.domain import (
    Allocation,
    ConditionType,
    Decision,
    Plan,
    Reason,
    ScaleAction,
    WorkloadRef,
)
from controller.loop import Controller, LoopConfig
from sloscale.api import create_app
from sloscale.telemetry import MetricsRecorder

REF = WorkloadRef("ml", "chat")
MODEL_MIB = 8192


def _world() -> SimWorld:
    chat = SimDeployment(
        ref=REF,
        annotations={
            "sloscale.io/enabled": "true",
            "sloscale.io/latency-target-ms": "200",
            "sloscale.io/slice-min": "30",
            "sloscale.io/slice-max": "50",
        },
        model=ModelParams(t0_s=0.02, s_sat_pct=50, memory_mib=MODEL_MIB),
        load=ConstantPattern(20.0),
        replicas=2,
        slice_pct=50,
    )
    return SimWorld(nodes=(SimNode("gpu", 2),), deployments=(chat,))


def _controller(
    cluster: SimulatedCluster, store: InMemorySnapshotStore, recorder: MetricsRecorder
) -> Controller:
    metrics = SimMetricsSource(cluster.metrics_history)
    config = LoopConfig(interval_s=15.0)
    return Controller(cluster, metrics, cluster, config, snapshots=store, recorders=[recorder])


def _run(cluster: SimulatedCluster, ctl: Controller, ticks: int) -> list[Decision]:
    decisions = []
    for _ in range(ticks):
        cluster.advance(15.0)
        report = ctl.tick()
        decisions += [d for d in report.decisions if d.target == REF.key]
    return decisions


def _shrink_to_30_at_4_gib(cluster: SimulatedCluster) -> None:
    action = ScaleAction(REF, Allocation(2, 30), MODEL_MIB // 2, Reason.RESIZE)
    assert all(r.ok for r in cluster.apply(Plan(scale=(action,))))


def test_an_oomkilled_resize_rolls_back_to_the_last_good_slice() -> None:
    cluster = SimulatedCluster(_world())
    store, recorder = InMemorySnapshotStore(), MetricsRecorder()
    ctl = _controller(cluster, store, recorder)
    _run(cluster, ctl, 8)  # 2 minutes at 2 x 50 %: the last good slice
    _shrink_to_30_at_4_gib(cluster)
    failed_at = cluster.now()
    decisions = _run(cluster, ctl, 12)  # 3 minutes
    (dep,) = cluster.snapshot().deployments
    assert (dep.slice_pct, dep.memory_mib) == (50, MODEL_MIB)  # the last good template
    assert dep.ready_replicas >= dep.replicas and dep.rollout_failure is None
    rolled = [d for d in decisions if d.reason is Reason.RESIZE_FAILED]
    assert rolled, [d.message for d in decisions]
    why = rolled[0].conditions[-1]
    assert (why.type, why.status) == (ConditionType.ABLE_TO_SCALE, False)
    assert "30 % slice not ready: OOMKilled" in why.message
    assert rolled[0].desired is not None and rolled[0].desired.slice_pct == 50
    assert rolled[0].time_s - failed_at <= 30.0  # seen at the first tick that could
    # every later decision says 30 % is backed off, and none chooses it
    later = decisions[decisions.index(rolled[0]) + 1 :]
    assert later and all(
        any(c.reason is Reason.RESIZE_BACKOFF for c in d.conditions) for d in later
    )
    assert all(d.desired is None or d.desired.slice_pct == 50 for d in later)
    # the API's decision log and /metrics say so too
    body = TestClient(create_app(ctl, recorder)).get("/api/v1/decisions").text
    assert "ResizeFailed" in body and "OOMKilled" in body
    labels = {"workload": REF.key, "type": "ScalingLimited", "reason": "ResizeBackoff"}
    assert recorder.registry.get_sample_value("sloscale_workload_condition", labels) == 1.0
    resizes = [a for a in cluster.report().workloads[0].actions if a.is_resize]
    assert [(a.slice_before_pct, a.slice_after_pct) for a in resizes] == [(50, 30), (30, 50)]

    # a restarted controller remembers the backoff (and says so), from the saved memory
    restarted = _controller(cluster, store, MetricsRecorder())
    after = _run(cluster, restarted, 2)
    assert any(c.reason is Reason.RESIZE_BACKOFF for c in after[-1].conditions)
    memory = restarted.state.workload(REF.key).memory.rollback
    assert memory.blocked_pct(cluster.now()) == {30}
    assert memory.last_good_pct == 50


def test_an_oomkilled_memory_only_change_rolls_back_to_the_last_good_memory() -> None:
    """Found by the fault soak (``sloscale soak``): an outside writer halves the GPU memory
    and keeps the share. Before the fix the failure was taken for one at the last good slice
    (a bad image, nothing to undo): the template stayed at 4 GiB, its pods OOMKilled, and
    every scale-up added crashing pods. The slice is not backed off: it was never at fault."""
    cluster = SimulatedCluster(_world())
    store, recorder = InMemorySnapshotStore(), MetricsRecorder()
    ctl = _controller(cluster, store, recorder)
    _run(cluster, ctl, 8)
    action = ScaleAction(REF, Allocation(2, 50), MODEL_MIB // 2, Reason.RESIZE)
    assert all(r.ok for r in cluster.apply(Plan(scale=(action,))))
    decisions = _run(cluster, ctl, 12)
    (dep,) = cluster.snapshot().deployments
    assert (dep.slice_pct, dep.memory_mib) == (50, MODEL_MIB)
    assert dep.ready_replicas >= dep.replicas and dep.rollout_failure is None
    rolled = [d for d in decisions if d.reason is Reason.RESIZE_FAILED]
    assert rolled, [d.message for d in decisions]
    assert f"{MODEL_MIB // 2} MiB not ready: OOMKilled" in rolled[0].conditions[-1].message
    assert ctl.state.workload(REF.key).memory.rollback.blocked_pct(cluster.now()) == frozenset()
