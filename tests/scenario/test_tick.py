"""Multi-tick scenarios of the loop against in-memory ports and a fake clock."""

import math
from contextlib import AbstractContextManager

import pytest

from controller import loop
from controller.domain import Allocation, Reason, WorkloadMetrics
from controller.loop import Controller, LoopConfig
from controller.report import PHASES
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

INTERVAL_S = 15.0


def busy(rate: float, replicas: int, slice_pct: int, latency_ms: float = 200.0) -> WorkloadMetrics:
    """Metrics of a workload costing 0.02 card-seconds per request."""
    util = 0.02 * rate / replicas / (slice_pct / 100)
    return WorkloadMetrics(
        request_rate_rps=rate, latency_ms=latency_ms, good_ratio=1.0, gpu_util=util, gpu_busy=util
    )


def make(dry_run: bool = False) -> tuple[FakeClock, FakeCluster, FakeMetrics, Controller]:
    clock = FakeClock(1000.0)
    cluster = FakeCluster(clock)
    metrics = FakeMetrics()
    ctl = Controller(cluster, metrics, clock, LoopConfig(interval_s=INTERVAL_S, dry_run=dry_run))
    return clock, cluster, metrics, ctl


def run(clock: FakeClock, ctl: Controller, ticks: int) -> None:
    for _ in range(ticks):
        clock.advance(INTERVAL_S)
        ctl.tick()


def test_scales_up_when_load_rises_and_down_only_after_the_delay() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add(
        "chat", slo_annotations(slice_min="50", slice_max="50"), replicas=1, slice_pct=50
    )
    metrics.values[ref.key] = busy(5.0, 1, 50)
    run(clock, ctl, 4)  # learn the cost at low load
    metrics.values[ref.key] = busy(60.0, 1, 50, latency_ms=900.0)
    run(clock, ctl, 1)
    up = cluster.deployments[ref.key].replicas
    assert up >= 4  # 60 rps at 0.04 s per request at 50 %: far beyond one replica
    assert ctl.last_report is not None
    assert ctl.last_report.decisions[0].reason in (Reason.SCALE_UP, Reason.SCALE_UP_LIMITED)
    metrics.values[ref.key] = busy(5.0, up, 50)
    run(clock, ctl, 10)  # 150 s: inside the 300 s scale-down delay
    assert cluster.deployments[ref.key].replicas == up
    assert ctl.last_report.decisions[0].reason is Reason.SCALE_DOWN_STABILIZED
    run(clock, ctl, 12)  # past 300 s since the last high recommendation
    assert cluster.deployments[ref.key].replicas < up


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(WorkloadMetrics(), id="series-missing"),
        pytest.param(WorkloadMetrics(request_rate_rps=math.nan, latency_ms=math.nan), id="nan"),
    ],
)
def test_unavailable_metrics_hold_with_a_reason(broken: WorkloadMetrics) -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("chat", slo_annotations(), replicas=3, slice_pct=50)
    metrics.values[ref.key] = broken
    run(clock, ctl, 3)
    assert cluster.deployments[ref.key].replicas == 3
    assert ctl.last_report is not None
    assert [d.reason for d in ctl.last_report.decisions] == [Reason.METRICS_UNAVAILABLE]


def test_a_failing_metrics_backend_holds_every_workload_and_the_tick_survives() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("chat", slo_annotations(), replicas=3, slice_pct=50)
    metrics.fail = True
    run(clock, ctl, 2)
    report = ctl.last_report
    assert report is not None
    assert cluster.deployments[ref.key].replicas == 3
    assert any("observe" in e for e in report.errors)
    assert [d.reason for d in report.decisions] == [Reason.METRICS_UNAVAILABLE]
    metrics.fail = False
    metrics.values[ref.key] = busy(5.0, 3, 50)
    run(clock, ctl, 1)
    assert ctl.last_report.decisions[0].reason is not Reason.METRICS_UNAVAILABLE


def test_an_unreachable_cluster_is_reported_not_raised() -> None:
    clock, cluster, _, ctl = make()
    cluster.add("chat", slo_annotations())
    cluster.fail_snapshot = True
    run(clock, ctl, 1)
    assert ctl.last_report is not None
    assert any(e.startswith("discover") for e in ctl.last_report.errors)
    cluster.fail_snapshot = False
    cluster.fail_apply = True
    run(clock, ctl, 1)  # nothing to apply yet: still fine


def test_a_bad_annotation_skips_that_workload_and_serves_the_others() -> None:
    clock, cluster, metrics, ctl = make()
    bad = cluster.add("bad", slo_annotations(min_replicas="5", max_replicas="2"))
    good = cluster.add("good", slo_annotations(slice_min="50", slice_max="50"), replicas=1)
    metrics.values[good.key] = busy(5.0, 1, 50)
    run(clock, ctl, 3)
    metrics.values[good.key] = busy(60.0, 1, 50, latency_ms=900.0)
    run(clock, ctl, 1)
    assert cluster.deployments[good.key].replicas > 1
    assert cluster.deployments[bad.key].replicas == 1
    report = ctl.last_report
    assert report is not None
    invalid = [d for d in report.decisions if d.target == bad.key]
    assert invalid and invalid[0].reason is Reason.INVALID_SPEC
    assert "default/bad" in invalid[0].message and "min-replicas" in invalid[0].message
    status = {w.key: w for w in report.workloads}
    assert status[bad.key].errors


def test_dry_run_records_but_writes_nothing() -> None:
    clock, cluster, metrics, ctl = make(dry_run=True)
    ref = cluster.add("chat", slo_annotations(slice_min="50", slice_max="50"), replicas=1)
    metrics.values[ref.key] = busy(5.0, 1, 50)
    run(clock, ctl, 3)
    metrics.values[ref.key] = busy(60.0, 1, 50, latency_ms=900.0)
    run(clock, ctl, 1)
    assert cluster.deployments[ref.key].replicas == 1
    report = ctl.last_report
    assert report is not None and report.dry_run
    d = report.decisions[0]
    assert d.desired is not None and d.desired.replicas > 1 and not d.applied


def test_every_phase_is_timed() -> None:
    clock, cluster, _metrics, ctl = make()
    cluster.add("chat", slo_annotations())
    run(clock, ctl, 1)
    assert ctl.last_report is not None
    assert set(ctl.last_report.phase_s) == {
        "discover",
        "observe",
        "forecast",
        "plan",
        "retrain",
        "act",
        "record",
    }
    assert tuple(ctl.last_report.phase_s) == PHASES  # in the order the tick runs them


def test_each_phase_is_timed_exactly_once_per_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    entered: list[str] = []
    phase = loop._PhaseTimer.phase

    def spy(self: loop._PhaseTimer, name: str) -> AbstractContextManager[None]:
        entered.append(name)
        return phase(self, name)

    monkeypatch.setattr(loop._PhaseTimer, "phase", spy)
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("chat", slo_annotations(), replicas=1)
    metrics.values[ref.key] = busy(5.0, 1, 50)
    run(clock, ctl, 3)
    assert entered == list(PHASES) * 3
    cluster.fail_snapshot = True  # a failed tick still runs (and times) every phase once
    entered.clear()
    run(clock, ctl, 1)
    assert entered == list(PHASES)


def test_a_phase_cannot_be_timed_twice_in_one_tick() -> None:
    timer = loop._PhaseTimer()
    with timer.phase("plan"):
        pass
    with pytest.raises(RuntimeError, match="plan timed twice"), timer.phase("plan"):
        pass


def test_decisions_explain_the_current_and_desired_allocation() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add("chat", slo_annotations(), replicas=2, slice_pct=50)
    metrics.values[ref.key] = busy(5.0, 2, 50)
    run(clock, ctl, 1)
    d = ctl.last_report.decisions[0]
    assert d.current == Allocation(2, 50)
    assert d.message
