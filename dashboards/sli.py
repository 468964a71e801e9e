"""Where an SLO's good and total events come from: the workload's own latency histogram.

Purely computational, no side effects. An SLO on latency counts a request good when it took
less than the target, and a classic Prometheus histogram counts exactly that in the bucket
whose upper bound is the target: ``rate(<h>_bucket{le="<target>"}[w])`` of
``rate(<h>_count[w])`` requests were good. Read from the serving engine's own series, the
SLI exists whether or not sloscale is running; the controller's own counters
(``sloscale_workload_good_requests_total``), which vanish with it, are only the fallback for
profiles without a latency histogram (Triton exports a summary, ``custom`` its own queries).

Which histogram: ``controller.histograms`` per ``metrics-profile`` and ``latency-metric``.
Which series: the workload's, by the ``namespace`` and ``deployment`` labels that the
PodMonitors in ``deploy/monitoring/`` add (and the model label where the SLO names a model).
Which bucket: the target when it is a bound of the engine's default buckets
(``controller.buckets``, the newest known set, or ``--buckets``); else the nearest bound below
it, which counts only requests provably under the target (the SLI is then a lower bound, and
``warnings`` and the rules' ``sli_le`` label say so). A target under the first bound has no
bucket at all: an error. ``http`` never counts a failed request good (``error_type=""``); TGI's
histogram holds successful requests only, so its failures are added to the total.

The ``le`` of a whole-number bound is written ``1`` by Go clients and ``1.0`` by Python ones
(and by Prometheus 3, which normalises it): such a bound is matched as either.

Queries are templates in Sloth's form, ``{{.window}}`` where the range goes, so that the same
text serves the recording rules (``dashboards.rules``) and a Sloth spec (``dashboards.sloth``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.buckets import BOUND_REL_TOL, known_buckets
from controller.domain import LatencyMetric, MetricsProfile, SloSpec
from controller.histograms import (
    HTTP_ERROR_LABEL,
    MODEL_LABELS,
    TGI_FAILURE,
    latency_histograms,
)

WINDOW = "{{.window}}"
"""Sloth's template variable for the range of a ``rate``."""

REQUESTS_METRIC = "sloscale_workload_requests_total"
GOOD_METRIC = "sloscale_workload_good_requests_total"
LEADER_METRIC = "sloscale_leader"
LEADER_FILTER = f"and on (instance, job) {LEADER_METRIC} == 1"
"""Keeps the leading replica's series only: with ``--leader-elect`` every replica exports the
controller's series, and summing a follower's would count its requests twice."""

Json = dict[str, Any]


class SliError(ValueError):
    """No SLI can be read from the workload's histogram (a target below its first bucket)."""


def escape(value: str) -> str:
    """A PromQL string literal's contents."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def le_values(bound_s: float) -> tuple[str, ...]:
    """How exporters write the ``le`` of ``bound_s``: ``0.5``; ``1`` or ``1.0``."""
    text = repr(float(bound_s))
    return (text.removesuffix(".0"), text) if text.endswith(".0") else (text,)


def le_matcher(bound_s: float) -> str:
    values = le_values(bound_s)
    if len(values) == 1:
        return f'le="{values[0]}"'
    return 'le=~"' + "|".join(v.replace(".", "\\\\.") for v in values) + '"'


def _selector(matchers: Sequence[tuple[str, str]], *raw: str) -> str:
    parts = [f'{k}="{escape(v)}"' for k, v in matchers] + list(raw)
    return "{" + ", ".join(parts) + "}"


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


@dataclass(frozen=True, slots=True)
class Sli:
    """One SLO's events: the histogram it reads, or (``histograms`` empty) the controller's
    counters of ``workload``."""

    workload: str
    histograms: tuple[str, ...] = ()
    """The histogram's names, current first; ``()``: the controller's counters."""
    matchers: tuple[tuple[str, str], ...] = ()
    """Equality matchers selecting the workload's series of the histogram."""
    good_matchers: tuple[tuple[str, str], ...] = ()
    """More matchers on the good bucket only (``error_type=""``)."""
    le_s: float | None = None
    target_s: float | None = None
    failures: str | None = None
    """A counter of failed requests that the histogram does not hold (added to the total)."""
    bucket_set: str = ""
    """Which bucket set ``le_s`` was chosen from, for the warning."""

    @property
    def from_histogram(self) -> bool:
        return bool(self.histograms)

    @property
    def source(self) -> str:
        return self.histograms[0] if self.histograms else "the sloscale controller's counters"

    def _workload_selector(self) -> str:
        return _selector([("workload", self.workload)])

    def total(self, window: str = WINDOW) -> str:
        """Requests per second over ``window`` (PromQL, no labels)."""
        if not self.histograms:
            return (
                f"sum(rate({REQUESTS_METRIC}{self._workload_selector()}[{window}]) {LEADER_FILTER})"
            )
        sel = _selector(self.matchers)
        rates = " or ".join(f"rate({h}_count{sel}[{window}])" for h in self.histograms)
        total = f"sum({rates})"
        if self.failures is not None:
            total += f" + (sum(rate({self.failures}{sel}[{window}])) or vector(0))"
        return total

    def good(self, window: str = WINDOW) -> str:
        """Requests per second under the target over ``window`` (PromQL, no labels)."""
        if not self.histograms:
            return f"sum(rate({GOOD_METRIC}{self._workload_selector()}[{window}]) {LEADER_FILTER})"
        assert self.le_s is not None
        sel = _selector((*self.matchers, *self.good_matchers), le_matcher(self.le_s))
        return (
            "sum(" + " or ".join(f"rate({h}_bucket{sel}[{window}])" for h in self.histograms) + ")"
        )

    def errors(self, window: str = WINDOW) -> str:
        """Requests per second that missed the target (or failed) over ``window``."""
        return f"({self.total(window)})\n-\n({self.good(window)})"

    def absent(self) -> str:
        """True (1) when the SLI has no series at all."""
        if not self.histograms:
            return f"absent({REQUESTS_METRIC}{self._workload_selector()})"
        sel = _selector(self.matchers)
        return " and ".join(f"absent({h}_count{sel})" for h in self.histograms)

    def absent_labels(self) -> dict[str, str]:
        """The labels ``absent()`` gives its result (its equality matchers)."""
        return dict(self.matchers) if self.histograms else {"workload": self.workload}

    def labels(self) -> dict[str, str]:
        """Rule labels that say the SLI reads a bound below the target (none when on it)."""
        if self.le_s is None or self.target_s is None or self.le_s == self.target_s:
            return {}
        return {"latency_target": format_seconds(self.target_s), "sli_le": le_values(self.le_s)[-1]}

    def describe(self) -> str:
        if not self.histograms:
            return f"{REQUESTS_METRIC} and {GOOD_METRIC} (the leader's)"
        assert self.le_s is not None
        return f"{self.histograms[0]} (requests under {format_seconds(self.le_s)} s of all)"

    def test_series(self, total_per_step: float, good_per_step: float, steps: int) -> list[Json]:
        """promtool ``input_series``: counters growing by the given amounts each step.

        The controller's counters come from two replicas: the leader's, as asked, and a
        follower's that counts every request bad; only the leader filter keeps the SLI right.
        """
        if not self.histograms:
            wl = f'workload="{escape(self.workload)}"'
            out: list[Json] = []
            for instance, leader, good in (
                ("sloscale-0", 1, good_per_step),
                ("sloscale-1", 0, 0.0),
            ):
                target = f'instance="{instance}", job="sloscale"'
                out += [
                    {"series": f"{LEADER_METRIC}{{{target}}}", "values": f"{leader}x{steps}"},
                    {
                        "series": f"{REQUESTS_METRIC}{{{wl}, {target}}}",
                        "values": f"0+{total_per_step!r}x{steps}",
                    },
                    {
                        "series": f"{GOOD_METRIC}{{{wl}, {target}}}",
                        "values": f"0+{good!r}x{steps}",
                    },
                ]
            return out
        assert self.le_s is not None
        name = self.histograms[0]
        le = f'le="{le_values(self.le_s)[-1]}"'
        return [
            {
                "series": f"{name}_count{_selector(self.matchers)}",
                "values": f"0+{total_per_step!r}x{steps}",
            },
            {
                "series": f"{name}_bucket{_selector(self.matchers, le)}",
                "values": f"0+{good_per_step!r}x{steps}",
            },
        ]

    def bucket_selector(self, le: str) -> str:
        """The current histogram's good bucket as one vector selector with ``le="<le>"`` (no
        ``rate``, no ``or``): for tools that take a selector, not a query (Pyrra)."""
        assert self.histograms, "the controller's counters have no bucket"
        matchers = (*self.matchers, *self.good_matchers, ("le", le))
        return f"{self.histograms[0]}_bucket{_selector(matchers)}"

    def count_selector(self) -> str:
        """The current histogram's ``_count`` as one vector selector (see ``bucket_selector``)."""
        assert self.histograms, "the controller's counters have no histogram"
        return f"{self.histograms[0]}_count{_selector(self.matchers)}"


def controller_sli(workload: str) -> Sli:
    return Sli(workload)


def histogram_sli(
    workload: str, spec: SloSpec, buckets_s: Sequence[float] | None = None
) -> tuple[Sli, tuple[str, ...]]:
    """The SLI of ``spec`` read from its engine's histogram, and the warnings to print.

    Falls back to the controller's counters (with a warning) where the profile has no
    histogram; raises ``SliError`` when no bucket lies at or below the target.
    """
    profile, metric = spec.metrics_profile, spec.latency_metric
    names = latency_histograms(profile, metric)
    if not names:
        why = (
            "Triton exports a latency summary, not a histogram"
            if profile is MetricsProfile.TRITON
            else f"metrics-profile {profile.value} has no latency histogram"
        )
        return controller_sli(workload), (
            f"{workload}: {why}: the SLI is the sloscale controller's counters, which are gone "
            "while the controller is down",
        )
    namespace, name = workload.split("/", 1)
    matchers: list[tuple[str, str]] = [("namespace", namespace), ("deployment", name)]
    if spec.model is not None and profile in MODEL_LABELS:
        matchers.append((MODEL_LABELS[profile], spec.model))
    if buckets_s is not None:
        set_name, bounds = "--buckets", tuple(buckets_s)
    else:
        known = known_buckets(profile, metric)
        set_name, bounds = known[-1] if known else ("no known buckets", ())
    finite = sorted({b for b in bounds if math.isfinite(b) and b > 0})
    target_s = spec.latency_target_ms / 1000.0
    on = [b for b in finite if math.isclose(b, target_s, rel_tol=BOUND_REL_TOL)]
    below = [b for b in finite if b < target_s]
    warnings: tuple[str, ...] = ()
    if on:
        le_s = on[0]
    elif below:
        le_s = below[-1]
        warnings = (
            f"{workload}: latency target {format_seconds(target_s)} s is not a bucket bound of "
            f"{names[0]} ({set_name}); the SLI counts requests under "
            f"{format_seconds(le_s)} s, the nearest bound below, so it is a lower bound "
            "(the rules say so in labels sli_le and latency_target)",
        )
    else:
        first = f"{format_seconds(finite[0])} s" if finite else "none"
        raise SliError(
            f"{workload}: latency target {format_seconds(target_s)} s is below the first bucket "
            f"bound of {names[0]} ({set_name}: {first}): no bucket counts requests under it; "
            "give the histogram's bounds with --buckets, or use --sli controller"
        )
    sli = Sli(
        workload,
        histograms=names,
        matchers=tuple(matchers),
        good_matchers=((HTTP_ERROR_LABEL, ""),) if profile is MetricsProfile.HTTP else (),
        le_s=le_s,
        target_s=target_s,
        failures=TGI_FAILURE
        if (profile is MetricsProfile.TGI and metric is LatencyMetric.E2E)
        else None,
        bucket_set=set_name,
    )
    return sli, warnings


SLI_SOURCES = ("histogram", "controller")


def sli_for(
    workload: str,
    spec: SloSpec,
    source: str = "histogram",
    buckets_s: Sequence[float] | None = None,
) -> tuple[Sli, tuple[str, ...]]:
    """``spec``'s SLI from ``source`` (one of ``SLI_SOURCES``) and its warnings."""
    if source == "controller":
        return controller_sli(workload), ()
    return histogram_sli(workload, spec, buckets_s)


def sli_name(spec_metric: LatencyMetric | str) -> str:
    """The SLO's name in Sloth's terms: ``e2e-latency``, ``ttft-latency``, ``tpot-latency``."""
    value = spec_metric.value if isinstance(spec_metric, LatencyMetric) else spec_metric
    return f"{value}-latency"


__all__ = [
    "LEADER_FILTER",
    "SLI_SOURCES",
    "WINDOW",
    "Sli",
    "SliError",
    "controller_sli",
    "histogram_sli",
    "le_matcher",
    "le_values",
    "sli_for",
    "sli_name",
]
