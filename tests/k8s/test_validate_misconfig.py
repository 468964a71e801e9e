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
    return code, [line.removeprefix(f"{f}: ") for line in capsys.readouterr().out.splitlines()]


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
