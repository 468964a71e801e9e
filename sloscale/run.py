"""``sloscale run``: the real loop reading a real Prometheus (composition root).

With ``--cluster sim`` the cluster is the embedded simulator advanced in wall-clock time; its
workloads' metrics are served over HTTP (``actuators.sim.http``) for the Prometheus at
``--prometheus-url`` to scrape (point a scrape job at the printed address, or pass
``--sim-metrics-port`` and configure it beforehand). The controller sees only what Prometheus
returns, through ``PrometheusMetricsSource``.

The simulated world starts as a running cluster does when a controller is started against it:
its Deployments' pods Ready at their initial sizes, queues empty, and (``_warm_up``) a full
``--window`` of their metrics in Prometheus before the loop's first tick. Without that last
part the first readings came from a window the new series covered only in part: ``rate()``
read a third of the load or less while the GPU gauges read it all, the learnt cost per request
came out several times too high, the planner found that "no slice meets the latency target
even idle" and rolled services to slices the pool could not place, losing ready pods.

Start-up: the loop's warm start reads each workload's request-rate history through the
source's ``rate_history`` (chunked ``query_range``), so a restarted controller does not start
blind. On Kubernetes it also goes on from the memory the controller before it saved (the
stabilisation window, headroom, slice memory, learnt capacity, error budget) in the
ConfigMap ``--state-configmap`` of its own namespace; a follower that becomes the leader
takes it over. In shadow mode (``--dry-run``) the memory stays in memory.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from actuators.prometheus import (
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetricsSource,
    QueryError,
    SnapshotTap,
    SourceSettings,
)
from actuators.prometheus.gpu import GpuLabels
from actuators.prometheus.profiles import duration
from actuators.sim.cluster import SimulatedCluster
from actuators.sim.exporter import READY_POD_NAME
from actuators.sim.http import SimMetricsServer
from actuators.sim.scenarios import demo_world
from controller.domain import SliceDialect
from controller.loop import Controller, LoopConfig
from controller.ports import Cluster, StateSnapshotStore
from controller.report import Recorder
from sloscale.api import ApiServer, bind_error, create_app
from sloscale.health import Heartbeat
from sloscale.problems import ProblemLog
from sloscale.telemetry import MetricsRecorder

log = logging.getLogger("sloscale.run")

WARM_UP_SLACK_S = 120.0
"""How long past ``--window`` the simulated world waits for Prometheus to hold a full window of
its metrics before the loop starts anyway (a Prometheus not scraping it, or scraping slowly)."""

WARM_UP_CHECK_S = 1.0
"""How often the warm-up asks Prometheus whether it holds the window."""


class RunError(Exception):
    """Bad options or an unusable environment: one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    prometheus_url: str
    cluster: str = "sim"
    interval_s: float = 15.0
    window_s: float = 60.0
    query_timeout_s: float = 5.0
    bearer_token_file: Path | None = None
    basic_auth: tuple[str, str] | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    dry_run: bool = False
    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    sim_metrics_host: str = "127.0.0.1"
    sim_metrics_port: int = 0
    sim_step_s: float = 1.0
    seed: int = 1
    duration_s: float | None = None  # run until interrupted when None
    kubeconfig: str | None = None
    namespaces: frozenset[str] = frozenset()
    """Where it reads and writes (namespaced requests only); empty: every namespace."""
    selector: str | None = None
    node_selector: str | None = None  # which Nodes are the GPU pool; None: all
    leader_elect: bool = False
    state_configmap: str = "sloscale-state"  # where the memory is kept; "" keeps none
    slice_dialect: str = "hami"
    wedged_after_s: float | None = None  # /healthz fails past it (None: health's default)
    critical_namespaces: frozenset[str] = frozenset()
    """Where a priority above ``high`` is honoured; elsewhere capped with a warning."""
    gpu_labels: GpuLabels = field(default_factory=GpuLabels)
    """Which labels name the pod on dcgm-exporter's and HAMi's series."""

    @property
    def keeps_state(self) -> bool:
        """Whether the memory is kept in the state ConfigMap: not in shadow mode, where the
        controller writes nothing at all (its memory stays in memory)."""
        return bool(self.state_configmap) and not self.dry_run


class WallClock:
    def now(self) -> float:
        return time.time()


def run(
    options: RunOptions, err: TextIO | None = None, *, recorders: Sequence[Recorder] = ()
) -> int:
    """Run until ``duration_s`` or an interrupt; ``recorders`` also get every tick's report."""
    err = err or sys.stderr
    if options.cluster == "kubernetes":
        return _run_kubernetes(options, err, recorders)
    if options.cluster != "sim":
        raise RunError(f"--cluster {options.cluster!r}: choose kubernetes or sim")
    world = replace(demo_world(seed=options.seed), start_s=time.time())
    sim = SimulatedCluster(world)
    try:
        metrics_server = SimMetricsServer(options.sim_metrics_host, options.sim_metrics_port)
    except OSError as e:  # a busy --sim-metrics-port: one line, exit 2
        where = f"{options.sim_metrics_host}:{options.sim_metrics_port}"
        raise RunError(f"cannot serve the simulated metrics on {where}: {bind_error(e)}") from None
    metrics_server.publish(sim)
    metrics_server.start()
    print(f"simulated workloads' metrics on http://{metrics_server.address}/metrics", file=err)
    try:
        loop = LoopConfig(
            interval_s=options.interval_s,
            dry_run=options.dry_run,
            # the simulated cluster is the demo's: every namespace may use `critical`, as in
            # `sloscale demo`, unless --critical-namespaces says otherwise
            critical_namespaces=options.critical_namespaces or None,
        )
        clock = WallClock()
        until = None if options.duration_s is None else clock.now() + options.duration_s
        with _composed(sim, options, loop, recorders, err) as (controller, _, beat):
            _warm_up(sim, metrics_server, clock, options, err, until)
            _loop(controller, beat, sim, metrics_server, clock, options, until)
    except KeyboardInterrupt:
        print("interrupted", file=err)
    finally:
        metrics_server.stop()
    return 0


def run_cluster(
    cluster: Cluster,
    options: RunOptions,
    err: TextIO | None = None,
    *,
    recorders: Sequence[Recorder] = (),
    loop: LoopConfig | None = None,
) -> int:
    """Run the loop against any ``Cluster`` object, reading ``options.prometheus_url``.

    The composition for clusters that are neither the simulator nor Kubernetes (the load
    tests' emulated GPU service, for one). ``loop`` overrides the loop's settings (a
    compressed-time ``PlannerConfig``, a shorter lead time); its ``interval_s``, ``dry_run``
    and ``critical_namespaces`` are taken from ``options``. Ticks every ``interval_s`` of wall
    time until ``duration_s`` or an interrupt; the cluster is not closed here (its owner does
    that).
    """
    err = err or sys.stderr
    base = replace(
        loop or LoopConfig(),
        interval_s=options.interval_s,
        dry_run=options.dry_run,
        critical_namespaces=options.critical_namespaces,
    )
    try:
        with _composed(cluster, options, base, recorders, err) as (controller, _, beat):
            _tick_every_interval(controller, beat, options)
    except KeyboardInterrupt:
        print("interrupted", file=err)
    return 0


def _run_kubernetes(options: RunOptions, err: TextIO, recorders: Sequence[Recorder]) -> int:
    """The production composition: the Kubernetes adapter, Prometheus, optional election.

    With ``--leader-elect`` only the leader writes: a follower's ticks run in shadow mode
    (``dry_run``), so its API and ``/metrics`` stay live and read-only, and the adapter
    itself refuses writes from a replica that is not the leader (the safety net).
    """
    _stop_gracefully_on_signals()
    from actuators.kubernetes import (
        build_cluster,
        build_leader_elector,
        build_snapshot_store,
        load_api,
    )

    _prometheus_config(options)  # a bad URL or auth setting fails before anything starts
    try:
        api = load_api(options.kubeconfig)
    except Exception as e:  # a missing or unreadable kubeconfig: one line, exit 2
        raise RunError(f"cannot load the Kubernetes configuration: {e}") from None
    elector = build_leader_elector(api) if options.leader_elect else None
    dialect = SliceDialect(options.slice_dialect)
    cluster = build_cluster(
        options.kubeconfig,
        options.namespaces,
        options.selector,
        options.dry_run,
        node_selector=options.node_selector,
        default_dialect=dialect,
        leader=elector,
        api=api,
    )
    base = LoopConfig(
        interval_s=options.interval_s,
        dry_run=options.dry_run,
        default_dialect=dialect,
        critical_namespaces=options.critical_namespaces,
    )
    keep = options.keeps_state
    snapshots = build_snapshot_store(api, options.state_configmap, leader=elector) if keep else None
    if elector is not None:
        elector.start()
    try:
        composed = _composed(cluster, options, base, recorders, err, snapshots)
        with composed as (controller, recorder, beat):

            def follow_the_lease() -> None:
                leading = elector is None or elector.is_leader()
                controller.config = replace(base, dry_run=base.dry_run or not leading)
                recorder.set_leader(leading)

            _tick_every_interval(controller, beat, options, before_tick=follow_the_lease)
    except KeyboardInterrupt:
        print("interrupted", file=err)
    finally:
        if elector is not None:
            elector.stop(release=True)
        cluster.close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_gracefully_on_signals() -> None:
    """SIGTERM (what the kubelet sends a pod that is stopping) and SIGINT end the loop as
    Ctrl-C does: the tick under way is left, the Lease released. Python's own Ctrl-C handler
    is not installed in a process started with SIGINT ignored (a background job of a shell),
    and SIGTERM has none: either killed the controller without releasing its Lease. Only in
    the main thread, where signal handlers can be set."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _interrupt)


@contextmanager
def _composed(
    cluster: Cluster,
    options: RunOptions,
    loop: LoopConfig,
    recorders: Sequence[Recorder],
    err: TextIO,
    snapshots: StateSnapshotStore | None = None,
) -> Iterator[tuple[Controller, MetricsRecorder, Heartbeat]]:
    """The loop over ``cluster`` reading Prometheus, with its API served while inside; the
    ``Heartbeat`` is for the ticking thread to mark each tick (``/healthz``, ``/readyz``).

    The source reads the pod map through ``SnapshotTap`` and warm-starts the forecaster with
    chunked ``query_range`` (``history=source``), so a restarted controller is not blind;
    ``snapshots`` keeps its memory for the next one.
    """
    tap = SnapshotTap(cluster)
    source = PrometheusMetricsSource(
        PrometheusClient(_prometheus_config(options)),
        SourceSettings(
            window_s=options.window_s,
            max_age_s=options.window_s,
            query_timeout_s=options.query_timeout_s,
            gpu_labels=options.gpu_labels,
        ),
        pods=tap.pod_map,
    )
    recorder = MetricsRecorder()
    controller = Controller(
        tap,
        source,
        WallClock(),
        loop,
        recorders=[recorder, *recorders],
        history=source,
        snapshots=snapshots,
    )
    beat = Heartbeat(options.interval_s, wedged_after_s=options.wedged_after_s)
    app = create_app(controller, recorder, heartbeat=beat)
    server = ApiServer(app, options.host, options.port)
    try:
        if options.serve:
            try:
                server.start()
            except (OSError, TimeoutError) as e:
                raise RunError(
                    f"cannot serve the API on {options.host}:{options.port}: {e}"
                ) from None
            print(
                f"API on http://{options.host}:{server.port} (/api/v1/workloads, /metrics)",
                file=err,
            )
        yield controller, recorder, beat
    finally:
        if options.serve:
            server.stop()
        source.close()


def _tick_every_interval(
    controller: Controller,
    beat: Heartbeat,
    options: RunOptions,
    before_tick: Callable[[], None] | None = None,
) -> None:
    """Tick on the wall clock every ``interval_s`` until ``duration_s`` (or forever)."""
    started = time.monotonic()
    problems = ProblemLog(log)
    while options.duration_s is None or time.monotonic() - started < options.duration_s:
        with beat.tick():
            if before_tick is not None:
                before_tick()
            report = controller.tick()
        problems.report(report.errors)
        time.sleep(max(0.0, options.interval_s - (time.monotonic() - started) % options.interval_s))


def _prometheus_config(options: RunOptions) -> PrometheusConfig:
    try:
        return PrometheusConfig(
            options.prometheus_url,
            timeout_s=options.query_timeout_s,
            bearer_token_file=options.bearer_token_file,
            basic_auth=options.basic_auth,
            ca_file=options.ca_file,
            insecure_skip_verify=options.insecure_skip_verify,
        )
    except ValueError as e:
        raise RunError(str(e)) from None


def _advance(
    sim: SimulatedCluster, metrics_server: SimMetricsServer, clock: WallClock, sleep_s: float
) -> float:
    """Sleep, bring the simulator to the wall clock's time, publish its metrics; the time."""
    time.sleep(max(0.0, sleep_s))
    now = clock.now()
    sim.advance(max(0.0, now - sim.now()))
    metrics_server.publish(sim)
    return now


def covered_query(window_s: float) -> str:
    """How many of the simulator's workloads Prometheus holds a whole ``window_s`` of: a sample
    at or before the window's start, and no counter reset inside it (a run before this one, on
    the same labels, ended inside the window: its samples are not this world's)."""
    w = duration(window_s)
    return f"count((resets({READY_POD_NAME}[{w}]) == 0) and ({READY_POD_NAME} offset {w}))"


def _warm_up(
    sim: SimulatedCluster,
    metrics_server: SimMetricsServer,
    clock: WallClock,
    options: RunOptions,
    err: TextIO,
    until: float | None,
) -> bool:
    """Run the simulated world without the loop until Prometheus holds a full ``--window`` of
    its workloads' metrics, as a cluster that was running before the controller started.

    The loop's first tick then reads the rate over a whole window. Gives up (the loop starts
    anyway, saying why) after ``window_s + WARM_UP_SLACK_S``, at ``until``, or at once when
    Prometheus cannot be reached (the loop then says so, with its backoff). True when held.
    """
    started = clock.now()
    give_up = started + options.window_s + WARM_UP_SLACK_S
    if until is not None:
        give_up = min(give_up, until)
    query = covered_query(options.window_s)
    expected = len(sim.world.deployments)
    print(
        f"the simulated workloads are running; the loop starts once Prometheus holds a full "
        f"--window ({options.window_s:g} s) of their metrics",
        file=err,
    )
    client = PrometheusClient(_prometheus_config(options))
    why = "it held none of them"
    try:
        now = next_check = started
        while now < give_up:
            now = _advance(sim, metrics_server, clock, min(options.sim_step_s, give_up - now))
            if now < next_check:
                continue
            next_check = now + WARM_UP_CHECK_S
            try:
                held = client.query(query, now, timeout_s=options.query_timeout_s)
            except QueryError as e:
                if e.unreachable:
                    return False  # the loop says it once, with backoff
                why = f"{e}"
                continue
            count = int(held[0].value) if held and math.isfinite(held[0].value) else 0
            if count >= expected:
                print(f"Prometheus holds a full window after {now - started:.0f} s", file=err)
                return True
            why = f"it held {count} of {expected}"
    finally:
        client.close()
    if until is None or give_up < until:
        print(
            f"Prometheus at {options.prometheus_url} holds no full --window of the simulated "
            f"workloads' metrics after {now - started:.0f} s ({why}; is it scraping "
            f"{metrics_server.address}?): starting the loop anyway",
            file=err,
        )
    return False


def _loop(
    controller: Controller,
    beat: Heartbeat,
    sim: SimulatedCluster,
    metrics_server: SimMetricsServer,
    clock: WallClock,
    options: RunOptions,
    until: float | None,
) -> None:
    """Advance the simulator with the wall clock, publish its metrics, tick every interval
    from now (the warm-up is over), until ``until`` (the wall clock's time) or forever."""
    next_tick = clock.now()
    problems = ProblemLog(log)
    while until is None or clock.now() < until:
        now = _advance(sim, metrics_server, clock, min(options.sim_step_s, next_tick - clock.now()))
        if now >= next_tick:
            with beat.tick():
                report = controller.tick()
            next_tick += options.interval_s
            problems.report(report.errors)
