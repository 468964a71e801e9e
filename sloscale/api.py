"""The HTTP API: health, readiness, Prometheus metrics and a read-only view of the loop.

The loop publishes an immutable ``TickReport`` after each tick; handlers only read it, so the
API never blocks or changes a decision. Bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import math
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
from controller.report import WorkloadStatus
from controller.retrain import RetrainStatus
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


def create_app(controller: Controller, recorder: MetricsRecorder) -> FastAPI:
    app = FastAPI(title="sloscale", version="0.1.0")
    started = time.monotonic()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        report = controller.last_report
        if report is None:
            return JSONResponse({"status": "waiting for the first tick"}, status_code=503)
        return JSONResponse(
            {
                "status": "ready",
                "last_tick_s": report.time_s,
                "uptime_s": time.monotonic() - started,
            }
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(recorder.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/workloads")
    def workloads() -> dict[str, Any]:
        report = controller.last_report
        items = [workload_json(w) for w in report.workloads] if report else []
        return {
            "time_s": report.time_s if report else None,
            "dry_run": controller.config.dry_run,
            "workloads": items,
        }

    @app.get("/api/v1/workloads/{namespace}/{name}")
    def workload(namespace: str, name: str) -> dict[str, Any]:
        report = controller.last_report
        for w in report.workloads if report else ():
            if w.key == f"{namespace}/{name}":
                return workload_json(w)
        raise HTTPException(404, f"workload {namespace}/{name} is not managed by sloscale")

    @app.get("/api/v1/jobs")
    def jobs() -> dict[str, Any]:
        """Low-priority jobs: state, priority, gang, preemptions and the last decision."""
        report = controller.last_report
        out = []
        for j in report.jobs if report else ():
            entry: dict[str, Any] = jsonable(j)
            entry["last_decision"] = decision_json(j.last_decision) if j.last_decision else None
            entry["warnings"] = [str(e) for e in j.warnings]
            out.append(entry)
        return {"time_s": report.time_s if report else None, "jobs": out}

    @app.get("/api/v1/retraining")
    def retraining() -> dict[str, Any]:
        report = controller.last_report
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


class ApiServer:
    """uvicorn in a daemon thread, stopped cleanly by ``stop()``."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 8080):
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="sloscale-api", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise OSError(
                    f"API server could not start on {self.config.host}:{self.config.port}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("API server did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.config.port
