"""Load shapes: a piecewise-constant load multiplier over compressed time.

Purely computational (``trace`` reads one CSV). A shape is a list of stages, each holding a
multiplier of the base rate until its end; locust's ``LoadTestShape`` (``locustfile.py``) and
the harness's checks read the same stages, so the checks know exactly when the load stepped.

* ``step``: quiet, then x4, then quiet again (the CI run: scale up, then down);
* ``spike``: quiet, a short x8 burst, quiet;
* ``diurnal``: a compressed day, a smooth trough-to-peak cycle (x0.5 .. x3);
* ``trace``: a real per-minute trace from ``../shared/traces`` replayed with one minute of the
  trace lasting ``60 / speedup`` seconds, its mean rate mapped to the base rate.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

SHAPES = ("step", "spike", "diurnal", "trace")


@dataclass(frozen=True, slots=True)
class Stage:
    end_s: float
    multiplier: float


@dataclass(frozen=True, slots=True)
class Shape:
    """Stages in time order; ``up_s``/``down_s`` mark the step the checks look at."""

    name: str
    stages: tuple[Stage, ...]
    up_s: float | None = None  # when the load steps up (step, spike)
    down_s: float | None = None  # when it falls back
    max_direction_changes: int = 2  # scale-direction reversals a sane controller needs

    @property
    def duration_s(self) -> float:
        return self.stages[-1].end_s if self.stages else 0.0

    def multiplier(self, t_s: float) -> float | None:
        """The multiplier at ``t_s`` after the start; ``None`` once the shape is over."""
        if t_s < 0:
            return self.stages[0].multiplier if self.stages else None
        for stage in self.stages:
            if t_s < stage.end_s:
                return stage.multiplier
        return None


def step_shape(duration_s: float) -> Shape:
    """30 % quiet, 35 % at x4, 35 % quiet (the fall must leave room for the scale-down)."""
    up, down = 0.3 * duration_s, 0.65 * duration_s
    return Shape(
        "step", (Stage(up, 1.0), Stage(down, 4.0), Stage(duration_s, 1.0)), up_s=up, down_s=down
    )


def spike_shape(duration_s: float) -> Shape:
    """40 % quiet, a 10 % burst at x8, 50 % quiet: short against the run, as a spike is.

    No controller serves the first seconds of a x8 burst (detection plus cold start, with the
    backlog they leave), so the burst is kept short against the quiet load around it, as in a
    real SLO window; at the default 240 s it lasts 24 s of wall clock (about 5 min of the
    modelled world).
    """
    up, down = 0.4 * duration_s, 0.5 * duration_s
    return Shape(
        "spike", (Stage(up, 1.0), Stage(down, 8.0), Stage(duration_s, 1.0)), up_s=up, down_s=down
    )


def diurnal_shape(duration_s: float, step_s: float = 5.0) -> Shape:
    """One compressed day: ``1.75 - 1.25 cos(2 pi t / T)``, from x0.5 at night to x3 at noon."""
    n = max(1, math.ceil(duration_s / step_s))
    stages = []
    for i in range(n):
        mid = (i + 0.5) * duration_s / n
        mult = 1.75 - 1.25 * math.cos(2 * math.pi * mid / duration_s)
        stages.append(Stage((i + 1) * duration_s / n, round(mult, 3)))
    return Shape("diurnal", tuple(stages), max_direction_changes=4)


def traces_dir() -> Path:
    env = os.environ.get("SLOSCALE_TRACES_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1]
    for candidate in (here.parent / "shared" / "traces", Path("/work/shared/traces")):
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "traces"


def read_trace(path: Path) -> list[float]:
    """Per-minute counts from a ``timestamp_s,requests`` CSV (other columns ignored)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path}: empty trace")
    column = "requests" if "requests" in rows[0] else list(rows[0])[-1]
    return [float(r[column]) for r in rows if r.get(column) not in (None, "")]


def trace_shape(
    duration_s: float, speedup: float, path: Path | None = None, *, offset_min: int = 0
) -> Shape:
    """Replay a per-minute trace: one minute lasts ``60 / speedup`` s, mean rate = base rate."""
    path = path or traces_dir() / "azure_llm2023_code_per_minute.csv"
    counts = read_trace(path)
    minute_s = 60.0 / speedup
    n = max(1, min(len(counts) - offset_min, math.ceil(duration_s / minute_s)))
    window = counts[offset_min : offset_min + n]
    mean = sum(window) / len(window) or 1.0
    stages = tuple(
        Stage(min(duration_s, (i + 1) * minute_s), round(c / mean, 3)) for i, c in enumerate(window)
    )
    return Shape("trace", stages, max_direction_changes=max(4, n // 10))


def build_shape(
    name: str, duration_s: float, speedup: float = 12.0, trace: Path | None = None
) -> Shape:
    if name == "step":
        return step_shape(duration_s)
    if name == "spike":
        return spike_shape(duration_s)
    if name == "diurnal":
        return diurnal_shape(duration_s)
    if name == "trace":
        return trace_shape(duration_s, speedup, trace)
    raise ValueError(f"unknown shape {name!r}; choose from {', '.join(SHAPES)}")


DEFAULT_DURATION_S = {"step": 100.0, "spike": 240.0, "diurnal": 300.0, "trace": 300.0}
