"""``sloscale.io/latency-metric`` (#28 E9): which latency an SLO covers, where it can be read.

An LLM team's SLO is on time to first token or time per output token; a profile whose engine
exports no such histogram refuses it for that workload alone, with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.buckets import known_unresolved
from controller.domain import LatencyMetric, MetricsProfile
from sloscale import validate
from tests.unit.spec_helpers import P, ok_spec, only_error, parse

ACCEPTED = [
    pytest.param("vllm", "ttft", id="vllm-ttft"),
    pytest.param("vllm", "tpot", id="vllm-tpot"),
    pytest.param("sglang", "ttft", id="sglang-ttft"),
    pytest.param("sglang", "tpot", id="sglang-tpot"),
    pytest.param("tgi", "tpot", id="tgi-tpot"),
    pytest.param("http", "e2e", id="http-e2e"),
    pytest.param("triton", "e2e", id="triton-e2e"),
]


@pytest.mark.parametrize(("profile", "metric"), ACCEPTED)
def test_a_latency_metric_the_engine_exports_is_taken(profile: str, metric: str) -> None:
    spec = ok_spec({P + "metrics-profile": profile, P + "latency-metric": metric})
    assert spec.latency_metric is LatencyMetric(metric)


def test_the_default_is_end_to_end() -> None:
    assert ok_spec({}).latency_metric is LatencyMetric.E2E


REFUSED = [
    pytest.param("tgi", "ttft", "tgi exports no ttft histogram", id="tgi-has-no-ttft"),
    pytest.param("http", "ttft", "http exports no ttft histogram", id="http-ttft"),
    pytest.param("http", "tpot", "http exports no tpot histogram", id="http-tpot"),
    pytest.param("triton", "ttft", "triton exports no ttft histogram", id="triton-ttft"),
    pytest.param("custom", "ttft", "the latency-query is the signal", id="custom-ttft"),
]


@pytest.mark.parametrize(("profile", "metric", "why"), REFUSED)
def test_a_latency_metric_the_engine_does_not_export_is_refused(
    profile: str, metric: str, why: str
) -> None:
    extra = {P + "metrics-profile": profile, P + "latency-metric": metric}
    if profile == "custom":
        extra |= {P + "latency-query": "q", P + "rate-query": "r"}
    err = only_error(parse(extra))
    assert err.key == P + "latency-metric"
    assert err.value == metric
    assert f"latency-metric {metric} needs metrics-profile" in err.message
    assert why in err.message


def test_an_unknown_latency_metric_is_refused_with_the_choices() -> None:
    err = only_error(parse({P + "metrics-profile": "vllm", P + "latency-metric": "ttfb"}))
    assert err.key == P + "latency-metric"
    assert "e2e" in err.message and "ttft" in err.message and "tpot" in err.message


def test_the_bucket_check_applies_to_the_chosen_histogram() -> None:
    # 800 ms: below vLLM 0.6.3's first e2e bucket (1 s), but between TTFT bounds 0.75 and 1 s
    assert known_unresolved(MetricsProfile.VLLM, 0.8)
    assert not known_unresolved(MetricsProfile.VLLM, 0.8, LatencyMetric.TTFT)
    # 20 ms per output token: below every vLLM TPOT histogram's first bucket (10 ms is not)
    found = known_unresolved(MetricsProfile.VLLM, 0.005, LatencyMetric.TPOT)
    assert {name for name, _ in found} == {"vLLM V0 (v0.6.3)", "vLLM V1"}
    # SGLang's TTFT starts at 100 ms: a 50 ms TTFT target cannot be told
    (_, gap), *_ = known_unresolved(MetricsProfile.SGLANG, 0.05, LatencyMetric.TTFT)
    assert gap.above_s == 0.1


def test_validate_reads_the_chosen_histogram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "chat.yaml"
    manifest.write_text(
        """apiVersion: apps/v1
kind: Deployment
metadata: {name: chat, namespace: llm, annotations: {
  sloscale.io/enabled: "true", sloscale.io/latency-target-ms: "50",
  sloscale.io/metrics-profile: sglang, sloscale.io/latency-metric: ttft}}
spec: {template: {spec: {containers: [{name: s, image: lmsysorg/sglang:latest}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gen, namespace: llm, annotations: {
  sloscale.io/enabled: "true", sloscale.io/latency-target-ms: "500",
  sloscale.io/metrics-profile: tgi, sloscale.io/latency-metric: ttft}}
"""
    )
    assert validate.main([str(manifest)]) == validate.EXIT_INVALID
    out = capsys.readouterr()
    text = out.out + out.err
    assert "with SGLang TTFT buckets" in text  # a warning for chat
    assert "llm/gen" in text and "tgi exports no ttft histogram" in text  # gen alone refused
