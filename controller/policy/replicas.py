"""The replica-sizing stage: the rate to size for, and the replicas a rate needs at a slice.

Replicas follow the rate of the moment (the slice follows days of rates: ``slices``). Purely
computational.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.capacity import effective_share, max_rate_per_replica, service_time_s
from controller.domain import Allocation, ConditionType, Reason, SloSpec
from controller.policy.headroom import HeadroomConfig, budget_overspent
from controller.policy.verdict import Proposal

if TYPE_CHECKING:
    from controller.policy.inputs import WorkloadInput


@dataclass(frozen=True, slots=True)
class SizingConfig:
    """How replicas are sized for a rate."""

    backlog_drain_s: float = 30.0  # size to clear a queue beyond the SLO's in this long
    scale_down_margin: float = 0.0  # an asymmetric dead band: off, the error budget sets it


def sizing_rate_rps(inp: WorkloadInput, cfg: HeadroomConfig) -> float:
    """The rate to size for: the expected rate, never under the one measured now, moving
    toward the forecast's upper band as the error budget is overspent, and past it by the
    rate margin once the budget is gone (``next_rate_margin``).

    While the budget is ample its noise is the budget's to absorb; a service that keeps
    spending it (bursts the mean does not see coming) is sized for the band instead.
    """
    expected = max(inp.metrics.request_rate_rps or 0.0, inp.rate_forecast_rps or 0.0)
    upper = inp.rate_upper_rps
    if upper is not None and upper > expected:
        expected += budget_overspent(inp.budget_remaining, cfg) * (upper - expected)
    return expected * (1.0 + inp.memory.rate_margin)


def backlog_rps(inp: WorkloadInput, cfg: SizingConfig) -> float:
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


def replicas_at_slice(
    inp: WorkloadInput, slice_pct: int, rate: float, budget_ms: float
) -> Allocation | None:
    """The replicas of ``slice_pct`` that serve ``rate`` within ``budget_ms``; ``None`` when
    none serves or max-replicas would not do."""
    per_replica = max_rate_per_replica(
        inp.capacity, slice_pct, inp.spec.latency_quantile, budget_ms
    )
    replicas = replicas_for(inp.spec, rate, per_replica)
    return None if replicas is None else Allocation(replicas, slice_pct)


def replicas_for(spec: SloSpec, rate: float, per_replica: float) -> int | None:
    """Replicas that serve ``rate`` at ``per_replica`` each, at least min-replicas (and one);
    ``None`` when none serves or max-replicas would not do."""
    if per_replica <= 0:
        return None
    replicas = max(spec.min_replicas, 1, math.ceil(rate / per_replica))
    return None if replicas > spec.max_replicas else replicas


def cheapest(
    inp: WorkloadInput, candidates: tuple[int, ...], rate: float, budget_ms: float
) -> Allocation | None:
    """The allocation with the least share that serves ``rate`` within ``budget_ms``.

    Ties go to the current slice (no rollout), then to fewer replicas.
    """
    best: tuple[float, int, Allocation] | None = None
    for slice_pct in candidates:
        alloc = replicas_at_slice(inp, slice_pct, rate, budget_ms)
        if alloc is None:
            continue
        key = (
            alloc.share_pct - (0.5 if slice_pct == inp.current.slice_pct else 0.0),
            alloc.replicas,
        )
        if best is None or key < (best[0], best[1]):
            best = (key[0], key[1], alloc)
    return None if best is None else best[2]


def strongest(
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


def fastest_at_half_load(
    inp: WorkloadInput, candidates: tuple[int, ...], rate: float
) -> Allocation:
    """When the target is out of reach, the quickest slice, each replica kept half busy."""
    slice_pct = max(candidates, key=lambda s: (effective_share(inp.capacity, s), -s))
    mu = 1.0 / service_time_s(inp.capacity, slice_pct)
    replicas = max(inp.spec.min_replicas, 1, math.ceil(rate / (0.5 * mu)))
    return Allocation(min(replicas, inp.spec.max_replicas), slice_pct)


def size_reactive(inp: WorkloadInput) -> Proposal:
    """Before the capacity model is learnt, scale replicas on the latency ratio alone."""
    current, spec, latency = inp.current, inp.spec, inp.metrics.latency_ms
    if latency is not None and latency > spec.latency_target_ms:
        ratio = latency / spec.latency_target_ms
        replicas = max(current.replicas + 1, math.ceil(current.replicas * min(ratio, 2.0)))
        return Proposal.first(
            Allocation(replicas, current.slice_pct),
            Reason.SCALE_UP,
            ConditionType.SCALING_ACTIVE,
            f"learning capacity; latency {latency:.0f} ms over target: scaling on the ratio",
        )
    return Proposal.first(
        current,
        Reason.LEARNING,
        ConditionType.SCALING_ACTIVE,
        "learning the capacity model: holding",
    )
