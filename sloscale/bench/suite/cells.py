"""The suite's cells: every request-rate trace x seed x regime, and the files that are not.

A trace qualifies when the bench's own loader (``forecasting.load_trace``) reads it and it
counts requests at a step the bench replays: a minute or coarser (the bench scores and sizes
per minute), whole counts (a scaled load index is not a request count), no ``observed``
column (its gaps are missing data, which a replay would read as idle). Everything else in
the folder is listed with the reason it was skipped.

Regimes: ``cold`` is the first ``COLD_START_H`` hours (nothing learnt: every policy starts
from its defaults); ``long`` the whole trace up to ``LONG_CAP_H``. A trace no longer than the
cold-start window has the one regime (``long`` would replay the same hours). ``--hours-cap``
caps both, and a ``long`` cell that the cap makes identical to ``cold`` is dropped.

I/O: ``discover`` reads the folder; the rest is computational.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from forecasting.traces import TraceError, load_trace

COLD_START_H = 72.0
LONG_CAP_H = 28 * 24.0
MIN_STEP_S = 60.0


class Regime(StrEnum):
    COLD = "cold"
    LONG = "long"


REGIMES = (Regime.COLD, Regime.LONG)


@dataclass(frozen=True, slots=True)
class SuiteTrace:
    name: str  # the file's stem
    path: Path
    hours: float  # the whole trace
    step_s: float
    sha256: str

    @property
    def short(self) -> str:
        """A name for the table: without the ``_per_<step>`` and ``_requests`` suffixes."""
        return re.sub(r"(_requests)?_per_[a-z0-9]+$", "", self.name)


@dataclass(frozen=True, slots=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Cell:
    """One trace, one seed, one regime; ``hours`` ``None``: the whole trace."""

    trace: SuiteTrace
    regime: Regime
    seed: int
    hours: float | None

    @property
    def replay_hours(self) -> float:
        return self.trace.hours if self.hours is None else self.hours

    @property
    def label(self) -> str:
        return f"{self.trace.short} {self.regime} s{self.seed}"

    @property
    def slug(self) -> str:
        return f"{self.trace.name}-{self.regime}-s{self.seed}"


def qualify(path: Path) -> SuiteTrace | Skipped:
    """The trace at ``path`` as a suite trace, or why it is not a request-rate trace."""
    name = path.stem
    try:
        trace = load_trace(path)
    except TraceError as e:
        return Skipped(name, str(e).replace(f"{path}: ", "", 1))
    counts = trace.counts[np.isfinite(trace.counts)]
    if trace.step_s < MIN_STEP_S:
        return Skipped(
            name, f"step {trace.step_s:g} s: finer than the bench's minute (use a per-minute copy)"
        )
    if trace.observed is not None:
        return Skipped(name, "has an 'observed' column: a load index with gaps, not counts")
    if counts.size and not np.all(counts == np.round(counts)):
        return Skipped(name, "requests are not whole counts: a load index, not a request count")
    if not counts.size or not float(counts.max()) > 0:
        return Skipped(name, "has no requests")
    return SuiteTrace(
        name=name,
        path=path,
        hours=trace.duration_s / 3600.0,
        step_s=trace.step_s,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
    )


def discover(directory: Path) -> tuple[tuple[SuiteTrace, ...], tuple[Skipped, ...]]:
    """Every ``*.csv`` in ``directory``, qualified, by name."""
    traces: list[SuiteTrace] = []
    skipped: list[Skipped] = []
    for path in sorted(directory.glob("*.csv")):
        q = qualify(path)
        if isinstance(q, SuiteTrace):
            traces.append(q)
        else:
            skipped.append(q)
    return tuple(traces), tuple(skipped)


def regime_hours(trace: SuiteTrace, regime: Regime, cap_h: float | None) -> float:
    span = COLD_START_H if regime is Regime.COLD else LONG_CAP_H
    hours = min(trace.hours, span)
    return hours if cap_h is None else min(hours, cap_h)


def cells_for(
    traces: Sequence[SuiteTrace],
    seeds: Sequence[int],
    regimes: Sequence[Regime] = REGIMES,
    cap_h: float | None = None,
) -> tuple[Cell, ...]:
    """Trace x regime x seed, in that order; ``long`` only where it differs from ``cold``."""
    out: list[Cell] = []
    for t in traces:
        cold = regime_hours(t, Regime.COLD, cap_h)
        for regime in regimes:
            hours = regime_hours(t, regime, cap_h)
            if regime is Regime.LONG and hours <= cold + 1e-9:
                continue
            whole = hours >= t.hours - 1e-9
            for seed in seeds:
                out.append(Cell(t, regime, seed, None if whole else hours))
    return tuple(out)
