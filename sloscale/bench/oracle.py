"""``oracle``: knows the future trace and the model, obeys the same cold start.

It is the lower bound on cost, not a competitor: from the hidden model parameters it knows
exactly how many replicas of its slice each minute needs (``setup.OraclePlan``), and from
the future trace when each minute comes. At every tick it asks for the most any minute
needs between now and the moment a pod started now would be ready (cold start plus a
tick), so capacity is serving when the load arrives and released as soon as it is not.
"""

from __future__ import annotations

import math

from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from controller.ports import Cluster

MINUTE_S = 60.0


def oracle_replicas(need_by_minute: tuple[int, ...], now_s: float, lead_s: float) -> int:
    """The most replicas any minute overlapping ``[now_s, now_s + lead_s]`` needs.

    Purely computational. Past the end of the plan the last minute's need holds.
    """
    first = math.floor(now_s / MINUTE_S + 1e-9)
    last = math.floor((now_s + lead_s) / MINUTE_S - 1e-9)
    n = len(need_by_minute)
    window = need_by_minute[min(first, n - 1) : min(last, n - 1) + 1]
    return max(window) if window else need_by_minute[-1]


class OraclePolicy:
    def __init__(
        self,
        ref: WorkloadRef,
        cluster: Cluster,
        need_by_minute: tuple[int, ...],
        slice_pct: int,
        *,
        lead_s: float,
    ) -> None:
        self.ref = ref
        self.cluster = cluster
        self.need = need_by_minute
        self.slice_pct = slice_pct
        self.lead_s = lead_s

    def step(self, now_s: float) -> None:
        dep = next(d for d in self.cluster.snapshot().deployments if d.ref == self.ref)
        want = Allocation(oracle_replicas(self.need, now_s, self.lead_s), self.slice_pct)
        if want != Allocation(dep.replicas, dep.slice_pct):
            reason = Reason.SCALE_UP if want.replicas > dep.replicas else Reason.SCALE_DOWN
            action = ScaleAction(self.ref, want, dep.memory_mib, reason)
            self.cluster.apply(Plan(scale=(action,)))
