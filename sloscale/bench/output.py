"""The bench's table and JSON: what a user reads and what a script diffs.

Purely computational. The JSON holds no wall-clock time, so the same arguments give
byte-identical files; timings go to the table only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sloscale.bench.results import PolicyResult, hpa_star
from sloscale.bench.setup import LATENCY_QUANTILE, OBJECTIVE_PCT, BenchSetup

HPA_STAR = "hpa*"


def ordered(results: Mapping[str, PolicyResult], policies: tuple[str, ...]) -> list[PolicyResult]:
    """Table order: the requested policies, then the ``hpa`` sweep by target."""
    rows = [results[p] for p in policies if p in results]
    sweep = sorted(
        (r for k, r in results.items() if k not in policies),
        key=lambda r: r.hpa_target_pct or 0,
    )
    return rows + sweep


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def format_table(setup: BenchSetup, results: Mapping[str, PolicyResult], wall_s: float) -> str:
    s = setup.settings
    oracle = results.get("oracle")
    star = hpa_star(results) if any(r.hpa_target_pct for r in results.values()) else None
    has_jobs = any(r.batch_gpu_hours is not None for r in results.values())
    head = (
        f"{'policy':<10} {'SLO attained':>12} {'met':>4} {'good min':>9} {'GPU-h':>8} "
        f"{'vs oracle':>9} {'util':>7} {'scale':>6} {'resize':>6}"
    )
    if has_jobs:
        head += f" {'batch GPU-h':>11} {'lost GPU-h':>10}"
    lines = [
        f"sloscale bench: {setup.trace.name}, {setup.duration_s / 3600:.1f} h, "
        f"{s.cluster_gpus} GPUs, peak {setup.peak_rps:.2f} rps = {100 * s.peak_share:g} % of the "
        f"pool for the oracle, SLO p{100 * LATENCY_QUANTILE:g} <= {s.slo_ms:g} ms at "
        f"{OBJECTIVE_PCT:g} %, seed {s.seed}",
        head,
        "-" * len(head),
    ]
    rows = [(r.name, r) for r in ordered(results, s.policies)]
    if star is not None:
        rows.append((f"{HPA_STAR}@{star.hpa_target_pct}", star))
    for name, r in rows:
        vs = r.gpu_hours / oracle.gpu_hours if oracle and oracle.gpu_hours > 0 else None
        line = (
            f"{name:<10} {_pct(r.slo_attainment, 3):>12} {'yes' if r.met else 'NO':>4} "
            f"{_pct(r.good_minutes, 1):>9} {r.gpu_hours:>8.1f} {_num(vs, '.3f'):>9} "
            f"{_pct(r.utilisation, 1):>7} {r.scale_actions:>6} {r.resize_actions:>6}"
        )
        if has_jobs:
            line += f" {_num(r.batch_gpu_hours, '.1f'):>11} {_num(r.lost_gpu_hours, '.2f'):>10}"
        lines.append(line)
    if "hpa" in s.policies and star is None:
        lines.append(f"hpa*: no target of {sorted(set(s.hpa_targets_pct))} % meets the objective")
    lines.append(f"({len(results)} replays in {wall_s:.1f} s)")
    return "\n".join(lines)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def policy_json(r: PolicyResult, oracle: PolicyResult | None) -> dict[str, Any]:
    vs = r.gpu_hours / oracle.gpu_hours if oracle and oracle.gpu_hours > 0 else None
    out: dict[str, Any] = {
        "slo_attainment": _round(r.slo_attainment),
        "met": r.met,
        "good_minutes": _round(r.good_minutes),
        "gpu_hours": _round(r.gpu_hours),
        "cost_vs_oracle": _round(vs),
        "utilisation": _round(r.utilisation),
        "actions": r.actions,
        "scale_actions": r.scale_actions,
        "resize_actions": r.resize_actions,
        "batch_gpu_hours": _round(r.batch_gpu_hours),
        "lost_gpu_hours": _round(r.lost_gpu_hours),
        "requests": r.requests,
    }
    if r.hpa_target_pct is not None:
        out["target_pct"] = r.hpa_target_pct
    return out


def to_json(setup: BenchSetup, results: Mapping[str, PolicyResult]) -> dict[str, Any]:
    s = setup.settings
    oracle = results.get("oracle")
    policies: dict[str, dict[str, Any] | None] = {
        name: policy_json(r, oracle) for name, r in results.items()
    }
    if "hpa" in s.policies:
        star = hpa_star(results)
        policies[HPA_STAR] = None if star is None else policy_json(star, oracle)
    trace = setup.trace
    return {
        "policies": policies,
        "trace": {
            "name": trace.name,
            "file": str(s.trace),
            "step_s": trace.step_s,
            "steps": len(trace.counts),
            "replayed_h": round(setup.duration_s / 3600.0, 6),
            "scale": _round(setup.scale),
            "peak_rps": _round(setup.peak_rps),
        },
        "settings": {
            "policies": list(s.policies),
            "hours": s.hours,
            "cluster_gpus": s.cluster_gpus,
            "peak_share": s.peak_share,
            "slo_ms": s.slo_ms,
            "latency_quantile": LATENCY_QUANTILE,
            "objective_pct": OBJECTIVE_PCT,
            "seed": s.seed,
            "tick_s": s.tick_s,
            "hpa_targets_pct": sorted(set(s.hpa_targets_pct)),
            "oracle_slice_pct": setup.oracle.slice_pct,
            "template_slice_pct": setup.template_slice_pct,
        },
    }
