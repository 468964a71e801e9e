"""``sloscale loadtest --shape NAME [--duration D] [--report DIR] [--dry-run] [--workload W]``.

Exit status: 0 when every check passes, 1 when one fails (printed), 2 for bad options or a
missing Prometheus, 130 when interrupted (every process the run started is stopped first).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from actuators.sim.tokens import AZURE_CODE_TRACE
from controller.spec import parse_duration_s
from loadtests.checks import minimum_duration_s
from loadtests.settings import WORKLOADS, LoadTestSettings, TimeSettings, vllm_ttft_settings
from loadtests.shapes import DEFAULT_DURATION_S, SHAPES, build_shape
from sloscale.errors import error_line
from sloscale.progress import progress_stream


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sloscale loadtest",
        description="Closed-loop load test: locust -> emulated GPU service -> Prometheus -> "
        "sloscale, in compressed time, then checks and a report.",
    )
    p.add_argument("--shape", choices=SHAPES, default="step")
    p.add_argument(
        "--duration", help="wall-clock length of the shape, e.g. 100s or 5m (default per shape)"
    )
    p.add_argument("--report", type=Path, help="report directory (default: a new temp dir)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="run the controller in shadow mode: it decides but never scales",
    )
    p.add_argument("--speedup", type=float, default=TimeSettings().speedup,
                   help="time compression of cold start, stabilisation and ticks")  # fmt: skip
    p.add_argument("--trace", type=Path, help="per-minute CSV for --shape trace")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the loop's decisions on stderr every 5 s (default: when stderr is a terminal)",
    )
    p.add_argument(
        "--workload",
        choices=WORKLOADS,
        default="http",
        help="http: the emulated GPU service (default); vllm-ttft: a vLLM server batching "
        "continuously whose SLO is on time to first token (token lengths from "
        "$SLOSCALE_TRACES_DIR/azure_llm2023_code_requests.csv when present)",
    )
    return p


# What the 'loadtest' extra brings that the plain install lacks: httpx drives the emulator
# from this process, locust runs in a subprocess (so an import here would not notice it).
EXTRA_MODULES = ("httpx", "locust")
EXTRA_HINT = "pip install -e '.[loadtest]' in a clone (pip install 'sloscale[loadtest]')"


def missing_extra() -> str | None:
    """The first module of the 'loadtest' extra that is not installed, or None."""
    return next((m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None), None)


def main(argv: Sequence[str] | None = None) -> int:
    # parse first: --help and bad options need none of the extra's modules (a fresh
    # `pip install -e .` has neither httpx nor locust; --help used to be a traceback there)
    args = _parser().parse_args(list(argv) if argv is not None else None)
    missing = missing_extra()
    if missing is not None:
        message = f"needs {missing}, from the loadtest extra: {EXTRA_HINT}"
        print(error_line("loadtest", message), file=sys.stderr)
        return 2
    from loadtests.harness import LoadTestInterruptedError, run_loadtest, timing_of
    from loadtests.prometheus import PrometheusMissingError
    from loadtests.report import summary_text, write_report

    try:
        try:
            duration = (
                parse_duration_s(args.duration) if args.duration else DEFAULT_DURATION_S[args.shape]
            )
        except ValueError as e:  # name the option, as argparse does
            raise ValueError(f"--duration {e}") from None
        if args.speedup <= 0:
            raise ValueError("--speedup must be > 0")
        base = LoadTestSettings()
        if args.workload == "vllm-ttft":
            traces = Path(os.environ.get("SLOSCALE_TRACES_DIR", "../shared/traces"))
            base = vllm_ttft_settings(traces / AZURE_CODE_TRACE)
        settings = replace(base, time=replace(TimeSettings(), speedup=args.speedup), seed=args.seed)
        shape = build_shape(args.shape, duration, args.speedup, args.trace)
        shortest = minimum_duration_s(shape, timing_of(settings))
        if shape.duration_s < shortest:
            raise ValueError(
                f"--duration {shape.duration_s:g}s is too short for --shape {shape.name} at "
                f"--speedup {args.speedup:g}: its checks need at least {math.ceil(shortest)}s "
                f"(scale-up: window + cold start + 5 ticks in the high phase; scale-down: "
                f"the stabilisation window + 3 ticks after it)"
            )
    except (ValueError, OSError) as e:
        print(error_line("loadtest", e), file=sys.stderr)
        return 2
    report_dir = args.report or Path(tempfile.mkdtemp(prefix=f"sloscale-loadtest-{shape.name}-"))
    print(
        f"loadtest {shape.name}: {shape.duration_s:.0f} s, speedup x{args.speedup:g}"
        f"{', controller in dry-run' if args.dry_run else ''}; report in {report_dir}",
        file=sys.stderr,
    )
    try:
        result = run_loadtest(
            shape,
            settings,
            report_dir,
            dry_run=args.dry_run,
            progress=progress_stream(args.progress),
        )
    except PrometheusMissingError as e:
        print(error_line("loadtest", e), file=sys.stderr)
        return 2
    except LoadTestInterruptedError as e:
        print(error_line("loadtest", e), file=sys.stderr)
        return 130
    write_report(result)
    print(summary_text(result), end="")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
