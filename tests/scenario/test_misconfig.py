"""Silent misconfiguration made loud (issue #24), through the loop as a cluster shows it.

A mistyped opt-in (``sloscale.io/enable``) is an ``InvalidSpec`` for that Deployment alone,
in the decisions and the API, and the Deployment is left alone.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from controller.domain import Reason, WorkloadMetrics
from controller.loop import Controller, LoopConfig
from sloscale.api import create_app
from sloscale.telemetry import MetricsRecorder
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations


def busy(rate: float, replicas: int, slice_pct: int, latency_ms: float = 200.0) -> WorkloadMetrics:
    util = 0.02 * rate / replicas / (slice_pct / 100)
    return WorkloadMetrics(
        request_rate_rps=rate, latency_ms=latency_ms, good_ratio=1.0, gpu_util=util, gpu_busy=util
    )


def make(dry_run: bool = False) -> tuple[FakeClock, FakeCluster, FakeMetrics, Controller]:
    clock = FakeClock(1000.0)
    cluster, metrics = FakeCluster(clock), FakeMetrics()
    return clock, cluster, metrics, Controller(cluster, metrics, clock, LoopConfig(dry_run=dry_run))


def test_a_mistyped_opt_in_is_an_invalid_spec_and_the_deployment_is_left_alone() -> None:
    clock, cluster, _metrics, ctl = make()
    typo = cluster.add("typo", {"sloscale.io/enable": "true", "sloscale.io/latency-target-ms": "1"})
    plain = cluster.add("plain", {"app": "web"})  # no sloscale.io key: not ours, not shown
    clock.advance(15.0)
    report = ctl.tick()
    (decision,) = report.decisions
    assert (decision.target, decision.reason) == (typo.key, Reason.INVALID_SPEC)
    assert "did you mean sloscale.io/enabled?" in decision.message
    assert [w.key for w in report.workloads] == [typo.key]
    assert cluster.applied == [] and cluster.deployments[plain.key].replicas == 1
    body = TestClient(create_app(ctl, MetricsRecorder())).get("/api/v1/workloads").json()
    (shown,) = body["workloads"]
    assert shown["workload"] == typo.key and not shown["valid"]
    assert "sloscale.io/enable" in str(shown["errors"])


def test_an_objective_given_as_a_ratio_holds_the_workload_with_a_hint() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("chat", slo_annotations(objective="0.99"))
    metrics.values[ref.key] = busy(5.0, 1, 50)
    clock.advance(15.0)
    (decision,) = ctl.tick().decisions
    assert decision.reason is Reason.INVALID_SPEC and "did you mean 99?" in decision.message


# --- sloscale.io/mode -----------------------------------------------------------------------


def surge(clock: FakeClock, cluster: FakeCluster, metrics: FakeMetrics, ctl: Controller) -> None:
    """Three quiet ticks, then a load no single replica can serve, on every workload."""
    for tick in range(4):
        for key in cluster.deployments:
            metrics.values[key] = (
                busy(60.0, 1, 50, latency_ms=900.0) if tick == 3 else busy(5.0, 1, 50)
            )
        clock.advance(15.0)
        ctl.tick()


def test_recommend_decides_and_explains_but_writes_nothing() -> None:
    clock, cluster, metrics, ctl = make()
    auto = cluster.add("auto", slo_annotations(slice_min="50", slice_max="50"))
    advised = cluster.add(
        "advised", slo_annotations(slice_min="50", slice_max="50", mode="recommend")
    )
    surge(clock, cluster, metrics, ctl)
    assert cluster.deployments[auto.key].replicas > 1  # the auto neighbour acts
    assert cluster.deployments[advised.key].replicas == 1
    assert all(a.ref.key != advised.key for p in cluster.applied for a in p.scale)
    report = ctl.last_report
    assert report is not None
    (d,) = [d for d in report.decisions if d.target == advised.key]
    assert d.desired is not None and d.desired.replicas > 1 and not d.applied
    assert d.reason in (Reason.SCALE_UP, Reason.SCALE_UP_LIMITED)
    assert [(c.reason, c.status) for c in d.conditions][-1] == (Reason.RECOMMEND_ONLY, False)
    body = TestClient(create_app(ctl, MetricsRecorder())).get("/api/v1/workloads").json()
    shown = {w["workload"]: w for w in body["workloads"]}[advised.key]
    assert shown["spec"]["mode"] == "recommend" and shown["state"]["desired"]["replicas"] > 1


def test_off_is_not_managed_and_says_so() -> None:
    clock, cluster, metrics, ctl = make()
    off = cluster.add("off", slo_annotations(mode="off"))
    surge(clock, cluster, metrics, ctl)
    assert cluster.applied == [] and cluster.deployments[off.key].replicas == 1
    report = ctl.last_report
    assert report is not None
    (d,) = report.decisions
    assert (d.target, d.reason, d.desired) == (off.key, Reason.NOT_MANAGED, None)
    assert "not managed" in d.message
    assert off.key not in report.sli_samples  # not even observed
    body = TestClient(create_app(ctl, MetricsRecorder())).get("/api/v1/workloads").json()
    (shown,) = body["workloads"]
    assert shown["spec"]["mode"] == "off"
    assert shown["last_decision"]["reason"] == "NotManaged"


def test_the_global_dry_run_still_writes_nothing_for_auto() -> None:
    clock, cluster, metrics, ctl = make(dry_run=True)
    ref = cluster.add("chat", slo_annotations(slice_min="50", slice_max="50", mode="auto"))
    surge(clock, cluster, metrics, ctl)
    assert cluster.deployments[ref.key].replicas == 1
    report = ctl.last_report
    assert report is not None and report.dry_run
    (d,) = report.decisions
    assert d.desired is not None and d.desired.replicas > 1 and not d.applied
