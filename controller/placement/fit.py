"""Fit: place every desired slice on the GPU inventory, preempting lower-priority jobs or
capping what does not fit.

Scale-downs release first; then workloads claim capacity by priority (ties by name, so the
outcome is deterministic), best-fit bin packing so fragmentation is real; idle jobs are
reclaimed; suspended jobs resume into what is left when the forecast over the resume horizon
leaves room. A resize is all-or-nothing: its attempt is a trial on the pool that is committed
or rolled back whole (preemptions made for it included). The result never needs more than the
pool holds. Purely computational.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from controller.domain import (
    PRIORITY_NAMES,
    Allocation,
    ClusterSnapshot,
    Condition,
    ConditionType,
    JobAction,
    JobPhase,
    Reason,
    SliceAllocation,
)
from controller.placement.pool import Slice, SlicePool, Trial
from controller.placement.preemption import (
    JobSlot,
    candidates,
    choose_victims,
    work_at_risk_gpu_s,
)
from controller.placement.resume import ResumeConfig, resume_reserve, resumes
from controller.policy.inputs import JobInput, WorkloadInput
from controller.policy.reclaim import idle_reclaimable, job_reclaim_message
from controller.policy.replicas import replicas_at_slice
from controller.policy.verdict import Proposal

CAPACITY = ConditionType.CAPACITY_AVAILABLE


@dataclass(frozen=True, slots=True)
class FitResult:
    """What *fit* decided: the proposals that fit, job actions, and where every slice goes.

    ``placements`` maps each workload and each job that runs after this tick (kept or
    resumed) to its slices as the planner placed them: a plan, not a promise of the
    scheduler's choice, but one that proves the plan fits card by card. Each job action
    carries its conditions (why it was preempted, reclaimed or resumed).
    """

    proposals: dict[str, Proposal]
    actions: list[JobAction]
    placements: dict[str, list[Slice]]
    removals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per workload that scales in: the pods to remove, emptiest cards first."""


@dataclass
class _Fit:
    """The state of one fit: the pool, the job slots and the tick's time."""

    pool: SlicePool
    slots: dict[str, JobSlot]
    now_s: float

    @contextmanager
    def trial(self) -> Iterator[Trial]:
        """A trial on the pool and the slots: rolled back whole unless committed (the jobs
        it preempted are not preempted after all)."""
        before = {k: (s.preempted, s.why) for k, s in self.slots.items()}

        def restore_slots() -> None:
            for key, (preempted, why) in before.items():
                self.slots[key].preempted, self.slots[key].why = preempted, why

        with self.pool.trial(on_rollback=restore_slots) as trial:
            yield trial


def fit(
    desired: Mapping[str, Proposal],
    inputs: Sequence[WorkloadInput],
    jobs: Sequence[JobInput],
    snapshot: ClusterSnapshot,
    cfg: ResumeConfig,
    fallbacks: Mapping[str, tuple[Allocation, ...]] | None = None,
) -> FitResult:
    """Place every desired slice; preempt lower-priority jobs or cap what does not fit."""
    owned: dict[str, list[Slice]] = {}
    for a in snapshot.inventory.allocations:
        owned.setdefault(a.owner, []).append(_slice(a))
    slots = {
        j.key: JobSlot(j, owned.get(j.key, []))
        for j in jobs
        if j.state.phase in (JobPhase.RUNNING, JobPhase.PENDING)
    }
    ctx = _Fit(SlicePool(snapshot.inventory), slots, snapshot.time_s)
    claims, removals = _release_scale_ins(desired, inputs, snapshot, ctx)
    out: dict[str, Proposal] = {}
    placements: dict[str, list[Slice]] = {}
    for inp, prop, held in sorted(claims, key=lambda c: (-c[0].spec.priority, c[0].key)):
        options = (fallbacks or {}).get(inp.key, ())
        out[inp.key], placements[inp.key] = _fit_one(inp, prop, held, options, ctx)
    actions = _job_actions(ctx, placements)
    resumed = resumes(jobs, ctx.pool, resume_reserve(inputs, desired, out, cfg), ctx.now_s, cfg)
    actions.extend(resumed.actions)
    placements.update(resumed.placements)
    return FitResult(out, actions, placements, removals)


Claim = tuple[WorkloadInput, Proposal, list[Slice]]
"""A workload, what it wants, and the slices it keeps before claiming more."""


def _release_scale_ins(
    desired: Mapping[str, Proposal],
    inputs: Sequence[WorkloadInput],
    snapshot: ClusterSnapshot,
    ctx: _Fit,
) -> tuple[list[Claim], dict[str, tuple[str, ...]]]:
    """Scale-downs release first, the pods on the emptiest cards (``drain_order``); returns
    each workload's claim and the pods each scale-in removes, in order."""
    pods: dict[str, list[SliceAllocation]] = {}
    for a in snapshot.inventory.allocations:
        pods.setdefault(a.owner, []).append(a)
    used_pct = snapshot.inventory.used_pct_by_card()
    claims: list[Claim] = []
    removals: dict[str, tuple[str, ...]] = {}
    for inp in inputs:
        prop = desired[inp.key]
        mine = [_slice(a) for a in pods.get(inp.key, [])]
        target = prop.allocation
        if target.slice_pct == inp.current.slice_pct:
            keep = drain_order(pods.get(inp.key, []), used_pct)
            drop = keep[target.replicas :]
            ctx.pool.release_all(_slice(a) for a in drop)
            mine = [_slice(a) for a in keep[: target.replicas]]
            if drop:
                removals[inp.key] = tuple(a.pod for a in reversed(drop))  # emptiest first
        claims.append((inp, prop, mine))
    return claims, removals


def _job_actions(ctx: _Fit, placements: dict[str, list[Slice]]) -> list[JobAction]:
    """Suspend the preempted gangs and the idle ones (giving their slices back); the others
    keep their slices."""
    actions: list[JobAction] = []
    for slot in ctx.slots.values():
        ref = slot.inp.state.ref
        if slot.preempted:
            why = Condition(ConditionType.PREEMPTION, True, Reason.PREEMPTED, slot.why)
            actions.append(JobAction(ref, True, Reason.PREEMPTED, (why,)))
        elif idle_reclaimable(slot.inp, ctx.now_s):
            ctx.pool.release_all(slot.allocations)
            slot.preempted = True
            message = job_reclaim_message(slot.inp)
            why = Condition(ConditionType.IDLE_RECLAIM, True, Reason.SCALE_DOWN, message)
            actions.append(JobAction(ref, True, Reason.SCALE_DOWN, (why,)))
        elif slot.allocations:
            placements[slot.inp.key] = list(slot.allocations)
    return actions


def drain_order(
    allocations: Sequence[SliceAllocation], used_pct: Mapping[str, int]
) -> list[SliceAllocation]:
    """A workload's pods, the ones to keep first: a scale-in removes from the end.

    Not-ready pods go first (the ReplicaSet controller removes them first anyway), then the
    pods on the emptiest cards, so that scaling in drains cards whole and leaves room for
    gangs and large slices instead of scattering holes (ties: card, then pod name).
    """
    return sorted(
        allocations, key=lambda a: (not a.ready, -used_pct.get(a.card_id, 0), a.card_id, a.pod)
    )


def _slice(a: SliceAllocation) -> Slice:
    return (a.card_id, a.share_pct, a.memory_mib)


def _fit_one(
    inp: WorkloadInput,
    prop: Proposal,
    held: list[Slice],
    options: tuple[Allocation, ...],
    ctx: _Fit,
) -> tuple[Proposal, list[Slice]]:
    """One workload's claim: its target, else another allocation that fits, else what fits."""
    target = prop.allocation
    placed: list[Slice] = []
    if target.slice_pct == inp.current.slice_pct:
        placed = _claim(inp, target.replicas - len(held), target.slice_pct, len(held), ctx)
        if len(held) + len(placed) >= target.replicas:
            return prop, held + placed
    else:
        resized = _claim_resize(inp, target, held, ctx)
        if resized is not None:
            return prop, resized
    refitted = _refit(inp, target, held, placed, options, ctx)
    want = f"{target.replicas} x {target.slice_pct} %"
    if refitted is not None:
        alternative, slices = refitted
        message = (
            f"{want} does not fit the fragmented pool, "
            f"{alternative.replicas} x {alternative.slice_pct} % does"
        )
        limited = prop.then(alternative, Reason.CAPACITY_LIMITED, CAPACITY, message, status=False)
        return limited, slices
    if target.slice_pct != inp.current.slice_pct:
        message = f"resize to {want} does not fit"
        limited = prop.then(inp.current, Reason.CAPACITY_LIMITED, CAPACITY, message, status=False)
        return limited, held
    fitted = len(held) + len(placed)
    message = f"only {fitted} of {target.replicas} slices fit the pool"
    allocation = Allocation(fitted, target.slice_pct)
    limited = prop.then(allocation, Reason.CAPACITY_LIMITED, CAPACITY, message, status=False)
    return limited, held + placed


def _claim(inp: WorkloadInput, count: int, slice_pct: int, have: int, ctx: _Fit) -> list[Slice]:
    """Place up to ``count`` new slices (``have`` already held), preempting when they do not fit.

    Victims are chosen for all the missing slices at once (``choose_victims``). Jobs inside
    their minimum runtime are victims only for a ``critical`` workload, and only for the
    slices it needs to keep its SLO at the observed rate (``_slo_floor``).
    """
    mib = inp.state.memory_mib
    placed = ctx.pool.place_up_to([(slice_pct, mib)] * max(0, count))
    missing = max(0, count) - len(placed)
    if missing > 0:
        demand = [(slice_pct, mib)] * missing
        ranked = candidates(ctx.slots.values(), inp.spec.priority, ctx.now_s, allow_protected=False)
        _preempt(inp, choose_victims(ctx.pool, demand, ranked), demand, ctx)
        placed += ctx.pool.place_up_to(demand)
    if inp.spec.priority >= PRIORITY_NAMES["critical"]:
        short = min(count - len(placed), _slo_floor(inp, slice_pct) - have - len(placed))
        if short > 0:
            demand = [(slice_pct, mib)] * short
            ranked = candidates(
                ctx.slots.values(), inp.spec.priority, ctx.now_s, allow_protected=True
            )
            _preempt(inp, choose_victims(ctx.pool, demand, ranked), demand, ctx)
            placed += ctx.pool.place_up_to(demand)
    return placed


def _preempt(
    inp: WorkloadInput, victims: Sequence[JobSlot], demand: Sequence[tuple[int, int]], ctx: _Fit
) -> None:
    """Suspend whole gangs: every slice of each victim goes back to the pool."""
    for slot in victims:
        held = sum(a[1] for a in slot.allocations)
        lost_h = work_at_risk_gpu_s(slot.inp, held, ctx.now_s) / 3600.0
        slot.why = (
            f"preempted for {inp.key} (priority {inp.spec.priority} > "
            f"{slot.inp.spec.priority}): {len(demand)} x {demand[0][0]} % did not fit; "
            f"about {lost_h:.2f} GPU-h since the last checkpoint is lost"
        )
        ctx.pool.release_all(slot.allocations)
        slot.preempted = True


def _slo_floor(inp: WorkloadInput, slice_pct: int) -> int:
    """Replicas at ``slice_pct`` that the *observed* rate needs within the bare latency target.

    Below it the SLO breaks now, not just the headroom: the ``critical`` exception to the
    minimum runtime. Without a capacity model, a latency already over target asks for all.
    """
    spec, m = inp.spec, inp.metrics
    rate = m.request_rate_rps
    if inp.capacity.known and rate is not None and math.isfinite(rate):
        alloc = replicas_at_slice(inp, slice_pct, rate, spec.latency_target_ms)
        return spec.max_replicas if alloc is None else alloc.replicas
    latency = m.latency_ms
    breaking = latency is not None and math.isfinite(latency) and latency > spec.latency_target_ms
    return spec.max_replicas if breaking else 0


def _refit(
    inp: WorkloadInput,
    target: Allocation,
    held: list[Slice],
    placed: list[Slice],
    options: tuple[Allocation, ...],
    ctx: _Fit,
) -> tuple[Allocation, list[Slice]] | None:
    """Try the workload's other allocations that meet its SLO, cheapest first.

    Never one with fewer replicas or a smaller slice than the workload has: that is a
    scale-down, which only the stabilised window may make (the fault soak found fallbacks
    that shrank a service on a full pool). Only from a steady state (a resize needs one). On
    success the pool holds the new slices and none of the old; on failure it is as it was
    (the partial scale-up kept).
    """
    if not options or not inp.state.settled:
        return None
    with ctx.trial() as trial:
        ctx.pool.release_all(placed)
        current = inp.current
        for option in options:
            if option.slice_pct == current.slice_pct or option == target:
                continue
            if option.replicas < current.replicas or option.slice_pct < current.slice_pct:
                continue  # a scale-down: only the planner's stabilised window may make one
            slices = _claim_resize(inp, option, held, ctx)
            if slices is not None:
                trial.commit()
                return option, slices
    return None


def _claim_resize(
    inp: WorkloadInput, target: Allocation, held: list[Slice], ctx: _Fit
) -> list[Slice] | None:
    """Resize all-or-nothing: new slices beside the old ones, else in their place, else none.

    Returns the target's slices when all are placed; ``None`` when the trial was rolled back:
    the old slices where they were, and nobody preempted for the attempt.
    """
    with ctx.trial() as trial:
        ctx.pool.release_all(held)
        placed = _claim(inp, target.replicas, target.slice_pct, 0, ctx)
        if len(placed) >= target.replicas:
            trial.commit()
            return placed
    return None
