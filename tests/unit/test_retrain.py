"""The retraining step (``controller.retrain``): trigger, timing, exactly once.

Each test drives ``step`` with plain data and, where it matters, replays what a cluster would
keep (the watermark annotation, the Jobs) across a controller restart (a fresh memory).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.domain import (
    JobPhase,
    JobState,
    JobTemplate,
    Reason,
    RetrainSpec,
    WorkloadRef,
)
from controller.retrain import (
    RETRAIN_OF_LABEL,
    RetrainConfig,
    RetrainInput,
    RetrainMemory,
    RetrainOutcome,
    RetrainState,
    RetrainWindow,
    Watermark,
    backoff_s,
    forecast_growth,
    job_name,
    step,
    written,
)

REF = WorkloadRef("ml", "chat")
SPEC = RetrainSpec("sum(samples)", 1000.0, "cronjob/retrain-chat", cooldown_s=3600.0)
OPEN = RetrainWindow(400.0, 800.0, inference_pct=200.0, typical_pct=300.0)  # 200 <= median
BUSY = RetrainWindow(400.0, 800.0, inference_pct=500.0, typical_pct=300.0)  # 500 > 300: peak


def job(name: str, phase: JobPhase, of: str = "chat") -> JobState:
    return JobState(
        WorkloadRef("ml", name, "Job"),
        {"sloscale.io/priority": "low", "sloscale.io/preemptible": "true"},
        1,
        100,
        40960,
        phase,
        labels={RETRAIN_OF_LABEL: of},
    )


@dataclass
class World:
    """What the cluster keeps: the annotation and the Jobs; ``memory`` is the controller's."""

    annotation: str | None = Watermark(samples=0.0).to_annotation()
    jobs: dict[str, JobState] = field(default_factory=dict)
    memory: RetrainMemory = field(default_factory=RetrainMemory)
    created: list[str] = field(default_factory=list)

    def tick(
        self,
        now_s: float,
        samples: float | None,
        window: RetrainWindow = OPEN,
        *,
        spec: RetrainSpec = SPEC,
        apply: bool = True,
        template: JobTemplate | None = None,
    ) -> RetrainOutcome:
        inp = RetrainInput(REF, spec, samples, self.annotation, tuple(self.jobs.values()), template)
        out = step(inp, self.memory, now_s, window)
        self.memory = out.memory
        if out.action is not None and apply:
            self.annotation = out.action.watermark
            if out.action.job_name is not None and out.action.job_name not in self.jobs:
                self.created.append(out.action.job_name)
                self.jobs[out.action.job_name] = job(out.action.job_name, JobPhase.PENDING)
            self.memory = written(self.memory, out.action)
        return out

    def restart(self) -> None:
        self.memory = RetrainMemory()

    def finish(self, phase: JobPhase) -> None:
        for name, j in self.jobs.items():
            if j.phase in (JobPhase.PENDING, JobPhase.RUNNING):
                self.jobs[name] = job(name, phase)

    @property
    def watermark(self) -> Watermark:
        return Watermark.parse(self.annotation)


# --- trigger ---------------------------------------------------------------------------------


def test_below_threshold_is_idle() -> None:
    w = World()
    out = w.tick(100, 999.0)  # 999 - 0 < 1000
    assert out.status.state is RetrainState.IDLE
    assert out.action is None and out.decision is None
    assert out.status.samples_since_watermark == 999.0


def test_crossing_the_threshold_in_a_window_triggers_and_starts_one_job() -> None:
    w = World()
    out = w.tick(100, 1000.0)  # 1000 - 0 >= 1000, window open
    assert out.decision is not None and out.decision.reason is Reason.RETRAIN_STARTED
    assert out.action is not None and out.action.job_name == "chat-retrain-1"
    assert [e.kind for e in out.events] == ["triggered", "started"]
    assert out.trigger is not None and out.trigger.reason is Reason.RETRAIN_TRIGGERED
    assert w.watermark.job == "chat-retrain-1" and w.watermark.job_samples == 1000.0
    assert w.created == ["chat-retrain-1"]


@pytest.mark.parametrize(
    "samples",
    [
        pytest.param(None, id="unavailable"),
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
    ],
)
def test_unavailable_counts_never_trigger(samples: float | None) -> None:
    w = World()
    out = w.tick(100, samples)
    assert out.status.state is RetrainState.UNAVAILABLE
    assert out.action is None and out.decision is None
    assert w.created == []


def test_counter_reset_below_the_watermark_rebases_and_does_not_trigger() -> None:
    w = World(annotation=Watermark(samples=50_000.0, rev=3).to_annotation())
    out = w.tick(100, 1_200.0)  # 1200 < 50000: the counter restarted, not -48800 samples
    assert out.status.state is RetrainState.IDLE
    assert out.decision is None and w.created == []
    assert w.watermark.samples == 1_200.0  # rebased: counting restarts here
    out = w.tick(115, 2_100.0)  # 2100 - 1200 = 900 < 1000
    assert out.status.state is RetrainState.IDLE and w.created == []
    w.tick(130, 2_200.0)  # 2200 - 1200 = 1000 >= 1000
    assert w.created == ["chat-retrain-1"]


def test_a_drop_below_the_last_reading_is_a_reset_too() -> None:
    w = World()
    w.tick(100, 900.0)
    out = w.tick(115, 300.0)  # 300 < 900 read last tick, still above the watermark (0)
    assert out.decision is None and w.created == []
    assert w.watermark.samples == 300.0
    w.tick(130, 1_250.0)  # 1250 - 300 = 950 < 1000: the reset did not count as new data
    assert w.created == []


def test_no_watermark_yet_takes_a_baseline_instead_of_counting_everything() -> None:
    w = World(annotation=None)
    out = w.tick(100, 5_000_000.0)  # a counter that ran long before sloscale: no trigger
    assert out.decision is None and w.created == []
    assert w.watermark.samples == 5_000_000.0


def test_cooldown_holds_a_trigger_until_it_is_over() -> None:
    last = Watermark(samples=0.0, time_s=1000.0, rev=5, seq=1)
    w = World(annotation=last.to_annotation())
    out = w.tick(2000.0, 5000.0)  # 1000 + 3600 - 2000 = 2600 s of cooldown left
    assert out.status.state is RetrainState.COOLDOWN
    assert "2600 s left" in out.status.message
    assert w.created == []
    w.tick(4600.0, 5000.0)  # 1000 + 3600 = 4600: over
    assert w.created == ["chat-retrain-2"]


# --- timing ----------------------------------------------------------------------------------


def test_a_trigger_waits_for_an_off_peak_window() -> None:
    w = World()
    out = w.tick(100, 1500.0, BUSY)
    assert out.status.state is RetrainState.WAITING
    assert out.decision is not None and out.decision.reason is Reason.RETRAIN_TRIGGERED
    assert w.watermark.triggered_at_s == 100 and w.created == []
    out = w.tick(115, 1600.0, BUSY)
    assert out.status.state is RetrainState.WAITING and out.decision is None
    out = w.tick(130, 1700.0, OPEN)
    assert out.decision is not None and out.decision.reason is Reason.RETRAIN_STARTED
    assert "off-peak" in out.decision.message
    assert w.watermark.job_samples == 1700.0  # it trains on what is there when it starts


def test_window_needs_the_jobs_share_plus_a_reserve() -> None:
    # 800 % pool, reserve 10 % = 80 %; a 2 x 100 % template needs 200 + 80 = 280 % free
    cfg = RetrainConfig()
    assert RetrainWindow(280.0, 800.0).fits(200.0, cfg)
    assert not RetrainWindow(279.0, 800.0).fits(200.0, cfg)
    w = World()
    big = JobTemplate(pods=2, share_pct_per_pod=100)
    out = w.tick(100, 1500.0, RetrainWindow(279.0, 800.0), template=big)
    assert out.status.state is RetrainState.WAITING and out.status.need_pct == 200.0


def test_the_urgent_threshold_starts_at_once_whatever_the_window() -> None:
    spec = RetrainSpec("q", 1000.0, "cronjob/retrain-chat", urgent_threshold_samples=5000.0)
    w = World()
    w.tick(100, 1500.0, BUSY, spec=spec)
    assert w.created == []
    out = w.tick(115, 4999.0, BUSY, spec=spec)  # 4999 < 5000
    assert w.created == []
    out = w.tick(130, 5000.0, BUSY, spec=spec)  # 5000 >= 5000: urgent
    assert out.decision is not None and out.decision.reason is Reason.RETRAIN_STARTED
    assert out.decision.message.endswith("(urgent: 5000 new samples >= 5000)")
    assert w.created == ["chat-retrain-1"]


def test_the_deadline_starts_at_once_after_waiting_that_long() -> None:
    spec = RetrainSpec("q", 1000.0, "cronjob/retrain-chat", deadline_s=3600.0)
    w = World()
    w.tick(100, 1500.0, BUSY, spec=spec)
    out = w.tick(3699, 1500.0, BUSY, spec=spec)  # waited 3599 s < 3600
    assert w.created == [] and out.status.start_by_s == 3700.0  # 100 + 3600
    out = w.tick(3700, 1500.0, BUSY, spec=spec)  # waited 3600 s
    assert out.decision is not None and "deadline" in out.decision.message
    assert w.created == ["chat-retrain-1"]


def test_off_peak_means_inference_at_or_below_its_median_of_the_day() -> None:
    cfg = RetrainConfig()
    assert RetrainWindow(500.0, 800.0, 400.0, typical_pct=400.0).fits(100.0, cfg)
    assert not RetrainWindow(500.0, 800.0, 401.0, typical_pct=400.0).fits(100.0, cfg)
    assert RetrainWindow(500.0, 800.0, 700.0, typical_pct=None).fits(100.0, cfg)  # no history


# --- exactly once ----------------------------------------------------------------------------


def test_restart_between_trigger_and_job_creation_creates_exactly_one_job() -> None:
    w = World()
    w.tick(100, 1500.0, BUSY)  # triggered, recorded on the cluster, no Job
    assert w.watermark.triggered_at_s == 100
    w.restart()
    out = w.tick(115, 1600.0, BUSY)  # the new controller still knows the trigger
    assert out.status.state is RetrainState.WAITING and out.decision is None
    w.tick(130, 1700.0, OPEN)
    w.restart()
    for t in (145, 160, 175):
        w.tick(t, 1800.0, OPEN)
    assert w.created == ["chat-retrain-1"]


def test_restart_after_the_annotation_but_before_the_job_recreates_the_same_name() -> None:
    w = World()
    out = w.tick(100, 1500.0, OPEN, apply=False)
    assert out.action is not None and out.action.job_name == "chat-retrain-1"
    w.annotation = out.action.watermark  # the annotation was written, then the controller died
    w.restart()
    again = w.tick(115, 1600.0, OPEN)
    assert again.action is not None and again.action.job_name == "chat-retrain-1"  # same Job
    assert again.status.state is RetrainState.STARTING
    w.tick(130, 1700.0, OPEN)
    assert w.created == ["chat-retrain-1"]


def test_restart_between_job_creation_and_completion_creates_exactly_one_job() -> None:
    w = World()
    w.tick(100, 1500.0, OPEN)
    w.jobs["chat-retrain-1"] = job("chat-retrain-1", JobPhase.RUNNING)
    w.restart()
    for t in (115, 130, 145):
        out = w.tick(t, 9_000.0, OPEN)  # far over the threshold: still one Job
        assert out.status.state is RetrainState.RUNNING and out.action is None
    w.restart()
    w.finish(JobPhase.SUCCEEDED)
    out = w.tick(160, 9_100.0, OPEN)
    assert out.decision is not None and out.decision.reason is Reason.RETRAIN_SUCCEEDED
    assert w.created == ["chat-retrain-1"]
    assert w.watermark.samples == 1500.0  # what the Job started with; 9100 - 1500 is new
    assert w.watermark.time_s == 160 and w.watermark.job is None
    out = w.tick(175, 9_200.0, OPEN)  # 7700 new, but the cooldown (1 h) runs from 160
    assert out.status.state is RetrainState.COOLDOWN and w.created == ["chat-retrain-1"]


def test_a_job_of_the_model_that_the_annotation_does_not_name_is_adopted() -> None:
    w = World()
    w.jobs["manual"] = job("manual", JobPhase.RUNNING)
    out = w.tick(100, 5000.0, OPEN)
    assert out.status.state is RetrainState.RUNNING and w.watermark.job == "manual"
    assert w.created == []


def test_jobs_of_other_models_do_not_block() -> None:
    w = World()
    w.jobs["other"] = job("other", JobPhase.RUNNING, of="vision")
    inp_jobs = tuple(j for j in w.jobs.values() if j.labels[RETRAIN_OF_LABEL] == "chat")
    assert inp_jobs == ()  # the loop passes only this model's Jobs (``model_jobs``)


def test_a_lagging_cache_does_not_undo_a_write() -> None:
    w = World()
    before = w.annotation
    w.tick(100, 1500.0, OPEN)
    w.annotation = before  # the cache still shows the old annotation
    out = w.tick(115, 1600.0, OPEN)  # memory's newer revision wins: no second Job
    assert out.status.state in (RetrainState.STARTING, RetrainState.RUNNING)
    assert w.created == ["chat-retrain-1"]


def test_a_failed_job_is_retried_with_backoff_and_reported() -> None:
    w = World()
    w.tick(100, 1500.0, OPEN)
    w.finish(JobPhase.FAILED)
    out = w.tick(200, 1600.0, OPEN)
    assert out.decision is not None and out.decision.reason is Reason.RETRAIN_FAILED
    assert w.watermark.retry_at_s == 500.0  # 200 + 300 s
    assert w.watermark.samples == 0.0  # the watermark does not advance on failure
    out = w.tick(499, 1600.0, OPEN)
    assert out.status.state is RetrainState.BACKOFF and w.created == ["chat-retrain-1"]
    w.tick(500, 1600.0, OPEN)
    assert w.created == ["chat-retrain-1", "chat-retrain-2"]
    w.finish(JobPhase.FAILED)
    w.tick(600, 1600.0, OPEN)
    assert w.watermark.retry_at_s == 1200.0  # 600 + 2 x 300 s
    assert w.watermark.failures == 2


def test_backoff_doubles_and_is_capped() -> None:
    cfg = RetrainConfig(backoff_base_s=300.0, backoff_max_s=1000.0)
    assert [backoff_s(n, cfg) for n in (1, 2, 3, 4)] == [300.0, 600.0, 1000.0, 1000.0]


# --- blocked ---------------------------------------------------------------------------------


def test_a_missing_template_blocks_that_model_once() -> None:
    w = World()
    missing = JobTemplate(error="not found")
    out = w.tick(100, 1500.0, OPEN, template=missing)
    assert out.status.state is RetrainState.BLOCKED
    assert out.decision is not None and out.decision.reason is Reason.RETRAIN_BLOCKED
    assert "cronjob/retrain-chat: not found" in out.decision.message
    again = w.tick(115, 1600.0, OPEN, template=missing)
    assert again.decision is None  # reported once, not every tick
    assert w.created == []
    fixed = w.tick(130, 1700.0, OPEN, template=JobTemplate())
    assert fixed.decision is not None and fixed.decision.reason is Reason.RETRAIN_STARTED


def test_an_unreadable_watermark_blocks_instead_of_starting_over() -> None:
    w = World(annotation="{not json")
    out = w.tick(100, 5000.0, OPEN)
    assert out.status.state is RetrainState.BLOCKED and out.action is None
    assert "not JSON" in out.status.message


# --- small steps -----------------------------------------------------------------------------


def test_watermark_round_trips() -> None:
    wm = Watermark(samples=12.5, time_s=7.0, rev=4, seq=2, job="chat-retrain-2", failures=1)
    assert Watermark.parse(wm.to_annotation()) == wm
    assert Watermark.parse(None) == Watermark()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"samples": "many"}', id="string-count"),
        pytest.param('{"samples": NaN}', id="nan-count"),
        pytest.param("[1, 2]", id="not-an-object"),
        pytest.param('{"job": 3}', id="numeric-job"),
    ],
)
def test_bad_watermarks_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="retrain-watermark"):
        Watermark.parse(text)


def test_job_names_fit_a_label_value() -> None:
    assert job_name("chat", 3) == "chat-retrain-3"
    long = job_name("m" * 80, 12)
    assert len(long) == 63 and long.endswith("-retrain-12")


@pytest.mark.parametrize(
    ("upper", "observed", "expected"),
    [
        pytest.param(30.0, 20.0, 1.5, id="rising"),
        pytest.param(10.0, 20.0, 1.0, id="falling-counts-as-now"),
        pytest.param(None, 20.0, 1.0, id="no-forecast"),
        pytest.param(100.0, 10.0, 3.0, id="capped"),
        pytest.param(5.0, 0.0, 3.0, id="from-zero"),
    ],
)
def test_forecast_growth(upper: float | None, observed: float, expected: float) -> None:
    assert forecast_growth(upper, observed) == expected


def test_the_retrain_module_is_pure() -> None:
    package = Path(__file__).resolve().parents[2] / "controller" / "retrain"
    paths = sorted(package.glob("*.py"))
    assert paths, package
    roots = set()
    for node in (n for p in paths for n in ast.walk(ast.parse(p.read_text()))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    forbidden = {"actuators", "fastapi", "uvicorn", "prometheus_client", "httpx", "kubernetes"}
    assert not roots & forbidden
