"""Faults B5: the controller restarts (a rollout, a crash, a new leader).

A controller recreated with the same ``StateSnapshotStore`` goes on from the memory the one
before it saved: its stabilisation window (no scale-down the window's data does not justify,
and none delayed that it does), its headroom, its slice memory, its learnt capacity and its
error budget. Only the forecaster starts again, from its warm start.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from actuators.sim.snapshots import InMemorySnapshotStore
from controller.domain import DeploymentState, WorkloadMetrics
from controller.forecast import ForecastSettings
from controller.loop import Controller, LoopConfig
from controller.persist import decode
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

INTERVAL_S = 15.0
COST_CARD_S = 0.02  # card-seconds of GPU per request
TARGET_MS = 500.0


def served(dep: DeploymentState, rate: float) -> WorkloadMetrics:
    """What the workload measures at ``rate`` on its allocation (an M/M/1-like replica)."""
    service_s = COST_CARD_S / (dep.slice_pct / 100)
    rho = rate / max(dep.replicas, 1) * service_s
    if rho >= 1.0:
        latency, good = 5000.0, 0.5
    else:
        latency = 1000 * service_s * 4.6 * (1 + rho / (1 - rho))
        good = 1.0 if latency <= TARGET_MS else max(0.5, 1 - (latency - TARGET_MS) / 5000)
    util = min(1.0, rho)
    return WorkloadMetrics(
        request_rate_rps=rate, latency_ms=latency, good_ratio=good, gpu_util=util, gpu_busy=util
    )


def waves(t: float) -> float:
    """A rate that rises and falls over three hours, with a burst every 75 minutes."""
    h = (t - 1000.0) / 3600.0
    return 20 + 15 * math.sin(h * 2 * math.pi / 3) + (10 if int(h * 4) % 5 == 0 else 0)


@dataclass
class World:
    """One workload whose metrics follow its allocation; the controller can be restarted."""

    load: Callable[[float], float]
    store: InMemorySnapshotStore | None = None
    slices: tuple[str, str] = ("20", "60")  # slice-min, slice-max
    clock: FakeClock = field(default_factory=lambda: FakeClock(1000.0))
    shares: list[int] = field(default_factory=list)  # the share after each tick
    scale_downs: list[int] = field(default_factory=list)  # ticks that lowered the share

    def __post_init__(self) -> None:
        self.cluster = FakeCluster(self.clock)
        self.metrics = FakeMetrics()
        self.key = self.cluster.add(
            "chat",
            slo_annotations(slice_min=self.slices[0], slice_max=self.slices[1], window="1h"),
            replicas=2,
            slice_pct=int(self.slices[1]),
        ).key
        self.controller = self.new_controller()

    def new_controller(self) -> Controller:
        config = LoopConfig(interval_s=INTERVAL_S, forecast=ForecastSettings(model="none"))
        return Controller(self.cluster, self.metrics, self.clock, config, snapshots=self.store)

    def restart(self) -> None:
        self.controller = self.new_controller()

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.clock.advance(INTERVAL_S)
            dep = self.cluster.deployments[self.key]
            before = dep.replicas * dep.slice_pct
            self.metrics.values[self.key] = served(dep, self.load(self.clock.t))
            self.controller.tick()
            dep = self.cluster.deployments[self.key]
            self.shares.append(dep.replicas * dep.slice_pct)
            if self.shares[-1] < before:
                self.scale_downs.append(len(self.shares))


def test_a_restarted_controller_goes_on_from_the_memory_it_saved() -> None:
    steady, restarted, cold = World(waves), World(waves, InMemorySnapshotStore()), World(waves)
    for w in (steady, restarted, cold):
        w.run(200)
    restarted.restart()
    cold.restart()
    for w in (steady, restarted, cold):
        w.run(1)
    a = steady.controller.state.workload(steady.key)
    b = restarted.controller.state.workload(restarted.key)
    assert b.capacity == a.capacity and a.capacity.known  # learnt capacity
    assert b.memory.headroom == a.memory.headroom
    assert b.memory.slices == a.memory.slices  # last resize and decaying peak
    assert a.budget is not None and b.budget is not None
    assert b.budget.remaining() == a.budget.remaining()
    assert b.budget.total == a.budget.total > 0
    assert b.budget.buckets() == a.budget.buckets()
    assert {t for t, _ in b.memory.recommendations} == {t for t, _ in a.memory.recommendations}
    c = cold.controller.state.workload(cold.key)  # what a restart without a store forgets
    assert c.capacity != a.capacity and not c.capacity.explored_max_pct
    assert {t for t, _ in c.memory.recommendations} == {cold.clock.t}  # an empty window
    assert restarted.store is not None and decode(restarted.store.load()) is not None


def test_a_restart_neither_adds_nor_delays_a_scale_down() -> None:
    """The load falls to a sixth; 150 s later the controller restarts. The scale-down comes
    when the window's data justifies it, as without the restart: no sooner, no later."""

    def drop(t: float) -> float:
        return 50.0 if t < 1000.0 + 40 * INTERVAL_S else 8.0

    steady = World(drop, slices=("50", "50"))
    restarted = World(drop, InMemorySnapshotStore(), slices=("50", "50"))
    for w in (steady, restarted):
        w.run(50)  # sized for 60 rps; the load fell at tick 40
    restarted.restart()
    for w in (steady, restarted):
        w.run(40)
    # (a scale-down before tick 40 trims the first sizing once capacity is learnt: same load)
    after_drop = [t for t in steady.scale_downs if t > 40]
    assert after_drop and after_drop[0] > 51  # a whole window after the drop
    assert restarted.scale_downs == steady.scale_downs
    assert restarted.shares == steady.shares


def test_restarts_every_forty_minutes_decide_as_an_uninterrupted_run() -> None:
    """Six hours of rising and falling load, restarted every 40 minutes: every allocation as
    without restarts, where restarts without the store scale down far more often."""
    steady, restarted, cold = World(waves), World(waves, InMemorySnapshotStore()), World(waves)
    for w in (steady, restarted, cold):
        for _ in range(9):
            w.run(160)
            if w is not steady:
                w.restart()
    assert restarted.shares == steady.shares
    assert restarted.scale_downs == steady.scale_downs
    assert len(cold.scale_downs) > len(steady.scale_downs) + 3  # what restarts did before


def test_the_memory_is_saved_only_when_it_changed() -> None:
    world = World(waves, InMemorySnapshotStore())
    world.run(30)
    assert world.store is not None and world.store.writes == 30  # a tick's rates change it
    world.controller.keeper.save(world.clock.t, acting=True)
    assert world.store.writes == 30


def test_in_shadow_mode_the_memory_stays_in_memory() -> None:
    world = World(waves, InMemorySnapshotStore())
    world.controller.config = replace(world.controller.config, dry_run=True)
    world.run(30)
    assert world.store is not None and world.store.writes == 0 and world.store.load() is None


def test_a_new_leader_goes_on_from_the_memory_of_the_one_before() -> None:
    """A follower decides in shadow mode, saving nothing; when it takes over, it restores what
    the leader saved last, and decides as the leader would have."""
    steady, world = World(waves), World(waves, InMemorySnapshotStore())
    steady.run(100)
    world.run(50)
    leader = world.controller
    follower = world.new_controller()
    follower.config = replace(follower.config, dry_run=True)
    for _ in range(50):
        world.run(1)
        follower.tick()  # the same tick, in shadow mode: it writes nothing
    assert world.store is not None and world.store.writes == 100
    # its first tick read the leader's memory, and counted that tick's requests again
    theirs, ours = (
        leader.state.workload(world.key).budget,
        follower.state.workload(world.key).budget,
    )
    assert theirs is not None and ours is not None and ours.total > theirs.total
    follower.config = replace(follower.config, dry_run=False)  # the leader is gone
    world.controller = follower
    steady.run(60)
    world.run(60)
    assert world.shares == steady.shares
    a = steady.controller.state.workload(steady.key)
    b = follower.state.workload(world.key)
    assert a.budget is not None and b.budget is not None
    assert b.budget.total == a.budget.total
    assert b.capacity == a.capacity and b.memory == a.memory


def test_after_a_downtime_longer_than_the_window_a_whole_window_of_fresh_data() -> None:
    """Down for 7 minutes: the saved window has expired, and the controller was blind meanwhile.
    As after any blind stretch (faults B1), no scale-down before a whole window of fresh
    data, however low the load looks at once."""

    def quiet(t: float) -> float:
        return 50.0 if t < 1000.0 + 30 * INTERVAL_S else 8.0

    world = World(quiet, InMemorySnapshotStore(), slices=("50", "50"))
    world.run(31)  # sized for 50 rps; the load has just fallen
    held, before = world.shares[-1], len(world.scale_downs)  # (a trim of the first sizing)
    world.clock.advance(420.0)  # the controller is down
    world.restart()
    world.run(19)
    assert len(world.scale_downs) == before and world.shares[-1] == held
    world.run(3)
    assert len(world.scale_downs) > before
