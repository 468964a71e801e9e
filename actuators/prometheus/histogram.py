"""Histogram and summary arithmetic on bucket rates already aggregated to one workload.

Purely computational, no side effects. Why it is done here and not in PromQL: the source
asks Prometheus for bucket rates grouped by ``(namespace, pod, le)`` in one query for every
workload (a constant number of queries per tick) and aggregates pods to workloads itself, so
the quantile has to be taken after that aggregation.

``histogram_quantile`` follows Prometheus' own algorithm
(https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile,
``promql/quantile.go``): buckets sorted by ``le``, made monotonic, a ``+Inf`` bucket required,
linear interpolation inside the bucket holding the rank, a rank in ``+Inf`` reads as the
largest finite bound, and no observations means no answer (``None``, never 0).

``good_ratio`` is the share of requests at or under the SLO threshold. When the threshold is a
bucket bound the answer is exact (the bucket's count); otherwise it is interpolated linearly
inside the bucket that holds it, exactly as ``histogram_quantile`` interpolates, and the
result says so (``exact=False``) so the caller can warn the operator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

BOUND_REL_TOL = 1e-9
"""A threshold within this relative distance of a bucket bound is that bound."""


@dataclass(frozen=True, slots=True)
class GoodRatio:
    """The share of observations at or under a threshold, and whether it was interpolated."""

    value: float
    exact: bool


def parse_le(text: str) -> float:
    """A bucket's ``le`` label (``"0.25"``, ``"+Inf"``); NaN when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def normalise_buckets(
    buckets: Mapping[float, float] | Iterable[tuple[float, float]],
) -> list[tuple[float, float]] | None:
    """Sorted ``(le, cumulative)`` pairs made monotonic; ``None`` without a usable ``+Inf``.

    NaN counts make the whole histogram unusable (``None``): a NaN is unavailable, not zero.
    """
    items = buckets.items() if isinstance(buckets, Mapping) else buckets
    pairs = sorted((float(le), float(c)) for le, c in items if not math.isnan(le))
    if len(pairs) < 2 or not math.isinf(pairs[-1][0]):
        return None
    if any(math.isnan(c) for _, c in pairs):
        return None
    out: list[tuple[float, float]] = []
    running = -math.inf
    for le, c in pairs:
        running = max(running, c)  # Prometheus' ensureMonotonic
        out.append((le, running))
    return out


def histogram_quantile(
    q: float, buckets: Mapping[float, float] | Iterable[tuple[float, float]]
) -> float | None:
    """Prometheus' ``histogram_quantile`` over ``{le: cumulative count or rate}``."""
    if math.isnan(q):
        return None
    pairs = normalise_buckets(buckets)
    if pairs is None:
        return None
    total = pairs[-1][1]
    if not total > 0:
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    rank = q * total
    b = next(i for i, (_, c) in enumerate(pairs) if c >= rank)
    if b == len(pairs) - 1:
        return pairs[-2][0]
    if b == 0 and pairs[0][0] <= 0:
        return pairs[0][0]
    start, end = 0.0, pairs[b][0]
    count = pairs[b][1]
    if b > 0:
        start = pairs[b - 1][0]
        count -= pairs[b - 1][1]
        rank -= pairs[b - 1][1]
    if count <= 0:
        return end
    return start + (end - start) * (rank / count)


def good_ratio(
    threshold: float,
    buckets: Mapping[float, float] | Iterable[tuple[float, float]],
    total: float | None = None,
) -> GoodRatio | None:
    """Share of observations ``<= threshold``; exact at a bucket bound, else interpolated.

    Above the largest finite bound the histogram cannot tell (the rest sit in ``+Inf``): the
    largest finite bucket's share is returned, a lower bound, flagged as not exact. ``total``:
    the requests the share is of when ``buckets`` hold only some of them (the ``http``
    profile's requests without ``error_type``: a failed request is never good).
    """
    pairs = normalise_buckets(buckets)
    if pairs is None:
        return None
    total = max(pairs[-1][1], total or 0.0)
    if not total > 0:
        return None
    finite = pairs[:-1]
    for le, c in finite:
        if math.isclose(le, threshold, rel_tol=BOUND_REL_TOL, abs_tol=1e-12):
            return GoodRatio(min(1.0, c / total), exact=True)
    if threshold > finite[-1][0]:
        return GoodRatio(min(1.0, finite[-1][1] / total), exact=False)
    lo, below = 0.0, 0.0
    for le, c in finite:
        if threshold < le:
            inside = c - below
            frac = 0.0 if le <= lo else (threshold - lo) / (le - lo)
            return GoodRatio(min(1.0, max(0.0, (below + inside * frac) / total)), exact=False)
        lo, below = le, c
    return GoodRatio(min(1.0, finite[-1][1] / total), exact=False)  # pragma: no cover


def lower_bound_ratio(
    bound: float,
    buckets: Mapping[float, float] | Iterable[tuple[float, float]],
    total: float | None = None,
) -> GoodRatio | None:
    """Share of observations ``<= bound`` where ``bound`` is a bucket bound (or 0, nothing
    under it): the conservative SLI of a target the buckets cannot resolve, ``bound`` being
    the largest bound under the target (``controller.buckets.unresolved``)."""
    pairs = normalise_buckets(buckets)
    if pairs is None:
        return None
    total = max(pairs[-1][1], total or 0.0)
    if not total > 0:
        return None
    under = max((c for le, c in pairs if le <= bound * (1 + BOUND_REL_TOL)), default=0.0)
    return GoodRatio(min(1.0, under / total), exact=False)


def summary_good_ratio(threshold: float, quantiles: Mapping[float, float]) -> GoodRatio | None:
    """Estimate the share under ``threshold`` from a summary's ``{quantile: value}`` points.

    Interpolates the inverse CDF linearly between the exported quantiles (not exact: a summary
    keeps no distribution). Below the smallest value the share is unknown (``None``); above
    the largest it is at least that quantile (returned as a lower bound).
    """
    points = sorted((q, v) for q, v in quantiles.items() if math.isfinite(v) and 0 <= q <= 1)
    if not points:
        return None
    if threshold < points[0][1]:
        return None
    if threshold >= points[-1][1]:
        return GoodRatio(points[-1][0], exact=False)
    for (q0, v0), (q1, v1) in itertools.pairwise(points):
        if v0 <= threshold < v1:
            frac = 0.0 if v1 <= v0 else (threshold - v0) / (v1 - v0)
            return GoodRatio(q0 + (q1 - q0) * frac, exact=False)
    return None  # pragma: no cover - the loop covers [first, last)


def summary_quantile(q: float, quantiles: Mapping[float, float]) -> float | None:
    """The exported quantile ``q`` or the smallest exported one above it (conservative)."""
    candidates = sorted((qq, v) for qq, v in quantiles.items() if qq >= q - 1e-9)
    for _, v in candidates:
        return v if math.isfinite(v) else None
    return None


def merge_buckets(parts: Sequence[Mapping[float, float]]) -> dict[float, float]:
    """Sum per-pod bucket rates into one workload histogram (same ``le`` sets add up)."""
    out: dict[float, float] = {}
    for part in parts:
        for le, c in part.items():
            out[le] = out.get(le, 0.0) + c
    return out
