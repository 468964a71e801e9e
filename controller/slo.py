"""SLO and error-budget arithmetic.

Purely computational, no side effects. An SLO says that at least ``objective`` of the requests
in a rolling ``window_s`` are *good* (latency under the target). The error budget is the
``1 - objective`` share of requests that may be bad; the burn rate is how fast it is being
spent relative to spending it exactly over the window (burn rate 1 = on track to use it all).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


def burn_rate(bad_ratio: float, objective_ratio: float) -> float:
    """How many times faster than sustainable the budget burns (SRE workbook definition)."""
    allowed = 1.0 - objective_ratio
    if allowed <= 0.0:
        return math.inf if bad_ratio > 0.0 else 0.0
    return bad_ratio / allowed


def budget_remaining(good: float, total: float, objective_ratio: float) -> float:
    """Share of the window's error budget not yet spent: 1 = untouched, 0 = spent, < 0 = blown.

    With no requests yet the budget is untouched.
    """
    if total <= 0.0:
        return 1.0
    allowed_bad = (1.0 - objective_ratio) * total
    if allowed_bad <= 0.0:
        return 1.0 if good >= total else -math.inf
    return 1.0 - (total - good) / allowed_bad


@dataclass(frozen=True, slots=True)
class SliSample:
    """Good and total requests observed over one tick."""

    time_s: float
    good: float
    total: float


def sli_sample(
    time_s: float, rate_rps: float | None, good_ratio: float | None, duration_s: float
) -> SliSample | None:
    """The requests of one tick of ``duration_s`` at the observed rate, and the good ones.

    ``None`` when the rate or the good ratio is unavailable (missing or not finite): a tick
    with no reading adds nothing, it is not a tick without requests.
    """
    if rate_rps is None or good_ratio is None:
        return None
    if not (math.isfinite(rate_rps) and math.isfinite(good_ratio)):
        return None
    total = rate_rps * duration_s
    return SliSample(time_s, total * good_ratio, total)


class ErrorBudget:
    """Rolling good/total counts over an SLO window, in buckets so memory stays bounded.

    Requests are accumulated in ``bucket_s`` buckets; buckets older than ``window_s`` drop out.
    Numerator and denominator are kept separately so the window is never an average of ratios.
    """

    def __init__(self, window_s: float, objective_ratio: float, *, bucket_s: float = 300.0):
        self.window_s = window_s
        self.objective_ratio = objective_ratio
        self.bucket_s = bucket_s
        self._buckets: deque[list[float]] = deque()  # [bucket_start_s, good, total]
        self._good = 0.0
        self._total = 0.0

    def add(self, sample: SliSample) -> None:
        start = math.floor(sample.time_s / self.bucket_s) * self.bucket_s
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1][1] += sample.good
            self._buckets[-1][2] += sample.total
        else:
            self._buckets.append([start, sample.good, sample.total])
        self._good += sample.good
        self._total += sample.total
        horizon = sample.time_s - self.window_s
        while self._buckets and self._buckets[0][0] + self.bucket_s <= horizon:
            _, g, t = self._buckets.popleft()
            self._good -= g
            self._total -= t

    @classmethod
    def restored(
        cls,
        window_s: float,
        objective_ratio: float,
        buckets: Sequence[tuple[float, float, float]],
        *,
        good: float,
        total: float,
        bucket_s: float = 300.0,
    ) -> ErrorBudget:
        """A budget that goes on from a saved one: its buckets (oldest first) and its running
        sums, which are kept as they were (not re-added) so that the restored budget is the
        saved one to the last bit."""
        budget = cls(window_s, objective_ratio, bucket_s=bucket_s)
        budget._buckets.extend([start, g, t] for start, g, t in buckets)
        budget._good, budget._total = good, total
        return budget

    def buckets(self) -> tuple[tuple[float, float, float], ...]:
        """The window's buckets, oldest first: (start_s, good, total)."""
        return tuple((b[0], b[1], b[2]) for b in self._buckets)

    @property
    def running_sums(self) -> tuple[float, float]:
        """The window's good and total requests as accumulated (``good``/``total`` clip them
        at zero)."""
        return self._good, self._total

    @property
    def good(self) -> float:
        return max(0.0, self._good)

    @property
    def total(self) -> float:
        return max(0.0, self._total)

    def sli(self) -> float | None:
        """Share of good requests in the window, or ``None`` before any request."""
        return self.good / self.total if self.total > 0 else None

    def remaining(self) -> float:
        return budget_remaining(self.good, self.total, self.objective_ratio)

    def recent_burn_rate(self, now_s: float, lookback_s: float) -> float | None:
        """Burn rate over the last ``lookback_s`` (bucket resolution), ``None`` with no data."""
        good = total = 0.0
        for start, g, t in reversed(self._buckets):
            if start + self.bucket_s <= now_s - lookback_s:
                break
            good += g
            total += t
        if total <= 0:
            return None
        return burn_rate(1.0 - good / total, self.objective_ratio)
