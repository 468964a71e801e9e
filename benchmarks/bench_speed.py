"""How long ``sloscale bench`` takes: 14 days of a per-minute trace through all five policies.

Prints each replay's wall time and the total, so the issue's budget (under 2 minutes) can be
checked on the machine at hand, and where a replay's time goes (``--profile POLICY``).
Usage:

    python -m benchmarks.bench_speed [--trace FILE] [--days 14] [--workers N] [--profile sloscale]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Sequence
from pathlib import Path

from loadtests.shapes import traces_dir
from sloscale.bench.runner import RunSpec, run_all, run_one, runs_for
from sloscale.bench.settings import POLICY_NAMES, BenchSettings
from sloscale.bench.setup import prepare

DEFAULT_TRACE = traces_dir() / "nasa_jul95_per_minute.csv"  # SLOSCALE_TRACES_DIR honoured


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    p.add_argument("--days", type=float, default=14.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sweep", action="store_true", help="include the hpa* sweep")
    p.add_argument("--profile", help="profile one policy's replay instead")
    args = p.parse_args(argv)
    settings = BenchSettings(args.trace, hours=24.0 * args.days, workers=args.workers)
    started = time.perf_counter()
    setup = prepare(settings)
    print(f"prepare: {time.perf_counter() - started:.1f} s")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        result = run_one(setup, RunSpec(args.profile, 70 if args.profile == "hpa" else None))
        profile.disable()
        print(f"{args.profile}: {result.wall_s:.1f} s")
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        return 0
    targets = settings.hpa_targets_pct if args.sweep else (70,)
    started = time.perf_counter()
    results = run_all(setup, runs_for(POLICY_NAMES, targets))
    total = time.perf_counter() - started
    for name, r in results.items():
        print(f"{name:<10} {r.wall_s:6.1f} s  ({r.requests} requests)")
    print(f"all {len(results)} replays of {args.days:g} days: {total:.1f} s wall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
