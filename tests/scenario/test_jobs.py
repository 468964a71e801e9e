"""Preemption and resume over many ticks of the loop, with a fake clock (issue 6)."""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from controller.domain import (
    ApplyResult,
    JobPhase,
    JobState,
    Plan,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.forecast import ForecastSettings
from controller.loop import Controller, LoopConfig
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

INTERVAL_S = 15.0
JOB = {
    "sloscale.io/priority": "low",
    "sloscale.io/preemptible": "true",
    "sloscale.io/checkpoint-interval": "10m",
}


@dataclass
class JobCluster(FakeCluster):
    """The fake cluster plus Jobs that suspend and resume (running gangs keep their cards)."""

    def add_job(self, name: str, pods: int, share_pct: int) -> WorkloadRef:
        ref = WorkloadRef("default", name, "Job")
        self.jobs[ref.key] = JobState(
            ref, dict(JOB), pods, share_pct, 4096, JobPhase.RUNNING, started_at_s=-86400.0
        )
        return ref

    def apply(self, plan: Plan, *, dry_run: bool = False) -> Sequence[ApplyResult]:
        out = list(super().apply(Plan(scale=plan.scale), dry_run=dry_run))
        for a in plan.jobs:
            j = self.jobs[a.ref.key]
            phase = JobPhase.SUSPENDED if a.suspend else JobPhase.RUNNING
            self.jobs[a.ref.key] = replace(j, phase=phase, started_at_s=self.clock.now())
            out.append(ApplyResult(a.ref.key, True))
        return out


def busy(rate: float, replicas: int, slice_pct: int, latency_ms: float) -> WorkloadMetrics:
    """Metrics of a workload costing 0.02 card-seconds per request."""
    util = min(1.0, 0.02 * rate / replicas / (slice_pct / 100))
    return WorkloadMetrics(
        request_rate_rps=rate, latency_ms=latency_ms, good_ratio=1.0, gpu_util=util, gpu_busy=util
    )


def make() -> tuple[FakeClock, JobCluster, FakeMetrics, Controller]:
    clock = FakeClock(0.0)
    cluster = JobCluster(clock)
    metrics = FakeMetrics()
    config = LoopConfig(interval_s=INTERVAL_S, forecast=ForecastSettings(model="none"))
    return clock, cluster, metrics, Controller(cluster, metrics, clock, config)


def tick(clock: FakeClock, ctl: Controller) -> None:
    clock.advance(INTERVAL_S)
    ctl.tick()


def suspended(cluster: JobCluster, ref: WorkloadRef) -> bool:
    return cluster.jobs[ref.key].phase is JobPhase.SUSPENDED


def test_a_burst_while_jobs_run_preempts_once_and_resumes_after_the_hysteresis() -> None:
    clock, cluster, metrics, ctl = make()
    chat = cluster.add("chat", slo_annotations(slice_min="100"), replicas=1, slice_pct=100)
    train = cluster.add_job("train", pods=2, share_pct=100)  # 2 of the 4 cards
    for _ in range(20):  # 5 minutes at 20 rps: the capacity model learns 0.02 card-s/request
        metrics.values[chat.key] = busy(20.0, cluster.deployments[chat.key].replicas, 100, 60.0)
        tick(clock, ctl)
    assert not suspended(cluster, train)
    burst_at = clock.t
    for _ in range(8):  # a burst: 120 rps needs 3 full cards (mu = 50 rps each)
        d = cluster.deployments[chat.key]
        metrics.values[chat.key] = busy(120.0, d.replicas, 100, 900.0 if d.replicas < 3 else 80.0)
        tick(clock, ctl)
    assert suspended(cluster, train)
    assert cluster.deployments[chat.key].replicas >= 3
    assert ctl.job_preemptions(train.key) and ctl.job_preemptions(train.key)[0] - burst_at <= 30
    for _ in range(40):  # the burst is over after 10 minutes: still inside the 15 min cooldown
        d = cluster.deployments[chat.key]
        metrics.values[chat.key] = busy(20.0, d.replicas, 100, 60.0)
        tick(clock, ctl)
    assert suspended(cluster, train)
    for _ in range(120):  # 30 more minutes of calm: scaled down, cooldown over, resumed
        d = cluster.deployments[chat.key]
        metrics.values[chat.key] = busy(20.0, d.replicas, 100, 60.0)
        tick(clock, ctl)
    assert not suspended(cluster, train)
    assert len(ctl.job_preemptions(train.key)) == 1  # no thrash


def test_a_predicted_burst_preempts_ahead_of_it_within_the_lead_time() -> None:
    clock, cluster, metrics, ctl = make()
    chat = cluster.add("chat", slo_annotations(slice_min="100"), replicas=2, slice_pct=100)
    train = cluster.add_job("train", pods=2, share_pct=100)
    for _ in range(20):
        metrics.values[chat.key] = busy(20.0, 2, 100, 60.0)
        tick(clock, ctl)
    # a steady ramp of 1 rps per tick; the latency stays under target all along, so only the
    # forecast (level + trend over the 90 s lead time) can ask for the third card in time
    rate = 20.0
    sized_for = None
    for _ in range(80):
        rate += 1.0
        metrics.values[chat.key] = busy(rate, cluster.deployments[chat.key].replicas, 100, 60.0)
        tick(clock, ctl)
        if suspended(cluster, train):
            assert ctl.last_report is not None
            decision = next(d for d in ctl.last_report.decisions if d.target == chat.key)
            sized_for = float(decision.message.split("sized for ")[1].split(" rps")[0])
            break
    assert sized_for is not None
    # the room was made for the rate forecast over the lead time, ahead of the observed one:
    # level + 1 rps per 15 s tick x 90 s = at least 6 rps more than observed
    assert sized_for >= rate + 5.0


def test_jobs_api_and_metrics_show_the_preemption_and_its_estimated_loss() -> None:
    from fastapi.testclient import TestClient

    from sloscale.api import create_app
    from sloscale.telemetry import MetricsRecorder

    clock = FakeClock(0.0)
    cluster = JobCluster(clock)
    metrics = FakeMetrics()
    recorder = MetricsRecorder()
    ctl = Controller(
        cluster,
        metrics,
        clock,
        LoopConfig(interval_s=15.0, forecast=ForecastSettings(model="none")),
        recorders=[recorder],
    )
    chat = cluster.add("chat", slo_annotations(slice_min="100"), replicas=1, slice_pct=100)
    train = cluster.add_job("train", pods=2, share_pct=100)
    for _ in range(20):
        metrics.values[chat.key] = busy(20.0, cluster.deployments[chat.key].replicas, 100, 60.0)
        tick(clock, ctl)
    # before the first preemption the change counter reads 0, so increase() sees it
    changes = {"workload": train.key, "reason": "Preempted"}
    assert recorder.registry.get_sample_value("sloscale_decision_changes_total", changes) == 0
    for _ in range(8):
        d = cluster.deployments[chat.key]
        metrics.values[chat.key] = busy(120.0, d.replicas, 100, 900.0 if d.replicas < 3 else 80.0)
        tick(clock, ctl)
    assert suspended(cluster, train)
    client = TestClient(create_app(ctl, recorder))
    body = client.get("/api/v1/jobs").json()
    job = next(j for j in body["jobs"] if j["key"] == train.key)
    assert job["phase"] == "Suspended" and job["preemptible"] and job["pods"] == 2
    assert job["preemptions_last_day"] == 1 and job["estimated_lost_gpu_h"] > 0
    assert job["last_decision"]["reason"] == "Preempted"
    assert "preempted for" in job["last_decision"]["explanation"]
    text = client.get("/metrics").text
    assert f'sloscale_job_preemptions_total{{job="{train.key}"}} 1.0' in text
    assert f'sloscale_preemption_lost_gpu_hours_total{{job="{train.key}"}}' in text
    assert recorder.registry.get_sample_value("sloscale_decision_changes_total", changes) == 1


def add_notebook(cluster: JobCluster) -> WorkloadRef:
    """A half-card Job annotated ``reclaim-idle-after: 30m``."""
    nb = cluster.add_job("notebook", pods=1, share_pct=50)
    j = cluster.jobs[nb.key]
    annotations = {**j.annotations, "sloscale.io/reclaim-idle-after": "30m"}
    cluster.jobs[nb.key] = replace(j, annotations=annotations)
    return nb


def test_an_idle_notebook_job_is_suspended_after_reclaim_idle_after() -> None:
    clock, cluster, metrics, ctl = make()
    nb = add_notebook(cluster)
    metrics.values[nb.key] = WorkloadMetrics(gpu_util=0.30)  # busy for 10 minutes
    for _ in range(40):
        tick(clock, ctl)
    metrics.values[nb.key] = WorkloadMetrics(gpu_util=0.01)  # then idle
    idle_from = clock.t + INTERVAL_S
    for _ in range(119):  # 29.75 minutes: not yet
        tick(clock, ctl)
        assert not suspended(cluster, nb)
    metrics.values[nb.key] = WorkloadMetrics()  # a scrape gap is no evidence either way
    tick(clock, ctl)
    metrics.values[nb.key] = WorkloadMetrics(gpu_util=0.01)
    tick(clock, ctl)
    assert suspended(cluster, nb)
    assert clock.t - idle_from >= 1800.0
    decision = ctl.job_last_decision(nb.key)
    assert decision is not None and "idle reclaim" in decision.message


def test_a_busy_job_is_never_idle_reclaimed() -> None:
    clock, cluster, metrics, ctl = make()
    nb = add_notebook(cluster)
    for i in range(240):  # an hour, idle every other 10 minutes
        metrics.values[nb.key] = WorkloadMetrics(gpu_util=0.01 if (i // 40) % 2 else 0.5)
        tick(clock, ctl)
    assert not suspended(cluster, nb)


def test_an_idle_deployment_shrinks_to_its_minimum_and_grows_back_with_demand() -> None:
    clock, cluster, metrics, ctl = make()
    notes = cluster.add(
        "notes", slo_annotations(reclaim_idle_after="30m", slice_min="20"), 2, slice_pct=50
    )

    def state() -> tuple[int, int]:
        d = cluster.deployments[notes.key]
        return d.replicas, d.slice_pct

    # no requests and no GPU activity, but no latency either: sizing alone holds (no metric
    # says what a replica serves); only the idle tracker can see that the slices do nothing
    idle = WorkloadMetrics(request_rate_rps=0.0, good_ratio=1.0, gpu_util=0.0)
    metrics.values[notes.key] = idle
    for _ in range(118):
        tick(clock, ctl)
    assert state() == (2, 50)
    for _ in range(4):
        tick(clock, ctl)
    assert state() == (1, 20)
    reclaimed = [d for d in ctl.decision_log if d.reason.value == "IdleReclaimed" and d.applied]
    assert reclaimed and "idle reclaim" in reclaimed[0].message
    for _ in range(20):  # demand returns: 40 rps at 0.02 card-s each needs 0.8 of a card
        d = cluster.deployments[notes.key]
        metrics.values[notes.key] = busy(40.0, d.replicas, d.slice_pct, 400.0)
        tick(clock, ctl)
    replicas, slice_pct = state()
    assert replicas * slice_pct >= 80


def preempt_for_a_burst(
    clock: FakeClock, cluster: JobCluster, metrics: FakeMetrics, ctl: Controller
) -> tuple[WorkloadRef, WorkloadRef]:
    """``chat`` learns its cost, then a burst preempts ``train`` (as in the first test)."""
    chat = cluster.add("chat", slo_annotations(slice_min="100"), replicas=1, slice_pct=100)
    train = cluster.add_job("train", pods=2, share_pct=100)
    for _ in range(20):
        metrics.values[chat.key] = busy(20.0, cluster.deployments[chat.key].replicas, 100, 60.0)
        tick(clock, ctl)
    for _ in range(8):
        d = cluster.deployments[chat.key]
        metrics.values[chat.key] = busy(120.0, d.replicas, 100, 900.0 if d.replicas < 3 else 80.0)
        tick(clock, ctl)
    assert suspended(cluster, train) and len(ctl.job_preemptions(train.key)) == 1
    return chat, train


def test_a_finished_job_keeps_its_record_while_it_is_in_the_snapshot() -> None:
    clock, cluster, metrics, ctl = make()
    _chat, train = preempt_for_a_burst(clock, cluster, metrics, ctl)
    record = ctl.state.find_job(train.key)
    assert record is not None and record.lost_gpu_h > 0
    cluster.jobs[train.key] = replace(cluster.jobs[train.key], phase=JobPhase.SUCCEEDED)
    for _ in range(4):
        tick(clock, ctl)
    assert ctl.state.find_job(train.key) is record
    assert len(ctl.job_preemptions(train.key)) == 1
    assert ctl.last_report is not None
    (status,) = [j for j in ctl.last_report.jobs if j.key == train.key]
    assert status.phase == "Succeeded" and status.preemptions_last_day == 1
    assert status.estimated_lost_gpu_h == record.lost_gpu_h > 0


def test_a_vanished_job_or_workload_is_forgotten_and_a_namesake_starts_afresh() -> None:
    clock, cluster, metrics, ctl = make()
    chat, train = preempt_for_a_burst(clock, cluster, metrics, ctl)
    cluster.fail_snapshot = True  # discovery failed: no evidence anything vanished
    del cluster.jobs[train.key]
    tick(clock, ctl)
    assert ctl.state.find_job(train.key) is not None
    cluster.fail_snapshot = False
    tick(clock, ctl)
    assert ctl.state.find_job(train.key) is None
    assert ctl.job_preemptions(train.key) == () and ctl.job_last_decision(train.key) is None
    assert ctl.last_report is not None and ctl.last_report.jobs == ()
    again = cluster.add_job("train", pods=2, share_pct=100)  # a new Job, the same name,
    cluster.jobs[again.key] = replace(cluster.jobs[again.key], phase=JobPhase.SUSPENDED)
    tick(clock, ctl)  # created suspended: nothing preempted it, whatever its namesake went through
    record = ctl.state.find_job(again.key)
    assert record is not None and record.preemptions_s == () and record.lost_gpu_h == 0.0
    assert record.last_preempted_s is None
    (status,) = ctl.last_report.jobs
    assert status.preemptions_last_day == 0 and status.last_decision is None
    assert chat.key in ctl.state.workloads
    del cluster.deployments[chat.key]
    tick(clock, ctl)
    assert chat.key not in ctl.state.workloads and ctl.last_report.workloads == ()


def test_a_failed_observe_reclaims_no_job_on_an_earlier_tick_s_measurement() -> None:
    clock, cluster, metrics, ctl = make()
    nb = add_notebook(cluster)
    metrics.values[nb.key] = WorkloadMetrics(gpu_util=0.01)  # idle from the first tick
    for _ in range(120):  # 30 minutes: reclaimable from the next measured tick on
        tick(clock, ctl)
    assert not suspended(cluster, nb)
    metrics.fail = True  # this tick measured nothing: no evidence the job is still idle
    tick(clock, ctl)
    assert not suspended(cluster, nb)
    assert ctl.last_report is not None
    assert any(e.startswith("observe:") for e in ctl.last_report.errors)
    metrics.fail = False  # measured idle again: reclaimed, its idle time kept
    tick(clock, ctl)
    assert suspended(cluster, nb)
