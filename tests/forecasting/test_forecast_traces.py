"""Trace files: the ``observed`` column marks missing rows, which become NaN in the history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecasting import TraceError, load_trace


def test_observed_zero_rows_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "gateway.csv"
    path.write_text(
        "timestamp_s,requests,observed,gen\n0,60,1,0\n60,0,0,0\n120,120,1,0\n180,0,1,0\n"
    )
    trace = load_trace(path)
    assert trace.counts.tolist() == [60.0, 0.0, 120.0, 0.0]  # the file's values, as they are
    rates = trace.history().values
    assert np.isnan(rates[1])  # not observed: missing
    assert rates[3] == 0.0  # observed zero: real idleness
    assert rates[0] == 1.0 and rates[2] == 2.0


def test_observed_must_be_numeric(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp_s,requests,observed\n0,1,yes\n60,2,1\n")
    with pytest.raises(TraceError, match="'observed' is not a number"):
        load_trace(path)


def test_plain_trace_has_no_mask(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("timestamp_s,requests\n0,6\n60,0\n")
    trace = load_trace(path)
    assert trace.observed is None
    assert trace.history().values.tolist() == [0.1, 0.0]


def test_real_gateway_trace(traces_dir: Path) -> None:
    trace = load_trace(traces_dir / "alibaba_genai2026_gateway_qps_per_minute.csv")
    assert trace.observed is not None
    assert np.isnan(trace.history().values).sum() == int((~trace.observed).sum()) > 0
