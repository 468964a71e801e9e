"""The load test's report: CSVs, the controller's decisions, a summary and a PNG.

Files written into the report directory (locust writes its own ``locust_stats.csv``,
``locust_stats_history.csv``, ``locust_failures.csv`` and ``locust_exceptions.csv`` there):

* ``timeline.csv``: per tick-long bin, offered and served load, the latency quantile of
  completed requests, GPU share serving and held, and the target;
* ``decisions.csv``: every tick's decision for the Deployment (reason, current, desired,
  applied) with the metrics the controller saw through Prometheus;
* ``requests.csv``: every request's arrival (s from the start) and latency (ms; empty: failed);
* ``summary.json`` and ``summary.txt``: the checks and their numbers;
* ``loadtest.png``: load, capacity and latency against the target.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from loadtests.checks import held_share, quantile_ms, ready_share
from loadtests.harness import RunResult, timing_of


def write_report(result: RunResult) -> list[Path]:
    out = result.report_dir
    paths = [
        _timeline(result, out / "timeline.csv"),
        _decisions(result, out / "decisions.csv"),
        _requests(result, out / "requests.csv"),
        _summary(result, out / "summary.json", out / "summary.txt"),
    ]
    try:
        paths.append(plot(result, out / "loadtest.png"))
    except Exception as e:  # a report without its picture still carries the verdict
        (out / "plot-error.txt").write_text(f"{type(e).__name__}: {e}\n")
    return paths


def _bins(result: RunResult) -> list[float]:
    step = result.settings.time.tick_s
    n = int((result.end_s - result.t0_s) / step) + 1
    return [result.t0_s + (i + 1) * step for i in range(n)]


def timeline_rows(result: RunResult) -> list[dict[str, float | None]]:
    timing = timing_of(result.settings)
    step = timing.tick_s
    rows: list[dict[str, float | None]] = []
    arrival, done = result.requests.arrival_s, result.requests.done_s
    base = result.settings.load.base_rps
    for end in _bins(result):
        mult = result.shape.multiplier(end - step / 2 - result.t0_s)
        rows.append(
            {
                "t_s": round(end - result.t0_s, 3),
                "offered_rps": None if mult is None else mult * base,
                "arrived_rps": float(((arrival > end - step) & (arrival <= end)).sum()) / step,
                "served_rps": float(((done > end - step) & (done <= end)).sum()) / step,
                "latency_ms": quantile_ms(result.requests, end - 2 * step, end, timing.quantile),
                "ready_share_pct": float(ready_share(result.pods, end)),
                "held_share_pct": float(held_share(result.pods, end)),
                "target_ms": timing.target_ms,
            }
        )
    return rows


def _timeline(result: RunResult, path: Path) -> Path:
    rows = timeline_rows(result)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["t_s"])
        w.writeheader()
        w.writerows(rows)
    return path


def _decisions(result: RunResult, path: Path) -> Path:
    fields = [
        "t_s", "target", "reason", "current", "desired", "applied", "message",
        "observed_rps", "observed_latency_ms", "ready_replicas",
    ]  # fmt: skip
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for report in result.ticks:
            status = {s.key: s for s in report.workloads}
            for d in report.decisions:
                s = status.get(d.target)
                w.writerow(
                    [
                        f"{d.time_s - result.t0_s:.3f}",
                        d.target,
                        d.reason.value,
                        _alloc(d.current),
                        _alloc(d.desired),
                        d.applied,
                        d.message,
                        _num(s.metrics.request_rate_rps if s else None),
                        _num(s.metrics.latency_ms if s else None),
                        s.ready_replicas if s else "",
                    ]
                )
    return path


def _requests(result: RunResult, path: Path) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arrival_s", "latency_ms"])
        for a, lat in zip(result.requests.arrival_s, result.requests.latency_s, strict=True):
            w.writerow([f"{a - result.t0_s:.4f}", f"{lat * 1000:.2f}" if np.isfinite(lat) else ""])
    return path


def summary_dict(result: RunResult) -> dict[str, object]:
    t = result.settings.time
    return {
        "shape": result.shape.name,
        "dry_run": result.dry_run,
        "ok": result.ok,
        "duration_s": result.end_s - result.t0_s,
        "speedup": t.speedup,
        "tick_s": t.tick_s,
        "cold_start_s": t.cold_start_s,
        "scale_down_delay_s": t.scale_down_delay_s,
        "window_s": t.window_s,
        "latency_target_ms": result.settings.slo.latency_target_ms,
        "latency_quantile": result.settings.slo.latency_quantile,
        "objective_pct": result.settings.slo.objective_pct,
        "requests": len(result.requests.arrival_s),
        "ticks": len(result.ticks),
        "checks": [
            {"name": c.name, "ok": c.ok, "detail": c.detail, "values": c.values}
            for c in result.checks
        ],
    }


def _summary(result: RunResult, json_path: Path, text_path: Path) -> Path:
    json_path.write_text(json.dumps(summary_dict(result), indent=2) + "\n")
    text_path.write_text(summary_text(result))
    return json_path


def summary_text(result: RunResult) -> str:
    mode = " (controller in --dry-run)" if result.dry_run else ""
    lines = [f"loadtest {result.shape.name}{mode}: {'PASS' if result.ok else 'FAIL'}"]
    lines += [f"  {c.line()}" for c in result.checks]
    lines.append(f"  report: {result.report_dir}")
    return "\n".join(lines) + "\n"


def plot(result: RunResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = timeline_rows(result)
    t = [r["t_s"] for r in rows]
    fig, (ax_load, ax_cap, ax_lat) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    ax_load.plot(t, [r["offered_rps"] for r in rows], label="offered (shape)", drawstyle="steps")
    ax_load.plot(t, [r["served_rps"] for r in rows], label="served")
    ax_load.set_ylabel("requests/s")
    ax_load.legend(loc="upper right")
    ax_cap.plot(t, [r["ready_share_pct"] for r in rows], label="serving", drawstyle="steps")
    ax_cap.plot(t, [r["held_share_pct"] for r in rows], label="held", drawstyle="steps")
    ax_cap.set_ylabel("GPU share, % of a card")
    ax_cap.legend(loc="upper right")
    lat = [np.nan if r["latency_ms"] is None else r["latency_ms"] for r in rows]
    q = result.settings.slo.latency_quantile
    ax_lat.plot(t, lat, label=f"p{100 * q:g} latency")
    ax_lat.axhline(result.settings.slo.latency_target_ms, color="red", ls="--", label="target")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("ms")
    ax_lat.set_xlabel("s since the start (compressed time)")
    ax_lat.legend(loc="upper right")
    for ax in (ax_load, ax_cap, ax_lat):
        for mark in (result.shape.up_s, result.shape.down_s):
            if mark is not None:
                ax.axvline(mark, color="grey", lw=0.8, ls=":")
    mode = ", controller in dry-run" if result.dry_run else ""
    fig.suptitle(f"sloscale loadtest {result.shape.name}{mode}: {'PASS' if result.ok else 'FAIL'}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _alloc(a: object) -> str:
    if a is None:
        return ""
    replicas, slice_pct = getattr(a, "replicas", None), getattr(a, "slice_pct", None)
    return f"{replicas}x{slice_pct}%"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"
