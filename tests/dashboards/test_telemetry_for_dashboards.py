"""The metrics the dashboards and rules read, recorded from tick reports and snapshots."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from controller.domain import (
    Card,
    ClusterSnapshot,
    Inventory,
    JobPhase,
    JobState,
    SliceAllocation,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.loop import Controller, LoopConfig
from controller.report import TickReport
from controller.slo import SliSample
from sloscale.telemetry import MetricsRecorder, fragmentation, pool_free_pct
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations
from tests.scenario.test_tick import busy


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


CARDS = (Card("n1", 0, 81920), Card("n1", 1, 81920), Card("n2", 0, 81920))


def _snapshot(
    t: float, allocations: tuple[SliceAllocation, ...], job_phase: JobPhase
) -> ClusterSnapshot:
    job = JobState(
        WorkloadRef("train", "bert", "Job"), {}, 2, 30, 1024, job_phase, started_at_s=0.0
    )
    return ClusterSnapshot(t, (), (job,), Inventory(CARDS, allocations))


ALLOCS = (
    SliceAllocation("train/bert", "bert-0", "n1/0", 30, 1024),
    SliceAllocation("train/bert", "bert-1", "n1/0", 30, 1024),
    SliceAllocation("other/x", "x-0", "n2/0", 100, 1024),
)


def test_free_share_and_fragmentation_of_the_pool() -> None:
    inv = Inventory(CARDS, ALLOCS)
    free = pool_free_pct(inv)
    assert free == {"n1/0": 40, "n1/1": 100, "n2/0": 0}
    # 40 of the 140 free points sit on a shared card: 40 / 140
    assert fragmentation(inv, free) == pytest.approx(40 / 140)
    assert fragmentation(Inventory(CARDS), pool_free_pct(Inventory(CARDS))) == 0.0


def test_pool_nodes_and_job_gpu_time() -> None:
    rec = MetricsRecorder()
    r = rec.registry
    rec.record_pool(_snapshot(0.0, ALLOCS, JobPhase.RUNNING))
    rec.record_pool(_snapshot(60.0, ALLOCS, JobPhase.SUSPENDED))
    rec.record_pool(_snapshot(120.0, (), JobPhase.SUSPENDED))
    # running for the first 60 s only: 2 pods × 0.3 card × 60 s = 36 card-seconds
    assert _value(r, "sloscale_job_gpu_card_seconds_total", namespace="train") == pytest.approx(36)
    assert _value(r, "sloscale_node_gpu_capacity_cards", node="n1") == 2.0
    assert _value(r, "sloscale_pool_gpu_capacity_cards") == 3.0
    assert _value(r, "sloscale_pool_gpu_free_cards") == 3.0  # the last snapshot is empty
    assert _value(r, "sloscale_pool_largest_free_slice_percent") == 100


def test_node_allocation_by_owner_kind() -> None:
    rec = MetricsRecorder()
    rec.record_pool(_snapshot(0.0, ALLOCS, JobPhase.RUNNING))
    r = rec.registry
    assert _value(r, "sloscale_node_gpu_allocated_cards", node="n1", kind="job") == 0.6
    assert _value(r, "sloscale_node_gpu_allocated_cards", node="n1", kind="inference") == 0.0
    assert _value(r, "sloscale_pool_gpu_fragmentation_ratio") == pytest.approx(40 / 140)


def test_sli_counters_changes_and_zeroed_series_after_ticks() -> None:
    clock = FakeClock(0.0)
    cluster = FakeCluster(clock)
    metrics = FakeMetrics()
    chat = cluster.add("chat", slo_annotations(slice_min="50", slice_max="50"), replicas=1)
    metrics.values[chat.key] = busy(5.0, 1, 50)
    rec = MetricsRecorder()
    ctl = Controller(cluster, metrics, clock, LoopConfig(), recorders=[rec])
    for _ in range(3):
        clock.advance(15)
        ctl.tick()
    r = rec.registry
    key = chat.key
    rate = metrics.values[key].request_rate_rps
    good = metrics.values[key].good_ratio
    assert rate is not None and good is not None
    # every tick counts its 15 s interval, the first one too: what the error budget counts
    total = _value(r, "sloscale_workload_requests_total", workload=key)
    assert total == pytest.approx(rate * 45)
    assert _value(r, "sloscale_workload_good_requests_total", workload=key) == pytest.approx(
        total * good
    )
    budget = ctl.state.workloads[key].budget
    assert budget is not None and (budget.total, budget.good) == (
        total,
        _value(r, "sloscale_workload_good_requests_total", workload=key),
    )
    assert _value(r, "sloscale_metrics_unavailable_total", workload=key) == 0
    assert _value(r, "sloscale_retrain_triggers_total", workload=key) == 0
    # a change counter is born at 0, not at its first increment: increase() sees the first
    # decision (the dashboards' annotations)
    assert _value(r, "sloscale_decision_changes_total", workload=key, reason="Resize") == 0
    assert _value(r, "sloscale_leader") == 1
    rec.set_leader(False)
    assert _value(r, "sloscale_leader") == 0


def test_sli_counters_are_the_loop_s_samples_and_count_what_the_budget_counts() -> None:
    clock = FakeClock(0.0)
    cluster = FakeCluster(clock)
    metrics = FakeMetrics()
    chat = cluster.add("chat", slo_annotations(slice_min="50", slice_max="50"), replicas=1)
    key = chat.key
    rec = MetricsRecorder()
    ctl = Controller(cluster, metrics, clock, LoopConfig(interval_s=15.0), recorders=[rec])
    r = rec.registry

    def tick(advance_s: float, m: WorkloadMetrics) -> TickReport:
        metrics.values[key] = m
        clock.advance(advance_s)
        return ctl.tick()

    report = tick(15, busy(4.0, 1, 50))
    assert report.sli_samples[key] == SliSample(15.0, 60.0, 60.0)  # 4 rps x 15 s, all good
    # a late tick still counts one interval, as the budget does (decisions read the budget)
    report = tick(40, replace(busy(4.0, 1, 50), good_ratio=0.5))
    assert report.sli_samples[key] == SliSample(55.0, 30.0, 60.0)
    # no good ratio read: no sample, and nothing counted
    report = tick(15, replace(busy(4.0, 1, 50), good_ratio=None))
    assert key not in report.sli_samples
    # the observe phase failed: no sample either
    metrics.fail = True
    report = tick(15, busy(4.0, 1, 50))
    assert report.sli_samples == {} and any(e.startswith("observe:") for e in report.errors)
    metrics.fail = False
    total = _value(r, "sloscale_workload_requests_total", workload=key)
    good = _value(r, "sloscale_workload_good_requests_total", workload=key)
    assert (total, good) == (120.0, 90.0)
    budget = ctl.state.workloads[key].budget
    assert budget is not None and (budget.total, budget.good) == (total, good)


def test_a_good_ratio_outside_0_1_never_runs_the_good_counter_backwards() -> None:
    rec = MetricsRecorder()
    clock = FakeClock(0.0)
    cluster = FakeCluster(clock)
    metrics = FakeMetrics()
    chat = cluster.add("chat", slo_annotations(), replicas=1)
    ctl = Controller(cluster, metrics, clock, LoopConfig(interval_s=15.0), recorders=[rec])
    for ratio, expected_good in ((1.2, 60.0), (-0.5, 60.0)):  # clipped to 1, then to 0
        metrics.values[chat.key] = replace(busy(4.0, 1, 50), good_ratio=ratio)
        clock.advance(15)
        ctl.tick()
        good = _value(rec.registry, "sloscale_workload_good_requests_total", workload=chat.key)
        assert good == expected_good
