"""Running the suite: every cell's replays and searches over one pool of worker processes.

Per cell: ``sloscale`` and the ``oracle`` once each, the ``hpa`` and ``rps`` target searches
(``search.TargetSearch``, one replay at a time each), then, once every search has finished,
``hpa-fixed`` (the one utilisation target of ``aggregate.hpa_fixed_target``), taken from the
cell's search when it replayed that target. Plus the demo seeds.

A search starts from a guess: the answer of the same trace and regime at the lowest seed of
the run; for that seed's ``long`` regime, the answer of its ``cold`` regime; else none (it
bisects the whole range).
The guesses depend only on the cells asked for, so the replays and results do not depend on
``--workers``. Baseline replays go through the cache first (``cache.ResultCache``); sloscale
and the demo always replay. Searches go first (so that ``hpa-fixed`` can start early), then
the longest replay first.

Progress goes to ``err``: one line per replay with the cells done, elapsed time and an ETA
from a cost model (simulated hours x a weight per policy, calibrated on the replays so far).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import ParamSpec, TextIO, TypeVar

from sloscale.bench.runner import RunSpec
from sloscale.bench.setup import BENCH_MODEL, LATENCY_QUANTILE
from sloscale.bench.sizing import quantile_table
from sloscale.bench.suite.aggregate import CellResult, SearchOutcomes, hpa_fixed_target
from sloscale.bench.suite.cache import ResultCache, cache_key, code_hash
from sloscale.bench.suite.cells import Cell, Regime
from sloscale.bench.suite.demo import DemoOutcome, run_demo_seed
from sloscale.bench.suite.outcome import Outcome
from sloscale.bench.suite.replay import BenchKnobs, hpa_run, replay, rps_run, run_label
from sloscale.bench.suite.search import SearchRange, SearchResult, TargetSearch
from sloscale.progress import Progress

HPA_RANGE = SearchRange(20, 95)
"""GPU utilisation targets, in %."""
RPS_RANGE = SearchRange(20, 140)
"""Requests per second per pod, in % of the largest rate one replica serves within the SLO
(``rps.reference_rps``); 139 % is a fully busy replica, so nothing above it can meet."""
SEARCHES = ("hpa", "rps")
WEIGHT = {"sloscale": 4.0, "oracle": 0.6, "hpa": 1.0, "rps": 1.0, "demo": 15.0}
"""Relative cost of a simulated hour per policy, measured on 72 h of NASA (hpa and rps 9.5 s of
CPU, oracle 5.8 s, sloscale 37.7 s) and the demo (1 h 7.7 s, 24 h 52 s) on one machine."""
DEMO_START_UNITS = 45.0
"""A demo's start costs about as much as 45 hours of an HPA replay."""
EXPECTED_EVALUATIONS = 4
"""Replays a search is expected to need, for the ETA."""

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SuitePlan:
    cells: tuple[Cell, ...]
    demo_seeds: tuple[int, ...] = ()
    demo_hours: float = 24.0
    knobs: BenchKnobs = field(default_factory=BenchKnobs)
    workers: int = 1
    hpa_range: SearchRange = HPA_RANGE
    rps_range: SearchRange = RPS_RANGE


@dataclass(frozen=True, slots=True)
class SuiteRun:
    cells: tuple[CellResult, ...]
    hpa_fixed_target: int | None
    demo: tuple[DemoOutcome, ...]
    replays: int  # replayed in this run
    cached: int  # read from the cache
    wall_s: float


@dataclass(frozen=True, slots=True)
class Job:
    """A replay of ``cell`` under ``run``, or (``cell`` None) a demo at ``demo_seed``."""

    cell: Cell | None
    run: RunSpec | None
    demo_seed: int = 0

    @property
    def label(self) -> str:
        return "demo" if self.run is None else run_label(self.run)

    @property
    def search(self) -> bool:
        return self.run is not None and self.run.policy in SEARCHES


def _work(job: Job, knobs: BenchKnobs, demo_hours: float) -> Outcome | DemoOutcome:
    if job.cell is None or job.run is None:
        return run_demo_seed(job.demo_seed, demo_hours)
    return replay(job.cell, job.run, knobs)


class _Inline(Executor):
    """Runs each job when submitted: ``--workers 1``, no processes."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
        return future


def _units(job: Job, demo_hours: float) -> float:
    if job.cell is None or job.run is None:
        return DEMO_START_UNITS + demo_hours * WEIGHT["demo"]
    return job.cell.replay_hours * WEIGHT.get(job.run.policy, 1.0)


class Scheduler:
    """Drives one suite run; ``run()`` returns the ``SuiteRun``."""

    def __init__(self, plan: SuitePlan, cache: ResultCache, err: TextIO | None = None) -> None:
        self.plan = plan
        self.cache = cache
        self.code = code_hash()
        self.settings = plan.knobs.as_key()
        self.outcomes: dict[tuple[str, str], Outcome] = {}
        self.demo: dict[int, DemoOutcome] = {}
        self.searches: dict[tuple[str, str], TargetSearch] = {}
        self.results: dict[tuple[str, str], SearchResult] = {}
        self.queue: list[Job] = []
        self.queued: set[tuple[str, str]] = set()
        self.inflight: dict[Future[Outcome | DemoOutcome], Job] = {}
        self.fixed: int | None = None
        self.fixed_started = False
        self.replays = 0
        self.progress = Progress(err, len(plan.cells), "cells", plan.workers)

    # -- guesses -------------------------------------------------------------------------------

    def _source(self, cell: Cell) -> Cell | None:
        """The cell whose answer is this cell's guess (see the module docstring)."""
        siblings = [
            c
            for c in self.plan.cells
            if c.trace.name == cell.trace.name and c.regime is cell.regime
        ]
        first = min(siblings, key=lambda c: c.seed)
        if first.seed != cell.seed:
            return first
        if cell.regime is Regime.LONG:
            cold = [
                c
                for c in self.plan.cells
                if c.trace.name == cell.trace.name
                and c.regime is Regime.COLD
                and c.seed == cell.seed
            ]
            return cold[0] if cold else None
        return None

    def _guess(self, cell: Cell, kind: str) -> tuple[bool, int | None]:
        """(known, guess): ``known`` False while the source's search is still running; the
        guess is ``None`` without a source (bisect the range)."""
        span = self.plan.hpa_range if kind == "hpa" else self.plan.rps_range
        source = self._source(cell)
        if source is None:
            return True, None
        result = self.results.get((source.slug, kind))
        if result is None:
            return False, None
        return True, span.lo if result.best is None else result.best

    # -- requests ------------------------------------------------------------------------------

    def _request(self, cell: Cell, run: RunSpec) -> None:
        """Make ``run``'s outcome on ``cell`` known: from memory, the cache, or a replay."""
        key = (cell.slug, run_label(run))
        if key in self.outcomes or key in self.queued:
            return
        if run.policy != "sloscale":
            hit = self.cache.get(cell, key[1], self._key(cell, key[1]))
            if hit is not None:
                self.outcomes[key] = hit
                return
        self.queued.add(key)
        self.queue.append(Job(cell, run))

    def _key(self, cell: Cell, label: str) -> str:
        return cache_key(cell, label, self.settings, self.code)

    def _advance_searches(self) -> None:
        """Start searches whose guess is known; feed known outcomes; ask for the next target."""
        progress = True
        while progress:
            progress = False
            for cell in self.plan.cells:
                for kind in SEARCHES:
                    skey = (cell.slug, kind)
                    if skey in self.results:
                        continue
                    search = self.searches.get(skey)
                    if search is None:
                        known, guess = self._guess(cell, kind)
                        if not known:
                            continue
                        span = self.plan.hpa_range if kind == "hpa" else self.plan.rps_range
                        search = self.searches[skey] = TargetSearch(span, guess)
                    target = search.next_target()
                    if target is None:
                        self.results[skey] = search.result()
                        progress = True
                        continue
                    run = hpa_run(target) if kind == "hpa" else rps_run(target)
                    outcome = self.outcomes.get((cell.slug, run_label(run)))
                    if outcome is not None:
                        search.record(target, outcome.met)
                        progress = True
                    else:
                        self._request(cell, run)
                        progress = progress or (cell.slug, run_label(run)) in self.outcomes

    def _start_fixed(self) -> None:
        self.fixed_started = True
        self.fixed = hpa_fixed_target([self.results[(c.slug, "hpa")] for c in self.plan.cells])
        if self.fixed is not None:
            for cell in self.plan.cells:
                self._request(cell, hpa_run(self.fixed))

    # -- the loop ------------------------------------------------------------------------------

    def _cells_done(self) -> int:
        def done(c: Cell) -> bool:
            parts = [(c.slug, "sloscale"), (c.slug, "oracle")]
            if self.fixed is not None:
                parts.append((c.slug, f"hpa@{self.fixed}"))
            return (
                self.fixed_started
                and all(p in self.outcomes for p in parts)
                and all((c.slug, k) in self.results for k in SEARCHES)
            )

        return sum(done(c) for c in self.plan.cells)

    def _remaining_units(self) -> float:
        hours = self.plan.demo_hours
        units = sum(_units(j, hours) for j in self.queue)
        units += sum(_units(j, hours) / 2 for j in self.inflight.values())
        for cell in self.plan.cells:
            for kind in SEARCHES:
                if (cell.slug, kind) not in self.results:
                    search = self.searches.get((cell.slug, kind))
                    done = 0 if search is None else len(search.points)
                    units += max(1, EXPECTED_EVALUATIONS - done) * cell.replay_hours
            if not self.fixed_started:
                units += cell.replay_hours
        return units

    def _pop(self) -> Job:
        """Searches first (``hpa-fixed`` waits on them), then the costliest."""
        hours = self.plan.demo_hours
        self.queue.sort(key=lambda j: (not j.search, -_units(j, hours)))
        return self.queue.pop(0)

    def run(self) -> SuiteRun:
        started = time.perf_counter()
        quantile_table(BENCH_MODEL.service_cv, LATENCY_QUANTILE)  # once, before forking
        for cell in self.plan.cells:
            self._request(cell, RunSpec("sloscale"))
            self._request(cell, RunSpec("oracle"))
        self.queue.extend(Job(None, None, s) for s in self.plan.demo_seeds)
        if self.plan.workers > 1:
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(self.plan.workers, mp_context=context) as pool:
                self._loop(pool)
        else:
            self._loop(_Inline())
        cached = sum(o.cached for o in self.outcomes.values())
        return SuiteRun(
            cells=tuple(self._cell_result(c) for c in self.plan.cells),
            hpa_fixed_target=self.fixed,
            demo=tuple(self.demo[s] for s in self.plan.demo_seeds),
            replays=self.replays,
            cached=cached,
            wall_s=time.perf_counter() - started,
        )

    def _loop(self, pool: Executor) -> None:
        while True:
            self._advance_searches()
            if not self.fixed_started and len(self.results) == len(self.plan.cells) * 2:
                self._start_fixed()
            while self.queue and len(self.inflight) < max(1, self.plan.workers):
                job = self._pop()
                future = pool.submit(_work, job, self.plan.knobs, self.plan.demo_hours)
                self.inflight[future] = job
            if not self.inflight:
                if self.fixed_started:
                    return
                if len(self.results) < len(self.plan.cells) * 2 and not self.queue:
                    raise RuntimeError("suite stalled: a search waits on nothing")
                continue
            finished, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
            for future in finished:
                self._finish(self.inflight.pop(future), future.result())

    def _finish(self, job: Job, result: Outcome | DemoOutcome) -> None:
        self.replays += 1
        units = _units(job, self.plan.demo_hours)
        if isinstance(result, DemoOutcome):
            self.demo[job.demo_seed] = result
            met = sum(s.met for s in result.services)
            line = f"demo seed {job.demo_seed}: {met}/{len(result.services)} services meet"
        else:
            assert job.cell is not None and job.run is not None
            key = (job.cell.slug, result.label)
            self.queued.discard(key)
            self.outcomes[key] = result
            if job.run.policy != "sloscale":
                self.cache.put(job.cell, result.label, self._key(job.cell, result.label), result)
            att = result.slo_attainment
            line = (
                f"{job.cell.label} {result.label}: "
                f"{'n/a' if att is None else f'{100 * att:.3f} %'} "
                f"{'met' if result.met else 'MISS'}, {result.gpu_hours:.1f} GPU-h"
            )
        self.progress.finished(result.wall_s, units)
        self.progress.report(
            f"{line} ({result.wall_s:.1f} s)", self._cells_done(), self._remaining_units()
        )

    # -- results -------------------------------------------------------------------------------

    def _search_outcomes(self, cell: Cell, kind: str) -> SearchOutcomes:
        result = self.results[(cell.slug, kind)]
        outcomes = {t: self.outcomes[(cell.slug, f"{kind}@{t}")] for t, _ in result.replayed}
        return SearchOutcomes(kind, result, outcomes)

    def _cell_result(self, cell: Cell) -> CellResult:
        fixed = None if self.fixed is None else self.outcomes[(cell.slug, f"hpa@{self.fixed}")]
        return CellResult(
            cell=cell,
            sloscale=self.outcomes[(cell.slug, "sloscale")],
            oracle=self.outcomes[(cell.slug, "oracle")],
            hpa=self._search_outcomes(cell, "hpa"),
            rps=self._search_outcomes(cell, "rps"),
            hpa_fixed=fixed,
        )


def run_suite(plan: SuitePlan, cache: ResultCache, err: TextIO | None = None) -> SuiteRun:
    return Scheduler(plan, cache, err).run()
