"""The loop's typed state: one record per workload and per job, forgotten when they vanish."""

import dataclasses

import pytest

from controller.capacity import CapacityModel
from controller.domain import Decision, JobSpec, Reason, SloSpec
from controller.state import (
    JOB_HISTORY_S,
    JobRecord,
    ParsedJob,
    ParsedSlo,
    StateStore,
    WorkloadRecord,
)


def test_records_are_created_once_and_found_later() -> None:
    store = StateStore()
    assert store.find_workload("ns/a") is None and store.find_job("ns/j") is None
    a = store.workload("ns/a")
    assert store.workload("ns/a") is a and store.find_workload("ns/a") is a
    j = store.job("ns/j")
    assert store.job("ns/j") is j and store.find_job("ns/j") is j
    assert list(store.workloads) == ["ns/a"] and list(store.jobs) == ["ns/j"]


def test_a_workload_and_a_job_of_the_same_name_have_separate_records() -> None:
    store = StateStore()
    store.workload("ns/x").idle_since_s = 5.0
    assert store.job("ns/x").idle_since_s is None
    store.forget_missing(workloads=["ns/x"], jobs=[])
    assert store.find_workload("ns/x") is not None and store.find_job("ns/x") is None


def test_forget_missing_drops_vanished_workloads_and_keeps_the_order_of_the_rest() -> None:
    store = StateStore()
    for key in ("ns/a", "ns/b", "ns/c"):
        store.workload(key).capacity = CapacityModel()
    store.forget_missing(workloads=["ns/c", "ns/a"], jobs=[])
    assert list(store.workloads) == ["ns/a", "ns/c"]
    assert store.find_workload("ns/b") is None
    assert store.workload("ns/b").parsed is None  # back again: a fresh record


def test_forget_missing_drops_vanished_jobs_with_their_history() -> None:
    store = StateStore()
    store.job("ns/gone").preempted(100.0)
    store.job("ns/gone").lost_gpu_h = 1.5
    store.job("ns/kept").preempted(200.0)
    store.forget_missing(workloads=[], jobs=iter(["ns/kept"]))  # any iterable of keys
    assert list(store.jobs) == ["ns/kept"]
    assert store.job("ns/kept").preemptions_s == (200.0,)
    again = store.job("ns/gone")  # a new Job under the same name starts afresh
    assert again.preemptions_s == () and again.last_preempted_s is None
    assert again.lost_gpu_h == 0.0


def test_the_views_are_read_only() -> None:
    store = StateStore()
    store.workload("ns/a")
    with pytest.raises(TypeError):
        store.workloads["ns/b"] = WorkloadRecord()  # type: ignore[index]
    with pytest.raises(TypeError):
        store.jobs["ns/j"] = JobRecord()  # type: ignore[index]


def test_a_preemption_history_keeps_one_day() -> None:
    record = JobRecord()
    record.preempted(0.0)
    record.preempted(1000.0)
    assert record.last_preempted_s == 1000.0
    assert record.preemptions_s == (0.0, 1000.0)
    assert record.preemptions_within(JOB_HISTORY_S) == (1000.0,)
    assert record.preemptions_within(JOB_HISTORY_S, window_s=2 * JOB_HISTORY_S) == (0.0, 1000.0)
    record.preempted(JOB_HISTORY_S + 500.0)  # the first is a day old: dropped
    assert record.preemptions_s == (1000.0, JOB_HISTORY_S + 500.0)
    record.preempted(JOB_HISTORY_S + 1000.0)  # exactly a day after the second: dropped too
    assert record.preemptions_s == (JOB_HISTORY_S + 500.0, JOB_HISTORY_S + 1000.0)


def test_specs_and_errors_come_from_the_parsed_annotations() -> None:
    record = WorkloadRecord()
    assert record.spec is None and record.errors == ()
    spec = SloSpec(latency_target_ms=200.0)
    record.parsed = ParsedSlo({"sloscale.io/enabled": "true"}, spec, ())
    assert record.spec is spec and record.errors == ()
    job = JobRecord()
    assert job.spec is None
    job.parsed = ParsedJob({}, JobSpec(preemptible=True))
    assert job.spec == JobSpec(preemptible=True)


def test_values_in_the_records_are_immutable() -> None:
    parsed = ParsedSlo({}, None, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.spec = SloSpec(latency_target_ms=1.0)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ParsedJob({}, None).spec = JobSpec()  # type: ignore[misc]
    job = JobRecord()
    job.preempted(10.0)
    assert isinstance(job.preemptions_s, tuple)  # a history is replaced, never edited in place
    job.last_decision = Decision(10.0, "ns/j", Reason.PREEMPTED, "room")
    assert job.last_decision.reason is Reason.PREEMPTED
