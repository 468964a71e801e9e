"""The metrics path: Prometheus-style reads over scraped counters, and the None rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.exporter import (
    LATENCY_BUCKETS_S,
    Scrape,
    WorkloadExporter,
    latency_bounds_s,
    render_openmetrics,
)
from actuators.sim.metrics import SimMetricsSource, fraction_at_or_below, histogram_quantile
from controller.domain import SloSpec
from controller.ports import ObserveTarget
from tests.sim.worlds import MODEL_MIB, deployment, ref, world

# ---- histogram arithmetic ------------------------------------------------------------------

BOUNDS = (0.1, 0.2, 0.4)
CUMULATIVE = (10.0, 30.0, 40.0, 40.0)  # 10 in (0, .1], 20 in (.1, .2], 10 in (.2, .4], 0 above

QUANTILES = {
    # rank = q * 40; interpolate within the bucket holding the rank
    "median in the second bucket": (0.5, 0.15),  # rank 20: 0.1 + 0.1 * (20 - 10) / 20
    "first bucket starts at zero": (0.125, 0.05),  # rank 5: 0 + 0.1 * 5 / 10
    "top of the last bucket": (1.0, 0.4),  # rank 40: 0.2 + 0.2 * 10 / 10
}


@pytest.mark.parametrize(("q", "expected"), QUANTILES.values(), ids=QUANTILES)
def test_histogram_quantile_interpolates_within_buckets(q: float, expected: float) -> None:
    assert histogram_quantile(q, BOUNDS, CUMULATIVE) == pytest.approx(expected)


def test_histogram_quantile_in_the_inf_bucket_reads_the_largest_bound() -> None:
    assert histogram_quantile(0.99, BOUNDS, (10.0, 30.0, 40.0, 50.0)) == pytest.approx(0.4)


def test_empty_histogram_has_no_quantile_and_no_ratio() -> None:
    assert histogram_quantile(0.99, BOUNDS, (0.0, 0.0, 0.0, 0.0)) is None
    assert fraction_at_or_below(0.15, BOUNDS, (0.0, 0.0, 0.0, 0.0)) is None


FRACTIONS = {
    "threshold inside a bucket": (0.15, 0.5),  # (10 + 20 * 0.5) / 40
    "threshold on a bound": (0.2, 0.75),  # 30 / 40
    "threshold above every bound": (1.0, 1.0),
    "threshold in the first bucket": (0.05, 0.125),  # 10 * 0.5 / 40
}


@pytest.mark.parametrize(("threshold", "expected"), FRACTIONS.values(), ids=FRACTIONS)
def test_good_ratio_interpolates_within_the_threshold_bucket(
    threshold: float, expected: float
) -> None:
    assert fraction_at_or_below(threshold, BOUNDS, CUMULATIVE) == pytest.approx(expected)


def test_fine_buckets_track_exact_quantiles_and_ratios() -> None:
    rng = np.random.default_rng(3)
    latency = rng.lognormal(math.log(0.08), 0.6, 100_000)
    ex = WorkloadExporter("t", "web")
    ex.observe_latencies(latency)
    cumulative = np.cumsum(ex.bucket_counts)
    for q in (0.5, 0.9, 0.99):
        exact = float(np.quantile(latency, q))
        # buckets grow by 15 %: interpolation error is a small part of one bucket
        assert histogram_quantile(q, LATENCY_BUCKETS_S, cumulative) == pytest.approx(
            exact, rel=0.02
        )
    for threshold in (0.05, 0.1, 0.2):
        exact = float(np.mean(latency <= threshold))
        assert fraction_at_or_below(threshold, LATENCY_BUCKETS_S, cumulative) == pytest.approx(
            exact, abs=0.003
        )


def test_buckets_run_from_1ms_to_a_minute() -> None:
    assert LATENCY_BUCKETS_S[0] == 0.001
    assert 60.0 <= LATENCY_BUCKETS_S[-1] < 70.0
    ratios = np.divide(LATENCY_BUCKETS_S[1:], LATENCY_BUCKETS_S[:-1])
    assert np.all((ratios > 1.14) & (ratios < 1.16))


# ---- observe ------------------------------------------------------------------------------


def target(name: str = "web", target_ms: float = 200.0, quantile: float = 0.99) -> ObserveTarget:
    return ObserveTarget(ref(name), SloSpec(latency_target_ms=target_ms, latency_quantile=quantile))


def running(rate_rps: float = 20.0, seconds: float = 120.0) -> SimulatedCluster:
    c = SimulatedCluster(
        world(deployment("web", replicas=2, rate_rps=rate_rps), deployment("idle", rate_rps=0.0))
    )
    for _ in range(int(seconds // 15)):
        c.advance(15.0)
    return c


def test_observe_reads_windowed_rates_and_quantiles() -> None:
    c = running(rate_rps=20.0)
    src = SimMetricsSource(c.metrics_history, window_s=60.0)
    m = src.observe([target()], c.now()).get("t/web")
    # 20 rps over 60 s = 1200 requests; Poisson sd ~ 35
    assert m.request_rate_rps == pytest.approx(20.0, rel=0.12)
    # 10 rps per replica, mu = 20 rps (t0 = 50 ms at s_sat 50 %): p99 well under 1 s
    assert m.latency_ms is not None and 50.0 < m.latency_ms < 1000.0
    assert m.good_ratio is not None and 0.8 < m.good_ratio <= 1.0
    # busy ~ rho = 0.5; used/allocated equal busy since slice = s_sat
    assert m.gpu_busy == pytest.approx(0.5, abs=0.1)
    assert m.gpu_util == pytest.approx(m.gpu_busy)
    assert m.gpu_memory_mib == MODEL_MIB
    r = c.report().workload("t/web")
    assert m.data_samples == pytest.approx(r.requests - r.failed_requests - r.timed_out_requests)


def test_idle_workload_reads_zero_rate_and_no_latency() -> None:
    c = running()
    m = SimMetricsSource(c.metrics_history).observe([target("idle")], c.now()).get("t/idle")
    assert m.request_rate_rps == 0.0  # the counter is there and did not move: a real zero
    assert m.latency_ms is None  # nothing was measured
    assert m.good_ratio is None
    assert m.gpu_util == 0.0


def test_a_single_scrape_is_not_a_rate() -> None:
    c = SimulatedCluster(world(deployment("web", rate_rps=20.0)))
    m = SimMetricsSource(c.metrics_history).observe([target()], c.now()).get("t/web")
    assert m.request_rate_rps is None
    assert m.latency_ms is None
    assert m.gpu_memory_mib == MODEL_MIB  # a gauge needs one sample


def test_unknown_workload_is_unavailable_not_zero() -> None:
    c = running()
    m = SimMetricsSource(c.metrics_history).observe([target("ghost")], c.now()).get("t/ghost")
    assert m.request_rate_rps is None
    assert m.gpu_util is None
    assert m.data_samples is None


FAULTS = {
    "series missing": "inject_missing",
    "series NaN": "inject_nan",
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS)
def test_missing_or_nan_series_read_as_none_never_zero(fault: str) -> None:
    c = running()
    src = SimMetricsSource(c.metrics_history)
    getattr(src, fault)("t/web")
    m = src.observe([target(), target("idle")], c.now())
    web = m.get("t/web")
    assert web.request_rate_rps is None
    assert web.latency_ms is None
    assert web.good_ratio is None
    assert web.gpu_util is None
    assert web.gpu_memory_mib is None
    assert not web.core_available()
    assert m.get("t/idle").request_rate_rps == 0.0  # other workloads unaffected
    assert m.errors == ()
    assert src.empty_results_total >= 7
    src.clear_faults("t/web")
    assert src.observe([target()], c.now()).get("t/web").core_available()


def test_fault_can_hit_one_signal() -> None:
    c = running()
    src = SimMetricsSource(c.metrics_history)
    src.inject_nan("t/web", signals=["latency"])
    m = src.observe([target()], c.now()).get("t/web")
    assert m.latency_ms is None
    assert m.request_rate_rps is not None
    with pytest.raises(ValueError, match="unknown signals"):
        src.inject_missing("t/web", signals=["p99"])


def test_failing_source_returns_errors_and_never_raises() -> None:
    c = running()
    src = SimMetricsSource(c.metrics_history)
    src.fail_next(2)
    for _ in range(2):
        obs = src.observe([target()], c.now())
        assert obs.errors
        assert obs.by_workload == {}
        assert not obs.get("t/web").core_available()
    assert src.observe([target()], c.now()).errors == ()


def test_stale_window_is_unavailable() -> None:
    c = running()
    src = SimMetricsSource(c.metrics_history, window_s=60.0)
    m = src.observe([target()], c.now() + 600.0).get("t/web")  # no scrape in the window
    assert m.request_rate_rps is None


# ---- exposition ---------------------------------------------------------------------------


def test_openmetrics_exposition_parses_and_matches_the_counters() -> None:
    c = running()
    scrape = c.scrape()
    text = render_openmetrics(scrape)
    assert text.endswith("# EOF\n")
    parsed = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    families = {f.name: f for f in parsed}
    hist = families["http_server_request_duration_seconds"]
    web = [s for s in hist.samples if s.labels.get("deployment") == "web"]
    count = next(s.value for s in web if s.name.endswith("_count"))
    inf_bucket = next(s.value for s in web if s.labels.get("le") == "+Inf")
    assert count == inf_bucket == scrape.series["t/web"].requests_total
    buckets = [s for s in web if s.name.endswith("_bucket")]
    assert len(buckets) == len(LATENCY_BUCKETS_S) + 2  # the standard bounds, 200 ms, +Inf
    memory = families["sloscale_sim_gpu_memory_used_mib"]
    assert {s.labels["pod"] for s in memory.samples if s.labels["deployment"] == "web"} == set(
        scrape.series["t/web"].gpu_memory_mib_by_pod
    )


def test_an_llm_writes_its_ttft_histogram_under_vllms_name() -> None:
    """A real Prometheus scraping the simulator sees the signal a TTFT SLO is judged on."""
    chat = WorkloadExporter("llm", "chat", latency_bounds_s([2.0]))
    chat.signal_metric = "ttft"
    chat.observe_latencies(np.array([0.9, 1.6, 2.5, math.inf]))
    chat.observe_signal(np.array([0.2, 0.4, 2.1, math.inf]))  # the failed one: no first token
    plain = WorkloadExporter("llm", "web")
    plain.observe_latencies(np.array([0.1]))
    scrape = Scrape(60.0, {"llm/chat": chat.sample(), "llm/web": plain.sample()})
    text = render_openmetrics(scrape)
    families = {f.name: f for f in text_string_to_metric_families(text)}  # type: ignore[no-untyped-call]
    ttft = families["vllm:time_to_first_token_seconds"]
    assert (ttft.type, ttft.unit) == ("histogram", "seconds")
    assert {s.labels["deployment"] for s in ttft.samples} == {"chat"}  # an e2e SLO: none
    assert {s.labels["model_name"] for s in ttft.samples} == {"chat"}
    value = {(s.name, s.labels.get("le")): s.value for s in ttft.samples}
    assert value[("vllm:time_to_first_token_seconds_bucket", "2.0")] == 2  # at its target
    assert value[("vllm:time_to_first_token_seconds_bucket", "+Inf")] == 3
    assert value[("vllm:time_to_first_token_seconds_count", None)] == 3
    assert value[("vllm:time_to_first_token_seconds_sum", None)] == pytest.approx(2.7)
    assert "vllm:time_per_output_token_seconds" not in families
    # the end-to-end histogram is written as before, every request in it
    http = families["http_server_request_duration_seconds"]
    assert sum(s.value for s in http.samples if s.name.endswith("_count")) == 5


def test_each_workload_exports_a_bucket_at_its_own_target() -> None:
    """200 ms is not a standard bound (0.1917, 0.2204): the exporter adds it, so a real
    Prometheus reads the SLI exactly and nothing warns that the target is not a bound."""
    assert not any(math.isclose(b, 0.2) for b in LATENCY_BUCKETS_S)
    c = running()
    series = c.scrape().series["t/web"]
    assert 0.2 in series.bounds_s
    assert 'deployment="web",le="0.2"}' in render_openmetrics(c.scrape())
    at = series.bounds_s.index(0.2)
    below, here, above = series.latency_buckets[at - 1 : at + 2]
    assert below <= here <= above


def test_the_metrics_path_reads_the_standard_bounds_as_before() -> None:
    """The bench's and demo's readings do not see the extra bucket: the same numbers as an
    exporter counting on the standard bounds alone."""
    latencies = np.random.default_rng(3).exponential(0.15, 5000)
    plain = WorkloadExporter("t", "web")
    extra = WorkloadExporter("t", "web", latency_bounds_s([0.2, 0.1]))
    for ex in (plain, extra):
        ex.observe_latencies(latencies)
    with_target = extra.sample()
    assert len(with_target.latency_buckets) == len(LATENCY_BUCKETS_S) + 3
    assert with_target.standard(with_target.latency_buckets) == plain.sample().latency_buckets
    at = with_target.bounds_s.index(0.2)
    assert with_target.latency_buckets[at] == np.count_nonzero(latencies <= 0.2)
