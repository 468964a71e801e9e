"""The three dashboards sloscale ships: SLO overview, GPU capacity, Controller.

Purely computational, no side effects. Each panel states the question it answers; that text
is the panel's description in Grafana and the list in ``dashboards/README.md``.

Where the numbers come from:

- ``sloscale_*`` series are the controller's own ``/metrics`` (``sloscale/telemetry.py``):
  workloads carry ``workload="<namespace>/<name>"``, so the ``namespace`` and ``workload``
  variables are cut out of that label and matched as ``workload=~"$namespace/$workload"``;
- ``http_server_*`` series are the workloads' own OpenTelemetry HTTP server metrics (the
  ``http`` metrics profile), labelled ``namespace`` and ``deployment``.

Burn rates are ratios of sums (``increase`` of the good and total request counters over the
window), never averages of per-tick ratios.
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboards.model import Annotation, Dashboard, Panel, Query, Row, Variable

W = 'workload=~"$namespace/$workload"'
"""Selector of the chosen workloads on the controller's series."""
H = 'namespace=~"$namespace", deployment=~"$workload"'
"""Selector of the chosen workloads on their own (``http`` profile) series."""
RATE = "$__rate_interval"

BURN_WINDOWS = ("5m", "1h", "6h")
PAGE_BURN_RATES = (6.0, 14.4)  # the SRE workbook's page thresholds, drawn on the burn panel

UNIT_RATIO = "percentunit"
UNIT_CARDS = "suffix: GPU"
UNIT_GPU_HOURS = "suffix: GPU-h"
UNIT_BURN = "suffix:×"

VARIABLES = (
    Variable(
        "namespace",
        "Namespace",
        "sloscale_workload_spec_valid",
        "workload",
        regex="/^([^/]+)\\//",
    ),
    Variable(
        "workload",
        "Workload",
        'sloscale_workload_spec_valid{workload=~"$namespace/.*"}',
        "workload",
        regex="/^[^/]+\\/(.+)$/",
    ),
)

DECISIONS = Annotation(
    name="Decisions",
    expr=(f"sum by (workload, reason) (increase(sloscale_decision_changes_total{{{W}}}[1m])) > 0"),
    title="{{reason}}",
    text="{{workload}}",
    tag_keys=("reason", "workload"),
)
PREEMPTIONS = Annotation(
    name="Preemptions",
    expr=(
        "sum by (workload, reason) "
        '(increase(sloscale_decision_changes_total{reason=~"Preempted|Resumed"}[1m])) > 0'
    ),
    title="{{reason}}",
    text="{{workload}}",
    tag_keys=("reason", "workload"),
    color="purple",
)


def _burn_rate(window: str) -> str:
    """Bad share of requests over ``window`` divided by the allowed bad share (1 - objective)."""
    good = f"sum by (workload) (increase(sloscale_workload_good_requests_total{{{W}}}[{window}]))"
    total = f"sum by (workload) (increase(sloscale_workload_requests_total{{{W}}}[{window}]))"
    allowed = f"(1 - max by (workload) (sloscale_workload_objective_ratio{{{W}}}))"
    return f"(1 - {good} / {total}) / {allowed}"


def _http_quantile(q: float) -> str:
    return (
        f"histogram_quantile({q:g}, sum by (namespace, deployment, le) "
        f"(rate(http_server_request_duration_seconds_bucket{{{H}}}[{RATE}])))"
    )


def slo_overview() -> Dashboard:
    return Dashboard(
        uid="sloscale-slo-overview",
        title="sloscale / SLO overview",
        description="Per workload: SLO attainment, error budget, burn rates and latency.",
        variables=VARIABLES,
        annotations=(DECISIONS,),
        rows=(
            Row(
                "SLO and error budget",
                (
                    Panel(
                        "SLO attainment vs objective",
                        "Is each workload meeting its objective over its SLO window so far?",
                        UNIT_RATIO,
                        (
                            Query(f"sloscale_workload_sli_ratio{{{W}}}", "{{workload}} attained"),
                            Query(
                                f"sloscale_workload_objective_ratio{{{W}}}",
                                "{{workload}} objective",
                                dashed=True,
                            ),
                        ),
                    ),
                    Panel(
                        "Error budget remaining",
                        "How much of each workload's error budget is left in its window "
                        "(100 % untouched, 0 spent, below 0 blown)?",
                        UNIT_RATIO,
                        (
                            Query(
                                f"sloscale_workload_error_budget_remaining_ratio{{{W}}}",
                                "{{workload}}",
                            ),
                        ),
                    ),
                ),
            ),
            Row(
                "Burn rate and latency",
                (
                    Panel(
                        "Burn rate over 5 m / 1 h / 6 h",
                        "How many times faster than sustainable is each workload spending its "
                        "error budget (1× spends it exactly over the window; the lines mark the "
                        "6× and 14.4× page levels)?",
                        UNIT_BURN,
                        tuple(Query(_burn_rate(w), "{{workload}} " + w) for w in BURN_WINDOWS),
                        min_value=0,
                        thresholds=PAGE_BURN_RATES,
                    ),
                    Panel(
                        "Latency at the SLO quantile vs target",
                        "Is the latency quantile each SLO names under its target?",
                        "s",
                        (
                            Query(f"sloscale_workload_latency_seconds{{{W}}}", "{{workload}}"),
                            Query(
                                f"sloscale_workload_latency_target_seconds{{{W}}}",
                                "{{workload}} target",
                                dashed=True,
                            ),
                        ),
                    ),
                ),
            ),
            Row(
                "The workloads' own HTTP metrics (http profile)",
                (
                    Panel(
                        "Requests and failures",
                        "How much traffic does each workload serve, and how much fails or "
                        "times out?",
                        "reqps",
                        (
                            Query(
                                "sum by (namespace, deployment) (rate("
                                f"http_server_request_duration_seconds_count{{{H}}}[{RATE}]))",
                                "{{namespace}}/{{deployment}} requests",
                            ),
                            # OpenTelemetry has no failure counter: a failed request is in
                            # the duration histogram with the error.type attribute, whose
                            # series exists once a request failed (0 until then)
                            Query(
                                "sum by (namespace, deployment) (rate("
                                "http_server_request_duration_seconds_count"
                                f'{{{H}, error_type!=""}}[{RATE}])) or 0 * '
                                "sum by (namespace, deployment) (rate("
                                f"http_server_request_duration_seconds_count{{{H}}}[{RATE}]))",
                                "{{namespace}}/{{deployment}} failed",
                            ),
                        ),
                    ),
                    Panel(
                        "Latency p50 / p99 from the workloads' histograms",
                        "What latency do the workloads' own histograms report, independently "
                        "of sloscale's reading?",
                        "s",
                        (
                            Query(_http_quantile(0.5), "{{namespace}}/{{deployment}} p50"),
                            Query(_http_quantile(0.99), "{{namespace}}/{{deployment}} p99"),
                        ),
                    ),
                ),
            ),
        ),
    )


def _allocated_cards(replicas: str) -> str:
    return (
        f"sloscale_workload_{replicas}_replicas{{{W}}} "
        f"* sloscale_workload_applied_slice_percent{{{W}}} / 100"
    )


def gpu_capacity() -> Dashboard:
    return Dashboard(
        uid="sloscale-gpu-capacity",
        title="sloscale / GPU capacity",
        description="GPU share per workload and node, forecasts, the pool and low-priority jobs.",
        variables=VARIABLES,
        annotations=(DECISIONS, PREEMPTIONS),
        rows=(
            Row(
                "Per workload",
                (
                    Panel(
                        "GPU share allocated vs used per workload",
                        "How much GPU does each workload hold (replicas × slice) and how much "
                        "of it does it actually use?",
                        UNIT_CARDS,
                        (
                            Query(_allocated_cards("applied"), "{{workload}} allocated"),
                            Query(
                                f"{_allocated_cards('ready')} "
                                f"* sloscale_workload_gpu_utilisation_ratio{{{W}}}",
                                "{{workload}} used",
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Request rate: observed vs forecast",
                        "Did the forecast (mean and upper band, over the lead time) anticipate "
                        "the request rate the workload then saw?",
                        "reqps",
                        (
                            Query(
                                f"sloscale_workload_observed_rate_rps{{{W}}}",
                                "{{workload}} observed",
                            ),
                            Query(
                                f"sloscale_workload_predicted_rate_rps{{{W}}}",
                                "{{workload}} forecast",
                            ),
                            Query(
                                f"sloscale_workload_predicted_rate_upper_rps{{{W}}}",
                                "{{workload}} forecast upper band",
                                dashed=True,
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Replicas: desired, applied, ready",
                        "How many replicas does sloscale want, how many are in the Deployment "
                        "spec, and how many serve?",
                        "short",
                        (
                            Query(
                                f"sloscale_workload_desired_replicas{{{W}}}",
                                "{{workload}} desired",
                                dashed=True,
                            ),
                            Query(
                                f"sloscale_workload_applied_replicas{{{W}}}",
                                "{{workload}} applied",
                            ),
                            Query(f"sloscale_workload_ready_replicas{{{W}}}", "{{workload}} ready"),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Slice per replica: desired vs applied",
                        "Which GPU slice (% of a card) does each replica get, and which does "
                        "sloscale want?",
                        "percent",
                        (
                            Query(
                                f"sloscale_workload_desired_slice_percent{{{W}}}",
                                "{{workload}} desired",
                                dashed=True,
                            ),
                            Query(
                                f"sloscale_workload_applied_slice_percent{{{W}}}",
                                "{{workload}} applied",
                            ),
                        ),
                        min_value=0,
                        max_value=100,
                    ),
                ),
            ),
            Row(
                "Nodes and pool",
                (
                    Panel(
                        "GPU share per node: allocated vs used",
                        "How full is each node: share held by inference and by jobs, share "
                        "inference actually uses, against the node's capacity?",
                        UNIT_CARDS,
                        (
                            Query(
                                "sum by (node, kind) (sloscale_node_gpu_allocated_cards)",
                                "{{node}} allocated ({{kind}})",
                            ),
                            Query(
                                "sum by (node) (sloscale_node_inference_gpu_used_cards)",
                                "{{node}} used (inference)",
                            ),
                            Query(
                                "sum by (node) (sloscale_node_gpu_capacity_cards)",
                                "{{node}} capacity",
                                dashed=True,
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Free share of the pool",
                        "How much GPU share is free in the whole pool, against its size?",
                        UNIT_CARDS,
                        (
                            Query("sum(sloscale_pool_gpu_free_cards)", "free"),
                            Query("sum(sloscale_pool_gpu_capacity_cards)", "capacity", dashed=True),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Fragmentation of the free share",
                        "How much of the free share is scattered on partly used cards, where "
                        "only small slices fit?",
                        UNIT_RATIO,
                        (Query("max(sloscale_pool_gpu_fragmentation_ratio)", "fragmentation"),),
                        min_value=0,
                        max_value=1,
                    ),
                    Panel(
                        "Largest free slice on one card",
                        "What is the biggest slice that could be placed right now?",
                        "percent",
                        (
                            Query(
                                "max(sloscale_pool_largest_free_slice_percent)",
                                "largest free slice",
                            ),
                        ),
                        min_value=0,
                        max_value=100,
                    ),
                ),
            ),
            Row(
                "Low-priority jobs",
                (
                    Panel(
                        "GPU-hours delivered to low-priority jobs",
                        "How much GPU time did low-priority (preemptible) jobs get in the last "
                        "hour?",
                        UNIT_GPU_HOURS,
                        (
                            Query(
                                "sum by (namespace) "
                                "(increase(sloscale_job_gpu_card_seconds_total[1h])) / 3600",
                                "{{namespace}} last hour",
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Preemptions and resumes per hour",
                        "How often does sloscale suspend jobs to make room, and resume them?",
                        "short",
                        (
                            Query("sum(increase(sloscale_preemptions_total[1h]))", "preemptions"),
                            Query("sum(increase(sloscale_resumes_total[1h]))", "resumes"),
                        ),
                        min_value=0,
                    ),
                ),
            ),
        ),
    )


def controller() -> Dashboard:
    return Dashboard(
        uid="sloscale-controller",
        title="sloscale / Controller",
        description="The control loop itself: tick timings, decisions, holds, actions, leader.",
        variables=VARIABLES,
        annotations=(DECISIONS,),
        rows=(
            Row(
                "Loop",
                (
                    Panel(
                        "Tick duration per phase",
                        "Which phase of the tick (discover, observe, forecast, plan, retrain, "
                        "act, record) takes the time: p99 and mean?",
                        "s",
                        (
                            Query(
                                "histogram_quantile(0.99, sum by (phase, le) "
                                f"(rate(sloscale_tick_phase_duration_seconds_bucket[{RATE}])))",
                                "{{phase}} p99",
                            ),
                            Query(
                                "sum by (phase) "
                                f"(rate(sloscale_tick_phase_duration_seconds_sum[{RATE}])) / "
                                "sum by (phase) "
                                f"(rate(sloscale_tick_phase_duration_seconds_count[{RATE}]))",
                                "{{phase}} mean",
                                dashed=True,
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Ticks and tick errors per minute",
                        "Is the loop ticking at its interval, and do phases fail?",
                        "opm",
                        (
                            Query(f"sum(rate(sloscale_ticks_total[{RATE}])) * 60", "ticks"),
                            Query(f"sum(rate(sloscale_tick_errors_total[{RATE}])) * 60", "errors"),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Leader and shadow mode",
                        "Which controller replica leads, and is it in dry-run (shadow) mode?",
                        "bool_yes_no",
                        (
                            Query("max by (instance) (sloscale_leader)", "{{instance}} leader"),
                            Query(
                                "max by (instance) (sloscale_dry_run)",
                                "{{instance}} dry run",
                                dashed=True,
                            ),
                        ),
                        min_value=0,
                        max_value=1,
                    ),
                ),
            ),
            Row(
                "Decisions and actions",
                (
                    Panel(
                        "Decisions by reason",
                        "Why does sloscale decide what it decides (ScaleUp, AtMax, "
                        "WithinTolerance, ...), per minute?",
                        "opm",
                        (
                            Query(
                                f"sum by (reason) (rate(sloscale_decisions_total[{RATE}])) * 60",
                                "{{reason}}",
                            ),
                        ),
                        min_value=0,
                        stacked=True,
                    ),
                    Panel(
                        "MetricsUnavailable holds",
                        "Which workloads are held (fail static) because their metrics are "
                        "missing, per minute?",
                        "opm",
                        (
                            Query(
                                "sum by (workload) "
                                f"(rate(sloscale_metrics_unavailable_total{{{W}}}[{RATE}])) * 60",
                                "{{workload}}",
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Actions per minute",
                        "How many scale, suspend and resume actions does sloscale send (or, in "
                        "dry run, only record)?",
                        "opm",
                        (
                            Query(
                                "sum by (kind, dry_run) "
                                f"(rate(sloscale_actions_total[{RATE}])) * 60",
                                "{{kind}} (dry run {{dry_run}})",
                            ),
                        ),
                        min_value=0,
                        stacked=True,
                    ),
                    Panel(
                        "Retraining triggers per hour",
                        "Which models had retraining triggered by new data?",
                        "short",
                        (
                            Query(
                                "sum by (workload) "
                                f"(increase(sloscale_retrain_triggers_total{{{W}}}[1h]))",
                                "{{workload}}",
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "Workloads with invalid SLO annotations",
                        "How many opted-in workloads are ignored because their annotations "
                        "do not parse (see the API or Events for why)?",
                        "short",
                        (Query(f"sum(1 - sloscale_workload_spec_valid{{{W}}})", "invalid"),),
                        min_value=0,
                    ),
                ),
            ),
        ),
    )


def all_dashboards() -> Mapping[str, Dashboard]:
    """Every shipped dashboard by file stem; purely computational."""
    return {
        "slo-overview": slo_overview(),
        "gpu-capacity": gpu_capacity(),
        "controller": controller(),
    }
