"""Structural checks on every shipped dashboard, and the committed files against the generator."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import main_dashboards
from dashboards.catalog import all_dashboards
from dashboards.generate import ROOT, committed_files
from dashboards.model import SCHEMA_VERSION, Panel, Query, Row, layout
from tests.dashboards.grafana import annotation_queries, committed_dashboards, panel_queries

DASHBOARDS = committed_dashboards()
NAMES = sorted(DASHBOARDS)
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def test_the_three_dashboards_are_committed() -> None:
    assert NAMES == ["controller", "gpu-capacity", "slo-overview"]


@pytest.mark.parametrize("path", sorted(str(p) for p in committed_files()))
def test_committed_file_matches_the_generator(path: str) -> None:
    """Regenerate with ``python -m dashboards.generate`` when this fails."""
    expected = committed_files()[Path(path)]
    assert (ROOT / path).read_text(encoding="utf-8") == expected, (
        f"{path} is stale: run `.venv/bin/python -m dashboards.generate`"
    )


@pytest.mark.parametrize("name", NAMES)
def test_importable_model(name: str) -> None:
    d = DASHBOARDS[name]
    assert d["schemaVersion"] == SCHEMA_VERSION
    assert d["id"] is None and d["uid"].startswith("sloscale-") and len(d["uid"]) <= 40
    assert d["title"].startswith("sloscale / ")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in ("namespace", "workload"):
        assert variables[var]["type"] == "query"
        assert variables[var]["datasource"] == DATASOURCE
        assert variables[var]["includeAll"] and variables[var]["multi"]


def test_uids_are_unique() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("name", NAMES)
def test_panel_ids_are_unique(name: str) -> None:
    ids = [p["id"] for p in DASHBOARDS[name]["panels"]]
    assert len(ids) == len(set(ids))


def _cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
    g = panel["gridPos"]
    return {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}


@pytest.mark.parametrize("name", NAMES)
def test_grid_positions_do_not_overlap_and_fit_the_grid(name: str) -> None:
    panels = DASHBOARDS[name]["panels"]
    for p in panels:
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
    for a, b in combinations(panels, 2):
        assert not _cells(a) & _cells(b), f"{a['title']!r} overlaps {b['title']!r}"


@pytest.mark.parametrize("name", NAMES)
def test_every_query_uses_the_datasource_variable(name: str) -> None:
    d = DASHBOARDS[name]
    for panel in d["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == DATASOURCE, (panel["title"], t["refId"])
    for a in d["annotations"]["list"]:
        if "expr" in a:
            assert a["datasource"] == DATASOURCE, a["name"]


@pytest.mark.parametrize("name", NAMES)
def test_every_panel_has_a_unit_and_a_question(name: str) -> None:
    series = [p for p in DASHBOARDS[name]["panels"] if p["type"] != "row"]
    assert series
    for p in series:
        assert p["fieldConfig"]["defaults"].get("unit"), p["title"]
        assert p["description"].endswith("?"), p["title"]


@pytest.mark.parametrize("name", NAMES)
def test_decisions_are_annotations_on_the_time_series(name: str) -> None:
    names = [a["name"] for a in DASHBOARDS[name]["annotations"]["list"] if "expr" in a]
    assert "Decisions" in names


@pytest.mark.parametrize("name", NAMES)
def test_workload_panels_honour_the_template_variables(name: str) -> None:
    """A query on a per-workload series must filter by the chosen namespace and workload."""
    for q in panel_queries(name, DASHBOARDS[name]):
        if "sloscale_workload_" in q.expr:
            assert '$namespace/$workload"' in q.expr, q
        if "http_server_" in q.expr:
            assert 'namespace=~"$namespace"' in q.expr and 'deployment=~"$workload"' in q.expr, q


def test_annotation_queries_are_found() -> None:
    assert any(annotation_queries(n, d) for n, d in DASHBOARDS.items())


def test_layout_wraps_rows_and_lines_without_overlap() -> None:
    # 12 + 12 fill a line; the third panel wraps under the taller (h=10) of the two
    wide = Panel("a", "?", "s", (Query("up"),), width=12, height=10)
    narrow = Panel("b", "?", "s", (Query("up"),), width=12, height=8)
    out = layout([Row("r1", (wide, narrow, narrow)), Row("r2", (narrow,))])
    grid = [(p["title"], p["gridPos"]["x"], p["gridPos"]["y"]) for p in out]
    assert grid == [
        ("r1", 0, 0),
        ("a", 0, 1),
        ("b", 12, 1),
        ("b", 0, 11),
        ("r2", 0, 19),
        ("b", 0, 20),
    ]
    #                                                               1 + 10 = 11; 11 + 8 = 19


def test_configmaps_carry_each_dashboard_for_the_grafana_sidecar() -> None:
    text = (ROOT / "deploy/grafana/dashboards-configmaps.yaml").read_text()
    maps = [d for d in yaml.safe_load_all(text) if d]
    assert len(maps) == len(all_dashboards())
    for cm in maps:
        assert cm["kind"] == "ConfigMap"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((key, body),) = cm["data"].items()
        assert json.loads(body) == DASHBOARDS[key.removesuffix(".json")]


def test_cli_writes_every_dashboard(tmp_path: Path) -> None:
    assert main_dashboards(["--out", str(tmp_path / "out")]) == 0
    written = {p.name: json.loads(p.read_text()) for p in (tmp_path / "out").iterdir()}
    assert written == {f"{n}.json": d for n, d in DASHBOARDS.items()}


def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main_dashboards(["--out", str(blocker)]) == 2
    assert main_dashboards([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("sloscale dashboards: error: cannot write")
    assert "--out" in err[1]


def test_generation_imports_no_client_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dashboards.catalog, dashboards.rules, dashboards.model;"
        "bad = {'yaml', 'prometheus_client', 'kubernetes', 'fastapi', 'httpx'} & set(sys.modules);"
        "sys.exit(sorted(bad) or 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _steps(panel: dict[str, Any]) -> list[tuple[str, float | None]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["color"], step["value"]) for step in steps]


def test_slo_overview_opens_with_attainment_budget_and_burn_rate_at_a_glance() -> None:
    """Stat and gauge panels coloured by threshold: attainment against the objective (red
    below it), budget left (red under 25 %), burn rate (red at the 14.4× page level)."""
    panels = DASHBOARDS["slo-overview"]["panels"]
    assert [p["title"] for p in panels[:4]] == [
        "At a glance",
        "Attainment above objective",
        "Error budget left",
        "Burn rate over 1h",
    ]
    margin, budget, burn = panels[1:4]
    assert (margin["type"], budget["type"], burn["type"]) == ("stat", "gauge", "stat")
    assert _steps(margin) == [("red", None), ("green", 0.0)]
    assert "sloscale_workload_objective_ratio" in margin["targets"][0]["expr"]
    assert _steps(budget) == [("red", None), ("orange", 0.25), ("green", 0.5)]
    assert (budget["fieldConfig"]["defaults"]["min"], budget["fieldConfig"]["defaults"]["max"]) == (
        0,
        1,
    )
    assert _steps(burn) == [("green", None), ("yellow", 1.0), ("orange", 6.0), ("red", 14.4)]
    for p in (margin, budget, burn):
        assert p["fieldConfig"]["defaults"]["color"] == {"mode": "thresholds"}
        assert p["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]
        assert all(t["instant"] and not t["range"] for t in p["targets"])


def test_a_panel_refuses_an_unknown_kind_or_a_colour_per_band_missing() -> None:
    with pytest.raises(ValueError, match="kind"):
        Panel("a", "?", "s", (Query("up"),), kind="piechart")
    with pytest.raises(ValueError, match="colour"):
        Panel("a", "?", "s", (Query("up"),), thresholds=(1.0, 2.0), colors=("red", "green"))
