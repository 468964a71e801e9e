"""The memory a restarted controller needs, as one versioned JSON-able document.

A controller that restarts (a rollout, a crash, a new leader) with fresh memory decides as if
it had just met every workload: the stabilisation window, the headroom, the slice's last
resize and peak, the learnt capacity and the error budget all start empty, and it scales down
and resizes what the data does not justify (faults B5). This module turns that memory into a
plain document and back:

* per workload: the planner's memory (``PlannerMemory``: the window's recommendations, the
  headroom, ``SliceMemory``, and ``RollbackMemory``: the last good slice and the sizes backed
  off after a failed resize, so a restart does not retry a size that just failed), the
  learnt ``CapacityModel``, the error budget's buckets (with the SLO they count against),
  since when its slice has been settled, and the rates of the forecaster's short-term model
  (the last few ticks; its long-term model has a warm start from the metrics backend);
* per job: the times sloscale preempted it (the resume hysteresis).

Idle trackers are not kept: the controller cannot tell whether a workload stayed idle while it
was down, so after a restart an idle reclaim waits a whole idle period again.

``encode`` writes a ``StateSnapshot`` as a dict of JSON types; ``decode`` reads one back and
validates every field: a document of another version, or with any field missing, of the
wrong type or out of range, gives ``None`` and a warning (a cold start), never an exception.
Version 2 added ``rollback`` and ``rateMargin`` per workload; a version 1 document (an older
controller's) is still read, with no rollback memory and no rate margin, so an upgrade keeps
the rest of the memory.

An error budget's window is long (28 days by default: 8,064 buckets of 300 s), so a budget
with more than ``MAX_BUDGET_BUCKETS`` buckets is saved with adjacent buckets merged: each
merged bucket keeps its newest bucket's start, so it leaves the window at most one merged
width late, and the running sums are saved as they are (the budget's ``remaining()`` is the
saved one to the last bit).

Purely computational, no I/O: a ``StateSnapshotStore`` (``controller.ports``) keeps the
document, and ``controller.keeper`` moves it in and out of the loop's ``StateStore``.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from controller.capacity import CapacityModel
from controller.domain import Allocation, RolloutFailureReason, SloSpec
from controller.policy.inputs import PlannerMemory
from controller.policy.rollback import RollbackMemory, SliceBackoff
from controller.policy.slices import SliceMemory
from controller.slo import ErrorBudget

log = logging.getLogger("sloscale.persist")

KIND = "sloscale.io/controller-state"
VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 had no ``rollback`` per workload: read as no rollback memory."""
MAX_BUDGET_BUCKETS = 144
"""A saved budget has at most this many buckets (about 7 KB of JSON per workload): a 28-day
window's are merged 57 at a time (4.75 h)."""

T = TypeVar("T")
Bucket = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """An error budget and the SLO it counts against (the same requests are good only for the
    same latency target and quantile)."""

    latency_target_ms: float
    latency_quantile: float
    window_s: float
    objective_ratio: float
    bucket_s: float
    good: float
    total: float
    buckets: tuple[Bucket, ...]

    @staticmethod
    def of(budget: ErrorBudget, spec: SloSpec) -> BudgetSnapshot:
        good, total = budget.running_sums
        return BudgetSnapshot(
            spec.latency_target_ms,
            spec.latency_quantile,
            budget.window_s,
            budget.objective_ratio,
            budget.bucket_s,
            good,
            total,
            merged_buckets(budget.buckets(), budget.bucket_s, budget.window_s),
        )

    def fits(self, spec: SloSpec) -> bool:
        """Whether this budget counted against ``spec``'s SLO."""
        return (
            self.latency_target_ms == spec.latency_target_ms
            and self.latency_quantile == spec.latency_quantile
            and self.window_s == spec.window_s
            and self.objective_ratio == spec.objective_ratio
        )

    def restore(self) -> ErrorBudget:
        return ErrorBudget.restored(
            self.window_s,
            self.objective_ratio,
            self.buckets,
            good=self.good,
            total=self.total,
            bucket_s=self.bucket_s,
        )


@dataclass(frozen=True, slots=True)
class WorkloadSnapshot:
    """One workload's memory. ``slice_settled_s`` is ``inf`` while its slice rolls and
    ``-inf`` before its slice was seen (``WorkloadRecord``)."""

    memory: PlannerMemory = field(default_factory=PlannerMemory)
    capacity: CapacityModel = field(default_factory=CapacityModel)
    budget: BudgetSnapshot | None = None
    slice_pct: int | None = None
    slice_settled_s: float = -math.inf
    recent_rates: tuple[tuple[float, float | None], ...] = ()  # (time, rate; None: missing)


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """One job's memory: sloscale's preemptions of it, oldest first."""

    last_preempted_s: float | None = None
    preemptions_s: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """Every workload's and job's memory, by key (``namespace/name``), at ``saved_at_s``."""

    saved_at_s: float
    workloads: Mapping[str, WorkloadSnapshot] = field(default_factory=dict)
    jobs: Mapping[str, JobSnapshot] = field(default_factory=dict)

    def same_memory(self, other: StateSnapshot | None) -> bool:
        """Whether ``other`` remembers the same (whenever it was saved)."""
        return (
            other is not None
            and dict(self.workloads) == dict(other.workloads)
            and dict(self.jobs) == dict(other.jobs)
        )


def merged_buckets(
    buckets: Sequence[Bucket], bucket_s: float, window_s: float, limit: int = MAX_BUDGET_BUCKETS
) -> tuple[Bucket, ...]:
    """The buckets as they are when a full window needs at most ``limit``; else merged by
    fixed-width groups of whole buckets (aligned on absolute time, so a group's members do not
    change from one save to the next), each keeping its newest bucket's start."""
    per_window = math.ceil(window_s / bucket_s) + 1
    if per_window <= limit or len(buckets) <= 1:
        return tuple(buckets)
    width = bucket_s * math.ceil(per_window / limit)
    out: list[list[float]] = []
    group: float | None = None
    for start, good, total in buckets:
        g = math.floor(start / width)
        if out and g == group:
            out[-1][0] = start
            out[-1][1] += good
            out[-1][2] += total
        else:
            out.append([start, good, total])
            group = g
    return tuple((b[0], b[1], b[2]) for b in out)


# --- encode ---------------------------------------------------------------------------------


def encode(snapshot: StateSnapshot) -> dict[str, Any]:
    """The snapshot as JSON types (``json.dumps`` takes it as is)."""
    return {
        "kind": KIND,
        "version": VERSION,
        "savedAt": snapshot.saved_at_s,
        "workloads": {k: _encode_workload(w) for k, w in sorted(snapshot.workloads.items())},
        "jobs": {k: _encode_job(j) for k, j in sorted(snapshot.jobs.items())},
    }


def _encode_workload(w: WorkloadSnapshot) -> dict[str, Any]:
    m, c, s = w.memory, w.capacity, w.memory.slices
    settled = w.slice_settled_s if math.isfinite(w.slice_settled_s) else None
    return {
        "recommendations": [[t, a.replicas, a.slice_pct] for t, a in m.recommendations],
        "headroom": m.headroom,
        "rateMargin": m.rate_margin,
        "blindAt": m.blind_at_s,
        "lastResize": s.last_resize_s,
        "peakRate": s.peak_rate_rps,
        "peakAt": s.peak_at_s,
        "capacity": {
            "costCardSeconds": c.cost_card_s,
            "saturationPct": c.sat_pct,
            "exploredMaxPct": c.explored_max_pct,
            "serviceQuantileMult": c.service_quantile_mult,
            "waitShape": c.wait_shape,
            "latencySamples": c.latency_samples,
            "settleTicks": c.settle_ticks,
            "serialCostCardSeconds": c.serial_cost_card_s,
        },
        "budget": None if w.budget is None else _encode_budget(w.budget),
        "slice": None if w.slice_pct is None else {"pct": w.slice_pct, "settledAt": settled},
        "recentRates": [[t, rate] for t, rate in w.recent_rates],
        "rollback": {
            "lastGood": m.rollback.last_good_pct,
            "lastGoodMib": m.rollback.last_good_mib,
            "backoffs": [
                [b.slice_pct, b.until_s, b.backoff_s, str(b.reason)] for b in m.rollback.backoffs
            ],
        },
    }


def _encode_budget(b: BudgetSnapshot) -> dict[str, Any]:
    return {
        "latencyTargetMs": b.latency_target_ms,
        "latencyQuantile": b.latency_quantile,
        "window": b.window_s,
        "objective": b.objective_ratio,
        "bucket": b.bucket_s,
        "good": b.good,
        "total": b.total,
        "buckets": [list(x) for x in b.buckets],
    }


def _encode_job(j: JobSnapshot) -> dict[str, Any]:
    return {"lastPreempted": j.last_preempted_s, "preemptions": list(j.preemptions_s)}


# --- decode ---------------------------------------------------------------------------------


class CorruptSnapshotError(ValueError):
    """A field of the document is missing, of the wrong type or out of range."""


def decode(document: object) -> StateSnapshot | None:
    """The snapshot of a document ``encode`` wrote, or ``None`` (with a warning) when it is
    of another kind or version, or any field is invalid: the caller starts cold."""
    if document is None:
        return None
    try:
        return _decode(document)
    except CorruptSnapshotError as e:
        log.warning("saved controller state ignored, starting with fresh memory: %s", e)
        return None


def _decode(document: object) -> StateSnapshot:
    doc = _obj(document, "document")
    if doc.get("kind") != KIND:
        raise CorruptSnapshotError(f"not a {KIND} document (kind {doc.get('kind')!r})")
    version = doc.get("version")
    if (
        version not in READABLE_VERSIONS
        or not isinstance(version, int)
        or isinstance(version, bool)
    ):
        raise CorruptSnapshotError(f"unknown version {version!r} (this controller reads {VERSION})")
    workloads = _obj(doc.get("workloads"), "workloads")
    jobs = _obj(doc.get("jobs"), "jobs")
    return StateSnapshot(
        saved_at_s=_num(doc.get("savedAt"), "savedAt"),
        workloads={k: _decode_workload(_obj(v, k), k, version) for k, v in workloads.items()},
        jobs={k: _decode_job(_obj(v, k), k) for k, v in jobs.items()},
    )


def _decode_workload(d: Mapping[str, Any], key: str, version: int = VERSION) -> WorkloadSnapshot:
    p = f"workloads[{key}]"
    recs = tuple(
        _recommendation(r, f"{p}.recommendations[{i}]")
        for i, r in enumerate(_list(d.get("recommendations"), f"{p}.recommendations"))
    )
    if any(b[0] < a[0] for a, b in itertools.pairwise(recs)):
        raise CorruptSnapshotError(f"{p}.recommendations: not oldest first")
    slices = SliceMemory(
        last_resize_s=_opt(d.get("lastResize"), f"{p}.lastResize", _num),
        peak_rate_rps=_num(d.get("peakRate"), f"{p}.peakRate"),
        peak_at_s=_opt(d.get("peakAt"), f"{p}.peakAt", _num),
    )
    rollback, margin = RollbackMemory(), 0.0
    if version >= 2:
        rollback = _decode_rollback(_obj(d.get("rollback"), f"{p}.rollback"), f"{p}.rollback")
        margin = _num(d.get("rateMargin"), f"{p}.rateMargin", low=0.0)
    blind_at = _opt(d.get("blindAt"), f"{p}.blindAt", _num)  # absent before it was kept
    memory = PlannerMemory(
        recs, _num(d.get("headroom"), f"{p}.headroom"), slices, rollback, margin, blind_at
    )
    budget = _opt(d.get("budget"), f"{p}.budget", _decode_budget)
    slice_pct, settled = None, -math.inf
    if d.get("slice") is not None:
        sl = _obj(d.get("slice"), f"{p}.slice")
        slice_pct = _int(sl.get("pct"), f"{p}.slice.pct", low=1, high=100)
        at = _opt(sl.get("settledAt"), f"{p}.slice.settledAt", _num)
        settled = math.inf if at is None else at  # none: rolling
    return WorkloadSnapshot(
        memory=memory,
        capacity=_decode_capacity(_obj(d.get("capacity"), f"{p}.capacity"), f"{p}.capacity"),
        budget=budget,
        slice_pct=slice_pct,
        slice_settled_s=settled,
        recent_rates=tuple(
            _rate(r, f"{p}.recentRates[{i}]")
            for i, r in enumerate(_list(d.get("recentRates"), f"{p}.recentRates"))
        ),
    )


def _decode_rollback(d: Mapping[str, Any], p: str) -> RollbackMemory:
    def slice_pct(value: object, path: str) -> int:
        return _int(value, path, low=1, high=100)

    backoffs = tuple(
        _backoff(b, f"{p}.backoffs[{i}]")
        for i, b in enumerate(_list(d.get("backoffs"), f"{p}.backoffs"))
    )
    if len({b.slice_pct for b in backoffs}) != len(backoffs):
        raise CorruptSnapshotError(f"{p}.backoffs: a slice backed off twice")

    def mib(value: object, path: str) -> int:
        return _int(value, path, low=0)

    return RollbackMemory(
        _opt(d.get("lastGood"), f"{p}.lastGood", slice_pct),
        backoffs,
        _opt(d.get("lastGoodMib"), f"{p}.lastGoodMib", mib),
    )


def _backoff(value: object, path: str) -> SliceBackoff:
    b = _list(value, path)
    if len(b) != 4:
        raise CorruptSnapshotError(f"{path}: need [slice %, until, backoff s, reason]")
    try:
        reason = RolloutFailureReason(str(b[3]) if isinstance(b[3], str) else "")
    except ValueError:
        raise CorruptSnapshotError(f"{path}[3]: unknown reason {b[3]!r}") from None
    return SliceBackoff(
        _int(b[0], f"{path}[0]", low=1, high=100),
        _num(b[1], f"{path}[1]"),
        _num(b[2], f"{path}[2]", low=0.0, strict=True),
        reason,
    )


def _recommendation(value: object, path: str) -> tuple[float, Allocation]:
    r = _list(value, path)
    if len(r) != 3:
        raise CorruptSnapshotError(f"{path}: need [time, replicas, slice %]")
    replicas = _int(r[1], f"{path}[1]", low=0)
    return _num(r[0], f"{path}[0]"), Allocation(replicas, _int(r[2], f"{path}[2]", low=1, high=100))


def _rate(value: object, path: str) -> tuple[float, float | None]:
    r = _list(value, path)
    if len(r) != 2:
        raise CorruptSnapshotError(f"{path}: need [time, rate]")
    return _num(r[0], f"{path}[0]"), _opt(r[1], f"{path}[1]", _num)


def _decode_capacity(d: Mapping[str, Any], p: str) -> CapacityModel:
    def positive(value: object, path: str) -> float:
        return _num(value, path, low=0.0, strict=True)

    return CapacityModel(
        cost_card_s=_opt(d.get("costCardSeconds"), f"{p}.costCardSeconds", positive),
        sat_pct=_opt(d.get("saturationPct"), f"{p}.saturationPct", positive),
        explored_max_pct=_int(d.get("exploredMaxPct"), f"{p}.exploredMaxPct", low=0, high=100),
        service_quantile_mult=_opt(
            d.get("serviceQuantileMult"), f"{p}.serviceQuantileMult", positive
        ),
        wait_shape=positive(d.get("waitShape"), f"{p}.waitShape"),
        latency_samples=_int(d.get("latencySamples"), f"{p}.latencySamples", low=0),
        settle_ticks=_int(d.get("settleTicks"), f"{p}.settleTicks", low=0),
        serial_cost_card_s=_opt(  # absent before batching replicas were modelled (#28)
            d.get("serialCostCardSeconds"), f"{p}.serialCostCardSeconds", positive
        ),
    )


def _decode_budget(value: object, p: str) -> BudgetSnapshot:
    d = _obj(value, p)
    buckets = tuple(
        _bucket(b, f"{p}.buckets[{i}]")
        for i, b in enumerate(_list(d.get("buckets"), f"{p}.buckets"))
    )
    if any(b[0] <= a[0] for a, b in itertools.pairwise(buckets)):
        raise CorruptSnapshotError(f"{p}.buckets: not oldest first")
    quantile = _num(d.get("latencyQuantile"), f"{p}.latencyQuantile", low=0.0, strict=True)
    objective = _num(d.get("objective"), f"{p}.objective", low=0.0, strict=True)
    if quantile >= 1.0 or objective > 1.0:
        raise CorruptSnapshotError(f"{p}: quantile and objective are ratios under 1")
    return BudgetSnapshot(
        latency_target_ms=_num(d.get("latencyTargetMs"), f"{p}.latencyTargetMs", low=0.0),
        latency_quantile=quantile,
        window_s=_num(d.get("window"), f"{p}.window", low=0.0, strict=True),
        objective_ratio=objective,
        bucket_s=_num(d.get("bucket"), f"{p}.bucket", low=0.0, strict=True),
        good=_num(d.get("good"), f"{p}.good"),
        total=_num(d.get("total"), f"{p}.total"),
        buckets=buckets,
    )


def _bucket(value: object, path: str) -> Bucket:
    b = _list(value, path)
    if len(b) != 3:
        raise CorruptSnapshotError(f"{path}: need [start, good, total]")
    return _num(b[0], f"{path}[0]"), _num(b[1], f"{path}[1]"), _num(b[2], f"{path}[2]")


def _decode_job(d: Mapping[str, Any], key: str) -> JobSnapshot:
    p = f"jobs[{key}]"
    times = tuple(
        _num(t, f"{p}.preemptions[{i}]")
        for i, t in enumerate(_list(d.get("preemptions"), f"{p}.preemptions"))
    )
    if any(b < a for a, b in itertools.pairwise(times)):
        raise CorruptSnapshotError(f"{p}.preemptions: not oldest first")
    return JobSnapshot(
        last_preempted_s=_opt(d.get("lastPreempted"), f"{p}.lastPreempted", _num),
        preemptions_s=times,
    )


# --- field readers: each names the field it rejects -----------------------------------------


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise CorruptSnapshotError(f"{path}: not an object")
    return value


def _list(value: object, path: str) -> Sequence[object]:
    if not isinstance(value, list | tuple):
        raise CorruptSnapshotError(f"{path}: not a list")
    return value


def _num(value: object, path: str, *, low: float | None = None, strict: bool = False) -> float:
    """A finite number (an int is one, a bool is not), at least ``low`` (over it: ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CorruptSnapshotError(f"{path}: not a number: {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise CorruptSnapshotError(f"{path}: not finite")
    if low is not None and (out < low or (strict and out == low)):
        raise CorruptSnapshotError(f"{path}: {out} out of range")
    return out


def _int(value: object, path: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CorruptSnapshotError(f"{path}: not an integer: {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise CorruptSnapshotError(f"{path}: {value} out of range")
    return value


def _opt(value: object, path: str, read: Callable[[object, str], T]) -> T | None:
    return None if value is None else read(value, path)


__all__ = [
    "KIND",
    "MAX_BUDGET_BUCKETS",
    "READABLE_VERSIONS",
    "VERSION",
    "BudgetSnapshot",
    "CorruptSnapshotError",
    "JobSnapshot",
    "StateSnapshot",
    "WorkloadSnapshot",
    "decode",
    "encode",
    "merged_buckets",
]
