"""Faults B5 end to end: ``sloscale demo --restart-every`` recreates the controller, which goes
on from the memory it saved (``controller.keeper``), as a rollout or a crash would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sloscale.cli import main
from sloscale.demo import DemoOptions, WorkloadSummary, build_demo, summarise
from tests.e2e.test_cli import run_cli


def demo(
    restart_every_s: float | None = None, *, cold: bool = False
) -> tuple[list[WorkloadSummary], int]:
    opts = DemoOptions(
        hours=3.0,
        serve=False,
        progress=False,
        forecast="none",
        restart_every_s=restart_every_s,
        cold_restarts=cold,
    )
    run = build_demo(opts)
    report = run.run(opts.hours)
    return summarise(report, run.world), run.restarts


def test_restarts_that_keep_the_memory_change_nothing() -> None:
    """Without a long-term forecaster (whose refits a restart reschedules) the controller's
    whole memory is saved: restarted every 20 minutes, the demo is the uninterrupted one."""
    steady, none = demo()
    restarted, restarts = demo(1200.0)
    assert none == 0 and restarts == 9
    assert restarted == steady
    cold, _ = demo(1200.0, cold=True)
    assert cold != steady  # what each restart forgot


def test_restarts_every_two_hours_meet_every_objective(tmp_path: Path) -> None:
    """The faults table's B5 row: 12 simulated hours, a restart every 2 hours."""
    out = tmp_path / "demo.json"
    proc = run_cli(
        "demo",
        "--no-serve",
        "--quiet",
        "--hours",
        "12",
        "--restart-every",
        "2h",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["restarts"] == 6 and data["settings"]["restart_every_s"] == 7200.0
    for w in data["workloads"]:
        assert w["slo_attainment"] >= w["objective"], w
    assert "controller restarts: 6 (memory kept)" in proc.stdout


@pytest.mark.parametrize("value", ["0", "soon", "-2h"])
def test_a_bad_restart_interval_is_one_line_and_exit_2(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--restart-every", value]) == 2
    err = capsys.readouterr().err
    assert "--restart-every" in err and "Traceback" not in err
