"""The control loop: one ``tick()`` that reads discover → observe → forecast → plan → act → record.

The loop owns the per-workload state the pure parts need across ticks (learnt capacity,
planner memory, error budget, rate history) and nothing else. Every phase is timed, every
decision has a reason, and no exception escapes a tick: a failed read holds the current state
(fail static) with reason ``MetricsUnavailable``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from controller.capacity import CapacityModel, update_capacity
from controller.domain import (
    Allocation,
    ApplyResult,
    ClusterSnapshot,
    Decision,
    DeploymentState,
    JobPhase,
    JobSpec,
    JobState,
    Observation,
    Plan,
    Reason,
    RetrainAction,
    SliceDialect,
    SloSpec,
    SpecError,
    WorkloadMetrics,
    available,
)
from controller.forecast import (
    NO_MODEL,
    ForecastBank,
    ForecastPhaseStats,
    ForecastScore,
    ForecastSettings,
)
from controller.jobs import JobInput, idle_since, work_at_risk_gpu_s
from controller.planner import (
    PlannerConfig,
    WorkloadInput,
    hold_all,
    plan,
)
from controller.ports import Clock, Cluster, MetricsSource, ObserveTarget, RateHistorySource
from controller.prediction import RateForecast
from controller.retrain import (
    RETRAIN_REASONS,
    Model,
    RetrainBook,
    RetrainConfig,
    RetrainStatus,
    forecast_growth,
)
from controller.slo import ErrorBudget, SliSample
from controller.spec import parse_job_spec, parse_slo_spec
from controller.state import ParsedJob, ParsedSlo, StateStore
from forecasting.base import History

log = logging.getLogger("sloscale.loop")
T = TypeVar("T")

PHASES = ("discover", "observe", "forecast", "plan", "act", "record")
JOB_OBSERVE_SPEC = SloSpec(latency_target_ms=1.0)
"""What a Job is observed with: only its GPU utilisation is read (for ``reclaim-idle-after``);
its request signals are simply absent."""


@dataclass(frozen=True, slots=True)
class LoopConfig:
    interval_s: float = 15.0
    lead_time_s: float = 90.0  # cold start (60 s) + a tick and a scrape
    dry_run: bool = False
    default_dialect: SliceDialect = SliceDialect.HAMI
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    decision_log_size: int = 5000
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)


@dataclass(frozen=True, slots=True)
class WorkloadStatus:
    """One workload as the API shows it after a tick."""

    key: str
    spec: SloSpec | None
    errors: tuple[SpecError, ...]
    current: Allocation
    ready_replicas: int
    desired: Allocation | None
    metrics: WorkloadMetrics
    forecast: RateForecast | None
    forecast_score: ForecastScore
    sli: float | None
    budget_remaining: float
    capacity: CapacityModel
    last_decision: Decision | None


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One low-priority job as the API shows it: what sloscale knows and did to it.

    A job's progress is not observable on Kubernetes (a Job reports only completions), so
    the lost work is sloscale's own estimate at each preemption: GPU time since the last
    checkpoint by the job's ``checkpoint-interval`` (all of it since the start without one).
    """

    key: str
    phase: str
    priority: int
    preemptible: bool
    pods: int
    share_pct_per_pod: int
    started_at_s: float | None
    preemptions_last_day: int
    estimated_lost_gpu_h: float
    last_decision: Decision | None


@dataclass(frozen=True, slots=True)
class TickReport:
    """Everything one tick did, for the recorders (metrics, API, logs)."""

    time_s: float
    phase_s: Mapping[str, float]
    decisions: tuple[Decision, ...]
    results: tuple[ApplyResult, ...]
    workloads: tuple[WorkloadStatus, ...]
    plan: Plan
    dry_run: bool
    errors: tuple[str, ...] = ()
    forecast_stats: ForecastPhaseStats = field(default_factory=ForecastPhaseStats)
    snapshot: ClusterSnapshot | None = None  # what discover saw (None: discovery failed)
    retraining: tuple[RetrainStatus, ...] = ()  # every model with retraining settings
    jobs: tuple[JobStatus, ...] = ()
    lost_gpu_h: Mapping[str, float] = field(default_factory=dict)  # per job, this tick


class Recorder:
    """Receives every tick's report; subclasses export it (``/metrics``, status, logs)."""

    def record(self, report: TickReport) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _PhaseTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start  # a phase may run in steps (plan, retrain)
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed


class Controller:
    """The sloscale control loop over one cluster and one metrics source."""

    def __init__(
        self,
        cluster: Cluster,
        metrics: MetricsSource,
        clock: Clock,
        config: LoopConfig = LoopConfig(),
        *,
        recorders: Sequence[Recorder] = (),
        history: RateHistorySource | None = None,
    ):
        self.cluster = cluster
        self.metrics = metrics
        self.clock = clock
        self.config = config
        self.recorders = list(recorders)
        self.history_source = history
        self.forecasts = ForecastBank(config.forecast, config.interval_s)
        self.state = StateStore()  # every workload's and job's record across ticks
        self._tick_lost_gpu_h: dict[str, float] = {}
        self._job_idle_measured: set[str] = set()  # Jobs whose utilisation this tick read
        self.decision_log: deque[Decision] = deque(maxlen=config.decision_log_size)
        self.last_report: TickReport | None = None
        self.retraining = RetrainBook(config.retrain)

    # ---------------------------------------------------------------------------------------
    def tick(self) -> TickReport:
        """One pass of the loop; never raises."""
        now = self.clock.now()
        timer = _PhaseTimer()
        errors: list[str] = []
        snapshot: ClusterSnapshot | None = None
        observation: Observation | None = None
        decisions: tuple[Decision, ...] = ()
        results: tuple[ApplyResult, ...] = ()
        the_plan = Plan()
        self._tick_lost_gpu_h = {}
        forecast_stats = ForecastPhaseStats()

        with timer.phase("discover"):
            snapshot = self._guard(errors, "discover", self.cluster.snapshot)
            specs = self._parse_specs(snapshot) if snapshot else {}
        with timer.phase("observe"):
            if snapshot is not None:
                observation = self._guard(
                    errors, "observe", lambda: self._observe(specs, snapshot.jobs, now)
                )
        with timer.phase("forecast"):
            if snapshot is not None and observation is not None:
                stats = self._guard(
                    errors, "forecast", lambda: self._update_forecasts(specs, observation, now)
                )
                forecast_stats = stats or forecast_stats
        with timer.phase("plan"):
            if snapshot is not None:
                planned = self._guard(
                    errors, "plan", lambda: self._plan(snapshot, specs, observation)
                )
                if planned is not None:
                    the_plan, decisions = planned
                else:
                    decisions = hold_all(
                        snapshot.deployments,
                        now,
                        Reason.METRICS_UNAVAILABLE,
                        "planning failed: holding",
                    )
        with timer.phase("plan"):  # its *retrain* step (ARCHITECTURE §1)
            if snapshot is not None:
                retrain = self._guard(
                    errors,
                    "retrain",
                    lambda: self._retrain(snapshot, specs, observation, decisions),
                )
                if retrain is not None:
                    the_plan = replace(the_plan, retrain=retrain[0])
                    decisions += retrain[1]
        with timer.phase("act"):
            if not the_plan.is_empty():
                applied = self._guard(
                    errors, "act", lambda: self.cluster.apply(the_plan, dry_run=self.config.dry_run)
                )
                results = tuple(applied or ())
                decisions = self._mark_applied(decisions, results)
            decisions += self.retraining.applied(the_plan.retrain, results)
        with timer.phase("record"):
            self._log_decisions(decisions)
            statuses = self._statuses(snapshot)
        lost = {} if self.config.dry_run else self._applied_losses(results)
        for key, hours in lost.items():
            self.state.job(key).lost_gpu_h += hours
        jobs = self._job_statuses(snapshot, now)
        report = TickReport(
            time_s=now,
            phase_s=dict(timer.seconds),
            decisions=decisions,
            results=results,
            workloads=statuses,
            plan=the_plan,
            dry_run=self.config.dry_run,
            errors=tuple(errors) + (observation.errors if observation else ()),
            forecast_stats=forecast_stats,
            snapshot=snapshot,
            retraining=self.retraining.statuses,
            jobs=jobs,
            lost_gpu_h=lost,
        )
        self.last_report = report
        self._export(report)
        return report

    # --- discover ---------------------------------------------------------------------------
    def _parse_specs(self, snapshot: ClusterSnapshot) -> dict[str, tuple[DeploymentState, SloSpec]]:
        """Parse each Deployment's annotations (cached until they change); skip bad ones.

        Records of Deployments and Jobs no longer in the snapshot are forgotten.
        """
        self.state.forget_missing(
            (dep.ref.key for dep in snapshot.deployments), (job.ref.key for job in snapshot.jobs)
        )
        specs: dict[str, tuple[DeploymentState, SloSpec]] = {}
        for dep in snapshot.deployments:
            key = dep.ref.key
            tr = self.state.workload(key)
            if tr.parsed is None or dict(dep.annotations) != dict(tr.parsed.annotations):
                result = parse_slo_spec(
                    key, dep.annotations, default_dialect=self.config.default_dialect
                )
                tr.parsed = ParsedSlo(dict(dep.annotations), result.spec, result.errors)
                for e in result.errors:
                    log.warning("invalid SLO spec: %s", e)
                if result.spec is not None:
                    tr.budget = ErrorBudget(result.spec.window_s, result.spec.objective_ratio)
            if tr.spec is not None and not tr.errors:
                specs[key] = (dep, tr.spec)
        self.forecasts.forget(set(specs))
        return specs

    # --- observe ----------------------------------------------------------------------------
    def _observe(
        self,
        specs: Mapping[str, tuple[DeploymentState, SloSpec]],
        jobs: Sequence[JobState],
        now: float,
    ) -> Observation:
        targets = [ObserveTarget(dep.ref, spec) for dep, spec in specs.values()]
        watched = self._idle_watched_jobs(jobs)
        targets += [ObserveTarget(job.ref, JOB_OBSERVE_SPEC) for job in watched]
        obs = self.metrics.observe(targets, now)
        self._track_job_idleness(watched, obs, now)
        for key, (dep, spec) in specs.items():
            tr = self.state.workload(key)
            m = obs.get(key)
            tr.last_metrics = m
            tr.idle_since_s = idle_since(tr.idle_since_s, m.gpu_util, now)
            current = Allocation(dep.replicas, dep.slice_pct)
            if dep.slice_pct != tr.slice_pct or dep.rollout_in_progress:
                tr.slice_pct, tr.slice_settled_s = dep.slice_pct, math.inf
            elif tr.slice_settled_s == math.inf:
                tr.slice_settled_s = now  # the rollout has just finished
            one_slice = now - tr.slice_settled_s >= m.window_s
            tr.capacity = update_capacity(
                tr.capacity, m, current, dep.ready_replicas, spec.latency_quantile, one_slice
            )
            if tr.budget is not None and available(m.request_rate_rps) and available(m.good_ratio):
                assert m.request_rate_rps is not None and m.good_ratio is not None
                total = m.request_rate_rps * self.config.interval_s
                tr.budget.add(SliSample(now, total * m.good_ratio, total))
        return obs

    def _idle_watched_jobs(self, jobs: Sequence[JobState]) -> list[JobState]:
        """Running Jobs annotated ``reclaim-idle-after``: their GPU utilisation is read too."""
        out = []
        for job in jobs:
            spec = self._job_spec(job.ref.key, job.annotations)
            idle_reclaimed = spec is not None and spec.reclaim_idle_after_s is not None
            if idle_reclaimed and job.phase is JobPhase.RUNNING:
                out.append(job)
        live = {j.ref.key for j in out}
        for key, record in self.state.jobs.items():
            if key not in live:
                record.idle_since_s = None  # suspended: a resume starts afresh
        return out

    def _track_job_idleness(self, jobs: Sequence[JobState], obs: Observation, now: float) -> None:
        self._job_idle_measured = set()
        for job in jobs:
            key = job.ref.key
            util = obs.get(key).gpu_util
            if available(util):
                self._job_idle_measured.add(key)
            record = self.state.job(key)
            record.idle_since_s = idle_since(record.idle_since_s, util, now)

    def _job_idle_since_now(self, key: str) -> float | None:
        """The idle tracker, only when this tick measured the utilisation (else no reclaim)."""
        record = self.state.find_job(key)
        if record is None or key not in self._job_idle_measured:
            return None
        return record.idle_since_s

    # --- forecast ---------------------------------------------------------------------------
    def _update_forecasts(
        self, specs: Mapping[str, tuple[DeploymentState, SloSpec]], obs: Observation, now: float
    ) -> ForecastPhaseStats:
        bank = self.forecasts
        for key in specs:
            bank.track(key)
        self._warm_start(specs, now)
        for key in specs:
            m = obs.get(key)
            bank.observe(key, now, m.request_rate_rps, m.window_s)
        stats = bank.refresh(now)
        lead_s = self.config.lead_time_s
        for key in specs:
            forecast = bank.forecast(key, now, lead_s)
            bank.record_prediction(key, now, lead_s, forecast)  # scored once it is due
            record = self.state.workload(key)
            record.forecast = forecast
            record.rate_profile_rps = bank.rate_profile(key)
        return stats

    def _warm_start(self, specs: Mapping[str, tuple[DeploymentState, SloSpec]], now: float) -> None:
        """Give newly seen workloads their past rates, so a restart does not start blind."""
        new = [key for key in self.forecasts.unseeded() if key in specs]
        if not new:
            return
        histories: Mapping[str, History] = {}
        settings = self.config.forecast
        if self.history_source is not None and settings.model != NO_MODEL:
            step_s = settings.step_s
            end_s = math.floor(now / step_s) * step_s
            targets = [ObserveTarget(specs[k][0].ref, specs[k][1]) for k in new]
            try:
                histories = self.history_source.rate_history(
                    targets, end_s - settings.history_s, end_s, step_s
                )
            except Exception as e:  # the port must not raise; if it does, start cold
                log.warning("warm start failed, forecasting from live data only: %s", e)
        for key in new:
            self.forecasts.seed(key, histories.get(key))

    # --- plan -------------------------------------------------------------------------------
    def _plan(
        self,
        snapshot: ClusterSnapshot,
        specs: Mapping[str, tuple[DeploymentState, SloSpec]],
        observation: Observation | None,
    ) -> tuple[Plan, tuple[Decision, ...]]:
        now = snapshot.time_s
        inputs = []
        for key, (dep, spec) in specs.items():
            tr = self.state.workload(key)
            metrics = observation.get(key) if observation is not None else WorkloadMetrics()
            inputs.append(
                WorkloadInput(
                    spec=spec,
                    state=dep,
                    metrics=metrics,
                    rate_forecast_rps=tr.forecast.mean_rps if tr.forecast else None,
                    rate_upper_rps=tr.forecast.upper_rps if tr.forecast else None,
                    rate_profile_rps=tr.rate_profile_rps,
                    capacity=tr.capacity,
                    memory=tr.memory,
                    budget_remaining=tr.budget.remaining() if tr.budget else 1.0,
                    resume_rate_rps=self._resume_rate(key, now),
                    idle_since_s=tr.idle_since_s,
                )
            )
        jobs = []
        for job in snapshot.jobs:
            job_spec = self._job_spec(job.ref.key, job.annotations)
            if job_spec is not None:
                record = self.state.job(job.ref.key)
                jobs.append(
                    JobInput(
                        job,
                        job_spec,
                        record.last_preempted_s,
                        record.preemptions_within(now),
                        self._job_idle_since_now(job.ref.key),
                    )
                )
        result = plan(inputs, jobs, snapshot, self.config.planner)
        for key, memory in result.memories.items():
            self.state.workload(key).memory = memory
        invalid = tuple(
            Decision(now, key, Reason.INVALID_SPEC, "; ".join(str(e) for e in tr.errors))
            for key, tr in self.state.workloads.items()
            if tr.errors
        )
        by_key = {j.key: j for j in jobs}
        self._tick_lost_gpu_h = {}
        for act in result.plan.jobs:
            if act.suspend:
                job_in = by_key.get(act.ref.key)
                if job_in is not None:
                    held = job_in.state.pods * job_in.state.share_pct_per_pod
                    lost_h = work_at_risk_gpu_s(job_in, held, now) / 3600.0
                    self._tick_lost_gpu_h[act.ref.key] = lost_h
                self.state.job(act.ref.key).preempted(now)
        for d in result.decisions:
            if d.reason in (Reason.PREEMPTED, Reason.RESUMED) or d.target in self.state.jobs:
                self.state.job(d.target).last_decision = d
        return result.plan, result.decisions + invalid

    def _resume_rate(self, key: str, now: float) -> float | None:
        """The upper band of the rate over the planner's resume horizon (not scored: the
        accuracy figures compare lead-time forecasts only)."""
        horizon_s = self.config.planner.resume_horizon_s
        forecast = self.forecasts.forecast(key, now, horizon_s)
        return forecast.upper_rps if forecast is not None else None

    def job_preemptions(self, key: str) -> tuple[float, ...]:
        """When sloscale preempted job ``key`` within the last day."""
        record = self.state.find_job(key)
        return record.preemptions_s if record is not None else ()

    def job_last_decision(self, key: str) -> Decision | None:
        record = self.state.find_job(key)
        return record.last_decision if record is not None else None

    def _applied_losses(self, results: Sequence[ApplyResult]) -> dict[str, float]:
        """Estimated work lost by this tick's preemptions that the cluster carried out."""
        ok = {r.target for r in results if r.ok}
        return {k: h for k, h in self._tick_lost_gpu_h.items() if k in ok}

    def _job_statuses(self, snapshot: ClusterSnapshot | None, now: float) -> tuple[JobStatus, ...]:
        if snapshot is None:
            return self.last_report.jobs if self.last_report else ()
        out = []
        for job in snapshot.jobs:
            key = job.ref.key
            record = self.state.find_job(key)
            if record is None or record.spec is None:
                continue
            spec = record.spec
            out.append(
                JobStatus(
                    key=key,
                    phase=job.phase.value,
                    priority=spec.priority,
                    preemptible=spec.preemptible,
                    pods=job.pods,
                    share_pct_per_pod=job.share_pct_per_pod,
                    started_at_s=job.started_at_s,
                    preemptions_last_day=len(record.preemptions_within(now)),
                    estimated_lost_gpu_h=record.lost_gpu_h,
                    last_decision=record.last_decision,
                )
            )
        return tuple(out)

    def _job_spec(self, key: str, annotations: Mapping[str, str]) -> JobSpec | None:
        """A Job's parsed annotations, cached until they change; a bad one is logged once."""
        record = self.state.job(key)
        if record.parsed is not None and dict(record.parsed.annotations) == dict(annotations):
            return record.parsed.spec
        parsed = parse_job_spec(key, annotations)
        for e in parsed.errors:
            log.warning("invalid job annotations: %s", e)
        spec = None if parsed.errors else parsed.spec
        record.parsed = ParsedJob(dict(annotations), spec)
        return spec

    # --- retrain ----------------------------------------------------------------------------
    def _retrain(
        self,
        snapshot: ClusterSnapshot,
        specs: Mapping[str, tuple[DeploymentState, SloSpec]],
        observation: Observation | None,
        decisions: tuple[Decision, ...],
    ) -> tuple[tuple[RetrainAction, ...], tuple[Decision, ...]]:
        """Models over their data threshold get one retraining Job, in an off-peak window:
        inference counts at its planned share scaled by its forecast (``controller.retrain``)."""
        desired = {d.target: d.desired.share_pct for d in decisions if d.desired is not None}
        inference: dict[str, float] = {}
        models = []
        for key, (dep, spec) in specs.items():
            tr = self.state.workload(key)
            share = max(dep.replicas * dep.slice_pct, desired.get(key, 0))
            upper = tr.forecast.upper_rps if tr.forecast else None
            inference[key] = share * forecast_growth(upper, tr.last_metrics.request_rate_rps)
            if spec.retrain is not None:
                samples = observation.get(key).data_samples if observation else None
                models.append(Model(dep, spec.retrain, samples))
        return self.retraining.plan(snapshot, models, inference)

    # --- act --------------------------------------------------------------------------------
    def _mark_applied(
        self, decisions: tuple[Decision, ...], results: tuple[ApplyResult, ...]
    ) -> tuple[Decision, ...]:
        outcome = {r.target: r for r in results}
        out = []
        for d in decisions:
            r = outcome.get(d.target)
            if r is None:
                out.append(d)
            elif r.ok:
                out.append(
                    Decision(
                        d.time_s,
                        d.target,
                        d.reason,
                        d.message,
                        d.current,
                        d.desired,
                        applied=not self.config.dry_run,
                    )
                )
            else:
                out.append(
                    Decision(
                        d.time_s,
                        d.target,
                        Reason.APPLY_FAILED,
                        f"{d.reason}: {r.message}",
                        d.current,
                        d.desired,
                    )
                )
        return tuple(out)

    # --- record -----------------------------------------------------------------------------
    def _statuses(self, snapshot: ClusterSnapshot | None) -> tuple[WorkloadStatus, ...]:
        if snapshot is None:
            return self.last_report.workloads if self.last_report else ()
        out = []
        for dep in snapshot.deployments:
            tr = self.state.find_workload(dep.ref.key)
            if tr is None:
                continue
            out.append(
                WorkloadStatus(
                    key=dep.ref.key,
                    spec=tr.spec,
                    errors=tr.errors,
                    current=Allocation(dep.replicas, dep.slice_pct),
                    ready_replicas=dep.ready_replicas,
                    desired=tr.last_decision.desired if tr.last_decision else None,
                    metrics=tr.last_metrics,
                    forecast=tr.forecast,
                    forecast_score=self.forecasts.score(dep.ref.key),
                    sli=tr.budget.sli() if tr.budget else None,
                    budget_remaining=tr.budget.remaining() if tr.budget else 1.0,
                    capacity=tr.capacity,
                    last_decision=tr.last_decision,
                )
            )
        return tuple(out)

    def _log_decisions(self, decisions: tuple[Decision, ...]) -> None:
        """Keep each workload's last decision; log changes and reason transitions."""
        for d in decisions:
            tr = self.state.find_workload(d.target)
            previous = tr.last_decision if tr else None
            if tr is not None and d.reason not in RETRAIN_REASONS:
                tr.last_decision = d
            if d.changes or previous is None or previous.reason != d.reason:
                self.decision_log.append(d)
                if d.changes:
                    log.info(
                        "%s %s: %s -> %s (%s)", d.target, d.reason, d.current, d.desired, d.message
                    )

    def _export(self, report: TickReport) -> None:
        """Hand the report to every recorder; a broken exporter must not stop the loop."""
        for r in self.recorders:
            try:
                r.record(report)
            except Exception:
                log.exception("recorder %s failed", type(r).__name__)

    # ---------------------------------------------------------------------------------------
    def _guard(self, errors: list[str], phase: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except Exception as e:  # the tick never raises: report and hold
            log.exception("phase %s failed", phase)
            errors.append(f"{phase}: {type(e).__name__}: {e}")
            return None


__all__ = [
    "PHASES",
    "Controller",
    "LoopConfig",
    "Recorder",
    "TickReport",
    "WorkloadStatus",
]
