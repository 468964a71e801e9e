"""Every command writes a bad input as one line in one format: ``sloscale <cmd>: error: ...``.

Before, ``run``, ``demo``, ``soak`` and ``bench`` wrote ``error: ...``, the top-level parser
``error: sloscale demo: ...``, ``validate`` ``FILE: cannot read: ...``, ``loadtest``
``sloscale loadtest: ...`` and ``dashboards``/``rules`` ``sloscale rules: ...``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale.cli import main

MISSING = "/nonexistent/sloscale-test/trace.csv"

CASES = [
    pytest.param(["demo", "--hours", "-1"], "demo", id="demo-argument"),
    pytest.param(["demo", "--trace", MISSING, "--no-serve"], "demo", id="demo-trace"),
    pytest.param(["soak", "--classes", "gremlins"], "soak", id="soak"),
    pytest.param(
        ["run", "--cluster", "sim", "--prometheus-url", "ftp://prom", "--no-serve"],
        "run",
        id="run",
    ),
    pytest.param(["bench", "--trace", MISSING], "bench", id="bench"),
    pytest.param(["forecast-eval", "--trace", MISSING], "forecast-eval", id="forecast-eval"),
    pytest.param(["loadtest", "--duration", "soon"], "loadtest", id="loadtest"),
    pytest.param(["validate", MISSING], "validate", id="validate"),
    pytest.param(["dashboards"], "dashboards", id="dashboards"),
    pytest.param(["rules"], "rules", id="rules"),
]


@pytest.mark.parametrize(("args", "command"), CASES)
def test_one_error_line_in_one_format(
    args: list[str], command: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"sloscale {command}: error: "), err
    assert "Traceback" not in err
