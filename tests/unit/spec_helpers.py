"""Shared by the ``controller.spec`` tests (``test_spec_*``): the annotations of a workload
and parsing them with the checks every test makes.

Its asserts are rewritten by pytest like a test module's (``conftest.py`` registers it).
"""

from __future__ import annotations

from typing import Any

from controller.domain import SloSpec, SpecError
from controller.spec import ANNOTATION_PREFIX, ParseResult, format_errors, parse_slo_spec

P = ANNOTATION_PREFIX
WORKLOAD = "team-a/chat"
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
