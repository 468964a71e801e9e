"""``sloscale bench --suite --ablate``: the verdicts on hand-made outcomes, and the CLI end to
end on a short cell."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from controller.plan import PlannerConfig
from loadtests.shapes import traces_dir
from sloscale.bench import main
from sloscale.bench.suite.ablation import FULL, VARIANTS, summarise, verdict
from sloscale.bench.suite.cells import Cell, Regime, SuiteTrace
from sloscale.bench.suite.outcome import Outcome

TRACE = SuiteTrace("t_per_minute", Path("t.csv"), 24.0, 60.0, "0" * 64)
CELLS = (Cell(TRACE, Regime.COLD, 1, None), Cell(TRACE, Regime.COLD, 2, None))


def outcome(gpu_h: float, attainment: float) -> Outcome:
    return Outcome("sloscale", attainment, None, gpu_h, None, attainment >= 0.99, 0, 0, 100)


def test_a_removal_that_loses_a_cell_is_worse_even_when_it_is_cheaper() -> None:
    results = {
        (FULL, CELLS[0].slug): outcome(10.0, 0.995),
        (FULL, CELLS[1].slug): outcome(20.0, 0.992),
        ("cheap", CELLS[0].slug): outcome(8.0, 0.995),
        ("cheap", CELLS[1].slug): outcome(10.0, 0.985),
    }
    full, cheap = summarise(results, CELLS, [FULL, "cheap"])
    assert (full.cells_met, full.verdict) == (2, "baseline")
    assert (cheap.cells_met, cheap.verdict) == (1, "rule pays")
    assert cheap.geomean_cost_vs_full == pytest.approx((0.8 * 0.5) ** 0.5)
    assert (cheap.best_cost_vs_full, cheap.worst_cost_vs_full) == (0.5, 0.8)


def test_a_rule_must_earn_its_place_a_tie_removes_it() -> None:
    assert verdict("x", 2, 2, 1.0, 1.0) == "rule does not pay"
    assert verdict("x", 2, 2, 1.01, 1.0) == "rule pays"
    assert verdict("x", 3, 2, 1.5, 1.0) == "rule does not pay"  # more cells met
    assert verdict(FULL, 2, 2, 1.0, 1.0) == "baseline"


def test_each_variant_removes_exactly_one_rule() -> None:
    full = next(v for v in VARIANTS if v.name == FULL).planner
    for v in VARIANTS:
        if v.name == FULL:
            continue
        changed = [
            stage
            for stage in ("headroom", "sizing", "slices", "stabilise", "resume")
            if getattr(v.planner, stage) != getattr(full, stage)
        ]
        assert len(changed) == 1, v.name


@pytest.mark.skipif(
    not (traces_dir() / "azure_llm2023_code_per_minute.csv").exists(),
    reason="shared traces not available",
)
def test_ablate_replays_sloscale_per_variant_and_writes_the_table(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "ablation.json"
    argv = ["--suite", "--ablate", "no-overshoot", "--traces", "azure_llm2023_code_per_minute"]
    argv += ["--seeds", "1", "--regimes", "cold", "--hours-cap", "0.5", "--workers", "1"]
    code = main([*argv, "--json", str(path)], out=out, err=err)
    assert code == 0, err.getvalue()
    payload = json.loads(path.read_text())
    assert [v["name"] for v in payload["variants"]] == [FULL, "no-overshoot"]
    assert set(payload["cells"][0]["results"]) == {FULL, "no-overshoot"}
    assert payload["aggregate"][0]["verdict"] == "baseline"
    assert "no-overshoot" in out.getvalue() and "[2/2" in err.getvalue()
    bad = io.StringIO()
    assert main(["--suite", "--ablate", "no-such-rule"], out=io.StringIO(), err=bad) == 2
    assert "no variant 'no-such-rule'" in bad.getvalue()


def test_a_setting_variant_changes_exactly_one_constant() -> None:
    from sloscale.bench.suite.ablation import setting_variant

    v = setting_variant("headroom.budget_reserve=0.95")
    base = PlannerConfig()
    assert v.name == "headroom.budget_reserve=0.95"
    assert v.planner.headroom.budget_reserve == 0.95
    assert replace(v.planner, headroom=base.headroom) == base
    assert setting_variant("stabilise.tolerance=0.2").planner != base


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("headroom", "stage.field=value"),
        ("nosuch.x=1", "no planner stage"),
        ("headroom.nosuch=1", "no number"),
        ("headroom.budget_reserve=abc", "not a number"),
        ("headroom.budget_reserve=nan", "finite"),
    ],
)
def test_a_bad_setting_is_refused_with_the_reason(text: str, says: str) -> None:
    from sloscale.bench.suite.ablation import setting_variant

    with pytest.raises(ValueError, match=says):
        setting_variant(text)


def test_a_setting_is_judged_better_only_when_it_meets_as_many_cells_for_less() -> None:
    name = "headroom.budget_reserve=0.95"
    assert verdict(name, 7, 8, 0.9, 1.0) == "setting worse"
    assert verdict(name, 8, 8, 0.9, 1.0) == "setting better"
    assert verdict(name, 8, 8, 1.0, 1.0) == "setting not better"
    assert verdict(name, 8, 7, 1.2, 1.0) == "setting better"


def test_an_integer_constant_refuses_a_fraction() -> None:
    from controller.policy.stabilise import StabiliseConfig
    from sloscale.bench.suite.ablation import setting_variant

    # no stage constant is an integer since the step limits became annotations
    # (``sloscale.io/scale-up-max-pods``): an integer-valued one stands in for one
    base = replace(PlannerConfig(), stabilise=StabiliseConfig(tolerance=1))
    assert setting_variant("stabilise.tolerance=8", base).planner.stabilise.tolerance == 8
    with pytest.raises(ValueError, match="integer"):
        setting_variant("stabilise.tolerance=2.5", base)


def test_settings_joined_by_plus_are_applied_together() -> None:
    from sloscale.bench.suite.ablation import setting_variant

    v = setting_variant("headroom.budget_reserve=0.3+headroom.min_headroom=0")
    assert v.name == "headroom.budget_reserve=0.3+headroom.min_headroom=0"
    assert v.planner.headroom.budget_reserve == 0.3
    assert v.planner.headroom.min_headroom == 0.0
    with pytest.raises(ValueError, match="no number"):
        setting_variant("headroom.budget_reserve=0.3+headroom.nosuch=1")
