"""``sloscale bench --report DIR``: every policy's minutes as one frame and ``minutes.csv``,
10-minute bins for the plots, the PNGs and the index."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloscale.bench import main as bench
from sloscale.bench.report import MINUTE_COLUMNS, binned


def frame(policy: str, minutes: int) -> pd.DataFrame:
    m = np.arange(minutes, dtype=float)
    latency = np.where(m % 10 == 3, np.nan, 100.0 + m)  # minute 3 of each bin: no request
    return pd.DataFrame(
        {
            "policy": policy,
            "minute": np.arange(minutes),
            "arrival_rate_rps": m,
            "allocated_share_pct": 50.0,
            "latency_ms": latency,
            "requests": 10.0,
            "good": 9.0,
        }
    )


def test_bins_average_load_keep_the_worst_minute_and_drop_a_partial_bin() -> None:
    bins = binned(pd.concat([frame("a", 25), frame("b", 4)], ignore_index=True))
    a, b = bins[bins.policy == "a"], bins[bins.policy == "b"]
    assert a["hour"].tolist() == pytest.approx([0.0, 10 / 60])  # minutes 20-24 dropped
    assert a["arrival_rate_rps"].tolist() == pytest.approx([4.5, 14.5])
    assert a["latency_ms"].tolist() == pytest.approx([109.0, 119.0])
    assert a["requests"].tolist() == [100.0, 100.0] and a["good"].tolist() == [90.0, 90.0]
    # shorter than a bin: its minutes, a minute without a request stays NaN (never 0)
    assert b["hour"].tolist() == pytest.approx([0, 1 / 60, 2 / 60, 3 / 60])
    assert math.isnan(b["latency_ms"].iloc[3]) and b["latency_ms"].iloc[2] == 102.0


def test_report_writes_every_minute_of_every_policy_and_the_plots(tmp_path: Path) -> None:
    rows = [f"{60 * i},{100 + 10 * (i % 7)}" for i in range(24 * 60)]
    trace = tmp_path / "day.csv"
    trace.write_text("timestamp_s,requests\n" + "\n".join(rows) + "\n")
    report = tmp_path / "report"
    flags = ["--hours", "0.5", "--policies", "static,oracle", "--workers", "1"]
    out = io.StringIO()
    assert bench(["--trace", str(trace), *flags, "--report", str(report)], out=out) == 0
    minutes = pd.read_csv(report / "minutes.csv")
    assert list(minutes.columns) == ["policy", "minute", *MINUTE_COLUMNS]
    assert minutes.groupby("policy")["minute"].apply(list).to_dict() == {
        "static": list(range(30)),
        "oracle": list(range(30)),
    }
    assert (minutes["good"] <= minutes["requests"]).all()
    assert minutes["requests"].sum() > 0
    for png in ("allocation.png", "latency.png", "error_budget.png"):
        assert (report / png).read_bytes()[:4] == b"\x89PNG", png
        assert png in (report / "index.html").read_text()
