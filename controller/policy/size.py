"""The size stage: the cheapest (replicas, slice) that keeps the latency quantile under the
target minus the headroom, for the rate to size for. Purely computational."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from controller.domain import Allocation, ConditionType, Reason
from controller.policy.replicas import (
    backlog_rps,
    cheapest,
    fastest_at_half_load,
    size_reactive,
    sizing_rate_rps,
    strongest,
)
from controller.policy.slices import (
    SliceChoice,
    new_capacity_first,
    profile_candidates,
    profile_shares,
    resize_hysteresis,
    slice_candidates,
)
from controller.policy.verdict import Proposal

if TYPE_CHECKING:
    from controller.plan import PlannerConfig
    from controller.policy.inputs import WorkloadInput

ACTIVE = ConditionType.SCALING_ACTIVE


def size(inp: WorkloadInput, headroom: float, cfg: PlannerConfig, now_s: float = 0.0) -> Proposal:
    """Cheapest (replicas, slice) that keeps the latency quantile under target at the rate."""
    spec, current, metrics = inp.spec, inp.current, inp.metrics
    if not metrics.core_available():
        return Proposal.first(
            current,
            Reason.METRICS_UNAVAILABLE,
            ACTIVE,
            "rate or latency unavailable: holding",
            status=False,
        )
    rate = sizing_rate_rps(inp, cfg.headroom) + backlog_rps(inp, cfg.sizing)
    if not inp.capacity.known:
        return size_reactive(inp)
    budget_ms = spec.latency_target_ms * (1.0 - headroom)
    candidates = slice_candidates(inp, now_s)
    # the slice outlives many budget states: judged at the most headroom the budget may ask
    # for, where a small slice (its service time a large part of the target) serves least
    judged_ms = spec.latency_target_ms * (1.0 - cfg.headroom.max_headroom)
    shares = profile_shares(inp, candidates, judged_ms)
    choice = SliceChoice(inp, candidates, rate, budget_ms, shares, now_s, cfg.slices)
    choice = replace(choice, candidates=profile_candidates(choice))
    best = cheapest(inp, choice.candidates, rate, budget_ms)
    if best is None:
        top = strongest(inp, choice.candidates, budget_ms)
        if top is None:
            return Proposal.first(
                fastest_at_half_load(inp, choice.candidates, rate),
                Reason.AT_MAX,
                ACTIVE,
                "no slice meets the latency target even idle: fastest slice at half load",
            )
        return Proposal.first(
            top, Reason.AT_MAX, ACTIVE, f"{rate:.1f} rps exceeds what max-replicas can serve"
        )
    proposal = best
    margin = cfg.sizing.scale_down_margin
    if proposal.share_pct < current.share_pct and margin > 0:
        # going down must still hold with a wider margin: an asymmetric dead band (off by
        # default: the error budget sets the margin, see headroom_floor)
        wider = spec.latency_target_ms * (1.0 - headroom - margin)
        cautious = cheapest(inp, choice.candidates, rate, wider)
        if cautious is None or cautious.share_pct >= current.share_pct:
            return Proposal.first(
                current, Reason.WITHIN_TOLERANCE, ACTIVE, "a smaller allocation lacks margin"
            )
        proposal = cautious
    proposal = resize_hysteresis(choice, proposal)
    proposal = new_capacity_first(current, proposal)
    return Proposal.first(
        proposal, direction(current, proposal), ACTIVE, f"sized for {rate:.1f} rps"
    )


def direction(current: Allocation, desired: Allocation) -> Reason:
    """The reason a change from ``current`` to ``desired`` is named by."""
    if desired.slice_pct != current.slice_pct:
        return Reason.RESIZE
    if desired.replicas > current.replicas:
        return Reason.SCALE_UP
    if desired.replicas < current.replicas:
        return Reason.SCALE_DOWN
    return Reason.WITHIN_TOLERANCE
