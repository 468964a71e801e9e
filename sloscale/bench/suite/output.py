"""The suite's table and JSON.

Purely computational. One row per cell with what the issue's checks read (sloscale's
attainment and GPU-hours; ``hpa*``, ``rps*`` with their targets; ``hpa-fixed``; the oracle;
the ratios; each check), then the aggregate, the searches' health, the skipped files and the
demo section. The JSON holds no wall-clock time: the same run gives the same file, whether
its baselines were replayed or read from the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sloscale.bench.setup import LATENCY_QUANTILE, OBJECTIVE_PCT
from sloscale.bench.suite.aggregate import (
    HINDSIGHT_BOUND,
    YARDSTICKS,
    Aggregate,
    CellResult,
    SearchOutcomes,
    aggregate,
)
from sloscale.bench.suite.cells import Skipped, SuiteTrace
from sloscale.bench.suite.demo import demo_json, format_demo
from sloscale.bench.suite.outcome import Outcome
from sloscale.bench.suite.replay import BenchKnobs
from sloscale.bench.suite.schedule import SuiteRun


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _ok(v: bool | None) -> str:
    return "-" if v is None else ("ok" if v else "FAIL")


def _star(s: SearchOutcomes) -> str:
    """``@63 130.2``; ``none`` when no target met; ``!`` non-monotone; ``^`` at the top."""
    star, target = s.star, s.star_target
    flags = ("" if s.result.monotone else "!") + ("^" if s.result.at_top else "")
    if star is None:
        return f"none{flags}"
    return f"@{target} {star.gpu_hours:.1f}{flags}"


def _gpu(o: Outcome | None) -> str:
    """GPU-hours; ``*`` when the run missed the objective."""
    return "n/a" if o is None else f"{o.gpu_hours:.1f}{'' if o.met else '*'}"


HEAD = (
    f"{'cell':<36} {'hours':>5} {'sloscale %':>10} {'GPU-h':>7} {'hpa*':>13} {'rps*':>13} "
    f"{'hpa-fixed':>9} {'oracle':>7} {'/hind':>6} {'/fixed':>6} {'/oracle':>7} "
    f"{'obj':>4} {'<=5%':>4} {'<fix':>4}"
)


def cell_row(c: CellResult) -> str:
    k = c.checks
    return (
        f"{c.cell.label:<36} {c.cell.replay_hours:>5.0f} {_pct(c.sloscale.slo_attainment, 3):>10} "
        f"{_gpu(c.sloscale):>7} {_star(c.hpa):>13} {_star(c.rps):>13} {_gpu(c.hpa_fixed):>9} "
        f"{_gpu(c.oracle):>7} {_num(c.ratio('hindsight')):>6} {_num(c.ratio('hpa-fixed')):>6} "
        f"{_num(c.ratio('oracle')):>7} {_ok(k.objective):>4} {_ok(k.hindsight):>4} "
        f"{_ok(k.fixed):>4}"
    )


def aggregate_lines(agg: Aggregate, fixed: int | None) -> list[str]:
    met = ", ".join(f"{name} {agg.met[name]}" for name in ("sloscale", *YARDSTICKS))
    lines = [
        f"aggregate over {agg.cells} cells"
        + ("" if fixed is None else f"; hpa-fixed = hpa@{fixed}"),
        f"cells meeting the objective (of {agg.cells}): {met}",
        f"{'sloscale GPU-h vs':<18} {'cells':>5} {'median':>7} {'worst':>7}",
    ]
    for name in YARDSTICKS:
        r = agg.ratios[name]
        lines.append(f"{name:<18} {r.cells:>5} {_num(r.median):>7} {_num(r.worst):>7}")
    median_ok = agg.median_hindsight_ok
    lines.append(
        f"checks: objective {agg.objective.passed}/{agg.objective.of}; "
        f"<= {HINDSIGHT_BOUND:g}x hindsight {agg.hindsight.passed}/{agg.hindsight.of}; "
        f"median vs hindsight <= 1 {_ok(median_ok)}; "
        f"< hpa-fixed {agg.fixed.passed}/{agg.fixed.of}; "
        f"{'ALL PASS' if agg.passed else 'NOT ALL PASS'}"
    )
    return lines


def search_lines(cells: Sequence[CellResult]) -> list[str]:
    searches = [s for c in cells for s in (c.hpa, c.rps)]
    lines = [
        f"searches: {sum(s.result.evaluations for s in searches)} target replays "
        f"for {len(searches)} searches"
    ]
    for c in cells:
        for s in (c.hpa, c.rps):
            if not s.result.monotone:
                pairs = ", ".join(f"{a} missed < {b} met" for a, b in s.result.violations)
                lines.append(
                    f"  non-monotone {s.kind} on {c.cell.label}: {pairs}; scanned linearly above"
                )
            if s.result.at_top:
                lines.append(
                    f"  {s.kind} on {c.cell.label}: the range's top ({s.result.span.hi}) met"
                )
    return lines


def format_suite(
    run: SuiteRun, skipped: Sequence[Skipped], knobs: BenchKnobs, traces_dir: str
) -> str:
    lines = [
        f"sloscale bench --suite: {len(run.cells)} cells from {traces_dir}; {knobs.cluster_gpus} "
        f"GPUs, SLO p{100 * LATENCY_QUANTILE:g} <= {knobs.slo_ms:g} ms at {OBJECTIVE_PCT:g} %",
        "hpa*/rps*: cheapest target met (@target GPU-h; none: no target met; ! non-monotone; "
        "^ range top); * missed the objective; /X: sloscale GPU-h over X's",
        HEAD,
        "-" * len(HEAD),
        *(cell_row(c) for c in run.cells),
        "",
        *aggregate_lines(aggregate(run.cells), run.hpa_fixed_target),
        *search_lines(run.cells),
    ]
    if skipped:
        lines.append("skipped (not request-rate traces):")
        lines.extend(f"  {s.name}: {s.reason}" for s in skipped)
    if run.demo:
        lines.extend(["", *format_demo(run.demo)])
    lines.append(
        f"({run.replays} replays in {run.wall_s:.1f} s, {run.cached} baseline results "
        "from the cache)"
    )
    return "\n".join(lines)


def search_json(s: SearchOutcomes) -> dict[str, Any]:
    return {
        "star_target": s.star_target,
        "best_target": s.result.best,
        "range": [s.result.span.lo, s.result.span.hi],
        "monotone": s.result.monotone,
        "violations": [list(v) for v in s.result.violations],
        "at_top": s.result.at_top,
        "replayed": [{"target": t, **s.outcomes[t].to_json()} for t, _ in s.result.replayed],
    }


def cell_json(c: CellResult) -> dict[str, Any]:
    k = c.checks
    hindsight = c.hindsight
    return {
        "trace": c.cell.trace.name,
        "regime": str(c.cell.regime),
        "seed": c.cell.seed,
        "hours": round(c.cell.replay_hours, 6),
        "sloscale": c.sloscale.to_json(),
        "oracle": c.oracle.to_json(),
        "hpa": search_json(c.hpa),
        "rps": search_json(c.rps),
        "hpa_fixed": None if c.hpa_fixed is None else c.hpa_fixed.to_json(),
        "hindsight": None if hindsight is None else hindsight.label,
        "best_hpa_attainment": c.best_hpa_attainment,
        "ratios": {name: _round(c.ratio(name)) for name in YARDSTICKS},
        "checks": {"objective": k.objective, "hindsight": k.hindsight, "fixed": k.fixed},
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def aggregate_json(agg: Aggregate) -> dict[str, Any]:
    return {
        "cells": agg.cells,
        "met": dict(agg.met),
        "ratios": {
            name: {"cells": r.cells, "median": _round(r.median), "worst": _round(r.worst)}
            for name, r in agg.ratios.items()
        },
        "checks": {
            "objective": [agg.objective.passed, agg.objective.of],
            "hindsight": [agg.hindsight.passed, agg.hindsight.of],
            "fixed": [agg.fixed.passed, agg.fixed.of],
            "median_hindsight_ok": agg.median_hindsight_ok,
        },
        "passed": agg.passed,
    }


def suite_json(
    run: SuiteRun,
    traces: Sequence[SuiteTrace],
    skipped: Sequence[Skipped],
    knobs: BenchKnobs,
    options: dict[str, Any],
) -> dict[str, Any]:
    return {
        "settings": {
            **knobs.as_key(),
            "latency_quantile": LATENCY_QUANTILE,
            "objective_pct": OBJECTIVE_PCT,
            "hindsight_bound": HINDSIGHT_BOUND,
            **options,
        },
        "traces": [
            {"name": t.name, "hours": round(t.hours, 6), "step_s": t.step_s} for t in traces
        ],
        "skipped": [{"name": s.name, "reason": s.reason} for s in skipped],
        "hpa_fixed_target": run.hpa_fixed_target,
        "cells": [cell_json(c) for c in run.cells],
        "aggregate": aggregate_json(aggregate(run.cells)),
        "demo": demo_json(run.demo),
    }
