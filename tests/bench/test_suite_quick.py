"""``sloscale bench --suite --quick`` end to end (the CI subset), then again from the cache."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from loadtests.shapes import traces_dir
from sloscale.bench import main
from sloscale.bench.suite.cli import QUICK_TRACES, parse_seeds

TRACES = traces_dir()


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.skipif(
    not all((TRACES / f"{t}.csv").exists() for t in QUICK_TRACES),
    reason="shared traces not available",
)
def test_quick_suite_then_sloscale_alone_from_the_cache(tmp_path: Path) -> None:
    cache, first, second = tmp_path / "cache", tmp_path / "a.json", tmp_path / "b.json"
    args = ["--suite", "--quick", "--workers", "2", "--cache-dir", str(cache)]
    code, out, err = run_cli(*args, "--json", str(first))
    assert code == 0, err
    payload = json.loads(first.read_text())
    assert [c["trace"] for c in payload["cells"]] == sorted(QUICK_TRACES)
    for c in payload["cells"]:
        assert set(c["checks"]) == {"objective", "hindsight", "fixed"}
        for kind in ("hpa", "rps"):
            s = c[kind]
            met = {p["target"]: p["met"] for p in s["replayed"]}
            if s["best_target"] is not None:  # checked: it met and the next one missed
                assert met[s["best_target"]] is True
                assert met.get(s["best_target"] + 1, False) is False
            else:
                assert met[s["range"][0]] is False
    fixed = payload["hpa_fixed_target"]
    bests = [c["hpa"]["best_target"] for c in payload["cells"] if c["hpa"]["best_target"]]
    assert fixed == (min(bests) if bests else None)
    assert payload["demo"]["service_seeds"] == 3
    assert set(payload["aggregate"]["ratios"]) == {
        "hpa*",
        "rps*",
        "hindsight",
        "hpa-fixed",
        "oracle",
    }
    rows = [line for line in out.splitlines() if " cold s1 " in line]
    assert len(rows) == len(payload["cells"])
    assert "checks: objective" in out and "sloscale demo" in out
    assert "cells 2/2" in err and "ETA" in err

    # sloscale alone replays: the baselines come from the cache, the results are the same
    code, _, err = run_cli(*args, "--demo-seeds", "none", "--json", str(second))
    assert code == 0, err
    replayed = [line for line in err.splitlines() if line.startswith("[")]
    assert len(replayed) == 2 and all(" sloscale: " in line for line in replayed)
    again = json.loads(second.read_text())
    assert again["cells"] == payload["cells"]


def test_bad_suite_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, out, err = run_cli("--suite", "--traces-dir", str(tmp_path / "none"))
    assert code == 2 and out == ""
    assert err.startswith("sloscale bench --suite: error: no traces folder")
    code, _, err = run_cli("--suite", "--seeds", "3-1")
    assert code == 2 and "not a list of seeds" in err
    code, _, err = run_cli("--suite", "--traces", "nope", "--traces-dir", str(tmp_path))
    assert code == 2 and "no trace 'nope'" in err


def test_parse_seeds() -> None:
    assert parse_seeds("1-3") == (1, 2, 3)
    assert parse_seeds("3,1-2,2") == (1, 2, 3)
    assert parse_seeds("none") == ()
