"""The ports between the pure controller and the world.

The loop sees a cluster only through ``Cluster`` and metrics only through ``MetricsSource``;
the simulated cluster, the Kubernetes adapter, Prometheus and the simulator's metrics all
implement these. Time comes from a ``Clock`` so the same loop runs in real and simulated time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.domain import (
    ApplyResult,
    ClusterSnapshot,
    Observation,
    Plan,
    SloSpec,
    WorkloadRef,
)
from forecasting.base import History


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since an arbitrary epoch (unix time on a real cluster)."""
        ...


@dataclass(frozen=True, slots=True)
class ObserveTarget:
    """A workload to observe and the spec that says which quantile and threshold to read."""

    ref: WorkloadRef
    spec: SloSpec


class Cluster(Protocol):
    def snapshot(self) -> ClusterSnapshot:
        """Discover opted-in Deployments, preemptible Jobs and the GPU inventory."""
        ...

    def apply(self, plan: Plan, *, dry_run: bool = False) -> Sequence[ApplyResult]:
        """Carry out a plan idempotently; with ``dry_run`` write nothing, only report."""
        ...


class MetricsSource(Protocol):
    def observe(self, targets: Sequence[ObserveTarget], now_s: float) -> Observation:
        """Read every target's metrics with a constant number of queries; never raise."""
        ...


class RateHistorySource(Protocol):
    def rate_history(
        self, targets: Sequence[ObserveTarget], start_s: float, end_s: float, step_s: float
    ) -> Mapping[str, History]:
        """Past request rates for a warm start, keyed by ``WorkloadRef.key``.

        Each ``History`` starts at ``start_s`` with ``step_s`` steps up to ``end_s``; a step
        with no data is NaN (never zero). A workload with no history at all may be absent.
        Implementations query in bounded chunks and never raise: what fails is left out.
        """
        ...


class StateSnapshotStore(Protocol):
    """Where the controller keeps its memory for a successor (``controller.persist``): a
    restarted controller, or a new leader, goes on from it instead of starting cold."""

    def load(self) -> object | None:
        """The last document saved (JSON types), ``None`` when there is none or it cannot
        be read. Never raises."""
        ...

    def save(self, document: Mapping[str, Any]) -> bool:
        """Keep ``document`` (JSON types) in place of the last one: whether it is kept (a
        failure is logged, and the caller saves again). Never raises."""
        ...
