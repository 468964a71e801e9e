"""``--report DIR``: PNG plots of every run, ``minutes.csv``, and an ``index.html`` that shows
them with the table.

Every policy's per-minute ground truth is one pandas frame (``minutes_frame``), written as
``minutes.csv`` for the reader's own analysis, and the plots are drawn from it (matplotlib,
headless): load and allocation per policy over time, the per-minute latency quantile against
the target, and the error budget consumed over the run. Long runs are averaged into 10-minute
bins (the worst minute for latency; ``binned``) so the plots stay readable.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sloscale.bench.results import PolicyResult
from sloscale.bench.settings import BenchError
from sloscale.bench.setup import BenchSetup

BIN_MINUTES = 10

MINUTE_COLUMNS = ("arrival_rate_rps", "allocated_share_pct", "latency_ms", "requests", "good")
"""The per-minute series of every run (``MinuteSeries``), as ``minutes.csv`` names them."""


def minutes_frame(results: Mapping[str, PolicyResult]) -> pd.DataFrame:
    """One row per policy and simulated minute: ``policy``, ``minute`` (from the start) and
    ``MINUTE_COLUMNS`` (``latency_ms`` is NaN where the minute had no request)."""
    frames = []
    for r in results.values():
        series = {c: getattr(r.minutes, c) for c in MINUTE_COLUMNS}
        minutes = len(series["arrival_rate_rps"])
        frames.append(pd.DataFrame({"policy": r.name, "minute": np.arange(minutes), **series}))
    columns = ["policy", "minute", *MINUTE_COLUMNS]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def binned(frame: pd.DataFrame, minutes: int = BIN_MINUTES) -> pd.DataFrame:
    """Per policy, ``minutes``-long bins (``hour`` is the bin's start): mean load and
    allocation, the worst minute's latency (NaN where no minute had a request), requests
    and good ones summed. A last, partial bin is dropped; a run shorter than one bin keeps
    its minutes."""
    out = []
    for policy, runs in frame.groupby("policy", sort=False):
        size = minutes if len(runs) >= minutes else 1
        whole = runs[runs["minute"] < len(runs) // size * size]
        groups = whole.groupby(whole["minute"] // size)
        agg = groups.agg(
            arrival_rate_rps=("arrival_rate_rps", "mean"),
            allocated_share_pct=("allocated_share_pct", "mean"),
            latency_ms=("latency_ms", "max"),
            requests=("requests", "sum"),
            good=("good", "sum"),
        )
        agg.insert(0, "hour", agg.index * size / 60.0)
        agg.insert(0, "policy", policy)
        out.append(agg.reset_index(drop=True))
    return pd.concat(out, ignore_index=True)


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
    frame = minutes_frame(results)
    frame.to_csv(directory / "minutes.csv", index=False)
    bins = {str(p): b for p, b in binned(frame).groupby("policy", sort=False)}
    target = setup.settings.slo_ms
    images: list[tuple[str, str]] = []

    top_gpus = float(frame["allocated_share_pct"].max()) / 100.0 if len(frame) else 0.0
    top_rps = float(frame["arrival_rate_rps"].max()) if len(frame) else 0.0
    fig, axes = plt.subplots(len(runs), 1, figsize=(11, 1.9 * len(runs)), sharex=True)
    for ax, r in zip(np.atleast_1d(axes), runs, strict=True):
        b = bins[r.name]
        t, rate, alloc = b["hour"], b["arrival_rate_rps"], b["allocated_share_pct"]
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
        b = bins[r.name]
        ax.plot(b["hour"], b["latency_ms"], lw=0.7, label=r.name)
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
    for name, m in frame.groupby("policy", sort=False):
        bad = (m["requests"] - m["good"]).cumsum()
        total = float(m["requests"].sum())
        consumed = bad / (allowed * total) if total > 0 else bad * 0.0
        ax.plot(m["minute"] / 60.0, consumed, lw=0.9, label=str(name))
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
