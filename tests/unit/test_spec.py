"""Unit tests for ``controller.spec``: annotation parsing, defaults, rules and error messages.

Organised by concept: durations, opt-in, defaults, accepted values, rejected values (each
error must name the workload, the key and the value), cross-key rules, Jobs, formatting.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.domain import (
    PRIORITY_NAMES,
    JobSpec,
    MetricsProfile,
    RetrainSpec,
    SliceDialect,
    SloSpec,
    SpecError,
)
from controller.spec import (
    ANNOTATION_PREFIX,
    KNOWN_DEPLOYMENT_KEYS,
    KNOWN_JOB_KEYS,
    ParseResult,
    format_errors,
    parse_duration_s,
    parse_job_spec,
    parse_slo_spec,
)

P = ANNOTATION_PREFIX
WORKLOAD = "team-a/chat"
JOB = "team-b/train"
BASE = {P + "enabled": "true", P + "latency-target-ms": "250"}
RETRAIN = {
    P + "retrain-data-query": "sum(samples_total)",
    P + "retrain-threshold": "10000",
    P + "retrain-job-template": "cronjob/retrain-chat",
}


def ann(**short: str) -> dict[str, str]:
    """Annotations with the prefix added; ``latency_target_ms`` -> ``latency-target-ms``."""
    return {P + k.replace("_", "-"): v for k, v in short.items()}


def parse(extra: dict[str, str], **kwargs: Any) -> ParseResult[SloSpec]:
    return parse_slo_spec(WORKLOAD, {**BASE, **extra}, **kwargs)


def ok_spec(extra: dict[str, str], **kwargs: Any) -> SloSpec:
    result = parse(extra, **kwargs)
    assert result.errors == (), format_errors(result.errors)
    assert result.spec is not None
    return result.spec


def only_error(result: ParseResult[Any]) -> SpecError:
    assert result.spec is None
    assert len(result.errors) == 1, format_errors(result.errors)
    return result.errors[0]


# --------------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------------

DURATIONS_OK = [
    pytest.param("30s", 30.0, id="seconds"),
    pytest.param("10m", 600.0, id="minutes"),
    pytest.param("6h", 21600.0, id="hours"),  # 6 * 3600
    pytest.param("28d", 2419200.0, id="days"),  # 28 * 86400
    pytest.param("1w", 604800.0, id="week"),  # 7 * 86400
    pytest.param("1y", 31536000.0, id="year-365d"),
    pytest.param("500ms", 0.5, id="milliseconds"),
    pytest.param("1h30m", 5400.0, id="compound"),  # 3600 + 30 * 60
    pytest.param("1d12h30m15s", 131415.0, id="long-compound"),  # 86400+43200+1800+15
    pytest.param("1m500ms", 60.5, id="ms-after-m"),
    pytest.param("90", 90.0, id="plain-number-is-seconds"),
    pytest.param("1.5", 1.5, id="plain-fraction"),
    pytest.param("1.5h", 5400.0, id="fractional-unit"),
    pytest.param("  10m ", 600.0, id="whitespace-stripped"),
]

DURATIONS_BAD = [
    pytest.param("", "empty", id="empty"),
    pytest.param("   ", "empty", id="blank"),
    pytest.param("ten minutes", "cannot parse duration", id="words"),
    pytest.param("10x", "cannot parse duration", id="unknown-unit"),
    pytest.param("m10", "cannot parse duration", id="unit-first"),
    pytest.param("1h 30m", "cannot parse duration", id="inner-space"),
    pytest.param("30m1h", "largest to smallest", id="units-out-of-order"),
    pytest.param("1h1h", "largest to smallest", id="unit-repeated"),
    pytest.param("-5s", "must be positive", id="negative"),
    pytest.param("-5", "must be positive", id="negative-plain"),
    pytest.param("0", "must be positive", id="zero"),
    pytest.param("0s", "must be positive", id="zero-with-unit"),
    pytest.param("1e3", "cannot parse duration", id="exponent"),
    pytest.param("١٠s", "cannot parse duration", id="non-ascii-digits"),
    pytest.param("9" * 400 + "y", "too large", id="overflow"),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS_OK)
def test_duration_accepted(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "reason"), DURATIONS_BAD)
def test_duration_rejected_with_reason_and_text(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        parse_duration_s(text)
    assert repr(text) in str(info.value)


def test_duration_zero_allowed_only_when_asked() -> None:
    assert parse_duration_s("0s", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="must be positive"):
        parse_duration_s("-1s", allow_zero=True)


# --------------------------------------------------------------------------------------------
# Opting in
# --------------------------------------------------------------------------------------------

NOT_OPTED_IN = [
    pytest.param({}, id="no-annotations"),
    pytest.param({"app.kubernetes.io/name": "chat"}, id="only-foreign-annotations"),
    pytest.param(ann(latency_target_ms="250"), id="enabled-missing"),
    pytest.param(ann(enabled="false", latency_target_ms="250"), id="enabled-false"),
    pytest.param(ann(enabled=" FALSE "), id="enabled-false-any-case"),
    pytest.param(ann(enabled="false", bogus="1", window="x"), id="not-opted-in-not-validated"),
]


@pytest.mark.parametrize("annotations", NOT_OPTED_IN)
def test_not_opted_in(annotations: dict[str, str]) -> None:
    result = parse_slo_spec(WORKLOAD, annotations)
    assert result == ParseResult(spec=None, errors=(), opted_in=False)
    assert not result.ok


@pytest.mark.parametrize("value", ["true", "True", "TRUE", " true\n"])
def test_enabled_true_any_case(value: str) -> None:
    result = parse_slo_spec(WORKLOAD, {**BASE, P + "enabled": value})
    assert result.ok and result.opted_in


def test_enabled_garbage_is_an_error_and_still_opted_in() -> None:
    result = parse({P + "enabled": "yes"})
    assert result.opted_in
    error = only_error(result)
    assert (error.key, error.value) == (P + "enabled", "yes")
    assert "true" in error.message and "false" in error.message


def test_foreign_annotations_are_ignored() -> None:
    spec = ok_spec({"kubectl.kubernetes.io/last-applied": "{}", "other.io/window": "nope"})
    assert spec == SloSpec(latency_target_ms=250.0, slice_dialect=SliceDialect.HAMI)


# --------------------------------------------------------------------------------------------
# Defaults (ARCHITECTURE §3)
# --------------------------------------------------------------------------------------------

DEPLOYMENT_DEFAULTS = [
    pytest.param("latency_quantile", 0.99, id="latency-quantile"),
    pytest.param("objective_pct", 99.0, id="objective"),
    pytest.param("window_s", 28 * 86400.0, id="window-28d"),
    pytest.param("priority", 0, id="priority-normal"),
    pytest.param("min_replicas", 1, id="min-replicas"),
    pytest.param("max_replicas", 16, id="max-replicas"),
    pytest.param("slice_min_pct", 10, id="slice-min"),
    pytest.param("slice_max_pct", 100, id="slice-max"),
    pytest.param("slice_step_pct", 10, id="slice-step"),
    pytest.param("slice_dialect", SliceDialect.HAMI, id="slice-dialect-from-argument"),
    pytest.param("metrics_profile", MetricsProfile.HTTP, id="metrics-profile"),
    pytest.param("latency_query", None, id="latency-query"),
    pytest.param("rate_query", None, id="rate-query"),
    pytest.param("good_ratio_query", None, id="good-ratio-query"),
    pytest.param("retrain", None, id="no-retraining"),
]


@pytest.mark.parametrize(("field", "expected"), DEPLOYMENT_DEFAULTS)
def test_deployment_default(field: str, expected: object) -> None:
    assert getattr(ok_spec({}), field) == expected


@pytest.mark.parametrize("dialect", list(SliceDialect))
def test_default_dialect_comes_from_the_argument(dialect: SliceDialect) -> None:
    assert ok_spec({}, default_dialect=dialect).slice_dialect is dialect


def test_slice_dialect_annotation_beats_the_argument() -> None:
    spec = ok_spec(ann(slice_dialect="MIG"), default_dialect=SliceDialect.KAI)
    assert spec.slice_dialect is SliceDialect.MIG


SLICE_DEFAULTS_FOLLOW_STEP = [
    pytest.param("10", (10, 100), id="step-10"),
    pytest.param("20", (20, 100), id="step-20"),
    pytest.param("30", (30, 90), id="step-30-max-90"),  # 100 - 100 % 30 = 90
    pytest.param("40", (40, 80), id="step-40-max-80"),
    pytest.param("100", (100, 100), id="step-100-whole-cards"),
]


@pytest.mark.parametrize(("step", "bounds"), SLICE_DEFAULTS_FOLLOW_STEP)
def test_slice_bounds_default_to_multiples_of_step(step: str, bounds: tuple[int, int]) -> None:
    spec = ok_spec(ann(slice_step=step))
    assert (spec.slice_min_pct, spec.slice_max_pct) == bounds


# --------------------------------------------------------------------------------------------
# Accepted values
# --------------------------------------------------------------------------------------------

ACCEPTED = [
    pytest.param(ann(latency_target_ms="0.5"), "latency_target_ms", 0.5, id="target-fraction"),
    pytest.param(ann(latency_target_ms=" 300 "), "latency_target_ms", 300.0, id="target-spaces"),
    pytest.param(ann(latency_target_ms="1e3"), "latency_target_ms", 1000.0, id="target-exp"),
    pytest.param(ann(latency_quantile="0.5"), "latency_quantile", 0.5, id="quantile-median"),
    pytest.param(ann(latency_quantile=".999"), "latency_quantile", 0.999, id="quantile-999"),
    pytest.param(ann(objective="99.9"), "objective_pct", 99.9, id="objective-three-nines"),
    pytest.param(ann(objective="0.1"), "objective_pct", 0.1, id="objective-tiny"),
    pytest.param(ann(window="7d"), "window_s", 604800.0, id="window-7d"),
    pytest.param(ann(window="3600"), "window_s", 3600.0, id="window-plain-seconds"),
    pytest.param(ann(priority="critical"), "priority", 1000, id="priority-critical"),
    pytest.param(ann(priority="High"), "priority", 100, id="priority-case-insensitive"),
    pytest.param(ann(priority="LOW"), "priority", -100, id="priority-low"),
    pytest.param(ann(priority="42"), "priority", 42, id="priority-int"),
    pytest.param(ann(priority="-7"), "priority", -7, id="priority-negative-int"),
    pytest.param(ann(min_replicas="0"), "min_replicas", 0, id="min-replicas-zero"),
    pytest.param(ann(max_replicas="1"), "max_replicas", 1, id="max-replicas-one"),
    pytest.param(ann(max_replicas="200"), "max_replicas", 200, id="max-replicas-large"),
    pytest.param(ann(slice_min="30"), "slice_min_pct", 30, id="slice-min"),
    pytest.param(ann(slice_max="50"), "slice_max_pct", 50, id="slice-max"),
    pytest.param(ann(slice_dialect="volcano"), "slice_dialect", SliceDialect.VOLCANO, id="volc"),
    pytest.param(ann(slice_dialect="kai"), "slice_dialect", SliceDialect.KAI, id="kai"),
    pytest.param(ann(metrics_profile="vllm"), "metrics_profile", MetricsProfile.VLLM, id="vllm"),
    pytest.param(
        ann(metrics_profile="Triton"), "metrics_profile", MetricsProfile.TRITON, id="triton"
    ),
]


@pytest.mark.parametrize(("extra", "field", "expected"), ACCEPTED)
def test_accepted_value(extra: dict[str, str], field: str, expected: object) -> None:
    assert getattr(ok_spec(extra), field) == pytest.approx(expected)


def test_slice_options_follow_the_parsed_bounds() -> None:
    spec = ok_spec(ann(slice_min="20", slice_max="80", slice_step="20"))
    assert spec.slice_options_pct() == (20, 40, 60, 80)


def test_custom_profile_with_queries() -> None:
    spec = ok_spec(
        ann(
            metrics_profile="custom",
            latency_query=" histogram_quantile(0.99, rate(x[1m])) ",
            rate_query="sum(rate(req[1m]))",
            good_ratio_query="sum(rate(good[1m])) / sum(rate(req[1m]))",
        )
    )
    assert spec.metrics_profile is MetricsProfile.CUSTOM
    assert spec.latency_query == "histogram_quantile(0.99, rate(x[1m]))"  # stripped
    assert spec.rate_query == "sum(rate(req[1m]))"
    assert spec.good_ratio_query == "sum(rate(good[1m])) / sum(rate(req[1m]))"


def test_custom_profile_good_ratio_query_is_optional() -> None:
    spec = ok_spec(ann(metrics_profile="custom", latency_query="a", rate_query="b"))
    assert spec.good_ratio_query is None


RETRAIN_OK = [
    pytest.param(
        {},
        RetrainSpec("sum(samples_total)", 10000.0, "cronjob/retrain-chat"),
        id="defaults-cooldown-6h",
    ),
    pytest.param(
        ann(
            retrain_cooldown="1d",
            retrain_urgent_threshold="50000",
            retrain_deadline="12h",
            retrain_job_template="ConfigMap/templates.chat-v2",
        ),
        RetrainSpec(
            "sum(samples_total)",
            10000.0,
            "configmap/templates.chat-v2",  # kind lower-cased
            cooldown_s=86400.0,
            urgent_threshold_samples=50000.0,
            deadline_s=43200.0,
        ),
        id="everything",
    ),
    pytest.param(
        ann(retrain_cooldown="0"),
        RetrainSpec("sum(samples_total)", 10000.0, "cronjob/retrain-chat", cooldown_s=0.0),
        id="zero-cooldown-allowed",
    ),
]


@pytest.mark.parametrize(("extra", "expected"), RETRAIN_OK)
def test_retrain_accepted(extra: dict[str, str], expected: RetrainSpec) -> None:
    assert ok_spec({**RETRAIN, **extra}).retrain == expected


# --------------------------------------------------------------------------------------------
# Rejected values: one error each, naming workload, key and value
# --------------------------------------------------------------------------------------------

REJECTED = [
    # key, value, words the message must contain
    pytest.param("latency-target-ms", "fast", "must be a number", id="target-not-number"),
    pytest.param("latency-target-ms", "0", "positive", id="target-zero"),
    pytest.param("latency-target-ms", "-5", "positive", id="target-negative"),
    pytest.param("latency-target-ms", "nan", "must be a number", id="target-nan"),
    pytest.param("latency-target-ms", "inf", "must be a number", id="target-inf"),
    pytest.param("latency-target-ms", "1e999", "finite", id="target-overflow"),
    pytest.param("latency-target-ms", "250ms", "must be a number", id="target-with-unit"),
    pytest.param("latency-target-ms", "1_000", "must be a number", id="target-underscore"),
    pytest.param("latency-quantile", "0", "(0, 1)", id="quantile-zero"),
    pytest.param("latency-quantile", "1", "(0, 1)", id="quantile-one"),
    pytest.param("latency-quantile", "99", "(0, 1)", id="quantile-as-percent"),
    pytest.param("latency-quantile", "p99", "must be a number", id="quantile-p99"),
    pytest.param("objective", "100", "(0, 100)", id="objective-100"),
    pytest.param("objective", "0", "(0, 100)", id="objective-0"),
    pytest.param("objective", "99%", "must be a number", id="objective-percent-sign"),
    pytest.param("window", "a month", "cannot parse duration", id="window-words"),
    pytest.param("window", "0s", "positive", id="window-zero"),
    pytest.param("priority", "urgent", "critical, high, normal, low", id="priority-name"),
    pytest.param("priority", "1.5", "or an integer", id="priority-fraction"),
    pytest.param("priority", "2000000000", "within", id="priority-too-big"),
    pytest.param("min-replicas", "-1", ">= 0", id="min-replicas-negative"),
    pytest.param("min-replicas", "1.5", "integer", id="min-replicas-fraction"),
    pytest.param("min-replicas", "9" * 5000, "integer", id="min-replicas-huge"),
    pytest.param("max-replicas", "0", ">= 1", id="max-replicas-zero"),
    pytest.param("max-replicas", "many", "integer", id="max-replicas-word"),
    pytest.param("slice-step", "5", "multiple of 10", id="step-5"),
    pytest.param("slice-step", "15", "multiple of 10", id="step-15"),
    pytest.param("slice-step", "0", "multiple of 10", id="step-0"),
    pytest.param("slice-step", "110", "multiple of 10", id="step-110"),
    pytest.param("slice-min", "0", "1..100", id="slice-min-zero"),
    pytest.param("slice-min", "15", "slice-min 15 is not a multiple of slice-step 10", id="s15"),
    pytest.param("slice-max", "110", "1..100", id="slice-max-over-100"),
    pytest.param("slice-max", "55", "slice-max 55 is not a multiple", id="slice-max-55"),
    pytest.param("slice-max", "50%", "integer", id="slice-max-percent-sign"),
    pytest.param("slice-dialect", "nvidia", "hami, volcano, kai, mig", id="dialect"),
    pytest.param("metrics-profile", "otel", "http, vllm, triton, custom", id="profile"),
    pytest.param("latency-query", "q", "only with metrics-profile custom", id="query-on-http"),
    pytest.param("rate-query", "q", "only with metrics-profile custom", id="rate-on-http"),
    pytest.param("good-ratio-query", "q", "only with metrics-profile custom", id="good-on-http"),
    pytest.param("latency-target-ms", "", "must not be empty", id="empty-value"),
    pytest.param("window", "   ", "must not be empty", id="blank-value"),
    pytest.param("bogus", "1", "unknown key", id="unknown-key"),
]


@pytest.mark.parametrize(("key", "value", "words"), REJECTED)
def test_rejected_value(key: str, value: str, words: str) -> None:
    error = only_error(parse({P + key: value}))
    assert (error.workload, error.key, error.value) == (WORKLOAD, P + key, value)
    assert words in error.message
    line = str(error)
    assert WORKLOAD in line and P + key in line and repr(value) in line


def test_metrics_profile_applies_to_vllm_too() -> None:
    error = only_error(parse(ann(metrics_profile="vllm", rate_query="q")))
    assert error.message == "allowed only with metrics-profile custom (this one is vllm)"


UNKNOWN_KEYS = [
    pytest.param("latency-target", "did you mean sloscale.io/latency-target-ms?", id="typo"),
    pytest.param("min_replicas", "did you mean sloscale.io/min-replicas?", id="underscore"),
    pytest.param("Window", "did you mean sloscale.io/window?", id="case"),
    pytest.param("slice-dialects", "did you mean sloscale.io/slice-dialect?", id="plural"),
    pytest.param("preemptible", "applies to Jobs only", id="job-key-on-deployment"),
    pytest.param("min-runtime", "applies to Jobs only", id="job-min-runtime"),
    pytest.param("retrain-of", "is a label, not an annotation", id="label-as-annotation"),
    pytest.param("zzz", "unknown key on a Deployment", id="no-suggestion"),
]


@pytest.mark.parametrize(("name", "hint"), UNKNOWN_KEYS)
def test_unknown_key_hint(name: str, hint: str) -> None:
    error = only_error(parse({P + name: "1"}))
    assert error.key == P + name
    assert hint in error.message


def test_unknown_key_without_close_match_has_no_suggestion() -> None:
    assert "did you mean" not in only_error(parse(ann(zzz="1"))).message


def test_missing_latency_target_is_required() -> None:
    error = only_error(parse_slo_spec(WORKLOAD, ann(enabled="true")))
    assert (error.workload, error.key, error.value) == (WORKLOAD, P + "latency-target-ms", "")
    assert "required" in error.message


def test_error_keeps_the_value_as_given_not_stripped() -> None:
    error = only_error(parse(ann(objective=" 100 ")))
    assert error.value == " 100 "


# --------------------------------------------------------------------------------------------
# Cross-key rules
# --------------------------------------------------------------------------------------------

CROSS_KEY = [
    pytest.param(
        ann(min_replicas="5", max_replicas="2"),
        "min-replicas",
        "min-replicas (5) > max-replicas (2)",
        id="replicas-min-over-max",
    ),
    pytest.param(
        ann(min_replicas="20"),
        "min-replicas",
        "min-replicas (20) > max-replicas (16, the default)",
        id="replicas-min-over-default-max",
    ),
    pytest.param(ann(max_replicas="1", min_replicas="1"), None, None, id="replicas-equal-is-fine"),
    pytest.param(
        ann(slice_min="60", slice_max="40"),
        "slice-min",
        "slice-min (60) > slice-max (40)",
        id="slice-min-over-max",
    ),
    pytest.param(
        ann(slice_max="40", slice_step="50"),
        "slice-max",
        "slice-max 40 is not a multiple of slice-step 50",
        id="slice-max-not-multiple-of-step",
    ),
    pytest.param(
        ann(slice_min="20", slice_step="40"),
        "slice-min",
        "slice-min 20 is not a multiple of slice-step 40",
        id="slice-min-not-multiple-of-step",
    ),
    pytest.param(
        ann(slice_max="30"),
        None,
        None,
        id="slice-max-30-with-default-min-10",
    ),
    pytest.param(
        ann(slice_max="20", slice_step="30"),
        "slice-max",
        "slice-max 20 is not a multiple of slice-step 30",
        id="slice-max-below-step",
    ),
    pytest.param(
        {**RETRAIN, **ann(retrain_urgent_threshold="10000")},
        "retrain-urgent-threshold",
        "retrain-urgent-threshold (10000) must be > retrain-threshold (10000)",
        id="urgent-equal-to-threshold",
    ),
    pytest.param(
        ann(metrics_profile="custom", rate_query="r"),
        "metrics-profile",
        "metrics-profile custom requires sloscale.io/latency-query",
        id="custom-needs-latency-query",
    ),
    pytest.param(
        ann(metrics_profile="custom", latency_query="l"),
        "metrics-profile",
        "metrics-profile custom requires sloscale.io/rate-query",
        id="custom-needs-rate-query",
    ),
    pytest.param(
        ann(retrain_threshold="100"),
        "retrain-threshold",
        "retraining also needs sloscale.io/retrain-data-query, sloscale.io/retrain-job-template",
        id="retrain-threshold-alone",
    ),
    pytest.param(
        ann(retrain_data_query="q", retrain_job_template="cronjob/x"),
        "retrain-data-query",
        "retraining also needs sloscale.io/retrain-threshold",
        id="retrain-missing-threshold",
    ),
    pytest.param(
        ann(retrain_deadline="1h"),
        "retrain-deadline",
        "retraining also needs sloscale.io/retrain-data-query",
        id="retrain-option-without-retraining",
    ),
]


@pytest.mark.parametrize(("extra", "key", "message"), CROSS_KEY)
def test_cross_key_rule(extra: dict[str, str], key: str | None, message: str | None) -> None:
    result = parse(extra)
    if key is None:
        assert result.ok, format_errors(result.errors)
        return
    error = only_error(result)
    assert error.key == P + key
    assert error.value == extra.get(P + key, "")
    assert message is not None and message in error.message


RETRAIN_REJECTED = [
    pytest.param("retrain-threshold", "0", "positive", id="threshold-zero"),
    pytest.param("retrain-threshold", "lots", "must be a number", id="threshold-word"),
    pytest.param("retrain-job-template", "retrain-chat", "cronjob/NAME", id="template-no-kind"),
    pytest.param("retrain-job-template", "job/retrain", "cronjob/NAME", id="template-job"),
    pytest.param("retrain-job-template", "cronjob/Retrain", "DNS-1123", id="template-upper"),
    pytest.param("retrain-job-template", "cronjob/", "DNS-1123", id="template-empty-name"),
    pytest.param("retrain-job-template", "cronjob/-x", "DNS-1123", id="template-leading-dash"),
    pytest.param("retrain-job-template", "cronjob/a/b", "DNS-1123", id="template-slash"),
    pytest.param(
        "retrain-job-template", "configmap/" + "a" * 254, "DNS-1123", id="template-too-long"
    ),
    pytest.param("retrain-cooldown", "soon", "cannot parse duration", id="cooldown-words"),
    pytest.param("retrain-urgent-threshold", "0", "positive", id="urgent-zero"),
    pytest.param("retrain-urgent-threshold", "500", "must be > retrain-threshold", id="urgent-lo"),
    pytest.param("retrain-deadline", "0", "positive", id="deadline-zero"),
    pytest.param("retrain-data-query", " ", "must not be empty", id="data-query-blank"),
]


@pytest.mark.parametrize(("key", "value", "words"), RETRAIN_REJECTED)
def test_retrain_rejected(key: str, value: str, words: str) -> None:
    error = only_error(parse({**RETRAIN, P + key: value}))
    assert (error.workload, error.key, error.value) == (WORKLOAD, P + key, value)
    assert words in error.message


def test_all_errors_are_collected_in_schema_order() -> None:
    result = parse_slo_spec(
        WORKLOAD,
        ann(
            enabled="true",
            latency_target_ms="fast",
            objective="100",
            window="30m1h",
            min_replicas="5",
            max_replicas="2",
            slice_min="15",
            slice_dialect="nvidia",
            retrain_threshold="100",
            typo_key="x",
        ),
    )
    assert result.spec is None and result.opted_in
    assert [(e.key.removeprefix(P), e.value) for e in result.errors] == [
        ("typo-key", "x"),
        ("latency-target-ms", "fast"),
        ("objective", "100"),
        ("window", "30m1h"),
        ("min-replicas", "5"),
        ("slice-min", "15"),
        ("slice-dialect", "nvidia"),
        ("retrain-threshold", "100"),
    ]
    assert all(e.workload == WORKLOAD for e in result.errors)


def test_bad_key_does_not_cause_a_spurious_cross_key_error() -> None:
    # max-replicas is bad, so min <= max is not checked against the default 16 either
    error = only_error(parse(ann(min_replicas="20", max_replicas="x")))
    assert error.key == P + "max-replicas"


def test_two_slice_problems_both_reported() -> None:
    result = parse(ann(slice_min="50", slice_max="40", slice_step="50"))
    assert [e.message for e in result.errors] == [
        "slice-max 40 is not a multiple of slice-step 50",
        "slice-min (50) > slice-max (40)",
    ]


def test_bad_step_still_checks_min_against_share_unit() -> None:
    result = parse(ann(slice_step="15", slice_min="25"))
    assert [(e.key, e.message) for e in result.errors] == [
        (P + "slice-step", "must be a multiple of 10 in 10..100 (cards are sliced in 10 % units)"),
        (P + "slice-min", "slice-min 25 is not a multiple of the 10 % share unit"),
    ]


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------

JOB_OK = [
    pytest.param({}, JobSpec(), id="defaults"),
    pytest.param({"team": "b"}, JobSpec(), id="foreign-annotations-ignored"),
    pytest.param(
        ann(
            priority="high",
            preemptible="True",
            checkpoint_interval="15m",
            min_runtime="20m",
            reclaim_idle_after="5m",
        ),
        JobSpec(
            priority=100,
            preemptible=True,
            checkpoint_interval_s=900.0,
            min_runtime_s=1200.0,
            reclaim_idle_after_s=300.0,
        ),
        id="everything",
    ),
    pytest.param(ann(preemptible="false"), JobSpec(preemptible=False), id="not-preemptible"),
    pytest.param(ann(priority="-500"), JobSpec(priority=-500), id="integer-priority"),
    pytest.param(ann(min_runtime="0"), JobSpec(min_runtime_s=0.0), id="no-protection"),
]


@pytest.mark.parametrize(("annotations", "expected"), JOB_OK)
def test_job_accepted(annotations: dict[str, str], expected: JobSpec) -> None:
    result = parse_job_spec(JOB, annotations)
    assert result == ParseResult(spec=expected, errors=(), opted_in=True)


def test_job_defaults_match_architecture() -> None:
    spec = JobSpec()
    assert spec.priority == PRIORITY_NAMES["low"]
    assert spec.min_runtime_s == 600.0  # 10m
    assert not spec.preemptible


JOB_REJECTED = [
    pytest.param("preemptible", "yes", '"true" or "false"', id="preemptible-yes"),
    pytest.param("priority", "background", "or an integer", id="priority-name"),
    pytest.param("checkpoint-interval", "0", "positive", id="checkpoint-zero"),
    pytest.param("checkpoint-interval", "often", "cannot parse duration", id="checkpoint-word"),
    pytest.param("min-runtime", "-1m", "positive", id="min-runtime-negative"),
    pytest.param("reclaim-idle-after", "5 min", "cannot parse duration", id="reclaim-space"),
    pytest.param("reclaim-idle-after", "", "must not be empty", id="reclaim-empty"),
    pytest.param("enabled", "true", "applies to Deployments only", id="deployment-key"),
    pytest.param("latency-target-ms", "5", "applies to Deployments only", id="slo-key"),
    pytest.param("retrain-of", "chat", "is a label, not an annotation", id="label"),
    pytest.param("preemptable", "true", "did you mean sloscale.io/preemptible?", id="typo"),
]


@pytest.mark.parametrize(("key", "value", "words"), JOB_REJECTED)
def test_job_rejected(key: str, value: str, words: str) -> None:
    error = only_error(parse_job_spec(JOB, {P + key: value}))
    assert (error.workload, error.key, error.value) == (JOB, P + key, value)
    assert words in error.message


def test_job_errors_are_all_collected() -> None:
    result = parse_job_spec(JOB, ann(preemptible="maybe", min_runtime="x", checkpoint_interval="0"))
    assert result.spec is None and result.opted_in
    assert {e.key for e in result.errors} == {
        P + "preemptible",
        P + "min-runtime",
        P + "checkpoint-interval",
    }


# --------------------------------------------------------------------------------------------
# Key sets and formatting
# --------------------------------------------------------------------------------------------


def test_known_keys_match_the_schema() -> None:
    assert len(KNOWN_DEPLOYMENT_KEYS) == 23
    assert all(k.startswith(P) for k in KNOWN_DEPLOYMENT_KEYS | KNOWN_JOB_KEYS)
    assert {
        P + "priority",
        P + "preemptible",
        P + "checkpoint-interval",
        P + "min-runtime",
        P + "reclaim-idle-after",
    } == KNOWN_JOB_KEYS
    assert {P + "priority", P + "reclaim-idle-after"} == KNOWN_DEPLOYMENT_KEYS & KNOWN_JOB_KEYS


def test_reclaim_idle_after_on_a_deployment() -> None:
    result = parse(ann(reclaim_idle_after="30m"))
    assert result.spec is not None and result.spec.reclaim_idle_after_s == 1800.0
    assert parse(ann()).spec.reclaim_idle_after_s is None  # type: ignore[union-attr]
    bad = parse(ann(reclaim_idle_after="0"))
    assert bad.spec is None and "reclaim-idle-after" in format_errors(bad.errors)


def test_format_errors_one_line_per_error() -> None:
    result = parse(ann(objective="100", window="soon"))
    text = format_errors(result.errors)
    assert text.splitlines() == [
        "team-a/chat: annotation sloscale.io/objective='100': must be in (0, 100), bounds excluded",
        "team-a/chat: annotation sloscale.io/window='soon': cannot parse duration: expected a "
        "number of seconds or e.g. 500ms, 30s, 10m, 1h30m, 28d, 1w",
    ]


def test_format_errors_empty() -> None:
    assert format_errors(()) == ""
