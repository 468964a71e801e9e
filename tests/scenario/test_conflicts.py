"""Another autoscaler on a managed Deployment (issue #24), through the loop.

An HPA, a KEDA ScaledObject or a Knative class on an ``auto`` Deployment: the workload is held
with reason ``ConflictingAutoscaler`` naming it (decisions, API, ``/metrics``, one Warning
Event), while the others are planned on the same tick as if it were not there.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

from controller.conflicts import conflicts_by_workload
from controller.domain import OtherAutoscaler, Reason, WorkloadMetrics, WorkloadRef
from controller.loop import Controller, LoopConfig
from sloscale.api import create_app
from sloscale.telemetry import MetricsRecorder
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

HPA = "HorizontalPodAutoscaler"


def busy(rate: float, latency_ms: float = 200.0) -> WorkloadMetrics:
    util = 0.02 * rate / 0.5
    return WorkloadMetrics(
        request_rate_rps=rate, latency_ms=latency_ms, good_ratio=1.0, gpu_util=util, gpu_busy=util
    )


def make(dry_run: bool = False) -> tuple[FakeClock, FakeCluster, FakeMetrics, Controller]:
    clock = FakeClock(1000.0)
    cluster, metrics = FakeCluster(clock), FakeMetrics()
    return clock, cluster, metrics, Controller(cluster, metrics, clock, LoopConfig(dry_run=dry_run))


def surge(clock: FakeClock, cluster: FakeCluster, metrics: FakeMetrics, ctl: Controller) -> None:
    """Three quiet ticks, then a load no single replica can serve, on every workload."""
    for tick in range(4):
        for key in cluster.deployments:
            metrics.values[key] = busy(60.0, 900.0) if tick == 3 else busy(5.0)
        clock.advance(15.0)
        ctl.tick()


def test_an_hpa_holds_its_deployment_and_the_others_are_planned() -> None:
    clock, cluster, metrics, ctl = make()
    fought = cluster.add("fought", slo_annotations(slice_min="50", slice_max="50"))
    free = cluster.add("free", slo_annotations(slice_min="50", slice_max="50"))
    cluster.autoscalers.append(OtherAutoscaler(HPA, "default/fought-hpa", fought))
    surge(clock, cluster, metrics, ctl)
    assert cluster.deployments[free.key].replicas > 1  # the neighbour is planned and scales
    assert cluster.deployments[fought.key].replicas == 1
    assert all(a.ref.key != fought.key for p in cluster.applied for a in p.scale)
    report = ctl.last_report
    assert report is not None
    (held,) = [d for d in report.decisions if d.target == fought.key]
    assert held.reason is Reason.CONFLICTING_AUTOSCALER
    assert "HorizontalPodAutoscaler default/fought-hpa" in held.message
    assert held.desired == held.current  # fail static: what runs stays
    # API: the last decision names the other autoscaler
    app = create_app(ctl, MetricsRecorder())
    body = TestClient(app).get("/api/v1/workloads").json()
    shown = next(w for w in body["workloads"] if w["workload"] == fought.key)
    assert shown["last_decision"]["reason"] == "ConflictingAutoscaler"
    assert "fought-hpa" in shown["last_decision"]["message"]


def test_the_hold_reaches_metrics() -> None:
    clock, cluster, metrics, _ = make()
    recorder = MetricsRecorder()
    ctl = Controller(cluster, metrics, clock, recorders=[recorder])
    ref = cluster.add("fought", slo_annotations())
    cluster.autoscalers.append(OtherAutoscaler("ScaledObject", "default/so", ref))
    metrics.values[ref.key] = busy(5.0)
    clock.advance(15.0)
    ctl.tick()
    value = recorder.registry.get_sample_value
    assert value("sloscale_decisions_total", {"reason": "ConflictingAutoscaler"}) == 1.0
    labels = {"workload": ref.key, "type": "ScalingActive", "reason": "ConflictingAutoscaler"}
    assert value("sloscale_workload_condition", labels) == 0.0  # ScalingActive is false


def test_one_warning_event_when_the_hold_starts_and_when_its_cause_changes() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("fought", slo_annotations())
    cluster.autoscalers.append(OtherAutoscaler(HPA, "default/a", ref))
    metrics.values[ref.key] = busy(5.0)
    notices = []
    for tick in range(4):
        if tick == 2:  # a second autoscaler appears: said again, naming both
            cluster.autoscalers.append(OtherAutoscaler("ScaledObject", "default/b", ref))
        clock.advance(15.0)
        ctl.tick()
        applied = cluster.applied[-1] if cluster.applied else None
        notices.append(list(applied.notices) if applied is not None else [])
        cluster.applied.clear()
    assert [len(n) for n in notices] == [1, 0, 1, 0]
    assert notices[2][0].reason is Reason.CONFLICTING_AUTOSCALER
    assert "HorizontalPodAutoscaler default/a, ScaledObject default/b" in notices[2][0].message


def test_once_the_other_autoscaler_is_gone_the_workload_is_planned_again() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("fought", slo_annotations())
    cluster.autoscalers.append(OtherAutoscaler(HPA, "default/a", ref))
    metrics.values[ref.key] = busy(5.0)
    clock.advance(15.0)
    (d,) = ctl.tick().decisions
    assert d.reason is Reason.CONFLICTING_AUTOSCALER
    cluster.autoscalers.clear()
    clock.advance(15.0)
    (d,) = ctl.tick().decisions
    assert d.reason is not Reason.CONFLICTING_AUTOSCALER


def test_recommend_and_off_are_not_held() -> None:
    """``recommend`` writes nothing (the way to compare with the HPA in place); ``off`` is
    left to the other autoscaler."""
    clock, cluster, metrics, ctl = make()
    advised = cluster.add("advised", slo_annotations(mode="recommend"))
    off = cluster.add("off", slo_annotations(mode="off"))
    for ref in (advised, off):
        cluster.autoscalers.append(OtherAutoscaler(HPA, f"default/{ref.name}", ref))
        metrics.values[ref.key] = busy(5.0)
    clock.advance(15.0)
    reasons = {d.target: d.reason for d in ctl.tick().decisions}
    assert reasons[off.key] is Reason.NOT_MANAGED
    assert reasons[advised.key] is not Reason.CONFLICTING_AUTOSCALER


def test_a_failing_list_of_autoscalers_is_a_tick_error() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("web", slo_annotations())
    metrics.values[ref.key] = busy(5.0)
    cluster.autoscaler_errors = ["horizontalpodautoscalers.autoscaling: 403 Forbidden"]
    clock.advance(15.0)
    report = ctl.tick()
    assert cluster.autoscaler_errors[0] in report.errors  # said, not read as "none"
    (d,) = report.decisions
    assert d.reason is not Reason.CONFLICTING_AUTOSCALER  # no conflict known: planned


# --- the pure matching ---------------------------------------------------------------------


def test_only_managed_deployments_are_matched() -> None:
    web, job = WorkloadRef("ml", "web"), WorkloadRef("ml", "web", "StatefulSet")
    other = WorkloadRef("ml", "other")
    found = conflicts_by_workload(
        [
            OtherAutoscaler(HPA, "ml/b", web),
            OtherAutoscaler(HPA, "ml/a", web),
            OtherAutoscaler(HPA, "ml/s", job),  # a StatefulSet of the same name: not ours
            OtherAutoscaler(HPA, "ml/o", other),  # a Deployment sloscale does not manage
        ],
        {"ml/web"},
    )
    assert {k: [o.name for o in v] for k, v in found.items()} == {"ml/web": ["ml/a", "ml/b"]}


def test_a_replica_that_followed_says_the_hold_once_it_leads() -> None:
    """A follower (``sloscale run --leader-elect``) decides in shadow mode: its notice is not
    written. Once it leads, it says the hold, as a restarted controller would."""
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("fought", slo_annotations())
    cluster.autoscalers.append(OtherAutoscaler(HPA, "default/a", ref))
    metrics.values[ref.key] = busy(5.0)
    base = ctl.config
    notices = []
    for tick in range(4):
        ctl.config = replace(base, dry_run=tick < 2)  # following, then leading
        clock.advance(15.0)
        ctl.tick()
        notices.append([n for p in cluster.applied for n in p.notices])
        cluster.applied.clear()
    assert [len(n) for n in notices] == [1, 0, 1, 0]
    assert notices[2][0].reason is Reason.CONFLICTING_AUTOSCALER
