"""The invariants a soak checks on every tick, over records of what each tick saw and did.

The checker is pure: it reads ``TickRecord``s (built by ``sloscale.soak.runner`` from the
ports and the simulator's ground truth) and returns the ``Violation``s. The invariants:

- ``scale-down-window``: a scale-down (fewer replicas or a smaller slice) is applied only
  if every tick of the preceding stabilisation window (``window_s``: the planner's
  ``scale_down_delay_s``, 300 s; an on/off service's is longer, so this is the weakest bound
  that holds for every service) had fresh, complete data for that workload and recommended
  at most the new size (in share: replicas x slice, the planner's measure). A tick is
  *fresh and complete* when discovery succeeded, the metrics source returned the
  workload's rate and latency, and no fault had degraded them (an outage, a partial scrape,
  NaN or stale series); the window's ticks are those a controller ran (a leader handover
  may skip one), and the soak must have ticked for the whole window. Excluded: a
  ``ResizeFailed`` rollback, which restores the last good slice of a resize whose pods are
  not ready: the pods it replaces serve nothing, so it removes no serving capacity; and a
  ``CapacityLimited`` fallback of the fit stage, when the pool does not hold the size the
  workload wants, or an ``AtMax`` allocation, when max-replicas does not, that removes no
  serving capacity: a trim of replicas down to the pods placed on a card (those it removes
  are Pending), or more replicas of a smaller slice that serve more than before (in the
  simulator's ground truth: a slice past the model's saturation share buys nothing,
  ``ports.serving_units``);
- ``bounds``: every applied change keeps replicas within min/max and the slice within
  slice-min/slice-max;
- ``capacity``: after every tick no card holds more share or memory than it has;
- ``priority``: no job is resumed (or admitted) on a tick where a workload of a higher
  priority was denied for capacity (its ``CapacityAvailable`` condition false);
- ``gang``: after every tick each job has all of its pods placed or none;
- ``retrain-once``: per model, retraining Jobs are created at least its cooldown apart, so a
  trigger (and a restart or leader change while it is handled) yields one retraining.

Purely computational.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.domain import Allocation, Reason
from sloscale.soak.ports import RetrainStart, ScaleChange

WINDOW_S = 300.0


@dataclass(frozen=True, slots=True)
class WorkloadTick:
    """What one tick saw and recommended for one workload."""

    key: str
    fresh: bool  # discovery ok, rate and latency returned, no fault degrading them
    recommended: Allocation | None  # this tick's entry in the scale-down window
    denied_capacity: bool = False
    priority: int = 0


@dataclass(frozen=True, slots=True)
class TickRecord:
    """One controller tick: what it saw, what the cluster carried out, the state after."""

    time_s: float
    workloads: tuple[WorkloadTick, ...] = ()
    changes: tuple[ScaleChange, ...] = ()
    resumed: tuple[tuple[str, int], ...] = ()  # jobs resumed or admitted, with priority
    overcommitted: tuple[str, ...] = ()  # cards holding more than they have, after the tick
    broken_gangs: tuple[str, ...] = ()  # jobs with some but not all pods placed

    def workload(self, key: str) -> WorkloadTick | None:
        return next((w for w in self.workloads if w.key == key), None)


@dataclass(frozen=True, slots=True)
class Bounds:
    min_replicas: int
    max_replicas: int
    slice_min_pct: int = 10
    slice_max_pct: int = 100


@dataclass(frozen=True, slots=True)
class Violation:
    time_s: float
    invariant: str
    target: str
    detail: str

    def __str__(self) -> str:
        return f"t={self.time_s:.0f} s {self.invariant} {self.target}: {self.detail}"


def is_scale_down(before: Allocation, after: Allocation) -> bool:
    return after.replicas < before.replicas or after.slice_pct < before.slice_pct


WANTS_MORE = frozenset({Reason.CAPACITY_LIMITED, Reason.AT_MAX})
"""Reasons that say the workload wanted more than it got: the pool did not hold its size
(``CapacityLimited``), or max-replicas did not (``AtMax``: the strongest allocation within
it). Such a change to more replicas of a smaller slice is a scale-up in what is served."""


def removes_serving(change: ScaleChange) -> bool:
    """A scale-down the window rule applies to: not a ``ResizeFailed`` rollback, nor a change
    that wanted more (``WANTS_MORE``) and removes no serving capacity: a trim of replicas to
    the pods on a card, or more replicas of a smaller slice that serve more than before (the
    pool or max-replicas does not hold the larger size the workload wants)."""
    if not is_scale_down(change.before, change.after) or change.reason is Reason.RESIZE_FAILED:
        return False
    if change.reason in WANTS_MORE and (
        change.serving_before is not None
        and change.serving_after is not None
        and change.serving_after >= change.serving_before
    ):
        return False
    same_slice = change.after.slice_pct == change.before.slice_pct
    unplaced_only = change.placed_before is not None and change.after.replicas >= (
        change.placed_before
    )
    return not (same_slice and unplaced_only)


def check(
    records: Sequence[TickRecord],
    bounds: Mapping[str, Bounds],
    *,
    retrains: Sequence[RetrainStart] = (),
    cooldowns_s: Mapping[str, float] | None = None,
    window_s: float = WINDOW_S,
) -> list[Violation]:
    """Every violation of the invariants in ``records``, in time order."""
    out: list[Violation] = []
    for i, record in enumerate(records):
        for change in record.changes:
            out += _bounds(change, bounds.get(change.key))
            if removes_serving(change):
                out += _window(records, i, change, window_s)
        out += _priority(record)
        out += [
            Violation(record.time_s, "capacity", card, "placed beyond the card's capacity")
            for card in record.overcommitted
        ]
        out += [
            Violation(record.time_s, "gang", job, "some but not all of its pods placed")
            for job in record.broken_gangs
        ]
    out += _retrain_once(retrains, cooldowns_s or {})
    return sorted(out, key=lambda v: v.time_s)


def _bounds(change: ScaleChange, b: Bounds | None) -> list[Violation]:
    if b is None:
        return []
    a = change.after
    if b.min_replicas <= a.replicas <= b.max_replicas and (
        b.slice_min_pct <= a.slice_pct <= b.slice_max_pct
    ):
        return []
    detail = (
        f"{a.replicas} x {a.slice_pct} % outside replicas {b.min_replicas}..{b.max_replicas}, "
        f"slice {b.slice_min_pct}..{b.slice_max_pct} %"
    )
    return [Violation(change.time_s, "bounds", change.key, detail)]


def _window(
    records: Sequence[TickRecord], i: int, change: ScaleChange, window_s: float
) -> list[Violation]:
    """The scale-down window rule for ``change``, applied on tick ``records[i]``."""
    now = records[i].time_s
    what = (
        f"{change.before.replicas} x {change.before.slice_pct} % -> "
        f"{change.after.replicas} x {change.after.slice_pct} % ({change.reason})"
    )
    if records[0].time_s > now - window_s:
        return [Violation(now, "scale-down-window", change.key, f"{what} before a whole window")]
    j = i
    while j >= 0 and records[j].time_s > now - window_s:
        w = records[j].workload(change.key)
        age_s = now - records[j].time_s
        if w is None or not w.fresh:
            why = f"{what}: no fresh complete data {age_s:.0f} s before"
            return [Violation(now, "scale-down-window", change.key, why)]
        rec = w.recommended
        if rec is None or rec.share_pct > change.after.share_pct:
            said = "nothing" if rec is None else f"{rec.replicas} x {rec.slice_pct} %"
            why = f"{what}: {age_s:.0f} s before the recommendation was {said}"
            return [Violation(now, "scale-down-window", change.key, why)]
        j -= 1
    return []


def _priority(record: TickRecord) -> list[Violation]:
    denied = [w for w in record.workloads if w.denied_capacity]
    if not denied or not record.resumed:
        return []
    top = max(denied, key=lambda w: w.priority)
    return [
        Violation(
            record.time_s,
            "priority",
            job,
            f"resumed at priority {priority} while {top.key} (priority {top.priority}) "
            "was denied for capacity",
        )
        for job, priority in record.resumed
        if priority < top.priority
    ]


def _retrain_once(
    retrains: Sequence[RetrainStart], cooldowns_s: Mapping[str, float]
) -> list[Violation]:
    out = []
    last: dict[str, RetrainStart] = {}
    for r in sorted(retrains, key=lambda r: r.time_s):
        before = last.get(r.model)
        cooldown_s = cooldowns_s.get(r.model, 0.0)
        if before is not None and r.time_s - before.time_s < cooldown_s:
            detail = (
                f"{r.job} created {r.time_s - before.time_s:.0f} s after {before.job} "
                f"(cooldown {cooldown_s:.0f} s)"
            )
            out.append(Violation(r.time_s, "retrain-once", r.model, detail))
        last[r.model] = r
    return out


__all__ = [
    "WINDOW_S",
    "Bounds",
    "TickRecord",
    "Violation",
    "WorkloadTick",
    "check",
    "is_scale_down",
    "removes_serving",
]
