"""A short soak in CI: 6 simulated hours of the demo with 3 faults of every class, through
``sloscale soak``; no invariant may break (issue 23). About a minute on one core."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sloscale.cli import main
from sloscale.soak.faults import FaultClass


def test_a_short_soak_injects_every_class_and_breaks_no_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "soak.json"
    argv = ["soak", "--days", "0.25", "--seed", "1", "--min-per-class", "3", "--quiet"]
    code = main([*argv, "--json", str(out)])
    report = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["violations"] == [], report
    assert code == 0
    assert result["faults"] == dict.fromkeys((c.value for c in FaultClass), 3)
    assert result["leader_changes"] == 3 and result["restarts"] == 3
    assert "invariant violations: 0" in report and "GPU-hours:" in report
    names = {s["name"] for s in result["services"]}
    assert names == {"demo/chat", "demo/vision", "demo/rerank"}
    for s in result["services"]:
        assert s["attainment"] is not None and s["fault_free_attainment"] is not None


def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["soak", "--classes", "restrat"]) == 2
    assert "unknown fault class" in capsys.readouterr().err
    assert main(["soak", "--days", "0"]) == 2
