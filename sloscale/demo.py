"""``sloscale demo``: the real control loop against the embedded simulated GPU cluster.

This module is a composition root: it wires the simulated cluster and its metrics into the
same ``Controller`` that runs against Kubernetes, optionally serves the API while it runs, and
summarises the simulator's ground truth (which the controller never sees) at the end.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from actuators.sim.archive import SimRateArchive
from actuators.sim.cluster import SimulatedCluster
from actuators.sim.load import TracePattern
from actuators.sim.metrics import SimMetricsSource
from actuators.sim.report import SimReport
from actuators.sim.scenarios import day_night_world, demo_world, llm_ttft_world, with_backlog
from actuators.sim.snapshots import InMemorySnapshotStore
from actuators.sim.tokens import AZURE_CODE_TRACE, TokenProfile, load_token_lengths
from actuators.sim.world import SimWorld
from controller.forecast import ForecastSettings
from controller.loop import Controller, LoopConfig
from controller.ports import Cluster, MetricsSource
from controller.retrain import RetrainEvent
from controller.spec import parse_slo_spec
from forecasting.traces import Trace, TraceError, load_trace
from sloscale.api import ApiServer, create_app
from sloscale.logs import simulated_time
from sloscale.telemetry import MetricsRecorder

TRACE_PEAK_RPS = 60.0
"""A ``--trace`` is rescaled so that its busiest step drives the first service at this rate."""
TRACE_WARM_DAYS_MAX = 7
"""A trace-driven demo starts this many whole days into the (looping) trace at most; the days
before are in the simulated Prometheus for the forecaster's warm start."""
DAY_S = 86400.0
DAY_NIGHT_TRACE_PEAK_RPS = 200.0
"""In the day/night scenario the trace's busiest step drives ``chat`` at this rate."""
SCENARIOS = ("default", "day-night", "llm-ttft")
"""``default``: three services on a tight pool and two jobs; ``day-night``: two services whose
daily swing leaves most of the pool free at night, for a backlog of training jobs;
``llm-ttft``: two vLLM twins, one with a TTFT SLO, one end to end (#28 E9)."""


class DemoError(Exception):
    """Bad demo input (trace, port): reported as one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    hours: float = 24.0
    trace: Path | None = None
    seed: int = 1
    serve: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    json_out: Path | None = None
    interval_s: float = 15.0
    progress: bool = True
    forecast: str = "auto"
    jobs: int = 0  # a backlog of this many queued training jobs on top of the scenario's
    scenario: str = "default"  # or "day-night": issue 6's shared pool (see ``SCENARIOS``)
    restart_every_s: float | None = None  # recreate the controller this often (faults B5)
    cold_restarts: bool = False  # restarts forget the controller's memory (no saved state)
    serve_after: bool = False  # keep serving the API after the run, until Ctrl-C or SIGTERM


@dataclass(frozen=True, slots=True)
class WorkloadSummary:
    name: str
    slo_attainment: float | None
    objective: float
    met: bool
    gpu_hours: float
    utilisation: float | None
    actions: int
    scale_actions: int
    resize_actions: int
    requests: int


def build_world(options: DemoOptions) -> SimWorld:
    """The demo world, its first service driven by ``--trace``, plus ``--jobs`` queued jobs.

    The day/night scenario of issue 6 is a diurnal trace plus a backlog: inference takes the
    pool by day, the backlog soaks up what it leaves at night and gives it back by morning.
    """
    if options.scenario not in SCENARIOS:
        raise DemoError(
            f"unknown scenario {options.scenario!r}; choose from {', '.join(SCENARIOS)}"
        )
    day_night = options.scenario == "day-night"
    if options.scenario == "llm-ttft":
        world = llm_ttft_world(token_profile(), options.seed)
    elif day_night:
        world = day_night_world(seed=options.seed, jobs=0)
    else:
        world = demo_world(options.seed)
    if options.trace is not None:
        try:
            trace = load_trace(options.trace)
        except TraceError as e:
            raise DemoError(str(e)) from None
        world = with_trace(world, trace, DAY_NIGHT_TRACE_PEAK_RPS if day_night else TRACE_PEAK_RPS)
    return with_backlog(world, options.jobs)


def token_profile() -> TokenProfile:
    """Prompt and output lengths of the Azure LLM code trace, from ``SLOSCALE_TRACES_DIR``
    (``../shared/traces``)."""
    path = Path(os.environ.get("SLOSCALE_TRACES_DIR", "../shared/traces")) / AZURE_CODE_TRACE
    try:
        prompt, output = load_token_lengths(path)
    except (OSError, ValueError, KeyError) as e:
        raise DemoError(f"the llm-ttft scenario reads token lengths from {path}: {e}") from None
    return TokenProfile(prompt, output)


def with_trace(world: SimWorld, trace: Trace, peak_rps: float = TRACE_PEAK_RPS) -> SimWorld:
    """Drive the first Deployment from ``trace``, its peak rescaled to ``peak_rps``."""
    rates = trace.rates_rps()
    finite = rates[np.isfinite(rates)]
    peak = float(finite.max()) if finite.size else 0.0
    if not peak > 0:
        raise DemoError(f"{trace.name}: trace has no requests")
    first, *rest = world.deployments
    load = TracePattern(trace, scale=peak_rps / peak, repeat=True)
    # Start whole days into the trace so the simulated Prometheus holds the days before
    # (the forecaster's warm start) and the demo's clock keeps the trace's time of day.
    warm_days = min(TRACE_WARM_DAYS_MAX, math.floor(load.duration_s / DAY_S))
    return replace(world, deployments=(replace(first, load=load), *rest), start_s=warm_days * DAY_S)


@dataclass
class DemoRun:
    """The wired parts of one demo: the simulated world, its cluster, the loop.

    With ``restart_every_s``, the controller is recreated that often (``new_controller``),
    as a rollout or a crash would: the new one keeps only what its store saved (its memory,
    ``controller.keeper``) and what its warm start reads from the metrics archive.
    """

    world: SimWorld
    cluster: SimulatedCluster
    controller: Controller
    recorder: MetricsRecorder
    new_controller: Callable[[], Controller] | None = None
    restart_every_s: float | None = None
    restarts: int = 0
    past_events: list[RetrainEvent] = field(default_factory=list)  # of the controllers before

    def run(self, hours: float, on_hour: Callable[[float], None] | None = None) -> SimReport:
        """Advance the simulated cluster and tick the loop for ``hours``; the ground truth."""
        interval_s = self.controller.config.interval_s
        ticks = math.ceil(hours * 3600.0 / interval_s)
        ticks_per_hour = max(1, round(3600.0 / interval_s))
        restart_ticks = (
            max(1, round(self.restart_every_s / interval_s)) if self.restart_every_s else 0
        )
        with simulated_time(self.cluster.now, self.world.start_s):  # the log's time
            for i in range(1, ticks + 1):
                self.cluster.advance(interval_s)
                if restart_ticks and i % restart_ticks == 0 and self.new_controller is not None:
                    self.past_events.extend(self.controller.retraining.events)
                    self.controller = self.new_controller()
                    self.restarts += 1
                self.controller.tick()
                if on_hour is not None and i % ticks_per_hour == 0:
                    on_hour(i / ticks_per_hour)
        return self.cluster.report()


def build_demo(
    options: DemoOptions,
    *,
    wrap_cluster: Callable[[SimulatedCluster], Cluster] | None = None,
    wrap_metrics: Callable[[MetricsSource], MetricsSource] | None = None,
    keep_memory: bool = False,
) -> DemoRun:
    """Wire the real loop to the simulated cluster, its metrics and its metrics archive.

    ``wrap_cluster`` and ``wrap_metrics`` put something between the loop and the ports (the
    soak's fault injection, ``sloscale.soak``); with ``keep_memory`` the controller saves
    its memory for a successor even without ``restart_every_s``.
    """
    world = build_world(options)
    cluster = SimulatedCluster(world)
    metrics: MetricsSource = SimMetricsSource(cluster.metrics_history)
    if wrap_metrics is not None:
        metrics = wrap_metrics(metrics)
    port: Cluster = cluster if wrap_cluster is None else wrap_cluster(cluster)
    recorder = MetricsRecorder()
    try:
        forecast = ForecastSettings(model=options.forecast)
    except ValueError as e:
        raise DemoError(str(e)) from None
    restarts = options.restart_every_s is not None or keep_memory
    store = InMemorySnapshotStore() if restarts and not options.cold_restarts else None
    # a simulated cluster: every namespace may use `critical` (its scenarios do)
    loop = LoopConfig(interval_s=options.interval_s, forecast=forecast, critical_namespaces=None)

    def new_controller() -> Controller:
        return Controller(
            port,
            metrics,
            cluster,
            loop,
            recorders=[recorder],
            history=SimRateArchive(world),
            snapshots=store,
        )

    return DemoRun(
        world, cluster, new_controller(), recorder, new_controller, options.restart_every_s
    )


def run_demo(
    options: DemoOptions,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the demo and print its summary; with ``serve_after``, then serve the API until
    ``stop`` is set (SIGTERM sets it) or Ctrl-C. ``out``/``err``: the streams of the moment
    by default (not of import time, which a test's closed capture may be)."""
    out = out or sys.stdout
    err = err or sys.stderr
    serve = options.serve and options.restart_every_s is None  # the API shows one controller
    if options.serve_after and not serve:
        why = "--no-serve" if not options.serve else "--restart-every (the API is not served)"
        raise DemoError(f"--serve-after needs the API, which {why} turns off")
    demo = build_demo(options)
    server = (
        ApiServer(create_app(demo.controller, demo.recorder), options.host, options.port)
        if serve
        else None
    )
    if options.serve and not serve:
        print("restarting the controller: the API is not served", file=err)
    if server is not None:
        try:
            server.start()
        except (OSError, TimeoutError) as e:
            raise DemoError(f"cannot serve the API on {options.host}:{options.port}: {e}") from None
        print(f"API on http://{options.host}:{server.port} (/api/v1/workloads, /metrics)", file=err)

    def progress(hour: float) -> None:
        if options.progress:
            print(_progress_line(demo.controller, hour, options.hours), file=err)

    started = time.perf_counter()
    try:
        report = demo.run(options.hours, progress)
        elapsed = time.perf_counter() - started
        _summary(demo, options, report, elapsed, out)
        if server is not None and options.serve_after:
            out.flush()
            print(
                f"demo over: the API stays on http://{options.host}:{server.port} "
                "until Ctrl-C or SIGTERM",
                file=err,
            )
            serve_until_stopped(stop or threading.Event())
    finally:
        if server is not None:
            server.stop()
    return 0


def serve_until_stopped(stop: threading.Event) -> None:
    """Block until ``stop`` is set, SIGTERM arrives (in the main thread) or Ctrl-C."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        while not stop.wait(0.5):  # a timeout, so Ctrl-C is seen promptly
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _summary(
    demo: DemoRun, options: DemoOptions, report: SimReport, elapsed: float, out: TextIO
) -> None:
    """The summary table (and the JSON file when asked)."""
    summaries = summarise(report, demo.world)
    print(format_table(summaries, report, options.hours, elapsed), file=out)
    if demo.restarts:
        kept = "cold: memory lost" if options.cold_restarts else "memory kept"
        print(f"controller restarts: {demo.restarts} ({kept})", file=out)
    if options.json_out is not None:
        payload = to_json(summaries, report, options)
        events = [*demo.past_events, *demo.controller.retraining.events]
        payload["retraining"] = retraining_timeline(events, report)
        payload["restarts"] = demo.restarts
        options.json_out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def summarise(report: SimReport, world: SimWorld) -> list[WorkloadSummary]:
    """Ground-truth results per Deployment, against each one's own objective."""
    objectives = {}
    for d in world.deployments:
        parsed = parse_slo_spec(d.ref.key, d.annotations)
        objectives[d.ref.key] = parsed.spec.objective_ratio if parsed.spec else 0.99
    out = []
    for w in report.workloads:
        objective = objectives.get(w.key, 0.99)
        util = w.used_gpu_h / w.allocated_gpu_h if w.allocated_gpu_h > 0 else None
        att = w.attainment
        out.append(
            WorkloadSummary(
                name=w.key,
                slo_attainment=att,
                objective=objective,
                met=att is not None and att >= objective,
                gpu_hours=w.allocated_gpu_h,
                utilisation=util,
                actions=w.scale_actions + w.resize_actions,
                scale_actions=w.scale_actions,
                resize_actions=w.resize_actions,
                requests=w.requests,
            )
        )
    return out


def format_table(
    summaries: list[WorkloadSummary], report: SimReport, hours: float, elapsed_s: float
) -> str:
    head = (
        f"{'workload':<18} {'SLO attained':>12} {'objective':>9} {'met':>4} {'GPU-h':>7} "
        f"{'util':>6} {'scale':>6} {'resize':>6}"
    )
    lines = [
        f"sloscale demo: {hours:g} simulated hours in {elapsed_s:.1f} s",
        head,
        "-" * len(head),
    ]
    for s in summaries:
        att = "n/a" if s.slo_attainment is None else f"{100 * s.slo_attainment:.3f} %"
        util = "n/a" if s.utilisation is None else f"{100 * s.utilisation:.1f} %"
        lines.append(
            f"{s.name:<18} {att:>12} {100 * s.objective:>7.2f} % {'yes' if s.met else 'NO':>4} "
            f"{s.gpu_hours:>7.2f} {util:>6} {s.scale_actions:>6} {s.resize_actions:>6}"
        )
    pool = report.pool
    jobs = job_totals(report)
    lines.append(
        f"pool: {pool.total_gpu_h:.1f} GPU-h, inference {pool.inference_allocated_gpu_h:.1f}, "
        f"free for jobs {jobs['free_gpu_hours']:.1f}; low-priority jobs delivered "
        f"{jobs['batch_gpu_hours']:.1f} ({_pct(jobs['batch_share_of_free'])} of free), lost "
        f"{jobs['lost_gpu_hours']:.2f} ({_pct(jobs['lost_share_of_batch'])} of delivered), "
        f"{jobs['preemptions']} preemptions, {jobs['resumes']} resumes"
    )
    return "\n".join(lines)


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{100 * ratio:.1f} %"


def job_totals(report: SimReport) -> dict[str, Any]:
    """The JSON ``jobs`` object: what low-priority work got of what inference left free."""
    free = report.pool.free_for_jobs_gpu_h
    batch = sum(j.delivered_gpu_h for j in report.jobs)
    lost = sum(j.lost_gpu_h for j in report.jobs)
    days = max(report.end_s - report.start_s, 1.0) / DAY_S
    return {
        "free_gpu_hours": round(free, 6),
        "batch_gpu_hours": round(batch, 6),
        "lost_gpu_hours": round(lost, 6),
        "preemptions": sum(j.preemptions for j in report.jobs),
        "resumes": sum(j.resumes for j in report.jobs),
        "batch_share_of_free": round(batch / free, 6) if free > 0 else None,
        "lost_share_of_batch": round(lost / batch, 6) if batch > 0 else None,
        "per_job": [
            {
                "name": j.key,
                "phase": j.phase,
                "delivered_gpu_hours": round(j.delivered_gpu_h, 6),
                "lost_gpu_hours": round(j.lost_gpu_h, 6),
                "preemptions": j.preemptions,
                "preemptions_per_day": round(j.preemptions / days, 3),
                "resumes": j.resumes,
            }
            for j in report.jobs
        ],
    }


def to_json(
    summaries: list[WorkloadSummary], report: SimReport, options: DemoOptions
) -> dict[str, Any]:
    return {
        "workloads": [
            {
                "name": s.name,
                "slo_attainment": s.slo_attainment,
                "objective": s.objective,
                "met": s.met,
                "gpu_hours": round(s.gpu_hours, 6),
                "utilisation": None if s.utilisation is None else round(s.utilisation, 6),
                "actions": s.actions,
                "scale_actions": s.scale_actions,
                "resize_actions": s.resize_actions,
                "requests": s.requests,
            }
            for s in summaries
        ],
        "jobs": job_totals(report),
        "settings": {
            "hours": options.hours,
            "seed": options.seed,
            "interval_s": options.interval_s,
            "trace": str(options.trace) if options.trace else None,
            "forecast": options.forecast,
            "jobs": options.jobs,
            "restart_every_s": options.restart_every_s,
            "cold_restarts": options.cold_restarts,
        },
    }


def retraining_timeline(events: Iterable[RetrainEvent], report: SimReport) -> list[dict[str, Any]]:
    """Per retraining Job: ``model``, ``triggered_at``, ``started_at``, ``finished_at``
    (simulated seconds), ``samples`` (new since the last watermark) and ``outcome``."""
    finished = {j.key: j.finished_s for j in report.jobs}
    out: list[dict[str, Any]] = []
    triggered: dict[str, float] = {}
    by_job: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.kind == "triggered":
            triggered[e.key] = e.time_s
        elif e.kind == "started" and e.job is not None:
            namespace = e.key.split("/")[0]
            row = {
                "model": e.key,
                "job": f"{namespace}/{e.job}",
                "triggered_at": triggered.get(e.key, e.time_s),
                "started_at": e.time_s,
                "finished_at": None,
                "samples": None if e.samples is None else round(e.samples),
                "outcome": "Running",
            }
            by_job[e.job] = row
            out.append(row)
        elif e.kind in ("succeeded", "failed") and e.job in by_job:
            row = by_job[e.job]
            row["outcome"] = "Succeeded" if e.kind == "succeeded" else "Failed"
            row["finished_at"] = finished.get(str(row["job"])) or e.time_s
    return out


def _progress_line(controller: Controller, hour: float, total: float) -> str:
    report = controller.last_report
    parts = []
    for w in report.workloads if report else ():
        rate = w.metrics.request_rate_rps
        lat = w.metrics.latency_ms
        parts.append(
            f"{w.key.split('/')[-1]} {w.current.replicas}x{w.current.slice_pct}% "
            f"{'-' if rate is None else f'{rate:.0f}'}rps "
            f"{'-' if lat is None else f'{lat:.0f}'}ms"
        )
    return f"[{hour:5.1f}/{total:g} h] " + " | ".join(parts)
