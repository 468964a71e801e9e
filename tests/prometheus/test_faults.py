"""Faults between the controller and a real Prometheus: it holds, says so, and recovers.

The whole path is real: the synthetic exporter, Prometheus scraping it every 0.25 s, the
source, the control loop, its ``/metrics`` and API. Each fault must turn the workload's
decision into ``MetricsUnavailable`` (a hold: nothing is applied), show it on the API and in
``sloscale_metrics_unavailable_total``, and clear once the fault does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from actuators.prometheus import (
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetricsSource,
    SnapshotTap,
    SourceSettings,
)
from controller.domain import Decision, Reason
from controller.loop import Controller, LoopConfig
from sloscale.api import create_app
from sloscale.telemetry import MetricsRecorder
from tests.fakes import FakeClock, FakeCluster, slo_annotations
from tests.prometheus.synthetic import Pod, Synthetic
from tests.support.exporters import DelayProxy, TextExporter
from tests.support.prometheus import PrometheusServer, require_prometheus

SCRAPE_S = 0.25
WINDOW_S = 1.5
QUERY_TIMEOUT_S = 0.8
WEB = "default/web"
WEB_PODS = ("web-0", "web-1")  # the pods FakeCluster reports for its two replicas


@dataclass
class Rig:
    synthetic: Synthetic
    exporter: TextExporter
    prom: PrometheusServer
    proxy: DelayProxy
    cluster: FakeCluster
    clock: FakeClock
    source: PrometheusMetricsSource
    controller: Controller
    api: TestClient

    def tick(self) -> Decision:
        self.clock.t = time.time()
        report = self.controller.tick()
        return next(d for d in report.decisions if d.target == WEB)

    def tick_until(self, ok: Callable[[Decision], bool], timeout_s: float = 10.0) -> Decision:
        deadline = time.monotonic() + timeout_s
        while True:
            decision = self.tick()
            if ok(decision) or time.monotonic() > deadline:
                return decision
            time.sleep(SCRAPE_S)

    def reads_full(self, d: Decision) -> bool:
        """Healthy, on a full window: right after a start or a gap, rate() reads low."""
        rate = self.api.get(f"/api/v1/workloads/{WEB}").json()["metrics"]["request_rate_rps"]
        return healthy(d) and rate is not None and abs(rate - 20.0) < 2.0

    def unavailable_total(self) -> float:
        text = self.api.get("/metrics").text
        for line in text.splitlines():
            if line.startswith(f'sloscale_metrics_unavailable_total{{workload="{WEB}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def held(d: Decision) -> bool:
    return d.reason is Reason.METRICS_UNAVAILABLE


def healthy(d: Decision) -> bool:
    return d.reason is not Reason.METRICS_UNAVAILABLE


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    binaries = require_prometheus()
    synthetic = Synthetic(  # both ready pods of web report: a full reading of 20 rps
        http=[Pod("default", p, 10.0, latency_max_s=0.2) for p in WEB_PODS],
        dcgm={p: ("default", 50.0, 9000.0) for p in WEB_PODS},
    )
    workdir: Path = tmp_path_factory.mktemp("faults")
    with (
        TextExporter(synthetic.render) as exporter,
        PrometheusServer(
            binaries, workdir, targets=[exporter.address], scrape_interval_s=SCRAPE_S
        ) as prom,
        DelayProxy(prom.url) as proxy,
    ):
        clock = FakeClock(time.time())
        cluster = FakeCluster(clock)
        cluster.add("web", slo_annotations(), replicas=2, slice_pct=50)
        tap = SnapshotTap(cluster)
        client = PrometheusClient(PrometheusConfig(proxy.url, timeout_s=QUERY_TIMEOUT_S))
        source = PrometheusMetricsSource(
            client,
            SourceSettings(window_s=WINDOW_S, max_age_s=WINDOW_S, query_timeout_s=QUERY_TIMEOUT_S),
            pods=tap.pod_map,
        )
        recorder = MetricsRecorder()
        controller = Controller(
            tap, source, clock, LoopConfig(interval_s=1.0), recorders=[recorder]
        )
        with TestClient(create_app(controller, recorder)) as api:
            rig = Rig(synthetic, exporter, prom, proxy, cluster, clock, source, controller, api)
            prom.wait_for("up == 1")
            # the source's last full reading is the 20 rps a partial one is sized on: not a
            # first reading from a window Prometheus had only started to fill
            assert rig.reads_full(rig.tick_until(rig.reads_full))
            yield rig
        source.close()


def assert_holds_and_reports(rig: Rig, before_total: float) -> Decision:
    decision = rig.tick_until(held)
    assert held(decision), decision
    assert decision.desired in (None, decision.current)  # a hold, never a scale-down
    assert all(not p.scale for p in rig.cluster.applied[-1:]) or decision.current == (
        decision.desired
    )
    api = rig.api.get(f"/api/v1/workloads/{WEB}").json()
    assert api["last_decision"]["reason"] == "MetricsUnavailable"
    assert rig.unavailable_total() > before_total
    return decision


def assert_recovers(rig: Rig) -> None:
    decision = rig.tick_until(rig.reads_full)
    assert healthy(decision), decision
    api = rig.api.get(f"/api/v1/workloads/{WEB}").json()
    assert api["metrics"]["request_rate_rps"] == pytest.approx(20.0, rel=0.1)


def test_missing_series_holds_then_recovers(rig: Rig) -> None:
    before = rig.unavailable_total()
    rig.synthetic.missing.update(WEB_PODS)
    try:
        assert_holds_and_reports(rig, before)
        # once the window holds none of their samples, the rate is absent, never 0 or low
        time.sleep(WINDOW_S)
        assert held(rig.tick())
        assert rig.api.get(f"/api/v1/workloads/{WEB}").json()["metrics"]["request_rate_rps"] is None
    finally:
        rig.synthetic.missing.clear()
    assert_recovers(rig)


def test_nan_holds_then_recovers(rig: Rig) -> None:
    before = rig.unavailable_total()
    rig.synthetic.nan.add("web-0")
    try:
        assert_holds_and_reports(rig, before)
    finally:
        rig.synthetic.nan.clear()
    assert_recovers(rig)


def test_stale_target_holds_then_recovers(rig: Rig) -> None:
    """The exporter stops answering: Prometheus marks its series stale; nothing reads as 0."""
    before = rig.unavailable_total()
    rig.exporter.failing = True
    try:
        assert_holds_and_reports(rig, before)
        time.sleep(WINDOW_S)  # gauges are read with last_over_time over max_age_s
        assert held(rig.tick())
        metrics = rig.api.get(f"/api/v1/workloads/{WEB}").json()["metrics"]
        assert metrics["gpu_memory_mib"] is None  # the DCGM gauge went stale too
    finally:
        rig.exporter.failing = False
    assert_recovers(rig)


def test_slow_query_degrades_only_what_it_feeds(rig: Rig) -> None:
    before = rig.unavailable_total()
    rig.proxy.slow_match = "http_server_request_duration_seconds_bucket"
    rig.proxy.delay_s = QUERY_TIMEOUT_S * 3
    try:
        assert_holds_and_reports(rig, before)
        report = rig.controller.last_report
        assert report is not None
        assert any("http:buckets" in e and "timed out" in e for e in report.errors)
        assert not any("http:rate" in e for e in report.errors)
        metrics = rig.api.get(f"/api/v1/workloads/{WEB}").json()["metrics"]
        assert metrics["latency_ms"] is None  # fed by the slow query
        assert metrics["request_rate_rps"] == pytest.approx(20.0, rel=0.1)  # not
        assert metrics["gpu_memory_mib"] == pytest.approx(9000.0)
    finally:
        rig.proxy.slow_match = None
    assert_recovers(rig)


def test_prometheus_stopped_mid_run_holds_then_recovers(rig: Rig) -> None:
    before = rig.unavailable_total()
    rig.prom.stop()
    try:
        decision = assert_holds_and_reports(rig, before)
        assert decision.reason is Reason.METRICS_UNAVAILABLE
        report = rig.controller.last_report
        # through the test proxy an unreachable Prometheus is a 502 (directly: "cannot connect")
        assert report is not None and any("HTTP 502" in e for e in report.errors)
        assert rig.api.get("/readyz").status_code == 200  # the loop itself keeps ticking
    finally:
        rig.prom.start()  # same port, same TSDB
    assert_recovers(rig)
