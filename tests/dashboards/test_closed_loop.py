"""Every panel's queries against a real Prometheus scraping a short closed loop.

The real control loop runs against the simulated cluster; a real Prometheus scrapes the
controller's ``/metrics`` (``ApiServer``) and the simulated workloads' exporters. Then every
query of every panel, with the template variables filled in as Grafana would, must parse and
return at least one finite value over the run, for one chosen workload and for "All".

Prometheus scrapes two controller replicas, as with ``sloscale run --leader-elect``: the
leader and a follower exporting the same series with ``sloscale_leader`` 0, so a panel that
counts the follower too shows it. A dcgm-exporter target has a whole card, a MIG instance
and a card whose exporter runs without profiling counters.
"""

from __future__ import annotations

import json
import re
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
from dashboards.catalog import LEADER_ONLY
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
from tests.support.gpu_exposition import DCGM_HEAD, dcgm
from tests.support.prometheus import PrometheusServer, require_prometheus

SCRAPE_S = 0.5
TICKS = 60  # 15 simulated minutes: cold starts over, decisions made
RATE_INTERVAL = "2s"  # Grafana's $__rate_interval: 4 × the scrape interval
ONE = {"namespace": "demo", "workload": "chat"}
ALL = {"namespace": ".*", "workload": ".*"}


WHOLE = dcgm(0, "GPU-0a1b", pod=("demo", "chat-7c9d8f6b5-abcde"))
MIG = dcgm(
    1, "GPU-1c2d", pod=("demo", "vision-5b4a39281-ccccc"), GPU_I_PROFILE="3g.40gb", GPU_I_ID="2"
)
NO_PROFILING = dcgm(2, "GPU-2e3f", pod=("demo", "rerank-6d5c4b3a2-aaaaa"))
DCGM_TEXT = (
    DCGM_HEAD
    + f"DCGM_FI_DEV_GPU_UTIL{WHOLE} 62\n"
    + f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{WHOLE} 0.610000\n"
    + f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{MIG} 0.550000\n"  # no GPU_UTIL on a MIG instance
    + f"DCGM_FI_DEV_GPU_UTIL{NO_PROFILING} 45\n"
)
"""dcgm-exporter on three devices; what the GPU activity panel should read off each."""
DEVICE_ACTIVITY = {("GPU-0a1b", ""): 0.61, ("GPU-1c2d", "2"): 0.55, ("GPU-2e3f", ""): 0.45}


@pytest.fixture(scope="module")
def loop_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, float, float]]:
    """(Prometheus URL, run start, run end) after a short closed loop it scraped."""
    binaries = require_prometheus()
    cluster = SimulatedCluster(demo_world(seed=1))
    recorder = MetricsRecorder()
    follower = MetricsRecorder()  # a second replica: the same decisions, not leading
    follower.set_leader(False)
    controller = Controller(
        cluster,
        SimMetricsSource(cluster.metrics_history),
        cluster,
        LoopConfig(),
        recorders=[recorder, follower],
    )
    api = ApiServer(create_app(controller, recorder), port=0)
    follower_api = ApiServer(create_app(controller, follower), port=0)
    latest = [render_openmetrics(cluster.scrape())]
    exporter = TextExporter(lambda: latest[0])
    gpus = TextExporter(lambda: DCGM_TEXT)
    servers = (api, follower_api, exporter, gpus)
    for server in servers:
        server.start()
    workdir = tmp_path_factory.mktemp("prometheus")
    try:
        targets = [
            f"127.0.0.1:{api.port}",
            f"127.0.0.1:{follower_api.port}",
            exporter.address,
            gpus.address,
        ]
        with PrometheusServer(
            binaries, workdir, targets=targets, scrape_interval_s=SCRAPE_S
        ) as prom:
            prom.wait_for("count(up == 1) == 4", timeout_s=20)
            start = time.time()
            for _ in range(TICKS):
                cluster.advance(15.0)
                controller.tick()
                latest[0] = render_openmetrics(cluster.scrape())
                time.sleep(0.1)
            time.sleep(3 * SCRAPE_S)
            yield prom.url, start, time.time()
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def leader_instance(loop_prometheus: tuple[str, float, float]) -> str:
    """The leading replica's ``instance`` label (the follower's series carry another)."""
    url, _, end = loop_prometheus
    data = _api(url, "/api/v1/query", {"query": "sloscale_leader == 1", "time": f"{end:.3f}"})
    (series,) = data["result"]
    return str(series["metric"]["instance"])


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


_CONTROLLER_SERIES = re.compile(r"(sloscale_\w+)(?:\{([^}]*)\})?")


def _only_instance(expr: str, instance: str) -> str:
    """``expr`` with every selector of the controller's series narrowed to one replica."""

    def narrow(m: re.Match[str]) -> str:
        matchers = f'instance="{instance}"' + (f", {m.group(2)}" if m.group(2) else "")
        return f"{m.group(1)}{{{matchers}}}"

    return _CONTROLLER_SERIES.sub(narrow, expr)


def _leader_queries() -> list[Any]:
    """Every panel and annotation query over the controller's series, except those that show
    each replica on purpose (``by (instance)``)."""
    out = []
    for name, d in committed_dashboards().items():
        for q in [*panel_queries(name, d), *annotation_queries(name, d)]:
            if "sloscale_" in q.expr and "by (instance)" not in q.expr:
                out.append(pytest.param(q, id=f"{name}:{q.panel}:{q.ref_id}"))
    return out


def _by_labels(result: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], list[Any]]:
    return {tuple(sorted(s["metric"].items())): s["values"] for s in result}


@pytest.mark.parametrize("query", _leader_queries())
def test_panels_count_the_leader_only(
    loop_prometheus: tuple[str, float, float], leader_instance: str, query: PanelQuery
) -> None:
    """With a follower scraped too, each query gives what it gives over the leader alone: a
    sum counts the leader's series once, a per-workload query shows one line per workload."""
    url, start, end = loop_prometheus
    expr = interpolate(query.expr, {**ALL, "__rate_interval": RATE_INTERVAL})
    window = {"start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"}
    got = _api(url, "/api/v1/query_range", {"query": expr, **window})["result"]
    alone = _only_instance(expr, leader_instance)
    want = _api(url, "/api/v1/query_range", {"query": alone, **window})["result"]
    assert want or query.ref_id == "-", f"{query.panel}: no data"  # annotations may be empty
    assert _by_labels(got) == _by_labels(want), f"{query.panel}: {expr}"


def test_gpu_activity_reads_mig_instances_and_cards_without_profiling(
    loop_prometheus: tuple[str, float, float],
) -> None:
    """The dcgm panel reads GR_ENGINE_ACTIVE where it exists (the only signal of a MIG
    instance) and GPU_UTIL / 100 on a card without profiling counters, one series a device."""
    url, _, end = loop_prometheus
    (expr,) = [
        q.expr
        for name, d in committed_dashboards().items()
        for q in panel_queries(name, d)
        if q.panel == "GPU activity per device (dcgm-exporter)"
    ]
    result = _api(url, "/api/v1/query", {"query": expr, "time": f"{end:.3f}"})["result"]
    got = {
        (s["metric"]["UUID"], s["metric"].get("GPU_I_ID", "")): float(s["value"][1]) for s in result
    }
    assert got == pytest.approx(DEVICE_ACTIVITY)


def test_matching_on_no_label_would_keep_the_follower(
    loop_prometheus: tuple[str, float, float], leader_instance: str
) -> None:
    """Why the filter matches ``on (instance, job)``: with ``on ()`` every replica's series
    matches the one leader, so the follower's are kept and a sum counts the decisions twice."""
    url, _, end = loop_prometheus
    per_instance = "sum(sloscale_decisions_total {filter})"
    at = {"time": f"{end:.3f}"}

    def total(expr: str) -> float:
        (series,) = _api(url, "/api/v1/query", {"query": expr, **at})["result"]
        return float(series["value"][1])

    leader_only = total(per_instance.format(filter=LEADER_ONLY))
    on_nothing = total(per_instance.format(filter="and on () sloscale_leader == 1"))
    assert leader_only > 0 and on_nothing == 2 * leader_only  # the follower counts the same
    assert leader_only == total(f'sum(sloscale_decisions_total{{instance="{leader_instance}"}})')
