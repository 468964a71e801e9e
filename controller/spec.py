"""Parsing and validation of ``sloscale.io/*`` annotations into ``SloSpec`` and ``JobSpec``.

Annotations are the users' interface (ARCHITECTURE §3): strings a person typed into a
manifest. This module turns them into the typed specs the planner works with, and turns every
mistake into a ``SpecError`` that names the workload, the annotation, its value and what is
wrong, so a bad spec is reported for that workload alone and never reaches the planner.

Purely computational, no side effects: no I/O, no clock, no logging. Every function here is a
function of its arguments.

Rules shared by every key:

- only keys starting with ``sloscale.io/`` are read; other annotations are ignored;
- values are stripped of surrounding whitespace; an empty value is an error;
- an unknown ``sloscale.io/`` key is an error (the message suggests the closest known key);
- all errors are collected, not just the first.

Results are a ``ParseResult``: ``spec`` is set exactly when the workload opted in and no error
was found; ``warnings`` says what was accepted only in part (a capped priority). A
Deployment without ``sloscale.io/enabled`` or with ``"false"`` has not opted in
(``opted_in=False``, no spec; its values are not looked at, but an unknown key is still an
error, since ``sloscale.io/enable`` is most likely a failed opt-in). Every Job has a
``JobSpec`` (the defaults when it carries no annotation), so ``opted_in`` is always true there.

Choices the schema leaves open, fixed here:

- ``slice-min`` defaults to ``slice-step`` and ``slice-max`` to the largest multiple of
  ``slice-step`` not above 100 (10 and 100 for the default step of 10);
- ``latency-query``, ``rate-query`` and ``good-ratio-query`` are allowed only with
  ``metrics-profile: custom`` (elsewhere they would be silently ignored, so they are errors);
- ``retrain-cooldown`` and ``min-runtime`` may be zero (no cooldown, no protection); every
  other duration must be positive;
- durations follow Prometheus: units ``ms s m h d w y``, largest first, each at most once
  (``1h30m``); a plain number is seconds.

Every value is bounded (``controller.spec_values``, where the converters live), so that no
annotation can make the planner allocate, divide or loop without limit (a value out of range
is a ``SpecError`` like any other): replicas at most ``MAX_REPLICAS``, the quantile in
``QUANTILE_RANGE``, the objective in ``OBJECTIVE_RANGE_PCT``, the latency target at most
``MAX_LATENCY_TARGET_MS``, the window in ``WINDOW_RANGE_S``, every other duration at most
``MAX_DURATION_S`` and sample thresholds at most ``MAX_SAMPLES`` (slices and priorities were
bounded already). The README's annotation table states them.

A priority above ``high`` (``critical``, or an integer over 100) lets a workload go first
and preempt protected jobs, so it is for the namespaces an operator allows
(``sloscale run --critical-namespaces``); elsewhere the caller passes ``cap_priority`` and
the priority is capped to ``PRIORITY_CAP`` with a warning: the spec stays valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from controller import spec_values as values
from controller.domain import (
    SHARE_UNIT_PCT,
    JobSpec,
    LatencyMetric,
    MetricsProfile,
    Mode,
    RetrainSpec,
    ScalingBehavior,
    ScalingRules,
    SliceDialect,
    SloSpec,
    SpecError,
)
from controller.spec_values import (
    MAX_DURATION_S,
    MAX_LATENCY_TARGET_MS,
    MAX_REPLICAS,
    MAX_SAMPLES,
    MAX_SCALE_UP_PERCENT,
    OBJECTIVE_RANGE_PCT,
    PRIORITY_CAP,
    QUANTILE_RANGE,
    STABILIZATION_RANGE_S,
    WINDOW_RANGE_S,
    parse_duration_s,
)

__all__ = [
    "ANNOTATION_PREFIX",
    "CONTROLLER_NAMES",
    "KNOWN_DEPLOYMENT_KEYS",
    "KNOWN_JOB_KEYS",
    "MAX_DURATION_S",
    "MAX_LATENCY_TARGET_MS",
    "MAX_REPLICAS",
    "MAX_SAMPLES",
    "OBJECTIVE_RANGE_PCT",
    "PRIORITY_CAP",
    "QUANTILE_RANGE",
    "WINDOW_RANGE_S",
    "ParseResult",
    "format_errors",
    "parse_duration_s",
    "parse_job_spec",
    "parse_slo_spec",
]

ANNOTATION_PREFIX = "sloscale.io/"
"""Every annotation sloscale reads starts with this."""

_DEPLOYMENT_NAMES = (
    "enabled",
    "latency-target-ms",
    "latency-quantile",
    "objective",
    "window",
    "priority",
    "min-replicas",
    "max-replicas",
    "slice-min",
    "slice-max",
    "slice-step",
    "slice-dialect",
    "metrics-profile",
    "latency-metric",
    "latency-query",
    "rate-query",
    "good-ratio-query",
    "model",
    "retrain-data-query",
    "retrain-threshold",
    "retrain-job-template",
    "retrain-cooldown",
    "retrain-urgent-threshold",
    "retrain-deadline",
    "reclaim-idle-after",
    "mode",
    "scale-down-stabilization",
    "scale-up-max-percent",
    "scale-up-max-pods",
    "scale-down-max-percent",
    "scale-down-max-pods",
)
_JOB_NAMES = (
    "priority",
    "preemptible",
    "checkpoint-interval",
    "min-runtime",
    "reclaim-idle-after",
)
_LABEL_NAMES = ("retrain-of",)
CONTROLLER_NAMES = ("last-decision", "retrain-watermark")
"""What sloscale itself writes on the objects it acts on: its last decision (Deployments and
Jobs, the Jobs it creates included) and a model's retraining watermark (Deployments). Records,
not a request: never parsed, never an unknown key, so that an object sloscale has acted on
still validates (``sloscale validate`` of ``kubectl get -o yaml``, and deploy/admission's
policy, which would otherwise refuse sloscale's own writes)."""

KNOWN_DEPLOYMENT_KEYS: frozenset[str] = frozenset(ANNOTATION_PREFIX + n for n in _DEPLOYMENT_NAMES)
"""Every ``sloscale.io/`` annotation valid on an inference Deployment."""

KNOWN_JOB_KEYS: frozenset[str] = frozenset(ANNOTATION_PREFIX + n for n in _JOB_NAMES)
"""Every ``sloscale.io/`` annotation valid on a Job (or another preemptible workload)."""

_CUSTOM_QUERY_NAMES = ("latency-query", "rate-query", "good-ratio-query")
_RETRAIN_REQUIRED_NAMES = ("retrain-data-query", "retrain-threshold", "retrain-job-template")
_RETRAIN_OPTIONAL_NAMES = ("retrain-cooldown", "retrain-urgent-threshold", "retrain-deadline")
SpecT = TypeVar("SpecT", SloSpec, JobSpec)
T = TypeVar("T")


# frozen but not slots: a slotted generic dataclass breaks ``ParseResult[SloSpec](...)`` on 3.11
@dataclass(frozen=True)
class ParseResult(Generic[SpecT]):
    """The outcome of parsing one workload's annotations.

    Three shapes, and only these:

    - opted in and valid: ``spec`` set, ``errors == ()``, ``opted_in`` true;
    - opted in and invalid: ``spec is None``, ``errors`` non-empty, ``opted_in`` true;
    - not opted in (Deployments only): ``spec is None``, ``opted_in`` false, and ``errors``
      only for ``sloscale.io/`` keys no Deployment takes (a typo such as ``enable`` may be
      why it is not opted in); other values are not looked at.
    """

    spec: SpecT | None
    errors: tuple[SpecError, ...] = ()
    opted_in: bool = True
    warnings: tuple[SpecError, ...] = ()
    """What the spec took only in part (a priority capped to ``high``); never with errors."""

    @property
    def ok(self) -> bool:
        """True when there is a spec to act on."""
        return self.spec is not None


_LINE_BREAKS = {c: repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}
_ESCAPE_LINE_BREAKS = str.maketrans(_LINE_BREAKS)


def format_errors(errors: Iterable[SpecError]) -> str:
    """One line per error, in the order they were found; purely computational.

    Line breaks inside a key or workload name (values are already quoted) are escaped, so
    the output always has exactly one line per error.
    """
    return "\n".join(str(e).translate(_ESCAPE_LINE_BREAKS) for e in errors)


# --------------------------------------------------------------------------------------------
# Reading one workload's annotations
# --------------------------------------------------------------------------------------------


class _Reader:
    """Reads ``sloscale.io/`` values for one workload and collects its errors.

    ``get`` returns the converted value, or the default when the key is missing *or* bad; a
    bad key is remembered so that cross-key checks (``valid``) skip it instead of reporting a
    second, spurious error.
    """

    def __init__(self, workload: str, annotations: Mapping[str, str]) -> None:
        self.workload = workload
        self.raw: dict[str, str] = {}  # short name -> value as given (for messages)
        self.values: dict[str, str] = {}  # short name -> stripped value
        for key, value in annotations.items():
            if key.startswith(ANNOTATION_PREFIX):
                name = key[len(ANNOTATION_PREFIX) :]
                if name in CONTROLLER_NAMES:  # sloscale's own records, not the spec
                    continue
                self.raw[name] = value
                self.values[name] = value.strip()
        self.errors: list[SpecError] = []
        self.warnings: list[SpecError] = []
        self.bad: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.values

    def error(self, name: str, message: str) -> None:
        self.bad.add(name)
        self.errors.append(
            SpecError(self.workload, ANNOTATION_PREFIX + name, self.raw.get(name, ""), message)
        )

    def warn(self, name: str, message: str) -> None:
        self.warnings.append(
            SpecError(self.workload, ANNOTATION_PREFIX + name, self.raw.get(name, ""), message)
        )

    def result(self, spec: SpecT) -> ParseResult[SpecT]:
        """``spec`` with the warnings, or the errors without a spec."""
        if self.errors:
            return ParseResult(spec=None, errors=tuple(self.errors))
        return ParseResult(spec=spec, warnings=tuple(self.warnings))

    def get(self, name: str, convert: Callable[[str], T], default: T) -> T:
        text = self.values.get(name)
        if text is None:
            return default
        if not text:
            self.error(name, "must not be empty")
            return default
        try:
            return convert(text)
        except ValueError as exc:
            self.error(name, str(exc))
            return default

    def valid(self, *names: str) -> bool:
        """True when none of ``names`` had a bad value."""
        return not self.bad.intersection(names)

    def check_unknown(
        self, known: tuple[str, ...], kind: str, elsewhere: Mapping[str, str]
    ) -> None:
        for name in self.values:
            if name in known:
                continue
            if name in _LABEL_NAMES:
                hint = (
                    f"unknown annotation: {ANNOTATION_PREFIX}{name} is a label, not an annotation"
                )
            elif name in elsewhere:
                hint = f"unknown key on a {kind}: it applies to {elsewhere[name]} only"
            else:
                hint = f"unknown key on a {kind}"
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                if close:
                    hint += f"; did you mean {ANNOTATION_PREFIX}{close[0]}?"
            self.error(name, hint)

    def blame(self, first: str, second: str) -> str:
        """The key to report a cross-key error on: the first one the user actually set."""
        return first if self.has(first) or not self.has(second) else second


def _describe(reader: _Reader, name: str, value: int) -> str:
    return f"{name} ({value})" if reader.has(name) else f"{name} ({value}, the default)"


def _read_priority(reader: _Reader, default: int, *, cap: bool) -> int:
    """The priority; with ``cap``, at most ``PRIORITY_CAP`` (a warning says it was capped)."""
    priority = reader.get("priority", values.priority, default)
    if cap and priority > PRIORITY_CAP:
        reader.warn(
            "priority",
            f"priority {priority} capped to high ({PRIORITY_CAP}): priorities above high are "
            "honoured only in the namespaces of the controller's --critical-namespaces",
        )
        return PRIORITY_CAP
    return priority


# --------------------------------------------------------------------------------------------
# Deployments
# --------------------------------------------------------------------------------------------


def parse_slo_spec(
    workload: str,
    annotations: Mapping[str, str],
    *,
    default_dialect: SliceDialect = SliceDialect.HAMI,
    cap_priority: bool = False,
) -> ParseResult[SloSpec]:
    """Parse a Deployment's annotations into an ``SloSpec``; purely computational.

    ``workload`` is only used in error messages (``namespace/name`` by convention).
    ``default_dialect`` is the controller's ``--slice-dialect`` flag, used when the workload
    sets no ``slice-dialect``. ``cap_priority``: the workload's namespace is not allowed
    priorities above ``high`` (capped, with a warning). Never raises on any string input:
    every problem becomes a ``SpecError`` in the result.
    """
    reader = _Reader(workload, annotations)
    reader.check_unknown(
        _DEPLOYMENT_NAMES,
        "Deployment",
        {n: "Jobs" for n in _JOB_NAMES if n not in _DEPLOYMENT_NAMES},
    )
    if not reader.has("enabled") or not reader.get("enabled", values.boolean, True):
        # not opted in: only a key no Deployment takes (``enable`` for ``enabled``) is
        # reported, since it may be why the workload is not opted in
        return ParseResult(spec=None, errors=tuple(reader.errors), opted_in=False)

    defaults = SloSpec(latency_target_ms=1.0)
    if not reader.has("latency-target-ms"):
        reader.error("latency-target-ms", "is required but missing")
    target_ms = reader.get(
        "latency-target-ms",
        values.positive_at_most(MAX_LATENCY_TARGET_MS),
        defaults.latency_target_ms,
    )
    quantile = reader.get(
        "latency-quantile", values.open_interval(0, 1, QUANTILE_RANGE), defaults.latency_quantile
    )
    objective_pct = reader.get("objective", values.objective_pct, defaults.objective_pct)
    window_s = reader.get(
        "window",
        values.duration(allow_zero=False, low_s=WINDOW_RANGE_S[0], high_s=WINDOW_RANGE_S[1]),
        defaults.window_s,
    )
    priority = _read_priority(reader, defaults.priority, cap=cap_priority)
    replicas_min, replicas_max = _read_replicas(reader, defaults)
    slice_min, slice_max, slice_step = _read_slices(reader)
    dialect = reader.get("slice-dialect", values.choice(SliceDialect), default_dialect)
    profile, (latency_query, rate_query, good_query) = _read_metrics(reader)
    model = _read_model(reader, profile)
    latency_metric = _read_latency_metric(reader, profile)
    retrain = _read_retrain(reader)
    behavior = _read_behavior(reader, defaults.behavior)
    spec = SloSpec(
        latency_target_ms=target_ms,
        latency_quantile=quantile,
        objective_pct=objective_pct,
        window_s=window_s,
        priority=priority,
        min_replicas=replicas_min,
        max_replicas=replicas_max,
        slice_min_pct=slice_min,
        slice_max_pct=slice_max,
        slice_step_pct=slice_step,
        slice_dialect=dialect,
        metrics_profile=profile,
        latency_query=latency_query,
        rate_query=rate_query,
        good_ratio_query=good_query,
        retrain=retrain,
        model=model,
        latency_metric=latency_metric,
        reclaim_idle_after_s=reader.get(
            "reclaim-idle-after", values.duration(allow_zero=False), defaults.reclaim_idle_after_s
        ),
        behavior=behavior,
        mode=reader.get("mode", values.choice(Mode), defaults.mode),
    )
    return reader.result(spec)


def _read_behavior(reader: _Reader, defaults: ScalingBehavior) -> ScalingBehavior:
    """The HPA's ``behavior``: a stabilisation window, and per direction its policies.

    As in the HPA, a direction with either policy set has only the policies set (so
    ``scale-up-max-pods: "2"`` alone allows +2 pods a tick, not also the default 100 %).
    """
    low_s, high_s = STABILIZATION_RANGE_S
    window_s = reader.get(
        "scale-down-stabilization",
        values.duration(allow_zero=True, low_s=low_s, high_s=high_s),
        defaults.scale_down_stabilization_s,
    )
    return ScalingBehavior(
        scale_down_stabilization_s=window_s,
        scale_up=_read_rules(reader, "scale-up", MAX_SCALE_UP_PERCENT, defaults.scale_up),
        scale_down=_read_rules(reader, "scale-down", 100.0, defaults.scale_down),
    )


def _read_rules(
    reader: _Reader, direction: str, max_percent: float, default: ScalingRules
) -> ScalingRules:
    """One direction's policies: the default unless either is set, then only those set."""
    percent_key, pods_key = f"{direction}-max-percent", f"{direction}-max-pods"
    if not reader.has(percent_key) and not reader.has(pods_key):
        return default
    return ScalingRules(
        max_percent=reader.get(percent_key, values.positive_at_most(max_percent), None),
        max_pods=reader.get(pods_key, values.int_in(1, MAX_REPLICAS), None),
    )


def _read_replicas(reader: _Reader, defaults: SloSpec) -> tuple[int, int]:
    """``min-replicas`` >= 0, ``max-replicas`` >= 1, both at most ``MAX_REPLICAS``, min <= max."""
    low = reader.get("min-replicas", values.int_in(0, MAX_REPLICAS), defaults.min_replicas)
    high = reader.get("max-replicas", values.int_in(1, MAX_REPLICAS), defaults.max_replicas)
    if reader.valid("min-replicas", "max-replicas") and low > high:
        reader.error(
            reader.blame("min-replicas", "max-replicas"),
            f"{_describe(reader, 'min-replicas', low)} > {_describe(reader, 'max-replicas', high)}",
        )
    return low, high


def _read_slices(reader: _Reader) -> tuple[int, int, int]:
    """Step a multiple of 10; 0 < min <= max <= 100; min and max multiples of the step.

    Without a valid step, min and max are still checked against the 10 % share unit.
    """
    step = reader.get("slice-step", values.step_pct, SHARE_UNIT_PCT)
    step_ok = reader.valid("slice-step")
    low = reader.get("slice-min", values.share_pct, step)
    high = reader.get("slice-max", values.share_pct, 100 - 100 % step)
    bounds_ok = reader.valid("slice-min", "slice-max")  # before the step errors below mark them
    for name, value in (("slice-min", low), ("slice-max", high)):
        if reader.has(name) and reader.valid(name) and value % step:
            unit = f"slice-step {step}" if step_ok else f"the {SHARE_UNIT_PCT} % share unit"
            reader.error(name, f"{name} {value} is not a multiple of {unit}")
    blamed = reader.blame("slice-min", "slice-max")
    if bounds_ok and low > high and reader.valid(blamed):  # one error per key is enough
        reader.error(
            blamed,
            f"{_describe(reader, 'slice-min', low)} > {_describe(reader, 'slice-max', high)}",
        )
    return low, high, step


def _read_metrics(
    reader: _Reader,
) -> tuple[MetricsProfile, tuple[str | None, str | None, str | None]]:
    """The profile, and the PromQL that only ``custom`` takes (rate and latency required)."""
    profile = reader.get("metrics-profile", values.choice(MetricsProfile), MetricsProfile.HTTP)
    latency, rate, good = (reader.get(n, values.text, None) for n in _CUSTOM_QUERY_NAMES)
    if not reader.valid("metrics-profile"):
        return profile, (latency, rate, good)
    if profile is MetricsProfile.CUSTOM:
        for name in ("latency-query", "rate-query"):
            if not reader.has(name):
                reader.error(
                    "metrics-profile",
                    f"metrics-profile custom requires {ANNOTATION_PREFIX}{name}",
                )
    else:
        for name in _CUSTOM_QUERY_NAMES:
            if reader.has(name):
                reader.error(
                    name,
                    f"allowed only with metrics-profile custom (this one is {profile.value})",
                )
    return profile, (latency, rate, good)


MODEL_PROFILES = (MetricsProfile.VLLM, MetricsProfile.TRITON, MetricsProfile.SGLANG)
"""The profiles whose series name the served model (Triton ``model``, vLLM and SGLang
``model_name``): ``model`` picks one on a server that serves several."""


def _read_model(reader: _Reader, profile: MetricsProfile) -> str | None:
    """``model``, only with a profile whose series carry the model's name."""
    model = reader.get("model", values.text, None)
    if model is not None and reader.valid("metrics-profile") and profile not in MODEL_PROFILES:
        names = ", ".join(p.value for p in MODEL_PROFILES)
        reader.error("model", f"allowed only with metrics-profile {names} (this one is {profile})")
    return model


LATENCY_METRIC_PROFILES: dict[LatencyMetric, tuple[MetricsProfile, ...]] = {
    LatencyMetric.E2E: tuple(MetricsProfile),
    LatencyMetric.TTFT: (MetricsProfile.VLLM, MetricsProfile.SGLANG),
    LatencyMetric.TPOT: (MetricsProfile.VLLM, MetricsProfile.SGLANG, MetricsProfile.TGI),
}
"""The profiles whose engine exports a histogram of each latency (``docs/metrics.md``): vLLM
and SGLang have time to first token and per output token, TGI only the mean time per token
(``tgi_request_mean_time_per_token_duration``); an HTTP server and Triton see requests
whole, and ``custom``'s ``latency-query`` is the signal itself."""


def _read_latency_metric(reader: _Reader, profile: MetricsProfile) -> LatencyMetric:
    """``latency-metric``, only where the profile's engine exports that latency."""
    metric = reader.get("latency-metric", values.choice(LatencyMetric), LatencyMetric.E2E)
    allowed = LATENCY_METRIC_PROFILES[metric]
    if reader.valid("latency-metric", "metrics-profile") and profile not in allowed:
        why = (
            "the latency-query is the signal: write it for the latency the SLO covers and "
            "leave latency-metric at e2e"
            if profile is MetricsProfile.CUSTOM
            else f"{profile.value} exports no {metric.value} histogram"
        )
        names = ", ".join(p.value for p in allowed)
        reader.error(
            "latency-metric",
            f"latency-metric {metric.value} needs metrics-profile {names} ({why})",
        )
    return metric


def _read_retrain(reader: _Reader) -> RetrainSpec | None:
    """The retraining settings: data query, threshold and template come together or not at all."""
    present = [n for n in _RETRAIN_REQUIRED_NAMES if reader.has(n)]
    optional = [n for n in _RETRAIN_OPTIONAL_NAMES if reader.has(n)]
    data_query = reader.get("retrain-data-query", values.text, "")
    threshold = reader.get("retrain-threshold", values.positive_at_most(MAX_SAMPLES), 0.0)
    template = reader.get("retrain-job-template", values.job_template, "")
    cooldown_s = reader.get("retrain-cooldown", values.duration(allow_zero=True), 6 * 3600.0)
    urgent = reader.get("retrain-urgent-threshold", values.positive_at_most(MAX_SAMPLES), None)
    deadline_s = reader.get("retrain-deadline", values.duration(allow_zero=False), None)

    if not present:
        for name in optional:
            reader.error(name, _needs(_RETRAIN_REQUIRED_NAMES))
        return None
    missing = [n for n in _RETRAIN_REQUIRED_NAMES if n not in present]
    if missing:
        reader.error(present[0], _needs(missing))
        return None
    if (
        urgent is not None
        and reader.valid("retrain-threshold", "retrain-urgent-threshold")
        and urgent <= threshold
    ):
        reader.error(
            "retrain-urgent-threshold",
            f"retrain-urgent-threshold ({urgent:g}) must be > retrain-threshold ({threshold:g})",
        )
    return RetrainSpec(
        data_query=data_query,
        threshold_samples=threshold,
        job_template=template,
        cooldown_s=cooldown_s,
        urgent_threshold_samples=urgent,
        deadline_s=deadline_s,
    )


def _needs(names: Iterable[str]) -> str:
    return "retraining also needs " + ", ".join(ANNOTATION_PREFIX + n for n in names)


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


def parse_job_spec(
    workload: str, annotations: Mapping[str, str], *, cap_priority: bool = False
) -> ParseResult[JobSpec]:
    """Parse a Job's annotations into a ``JobSpec``; purely computational.

    A Job without ``sloscale.io/`` annotations gets the defaults (priority ``low``, not
    preemptible, ``min-runtime`` 10m). Labels (such as ``sloscale.io/retrain-of``) are not
    annotations and must not be passed here. ``cap_priority`` as for ``parse_slo_spec``.
    Never raises on any string input.
    """
    reader = _Reader(workload, annotations)
    reader.check_unknown(
        _JOB_NAMES, "Job", {n: "Deployments" for n in _DEPLOYMENT_NAMES if n not in _JOB_NAMES}
    )
    defaults = JobSpec()
    spec = JobSpec(
        priority=_read_priority(reader, defaults.priority, cap=cap_priority),
        preemptible=reader.get("preemptible", values.boolean, defaults.preemptible),
        checkpoint_interval_s=reader.get(
            "checkpoint-interval", values.duration(allow_zero=False), defaults.checkpoint_interval_s
        ),
        min_runtime_s=reader.get(
            "min-runtime", values.duration(allow_zero=True), defaults.min_runtime_s
        ),
        reclaim_idle_after_s=reader.get(
            "reclaim-idle-after", values.duration(allow_zero=False), defaults.reclaim_idle_after_s
        ),
    )
    return reader.result(spec)
