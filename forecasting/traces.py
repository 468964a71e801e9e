"""Reading workload traces: CSV ``timestamp_s,requests`` at any constant step.

The only I/O in ``forecasting``: it turns a file into a validated ``Trace`` or raises
``TraceError`` with a one-line message that names the file and the problem.

Extra columns after the first two are ignored, except ``observed``: where it is 0 the row is
missing data (the collector saw nothing), not zero load, and ``Trace.history()`` gives NaN
there. ``counts`` keep the file's values either way.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from forecasting.base import FloatArray, History


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
    """Read and validate a trace; raise ``TraceError`` on any problem."""
    p = Path(path)
    try:
        with p.open(newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise TraceError(f"{p}: cannot read trace: {e.strerror or e}") from None
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if not rows:
        raise TraceError(f"{p}: trace is empty")
    header = [c.strip().lower() for c in rows[0]]
    if header[:2] != ["timestamp_s", "requests"]:
        raise TraceError(f"{p}: expected header 'timestamp_s,requests', got {','.join(rows[0])!r}")
    observed_col = header.index("observed") if "observed" in header else None
    data = rows[1:]
    if len(data) < 2:
        raise TraceError(f"{p}: trace needs at least two rows, has {len(data)}")
    ts = np.empty(len(data))
    counts = np.empty(len(data))
    observed = np.ones(len(data), dtype=np.bool_)
    for i, row in enumerate(data, start=2):
        if len(row) < 2:
            raise TraceError(f"{p}:{i}: expected two columns, got {len(row)}")
        try:
            t, c = float(row[0]), float(row[1])
        except ValueError:
            raise TraceError(f"{p}:{i}: non-numeric value in {','.join(row)!r}") from None
        if not math.isfinite(t):
            raise TraceError(f"{p}:{i}: timestamp is not finite")
        if math.isfinite(c) and c < 0:
            raise TraceError(f"{p}:{i}: negative request count {c}")
        ts[i - 2], counts[i - 2] = t, c
        if observed_col is not None:
            observed[i - 2] = _observed_flag(p, i, row, observed_col)
    steps = np.diff(ts)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 3
        raise TraceError(f"{p}:{bad}: timestamps are not strictly increasing")
    step = float(np.median(steps))
    if np.any(np.abs(steps - step) > 0.02 * step + 1e-9):
        bad = int(np.argmax(np.abs(steps - step) > 0.02 * step + 1e-9)) + 3
        raise TraceError(
            f"{p}:{bad}: irregular step: {steps[bad - 3]:g} s where the trace's step is {step:g} s"
        )
    return Trace(
        name=p.stem,
        start_s=float(ts[0]),
        step_s=step,
        counts=counts,
        observed=observed if observed_col is not None else None,
    )


def _observed_flag(p: Path, line: int, row: list[str], col: int) -> bool:
    """The ``observed`` cell as a flag: 0 = missing, anything else numeric = observed."""
    try:
        return float(row[col]) != 0.0
    except (ValueError, IndexError):
        raise TraceError(f"{p}:{line}: 'observed' is not a number in {','.join(row)!r}") from None
