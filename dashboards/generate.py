"""Regenerate every committed file that comes from this package: ``python -m dashboards.generate``.

The dashboards' JSON (``dashboards/json/``), the Grafana sidecar ConfigMaps
(``deploy/grafana/``) and the example SLO rules with their promtool tests
(``deploy/prometheus-rules/``). ``tests/dashboards`` fails when a committed file and
``committed_files()`` disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dashboards.admission import policy_yaml
from dashboards.catalog import all_dashboards
from dashboards.cli import pyrra_documents, slos_from_files, sloth_documents
from dashboards.render import configmaps_yaml, dashboard_json, yaml_documents
from dashboards.rules import controller_prometheus_rule, prometheus_rule, rule_file, tests_for

ROOT = Path(__file__).resolve().parent.parent
JSON_DIR = Path("dashboards/json")
GRAFANA_DIR = Path("deploy/grafana")
RULES_DIR = Path("deploy/prometheus-rules")
EXAMPLE_MANIFEST = RULES_DIR / "examples/inference-deployments.yaml"
EXAMPLE_STEM = "example-slos"


README_INTRO = """\
# sloscale dashboards and SLO alert rules

Generated from code: `dashboards/catalog.py` (the dashboards) and `dashboards/rules.py` (the
rules). Regenerate every committed file with `.venv/bin/python -m dashboards.generate`; the
tests in `tests/dashboards` fail when a committed file and the generator disagree, and run
every panel's queries against a real Prometheus scraping a short closed loop.

- `sloscale dashboards --out DIR` writes the three dashboards as JSON (Grafana 10 or later,
  dashboard schema 39). Each has a `datasource` variable (pick any Prometheus) and
  `namespace`/`workload` variables, cut out of the controller's `workload="<ns>/<name>"` label.
  sloscale's decisions that change something (ScaleUp, ScaleDown, Resize, Preempted, Resumed,
  ...) are drawn as annotations on every time series.
- `sloscale rules FILE...` (or `--from-cluster`) prints a `PrometheusRule` per SLO and one
  for the controller (`--format rules`: a plain Prometheus rule file; `--format sloth`: Sloth
  specs; `--out DIR`: every form, one file per SLO). The SLI is each workload's own latency
  histogram, its bucket at the target over its count (`dashboards/sli.py`), so it exists while
  the controller is down; records follow Sloth's names (`slo:sli_error:ratio_rate<w>`,
  `slo:objective:ratio`, `slo:error_budget:ratio`, burn rates); `SloscaleErrorBudgetBurn` is
  the SRE workbook's multi-window, multi-burn-rate alert on Sloth's windows (5m to 3d; at 30
  days 14.4× over 1 h and 5 m and 6× over 6 h and 30 m page, 3× over 1 d and 2 h and 1× over
  3 d and 6 h open a ticket) for 28- and 30-day SLOs, Pyrra's scaled ones otherwise;
  `SloscaleSLIMissing` when the SLI's series are gone; `SloscaleLatencyTargetUnresolved` when
  the controller says the histogram cannot resolve the target; and the controller's
  `SloscaleNoLeader`, `SloscaleTickErrors`, `SloscaleMetricsUnavailable`, which like every
  rule on the controller's series keep the leader's. See `docs/slo-rules.md`.
- `deploy/grafana/`: ConfigMaps labelled `grafana_dashboard: "1"` for the Grafana sidecar,
  and a file-provisioning example. `deploy/prometheus-rules/`: example rules and Sloth specs
  generated from `examples/inference-deployments.yaml`, with their `promtool test rules` unit
  tests.

The "workloads' own HTTP metrics" panels read the `http` profile's
`http_server_request_duration_seconds` histogram and expect `namespace` and `deployment`
labels on it (the simulator sets both; on a cluster, add `deployment` in the PodMonitor's
relabelling). "GPU activity per device" reads dcgm-exporter: `DCGM_FI_PROF_GR_ENGINE_ACTIVE`
where it exists (on a MIG instance it is the only utilisation DCGM reports), else
`DCGM_FI_DEV_GPU_UTIL` / 100, one series per card or MIG instance (`UUID`, `GPU_I_ID`).
Everything else reads only the controller's own `/metrics`.

With several replicas (`sloscale run --leader-elect`) every replica exports the same series;
every query keeps the leader's only (`and on (instance, job) sloscale_leader == 1`), so sums
are not doubled by followers. The SLO overview opens with stat and gauge panels coloured by
threshold: attainment above the objective, error budget left, burn rate over 1 h.

## Panels and the question each answers
"""


def readme() -> str:
    """``dashboards/README.md``: how to use the package, and every panel with its question."""
    lines = [README_INTRO]
    for name, dashboard in all_dashboards().items():
        lines.append(f"### {dashboard.title} (`json/{name}.json`)\n")
        for row in dashboard.rows:
            lines.append(f"*{row.title}*\n")
            lines.extend(f"- **{p.title}** (`{p.unit}`): {p.question}" for p in row.panels)
            lines.append("")
    return "\n".join(lines)


def committed_files(root: Path = ROOT) -> dict[Path, str]:
    """Each generated file (relative to the repository root) and its content."""
    dashboards = all_dashboards()
    files = {JSON_DIR / f"{name}.json": dashboard_json(d) for name, d in dashboards.items()}
    files[Path("dashboards/README.md")] = readme()
    files[GRAFANA_DIR / "dashboards-configmaps.yaml"] = configmaps_yaml(dashboards)
    slos = slos_from_files([root / EXAMPLE_MANIFEST])
    header = f"# Generated by `python -m dashboards.generate` from {EXAMPLE_MANIFEST}.\n"
    rules_name = f"{EXAMPLE_STEM}.rules.yaml"
    files[RULES_DIR / f"{EXAMPLE_STEM}.prometheusrule.yaml"] = header + yaml_documents(
        [*(prometheus_rule(s) for s in slos), controller_prometheus_rule()]
    )
    files[RULES_DIR / rules_name] = header + yaml_documents([rule_file(slos)])
    files[RULES_DIR / f"{EXAMPLE_STEM}.rules.test.yaml"] = header + yaml_documents(
        [tests_for(slos, [rules_name])]
    )
    files[RULES_DIR / f"{EXAMPLE_STEM}.sloth.yaml"] = header + sloth_documents(slos)
    files[RULES_DIR / f"{EXAMPLE_STEM}.pyrra.yaml"] = header + pyrra_documents(slos)
    files[Path("deploy/admission/policy.yaml")] = policy_yaml()
    return files


def main() -> int:
    for path, text in committed_files().items():
        target = ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
