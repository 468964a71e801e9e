"""Replay one bench setup through the simulated cluster, once per policy.

Each run builds a fresh ``SimulatedCluster`` from the same world (same seed, nodes, initial
pods, arrivals), hands the policy only the ports (``Cluster``, ``MetricsSource``, or for KPA
the scraped concurrency), advances time tick by tick and scores the ground truth afterwards.
Runs are independent, so they may go to worker processes; the results do not depend on it.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.metrics import SimMetricsSource
from controller.domain import Allocation
from controller.spec import parse_slo_spec
from sloscale.bench.hpa import HpaPolicy
from sloscale.bench.kpa import KpaPolicy, KpaSpec, ScrapedConcurrency
from sloscale.bench.oracle import OraclePolicy
from sloscale.bench.results import PolicyResult, score
from sloscale.bench.rps import RpsHpaPolicy, target_rps
from sloscale.bench.settings import HPA_DEFAULT_TARGET_PCT
from sloscale.bench.setup import MINUTE_S, SERVICE, BenchSetup
from sloscale.bench.sloscale import SloscalePolicy
from sloscale.bench.static import StaticPolicy

if TYPE_CHECKING:  # only sloscale's replays take a planner: not part of the baselines' hash
    from controller.plan import PlannerConfig

BLIND_POLICIES = frozenset({"static", "oracle"})
"""Policies that read no metrics."""


class Policy(Protocol):
    def step(self, now_s: float) -> None:
        """Called at every tick, before time advances: read the ports, maybe act."""
        ...


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One replay: a policy, for ``hpa`` its utilisation target, for ``rps`` its target in
    percent of ``rps.reference_rps`` (only the suite runs ``rps``)."""

    policy: str
    hpa_target_pct: int | None = None
    rps_target_pct: int | None = None
    planner: PlannerConfig | None = None
    """For ``sloscale``: the planner's config, ``None`` for the defaults (ablations set it)."""

    @property
    def label(self) -> str:
        if self.policy == "hpa" and self.hpa_target_pct != HPA_DEFAULT_TARGET_PCT:
            return f"hpa@{self.hpa_target_pct}"
        if self.policy == "rps":
            return f"rps@{self.rps_target_pct}"
        return self.policy


def runs_for(policies: Sequence[str], hpa_targets_pct: Sequence[int]) -> tuple[RunSpec, ...]:
    """The replays a bench needs: each policy, plus the ``hpa*`` sweep when ``hpa`` runs."""
    out: list[RunSpec] = []
    for p in policies:
        if p == "hpa":
            out.append(RunSpec("hpa", HPA_DEFAULT_TARGET_PCT))
            out.extend(
                RunSpec("hpa", t)
                for t in sorted(set(hpa_targets_pct))
                if t != HPA_DEFAULT_TARGET_PCT
            )
        else:
            out.append(RunSpec(p))
    return tuple(out)


def make_policy(setup: BenchSetup, run: RunSpec, cluster: SimulatedCluster) -> Policy:
    """Wire one policy to the ports of a fresh cluster."""
    tick = setup.settings.tick_s
    metrics = SimMetricsSource(cluster.metrics_history)
    if run.policy == "sloscale":
        return SloscalePolicy(cluster, metrics, cluster, interval_s=tick, planner=run.planner)
    if run.policy == "hpa":
        spec = parse_slo_spec(SERVICE.key, setup.world.deployments[0].annotations).spec
        assert spec is not None
        return HpaPolicy(
            SERVICE, spec, cluster, metrics, target_pct=float(run.hpa_target_pct or 70)
        )
    if run.policy == "rps":
        spec = parse_slo_spec(SERVICE.key, setup.world.deployments[0].annotations).spec
        assert spec is not None and run.rps_target_pct is not None
        return RpsHpaPolicy(
            SERVICE, spec, cluster, metrics, target_rps=target_rps(setup, run.rps_target_pct)
        )
    if run.policy == "kpa":
        return KpaPolicy(
            SERVICE,
            cluster,
            ScrapedConcurrency(cluster.metrics_history),
            KpaSpec(max_scale=setup.max_replicas),
            tick_s=tick,
            panic_window_s=setup.world.scrape_interval_s,
        )
    if run.policy == "static":
        return StaticPolicy(
            SERVICE, cluster, Allocation(setup.oracle.peak_replicas, setup.oracle.slice_pct)
        )
    if run.policy == "oracle":
        lead = setup.world.deployments[0].model.cold_start_s + tick
        return OraclePolicy(
            SERVICE, cluster, setup.oracle.need_by_minute, setup.oracle.slice_pct, lead_s=lead
        )
    raise ValueError(f"unknown policy {run.policy!r}")


def run_one(setup: BenchSetup, run: RunSpec) -> PolicyResult:
    """Replay the whole setup under one policy and score it."""
    started = time.perf_counter()
    world = setup.world
    if run.policy in BLIND_POLICIES:
        # Nobody reads their metrics: scrape once a minute (arrivals and ground truth do not
        # depend on the scrape cadence, only the number of simulation segments does).
        world = replace(world, scrape_interval_s=MINUTE_S)
    cluster = SimulatedCluster(world)
    policy = make_policy(setup, run, cluster)
    tick = setup.settings.tick_s
    for _ in range(math.ceil(setup.duration_s / tick - 1e-9)):
        policy.step(cluster.now())
        cluster.advance(min(tick, setup.duration_s - cluster.now()))
    return score(
        run.label, run.hpa_target_pct, cluster.report(), setup, time.perf_counter() - started
    )


def run_all(
    setup: BenchSetup,
    runs: Sequence[RunSpec],
    on_done: Callable[[PolicyResult], None] | None = None,
) -> dict[str, PolicyResult]:
    """Every run, in worker processes when ``settings.workers > 1``; keyed by label.

    ``on_done`` sees each result as its replay finishes (in finishing order, for progress).
    """
    workers = min(setup.settings.workers, len(runs))
    done = on_done or (lambda _result: None)
    if workers <= 1:
        results = []
        for r in runs:
            results.append(run_one(setup, r))
            done(results[-1])
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            # longest first: sloscale runs the whole control loop
            order = sorted(runs, key=lambda r: r.policy != "sloscale")
            futures = {r.label: pool.submit(run_one, setup, r) for r in order}
            for future in as_completed(futures.values()):
                done(future.result())
            results = [futures[r.label].result() for r in runs]
    return {r.name: r for r in results}
