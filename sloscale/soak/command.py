"""The ``sloscale soak`` command: run, check, compare, report; exit 1 on a violation."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sloscale.demo import DemoOptions, WorkloadSummary, build_world, summarise
from sloscale.soak.faults import FaultClass, plan_faults
from sloscale.soak.runner import FaultyRun, fault_free, progress_printer, run_faulty

ATTAINMENT_SLACK = 0.003
"""A service's SLO attainment may be at most 0.3 points below its fault-free run's."""
GPU_HOURS_SLACK = 0.05
"""The inference GPU-hours may differ from the fault-free run's by at most 5 %."""


@dataclass(frozen=True, slots=True)
class SoakOptions:
    days: float = 7.0
    seed: int = 1
    classes: frozenset[FaultClass] = frozenset(FaultClass)
    min_per_class: int = 10
    per_day: float = 3.0
    restart_every_s: float | None = None
    json_out: Path | None = None
    progress: bool = True
    scenario: str = "default"
    jobs: int = 0
    interval_s: float = 15.0


@dataclass(frozen=True, slots=True)
class ServiceRow:
    name: str
    objective: float
    attainment: float | None
    free_attainment: float | None
    gpu_hours: float
    free_gpu_hours: float

    @property
    def met(self) -> bool:
        return self.attainment is not None and self.attainment >= self.objective

    @property
    def within_slack(self) -> bool:
        if self.attainment is None or self.free_attainment is None:
            return False
        return self.attainment >= self.free_attainment - ATTAINMENT_SLACK - 1e-12


def rows(faulty: list[WorkloadSummary], free: list[WorkloadSummary]) -> list[ServiceRow]:
    by_name = {s.name: s for s in free}
    return [
        ServiceRow(
            s.name,
            s.objective,
            s.slo_attainment,
            by_name[s.name].slo_attainment,
            s.gpu_hours,
            by_name[s.name].gpu_hours,
        )
        for s in faulty
        if s.name in by_name
    ]


def gpu_ratio(table: list[ServiceRow]) -> float | None:
    free = sum(r.free_gpu_hours for r in table)
    return sum(r.gpu_hours for r in table) / free if free > 0 else None


def verdict(run: FaultyRun, table: list[ServiceRow]) -> list[str]:
    """What keeps the soak from meeting issue 23's acceptance (empty: it meets it)."""
    misses = [f"{len(run.violations)} invariant violations"] if run.violations else []
    for r in table:
        if not r.met:
            misses.append(f"{r.name} misses its objective")
        if not r.within_slack:
            misses.append(f"{r.name} more than {100 * ATTAINMENT_SLACK:g} points below fault-free")
    ratio = gpu_ratio(table)
    if ratio is None or abs(ratio - 1.0) > GPU_HOURS_SLACK:
        misses.append(f"GPU-hours {_ratio(ratio)} of fault-free (bound ±{GPU_HOURS_SLACK:.0%})")
    return misses


def _ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{100 * ratio:.1f} %"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.3f} %"


def format_report(
    options: SoakOptions, run: FaultyRun, table: list[ServiceRow], elapsed_s: float
) -> str:
    total = sum(run.injected.values())
    lines = [
        f"sloscale soak: {options.days:g} simulated days, seed {options.seed}, "
        f"{total} faults injected, {elapsed_s:.0f} s",
        "faults injected per class:",
    ]
    lines += [f"  {name:<18} {n:>4}" for name, n in run.injected.items() if n]
    if options.restart_every_s:
        lines.append(f"  (+ a restart every {options.restart_every_s:g} s: {run.restarts} in all)")
    lines.append(f"invariant violations: {len(run.violations)}")
    lines += [f"  {v}" for v in run.violations[:50]]
    if len(run.violations) > 50:
        lines.append(f"  ... and {len(run.violations) - 50} more (--json has them all)")
    head = (
        f"{'service':<14} {'objective':>9} {'faulty':>10} {'fault-free':>10} {'delta':>7} "
        f"{'met':>4} {'GPU-h':>8} {'free GPU-h':>10}"
    )
    lines += [head, "-" * len(head)]
    for r in table:
        delta = (
            "n/a"
            if r.attainment is None or r.free_attainment is None
            else f"{100 * (r.attainment - r.free_attainment):+.3f}"
        )
        lines.append(
            f"{r.name:<14} {100 * r.objective:>7.2f} % {_pct(r.attainment):>10} "
            f"{_pct(r.free_attainment):>10} {delta:>7} {'yes' if r.met else 'NO':>4} "
            f"{r.gpu_hours:>8.2f} {r.free_gpu_hours:>10.2f}"
        )
    lines.append(f"GPU-hours: {_ratio(gpu_ratio(table))} of the fault-free run")
    misses = verdict(run, table)
    lines.append("acceptance: " + ("met" if not misses else "MISSED: " + "; ".join(misses)))
    return "\n".join(lines)


def to_json(options: SoakOptions, run: FaultyRun, table: list[ServiceRow]) -> dict[str, Any]:
    return {
        "settings": {
            "days": options.days,
            "seed": options.seed,
            "classes": sorted(c.value for c in options.classes),
            "min_per_class": options.min_per_class,
            "per_day": options.per_day,
            "restart_every_s": options.restart_every_s,
        },
        "faults": run.injected,
        "restarts": run.restarts,
        "leader_changes": run.leader_changes,
        "violations": [
            {"time_s": v.time_s, "invariant": v.invariant, "target": v.target, "detail": v.detail}
            for v in run.violations
        ],
        "services": [
            {
                "name": r.name,
                "objective": r.objective,
                "attainment": r.attainment,
                "fault_free_attainment": r.free_attainment,
                "met": r.met,
                "gpu_hours": round(r.gpu_hours, 6),
                "fault_free_gpu_hours": round(r.free_gpu_hours, 6),
            }
            for r in table
        ],
        "gpu_hours_ratio": gpu_ratio(table),
        "acceptance_misses": verdict(run, table),
    }


def run_soak(options: SoakOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the soak and its fault-free twin; print the report. 1 on a violation, else 0.

    ``out``/``err`` default to the streams of the moment (not of import time: a test's
    captured stream may be closed by the next)."""
    out = out or sys.stdout
    err = err or sys.stderr
    started = time.perf_counter()
    plan = plan_faults(
        options.days,
        options.seed,
        classes=options.classes,
        min_per_class=options.min_per_class,
        per_day=options.per_day,
    )
    demo_options = DemoOptions(
        hours=options.days * 24.0,
        seed=options.seed,
        serve=False,
        progress=False,
        interval_s=options.interval_s,
        scenario=options.scenario,
        jobs=options.jobs,
    )
    on_day = progress_printer("faulty", options.days, err) if options.progress else None
    run = run_faulty(demo_options, plan, restart_every_s=options.restart_every_s, on_day=on_day)
    if options.progress:
        print("[fault-free] running the same seed without faults", file=err, flush=True)
    free = fault_free(demo_options, options.days)
    world = build_world(demo_options)
    table = rows(summarise(run.report, world), summarise(free, world))
    print(format_report(options, run, table, time.perf_counter() - started), file=out)
    if options.json_out is not None:
        payload = to_json(options, run, table)
        options.json_out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return 1 if run.violations else 0
