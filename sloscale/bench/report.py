"""``--report DIR``: PNG plots of every run and an ``index.html`` that shows them with the table.

Plots (matplotlib, headless): load and allocation per policy over time, the per-minute
latency quantile against the target, and the error budget consumed over the run. Long runs
are averaged into 10-minute bins (the maximum for latency) so the plots stay readable.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from actuators.sim.model import FloatArray
from sloscale.bench.results import PolicyResult
from sloscale.bench.settings import BenchError
from sloscale.bench.setup import BenchSetup

BIN_MINUTES = 10


def _bins(values: FloatArray, how: str) -> FloatArray:
    n = len(values) // BIN_MINUTES * BIN_MINUTES
    if n == 0:
        return values
    shaped = values[:n].reshape(-1, BIN_MINUTES)
    with np.errstate(all="ignore"):
        if how == "max":
            ok = np.isfinite(shaped).any(axis=1)
            out = np.full(len(shaped), np.nan)
            out[ok] = np.nanmax(shaped[ok], axis=1)
            return out
        mean: FloatArray = shaped.mean(axis=1)
        return mean


def write_report(
    directory: Path, setup: BenchSetup, results: Mapping[str, PolicyResult], table: str
) -> Path:
    """Write the PNGs and ``index.html`` into ``directory``; return the index path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot create {directory}: {e.strerror or e}") from None
    runs = list(results.values())
    hours_per_bin = BIN_MINUTES / 60.0
    target = setup.settings.slo_ms
    images: list[tuple[str, str]] = []

    top_gpus = max(float(r.minutes.allocated_share_pct.max(initial=0.0)) for r in runs) / 100.0
    top_rps = max(float(r.minutes.arrival_rate_rps.max(initial=0.0)) for r in runs)
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 1.9 * len(runs)), sharex=True)
    for ax, r in zip(np.atleast_1d(axes), runs, strict=True):
        rate = _bins(r.minutes.arrival_rate_rps, "mean")
        alloc = _bins(r.minutes.allocated_share_pct, "mean")
        t = np.arange(len(rate)) * hours_per_bin
        ax.fill_between(t, rate, color="0.85", label="load (rps)")
        ax.set_ylabel("rps")
        ax.set_ylim(0, 1.05 * top_rps or 1.0)
        ax2 = ax.twinx()
        ax2.plot(t, alloc / 100.0, color="tab:blue", lw=0.8, label="allocated GPUs")
        ax2.set_ylabel("GPUs")
        ax2.set_ylim(0, 1.05 * top_gpus or 1.0)
        ax.set_title(f"{r.name}: {r.gpu_hours:.1f} GPU-h", fontsize=9, loc="left")
    np.atleast_1d(axes)[-1].set_xlabel("hours")
    fig.tight_layout()
    fig.savefig(directory / "allocation.png", dpi=90)
    plt.close(fig)
    images.append(("allocation.png", "Load (grey) and GPUs allocated (blue) per policy"))

    fig, ax = plt.subplots(figsize=(11, 4))
    for r in runs:
        lat = _bins(r.minutes.latency_ms, "max")
        ax.plot(np.arange(len(lat)) * hours_per_bin, lat, lw=0.7, label=r.name)
    ax.axhline(target, color="red", ls="--", lw=1, label="target")
    ax.set_yscale("log")
    ax.set_xlabel("hours")
    ax.set_ylabel("p99 latency, ms (worst minute per bin)")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(directory / "latency.png", dpi=90)
    plt.close(fig)
    images.append(("latency.png", "Latency quantile against the target"))

    fig, ax = plt.subplots(figsize=(11, 4))
    allowed = 1.0 - setup.objective_ratio
    for r in runs:
        bad = np.cumsum(r.minutes.requests - r.minutes.good)
        total = float(r.minutes.requests.sum())
        consumed = bad / (allowed * total) if total > 0 else bad * 0.0
        ax.plot(np.arange(len(consumed)) / 60.0, consumed, lw=0.9, label=r.name)
    ax.axhline(1.0, color="red", ls="--", lw=1, label="budget")
    ax.set_xlabel("hours")
    ax.set_ylabel("error budget consumed")
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(directory / "error_budget.png", dpi=90)
    plt.close(fig)
    images.append(("error_budget.png", "Error budget consumed over the run"))

    figures = "\n".join(
        f'<h2>{html.escape(caption)}</h2>\n<img src="{name}" alt="{html.escape(caption)}">'
        for name, caption in images
    )
    index = directory / "index.html"
    index.write_text(
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>sloscale bench: {html.escape(setup.trace.name)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "img{max-width:100%}</style></head><body>\n"
        f"<h1>sloscale bench: {html.escape(setup.trace.name)}</h1>\n"
        f"<pre>{html.escape(table)}</pre>\n{figures}\n</body></html>\n"
    )
    return index
