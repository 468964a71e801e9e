"""An LLM workload with a TTFT SLO is sized by its time to first token (#28 E9).

The simulator's token-aware service time (prefill per prompt token, decode per output token,
lengths from the Azure LLM code trace) exposes the chosen latency; the capacity model learns
it. In the ``llm-ttft`` demo two twins share a model, a load and a 1 s p95 target: on time to
first token it is met, end to end (p95 ~1.6 s even idle) it cannot be.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from actuators.prometheus.profiles import VLLM_TTFT
from actuators.sim.exporter import render_openmetrics
from actuators.sim.model import ModelParams
from actuators.sim.queueing import Arrivals, serve_fifo
from actuators.sim.tokens import AZURE_CODE_TRACE, TokenProfile, load_token_lengths
from sloscale.demo import DemoOptions, build_demo, summarise

TRACES = Path(os.environ.get("SLOSCALE_TRACES_DIR", "../shared/traces"))
needs_trace = pytest.mark.skipif(
    not (TRACES / AZURE_CODE_TRACE).exists(), reason=f"{AZURE_CODE_TRACE} not in {TRACES}"
)


def test_token_work_is_unit_mean_and_prefill_is_its_prompt_share() -> None:
    tokens = TokenProfile((1000, 0), (10, 40), prefill_s_per_token=0.001, decode_s_per_token=0.01)
    d = tokens.draw(np.random.default_rng(0), 20_000)
    # work per request: 1 + 0.1 = 1.1 s, or 0 + 0.4 = 0.4 s; mean 0.75
    assert set(np.round(d.work, 6)) == {round(1.1 / 0.75, 6), round(0.4 / 0.75, 6)}
    assert abs(d.work.mean() - 1.0) < 0.02
    assert set(np.round(d.prefill_share, 6)) == {round(1.0 / 1.1, 6), 0.0}


def test_the_default_model_draws_no_tokens() -> None:
    assert ModelParams(t0_s=0.1, s_sat_pct=50).tokens is None


def test_fifo_reports_each_request_wait_in_its_order() -> None:
    arrivals = Arrivals(np.array([0.0, 0.1]), np.array([0.1, 0.2]), np.array([1.0, 1.0]))
    r = serve_fifo(0.0, 10.0, arrivals, service_s=np.array([1.0]), residual_s=np.zeros(1))
    assert r.order is not None and r.wait_s is not None
    assert r.order.tolist() == [0, 1]
    assert np.allclose(r.wait_s, [0.0, 0.9])  # the second waits for the first: 1.0 - 0.1
    assert np.allclose(r.latency_s, [1.0, 1.9])


@needs_trace
def test_the_azure_trace_gives_prompt_and_output_lengths() -> None:
    prompt, output = load_token_lengths(TRACES / AZURE_CODE_TRACE)
    assert len(prompt) == len(output) > 8000
    assert 1500 < float(np.mean(prompt)) < 2500 and 20 < float(np.mean(output)) < 40


@needs_trace
def test_a_ttft_slo_is_sized_by_time_to_first_token() -> None:
    options = DemoOptions(hours=2.0, seed=1, serve=False, progress=False, scenario="llm-ttft")
    run = build_demo(options)
    report = run.run(options.hours)
    rows = {r.name: r for r in summarise(report, run.world)}
    ttft, e2e = rows["llm/chat-ttft"], rows["llm/chat-e2e"]
    assert ttft.slo_attainment is not None and e2e.slo_attainment is not None
    assert ttft.met  # 95 % of first tokens within 2 s (seed 1: 96.8 %)
    # the same target end to end takes far more cards (seed 1: 3.9 vs 14.8 GPU-h; seeds 2 and
    # 3: 3.5x and 3.4x): sizing the TTFT twin by its end-to-end latency would cost that much
    assert e2e.gpu_hours > 2.5 * ttft.gpu_hours
    # and near what it needs: a batching card's knee is learnt, not its card-seconds per
    # request (one request at a time it looked full early: 6.4 GPU-h, every first token
    # within the target, where the objective is 95 %; #28)
    assert ttft.gpu_hours < 4.5
    ready = {k: np.mean([m.ready_replicas for m in _minutes(run, k)]) for k in rows}
    # about 7.2 vs 1.9 (10 vs 1.8 before the budget was paced; 3 before batching was modelled)
    assert ready["llm/chat-e2e"] > 3 * ready["llm/chat-ttft"]
    # the controller read time to first token for chat-ttft: well under its e2e twin's
    ttft_ms = [m.latency_ms for m in _minutes(run, "llm/chat-ttft") if m.latency_ms]
    e2e_ms = [m.latency_ms for m in _minutes(run, "llm/chat-e2e") if m.latency_ms]
    assert float(np.median(ttft_ms)) < 0.5 * float(np.median(e2e_ms))  # ~0.37 vs ~1.7 s
    # what a real Prometheus scraping the simulator would read it from: vLLM's TTFT histogram,
    # written for the TTFT twin alone
    text = render_openmetrics(run.cluster.scrape())  # type: ignore[attr-defined]
    ttft_counts = [x for x in text.splitlines() if x.startswith(f"{VLLM_TTFT}_count")]
    assert len(ttft_counts) == 1 and 'deployment="chat-ttft"' in ttft_counts[0]


def _minutes(run: object, key: str) -> list:  # type: ignore[type-arg]
    return list(run.cluster._deployments[key].timeline)  # type: ignore[attr-defined]
