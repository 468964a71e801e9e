"""Lending idle GPUs to low-priority jobs and taking them back: victims, resumes, idle reclaim.

Purely computational, no side effects. The planner's *fit* step (ARCHITECTURE §1) uses this
module for the job half of its work:

* **victims** — when the slices that higher-priority workloads need do not fit, choose which
  preemptible lower-priority jobs to suspend: the lowest priority first, then the least work
  lost (time since the last checkpoint x GPUs held), whole gangs, and the fewest victims that
  make the demand placeable *on the cards where it can actually go* (a trial placement, so
  fragmentation counts). A job of equal or higher priority is never a victim; one still
  inside its minimum runtime is one only for a ``critical`` workload that would otherwise
  break its SLO.
* **resumes** — a suspended job, highest priority first, is resumed when its whole gang fits
  *and* the pool can still hold what inference is forecast to need over the resume horizon;
  after a preemption it waits a cooldown that doubles with each recent preemption
  (hysteresis), so the same job is not thrashed.
* **idle reclaim** — a job annotated ``sloscale.io/reclaim-idle-after`` whose GPU utilisation
  stayed under ``IDLE_UTIL`` that long is suspended; ``idle_since`` is the tracker.

``SlicePool`` is the planner's model of the inventory: free share and memory per card with
best-fit placement, and cheap copies for trial placements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from controller.domain import (
    Inventory,
    JobAction,
    JobPhase,
    JobSpec,
    JobState,
    Reason,
)

IDLE_UTIL = 0.05
"""GPU utilisation under which a slice counts as idle for ``reclaim-idle-after``."""

DAY_S = 86400.0
JOB_START_S = 60.0
"""Assumed time from a job's start to its first productive second (pods start, load state):
checkpoint intervals count from there."""

Slice = tuple[str, int, int]
"""One placed slice: (card id, share %, memory MiB)."""


@dataclass(frozen=True, slots=True)
class JobInput:
    """Everything the planner knows about one Job this tick.

    ``preempted_s`` are the times sloscale preempted it within the last day (the hysteresis
    reads them); ``idle_since_s`` is when its GPU utilisation last went under ``IDLE_UTIL``
    (``None``: busy, or not measured).
    """

    state: JobState
    spec: JobSpec
    last_preempted_s: float | None = None
    preempted_s: tuple[float, ...] = ()
    idle_since_s: float | None = None

    @property
    def key(self) -> str:
        return self.state.ref.key

    @property
    def gang(self) -> list[tuple[int, int]]:
        """The (share %, MiB) of each pod: placed all together or not at all."""
        return [(self.state.share_pct_per_pod, self.state.memory_mib_per_pod)] * self.state.pods

    def recent_preemptions(self, now_s: float, window_s: float = DAY_S) -> int:
        times = set(self.preempted_s)
        if self.last_preempted_s is not None:
            times.add(self.last_preempted_s)
        return sum(1 for t in times if now_s - t < window_s)


# --------------------------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------------------------


class SlicePool:
    """Free share and memory per card, with best-fit placement in O(cards at one share level)."""

    def __init__(self, inventory: Inventory | None = None):
        self.free_pct: dict[str, int] = {}
        self.free_mib: dict[str, int] = {}
        self._levels: list[dict[str, None]] = [{} for _ in range(101)]
        if inventory is None:
            return
        used_pct = inventory.used_pct_by_card()
        used_mib = inventory.used_mib_by_card()
        for c in inventory.cards:
            free = max(0, c.capacity_pct - used_pct.get(c.card_id, 0))
            self.free_pct[c.card_id] = free
            self.free_mib[c.card_id] = max(0, c.memory_mib - used_mib.get(c.card_id, 0))
            self._levels[min(100, free)][c.card_id] = None

    def copy(self) -> SlicePool:
        out = SlicePool()
        out.free_pct = dict(self.free_pct)
        out.free_mib = dict(self.free_mib)
        out._levels = [dict(level) for level in self._levels]
        return out

    def place(self, share_pct: int, mib: int) -> str | None:
        """Best fit: the card with the least free share that holds the slice."""
        for level in range(max(0, share_pct), 101):
            for card in self._levels[level]:
                if self.free_mib[card] >= mib:
                    self._move(card, -share_pct, -mib)
                    return card
        return None

    def place_all(self, demand: Iterable[tuple[int, int]]) -> list[Slice] | None:
        """Place every slice of ``demand`` or none of them (a gang)."""
        placed: list[Slice] = []
        for pct, mib in demand:
            card = self.place(pct, mib)
            if card is None:
                self.release_all(placed)
                return None
            placed.append((card, pct, mib))
        return placed

    def placeable(self, demand: Sequence[tuple[int, int]]) -> int:
        """How many slices of ``demand``, in order, a trial placement gets onto the pool."""
        trial = self.copy()
        for n, (pct, mib) in enumerate(demand):
            if trial.place(pct, mib) is None:
                return n
        return len(demand)

    def reserve(self, card: str, share_pct: int, mib: int) -> None:
        """Take back a slice that was just released (its card still has room for it)."""
        self._move(card, -share_pct, -mib)

    def release(self, card: str, share_pct: int, mib: int) -> None:
        if card in self.free_pct:
            self._move(card, share_pct, mib)

    def release_all(self, slices: Iterable[Slice]) -> None:
        for card, pct, mib in slices:
            self.release(card, pct, mib)

    def reserve_all(self, slices: Iterable[Slice]) -> None:
        for card, pct, mib in slices:
            self.reserve(card, pct, mib)

    def _move(self, card: str, d_pct: int, d_mib: int) -> None:
        del self._levels[min(100, max(0, self.free_pct[card]))][card]
        self.free_pct[card] += d_pct
        self.free_mib[card] += d_mib
        self._levels[min(100, max(0, self.free_pct[card]))][card] = None

    def total_free_pct(self) -> int:
        return sum(self.free_pct.values())


# --------------------------------------------------------------------------------------------
# victims
# --------------------------------------------------------------------------------------------


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
    trial = pool.copy()
    for v in victims:
        trial.release_all(v.allocations)
    return trial.placeable(demand)


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
    trial = pool.copy()
    for v in chosen:
        trial.release_all(v.allocations)
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
        if trial.free_pct.get(card, 0) < smallest
        and trial.free_pct.get(card, 0) + p >= smallest
        and trial.free_mib.get(card, 0) + m >= smallest_mib
    }
    for v in rest:
        if any(card in useful for card, _, _ in v.allocations):
            return v
    return None


# --------------------------------------------------------------------------------------------
# resumes
# --------------------------------------------------------------------------------------------


def resume_cooldown_s(job: JobInput, now_s: float, base_s: float, max_s: float) -> float:
    """Hysteresis: ``base_s`` after one preemption in the last day, doubling with each more."""
    n = job.recent_preemptions(now_s)
    if n == 0:
        return 0.0
    return min(max_s, base_s * 2.0 ** (n - 1))


def cooling_down(job: JobInput, now_s: float, base_s: float, max_s: float) -> bool:
    last = job.last_preempted_s
    if job.preempted_s:
        last = max(job.preempted_s) if last is None else max(last, *job.preempted_s)
    if last is None:
        return False
    return now_s - last < resume_cooldown_s(job, now_s, base_s, max_s)


@dataclass(frozen=True, slots=True)
class ResumeResult:
    actions: tuple[JobAction, ...]
    placements: dict[str, list[Slice]]


def resumes(
    jobs: Sequence[JobInput],
    pool: SlicePool,
    reserve: Sequence[tuple[int, int]],
    now_s: float,
    *,
    cooldown_s: float,
    cooldown_max_s: float,
) -> ResumeResult:
    """Resume suspended jobs, highest priority first, that fit and leave ``reserve`` placeable.

    ``reserve`` is what inference is forecast to need over the resume horizon beyond what it
    holds now, as slices: a job is resumed only if, with its gang placed, every one of them
    still fits. Resumed gangs are placed on ``pool``.
    """
    actions: list[JobAction] = []
    placements: dict[str, list[Slice]] = {}
    suspended = [j for j in jobs if j.state.phase == JobPhase.SUSPENDED]
    suspended.sort(key=lambda j: (-j.spec.priority, j.key))
    for j in suspended:
        if cooling_down(j, now_s, cooldown_s, cooldown_max_s):
            continue
        trial = pool.copy()
        if trial.place_all(j.gang) is None or trial.placeable(reserve) < len(reserve):
            continue
        placed = pool.place_all(j.gang)
        assert placed is not None  # the trial on a copy succeeded
        placements[j.key] = placed
        actions.append(JobAction(j.state.ref, suspend=False, reason=Reason.RESUMED))
    return ResumeResult(tuple(actions), placements)


# --------------------------------------------------------------------------------------------
# idle reclaim
# --------------------------------------------------------------------------------------------


def idle_since(previous_s: float | None, util: float | None, now_s: float) -> float | None:
    """The idle tracker: when utilisation went (and stayed) under ``IDLE_UTIL``.

    Missing utilisation keeps the previous value (it is not evidence of idleness, nor of work).
    """
    if util is None or not math.isfinite(util):
        return previous_s
    if util >= IDLE_UTIL:
        return None
    return now_s if previous_s is None else previous_s


def idle_reclaimable(job: JobInput, now_s: float) -> bool:
    """A running job idle for its ``reclaim-idle-after``: suspend it and give back its slices."""
    after = job.spec.reclaim_idle_after_s
    if after is None or job.idle_since_s is None or job.state.phase != JobPhase.RUNNING:
        return False
    return now_s - job.idle_since_s >= after
