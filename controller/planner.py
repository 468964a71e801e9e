"""The planner: from what is observed and forecast to the allocations and job actions of a tick.

Purely computational, no side effects. A chain of small steps, each with a reason:

    size ─► stabilise (tolerance, scale-down delay, step limit, bounds) ─► fit (placement,
    preemption, resume)

* **size** picks, per workload, the cheapest (replicas, slice) whose predicted latency quantile
  stays under the target minus a headroom, for the rate forecast over the lead time.
* **stabilise** follows the Kubernetes HPA: a dead band around the current capacity, the
  largest recommendation of the last ``scale_down_delay_s`` wins a scale-down, scale-up is at
  most ``max(2x, +4 pods)`` per tick, and min/max bounds always hold.
* **fit** places every slice on the GPU inventory (best-fit bin packing, so fragmentation is
  real), preempting lower-priority preemptible jobs when higher-priority work does not fit, and
  resuming suspended jobs when the pool has room to spare. It never plans more than the
  inventory holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.capacity import (
    CapacityModel,
    effective_share,
    max_rate_per_replica,
    service_time_s,
)
from controller.domain import (
    PRIORITY_NAMES,
    Allocation,
    ClusterSnapshot,
    Decision,
    DeploymentState,
    Inventory,
    JobAction,
    JobPhase,
    JobSpec,
    JobState,
    Plan,
    Reason,
    ScaleAction,
    SloSpec,
    WorkloadMetrics,
    available,
)

BASE_HEADROOM = 0.1
"""Latency budget kept in reserve when all is well: plan for 85 % of the target."""


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Tuning knobs of the planner; the defaults mirror the HPA's where one exists."""

    tolerance: float = 0.1
    scale_down_delay_s: float = 300.0
    scale_up_max_ratio: float = 2.0
    scale_up_max_pods: int = 4
    base_headroom: float = BASE_HEADROOM
    max_headroom: float = 0.45
    headroom_step_up: float = 0.04
    headroom_decay_per_tick: float = 0.004
    resize_min_saving: float = 0.25
    scale_down_margin: float = 0.05
    resume_reserve_ratio: float = 0.1
    resume_cooldown_s: float = 900.0
    resize_dwell_s: float = 1800.0


# --------------------------------------------------------------------------------------------
# Inputs and per-workload memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkloadInput:
    """Everything the planner knows about one opted-in Deployment this tick."""

    spec: SloSpec
    state: DeploymentState
    metrics: WorkloadMetrics
    rate_forecast_rps: float | None  # upper band of the rate over the lead time
    capacity: CapacityModel
    memory: PlannerMemory
    budget_remaining: float = 1.0

    @property
    def key(self) -> str:
        return self.state.ref.key

    @property
    def current(self) -> Allocation:
        return Allocation(self.state.replicas, self.state.slice_pct)


@dataclass(frozen=True, slots=True)
class PlannerMemory:
    """What the planner carries from one tick to the next for one workload."""

    recommendations: tuple[tuple[float, Allocation], ...] = ()
    headroom: float = BASE_HEADROOM
    last_resize_s: float | None = None


@dataclass(frozen=True, slots=True)
class JobInput:
    state: JobState
    spec: JobSpec
    last_preempted_s: float | None = None


@dataclass(frozen=True, slots=True)
class Proposal:
    """A desired allocation and why; the intermediate value between the planner's steps."""

    allocation: Allocation
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class PlanResult:
    plan: Plan
    decisions: tuple[Decision, ...]
    memories: Mapping[str, PlannerMemory]
    desired: Mapping[str, Allocation] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# size
# --------------------------------------------------------------------------------------------


def next_headroom(
    memory: PlannerMemory,
    metrics: WorkloadMetrics,
    spec: SloSpec,
    budget_remaining: float,
    cfg: PlannerConfig,
) -> float:
    """Headroom grows fast when the SLI misses the objective and decays slowly otherwise.

    The floor rises as the error budget burns: with half the budget spent, a quarter of the
    way from the base to the maximum headroom is kept at all times.
    """
    floor = cfg.base_headroom + (cfg.max_headroom - cfg.base_headroom) * 0.5 * min(
        1.0, max(0.0, 1.0 - budget_remaining)
    )
    h = memory.headroom
    good = metrics.good_ratio
    if available(good) and good is not None and good < spec.objective_ratio:
        h += cfg.headroom_step_up
    else:
        h -= cfg.headroom_decay_per_tick
    return min(cfg.max_headroom, max(floor, h))


def _new_capacity_first(current: Allocation, proposal: Allocation) -> Allocation:
    """A resize never lowers the share held while it rolls; the scale-down delay trims later."""
    if proposal.slice_pct == current.slice_pct or proposal.share_pct >= current.share_pct:
        return proposal
    keep = math.ceil(current.share_pct / proposal.slice_pct)
    return Allocation(max(proposal.replicas, keep), proposal.slice_pct)


def size(inp: WorkloadInput, headroom: float, cfg: PlannerConfig, now_s: float = 0.0) -> Proposal:
    """Cheapest (replicas, slice) that keeps the latency quantile under target at the rate."""
    spec, current, metrics = inp.spec, inp.current, inp.metrics
    if not metrics.core_available():
        return Proposal(current, Reason.METRICS_UNAVAILABLE, "rate or latency unavailable: holding")
    rate = max(metrics.request_rate_rps or 0.0, inp.rate_forecast_rps or 0.0)
    if not inp.capacity.known:
        return _size_reactive(inp)
    budget_ms = spec.latency_target_ms * (1.0 - headroom)
    candidates = _slice_candidates(inp)
    cheapest = _cheapest(inp, candidates, rate, budget_ms)
    if cheapest is None:
        strongest = _strongest(inp, candidates, budget_ms)
        if strongest is None:
            return Proposal(
                _fastest_at_half_load(inp, candidates, rate),
                Reason.AT_MAX,
                "no slice meets the latency target even idle: fastest slice at half load",
            )
        return Proposal(
            strongest, Reason.AT_MAX, f"{rate:.1f} rps exceeds what max-replicas can serve"
        )
    proposal = cheapest
    if proposal.share_pct < current.share_pct:
        # going down must still hold with a wider margin: an asymmetric dead band
        wider = spec.latency_target_ms * (1.0 - headroom - cfg.scale_down_margin)
        cautious = _cheapest(inp, candidates, rate, wider)
        if cautious is None or cautious.share_pct >= current.share_pct:
            return Proposal(current, Reason.WITHIN_TOLERANCE, "a smaller allocation lacks margin")
        proposal = cautious
    proposal = _resize_hysteresis(inp, proposal, rate, budget_ms, cfg, now_s)
    proposal = _new_capacity_first(current, proposal)
    return Proposal(proposal, _direction(current, proposal), f"sized for {rate:.1f} rps")


def _wasted(inp: WorkloadInput) -> bool:
    """The current slice is past saturation: shrinking it loses nothing, so it needs no saving."""
    sat = inp.capacity.sat_pct
    return sat is not None and inp.current.slice_pct > _useful_max_pct(sat, inp.spec.slice_step_pct)


def _alternatives(
    inp: WorkloadInput, headroom: float, proposal: Proposal
) -> tuple[Allocation, ...]:
    """Allocations at smaller slices than proposed that also meet the SLO, cheapest first."""
    if proposal.reason is Reason.METRICS_UNAVAILABLE or not inp.capacity.known:
        return ()
    rate = max(inp.metrics.request_rate_rps or 0.0, inp.rate_forecast_rps or 0.0)
    budget_ms = inp.spec.latency_target_ms * (1.0 - headroom)
    out = []
    for slice_pct in _slice_candidates(inp):
        if slice_pct < proposal.allocation.slice_pct:
            alloc = _replicas_at_slice(inp, slice_pct, rate, budget_ms)
            if alloc is not None:
                out.append(alloc)
    return tuple(sorted(out, key=lambda a: (a.share_pct, a.replicas)))


def _useful_max_pct(sat_pct: float, step_pct: int) -> int:
    """The smallest slice step that holds the saturation share (within 5 % of a step)."""
    return step_pct * math.ceil(sat_pct / step_pct - 0.05)


def _cheapest(
    inp: WorkloadInput, candidates: tuple[int, ...], rate: float, budget_ms: float
) -> Allocation | None:
    """The allocation with the least share that serves ``rate`` within ``budget_ms``.

    Ties go to the current slice (no rollout), then to fewer replicas.
    """
    best: tuple[float, int, Allocation] | None = None
    for slice_pct in candidates:
        alloc = _replicas_at_slice(inp, slice_pct, rate, budget_ms)
        if alloc is None:
            continue
        key = (
            alloc.share_pct - (0.5 if slice_pct == inp.current.slice_pct else 0.0),
            alloc.replicas,
        )
        if best is None or key < (best[0], best[1]):
            best = (key[0], key[1], alloc)
    return None if best is None else best[2]


def _strongest(
    inp: WorkloadInput, candidates: tuple[int, ...], budget_ms: float
) -> Allocation | None:
    """max-replicas of the slice that serves the most within ``budget_ms``, if any serves."""
    spec = inp.spec
    rates = [
        (max_rate_per_replica(inp.capacity, s, spec.latency_quantile, budget_ms), s)
        for s in candidates
    ]
    top = max(rates, default=(0.0, 0))
    return Allocation(spec.max_replicas, top[1]) if top[0] > 0 else None


def _fastest_at_half_load(
    inp: WorkloadInput, candidates: tuple[int, ...], rate: float
) -> Allocation:
    """When the target is out of reach, the quickest slice, each replica kept half busy."""
    slice_pct = max(candidates, key=lambda s: (effective_share(inp.capacity, s), -s))
    mu = 1.0 / service_time_s(inp.capacity, slice_pct)
    replicas = max(inp.spec.min_replicas, 1, math.ceil(rate / (0.5 * mu)))
    return Allocation(min(replicas, inp.spec.max_replicas), slice_pct)


def _slice_candidates(inp: WorkloadInput) -> tuple[int, ...]:
    """Slices worth considering: saturated ones are skipped, unexplored ones one step at a time.

    Without evidence that the model uses a larger slice, growing past twice the largest
    slice seen unsaturated would be a guess; growth is explored gradually instead.
    """
    spec, cap = inp.spec, inp.capacity
    explored = max(cap.explored_max_pct, inp.current.slice_pct)
    limit = max(explored * 2, spec.slice_min_pct)
    out = []
    for s in spec.slice_options_pct():
        if s > limit:
            continue
        if cap.sat_pct is not None and s > _useful_max_pct(cap.sat_pct, spec.slice_step_pct):
            continue  # past saturation a larger slice buys nothing
        out.append(s)
    return tuple(out) or (inp.current.slice_pct,)


def _may_resize(inp: WorkloadInput, now_s: float, cfg: PlannerConfig) -> bool:
    """Resize only from a steady state, and not again before the last one has been learnt.

    A rollout in progress or pods still starting mean the metrics describe a mix of slices;
    the capacity model needs ``resize_dwell_s`` at a new slice before judging the next one.
    """
    state = inp.state
    if state.rollout_in_progress or state.ready_replicas < state.replicas:
        return False
    last = inp.memory.last_resize_s
    return last is None or now_s - last >= cfg.resize_dwell_s


def _resize_hysteresis(
    inp: WorkloadInput,
    proposal: Allocation,
    rate: float,
    budget_ms: float,
    cfg: PlannerConfig,
    now_s: float,
) -> Allocation:
    """Keep the current slice unless a resize saves at least ``resize_min_saving`` of the cost."""
    current, spec = inp.current, inp.spec
    if proposal.slice_pct == current.slice_pct:
        return proposal
    if not _may_resize(inp, now_s, cfg):
        same = _replicas_at_slice(inp, current.slice_pct, rate, budget_ms)
        return same or Allocation(spec.max_replicas, current.slice_pct)
    same_slice = _replicas_at_slice(inp, current.slice_pct, rate, budget_ms)
    if same_slice is None or _wasted(inp):
        return proposal
    if proposal.share_pct <= (1.0 - cfg.resize_min_saving) * same_slice.share_pct:
        return proposal
    return same_slice


def _replicas_at_slice(
    inp: WorkloadInput, slice_pct: int, rate: float, budget_ms: float
) -> Allocation | None:
    per_replica = max_rate_per_replica(
        inp.capacity, slice_pct, inp.spec.latency_quantile, budget_ms
    )
    if per_replica <= 0:
        return None
    replicas = max(inp.spec.min_replicas, 1, math.ceil(rate / per_replica))
    if replicas > inp.spec.max_replicas:
        return None
    return Allocation(replicas, slice_pct)


def _size_reactive(inp: WorkloadInput) -> Proposal:
    """Before the capacity model is learnt, scale replicas on the latency ratio alone."""
    current, spec, latency = inp.current, inp.spec, inp.metrics.latency_ms
    if latency is not None and latency > spec.latency_target_ms:
        ratio = latency / spec.latency_target_ms
        replicas = max(current.replicas + 1, math.ceil(current.replicas * min(ratio, 2.0)))
        return Proposal(
            Allocation(replicas, current.slice_pct),
            Reason.SCALE_UP,
            f"learning capacity; latency {latency:.0f} ms over target: scaling on the ratio",
        )
    return Proposal(current, Reason.LEARNING, "learning the capacity model: holding")


def _direction(current: Allocation, desired: Allocation) -> Reason:
    if desired.slice_pct != current.slice_pct:
        return Reason.RESIZE
    if desired.replicas > current.replicas:
        return Reason.SCALE_UP
    if desired.replicas < current.replicas:
        return Reason.SCALE_DOWN
    return Reason.WITHIN_TOLERANCE


# --------------------------------------------------------------------------------------------
# stabilise
# --------------------------------------------------------------------------------------------


def apply_tolerance(inp: WorkloadInput, proposal: Proposal, cfg: PlannerConfig) -> Proposal:
    """Dead band: a replica change of at most ``tolerance`` of the current count is skipped."""
    current, desired = inp.current, proposal.allocation
    if desired.slice_pct != current.slice_pct or current.replicas == 0:
        return proposal
    if desired.replicas == current.replicas:
        return replace(proposal, reason=_hold_reason(proposal.reason))
    if desired.replicas < current.replicas and abs(desired.replicas - current.replicas) <= (
        cfg.tolerance * current.replicas
    ):
        return Proposal(current, Reason.WITHIN_TOLERANCE, "change within tolerance")
    return proposal


def _hold_reason(reason: Reason) -> Reason:
    if reason in (Reason.SCALE_UP, Reason.SCALE_DOWN, Reason.RESIZE):
        return Reason.WITHIN_TOLERANCE
    return reason


def apply_scale_down_delay(
    inp: WorkloadInput, proposal: Proposal, now_s: float, cfg: PlannerConfig
) -> tuple[Proposal, tuple[tuple[float, Allocation], ...]]:
    """The largest recommendation of the last ``scale_down_delay_s`` bounds a scale-down."""
    horizon = now_s - cfg.scale_down_delay_s
    history = tuple(r for r in inp.memory.recommendations if r[0] > horizon)
    history = (*history, (now_s, proposal.allocation))
    current = inp.current
    if proposal.allocation.share_pct >= current.share_pct:
        return proposal, history
    strongest = max(history, key=lambda r: (r[1].share_pct, r[0]))[1]
    if strongest.share_pct >= current.share_pct:
        return Proposal(
            current, Reason.SCALE_DOWN_STABILIZED, "recent recommendations were higher"
        ), history
    if strongest != proposal.allocation:
        return Proposal(strongest, proposal.reason, proposal.message + " (stabilised)"), history
    return proposal, history


def apply_step_limit(inp: WorkloadInput, proposal: Proposal, cfg: PlannerConfig) -> Proposal:
    """Scale up by at most ``max(ratio x current, current + pods)`` per tick, as the HPA does."""
    current, desired = inp.current, proposal.allocation
    limit = max(
        math.ceil(current.replicas * cfg.scale_up_max_ratio),
        current.replicas + cfg.scale_up_max_pods,
    )
    if desired.replicas > limit:
        return Proposal(
            replace(desired, replicas=limit),
            Reason.SCALE_UP_LIMITED,
            f"{proposal.message}; limited to {limit} replicas this tick",
        )
    return proposal


def apply_bounds(spec: SloSpec, proposal: Proposal) -> Proposal:
    """min/max replicas and slice bounds always hold."""
    a = proposal.allocation
    replicas = min(spec.max_replicas, max(spec.min_replicas, a.replicas))
    slice_pct = min(spec.slice_max_pct, max(spec.slice_min_pct, a.slice_pct))
    slice_pct -= (slice_pct - spec.slice_min_pct) % spec.slice_step_pct
    bounded = Allocation(replicas, slice_pct)
    if bounded == a:
        return proposal
    reason = Reason.AT_MAX if a.replicas > spec.max_replicas else Reason.AT_MIN
    return Proposal(bounded, reason, f"{proposal.message}; bounded to {replicas} replicas")


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


class _Pool:
    """Free share and memory per card, with best-fit placement in O(cards at one share level)."""

    def __init__(self, inventory: Inventory):
        used_pct = inventory.used_pct_by_card()
        used_mib = inventory.used_mib_by_card()
        self.free_pct: dict[str, int] = {}
        self.free_mib: dict[str, int] = {}
        self._levels: list[dict[str, None]] = [{} for _ in range(101)]
        for c in inventory.cards:
            free = max(0, c.capacity_pct - used_pct.get(c.card_id, 0))
            self.free_pct[c.card_id] = free
            self.free_mib[c.card_id] = max(0, c.memory_mib - used_mib.get(c.card_id, 0))
            self._levels[min(100, free)][c.card_id] = None

    def place(self, share_pct: int, mib: int) -> str | None:
        for level in range(share_pct, 101):
            for card in self._levels[level]:
                if self.free_mib[card] >= mib:
                    self._move(card, -share_pct, -mib)
                    return card
        return None

    def reserve(self, card: str, share_pct: int, mib: int) -> None:
        """Take back a slice that was just released (its card still has room for it)."""
        self._move(card, -share_pct, -mib)

    def release(self, card: str, share_pct: int, mib: int) -> None:
        if card in self.free_pct:
            self._move(card, share_pct, mib)

    def _move(self, card: str, d_pct: int, d_mib: int) -> None:
        del self._levels[min(100, self.free_pct[card])][card]
        self.free_pct[card] += d_pct
        self.free_mib[card] += d_mib
        self._levels[min(100, max(0, self.free_pct[card]))][card] = None

    def total_free_pct(self) -> int:
        return sum(self.free_pct.values())


@dataclass
class _JobSlot:
    inp: JobInput
    allocations: list[tuple[str, int, int]]  # (card, share, mib)
    preempted: bool = False


def fit(
    desired: Mapping[str, Proposal],
    inputs: Sequence[WorkloadInput],
    jobs: Sequence[JobInput],
    snapshot: ClusterSnapshot,
    cfg: PlannerConfig,
    fallbacks: Mapping[str, tuple[Allocation, ...]] | None = None,
) -> tuple[dict[str, Proposal], list[JobAction]]:
    """Place every desired slice; preempt lower-priority jobs or cap what does not fit.

    Scale-downs release first; then workloads claim capacity by priority (ties by name, so the
    outcome is deterministic). The returned proposals never need more than the pool holds.
    """
    pool = _Pool(snapshot.inventory)
    owned: dict[str, list[tuple[str, int, int]]] = {}
    for a in snapshot.inventory.allocations:
        owned.setdefault(a.owner, []).append((a.card_id, a.share_pct, a.memory_mib))
    slots = {
        j.state.ref.key: _JobSlot(j, owned.get(j.state.ref.key, []))
        for j in jobs
        if j.state.phase in (JobPhase.RUNNING, JobPhase.PENDING)
    }
    out: dict[str, Proposal] = {}
    claims: list[tuple[WorkloadInput, Proposal, list[tuple[str, int, int]]]] = []
    for inp in inputs:
        prop = desired[inp.key]
        mine = owned.get(inp.key, [])
        target = prop.allocation
        if target.slice_pct == inp.current.slice_pct:
            for card, pct, mib in mine[target.replicas :]:
                pool.release(card, pct, mib)
            mine = mine[: target.replicas]
        claims.append((inp, prop, list(mine)))
    claims.sort(key=lambda c: (-c[0].spec.priority, c[0].key))
    for inp, prop, held in claims:
        target = prop.allocation
        placed: list[tuple[str, int, int]] = []
        if target.slice_pct == inp.current.slice_pct:
            placed = _claim(
                inp, target.replicas - len(held), target.slice_pct, pool, slots, snapshot
            )
            fitted = len(held) + len(placed)
        else:
            fitted = _claim_resize(inp, target, held, pool, slots, snapshot)
        if fitted >= target.replicas:
            out[inp.key] = prop
            continue
        options = (fallbacks or {}).get(inp.key, ())
        alternative = _refit(inp, target, held, placed, options, pool, slots, snapshot)
        if alternative is not None:
            out[inp.key] = Proposal(
                alternative,
                Reason.CAPACITY_LIMITED,
                f"{prop.message}; {target.replicas} x {target.slice_pct} % does not fit the "
                f"fragmented pool, {alternative.replicas} x {alternative.slice_pct} % does",
            )
        elif target.slice_pct != inp.current.slice_pct:
            out[inp.key] = Proposal(
                inp.current,
                Reason.CAPACITY_LIMITED,
                f"{prop.message}; resize to {target.replicas} x {target.slice_pct} % does not fit",
            )
        else:
            out[inp.key] = Proposal(
                Allocation(fitted, target.slice_pct),
                Reason.CAPACITY_LIMITED,
                f"{prop.message}; only {fitted} of {target.replicas} slices fit the pool",
            )
    actions: list[JobAction] = []
    for slot in slots.values():
        if slot.preempted:
            actions.append(JobAction(slot.inp.state.ref, suspend=True, reason=Reason.PREEMPTED))
    actions.extend(_resumes(jobs, pool, snapshot, cfg))
    return out, actions


def _claim(
    inp: WorkloadInput,
    count: int,
    slice_pct: int,
    pool: _Pool,
    slots: dict[str, _JobSlot],
    snapshot: ClusterSnapshot,
) -> list[tuple[str, int, int]]:
    """Place up to ``count`` new slices, preempting eligible jobs when one does not fit."""
    mib = inp.state.memory_mib
    placed: list[tuple[str, int, int]] = []
    for _ in range(max(0, count)):
        card = pool.place(slice_pct, mib)
        while card is None and _preempt_one(inp, pool, slots, snapshot):
            card = pool.place(slice_pct, mib)
        if card is None:
            break
        placed.append((card, slice_pct, mib))
    return placed


def _refit(
    inp: WorkloadInput,
    target: Allocation,
    held: list[tuple[str, int, int]],
    placed: list[tuple[str, int, int]],
    options: tuple[Allocation, ...],
    pool: _Pool,
    slots: dict[str, _JobSlot],
    snapshot: ClusterSnapshot,
) -> Allocation | None:
    """Try the workload's other allocations that meet its SLO, cheapest first.

    Only from a steady state (a resize needs one). On success the pool holds the new slices
    and none of the old; on failure it is as it was (the partial scale-up kept).
    """
    state = inp.state
    if not options or state.rollout_in_progress or state.ready_replicas < state.replicas:
        return None
    for card, pct, mib in placed:
        pool.release(card, pct, mib)
    for option in options:
        if option.slice_pct == inp.current.slice_pct or option == target:
            continue
        if _claim_resize(inp, option, held, pool, slots, snapshot) >= option.replicas:
            return option
    for card, pct, mib in placed:
        pool.reserve(card, pct, mib)
    return None


def _claim_resize(
    inp: WorkloadInput,
    target: Allocation,
    held: list[tuple[str, int, int]],
    pool: _Pool,
    slots: dict[str, _JobSlot],
    snapshot: ClusterSnapshot,
) -> int:
    """Resize all-or-nothing: new slices beside the old ones, else in their place, else none.

    Returns how many of the target's slices are placed: all of them, or 0 when the old
    slices were restored exactly where they were.
    """
    already = {k for k, slot in slots.items() if slot.preempted}
    for card, pct, mib in held:
        pool.release(card, pct, mib)
    placed = _claim(inp, target.replicas, target.slice_pct, pool, slots, snapshot)
    if len(placed) >= target.replicas:
        return len(placed)
    for card, pct, mib in placed:
        pool.release(card, pct, mib)
    for card, pct, mib in held:
        pool.reserve(card, pct, mib)
    for key, slot in slots.items():  # a resize that does not happen preempts nobody
        if slot.preempted and key not in already:
            slot.preempted = False
            for card, pct, mib in slot.allocations:
                pool.reserve(card, pct, mib)
    return 0


def _preempt_one(
    inp: WorkloadInput,
    pool: _Pool,
    slots: dict[str, _JobSlot],
    snapshot: ClusterSnapshot,
) -> bool:
    """Suspend the cheapest eligible job gang: lowest priority, then least work at risk."""
    critical = inp.spec.priority >= PRIORITY_NAMES["critical"]
    eligible = []
    for key, slot in slots.items():
        j = slot.inp
        if slot.preempted or not slot.allocations or not j.spec.preemptible:
            continue
        if j.spec.priority >= inp.spec.priority:
            continue
        started = j.state.started_at_s
        runtime = snapshot.time_s - started if started is not None else math.inf
        if runtime < j.spec.min_runtime_s and not critical:
            continue
        held = sum(a[1] for a in slot.allocations) / 100.0
        interval = j.spec.checkpoint_interval_s
        at_risk = held * (runtime % interval if interval and math.isfinite(runtime) else runtime)
        eligible.append((j.spec.priority, at_risk if math.isfinite(at_risk) else 0.0, key))
    if not eligible:
        return False
    eligible.sort()
    slot = slots[eligible[0][2]]
    for card, pct, m in slot.allocations:
        pool.release(card, pct, m)
    slot.preempted = True
    return True


def _resumes(
    jobs: Sequence[JobInput], pool: _Pool, snapshot: ClusterSnapshot, cfg: PlannerConfig
) -> list[JobAction]:
    """Resume suspended jobs, highest priority first, when their gang fits with a reserve left."""
    reserve = cfg.resume_reserve_ratio * snapshot.inventory.total_pct()
    out = []
    suspended = [j for j in jobs if j.state.phase == JobPhase.SUSPENDED]
    suspended.sort(key=lambda j: (-j.spec.priority, j.state.ref.key))
    for j in suspended:
        if j.last_preempted_s is not None and (
            snapshot.time_s - j.last_preempted_s < cfg.resume_cooldown_s
        ):
            continue
        need = j.state.pods * j.state.share_pct_per_pod
        if pool.total_free_pct() - need < reserve:
            continue
        placed: list[str] = []
        for _ in range(j.state.pods):
            card = pool.place(j.state.share_pct_per_pod, j.state.memory_mib_per_pod)
            if card is None:
                break
            placed.append(card)
        if len(placed) < j.state.pods:
            for card in placed:
                pool.release(card, j.state.share_pct_per_pod, j.state.memory_mib_per_pod)
            continue
        out.append(JobAction(j.state.ref, suspend=False, reason=Reason.RESUMED))
    return out


# --------------------------------------------------------------------------------------------
# the whole plan
# --------------------------------------------------------------------------------------------


def plan(
    inputs: Sequence[WorkloadInput],
    jobs: Sequence[JobInput],
    snapshot: ClusterSnapshot,
    cfg: PlannerConfig = PlannerConfig(),
) -> PlanResult:
    """Size, stabilise and fit every workload; return the actions, decisions and new memory."""
    now = snapshot.time_s
    proposals: dict[str, Proposal] = {}
    memories: dict[str, PlannerMemory] = {}
    by_key = {inp.key: inp for inp in inputs}
    for inp in inputs:
        headroom = next_headroom(inp.memory, inp.metrics, inp.spec, inp.budget_remaining, cfg)
        prop = size(inp, headroom, cfg, now)
        if prop.reason is Reason.METRICS_UNAVAILABLE:
            proposals[inp.key] = prop
            memories[inp.key] = replace(inp.memory, headroom=headroom)
            continue
        prop = apply_tolerance(inp, prop, cfg)
        prop, history = apply_scale_down_delay(inp, prop, now, cfg)
        prop = apply_step_limit(inp, prop, cfg)
        prop = apply_bounds(inp.spec, prop)
        proposals[inp.key] = prop
        memories[inp.key] = PlannerMemory(history, headroom, inp.memory.last_resize_s)
    fallbacks = {k: _alternatives(i, memories[k].headroom, proposals[k]) for k, i in by_key.items()}
    fitted, job_actions = fit(proposals, inputs, jobs, snapshot, cfg, fallbacks)
    scale: list[ScaleAction] = []
    decisions: list[Decision] = []
    for inp in inputs:
        prop = fitted[inp.key]
        current = inp.current
        changes = prop.allocation != current
        if changes:
            scale.append(
                ScaleAction(inp.state.ref, prop.allocation, inp.state.memory_mib, prop.reason)
            )
        decisions.append(
            Decision(now, inp.key, prop.reason, prop.message, current, prop.allocation)
        )
    for act in job_actions:
        verb = "suspend (preempt)" if act.suspend else "resume"
        decisions.append(Decision(now, act.ref.key, act.reason, f"{verb} job"))
    return PlanResult(
        Plan(tuple(scale), tuple(job_actions)),
        tuple(decisions),
        memories,
        {k: p.allocation for k, p in fitted.items()},
    )


def hold_all(
    states: Sequence[DeploymentState], now_s: float, reason: Reason, message: str
) -> tuple[Decision, ...]:
    """Fail static: a decision per workload that keeps what it has."""
    return tuple(
        Decision(
            now_s,
            s.ref.key,
            reason,
            message,
            Allocation(s.replicas, s.slice_pct),
            Allocation(s.replicas, s.slice_pct),
        )
        for s in states
    )
