"""deploy/admission's ValidatingAdmissionPolicy agrees with ``sloscale validate``, both ways.

The policy is evaluated by ``tools/celcheck``: the Kubernetes API server's own code
(k8s.io/apiserver's validating admission policy plugin: its CEL environment and libraries,
variables, matchConditions, validations, messageExpressions and cost budget), so a verdict
here is the API server's verdict, short of an API server. It also compiles every expression as
a 1.30 API server compiles a new policy (the 1.29 CEL environment). For each object of the
table: the policy refuses it exactly when ``sloscale validate`` reports an error, and never
fails to evaluate (an evaluation error would refuse with an unhelpful message).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.domain import SliceDialect
from sloscale.validate import Autoscalers, check
from tests.support.celcheck import require_celcheck

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "deploy" / "admission" / "policy.yaml"
EXAMPLES = ROOT / "deploy" / "examples"

GOOD_DEPLOYMENT = {
    "sloscale.io/enabled": "true",
    "sloscale.io/latency-target-ms": "800",
}

DEPLOYMENT_CASES: list[dict[str, str]] = [
    # valid
    GOOD_DEPLOYMENT,
    {"sloscale.io/enabled": "false", "sloscale.io/objective": "0.99"},  # not opted in
    {"sloscale.io/enabled": " FALSE "},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "99.9"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": " 50 ", "sloscale.io/latency-quantile": ".5"},
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/objective": "99.999",
        "sloscale.io/latency-quantile": "0.9999",
    },
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "+9.9e1", "sloscale.io/priority": "HIGH"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "1y1d", "sloscale.io/mode": "Recommend"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "366d", "sloscale.io/priority": "-1000000000"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "5m", "sloscale.io/reclaim-idle-after": "1h30m"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "300", "sloscale.io/reclaim-idle-after": "500ms"},
    {**GOOD_DEPLOYMENT, "sloscale.io/min-replicas": "0", "sloscale.io/max-replicas": "1000"},
    {**GOOD_DEPLOYMENT, "sloscale.io/min-replicas": "007", "sloscale.io/max-replicas": "7"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-step": "20", "sloscale.io/slice-min": "40"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-min": "30", "sloscale.io/slice-max": "30"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-target-ms": "1e-5"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-target-ms": "3600000"},
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/metrics-profile": "custom",
        "sloscale.io/latency-query": "histogram_quantile(0.9, x)",
        "sloscale.io/rate-query": "sum(rate(x[1m]))",
    },
    {**GOOD_DEPLOYMENT, "sloscale.io/metrics-profile": "vllm", "sloscale.io/model": "llama"},
    {**GOOD_DEPLOYMENT, "sloscale.io/metrics-profile": "tgi", "sloscale.io/latency-metric": "tpot"},
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/metrics-profile": "sglang",
        "sloscale.io/latency-metric": "TTFT",
    },
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/retrain-data-query": "sum(x)",
        "sloscale.io/retrain-threshold": "1e4",
        "sloscale.io/retrain-job-template": "CronJob/a.b-c",
        "sloscale.io/retrain-urgent-threshold": "2e4",
        "sloscale.io/retrain-cooldown": "0",
        "sloscale.io/retrain-deadline": "2h",
    },
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/scale-down-stabilization": "0s",
        "sloscale.io/scale-up-max-percent": "10000",
        "sloscale.io/scale-down-max-percent": "100",
        "sloscale.io/scale-up-max-pods": "1",
        "sloscale.io/scale-down-max-pods": "1000",
    },
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-dialect": "mig"},
    {**GOOD_DEPLOYMENT, "sloscale.io/enabled": "\u2003True\x1c"},  # Python strips these
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-dialect": "\u212aai"},  # "Kai".lower() is "kai"
    # sloscale's own records, as it writes them on a Deployment it acts on
    {**GOOD_DEPLOYMENT, "sloscale.io/last-decision": "{}", "sloscale.io/retrain-watermark": "7"},
    {"sloscale.io/last-decision": "{}"},
    # invalid
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "0.99"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "0.995"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "100"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "99.9999"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "49.99"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "-99"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "NaN"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "inf"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "1e999"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "9" * 400},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "99%"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": ""},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "   "},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "0x63"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "9_9"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-quantile": "1"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-quantile": "0.49"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-target-ms": "0"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-target-ms": "-5"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-target-ms": "-1e999"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-target-ms": "3600000.1"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-target-ms": "1e-400"},  # 0.0 in both
    {"sloscale.io/enabled": "true"},  # latency-target-ms missing
    {"sloscale.io/enable": "true"},  # the typo: not opted in, yet an error
    {"sloscale.io/enabled": "false", "sloscale.io/preemptible": "true"},
    {"sloscale.io/enabled": "false", "sloscale.io/retrain-of": "x"},
    {**GOOD_DEPLOYMENT, "sloscale.io/enabled": "yes"},
    {**GOOD_DEPLOYMENT, "sloscale.io/enabled": ""},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "4m"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "367d"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "30m1h"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "1h1h"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "-1h"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "1.5.h"},
    {**GOOD_DEPLOYMENT, "sloscale.io/window": "99999999999999999999d"},
    {**GOOD_DEPLOYMENT, "sloscale.io/reclaim-idle-after": "0"},
    {**GOOD_DEPLOYMENT, "sloscale.io/reclaim-idle-after": "1h 30m"},
    {**GOOD_DEPLOYMENT, "sloscale.io/scale-down-stabilization": "61m"},
    {**GOOD_DEPLOYMENT, "sloscale.io/min-replicas": "-1"},
    {**GOOD_DEPLOYMENT, "sloscale.io/min-replicas": "1.0"},
    {**GOOD_DEPLOYMENT, "sloscale.io/max-replicas": "1001"},
    {**GOOD_DEPLOYMENT, "sloscale.io/max-replicas": "9" * 30},
    {**GOOD_DEPLOYMENT, "sloscale.io/min-replicas": "5", "sloscale.io/max-replicas": "3"},
    {**GOOD_DEPLOYMENT, "sloscale.io/min-replicas": "17"},  # > the default max 16
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-step": "15"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-step": "20", "sloscale.io/slice-min": "30"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-min": "25"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-min": "0"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-min": "60", "sloscale.io/slice-max": "40"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-step": "30", "sloscale.io/slice-min": "100"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-dialect": "hami2"},
    {**GOOD_DEPLOYMENT, "sloscale.io/slice-dialect": "volcano"},  # no schedulerName
    {**GOOD_DEPLOYMENT, "sloscale.io/mode": "on"},
    {**GOOD_DEPLOYMENT, "sloscale.io/priority": "urgent"},
    {**GOOD_DEPLOYMENT, "sloscale.io/priority": "1000000001"},
    {**GOOD_DEPLOYMENT, "sloscale.io/metrics-profile": "custom"},
    {**GOOD_DEPLOYMENT, "sloscale.io/rate-query": "sum(x)"},
    {**GOOD_DEPLOYMENT, "sloscale.io/model": "llama"},
    {**GOOD_DEPLOYMENT, "sloscale.io/latency-metric": "ttft"},
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/metrics-profile": "custom",
        "sloscale.io/latency-metric": "tpot",
    },
    {**GOOD_DEPLOYMENT, "sloscale.io/retrain-cooldown": "1h"},
    {**GOOD_DEPLOYMENT, "sloscale.io/retrain-threshold": "100"},
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/retrain-data-query": "sum(x)",
        "sloscale.io/retrain-threshold": "1e4",
        "sloscale.io/retrain-job-template": "job/x",
    },
    {
        **GOOD_DEPLOYMENT,
        "sloscale.io/retrain-data-query": "sum(x)",
        "sloscale.io/retrain-threshold": "1e4",
        "sloscale.io/retrain-job-template": "cronjob/X_Y",
        "sloscale.io/retrain-urgent-threshold": "1e4",
    },
    {**GOOD_DEPLOYMENT, "sloscale.io/scale-up-max-percent": "10001"},
    {**GOOD_DEPLOYMENT, "sloscale.io/scale-down-max-percent": "0"},
    {**GOOD_DEPLOYMENT, "sloscale.io/scale-down-max-pods": "0"},
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "99\n"},  # stripped: valid
    {**GOOD_DEPLOYMENT, "sloscale.io/objective": "9\n9"},
]

JOB_CASES: list[dict[str, str]] = [
    {"sloscale.io/priority": "low"},
    {"sloscale.io/preemptible": "TRUE", "sloscale.io/checkpoint-interval": "10m"},
    {"sloscale.io/min-runtime": "0", "sloscale.io/reclaim-idle-after": "1w"},
    {"sloscale.io/preemptible": "yes"},
    {"sloscale.io/preemptible": ""},
    {"sloscale.io/checkpoint-interval": "0"},
    {"sloscale.io/min-runtime": "367d"},
    {"sloscale.io/objective": "99"},  # a Deployment key
    {"sloscale.io/enabled": "true"},
    {"sloscale.io/preemtible": "true"},
    {"sloscale.io/priority": "1e3"},
    {"sloscale.io/last-decision": "{}"},  # a Job sloscale created or suspended
    {"sloscale.io/preemptible": "true", "sloscale.io/last-decision": "{}"},
]


def deployment(annotations: Mapping[str, str], **spec: Any) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "i"}], **spec},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a", "namespace": "ml", "annotations": dict(annotations)},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": template},
    }


def job(annotations: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ml", "annotations": dict(annotations)},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
    }


def cronjob(annotations: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "cj", "namespace": "ml"},
        "spec": {
            "schedule": "@daily",
            "jobTemplate": {
                "metadata": {"annotations": dict(annotations)},
                "spec": job({})["spec"],
            },
        },
    }


def parser_errors(obj: Mapping[str, Any]) -> list[str]:
    """What ``sloscale validate`` reports for the object alone (errors, not warnings)."""
    errors, _ = check(obj, SliceDialect.HAMI, None)
    scalers = Autoscalers()
    scalers.add("f", obj, SliceDialect.HAMI)
    return [str(e) for e in errors] + scalers.conflicts()


def objects() -> list[dict[str, Any]]:
    found = [deployment(a) for a in DEPLOYMENT_CASES]
    found += [job(a) for a in JOB_CASES] + [cronjob(a) for a in JOB_CASES]
    volcano = {**GOOD_DEPLOYMENT, "sloscale.io/slice-dialect": "volcano"}
    kai = {**GOOD_DEPLOYMENT, "sloscale.io/slice-dialect": "kai"}
    knative = {**GOOD_DEPLOYMENT, "autoscaling.knative.dev/class": "kpa"}
    found += [
        deployment(volcano, schedulerName="volcano"),
        deployment(kai, schedulerName="volcano"),
        {**deployment(GOOD_DEPLOYMENT), "metadata": {"name": "k", "annotations": knative}},
    ]
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") in ("Deployment", "Job", "CronJob"):
                found.append(doc)
    return found


def run_celcheck(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [require_celcheck(), str(POLICY)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results: list[dict[str, Any]] = json.loads(proc.stdout)
    return results


@pytest.fixture(scope="module")
def verdicts() -> list[tuple[dict[str, Any], list[str], dict[str, Any]]]:
    objs = objects()
    results = run_celcheck([{"object": o, "operation": "CREATE"} for o in objs])
    return [(o, parser_errors(o), r) for o, r in zip(objs, results, strict=True)]


def test_policy_and_parser_agree(
    verdicts: list[tuple[dict[str, Any], list[str], dict[str, Any]]],
) -> None:
    disagree = []
    for obj, errors, result in verdicts:
        evaluation_errors = [d["message"] for d in result["denied"] if d["error"]]
        assert not evaluation_errors, (obj["metadata"], evaluation_errors)
        if bool(errors) != bool(result["denied"]):
            disagree.append((obj["kind"], obj["metadata"], errors, result["denied"]))
    assert not disagree, "\n".join(map(repr, disagree))


def test_table_covers_both_verdicts(
    verdicts: list[tuple[dict[str, Any], list[str], dict[str, Any]]],
) -> None:
    refused = sum(1 for _, errors, _ in verdicts if errors)
    assert 50 < refused < len(verdicts) - 30


def test_examples_are_admitted(
    verdicts: list[tuple[dict[str, Any], list[str], dict[str, Any]]],
) -> None:
    examples = [
        (o, r) for o, _, r in verdicts if o["metadata"]["name"] not in ("a", "j", "cj", "k")
    ]
    assert len(examples) >= 3
    assert all(r["matched"] and not r["denied"] for _, r in examples)


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        (
            {**GOOD_DEPLOYMENT, "sloscale.io/objective": "0.99"},
            "annotation sloscale.io/objective='0.99': must be in [50, 99.999] (supported range): "
            "the objective is a percentage, not a ratio; did you mean 99?",
        ),
        (
            {"sloscale.io/enable": "true"},
            "annotation sloscale.io/enable='true': unknown key on a Deployment; did you mean "
            "sloscale.io/enabled?",
        ),
        (
            {**GOOD_DEPLOYMENT, "sloscale.io/min-replicas": "17"},
            "annotation sloscale.io/min-replicas: min-replicas (17) > max-replicas (16, the "
            "default)",
        ),
        (
            {**GOOD_DEPLOYMENT, "sloscale.io/window": "30m1h"},
            "annotation sloscale.io/window='30m1h': cannot parse duration: units must go from "
            "largest to smallest, each at most once (e.g. 1h30m)",
        ),
    ],
)
def test_messages_name_the_key_and_value(annotations: dict[str, str], expected: str) -> None:
    [result] = run_celcheck([{"object": deployment(annotations)}])
    assert expected in [d["message"] for d in result["denied"]]


def test_objects_without_sloscale_annotations_and_unchanged_updates_are_left_alone() -> None:
    bad = deployment({**GOOD_DEPLOYMENT, "sloscale.io/objective": "0.99"})
    bad_changed = deployment({**GOOD_DEPLOYMENT, "sloscale.io/objective": "0.9"})
    decided = {**bad["metadata"]["annotations"], "sloscale.io/last-decision": "{}"}
    results = run_celcheck(
        [
            {"object": deployment({"other/x": "y"})},
            {
                "object": {**bad, "spec": {**bad["spec"], "replicas": 3}},
                "oldObject": bad,
                "operation": "UPDATE",
            },
            {"object": bad_changed, "oldObject": bad, "operation": "UPDATE"},
            # sloscale records its decision on it: its own write, not a change of the request
            {"object": deployment(decided), "oldObject": bad, "operation": "UPDATE"},
            {"object": deployment({"sloscale.io/last-decision": "{}"})},
        ]
    )
    assert [r["matched"] for r in results] == [False, False, True, False, False]
    assert results[2]["denied"]


def test_whitespace_class_is_pythons() -> None:
    """The policy's strip() class holds exactly the characters ``str.isspace()`` accepts."""
    spaces = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    obj = deployment({**GOOD_DEPLOYMENT, "sloscale.io/objective": spaces + "99" + spaces})
    obj2 = deployment({**GOOD_DEPLOYMENT, "sloscale.io/objective": "\u200b99"})
    results = run_celcheck([{"object": obj}, {"object": obj2}])
    assert not results[0]["denied"] and not parser_errors(obj)
    assert results[1]["denied"] and parser_errors(obj2)
