"""The Knative Pod Autoscaler (KPA), after ``pkg/autoscaler/scaling/autoscaler.go``.

Purely computational core (``KpaState.scale``), with Knative's defaults:

* desired pods from the **stable** window (60 s) average concurrency, ``ceil(stable /
  target)``, where ``target = container concurrency x target utilisation (70 %)``;
* **panic** when the panic-window (6 s in Knative) desire reaches ``panic threshold`` (200 %)
  of the ready pods; while panicking (until a stable window has passed below the threshold)
  the count only grows: ``max(stable, panic)`` ratcheted up;
* each step is bounded by ``max scale-up rate`` (1000 x ready pods) and ``max scale-down rate``
  (ready / 2); a ``scale-down delay`` window (Knative default 0 s) keeps the largest recent
  desire; ``min-scale`` 1 (no scale to zero, like every other policy here).

``KpaPolicy`` is the adapter. Knative's queue-proxy reports each pod's in-flight requests
every second and the autoscaler ticks every 2 s; the simulator's exporters are scraped every
15 s, so here both windows are read from the scraped counters (average concurrency over a
window = total time requests spent in the system / window length, by Little's law) and the
autoscaler ticks every 15 s: the panic window is 15 s, the finest the scrapes resolve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from actuators.sim.exporter import ScrapeHistory
from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from controller.ports import Cluster

STABLE_WINDOW_S = 60.0
KNATIVE_PANIC_WINDOW_S = 6.0
PANIC_THRESHOLD = 2.0
TARGET_UTILIZATION = 0.7
MAX_SCALE_UP_RATE = 1000.0
MAX_SCALE_DOWN_RATE = 2.0
TICK_S = 15.0


@dataclass(frozen=True, slots=True)
class KpaSpec:
    container_concurrency: float = 1.0
    target_utilization: float = TARGET_UTILIZATION
    panic_threshold: float = PANIC_THRESHOLD
    stable_window_s: float = STABLE_WINDOW_S
    panic_window_s: float = KNATIVE_PANIC_WINDOW_S
    max_scale_up_rate: float = MAX_SCALE_UP_RATE
    max_scale_down_rate: float = MAX_SCALE_DOWN_RATE
    scale_down_delay_s: float = 0.0
    min_scale: int = 1
    max_scale: int = 0  # 0: unbounded

    @property
    def target_value(self) -> float:
        return self.container_concurrency * self.target_utilization


@dataclass
class KpaState:
    """The autoscaler's memory: when panic began, the panic high-water mark, delay window."""

    panic_since_s: float | None = None
    max_panic_pods: int = 0
    delay_window: list[tuple[float, int]] = field(default_factory=list)

    def scale(
        self,
        spec: KpaSpec,
        ready_pods: int,
        stable_concurrency: float,
        panic_concurrency: float,
        now_s: float,
    ) -> int:
        """One ``Scale()`` call: the desired pod count. Mutates the panic and delay state."""
        ready = max(1.0, float(ready_pods))
        max_up = math.ceil(spec.max_scale_up_rate * ready)
        max_down = math.floor(ready / spec.max_scale_down_rate)
        dspc = math.ceil(stable_concurrency / spec.target_value)
        dppc = math.ceil(panic_concurrency / spec.target_value)
        stable_pods = int(min(max(dspc, max_down), max_up))
        panic_pods = int(min(max(dppc, max_down), max_up))
        over = dppc / ready >= spec.panic_threshold
        if over:
            self.panic_since_s = now_s
        elif self.panic_since_s is not None and (self.panic_since_s + spec.stable_window_s < now_s):
            self.panic_since_s = None
            self.max_panic_pods = 0
        desired = stable_pods
        if self.panic_since_s is not None:
            desired = max(desired, panic_pods)
            self.max_panic_pods = max(self.max_panic_pods, desired)
            desired = self.max_panic_pods
        if spec.scale_down_delay_s > 0:
            cutoff = now_s - spec.scale_down_delay_s
            self.delay_window = [w for w in self.delay_window if w[0] > cutoff]
            self.delay_window.append((now_s, desired))
            desired = max(n for _, n in self.delay_window)
        desired = max(spec.min_scale, desired)
        if spec.max_scale > 0:
            desired = min(spec.max_scale, desired)
        return desired


class ConcurrencySource(Protocol):
    def concurrency(self, key: str, now_s: float, window_s: float) -> float | None:
        """Average in-flight requests of the workload over the last ``window_s``."""
        ...


class ScrapedConcurrency:
    """Average concurrency from scraped exporter counters: increase of the latency sum
    (request-seconds in the system) over the elapsed time between the window's scrapes."""

    def __init__(self, history: ScrapeHistory) -> None:
        self.history = history

    def concurrency(self, key: str, now_s: float, window_s: float) -> float | None:
        scrapes = [s for s in self.history.between(now_s - window_s, now_s) if key in s.series]
        if len(scrapes) < 2:
            return None
        first, last = scrapes[0], scrapes[-1]
        elapsed = last.time_s - first.time_s
        if elapsed <= 0:
            return None
        return (last.series[key].latency_sum_s - first.series[key].latency_sum_s) / elapsed


class KpaPolicy:
    """Knative's KPA on concurrency, replicas only."""

    def __init__(
        self,
        ref: WorkloadRef,
        cluster: Cluster,
        source: ConcurrencySource,
        spec: KpaSpec,
        *,
        tick_s: float = TICK_S,
        panic_window_s: float = TICK_S,
    ) -> None:
        self.ref = ref
        self.cluster = cluster
        self.source = source
        self.spec = spec
        self.tick_s = tick_s
        self.panic_window_s = max(panic_window_s, spec.panic_window_s)
        self.state = KpaState()
        self._next_s = 0.0

    def step(self, now_s: float) -> None:
        if now_s + 1e-9 < self._next_s:
            return
        self._next_s = now_s + self.tick_s
        snapshot = self.cluster.snapshot()
        dep = next((d for d in snapshot.deployments if d.ref == self.ref), None)
        if dep is None:
            return
        key = self.ref.key
        stable = self.source.concurrency(key, now_s, self.spec.stable_window_s)
        panic = self.source.concurrency(key, now_s, self.panic_window_s)
        if stable is None or panic is None:
            return  # ErrNoData: no scaling decision
        desired = self.state.scale(self.spec, dep.ready_replicas, stable, panic, now_s)
        if desired != dep.replicas:
            reason = Reason.SCALE_UP if desired > dep.replicas else Reason.SCALE_DOWN
            action = ScaleAction(
                self.ref, Allocation(desired, dep.slice_pct), dep.memory_mib, reason
            )
            self.cluster.apply(Plan(scale=(action,)))
