"""``sloscale validate`` on the mistakes issue #24 lists: each one an error, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale.validate import main


def validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> tuple[int, list[str]]:
    f = tmp_path / "manifests.yaml"
    f.write_text(text)
    code = main([str(f)])
    *lines, summary = capsys.readouterr().out.splitlines()
    assert summary.startswith("sloscale validate: ")  # the last line, always
    return code, [line.removeprefix(f"{f}: ") for line in lines]


TYPO = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
  namespace: ml
  annotations: {sloscale.io/enable: "true", sloscale.io/latency-target-ms: "250"}
"""


def test_a_mistyped_opt_in_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = validate(tmp_path, capsys, TYPO)
    assert code == 1
    assert lines == [
        "ml/chat: annotation sloscale.io/enable='true': unknown key on a Deployment; "
        "did you mean sloscale.io/enabled?"
    ]


RATIO = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
  namespace: ml
  annotations:
    sloscale.io/enabled: "true"
    sloscale.io/latency-target-ms: "250"
    sloscale.io/objective: "0.99"
"""


def test_an_objective_given_as_a_ratio_is_an_error_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, (line,) = validate(tmp_path, capsys, RATIO)
    assert code == 1
    assert line.startswith("ml/chat: annotation sloscale.io/objective='0.99': ")
    assert line.endswith("did you mean 99?")


# --- another autoscaler on a managed Deployment ----------------------------------------------

CHAT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
  namespace: ml
  annotations: {sloscale.io/enabled: "true", sloscale.io/latency-target-ms: "250"MODE}
spec:
  template:
    metadata:
      annotations: {}
"""
HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: chat-hpa, namespace: ml}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: chat}
  maxReplicas: 4
"""
SCALED_OBJECT = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: chat-so, namespace: ml}
spec:
  scaleTargetRef: {name: chat}
  triggers: []
"""
KNATIVE = CHAT.replace(
    "annotations: {}", 'annotations: {autoscaling.knative.dev/class: "kpa.autoscaling.knative.dev"}'
)


@pytest.mark.parametrize(
    ("others", "named"),
    [
        pytest.param(HPA, "HorizontalPodAutoscaler ml/chat-hpa", id="hpa"),
        pytest.param(SCALED_OBJECT, "ScaledObject ml/chat-so", id="keda"),
    ],
)
def test_another_autoscaler_in_another_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], others: str, named: str
) -> None:
    app, scaler = tmp_path / "app.yaml", tmp_path / "scaling" / "hpa.yaml"
    app.write_text(CHAT.replace("MODE", ""))
    scaler.parent.mkdir()
    scaler.write_text(others)
    code = main([str(tmp_path)])
    *lines, summary = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines == [
        f"{app}: ml/chat: ConflictingAutoscaler: also scaled by {named}: holding, to not fight "
        "over its replicas; remove the other autoscaler, or set sloscale.io/mode to recommend "
        "(compare) or off (leave it to it)"
    ]
    assert summary.endswith("1 error")


def test_a_knative_class_on_the_pod_template_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, (line,) = validate(tmp_path, capsys, KNATIVE.replace("MODE", ""))
    assert code == 1
    assert line.startswith("ml/chat: ConflictingAutoscaler: also scaled by ")
    assert "autoscaling.knative.dev/class kpa.autoscaling.knative.dev on pod template" in line


@pytest.mark.parametrize("mode", ["recommend", "off"])
def test_recommend_and_off_beside_an_hpa_are_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    text = CHAT.replace("MODE", f', sloscale.io/mode: "{mode}"') + "---" + HPA
    assert validate(tmp_path, capsys, text) == (0, [])


def test_an_hpa_on_a_deployment_not_opted_in_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = HPA.replace("name: chat}", "name: web}")
    assert validate(tmp_path, capsys, CHAT.replace("MODE", "") + "---" + other) == (0, [])


# --- dialects that need their own scheduler --------------------------------------------------

NO_GPU = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
  namespace: ml
  annotations:
    sloscale.io/enabled: "true"
    sloscale.io/latency-target-ms: "250"
    sloscale.io/slice-dialect: DIALECT
spec:
  template:
    metadata:
      labels: {app: chat}
    spec:
      containers: [{name: server, image: vllm/vllm-openai}]
"""


@pytest.mark.parametrize(
    ("dialect", "scheduler"), [("kai", "kai-scheduler"), ("volcano", "volcano")]
)
def test_a_deployment_with_no_gpu_and_no_scheduler_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dialect: str, scheduler: str
) -> None:
    code, (line, *warnings) = validate(tmp_path, capsys, NO_GPU.replace("DIALECT", dialect))
    assert code == 1
    assert line == (
        f"ml/chat: annotation sloscale.io/slice-dialect={dialect!r}: the pod template asks for "
        f"no GPU and names no schedulerName: the {dialect} dialect's slices are honoured only "
        f"by schedulerName {scheduler!r}; set it in spec.template.spec"
    )
    queue = [
        "warning: ml/chat: annotation sloscale.io/slice-dialect='kai': the pod template has no "
        "kai.scheduler/queue label: kai-scheduler schedules only pods of a queue"
    ]
    assert warnings == (queue if dialect == "kai" else [])


def test_a_kai_deployment_with_its_scheduler_and_queue_is_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        NO_GPU.replace("DIALECT", "kai")
        .replace(
            "labels: {app: chat}",
            "labels: {app: chat, kai.scheduler/queue: team-a}\n"
            '      annotations: {gpu-fraction: "0.5"}',
        )
        .replace(
            "    spec:\n      containers",
            "    spec:\n      schedulerName: kai-scheduler\n      containers",
        )
    )
    assert validate(tmp_path, capsys, text) == (0, [])


def test_the_default_dialect_counts_and_another_scheduler_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = NO_GPU.replace("    sloscale.io/slice-dialect: DIALECT\n", "").replace(
        "    spec:\n      containers",
        "    spec:\n      schedulerName: default-scheduler\n      containers",
    )
    f = tmp_path / "m.yaml"
    f.write_text(text)
    assert main([str(f), "--slice-dialect", "volcano"]) == 1
    out = capsys.readouterr().out
    assert "names schedulerName 'default-scheduler'" in out and "'volcano'" in out
    assert main([str(f)]) == 0  # hami: any scheduler
