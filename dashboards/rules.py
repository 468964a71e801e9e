"""Prometheus recording and alerting rules for each SLO: multi-window, multi-burn-rate alerts.

Purely computational, no side effects: an ``SloRules`` (a workload's objective, window and
SLI) becomes a rule group, as a ``PrometheusRule`` object (monitoring.coreos.com/v1) or a
plain Prometheus rule file, plus ``promtool test rules`` cases that pin each alert's
threshold; ``controller_group`` adds the controller's own alerts, once per file.

The SLI is the workload's own latency histogram (``dashboards.sli``): good requests are its
bucket at the latency target, all requests its count, so the SLO is measured even while the
sloscale controller is down. Profiles without a histogram fall back to the controller's
counters, kept to the leading replica's (``and on (instance, job) sloscale_leader == 1``).

Records follow Sloth's conventions (``pkg/common/conventions`` in github.com/slok/sloth), so
that Sloth's dashboards and other tools that know them read these rules too; every record
has Sloth's ``sloth_id``, ``sloth_service`` and ``sloth_slo`` labels (and ``sloth_window``
where it has a window), besides ``workload`` and ``namespace``:

========================================== ===================================================
record                                     value
========================================== ===================================================
``sloscale:slo_requests:rate<w>``          requests per second over ``w`` (the SLI's total)
``sloscale:slo_good_requests:rate<w>``     of which under the target (kept apart: ratios of
                                           long windows are ratios of sums, never averages)
``slo:sli_error:ratio_rate<w>``            ``1 - good / total`` over ``w``
``slo:sli_error:ratio_rate<period>``       the same over the SLO window, from the shortest
                                           window's records: ``1 - Σgood / Σtotal``
``slo:objective:ratio``                    the objective (0.99)
``slo:error_budget:ratio``                 ``1 - objective``
``slo:time_period:days``                   the SLO window in days
``slo:current_burn_rate:ratio``            shortest window's error ratio / error budget
``slo:period_burn_rate:ratio``             the SLO window's error ratio / error budget
``slo:period_error_budget_remaining:ratio`` ``1 - period burn rate``
========================================== ===================================================

Windows are written as Prometheus writes durations (``5m``, ``1d``, ``4w`` for 28 days, as
Sloth names its records). Alerts (``SloscaleErrorBudgetBurn``, one per pair of windows) fire
when the error ratio over *both* windows exceeds ``burn × (1 - objective)``: the long window
says enough budget is gone, the short one that it is still going. The windows (``--windows``):

- ``sloth``: Sloth's windows, the SRE workbook's (chapter "Alerting on SLOs"): 1 h and 5 m
  page when 2 % of the budget goes in the hour, 6 h and 30 m page at 5 % in 6 h, 1 d and 2 h
  open a ticket at 10 % in a day, 3 d and 6 h at 10 % in 3 days. The burn rate of each is
  ``budget share × SLO window / long window``: 14.4, 6, 3 and 1 for 30 days, 13.44, 5.6, 2.8
  and 0.933 for 28 days (Sloth's ``google-28d`` windows). Sloth ships these two windows only.
- ``pyrra``: Pyrra's, defined for 28 days and scaled to the SLO window (rounded to whole
  minutes): burn 14 over 1 h and 5 m and 7 over 6 h and 30 m page, 2 over 1 d and 2 h and 1
  over 4 d and 6 h open a ticket, each after a ``for`` of 2 m, 15 m, 1 h and 3 h.
- ``auto`` (default): ``sloth`` for 28- and 30-day SLOs, ``pyrra`` for any other.

No window is shorter than ``MIN_WINDOW_S``, so that a rate has samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dashboards.sli import LEADER_FILTER, Sli, controller_sli, escape

ALERT_NAME = "SloscaleErrorBudgetBurn"
MISSING_ALERT_NAME = "SloscaleSLIMissing"
MISSING_FOR = "15m"
UNRESOLVED_ALERT_NAME = "SloscaleLatencyTargetUnresolved"
UNRESOLVED_FOR = "15m"
CONDITION_METRIC = "sloscale_workload_condition"
"""The controller's condition gauge: ``SliResolved`` 0 with ``TargetUnresolved`` says the
latency histogram's buckets cannot resolve the target (``controller.buckets``)."""

NO_LEADER_ALERT_NAME = "SloscaleNoLeader"
TICK_ERRORS_ALERT_NAME = "SloscaleTickErrors"
METRICS_UNAVAILABLE_ALERT_NAME = "SloscaleMetricsUnavailable"
CONTROLLER_GROUP = "sloscale-controller"
CONTROLLER_FOR = "15m"
CONTROLLER_RATE = "15m"

DAY_S = 86400.0
MIN_WINDOW_S = 60.0
"""Shortest window a rule uses: two scrapes at the usual 30 s interval."""

WINDOW_CHOICES = ("auto", "sloth", "pyrra")
SLOTH_PERIODS_S = (28 * DAY_S, 30 * DAY_S)
"""The SLO windows Sloth ships alert windows for (``internal/alert/windows``)."""

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """One multi-window alert: fire when both windows burn faster than ``burn_rate``."""

    severity: str
    burn_rate: float
    long_s: float
    short_s: float
    for_s: float = 0.0


SLOTH_WINDOWS = (
    ("page", 0.02, 3600.0, 300.0),
    ("page", 0.05, 6 * 3600.0, 1800.0),
    ("ticket", 0.10, DAY_S, 2 * 3600.0),
    ("ticket", 0.10, 3 * DAY_S, 6 * 3600.0),
)
"""Sloth's (the SRE workbook's) windows: severity, share of the budget spent when the alert
fires, long and short window (s)."""

PYRRA_WINDOWS_28D = (
    ("page", 14.0, 3600.0, 300.0, 120.0),
    ("page", 7.0, 6 * 3600.0, 1800.0, 900.0),
    ("ticket", 2.0, DAY_S, 2 * 3600.0, 3600.0),
    ("ticket", 1.0, 4 * DAY_S, 6 * 3600.0, 3 * 3600.0),
)
"""Pyrra's windows for a 28-day SLO (``slo/rules.go``, ``Windows``): severity (Pyrra's
critical, warning), burn rate, long and short window and ``for`` (s)."""

PYRRA_BASE_S = 28 * DAY_S


def _factor(value: float) -> float:
    """A burn rate rounded to 10 significant digits (0.02 × 720 is 14.4, not 14.399…)."""
    return float(f"{value:.10g}")


def sloth_alerts(window_s: float) -> tuple[BurnAlert, ...]:
    """Sloth's windows for an SLO window of ``window_s``: burn rates from the budget shares."""
    return tuple(
        BurnAlert(severity, _factor(share * window_s / long_s), long_s, short_s)
        for severity, share, long_s, short_s in SLOTH_WINDOWS
    )


def _round_minute(seconds: float) -> float:
    """Go's ``Duration.Round(time.Minute)`` (halves away from zero), at least ``MIN_WINDOW_S``."""
    return max(MIN_WINDOW_S, math.floor(seconds / 60.0 + 0.5) * 60.0)


def pyrra_alerts(window_s: float) -> tuple[BurnAlert, ...]:
    """Pyrra's windows scaled from 28 days to ``window_s``; burn rates unchanged."""
    scale = window_s / PYRRA_BASE_S
    return tuple(
        BurnAlert(
            severity,
            burn,
            _round_minute(long_s * scale),
            _round_minute(short_s * scale),
            _round_minute(for_s * scale),
        )
        for severity, burn, long_s, short_s, for_s in PYRRA_WINDOWS_28D
    )


def resolve_windows(windows: str, window_s: float) -> str:
    """``auto`` as ``sloth`` for the windows Sloth ships, else ``pyrra``."""
    if windows not in WINDOW_CHOICES:
        raise ValueError(f"windows must be one of {WINDOW_CHOICES}, got {windows!r}")
    if windows != "auto":
        return windows
    return "sloth" if any(math.isclose(window_s, p) for p in SLOTH_PERIODS_S) else "pyrra"


def burn_alerts(window_s: float, windows: str = "auto") -> tuple[BurnAlert, ...]:
    """The four alerts of an SLO window of ``window_s`` with ``windows`` (``WINDOW_CHOICES``)."""
    if resolve_windows(windows, window_s) == "sloth":
        return sloth_alerts(window_s)
    return pyrra_alerts(window_s)


@dataclass(frozen=True, slots=True)
class SloRules:
    """What the rules need of one SLO: the workload (``namespace/name``), objective, window,
    where its SLI is read (default: the controller's counters) and which windows alert."""

    workload: str
    objective_ratio: float
    window_s: float
    sli: Sli | None = None
    windows: str = "auto"
    slo_name: str = "e2e-latency"
    """The SLO's name in Sloth's terms (``sloth_slo``): which latency it covers."""
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def namespace(self) -> str:
        return self.workload.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.workload.split("/", 1)[-1]

    @property
    def error_budget(self) -> float:
        """The share of requests that may be bad: ``1 - objective``."""
        return 1.0 - self.objective_ratio

    @property
    def indicator(self) -> Sli:
        return self.sli if self.sli is not None else controller_sli(self.workload)

    @property
    def service(self) -> str:
        """Sloth's service: ``namespace.name``."""
        return f"{self.namespace}.{self.name}"

    @property
    def sloth_id(self) -> str:
        return f"{self.service}-{self.slo_name}"

    @property
    def alerts(self) -> tuple[BurnAlert, ...]:
        return burn_alerts(self.window_s, self.windows)


# --------------------------------------------------------------------------------------------
# durations
# --------------------------------------------------------------------------------------------

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """Whole seconds as a Prometheus duration, largest unit first (``4m40s``, ``28d``)."""
    left = round(seconds)
    if left <= 0:
        raise ValueError(f"duration must be at least 1 s, got {seconds!r}")
    parts = []
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def prom_duration(seconds: float) -> str:
    """A duration as Prometheus prints one (``model.Duration``): years and weeks only when
    whole (``4w`` for 28 days, ``30d``), then days, hours, minutes, seconds. Sloth names its
    window records so (``slo:sli_error:ratio_rate4w``)."""
    left = round(seconds)
    if left <= 0:
        raise ValueError(f"duration must be at least 1 s, got {seconds!r}")
    parts = []
    for unit, size in (("y", 365 * 86400), ("w", 7 * 86400)):
        if left % size == 0:
            parts.append(f"{left // size}{unit}")
            left = 0
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _num(value: float) -> str:
    return f"{value:.10g}"


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------


def requests_record(window: str) -> str:
    return f"sloscale:slo_requests:rate{window}"


def good_record(window: str) -> str:
    return f"sloscale:slo_good_requests:rate{window}"


def error_record(window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}"


OBJECTIVE_RECORD = "slo:objective:ratio"
ERROR_BUDGET_RECORD = "slo:error_budget:ratio"
PERIOD_DAYS_RECORD = "slo:time_period:days"
CURRENT_BURN_RECORD = "slo:current_burn_rate:ratio"
PERIOD_BURN_RECORD = "slo:period_burn_rate:ratio"
BUDGET_REMAINING_RECORD = "slo:period_error_budget_remaining:ratio"
SLOTH_LABELS = ("sloth_id", "sloth_service", "sloth_slo")


def slo_labels(slo: SloRules) -> dict[str, str]:
    """Labels of every rule of the SLO: whose, Sloth's identity, and (when the SLI reads a
    bound below the target) ``latency_target`` and ``sli_le``."""
    return {
        "workload": slo.workload,
        "namespace": slo.namespace,
        "sloth_id": slo.sloth_id,
        "sloth_service": slo.service,
        "sloth_slo": slo.slo_name,
        **slo.indicator.labels(),
    }


def _filter(slo: SloRules) -> str:
    return f'{{sloth_id="{escape(slo.sloth_id)}"}}'


def windows(slo: SloRules) -> tuple[str, ...]:
    """Every window the SLO's alerts use, shortest first, as Prometheus durations."""
    seconds = {s for a in slo.alerts for s in (a.long_s, a.short_s)}
    return tuple(prom_duration(s) for s in sorted(seconds))


def recording_rules(slo: SloRules) -> list[Json]:
    """Per window: good and total request rates, kept apart, then the error ratio; the SLO
    window's error ratio; then the objective, budget and burn-rate records."""
    sli, labels, f = slo.indicator, slo_labels(slo), _filter(slo)
    rules: list[Json] = []
    for w in windows(slo):
        wl = {**labels, "sloth_window": w}
        rules += [
            {"record": requests_record(w), "expr": sli.total(w), "labels": wl},
            {"record": good_record(w), "expr": sli.good(w), "labels": wl},
            {
                "record": error_record(w),
                "expr": f"1 - {good_record(w)}{f} / {requests_record(w)}{f}",
                "labels": wl,
            },
        ]
    shortest, period = windows(slo)[0], prom_duration(slo.window_s)
    rules.append(
        {
            "record": error_record(period),
            "expr": (
                f"1 - sum_over_time({good_record(shortest)}{f}[{period}])\n"
                f"/ sum_over_time({requests_record(shortest)}{f}[{period}])"
            ),
            "labels": {**labels, "sloth_window": period},
        }
    )
    by = f"on ({', '.join(SLOTH_LABELS)}) group_left"
    rules += [
        {"record": OBJECTIVE_RECORD, "expr": f"vector({_num(slo.objective_ratio)})"},
        {"record": ERROR_BUDGET_RECORD, "expr": f"vector(1 - {_num(slo.objective_ratio)})"},
        {"record": PERIOD_DAYS_RECORD, "expr": f"vector({_num(slo.window_s / DAY_S)})"},
        {
            "record": CURRENT_BURN_RECORD,
            "expr": f"{error_record(shortest)}{f}\n/ {by}\n{ERROR_BUDGET_RECORD}{f}",
        },
        {
            "record": PERIOD_BURN_RECORD,
            "expr": f"{error_record(period)}{f}\n/ {by}\n{ERROR_BUDGET_RECORD}{f}",
        },
        {"record": BUDGET_REMAINING_RECORD, "expr": f"1 - {PERIOD_BURN_RECORD}{f}"},
    ]
    for rule in rules[-6:]:
        rule["labels"] = labels
    return rules


# --------------------------------------------------------------------------------------------
# alerts
# --------------------------------------------------------------------------------------------


def _threshold(slo: SloRules, burn_rate: float) -> str:
    return f"{_num(burn_rate)} * (1 - {_num(slo.objective_ratio)})"


def alert_labels(slo: SloRules, alert: BurnAlert) -> dict[str, str]:
    """The labels an alert adds to its records' (``slo_labels``)."""
    return {
        "severity": alert.severity,
        "burn_rate": _num(alert.burn_rate),
        "long_window": prom_duration(alert.long_s),
        "short_window": prom_duration(alert.short_s),
        "slo_window": format_duration(slo.window_s),
    }


def alert_annotations(slo: SloRules, alert: BurnAlert) -> dict[str, str]:
    long_w, short_w = prom_duration(alert.long_s), prom_duration(alert.short_s)
    spent = alert.burn_rate * alert.long_s / slo.window_s
    return {
        "summary": (
            f"{slo.workload} is burning its error budget {_num(alert.burn_rate)}× faster than "
            f"sustainable"
        ),
        "description": (
            f"Over both {long_w} and {short_w} more than {_num(alert.burn_rate)} × "
            f"(1 - {_num(slo.objective_ratio)}) of {slo.workload}'s requests missed the "
            f"latency target (SLI: {slo.indicator.describe()}): at this rate "
            f"{100 * spent:.3g} % of the {format_duration(slo.window_s)} error budget goes "
            f"every {long_w}."
        ),
    }


def _burning(slo: SloRules, window: str, threshold: str) -> str:
    return f"max without (sloth_window) ({error_record(window)}{_filter(slo)} > ({threshold}))"


def burn_rule(slo: SloRules, alert: BurnAlert) -> Json:
    threshold = _threshold(slo, alert.burn_rate)
    long_w, short_w = prom_duration(alert.long_s), prom_duration(alert.short_s)
    rule: Json = {
        "alert": ALERT_NAME,
        "expr": (f"{_burning(slo, long_w, threshold)}\nand\n{_burning(slo, short_w, threshold)}"),
    }
    if alert.for_s:
        rule["for"] = prom_duration(alert.for_s)
    rule["labels"] = {**slo_labels(slo), **alert_labels(slo, alert)}
    rule["annotations"] = alert_annotations(slo, alert)
    return rule


def missing_labels(slo: SloRules) -> dict[str, str]:
    return {"severity": "ticket", **slo_labels(slo)}


def alerting_rules(slo: SloRules) -> list[Json]:
    rules = [burn_rule(slo, a) for a in slo.alerts]
    rules.append(
        {
            "alert": MISSING_ALERT_NAME,
            "expr": slo.indicator.absent(),
            "for": MISSING_FOR,
            "labels": missing_labels(slo),
            "annotations": missing_annotations(slo),
        }
    )
    rules.append(
        {
            "alert": UNRESOLVED_ALERT_NAME,
            "expr": f"{unresolved_selector(slo)} == 0\n{LEADER_FILTER}",
            "for": UNRESOLVED_FOR,
            "labels": missing_labels(slo),
            "annotations": unresolved_annotations(slo),
        }
    )
    return rules


def unresolved_selector(slo: SloRules) -> str:
    return (
        f'{CONDITION_METRIC}{{workload="{escape(slo.workload)}",type="SliResolved",'
        'reason="TargetUnresolved"}'
    )


def unresolved_annotations(slo: SloRules) -> dict[str, str]:
    return {
        "summary": f"{slo.workload}'s latency target cannot be resolved by its histogram",
        "description": (
            f"The latency histogram {slo.workload} exports has no bucket near its target (it "
            "lies below the first finite bucket, above the last, or between bounds more than "
            "2× apart): its SLI is a lower bound and these burn-rate alerts overstate the "
            "burn. Put a bucket at the target (vLLM V1 has 0.3/0.5/0.8 s) or the target on a "
            "bucket; the decision's SliResolved condition says which buckets."
        ),
    }


def missing_annotations(slo: SloRules) -> dict[str, str]:
    sli = slo.indicator
    if sli.from_histogram:
        why = (
            f"{sli.source} has no series for {slo.workload}: the workload is not scraped, "
            "not labelled with namespace and deployment (deploy/monitoring/ PodMonitors), or "
            "exports another histogram"
        )
    else:
        why = (
            f"{sli.source} for {slo.workload} are absent: the sloscale controller is down, "
            "is not scraped, or no longer manages this workload"
        )
    return {
        "summary": f"No SLI for {slo.workload}: its burn-rate alerts cannot fire",
        "description": why + ".",
    }


def group_name(slo: SloRules) -> str:
    return f"sloscale-slo-{slo.namespace}-{slo.name}"


def rule_group(slo: SloRules) -> Json:
    """One rule group per SLO: its recording rules, then its alerts (evaluated in order, so
    each alert reads the records of the same evaluation)."""
    return {"name": group_name(slo), "rules": recording_rules(slo) + alerting_rules(slo)}


# --------------------------------------------------------------------------------------------
# the controller's own alerts
# --------------------------------------------------------------------------------------------


def controller_rules() -> list[Json]:
    """Alerts on the controller itself. Each sums the controller's series of the leading
    replica only: with ``--leader-elect`` every replica exports them."""
    return [
        {
            "alert": NO_LEADER_ALERT_NAME,
            "expr": "absent(sloscale_leader == 1)",
            "for": CONTROLLER_FOR,
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "No sloscale replica leads: nothing is being scaled",
                "description": (
                    "No scraped sloscale replica reports sloscale_leader 1: the controller is "
                    "down, not scraped, or its replicas cannot take the lease. Allocations "
                    "stay as they are; the SLO rules read the workloads' own histograms and "
                    "keep alerting."
                ),
            },
        },
        {
            "alert": TICK_ERRORS_ALERT_NAME,
            "expr": (
                f"sum(rate(sloscale_tick_errors_total[{CONTROLLER_RATE}]) {LEADER_FILTER}) > 0"
            ),
            "for": CONTROLLER_FOR,
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "The sloscale leader's ticks keep failing",
                "description": (
                    f"sloscale_tick_errors_total of the leading replica grew over the last "
                    f"{CONTROLLER_RATE} and still grows: see its log and decisions."
                ),
            },
        },
        {
            "alert": METRICS_UNAVAILABLE_ALERT_NAME,
            "expr": (
                "sum by (workload) (rate(sloscale_metrics_unavailable_total"
                f"[{CONTROLLER_RATE}]) {LEADER_FILTER}) > 0"
            ),
            "for": CONTROLLER_FOR,
            "labels": {"severity": "ticket"},
            "annotations": {
                "summary": "sloscale cannot read {{ $labels.workload }}'s metrics",
                "description": (
                    "The leading replica decided MetricsUnavailable for {{ $labels.workload }} "
                    f"throughout the last {CONTROLLER_RATE}: it holds the workload's allocation "
                    "and cannot scale it."
                ),
            },
        },
    ]


def controller_group() -> Json:
    return {"name": CONTROLLER_GROUP, "rules": controller_rules()}


def rule_file(slos: Sequence[SloRules], controller: bool = True) -> Json:
    """A plain Prometheus rule file (``rule_files:``) with one group per SLO, and the
    controller's group unless ``controller`` is false."""
    groups = [rule_group(s) for s in slos]
    if controller:
        groups.append(controller_group())
    return {"groups": groups}


def _metadata(name: str, component: str, namespace: str | None) -> Json:
    metadata: Json = {
        "name": name,
        "labels": {
            "app.kubernetes.io/name": "sloscale",
            "app.kubernetes.io/component": component,
        },
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata


def prometheus_rule(slo: SloRules, namespace: str | None = None) -> Json:
    """A ``PrometheusRule`` object for the Prometheus Operator; ``namespace`` left to kubectl
    or kustomize when not given."""
    metadata = _metadata(group_name(slo), "slo-rules", namespace)
    metadata["labels"]["sloscale.io/workload"] = f"{slo.namespace}.{slo.name}"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": [rule_group(slo)]},
    }


def controller_prometheus_rule(namespace: str | None = None) -> Json:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(CONTROLLER_GROUP, "controller-rules", namespace),
        "spec": {"groups": [controller_group()]},
    }


# --------------------------------------------------------------------------------------------
# promtool unit tests
# --------------------------------------------------------------------------------------------

TEST_STEP_S = 60
TEST_EVAL_INTERVAL_S = 3600  # rules are evaluated hourly in the tests: windows read raw samples
TEST_RATE_PER_STEP = 600.0  # 10 requests per second
TEST_MARGIN = 0.05  # each case burns 5 % above or below an alert's threshold
LEADER = 'instance="sloscale-0", job="sloscale"'
FOLLOWER = 'instance="sloscale-1", job="sloscale"'


def _series(slo: SloRules, burn: float, steps: int) -> list[Json]:
    """Steady traffic of which a constant ``burn × (1 - objective)`` share is bad."""
    bad_per_step = TEST_RATE_PER_STEP * burn * slo.error_budget
    return slo.indicator.test_series(TEST_RATE_PER_STEP, TEST_RATE_PER_STEP - bad_per_step, steps)


def _eval_s(alerts: Sequence[BurnAlert]) -> int:
    longest_s = max(max(a.long_s, a.for_s) for a in alerts)
    return math.ceil((longest_s + TEST_STEP_S) / TEST_EVAL_INTERVAL_S) * TEST_EVAL_INTERVAL_S


def burn_rate_tests(slo: SloRules, others: Sequence[SloRules] = ()) -> list[Json]:
    """``promtool test rules`` groups for one SLO: for each alert, a constant burn just above
    its threshold (it fires, with every alert of a lower threshold) and just below (it and
    every alert above stay quiet); and tests of the missing-SLI and unresolved-target alerts.

    Requests arrive at a steady rate and a constant share of them is bad, so every window
    sees the same error ratio once the longest window is full; the evaluation time is past it.
    ``others`` are the other SLOs of the same rule file: they get clean traffic.
    """
    alerts = slo.alerts
    eval_s = _eval_s(alerts)
    steps = eval_s // TEST_STEP_S + 1
    eval_time = format_duration(eval_s)
    clean = [series for other in others for series in _series(other, 0.0, steps)]
    tests: list[Json] = []
    for alert in alerts:
        for side, factor in (("above", 1 + TEST_MARGIN), ("below", 1 - TEST_MARGIN)):
            burn = alert.burn_rate * factor
            firing = [a for a in alerts if burn > a.burn_rate]
            tests.append(
                {
                    "name": (
                        f"{slo.workload} burning {burn:.4g}× ({side} {_num(alert.burn_rate)}×)"
                    ),
                    "interval": f"{TEST_STEP_S}s",
                    "input_series": _series(slo, burn, steps) + clean,
                    "alert_rule_test": [
                        {
                            "eval_time": eval_time,
                            "alertname": ALERT_NAME,
                            "exp_alerts": [
                                {
                                    "exp_labels": {**slo_labels(slo), **alert_labels(slo, a)},
                                    "exp_annotations": alert_annotations(slo, a),
                                }
                                for a in firing
                            ],
                        },
                        {"eval_time": eval_time, "alertname": MISSING_ALERT_NAME},
                    ],
                }
            )
    quiet_steps = 2 * TEST_EVAL_INTERVAL_S // TEST_STEP_S
    tests.append(
        {
            "name": f"{slo.workload} without an SLI",
            "interval": f"{TEST_STEP_S}s",
            "input_series": [
                series for other in others for series in _series(other, 0.0, quiet_steps)
            ],
            "alert_rule_test": [
                {"eval_time": "0s", "alertname": MISSING_ALERT_NAME},  # pending, not firing
                {
                    "eval_time": format_duration(TEST_EVAL_INTERVAL_S),
                    "alertname": MISSING_ALERT_NAME,
                    "exp_alerts": [
                        {
                            "exp_labels": {**slo.indicator.absent_labels(), **missing_labels(slo)},
                            "exp_annotations": missing_annotations(slo),
                        }
                    ],
                },
            ],
        }
    )
    condition = unresolved_selector(slo)[:-1]
    tests.append(
        {
            "name": f"{slo.workload} with a latency target its buckets cannot resolve",
            "interval": f"{TEST_STEP_S}s",
            "input_series": [
                {"series": f"sloscale_leader{{{LEADER}}}", "values": f"1x{quiet_steps}"},
                {"series": f"sloscale_leader{{{FOLLOWER}}}", "values": f"0x{quiet_steps}"},
                {"series": f"{condition},{LEADER}}}", "values": f"0x{quiet_steps}"},
                # a follower's stale gauge says so too: only the leader's may alert
                {"series": f"{condition},{FOLLOWER}}}", "values": f"0x{quiet_steps}"},
            ],
            "alert_rule_test": [
                {"eval_time": "0s", "alertname": UNRESOLVED_ALERT_NAME},  # pending
                {
                    "eval_time": format_duration(TEST_EVAL_INTERVAL_S),
                    "alertname": UNRESOLVED_ALERT_NAME,
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                **missing_labels(slo),
                                "type": "SliResolved",
                                "reason": "TargetUnresolved",
                                "instance": "sloscale-0",
                                "job": "sloscale",
                            },
                            "exp_annotations": unresolved_annotations(slo),
                        }
                    ],
                },
            ],
        }
    )
    tests.append(
        {
            "name": f"{slo.workload}: a follower's unresolved target does not alert",
            "interval": f"{TEST_STEP_S}s",
            "input_series": [
                {"series": f"sloscale_leader{{{LEADER}}}", "values": f"1x{quiet_steps}"},
                {"series": f"sloscale_leader{{{FOLLOWER}}}", "values": f"0x{quiet_steps}"},
                {"series": f"{condition},{LEADER}}}", "values": f"1x{quiet_steps}"},
                {"series": f"{condition},{FOLLOWER}}}", "values": f"0x{quiet_steps}"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": format_duration(TEST_EVAL_INTERVAL_S),
                    "alertname": UNRESOLVED_ALERT_NAME,
                },
            ],
        }
    )
    return tests


def controller_tests() -> list[Json]:
    """The controller's alerts: each fires on the leader's series and never on a follower's
    (which, summed, would double-count)."""
    steps = 3 * TEST_EVAL_INTERVAL_S // TEST_STEP_S
    # a rate needs two evaluations to exist and one more to outlast ``for``
    t = format_duration(2 * TEST_EVAL_INTERVAL_S)

    def replicas(leader: str, follower: str) -> list[Json]:
        return [
            {"series": f"sloscale_leader{{{LEADER}}}", "values": f"1x{steps}"},
            {"series": f"sloscale_leader{{{FOLLOWER}}}", "values": f"0x{steps}"},
            {"series": f"sloscale_tick_errors_total{{{LEADER}}}", "values": leader},
            {"series": f"sloscale_tick_errors_total{{{FOLLOWER}}}", "values": follower},
            {
                "series": f'sloscale_metrics_unavailable_total{{workload="a/b", {LEADER}}}',
                "values": leader,
            },
            {
                "series": f'sloscale_metrics_unavailable_total{{workload="a/b", {FOLLOWER}}}',
                "values": follower,
            },
        ]

    growing, flat = f"0+1x{steps}", f"0x{steps}"
    rules = {r["alert"]: r for r in controller_rules()}
    return [
        {
            "name": "the leader's tick errors and unavailable metrics alert",
            "interval": f"{TEST_STEP_S}s",
            "input_series": replicas(growing, flat),
            "alert_rule_test": [
                {
                    "eval_time": t,
                    "alertname": TICK_ERRORS_ALERT_NAME,
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "ticket"},
                            "exp_annotations": rules[TICK_ERRORS_ALERT_NAME]["annotations"],
                        }
                    ],
                },
                {
                    "eval_time": t,
                    "alertname": METRICS_UNAVAILABLE_ALERT_NAME,
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "ticket", "workload": "a/b"},
                            "exp_annotations": {
                                "summary": "sloscale cannot read a/b's metrics",
                                "description": rules[METRICS_UNAVAILABLE_ALERT_NAME]["annotations"][
                                    "description"
                                ].replace("{{ $labels.workload }}", "a/b"),
                            },
                        }
                    ],
                },
                {"eval_time": t, "alertname": NO_LEADER_ALERT_NAME},
            ],
        },
        {
            "name": "a follower's series never alert",
            "interval": f"{TEST_STEP_S}s",
            "input_series": replicas(flat, growing),
            "alert_rule_test": [
                {"eval_time": t, "alertname": TICK_ERRORS_ALERT_NAME},
                {"eval_time": t, "alertname": METRICS_UNAVAILABLE_ALERT_NAME},
                {"eval_time": t, "alertname": NO_LEADER_ALERT_NAME},
            ],
        },
        {
            "name": "no replica leads",
            "interval": f"{TEST_STEP_S}s",
            "input_series": [
                {"series": f"sloscale_leader{{{FOLLOWER}}}", "values": f"0x{steps}"},
            ],
            "alert_rule_test": [
                {"eval_time": "0s", "alertname": NO_LEADER_ALERT_NAME},  # pending
                {
                    "eval_time": t,
                    "alertname": NO_LEADER_ALERT_NAME,
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "ticket"},
                            "exp_annotations": rules[NO_LEADER_ALERT_NAME]["annotations"],
                        }
                    ],
                },
            ],
        },
    ]


def tests_for(slos: Sequence[SloRules], rule_files: Sequence[str], controller: bool = True) -> Json:
    """A promtool test file for a rule file holding ``slos`` (and the controller's group)."""
    tests = [
        test for slo in slos for test in burn_rate_tests(slo, [o for o in slos if o is not slo])
    ]
    if controller:
        tests += controller_tests()
    return {
        "rule_files": list(rule_files),
        "evaluation_interval": format_duration(TEST_EVAL_INTERVAL_S),
        "tests": tests,
    }


__all__ = [
    "ALERT_NAME",
    "MISSING_ALERT_NAME",
    "UNRESOLVED_ALERT_NAME",
    "WINDOW_CHOICES",
    "BurnAlert",
    "SloRules",
    "burn_alerts",
    "burn_rate_tests",
    "controller_group",
    "controller_prometheus_rule",
    "format_duration",
    "prom_duration",
    "prometheus_rule",
    "pyrra_alerts",
    "rule_file",
    "rule_group",
    "sloth_alerts",
    "tests_for",
]
