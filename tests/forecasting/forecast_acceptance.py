"""Acceptance run of issue #3 on the shared real traces: is ``auto`` worth deploying?

For every trace in the folder that ``load_trace`` accepts and that spans at least three
days: the rolling-origin evaluation at 5, 15 and 60 minutes, and the checks

- ``auto`` is never worse than the better baseline (``rel_mae <= 1``) at any horizon;
- its mean ``rel_mae`` over those traces at 60 minutes is at most 0.95;
- its upper band's coverage is within 5 points of nominal (0.85 to 0.95).

Run as a script to print the full tables (all models)::

    .venv/bin/python tests/forecasting/forecast_acceptance.py [TRACES_DIR] [--models auto]

``test_forecast_acceptance.py`` runs the same checks for ``auto`` as a slow test.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from forecasting import MODEL_NAMES, TraceError, load_trace
from forecasting.evaluation import EvalResult, evaluate, format_table

HORIZONS_S = (300.0, 900.0, 3600.0)
MIN_DAYS = 3.0
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "shared" / "traces"


def qualifying_traces(folder: Path) -> list[Path]:
    """Loadable traces spanning at least ``MIN_DAYS`` (others are not evaluated)."""
    out = []
    for path in sorted(folder.glob("*.csv")):
        try:
            trace = load_trace(path)
        except TraceError:
            continue  # another format, or an irregular step: not a rate trace
        if trace.duration_s >= MIN_DAYS * 86_400:
            out.append(path)
    return out


def check(results_by_trace: dict[str, list[EvalResult]], model: str = "auto") -> list[str]:
    """The acceptance failures, one line each (empty: accepted)."""
    failures = []
    rel60 = []
    for name, results in results_by_trace.items():
        for r in results:
            if r.model != model:
                continue
            if not r.rel_mae <= 1.0:
                failures.append(f"{name} {r.horizon_s:g}s: rel_mae {r.rel_mae:.3f} > 1")
            if not 0.85 <= r.coverage <= 0.95:
                failures.append(f"{name} {r.horizon_s:g}s: coverage {r.coverage:.3f}")
            if r.horizon_s == 3600.0:
                rel60.append(r.rel_mae)
    if rel60 and sum(rel60) / len(rel60) > 0.95:
        failures.append(f"mean rel_mae at 60m {sum(rel60) / len(rel60):.3f} > 0.95")
    return failures


def run(folder: Path, models: Sequence[str]) -> dict[str, list[EvalResult]]:
    """Evaluation results per qualifying trace."""
    return {
        path.stem: evaluate(load_trace(path), HORIZONS_S, models)
        for path in qualifying_traces(folder)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--models", default=",".join(MODEL_NAMES))
    args = parser.parse_args(argv)
    results = run(args.folder, [m for m in args.models.split(",") if m])
    for name, rows in results.items():
        print(f"\n{name}\n{format_table(rows)}")
    auto60 = [
        r.rel_mae
        for rows in results.values()
        for r in rows
        if r.model == "auto" and r.horizon_s == 3600.0
    ]
    if auto60:
        mean60 = sum(auto60) / len(auto60)
        print(f"\nauto: mean rel_mae at 60m over {len(auto60)} traces: {mean60:.3f}")
    failures = check(results)
    for line in failures:
        print(f"FAIL {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
