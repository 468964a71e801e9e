"""``sloscale run --cluster sim``: the real loop reading a real Prometheus that scrapes the sim."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

import sloscale.run
from actuators.sim.scenarios import demo_world
from controller.domain import Reason
from controller.report import Recorder, TickReport
from sloscale.run import RunOptions, run
from tests.support.prometheus import PrometheusServer, free_port, require_prometheus


class Keep(Recorder):
    def __init__(self) -> None:
        self.reports: list[TickReport] = []

    def record(self, report: TickReport) -> None:
        self.reports.append(report)


def test_run_reads_the_simulated_workloads_through_prometheus(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulated world runs until Prometheus holds a full window of it, as a cluster runs
    before its controller starts: the first tick already reads the load.

    Before, the loop ticked from the start: held at first (nothing scraped), then read the rate
    of series the window covered in part (a third of the load or less) against GPU gauges that
    read it all, learnt a cost per request several times the truth, found that no slice meets
    the target even idle, and rolled services onto slices the pool could not place."""
    binaries = require_prometheus()
    sim_port = free_port()
    keep = Keep()
    err = io.StringIO()
    window_s = 4.0
    with PrometheusServer(
        binaries, tmp_path, targets=[f"127.0.0.1:{sim_port}"], scrape_interval_s=0.25
    ) as prom:
        options = RunOptions(
            prometheus_url=prom.url,
            interval_s=1.0,
            window_s=window_s,
            query_timeout_s=2.0,
            serve=False,
            sim_metrics_port=sim_port,
            sim_step_s=0.25,
            duration_s=16.0,  # Prometheus picks a new target up within 5 s, then the window
        )
        with caplog.at_level(logging.WARNING, logger="sloscale"):
            assert run(options, err, recorders=[keep]) == 0
    said = err.getvalue()
    assert "Prometheus holds a full window after" in said, said
    # the simulator exports a bucket at each workload's own target: nothing to interpolate
    logged = [r.getMessage() for r in caplog.records]
    assert not [line for line in logged if "bucket bound" in line], logged
    # it serves dcgm-exporter's gauges and not HAMi's, a complete setup: no warning about it
    assert not [line for line in logged if "hami" in line], logged
    assert len(keep.reports) >= 3
    last = keep.reports[-1]
    assert last.workloads
    read = [w for w in last.workloads if w.metrics.request_rate_rps is not None]
    assert read, "no workload's rate came through Prometheus"
    assert all(w.metrics.request_rate_rps > 0 for w in read)  # type: ignore[operator]
    assert any(w.metrics.gpu_memory_mib for w in read)  # DCGM-named gauges from the sim
    reasons = {d.reason for d in last.decisions}
    assert reasons - {Reason.METRICS_UNAVAILABLE}, reasons
    # the first tick reads every workload over a whole window: the load, sane latencies
    first = keep.reports[0]
    assert len(first.workloads) == 3
    assert not [d for d in first.decisions if d.reason is Reason.METRICS_UNAVAILABLE]
    loads = {d.ref.key: d.load for d in demo_world(seed=options.seed).deployments}
    t = first.time_s
    expected = sum(float(loads[w.key].rates(t - window_s, t, window_s)[0]) for w in first.workloads)
    rates = [w.metrics.request_rate_rps for w in first.workloads]
    assert None not in rates
    read_rps = sum(r for r in rates if r is not None)
    assert read_rps > 0.6 * expected, (read_rps, expected)  # a partial window: a third or less
    for w in first.workloads:
        assert w.metrics.latency_ms is not None and w.metrics.latency_ms < 5000.0, w
        assert w.metrics.good_ratio is not None and w.metrics.good_ratio > 0.5, w


def test_run_starts_the_loop_anyway_when_prometheus_never_holds_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Prometheus that does not scrape the simulator: the warm-up gives up, saying where it
    waited for, and the loop holds every workload (metrics unavailable), never scaling."""
    binaries = require_prometheus()
    monkeypatch.setattr(sloscale.run, "WARM_UP_SLACK_S", 1.0)
    keep = Keep()
    err = io.StringIO()
    with PrometheusServer(binaries, tmp_path, targets=[], scrape_interval_s=0.25) as prom:
        options = RunOptions(
            prometheus_url=prom.url,
            interval_s=0.5,
            window_s=1.0,
            query_timeout_s=2.0,
            serve=False,
            sim_step_s=0.25,
            duration_s=5.0,
        )
        assert run(options, err, recorders=[keep]) == 0
    said = err.getvalue()
    assert f"Prometheus at {prom.url} holds no full --window" in said, said
    assert "(it held 0 of 3; is it scraping 127.0.0.1:" in said, said
    assert keep.reports
    for report in keep.reports:
        assert not report.plan.scale
        assert all(
            d.reason is Reason.METRICS_UNAVAILABLE
            for d in report.decisions
            if any(w.key == d.target for w in report.workloads)
        )
