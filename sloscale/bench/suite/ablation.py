"""``sloscale bench --suite --ablate``: does each tuned rule of the planner earn its place?

A rule stays only if removing it makes the suite's aggregate worse. Each ``Variant`` is the
planner with one rule removed (``full`` is the planner as shipped); every variant replays
sloscale alone on every cell of the suite (no baseline: the variants are compared with each
other), and the aggregate says, per variant, how many cells meet the objective and what the
GPU-hours are against ``full``'s on the same cell.

Verdict of a variant (``verdict``): the rule *pays* when its removal meets the objective on
fewer cells, or on as many at a higher geometric-mean cost; otherwise it does not pay and
should go. The objective comes first: a removal that saves GPU but loses a cell is worse.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, TextIO

from controller.plan import PlannerConfig
from sloscale.bench.runner import RunSpec
from sloscale.bench.suite.cells import Cell
from sloscale.bench.suite.outcome import Outcome
from sloscale.bench.suite.replay import BenchKnobs, replay

FULL = "full"


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    removes: str  # the rule taken out, in words
    planner: PlannerConfig


def _variants() -> tuple[Variant, ...]:
    base = PlannerConfig()
    return (
        Variant(FULL, "nothing: the planner as shipped", base),
        Variant(
            "no-on-off-delay",
            "the on/off service rule: a rate profile >= 25 % idle gets a 40-min scale-down "
            "delay instead of 5 min",
            replace(base, stabilise=replace(base.stabilise, on_off_idle_share=math.inf)),
        ),
        Variant(
            "no-burst-growth",
            "growing the slice at once when the held slice costs >= 2x (burst_ratio) a larger "
            "one for the burst",
            replace(base, slices=replace(base.slices, burst_ratio=math.inf)),
        ),
        Variant(
            "no-rate-margin",
            "the uncapped rate margin once the budget is under its reserve "
            "(rate_margin_gain 0.002 -> 0)",
            replace(base, headroom=replace(base.headroom, rate_margin_gain=0.0)),
        ),
        Variant(
            "no-overshoot",
            "sizing the quantile up to 30 % past the target while the budget is unspent "
            "(min_headroom -0.3 -> 0)",
            replace(base, headroom=replace(base.headroom, min_headroom=0.0)),
        ),
    )


VARIANTS: tuple[Variant, ...] = _variants()


def setting_variant(text: str, base: PlannerConfig | None = None) -> Variant:
    """A variant that sets one planner constant, ``stage.field=value`` (for example
    ``headroom.budget_reserve=0.9``): the same tool sweeps a constant as it removes a rule.

    Raises ``ValueError`` naming what is wrong: an unknown stage or field, a value that is not
    a finite number, or a field that is not a number.
    """
    base = base or PlannerConfig()
    if "+" in text:  # several settings at once: a+b+c, applied in turn
        changed = base
        for part in text.split("+"):
            changed = setting_variant(part, changed).planner
        return Variant(text.strip(), f"{text.strip()} (together)", changed)
    path, sep, raw = text.partition("=")
    stage_name, dot, field_name = path.strip().partition(".")
    if not sep or not dot:
        raise ValueError(f"not stage.field=value: {text!r}")
    stage: Any = getattr(base, stage_name, None)
    if stage is None or not is_dataclass(stage) or isinstance(stage, type):
        names = ", ".join(f.name for f in fields(base))
        raise ValueError(f"no planner stage {stage_name!r}; stages: {names}")
    known = {f.name for f in fields(stage)}
    current = getattr(stage, field_name, None)
    if field_name not in known or isinstance(current, bool) or not isinstance(current, int | float):
        numeric = ", ".join(
            sorted(
                f.name
                for f in fields(stage)
                if isinstance(getattr(stage, f.name), int | float)
                and not isinstance(getattr(stage, f.name), bool)
            )
        )
        raise ValueError(f"no number {field_name!r} in {stage_name}; numbers: {numeric}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"not a number: {raw!r} in {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {raw!r} in {text!r}")
    typed: float | int = value
    if isinstance(current, int):
        if value != int(value):
            raise ValueError(f"{stage_name}.{field_name} is an integer, got {raw!r}")
        typed = int(value)
    stages: dict[str, Any] = {stage_name: replace(stage, **{field_name: typed})}
    changed = replace(base, **stages)
    return Variant(
        f"{stage_name}.{field_name}={raw.strip()}",
        f"{path.strip()} {current} -> {raw.strip()}",
        changed,
    )


@dataclass(frozen=True, slots=True)
class VariantSummary:
    name: str
    cells_met: int
    cells: int
    mean_attainment: float | None
    geomean_cost_vs_full: float | None
    worst_cost_vs_full: float | None
    best_cost_vs_full: float | None
    verdict: str  # "baseline", "rule pays", "rule does not pay"; for a setting: "setting better",
    # "setting not better", "setting worse"


def summarise(
    results: Mapping[tuple[str, str], Outcome], cells: Sequence[Cell], names: Sequence[str]
) -> tuple[VariantSummary, ...]:
    """The aggregate of each variant; ``results`` keyed by (variant, cell slug). Pure."""
    full = {c.slug: results.get((FULL, c.slug)) for c in cells}
    out: list[VariantSummary] = []
    full_met = sum(1 for o in full.values() if o is not None and o.met)
    full_geo = 1.0
    for name in names:
        mine = [results.get((name, c.slug)) for c in cells]
        done = [o for o in mine if o is not None]
        met = sum(1 for o in done if o.met)
        attain = [o.slo_attainment for o in done if o.slo_attainment is not None]
        ratios = [
            o.gpu_hours / f.gpu_hours
            for c, o in zip(cells, mine, strict=True)
            if o is not None
            and (f := full[c.slug]) is not None
            and f.gpu_hours > 0
            and o.gpu_hours > 0
        ]
        geo = math.exp(statistics.fmean(math.log(r) for r in ratios)) if ratios else None
        out.append(
            VariantSummary(
                name=name,
                cells_met=met,
                cells=len(done),
                mean_attainment=statistics.fmean(attain) if attain else None,
                geomean_cost_vs_full=geo,
                worst_cost_vs_full=max(ratios, default=None),
                best_cost_vs_full=min(ratios, default=None),
                verdict=verdict(name, met, full_met, geo, full_geo),
            )
        )
    return tuple(out)


def verdict(name: str, met: int, full_met: int, geo: float | None, full_geo: float) -> str:
    """Whether the rule a variant removes pays: its removal loses cells, or costs more."""
    if name == FULL:
        return "baseline"
    if "=" in name:  # a setting, not a removal: is it better than the shipped value?
        if met != full_met:
            return "setting better" if met > full_met else "setting worse"
        if geo is None:
            return "unknown"
        return "setting better" if geo < full_geo else "setting not better"
    if met != full_met:
        return "rule pays" if met < full_met else "rule does not pay"
    if geo is None:
        return "unknown"
    return "rule pays" if geo > full_geo else "rule does not pay"


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_ablation(
    results: Mapping[tuple[str, str], Outcome],
    cells: Sequence[Cell],
    variants: Sequence[Variant],
) -> str:
    names = [v.name for v in variants]
    col = max(22, *(len(n) + 2 for n in names))
    first = max(18, *(len(n) + 2 for n in names))
    lines = [
        "per cell: attainment % / GPU-h",
        "cell".ljust(34) + "".join(n.rjust(col) for n in names),
    ]
    for c in cells:
        row = c.label.ljust(34)
        for n in names:
            o = results.get((n, c.slug))
            cell = (
                "-"
                if o is None
                else f"{_fmt(None if o.slo_attainment is None else 100 * o.slo_attainment, '.2f')}"
                f"{'' if o.met else '!'} / {o.gpu_hours:.1f}"
            )
            row += cell.rjust(col)
        lines.append(row)
    lines += ["", "aggregate (! = misses the objective; cost = GPU-h against full, same cell)"]
    lines.append(
        "variant".ljust(first)
        + "met".rjust(8)
        + "mean att %".rjust(12)
        + "geomean".rjust(9)
        + "best".rjust(7)
        + "worst".rjust(7)
        + "  verdict"
    )
    for s in summarise(results, cells, names):
        lines.append(
            s.name.ljust(first)
            + f"{s.cells_met}/{s.cells}".rjust(8)
            + _fmt(None if s.mean_attainment is None else 100 * s.mean_attainment, ".3f").rjust(12)
            + _fmt(s.geomean_cost_vs_full, ".3f").rjust(9)
            + _fmt(s.best_cost_vs_full, ".3f").rjust(7)
            + _fmt(s.worst_cost_vs_full, ".3f").rjust(7)
            + f"  {s.verdict}"
        )
    lines += ["", "variants:"] + [f"  {v.name}: {_what(v)}" for v in variants]
    return "\n".join(lines)


def _what(v: Variant) -> str:
    return v.removes if "=" in v.name else f"removes {v.removes}"


def ablation_json(
    results: Mapping[tuple[str, str], Outcome],
    cells: Sequence[Cell],
    variants: Sequence[Variant],
) -> dict[str, Any]:
    names = [v.name for v in variants]
    return {
        "variants": [{"name": v.name, "removes": v.removes} for v in variants],
        "cells": [
            {
                "cell": c.label,
                "slug": c.slug,
                "hours": c.replay_hours,
                "results": {
                    n: o.to_json() for n in names if (o := results.get((n, c.slug))) is not None
                },
            }
            for c in cells
        ],
        "aggregate": [
            {
                "variant": s.name,
                "cells_met": s.cells_met,
                "cells": s.cells,
                "mean_attainment": s.mean_attainment,
                "geomean_cost_vs_full": s.geomean_cost_vs_full,
                "best_cost_vs_full": s.best_cost_vs_full,
                "worst_cost_vs_full": s.worst_cost_vs_full,
                "verdict": s.verdict,
            }
            for s in summarise(results, cells, names)
        ],
    }


def _work(cell: Cell, planner: PlannerConfig, knobs: BenchKnobs) -> Outcome:
    return replay(cell, RunSpec("sloscale", planner=planner), knobs)


def run_ablation(
    cells: Sequence[Cell],
    variants: Sequence[Variant],
    knobs: BenchKnobs,
    workers: int,
    err: TextIO | None = None,
) -> dict[tuple[str, str], Outcome]:
    """Replay sloscale under every variant on every cell, longest cells first; one progress
    line per replay as it finishes."""
    out = err or sys.stderr
    jobs = sorted(((c, v) for c in cells for v in variants), key=lambda cv: -cv[0].replay_hours)
    started = time.monotonic()
    results: dict[tuple[str, str], Outcome] = {}

    def record(c: Cell, v: Variant, o: Outcome) -> None:
        results[(v.name, c.slug)] = o
        att = "-" if o.slo_attainment is None else f"{100 * o.slo_attainment:.2f} %"
        print(
            f"[{len(results)}/{len(jobs)} {time.monotonic() - started:6.0f} s] {c.label} "
            f"{v.name}: {att}, {o.gpu_hours:.1f} GPU-h",
            file=out,
            flush=True,
        )

    if workers <= 1:
        for c, v in jobs:
            record(c, v, _work(c, v.planner, knobs))
        return results
    with ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(_work, c, v.planner, knobs): (c, v) for c, v in jobs}
        for fut in as_completed(futures):
            record(*futures[fut], fut.result())
    return results
