"""The slice stage: which slice sizes are worth considering, and when a resize pays.

Replicas follow the rate of the moment; the slice is a per-pod size and, as the VPA sizes a
pod's requests from days of usage, follows days of rates (the rate profile) or, before there
is one, the recent peak. A resize rolls every pod, so it must save enough, not repeat too
soon, and not happen mid-burst unless the burst outgrows the slice. Its memory
(``SliceMemory``) is the last resize and the decaying peak rate. Purely computational.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from controller.capacity import max_rate_per_replica
from controller.domain import Allocation, Reason
from controller.policy.headroom import HeadroomConfig, window_burn_rate
from controller.policy.replicas import cheapest, replicas_at_slice, replicas_for, sizing_rate_rps

if TYPE_CHECKING:
    from controller.policy.inputs import WorkloadInput
    from controller.policy.verdict import Proposal


@dataclass(frozen=True, slots=True)
class SliceConfig:
    """When the slice changes."""

    resize_min_saving: float = 0.25  # of the share now, for a resize the profile does not ask
    resize_dwell_s: float = 1800.0  # at a new slice before a smaller one is judged
    resize_max_burn_rate: float = 2.0  # over it, a window's misses scale out, never roll pods
    peak_half_life_s: float = 24 * 3600.0  # memory of the peak rate the slice is sized for
    profile_min_saving: float = 0.1  # of the profile's mean share, to roll to its slice
    profile_dwell_s: float = 6 * 3600.0  # the least time between its rollouts
    burst_ratio: float = 2.0  # the slice held costs that many times a larger one: grow


@dataclass(frozen=True, slots=True)
class SliceMemory:
    """What the slice stage remembers of one workload."""

    last_resize_s: float | None = None
    peak_rate_rps: float = 0.0  # decaying peak of the measured rate (``decayed_peak_rps``)
    peak_at_s: float | None = None


@dataclass(frozen=True, slots=True)
class SliceChoice:
    """One workload's slice question this tick: the slices considered, the rate and latency
    budget they are judged at, and the rate profile's mean share per slice."""

    inp: WorkloadInput
    candidates: tuple[int, ...]
    rate: float
    budget_ms: float
    shares: Mapping[int, float]
    now_s: float
    cfg: SliceConfig


# --- memory ---------------------------------------------------------------------------------


def decayed_peak_rps(
    memory: SliceMemory, rate_rps: float | None, now_s: float, cfg: SliceConfig
) -> float:
    """The peak measured rate, halving every ``peak_half_life_s`` since it was seen.

    Replicas follow the rate of the moment; the slice is a per-pod size and, as the VPA sizes
    a pod's requests from days of usage, follows the peak instead (``at_least_peak_slice``).
    A missing rate only lets the peak decay.
    """
    peak = memory.peak_rate_rps
    if memory.peak_at_s is not None and now_s > memory.peak_at_s:
        peak *= 0.5 ** ((now_s - memory.peak_at_s) / cfg.peak_half_life_s)
    if rate_rps is not None and math.isfinite(rate_rps):
        peak = max(peak, rate_rps)
    return peak


def remember_peak(
    memory: SliceMemory, rate_rps: float | None, now_s: float, cfg: SliceConfig
) -> SliceMemory:
    """The memory with this tick's decayed peak."""
    peak = decayed_peak_rps(memory, rate_rps, now_s, cfg)
    return replace(memory, peak_rate_rps=peak, peak_at_s=now_s)


# --- candidates -----------------------------------------------------------------------------


def useful_max_pct(sat_pct: float, step_pct: int) -> int:
    """The smallest slice step that holds the saturation share (within 5 % of a step)."""
    return step_pct * math.ceil(sat_pct / step_pct - 0.05)


def slice_candidates(inp: WorkloadInput, now_s: float) -> tuple[int, ...]:
    """Slices worth considering: saturated ones are skipped, unexplored ones one step at a time,
    and a size whose rollout failed is not tried again before its backoff expires
    (``controller.policy.rollback``).

    Without evidence that the model uses a larger slice, growing past twice the largest
    slice seen unsaturated would be a guess; growth is explored gradually instead. Before
    there is a rate profile, a window without a request keeps the current slice: the cheapest
    slice for no load is the smallest, and rolling every pod to it only to roll them back at
    the next burst costs cold starts. With a profile, its slice is chosen for the bursts too,
    and an idle window is the cheapest time to roll to it (``profile_candidates``).
    """
    if inp.metrics.request_rate_rps == 0.0 and not inp.rate_profile_rps:
        return (inp.current.slice_pct,)
    spec, cap = inp.spec, inp.capacity
    explored = max(cap.explored_max_pct, inp.current.slice_pct)
    limit = max(explored * 2, spec.slice_min_pct)
    blocked = inp.memory.rollback.blocked_pct(now_s)
    out = []
    for s in spec.slice_options_pct():
        if s > limit or s in blocked:
            continue
        if cap.sat_pct is not None and s > useful_max_pct(cap.sat_pct, spec.slice_step_pct):
            continue  # past saturation a larger slice buys nothing
        out.append(s)
    return tuple(out) or (inp.current.slice_pct,)


def alternatives(
    inp: WorkloadInput, headroom: float, proposal: Proposal, cfg: HeadroomConfig, now_s: float
) -> tuple[Allocation, ...]:
    """Allocations at smaller slices than proposed that also meet the SLO, cheapest first:
    what placement tries when the proposal does not fit the fragmented pool."""
    if proposal.reason is Reason.METRICS_UNAVAILABLE or not inp.capacity.known:
        return ()
    rate = sizing_rate_rps(inp, cfg)
    budget_ms = inp.spec.latency_target_ms * (1.0 - headroom)
    out = []
    for slice_pct in slice_candidates(inp, now_s):
        if slice_pct < proposal.allocation.slice_pct:
            alloc = replicas_at_slice(inp, slice_pct, rate, budget_ms)
            if alloc is not None:
                out.append(alloc)
    return tuple(sorted(out, key=lambda a: (a.share_pct, a.replicas)))


# --- the rate profile -----------------------------------------------------------------------


def profile_share_pct(inp: WorkloadInput, slice_pct: int, budget_ms: float) -> float | None:
    """The share ``slice_pct`` holds on average over the rate profile: at each of its
    equally likely rates, the replicas that serve it.

    ``None`` when the slice serves nothing within ``budget_ms``, a rate of the profile needs
    more than max-replicas, or there is no profile. Purely computational.
    """
    profile, spec = inp.rate_profile_rps, inp.spec
    per_replica = max_rate_per_replica(inp.capacity, slice_pct, spec.latency_quantile, budget_ms)
    if not profile or per_replica <= 0:
        return None
    rates = np.asarray(profile, dtype=np.float64)
    if not np.isfinite(rates).all():  # the exact loop, for what it says of non-finite rates
        total = 0
        for rate in profile:
            replicas = replicas_for(spec, rate, per_replica)
            if replicas is None:
                return None
            total += replicas
        return slice_pct * total / len(profile)
    # ``replicas_for`` at every rate at once (the planner's hottest loop; exact: IEEE division
    # and ceil are the same in numpy, and a sum of integers below 2**53 is exact)
    need = np.maximum(np.ceil(rates / per_replica), max(spec.min_replicas, 1))
    if need.max() > spec.max_replicas:
        return None
    return slice_pct * int(need.sum()) / len(profile)


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


def profile_candidates(choice: SliceChoice) -> tuple[int, ...]:
    """The slice the rate profile holds least share with, while it serves the rate now and
    at less than ``burst_ratio`` times a larger slice's share (``burst_outgrows``).

    Replicas follow the rate of the moment; the slice is a per-pod size and follows days of
    rates, as the oracle's does over the whole trace and the VPA's over days of usage. Its
    cheapest slice weighs the floor of idle hours against the share efficiency of busy ones:
    on a service idle most of the day (Alibaba LoRA, 70 % of its minutes without a request)
    one replica of a smaller slice held through the idle hours outweighs the saturating
    slice's better rate per share at the peaks. With ties the larger slice (fewer pods).
    The current slice stays unless the best saves ``profile_min_saving`` over the profile,
    and for ``profile_dwell_s`` after a resize: two slices close in cost would otherwise
    trade places as the profile and the latency model move. Judged at the most headroom, a
    small slice's share swings with the learnt service-time quantile (on LoRA, 30 % and 40 %
    traded places 104 times in 23 days as it moved between 2.3 and 3.0). Without a profile
    yet (under a day of history), ``at_least_peak_slice``.
    """
    inp, candidates, shares, cfg = choice.inp, choice.candidates, choice.shares, choice.cfg
    usable = [s for s in candidates if s in shares]
    if not usable:
        return at_least_peak_slice(inp, candidates, choice.budget_ms)
    best = min(usable, key=lambda s: (shares[s], -s))
    current = inp.current.slice_pct
    last = inp.memory.slices.last_resize_s
    dwelling = last is not None and choice.now_s - last < cfg.profile_dwell_s
    if current in usable and (dwelling or not profile_saves(shares, best, current, cfg)):
        best = current
    larger = tuple(s for s in candidates if s >= best)
    at_best = cheapest(inp, (best,), choice.rate, choice.budget_ms)
    if at_best is None:
        return larger  # a rate past the profile: grow
    at_larger = cheapest(inp, larger, choice.rate, choice.budget_ms)
    if at_larger is not None and burst_outgrows(at_best, at_larger, cfg):
        return larger
    return (best,)


def burst_outgrows(held: Allocation, grown: Allocation, cfg: SliceConfig) -> bool:
    """A burst the held slice serves only at ``burst_ratio`` times the share of a larger one:
    the profile's slice is past what it serves cheaply, and the slice grows.

    Near its latency target a small slice's replicas each take little rate (the queueing
    model's rate per replica falls to nothing as the service time nears the budget): the
    day-3 burst of the Alibaba LoRA trace (3.7 rps) asked for 76 replicas of the 20 % slice
    its idle hours chose, 1,520 % of a card, where 2 x 50 % served it. With it held, the
    scale-out took the whole pool (40 x 20 %) for 12 minutes.
    """
    return grown.slice_pct > held.slice_pct and (
        grown.share_pct * cfg.burst_ratio <= held.share_pct
    )


def profile_saves(
    shares: Mapping[int, float], to_pct: int, from_pct: int, cfg: SliceConfig
) -> bool:
    """Rolling from ``from_pct`` to ``to_pct`` saves ``profile_min_saving`` of the profile's
    mean share."""
    if to_pct not in shares or from_pct not in shares:
        return False
    return shares[to_pct] <= (1.0 - cfg.profile_min_saving) * shares[from_pct]


def at_least_peak_slice(
    inp: WorkloadInput, candidates: tuple[int, ...], budget_ms: float
) -> tuple[int, ...]:
    """Drop the slices smaller than the one the recent peak rate would be served at.

    A slice chosen for the rate of a quiet minute is a slow slice when the next burst comes
    (a 20 % slice serves 2.5 times slower than a saturated 50 % one) and a rollout of every
    pod to leave it. On a sparse, bursty trace (Alibaba LoRA) sizing the slice to the moment
    rolled the pods about 2,300 times in 23 days; a small service whose peak fits a small
    slice still gets one.
    """
    peak = max(inp.memory.slices.peak_rate_rps, inp.metrics.request_rate_rps or 0.0)
    at_peak = cheapest(inp, candidates, peak, budget_ms)
    if at_peak is None:
        return candidates
    return tuple(s for s in candidates if s >= at_peak.slice_pct)


# --- whether to resize ----------------------------------------------------------------------


def wasted(inp: WorkloadInput) -> bool:
    """The current slice is past saturation: shrinking it loses nothing, so it needs no saving."""
    sat = inp.capacity.sat_pct
    return sat is not None and inp.current.slice_pct > useful_max_pct(sat, inp.spec.slice_step_pct)


def may_resize(inp: WorkloadInput, to_pct: int, now_s: float, cfg: SliceConfig) -> bool:
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
    if not inp.capacity.calibrated:
        return False  # latency not yet calibrated at any slice: a rollout would be a guess
    last = inp.memory.slices.last_resize_s
    return to_pct > inp.current.slice_pct or last is None or now_s - last >= cfg.resize_dwell_s


def resize_hysteresis(choice: SliceChoice, proposal: Allocation) -> Allocation:
    """Keep the current slice unless a resize saves at least ``resize_min_saving`` of the cost
    now, or ``profile_min_saving`` over the rate profile without costing more now; keep it
    too while the window burns the budget faster than ``resize_max_burn_rate`` or pods are
    starting, unless a burst outgrows it (``burst_growth``)."""
    inp, cfg = choice.inp, choice.cfg
    current, spec = inp.current, inp.spec
    if proposal.slice_pct == current.slice_pct:
        return proposal
    same_slice = replicas_at_slice(inp, current.slice_pct, choice.rate, choice.budget_ms)
    if may_resize(inp, proposal.slice_pct, choice.now_s, cfg):
        if same_slice is None or wasted(inp):
            return proposal
        if not burning(inp, cfg):
            if proposal.share_pct <= (1.0 - cfg.resize_min_saving) * same_slice.share_pct:
                return proposal
            if proposal.share_pct <= same_slice.share_pct and profile_saves(
                choice.shares, proposal.slice_pct, current.slice_pct, cfg
            ):
                return proposal
            return same_slice
    # a burst is being missed or pods are starting: new replicas add capacity as they start,
    # while a rollout whose surge pod does not fit takes a serving pod down first
    held = same_slice or Allocation(spec.max_replicas, current.slice_pct)
    return burst_growth(choice, held) or held


def burst_growth(choice: SliceChoice, held: Allocation) -> Allocation | None:
    """The larger slice a burst outgrowing the held one rolls to at once, with at least one
    replica more than now: then each old pod serves until a new one is ready, at maxSurge 1
    and at maxUnavailable 1 alike (minAvailable is the old count), so the rollout only adds
    capacity, as the scale-out it replaces would.

    ``None`` (hold the slice) before the latency model is calibrated, or where the held
    slice costs less than ``burst_ratio`` times the growth's share.
    """
    inp = choice.inp
    if not inp.capacity.calibrated:
        return None
    best: Allocation | None = None
    for slice_pct in choice.candidates:
        alloc = replicas_at_slice(inp, slice_pct, choice.rate, choice.budget_ms)
        if slice_pct <= inp.current.slice_pct or alloc is None:
            continue
        grown = Allocation(max(alloc.replicas, inp.current.replicas + 1), slice_pct)
        if best is None or (grown.share_pct, grown.replicas) < (best.share_pct, best.replicas):
            best = grown
    return best if best is not None and burst_outgrows(held, best, choice.cfg) else None


def burning(inp: WorkloadInput, cfg: SliceConfig) -> bool:
    """The window spends the error budget faster than ``resize_max_burn_rate``."""
    burn = window_burn_rate(inp.metrics, inp.spec)
    return burn is not None and burn > cfg.resize_max_burn_rate


def new_capacity_first(current: Allocation, proposal: Allocation) -> Allocation:
    """A resize never lowers the share held while it rolls; the scale-down delay trims later."""
    if proposal.slice_pct == current.slice_pct or proposal.share_pct >= current.share_pct:
        return proposal
    keep = math.ceil(current.share_pct / proposal.slice_pct)
    return Allocation(max(proposal.replicas, keep), proposal.slice_pct)
