"""The suite's scheduler on synthetic replays: guesses, searches, hpa-fixed, the cache."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sloscale.bench.runner import RunSpec
from sloscale.bench.suite import schedule
from sloscale.bench.suite.cache import ResultCache
from sloscale.bench.suite.cells import Cell, Regime, SuiteTrace, cells_for
from sloscale.bench.suite.demo import DemoOutcome
from sloscale.bench.suite.outcome import Outcome
from sloscale.bench.suite.replay import BenchKnobs, run_label
from sloscale.bench.suite.schedule import Scheduler, SuitePlan

TRACE = SuiteTrace("month", Path("month.csv"), 30 * 24.0, 60.0, "0" * 64)
BEST = {"hpa": {Regime.COLD: 60, Regime.LONG: 66}, "rps": {Regime.COLD: 90, Regime.LONG: 95}}


def fake_replay(cell: Cell, run: RunSpec, knobs: BenchKnobs) -> Outcome:
    """Attainment falls with the target; the highest that meets shifts by one per seed."""
    label = run_label(run)
    target = run.hpa_target_pct or run.rps_target_pct
    if target is None:
        return Outcome(label, 0.995, None, 100.0, None, True, 0, 0, 10)
    best = BEST[run.policy][cell.regime] + cell.seed - 1
    met = target <= best
    return Outcome(label, 0.995 if met else 0.98, None, 1e4 / target, None, met, 0, 0, 10)


def fake_demo(seed: int, hours: float) -> DemoOutcome:
    return DemoOutcome(seed, hours, (), 0.0)


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    done: list[str] = []

    def replay(cell: Cell, run: RunSpec, knobs: BenchKnobs) -> Outcome:
        done.append(f"{cell.slug} {run_label(run)}")
        return fake_replay(cell, run, knobs)

    monkeypatch.setattr(schedule, "replay", replay)
    monkeypatch.setattr(schedule, "run_demo_seed", fake_demo)
    monkeypatch.setattr(schedule, "code_hash", lambda: "code")
    return done


def test_searches_start_from_a_sibling_s_answer_and_hpa_fixed_is_the_lowest(
    replays: list[str], tmp_path: Path
) -> None:
    cells = cells_for([TRACE], seeds=(1, 2, 3))
    err = io.StringIO()
    plan = SuitePlan(cells, demo_seeds=(1, 2))
    run = Scheduler(plan, ResultCache(tmp_path), err).run()
    by = {c.cell.slug: c for c in run.cells}
    for c in cells:
        assert by[c.slug].hpa.result.best == BEST["hpa"][c.regime] + c.seed - 1
        assert by[c.slug].rps.result.best == BEST["rps"][c.regime] + c.seed - 1
    # hpa-fixed: the lowest of the cells' highest targets that met (cold, seed 1)
    assert run.hpa_fixed_target == 60
    assert all(c.hpa_fixed is not None and c.hpa_fixed.label == "hpa@60" for c in run.cells)
    # the first cold cell bisects; the others start one or a few points off
    first = by["month-cold-s1"].hpa.result.evaluations
    assert first <= 8
    assert by["month-cold-s2"].hpa.result.evaluations <= 4  # guess 60, answer 61
    assert by["month-long-s1"].hpa.result.evaluations <= 7  # guess 60 (cold), answer 66
    assert [d.seed for d in run.demo] == [1, 2]
    assert "cells 6/6" in err.getvalue()
    assert run.cached == 0 and run.replays == len(replays) + 2

    # again: every baseline from the cache, sloscale replayed, the same answers
    replays.clear()
    again = Scheduler(plan, ResultCache(tmp_path), None).run()
    assert sorted(replays) == sorted(f"{c.slug} sloscale" for c in cells)
    assert [c.hpa.result for c in again.cells] == [c.hpa.result for c in run.cells]
    assert again.hpa_fixed_target == 60


def test_without_the_cache_and_with_one_cell(replays: list[str]) -> None:
    cell = Cell(TRACE, Regime.COLD, 1, 72.0)
    run = Scheduler(SuitePlan((cell,)), ResultCache(None)).run()
    (c,) = run.cells
    assert c.hpa.star_target == 60 and c.rps.star_target == 90
    assert len(set(replays)) == len(replays)  # nothing replayed twice (hpa@60 reused)
