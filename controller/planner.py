"""The planner: from what is observed and forecast to the allocations and job actions of a tick.

Purely computational, no side effects. A chain of small steps, each with a reason:

    size ─► stabilise (tolerance, scale-down delay, step limit, bounds) ─► fit (placement,
    preemption, resume)

* **size** picks, per workload, the cheapest (replicas, slice) whose predicted latency quantile
  stays under the target minus a headroom, for the rate forecast over the lead time. The
  slice follows days of rates (the profile), the replicas the moment.
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
    JobAction,
    JobPhase,
    Plan,
    Reason,
    ScaleAction,
    SliceAllocation,
    SloSpec,
    WorkloadMetrics,
    available,
)
from controller.jobs import (
    IDLE_UTIL,
    JobInput,
    JobSlot,
    Slice,
    SlicePool,
    candidates,
    choose_victims,
    idle_reclaimable,
    resumes,
    work_at_risk_gpu_s,
)
from controller.slo import burn_rate

BASE_HEADROOM = 0.1
"""Latency budget a new workload starts with in reserve (plan for 90 % of the target); the
error budget moves it from there (``next_headroom``)."""


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """Tuning knobs of the planner; the defaults mirror the HPA's where one exists."""

    tolerance: float = 0.1
    scale_down_delay_s: float = 300.0
    scale_up_max_ratio: float = 2.0
    scale_up_max_pods: int = 4
    min_headroom: float = -0.3  # with the error budget ample: size the quantile 30 % past target
    max_headroom: float = 0.45
    budget_spend_free: float = 0.4  # share of the error budget spent before the floor rises
    budget_pressure_exponent: float = 2.0  # convexity of the rise after it (budget_overspent)
    headroom_gain: float = 0.005  # per tick, per unit of burn rate off the target
    target_burn_rate: float = 0.8  # of the error budget: 1 spends exactly all of it
    headroom_step_up: float = 0.04  # the most one tick adds
    resize_min_saving: float = 0.25
    scale_down_margin: float = 0.0
    resume_reserve_ratio: float = 0.25  # of replicas, for a workload not yet learnt
    resume_horizon_s: float = 1800.0  # the forecast must keep the headroom this long
    resume_cooldown_s: float = 900.0  # after a preemption; doubles with each in the last day
    resume_cooldown_max_s: float = 4 * 3600.0
    resize_dwell_s: float = 1800.0
    resize_max_burn_rate: float = 2.0  # over it, a window's misses scale out, never roll pods
    slice_peak_half_life_s: float = 24 * 3600.0  # memory of the peak rate the slice is sized for
    backlog_drain_s: float = 30.0  # size to clear a queue beyond the SLO's in this long
    slice_profile_min_saving: float = 0.1  # of the profile's mean share, to roll to its slice
    slice_profile_dwell_s: float = 6 * 3600.0  # the least time between its rollouts
    slice_burst_ratio: float = 2.0  # the slice held costs that many times a larger one: grow
    on_off_idle_share: float = 0.25  # of the rate profile without a request: an on/off service
    on_off_scale_down_delay_s: float = 2400.0  # the scale-down delay of an on/off service


# --------------------------------------------------------------------------------------------
# Inputs and per-workload memory
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkloadInput:
    """Everything the planner knows about one opted-in Deployment this tick."""

    spec: SloSpec
    state: DeploymentState
    metrics: WorkloadMetrics
    rate_forecast_rps: float | None  # expected rate over the lead time
    capacity: CapacityModel
    memory: PlannerMemory
    budget_remaining: float = 1.0
    rate_upper_rps: float | None = None  # upper band of the rate over the lead time
    resume_rate_rps: float | None = None  # upper band over the resume horizon
    idle_since_s: float | None = None  # GPU utilisation under IDLE_UTIL since (None: busy)
    rate_profile_rps: tuple[float, ...] = ()  # equally likely quantiles of the step rate

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
    peak_rate_rps: float = 0.0  # decaying peak of the measured rate (``decayed_peak_rps``)
    peak_at_s: float | None = None


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
    placements: Mapping[str, Sequence[Slice]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# size
# --------------------------------------------------------------------------------------------


def next_headroom(
    memory: PlannerMemory,
    metrics: WorkloadMetrics,
    spec: SloSpec,
    budget_remaining: float,
    cfg: PlannerConfig,
    *,
    sized_for_window: bool = True,
) -> float:
    """Integral control of the error budget's burn rate, never below ``headroom_floor``.

    Each window moves the headroom by ``headroom_gain`` times how far its burn rate (its bad
    share over the objective's allowance) is from ``target_burn_rate``: up, by at most
    ``headroom_step_up``, when it spends faster, slowly down when it spends slower. It
    steers toward spending the budget, not toward every window meeting the objective: windows
    sized for the target quantile often miss the objective by a few requests, and stepping up
    on each such miss held about 7 % of the GPU share idle on the servegen traces.

    Only windows the allocation was sized to serve (``window_was_sized_for``) step it up: a
    miss while the load outran the allocation, or while pods were still starting, is the
    forecast's or the cold start's, and the next sizing already answers it. Integrating those
    misses too (wind-up) left the headroom about 0.3 high for 20 minutes after each load step
    of the servegen traces.
    """
    floor = headroom_floor(budget_remaining, cfg)
    burn = window_burn_rate(metrics, spec) or 0.0
    step = min(cfg.headroom_step_up, cfg.headroom_gain * (burn - cfg.target_burn_rate))
    if not sized_for_window:
        step = min(step, 0.0)
    return min(cfg.max_headroom, max(floor, memory.headroom + step))


def window_burn_rate(metrics: WorkloadMetrics, spec: SloSpec) -> float | None:
    """The window's bad share over the objective's allowance; ``None`` without a good ratio."""
    good = metrics.good_ratio
    if good is None or not available(good):
        return None
    return burn_rate(1.0 - good, spec.objective_ratio)


def window_was_sized_for(inp: WorkloadInput) -> bool:
    """Whether the allocation, all pods ready, should have served the window's measured rate.

    The capacity model at the headroom the allocation was sized with says how much the ready
    replicas serve; a window above that, or with pods starting or rolling, measured a transient
    rather than the model's error. Purely computational.
    """
    state, rate = inp.state, inp.metrics.request_rate_rps
    if not state.settled:
        return False
    if not inp.capacity.known or rate is None or not math.isfinite(rate):
        return True
    budget_ms = inp.spec.latency_target_ms * (1.0 - inp.memory.headroom)
    per_replica = max_rate_per_replica(
        inp.capacity, state.slice_pct, inp.spec.latency_quantile, budget_ms
    )
    return rate <= per_replica * state.ready_replicas


def headroom_floor(budget_remaining: float, cfg: PlannerConfig) -> float:
    """The least headroom kept, from the share of the window's error budget already spent.

    The objective is on the window's share of good requests, not on every minute's quantile,
    and a budget never spent is GPU share held for nothing. So until ``budget_spend_free`` of
    it is spent, the planner may size each window a little past the target quantile (down to
    ``min_headroom``, a negative headroom); from there the floor rises to ``max_headroom``
    as the rest of the budget goes, by ``budget_overspent``'s convex schedule. Purely
    computational.
    """
    over = budget_overspent(budget_remaining, cfg)
    return cfg.min_headroom + (cfg.max_headroom - cfg.min_headroom) * over


def budget_overspent(budget_remaining: float, cfg: PlannerConfig) -> float:
    """0 until ``budget_spend_free`` of the error budget is spent, then up to 1 when it is gone.

    The rise is convex (the share past ``budget_spend_free``, to the power
    ``budget_pressure_exponent``): gentle while most of the budget is left, steep as it runs
    out. With a linear rise, a service at half its budget already held 0.15 of headroom and a
    fifth of the way to the upper band; on servegen m-large that bound the cost at 99.48 %
    attainment, above the HPA's at 99.40 %.
    """
    spent = min(1.0, max(0.0, 1.0 - budget_remaining))
    over = max(0.0, spent - cfg.budget_spend_free) / (1.0 - cfg.budget_spend_free)
    return float(over**cfg.budget_pressure_exponent)


def sizing_rate_rps(inp: WorkloadInput, cfg: PlannerConfig) -> float:
    """The rate to size for: the expected rate, never under the one measured now, moving
    toward the forecast's upper band as the error budget is overspent.

    While the budget is ample its noise is the budget's to absorb; a service that keeps
    spending it (bursts the mean does not see coming) is sized for the band instead.
    """
    expected = max(inp.metrics.request_rate_rps or 0.0, inp.rate_forecast_rps or 0.0)
    upper = inp.rate_upper_rps
    if upper is None or upper <= expected:
        return expected
    return expected + budget_overspent(inp.budget_remaining, cfg) * (upper - expected)


def decayed_peak_rps(
    memory: PlannerMemory, rate_rps: float | None, now_s: float, cfg: PlannerConfig
) -> float:
    """The peak measured rate, halving every ``slice_peak_half_life_s`` since it was seen.

    Replicas follow the rate of the moment; the slice is a per-pod size and, as the VPA sizes
    a pod's requests from days of usage, follows the peak instead (``_at_least_peak_slice``). A
    missing rate only lets the peak decay.
    """
    peak = memory.peak_rate_rps
    if memory.peak_at_s is not None and now_s > memory.peak_at_s:
        peak *= 0.5 ** ((now_s - memory.peak_at_s) / cfg.slice_peak_half_life_s)
    if rate_rps is not None and math.isfinite(rate_rps):
        peak = max(peak, rate_rps)
    return peak


def _remember_peak(inp: WorkloadInput, now_s: float, cfg: PlannerConfig) -> WorkloadInput:
    peak = decayed_peak_rps(inp.memory, inp.metrics.request_rate_rps, now_s, cfg)
    return replace(inp, memory=replace(inp.memory, peak_rate_rps=peak, peak_at_s=now_s))


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
    rate = sizing_rate_rps(inp, cfg) + backlog_rps(inp, cfg)
    if not inp.capacity.known:
        return _size_reactive(inp)
    budget_ms = spec.latency_target_ms * (1.0 - headroom)
    candidates = _slice_candidates(inp)
    # the slice outlives many budget states: judged at the most headroom the budget may ask
    # for, where a small slice (its service time a large part of the target) serves least
    shares = profile_shares(inp, candidates, spec.latency_target_ms * (1.0 - cfg.max_headroom))
    candidates = _profile_candidates(inp, candidates, shares, rate, budget_ms, cfg, now_s)
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
    if proposal.share_pct < current.share_pct and cfg.scale_down_margin > 0:
        # going down must still hold with a wider margin: an asymmetric dead band (off by
        # default: the error budget sets the margin, see headroom_floor)
        wider = spec.latency_target_ms * (1.0 - headroom - cfg.scale_down_margin)
        cautious = _cheapest(inp, candidates, rate, wider)
        if cautious is None or cautious.share_pct >= current.share_pct:
            return Proposal(current, Reason.WITHIN_TOLERANCE, "a smaller allocation lacks margin")
        proposal = cautious
    proposal = _resize_hysteresis(inp, proposal, candidates, rate, budget_ms, cfg, now_s, shares)
    proposal = _new_capacity_first(current, proposal)
    return Proposal(proposal, _direction(current, proposal), f"sized for {rate:.1f} rps")


def _wasted(inp: WorkloadInput) -> bool:
    """The current slice is past saturation: shrinking it loses nothing, so it needs no saving."""
    sat = inp.capacity.sat_pct
    return sat is not None and inp.current.slice_pct > _useful_max_pct(sat, inp.spec.slice_step_pct)


def _alternatives(
    inp: WorkloadInput, headroom: float, proposal: Proposal, cfg: PlannerConfig
) -> tuple[Allocation, ...]:
    """Allocations at smaller slices than proposed that also meet the SLO, cheapest first."""
    if proposal.reason is Reason.METRICS_UNAVAILABLE or not inp.capacity.known:
        return ()
    rate = sizing_rate_rps(inp, cfg)
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
    slice seen unsaturated would be a guess; growth is explored gradually instead. Before
    there is a rate profile, a window without a request keeps the current slice: the cheapest
    slice for no load is the smallest, and rolling every pod to it only to roll them back at
    the next burst costs cold starts. With a profile, its slice is chosen for the bursts too,
    and an idle window is the cheapest time to roll to it (``_profile_candidates``).
    """
    if inp.metrics.request_rate_rps == 0.0 and not inp.rate_profile_rps:
        return (inp.current.slice_pct,)
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


def profile_share_pct(inp: WorkloadInput, slice_pct: int, budget_ms: float) -> float | None:
    """The share ``slice_pct`` holds on average over the rate profile: at each of its
    equally likely rates, the replicas that serve it.

    ``None`` when the slice serves nothing within ``budget_ms``, a rate of the profile needs
    more than max-replicas, or there is no profile. Purely computational.
    """
    profile, spec = inp.rate_profile_rps, inp.spec
    per_replica = max_rate_per_replica(inp.capacity, slice_pct, spec.latency_quantile, budget_ms)
    if not profile:
        return None
    total = 0
    for rate in profile:
        replicas = _replicas_for(spec, rate, per_replica)
        if replicas is None:
            return None
        total += replicas
    return slice_pct * total / len(profile)


def profile_shares(
    inp: WorkloadInput, candidates: tuple[int, ...], budget_ms: float
) -> dict[int, float]:
    """``profile_share_pct`` of the candidates and the current slice, where it is defined."""
    out: dict[int, float] = {}
    for slice_pct in sorted({*candidates, inp.current.slice_pct}):
        share = profile_share_pct(inp, slice_pct, budget_ms)
        if share is not None:
            out[slice_pct] = share
    return out


def _profile_candidates(
    inp: WorkloadInput,
    candidates: tuple[int, ...],
    shares: Mapping[int, float],
    rate: float,
    budget_ms: float,
    cfg: PlannerConfig,
    now_s: float,
) -> tuple[int, ...]:
    """The slice the rate profile holds least share with, while it serves the rate now and
    at less than ``slice_burst_ratio`` times a larger slice's share (``_burst_outgrows``).

    Replicas follow the rate of the moment; the slice is a per-pod size and follows days of
    rates, as the oracle's does over the whole trace and the VPA's over days of usage. Its
    cheapest slice weighs the floor of idle hours against the share efficiency of busy ones:
    on a service idle most of the day (Alibaba LoRA, 70 % of its minutes without a request)
    one replica of a smaller slice held through the idle hours outweighs the saturating
    slice's better rate per share at the peaks. With ties the larger slice (fewer pods).
    The current slice stays unless the best saves ``slice_profile_min_saving`` over the
    profile, and for ``slice_profile_dwell_s`` after a resize: two slices close in cost would
    otherwise trade places as the profile and the latency model move. Judged at the most
    headroom, a small slice's share swings with the learnt service-time quantile (on LoRA,
    30 % and 40 % traded places 104 times in 23 days as it moved between 2.3 and 3.0).
    Without a profile yet (under a day of history), ``_at_least_peak_slice``.
    """
    usable = [s for s in candidates if s in shares]
    if not usable:
        return _at_least_peak_slice(inp, candidates, budget_ms)
    best = min(usable, key=lambda s: (shares[s], -s))
    current = inp.current.slice_pct
    last = inp.memory.last_resize_s
    dwelling = last is not None and now_s - last < cfg.slice_profile_dwell_s
    if current in usable and (dwelling or not _profile_saves(shares, best, current, cfg)):
        best = current
    larger = tuple(s for s in candidates if s >= best)
    at_best = _cheapest(inp, (best,), rate, budget_ms)
    if at_best is None:
        return larger  # a rate past the profile: grow
    at_larger = _cheapest(inp, larger, rate, budget_ms)
    if at_larger is not None and _burst_outgrows(at_best, at_larger, cfg):
        return larger
    return (best,)


def _burst_outgrows(held: Allocation, grown: Allocation, cfg: PlannerConfig) -> bool:
    """A burst the held slice serves only at ``slice_burst_ratio`` times the share of a
    larger one: the profile's slice is past what it serves cheaply, and the slice grows.

    Near its latency target a small slice's replicas each take little rate (the queueing
    model's rate per replica falls to nothing as the service time nears the budget): the
    day-3 burst of the Alibaba LoRA trace (3.7 rps) asked for 76 replicas of the 20 % slice
    its idle hours chose, 1,520 % of a card, where 2 x 50 % served it. With it held, the
    scale-out took the whole pool (40 x 20 %) for 12 minutes.
    """
    return grown.slice_pct > held.slice_pct and (
        grown.share_pct * cfg.slice_burst_ratio <= held.share_pct
    )


def _profile_saves(
    shares: Mapping[int, float], to_pct: int, from_pct: int, cfg: PlannerConfig
) -> bool:
    """Rolling from ``from_pct`` to ``to_pct`` saves ``slice_profile_min_saving`` of the
    profile's mean share."""
    if to_pct not in shares or from_pct not in shares:
        return False
    return shares[to_pct] <= (1.0 - cfg.slice_profile_min_saving) * shares[from_pct]


def _at_least_peak_slice(
    inp: WorkloadInput, candidates: tuple[int, ...], budget_ms: float
) -> tuple[int, ...]:
    """Drop the slices smaller than the one the recent peak rate would be served at.

    A slice chosen for the rate of a quiet minute is a slow slice when the next burst comes
    (a 20 % slice serves 2.5 times slower than a saturated 50 % one) and a rollout of every
    pod to leave it. On a sparse, bursty trace (Alibaba LoRA) sizing the slice to the moment
    rolled the pods about 2,300 times in 23 days; a small service whose peak fits a small
    slice still gets one.
    """
    peak = max(inp.memory.peak_rate_rps, inp.metrics.request_rate_rps or 0.0)
    at_peak = _cheapest(inp, candidates, peak, budget_ms)
    if at_peak is None:
        return candidates
    return tuple(s for s in candidates if s >= at_peak.slice_pct)


def _may_resize(inp: WorkloadInput, to_pct: int, now_s: float, cfg: PlannerConfig) -> bool:
    """Resize only from a steady state with a calibrated latency model, and shrink not again
    before the last resize is learnt.

    Before the first calibrated window every slice's latency is the prior's guess; a resize on
    it at the day-night demo's first tick rolled chat's pods while jobs filled the pool (no
    room for a surge pod), took it down for three minutes and left its budget overspent for
    hours (jobs got 74 % of the free GPU-hours instead of 84 %).

    A rollout in progress or pods still starting mean the metrics describe a mix of slices;
    the capacity model needs ``resize_dwell_s`` at a new slice before judging a smaller one.
    Growing the slice is not held by the dwell: a burst that needs faster pods needs them now.
    """
    if not inp.state.settled:
        return False
    if inp.capacity.service_quantile_mult is None:
        return False  # latency not yet calibrated at any slice: a rollout would be a guess
    last = inp.memory.last_resize_s
    return to_pct > inp.current.slice_pct or last is None or now_s - last >= cfg.resize_dwell_s


def _resize_hysteresis(
    inp: WorkloadInput,
    proposal: Allocation,
    candidates: tuple[int, ...],
    rate: float,
    budget_ms: float,
    cfg: PlannerConfig,
    now_s: float,
    shares: Mapping[int, float],
) -> Allocation:
    """Keep the current slice unless a resize saves at least ``resize_min_saving`` of the cost
    now, or ``slice_profile_min_saving`` over the rate profile without costing more now; keep
    it too while the window burns the budget faster than ``resize_max_burn_rate`` or pods
    are starting, unless a burst outgrows it (``_burst_growth``)."""
    current, spec = inp.current, inp.spec
    if proposal.slice_pct == current.slice_pct:
        return proposal
    same_slice = _replicas_at_slice(inp, current.slice_pct, rate, budget_ms)
    if _may_resize(inp, proposal.slice_pct, now_s, cfg):
        if same_slice is None or _wasted(inp):
            return proposal
        if not _burning(inp, cfg):
            if proposal.share_pct <= (1.0 - cfg.resize_min_saving) * same_slice.share_pct:
                return proposal
            if proposal.share_pct <= same_slice.share_pct and _profile_saves(
                shares, proposal.slice_pct, current.slice_pct, cfg
            ):
                return proposal
            return same_slice
    # a burst is being missed or pods are starting: new replicas add capacity as they start,
    # while a rollout whose surge pod does not fit takes a serving pod down first
    held = same_slice or Allocation(spec.max_replicas, current.slice_pct)
    return _burst_growth(inp, candidates, rate, budget_ms, held, cfg) or held


def _burst_growth(
    inp: WorkloadInput,
    candidates: tuple[int, ...],
    rate: float,
    budget_ms: float,
    held: Allocation,
    cfg: PlannerConfig,
) -> Allocation | None:
    """The larger slice a burst outgrowing the held one rolls to at once, with at least one
    replica more than now: then each old pod serves until a new one is ready, at maxSurge 1
    and at maxUnavailable 1 alike (minAvailable is the old count), so the rollout only adds
    capacity, as the scale-out it replaces would.

    ``None`` (hold the slice) before the latency model is calibrated, or where the held
    slice costs less than ``slice_burst_ratio`` times the growth's share.
    """
    if inp.capacity.service_quantile_mult is None:
        return None
    best: Allocation | None = None
    for slice_pct in candidates:
        alloc = _replicas_at_slice(inp, slice_pct, rate, budget_ms)
        if slice_pct <= inp.current.slice_pct or alloc is None:
            continue
        grown = Allocation(max(alloc.replicas, inp.current.replicas + 1), slice_pct)
        if best is None or (grown.share_pct, grown.replicas) < (best.share_pct, best.replicas):
            best = grown
    return best if best is not None and _burst_outgrows(held, best, cfg) else None


def _burning(inp: WorkloadInput, cfg: PlannerConfig) -> bool:
    """The window spends the error budget faster than ``resize_max_burn_rate``."""
    burn = window_burn_rate(inp.metrics, inp.spec)
    return burn is not None and burn > cfg.resize_max_burn_rate


def _replicas_at_slice(
    inp: WorkloadInput, slice_pct: int, rate: float, budget_ms: float
) -> Allocation | None:
    per_replica = max_rate_per_replica(
        inp.capacity, slice_pct, inp.spec.latency_quantile, budget_ms
    )
    replicas = _replicas_for(inp.spec, rate, per_replica)
    return None if replicas is None else Allocation(replicas, slice_pct)


def _replicas_for(spec: SloSpec, rate: float, per_replica: float) -> int | None:
    """Replicas that serve ``rate`` at ``per_replica`` each, at least min-replicas (and one);
    ``None`` when none serves or max-replicas would not do."""
    if per_replica <= 0:
        return None
    replicas = max(spec.min_replicas, 1, math.ceil(rate / per_replica))
    return None if replicas > spec.max_replicas else replicas


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


def is_on_off(inp: WorkloadInput, cfg: PlannerConfig) -> bool:
    """At least ``on_off_idle_share`` of the rate profile's steps saw no request.

    Load that comes in bursts between idle stretches (Alibaba LoRA: 60-95 % of any week's
    minutes empty) against load that never stops (NASA and servegen: at most 4 %).
    """
    profile = inp.rate_profile_rps
    idle = sum(1 for r in profile if r <= 0.0)
    return bool(profile) and idle >= cfg.on_off_idle_share * len(profile)


def scale_down_delay_s(inp: WorkloadInput, cfg: PlannerConfig) -> float:
    """How long recommendations bound a scale-down: the HPA's 300 s, or
    ``on_off_scale_down_delay_s`` for an on/off service (``is_on_off``).

    On/off load loses its error budget at the bursts' onsets, which a 60 s cold start
    cannot cover: only capacity still standing from the last burst serves the next, as
    serverless platforms keep an instance warm for minutes after an invocation. Held 40
    minutes, the bad requests of LoRA's first 20 days fell from 7,026 to 4,072; held that
    long on load that never stops, servegen's cost rose above the HPA's for nothing.
    """
    if is_on_off(inp, cfg):
        return max(cfg.scale_down_delay_s, cfg.on_off_scale_down_delay_s)
    return cfg.scale_down_delay_s


def apply_scale_down_delay(
    inp: WorkloadInput, proposal: Proposal, now_s: float, cfg: PlannerConfig
) -> tuple[Proposal, tuple[tuple[float, Allocation], ...]]:
    """The largest recommendation of the last ``scale_down_delay_s`` bounds a scale-down."""
    delay_s = scale_down_delay_s(inp, cfg)
    horizon = now_s - delay_s
    history = tuple(r for r in inp.memory.recommendations if r[0] > horizon)
    history = (*history, (now_s, proposal.allocation))
    current = inp.current
    if proposal.allocation.share_pct >= current.share_pct:
        return proposal, history
    strongest = max(history, key=lambda r: (r[1].share_pct, r[0]))[1]
    if strongest.share_pct >= current.share_pct:
        return Proposal(
            current,
            Reason.SCALE_DOWN_STABILIZED,
            f"recommendations of the last {delay_s:.0f} s were higher",
        ), history
    if strongest != proposal.allocation:
        message = f"{proposal.message} (stabilised over {delay_s:.0f} s)"
        return Proposal(strongest, proposal.reason, message), history
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


def apply_idle_reclaim(inp: WorkloadInput, proposal: Proposal, now_s: float) -> Proposal:
    """``reclaim-idle-after``: a Deployment idle that long shrinks to its minimum.

    Idle means GPU utilisation under ``IDLE_UTIL`` all along (missing utilisation is no
    evidence either way: the tracker keeps its value, and nothing is reclaimed in a tick that
    does not measure it). Once utilisation comes back the tracker clears and the usual sizing
    restores what demand needs. It applies when request metrics are unavailable too: an idle
    service serves no requests, so it has no latency to read.
    """
    after = inp.spec.reclaim_idle_after_s
    if after is None or inp.idle_since_s is None or now_s - inp.idle_since_s < after:
        return proposal
    if not available(inp.metrics.gpu_util):
        return proposal
    floor = Allocation(inp.spec.min_replicas, inp.spec.slice_min_pct)
    if proposal.allocation.share_pct <= floor.share_pct:
        return proposal
    return Proposal(
        floor,
        Reason.IDLE_RECLAIMED,
        f"idle reclaim: GPU utilisation under {100 * IDLE_UTIL:.0f} % for "
        f"{(now_s - inp.idle_since_s) / 60:.0f} min (reclaim-idle-after {after / 60:.0f} min): "
        f"shrink to the minimum, {floor.replicas} x {floor.slice_pct} %, until demand returns",
    )


def backlog_rps(inp: WorkloadInput, cfg: PlannerConfig) -> float:
    """Extra rate to size for so that a queue beyond what the SLO allows drains in time.

    Under overload the completed-request rate is capped by today's capacity and hides the
    demand; the requests in flight do not. By Little's law a service within its target holds
    about ``rate x target`` requests (the mean sojourn is under the quantile target); what is
    beyond that is a backlog, to be cleared within ``backlog_drain_s`` on top of the arrivals.
    Zero without an in-flight signal.
    """
    m = inp.metrics
    if m.in_flight is None or m.request_rate_rps is None:
        return 0.0
    allowed = m.request_rate_rps * inp.spec.latency_target_ms / 1000.0
    return max(0.0, m.in_flight - allowed) / cfg.backlog_drain_s


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FitResult:
    """What *fit* decided: the proposals that fit, job actions, and where every slice goes.

    ``placements`` maps each workload and each job that runs after this tick (kept or
    resumed) to its slices as the planner placed them: a plan, not a promise of the
    scheduler's choice, but one that proves the plan fits card by card.
    """

    proposals: dict[str, Proposal]
    actions: list[JobAction]
    placements: dict[str, list[Slice]]
    messages: dict[str, str]  # why, per job acted on
    removals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per workload that scales in: the pods to remove, emptiest cards first."""


@dataclass
class _Fit:
    """The mutable state of one fit: the pool, the job slots and the tick's time."""

    pool: SlicePool
    slots: dict[str, JobSlot]
    now_s: float
    cfg: PlannerConfig


def fit(
    desired: Mapping[str, Proposal],
    inputs: Sequence[WorkloadInput],
    jobs: Sequence[JobInput],
    snapshot: ClusterSnapshot,
    cfg: PlannerConfig,
    fallbacks: Mapping[str, tuple[Allocation, ...]] | None = None,
) -> FitResult:
    """Place every desired slice; preempt lower-priority jobs or cap what does not fit.

    Scale-downs release first; then workloads claim capacity by priority (ties by name, so the
    outcome is deterministic); idle jobs are reclaimed; suspended jobs resume into what is
    left when the forecast over the resume horizon leaves room. The returned proposals never
    need more than the pool holds.
    """
    owned: dict[str, list[Slice]] = {}
    pods: dict[str, list[SliceAllocation]] = {}
    for a in snapshot.inventory.allocations:
        owned.setdefault(a.owner, []).append((a.card_id, a.share_pct, a.memory_mib))
        pods.setdefault(a.owner, []).append(a)
    used_pct = snapshot.inventory.used_pct_by_card()
    slots = {
        j.key: JobSlot(j, owned.get(j.key, []))
        for j in jobs
        if j.state.phase in (JobPhase.RUNNING, JobPhase.PENDING)
    }
    ctx = _Fit(SlicePool(snapshot.inventory), slots, snapshot.time_s, cfg)
    out: dict[str, Proposal] = {}
    placements: dict[str, list[Slice]] = {}
    claims: list[tuple[WorkloadInput, Proposal, list[Slice]]] = []
    removals: dict[str, tuple[str, ...]] = {}
    for inp in inputs:
        prop = desired[inp.key]
        mine = owned.get(inp.key, [])
        target = prop.allocation
        if target.slice_pct == inp.current.slice_pct:
            keep = drain_order(pods.get(inp.key, []), used_pct)
            drop = keep[target.replicas :]
            ctx.pool.release_all(_slice(a) for a in drop)
            mine = [_slice(a) for a in keep[: target.replicas]]
            if drop:
                removals[inp.key] = tuple(a.pod for a in reversed(drop))  # emptiest first
        claims.append((inp, prop, list(mine)))
    claims.sort(key=lambda c: (-c[0].spec.priority, c[0].key))
    for inp, prop, held in claims:
        out[inp.key], placements[inp.key] = _fit_one(
            inp, prop, held, (fallbacks or {}).get(inp.key, ()), ctx
        )
    actions: list[JobAction] = []
    messages: dict[str, str] = {}
    for key, slot in slots.items():
        if slot.preempted:
            actions.append(JobAction(slot.inp.state.ref, suspend=True, reason=Reason.PREEMPTED))
            messages[key] = slot.why
        elif idle_reclaimable(slot.inp, ctx.now_s):
            ctx.pool.release_all(slot.allocations)
            slot.preempted = True
            actions.append(JobAction(slot.inp.state.ref, suspend=True, reason=Reason.SCALE_DOWN))
            after = slot.inp.spec.reclaim_idle_after_s or 0.0
            messages[key] = (
                f"idle reclaim: GPU utilisation under {100 * IDLE_UTIL:.0f} % for "
                f"{after / 60:.0f} min: suspend and give back its slices"
            )
        elif slot.allocations:
            placements[key] = list(slot.allocations)
    resumed = resumes(
        jobs,
        ctx.pool,
        _resume_reserve(inputs, desired, out, cfg),
        ctx.now_s,
        cooldown_s=cfg.resume_cooldown_s,
        cooldown_max_s=cfg.resume_cooldown_max_s,
    )
    actions.extend(resumed.actions)
    placements.update(resumed.placements)
    horizon_min = cfg.resume_horizon_s / 60
    for act in resumed.actions:
        messages[act.ref.key] = (
            f"resume: the gang fits and the forecast keeps inference's headroom for "
            f"{horizon_min:.0f} min"
        )
    return FitResult(out, actions, placements, messages, removals)


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
    if refitted is not None:
        alternative, slices = refitted
        return Proposal(
            alternative,
            Reason.CAPACITY_LIMITED,
            f"{prop.message}; {target.replicas} x {target.slice_pct} % does not fit the "
            f"fragmented pool, {alternative.replicas} x {alternative.slice_pct} % does",
        ), slices
    if target.slice_pct != inp.current.slice_pct:
        return Proposal(
            inp.current,
            Reason.CAPACITY_LIMITED,
            f"{prop.message}; resize to {target.replicas} x {target.slice_pct} % does not fit",
        ), held
    fitted = len(held) + len(placed)
    return Proposal(
        Allocation(fitted, target.slice_pct),
        Reason.CAPACITY_LIMITED,
        f"{prop.message}; only {fitted} of {target.replicas} slices fit the pool",
    ), held + placed


def _claim(inp: WorkloadInput, count: int, slice_pct: int, have: int, ctx: _Fit) -> list[Slice]:
    """Place up to ``count`` new slices (``have`` already held), preempting when they do not fit.

    Victims are chosen for all the missing slices at once (``choose_victims``). Jobs inside
    their minimum runtime are victims only for a ``critical`` workload, and only for the
    slices it needs to keep its SLO at the observed rate (``_slo_floor``).
    """
    mib = inp.state.memory_mib
    placed = _place_up_to(ctx.pool, [(slice_pct, mib)] * max(0, count))
    missing = max(0, count) - len(placed)
    if missing > 0:
        demand = [(slice_pct, mib)] * missing
        ranked = candidates(ctx.slots.values(), inp.spec.priority, ctx.now_s, allow_protected=False)
        _preempt(inp, choose_victims(ctx.pool, demand, ranked), demand, ctx)
        placed += _place_up_to(ctx.pool, demand)
    if inp.spec.priority >= PRIORITY_NAMES["critical"]:
        short = min(count - len(placed), _slo_floor(inp, slice_pct) - have - len(placed))
        if short > 0:
            demand = [(slice_pct, mib)] * short
            ranked = candidates(
                ctx.slots.values(), inp.spec.priority, ctx.now_s, allow_protected=True
            )
            _preempt(inp, choose_victims(ctx.pool, demand, ranked), demand, ctx)
            placed += _place_up_to(ctx.pool, demand)
    return placed


def _place_up_to(pool: SlicePool, demand: Sequence[tuple[int, int]]) -> list[Slice]:
    placed: list[Slice] = []
    for pct, mib in demand:
        card = pool.place(pct, mib)
        if card is None:
            break
        placed.append((card, pct, mib))
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
        alloc = _replicas_at_slice(inp, slice_pct, rate, spec.latency_target_ms)
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

    Only from a steady state (a resize needs one). On success the pool holds the new slices
    and none of the old; on failure it is as it was (the partial scale-up kept).
    """
    if not options or not inp.state.settled:
        return None
    ctx.pool.release_all(placed)
    for option in options:
        if option.slice_pct == inp.current.slice_pct or option == target:
            continue
        slices = _claim_resize(inp, option, held, ctx)
        if slices is not None:
            return option, slices
    ctx.pool.reserve_all(placed)
    return None


def _claim_resize(
    inp: WorkloadInput, target: Allocation, held: list[Slice], ctx: _Fit
) -> list[Slice] | None:
    """Resize all-or-nothing: new slices beside the old ones, else in their place, else none.

    Returns the target's slices when all are placed; ``None`` when the old slices were
    restored exactly where they were (and nobody was preempted for the attempt).
    """
    already = {k for k, slot in ctx.slots.items() if slot.preempted}
    ctx.pool.release_all(held)
    placed = _claim(inp, target.replicas, target.slice_pct, 0, ctx)
    if len(placed) >= target.replicas:
        return placed
    ctx.pool.release_all(placed)
    ctx.pool.reserve_all(held)
    for key, slot in ctx.slots.items():  # a resize that does not happen preempts nobody
        if slot.preempted and key not in already:
            slot.preempted = False
            ctx.pool.reserve_all(slot.allocations)
    return None


def _resume_reserve(
    inputs: Sequence[WorkloadInput],
    desired: Mapping[str, Proposal],
    fitted: Mapping[str, Proposal],
    cfg: PlannerConfig,
) -> list[tuple[int, int]]:
    """The slices inference is forecast to need over the resume horizon beyond its plan.

    What it wanted this tick and did not get (a capacity-limited workload must not see the
    fragments it could not use handed to a job it will preempt later), or what ``size``
    would ask at the planned slice for the upper band over the resume horizon
    (``resume_rate_rps``), whichever is more; a workload whose capacity is not learnt yet
    keeps ``resume_reserve_ratio`` of its replicas (at least one) in reserve. Largest slices
    first, so the trial placement is the strict one.
    """
    out: list[tuple[int, int]] = []
    for inp in inputs:
        wanted = desired[inp.key].allocation
        planned = fitted[inp.key].allocation
        if wanted.slice_pct != planned.slice_pct and wanted.share_pct > planned.share_pct:
            out.extend([(wanted.slice_pct, inp.state.memory_mib)] * wanted.replicas)
            continue
        rate = max(
            inp.metrics.request_rate_rps or 0.0,
            inp.rate_forecast_rps or 0.0,
            inp.resume_rate_rps or 0.0,
        )
        slice_pct = planned.slice_pct
        if inp.capacity.known and inp.metrics.core_available():
            # a resume is sized for the target itself, never past it on an ample budget
            budget_ms = inp.spec.latency_target_ms * (1.0 - max(0.0, inp.memory.headroom))
            need = _replicas_at_slice(inp, slice_pct, rate, budget_ms)
            want = inp.spec.max_replicas if need is None else need.replicas
        else:
            want = planned.replicas + max(1, math.ceil(cfg.resume_reserve_ratio * planned.replicas))
        if wanted.slice_pct == slice_pct:
            want = max(want, wanted.replicas)
        extra = max(0, min(inp.spec.max_replicas, want) - planned.replicas)
        out.extend([(slice_pct, inp.state.memory_mib)] * extra)
    out.sort(key=lambda d: (-d[0], -d[1]))
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
    inputs = [_remember_peak(inp, now, cfg) for inp in inputs]
    by_key = {inp.key: inp for inp in inputs}
    for inp in inputs:
        headroom = next_headroom(
            inp.memory,
            inp.metrics,
            inp.spec,
            inp.budget_remaining,
            cfg,
            sized_for_window=window_was_sized_for(inp),
        )
        prop = size(inp, headroom, cfg, now)
        if prop.reason is Reason.METRICS_UNAVAILABLE:
            # an idle service has no latency to read, but its idleness is measured
            proposals[inp.key] = apply_idle_reclaim(inp, prop, now)
            memories[inp.key] = replace(inp.memory, headroom=headroom)
            continue
        prop = apply_tolerance(inp, prop, cfg)
        prop, history = apply_scale_down_delay(inp, prop, now, cfg)
        prop = apply_step_limit(inp, prop, cfg)
        prop = apply_bounds(inp.spec, prop)
        prop = apply_idle_reclaim(inp, prop, now)
        proposals[inp.key] = prop
        memories[inp.key] = replace(inp.memory, recommendations=history, headroom=headroom)
    fallbacks = {
        k: _alternatives(i, memories[k].headroom, proposals[k], cfg) for k, i in by_key.items()
    }
    result = fit(proposals, inputs, jobs, snapshot, cfg, fallbacks)
    fitted, job_actions = result.proposals, result.actions
    scale: list[ScaleAction] = []
    decisions: list[Decision] = []
    for inp in inputs:
        prop = fitted[inp.key]
        current = inp.current
        if prop.allocation.slice_pct != current.slice_pct:
            memories[inp.key] = replace(memories[inp.key], last_resize_s=now)
        changes = prop.allocation != current
        if changes:
            scale_in = (
                prop.allocation.slice_pct == current.slice_pct
                and prop.allocation.replicas < current.replicas
            )
            scale.append(
                ScaleAction(
                    inp.state.ref,
                    prop.allocation,
                    inp.state.memory_mib,
                    prop.reason,
                    result.removals.get(inp.key, ()) if scale_in else (),
                )
            )
        decisions.append(
            Decision(now, inp.key, prop.reason, prop.message, current, prop.allocation)
        )
    for act in job_actions:
        decisions.append(Decision(now, act.ref.key, act.reason, result.messages[act.ref.key]))
    return PlanResult(
        Plan(tuple(scale), tuple(job_actions)),
        tuple(decisions),
        memories,
        {k: p.allocation for k, p in fitted.items()},
        result.placements,
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
