"""``sloscale`` in the bench: the real ``Controller``, wired exactly as ``sloscale demo`` does.

It sees the cluster only through ``Cluster.snapshot()`` and metrics only through the
``MetricsSource`` port (the simulator's Prometheus-like reads), and is told nothing but the
Deployment's annotations: no model parameters, no trace.
"""

from __future__ import annotations

from controller.loop import Controller, LoopConfig
from controller.plan import PlannerConfig
from controller.ports import Clock, Cluster, MetricsSource


class SloscalePolicy:
    def __init__(
        self,
        cluster: Cluster,
        metrics: MetricsSource,
        clock: Clock,
        *,
        interval_s: float,
        planner: PlannerConfig | None = None,
    ) -> None:
        # a simulated cluster: every namespace may use `critical` (the bench's service does)
        config = LoopConfig(
            interval_s=interval_s,
            critical_namespaces=None,
            planner=PlannerConfig() if planner is None else planner,
        )
        self.controller = Controller(cluster, metrics, clock, config)

    def step(self, now_s: float) -> None:
        self.controller.tick()
