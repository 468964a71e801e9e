"""The soak's invariant checker on hand-made records: each invariant broken, and kept."""

from __future__ import annotations

import pytest

from controller.domain import Allocation, Reason
from sloscale.soak.invariants import Bounds, TickRecord, WorkloadTick, check
from sloscale.soak.ports import RetrainStart, ScaleChange

KEY = "demo/chat"
BOUNDS = {KEY: Bounds(1, 8, 10, 100)}
FOUR, TWO = Allocation(4, 50), Allocation(2, 50)


def ticks(
    n: int,
    *,
    fresh: bool = True,
    recommended: Allocation = TWO,
    start_s: float = 0.0,
) -> list[TickRecord]:
    """``n`` ticks 15 s apart, each with one workload tick."""
    return [
        TickRecord(start_s + 15.0 * i, (WorkloadTick(KEY, fresh, recommended),)) for i in range(n)
    ]


def down_at(
    records: list[TickRecord], after: Allocation = TWO, reason: Reason = Reason.SCALE_DOWN
) -> None:
    """The last record applies ``FOUR -> after``."""
    last = records[-1]
    change = ScaleChange(last.time_s, KEY, FOUR, after, reason)
    records[-1] = TickRecord(last.time_s, last.workloads, (change,))


def invariants(records: list[TickRecord]) -> list[str]:
    return [v.invariant for v in check(records, BOUNDS)]


def test_a_scale_down_after_a_whole_window_of_fresh_low_recommendations_is_kept() -> None:
    records = ticks(22)  # 0..315 s: the window (15, 315] holds 20 fresh ticks
    down_at(records)
    assert invariants(records) == []


@pytest.mark.parametrize(
    ("blind_at", "recommended", "why"),
    [
        (10, TWO, "no fresh complete data"),  # one blind tick 165 s before
        (21, TWO, "no fresh complete data"),  # the scale-down's own tick is blind
        (None, FOUR, "the recommendation was 4 x 50 %"),  # one tick recommended more
    ],
)
def test_a_scale_down_inside_a_bad_window_is_a_violation(
    blind_at: int | None, recommended: Allocation, why: str
) -> None:
    records = ticks(22)
    i = 10 if blind_at is None else blind_at
    records[i] = TickRecord(records[i].time_s, (WorkloadTick(KEY, blind_at is None, recommended),))
    down_at(records)
    (v,) = check(records, BOUNDS)
    assert v.invariant == "scale-down-window" and why in v.detail


def test_a_blind_tick_older_than_the_window_does_not_count() -> None:
    records = ticks(1, fresh=False) + ticks(21, start_s=15.0)  # blind at 0; down at 315
    down_at(records)
    assert invariants(records) == []


def test_a_scale_down_before_a_whole_window_was_seen_is_a_violation() -> None:
    records = ticks(5)
    down_at(records)
    assert invariants(records) == ["scale-down-window"]


def test_a_rollback_of_a_failed_resize_is_no_scale_down() -> None:
    records = ticks(3, fresh=False)
    down_at(records, Allocation(4, 30), reason=Reason.RESIZE_FAILED)
    assert invariants(records) == []


def test_trimming_replicas_that_never_got_a_card_is_no_scale_down() -> None:
    records = ticks(3, fresh=False, recommended=FOUR)
    last = records[-1]
    pending = ScaleChange(last.time_s, KEY, FOUR, TWO, Reason.CAPACITY_LIMITED, placed_before=2)
    records[-1] = TickRecord(last.time_s, last.workloads, (pending,))
    assert invariants(records) == []
    serving = ScaleChange(last.time_s, KEY, FOUR, TWO, Reason.CAPACITY_LIMITED, placed_before=3)
    records[-1] = TickRecord(last.time_s, last.workloads, (serving,))
    assert invariants(records) == ["scale-down-window"]


@pytest.mark.parametrize(
    ("serving_after", "reason", "violation"),
    [
        (7.0, Reason.CAPACITY_LIMITED, False),  # 4 x 100 % -> 7 x 50 % at s_sat 50: 4 -> 7
        (3.0, Reason.CAPACITY_LIMITED, True),  # serves less: a scale-down
        (7.0, Reason.RESIZE, True),  # the planner's own choice: the window applies
        # at max-replicas the strongest allocation: 5 x 100 % -> 8 x 50 % at s_sat 50 serves
        # 8 replicas' worth for 5 (soak seed 1, t=10740 s, demo/vision); serving less is not
        (7.0, Reason.AT_MAX, False),
        (3.0, Reason.AT_MAX, True),
    ],
)
def test_a_capacity_fallback_that_serves_more_is_no_scale_down(
    serving_after: float, reason: Reason, violation: bool
) -> None:
    records = ticks(3, recommended=Allocation(7, 100))
    last = records[-1]
    change = ScaleChange(
        last.time_s, KEY, Allocation(4, 100), Allocation(7, 50), reason, 4, 4.0, serving_after
    )
    records[-1] = TickRecord(last.time_s, last.workloads, (change,))
    assert invariants(records) == (["scale-down-window"] if violation else [])


def test_a_smaller_slice_at_the_same_share_is_a_scale_down() -> None:
    records = ticks(3, fresh=False, recommended=Allocation(2, 100))
    down_at(records, Allocation(5, 40))  # FOUR -> 5 x 40 %: fewer share, smaller slice
    assert invariants(records) == ["scale-down-window"]


def test_bounds() -> None:
    records = ticks(22)
    down_at(records, Allocation(0, 50))  # below min-replicas 1
    assert "bounds" in invariants(records)


def test_capacity_gangs_and_priority() -> None:
    records = [
        TickRecord(0.0, overcommitted=("n1/0",)),
        TickRecord(15.0, broken_gangs=("demo/train",)),
        TickRecord(
            30.0,
            (WorkloadTick(KEY, True, TWO, denied_capacity=True, priority=100),),
            resumed=(("demo/train", 0), ("demo/urgent", 200)),
        ),
        TickRecord(45.0, (WorkloadTick(KEY, True, TWO, priority=100),), resumed=(("j", 0),)),
    ]
    assert invariants(records) == ["capacity", "gang", "priority"]


def test_retraining_at_most_once_per_cooldown() -> None:
    starts = [
        RetrainStart(0.0, KEY, "retrain-1"),
        RetrainStart(3600.0, KEY, "retrain-2"),  # inside the 6 h cooldown
        RetrainStart(30000.0, KEY, "retrain-3"),
    ]
    found = check([], BOUNDS, retrains=starts, cooldowns_s={KEY: 21600.0})
    assert [(v.invariant, v.time_s) for v in found] == [("retrain-once", 3600.0)]
