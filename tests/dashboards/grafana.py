"""What Grafana does to a dashboard before a query reaches Prometheus, for the tests.

Grafana replaces ``$var`` / ``${var}`` with the variable's value (a multi-value variable in a
regex matcher becomes ``(a|b)``, "All" its ``allValue``) and ``$__rate_interval`` with
``max(4 × scrape interval, step + scrape interval)``; ``label_values(metric, label)`` is a
label-values API call whose result Grafana filters through the variable's regex.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
JSON_DIR = REPO / "dashboards" / "json"

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str


def committed_dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(JSON_DIR.glob("*.json"))}


def panel_queries(name: str, dashboard: Mapping[str, Any]) -> Iterator[PanelQuery]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield PanelQuery(name, panel["title"], target["refId"], target["expr"])


def annotation_queries(name: str, dashboard: Mapping[str, Any]) -> Iterator[PanelQuery]:
    for a in dashboard["annotations"]["list"]:
        if "expr" in a:
            yield PanelQuery(name, f"annotation {a['name']}", "-", a["expr"])


def interpolate(expr: str, values: Mapping[str, str]) -> str:
    """Replace every template variable; an unknown one fails the test that uses it."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return values[name]

    return _VAR.sub(value, expr)


def regex_values(values: list[str], grafana_regex: str) -> list[str]:
    """Grafana's variable regex: ``/pattern/``, the first capture group is the value."""
    if not grafana_regex:
        return sorted(set(values))
    pattern = re.compile(grafana_regex[1 : grafana_regex.rindex("/")])  # /pattern/flags
    out = set()
    for v in values:
        m = pattern.search(v)
        if m:
            out.add(m.group(1) if m.groups() else m.group(0))
    return sorted(out)
