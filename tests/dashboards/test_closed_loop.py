"""Every panel's queries against a real Prometheus scraping a short closed loop.

The real control loop runs against the simulated cluster; a real Prometheus scrapes the
controller's ``/metrics`` (``ApiServer``) and the simulated workloads' exporters. Then every
query of every panel, with the template variables filled in as Grafana would, must parse and
return at least one finite value over the run, for one chosen workload and for "All".
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.exporter import render_openmetrics
from actuators.sim.metrics import SimMetricsSource
from actuators.sim.scenarios import demo_world
from controller.loop import Controller, LoopConfig
from sloscale.api import ApiServer, create_app
from sloscale.telemetry import MetricsRecorder
from tests.dashboards.grafana import (
    PanelQuery,
    annotation_queries,
    committed_dashboards,
    interpolate,
    panel_queries,
    regex_values,
)
from tests.support.exporters import TextExporter
from tests.support.prometheus import PrometheusServer, require_prometheus

SCRAPE_S = 0.5
TICKS = 60  # 15 simulated minutes: cold starts over, decisions made
RATE_INTERVAL = "2s"  # Grafana's $__rate_interval: 4 × the scrape interval
ONE = {"namespace": "demo", "workload": "chat"}
ALL = {"namespace": ".*", "workload": ".*"}


@pytest.fixture(scope="module")
def loop_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, float]]:
    """(Prometheus URL, run start, run end) after a short closed loop it scraped."""
    binaries = require_prometheus()
    cluster = SimulatedCluster(demo_world(seed=1))
    recorder = MetricsRecorder()
    controller = Controller(
        cluster,
        SimMetricsSource(cluster.metrics_history),
        cluster,
        LoopConfig(),
        recorders=[recorder],
    )
    api = ApiServer(create_app(controller, recorder), port=0)
    latest = [render_openmetrics(cluster.scrape())]
    exporter = TextExporter(lambda: latest[0])
    api.start()
    exporter.start()
    workdir = tmp_path_factory.mktemp("prometheus")
    try:
        targets = [f"127.0.0.1:{api.port}", exporter.address]
        with PrometheusServer(
            binaries, workdir, targets=targets, scrape_interval_s=SCRAPE_S
        ) as prom:
            prom.wait_for("count(up == 1) == 2", timeout_s=20)
            start = time.time()
            for _ in range(TICKS):
                cluster.advance(15.0)
                controller.tick()
                latest[0] = render_openmetrics(cluster.scrape())
                time.sleep(0.1)
            time.sleep(3 * SCRAPE_S)
            yield prom.url, start, time.time()
    finally:
        exporter.stop()
        api.stop()


def _api(url: str, path: str, params: dict[str, str]) -> Any:
    full = f"{url}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(full, timeout=10) as resp:
            return json.loads(resp.read())["data"]
    except urllib.error.HTTPError as e:  # a PromQL parse error is a 400 with the reason
        raise AssertionError(f"{path} {params}: {e.code} {e.read().decode()}") from None


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(v[1] not in ("NaN", "+Inf", "-Inf") for s in result for v in s["values"])


def _queries() -> list[Any]:
    out = []
    for name, d in committed_dashboards().items():
        for q in panel_queries(name, d):
            out.append(pytest.param(q, id=f"{name}:{q.panel}:{q.ref_id}"))
    return out


@pytest.mark.parametrize("fill", [ONE, ALL], ids=["one-workload", "all"])
@pytest.mark.parametrize("query", _queries())
def test_panel_query_parses_and_returns_data(
    loop_prometheus: tuple[str, float, float], query: PanelQuery, fill: dict[str, str]
) -> None:
    url, start, end = loop_prometheus
    expr = interpolate(query.expr, {**fill, "__rate_interval": RATE_INTERVAL})
    data = _api(
        url,
        "/api/v1/query_range",
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"},
    )
    assert _finite(data["result"]), f"{query.dashboard} / {query.panel}: no data for {expr}"


def test_annotation_queries_parse_and_decisions_show(
    loop_prometheus: tuple[str, float, float],
) -> None:
    url, start, end = loop_prometheus
    seen: dict[str, bool] = {}
    for name, d in committed_dashboards().items():
        for q in annotation_queries(name, d):
            expr = interpolate(q.expr, ALL)
            data = _api(
                url,
                "/api/v1/query_range",
                {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"},
            )
            seen[q.panel] = seen.get(q.panel, False) or bool(data["result"])
    assert seen["annotation Decisions"], "the loop changed allocations: decisions must show"


def test_template_variables_list_the_loop_workloads(
    loop_prometheus: tuple[str, float, float],
) -> None:
    url, _, _ = loop_prometheus
    d = committed_dashboards()["slo-overview"]
    variables = {v["name"]: v for v in d["templating"]["list"] if v["type"] == "query"}
    got = {}
    for name, v in variables.items():
        metric, label = (
            v["query"]["query"].removeprefix("label_values(").removesuffix(")").split(", ")
        )
        match = interpolate(metric, {"namespace": "demo"})
        values = _api(url, f"/api/v1/label/{label}/values", {"match[]": match})
        got[name] = regex_values(values, v["regex"])
    assert got == {"namespace": ["demo"], "workload": ["chat", "rerank", "vision"]}


def test_every_panel_is_covered() -> None:
    panels = [p for d in committed_dashboards().values() for p in d["panels"] if p["type"] != "row"]
    assert len(_queries()) == sum(len(p["targets"]) for p in panels) > 30
