"""``static``: the fixed peak allocation, what a team without an autoscaler runs.

It holds, for the whole run, the replicas the oracle needs at the trace's busiest minute (at
the oracle's slice): enough for the peak, never more, and never a change after the start.
"""

from __future__ import annotations

from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from controller.ports import Cluster


class StaticPolicy:
    def __init__(self, ref: WorkloadRef, cluster: Cluster, allocation: Allocation) -> None:
        self.ref = ref
        self.cluster = cluster
        self.allocation = allocation
        self._done = False

    def step(self, now_s: float) -> None:
        if self._done:
            return
        self._done = True
        dep = next(d for d in self.cluster.snapshot().deployments if d.ref == self.ref)
        action = ScaleAction(self.ref, self.allocation, dep.memory_mib, Reason.SCALE_UP)
        self.cluster.apply(Plan(scale=(action,)))
