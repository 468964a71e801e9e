"""The HTTP API: health, readiness, Prometheus metrics and a read-only view of the loop.

The loop publishes an immutable ``TickReport`` after each tick; handlers only read it, so the
API never blocks or changes a decision. Bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import errno
import math
import socket
import threading
import time
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from controller.domain import Decision
from controller.loop import Controller
from controller.report import TickReport, WorkloadStatus
from controller.retrain import RetrainStatus
from sloscale.health import Health, Heartbeat
from sloscale.telemetry import MetricsRecorder


def jsonable(value: Any) -> Any:
    """Dataclasses, enums and non-finite floats to plain JSON values (NaN/inf become null)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def decision_json(d: Decision) -> dict[str, Any]:
    """A decision with every condition of it, in the Kubernetes shape (status "True")."""
    out: dict[str, Any] = jsonable(d)
    out["conditions"] = [c.as_dict() for c in d.conditions]
    out["explanation"] = f"{d.reason.value}: {d.message}"
    return out


def workload_json(w: WorkloadStatus) -> dict[str, Any]:
    return {
        "workload": w.key,
        "valid": not w.errors,
        "errors": [str(e) for e in w.errors],
        "warnings": [str(e) for e in w.warnings],
        "spec": jsonable(w.spec),
        "state": {
            "replicas": w.current.replicas,
            "ready_replicas": w.ready_replicas,
            "slice_pct": w.current.slice_pct,
            "desired": jsonable(w.desired),
        },
        "metrics": jsonable(w.metrics),
        "forecast": jsonable(w.forecast),
        "forecast_accuracy": jsonable(w.forecast_score),
        "sli": jsonable(w.sli),
        "error_budget_remaining": jsonable(w.budget_remaining),
        "capacity_model": jsonable(w.capacity),
        "last_decision": decision_json(w.last_decision) if w.last_decision else None,
    }


def retraining_json(s: RetrainStatus) -> dict[str, Any]:
    wm = s.watermark
    return {
        "model": s.key,
        "state": s.state.value,
        "message": s.message,
        "samples": jsonable(s.samples),
        "samples_since_watermark": jsonable(s.samples_since_watermark),
        "threshold": s.threshold_samples,
        "watermark": {"samples": jsonable(wm.samples), "time_s": jsonable(wm.time_s)},
        "triggered_at_s": jsonable(wm.triggered_at_s),
        "next_window": {
            "open_now": s.window_open,
            "needs_share_pct": s.need_pct,
            "start_by_s": jsonable(s.start_by_s),  # the deadline, whatever the window
        },
        "job": wm.job,
        "last_job": {
            "name": wm.last_job,
            "outcome": wm.last_outcome,
            "finished_at_s": jsonable(wm.last_finished_s),
        },
        "failures": wm.failures,
        "retry_at_s": jsonable(wm.retry_at_s),
    }


def health_json(h: Health) -> dict[str, Any]:
    return {
        "ticks": h.ticks,
        "last_tick_age_s": jsonable(h.last_tick_age_s),
        "tick_running_s": jsonable(h.tick_running_s),
    }


def create_app(
    controller: Controller, recorder: MetricsRecorder, *, heartbeat: Heartbeat | None = None
) -> FastAPI:
    """The API over ``controller``; probes read ``heartbeat``, which the ticking thread
    updates (``sloscale run``). Without one, each probe takes the controller's last report as
    the last completed tick, on the controller's clock (no tick in progress is seen then)."""
    app = FastAPI(title="sloscale", version="0.1.0")
    started = time.monotonic()
    beat = heartbeat or Heartbeat(controller.config.interval_s, clock=controller.clock.now)

    def health() -> Health:
        if heartbeat is None:
            report = controller.last_report
            if report is not None:
                beat.completed_at(report.time_s)
        return beat.health()

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        h = health()
        if not h.live:
            return JSONResponse(
                {"status": "wedged", "reason": h.reason, **health_json(h)}, status_code=503
            )
        return JSONResponse({"status": "ok", **health_json(h)})

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        h = health()
        report = controller.last_report
        if report is None and h.live:
            return JSONResponse({"status": "waiting for the first tick"}, status_code=503)
        if not h.ready:
            return JSONResponse(
                {"status": "not ready", "reason": h.reason, **health_json(h)}, status_code=503
            )
        return JSONResponse(
            {
                "status": "ready",
                "last_tick_s": report.time_s if report is not None else None,
                "uptime_s": time.monotonic() - started,
                **health_json(h),
            }
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(recorder.exposition(), media_type=CONTENT_TYPE_LATEST)

    def first_tick() -> TickReport:
        """The last report; before the first tick, 503 with a Retry-After of one interval
        (a 404 'not managed' then would say something about the workload that is not known)."""
        report = controller.last_report
        if report is None:
            raise HTTPException(
                503,
                "no tick yet: sloscale has not observed the cluster; retry after one interval",
                headers={"Retry-After": str(max(1, math.ceil(controller.config.interval_s)))},
            )
        return report

    @app.get("/api/v1/workloads")
    def workloads() -> dict[str, Any]:
        report = first_tick()
        items = [workload_json(w) for w in report.workloads] if report else []
        return {
            "time_s": report.time_s if report else None,
            "dry_run": controller.config.dry_run,
            "workloads": items,
        }

    @app.get("/api/v1/workloads/{namespace}/{name}")
    def workload(namespace: str, name: str) -> dict[str, Any]:
        report = first_tick()
        for w in report.workloads:
            if w.key == f"{namespace}/{name}":
                return workload_json(w)
        raise HTTPException(404, f"workload {namespace}/{name} is not managed by sloscale")

    @app.get("/api/v1/jobs")
    def jobs() -> dict[str, Any]:
        """Low-priority jobs: state, priority, gang, preemptions and the last decision."""
        report = first_tick()
        out = []
        for j in report.jobs if report else ():
            entry: dict[str, Any] = jsonable(j)
            entry["last_decision"] = decision_json(j.last_decision) if j.last_decision else None
            entry["warnings"] = [str(e) for e in j.warnings]
            out.append(entry)
        return {"time_s": report.time_s if report else None, "jobs": out}

    @app.get("/api/v1/retraining")
    def retraining() -> dict[str, Any]:
        report = first_tick()
        return {
            "time_s": report.time_s if report else None,
            "models": [retraining_json(s) for s in report.retraining] if report else [],
        }

    @app.get("/api/v1/decisions")
    def decisions(
        workload: str | None = None, limit: int = Query(100, ge=1, le=5000)
    ) -> dict[str, Any]:
        log = list(controller.decision_log)
        if workload is not None:
            log = [d for d in log if d.target == workload]
        return {"decisions": [decision_json(d) for d in log[-limit:]]}

    return app


def bind_error(e: OSError) -> str:
    """Why a listening socket could not be bound, in words (no errno, no traceback)."""
    if e.errno == errno.EADDRINUSE:
        return "address already in use (another process listens there; choose another port)"
    if e.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    if e.errno == errno.EADDRNOTAVAIL:
        return "address not available on this host"
    return e.strerror or str(e)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; raises ``OSError`` with ``bind_error``'s words.

    Bound here, in the caller's thread, so that a busy port is an error the caller can report
    in one line (uvicorn binding in its own thread only logs the errno and exits the thread).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise OSError(f"cannot resolve {host!r}: {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise OSError(bind_error(e)) from None
    return sock


class ApiServer:
    """uvicorn in a daemon thread on a socket bound by ``start()``, stopped by ``stop()``."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080):
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(self.config)
        self.thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Bind (a busy port raises ``OSError`` saying so), then serve in the background."""
        sock = listen(self.config.host, self.config.port)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="sloscale-api", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                sock.close()
                raise OSError(
                    f"API server could not start on {self.config.host}:{self.config.port}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("API server did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.config.port
