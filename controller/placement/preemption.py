"""Preemption: when the slices that higher-priority workloads need do not fit, which
preemptible lower-priority gangs to suspend.

The lowest priority first, then the least work lost (time since the last checkpoint x GPUs
held), whole gangs, and the fewest victims that make the demand placeable *on the cards where
it can actually go* (a trial placement, so fragmentation counts). A job of equal or higher
priority is never a victim; one still inside its minimum runtime is one only for a
``critical`` workload that would otherwise break its SLO. Purely computational.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from controller.domain import ApplyResult, JobAction
from controller.placement.pool import Slice, SlicePool
from controller.policy.inputs import DAY_S, JobInput

JOB_START_S = 60.0
"""Assumed time from a job's start to its first productive second (pods start, load state):
checkpoint intervals count from there."""


@dataclass
class JobSlot:
    """A running job's slices during one fit, and whether this tick preempts it."""

    inp: JobInput
    allocations: list[Slice] = field(default_factory=list)
    preempted: bool = False
    why: str = ""


def runtime_s(job: JobInput, now_s: float) -> float:
    """Time since the job's last start or resume (infinite when unknown: no protection)."""
    started = job.state.started_at_s
    return math.inf if started is None else max(0.0, now_s - started)


def work_at_risk_gpu_s(job: JobInput, held_pct: int, now_s: float) -> float:
    """Card-seconds a preemption now would throw away: time since the last checkpoint x GPUs.

    Checkpoints are taken every ``checkpoint-interval`` of runtime; without one, everything
    since the last start is lost. An unknown start counts as a full interval at risk.
    """
    cards = held_pct / 100.0
    interval = job.spec.checkpoint_interval_s
    run = runtime_s(job, now_s)
    if not math.isfinite(run):
        return cards * (interval if interval else DAY_S)
    productive = run - JOB_START_S
    if not interval or productive < interval:
        return cards * run  # no checkpoint since this start yet
    return cards * (productive % interval)


def protected(job: JobInput, now_s: float) -> bool:
    """Still inside its minimum runtime since the last start: not a victim (bar ``critical``)."""
    return runtime_s(job, now_s) < job.spec.min_runtime_s


def candidates(
    slots: Iterable[JobSlot], claimant_priority: int, now_s: float, *, allow_protected: bool
) -> list[JobSlot]:
    """Eligible victims, cheapest first: lowest priority, then least work at risk, then name."""
    out = []
    for slot in slots:
        j = slot.inp
        if slot.preempted or not slot.allocations or not j.spec.preemptible:
            continue
        if j.spec.priority >= claimant_priority:
            continue  # never equal or higher priority
        if protected(j, now_s) and not allow_protected:
            continue
        held = sum(a[1] for a in slot.allocations)
        out.append((j.spec.priority, work_at_risk_gpu_s(j, held, now_s), j.key, slot))
    out.sort(key=lambda c: (c[0], c[1], c[2]))
    return [c[3] for c in out]


def _placeable_without(
    pool: SlicePool, victims: Sequence[JobSlot], demand: Sequence[tuple[int, int]]
) -> int:
    with pool.trial():
        for v in victims:
            pool.release_all(v.allocations)
        return pool.placeable(demand)


def choose_victims(
    pool: SlicePool, demand: Sequence[tuple[int, int]], ranked: Sequence[JobSlot]
) -> list[JobSlot]:
    """The cheapest few gangs whose release lets the most of ``demand`` be placed.

    Greedy over ``ranked`` (cheapest first): add the first victim that lets more of the demand
    be placed; when no single one helps (the demand needs share freed on one card by several
    jobs), add the first one holding share on a card that all of them together would make
    usable. Then drop, most expensive first, every victim the result does not need. Victims
    that make nothing placeable are never chosen. Purely computational: ``pool`` is unchanged.
    """
    target = len(demand)
    best = pool.placeable(demand)
    if best >= target or not ranked:
        return []
    chosen: list[JobSlot] = []
    while best < target:
        rest = [s for s in ranked if s not in chosen]
        if not rest:
            break
        pick: JobSlot | None = None
        for slot in rest:
            n = _placeable_without(pool, [*chosen, slot], demand)
            if n > best:
                pick, best = slot, n
                break
        if pick is None:
            pick = _fragment_victim(pool, chosen, rest, demand)
            if pick is None:
                break
        chosen.append(pick)
    for slot in reversed(list(chosen)):
        fewer = [s for s in chosen if s is not slot]
        if _placeable_without(pool, fewer, demand) >= best:
            chosen = fewer
    return chosen


def _fragment_victim(
    pool: SlicePool,
    chosen: Sequence[JobSlot],
    rest: Sequence[JobSlot],
    demand: Sequence[tuple[int, int]],
) -> JobSlot | None:
    """The cheapest job holding share on a card that releasing all of ``rest`` would open up."""
    before = _placeable_without(pool, chosen, demand)
    if _placeable_without(pool, [*chosen, *rest], demand) <= before:
        return None  # even every remaining victim together would not help
    with pool.trial():
        for v in chosen:
            pool.release_all(v.allocations)
        free_pct, free_mib = dict(pool.free_pct), dict(pool.free_mib)
    extra: dict[str, tuple[int, int]] = {}
    for v in rest:
        for card, pct, mib in v.allocations:
            p, m = extra.get(card, (0, 0))
            extra[card] = (p + pct, m + mib)
    smallest = min(pct for pct, _ in demand)
    smallest_mib = min(mib for _, mib in demand)
    useful = {
        card
        for card, (p, m) in extra.items()
        if free_pct.get(card, 0) < smallest
        and free_pct.get(card, 0) + p >= smallest
        and free_mib.get(card, 0) + m >= smallest_mib
    }
    for v in rest:
        if any(card in useful for card, _, _ in v.allocations):
            return v
    return None


def work_at_risk_gpu_h(
    actions: Sequence[JobAction], jobs: Sequence[JobInput], now: float
) -> dict[str, float]:
    """Per job this plan suspends, the work a preemption now throws away (GPU-hours)."""
    by_key = {j.key: j for j in jobs}
    at_risk: dict[str, float] = {}
    for act in actions:
        job = by_key.get(act.ref.key) if act.suspend else None
        if job is not None:
            held = job.state.pods * job.state.share_pct_per_pod
            at_risk[act.ref.key] = work_at_risk_gpu_s(job, held, now) / 3600.0
    return at_risk


def applied_losses(
    at_risk_gpu_h: Mapping[str, float], results: Sequence[ApplyResult]
) -> dict[str, float]:
    """The work at risk of the preemptions that the cluster carried out."""
    ok = {r.target for r in results if r.ok}
    return {k: h for k, h in at_risk_gpu_h.items() if k in ok}
