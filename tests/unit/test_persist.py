"""The saved controller state (``controller.persist``): what it keeps, and that a document of
another version or with a bad field means a cold start with a warning, never a crash."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from controller.capacity import CapacityModel
from controller.domain import Allocation, RolloutFailureReason, SloSpec
from controller.forecast import ForecastBank, ForecastSettings
from controller.persist import (
    MAX_BUDGET_BUCKETS,
    VERSION,
    BudgetSnapshot,
    JobSnapshot,
    StateSnapshot,
    WorkloadSnapshot,
    decode,
    encode,
    merged_buckets,
)
from controller.policy.inputs import PlannerMemory
from controller.policy.rollback import RollbackMemory, SliceBackoff
from controller.policy.slices import SliceMemory
from controller.slo import ErrorBudget, SliSample

SPEC = SloSpec(latency_target_ms=200.0, window_s=3600.0)


def budget_with(samples: int, window_s: float = 3600.0, start_s: float = 0.0) -> ErrorBudget:
    budget = ErrorBudget(window_s, 0.99)
    for i in range(samples):
        t = start_s + 15.0 * i
        budget.add(SliSample(t, 0.3 * (i % 7) + 9.1 - (i % 3 == 0), 0.3 * (i % 7) + 9.1))
    return budget


ROLLBACK = RollbackMemory(
    50, (SliceBackoff(30, 400.0, 300.0, RolloutFailureReason.OOM_KILLED),), 8192
)  # 30 % failed at t=100: not chosen again before t=400


def snapshot() -> StateSnapshot:
    memory = PlannerMemory(
        ((100.0, Allocation(4, 50)), (115.0, Allocation(3, 50))),
        0.17,
        SliceMemory(last_resize_s=40.0, peak_rate_rps=61.5, peak_at_s=115.0),
        ROLLBACK,
        0.35,
        110.0,  # blind at t=110: no scale-down before t=410
    )
    capacity = CapacityModel(0.021, 73.0, 60, 2.2, 1.3, 40, 1, serial_cost_card_s=0.004)
    budget = BudgetSnapshot.of(budget_with(30), SPEC)
    return StateSnapshot(
        120.0,
        {
            "ml/chat": WorkloadSnapshot(
                memory, capacity, budget, 50, 90.0, ((100.0, 3.5), (115.0, None))
            )
        },
        {"ml/train": JobSnapshot(80.0, (20.0, 80.0))},
    )


def document() -> dict[str, Any]:
    out = json.loads(json.dumps(encode(snapshot())))
    assert isinstance(out, dict)
    return out


def test_a_snapshot_survives_json() -> None:
    assert decode(document()) == snapshot()


def test_a_document_without_the_blind_tick_reads_as_never_blind() -> None:
    doc = document()
    del doc["workloads"]["ml/chat"]["blindAt"]  # saved before it was kept
    restored = decode(doc)
    assert restored is not None
    assert restored.workloads["ml/chat"].memory.blind_at_s is None


def test_a_document_without_a_serial_cost_reads_as_not_learnt() -> None:
    doc = document()
    del doc["workloads"]["ml/chat"]["capacity"]["serialCostCardSeconds"]  # before #28's batching
    restored = decode(doc)
    assert restored is not None
    assert restored.workloads["ml/chat"].capacity.serial_cost_card_s is None


def test_a_rolling_slice_and_an_unseen_one_survive() -> None:
    rolling = WorkloadSnapshot(slice_pct=40, slice_settled_s=math.inf)
    unseen = WorkloadSnapshot()
    saved = StateSnapshot(1.0, {"a/rolling": rolling, "a/unseen": unseen})
    assert decode(json.loads(json.dumps(encode(saved), allow_nan=False))) == saved


def test_a_restored_budget_goes_on_exactly_as_the_saved_one() -> None:
    live = budget_with(100)
    saved = decode(
        json.loads(
            json.dumps(
                encode(
                    StateSnapshot(
                        0.0, {"a/b": WorkloadSnapshot(budget=BudgetSnapshot.of(live, SPEC))}
                    )
                )
            )
        )
    )
    assert saved is not None and saved.workloads["a/b"].budget is not None
    restored = saved.workloads["a/b"].budget.restore()
    assert restored.remaining() == live.remaining()
    for i in range(100, 400):  # past the window: the old buckets drop out of both alike
        sample = SliSample(15.0 * i, 8.0 if i % 11 else 5.0, 10.0)
        live.add(sample)
        restored.add(sample)
        assert restored.remaining() == live.remaining()
        assert restored.buckets() == live.buckets()


def test_a_long_window_is_saved_in_merged_buckets_with_its_sums_kept() -> None:
    window_s = 28 * 86400.0
    live = budget_with(12 * 240, window_s)  # 12 h of ticks: 144 buckets of 300 s
    assert len(live.buckets()) == 144
    saved = BudgetSnapshot.of(live, SloSpec(latency_target_ms=200.0))
    assert len(saved.buckets) <= MAX_BUDGET_BUCKETS // 10
    assert sum(b[2] for b in saved.buckets) == pytest.approx(live.total)
    assert saved.buckets[-1][0] == live.buckets()[-1][0]  # each keeps its newest start
    assert saved.restore().remaining() == live.remaining()
    full = budget_with(30 * 24 * 240, window_s)  # more than a window: never over the limit
    assert len(BudgetSnapshot.of(full, SloSpec(latency_target_ms=200.0)).buckets) <= 144


def test_merging_is_stable_from_one_save_to_the_next() -> None:
    buckets = tuple((300.0 * i, 1.0, 1.0) for i in range(1000))
    a = merged_buckets(buckets[:900], 300.0, 28 * 86400.0)
    b = merged_buckets(buckets[:1000], 300.0, 28 * 86400.0)
    assert a[:-1] == b[: len(a) - 1]  # only the newest group grows


def test_a_budget_fits_only_the_slo_it_counted_against() -> None:
    saved = BudgetSnapshot.of(budget_with(10), SPEC)
    assert saved.fits(SPEC)
    assert not saved.fits(SloSpec(latency_target_ms=100.0, window_s=3600.0))
    assert not saved.fits(SloSpec(latency_target_ms=200.0, window_s=7200.0))
    assert not saved.fits(SloSpec(latency_target_ms=200.0, window_s=3600.0, objective_pct=99.9))


def _set(doc: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    *parents, last = path.split(".")
    node: Any = doc
    for step in parents:
        node = node[int(step)] if isinstance(node, list) else node[step]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("version", VERSION + 1, "unknown version"),
        ("version", "1", "unknown version"),
        ("kind", "ConfigMap", "not a sloscale.io/controller-state"),
        ("workloads", [], "workloads: not an object"),
        ("workloads.ml/chat.headroom", math.nan, "headroom: not finite"),
        ("workloads.ml/chat.headroom", "0.1", "headroom: not a number"),
        ("workloads.ml/chat.recommendations.0.1", -1, "recommendations[0][1]: -1 out of range"),
        ("workloads.ml/chat.recommendations.0.1", True, "not an integer"),
        ("workloads.ml/chat.recommendations.0.2", 150, "out of range"),
        ("workloads.ml/chat.recommendations.0.0", 500.0, "not oldest first"),
        ("workloads.ml/chat.recommendations.1", [115.0, 3], "need [time, replicas, slice %]"),
        ("workloads.ml/chat.capacity.costCardSeconds", 0.0, "costCardSeconds: 0.0 out of range"),
        ("workloads.ml/chat.capacity.waitShape", None, "waitShape: not a number"),
        ("workloads.ml/chat.capacity", None, "capacity: not an object"),
        ("workloads.ml/chat.budget.objective", 99.0, "ratios under 1"),
        ("workloads.ml/chat.budget.buckets.0", [0.0, 1.0], "need [start, good, total]"),
        ("workloads.ml/chat.slice.pct", 0, "slice.pct: 0 out of range"),
        ("workloads.ml/chat.peakRate", math.inf, "peakRate: not finite"),
        ("workloads.ml/chat.rateMargin", -0.1, "rateMargin: -0.1 out of range"),
        ("workloads.ml/chat.recentRates.0", [100.0], "need [time, rate]"),
        ("workloads.ml/chat.recentRates.1.1", "NaN", "recentRates[1][1]: not a number"),
        ("workloads.ml/chat.rollback", None, "rollback: not an object"),
        ("workloads.ml/chat.rollback.lastGood", 0, "lastGood: 0 out of range"),
        ("workloads.ml/chat.rollback.lastGoodMib", -1, "lastGoodMib: -1 out of range"),
        ("workloads.ml/chat.rollback.backoffs.0", [30, 400.0, 300.0], "need [slice %, until"),
        ("workloads.ml/chat.rollback.backoffs.0.2", 0.0, "backoffs[0][2]: 0.0 out of range"),
        ("workloads.ml/chat.rollback.backoffs.0.3", "Evicted", "unknown reason 'Evicted'"),
        ("jobs.ml/train.preemptions", [80.0, 20.0], "not oldest first"),
        ("jobs.ml/train.lastPreempted", "yesterday", "lastPreempted: not a number"),
    ],
)
def test_a_bad_field_means_a_cold_start_with_a_warning(
    path: str, value: object, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sloscale.persist"):
        assert decode(_set(document(), path, value)) is None
    assert named in caplog.text
    assert "starting with fresh memory" in caplog.text


@pytest.mark.parametrize("doc", ["{}", "[1, 2]", 42, {"kind": "sloscale.io/controller-state"}])
def test_what_is_no_document_at_all_means_a_cold_start(
    doc: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sloscale.persist"):
        assert decode(doc) is None
    assert caplog.records


def test_nothing_saved_yet_is_a_quiet_cold_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sloscale.persist"):
        assert decode(None) is None
    assert not caplog.records


def test_a_restored_forecaster_takes_the_ticks_of_its_short_term_window_only() -> None:
    bank = ForecastBank(ForecastSettings(short_term_ticks=4), interval_s=15.0)
    saved = tuple((t, 10.0 if t != 945.0 else None) for t in (900.0 + 15.0 * i for i in range(7)))
    bank.restore_recent("ml/chat", saved, now_s=1000.0)
    assert bank.recent_rates("ml/chat") == (
        (945.0, None),
        (960.0, 10.0),
        (975.0, 10.0),
        (990.0, 10.0),
    )
    bank.restore_recent("ml/chat", ((995.0, 1.0),), now_s=1000.0)  # it has ticks: no change
    assert len(bank.recent_rates("ml/chat")) == 4


def test_a_version_1_document_is_read_without_rollback_memory() -> None:
    # an older controller's document: everything but the rollback memory goes on
    old = document()
    old["version"] = 1
    del old["workloads"]["ml/chat"]["rollback"]
    del old["workloads"]["ml/chat"]["rateMargin"]
    restored = decode(old)
    assert restored is not None
    chat = restored.workloads["ml/chat"]
    assert chat.memory.rollback == RollbackMemory()
    assert chat.memory.rate_margin == 0.0
    assert chat.memory.headroom == snapshot().workloads["ml/chat"].memory.headroom


def test_a_version_2_document_needs_its_rollback_memory_and_rate_margin() -> None:
    for field in ("rollback", "rateMargin"):
        doc = document()
        del doc["workloads"]["ml/chat"][field]
        assert decode(doc) is None
