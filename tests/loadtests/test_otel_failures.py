"""Failures the OpenTelemetry way: ``error_type`` on the duration histogram, no invented counter.

The HTTP semantic conventions define no ``http_server_requests_failed_total``; a failed request
is recorded in ``http.server.request.duration`` with the ``error.type`` attribute (Prometheus:
``error_type``). The emulator, the simulator's exporter and the dashboards follow them, so the
failures panel reads what a real instrumented app exports.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from actuators.sim.exporter import Scrape, WorkloadExporter, render_openmetrics
from loadtests.emulator import Emulator, RequestLog, render_metrics
from tests.loadtests.test_emulator import CONFIG

ROOT = Path(__file__).resolve().parents[2]
INVENTED = "http_server_requests_failed_total"


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of every sample of ``name`` in an exposition."""
    out = {}
    for line in text.splitlines():
        if m := re.match(rf"{re.escape(name)}(\{{[^}}]*\}}) (\S+)$", line):
            out[m[1]] = float(m[2])
    return out


def test_the_emulator_records_failures_with_error_type() -> None:
    log = RequestLog()
    for t, latency in ((0.0, 0.05), (0.1, 0.2), (0.2, math.inf)):
        log.add(t, latency)
    text = render_metrics(CONFIG, log, {}, {})
    assert INVENTED not in text
    counts = samples(text, "http_server_request_duration_seconds_count")
    assert {k: v for k, v in counts.items() if 'error_type="503"' in k} and sum(
        counts.values()
    ) == 3
    assert sum(v for k, v in counts.items() if "error_type" in k) == 1
    infs = samples(text, "http_server_request_duration_seconds_bucket")
    ok_inf = [v for k, v in infs.items() if 'le="+Inf"' in k and "error_type" not in k]
    assert ok_inf == [2.0]  # the failure is not among the successful requests


def test_the_simulators_exporter_records_failures_with_error_type() -> None:
    exporter = WorkloadExporter("shop", "web")
    exporter.observe_latencies(np.array([0.05, math.inf, math.inf]))
    text = render_openmetrics(Scrape(0.0, {"shop/web": exporter.sample()}))
    assert INVENTED not in text
    counts = samples(text, "http_server_request_duration_seconds_count")
    assert counts == {
        '{namespace="shop",deployment="web"}': 1.0,
        '{namespace="shop",deployment="web",error_type="503"}': 2.0,
    }


def test_no_dashboard_reads_the_invented_counter() -> None:
    for path in [
        *ROOT.glob("dashboards/json/*.json"),
        ROOT / "deploy/grafana/dashboards-configmaps.yaml",
    ]:
        assert INVENTED not in path.read_text(), path
    overview = json.loads((ROOT / "dashboards/json/slo-overview.json").read_text())
    exprs = [t["expr"] for p in overview["panels"] for t in p.get("targets", ())]
    failures = [e for e in exprs if 'error_type!=""' in e]
    assert failures and all("http_server_request_duration_seconds_count" in e for e in failures)


def test_the_emulator_exports_a_bucket_at_its_own_target() -> None:
    """Its SLO target (the loadtest's 300 ms, not a standard bound) is a bucket bound, so the
    controller reads an exact SLI and does not warn about its own service."""
    config = replace(CONFIG, annotations={"sloscale.io/latency-target-ms": "300"})
    emulator = Emulator(config)
    for t, latency in ((0.0, 0.295), (0.1, 0.3), (0.2, 0.31)):
        emulator.log.add(t, latency)
    text = render_metrics(config, emulator.log, {}, {})
    buckets = samples(text, "http_server_request_duration_seconds_bucket")
    assert buckets['{namespace="ns",deployment="web",le="0.3"}'] == 2.0
