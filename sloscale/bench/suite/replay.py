"""One replay of one cell, as a worker process runs it: the bench's own ``prepare`` and
``run_one``, with the bench's defaults, scored to an ``Outcome``.

``BenchKnobs`` are the bench options the suite holds fixed (the defaults of ``sloscale
bench``); they are part of every cache key. Each worker keeps the last few prepared setups,
as a search replays the same cell several times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sloscale.bench.runner import RunSpec, run_one
from sloscale.bench.settings import BenchSettings
from sloscale.bench.setup import BenchSetup, prepare
from sloscale.bench.suite.cells import Cell
from sloscale.bench.suite.outcome import Outcome


@dataclass(frozen=True, slots=True)
class BenchKnobs:
    cluster_gpus: int = 8
    peak_share: float = 0.7
    slo_ms: float = 2000.0
    tick_s: float = 15.0

    def as_key(self) -> dict[str, Any]:
        return asdict(self)


def hpa_run(target_pct: int) -> RunSpec:
    return RunSpec("hpa", hpa_target_pct=target_pct)


def rps_run(target_pct: int) -> RunSpec:
    return RunSpec("rps", rps_target_pct=target_pct)


def run_label(run: RunSpec) -> str:
    """``hpa@70`` even for the bench's default target (whose bench label is plain ``hpa``)."""
    if run.policy == "hpa":
        return f"hpa@{run.hpa_target_pct}"
    return run.label


@lru_cache(maxsize=4)
def _setup(path: Path, hours: float | None, seed: int, knobs: BenchKnobs) -> BenchSetup:
    return prepare(
        BenchSettings(
            trace=path,
            hours=hours,
            seed=seed,
            cluster_gpus=knobs.cluster_gpus,
            peak_share=knobs.peak_share,
            slo_ms=knobs.slo_ms,
            tick_s=knobs.tick_s,
        )
    )


def setup_for(cell: Cell, knobs: BenchKnobs) -> BenchSetup:
    return _setup(cell.trace.path, cell.hours, cell.seed, knobs)


def replay(cell: Cell, run: RunSpec, knobs: BenchKnobs) -> Outcome:
    """Replay ``cell`` under ``run``; the outcome is labelled with ``run_label``."""
    return replace(Outcome.of(run_one(setup_for(cell, knobs), run)), label=run_label(run))
