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
from controller.spec import parse_slo_spec
from dashboards import rules
from dashboards import sli as sli_module
from dashboards.cli import RuleOptions, main_rules, slos_from_annotations
from dashboards.generate import ROOT, RULES_DIR
from dashboards.render import yaml_documents
from dashboards.rules import BurnAlert, SloRules, format_duration, pyrra_alerts, sloth_alerts
from dashboards.sli import LEADER_FILTER, sli_for
from tests.support.prometheus import require_prometheus
from tests.support.sloth import require_sloth

EXAMPLE = ROOT / RULES_DIR / "examples/inference-deployments.yaml"
DAY = 86400.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(60, "1m", id="minute"),
        pytest.param(280, "4m40s", id="compound"),
        pytest.param(2.8 * DAY, "2d19h12m", id="days"),
        pytest.param(28 * DAY, "28d", id="no-weeks"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(300, "5m", id="minutes"),
        pytest.param(5400, "1h30m", id="compound"),
        pytest.param(3 * DAY, "3d", id="days"),
        pytest.param(7 * DAY, "1w", id="week"),
        pytest.param(28 * DAY, "4w", id="weeks"),  # as Sloth names slo:sli_error:ratio_rate4w
        pytest.param(30 * DAY, "30d", id="not-weeks"),
    ],
)
def test_prom_duration_prints_as_prometheus_does(seconds: float, text: str) -> None:
    assert rules.prom_duration(seconds) == text


def test_sloth_windows_at_30_days_are_the_workbook_pairs() -> None:
    assert sloth_alerts(30 * DAY) == (
        BurnAlert("page", 14.4, 3600, 300),
        BurnAlert("page", 6.0, 6 * 3600, 1800),
        BurnAlert("ticket", 3.0, DAY, 2 * 3600),
        BurnAlert("ticket", 1.0, 3 * DAY, 6 * 3600),
    )


def test_sloth_windows_at_28_days_keep_the_windows_and_the_budget_shares() -> None:
    """Sloth's google-28d windows: the same windows, burn rates for 2/5/10/10 % of budget."""
    got = sloth_alerts(28 * DAY)
    assert [(a.long_s, a.short_s) for a in got] == [
        (3600, 300),
        (6 * 3600, 1800),
        (DAY, 2 * 3600),
        (3 * DAY, 6 * 3600),
    ]
    assert [a.burn_rate for a in got] == [13.44, 5.6, 2.8, 0.9333333333]
    for a, share in zip(got, (0.02, 0.05, 0.10, 0.10), strict=True):
        assert a.burn_rate * a.long_s / (28 * DAY) == pytest.approx(share)


def test_default_28_day_window_has_no_ugly_windows() -> None:
    """Today's windows scaled from 30 days gave rate4m40s, 56m and 2d19h12m at 28 days."""
    slo = SloRules("shop/chat", 0.99, 28 * DAY)
    assert rules.windows(slo) == ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    text = yaml_documents([rules.rule_file([slo])])
    for ugly in ("4m40s", "56m", "2d19h12m", "[1h52m]"):
        assert ugly not in text


def test_pyrra_windows_at_28_days_are_pyrras_own() -> None:
    assert pyrra_alerts(28 * DAY) == (
        BurnAlert("page", 14.0, 3600, 300, 120),
        BurnAlert("page", 7.0, 6 * 3600, 1800, 900),
        BurnAlert("ticket", 2.0, DAY, 2 * 3600, 3600),
        BurnAlert("ticket", 1.0, 4 * DAY, 6 * 3600, 3 * 3600),
    )


def test_pyrra_windows_scale_with_the_slo_window_to_whole_minutes() -> None:
    got = pyrra_alerts(30 * DAY)
    minutes = [(a.long_s / 60, a.short_s / 60, a.for_s / 60) for a in got]
    # 30/28 of 60, 5, 2; 360, 30, 15; 1440, 120, 60; 5760, 360, 180 minutes, rounded
    assert minutes == [(64, 5, 2), (386, 32, 16), (1543, 129, 64), (6171, 386, 193)]
    assert [a.burn_rate for a in got] == [14.0, 7.0, 2.0, 1.0]


def test_short_windows_never_go_under_a_minute() -> None:
    one_day = pyrra_alerts(DAY)  # 5 m / 28 = 11 s would hold one scrape at most
    assert one_day[0].short_s == rules.MIN_WINDOW_S
    assert one_day[0].long_s == 120  # 1 h / 28, to the minute


@pytest.mark.parametrize(
    ("days", "expected"), [(28, "sloth"), (30, "sloth"), (7, "pyrra"), (90, "pyrra")]
)
def test_auto_windows_are_sloths_where_sloth_has_them(days: int, expected: str) -> None:
    assert rules.resolve_windows("auto", days * DAY) == expected
    assert rules.resolve_windows("pyrra", 28 * DAY) == "pyrra"


def test_recording_rules_keep_numerator_and_denominator_apart() -> None:
    slo = _slo(CHAT)
    recorded = rules.recording_rules(slo)
    by_name = {r["record"]: r for r in recorded}
    for w in rules.windows(slo):
        for name in (rules.requests_record(w), rules.good_record(w)):
            expr = by_name[name]["expr"]  # a sum of one rate of one raw series
            assert expr.count("rate(") == 1 and "avg" not in expr and " / " not in expr
        ratio = by_name[rules.error_record(w)]["expr"]
        assert rules.good_record(w) in ratio and rules.requests_record(w) in ratio
    period = by_name["slo:sli_error:ratio_rate4w"]["expr"]  # a ratio of sums, not of averages
    assert "sum_over_time(sloscale:slo_good_requests:rate5m" in period
    assert "sum_over_time(sloscale:slo_requests:rate5m" in period
    assert "count_over_time" not in period


def test_records_follow_sloths_conventions() -> None:
    slo = _slo(CHAT)
    recorded = {r["record"]: r for r in rules.recording_rules(slo)}
    for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "4w"):
        assert recorded[f"slo:sli_error:ratio_rate{w}"]["labels"]["sloth_window"] == w
    assert recorded["slo:objective:ratio"]["expr"] == "vector(0.99)"
    assert recorded["slo:error_budget:ratio"]["expr"] == "vector(1 - 0.99)"
    assert recorded["slo:time_period:days"]["expr"] == "vector(28)"
    burn = recorded["slo:current_burn_rate:ratio"]["expr"]
    assert "slo:sli_error:ratio_rate5m" in burn and "slo:error_budget:ratio" in burn
    assert "slo:sli_error:ratio_rate4w" in recorded["slo:period_burn_rate:ratio"]["expr"]
    assert "slo:period_error_budget_remaining:ratio" in recorded
    for r in recorded.values():
        assert r["labels"]["sloth_id"] == "default.chat-e2e-latency"
        assert r["labels"]["sloth_service"] == "default.chat"
        assert r["labels"]["sloth_slo"] == "e2e-latency"
        assert r["labels"]["workload"] == "default/chat"


def test_burn_alerts_read_the_error_ratio_records_of_both_windows() -> None:
    slo = _slo(CHAT)
    alerts = [r for r in rules.alerting_rules(slo) if r["alert"] == rules.ALERT_NAME]
    assert len(alerts) == 4
    page = alerts[0]
    assert 'slo:sli_error:ratio_rate1h{sloth_id="default.chat-e2e-latency"}' in page["expr"]
    assert 'slo:sli_error:ratio_rate5m{sloth_id="default.chat-e2e-latency"}' in page["expr"]
    assert "> (13.44 * (1 - 0.99))" in page["expr"]
    assert page["labels"]["long_window"] == "1h" and page["labels"]["short_window"] == "5m"


# --------------------------------------------------------------------------------------------
# the SLI: the workload's own histogram
# --------------------------------------------------------------------------------------------

CHAT = {"latency-target-ms": "100"}


def _spec(annotations: dict[str, str]) -> Any:
    given = {"sloscale.io/enabled": "true"}
    given.update({f"sloscale.io/{k}": v for k, v in annotations.items()})
    parsed = parse_slo_spec("default/chat", given)
    assert parsed.spec is not None, parsed.errors
    return parsed.spec


def _slo(annotations: dict[str, str], **options: Any) -> SloRules:
    slos = slos_from_annotations(
        [
            (
                "default/chat",
                {
                    "sloscale.io/enabled": "true",
                    **{f"sloscale.io/{k}": v for k, v in annotations.items()},
                },
            )
        ],
        RuleOptions(**options),
    )
    return slos[0]


def test_sli_reads_the_bucket_at_the_target_and_the_count() -> None:
    sli, warnings = sli_for("default/chat", _spec(CHAT))
    assert warnings == ()
    assert sli.total("5m") == (
        "sum(rate(http_server_request_duration_seconds_count"
        '{namespace="default", deployment="chat"}[5m]))'
    )
    # a failed request (error_type set) is never good, however fast
    assert sli.good("5m") == (
        "sum(rate(http_server_request_duration_seconds_bucket"
        '{namespace="default", deployment="chat", error_type="", le="0.1"}[5m]))'
    )
    assert "sloscale_" not in sli.total() + sli.good()  # not the controller's counters
    assert sli.labels() == {}


def test_a_target_between_bounds_reads_the_bound_below_and_says_so() -> None:
    slo = _slo({"latency-target-ms": "800"})
    assert 'le="0.75"' in slo.indicator.good("5m")
    assert len(slo.warnings) == 1
    assert "0.8 s is not a bucket bound" in slo.warnings[0]
    assert "0.75 s, the nearest bound below" in slo.warnings[0]
    for rule in rules.rule_group(slo)["rules"]:
        assert rule["labels"]["latency_target"] == "0.8"
        assert rule["labels"]["sli_le"] == "0.75"


def test_ttft_reads_the_engines_ttft_histogram_of_the_named_model() -> None:
    sli, _ = sli_for(
        "default/chat",
        _spec(
            {
                "metrics-profile": "vllm",
                "latency-metric": "ttft",
                "latency-target-ms": "500",
                "model": "llama",
            }
        ),
    )
    assert sli.good("1h") == (
        "sum(rate(vllm:time_to_first_token_seconds_bucket"
        '{namespace="default", deployment="chat", model_name="llama", le="0.5"}[1h]))'
    )


def test_tpot_reads_the_current_name_or_the_old_one_never_both() -> None:
    sli, _ = sli_for(
        "default/chat",
        _spec({"metrics-profile": "vllm", "latency-metric": "tpot", "latency-target-ms": "50"}),
    )
    total = sli.total("5m")
    assert total.startswith("sum(rate(vllm:inter_token_latency_seconds_count{")
    assert " or rate(vllm:time_per_output_token_seconds_count{" in total


def test_a_whole_number_bound_matches_how_go_and_python_write_it() -> None:
    sli, _ = sli_for(
        "default/chat", _spec({"metrics-profile": "vllm", "latency-target-ms": "1000"})
    )
    assert 'le=~"1|1\\\\.0"' in sli.good("5m")


def test_tgi_failures_count_in_the_total() -> None:
    sli, _ = sli_for("default/chat", _spec({"metrics-profile": "tgi", "latency-target-ms": "500"}))
    assert "tgi_request_duration_count" in sli.total("5m")
    assert "+ (sum(rate(tgi_request_failure{" in sli.total("5m")


def test_triton_falls_back_to_the_controllers_counters_with_a_warning() -> None:
    slo = _slo({"metrics-profile": "triton", "latency-target-ms": "100"})
    assert "sloscale_workload_requests_total" in slo.indicator.total("5m")
    assert "summary, not a histogram" in slo.warnings[0]


def test_buckets_and_sli_options() -> None:
    custom = _slo({"latency-target-ms": "800"}, buckets_s=(0.4, 0.8, 1.6))
    assert 'le="0.8"' in custom.indicator.good("5m") and custom.warnings == ()
    controller = _slo(CHAT, sli="controller")
    assert "sloscale_workload_good_requests_total" in controller.indicator.good("5m")


def test_a_target_under_the_first_bucket_is_an_error(tmp_path: Path) -> None:
    path = _manifest(
        tmp_path,
        DEPLOYMENT.format(
            annotations='    sloscale.io/enabled: "true"\n'
            '    sloscale.io/metrics-profile: "vllm"\n'
            '    sloscale.io/latency-target-ms: "200"'
        ),
    )
    code, out, err = _run([path])
    assert (code, out) == (2, "")
    assert "0.2 s is below the first bucket bound" in err and "--buckets" in err


# --------------------------------------------------------------------------------------------
# the controller's series: the leader's only
# --------------------------------------------------------------------------------------------


def test_every_rule_on_the_controllers_series_keeps_the_leaders() -> None:
    """With --leader-elect every replica exports the controller's series: a rule that reads
    them without ``and on (instance, job) sloscale_leader == 1`` counts the followers too."""
    slos = [_slo(CHAT, sli="controller"), _slo(CHAT)]
    checked = 0
    for group in rules.rule_file(slos)["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            reads = [m for m in CONTROLLER_SERIES if m in expr]
            if reads and not expr.startswith("absent("):
                checked += 1
                assert LEADER_FILTER in expr, expr
    assert checked >= 2 * 7 + 2 + 2  # the SLI records, the unresolved alert, the controller's


CONTROLLER_SERIES = (
    "sloscale_workload_",
    "sloscale_tick_errors_total",
    "sloscale_metrics_unavailable_total",
)


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


def test_each_alert_fires_at_its_burn_rate_and_not_below_it_at_28_and_30_days() -> None:
    """The committed promtool tests: per alert, a burn 5 % above (fires) and below (quiet),
    for the example's 28-day (chat), 30-day (rerank) and 7-day (summarize) SLOs."""
    proc = _promtool("test", "rules", "example-slos.rules.test.yaml", cwd=ROOT / RULES_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = yaml.safe_load((ROOT / RULES_DIR / "example-slos.rules.test.yaml").read_text())
    names = [t["name"] for t in tests["tests"]]
    for workload, burns in (
        ("inference/chat", ("13.44", "5.6", "2.8", "0.9333333333")),  # 28 d, Sloth's windows
        ("inference/rerank", ("14.4", "6", "3", "1")),  # 30 d: the workbook's
        ("inference/summarize", ("14", "7", "2", "1")),  # 7 d: Pyrra's
    ):
        for burn in burns:
            assert any(n.startswith(workload) and f"(above {burn}×)" in n for n in names)
            assert any(n.startswith(workload) and f"(below {burn}×)" in n for n in names)


@pytest.mark.parametrize("days", [28, 30])
def test_generated_promtool_tests_pass_with_pyrras_windows(days: int, tmp_path: Path) -> None:
    """Sloth's windows at 28 and 30 days are the committed example's (above)."""
    slo = replace(_slo(CHAT), window_s=days * DAY, windows="pyrra")
    (tmp_path / "r.yaml").write_text(yaml_documents([rules.rule_file([slo])]))
    (tmp_path / "t.yaml").write_text(yaml_documents([rules.tests_for([slo], ["r.yaml"])]))
    assert _promtool("check", "rules", "r.yaml", cwd=tmp_path).returncode == 0
    proc = _promtool("test", "rules", "t.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_promtool_tests_catch_a_wrong_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules whose 6× page alert really fires at 4.8× fail the tests generated for 6×."""
    slo = replace(_slo(CHAT), window_s=30 * DAY)
    (tmp_path / "t.yaml").write_text(yaml_documents([rules.tests_for([slo], ["r.yaml"])]))
    wrong = tuple(
        (sev, 0.04, long_s, short_s) if share == 0.05 else (sev, share, long_s, short_s)
        for sev, share, long_s, short_s in rules.SLOTH_WINDOWS
    )
    monkeypatch.setattr(rules, "SLOTH_WINDOWS", wrong)
    (tmp_path / "r.yaml").write_text(yaml_documents([rules.rule_file([slo])]))
    proc = _promtool("test", "rules", "t.yaml", cwd=tmp_path)
    assert proc.returncode != 0
    assert "burning 5.7× (below 6×)" in proc.stdout + proc.stderr


def test_the_promtool_tests_catch_a_missing_leader_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the leader filter, a follower's series count: the generated tests fail on the
    SLI read from the controller's counters, the unresolved-target alert and the
    controller's own alerts."""
    slo = _slo(CHAT, sli="controller")
    (tmp_path / "t.yaml").write_text(yaml_documents([rules.tests_for([slo], ["r.yaml"])]))
    monkeypatch.setattr(rules, "LEADER_FILTER", "")
    monkeypatch.setattr(sli_module, "LEADER_FILTER", "")
    (tmp_path / "r.yaml").write_text(yaml_documents([rules.rule_file([slo])]))
    proc = _promtool("test", "rules", "t.yaml", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "(below 13.44×)" in output  # the follower's bad requests burn the budget
    assert "a follower's unresolved target does not alert" in output
    assert "a follower's series never alert" in output


# --------------------------------------------------------------------------------------------
# sloscale rules
# --------------------------------------------------------------------------------------------


def _run(argv: list[str], **kw: Any) -> tuple[int, str, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    code = main_rules(argv, out=out, err=err, **kw)
    return code, out.getvalue(), err.getvalue()


EXAMPLE_SLOS = [
    "sloscale-slo-inference-chat",
    "sloscale-slo-inference-rerank",
    "sloscale-slo-inference-summarize",
]


def test_rules_from_manifests_one_prometheusrule_per_slo_and_the_controllers() -> None:
    code, out, err = _run([str(EXAMPLE), "--namespace", "monitoring"])
    assert code == 0, err
    objects = list(yaml.safe_load_all(out))
    assert [o["metadata"]["name"] for o in objects] == [*EXAMPLE_SLOS, "sloscale-controller"]
    assert {o["metadata"]["namespace"] for o in objects} == {"monitoring"}
    rerank = objects[1]["spec"]["groups"][0]["rules"]
    page = next(r for r in rerank if r.get("labels", {}).get("burn_rate") == "14.4")
    assert page["labels"]["long_window"] == "1h"  # 30 d: the workbook's windows
    assert "14.4 * (1 - 0.999)" in page["expr"]
    # the target (0.8 s) is no bucket bound: one warning line, exit 0
    assert err.count("warning:") == 1 and "inference/rerank" in err


def test_windows_option_picks_pyrras(tmp_path: Path) -> None:
    code, out, _ = _run([str(EXAMPLE), "--format", "rules", "--windows", "pyrra"])
    assert code == 0
    chat = yaml.safe_load(out)["groups"][0]["rules"]
    page = next(r for r in chat if r.get("labels", {}).get("burn_rate") == "14")
    assert page["for"] == "2m" and page["labels"]["long_window"] == "1h"


def test_plain_rule_file_format() -> None:
    code, out, _ = _run([str(EXAMPLE), "--format", "rules"])
    assert code == 0
    doc = yaml.safe_load(out)
    assert [g["name"] for g in doc["groups"]] == [*EXAMPLE_SLOS, "sloscale-controller"]
    code, out, _ = _run([str(EXAMPLE), "--format", "rules", "--no-controller-alerts"])
    assert [g["name"] for g in yaml.safe_load(out)["groups"]] == EXAMPLE_SLOS


def test_out_dir_gets_every_form_per_slo(tmp_path: Path) -> None:
    code, _, err = _run([str(EXAMPLE), "--out", str(tmp_path)])
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            *(
                f"inference-{n}.{form}.yaml"
                for n in ("chat", "rerank", "summarize")
                for form in ("prometheusrule", "rules", "sloth", "pyrra")
            ),
            "sloscale-controller.prometheusrule.yaml",
            "sloscale-controller.rules.yaml",
        ]
    )


def test_from_cluster_reads_the_annotated_deployments_of_a_snapshot() -> None:
    code, out, err = _run(["--from-cluster"], cluster=SimulatedCluster(demo_world()))
    assert code == 0, err
    names = [o["metadata"]["name"] for o in yaml.safe_load_all(out)]
    assert names == [
        "sloscale-slo-demo-chat",
        "sloscale-slo-demo-rerank",
        "sloscale-slo-demo-vision",
        "sloscale-controller",
    ]


# --------------------------------------------------------------------------------------------
# --format sloth
# --------------------------------------------------------------------------------------------


def _sloth_documents(fmt: str = "sloth") -> tuple[str, list[dict[str, Any]]]:
    code, out, err = _run([str(EXAMPLE), "--format", fmt])
    assert code == 0, err
    return out, [d for d in yaml.safe_load_all(out) if d]


def test_sloth_format_is_a_prometheus_v1_spec_per_workload() -> None:
    text, specs = _sloth_documents()
    assert [s["service"] for s in specs] == [
        "inference.chat",
        "inference.rerank",
        "inference.summarize",
    ]
    chat = specs[0]
    assert chat["version"] == "prometheus/v1"
    (slo,) = chat["slos"]
    assert (slo["name"], slo["objective"]) == ("e2e-latency", 99.0)
    events = slo["sli"]["events"]
    for query in events.values():
        assert "[{{.window}}]" in query
        assert "http_server_request_duration_seconds_count" in query
    assert 'le="0.1"' in events["error_query"]
    assert slo["alerting"]["page_alert"]["labels"] == {"severity": "page"}
    assert specs[2]["slos"][0]["name"] == "ttft-latency"
    # the spec holds no window: each says how to run Sloth on it
    assert "sloth generate --default-slo-period=28d" in text
    assert "sloth generate --default-slo-period=30d" in text
    assert "give it an AlertWindows for 7d" in text


def test_sloth_k8s_format_is_a_prometheusservicelevel_per_workload() -> None:
    _, objects = _sloth_documents("sloth-k8s")
    assert {(o["apiVersion"], o["kind"]) for o in objects} == {
        ("sloth.slok.dev/v1", "PrometheusServiceLevel")
    }
    assert [o["metadata"]["namespace"] for o in objects] == ["inference"] * 3
    events = objects[0]["spec"]["slos"][0]["sli"]["events"]
    assert set(events) == {"errorQuery", "totalQuery"}


def test_slo_specs_are_accepted_by_sloths_own_cli(tmp_path: Path) -> None:
    """``sloth validate`` and ``sloth generate`` (Sloth's CLI built from its Go module by
    scripts/install-sloth) accept each spec at its window, and promtool accepts the rules
    Sloth generates from it."""
    sloth = require_sloth()
    text, _ = _sloth_documents()
    _, k8s = _sloth_documents("sloth-k8s")
    for i, (doc, k8s_doc) in enumerate(zip(text.split("\n---\n"), k8s, strict=True)):
        period = "7d" if "7d" in doc.splitlines()[0] else ("28d" if "28d" in doc else "30d")
        windows: list[str] = []
        if period == "7d":  # Sloth has no alert windows for 7 days: give it some
            (tmp_path / "windows").mkdir(exist_ok=True)
            (tmp_path / "windows" / "7d.yaml").write_text(SLOTH_7D_WINDOWS)
            windows = ["--slo-period-windows-path", str(tmp_path / "windows")]
        for name, content in ((f"spec{i}.yaml", doc), (f"k8s{i}.yaml", yaml_documents([k8s_doc]))):
            (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
            (tmp_path / "in" / name).write_text(content)
            common = ["--default-slo-period", period, *windows, "--no-log"]
            proc = _sloth(sloth, "validate", "-i", str(tmp_path / "in" / name), *common)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            out = tmp_path / f"sloth-{name}"
            proc = _sloth(
                sloth, "generate", "-i", str(tmp_path / "in" / name), "-o", str(out), *common
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            if name.startswith("spec"):
                check = _promtool("check", "rules", out.name, cwd=tmp_path)
                assert check.returncode == 0, check.stdout + check.stderr


SLOTH_7D_WINDOWS = """\
apiVersion: sloth.slok.dev/v1
kind: AlertWindows
spec:
  sloPeriod: 7d
  page:
    quick: {errorBudgetPercent: 8, shortWindow: 5m, longWindow: 1h}
    slow: {errorBudgetPercent: 12.5, shortWindow: 30m, longWindow: 6h}
  ticket:
    quick: {errorBudgetPercent: 20, shortWindow: 2h, longWindow: 1d}
    slow: {errorBudgetPercent: 42, shortWindow: 6h, longWindow: 3d}
"""


def _sloth(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


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
    pytest.param(["{tmp}", "--buckets", "a,b"], "not a comma-separated list", id="buckets"),
    pytest.param(["{tmp}", "--buckets", "0,1"], "positive bounds", id="zero-bucket"),
    pytest.param(["{tmp}", "--windows", "google"], "invalid choice: 'google'", id="windows"),
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
