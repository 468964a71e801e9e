"""SLO rules: window scaling, promtool check/test, and the ``sloscale rules`` command."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from actuators.sim.cluster import SimulatedCluster
from actuators.sim.scenarios import demo_world
from dashboards import rules
from dashboards.cli import main_rules
from dashboards.generate import ROOT, RULES_DIR
from dashboards.render import yaml_documents
from dashboards.rules import BurnAlert, SloRules, format_duration, scaled_alerts
from tests.support.prometheus import require_prometheus

EXAMPLE = ROOT / RULES_DIR / "examples/inference-deployments.yaml"
DAY = 86400.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(60, "1m", id="minute"),
        pytest.param(280, "4m40s", id="compound"),  # 5 m × 28/30
        pytest.param(3360, "56m", id="56m"),  # 1 h × 28/30
        pytest.param(2.8 * DAY, "2d19h12m", id="days"),  # 3 d × 28/30
        pytest.param(28 * DAY, "28d", id="no-weeks"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_30_day_window_gets_the_workbook_pairs_unchanged() -> None:
    assert scaled_alerts(30 * DAY) == rules.WORKBOOK_ALERTS


def test_windows_scale_with_the_slo_window_and_burn_rates_do_not() -> None:
    got = scaled_alerts(28 * DAY)
    assert got == (
        BurnAlert("page", 14.4, 3360, 280),  # 1 h and 5 m × 28/30
        BurnAlert("page", 6.0, 20160, 1680),  # 6 h and 30 m × 28/30
        BurnAlert("ticket", 3.0, 80640, 6720),  # 1 d and 2 h × 28/30
        BurnAlert("ticket", 1.0, 241920, 20160),  # 3 d and 6 h × 28/30
    )
    # the share of budget spent when the fastest page fires stays 14.4 × 1 h / 30 d = 2 %
    assert 14.4 * got[0].long_s / (28 * DAY) == pytest.approx(0.02)


def test_short_windows_never_go_under_a_minute() -> None:
    one_day = scaled_alerts(DAY)  # 5 m / 30 = 10 s would hold one scrape at most
    assert one_day[0].short_s == rules.MIN_WINDOW_S
    assert one_day[0].long_s == 120  # 1 h / 30


def test_recording_rules_keep_numerator_and_denominator_apart() -> None:
    slo = SloRules("shop/chat", 0.99, 28 * DAY)
    recorded = rules.recording_rules(slo)
    names = {r["record"] for r in recorded}
    for w in rules.windows(slo):
        assert {rules.requests_record(w), rules.good_record(w)} <= names
    for r in recorded:  # each a rate of one raw counter: never a ratio, never an average
        assert r["expr"].count("rate(") == 1 and "/" not in r["expr"].replace('"shop/chat"', "")
        assert "avg" not in r["expr"]


# --------------------------------------------------------------------------------------------
# promtool
# --------------------------------------------------------------------------------------------


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binaries = require_prometheus()
    return subprocess.run(
        [binaries.promtool, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_example_rules_pass_promtool_check() -> None:
    proc = _promtool("check", "rules", "example-slos.rules.yaml", cwd=ROOT / RULES_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_prometheusrule_objects_hold_rules_that_pass_promtool(tmp_path: Path) -> None:
    text = (ROOT / RULES_DIR / "example-slos.prometheusrule.yaml").read_text()
    objects = [d for d in yaml.safe_load_all(text) if d]
    assert {o["kind"] for o in objects} == {"PrometheusRule"}
    assert {o["apiVersion"] for o in objects} == {"monitoring.coreos.com/v1"}
    groups = [g for o in objects for g in o["spec"]["groups"]]
    (tmp_path / "from-crd.yaml").write_text(yaml_documents([{"groups": groups}]))
    proc = _promtool("check", "rules", "from-crd.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_each_alert_fires_at_its_burn_rate_and_not_below_it() -> None:
    """The committed promtool tests: per alert, a burn 5 % above (fires) and below (quiet)."""
    proc = _promtool("test", "rules", "example-slos.rules.test.yaml", cwd=ROOT / RULES_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = yaml.safe_load((ROOT / RULES_DIR / "example-slos.rules.test.yaml").read_text())
    names = [t["name"] for t in tests["tests"]]
    for burn in ("14.4", "6", "3", "1"):
        assert any(f"(above {burn}×)" in n for n in names)
        assert any(f"(below {burn}×)" in n for n in names)


def test_the_promtool_tests_catch_a_wrong_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules whose 6× page alert really fires at 5× fail the tests generated for 6×."""
    slo = SloRules("shop/chat", 0.99, 28 * DAY)
    (tmp_path / "t.yaml").write_text(yaml_documents([rules.tests_for([slo], ["r.yaml"])]))
    wrong = tuple(
        replace(a, burn_rate=5.0) if a.burn_rate == 6.0 else a for a in rules.WORKBOOK_ALERTS
    )
    monkeypatch.setattr(rules, "WORKBOOK_ALERTS", wrong)
    (tmp_path / "r.yaml").write_text(yaml_documents([rules.rule_file([slo])]))
    proc = _promtool("test", "rules", "t.yaml", cwd=tmp_path)
    assert proc.returncode != 0
    assert "burning 5.7× (below 6×)" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------
# sloscale rules
# --------------------------------------------------------------------------------------------


def _run(argv: list[str], **kw: Any) -> tuple[int, str, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    code = main_rules(argv, out=out, err=err, **kw)
    return code, out.getvalue(), err.getvalue()


def test_rules_from_manifests_one_prometheusrule_per_slo() -> None:
    code, out, err = _run([str(EXAMPLE), "--namespace", "monitoring"])
    assert code == 0, err
    objects = list(yaml.safe_load_all(out))
    assert [o["metadata"]["name"] for o in objects] == [
        "sloscale-slo-inference-chat",
        "sloscale-slo-inference-rerank",
    ]
    assert {o["metadata"]["namespace"] for o in objects} == {"monitoring"}
    rerank = objects[1]["spec"]["groups"][0]["rules"]
    page = next(r for r in rerank if r.get("labels", {}).get("burn_rate") == "14.4")
    assert page["labels"]["long_window"] == "14m"  # 1 h × 7 d / 30 d
    assert "14.4 * (1 - 0.999)" in page["expr"]


def test_plain_rule_file_format() -> None:
    code, out, _ = _run([str(EXAMPLE), "--format", "rules"])
    assert code == 0
    doc = yaml.safe_load(out)
    assert [g["name"] for g in doc["groups"]] == [
        "sloscale-slo-inference-chat",
        "sloscale-slo-inference-rerank",
    ]


def test_out_dir_gets_both_forms_per_slo(tmp_path: Path) -> None:
    code, _, err = _run([str(EXAMPLE), "--out", str(tmp_path)])
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "inference-chat.prometheusrule.yaml",
        "inference-chat.rules.yaml",
        "inference-rerank.prometheusrule.yaml",
        "inference-rerank.rules.yaml",
    ]


def test_from_cluster_reads_the_annotated_deployments_of_a_snapshot() -> None:
    code, out, err = _run(["--from-cluster"], cluster=SimulatedCluster(demo_world()))
    assert code == 0, err
    names = [o["metadata"]["name"] for o in yaml.safe_load_all(out)]
    assert names == [
        "sloscale-slo-demo-chat",
        "sloscale-slo-demo-rerank",
        "sloscale-slo-demo-vision",
    ]


def _manifest(tmp_path: Path, text: str) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return str(path)


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
  annotations:
{annotations}
"""

BAD_INPUT = [
    pytest.param(["--from-cluster"], "needs the Kubernetes adapter", id="no-cluster"),
    pytest.param([], "give manifest FILEs or --from-cluster", id="nothing"),
    pytest.param(["/nonexistent.yaml"], "cannot read /nonexistent.yaml", id="missing-file"),
    pytest.param(["{tmp}", "--format", "xml"], "invalid choice: 'xml'", id="format"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    path = _manifest(tmp_path, DEPLOYMENT.format(annotations='    sloscale.io/enabled: "true"'))
    code, out, err = _run([a.replace("{tmp}", path) for a in argv])
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and message in err


BAD_MANIFESTS = [
    pytest.param("kind: [", "not valid YAML (line 1)", id="yaml"),
    pytest.param("kind: Service\nmetadata: {name: x}\n", "no Deployment with", id="no-slo"),
    pytest.param(
        DEPLOYMENT.format(
            annotations='    sloscale.io/enabled: "true"\n'
            '    sloscale.io/latency-target-ms: "100"\n'
            '    sloscale.io/objective: "100"'
        ),
        "default/chat: annotation sloscale.io/objective='100': must be in (0, 100)",
        id="bad-objective",
    ),
    pytest.param(
        DEPLOYMENT.format(annotations="    sloscale.io/enabled: true"),
        "annotation sloscale.io/enabled must be a string",
        id="unquoted",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_MANIFESTS)
def test_bad_manifests_are_one_line_and_exit_2(text: str, message: str, tmp_path: Path) -> None:
    code, out, err = _run([_manifest(tmp_path, text)])
    assert (code, out) == (2, "")
    assert len(err.strip().splitlines()) == 1 and message in err, err
