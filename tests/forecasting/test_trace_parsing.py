"""Trace numbers are what ``float()`` reads in each cell, to the last bit, whichever reader reads
them: ``pandas.read_csv`` for a file of plain numbers, the row reader for anything else, with
today's messages and line numbers."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting import TraceError, load_trace, traces

HEADER = "timestamp_s,requests"

Columns = tuple[list[float], list[float], list[bool] | None]


def float_parse(path: Path) -> Columns:
    """The reference: every non-blank row's cells through ``float()``, as the csv module
    splits them."""
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    header = [c.strip().lower() for c in rows[0]]
    col = header.index("observed") if "observed" in header else None
    ts = [float(r[0]) for r in rows[1:]]
    counts = [float(r[1]) for r in rows[1:]]
    observed = None if col is None else [float(r[col]) != 0.0 for r in rows[1:]]
    return ts, counts, observed


def bits(values: Sequence[float] | npt.NDArray[np.float64]) -> list[int]:
    return np.asarray(values, dtype=np.float64).view(np.int64).tolist()  # type: ignore[no-any-return]


def assert_same(got: traces._Columns, want: Columns) -> None:
    assert bits(got[0]) == bits(want[0])
    assert bits(got[1]) == bits(want[1])
    if want[2] is None:
        assert got[2] is None
    else:
        assert got[2] is not None and got[2].tolist() == want[2]


def test_every_shared_trace_reads_as_float_reads_it(traces_dir: Path) -> None:
    by_pandas = []
    for path in sorted(traces_dir.glob("*.csv")):
        first_line = path.read_text().splitlines()[0]
        if [c.strip().lower() for c in first_line.split(",")[:2]] != ["timestamp_s", "requests"]:
            with pytest.raises(TraceError) as refused:  # another format, refused as before
                load_trace(path)
            message = f"{path}: expected header 'timestamp_s,requests', got {first_line!r}"
            assert str(refused.value) == message
            continue
        want = float_parse(path)
        trace = load_trace(path)
        assert bits(trace.counts) == bits(want[1])
        assert bits([trace.start_s]) == bits(want[0][:1])
        assert bits([trace.step_s]) == bits([float(np.median(np.diff(want[0])))])
        assert (trace.observed is None) == (want[2] is None)
        if trace.observed is not None:
            assert trace.observed.tolist() == want[2]
        plain = traces._read_plain(path)
        if plain is not None:
            assert_same(plain, want)
            by_pandas.append(path.name)
    assert "nasa_jul95_per_minute.csv" in by_pandas  # pandas reads the real traces


floats = st.floats(allow_nan=False, allow_infinity=False)
SHORT_FORMS = (
    *("1e3", "1E+3", ".5", "5.", "-0", "00", "1e999", "-1e999", "1e-999"),  # plain
    *(" 2 ", "\t7", "+3", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1_000", "١٢"),
    *("", " ", "x", "1e", "0x10", "1.5.2", "--1", "e5", "+"),  # refused by float()
)
CELLS = st.one_of(
    floats.map(repr),
    floats.map(lambda x: f"{x:.17g}"),
    floats.map(lambda x: f"{x:.30e}"),  # more digits than a double holds: rounding decides
    floats.map(lambda x: f" {x!r} "),
    floats.map(lambda x: f"+{abs(x)!r}"),
    floats.map(lambda x: f" +{abs(x):.17g} "),  # pandas 3.1 reads some of these a bit off
    st.sampled_from(SHORT_FORMS),
)
TIMESTAMP_FORMS: tuple[Callable[[float], str], ...] = (
    repr,
    lambda t: f"{t:.17g}",
    lambda t: f"{t:.30e}",
    lambda t: f" {t!r} ",
    lambda t: f"+{t!r}" if t >= 0 else repr(t),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start_s=st.floats(min_value=-1e12, max_value=1e12),
    timestamp_form=st.sampled_from(TIMESTAMP_FORMS),
    counts=st.lists(CELLS, min_size=2, max_size=20),
)
def test_cells_read_as_float_reads_them(
    tmp_path: Path,
    start_s: float,
    timestamp_form: Callable[[float], str],
    counts: list[str],
) -> None:
    """Counts in every spelling, timestamps in the precise ones: the loader's numbers are
    ``float()``'s, it refuses at the first cell ``float()`` or the checks refuse, and the
    pandas reader never takes a file the row reader would refuse."""
    path = tmp_path / "t.csv"
    rows = [f"{timestamp_form(start_s + 60 * i)},{c}" for i, c in enumerate(counts)]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    refusal = None
    for line, row in enumerate(rows, start=2):
        try:
            count = float(row.split(",")[1])
        except ValueError:
            refusal = f"{path}:{line}: non-numeric value in {row!r}"
            break
        if np.isfinite(count) and count < 0:
            refusal = f"{path}:{line}: negative request count {count}"
            break
    if refusal is not None:
        with pytest.raises(TraceError) as refused:
            load_trace(path)
        assert str(refused.value) == refusal
        assert traces._read_plain(path) is None
        return
    want = float_parse(path)
    trace = load_trace(path)
    assert bits(trace.counts) == bits(want[1])
    assert bits([trace.start_s, trace.step_s]) == bits(
        [want[0][0], float(np.median(np.diff(want[0])))]
    )
    plain = traces._read_plain(path)
    if plain is not None:
        assert_same(plain, want)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(st.floats(min_value=0.0, max_value=1e300), min_size=2, max_size=50),
    form=st.sampled_from((repr, "{:.17g}".format, "{:.30e}".format, "{:.3g}".format)),
    newline=st.sampled_from(("\n", "\r\n")),
)
def test_plain_numbers_are_read_by_pandas(
    tmp_path: Path, values: list[float], form: Callable[[float], str], newline: str
) -> None:
    """Plain numbers (exponents included) in every column, blank lines and an ``observed``
    column among extras: pandas reads them, bit for bit as ``float()``. (Short of overflow:
    pandas before 3.1 refuses ``1.8e+308``, which the row reader then reads as ``inf``.)"""
    path = tmp_path / "t.csv"
    rows = [f"{60 * i},{form(v)},{form(v / 3)},{i % 2}" for i, v in enumerate(values)]
    rows.insert(1, "")
    path.write_text(newline.join([f"{HEADER},gen,observed", *rows]) + newline)
    plain = traces._read_plain(path)
    assert plain is not None
    assert_same(plain, float_parse(path))
    assert plain[1].flags.writeable  # a copy of pandas' column, as the row reader gave


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("60\n", ":3: expected two columns, got 1", id="short-row"),
        pytest.param("60,\n", ":3: non-numeric value in '60,'", id="empty-cell"),
        pytest.param("60,x,foo\n", ":3: non-numeric value in '60,x,foo'", id="wide-row"),
        pytest.param(",,\n \n60,x\n", ":3: non-numeric value in '60,x'", id="blank-rows"),
        pytest.param("\n\n120,-1\n", ":3: negative request count -1.0", id="empty-lines"),
        pytest.param("1e999,1\n", ":3: timestamp is not finite", id="inf-timestamp"),
        pytest.param('"60","-1"\n', ":3: negative request count -1.0", id="quoted"),
    ],
)
def test_bad_rows_are_named_as_before(tmp_path: Path, text: str, message: str) -> None:
    """pandas pads a short row with empty cells and drops a wide row's extras: the row reader
    reads the file again to name the row as it always did."""
    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER}\n0,1\n{text}")
    with pytest.raises(TraceError) as refused:
        load_trace(path)
    assert str(refused.value) == f"{path}{message}"


def test_observed_needs_a_number_in_every_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER},observed\n0,1,1\n60,2\n")
    with pytest.raises(TraceError) as refused:
        load_trace(path)
    assert str(refused.value) == f"{path}:3: 'observed' is not a number in '60,2'"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            f"\ufeff{HEADER}\n0,1\n60,2\n".encode(),
            "expected header 'timestamp_s,requests', got '\\ufefftimestamp_s,requests'",
            id="byte-order-mark",  # pandas would strip it
        ),
        pytest.param(
            f"{HEADER}\n0,1\n60,2\xe9\n".encode("latin-1"),
            "cannot read trace: not text (invalid continuation byte)",
            id="latin-1",
        ),
        pytest.param(b"", "trace is empty", id="empty"),
        pytest.param(f"{HEADER}\n".encode(), "trace needs at least two rows, has 0", id="header"),
    ],
)
def test_odd_files_are_refused_as_before(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(TraceError) as refused:
        load_trace(path)
    assert str(refused.value) == f"{path}: {message}"


def test_what_float_reads_is_still_read(tmp_path: Path) -> None:
    """Spaces, signs, ``Infinity``, ``nan`` and digit groups are numbers to ``float()``, so the
    row reader reads them where pandas would not (``1_000``) or might read them a bit off
    (`` +4.72e-07 ``)."""
    path = tmp_path / "t.csv"
    cells = [" 1.5 ", "1_000", "+2", " +4.7224524357611662e-07 ", "Infinity", "nan"]
    path.write_text("\n".join([HEADER, *(f"{60 * i},{c}" for i, c in enumerate(cells))]) + "\n")
    assert traces._read_plain(path) is None
    assert bits(load_trace(path).counts) == bits([float(c) for c in cells])


def test_a_pipe_is_read_once(tmp_path: Path) -> None:
    """A named pipe (``--trace <(zcat trace.csv.gz)``) cannot be read again: the row reader
    reads it, as it always did, even where its rows are not plain."""
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    text = f"{HEADER}\n0, 1\n60, 2\n"
    writer = threading.Thread(target=path.write_text, args=(text,), daemon=True)
    writer.start()
    loaded: list[traces.Trace] = []
    reader = threading.Thread(target=lambda: loaded.append(load_trace(path)), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert loaded and loaded[0].counts.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("row", ["{t}, {c}\n", "{t},{c}\n"], ids=["spaced", "plain"])
def test_rows_over_the_limit_are_refused_after_the_rows_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row: str
) -> None:
    """Both readers: the row after ``MAX_ROWS`` is refused unread, and the rows before it are
    checked first."""
    monkeypatch.setattr(traces, "MAX_ROWS", 3)
    path = tmp_path / "t.csv"

    def write(negative_row: int | None) -> None:
        rows = [row.format(t=60 * i, c=-1 if i + 1 == negative_row else 1) for i in range(9)]
        path.write_text(f"{HEADER}\n" + "".join(rows))

    for negative_row in (None, 4):  # row 4, the first over the limit, is not read
        write(negative_row)
        with pytest.raises(TraceError, match=r"t.csv: more than 3 rows, the limit of a trace$"):
            load_trace(path)
    write(3)
    with pytest.raises(TraceError, match=r"t.csv:4: negative request count -1.0$"):
        load_trace(path)


def test_pandas_stops_reading_after_the_row_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(traces, "MAX_ROWS", 3)
    read: list[int] = []

    class Counted(traces._PlainBytes):
        def read(self, size: int | None = -1, /) -> bytes:
            chunk = super().read(size)
            read.append(len(chunk))
            return chunk

    monkeypatch.setattr(traces, "_PlainBytes", Counted)
    path = tmp_path / "t.csv"
    path.write_text(f"{HEADER}\n" + "".join(f"{60 * i},1\n" for i in range(1_000_000)))
    with pytest.raises(TraceError, match="more than 3 rows"):
        load_trace(path)
    assert 0 < sum(read) < path.stat().st_size / 4


@pytest.mark.parametrize(
    ("version", "option"),
    [("2.1.0", "round_trip"), ("3.0.3", "round_trip"), ("3.1.2", None), ("3.2.0.dev0+4", None)],
)
def test_round_trip_is_asked_for_where_pandas_rounds_otherwise(
    version: str, option: str | None
) -> None:
    """Before 3.1 pandas' default float parser can be off in the last bit (round_trip parses
    with Python's own); from 3.1 all its parsers round correctly and the option warns."""
    assert traces._float_precision(version) == option
