"""Warm start: two hours of history backfilled with promtool, read back with chunked query_range.

The backfilled counter grows at ``10 + 5 sin(2 pi t / 1 h)`` requests/s, scraped every 15 s,
for a pod that no longer exists (only its ReplicaSet-style name ties it to ``shop/web``), with
a 10-minute scrape gap and a counter reset. The history must follow the rate within 5 %, show
the gap as NaN (never 0), ride over the reset, and come in ``ceil(steps / chunk)`` queries.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from actuators.prometheus import (
    PrometheusClient,
    PrometheusConfig,
    PrometheusMetricsSource,
    SourceSettings,
)
from tests.prometheus.conftest import target
from tests.support.prometheus import PrometheusServer, backfill_openmetrics, require_prometheus

STEP_S = 60.0
SCRAPE_S = 15.0
HOURS = 2.0


def rate_at(t: float) -> float:
    return 10.0 + 5.0 * math.sin(2 * math.pi * t / 3600.0)


def history_openmetrics(
    start_s: float, end_s: float, gap: tuple[float, float], reset_s: float
) -> str:
    name = "http_server_request_duration_seconds_count"
    labels = '{namespace="shop",pod="web-6d9f8b7c5-zzzzz"}'
    lines = [f"# TYPE {name} unknown"]
    count, t = 0.0, start_s
    while t <= end_s:
        # exact integral of the rate over one scrape interval
        a, b = t, t + SCRAPE_S
        count += 10.0 * SCRAPE_S - 5.0 * 3600.0 / (2 * math.pi) * (
            math.cos(2 * math.pi * b / 3600.0) - math.cos(2 * math.pi * a / 3600.0)
        )
        t = b
        if reset_s <= t < reset_s + SCRAPE_S:
            count = 0.0  # the pod restarted
        if not gap[0] <= t < gap[1]:
            lines.append(f"{name}{labels} {count:.6f} {t:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[PrometheusServer, float]:
    binaries = require_prometheus()
    workdir: Path = tmp_path_factory.mktemp("history")
    now = math.floor(time.time() / STEP_S) * STEP_S
    start = now - HOURS * 3600.0
    end = now - 300.0
    text = history_openmetrics(
        start, end, gap=(start + 3600.0, start + 4200.0), reset_s=start + 1800
    )
    backfill_openmetrics(binaries, text, workdir / "tsdb", workdir)
    return PrometheusServer(binaries, workdir, tsdb_dir=workdir / "tsdb"), start


def test_warm_start_reads_backfilled_history_in_chunks(
    backfilled: tuple[PrometheusServer, float],
) -> None:
    server, start = backfilled
    end = start + 6600.0  # 110 steps
    with server:
        client = PrometheusClient(PrometheusConfig(server.url))
        source = PrometheusMetricsSource(client, SourceSettings(max_points_per_query=30))
        try:
            histories = source.rate_history(
                [target("shop/web"), target("shop/empty")], start, end, STEP_S
            )
        finally:
            source.close()
    assert client.range_queries_total == 4  # ceil(110 / 30)
    assert "shop/empty" not in histories  # no series at all: absent, not zeros
    h = histories["shop/web"]
    assert (h.start_s, h.step_s, len(h)) == (start, STEP_S, 110)
    mids = start + STEP_S * (np.arange(110) + 0.5)
    expected = np.array([rate_at(m) for m in mids])
    in_gap = (mids > start + 3600.0) & (mids < start + 4200.0 + STEP_S)
    assert np.isnan(h.values[in_gap]).sum() >= 9  # the 10-minute gap is NaN, never 0
    assert not np.any(h.values[np.isfinite(h.values)] == 0.0)
    ok = np.isfinite(h.values)
    ok[0] = False  # the first step has no earlier sample to take a rate from
    err = np.abs(h.values[ok] - expected[ok]) / expected[ok]
    assert np.median(err) < 0.02
    assert np.mean(err < 0.05) > 0.9  # the steps next to the gap and the reset read partial
    reset_step = int(1800 / STEP_S)
    assert np.all(h.values[reset_step - 1 : reset_step + 2] > 0)  # rate() rides the reset


def test_warm_start_with_prometheus_down_is_empty_not_an_exception(tmp_path: Path) -> None:
    from tests.support.prometheus import free_port

    client = PrometheusClient(PrometheusConfig(f"http://127.0.0.1:{free_port()}", timeout_s=1))
    source = PrometheusMetricsSource(client)
    try:
        assert source.rate_history([target("shop/web")], 0.0, 3600.0, 60.0) == {}
    finally:
        source.close()
