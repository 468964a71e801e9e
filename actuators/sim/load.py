"""Load patterns: the mean request rate a simulated Deployment receives over time.

A pattern is only the *intensity* of a Poisson process; the queueing engine draws the actual
arrivals from it. Patterns are pure functions of time (bursts included, drawn from their own
seed), so the same pattern queried in any order, in chunks of any size, gives the same rates;
that is what lets the benchmark replay identical load for every policy.

``rates(t0_s, t1_s, dt_s)`` is the vectorised query: the mean rate over each sub-interval
``[t0 + i*dt, t0 + (i+1)*dt)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from actuators.sim.model import FloatArray
from forecasting.traces import Trace

DAY_S = 86400.0


class LoadPattern(Protocol):
    def rate_rps(self, t_s: float) -> float:
        """The mean arrival rate at time ``t_s``."""
        ...

    def rates(self, t0_s: float, t1_s: float, dt_s: float) -> FloatArray:
        """The mean arrival rate over each ``dt_s`` sub-interval of ``[t0_s, t1_s)``."""
        ...


def _grid(t0_s: float, t1_s: float, dt_s: float) -> tuple[FloatArray, FloatArray]:
    """Left and right edges of the sub-intervals of ``[t0_s, t1_s)``; the last may be short."""
    if dt_s <= 0:
        raise ValueError(f"dt_s must be positive, got {dt_s}")
    n = max(0, math.ceil((t1_s - t0_s) / dt_s - 1e-9))
    left = t0_s + dt_s * np.arange(n, dtype=np.float64)
    right = np.minimum(left + dt_s, t1_s)
    return left, right


@dataclass(frozen=True, slots=True)
class ConstantPattern:
    """A flat rate: the textbook case (M/M/1 checks, unit tests)."""

    rate: float

    def rate_rps(self, t_s: float) -> float:
        return self.rate

    def rates(self, t0_s: float, t1_s: float, dt_s: float) -> FloatArray:
        left, _ = _grid(t0_s, t1_s, dt_s)
        return np.full(len(left), self.rate)


@dataclass(frozen=True, slots=True)
class Burst:
    """A flash crowd: the rate is multiplied by ``factor`` during ``[start_s, end_s)``."""

    start_s: float
    end_s: float
    factor: float


@dataclass(frozen=True)
class DiurnalPattern:
    """A day/night curve between ``base_rps`` and ``peak_rps`` plus random bursts.

    The curve is a raised cosine peaking at ``peak_hour`` (hours after each midnight of
    simulated time, midnight being ``t = 0 mod period_s``), so it is smooth and periodic.
    Bursts: each day draws ``Poisson(bursts_per_day)`` bursts with uniform start, a factor in
    ``burst_factor`` and a duration in ``burst_duration_s``, from ``seed`` and the day number
    alone. Overlapping bursts take the larger factor.
    """

    base_rps: float
    peak_rps: float
    peak_hour: float = 14.0
    period_s: float = DAY_S
    bursts_per_day: float = 3.0
    burst_factor: tuple[float, float] = (1.5, 3.0)
    burst_duration_s: tuple[float, float] = (120.0, 600.0)
    seed: int = 0
    _bursts: dict[int, tuple[Burst, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.base_rps < 0 or self.peak_rps < self.base_rps:
            raise ValueError("need 0 <= base_rps <= peak_rps")

    def curve_rps(self, t_s: FloatArray) -> FloatArray:
        """The smooth day/night curve without bursts."""
        phase = 2.0 * np.pi * (t_s / self.period_s - self.peak_hour / 24.0)
        return self.base_rps + (self.peak_rps - self.base_rps) * 0.5 * (1.0 + np.cos(phase))

    def bursts_of_day(self, day: int) -> tuple[Burst, ...]:
        """The bursts that start on day ``day`` (deterministic in ``seed`` and ``day``)."""
        cached = self._bursts.get(day)
        if cached is not None:
            return cached
        rng = np.random.default_rng([self.seed, 0x6275, day + (1 << 20)])
        n = int(rng.poisson(self.bursts_per_day)) if self.bursts_per_day > 0 else 0
        starts = day * self.period_s + rng.uniform(0.0, self.period_s, n)
        factors = rng.uniform(*self.burst_factor, n)
        durations = rng.uniform(*self.burst_duration_s, n)
        out = tuple(
            Burst(float(s), float(s + d), float(f))
            for s, d, f in zip(starts, durations, factors, strict=True)
        )
        self._bursts[day] = out
        return out

    def _burst_factor(self, t_s: FloatArray) -> FloatArray:
        factor = np.ones_like(t_s)
        if len(t_s) == 0 or self.bursts_per_day <= 0:
            return factor
        longest = self.burst_duration_s[1]
        first = math.floor((float(t_s.min()) - longest) / self.period_s)
        last = math.floor(float(t_s.max()) / self.period_s)
        for day in range(first, last + 1):
            for b in self.bursts_of_day(day):
                inside = (t_s >= b.start_s) & (t_s < b.end_s)
                np.maximum(factor, np.where(inside, b.factor, 1.0), out=factor)
        return factor

    def rate_rps(self, t_s: float) -> float:
        t = np.array([t_s], dtype=np.float64)
        return float((self.curve_rps(t) * self._burst_factor(t))[0])

    def rates(self, t0_s: float, t1_s: float, dt_s: float) -> FloatArray:
        """Mean rates, evaluated at each sub-interval's midpoint (exact to O(dt²))."""
        left, right = _grid(t0_s, t1_s, dt_s)
        mid = 0.5 * (left + right)
        return self.curve_rps(mid) * self._burst_factor(mid)


class TracePattern:
    """The rate recorded in a ``Trace``: constant within each step, times ``scale``.

    Time: with ``start_at_zero`` (the default) simulated time 0 is the trace's first step;
    otherwise simulated time is the trace's own ``timestamp_s``. Before the trace the rate is
    0; after it, 0 again unless ``repeat`` loops the trace. A NaN step is missing data, not
    silence: it takes the previous step's rate (a leading NaN takes the first known rate).
    """

    def __init__(
        self,
        trace: Trace,
        *,
        scale: float = 1.0,
        start_at_zero: bool = True,
        repeat: bool = False,
    ) -> None:
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        rates = np.asarray(trace.rates_rps(), dtype=np.float64).copy()
        self.missing_steps = int(np.count_nonzero(~np.isfinite(rates)))
        rates = _fill_forward(rates)
        self.trace = trace
        self.scale = scale
        self.repeat = repeat
        self.step_s = trace.step_s
        self.origin_s = 0.0 if start_at_zero else trace.start_s
        self.duration_s = trace.step_s * len(rates)
        self._rates = rates * scale
        # Cumulative expected arrivals at each step edge: rates are piecewise constant, so
        # linear interpolation of this integral is exact.
        self._edges = self.origin_s + trace.step_s * np.arange(len(rates) + 1, dtype=np.float64)
        self._cum = np.concatenate(([0.0], np.cumsum(self._rates * trace.step_s)))

    def _integral(self, t_s: FloatArray) -> FloatArray:
        """Expected arrivals from the trace's start to ``t_s``."""
        if not self.repeat:
            return np.interp(t_s, self._edges, self._cum)
        rel = t_s - self.origin_s
        periods = np.floor(rel / self.duration_s)
        inner = np.interp(rel - periods * self.duration_s + self.origin_s, self._edges, self._cum)
        return np.where(rel < 0, 0.0, periods * self._cum[-1] + inner)

    def rate_rps(self, t_s: float) -> float:
        rel = t_s - self.origin_s
        if rel < 0 or (rel >= self.duration_s and not self.repeat):
            return 0.0
        i = int((rel % self.duration_s) // self.step_s)
        return float(self._rates[min(i, len(self._rates) - 1)])

    def rates(self, t0_s: float, t1_s: float, dt_s: float) -> FloatArray:
        left, right = _grid(t0_s, t1_s, dt_s)
        if len(left) == 0:
            return left
        return (self._integral(right) - self._integral(left)) / (right - left)


def _fill_forward(values: FloatArray) -> FloatArray:
    """Replace each non-finite value by the previous finite one (leading ones by the first)."""
    ok = np.isfinite(values)
    if ok.all():
        return values
    if not ok.any():
        return np.zeros_like(values)
    idx = np.where(ok, np.arange(len(values)), 0)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(ok))
    idx[:first] = first
    return values[idx]
