"""Hostile annotation values next to a healthy workload: only their own workload is held.

Each value below used to pass the parser and stop the whole tick (``plan: MemoryError``, a
``ZeroDivisionError``, seconds and gigabytes per tick), holding every workload. Now each is
a spec error for its own workload (``InvalidSpec``, in the API as for any bad annotation),
``sloscale validate`` rejects it too, and the healthy neighbour is planned as if alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controller import loop
from controller.domain import Decision, Reason, SloSpec, WorkloadMetrics
from controller.loop import Controller, LoopConfig
from controller.spec import ParseResult
from sloscale.api import create_app
from sloscale.cli import main as cli
from sloscale.telemetry import MetricsRecorder
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations

HOSTILE = [
    pytest.param({"min_replicas": str(10**12), "max_replicas": str(10**12)}, id="replicas-1e12"),
    pytest.param({"latency_quantile": "1e-300"}, id="quantile-1e-300"),
    pytest.param({"min_replicas": str(3 * 10**7), "max_replicas": str(3 * 10**7)}, id="3e7"),
]


def busy(rate: float, replicas: int, slice_pct: int, latency_ms: float) -> WorkloadMetrics:
    util = 0.02 * rate / replicas / (slice_pct / 100)
    return WorkloadMetrics(
        request_rate_rps=rate, latency_ms=latency_ms, good_ratio=1.0, gpu_util=util, gpu_busy=util
    )


def healthy_decisions(hostile: dict[str, str] | None) -> tuple[list[Decision], Controller]:
    """Four ticks of a healthy workload whose load jumps, with or without a hostile neighbour."""
    clock = FakeClock(1000.0)
    cluster, metrics = FakeCluster(clock), FakeMetrics()
    ctl = Controller(cluster, metrics, clock, LoopConfig(interval_s=15.0))
    good = cluster.add("good", slo_annotations(slice_min="50", slice_max="50"), replicas=1)
    if hostile is not None:
        bad = cluster.add("bad", slo_annotations(**hostile), replicas=1)
        metrics.values[bad.key] = busy(5.0, 1, 50, 200.0)
    out = []
    for tick in range(4):
        load = busy(60.0, 1, 50, 900.0) if tick == 3 else busy(5.0, 1, 50, 200.0)
        metrics.values[good.key] = load
        clock.advance(15.0)
        report = ctl.tick()
        out += [d for d in report.decisions if d.target == good.key]
    return out, ctl


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_annotation_is_a_spec_error_and_the_neighbour_is_planned(
    hostile: dict[str, str],
) -> None:
    alone, _ = healthy_decisions(None)
    beside, ctl = healthy_decisions(hostile)
    assert beside == alone  # planned on every tick exactly as without the neighbour
    assert beside[-1].reason in (Reason.SCALE_UP, Reason.SCALE_UP_LIMITED)
    report = ctl.last_report
    assert report is not None and report.errors == ()
    bad = [d for d in report.decisions if d.target == "default/bad"]
    assert [d.reason for d in bad] == [Reason.INVALID_SPEC]
    body = TestClient(create_app(ctl, MetricsRecorder())).get("/api/v1/workloads").json()
    shown = {w["workload"]: w for w in body["workloads"]}["default/bad"]
    assert not shown["valid"] and shown["errors"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_validate_rejects_a_hostile_annotation(
    hostile: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = "".join(f'    {k}: "{v}"\n' for k, v in slo_annotations(**hostile).items())
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\n  annotations:\n{lines}"
    )
    assert cli(["validate", str(manifest)]) == 1
    out = capsys.readouterr().out
    assert "default/bad" in out and ("supported range" in out or "ceiling" in out)


def test_a_workload_whose_observation_or_planning_raises_is_held_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should a value ever slip past the parser, it still holds only its own workload.

    The parser is bypassed here so that ``default/bad`` reaches the loop with quantile 1e-300:
    the first tick, planning it divides by zero; the next ones, learning its latency model
    takes the log of zero. Each time it alone is held, with a decision saying why.
    """
    real = loop.parse_slo_spec

    def bypassed(key: str, annotations: Mapping[str, str], **kw: Any) -> ParseResult[SloSpec]:
        result = real(key, annotations, **kw)
        if key != "default/bad" or result.spec is None:
            return result
        return ParseResult(replace(result.spec, latency_quantile=1e-300))

    monkeypatch.setattr(loop, "parse_slo_spec", bypassed)
    alone, _ = healthy_decisions(None)
    beside, ctl = healthy_decisions({})
    assert beside == alone
    report = ctl.last_report
    assert report is not None
    bad = [d for d in report.decisions if d.target == "default/bad"]
    assert [d.reason for d in bad] == [Reason.METRICS_UNAVAILABLE]
    assert bad[0].message.startswith("observing failed: ValueError")
    assert bad[0].desired == bad[0].current  # held
    assert [e.split(":")[0] for e in report.errors] == ["observe default/bad"]
    first = next(d for d in ctl.decision_log if d.target == "default/bad")
    assert first.message.startswith("planning failed: ZeroDivisionError")
