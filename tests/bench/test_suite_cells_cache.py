"""Which files are rate traces, the cells they make, and the baseline cache's key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from loadtests.shapes import traces_dir
from sloscale.bench.suite.cache import (
    BASELINE_ROOTS,
    ResultCache,
    baseline_modules,
    cache_key,
    code_hash,
)
from sloscale.bench.suite.cells import (
    Cell,
    Regime,
    Skipped,
    SuiteTrace,
    cells_for,
    discover,
    qualify,
)
from sloscale.bench.suite.outcome import Outcome

TRACES = traces_dir()
RATE_TRACES = {
    "nasa_jul95_per_minute",
    "servegen_m-small_per_10min",
    "servegen_m-large_per_10min",
    "servegen_mm-image_per_10min",
    "alibaba_genai2026_lora_requests_per_minute",
    "huawei_faas2025_dc1_func1197_per_5min",
    "huawei_faas2025_dc4_func296_per_5min",
    "azure_llm2023_code_per_minute",
}
needs_traces = pytest.mark.skipif(
    not (TRACES / "nasa_jul95_per_minute.csv").exists(), reason="shared traces not available"
)


@needs_traces
def test_the_shared_folder_has_the_issue_s_eight_rate_traces() -> None:
    traces, skipped = discover(TRACES)
    assert {t.name for t in traces} >= RATE_TRACES
    reasons = {s.name: s.reason for s in skipped}
    assert "not whole counts" in reasons["alibaba_genai2026_gateway_qps_per_minute"] or (
        "observed" in reasons["alibaba_genai2026_gateway_qps_per_minute"]
    )
    assert "expected header" in reasons["alibaba_genai2026_gpu_duty_cycle_per_minute"]
    assert "step 1 s" in reasons["azure_llm2023_code_per_second"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.csv"
    p.write_text(text)
    return p


def test_qualify_rejects_what_is_not_a_request_count(tmp_path: Path) -> None:
    rows = "".join(f"{60 * i},{i % 3}\n" for i in range(10))
    ok = qualify(write(tmp_path, "ok_per_minute", "timestamp_s,requests\n" + rows))
    assert isinstance(ok, SuiteTrace) and ok.hours == pytest.approx(10 / 60)
    assert ok.short == "ok"
    cases = {
        "fine": ("timestamp_s,requests\n0,1\n1,2\n2,3\n", "step 1 s"),
        "index": ("timestamp_s,requests\n0,1.5\n60,2\n", "not whole counts"),
        "gaps": ("timestamp_s,requests,observed\n0,1\n60,2,0\n", "observed"),
        "empty": ("timestamp_s,requests\n0,0\n60,0\n", "no requests"),
        "other": ("time,count\n0,1\n60,2\n", "expected header"),
    }
    for name, (text, reason) in cases.items():
        q = qualify(write(tmp_path, name, text))
        assert isinstance(q, Skipped) and reason in q.reason, (name, q)


def trace(hours: float) -> SuiteTrace:
    return SuiteTrace("t", Path("t.csv"), hours, 60.0, "0" * 64)


def test_regimes_cold_72_h_long_28_days_one_regime_for_short_traces() -> None:
    month, day = trace(30 * 24.0), trace(24.0)
    cells = cells_for([month, day], seeds=(1, 2))
    assert [(c.trace.hours, c.regime, c.seed, c.hours) for c in cells] == [
        (720.0, Regime.COLD, 1, 72.0),
        (720.0, Regime.COLD, 2, 72.0),
        (720.0, Regime.LONG, 1, 672.0),
        (720.0, Regime.LONG, 2, 672.0),
        (24.0, Regime.COLD, 1, None),  # the whole day, the one regime
        (24.0, Regime.COLD, 2, None),
    ]
    # a cap at or under the cold start makes long the same cells: dropped
    assert {c.regime for c in cells_for([month], (1,), cap_h=72.0)} == {Regime.COLD}
    capped = cells_for([month], (1,), cap_h=100.0)
    assert [c.hours for c in capped] == [72.0, 100.0]
    assert [c.regime for c in cells_for([month], (1,), (Regime.LONG,))] == [Regime.LONG]


CELL = Cell(trace(100.0), Regime.COLD, 1, 72.0)
SETTINGS = {"cluster_gpus": 8, "peak_share": 0.7, "slo_ms": 2000.0, "tick_s": 15.0}


def test_the_cache_key_changes_with_every_input() -> None:
    base = cache_key(CELL, "hpa@70", SETTINGS, "code")
    variants = [
        cache_key(replace(CELL, seed=2), "hpa@70", SETTINGS, "code"),
        cache_key(replace(CELL, regime=Regime.LONG), "hpa@70", SETTINGS, "code"),
        cache_key(replace(CELL, hours=48.0), "hpa@70", SETTINGS, "code"),
        cache_key(
            replace(CELL, trace=replace(CELL.trace, sha256="1" * 64)), "hpa@70", SETTINGS, "code"
        ),
        cache_key(CELL, "hpa@71", SETTINGS, "code"),
        cache_key(CELL, "rps@70", SETTINGS, "code"),
        cache_key(CELL, "hpa@70", {**SETTINGS, "slo_ms": 1000.0}, "code"),
        cache_key(CELL, "hpa@70", SETTINGS, "other code"),
    ]
    assert base == cache_key(CELL, "hpa@70", dict(SETTINGS), "code")
    assert len({base, *variants}) == len(variants) + 1


def test_the_code_hash_covers_the_baselines_but_not_the_controller_loop() -> None:
    modules = set(baseline_modules())
    assert set(BASELINE_ROOTS) <= modules
    assert {"controller.domain", "controller.spec", "controller.policy.stabilise"} <= modules
    assert {"actuators.sim.cluster", "actuators.sim.queueing", "forecasting.traces"} <= modules
    assert not any(m.startswith(("controller.loop", "controller.plan")) for m in modules)
    assert "sloscale.bench.sloscale" not in modules
    assert len(code_hash()) == 64


def test_the_import_walk_skips_type_checking_and_follows_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "sloscale" / "bench"
    (tmp_path / "controller").mkdir(parents=True)
    pkg.mkdir(parents=True)
    (tmp_path / "controller" / "core.py").write_text("X = 1\n")
    (tmp_path / "controller" / "loop.py").write_text("Y = 1\n")
    for name in BASELINE_ROOTS:
        path = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    (pkg / "hpa.py").write_text(
        "from typing import TYPE_CHECKING\nfrom controller.core import X\n"
        "from .kpa import *\nif TYPE_CHECKING:\n    from controller.loop import Y\n"
    )
    (pkg / "runner.py").write_text("from sloscale.bench.sloscale import Z\n")
    (pkg / "sloscale.py").write_text("from controller.loop import Y\n")
    modules = baseline_modules(tmp_path)
    assert "controller.core" in modules and "sloscale.bench.kpa" in modules
    assert "controller.loop" not in modules and "sloscale.bench.sloscale" not in modules


def test_the_cache_round_trips_and_misses_on_a_bad_file(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    o = Outcome("hpa@70", 0.991234, 0.98, 12.5, 0.6, True, 3, 0, 1000, wall_s=1.5)
    key = cache_key(CELL, "hpa@70", SETTINGS, "code")
    assert cache.get(CELL, "hpa@70", key) is None
    cache.put(CELL, "hpa@70", key, o)
    back = cache.get(CELL, "hpa@70", key)
    assert back == replace(o, cached=True)
    assert cache.get(CELL, "hpa@70", cache_key(CELL, "hpa@70", SETTINGS, "new")) is None
    for f in tmp_path.glob("*.json"):
        f.write_text("{not json")
    assert cache.get(CELL, "hpa@70", key) is None
    assert ResultCache(None).get(CELL, "hpa@70", key) is None
