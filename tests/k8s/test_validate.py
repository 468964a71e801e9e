"""``sloscale validate``: offline lint with the controller's own errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale.validate import main

BAD = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ml
  annotations: {sloscale.io/enabled: "true", sloscale.io/slice-stepp: "10"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: train, annotations: {sloscale.io/preemptible: "maybe"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored, annotations: {sloscale.io/whatever: "x"}}
"""


def test_reports_the_controllers_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    assert main([str(f)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{f}: ml/web: annotation sloscale.io/slice-stepp='10': unknown key on a Deployment; "
        "did you mean sloscale.io/slice-step?",
        f"{f}: ml/web: annotation sloscale.io/latency-target-ms='': is required but missing",
        f"{f}: default/train: annotation sloscale.io/preemptible='maybe': "
        'must be "true" or "false"',
    ]


def test_unreadable_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.yaml").write_text("a: [")
    assert main([str(tmp_path / "broken.yaml"), str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.count("cannot read") == 2
