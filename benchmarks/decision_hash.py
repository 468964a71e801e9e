"""Hash every decision a bench replay or the demo makes, to show a refactor changed none.

Run it from the root of each checkout to compare (its own imports are resolved there, so an
older commit runs its own code), then compare the JSON files:

    cd <checkout> && python <this file> OUT.json nasa_jul95_per_minute     # whole trace
    cd <checkout> && python <this file> OUT.json nasa_jul95_per_minute:72  # first 72 h
    cd <checkout> && python <this file> OUT.json demo                      # seeds 1-3
    cd <checkout> && python <this file> OUT.json daynight                  # seeds 1-2, 6 jobs

Per run it records every plan applied to the simulated cluster (targets, slices, memory,
pods removed, suspends and resumes, retraining watermarks and jobs) and every decision (time,
target, current, desired, applied), hashes the reasons apart from them, and hashes the scored
numbers (attainment, GPU-hours, the per-minute series). ``DECISION_HASH_POLICIES=a,b`` limits
a bench to those policies (labels: ``sloscale``, ``hpa``, ``hpa@40``, ``kpa``, ...). Traces
come from ``SLOSCALE_TRACES_DIR`` (``../shared/traces``). It wraps the simulator's ``apply``
and the controller's ``tick`` from the outside and changes nothing else. The restructuring
of issue #22 was checked with it (c0a29b0 against 9c3a380).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())  # the checkout being measured, not an installed copy

RECORD: list[str] = []
REASONS: list[str] = []


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _install_hooks() -> None:
    from actuators.sim import cluster as simcluster
    from controller import loop

    apply = simcluster.SimulatedCluster.apply
    tick = loop.Controller.tick

    def recording_apply(self: Any, plan: Any, *, dry_run: bool = False) -> Any:
        t = self.now()
        for a in plan.scale:
            target = f"{a.target.replicas}x{a.target.slice_pct}"
            RECORD.append(f"{t}|scale|{a.ref.key}|{target}|{a.memory_mib}|{a.remove_pods}")
            REASONS.append(f"{t}|scale|{a.ref.key}|{a.reason}")
        for j in plan.jobs:
            RECORD.append(f"{t}|job|{j.ref.key}|{j.suspend}")
            REASONS.append(f"{t}|job|{j.ref.key}|{j.reason}")
        for r in plan.retrain:
            RECORD.append(f"{t}|retrain|{r.ref.key}|{r.watermark}|{r.job_name}|{r.template}")
            REASONS.append(f"{t}|retrain|{r.ref.key}|{r.reason}")
        return apply(self, plan, dry_run=dry_run)

    def recording_tick(self: Any) -> Any:
        report = tick(self)
        for d in report.decisions:
            RECORD.append(f"D{d.time_s}|{d.target}|{d.current}|{d.desired}|{d.applied}")
            REASONS.append(f"D{d.time_s}|{d.target}|{d.reason}")
        return report

    simcluster.SimulatedCluster.apply = recording_apply  # type: ignore[method-assign]
    loop.Controller.tick = recording_tick  # type: ignore[method-assign]


def _bench_module(name: str) -> Any:
    """The bench's module as this checkout has it (``controller.bench`` before #22)."""
    for base in ("sloscale.bench", "controller.bench"):
        try:
            return importlib.import_module(f"{base}.{name}")
        except ModuleNotFoundError:
            continue
    raise ImportError(name)


def bench(arg: str) -> dict[str, Any]:
    trace, _, hours = arg.partition(":")
    settings, setup_m, runner = (_bench_module(n) for n in ("settings", "setup", "runner"))
    traces = Path(os.environ.get("SLOSCALE_TRACES_DIR", "../shared/traces"))
    s = settings.BenchSettings(
        trace=traces / f"{trace}.csv", seed=1, workers=1, hours=float(hours) if hours else None
    ).validate()
    setup = setup_m.prepare(s)
    only = [p for p in os.environ.get("DECISION_HASH_POLICIES", "").split(",") if p]
    out: dict[str, Any] = {}
    for run in runner.runs_for(s.policies, s.hpa_targets_pct):
        if only and run.label not in only:
            continue
        RECORD.clear()
        REASONS.clear()
        started = time.perf_counter()
        result = runner.run_one(setup, run)
        scored = {
            f.name: getattr(result, f.name)
            for f in dataclasses.fields(result)
            if f.name not in ("wall_s", "minutes")
        }
        minutes = hashlib.sha256()
        for f in dataclasses.fields(result.minutes):
            v = getattr(result.minutes, f.name)
            minutes.update(f.name.encode())
            minutes.update(v.tobytes() if hasattr(v, "tobytes") else repr(v).encode())
        scored["minutes"] = minutes.hexdigest()[:16]
        numbers = json.dumps(scored, sort_keys=True, default=str).encode()
        out[run.label] = {
            "decisions": _digest(RECORD),
            "reasons": _digest(REASONS),
            "n": len(RECORD),
            "numbers": hashlib.sha256(numbers).hexdigest()[:16],
            "summary": {k: v for k, v in scored.items() if isinstance(v, int | float)},
            "secs": round(time.perf_counter() - started, 1),
        }
        print(trace, run.label, out[run.label]["decisions"], file=sys.stderr, flush=True)
    return out


def demo(seed: int, **extra: Any) -> dict[str, Any]:
    try:
        demo_m = importlib.import_module("sloscale.demo")
    except ModuleNotFoundError:
        demo_m = importlib.import_module("controller.demo")
    RECORD.clear()
    REASONS.clear()
    options = demo_m.DemoOptions(seed=seed, progress=False, **extra)
    run = demo_m.build_demo(options)
    report = run.run(options.hours)
    rows = [dataclasses.asdict(x) for x in demo_m.summarise(report, run.world)]
    numbers = json.dumps(rows, sort_keys=True, default=str).encode()
    return {
        "decisions": _digest(RECORD),
        "reasons": _digest(REASONS),
        "n": len(RECORD),
        "numbers": hashlib.sha256(numbers).hexdigest()[:16],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_path, what = argv
    _install_hooks()
    result: dict[str, Any] = {}
    if what == "daynight":
        for seed in (1, 2):
            result[f"daynight-{seed}"] = demo(seed, scenario="day-night", jobs=6)
    elif what == "demo":
        for seed in (1, 2, 3):
            result[f"demo-{seed}"] = demo(seed)
    else:
        result[what] = bench(what)
    Path(out_path).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
