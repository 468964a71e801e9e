"""``sloscale`` in the bench: the real ``Controller``, wired exactly as ``sloscale demo`` does.

It sees the cluster only through ``Cluster.snapshot()`` and metrics only through the
``MetricsSource`` port (the simulator's Prometheus-like reads), and is told nothing but the
Deployment's annotations: no model parameters, no trace.
"""

from __future__ import annotations

from controller.loop import Controller, LoopConfig
from controller.ports import Clock, Cluster, MetricsSource


class SloscalePolicy:
    def __init__(
        self, cluster: Cluster, metrics: MetricsSource, clock: Clock, *, interval_s: float
    ) -> None:
        self.controller = Controller(cluster, metrics, clock, LoopConfig(interval_s=interval_s))

    def step(self, now_s: float) -> None:
        self.controller.tick()
