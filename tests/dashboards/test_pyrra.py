"""``sloscale rules --format pyrra``: one Pyrra ``ServiceLevelObjective`` per SLO, reading the
same histogram bucket as sloscale's own records. That Pyrra's real CRD admits the objects is
``tests/k8s/test_real_pyrra.py``, on the real API server."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import yaml

from dashboards.cli import RuleOptions, main_rules, slos_from_annotations
from dashboards.pyrra import pyrra_warnings, service_level_objective
from dashboards.rules import SloRules
from tests.dashboards.test_rules import EXAMPLE

TARGET = "sloscale.io/latency-target-ms"


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main_rules(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _slo(annotations: dict[str, str], workload: str = "default/chat", **options: Any) -> SloRules:
    given = {"sloscale.io/enabled": "true"}
    given.update({f"sloscale.io/{k}": v for k, v in annotations.items()})
    (slo,) = slos_from_annotations([(workload, given)], RuleOptions(**options))
    return slo


def example_objects() -> tuple[list[dict[str, Any]], str, str]:
    """The example manifest's SLOs as ``--format pyrra`` prints them, and its output and
    warnings."""
    code, out, err = _run([str(EXAMPLE), "--format", "pyrra"])
    assert code == 0, err
    return [d for d in yaml.safe_load_all(out) if d], out, err


def _latency(obj: dict[str, Any]) -> tuple[str, str]:
    latency = obj["spec"]["indicator"]["latency"]
    return latency["success"]["metric"], latency["total"]["metric"]


VECTOR_SELECTOR = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-z_]+="[^"]*"(, )?)*\}$')


def test_one_service_level_objective_per_workload_in_its_namespace() -> None:
    objects, text, _ = example_objects()
    assert [(o["apiVersion"], o["kind"]) for o in objects] == [
        ("pyrra.dev/v1alpha1", "ServiceLevelObjective")
    ] * 3
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects] == [
        ("inference", "sloscale-chat"),
        ("inference", "sloscale-rerank"),
        ("inference", "sloscale-summarize"),
    ]
    for obj in objects:
        assert set(obj["spec"]) == {"description", "target", "window", "indicator"}
        assert set(obj["spec"]["indicator"]) == {"latency"}
        assert obj["metadata"]["labels"]["pyrra.dev/deployment"] == obj["metadata"]["name"][9:]
    # each document says whose it is and its window
    assert "# inference/chat: Pyrra ServiceLevelObjective, window 28d" in text


def test_target_is_the_objective_in_percent_as_a_string_and_window_the_slos() -> None:
    objects, _, _ = example_objects()
    assert [(o["spec"]["target"], o["spec"]["window"]) for o in objects] == [
        ("99", "28d"),  # the default objective and window
        ("99.9", "30d"),
        ("99.5", "7d"),
    ]
    odd = service_level_objective(
        _slo({"latency-target-ms": "100", "objective": "99.95", "window": "36h"})
    )
    assert (odd["spec"]["target"], odd["spec"]["window"]) == ("99.95", "1d12h")


def test_the_indicator_reads_the_same_bucket_and_count_as_sloscales_records() -> None:
    """Pyrra wraps the selectors in ``sum(rate(…[w]))`` itself: so wrapped, they are exactly
    the good and total queries of sloscale's own records (dashboards.sli), nothing else."""
    for given in (
        {"latency-target-ms": "100"},  # http: a failed request is never good
        {"latency-target-ms": "800"},  # no bound at 0.8 s: 0.75 s below it
        {"metrics-profile": "vllm", "latency-target-ms": "500", "model": "llama"},
        {"metrics-profile": "sglang", "latency-metric": "ttft", "latency-target-ms": "250"},
    ):
        slo = _slo(given)
        success, total = _latency(service_level_objective(slo))
        assert VECTOR_SELECTOR.match(success) and VECTOR_SELECTOR.match(total), (success, total)
        assert f"sum(rate({success}[5m]))" == slo.indicator.good("5m")
        assert f"sum(rate({total}[5m]))" == slo.indicator.total("5m")
        assert success.split("{")[0].endswith("_bucket") and total.endswith("}")
        assert total.split("{")[0].endswith("_count")


def test_a_target_between_bounds_reads_the_bound_below_says_so_and_labels_pyrras_rules() -> None:
    objects, _, err = example_objects()
    rerank = objects[1]
    success, _ = _latency(rerank)
    assert success.endswith('error_type="", le="0.75"}')
    # Pyrra copies pyrra.dev/<label> onto its rules: the same labels as sloscale's own rules
    labels = rerank["metadata"]["labels"]
    assert (labels["pyrra.dev/latency_target"], labels["pyrra.dev/sli_le"]) == ("0.8", "0.75")
    assert "pyrra.dev/sli_le" not in objects[0]["metadata"]["labels"]  # chat: on a bound
    # the one warning, the same as every other format's, once
    assert err.count("warning:") == 1
    assert "latency target 0.8 s is not a bucket bound" in err
    assert "0.75 s, the nearest bound below" in err


def test_a_whole_number_bound_is_one_float_le_and_a_warning() -> None:
    """Pyrra's webhook wants the success metric's ``le`` a float, not ``1|1\\.0``."""
    slo = _slo({"metrics-profile": "vllm", "latency-target-ms": "1000"})
    success, _ = _latency(service_level_objective(slo))
    assert success.endswith(', le="1"}')
    (warning,) = pyrra_warnings(slo)
    assert "Prometheus 3 migration" in warning and "1.0" in warning


def test_what_a_selector_cannot_say_is_a_warning() -> None:
    tpot = _slo({"metrics-profile": "vllm", "latency-metric": "tpot", "latency-target-ms": "50"})
    success, total = _latency(service_level_objective(tpot))
    assert success.startswith("vllm:inter_token_latency_seconds_bucket{")
    assert "time_per_output_token" not in success + total
    assert any("older name vllm:time_per_output_token_seconds" in w for w in pyrra_warnings(tpot))
    tgi = _slo({"metrics-profile": "tgi", "latency-target-ms": "500"})
    assert _latency(service_level_objective(tgi))[1].startswith("tgi_request_duration_count{")
    assert any("tgi_request_failure" in w for w in pyrra_warnings(tgi))


def test_an_sli_without_a_histogram_gets_no_object(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": name, "namespace": "ml", "annotations": given},
                }
                for name, given in (
                    ("chat", {"sloscale.io/enabled": "true", TARGET: "100"}),
                    (
                        "triton",
                        {
                            "sloscale.io/enabled": "true",
                            "sloscale.io/metrics-profile": "triton",
                            TARGET: "100",
                        },
                    ),
                )
            ]
        )
    )
    code, out, err = _run([str(manifest), "--format", "pyrra"])
    assert code == 0, err
    assert [o["metadata"]["name"] for o in yaml.safe_load_all(out) if o] == ["sloscale-chat"]
    assert "ml/triton: Pyrra's latency indicator reads a histogram" in err
    # none at all: an error, not an empty output
    code, out, err = _run([str(manifest), "--format", "pyrra", "--sli", "controller"])
    assert (code, out) == (2, "")
    assert "--format pyrra" in err and "no SLO here has one" in err


def test_out_dir_writes_the_pyrra_objects_too(tmp_path: Path) -> None:
    code, _, err = _run([str(EXAMPLE), "--out", str(tmp_path)])
    assert code == 0, err
    written = yaml.safe_load((tmp_path / "inference-rerank.pyrra.yaml").read_text())
    objects, _, _ = example_objects()
    assert written == objects[1]
