"""Faithful in-memory doubles of the ports, for tick scenarios with a fake clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.domain import (
    ApplyResult,
    Card,
    ClusterSnapshot,
    DeploymentState,
    Inventory,
    JobPhase,
    JobState,
    Observation,
    OtherAutoscaler,
    Plan,
    SliceAllocation,
    WorkloadMetrics,
    WorkloadRef,
)
from controller.ports import ObserveTarget


@dataclass
class FakeClock:
    t: float = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, dt_s: float) -> None:
        self.t += dt_s


def slo_annotations(**overrides: str) -> dict[str, str]:
    base = {"sloscale.io/enabled": "true", "sloscale.io/latency-target-ms": "500"}
    base.update({f"sloscale.io/{k.replace('_', '-')}": v for k, v in overrides.items()})
    return base


@dataclass
class FakeCluster:
    """Deployments become ready at once; slices are placed first-fit on the cards."""

    clock: FakeClock
    cards: tuple[Card, ...] = tuple(Card("node-a", i, 81920) for i in range(4))
    deployments: dict[str, DeploymentState] = field(default_factory=dict)
    jobs: dict[str, JobState] = field(default_factory=dict)
    applied: list[Plan] = field(default_factory=list)
    fail_snapshot: bool = False
    fail_apply: bool = False
    autoscalers: list[OtherAutoscaler] = field(default_factory=list)  # HPAs, ScaledObjects...
    autoscaler_errors: list[str] = field(default_factory=list)  # why those may be missing

    def add(
        self,
        name: str,
        annotations: Mapping[str, str],
        replicas: int = 1,
        slice_pct: int = 50,
        memory_mib: int = 8192,
    ) -> WorkloadRef:
        ref = WorkloadRef("default", name)
        self.deployments[ref.key] = DeploymentState(
            ref, dict(annotations), replicas, replicas, slice_pct, memory_mib
        )
        return ref

    def snapshot(self) -> ClusterSnapshot:
        if self.fail_snapshot:
            raise ConnectionError("API server unreachable")
        allocations = []
        free = {c.card_id: c.capacity_pct for c in self.cards}
        for j in self.jobs.values():  # a running gang keeps its cards
            if j.phase is not JobPhase.RUNNING:
                continue
            for i in range(j.pods):
                card = next(c for c, f in free.items() if f >= j.share_pct_per_pod)
                free[card] -= j.share_pct_per_pod
                allocations.append(
                    SliceAllocation(
                        j.ref.key, f"{j.ref.name}-{i}", card, j.share_pct_per_pod,
                        j.memory_mib_per_pod,
                    )
                )  # fmt: skip
        for d in self.deployments.values():
            for i in range(d.replicas):
                card = next((c for c, f in free.items() if f >= d.slice_pct), None)
                if card is None:
                    break
                free[card] -= d.slice_pct
                allocations.append(
                    SliceAllocation(d.ref.key, f"{d.ref.name}-{i}", card, d.slice_pct, d.memory_mib)
                )
        return ClusterSnapshot(
            self.clock.now(),
            tuple(self.deployments.values()),
            tuple(self.jobs.values()),
            Inventory(self.cards, tuple(allocations)),
            autoscalers=tuple(self.autoscalers),
            autoscaler_errors=tuple(self.autoscaler_errors),
        )

    def apply(self, plan: Plan, *, dry_run: bool = False) -> Sequence[ApplyResult]:
        if self.fail_apply:
            raise ConnectionError("API server unreachable")
        self.applied.append(plan)
        out = []
        for a in plan.scale:
            d = self.deployments.get(a.ref.key)
            if d is None:
                out.append(ApplyResult(a.ref.key, False, "not found"))
                continue
            if not dry_run:
                self.deployments[a.ref.key] = replace(
                    d,
                    replicas=a.target.replicas,
                    ready_replicas=a.target.replicas,
                    slice_pct=a.target.slice_pct,
                )
            out.append(ApplyResult(a.ref.key, True))
        return out


@dataclass
class FakeMetrics:
    """Returns whatever the test set for each workload; unset workloads are unavailable."""

    values: dict[str, WorkloadMetrics] = field(default_factory=dict)
    fail: bool = False
    calls: int = 0

    def observe(self, targets: Sequence[ObserveTarget], now_s: float) -> Observation:
        self.calls += 1
        if self.fail:
            raise TimeoutError("query timed out")
        return Observation(
            now_s, {t.ref.key: self.values[t.ref.key] for t in targets if t.ref.key in self.values}
        )
