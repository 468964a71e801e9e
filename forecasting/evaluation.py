"""Rolling-origin evaluation of the forecasters on a trace: is a model worth its cost?

Protocol (the one ``sloscale forecast-eval`` reports):

- Origins every ``origin_every_s`` (an hour) over the last quarter of the trace.
- Each model is fitted at the first origin and refitted once ``refit_every_s`` (a day) has
  passed, always on the history before that origin only; at the origins in between it is
  re-anchored with ``update`` on the history before the origin — exactly what the control loop
  does (refit on a schedule, update every tick). Nothing after an origin is ever read.
- The target at horizon ``h`` is the mean rate over the next ``h`` (whole steps, at least one:
  a 5-minute horizon on a 10-minute trace is the next step). An origin whose target window has
  a missing point, or runs past the end, is excluded for that horizon.
- ``rel_mae`` divides a model's MAE by the MAE of the better of two baselines at the same
  origins: (A) persistence, the mean of the last 15 minutes, and (B) seasonal naive, the same
  window one day earlier. Where B has no data it takes A's value, and where A has none
  (15 minutes missing) it takes the last day's mean.
- ``coverage`` is the share of origins where the target is at most the forecast's upper band
  averaged over the horizon (``Forecast.upper_over``); nominal is the forecast's quantile.
- ``fit_predict_ms`` is the model's wall time (fits + updates + predicts) per origin.

Missing data: NaN in the trace is missing. Besides, ``zero_runs_as_missing_min`` applies the
outage rule of ``forecasting.gaps``: in a dense trace (zeros are at most 5 % of its points),
a run of exact zeros lasting at least that many minutes is a collection gap, not idle
traffic; a sparse trace's zeros stay load. ``None`` turns the rule off.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecasting.base import FloatArray, History
from forecasting.direct import horizon_steps
from forecasting.gaps import DEFAULT_ZERO_RUN_MIN, mask_zero_runs
from forecasting.naive import PERSISTENCE_WINDOW_S
from forecasting.registry import MODEL_NAMES, make
from forecasting.traces import Trace, TraceError, load_trace
from forecasting.windows import DAY_S, IntArray, Windows

EVAL_FRACTION = 0.25
DEFAULT_HORIZONS = "5m,15m,60m"

OnStep = Callable[[str, int, int], None]
"""Progress: after each origin of each model, ``(what, origins done, origins in all)``."""
ProgressFactory = Callable[[bool | None], OnStep | None]
"""What ``main`` gets from the command line that calls it: given ``--progress`` (true),
``--no-progress`` (false) or neither (``None``), the ``OnStep`` to call, if any. The caller
decides where lines go (``sloscale.progress``); this package prints none itself."""

_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_HORIZON = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


@dataclass(frozen=True)
class EvalResult:
    """One model at one horizon over one trace's evaluation origins."""

    model: str
    horizon_s: float
    mae: float
    rel_mae: float
    coverage: float
    fit_predict_ms: float
    scored: int = 0
    """Origins with a complete window of the trace ``horizon_s`` after them: 0 makes the
    row NaN, and ``why`` says so."""
    why: str = ""
    """Why the row has no numbers (empty when it has)."""


def parse_horizons(text: str) -> tuple[float, ...]:
    """``"5m,15m,60m"`` -> ``(300.0, 900.0, 3600.0)``; units s, m, h, d (bare = seconds).

    Raises ``ValueError`` naming the bad item. Purely computational, no side effects.
    """
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"no horizon given in {text!r}; expected e.g. 5m,15m,60m")
    out: list[float] = []
    for item in items:
        match = _HORIZON.match(item)
        if match is None:
            raise ValueError(
                f"bad horizon {item.strip()!r}: expected a number with unit s, m, h or d, e.g. 5m"
            )
        value = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
        if value <= 0:
            raise ValueError(f"bad horizon {item.strip()!r}: must be positive")
        if value not in out:
            out.append(value)
    return tuple(out)


def format_horizon(horizon_s: float) -> str:
    """``3600.0`` -> ``"60m"``, ``90.0`` -> ``"90s"``. Purely computational."""
    if horizon_s % 60 == 0:
        return f"{horizon_s / 60:g}m"
    return f"{horizon_s:g}s"


def format_span(span_s: float) -> str:
    """A trace's span in the unit that reads best: a day or more in days (``"14.0 days"``),
    two hours or more in hours (``"3.0 hours"``), two minutes or more in minutes (``"58
    minutes"``), less in seconds; a short trace read ``"0.0 days"``. Purely computational."""
    if span_s >= DAY_S:
        return f"{span_s / DAY_S:.1f} days"
    hour_s, minute_s = _UNIT_S["h"], _UNIT_S["m"]
    if span_s >= 2 * hour_s:
        return f"{span_s / hour_s:.1f} hours"
    if span_s >= 2 * minute_s:
        return f"{span_s / minute_s:.0f} minutes"
    return f"{span_s:g} s"


def _baselines(win: Windows, origins: IntArray, k: int) -> tuple[FloatArray, FloatArray]:
    """Baselines A (last 15 minutes) and B (same window a day earlier) at each origin."""
    w = win.steps_for(PERSISTENCE_WINDOW_S)
    day = round(DAY_S / win.step_s)
    base_a = win.mean(origins - w, origins)
    base_a = np.where(np.isnan(base_a), win.recent_level(origins), base_a)
    base_b = win.mean(origins - day, np.minimum(origins - day + k, origins))
    base_b = np.where(np.isnan(base_b), base_a, base_b)
    return base_a, base_b


def _mae(target: FloatArray, pred: FloatArray) -> float:
    ok = ~np.isnan(target)
    return float(np.mean(np.abs(target[ok] - pred[ok]))) if ok.any() else math.nan


def _relative(mae: float, base: float) -> float:
    if math.isnan(mae) or math.isnan(base):
        return math.nan
    if base == 0.0:
        return 1.0 if mae == 0.0 else math.inf
    return mae / base


def evaluate(
    trace: Trace,
    horizons_s: Sequence[float],
    models: Sequence[str],
    *,
    origin_every_s: float = 3600.0,
    refit_every_s: float = DAY_S,
    zero_runs_as_missing_min: float | None = DEFAULT_ZERO_RUN_MIN,
    settings: dict[str, object] | None = None,
    on_step: OnStep | None = None,
) -> list[EvalResult]:
    """Rolling-origin evaluation over the trace's last quarter (see the module docstring).

    ``settings`` go to every model's constructor (e.g. ``{"quantile": 0.8}``); ``on_step`` is
    called after every origin of every model (progress). Raises
    ``ValueError`` on an unknown model, a non-positive horizon or a trace too short to have an
    origin. Results are model-major, in the order given.
    """
    for name in models:
        make(name)  # validates the name before any work
    if not horizons_s or any(not (math.isfinite(h) and h > 0) for h in horizons_s):
        raise ValueError(f"horizons must be positive seconds, got {list(horizons_s)}")
    history = trace.history()
    if zero_runs_as_missing_min is not None:
        history = mask_zero_runs(history, min_run_s=zero_runs_as_missing_min * 60.0)
    values = np.asarray(history.values, dtype=np.float64)
    win = Windows.of(history)
    n = len(values)
    first = n - int(n * EVAL_FRACTION)
    stride = max(1, round(origin_every_s / history.step_s))
    origins = np.arange(max(first, 1), n, stride, dtype=np.int64)
    if len(origins) == 0 or np.all(np.isnan(values[: origins[0]])):
        raise ValueError(f"trace {trace.name!r} is too short to evaluate ({n} points)")
    ks = [horizon_steps(h, history.step_s) for h in horizons_s]
    targets = [win.full_mean(origins, origins + k) for k in ks]
    base_mae = []
    for k, target in zip(ks, targets, strict=True):
        base_a, base_b = _baselines(win, origins, k)
        base_mae.append(min(_mae(target, base_a), _mae(target, base_b)))
    refit_steps = max(1, round(refit_every_s / history.step_s))
    results: list[EvalResult] = []
    steps = _Steps(on_step, len(models) * len(origins))
    for name in models:
        means, uppers, elapsed_s = _run_origins(
            name, history, origins, horizons_s, refit_steps, settings or {}, steps
        )
        for j, h in enumerate(horizons_s):
            target = targets[j]
            ok = ~np.isnan(target)
            mae = _mae(target, means[:, j])
            coverage = float(np.mean(target[ok] <= uppers[ok, j])) if ok.any() else math.nan
            results.append(
                EvalResult(
                    model=name,
                    horizon_s=float(h),
                    mae=mae,
                    rel_mae=_relative(mae, base_mae[j]),
                    coverage=coverage,
                    fit_predict_ms=1000.0 * elapsed_s / len(origins),
                    scored=int(ok.sum()),
                    why=""
                    if ok.any()
                    else _unscored(h, len(origins), (n - first) * history.step_s),
                )
            )
    return results


def _unscored(horizon_s: float, origins: int, span_s: float) -> str:
    """Why no origin scores at ``horizon_s``. Purely computational."""
    return (
        f"not scored: none of the {origins} origins in the evaluated span (the trace's last "
        f"quarter, {format_horizon(span_s)}) has {format_horizon(horizon_s)} of complete trace "
        "after it; use a shorter horizon or a longer trace"
    )


def _run_origins(
    name: str,
    history: History,
    origins: IntArray,
    horizons_s: Sequence[float],
    refit_steps: int,
    settings: dict[str, object],
    steps: _Steps | None = None,
) -> tuple[FloatArray, FloatArray, float]:
    """Per origin: refit (daily) or update, then predict; returns means, uppers, seconds."""
    model = make(name, **settings)
    means = np.empty((len(origins), len(horizons_s)))
    uppers = np.empty_like(means)
    last_fit: int | None = None
    elapsed_s = 0.0
    longest = max(horizons_s)
    for i, o in enumerate(origins.tolist()):
        past = History(start_s=history.start_s, step_s=history.step_s, values=history.values[:o])
        started = time.perf_counter()
        if last_fit is None or o - last_fit >= refit_steps:
            model.fit(past)
            last_fit = o
        else:
            model.update(past)
        forecast = model.predict(longest)
        elapsed_s += time.perf_counter() - started
        for j, h in enumerate(horizons_s):
            means[i, j] = forecast.mean_over(h)
            uppers[i, j] = forecast.upper_over(h)
        if steps is not None:
            steps.one(f"{name}: origin {i + 1}/{len(origins)}")
    return means, uppers, elapsed_s


@dataclass
class _Steps:
    """Counts origins done over all models for ``OnStep``."""

    on_step: OnStep | None
    total: int
    done: int = 0

    def one(self, what: str) -> None:
        self.done += 1
        if self.on_step is not None:
            self.on_step(what, self.done, self.total)


def format_table(results: Sequence[EvalResult]) -> str:
    """A fixed-width table, one row per (model, horizon). Purely computational."""
    header = (
        f"{'model':<15} {'horizon':>7} {'MAE':>11} {'rel_MAE':>8} {'coverage':>8} {'ms/origin':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        if r.why:
            lines.append(f"{r.model:<15} {format_horizon(r.horizon_s):>7} {r.why}")
            continue
        lines.append(
            f"{r.model:<15} {format_horizon(r.horizon_s):>7} {r.mae:>11.4g} {r.rel_mae:>8.3f} "
            f"{r.coverage:>8.3f} {r.fit_predict_ms:>10.2f}"
        )
    return "\n".join(lines)


def _json_number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def results_to_json(results: Sequence[EvalResult]) -> dict[str, list[dict[str, object]]]:
    """``{"results": [{"model", "horizon_s", "mae", "rel_mae", "coverage", "fit_predict_ms",
    "scored_origins"}]}``, and ``"why"`` on a row no origin scored.

    Non-finite numbers become ``null``. Purely computational, no side effects.
    """
    return {
        "results": [
            {
                "model": r.model,
                "horizon_s": r.horizon_s,
                "mae": _json_number(r.mae),
                "rel_mae": _json_number(r.rel_mae),
                "coverage": _json_number(r.coverage),
                "fit_predict_ms": _json_number(r.fit_predict_ms),
                "scored_origins": r.scored,
                **({"why": r.why} if r.why else {}),
            }
            for r in results
        ]
    }


class _UsageError(Exception):
    """A command-line mistake, reported in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sloscale forecast-eval",
        description="Rolling-origin evaluation of the forecasters on a trace.",
    )
    parser.add_argument("--trace", required=True, help="CSV timestamp_s,requests")
    parser.add_argument("--horizons", default=DEFAULT_HORIZONS, help="e.g. 5m,15m,60m")
    parser.add_argument(
        "--models",
        nargs="+",
        default=[",".join(MODEL_NAMES)],
        help=f"names, comma- or space-separated, from {', '.join(MODEL_NAMES)}",
    )
    parser.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress lines on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument(
        "--zero-runs-as-missing-min",
        type=float,
        default=DEFAULT_ZERO_RUN_MIN,
        help="in a dense trace, zero runs this long are gaps (0 turns the rule off)",
    )
    return parser


def main(argv: list[str] | None = None, progress: ProgressFactory | None = None) -> int:
    """``sloscale forecast-eval``: print the table; 0 on success, 2 on bad input.

    ``progress`` turns the ``--progress`` flag into a callback (see ``ProgressFactory``);
    without it there is none."""
    prog = "sloscale forecast-eval"
    try:
        args = _parser().parse_args(argv)
        horizons = parse_horizons(args.horizons)
        models = [m for token in args.models for m in token.split(",") if m.strip()]
        models = [m.strip() for m in models]
        for name in models:
            make(name)
        zero_min = args.zero_runs_as_missing_min
        trace = load_trace(args.trace)
        results = evaluate(
            trace,
            horizons,
            models,
            zero_runs_as_missing_min=zero_min if zero_min > 0 else None,
            on_step=progress(args.progress) if progress is not None else None,
        )
    except (_UsageError, TraceError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    if results and all(r.why for r in results):
        print(f"{prog}: error: {results[0].why}", file=sys.stderr)
        return 2
    print(f"{trace.name}: step {trace.step_s:g} s, {format_span(trace.duration_s)}")
    print(format_table(results))
    if args.json_out:
        try:
            Path(args.json_out).write_text(json.dumps(results_to_json(results), indent=2) + "\n")
        except OSError as e:
            print(
                f"{prog}: error: cannot write {args.json_out}: {e.strerror or e}", file=sys.stderr
            )
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
