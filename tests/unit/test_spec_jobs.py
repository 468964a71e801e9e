"""``controller.spec``: a Job's annotations; the key sets and the error formatting.

Job annotations accepted and refused; then what Deployments and Jobs share: the known keys,
``reclaim-idle-after``, and ``format_errors``.
"""

from __future__ import annotations

import pytest

from controller.domain import PRIORITY_NAMES, JobSpec
from controller.spec import (
    KNOWN_DEPLOYMENT_KEYS,
    KNOWN_JOB_KEYS,
    ParseResult,
    format_errors,
    parse_job_spec,
)
from tests.unit.spec_helpers import P, ann, only_error, parse

JOB = "team-b/train"

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
    pytest.param("checkpoint-interval", "1000y", "at most 366d", id="checkpoint-over-a-year"),
    pytest.param("min-runtime", "367d", "at most 366d", id="min-runtime-over-a-year"),
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
    # the keys of ARCHITECTURE §3 (issues add more; the README's table names them all)
    assert {
        P + k
        for k in (
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
            "latency-query",
            "rate-query",
            "good-ratio-query",
            "retrain-data-query",
            "retrain-threshold",
            "retrain-job-template",
            "retrain-cooldown",
            "retrain-urgent-threshold",
            "retrain-deadline",
        )
    } <= KNOWN_DEPLOYMENT_KEYS
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


def test_a_job_priority_above_high_is_capped_with_a_warning() -> None:
    annotations = ann(priority="critical", preemptible="false")
    result = parse_job_spec("team-b/train", annotations, cap_priority=True)
    assert result.spec == JobSpec(priority=PRIORITY_NAMES["high"], preemptible=False)
    (warning,) = result.warnings
    assert warning.workload == "team-b/train" and warning.key == P + "priority"
    assert parse_job_spec("team-b/train", annotations).spec == JobSpec(
        priority=PRIORITY_NAMES["critical"], preemptible=False
    )
