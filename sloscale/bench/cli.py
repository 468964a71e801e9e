"""``sloscale bench``: parse the options, run the replays, print the table, write the files.

``main(argv)`` is what ``sloscale.cli`` calls for ``sloscale bench ...``. Bad input (an
unreadable or malformed trace, impossible settings) ends with one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sloscale.bench.output import format_table, to_json
from sloscale.bench.results import PolicyResult
from sloscale.bench.runner import RunSpec, run_all, runs_for
from sloscale.bench.settings import (
    DEFAULT_HPA_TARGETS_PCT,
    POLICY_NAMES,
    BenchError,
    BenchSettings,
)
from sloscale.bench.setup import BenchSetup, prepare
from sloscale.bench.suite.schedule import WEIGHT
from sloscale.errors import error_line
from sloscale.progress import Progress, progress_stream

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise BenchError(f"{self.prog}: {message}")


def _number(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None

    return parse


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _targets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of percentages: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sloscale bench",
        description="replay a trace through the simulated cluster under each policy",
        epilog="sloscale bench --suite [--help]: every trace x seeds x regimes, with the "
        "searched HPAs (docs/benchmark.md)",
    )
    p.add_argument("--trace", type=Path, required=True, help="CSV timestamp_s,requests")
    p.add_argument(
        "--policies",
        type=_names,
        default=POLICY_NAMES,
        help=f"comma-separated, from {','.join(POLICY_NAMES)} (all)",
    )
    p.add_argument("--hours", type=_number(float), help="replay only the first H hours")
    p.add_argument("--cluster-gpus", type=_number(int), default=8, help="GPUs in the pool (8)")
    p.add_argument(
        "--peak-share",
        type=_number(float),
        default=0.7,
        help="share of the pool the oracle needs at the trace's peak (0.7)",
    )
    p.add_argument(
        "--slo-ms", type=_number(float), default=2000.0, help="p99 latency target (2000)"
    )
    p.add_argument("--seed", type=_number(int), default=1)
    p.add_argument(
        "--hpa-targets",
        type=_targets,
        default=DEFAULT_HPA_TARGETS_PCT,
        help="utilisation targets hpa* tries, in %% (40,50,60,70,80)",
    )
    p.add_argument(
        "--workers",
        type=_number(int),
        default=min(4, os.cpu_count() or 1),
        help="replays run in parallel processes (min(4, CPUs)); results do not depend on it",
    )
    p.add_argument("--json", type=Path, dest="json_out", help="write the results as JSON")
    p.add_argument("--report", type=Path, help="write PNG plots and index.html to this folder")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a line on stderr as each replay finishes (default: when stderr is a terminal)",
    )
    return p


@dataclass(frozen=True, slots=True)
class BenchOutputs:
    """Where ``sloscale bench`` writes besides its table: JSON, the report, progress."""

    json_out: Path | None = None
    report_dir: Path | None = None
    progress: bool | None = None  # None: when stderr is a terminal


def settings_from(argv: Sequence[str]) -> tuple[BenchSettings, BenchOutputs]:
    args = build_parser().parse_args(list(argv))
    settings = BenchSettings(
        trace=args.trace,
        policies=args.policies,
        hours=args.hours,
        cluster_gpus=args.cluster_gpus,
        peak_share=args.peak_share,
        slo_ms=args.slo_ms,
        seed=args.seed,
        hpa_targets_pct=args.hpa_targets,
        workers=args.workers,
    ).validate()
    if args.seed < 0:
        raise BenchError(f"--seed must be >= 0, got {args.seed}")
    return settings, BenchOutputs(args.json_out, args.report, args.progress)


def replay_progress(
    err: TextIO | None, setup: BenchSetup, runs: Sequence[RunSpec]
) -> Callable[[PolicyResult], None]:
    """One progress line per finished replay; the ETA weighs each replay by its simulated
    hours and its policy's cost (the suite's cost model)."""
    hours = setup.duration_s / 3600.0
    units = {r.label: hours * WEIGHT.get(r.policy, 1.0) for r in runs}
    workers = min(setup.settings.workers, len(runs))
    progress = Progress(err, len(runs), "replays", workers)
    left = dict(units)

    def on_done(result: PolicyResult) -> None:
        progress.finished(result.wall_s, left.pop(result.name, 0.0))
        att = "n/a" if result.slo_attainment is None else f"{100 * result.slo_attainment:.3f} %"
        line = (
            f"{result.name}: {att} {'met' if result.met else 'MISS'}, "
            f"{result.gpu_hours:.1f} GPU-h ({result.wall_s:.1f} s)"
        )
        progress.report(line, len(runs) - len(left), sum(left.values()))

    return on_done


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    settings, outputs = settings_from(argv)
    json_out, report_dir = outputs.json_out, outputs.report_dir
    setup = prepare(settings)
    runs = runs_for(settings.policies, settings.hpa_targets_pct)
    on_done = replay_progress(progress_stream(outputs.progress, err), setup, runs)
    started = time.perf_counter()
    results = run_all(setup, runs, on_done)
    wall = time.perf_counter() - started
    print(format_table(setup, results, wall), file=out)
    payload = to_json(setup, results)
    if json_out is not None:
        try:
            json_out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        except OSError as e:
            raise BenchError(f"cannot write {json_out}: {e.strerror or e}") from None
    if report_dir is not None:
        from sloscale.bench.report import write_report

        index = write_report(report_dir, setup, results, format_table(setup, results, wall))
        print(f"report: {index}", file=err)
    return 0


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``sloscale bench``; returns the exit code (2 on bad input, with one line on stderr)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)
    if "--suite" in args:
        from sloscale.bench.suite.cli import main as suite

        return suite([a for a in args if a != "--suite"], out, err)
    try:
        return run(args, out, err)
    except BenchError as e:
        print(error_line("bench", e), file=err)
        return EXIT_BAD_INPUT
