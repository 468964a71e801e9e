"""The control loop: one ``tick()`` that reads like its table of contents,
discover → observe → forecast → plan → retrain → act → record.

Each phase is timed once and hands what it found to the next as a value (``_Discovered``,
``_Observed``, ``_Planned``, ``_Acted``); only what the pure parts need across ticks (learnt
capacity, planner memory, error budget, forecasts, job histories) is kept, in one typed record
per workload and per job (``controller.state``). Every decision has a reason, and no exception
escapes a tick: a failed read holds the current state (fail static) with reason
``MetricsUnavailable``. Workloads are isolated: an exception while observing or planning one
holds that one alone, with a decision saying why, and the others are planned on the same tick.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypeVar

from controller.capacity import update_capacity
from controller.conflicts import conflict_holds, conflict_notices, conflicts_by_workload
from controller.domain import (
    Allocation,
    ApplyResult,
    ClusterSnapshot,
    Condition,
    ConditionType,
    Decision,
    DeploymentState,
    JobAction,
    JobPhase,
    JobSpec,
    JobState,
    Mode,
    Observation,
    OtherAutoscaler,
    Plan,
    Reason,
    RetrainAction,
    SliceDialect,
    SloSpec,
    WorkloadMetrics,
    WorkloadRef,
    available,
)
from controller.forecast import (
    NO_MODEL,
    ForecastBank,
    ForecastPhaseStats,
    ForecastSettings,
)
from controller.keeper import MemoryKeeper, StateSnapshotStore
from controller.placement.preemption import applied_losses, work_at_risk_gpu_h
from controller.plan import PlannerConfig, PlanResult, hold, hold_all, plan
from controller.policy.inputs import (
    JobInput,
    PlannerMemory,
    WorkloadInput,
    metrics_warnings,
    spec_warnings,
)
from controller.policy.reclaim import idle_since
from controller.ports import Clock, Cluster, MetricsSource, ObserveTarget, RateHistorySource
from controller.report import (
    JobStatus,
    Recorder,
    TickReport,
    WorkloadStatus,
    job_statuses,
    mark_applied,
    workload_statuses,
)
from controller.retrain import (
    RETRAIN_REASONS,
    Model,
    RetrainBook,
    RetrainConfig,
    forecast_growth,
)
from controller.slo import ErrorBudget, SliSample, sli_sample
from controller.spec import parse_job_spec, parse_slo_spec
from controller.state import ParsedJob, ParsedSlo, StateStore
from forecasting.base import History

log = logging.getLogger("sloscale.loop")
T = TypeVar("T")
P = ParamSpec("P")

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
    critical_namespaces: frozenset[str] | None = frozenset()
    """The namespaces whose workloads may have a priority above ``high`` (``critical``);
    elsewhere it is capped to ``high`` with a warning. ``None``: every namespace may (the
    simulator's tools); by default none may (``sloscale run --critical-namespaces``)."""


# --- what one phase hands the next (values of one tick; nothing here outlives it) -------------
@dataclass(frozen=True, slots=True)
class _Discovered:
    """The snapshot and the annotations of its objects that parse."""

    snapshot: ClusterSnapshot
    specs: Mapping[str, tuple[DeploymentState, SloSpec]]  # Deployments with a valid SLO
    jobs: tuple[tuple[JobState, JobSpec], ...]  # Jobs with valid annotations, snapshot order
    conflicts: Mapping[str, tuple[DeploymentState, tuple[OtherAutoscaler, ...]]] = field(
        default_factory=dict
    )  # valid ``auto`` Deployments another autoscaler scales: held, not in ``specs``


@dataclass(frozen=True, slots=True)
class _Observed:
    """This tick's metrics, its SLI samples, and the idle trackers of the Jobs it measured."""

    observation: Observation
    sli: Mapping[str, SliSample]  # per workload with a rate and a good ratio this tick
    job_idle_since: Mapping[str, float]  # measured this tick and idle: since when
    failed: Mapping[str, str] = field(default_factory=dict)  # workloads held: the error


@dataclass(frozen=True, slots=True)
class _Planned:
    """What to apply and why, and the work each preemption in it would lose (GPU-hours)."""

    plan: Plan = field(default_factory=Plan)
    decisions: tuple[Decision, ...] = ()
    at_risk_gpu_h: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Acted:
    """What the cluster did with the plan, and the work lost to the preemptions it carried out."""

    results: tuple[ApplyResult, ...] = ()
    decisions: tuple[Decision, ...] = ()
    lost_gpu_h: Mapping[str, float] = field(default_factory=dict)


class _PhaseTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if name in self.seconds:
            raise RuntimeError(f"phase {name} timed twice in one tick")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start


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
        snapshots: StateSnapshotStore | None = None,
    ):
        self.cluster = cluster
        self.metrics = metrics
        self.clock = clock
        self.config = config
        self.recorders = list(recorders)
        self.history_source = history
        self.forecasts = ForecastBank(config.forecast, config.interval_s)
        self.state = StateStore()  # every workload's and job's record across ticks
        self.decision_log: deque[Decision] = deque(maxlen=config.decision_log_size)
        self.last_report: TickReport | None = None
        self.retraining = RetrainBook(config.retrain)
        self.keeper = MemoryKeeper(snapshots, self.state, self.forecasts)  # restarts
        self._shadowed = False  # the last tick ran in shadow mode (a follower, --dry-run)
        self._restate_notices = False  # the notices of holds are due again (a take-over)

    # ---------------------------------------------------------------------------------------
    def tick(self) -> TickReport:
        """One pass of the loop; never raises. Each phase is timed once and hands what it
        found to the next; a phase that fails is reported and the tick holds (fail static)."""
        now = self.clock.now()
        timer = _PhaseTimer()
        errors: list[str] = []
        acting = not self.config.dry_run
        if acting and self._shadowed:
            self._take_over()
        self._shadowed = not acting
        with timer.phase("discover"):
            seen = self._guard(errors, "discover", self._discover, errors)
            if seen is None:
                self.state.mark_blind(now)
        with timer.phase("observe"):
            observed = (
                self._guard(errors, "observe", self._observe, errors, seen, now) if seen else None
            )
        with timer.phase("forecast"):
            forecast_stats = self._forecast(errors, seen, observed, now)
        with timer.phase("plan"):
            planned = self._plan(errors, seen, observed, now)
        with timer.phase("retrain"):
            planned = self._retrain(errors, seen, observed, planned)
        with timer.phase("act"):
            acted = self._act(errors, planned)
        with timer.phase("record"):
            workloads, jobs = self._record(seen, acted, now)
        report = TickReport(
            time_s=now,
            phase_s=dict(timer.seconds),
            decisions=acted.decisions,
            results=acted.results,
            workloads=workloads,
            plan=planned.plan,
            dry_run=self.config.dry_run,
            errors=tuple(errors) + (observed.observation.errors if observed else ()),
            forecast_stats=forecast_stats,
            snapshot=seen.snapshot if seen else None,
            retraining=self.retraining.statuses,
            jobs=jobs,
            lost_gpu_h=acted.lost_gpu_h,
            sli_samples=observed.sli if observed else {},
        )
        self.last_report = report
        self._export(report)
        return report

    def _take_over(self) -> None:
        """The first tick that acts after ticks in shadow mode: a follower that now leads.

        Shadow ticks write nothing, yet the one-shot memory of what was written takes their
        writes as made: a retraining's start (a leader would then wait forever for a
        watermark and a Job nobody wrote) and a hold's Warning (never said). That memory
        goes, as in a restart, which the state on the cluster makes harmless: the
        retraining goes on from the watermark (the Job's name in it: created at most once)
        and the holds are said again. The saved memory the ``keeper`` restores on this tick.
        """
        self.retraining.forget()
        self._restate_notices = True

    # --- discover ---------------------------------------------------------------------------
    def _discover(self, errors: list[str]) -> _Discovered:
        """Read the cluster, forget what left it, parse what it annotates, and set apart
        the workloads another autoscaler scales (``controller.conflicts``)."""
        snapshot = self.cluster.snapshot()
        specs = self._parse_specs(snapshot.deployments)
        errors += snapshot.autoscaler_errors  # conflicts may be missed: said every tick
        auto = [key for key, (_, spec) in specs.items() if spec.mode is Mode.AUTO]
        found = conflicts_by_workload(snapshot.autoscalers, auto)
        conflicts = {key: (specs.pop(key)[0], others) for key, others in found.items()}
        snapshot = self._addressed(snapshot)
        self.state.forget_missing(
            (dep.ref.key for dep in snapshot.deployments), (job.ref.key for job in snapshot.jobs)
        )
        self.forecasts.forget(set(specs))
        jobs = tuple(
            (job, spec)
            for job in snapshot.jobs
            if (spec := self._job_spec(job.ref, job.annotations)) is not None
        )
        self.keeper.restore_if_due(snapshot.time_s, acting=not self.config.dry_run)
        return _Discovered(snapshot, specs, jobs, conflicts)

    def _addressed(self, snapshot: ClusterSnapshot) -> ClusterSnapshot:
        """The snapshot without the Deployments that neither opted in nor carry an error
        (an adapter may list every one with a ``sloscale.io/`` key, so typos are reported)."""
        kept = tuple(
            dep
            for dep in snapshot.deployments
            if (tr := self.state.find_workload(dep.ref.key)) is not None
            and tr.parsed is not None
            and (tr.parsed.opted_in or tr.errors)
        )
        if len(kept) == len(snapshot.deployments):
            return snapshot
        return replace(snapshot, deployments=kept)

    def _parse_specs(
        self, deployments: Sequence[DeploymentState]
    ) -> dict[str, tuple[DeploymentState, SloSpec]]:
        """Parse each Deployment's annotations (cached until they change); skip bad ones."""
        specs: dict[str, tuple[DeploymentState, SloSpec]] = {}
        for dep in deployments:
            key = dep.ref.key
            tr = self.state.workload(key)
            if tr.parsed is None or dict(dep.annotations) != dict(tr.parsed.annotations):
                result = parse_slo_spec(
                    key,
                    dep.annotations,
                    default_dialect=self.config.default_dialect,
                    cap_priority=self._caps_priority(dep.ref.namespace),
                )
                tr.parsed = ParsedSlo(
                    dict(dep.annotations),
                    result.spec,
                    result.errors,
                    result.warnings,
                    opted_in=result.opted_in,
                )
                for e in result.errors:
                    log.warning("invalid SLO spec: %s", e)
                for e in result.warnings:
                    log.warning("SLO spec taken in part: %s", e)
                if result.spec is not None:
                    tr.budget = ErrorBudget(result.spec.window_s, result.spec.objective_ratio)
            if tr.spec is not None and not tr.errors and tr.spec.mode is not Mode.OFF:
                specs[key] = (dep, tr.spec)
        return specs

    def _job_spec(self, ref: WorkloadRef, annotations: Mapping[str, str]) -> JobSpec | None:
        """A Job's parsed annotations, cached until they change; a bad one is logged once."""
        record = self.state.job(ref.key)
        if record.parsed is not None and dict(record.parsed.annotations) == dict(annotations):
            return record.parsed.spec
        parsed = parse_job_spec(
            ref.key, annotations, cap_priority=self._caps_priority(ref.namespace)
        )
        for e in parsed.errors:
            log.warning("invalid job annotations: %s", e)
        for e in parsed.warnings:
            log.warning("job annotations taken in part: %s", e)
        spec = None if parsed.errors else parsed.spec
        record.parsed = ParsedJob(dict(annotations), spec, parsed.warnings)
        return spec

    def _caps_priority(self, namespace: str) -> bool:
        """Whether priorities above ``high`` are capped in ``namespace``."""
        allowed = self.config.critical_namespaces
        return allowed is not None and namespace not in allowed

    # --- observe ----------------------------------------------------------------------------
    def _observe(self, errors: list[str], seen: _Discovered, now: float) -> _Observed:
        """Read every target at once; then learn from each workload's metrics, a workload
        whose learning raises held alone (``_Observed.failed``)."""
        targets = [ObserveTarget(dep.ref, spec) for dep, spec in seen.specs.values()]
        watched = self._idle_watched_jobs(seen.jobs)
        targets += [ObserveTarget(job.ref, JOB_OBSERVE_SPEC) for job in watched]
        obs = self.metrics.observe(targets, now)
        job_idle_since = self._track_job_idleness(watched, obs, now)
        sli: dict[str, SliSample] = {}
        failed: dict[str, str] = {}
        for key, (dep, spec) in seen.specs.items():
            try:
                sample = self._learn(key, dep, spec, obs.get(key), now)
            except Exception as e:  # one workload's failure must not hold the others
                failed[key] = _failure(errors, "observe", key, e)
                continue
            if sample is not None:
                sli[key] = sample
        return _Observed(obs, sli, job_idle_since, failed)

    def _learn(
        self, key: str, dep: DeploymentState, spec: SloSpec, m: WorkloadMetrics, now: float
    ) -> SliSample | None:
        """One workload's capacity, idleness, slice tracker and error budget from its metrics;
        the SLI sample its budget counted (``None``: none this tick)."""
        tr = self.state.workload(key)
        tr.last_metrics = m
        tr.idle_since_s = idle_since(tr.idle_since_s, m.gpu_util, now)
        current = Allocation(dep.replicas, dep.slice_pct)
        if dep.slice_pct != tr.slice_pct or dep.rollout_in_progress:
            tr.slice_pct, tr.slice_settled_s = dep.slice_pct, math.inf
        elif tr.slice_settled_s == math.inf:
            tr.slice_settled_s = now  # the rollout has just finished
        one_slice = now - tr.slice_settled_s >= m.window_s
        tr.capacity = update_capacity(
            tr.capacity,
            m,
            current,
            dep.ready_replicas,
            spec.latency_quantile,
            one_slice,
            spec.latency_metric,
        )
        # a tick counts for the configured interval: the budget's arithmetic, which decides
        sample = sli_sample(now, m.request_rate_rps, m.good_ratio, self.config.interval_s)
        if sample is None or tr.budget is None:
            return None
        tr.budget.add(sample)
        return sample

    def _idle_watched_jobs(self, jobs: Sequence[tuple[JobState, JobSpec]]) -> list[JobState]:
        """Running Jobs annotated ``reclaim-idle-after``: their GPU utilisation is read too."""
        out = [
            job
            for job, spec in jobs
            if spec.reclaim_idle_after_s is not None and job.phase is JobPhase.RUNNING
        ]
        live = {j.ref.key for j in out}
        for key, record in self.state.jobs.items():
            if key not in live:
                record.idle_since_s = None  # suspended: a resume starts afresh
        return out

    def _track_job_idleness(
        self, jobs: Sequence[JobState], obs: Observation, now: float
    ) -> dict[str, float]:
        """Update the watched Jobs' idle trackers; those this tick measured and found idle.

        A Job whose utilisation this tick did not read is not among them (no reclaim on a
        scrape gap), though its tracker keeps its start.
        """
        measured_idle: dict[str, float] = {}
        for job in jobs:
            key = job.ref.key
            util = obs.get(key).gpu_util
            record = self.state.job(key)
            record.idle_since_s = idle_since(record.idle_since_s, util, now)
            if available(util) and record.idle_since_s is not None:
                measured_idle[key] = record.idle_since_s
        return measured_idle

    # --- forecast ---------------------------------------------------------------------------
    def _forecast(
        self,
        errors: list[str],
        seen: _Discovered | None,
        observed: _Observed | None,
        now: float,
    ) -> ForecastPhaseStats:
        if seen is None or observed is None:
            return ForecastPhaseStats()
        stats = self._guard(
            errors, "forecast", self._update_forecasts, seen.specs, observed.observation, now
        )
        return stats or ForecastPhaseStats()

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
        errors: list[str],
        seen: _Discovered | None,
        observed: _Observed | None,
        now: float,
    ) -> _Planned:
        """The planner's plan, or with no plan every workload held for this tick."""
        if seen is None:
            return _Planned()
        planned = self._guard(errors, "plan", self._plan_tick, errors, seen, observed)
        if planned is not None:
            return planned
        held = hold_all(
            seen.snapshot.deployments, now, Reason.METRICS_UNAVAILABLE, "planning failed: holding"
        )
        return _Planned(decisions=held)

    def _plan_tick(
        self, errors: list[str], seen: _Discovered, observed: _Observed | None
    ) -> _Planned:
        now = seen.snapshot.time_s
        failed = dict(observed.failed) if observed is not None else {}
        held = [
            hold(seen.specs[key][0], now, Reason.METRICS_UNAVAILABLE, f"observing failed: {error}")
            for key, error in failed.items()
        ]
        workloads = []
        for key, (dep, spec) in seen.specs.items():
            if key in failed:
                continue
            try:
                workloads.append(self._workload_input(key, dep, spec, observed, now))
            except Exception as e:  # one workload's failure must not hold the others
                message = f"planning failed: {_failure(errors, 'plan', key, e)}"
                held.append(hold(dep, now, Reason.METRICS_UNAVAILABLE, message))
        jobs = self._job_inputs(seen.jobs, observed, now)
        result = self._plan_modes(workloads, jobs, seen.snapshot)
        for key, error in result.failures.items():
            log.error("planning %s failed, holding it: %s", key, error)
            errors.append(f"plan {key}: {error}")
        self._remember_memories(result.memories)
        self._record_preemptions(result.plan.jobs, now)
        self._remember_job_decisions(result.decisions)
        conflicted = conflict_holds(seen.conflicts, now)
        last = {
            key: None if self._restate_notices else self.state.workload(key).last_decision
            for key in seen.conflicts
        }
        notices = conflict_notices(conflicted, seen.conflicts, last)
        self._restate_notices = False
        return _Planned(
            replace(result.plan, notices=notices),
            result.decisions + tuple(held) + conflicted + self._unplanned_decisions(now),
            work_at_risk_gpu_h(result.plan.jobs, jobs, now),
        )

    def _workload_input(
        self,
        key: str,
        dep: DeploymentState,
        spec: SloSpec,
        observed: _Observed | None,
        now: float,
    ) -> WorkloadInput:
        tr = self.state.workload(key)
        metrics = observed.observation.get(key) if observed is not None else WorkloadMetrics()
        return WorkloadInput(
            spec=spec,
            state=dep,
            metrics=metrics,
            rate_forecast_rps=tr.forecast.mean_rps if tr.forecast else None,
            rate_upper_rps=tr.forecast.upper_rps if tr.forecast else None,
            rate_profile_rps=tr.rate_profile_rps,
            capacity=tr.capacity,
            memory=tr.memory,
            budget_remaining=tr.budget.remaining() if tr.budget else 1.0,
            recent_burn_rate=(
                tr.budget.recent_burn_rate(now, self.config.planner.headroom.pacing_lookback_s)
                if tr.budget
                else None
            ),
            resume_rate_rps=self._resume_rate(key, now),
            idle_since_s=tr.idle_since_s,
            warnings=spec_warnings(tr.warnings) + metrics_warnings(metrics),
        )

    def _resume_rate(self, key: str, now: float) -> float | None:
        """The upper band of the rate over the planner's resume horizon (not scored: the
        accuracy figures compare lead-time forecasts only)."""
        horizon_s = self.config.planner.resume.horizon_s
        forecast = self.forecasts.forecast(key, now, horizon_s)
        return forecast.upper_rps if forecast is not None else None

    def _job_inputs(
        self,
        jobs: Sequence[tuple[JobState, JobSpec]],
        observed: _Observed | None,
        now: float,
    ) -> list[JobInput]:
        """Each Job with its preemption history and, when measured idle this tick, since when
        (no reclaim without this tick's measurement)."""
        idle = observed.job_idle_since if observed is not None else {}
        inputs = []
        for job, spec in jobs:
            record = self.state.job(job.ref.key)
            inputs.append(
                JobInput(
                    job,
                    spec,
                    record.last_preempted_s,
                    record.preemptions_within(now),
                    idle.get(job.ref.key),
                    spec_warnings(record.warnings),
                )
            )
        return inputs

    def _remember_memories(self, memories: Mapping[str, PlannerMemory]) -> None:
        for key, memory in memories.items():
            self.state.workload(key).memory = memory

    def _record_preemptions(self, actions: Sequence[JobAction], now: float) -> None:
        """Each job this plan suspends gets the preemption in its history (the hysteresis)."""
        for act in actions:
            if act.suspend:
                self.state.job(act.ref.key).preempted(now)

    def _remember_job_decisions(self, decisions: Sequence[Decision]) -> None:
        """Each job's last decision that preempted, resumed or named it (``JobStatus``)."""
        for d in decisions:
            if d.reason in (Reason.PREEMPTED, Reason.RESUMED) or d.target in self.state.jobs:
                self.state.job(d.target).last_decision = d

    def _plan_modes(
        self,
        workloads: Sequence[WorkloadInput],
        jobs: Sequence[JobInput],
        snapshot: ClusterSnapshot,
    ) -> PlanResult:
        """The plan of the ``auto`` workloads, with the decisions and memories of the
        ``recommend`` ones from a second plan that sizes them as if they were managed.

        The real plan never holds a ``recommend`` workload's recommendation (no pods moved,
        no job preempted for it): its pods stay as they run, like any unplanned workload's.
        """
        cfg = self.config.planner
        shadow = {w.key for w in workloads if w.spec.mode is Mode.RECOMMEND}
        if not shadow:
            return plan(workloads, jobs, snapshot, cfg)
        acting = plan([w for w in workloads if w.key not in shadow], jobs, snapshot, cfg)
        advised = plan(workloads, jobs, snapshot, cfg)
        return replace(
            acting,
            decisions=acting.decisions
            + tuple(_recommended(d) for d in advised.decisions if d.target in shadow),
            memories={
                **acting.memories,
                **{k: m for k, m in advised.memories.items() if k in shadow},
            },
            failures={
                **acting.failures,
                **{k: e for k, e in advised.failures.items() if k in shadow},
            },
        )

    def _unplanned_decisions(self, now: float) -> tuple[Decision, ...]:
        """Why a workload was not planned: an invalid spec, or ``mode: off``."""
        out = []
        for key, tr in self.state.workloads.items():
            if tr.errors:
                message = "; ".join(str(e) for e in tr.errors)
                why = Condition(ConditionType.SPEC_VALID, False, Reason.INVALID_SPEC, message)
                out.append(Decision(now, key, Reason.INVALID_SPEC, message, conditions=(why,)))
            elif tr.spec is not None and tr.spec.mode is Mode.OFF:
                message = "sloscale.io/mode is off: not managed"
                off = Condition(ConditionType.SCALING_ACTIVE, False, Reason.NOT_MANAGED, message)
                out.append(Decision(now, key, Reason.NOT_MANAGED, message, conditions=(off,)))
        return tuple(out)

    def job_preemptions(self, key: str) -> tuple[float, ...]:
        """When sloscale preempted job ``key`` within the last day."""
        record = self.state.find_job(key)
        return record.preemptions_s if record is not None else ()

    def job_last_decision(self, key: str) -> Decision | None:
        record = self.state.find_job(key)
        return record.last_decision if record is not None else None

    # --- retrain ----------------------------------------------------------------------------
    def _retrain(
        self,
        errors: list[str],
        seen: _Discovered | None,
        observed: _Observed | None,
        planned: _Planned,
    ) -> _Planned:
        """The plan with this tick's retraining actions and decisions added."""
        if seen is None:
            return planned
        retrain = self._guard(
            errors, "retrain", self._retrain_actions, seen, observed, planned.decisions
        )
        if retrain is None:
            return planned
        actions, decisions = retrain
        return replace(
            planned,
            plan=replace(planned.plan, retrain=actions),
            decisions=planned.decisions + decisions,
        )

    def _retrain_actions(
        self,
        seen: _Discovered,
        observed: _Observed | None,
        decisions: tuple[Decision, ...],
    ) -> tuple[tuple[RetrainAction, ...], tuple[Decision, ...]]:
        """Models over their data threshold get one retraining Job, in an off-peak window:
        inference counts at its planned share scaled by its forecast (``controller.retrain``)."""
        desired = {d.target: d.desired.share_pct for d in decisions if d.desired is not None}
        inference: dict[str, float] = {}
        models = []
        for key, (dep, spec) in seen.specs.items():
            tr = self.state.workload(key)
            share = max(dep.replicas * dep.slice_pct, desired.get(key, 0))
            upper = tr.forecast.upper_rps if tr.forecast else None
            inference[key] = share * forecast_growth(upper, tr.last_metrics.request_rate_rps)
            if spec.retrain is not None and spec.mode is Mode.AUTO:
                samples = observed.observation.get(key).data_samples if observed else None
                models.append(Model(dep, spec.retrain, samples))
        return self.retraining.plan(seen.snapshot, models, inference)

    # --- act --------------------------------------------------------------------------------
    def _act(self, errors: list[str], planned: _Planned) -> _Acted:
        """Apply the plan, mark what was applied, and account the work its preemptions lost."""
        the_plan, decisions = planned.plan, planned.decisions
        results: tuple[ApplyResult, ...] = ()
        if not the_plan.is_empty():
            applied = self._guard(errors, "act", self._apply, the_plan)
            results = tuple(applied or ())
            decisions = mark_applied(decisions, results, dry_run=self.config.dry_run)
        decisions += self.retraining.applied(the_plan.retrain, results)
        lost = {} if self.config.dry_run else applied_losses(planned.at_risk_gpu_h, results)
        for key, hours in lost.items():
            self.state.job(key).lost_gpu_h += hours
        return _Acted(results, decisions, lost)

    def _apply(self, the_plan: Plan) -> Sequence[ApplyResult]:
        return self.cluster.apply(the_plan, dry_run=self.config.dry_run)

    # --- record -----------------------------------------------------------------------------
    def _record(
        self, seen: _Discovered | None, acted: _Acted, now: float
    ) -> tuple[tuple[WorkloadStatus, ...], tuple[JobStatus, ...]]:
        """Remember and log the decisions; every workload's and job's status after the tick."""
        self._log_decisions(acted.decisions)
        self.keeper.save(now, acting=not self.config.dry_run)
        snapshot = seen.snapshot if seen is not None else None
        if snapshot is None:  # discovery failed: what the last tick showed
            last = self.last_report
            return (last.workloads, last.jobs) if last else ((), ())
        return (
            workload_statuses(snapshot, self.state, self.forecasts),
            job_statuses(snapshot, self.state, now),
        )

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
                    log.info("%s", d.log_line())

    def _export(self, report: TickReport) -> None:
        """Hand the report to every recorder; a broken exporter must not stop the loop."""
        for r in self.recorders:
            try:
                r.record(report)
            except Exception:
                log.exception("recorder %s failed", type(r).__name__)

    # ---------------------------------------------------------------------------------------
    def _guard(
        self, errors: list[str], phase: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """``fn(*args, **kwargs)``, or ``None`` with the error reported: the tick never raises."""
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # the tick never raises: report and hold
            log.exception("phase %s failed", phase)
            errors.append(f"{phase}: {type(e).__name__}: {e}")
            return None


RECOMMEND_MESSAGE = "sloscale.io/mode is recommend: decided, not applied"


def _recommended(d: Decision) -> Decision:
    """A ``recommend`` workload's decision: the same, with an ``Applied`` false condition."""
    why = Condition(ConditionType.APPLIED, False, Reason.RECOMMEND_ONLY, RECOMMEND_MESSAGE)
    return replace(d, conditions=(*d.conditions, why))


def _failure(errors: list[str], phase: str, key: str, e: Exception) -> str:
    """Log and report one workload's failure in ``phase``; the error as ``Type: message``."""
    log.error("%s %s failed, holding it", phase, key, exc_info=e)
    error = f"{type(e).__name__}: {e}"
    errors.append(f"{phase} {key}: {error}")
    return error


__all__ = ["Controller", "LoopConfig"]
