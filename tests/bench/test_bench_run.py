"""The bench end to end on short slices of the real traces: the oracle is a lower bound,
the JSON is deterministic, and bad input is one line and exit code 2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from loadtests.shapes import traces_dir
from sloscale.bench import main
from sloscale.bench.runner import run_all, runs_for
from sloscale.bench.settings import BenchSettings
from sloscale.bench.setup import prepare

TRACES = traces_dir()  # SLOSCALE_TRACES_DIR, else ../shared/traces, as scripts/check
DAY_TRACES = (
    "nasa_jul95_per_minute.csv",
    "servegen_m-small_per_10min.csv",
    "servegen_m-large_per_10min.csv",
    "alibaba_genai2026_lora_requests_per_minute.csv",
)
NASA = TRACES / DAY_TRACES[0]

needs_traces = pytest.mark.skipif(not NASA.exists(), reason="shared traces not available")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@needs_traces
@pytest.mark.parametrize("trace", DAY_TRACES)
def test_oracle_is_a_lower_bound(trace: str) -> None:
    """No policy that met the latency target in every minute costs less than the oracle."""
    setup = prepare(BenchSettings(TRACES / trace, hours=2.0))
    results = run_all(setup, runs_for(setup.settings.policies, (50, 70)))
    oracle = results["oracle"]
    # sized exactly at the target, the oracle's own attainment is ~99 % +- sampling noise
    assert oracle.slo_attainment is not None and oracle.slo_attainment > 0.97
    for r in results.values():
        if r.good_minutes == 1.0:
            assert r.gpu_hours >= oracle.gpu_hours * (1 - 1e-9), r.name


@needs_traces
def test_same_arguments_give_byte_identical_json(tmp_path: Path) -> None:
    args = ["--trace", str(NASA), "--hours", "1", "--hpa-targets", "60", "--workers", "1"]
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli(*args, "--json", str(first))[0] == 0
    assert run_cli(*args, "--json", str(second))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    payload = json.loads(first.read_text())
    assert set(payload) == {"policies", "trace", "settings"}
    assert set(payload["policies"]["sloscale"]) >= {
        "slo_attainment",
        "good_minutes",
        "gpu_hours",
        "cost_vs_oracle",
        "utilisation",
        "actions",
        "batch_gpu_hours",
        "lost_gpu_hours",
    }
    assert payload["policies"]["oracle"]["cost_vs_oracle"] == 1.0


@needs_traces
def test_the_table_lists_every_policy() -> None:
    code, out, _ = run_cli(
        "--trace", str(NASA), "--hours", "0.5", "--policies", "static,oracle", "--workers", "1"
    )
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines()[3:-1]]
    assert rows == ["static", "oracle"]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "trace.csv"
    p.write_text(text)
    return p


BAD_INPUT = {
    "missing file": (["--trace", "/nonexistent/trace.csv"], "cannot read trace"),
    "peak above the cluster": (["--peak-share", "1.5"], "peak must fit"),
    "unreachable SLO": (["--slo-ms", "50"], "is impossible"),
    "unknown policy": (["--policies", "sloscale,vpa"], "unknown policy 'vpa'"),
    "hours beyond the trace": (["--hours", "1000"], "exceeds the trace"),
    "not a number": (["--cluster-gpus", "many"], "not a number"),
    "no GPUs": (["--cluster-gpus", "0"], "at least 1"),
}


@needs_traces
@pytest.mark.parametrize("case", list(BAD_INPUT), ids=list(BAD_INPUT))
def test_bad_input_is_one_line_and_exit_2(case: str) -> None:
    extra, message = BAD_INPUT[case]
    argv = ["--trace", str(NASA), *extra] if extra[0] != "--trace" else extra
    code, out, err = run_cli(*argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sloscale bench: error: ") and message in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,count\n0,1\n60,2\n", "expected header"),
        ("timestamp_s,requests\n0,0\n60,0\n", "has no requests"),
        ("timestamp_s,requests\n0,1\n60,x\n", "non-numeric"),
    ],
)
def test_bad_trace_is_one_line_and_exit_2(tmp_path: Path, text: str, message: str) -> None:
    code, _, err = run_cli("--trace", str(write(tmp_path, text)))
    assert code == 2 and err.count("\n") == 1 and message in err
