"""The closed loop, end to end: Prometheus, the emulator, the controller and locust, bounded.

One run reads like this:

1. start the emulator (``python -m loadtests.emulator``, uvicorn on 127.0.0.1) and a real
   Prometheus scraping it every ``scrape_interval_s``;
2. start locust headless (a subprocess: gevent never enters this process) with the shape's
   stages, timed from an agreed start instant;
3. run the controller in this process: ``sloscale.run.run_cluster`` (the ``sloscale run``
   composition) over ``EmulatorCluster``, reading that Prometheus, with the planner's
   scale-down delay, the lead time and the tick compressed by ``speedup``; it stops by itself
   when the shape is over;
4. collect the ground truth (every request's latency, every pod's life), stop everything,
   check and report.

Every child runs in its own process group and is stopped in ``finally``, on failure, on
Ctrl-C and on SIGTERM (``loadtests.processes``). Load goes to 127.0.0.1 only.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from controller.forecast import ForecastSettings
from controller.loop import LoopConfig
from controller.plan import PlannerConfig
from controller.report import Recorder, TickReport
from loadtests.checks import (
    CheckResult,
    PodLife,
    Requests,
    ScaleEvent,
    Timing,
    check_attainment,
    check_flapping,
    check_scale_down,
    check_step_up,
)
from loadtests.cluster import EmulatorCluster
from loadtests.processes import Processes, interrupt_signals
from loadtests.prometheus import free_port, start_prometheus, wait_http
from loadtests.settings import LoadTestSettings
from loadtests.shapes import Shape
from sloscale.progress import TickProgress
from sloscale.run import RunOptions, run_cluster

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
START_MARGIN_S = 4.0  # locust's start-up before it sends load
WARMUP_S = 10.0  # base load before the shape's time zero; the controller joins half-way
TAIL_S = 1.0  # the controller keeps ticking a little after the shape ends


class LoadTestInterruptedError(Exception):
    """The run was stopped by a signal; every child has been stopped."""


@dataclass
class KeepReports(Recorder):
    reports: list[TickReport] = field(default_factory=list)

    def record(self, report: TickReport) -> None:
        self.reports.append(report)


@dataclass(frozen=True, slots=True)
class RunResult:
    shape: Shape
    settings: LoadTestSettings
    dry_run: bool
    t0_s: float
    end_s: float
    requests: Requests
    pods: tuple[PodLife, ...]
    ticks: tuple[TickReport, ...]
    checks: tuple[CheckResult, ...]
    child_pids: tuple[int, ...]
    report_dir: Path

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def timing_of(settings: LoadTestSettings) -> Timing:
    t, slo = settings.time, settings.slo
    return Timing(
        tick_s=t.tick_s,
        window_s=t.window_s,
        cold_start_s=t.cold_start_s,
        scale_down_delay_s=t.scale_down_delay_s,
        speedup=t.speedup,
        target_ms=slo.latency_target_ms,
        quantile=slo.latency_quantile,
        objective_pct=slo.objective_pct,
    )


def loop_config(settings: LoadTestSettings) -> LoopConfig:
    """The loop's settings in compressed time (the planner itself is not touched; the
    scale-down window is the Deployment's ``scale-down-stabilization`` annotation)."""
    t = settings.time
    base = PlannerConfig()
    planner = replace(
        base,
        resume=replace(base.resume, cooldown_s=base.resume.cooldown_s / t.speedup),
        slices=replace(base.slices, resize_dwell_s=base.slices.resize_dwell_s / t.speedup),
        sizing=replace(base.sizing, backlog_drain_s=base.sizing.backlog_drain_s / t.speedup),
    )
    forecast = ForecastSettings(history_s=600.0)
    return LoopConfig(
        interval_s=t.tick_s, lead_time_s=t.lead_time_s, planner=planner, forecast=forecast
    )


def run_loadtest(
    shape: Shape,
    settings: LoadTestSettings,
    report_dir: Path,
    *,
    dry_run: bool = False,
    err: TextIO | None = None,
    progress: TextIO | None = None,
    on_started: Callable[[Processes], None] | None = None,
) -> RunResult:
    """One bounded run; raises ``LoadTestInterruptedError`` on a signal, all stopped first.
    ``progress``: where the loop's decisions go while it runs (``TickProgress``)."""
    err = err or sys.stderr
    report_dir.mkdir(parents=True, exist_ok=True)
    work = report_dir / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    processes = Processes()
    cluster: EmulatorCluster | None = None
    keep = KeepReports()
    t = settings.time
    with interrupt_signals() as interrupted:
        try:
            port = free_port()
            config_path = work / "emulator.json"
            config_path.write_text(json.dumps(settings.emulator_config()))
            env = {**os.environ, "PYTHONPATH": _pythonpath()}
            emulator = processes.start(
                "emulator",
                [
                    sys.executable,
                    "-m",
                    "loadtests.emulator",
                    "--config",
                    str(config_path),
                    "--port",
                    str(port),
                ],
                work / "emulator.log",
                env=env,
                cwd=REPO,
            )
            base_url = f"http://127.0.0.1:{port}"
            wait_http(emulator, f"{base_url}/healthz", 30.0)
            _, prom_url = start_prometheus(
                processes, work / "prometheus", f"127.0.0.1:{port}", t.scrape_interval_s, 30.0
            )
            print(f"emulator {base_url}, prometheus {prom_url}", file=err)
            t0 = time.time() + START_MARGIN_S + WARMUP_S
            locust = _start_locust(processes, shape, settings, base_url, report_dir, work, t0)
            (report_dir / "pids.txt").write_text("".join(f"{pid}\n" for pid in processes.pids()))
            if on_started is not None:
                on_started(processes)
            cluster = EmulatorCluster(base_url)
            # the controller meets a service already under steady base load, as when deployed
            time.sleep(max(0.0, t0 - WARMUP_S / 2 - time.time()))
            options = RunOptions(
                prometheus_url=prom_url,
                interval_s=t.tick_s,
                window_s=t.window_s,
                query_timeout_s=max(0.5, min(2.0, t.tick_s)),
                dry_run=dry_run,
                serve=False,
                duration_s=t0 + shape.duration_s + TAIL_S - time.time(),
            )
            ticking = TickProgress(progress, options.duration_s or 0.0)
            run_cluster(
                cluster,
                options,
                io.StringIO(),
                recorders=[keep, ticking],
                loop=loop_config(settings),
            )
            if interrupted:
                raise KeyboardInterrupt
            end = time.time()
            deadline = time.monotonic() + 15.0
            while locust.running() and time.monotonic() < deadline:
                time.sleep(0.1)
            requests = _requests(cluster.get_json("/emulator/requests"))
            pods = _pods(cluster.get_json("/emulator/pods"))
        except KeyboardInterrupt:
            raise LoadTestInterruptedError("interrupted: every process was stopped") from None
        finally:
            if cluster is not None:
                cluster.close()
            processes.stop_all()
            shutil.rmtree(work / "prometheus" / "tsdb", ignore_errors=True)
    checks = evaluate(shape, settings, requests, pods, tuple(keep.reports), t0, end)
    return RunResult(
        shape,
        settings,
        dry_run,
        t0,
        end,
        requests,
        pods,
        tuple(keep.reports),
        checks,
        tuple(processes.pids()),
        report_dir,
    )


def evaluate(
    shape: Shape,
    settings: LoadTestSettings,
    requests: Requests,
    pods: tuple[PodLife, ...],
    ticks: tuple[TickReport, ...],
    t0: float,
    end: float,
) -> tuple[CheckResult, ...]:
    timing = timing_of(settings)
    out: list[CheckResult] = []
    if shape.up_s is not None and shape.down_s is not None:
        out.append(check_step_up(requests, pods, t0 + shape.up_s, t0 + shape.down_s, timing))
        out.append(check_scale_down(pods, t0 + shape.down_s, end, timing))
    out.append(check_attainment(requests, t0, t0 + shape.duration_s, timing))
    events = [e for e in scale_events(ticks) if e.time_s >= t0]  # the warm-up is not judged
    out.append(check_flapping(events, end - t0, shape.max_direction_changes, timing))
    return tuple(out)


def scale_events(ticks: tuple[TickReport, ...]) -> list[ScaleEvent]:
    """The applied changes of the Deployment, in order."""
    out = []
    for report in ticks:
        for d in report.decisions:
            if d.applied and d.changes and d.current is not None and d.desired is not None:
                out.append(ScaleEvent(d.time_s, d.current.share_pct, d.desired.share_pct))
    return out


def _pythonpath() -> str:
    existing = os.environ.get("PYTHONPATH")
    return str(REPO) + (os.pathsep + existing if existing else "")


def _start_locust(
    processes: Processes,
    shape: Shape,
    settings: LoadTestSettings,
    base_url: str,
    report_dir: Path,
    work: Path,
    t0: float,
) -> Any:
    load = settings.load
    env = {
        **os.environ,
        "PYTHONPATH": _pythonpath(),
        "SLOSCALE_LT_STAGES": json.dumps(
            [[WARMUP_S, shape.stages[0].multiplier]]
            + [[WARMUP_S + s.end_s, s.multiplier] for s in shape.stages]
        ),
        "SLOSCALE_LT_T0": repr(t0 - WARMUP_S),
        "SLOSCALE_LT_BASE_RPS": repr(load.base_rps),
        "SLOSCALE_LT_PER_USER_RPS": repr(load.per_user_rps),
        "SLOSCALE_LT_SPAWN_RATE": repr(load.spawn_rate),
    }
    run_time = START_MARGIN_S + WARMUP_S + shape.duration_s + 10.0
    return processes.start(
        "locust",
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            base_url,
            "--csv",
            str(report_dir / "locust"),
            "--csv-full-history",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--exit-code-on-error",
            "0",
            "--run-time",
            f"{run_time:.0f}s",
            "--stop-timeout",
            "5",
        ],
        work / "locust.log",
        env=env,
        cwd=REPO,
    )


def _requests(data: dict[str, Any]) -> Requests:
    arrival = np.asarray(data["arrival_s"], dtype=np.float64)
    latency = np.asarray([np.inf if x is None else x for x in data["latency_s"]], dtype=np.float64)
    e2e = np.asarray(
        [np.inf if x is None else x for x in data.get("e2e_s", data["latency_s"])],
        dtype=np.float64,
    )
    return Requests(arrival, latency, e2e)


def _pods(data: dict[str, Any]) -> tuple[PodLife, ...]:
    return tuple(
        PodLife(p["name"], int(p["slice_pct"]), p["created_s"], p["ready_s"], p["deleted_s"])
        for p in data["pods"]
    )
