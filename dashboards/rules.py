"""Prometheus recording and alerting rules for each SLO: multi-window, multi-burn-rate alerts.

Purely computational, no side effects: an ``SloRules`` (a workload's objective and window)
becomes a rule group, as a ``PrometheusRule`` object (monitoring.coreos.com/v1) or a plain
Prometheus rule file, plus ``promtool test rules`` cases that pin each alert's threshold.

The SLI is the controller's own view of each workload: ``sloscale_workload_requests_total``
and ``sloscale_workload_good_requests_total`` (requests under the latency target), which it
derives from whichever metrics profile the workload uses, so the same rules serve ``http``,
``vllm``, ``triton`` and ``custom`` workloads alike.

Recording rules keep the numerator and the denominator apart, one pair per window
(``sloscale:slo_good_requests:rate<w>`` and ``sloscale:slo_requests:rate<w>``, each a rate of
the raw counters over ``w``), so a long window is a ratio of sums, never an average of ratios.

Alerts follow the Google SRE workbook (chapter "Alerting on SLOs", for a 30-day window):

======== ============ ============= ============ ===========================
severity burn rate    long window   short window budget spent when it fires
======== ============ ============= ============ ===========================
page     14.4×        1 h           5 m          2 %
page     6×           6 h           30 m         5 %
ticket   3×           1 d           2 h          10 %
ticket   1×           3 d           6 h          10 %
======== ============ ============= ============ ===========================

Each alert fires when the error ratio over *both* its windows exceeds ``burn × (1 - objective)``:
the long window says enough budget is gone, the short one that it is still going. For an SLO
window ``W`` every window is scaled by ``W / 30 d`` (a 28-day SLO pages on 56 m and 4m40s),
keeping the burn rates and so the share of budget spent when each alert fires; windows are
rounded to whole seconds and never shorter than ``MIN_WINDOW_S``, so a rate has samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REQUESTS_METRIC = "sloscale_workload_requests_total"
GOOD_METRIC = "sloscale_workload_good_requests_total"
ALERT_NAME = "SloscaleErrorBudgetBurn"
MISSING_ALERT_NAME = "SloscaleSLIMissing"
MISSING_FOR = "15m"
UNRESOLVED_ALERT_NAME = "SloscaleLatencyTargetUnresolved"
UNRESOLVED_FOR = "15m"
CONDITION_METRIC = "sloscale_workload_condition"
"""The controller's condition gauge: ``SliResolved`` 0 with ``TargetUnresolved`` says the
latency histogram's buckets cannot resolve the target (``controller.buckets``)."""

WORKBOOK_WINDOW_S = 30 * 86400.0
MIN_WINDOW_S = 60.0
"""Shortest window a rule uses: two scrapes at the usual 30 s interval."""

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """One multi-window alert: fire when both windows burn faster than ``burn_rate``."""

    severity: str
    burn_rate: float
    long_s: float
    short_s: float


WORKBOOK_ALERTS = (
    BurnAlert("page", 14.4, 3600.0, 300.0),
    BurnAlert("page", 6.0, 6 * 3600.0, 1800.0),
    BurnAlert("ticket", 3.0, 86400.0, 2 * 3600.0),
    BurnAlert("ticket", 1.0, 3 * 86400.0, 6 * 3600.0),
)
"""The SRE workbook's recommended pairs, for its 30-day SLO window."""


@dataclass(frozen=True, slots=True)
class SloRules:
    """What the rules need of one SLO: the workload (``namespace/name``), objective, window."""

    workload: str
    objective_ratio: float
    window_s: float

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


def scaled_alerts(window_s: float) -> tuple[BurnAlert, ...]:
    """The workbook's alerts with windows scaled from 30 days to ``window_s``."""
    factor = window_s / WORKBOOK_WINDOW_S
    return tuple(
        BurnAlert(a.severity, a.burn_rate, _window(a.long_s * factor), _window(a.short_s * factor))
        for a in WORKBOOK_ALERTS
    )


def _window(seconds: float) -> float:
    return float(max(MIN_WINDOW_S, round(seconds)))


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """Whole seconds as a Prometheus duration, largest unit first (``4m40s``, ``2d19h12m``)."""
    left = round(seconds)
    if left <= 0:
        raise ValueError(f"duration must be at least 1 s, got {seconds!r}")
    parts = []
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _selector(slo: SloRules) -> str:
    return f'{{workload="{_escape(slo.workload)}"}}'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def requests_record(window: str) -> str:
    return f"sloscale:slo_requests:rate{window}"


def good_record(window: str) -> str:
    return f"sloscale:slo_good_requests:rate{window}"


def windows(slo: SloRules) -> tuple[str, ...]:
    """Every window the SLO's alerts use, shortest first, as Prometheus durations."""
    seconds = {s for a in scaled_alerts(slo.window_s) for s in (a.long_s, a.short_s)}
    return tuple(format_duration(s) for s in sorted(seconds))


def recording_rules(slo: SloRules) -> list[Json]:
    """Good and total request rates per window, kept apart (ratios are taken in the alerts)."""
    sel = _selector(slo)
    rules: list[Json] = []
    for w in windows(slo):
        for record, metric in (
            (requests_record(w), REQUESTS_METRIC),
            (good_record(w), GOOD_METRIC),
        ):
            rules.append(
                {
                    "record": record,
                    "expr": f"sum by (workload) (rate({metric}{sel}[{w}]))",
                    # the series has it already; as a rule label it tells promtool's linter
                    # that groups of different SLOs recording the same name do not collide
                    "labels": {"workload": slo.workload},
                }
            )
    return rules


def _error_ratio(slo: SloRules, window: str) -> str:
    sel = _selector(slo)
    return f"(1 - {good_record(window)}{sel} / {requests_record(window)}{sel})"


def _threshold(slo: SloRules, burn_rate: float) -> str:
    return f"{burn_rate:g} * (1 - {slo.objective_ratio:g})"


def alert_labels(slo: SloRules, alert: BurnAlert) -> dict[str, str]:
    """The labels an alert adds (``workload`` comes with the recorded series)."""
    return {
        "severity": alert.severity,
        "namespace": slo.namespace,
        "burn_rate": f"{alert.burn_rate:g}",
        "long_window": format_duration(alert.long_s),
        "short_window": format_duration(alert.short_s),
        "slo_window": format_duration(slo.window_s),
    }


def alert_annotations(slo: SloRules, alert: BurnAlert) -> dict[str, str]:
    long_w, short_w = format_duration(alert.long_s), format_duration(alert.short_s)
    spent = alert.burn_rate * alert.long_s / slo.window_s
    return {
        "summary": (
            f"{slo.workload} is burning its error budget {alert.burn_rate:g}× faster than "
            f"sustainable"
        ),
        "description": (
            f"Over both {long_w} and {short_w} more than {alert.burn_rate:g} × "
            f"(1 - {slo.objective_ratio:g}) of {slo.workload}'s requests missed the latency "
            f"target: at this rate {100 * spent:.3g} % of the {format_duration(slo.window_s)} "
            f"error budget goes every {long_w}."
        ),
    }


def alerting_rules(slo: SloRules) -> list[Json]:
    rules: list[Json] = []
    for alert in scaled_alerts(slo.window_s):
        threshold = _threshold(slo, alert.burn_rate)
        long_w, short_w = format_duration(alert.long_s), format_duration(alert.short_s)
        rules.append(
            {
                "alert": ALERT_NAME,
                "expr": (
                    f"{_error_ratio(slo, long_w)} > ({threshold})\n"
                    f"and\n{_error_ratio(slo, short_w)} > ({threshold})"
                ),
                "labels": alert_labels(slo, alert),
                "annotations": alert_annotations(slo, alert),
            }
        )
    rules.append(
        {
            "alert": MISSING_ALERT_NAME,
            "expr": f"absent({REQUESTS_METRIC}{_selector(slo)})",
            "for": MISSING_FOR,
            "labels": {"severity": "ticket", "namespace": slo.namespace, "workload": slo.workload},
            "annotations": missing_annotations(slo),
        }
    )
    rules.append(
        {
            "alert": UNRESOLVED_ALERT_NAME,
            "expr": f"{unresolved_selector(slo)} == 0",
            "for": UNRESOLVED_FOR,
            "labels": {"severity": "ticket", "namespace": slo.namespace, "workload": slo.workload},
            "annotations": unresolved_annotations(slo),
        }
    )
    return rules


def unresolved_selector(slo: SloRules) -> str:
    return (
        f'{CONDITION_METRIC}{{workload="{_escape(slo.workload)}",type="SliResolved",'
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
    return {
        "summary": f"No SLI for {slo.workload}: its burn-rate alerts cannot fire",
        "description": (
            f"{REQUESTS_METRIC} for {slo.workload} is absent: the sloscale controller is down, "
            "is not scraped, or no longer manages this workload."
        ),
    }


def group_name(slo: SloRules) -> str:
    return f"sloscale-slo-{slo.namespace}-{slo.name}"


def rule_group(slo: SloRules) -> Json:
    """One rule group per SLO: its recording rules, then its alerts."""
    return {"name": group_name(slo), "rules": recording_rules(slo) + alerting_rules(slo)}


def rule_file(slos: Sequence[SloRules]) -> Json:
    """A plain Prometheus rule file (``rule_files:``) with one group per SLO."""
    return {"groups": [rule_group(s) for s in slos]}


def prometheus_rule(slo: SloRules, namespace: str | None = None) -> Json:
    """A ``PrometheusRule`` object for the Prometheus Operator; ``namespace`` left to kubectl
    or kustomize when not given."""
    metadata: Json = {
        "name": group_name(slo),
        "labels": {
            "app.kubernetes.io/name": "sloscale",
            "app.kubernetes.io/component": "slo-rules",
            "sloscale.io/workload": f"{slo.namespace}.{slo.name}",
        },
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": [rule_group(slo)]},
    }


# --------------------------------------------------------------------------------------------
# promtool unit tests
# --------------------------------------------------------------------------------------------

TEST_STEP_S = 60
TEST_EVAL_INTERVAL_S = 3600  # rules are evaluated hourly in the tests: windows read raw samples
TEST_RATE_PER_STEP = 600.0  # 10 requests per second
TEST_MARGIN = 0.05  # each case burns 5 % above or below an alert's threshold


def _series(slo: SloRules, burn: float, steps: int) -> list[Json]:
    """Steady traffic of which a constant ``burn × (1 - objective)`` share is bad."""
    bad_per_step = TEST_RATE_PER_STEP * burn * slo.error_budget
    return [
        {
            "series": f"{REQUESTS_METRIC}{_selector(slo)}",
            "values": f"0+{TEST_RATE_PER_STEP:g}x{steps}",
        },
        {
            "series": f"{GOOD_METRIC}{_selector(slo)}",
            "values": f"0+{TEST_RATE_PER_STEP - bad_per_step!r}x{steps}",
        },
    ]


def burn_rate_tests(slo: SloRules, others: Sequence[SloRules] = ()) -> list[Json]:
    """``promtool test rules`` groups for one SLO: for each alert, a constant burn just above
    its threshold (it fires, with every alert of a lower threshold) and just below (it and
    every alert above stay quiet); and a test of the missing-SLI alert.

    Requests arrive at a steady rate and a constant share of them is bad, so every window
    sees the same error ratio once the longest window is full; the evaluation time is past it.
    ``others`` are the other SLOs of the same rule file: they get clean traffic.
    """
    alerts = scaled_alerts(slo.window_s)
    longest_s = max(a.long_s for a in alerts)
    eval_s = math.ceil((longest_s + TEST_STEP_S) / TEST_EVAL_INTERVAL_S) * TEST_EVAL_INTERVAL_S
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
                    "name": f"{slo.workload} burning {burn:.4g}× ({side} {alert.burn_rate:g}×)",
                    "interval": f"{TEST_STEP_S}s",
                    "input_series": _series(slo, burn, steps) + clean,
                    "alert_rule_test": [
                        {
                            "eval_time": eval_time,
                            "alertname": ALERT_NAME,
                            "exp_alerts": [
                                {
                                    "exp_labels": {
                                        "workload": slo.workload,
                                        **alert_labels(slo, a),
                                    },
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
                            "exp_labels": {
                                "severity": "ticket",
                                "namespace": slo.namespace,
                                "workload": slo.workload,
                            },
                            "exp_annotations": missing_annotations(slo),
                        }
                    ],
                },
            ],
        }
    )
    tests.append(
        {
            "name": f"{slo.workload} with a latency target its buckets cannot resolve",
            "interval": f"{TEST_STEP_S}s",
            "input_series": [{"series": unresolved_selector(slo), "values": f"0x{quiet_steps}"}],
            "alert_rule_test": [
                {"eval_time": "0s", "alertname": UNRESOLVED_ALERT_NAME},  # pending
                {
                    "eval_time": format_duration(TEST_EVAL_INTERVAL_S),
                    "alertname": UNRESOLVED_ALERT_NAME,
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "ticket",
                                "namespace": slo.namespace,
                                "workload": slo.workload,
                                "type": "SliResolved",
                                "reason": "TargetUnresolved",
                            },
                            "exp_annotations": unresolved_annotations(slo),
                        }
                    ],
                },
            ],
        }
    )
    return tests


def tests_for(slos: Sequence[SloRules], rule_files: Sequence[str]) -> Json:
    """A promtool test file for a rule file holding ``slos``."""
    return {
        "rule_files": list(rule_files),
        "evaluation_interval": format_duration(TEST_EVAL_INTERVAL_S),
        "tests": [
            test for slo in slos for test in burn_rate_tests(slo, [o for o in slos if o is not slo])
        ],
    }


__all__ = [
    "ALERT_NAME",
    "MISSING_ALERT_NAME",
    "UNRESOLVED_ALERT_NAME",
    "WORKBOOK_ALERTS",
    "BurnAlert",
    "SloRules",
    "burn_rate_tests",
    "format_duration",
    "prometheus_rule",
    "rule_file",
    "rule_group",
    "scaled_alerts",
    "tests_for",
]
