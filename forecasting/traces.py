"""Reading workload traces: CSV ``timestamp_s,requests`` at any constant step.

The only I/O in ``forecasting``: it turns a file into a validated ``Trace`` or raises
``TraceError`` with a one-line message that names the file and the problem.

Extra columns after the first two are ignored, except ``observed``: where it is 0 the row is
missing data (the collector saw nothing), not zero load, and ``Trace.history()`` gives NaN
there. ``counts`` keep the file's values either way.

Every number is what Python's ``float()`` reads in its cell, to the last bit. A regular file
whose first line is the header and whose every other byte belongs to a plain number (digits,
``.``, ``-``, an exponent) or a separator (``,``, line ends), as every shared trace does, is
parsed by ``pandas.read_csv`` in one C pass: on plain numbers its float parser and
``float()`` agree, both rounding correctly (before pandas 3.1 only with
``float_precision="round_trip"``). Anything else is read row by row by the ``csv`` module and
``float()``, and accepted or refused exactly as before pandas: spaces around a number, a
``+`` sign, ``nan``, ``inf``, ``Infinity``, ``1_000``, quotes, text in an extra column, a
byte-order mark, rows short or blank-looking (``60``, ``,,``), a pipe (read once). pandas
cannot be trusted with those: 3.1 reads `` +4.7224524357611662e-07 `` one unit off in the
last place, pads a short row with empty cells and strips a byte-order mark. A refused row
needs its line number, so a plain file with a bad row is read again by the row reader to
name it (the header is line 1; blank rows are skipped).

Every consumer (the demo, the bench, ``forecast-eval``) allocates in proportion to the rows
and to the span over its own step, so a trace is bounded before anything is allocated: at
most ``MAX_TRACE_BYTES`` on disk and ``MAX_ROWS`` rows (read as a stream, counted as they
come: either reader stops after ``MAX_ROWS + 1``), a step of at least ``MIN_STEP_S`` and a
span of at most ``MAX_SPAN_S``. Anything else is a ``TraceError`` (exit 2 in the CLIs).
"""

from __future__ import annotations

import csv
import io
import math
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

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


_Columns = tuple[FloatArray, FloatArray, npt.NDArray[np.bool_] | None]
"""Timestamps, counts and the ``observed`` flags (None without the column)."""


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
        regular = p.is_file()
        if regular and p.stat().st_size > MAX_TRACE_BYTES:
            raise TraceError(
                f"{p}: trace is {p.stat().st_size / 2**20:.0f} MiB, over the limit of "
                f"{MAX_TRACE_BYTES / 2**20:.0f} MiB"
            )
        columns = _read_plain(p) if regular else None  # a pipe can be read only once
        if columns is None:
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


_PLAIN_HEADER = re.compile(rb"[\t\x20-\x21\x23-\x7e]*")
"""A header line the row reader would split exactly at its commas: printable ASCII, no quotes."""
_PLAIN_BYTES = b"0123456789.eE+-,\r\n"
"""What plain numbers and their separators are made of (``+`` only in an exponent)."""
_SIGN = re.compile(rb"(?<![eE])\+")
"""A ``+`` that is a number's sign, not an exponent's."""


def _read_plain(p: Path) -> _Columns | None:
    """The columns of a plain trace, parsed by ``pandas.read_csv``; None for any other file.

    None as well where the row reader has to say what is wrong (an unreadable file, a header
    other than ``timestamp_s,requests[,...]``, a short row, a non-finite timestamp, a
    negative count) and where pandas refuses a number ``float()`` reads (before 3.1, one
    that overflows to ``inf``). Only the row limit is refused here, with the row reader's
    message, once the rows before it are known to be good.
    """
    import pandas as pd  # here, not on top: ``import forecasting`` stays 0.3-0.5 s faster

    try:
        with p.open("rb") as raw:
            usecols = _plain_header(raw.readline())
            if usecols is None:
                return None
            data = _PlainBytes(raw)
            frame = pd.read_csv(
                data,
                header=None,
                usecols=usecols,
                index_col=False,
                dtype=np.float64,
                na_filter=False,  # a missing or empty cell is an error, not NaN
                nrows=MAX_ROWS + 1,
                engine="c",
                float_precision=_float_precision(pd.__version__),
            )
    except (OSError, ValueError):  # pandas' parser and empty-data errors are ValueErrors
        return None
    if not data.plain:
        return None
    ts, counts = (np.array(frame[c], dtype=np.float64) for c in usecols[:2])
    checked = slice(MAX_ROWS)  # the row reader refuses row MAX_ROWS + 1 before checking it
    if not np.all(np.isfinite(ts[checked])) or np.any(
        np.isfinite(counts[checked]) & (counts[checked] < 0)
    ):
        return None
    if len(ts) > MAX_ROWS:
        raise _too_many_rows(p)
    observed = np.array(frame[usecols[2]], dtype=np.float64) != 0.0 if len(usecols) > 2 else None
    return ts, counts, observed


def _plain_header(line: bytes) -> list[int] | None:
    """The columns to read under a plain header line (``timestamp_s``, ``requests`` and
    ``observed`` where it has one), or None where the row reader has to read the header."""
    text = line.removesuffix(b"\n").removesuffix(b"\r")
    if not _PLAIN_HEADER.fullmatch(text):
        return None
    header = [c.strip().lower() for c in text.decode("ascii").split(",")]
    if header[:2] != ["timestamp_s", "requests"]:
        return None
    return [0, 1, header.index("observed")] if "observed" in header else [0, 1]


def _float_precision(pandas_version: str) -> Literal["round_trip"] | None:
    """``"round_trip"`` before pandas 3.1, whose default float parser can be off in the last
    bit where ``float()`` is not; from 3.1 on every option is the same correctly rounded
    parser (fast_float) and naming one is deprecated."""
    match = re.match(r"(\d+)\.(\d+)", pandas_version)
    return None if match and (int(match[1]), int(match[2])) >= (3, 1) else "round_trip"


class _PlainBytes(io.BufferedIOBase):
    """The rest of a trace file as pandas reads it, with ``plain`` False once anything in it
    is other than plain numbers and separators; from there on it reads as the end of the
    file, so pandas stops and the row reader starts without pandas reading the whole file."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._before = b"\n"  # the byte before the chunk read next
        self.plain = True

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if not self.plain:
            return b""
        chunk = self._raw.read(-1 if size is None else size)
        self.plain = not chunk.translate(None, _PLAIN_BYTES) and (
            b"+" not in chunk or not _SIGN.search(self._before + chunk)
        )
        self._before = chunk[-1:] or self._before
        return chunk if self.plain else b""

    def read1(self, size: int = -1, /) -> bytes:  # pandas before 3 wraps it in a TextIOWrapper
        return self.read(size)


def _too_many_rows(p: Path) -> TraceError:
    return TraceError(f"{p}: more than {MAX_ROWS:,} rows, the limit of a trace")


def _read_columns(p: Path, reader: Iterator[list[str]]) -> _Columns:
    """The row reader: timestamps, counts and ``observed`` flags, row by row, each cell read
    by ``float()``; it reads what ``_read_plain`` leaves and says what is wrong.

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
            raise _too_many_rows(p)
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
