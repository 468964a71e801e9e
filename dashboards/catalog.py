"""The three dashboards sloscale ships: SLO overview, GPU capacity, Controller.

Purely computational, no side effects. Each panel states the question it answers; that text
is the panel's description in Grafana and the list in ``dashboards/README.md``.

Where the numbers come from:

- ``sloscale_*`` series are the controller's own ``/metrics`` (``sloscale/telemetry.py``):
  workloads carry ``workload="<namespace>/<name>"``, so the ``namespace`` and ``workload``
  variables are cut out of that label and matched as ``workload=~"$namespace/$workload"``;
- ``http_server_*`` series are the workloads' own OpenTelemetry HTTP server metrics (the
  ``http`` metrics profile), labelled ``namespace`` and ``deployment``.

With leader election (``sloscale run --leader-elect``) every replica ticks and exports the
same series; followers decide in shadow mode. Every query of the controller's series keeps only
the leader's (``leader()``: ``and on (instance, job) sloscale_leader == 1``, matched per
scraped replica), so a sum over replicas counts the leader's once and a workload shows one
line, not one per replica. ``on ()`` would match every replica's series to the one leader
and keep the followers' too.

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

GLANCE_BURN_WINDOW = "1h"
BURN_BANDS = ((1.0, *PAGE_BURN_RATES), ("green", "yellow", "orange", "red"))
"""Burn-rate colours: under 1× sustainable, then up to the page levels, then paging."""

DCGM_DEVICE = "Hostname, gpu, UUID, GPU_I_PROFILE, GPU_I_ID"
"""dcgm-exporter's labels naming one device: a whole card, or one MIG instance of it."""

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

LEADER_ONLY = "and on (instance, job) sloscale_leader == 1"
"""Keeps the series of the replica that leads; ``sloscale_leader`` is 1 there, 0 elsewhere."""


def leader(vector: str) -> str:
    """``vector`` restricted to the leading replica's series (see the module docstring)."""
    return f"({vector} {LEADER_ONLY})"


def _sel(metric: str, matchers: str = W) -> str:
    """The leader's series of one of the controller's metrics, for the chosen workloads."""
    return leader(f"{metric}{{{matchers}}}" if matchers else metric)


def _over(fn: str, metric: str, window: str = RATE, matchers: str = W) -> str:
    """``fn(metric[window])`` (``rate``, ``increase``) over the leader's series."""
    return leader(
        f"{fn}({metric}{{{matchers}}}[{window}])" if matchers else f"{fn}({metric}[{window}])"
    )


def _rate(metric: str) -> str:
    """Per-second rate of one of the controller's own counters (no workload label)."""
    return _over("rate", metric, matchers="")


def _increase(metric: str, window: str) -> str:
    """Increase over ``window`` of one of the controller's own counters (no workload label)."""
    return _over("increase", metric, window, matchers="")


DECISIONS = Annotation(
    name="Decisions",
    expr=(
        "sum by (workload, reason) "
        f"{_over('increase', 'sloscale_decision_changes_total', '1m')} > 0"
    ),
    title="{{reason}}",
    text="{{workload}}",
    tag_keys=("reason", "workload"),
)
PREEMPTED = 'reason=~"Preempted|Resumed"'
PREEMPTIONS = Annotation(
    name="Preemptions",
    expr=(
        "sum by (workload, reason) "
        f"{_over('increase', 'sloscale_decision_changes_total', '1m', PREEMPTED)} > 0"
    ),
    title="{{reason}}",
    text="{{workload}}",
    tag_keys=("reason", "workload"),
    color="purple",
)


def _burn_rate(window: str) -> str:
    """Bad share of requests over ``window`` divided by the allowed bad share (1 - objective)."""
    good = f"sum by (workload) {_over('increase', 'sloscale_workload_good_requests_total', window)}"
    total = f"sum by (workload) {_over('increase', 'sloscale_workload_requests_total', window)}"
    allowed = f"(1 - max by (workload) {_sel('sloscale_workload_objective_ratio')})"
    return f"(1 - {good} / {total}) / {allowed}"


def _attainment_margin() -> str:
    """Attainment over the window so far minus the objective: below 0, the SLO is missed."""
    return f"{_sel('sloscale_workload_sli_ratio')} - {_sel('sloscale_workload_objective_ratio')}"


def _device_activity() -> str:
    """Share of time each device's compute engine was busy, from dcgm-exporter.

    ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (ratio) where the exporter has it, and it is all there is
    on a MIG instance (DCGM reports no ``GPU_UTIL`` there); ``DCGM_FI_DEV_GPU_UTIL`` (%) for a
    whole card whose exporter runs without profiling counters. ``max`` folds the copies one
    device gets per pod (``--kubernetes-virtual-gpus``) into the device's own value.
    """
    engine = f"max by ({DCGM_DEVICE}) (DCGM_FI_PROF_GR_ENGINE_ACTIVE)"
    util = f"max by ({DCGM_DEVICE}) (DCGM_FI_DEV_GPU_UTIL) / 100"
    return f"{engine} or {util}"


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
                "At a glance",
                (
                    Panel(
                        "Attainment above objective",
                        "By how much does each workload's attainment over its window so far "
                        "exceed its objective (red: the objective is missed)?",
                        UNIT_RATIO,
                        (Query(_attainment_margin(), "{{workload}}"),),
                        width=8,
                        height=5,
                        thresholds=(0.0,),
                        colors=("red", "green"),
                        kind="stat",
                        decimals=2,
                    ),
                    Panel(
                        "Error budget left",
                        "How much of its error budget does each workload have left in its "
                        "window (red under 25 %, orange under 50 %)?",
                        UNIT_RATIO,
                        (
                            Query(
                                _sel("sloscale_workload_error_budget_remaining_ratio"),
                                "{{workload}}",
                            ),
                        ),
                        width=8,
                        height=5,
                        min_value=0,
                        max_value=1,
                        thresholds=(0.25, 0.5),
                        colors=("red", "orange", "green"),
                        kind="gauge",
                    ),
                    Panel(
                        f"Burn rate over {GLANCE_BURN_WINDOW}",
                        "How fast is each workload spending its error budget now (green under "
                        "1×, red at the 14.4× page level)?",
                        UNIT_BURN,
                        (Query(_burn_rate(GLANCE_BURN_WINDOW), "{{workload}}"),),
                        width=8,
                        height=5,
                        thresholds=BURN_BANDS[0],
                        colors=BURN_BANDS[1],
                        kind="stat",
                        decimals=1,
                    ),
                ),
            ),
            Row(
                "SLO and error budget",
                (
                    Panel(
                        "SLO attainment vs objective",
                        "Is each workload meeting its objective over its SLO window so far?",
                        UNIT_RATIO,
                        (
                            Query(_sel("sloscale_workload_sli_ratio"), "{{workload}} attained"),
                            Query(
                                _sel("sloscale_workload_objective_ratio"),
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
                                _sel("sloscale_workload_error_budget_remaining_ratio"),
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
                            Query(_sel("sloscale_workload_latency_seconds"), "{{workload}}"),
                            Query(
                                _sel("sloscale_workload_latency_target_seconds"),
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
        f"{_sel(f'sloscale_workload_{replicas}_replicas')} "
        f"* {_sel('sloscale_workload_applied_slice_percent')} / 100"
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
                                f"* {_sel('sloscale_workload_gpu_utilisation_ratio')}",
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
                                _sel("sloscale_workload_observed_rate_rps"),
                                "{{workload}} observed",
                            ),
                            Query(
                                _sel("sloscale_workload_predicted_rate_rps"),
                                "{{workload}} forecast",
                            ),
                            Query(
                                _sel("sloscale_workload_predicted_rate_upper_rps"),
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
                                _sel("sloscale_workload_desired_replicas"),
                                "{{workload}} desired",
                                dashed=True,
                            ),
                            Query(
                                _sel("sloscale_workload_applied_replicas"),
                                "{{workload}} applied",
                            ),
                            Query(_sel("sloscale_workload_ready_replicas"), "{{workload}} ready"),
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
                                _sel("sloscale_workload_desired_slice_percent"),
                                "{{workload}} desired",
                                dashed=True,
                            ),
                            Query(
                                _sel("sloscale_workload_applied_slice_percent"),
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
                                "sum by (node, kind) "
                                f"{leader('sloscale_node_gpu_allocated_cards')}",
                                "{{node}} allocated ({{kind}})",
                            ),
                            Query(
                                f"sum by (node) {leader('sloscale_node_inference_gpu_used_cards')}",
                                "{{node}} used (inference)",
                            ),
                            Query(
                                f"sum by (node) {leader('sloscale_node_gpu_capacity_cards')}",
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
                            Query(f"sum{leader('sloscale_pool_gpu_free_cards')}", "free"),
                            Query(
                                f"sum{leader('sloscale_pool_gpu_capacity_cards')}",
                                "capacity",
                                dashed=True,
                            ),
                        ),
                        min_value=0,
                    ),
                    Panel(
                        "GPU activity per device (dcgm-exporter)",
                        "How busy is each card and MIG instance by dcgm-exporter's reading "
                        "(engine activity; GPU utilisation where profiling is off)?",
                        UNIT_RATIO,
                        (Query(_device_activity(), "{{Hostname}} GPU {{gpu}} {{GPU_I_PROFILE}}"),),
                        min_value=0,
                        max_value=1,
                    ),
                    Panel(
                        "Fragmentation of the free share",
                        "How much of the free share is scattered on partly used cards, where "
                        "only small slices fit?",
                        UNIT_RATIO,
                        (
                            Query(
                                f"max{leader('sloscale_pool_gpu_fragmentation_ratio')}",
                                "fragmentation",
                            ),
                        ),
                        min_value=0,
                        max_value=1,
                    ),
                    Panel(
                        "Largest free slice on one card",
                        "What is the biggest slice that could be placed right now?",
                        "percent",
                        (
                            Query(
                                f"max{leader('sloscale_pool_largest_free_slice_percent')}",
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
                                f"{_increase('sloscale_job_gpu_card_seconds_total', '1h')}"
                                " / 3600",
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
                            Query(
                                f"sum{_increase('sloscale_preemptions_total', '1h')}",
                                "preemptions",
                            ),
                            Query(
                                f"sum{_increase('sloscale_resumes_total', '1h')}",
                                "resumes",
                            ),
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
                                f"{_rate('sloscale_tick_phase_duration_seconds_bucket')})",
                                "{{phase}} p99",
                            ),
                            Query(
                                "sum by (phase) "
                                f"{_rate('sloscale_tick_phase_duration_seconds_sum')}"
                                " / sum by (phase) "
                                f"{_rate('sloscale_tick_phase_duration_seconds_count')}",
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
                            Query(
                                f"sum{_rate('sloscale_ticks_total')} * 60",
                                "ticks",
                            ),
                            Query(
                                f"sum{_rate('sloscale_tick_errors_total')} * 60",
                                "errors",
                            ),
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
                                f"sum by (reason) {_rate('sloscale_decisions_total')} * 60",
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
                                f"{_over('rate', 'sloscale_metrics_unavailable_total')} * 60",
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
                                f"sum by (kind, dry_run) {_rate('sloscale_actions_total')} * 60",
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
                                f"{_over('increase', 'sloscale_retrain_triggers_total', '1h')}",
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
                        (Query(f"sum(1 - {_sel('sloscale_workload_spec_valid')})", "invalid"),),
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
