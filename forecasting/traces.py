"""Reading workload traces: CSV ``timestamp_s,requests`` at any constant step.

The only I/O in ``forecasting``: it turns a file into a validated ``Trace`` or raises
``TraceError`` with a one-line message that names the file and the problem.

Extra columns after the first two are ignored, except ``observed``: where it is 0 the row is
missing data (the collector saw nothing), not zero load, and ``Trace.history()`` gives NaN
there. ``counts`` keep the file's values either way.

Every consumer (the demo, the bench, ``forecast-eval``) allocates in proportion to the rows
and to the span over its own step, so a trace is bounded before anything is allocated: at
most ``MAX_TRACE_BYTES`` on disk and ``MAX_ROWS`` rows (read as a stream, counted as they
come), a step of at least ``MIN_STEP_S`` and a span of at most ``MAX_SPAN_S``. Anything else
is a ``TraceError`` (exit 2 in the CLIs).
"""

from __future__ import annotations

import csv
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from forecasting.base import FloatArray, History

MIN_STEP_S = 1.0
"""The finest step a trace may have: consumers work per step, and at a microsecond step a
small file spans billions of them (``forecast-eval`` used 7 GB on a 52 KB trace)."""
MAX_ROWS = 1_000_000
"""The most data rows a trace may have: 11.6 days per second, 1.9 years per minute."""
MAX_SPAN_S = 366 * 86400.0
"""The longest span a trace may cover (rows times step): a year."""
MAX_TRACE_BYTES = 64 * 2**20
"""The largest trace file read (64 MiB): ``MAX_ROWS`` rows of a few columns fit well inside."""


class TraceError(ValueError):
    """A trace file that cannot be used, with a message fit for a one-line CLI error."""


@dataclass(frozen=True)
class Trace:
    """Request counts per step. ``counts[i]`` requests arrived in step ``i``."""

    name: str
    start_s: float
    step_s: float
    counts: FloatArray
    observed: npt.NDArray[np.bool_] | None = None
    """Per step, whether the collector saw it (None: all observed)."""

    @property
    def duration_s(self) -> float:
        return self.step_s * len(self.counts)

    def rates_rps(self) -> FloatArray:
        return self.counts / self.step_s

    def history(self) -> History:
        """Rates per second; NaN where the step is missing (``counts`` NaN or not observed)."""
        rates = self.rates_rps()
        if self.observed is not None:
            rates = np.where(self.observed, rates, np.nan)
        return History(start_s=self.start_s, step_s=self.step_s, values=rates)


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace; raise ``TraceError`` on any problem.

    Rows are parsed as they are read, so an oversized file is refused after at most
    ``MAX_ROWS`` rows, not after holding all of them.
    """
    p = Path(path)
    try:
        if p.is_file() and p.stat().st_size > MAX_TRACE_BYTES:
            raise TraceError(
                f"{p}: trace is {p.stat().st_size / 2**20:.0f} MiB, over the limit of "
                f"{MAX_TRACE_BYTES / 2**20:.0f} MiB"
            )
        with p.open(newline="") as f:
            columns = _read_columns(p, csv.reader(f))
    except OSError as e:
        raise TraceError(f"{p}: cannot read trace: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise TraceError(f"{p}: cannot read trace: not text ({e.reason})") from None
    except csv.Error as e:
        raise TraceError(f"{p}: cannot read trace: {e}") from None
    ts, counts, observed = columns
    if len(ts) < 2:
        raise TraceError(f"{p}: trace needs at least two rows, has {len(ts)}")
    steps = np.diff(ts)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 3
        raise TraceError(f"{p}:{bad}: timestamps are not strictly increasing")
    step = float(np.median(steps))
    if step < MIN_STEP_S:
        raise TraceError(f"{p}: step {step:g} s is under the minimum of {MIN_STEP_S:g} s")
    if np.any(np.abs(steps - step) > 0.02 * step + 1e-9):
        bad = int(np.argmax(np.abs(steps - step) > 0.02 * step + 1e-9)) + 3
        raise TraceError(
            f"{p}:{bad}: irregular step: {steps[bad - 3]:g} s where the trace's step is {step:g} s"
        )
    span_s = step * len(ts)
    if span_s > MAX_SPAN_S:
        raise TraceError(
            f"{p}: trace spans {span_s / 86400:.0f} days, over the limit of "
            f"{MAX_SPAN_S / 86400:.0f} days"
        )
    return Trace(
        name=p.stem,
        start_s=float(ts[0]),
        step_s=step,
        counts=counts,
        observed=observed,
    )


def _read_columns(
    p: Path, reader: Iterator[list[str]]
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_] | None]:
    """Timestamps, counts and the ``observed`` flags (None without the column), row by row.

    Line numbers in messages count the header as 1 and skip blank rows.
    """
    header_row = next((r for r in reader if _has_data(r)), None)
    if header_row is None:
        raise TraceError(f"{p}: trace is empty")
    header = [c.strip().lower() for c in header_row]
    if header[:2] != ["timestamp_s", "requests"]:
        got = ",".join(header_row)
        raise TraceError(f"{p}: expected header 'timestamp_s,requests', got {got[:200]!r}")
    observed_col = header.index("observed") if "observed" in header else None
    ts, counts, observed = array("d"), array("d"), array("b")
    for i, row in enumerate((r for r in reader if _has_data(r)), start=2):
        if i - 1 > MAX_ROWS:
            raise TraceError(f"{p}: more than {MAX_ROWS:,} rows, the limit of a trace")
        if len(row) < 2:
            raise TraceError(f"{p}:{i}: expected two columns, got {len(row)}")
        try:
            t, c = float(row[0]), float(row[1])
        except ValueError:
            raise TraceError(f"{p}:{i}: non-numeric value in {','.join(row)[:200]!r}") from None
        if not math.isfinite(t):
            raise TraceError(f"{p}:{i}: timestamp is not finite")
        if math.isfinite(c) and c < 0:
            raise TraceError(f"{p}:{i}: negative request count {c}")
        ts.append(t)
        counts.append(c)
        if observed_col is not None:
            observed.append(_observed_flag(p, i, row, observed_col))
    mask = np.array(observed, dtype=np.bool_) if observed_col is not None else None
    return np.array(ts, dtype=float), np.array(counts, dtype=float), mask


def _has_data(row: list[str]) -> bool:
    return bool(row) and any(cell.strip() for cell in row)


def _observed_flag(p: Path, line: int, row: list[str], col: int) -> bool:
    """The ``observed`` cell as a flag: 0 = missing, anything else numeric = observed."""
    try:
        return float(row[col]) != 0.0
    except (ValueError, IndexError):
        raise TraceError(f"{p}:{line}: 'observed' is not a number in {','.join(row)!r}") from None
