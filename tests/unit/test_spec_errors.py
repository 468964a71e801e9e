"""``controller.spec``: annotations that are refused, and the errors that say why.

Rejected values (each error must name the workload, the key and the value) and cross-key
rules, with every error collected in schema order.
"""

from __future__ import annotations

import pytest

from controller.spec import format_errors, parse_slo_spec
from tests.unit.spec_helpers import RETRAIN, WORKLOAD, P, ann, only_error, parse

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
    # bounded so that no value can make the planner allocate, divide or loop without limit
    pytest.param("min-replicas", "1001", "at most 1000", id="min-replicas-over-ceiling"),
    pytest.param("max-replicas", str(10**12), "at most 1000", id="max-replicas-1e12"),
    pytest.param("latency-quantile", "1e-300", "[0.5, 0.9999]", id="quantile-1e-300"),
    pytest.param("latency-quantile", "0.49", "[0.5, 0.9999]", id="quantile-under-median"),
    pytest.param("latency-quantile", "0.99999", "[0.5, 0.9999]", id="quantile-five-nines"),
    pytest.param("objective", "0.1", "[50, 99.999]", id="objective-tiny"),
    pytest.param("objective", "99.9999", "[50, 99.999]", id="objective-six-nines"),
    pytest.param("latency-target-ms", "3600001", "at most", id="target-over-an-hour"),
    pytest.param("window", "4m", "at least 5m", id="window-under-a-bucket"),
    pytest.param("window", "367d", "at most 366d", id="window-over-a-year"),
    pytest.param("reclaim-idle-after", "400d", "at most 366d", id="reclaim-over-a-year"),
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
    pytest.param(
        "metrics-profile", "otel", "http, vllm, triton, tgi, sglang, custom", id="profile"
    ),
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
    pytest.param("retrain-threshold", "1e16", "at most 1e+15", id="threshold-over-ceiling"),
    pytest.param("retrain-urgent-threshold", "1e16", "at most", id="urgent-over-ceiling"),
    pytest.param("retrain-cooldown", "1000y", "at most 366d", id="cooldown-over-a-year"),
    pytest.param("retrain-deadline", "53w", "at most 366d", id="deadline-over-a-year"),
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
