"""A small, typed subset of the Grafana dashboard JSON model, and the grid layout.

Purely computational, no side effects: frozen dataclasses describe panels, queries, template
variables and annotations; ``Dashboard.to_json()`` turns them into the JSON that Grafana
imports (dashboard ``schemaVersion`` 39, Grafana 10 and later). Every query goes through the
``${datasource}`` variable, so one dashboard works with whichever Prometheus the user picks.

Three kinds of panel: ``timeseries`` (history), ``stat`` (the latest value per series, its
background coloured by the threshold band it falls in) and ``gauge`` (the same on a dial
between ``min_value`` and ``max_value``). Stat and gauge panels ask for instant values.

Layout is computed, not written by hand: panels flow left to right in rows of the 24-column
grid, so positions never overlap and adding a panel never means renumbering the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 39
GRID_WIDTH = 24
DATASOURCE_VAR = "datasource"
DATASOURCE: Mapping[str, str] = {"type": "prometheus", "uid": "${" + DATASOURCE_VAR + "}"}
"""Every panel, query, variable and annotation names its datasource through the variable."""

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression of a panel; ``legend`` is Grafana's ``legendFormat``."""

    expr: str
    legend: str = ""
    dashed: bool = False  # drawn as a dashed line: a target, an objective, a forecast band


PANEL_KINDS = ("timeseries", "stat", "gauge")
LINE_COLORS = ("transparent", "orange", "red", "dark-red")
"""Threshold bands of a time series by default: none under the first line, then warmer."""


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel; ``question`` is what it answers (its description and README entry).

    ``thresholds`` split the values into bands, coloured by ``colors`` (one more colour than
    thresholds; by default ``LINE_COLORS``): lines on a time series, the background of a stat,
    the arc of a gauge.
    """

    title: str
    question: str
    unit: str
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    min_value: float | None = None
    max_value: float | None = None
    stacked: bool = False
    thresholds: tuple[float, ...] = ()  # drawn as horizontal lines (e.g. burn-rate alert levels)
    colors: tuple[str, ...] = ()
    kind: str = "timeseries"
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in PANEL_KINDS:
            raise ValueError(f"panel {self.title!r}: kind {self.kind!r} not in {PANEL_KINDS}")
        if self.colors and len(self.colors) != len(self.thresholds) + 1:
            raise ValueError(f"panel {self.title!r}: one colour per band, {self.colors!r}")

    def bands(self) -> list[dict[str, Any]]:
        """Grafana's threshold steps: the base colour (value null), then one per threshold."""
        colors = self.colors or LINE_COLORS
        steps: list[dict[str, Any]] = [{"color": colors[0], "value": None}]
        for i, t in enumerate(sorted(self.thresholds)):
            steps.append({"color": colors[min(i + 1, len(colors) - 1)], "value": t})
        return steps


@dataclass(frozen=True, slots=True)
class Row:
    """A titled row of panels; panels flow left to right and wrap at the grid's width."""

    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True, slots=True)
class Variable:
    """A Prometheus query variable whose values come from a label (``label_values``).

    ``regex`` picks the value out of the label (its first capture group), as Grafana does.
    """

    name: str
    label: str
    metric: str
    source_label: str
    regex: str = ""


@dataclass(frozen=True, slots=True)
class Annotation:
    """Events drawn on every time-series panel: each non-zero point of ``expr`` is one."""

    name: str
    expr: str
    title: str
    text: str
    tag_keys: tuple[str, ...]
    color: str = "orange"
    step: str = "1m"


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    tags: tuple[str, ...] = ("sloscale",)
    time_from: str = "now-6h"
    refresh: str = "30s"

    def panels(self) -> tuple[Panel, ...]:
        return tuple(p for r in self.rows for p in r.panels)

    def to_json(self) -> Json:
        """The Grafana dashboard JSON model; purely computational and deterministic."""
        return {
            "annotations": {
                "list": [_builtin_annotation(), *(_annotation_json(a) for a in self.annotations)]
            },
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": [
                {
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "tags": ["sloscale"],
                    "title": "sloscale dashboards",
                    "type": "dashboards",
                }
            ],
            "panels": layout(self.rows),
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": list(self.tags),
            "templating": {
                "list": [_datasource_variable(), *(_variable_json(v) for v in self.variables)]
            },
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
        }


def layout(rows: Sequence[Row]) -> list[Json]:
    """Panels with ids and grid positions: a row header (height 1), then its panels.

    Each panel goes to the right of the previous one when it fits in the 24 columns, else to
    a new line under the tallest panel of the line before; ids count up from 1 in that order.
    """
    out: list[Json] = []
    next_id = 1
    y = 0
    for row in rows:
        out.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
                "id": next_id,
                "panels": [],
                "title": row.title,
                "type": "row",
            }
        )
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                y += line_height
                x = line_height = 0
            out.append(
                _panel_json(panel, next_id, {"h": panel.height, "w": panel.width, "x": x, "y": y})
            )
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def _panel_json(panel: Panel, panel_id: int, grid: Mapping[str, int]) -> Json:
    defaults: Json = {"unit": panel.unit}
    if panel.min_value is not None:
        defaults["min"] = panel.min_value
    if panel.max_value is not None:
        defaults["max"] = panel.max_value
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": panel.bands()}
    if panel.kind == "timeseries":
        defaults |= _series_defaults(panel)
        options = _series_options()
    else:
        defaults["color"] = {"mode": "thresholds"}
        options = _single_value_options(panel.kind)
    instant = panel.kind != "timeseries"
    ref_ids = [_ref_id(i) for i in range(len(panel.queries))]
    overrides = [
        {
            "matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [{"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}}],
        }
        for ref, q in zip(ref_ids, panel.queries, strict=True)
        if q.dashed and panel.kind == "timeseries"
    ]
    return {
        "datasource": dict(DATASOURCE),
        "description": panel.question,
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "gridPos": dict(grid),
        "id": panel_id,
        "options": options,
        "targets": [
            {
                "datasource": dict(DATASOURCE),
                "editorMode": "code",
                "expr": q.expr,
                "instant": instant,
                "legendFormat": q.legend or "__auto",
                "range": not instant,
                "refId": ref,
            }
            for ref, q in zip(ref_ids, panel.queries, strict=True)
        ],
        "title": panel.title,
        "type": panel.kind,
    }


def _series_defaults(panel: Panel) -> Json:
    custom: Json = {
        "drawStyle": "line",
        "fillOpacity": 10 if panel.stacked else 0,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if panel.stacked else "none"},
    }
    if panel.thresholds:
        custom["thresholdsStyle"] = {"mode": "line+area"}
    return {"color": {"mode": "palette-classic"}, "custom": custom}


def _series_options() -> Json:
    return {
        "legend": {
            "calcs": ["lastNotNull", "max"],
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _single_value_options(kind: str) -> Json:
    """A stat or gauge: the last non-null value of each series, one tile or dial per series."""
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if kind == "gauge":
        return {
            "orientation": "auto",
            "reduceOptions": reduce,
            "showThresholdLabels": False,
            "showThresholdMarkers": True,
        }
    return {
        "colorMode": "background",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": reduce,
        "textMode": "value_and_name",
    }


def _ref_id(index: int) -> str:
    return chr(ord("A") + index)


def _builtin_annotation() -> Json:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def _annotation_json(a: Annotation) -> Json:
    return {
        "datasource": dict(DATASOURCE),
        "enable": True,
        "expr": a.expr,
        "hide": False,
        "iconColor": a.color,
        "name": a.name,
        "step": a.step,
        "tagKeys": ",".join(a.tag_keys),
        "textFormat": a.text,
        "titleFormat": a.title,
        "useValueForTime": False,
    }


def _datasource_variable() -> Json:
    return {
        "current": {},
        "hide": 0,
        "includeAll": False,
        "label": "Data source",
        "multi": False,
        "name": DATASOURCE_VAR,
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def variable_query(v: Variable) -> str:
    """The variable's ``label_values(...)`` query, as Grafana's variable editor writes it."""
    return f"label_values({v.metric}, {v.source_label})"


def _variable_json(v: Variable) -> Json:
    query = variable_query(v)
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": dict(DATASOURCE),
        "definition": query,
        "hide": 0,
        "includeAll": True,
        "label": v.label,
        "multi": True,
        "name": v.name,
        "options": [],
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": v.regex,
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }
