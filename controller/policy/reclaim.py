"""The idle-reclaim stage (``sloscale.io/reclaim-idle-after``): a Deployment idle that long
shrinks to its minimum, a Job idle that long is suspended and gives its slices back.

Idle means GPU utilisation under ``IDLE_UTIL`` all along; ``idle_since`` is the tracker the
loop keeps. Purely computational.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from controller.domain import Allocation, ConditionType, JobPhase, Reason, available

if TYPE_CHECKING:
    from controller.policy.inputs import JobInput, WorkloadInput
    from controller.policy.verdict import Proposal

IDLE_UTIL = 0.05
"""GPU utilisation under which a slice counts as idle for ``reclaim-idle-after``."""


def idle_since(previous_s: float | None, util: float | None, now_s: float) -> float | None:
    """The idle tracker: when utilisation went (and stayed) under ``IDLE_UTIL``.

    Missing utilisation keeps the previous value (it is not evidence of idleness, nor of work).
    """
    if util is None or not math.isfinite(util):
        return previous_s
    if util >= IDLE_UTIL:
        return None
    return now_s if previous_s is None else previous_s


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
    return proposal.then(
        floor,
        Reason.IDLE_RECLAIMED,
        ConditionType.IDLE_RECLAIM,
        f"idle reclaim: GPU utilisation under {100 * IDLE_UTIL:.0f} % for "
        f"{(now_s - inp.idle_since_s) / 60:.0f} min (reclaim-idle-after {after / 60:.0f} min): "
        f"shrink to the minimum, {floor.replicas} x {floor.slice_pct} %, until demand returns",
    )


def idle_reclaimable(job: JobInput, now_s: float) -> bool:
    """A running job idle for its ``reclaim-idle-after``: suspend it and give back its slices."""
    after = job.spec.reclaim_idle_after_s
    if after is None or job.idle_since_s is None or job.state.phase != JobPhase.RUNNING:
        return False
    return now_s - job.idle_since_s >= after


def job_reclaim_message(job: JobInput) -> str:
    """Why an idle Job is suspended."""
    after = job.spec.reclaim_idle_after_s or 0.0
    return (
        f"idle reclaim: GPU utilisation under {100 * IDLE_UTIL:.0f} % for "
        f"{after / 60:.0f} min: suspend and give back its slices"
    )
