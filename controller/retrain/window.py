"""The pool's room for a retraining this tick, and the tuning of the retraining step.

A retraining starts in an off-peak window: when inference's forecast share is at or below its
median of the last day and the pool has room for the Job and a reserve beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.domain import (
    ClusterSnapshot,
    JobPhase,
)


@dataclass(frozen=True, slots=True)
class RetrainConfig:
    """Tuning of the retraining step."""

    reserve_ratio: float = 0.1  # free share kept beyond the Job's own, as a share of the pool
    history_s: float = 86400.0  # inference's share over the last day defines "off-peak"
    min_history_s: float = 6 * 3600.0  # with less, only the room for the Job counts
    sample_every_s: float = 300.0
    backoff_base_s: float = 300.0  # first retry after a failure; doubles per failure
    backoff_max_s: float = 6 * 3600.0
    default_share_pct: int = 100  # a template of unknown size is assumed to need one card


@dataclass(frozen=True, slots=True)
class RetrainWindow:
    """This tick's view of the pool: its size, inference's forecast share, what is free.

    ``inference_pct`` is every opted-in Deployment's planned share scaled by its forecast;
    ``free_pct`` is the pool less that and less every Job holding or waiting for a slice.
    """

    free_pct: float
    total_pct: float
    inference_pct: float = 0.0
    typical_pct: float | None = None  # inference's median share over the last day

    def off_peak(self) -> bool:
        """Inference's forecast is at or below its median of the last day (unknown: yes)."""
        return self.typical_pct is None or self.inference_pct <= self.typical_pct

    def fits(self, need_pct: float, cfg: RetrainConfig) -> bool:
        """An off-peak window with room for the Job and ``reserve_ratio`` of the pool beside it."""
        room = self.free_pct - need_pct >= cfg.reserve_ratio * self.total_pct
        return room and self.off_peak()


def free_share_pct(
    snapshot: ClusterSnapshot,
    inference_pct: Mapping[str, float],
) -> RetrainWindow:
    """The pool's share left by the plan: total minus inference (as planned and scaled to the
    forecast) minus every Job that holds or waits for a slice (a suspended one does not: it is
    resumed, like a retraining is placed, when there is room)."""
    total = float(snapshot.inventory.total_pct())
    jobs = sum(
        j.pods * j.share_pct_per_pod
        for j in snapshot.jobs
        if j.phase in (JobPhase.PENDING, JobPhase.RUNNING)
    )
    others = sum(
        a.share_pct
        for a in snapshot.inventory.allocations
        if a.owner not in inference_pct and a.owner not in {j.ref.key for j in snapshot.jobs}
    )
    inference = sum(inference_pct.values())
    return RetrainWindow(total - inference - jobs - others, total, inference)


__all__ = ["RetrainConfig", "RetrainWindow", "free_share_pct"]
