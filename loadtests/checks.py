"""The load test's verdicts, from ground truth: every request's latency and every pod's life.

Purely computational, no side effects. The harness collects the emulator's request log and
pod records and the controller's applied scale actions; these functions decide:

* **step up**: after the load steps up, the latency quantile (over a trailing window of two
  ticks of completed requests) is back under the target within three ticks of the new
  capacity becoming ready (every slice asked for so far serving, above the level before the
  step: a scale-up in several steps counts from its last), and holds (the quantile over the
  rest of the high phase is under it too). If no new capacity ever becomes ready, the
  deadline counts from the earliest a controller could have had it ready (step + window +
  tick + cold start), and the check fails;
* **scale down**: after the load falls, the GPU share held comes down within the scale-down
  stabilisation plus two ticks;
* **attainment**: the share of requests under the latency target meets the SLO's objective;
* **flapping**: reversals of the scaling direction, reported per hour (wall and reference
  time) and at most what the shape's load needs plus ``NOISE_REVERSALS_PER_HOUR`` per hour of
  the modelled (reference) time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from loadtests.shapes import Shape

FloatArray = npt.NDArray[np.float64]
MIN_WINDOW_REQUESTS = 10


@dataclass(frozen=True, slots=True)
class PodLife:
    name: str
    slice_pct: int
    created_s: float
    ready_s: float | None  # None: never placed on a card
    deleted_s: float | None


@dataclass(frozen=True, slots=True)
class ScaleEvent:
    """One applied change of the Deployment (``replicas x slice_pct``)."""

    time_s: float
    before_share_pct: int
    after_share_pct: int


@dataclass(frozen=True, slots=True)
class Requests:
    arrival_s: FloatArray
    latency_s: FloatArray  # inf: failed; what the SLO judges (an LLM's TTFT with ttft)
    e2e_s: FloatArray | None = None  # the whole request's latency, where it is another

    @property
    def done_s(self) -> FloatArray:
        done: FloatArray = self.arrival_s + np.where(np.isfinite(self.latency_s), self.latency_s, 0)
        return done


@dataclass(frozen=True, slots=True)
class Timing:
    """The run's compressed times (seconds of wall clock) and its SLO."""

    tick_s: float
    window_s: float
    cold_start_s: float
    scale_down_delay_s: float
    speedup: float
    target_ms: float
    quantile: float
    objective_pct: float


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    values: dict[str, float | None] = field(default_factory=dict)

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def minimum_duration_s(shape: Shape, timing: Timing) -> float:
    """The shortest run of ``shape`` (scaled to a new duration) whose checks can pass.

    Purely computational; the arithmetic of ``check_step_up`` and ``check_scale_down``. A step
    up is judged 3 ticks after the new capacity can be ready (window + tick + cold start) and
    measured for a tick after that; a scale-down is allowed the stabilisation window and
    2 ticks, and must then be seen. A shape without a step (diurnal, trace) needs room for
    one of each.
    """
    up_room = timing.window_s + timing.cold_start_s + 5 * timing.tick_s
    down_room = timing.scale_down_delay_s + 3 * timing.tick_s
    if shape.up_s is None or shape.down_s is None or shape.duration_s <= 0:
        return up_room + down_room
    high = (shape.down_s - shape.up_s) / shape.duration_s  # shares of the duration
    after = 1.0 - shape.down_s / shape.duration_s
    return max(up_room / high, down_room / after)


# --- capacity over time ---------------------------------------------------------------------


def ready_share(pods: Sequence[PodLife], t_s: float) -> int:
    """GPU share (% of a card) of pods serving at ``t_s``."""
    return sum(
        p.slice_pct
        for p in pods
        if p.ready_s is not None and p.ready_s <= t_s and (p.deleted_s is None or t_s < p.deleted_s)
    )


def held_share(pods: Sequence[PodLife], t_s: float) -> int:
    """GPU share held at ``t_s`` by placed pods, serving or still starting (what costs)."""
    return sum(
        p.slice_pct
        for p in pods
        if p.ready_s is not None
        and p.created_s <= t_s
        and (p.deleted_s is None or t_s < p.deleted_s)
    )


def _all_ready(pods: Sequence[PodLife], t_s: float) -> bool:
    return ready_share(pods, t_s) >= held_share(pods, t_s)


def quantile_ms(requests: Requests, start_s: float, end_s: float, q: float) -> float | None:
    """The ``q``-quantile of latencies of requests completed in ``(start_s, end_s]``.

    A failed request counts as infinitely slow (at its arrival instant)."""
    done = requests.done_s
    sel = (done > start_s) & (done <= end_s)
    if int(sel.sum()) < MIN_WINDOW_REQUESTS:
        return None
    return float(np.quantile(requests.latency_s[sel], q, method="higher") * 1000.0)


# --- the checks -----------------------------------------------------------------------------


def check_step_up(
    requests: Requests,
    pods: Sequence[PodLife],
    up_s: float,
    down_s: float,
    timing: Timing,
    name: str = "step up",
) -> CheckResult:
    """Latency under target within three ticks of new capacity becoming ready, and holding."""
    before = ready_share(pods, up_s)
    ready_times = sorted(p.ready_s for p in pods if p.ready_s is not None and up_s < p.ready_s)
    # the new capacity is ready when every slice asked for so far serves, above the old level
    became_ready = next(
        (t for t in ready_times if ready_share(pods, t) > before and _all_ready(pods, t)), None
    )
    if became_ready is not None and became_ready >= down_s:
        became_ready = None
    anchor = (
        became_ready
        if became_ready is not None
        else up_s + timing.window_s + timing.tick_s + timing.cold_start_s
    )
    deadline = anchor + 3 * timing.tick_s
    width = 2 * timing.tick_s
    recovered = None
    t = anchor + timing.tick_s
    while t <= down_s + 1e-9:
        p = quantile_ms(requests, t - width, t, timing.quantile)
        if p is not None and p <= timing.target_ms:
            recovered = t
            break
        t += timing.tick_s
    after = quantile_ms(requests, deadline, down_s, timing.quantile)
    q = f"p{100 * timing.quantile:g}"
    values: dict[str, float | None] = {
        "step_s": up_s,
        "ready_after_s": None if became_ready is None else became_ready - up_s,
        "recovered_after_ready_s": None if recovered is None else recovered - anchor,
        "allowed_s": 3 * timing.tick_s,
        "latency_after_ms": after,
        "share_before_pct": float(before),
        "share_peak_pct": float(max((ready_share(pods, t) for t in ready_times), default=before)),
    }
    if became_ready is None:
        if after is not None and after <= timing.target_ms and recovered is not None:
            return CheckResult(
                name, True, f"no new capacity needed: {q} {_ms(after)} after the step", values
            )
        return CheckResult(
            name,
            False,
            f"no new capacity became ready before the load fell; {q} after the deadline "
            f"{_ms(after)} (target {timing.target_ms:g} ms)",
            values,
        )
    ok = recovered is not None and recovered <= deadline + 1e-9
    ok = ok and after is not None and after <= timing.target_ms
    detail = (
        f"new capacity ready {became_ready - up_s:.1f} s after the step; {q} back under "
        f"{timing.target_ms:g} ms "
        + (
            f"{recovered - became_ready:.1f} s later"
            if recovered is not None
            else "never before the load fell"
        )
        + f" (allowed {3 * timing.tick_s:.1f} s = 3 ticks); {q} afterwards {_ms(after)}"
    )
    return CheckResult(name, ok, detail, values)


def check_scale_down(
    pods: Sequence[PodLife], down_s: float, end_s: float, timing: Timing
) -> CheckResult:
    """Held share below its level at the fall within the stabilisation plus two ticks."""
    allowed = timing.scale_down_delay_s + 2 * timing.tick_s
    at_fall = held_share(pods, down_s)
    events = sorted(p.deleted_s for p in pods if p.deleted_s is not None and down_s < p.deleted_s)
    came_down = next((t for t in events if held_share(pods, t) < at_fall and t <= end_s), None)
    values: dict[str, float | None] = {
        "share_at_fall_pct": float(at_fall),
        "share_at_end_pct": float(held_share(pods, end_s)),
        "down_after_s": None if came_down is None else came_down - down_s,
        "allowed_s": allowed,
    }
    if came_down is None:
        return CheckResult(
            "scale down",
            False,
            f"GPU share stayed at {at_fall} % after the load fell (allowed {allowed:.1f} s)",
            values,
        )
    took = came_down - down_s
    return CheckResult(
        "scale down",
        took <= allowed + 1e-9,
        f"GPU share {at_fall} % -> {held_share(pods, came_down)} % {took:.1f} s after the load "
        f"fell (allowed {allowed:.1f} s = stabilisation {timing.scale_down_delay_s:.1f} s "
        f"+ 2 ticks); {held_share(pods, end_s)} % at the end",
        values,
    )


def check_attainment(
    requests: Requests, start_s: float, end_s: float, timing: Timing
) -> CheckResult:
    """Request-weighted share under the latency target vs the objective."""
    sel = (requests.arrival_s >= start_s) & (requests.arrival_s <= end_s)
    total = int(sel.sum())
    good = int((requests.latency_s[sel] * 1000.0 <= timing.target_ms).sum())
    share = 100.0 * good / total if total else math.nan
    ok = total > 0 and share >= timing.objective_pct
    return CheckResult(
        "SLO attainment",
        ok,
        f"{share:.2f} % of {total} requests under {timing.target_ms:g} ms "
        f"(objective {timing.objective_pct:g} %)",
        {"attainment_pct": share, "requests": float(total)},
    )


def direction_changes(events: Sequence[ScaleEvent]) -> int:
    """How often the scaling direction reversed (up then down counts one)."""
    changes, last = 0, 0
    for e in events:
        d = (e.after_share_pct > e.before_share_pct) - (e.after_share_pct < e.before_share_pct)
        if d == 0:
            continue
        if last and d != last:
            changes += 1
        last = d
    return changes


NOISE_REVERSALS_PER_HOUR = 3.0
"""Reversals allowed per hour of the modelled world beyond what a shape's load needs: a quiet
load sitting near a replica boundary may cross it now and then (one per 20 min, four times the
scale-down stabilisation window)."""


def check_flapping(
    events: Sequence[ScaleEvent], duration_s: float, shape_bound: int, timing: Timing
) -> CheckResult:
    n = direction_changes(events)
    hours = max(duration_s, 1e-9) / 3600.0
    ref_hours = hours * timing.speedup
    per_hour_ref = n / ref_hours
    bound = shape_bound + math.floor(NOISE_REVERSALS_PER_HOUR * ref_hours)
    return CheckResult(
        "no flapping",
        n <= bound,
        f"{n} direction changes in {len(events)} scale actions ({n / hours:.0f}/h of wall time, "
        f"{per_hour_ref:.1f}/h of reference time; at most {bound}: {shape_bound} for the "
        f"shape + {NOISE_REVERSALS_PER_HOUR:g}/h of reference time)",
        {"direction_changes": float(n), "per_hour_wall": n / hours, "per_hour_ref": per_hour_ref},
    )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
