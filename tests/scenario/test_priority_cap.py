"""A namespace's priority is capped: ``critical`` only where the operator allows it.

``critical`` lets a workload preempt jobs inside their minimum runtime, so without a cap a
team could make its workload preempt everyone's protected jobs by annotation. By default
(``LoopConfig.critical_namespaces`` empty, as ``sloscale run`` without
``--critical-namespaces``) a priority above ``high`` is capped to ``high``, with a warning in
the log, on every decision of the workload (a ``SpecValid`` condition, reason
``PriorityCapped``, which the Kubernetes adapter writes into its Events) and in the API.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from controller.domain import (
    ConditionType,
    DeploymentState,
    JobPhase,
    JobState,
    Reason,
    WorkloadRef,
)
from controller.forecast import ForecastSettings
from controller.loop import Controller, LoopConfig
from sloscale.api import create_app
from sloscale.telemetry import MetricsRecorder
from tests.fakes import FakeClock, FakeMetrics, slo_annotations
from tests.scenario.test_jobs import JOB, JobCluster, busy

CHAT = WorkloadRef("team-a", "chat")
TRAIN = WorkloadRef("ml", "train", "Job")


def burst(config: LoopConfig) -> tuple[JobCluster, Controller]:
    """``team-a/chat`` (critical) learns its cost, then bursts while a job that started a
    moment ago (inside its 10 min minimum runtime) holds three of the four cards."""
    clock = FakeClock(0.0)
    cluster = JobCluster(clock)
    metrics = FakeMetrics()
    ctl = Controller(cluster, metrics, clock, config, recorders=[MetricsRecorder()])
    annotations = slo_annotations(slice_min="100", priority="critical")
    cluster.deployments[CHAT.key] = DeploymentState(CHAT, annotations, 1, 1, 100, 8192)
    cluster.jobs[TRAIN.key] = JobState(TRAIN, dict(JOB), 3, 100, 4096, JobPhase.RUNNING)
    for i in range(21):
        if i == 20:  # the job (re)starts now: protected by its minimum runtime
            cluster.jobs[TRAIN.key] = replace(cluster.jobs[TRAIN.key], started_at_s=clock.t)
        replicas = cluster.deployments[CHAT.key].replicas
        rate, latency = (20.0, 60.0) if i < 20 else (120.0, 900.0)
        metrics.values[CHAT.key] = busy(rate, replicas, 100, latency)
        clock.advance(15.0)
        ctl.tick()
    return cluster, ctl


CONFIG = LoopConfig(interval_s=15.0, forecast=ForecastSettings(model="none"))


def test_critical_elsewhere_is_capped_and_preempts_no_protected_job() -> None:
    cluster, ctl = burst(CONFIG)
    assert cluster.jobs[TRAIN.key].phase is JobPhase.RUNNING  # not preempted
    report = ctl.last_report
    assert report is not None
    (decision,) = [d for d in report.decisions if d.target == CHAT.key]
    capped = [c for c in decision.conditions if c.reason is Reason.PRIORITY_CAPPED]
    assert [(c.type, c.status) for c in capped] == [(ConditionType.SPEC_VALID, True)]
    assert "capped to high (100)" in capped[0].message
    assert "capped to high (100)" in decision.message
    client = TestClient(create_app(ctl, MetricsRecorder()))
    (chat,) = client.get("/api/v1/workloads").json()["workloads"]
    assert chat["valid"] and chat["spec"]["priority"] == 100
    assert len(chat["warnings"]) == 1 and "--critical-namespaces" in chat["warnings"][0]


def test_critical_in_an_allowed_namespace_is_honoured() -> None:
    cluster, ctl = burst(replace(CONFIG, critical_namespaces=frozenset({"team-a"})))
    assert cluster.jobs[TRAIN.key].phase is JobPhase.SUSPENDED  # preempted for critical chat
    report = ctl.last_report
    assert report is not None and all(w.warnings == () for w in report.workloads)


def test_a_jobs_priority_is_capped_too() -> None:
    """A Job annotated critical keeps no more than high, and its actions say so."""
    clock = FakeClock(0.0)
    cluster = JobCluster(clock)
    ctl = Controller(cluster, FakeMetrics(), clock, CONFIG)
    annotations = {**JOB, "sloscale.io/priority": "critical"}
    cluster.jobs[TRAIN.key] = JobState(TRAIN, annotations, 1, 100, 4096, JobPhase.RUNNING)
    clock.advance(15.0)
    report = ctl.tick()
    (job,) = report.jobs
    assert job.priority == 100 and "capped to high" in str(job.warnings[0])
    body = TestClient(create_app(ctl, MetricsRecorder())).get("/api/v1/jobs").json()
    assert "capped to high" in body["jobs"][0]["warnings"][0]
