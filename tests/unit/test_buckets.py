"""Which latency targets a histogram's buckets can resolve, and how the decisions say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.buckets import KNOWN_BUCKETS_S, known_unresolved, unresolved
from controller.domain import (
    ConditionType,
    MetricsProfile,
    Reason,
    UnresolvedTarget,
    WorkloadMetrics,
)
from controller.policy.inputs import metrics_warnings
from controller.spec import parse_slo_spec
from sloscale import validate

V0 = dict(KNOWN_BUCKETS_S[MetricsProfile.VLLM])["vLLM V0 (v0.6.3)"]
V1 = dict(KNOWN_BUCKETS_S[MetricsProfile.VLLM])["vLLM V1"]

RESOLUTION = [
    pytest.param(0.8, V0, UnresolvedTarget(0.8, 0.0, 1.0), id="v0-below-first-bucket"),
    pytest.param(0.8, V1, None, id="v1-on-a-bound"),
    pytest.param(2.0, V0, UnresolvedTarget(2.0, 1.0, 2.5), id="v0-between-1-and-2.5"),
    pytest.param(4.0, V0, None, id="v0-between-2.5-and-5-is-2x"),
    pytest.param(90.0, V0, UnresolvedTarget(90.0, 60.0, None), id="v0-above-the-last"),
    pytest.param(0.25, V1, UnresolvedTarget(0.25, 0.0, 0.3), id="v1-below-0.3"),
    pytest.param(0.9, V1, None, id="v1-between-0.8-and-1"),
    pytest.param(1.0, (), UnresolvedTarget(1.0, 0.0, None), id="no-finite-bucket"),
]


@pytest.mark.parametrize(("target_s", "bounds", "expected"), RESOLUTION)
def test_unresolved(
    target_s: float, bounds: tuple[float, ...], expected: UnresolvedTarget | None
) -> None:
    assert unresolved(target_s, bounds) == expected


def test_known_buckets_name_the_versions_that_cannot_resolve() -> None:
    found = known_unresolved(MetricsProfile.VLLM, 0.8)
    assert [name for name, _ in found] == ["vLLM V0 (v0.6.3)"]
    assert known_unresolved(MetricsProfile.TGI, 0.8) == ()  # 1.5x apart everywhere
    assert known_unresolved(MetricsProfile.CUSTOM, 0.8) == ()  # nothing known


def test_an_unresolved_target_is_a_condition_on_every_decision() -> None:
    (c,) = metrics_warnings(WorkloadMetrics(unresolved_target=UnresolvedTarget(0.8, 0.0, 1.0)))
    assert (c.type, c.status, c.reason) == (
        ConditionType.SLI_RESOLVED,
        False,
        Reason.TARGET_UNRESOLVED,
    )
    assert "below the first finite bucket (1 s)" in c.message and "lower bound" in c.message
    assert metrics_warnings(WorkloadMetrics()) == ()


BASE = {"sloscale.io/enabled": "true", "sloscale.io/latency-target-ms": "800"}


@pytest.mark.parametrize("profile", ["triton", "vllm", "sglang"])
def test_model_is_taken_with_a_profile_that_names_models(profile: str) -> None:
    ann = {**BASE, "sloscale.io/metrics-profile": profile, "sloscale.io/model": "resnet50"}
    parsed = parse_slo_spec("ns/a", ann)
    assert not parsed.errors and parsed.spec is not None and parsed.spec.model == "resnet50"


@pytest.mark.parametrize("profile", ["http", "tgi"])
def test_model_is_refused_where_the_series_name_no_model(profile: str) -> None:
    ann = {**BASE, "sloscale.io/metrics-profile": profile, "sloscale.io/model": "x"}
    (error,) = parse_slo_spec("ns/a", ann).errors
    assert error.key == "sloscale.io/model" and "allowed only with" in error.message


def deployment(image: str, target_ms: str = "800") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
  namespace: llm
  annotations:
    sloscale.io/enabled: "true"
    sloscale.io/latency-target-ms: "{target_ms}"
    sloscale.io/metrics-profile: vllm
spec:
  template:
    spec:
      containers: [{{name: vllm, image: "{image}"}}]
"""


@pytest.mark.parametrize(
    ("image", "warned"),
    [
        pytest.param("vllm/vllm-openai:v0.6.3", True, id="v0.6.3"),
        pytest.param("vllm/vllm-openai:v0.10.2", False, id="v1-engine"),
        pytest.param("registry.local/llm:latest", True, id="unknown-version"),
    ],
)
def test_validate_warns_of_a_target_the_buckets_cannot_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], image: str, warned: bool
) -> None:
    manifest = tmp_path / "chat.yaml"
    manifest.write_text(deployment(image))
    assert validate.main([str(manifest)]) == validate.EXIT_OK  # a warning, not an error
    out = capsys.readouterr().out
    assert ("warning:" in out and "below the first finite bucket (1 s)" in out) is warned


def test_the_example_deployment_runs_a_vllm_whose_buckets_resolve_its_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = Path(__file__).resolve().parents[2] / "deploy/examples/vllm-deployment.yaml"
    assert validate.main([str(example)]) == validate.EXIT_OK
    assert "warning" not in capsys.readouterr().out
