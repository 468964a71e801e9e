"""The suite's ``sloscale demo`` section: the default demo at several seeds.

Each seed runs ``sloscale demo --seed N --hours H --no-serve`` (the same wiring,
``sloscale.demo.build_demo``) and reports each service's attainment against its own objective
(``sloscale.demo.summarise``). Not cached: it is sloscale's own result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sloscale.demo import DemoOptions, build_demo, summarise


@dataclass(frozen=True, slots=True)
class ServiceOutcome:
    name: str
    slo_attainment: float | None
    objective: float
    met: bool
    gpu_hours: float


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    seed: int
    hours: float
    services: tuple[ServiceOutcome, ...]
    wall_s: float

    @property
    def met(self) -> bool:
        return all(s.met for s in self.services)


def run_demo_seed(seed: int, hours: float) -> DemoOutcome:
    """One ``sloscale demo`` at ``seed`` for ``hours``, without the API or progress lines."""
    started = time.perf_counter()
    demo = build_demo(DemoOptions(hours=hours, seed=seed, serve=False, progress=False))
    report = demo.run(hours)
    services = tuple(
        ServiceOutcome(
            name=s.name,
            slo_attainment=None if s.slo_attainment is None else round(s.slo_attainment, 6),
            objective=s.objective,
            met=s.met,
            gpu_hours=round(s.gpu_hours, 6),
        )
        for s in summarise(report, demo.world)
    )
    return DemoOutcome(seed, hours, services, time.perf_counter() - started)


def format_demo(outcomes: Sequence[DemoOutcome]) -> list[str]:
    """One row per seed: each service's attainment / objective; then the count that met."""
    if not outcomes:
        return []
    names = [s.name for s in outcomes[0].services]
    head = f"{'seed':>4} " + " ".join(f"{n:>22}" for n in names)
    lines = [
        f"sloscale demo, {outcomes[0].hours:g} h per seed: attainment / objective per service",
        head,
        "-" * len(head),
    ]
    for o in outcomes:
        cells = []
        for s in o.services:
            att = "n/a" if s.slo_attainment is None else f"{100 * s.slo_attainment:.3f}"
            cells.append(f"{att} / {100 * s.objective:g} {'ok' if s.met else 'MISS'}")
        lines.append(f"{o.seed:>4} " + " ".join(f"{c:>22}" for c in cells))
    met = sum(s.met for o in outcomes for s in o.services)
    total = sum(len(o.services) for o in outcomes)
    lines.append(f"demo: {met}/{total} service-seeds meet their objective")
    return lines


def demo_json(outcomes: Sequence[DemoOutcome]) -> dict[str, Any]:
    return {
        "seeds": [
            {
                "seed": o.seed,
                "hours": o.hours,
                "met": o.met,
                "services": [
                    {
                        "name": s.name,
                        "slo_attainment": s.slo_attainment,
                        "objective": s.objective,
                        "met": s.met,
                        "gpu_hours": s.gpu_hours,
                    }
                    for s in o.services
                ],
            }
            for o in outcomes
        ],
        "service_seeds_met": sum(s.met for o in outcomes for s in o.services),
        "service_seeds": sum(len(o.services) for o in outcomes),
    }
