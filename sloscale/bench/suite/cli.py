"""``sloscale bench --suite``: every request-rate trace x seeds x regimes, one table.

``main(argv)`` is what ``sloscale.bench.cli`` calls when ``--suite`` is given (``argv``
without it). Bad input is one line on stderr and exit code 2, as for ``sloscale bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from loadtests.shapes import traces_dir
from sloscale.argtypes import int_at_least, positive_float
from sloscale.bench.settings import BenchError
from sloscale.bench.suite.ablation import (
    FULL,
    VARIANTS,
    ablation_json,
    format_ablation,
    run_ablation,
    setting_variant,
)
from sloscale.bench.suite.cache import DEFAULT_CACHE_DIR, ResultCache
from sloscale.bench.suite.cells import REGIMES, Cell, Regime, cells_for, discover
from sloscale.bench.suite.output import format_suite, suite_json
from sloscale.bench.suite.replay import BenchKnobs
from sloscale.bench.suite.schedule import SuitePlan, run_suite
from sloscale.errors import error_line

EXIT_BAD_INPUT = 2
QUICK_TRACES = ("azure_llm2023_code_per_minute", "servegen_mm-image_per_10min")
QUICK_HOURS = 2.0
QUICK_DEMO_HOURS = 0.5
DEFAULT_SEEDS = (1, 2, 3)
DEFAULT_DEMO_SEEDS = tuple(range(1, 11))
DEFAULT_DEMO_HOURS = 24.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise BenchError(f"{self.prog}: {message}")


def parse_seeds(text: str) -> tuple[int, ...]:
    """``1-3``, ``1,2,5``, ``1-3,7`` or ``none``; sorted, without repeats."""
    if text.strip().lower() in {"", "none"}:
        return ()
    seeds: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi or lo)
            if first < 0 or last < first:
                raise ValueError
            seeds.update(range(first, last + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of seeds: {text!r}") from None
    return tuple(sorted(seeds))


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip().removesuffix(".csv") for p in text.split(",") if p.strip())


def _regimes(text: str) -> tuple[Regime, ...]:
    try:
        return tuple(Regime(n) for n in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"regimes are {','.join(REGIMES)}, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sloscale bench --suite",
        description="sloscale against the searched HPAs, hpa-fixed and the oracle on every "
        "request-rate trace x seeds x regimes, plus sloscale demo at several seeds",
    )
    p.add_argument("--traces-dir", type=Path, default=None, help="the traces (../shared/traces)")
    p.add_argument("--traces", type=_names, help="only these traces (file stems, comma-separated)")
    p.add_argument("--seeds", type=parse_seeds, help="seeds, e.g. 1-3 (1-3)")
    p.add_argument("--regimes", type=_regimes, help="cold,long (both)")
    p.add_argument("--hours-cap", type=positive_float, help="replay at most H hours of every cell")
    p.add_argument("--demo-seeds", type=parse_seeds, help="sloscale demo seeds (1-10; none)")
    p.add_argument("--demo-hours", type=positive_float, help="hours per demo seed (24)")
    p.add_argument(
        "--workers",
        type=int_at_least(1),
        default=min(4, os.cpu_count() or 1),
        help="replays in parallel processes (min(4, CPUs)); results do not depend on it",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help="baseline results cache (.cache/sloscale-bench in the repository)",
    )
    p.add_argument("--no-cache", action="store_true", help="replay every baseline")
    p.add_argument("--json", type=Path, dest="json_out", help="write the results as JSON")
    p.add_argument(
        "--ablate",
        nargs="?",
        const="all",
        metavar="VARIANTS",
        help="replay sloscale alone, once per planner variant with one tuned rule removed "
        f"({', '.join(v.name for v in VARIANTS)}; comma-separated, or all), or with one "
        "constant set (stage.field=value, e.g. headroom.budget_reserve=0.9), and say which "
        "rules pay on the suite's aggregate; no baselines, no demo",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"the CI subset: {', '.join(QUICK_TRACES)}, seed 1, cold start capped at "
        f"{QUICK_HOURS:g} h, demo seed 1 for {QUICK_DEMO_HOURS:g} h (other options override)",
    )
    return p


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    args = build_parser().parse_args(list(argv))
    quick = args.quick
    directory: Path = args.traces_dir or traces_dir()
    if not directory.is_dir():
        raise BenchError(f"no traces folder at {directory}")
    names = args.traces or (QUICK_TRACES if quick else None)
    seeds = args.seeds if args.seeds is not None else ((1,) if quick else DEFAULT_SEEDS)
    regimes = args.regimes or ((Regime.COLD,) if quick else REGIMES)
    cap = args.hours_cap or (QUICK_HOURS if quick else None)
    demo_seeds = (
        args.demo_seeds if args.demo_seeds is not None else ((1,) if quick else DEFAULT_DEMO_SEEDS)
    )
    demo_hours = args.demo_hours or (QUICK_DEMO_HOURS if quick else DEFAULT_DEMO_HOURS)
    if not seeds:
        raise BenchError("no seed to run")

    traces, skipped = discover(directory)
    if names is not None:
        known = {t.name for t in traces} | {s.name for s in skipped}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BenchError(f"no trace {unknown[0]!r} in {directory}")
        traces = tuple(t for t in traces if t.name in names)
        skipped = tuple(s for s in skipped if s.name in names)
    cells = cells_for(traces, seeds, regimes, cap)
    if not cells:
        raise BenchError("no cell to run: no request-rate trace or regime selected")

    knobs = BenchKnobs()
    if args.ablate is not None:
        return _ablate(args.ablate, cells, knobs, args.workers, args.json_out, out, err)
    plan = SuitePlan(
        cells=cells,
        demo_seeds=demo_seeds,
        demo_hours=demo_hours,
        knobs=knobs,
        workers=args.workers,
    )
    cache = ResultCache(None if args.no_cache else args.cache_dir)
    print(
        f"suite: {len(cells)} cells ({len(traces)} traces x {len(seeds)} seeds x regimes), "
        f"{len(demo_seeds)} demo seeds, {args.workers} workers, cache "
        f"{'off' if cache.directory is None else cache.directory}",
        file=err,
        flush=True,
    )
    result = run_suite(plan, cache, err)
    print(format_suite(result, skipped, knobs, str(directory)), file=out)
    if args.json_out is not None:
        options = {
            "traces": [t.name for t in traces],
            "seeds": list(seeds),
            "regimes": [str(r) for r in regimes],
            "hours_cap": cap,
            "demo_seeds": list(demo_seeds),
            "demo_hours": demo_hours,
            "hpa_range": [plan.hpa_range.lo, plan.hpa_range.hi],
            "rps_range": [plan.rps_range.lo, plan.rps_range.hi],
        }
        payload = suite_json(result, traces, skipped, knobs, options)
        try:
            args.json_out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        except OSError as e:
            raise BenchError(f"cannot write {args.json_out}: {e.strerror or e}") from None
    return 0


def _ablate(
    which: str,
    cells: Sequence[Cell],
    knobs: BenchKnobs,
    workers: int,
    json_out: Path | None,
    out: TextIO,
    err: TextIO,
) -> int:
    by_name = {v.name: v for v in VARIANTS}
    names = [v.name for v in VARIANTS] if which == "all" else [FULL, *_names(which)]
    for name in names:
        if name not in by_name and "=" in name:
            try:
                by_name[name] = setting_variant(name)
            except ValueError as e:
                raise BenchError(f"--ablate: {e}") from None
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BenchError(
            f"no variant {unknown[0]!r}; known: {', '.join(v.name for v in VARIANTS)}, "
            "or stage.field=value"
        )
    variants = [by_name[n] for n in dict.fromkeys(names)]
    print(
        f"ablation: {len(cells)} cells x {len(variants)} variants, {workers} workers",
        file=err,
        flush=True,
    )
    results = run_ablation(cells, variants, knobs, workers, err)
    print(format_ablation(results, cells, variants), file=out)
    if json_out is not None:
        payload = ablation_json(results, cells, variants)
        try:
            json_out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        except OSError as e:
            raise BenchError(f"cannot write {json_out}: {e.strerror or e}") from None
    return 0


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``sloscale bench --suite``; returns the exit code (2 on bad input)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return run(sys.argv[1:] if argv is None else argv, out, err)
    except BenchError as e:
        print(error_line("bench --suite", e), file=err)
        return EXIT_BAD_INPUT
