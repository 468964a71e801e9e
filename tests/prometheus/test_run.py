"""``sloscale run --cluster sim``: the real loop reading a real Prometheus that scrapes the sim."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

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
    binaries = require_prometheus()
    sim_port = free_port()
    keep = Keep()
    with PrometheusServer(
        binaries, tmp_path, targets=[f"127.0.0.1:{sim_port}"], scrape_interval_s=0.25
    ) as prom:
        options = RunOptions(
            prometheus_url=prom.url,
            interval_s=1.0,
            window_s=2.0,
            query_timeout_s=2.0,
            serve=False,
            sim_metrics_port=sim_port,
            sim_step_s=0.25,
            duration_s=10.0,  # Prometheus picks a new target up within 5 s
        )
        with caplog.at_level(logging.WARNING, logger="sloscale"):
            assert run(options, recorders=[keep]) == 0
    # the simulator exports a bucket at each workload's own target: nothing to interpolate
    said = [r.getMessage() for r in caplog.records]
    assert not [line for line in said if "bucket bound" in line], said
    assert len(keep.reports) >= 8
    last = keep.reports[-1]
    assert last.workloads
    read = [w for w in last.workloads if w.metrics.request_rate_rps is not None]
    assert read, "no workload's rate came through Prometheus"
    assert all(w.metrics.request_rate_rps > 0 for w in read)  # type: ignore[operator]
    assert any(w.metrics.gpu_memory_mib for w in read)  # DCGM-named gauges from the sim
    reasons = {d.reason for d in last.decisions}
    assert reasons - {Reason.METRICS_UNAVAILABLE}, reasons
    # the first ticks, before Prometheus had scraped anything, held instead of scaling down
    first = keep.reports[0]
    assert all(
        d.reason is Reason.METRICS_UNAVAILABLE
        for d in first.decisions
        if "/" in d.target and any(w.key == d.target for w in first.workloads)
    )
    assert not first.plan.scale
