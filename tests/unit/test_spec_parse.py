"""``controller.spec``: annotations that parse, and what they parse to.

Organised by concept: durations, opt-in, defaults, accepted values. Rejected values and
cross-key rules are in ``test_spec_errors``, Jobs, key sets and formatting in ``test_spec_jobs``.
"""

from __future__ import annotations

import pytest

from controller.domain import PRIORITY_NAMES, MetricsProfile, RetrainSpec, SliceDialect, SloSpec
from controller.spec import ParseResult, parse_duration_s, parse_slo_spec
from tests.unit.spec_helpers import BASE, RETRAIN, WORKLOAD, P, ann, ok_spec, only_error, parse

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
    pytest.param(ann(enabled="false", window="x"), id="not-opted-in-not-validated"),
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
    pytest.param(ann(objective="50"), "objective_pct", 50.0, id="objective-lowest-supported"),
    pytest.param(ann(objective="99.999"), "objective_pct", 99.999, id="objective-five-nines"),
    pytest.param(ann(latency_quantile="0.9999"), "latency_quantile", 0.9999, id="quantile-4-nines"),
    pytest.param(ann(window="5m"), "window_s", 300.0, id="window-shortest"),
    pytest.param(ann(window="366d"), "window_s", 366 * 86400.0, id="window-longest"),
    pytest.param(ann(max_replicas="1000"), "max_replicas", 1000, id="max-replicas-ceiling"),
    pytest.param(ann(latency_target_ms="3600000"), "latency_target_ms", 3.6e6, id="target-1h"),
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
# The priority cap: above high only where the operator allows it
# --------------------------------------------------------------------------------------------

CAPPED = [
    pytest.param("critical", 1000, id="critical"),
    pytest.param("5000", 5000, id="integer-above-critical"),
    pytest.param("101", 101, id="integer-just-above-high"),
]


@pytest.mark.parametrize(("text", "value"), CAPPED)
def test_a_priority_above_high_is_capped_with_a_warning(text: str, value: int) -> None:
    result = parse(ann(priority=text), cap_priority=True)
    assert result.errors == () and result.spec is not None
    assert result.spec.priority == PRIORITY_NAMES["high"] == 100
    (warning,) = result.warnings
    assert (warning.workload, warning.key, warning.value) == (WORKLOAD, P + "priority", text)
    assert warning.message.startswith(f"priority {value} capped to high (100)")
    assert "--critical-namespaces" in warning.message
    assert ok_spec(ann(priority=text)).priority == value  # where allowed: honoured


@pytest.mark.parametrize("text", ["high", "100", "normal", "-5", "low"])
def test_a_priority_up_to_high_is_never_capped(text: str) -> None:
    result = parse(ann(priority=text), cap_priority=True)
    assert result.warnings == () and result.spec == ok_spec(ann(priority=text))


def test_a_capped_priority_is_no_warning_when_the_spec_has_errors() -> None:
    result = parse(ann(priority="critical", objective="100"), cap_priority=True)
    assert result.spec is None and result.warnings == () and len(result.errors) == 1
