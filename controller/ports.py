"""The ports between the pure controller and the world.

The loop sees a cluster only through ``Cluster`` and metrics only through ``MetricsSource``;
the simulated cluster, the Kubernetes adapter, Prometheus and the simulator's metrics all
implement these. Time comes from a ``Clock`` so the same loop runs in real and simulated time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from controller.domain import (
    ApplyResult,
    ClusterSnapshot,
    Observation,
    Plan,
    SloSpec,
    WorkloadRef,
)


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
