"""The emulator's gateway: one queue, oldest request first, to the next free ready pod."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from loadtests.emulator import (
    ACTIVE_NAME,
    VLLM_HISTOGRAM,
    VLLM_TTFT,
    Emulator,
    EmulatorConfig,
    render_metrics,
)

CONFIG = EmulatorConfig(
    namespace="ns",
    name="web",
    t0_s=0.02,  # 20 ms per request at s >= s_sat
    s_sat_pct=50.0,
    service_cv=0.0,  # deterministic, so the arithmetic below is exact up to scheduling
    memory_mib=1024,
    cards=4,
    card_memory_mib=81920,
    cold_start_s=0.1,
    replicas=1,
    slice_pct=50,
    annotations={},
    gateway_timeout_s=2.0,
)


async def _burst(em: Emulator, n: int) -> list[tuple[int, dict[str, object]]]:
    admit = asyncio.create_task(em.admit_forever(0.005))
    try:
        return await asyncio.gather(*(em.serve() for _ in range(n)))
    finally:
        admit.cancel()


def test_one_pod_serves_a_burst_one_at_a_time_oldest_first() -> None:
    em = Emulator(CONFIG)
    results = asyncio.run(_burst(em, 10))
    latencies = [float(body["latency_ms"]) for _, body in results]  # type: ignore[arg-type]
    assert all(status == 200 for status, _ in results)
    assert latencies == sorted(latencies)  # FIFO: the k-th waits for the k-1 before it
    assert latencies[-1] >= 10 * 20.0 * 0.95
    assert em.active == 0


def test_a_pod_that_becomes_ready_takes_from_the_backlog_at_once() -> None:
    async def run() -> float:
        em = Emulator(CONFIG)
        start = time.time()
        burst = asyncio.create_task(_burst(em, 30))  # 600 ms of work for one pod
        await asyncio.sleep(0.01)
        em.deployment.apply(3, 50, time.time())  # two more pods, ready after 100 ms
        await burst
        return time.time() - start

    # one pod alone: 600 ms; with two more from 110 ms on: ~110 + (600 - 110) / 3 = 270 ms
    assert asyncio.run(run()) < 0.45


def test_no_free_pod_within_the_gateway_timeout_is_a_503() -> None:
    em = Emulator(replace(CONFIG, replicas=0, gateway_timeout_s=0.1))
    ((status, body),) = asyncio.run(_burst(em, 1))
    assert status == 503 and "timeout" in str(body["error"])
    assert em.log.failed == 1 and em.active == 0


def test_requests_in_flight_are_exported() -> None:
    em = Emulator(CONFIG)
    text = render_metrics(CONFIG, em.log, {}, {}, active_requests=7)
    assert f'{ACTIVE_NAME}{{namespace="ns",deployment="web"}} 7' in text
    assert f"# TYPE {ACTIVE_NAME} gauge" in text


LLM = replace(
    CONFIG,
    engine="vllm",
    s_sat_pct=100.0,
    slice_pct=100,
    annotations={"sloscale.io/latency-metric": "ttft"},
    decode_s_per_token=0.004,
    prefill_s_per_token=0.00001,
)


def test_a_vllm_pod_batches_and_exports_time_to_first_token() -> None:
    async def run() -> list[tuple[int, dict[str, object]]]:
        em = Emulator(LLM)
        step = asyncio.create_task(em.step_forever(0.001))
        try:
            return await _burst(em, 8)
        finally:
            step.cancel()

    em_results = asyncio.run(run())
    assert all(status == 200 for status, _ in em_results)
    ttft = [float(b["ttft_ms"]) for _, b in em_results]  # type: ignore[arg-type]
    e2e = [float(b["latency_ms"]) for _, b in em_results]  # type: ignore[arg-type]
    # eight requests in one batch: all answer in about the time of the longest alone
    # (prefills 5-50 ms each, then at most 59 steps of 4 ms x (1 + 0.1 x 7) = 0.4 s), far less
    # than one after the other; each first token comes before its answer
    assert max(e2e) < 900.0
    assert all(t < e for t, e in zip(ttft, e2e, strict=True))
    em = Emulator(LLM)
    em.log.add_ttft(0.2)
    em.log.add(0.0, 0.2, 1.5)
    text = em.metrics()
    assert 'vllm:time_to_first_token_seconds_bucket{namespace="ns",deployment="web",' in text
    assert 'model_name="emulated-llm",le="0.2025"} 1' in text  # 0.2 s: first bucket above
    assert "vllm:e2e_request_latency_seconds_count" in text
    assert em.log.latency_s == [0.2] and em.log.e2e_s == [1.5]


def _count(text: str, family: str) -> float:
    (line,) = [x for x in text.splitlines() if x.startswith(f"{family}_count")]
    return float(line.rsplit(" ", 1)[1])


def test_time_to_first_token_is_observed_when_the_first_token_comes() -> None:
    # as vLLM's output processor does: a scrape between a request's first token and its last
    # counts its TTFT already (the e2e histogram only once the answer is complete)
    async def run() -> tuple[str, str, tuple[int, dict[str, object]]]:
        em = Emulator(LLM)
        em._prompt, em._output = (1000,), (150,)  # first token at 10 ms, the answer at ~0.6 s
        admit = asyncio.create_task(em.admit_forever(0.005))
        step = asyncio.create_task(em.step_forever(0.001))
        try:
            request = asyncio.create_task(em.serve())
            await asyncio.sleep(0.2)
            during = em.metrics()
            result = await request
            return during, em.metrics(), result
        finally:
            admit.cancel()
            step.cancel()

    during, after, (status, body) = asyncio.run(run())
    assert status == 200 and float(body["latency_ms"]) > 400.0  # type: ignore[arg-type]
    assert _count(during, VLLM_TTFT) == 1 and _count(during, VLLM_HISTOGRAM) == 0
    assert _count(after, VLLM_TTFT) == 1 and _count(after, VLLM_HISTOGRAM) == 1  # once
    ttft_sum_s = float(after.split(f"{VLLM_TTFT}_sum")[1].split()[1])
    assert ttft_sum_s == pytest.approx(float(body["ttft_ms"]) / 1000.0)  # type: ignore[arg-type]
