"""The closed loop end to end: locust, the emulator, a real Prometheus and the controller.

The ``step`` run (compressed time, about 90 s of wall clock) must pass its checks; the same
load with the controller in ``--dry-run`` must fail the step check (the controller, not the
emulator's spare capacity, holds the SLO); and an interrupted run leaves no process behind.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loadtests.harness import REPO, RunResult, run_loadtest
from loadtests.processes import pid_alive
from loadtests.report import write_report
from loadtests.settings import LoadTestSettings
from loadtests.shapes import step_shape
from tests.support.prometheus import require_prometheus


def assert_all_stopped(result: RunResult) -> None:
    assert len(result.child_pids) == 3  # emulator, prometheus, locust
    alive = [pid for pid in result.child_pids if pid_alive(pid)]
    assert not alive, f"left running: {alive}"


def test_step_run_passes_its_checks_and_reports(tmp_path: Path) -> None:
    require_prometheus()
    progress = io.StringIO()
    result = run_loadtest(
        step_shape(110.0), LoadTestSettings(), tmp_path, err=sys.stderr, progress=progress
    )
    assert_all_stopped(result)
    # the loop's decisions while it ran, one line at most every 5 s
    lines = progress.getvalue().splitlines()
    assert len(lines) >= 10 and all(" elapsed, ETA " in line for line in lines), lines
    assert any("replicas x" in line for line in lines), lines
    write_report(result)
    lines = "\n".join(c.line() for c in result.checks)
    assert result.ok, lines
    names = {c.name for c in result.checks}
    assert names == {"step up", "scale down", "SLO attainment", "no flapping"}
    for name in ("locust_stats.csv", "decisions.csv", "timeline.csv", "summary.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "loadtest.png").read_bytes()[:4] == b"\x89PNG"
    # the controller scaled up after the step and back down after the fall
    step_up = next(c for c in result.checks if c.name == "step up")
    assert (step_up.values["share_peak_pct"] or 0) > (step_up.values["share_before_pct"] or 0)


def test_the_step_check_fails_when_the_controller_only_watches(tmp_path: Path) -> None:
    require_prometheus()
    result = run_loadtest(
        step_shape(40.0), LoadTestSettings(), tmp_path, dry_run=True, err=sys.stderr
    )
    assert_all_stopped(result)
    step_up = next(c for c in result.checks if c.name == "step up")
    assert not step_up.ok, step_up.line()
    assert "no new capacity" in step_up.detail
    assert not result.ok


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    require_prometheus()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadtests.cli", "--shape", "step", "--duration", "100s",
         "--report", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        pids_file = tmp_path / "pids.txt"
        deadline = time.monotonic() + 60
        while not pids_file.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        time.sleep(3.0)  # locust and the controller are running
        pids = [int(x) for x in pids_file.read_text().split()]
        assert all(pid_alive(pid) for pid in pids)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert b"interrupted" in out
    alive = [pid for pid in pids if pid_alive(pid)]
    assert not alive, f"left running: {alive}"
