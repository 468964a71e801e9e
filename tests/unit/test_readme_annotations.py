"""The README's annotation tables are the users' copy of the schema: they must match the parser.

Every key the parser knows is in the tables and nothing else is, and each bound the parser
enforces (``controller.spec_values``) is the one the table states.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from controller.domain import JobSpec, MetricsProfile, SliceDialect, SloSpec
from controller.spec import ANNOTATION_PREFIX, KNOWN_DEPLOYMENT_KEYS, KNOWN_JOB_KEYS
from controller.spec_values import (
    MAX_DURATION_S,
    MAX_LATENCY_TARGET_MS,
    MAX_PRIORITY,
    MAX_REPLICAS,
    MAX_SAMPLES,
    OBJECTIVE_RANGE_PCT,
    QUANTILE_RANGE,
    WINDOW_RANGE_S,
    format_s,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def tables() -> tuple[dict[str, str], dict[str, str]]:
    """The Deployment table and the Job table of the README's Annotations section: each row
    by every key it names (``min-replicas``, ``max-replicas`` share one row)."""
    section = README.read_text().split("\n## Annotations\n", 1)[1].split("\n## ", 1)[0]
    found: list[dict[str, str]] = []
    for block in re.split(r"\n\n+", section):
        rows = [line for line in block.splitlines() if line.startswith("| `")]
        if rows:
            found.append(
                {key: row for row in rows for key in re.findall(r"`([^`]+)`", row.split("|")[1])}
            )
    deployment, job = found
    return deployment, job


def test_the_tables_name_exactly_the_keys_the_parser_knows() -> None:
    deployment, job = tables()
    assert {ANNOTATION_PREFIX + k for k in deployment} == KNOWN_DEPLOYMENT_KEYS
    assert {ANNOTATION_PREFIX + k for k in job} == KNOWN_JOB_KEYS


DEFAULTS = SloSpec(latency_target_ms=1.0)
DEPLOYMENT_BOUNDS = [
    pytest.param("latency-target-ms", f"at most {MAX_LATENCY_TARGET_MS:.0f}", id="target"),
    pytest.param("latency-quantile", "{:g} to {:g}".format(*QUANTILE_RANGE), id="quantile"),
    pytest.param("latency-quantile", f"`{DEFAULTS.latency_quantile:g}`", id="quantile-default"),
    pytest.param("objective", "{:g} to {:g}".format(*OBJECTIVE_RANGE_PCT), id="objective"),
    pytest.param("objective", f"`{DEFAULTS.objective_pct:g}`", id="objective-default"),
    pytest.param("window", "{} to {}".format(*map(format_s, WINDOW_RANGE_S)), id="window"),
    pytest.param("window", f"`{format_s(DEFAULTS.window_s)}`", id="window-default"),
    pytest.param("priority", f"±{MAX_PRIORITY}", id="priority"),
    pytest.param("priority", "--critical-namespaces", id="priority-cap"),
    pytest.param("min-replicas", f"0 to {MAX_REPLICAS} and 1 to {MAX_REPLICAS}", id="replicas"),
    pytest.param(
        "max-replicas",
        f"`{DEFAULTS.min_replicas}`, `{DEFAULTS.max_replicas}`",
        id="replicas-defaults",
    ),
    pytest.param("retrain-threshold", f"1e{math.log10(MAX_SAMPLES):.0f}", id="threshold"),
    pytest.param("retrain-urgent-threshold", f"1e{math.log10(MAX_SAMPLES):.0f}", id="urgent"),
    pytest.param("retrain-cooldown", f"0 to {format_s(MAX_DURATION_S)}", id="cooldown"),
    pytest.param("retrain-deadline", f"at most {format_s(MAX_DURATION_S)}", id="deadline"),
    pytest.param("reclaim-idle-after", f"at most {format_s(MAX_DURATION_S)}", id="reclaim"),
]


@pytest.mark.parametrize(("key", "text"), DEPLOYMENT_BOUNDS)
def test_each_deployment_bound_is_the_parsers(key: str, text: str) -> None:
    deployment, _ = tables()
    assert text in deployment[key]


@pytest.mark.parametrize(
    ("key", "choices"),
    [
        pytest.param("slice-dialect", [d.value for d in SliceDialect], id="dialects"),
        pytest.param("metrics-profile", [p.value for p in MetricsProfile], id="profiles"),
    ],
)
def test_each_choice_is_the_parsers(key: str, choices: list[str]) -> None:
    deployment, _ = tables()
    assert re.findall(r"`([a-z]+)`", deployment[key].split("|")[3]) == choices


def test_the_job_bounds_and_defaults_are_the_parsers() -> None:
    _, job = tables()
    assert f"`{format_s(JobSpec().min_runtime_s)}`" in job["min-runtime"]
    for key in ("checkpoint-interval", "min-runtime", "reclaim-idle-after"):
        assert format_s(MAX_DURATION_S) in job[key]
    assert "`low`" in job["priority"] and "capped" in job["priority"]


def test_every_priority_the_job_docs_name_is_one_the_parser_takes() -> None:
    """docs/jobs.md once listed a ``medium`` priority that the parser rejects (#24)."""
    from controller.domain import PRIORITY_NAMES

    docs = (README.parent / "docs" / "jobs.md").read_text()
    (row,) = [line for line in docs.splitlines() if line.startswith("| `sloscale.io/priority`")]
    named = re.findall(r"`([a-z]+)`", row.split("|")[3])
    assert named and set(named) <= set(PRIORITY_NAMES), named
