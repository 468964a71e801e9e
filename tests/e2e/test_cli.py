"""The command line end to end: bad input is one line and exit 2; the demo meets its SLOs."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from sloscale.cli import main
from sloscale.logs import DAY_S, LOG_FORMAT, LogFormatter, format_sim_time, simulated_time


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sloscale.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["demo", "--hours", "-1"], "must be positive", id="negative-hours"),
        pytest.param(["demo", "--hours", "abc"], "not a number", id="non-numeric-hours"),
        pytest.param(["demo", "--port", "70000"], "not a port", id="bad-port"),
        pytest.param(["nope"], "invalid choice", id="unknown-command"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], needle: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and needle in errors[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("timestamp_s,requests\n0,1\n60,x\n", "non-numeric", id="non-numeric"),
        pytest.param(
            "timestamp_s,requests\n0,1\n120,2\n60,3\n", "not strictly increasing", id="unsorted"
        ),
        pytest.param(
            "timestamp_s,requests\n0,1\n60,2\n180,3\n240,3\n", "irregular step", id="irregular"
        ),
        pytest.param("time,count\n0,1\n60,2\n", "expected header", id="wrong-header"),
    ],
)
def test_a_bad_trace_is_one_line_and_exit_2(tmp_path: Path, content: str, needle: str) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text(content)
    proc = run_cli("demo", "--no-serve", "--hours", "0.1", "--trace", str(trace))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_missing_trace_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = run_cli("demo", "--no-serve", "--trace", str(tmp_path / "absent.csv"))
    assert proc.returncode == 2 and "cannot read trace" in proc.stderr


def test_the_default_demo_meets_every_objective(tmp_path: Path) -> None:
    """The acceptance run: 24 simulated hours, every service meets its objective."""
    out = tmp_path / "demo.json"
    proc = run_cli("demo", "--no-serve", "--quiet", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert len(data["workloads"]) == 3
    for w in data["workloads"]:
        assert set(w) >= {
            "name",
            "slo_attainment",
            "objective",
            "gpu_hours",
            "utilisation",
            "actions",
        }
        assert w["slo_attainment"] >= w["objective"], w
    assert set(data["jobs"]) >= {
        "free_gpu_hours",
        "batch_gpu_hours",
        "lost_gpu_hours",
        "preemptions",
        "resumes",
    }
    assert "SLO attained" in proc.stdout


def test_demo_on_a_real_trace_serves_the_api(tmp_path: Path) -> None:
    traces = Path(os.environ.get("SLOSCALE_TRACES_DIR", "../shared/traces"))
    trace = traces / "azure_llm2023_code_per_minute.csv"
    if not trace.exists():
        pytest.skip("shared traces not present")
    out = tmp_path / "demo.json"
    proc = run_cli("demo", "--hours", "1", "--port", "0", "--trace", str(trace), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "API on http://127.0.0.1:" in proc.stderr
    assert json.loads(out.read_text())["settings"]["trace"] == str(trace)


def test_forecast_eval_is_a_subcommand(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp_s,requests\n0,5\n60,abc\n")
    proc = run_cli("forecast-eval", "--trace", str(trace))
    assert proc.returncode == 2
    assert proc.stderr.count("error") == 1 and "Traceback" not in proc.stderr


def test_validate_dashboards_and_rules_are_subcommands(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: chat\n  namespace: ml\n"
        "  annotations:\n    sloscale.io/enabled: 'true'\n"
        "    sloscale.io/latency-target-ms: 'fast'\n"
    )
    assert main(["validate", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "latency-target-ms" in captured.out + captured.err
    assert main(["dashboards", "--out", str(tmp_path / "dash")]) == 0
    assert len(list((tmp_path / "dash").glob("*.json"))) == 3
    good = Path("deploy/prometheus-rules/examples/inference-deployments.yaml")
    assert main(["rules", "--format", "rules", str(good)]) == 0
    assert "groups:" in capsys.readouterr().out


def test_the_shipped_manifests_pass_arguments_the_cli_accepts() -> None:
    import yaml

    from sloscale.cli import build_parser

    manifest = yaml.safe_load(Path("deploy/base/deployment.yaml").read_text())
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    args = [*container.get("command", [])[1:], *container["args"]]
    parser = build_parser()
    for extra in ([], ["--dry-run"], ["--slice-dialect=volcano"], ["--slice-dialect=mig"]):
        parsed = parser.parse_args([*args, *extra])
        assert parsed.command == "run" and parsed.cluster == "kubernetes"
        assert parsed.leader_elect


def test_verbose_logs_each_change_as_a_readable_line_at_its_simulated_time() -> None:
    """``-v``: target, current -> desired, reason and message, not the dataclasses' reprs; and
    as a simulated day runs in seconds, each line says when in it the decision was made (the
    demo's day and the time of day), where it said when the machine printed it."""
    proc = run_cli("-v", "demo", "--hours", "0.3", "--no-serve", "--quiet")
    assert proc.returncode == 0, proc.stderr
    loop = [ln for ln in proc.stderr.splitlines() if " INFO sloscale.loop: " in ln]
    assert loop, proc.stderr
    lines = [ln.split(" sloscale.loop: ", 1)[1] for ln in loop]
    shape = re.compile(
        r"^demo/[\w-]+: \d+ replicas? x \d+ % -> \d+ replicas? x \d+ %, [A-Z]\w+: \S.*$"
    )
    assert [ln for ln in lines if not shape.match(ln)] == []
    assert "Allocation(" not in proc.stderr
    stamps = [ln.split(" INFO ", 1)[0] for ln in loop]
    assert [s for s in stamps if not re.fullmatch(r"day 1 00:(0\d|1[0-8]):\d\d", s)] == []
    assert stamps == sorted(stamps)


def test_a_record_carries_the_simulated_time_only_while_the_simulation_runs() -> None:
    clock = [3 * 3600.0 + 15 * 60.0]
    log = logging.getLogger("sloscale.test")

    def record() -> logging.LogRecord:
        return log.makeRecord(log.name, logging.INFO, __file__, 1, "decided", (), None)

    formatter = LogFormatter(LOG_FORMAT)
    with simulated_time(lambda: clock[0]):
        inside = formatter.format(record())
        clock[0] += DAY_S + 1.0
        next_day = formatter.format(record())
    after = formatter.format(record())
    assert inside == "day 1 03:15:00 INFO sloscale.test: decided"
    assert next_day == "day 2 03:15:01 INFO sloscale.test: decided"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ", after), after
    # a trace-driven demo starts days into its trace: its first day is still day 1
    assert format_sim_time(7 * DAY_S + 60.0, start_s=7 * DAY_S) == "day 1 00:01:00"


def test_demo_serve_after_keeps_the_api_until_sigterm() -> None:
    """``--serve-after``: the summary is printed, then the API still answers (the run's last
    state) until SIGTERM, which ends the command with exit 0."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sloscale.cli",
            "demo",
            "--hours",
            "0.1",
            "--port",
            "0",
            "--quiet",
            "--serve-after",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # stderr is line-buffered: each line as it is printed
            lines.append(line)
            if line.startswith("demo over:"):
                break
        over = lines[-1]
        assert over.startswith("demo over: the API stays on http://127.0.0.1:"), "".join(lines)
        url = over.split(" on ", 1)[1].split()[0]
        with urllib.request.urlopen(f"{url}/api/v1/workloads", timeout=10) as resp:
            body = json.loads(resp.read())
        assert {w["workload"] for w in body["workloads"]} >= {"demo/chat"}
        assert proc.poll() is None  # still serving
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "SLO attained" in out  # the summary came before the API stayed up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_after_without_the_api_is_one_line_and_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["demo", "--hours", "0.1", "--no-serve", "--serve-after"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--serve-after needs the API" in err[0]
