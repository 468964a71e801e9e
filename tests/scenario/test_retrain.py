"""Retraining through the real loop and the simulated cluster, with controller restarts."""

from __future__ import annotations

from dataclasses import replace

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.load import ConstantPattern
from actuators.sim.metrics import SimMetricsSource
from actuators.sim.model import ModelParams
from actuators.sim.world import SimDeployment, SimJobTemplate, SimNode, SimWorld
from controller.domain import Reason, WorkloadRef
from controller.loop import Controller, LoopConfig
from controller.retrain import RetrainState, Watermark

LOW = {"sloscale.io/priority": "low", "sloscale.io/preemptible": "true"}


def _annotations(template: str) -> dict[str, str]:
    return {
        "sloscale.io/enabled": "true",
        "sloscale.io/latency-target-ms": "200",
        "sloscale.io/retrain-data-query": "sum(samples_total)",
        "sloscale.io/retrain-threshold": "3000",  # 10 rps x 300 s
        "sloscale.io/retrain-job-template": template,
        "sloscale.io/retrain-cooldown": "1h",  # one retraining in this test
    }


def _world() -> SimWorld:
    def dep(name: str, template: str) -> SimDeployment:
        return SimDeployment(
            ref=WorkloadRef("ml", name),
            annotations=_annotations(template),
            model=ModelParams(t0_s=0.02, s_sat_pct=30, memory_mib=4096),
            load=ConstantPattern(10.0),
            replicas=1,
            slice_pct=30,
        )

    return SimWorld(
        nodes=(SimNode("gpu", 4),),
        deployments=(dep("chat", "cronjob/retrain-chat"), dep("broken", "cronjob/missing")),
        templates=(
            SimJobTemplate(
                WorkloadRef("ml", "retrain-chat", "CronJob"), LOW, 1, 50, 8192, work_gpu_s=600.0
            ),
        ),
    )


def _controller(cluster: SimulatedCluster) -> Controller:
    return Controller(
        cluster, SimMetricsSource(cluster.metrics_history), cluster, LoopConfig(interval_s=15.0)
    )


def _retrain_jobs(cluster: SimulatedCluster) -> list[str]:
    return [j.ref.name for j in cluster.snapshot().jobs if j.labels.get("sloscale.io/retrain-of")]


def test_restarts_around_trigger_and_job_give_exactly_one_job_and_a_watermark() -> None:
    cluster = SimulatedCluster(_world())
    controller = _controller(cluster)
    blocked = []
    for i in range(200):  # 50 minutes; a new controller (restart) every 5 ticks
        if i % 5 == 0:
            controller = _controller(cluster)
        cluster.advance(15.0)
        report = controller.tick()
        blocked += [d for d in report.decisions if d.reason is Reason.RETRAIN_BLOCKED]
        if any(w.key == "ml/chat" and w.desired is None for w in report.workloads):
            raise AssertionError("a retrain decision replaced the scaling decision")
    assert _retrain_jobs(cluster) == ["chat-retrain-1"]  # one Job through 40 restarts
    chat = {j.key: j for j in cluster.report().jobs}["ml/chat-retrain-1"]
    assert chat.finished_s is not None  # 600 card-s at 50 % = 20 min after a 60 s start
    dep = next(d for d in cluster.snapshot().deployments if d.ref.name == "chat")
    wm = Watermark.parse(dep.retrain_watermark)
    assert wm.last_outcome == "Succeeded" and wm.job is None
    assert wm.samples is not None and wm.samples >= 3000  # it advanced past the threshold
    # the broken template is reported for that workload alone, which still scales
    assert blocked and {d.target for d in blocked} == {"ml/broken"}
    statuses = {s.key: s for s in report.retraining}
    assert statuses["ml/broken"].state is RetrainState.BLOCKED
    assert "not found" in statuses["ml/broken"].message
    assert all(w.last_decision is not None for w in report.workloads)


def test_retraining_is_visible_on_the_api_and_metrics() -> None:
    from fastapi.testclient import TestClient

    from sloscale.api import create_app
    from sloscale.telemetry import MetricsRecorder

    cluster = SimulatedCluster(_world())
    recorder = MetricsRecorder()
    controller = Controller(
        cluster,
        SimMetricsSource(cluster.metrics_history),
        cluster,
        LoopConfig(interval_s=15.0),
        recorders=[recorder],
    )
    for _ in range(200):
        cluster.advance(15.0)
        controller.tick()
    client = TestClient(create_app(controller, recorder))
    models = {m["model"]: m for m in client.get("/api/v1/retraining").json()["models"]}
    assert set(models) == {"ml/chat", "ml/broken"}
    chat = models["ml/chat"]
    assert chat["threshold"] > 0 and chat["last_job"]["outcome"] == "Succeeded"
    assert models["ml/broken"]["state"] == RetrainState.BLOCKED.value
    text = client.get("/metrics").text
    assert 'sloscale_retrain_triggers_total{workload="ml/chat"} 1.0' in text
    assert 'sloscale_retrain_samples_pending{workload="ml/chat"}' in text


def test_a_replica_that_followed_starts_the_retraining_once_it_leads() -> None:
    """``sloscale run --leader-elect`` ticks a follower in shadow mode: it decides the start of
    a retraining but writes nothing. Once it leads it must write it, not take its shadow
    writes as made and wait for a Job nobody created (found on a real API server, #27)."""
    cluster = SimulatedCluster(_world())
    controller = _controller(cluster)
    base = controller.config
    for i in range(60):  # 15 minutes: leading, following for 10 (the trigger comes), leading
        controller.config = replace(base, dry_run=0 < i < 40)
        cluster.advance(15.0)
        report = controller.tick()
        if i == 39:
            statuses = {s.key: s for s in report.retraining}
            assert statuses["ml/chat"].state is RetrainState.STARTING  # decided, in shadow
            assert _retrain_jobs(cluster) == []
    assert _retrain_jobs(cluster) == ["chat-retrain-1"]
