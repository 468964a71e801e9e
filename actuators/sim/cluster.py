"""The simulated GPU cluster: the ``Cluster`` port, a clock, and the world behind them.

Why it exists: ``sloscale demo`` and ``sloscale bench`` run the real control loop against a
world that behaves like Kubernetes with sliced GPUs (ARCHITECTURE §5), deterministically and
much faster than real time. What it models, Kubernetes-like:

- cards sliced in 10 % units with memory; pods are placed best-fit (``placement``); a pod
  that does not fit stays Pending and is retried at every event, so fragmentation is real;
- a Deployment's ``spec.replicas`` and pod template; a new pod serves after its model's cold
  start; scaling down removes unplaced, then not-ready, then the newest pods; a pod whose GPU
  memory is below what its model needs never becomes ready (it is OOMKilled loading the
  model and crash-loops, as on a real cluster), and the snapshot says so of the current
  template's pods as Kubernetes would (``rollout_failure``: OOMKilled, or Pending with no
  fit since its creation);
- a slice change rolls the Deployment: maxSurge 1 when the pool can hold the extra pod at
  the rollout's start (falling back to maxUnavailable 1 if the surge pod cannot be placed),
  otherwise maxUnavailable 1; an old pod goes once its replacement is ready;
- Jobs are gangs: all pods placed or none; they make progress in card-seconds after a cold
  start, checkpoint every ``checkpoint_interval_s`` of productive runtime, and lose the work
  since the last checkpoint when suspended (preempted);
- requests: each Deployment's arrivals are served by its ready replicas (``queueing``), and
  only cumulative exporter counters are kept for the metrics path (``exporter``), scraped
  every ``scrape_interval_s`` into a small TSDB that ``SimMetricsSource`` queries.

Time advances only through ``advance(dt_s)``; inside, the interval is cut at every event
(a pod becoming ready, a job finishing or being submitted, a minute or scrape boundary) so
that each segment has a fixed set of ready replicas. Terminating pods are removed at once
(their queued requests still complete: a graceful drain).

Ground truth for the benchmark (``report()``) is kept apart and never reaches the ports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from actuators.sim.batching import BatchReplica
from actuators.sim.exporter import LATENCY_BUCKETS_S, Scrape, ScrapeHistory, WorkloadSeries
from actuators.sim.model import FloatArray
from actuators.sim.placement import best_fit, place_gang
from actuators.sim.queueing import Arrivals, SegmentResult, serve_batched, serve_fifo
from actuators.sim.report import (
    AppliedAction,
    JobReport,
    MinuteRow,
    PoolReport,
    SimReport,
    WorkloadReport,
)
from actuators.sim.runtime import EPS_S, DeploymentRun, JobRun, Pod
from actuators.sim.world import SimJobTemplate, SimWorld
from controller.domain import (
    SHARE_UNIT_PCT,
    ApplyResult,
    Card,
    ClusterSnapshot,
    DeploymentState,
    Inventory,
    JobAction,
    JobState,
    JobTemplate,
    Plan,
    RetrainAction,
    RolloutFailure,
    RolloutFailureReason,
    ScaleAction,
    SliceAllocation,
    WorkloadRef,
)
from controller.spec import ANNOTATION_PREFIX

MINUTE_S = 60.0


class SimulatedCluster:
    """A deterministic, simulated GPU cluster implementing ``Cluster`` and ``Clock``."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self._now = world.start_s
        self._timeout_s = world.client_timeout_s
        self._cards = tuple(
            Card(node=n.name, index=i, memory_mib=n.memory_mib_per_card)
            for n in world.nodes
            for i in range(n.cards)
        )
        self._free_pct = [c.capacity_pct for c in self._cards]
        self._free_mib = [c.memory_mib for c in self._cards]
        self._max_card_mib = max((c.memory_mib for c in self._cards), default=0)
        self._deployments = {d.ref.key: DeploymentRun(d, world.seed) for d in world.deployments}
        self._jobs = {j.ref.key: JobRun(j) for j in world.jobs}
        self._seq = 0  # creation order across all pods (the scheduler's queue order)
        self._pool_inference_s = 0.0
        self._pool_jobs_s = 0.0
        self.metrics_history = ScrapeHistory(world.metrics_retention_s)
        for d in self._deployments.values():
            d.minute_start_s = self._now
            for _ in range(d.replicas):
                self._add_pod(d)
        self._converge(self._now)
        if world.warm_start:
            for d in self._deployments.values():
                for p in d.pods:
                    if p.placed and not p.never_ready:
                        p.ready_at_s = self._now
        self._on_time(self._now)
        self.metrics_history.append(self.scrape())

    # ---- Clock -------------------------------------------------------------------------------

    def now(self) -> float:
        return self._now

    # ---- Cluster port ------------------------------------------------------------------------

    def snapshot(self) -> ClusterSnapshot:
        t = self._now
        deployments = tuple(
            DeploymentState(
                ref=d.spec.ref,
                annotations=dict(d.spec.annotations),
                replicas=d.replicas,
                ready_replicas=len(d.ready_pods(t)),
                slice_pct=d.slice_pct,
                memory_mib=d.memory_mib,
                rollout_in_progress=any(p.template != d.template for p in d.pods),
                retrain_watermark=d.retrain_watermark,
                rollout_failure=rollout_failure(d, t),
            )
            for d in self._deployments.values()
            if d.spec.annotations.get(ANNOTATION_PREFIX + "enabled") == "true"
        )
        jobs = tuple(
            JobState(
                ref=j.spec.ref,
                annotations=dict(j.spec.annotations),
                pods=j.spec.pods,
                share_pct_per_pod=j.spec.share_pct_per_pod,
                memory_mib_per_pod=j.spec.memory_mib_per_pod,
                phase=j.phase,
                started_at_s=j.last_started_s,
                labels=dict(j.spec.labels),
            )
            for j in self._jobs.values()
            if j.submitted
        )
        allocations = [
            SliceAllocation(
                owner=owner,
                pod=p.name,
                card_id=self._cards[p.card].card_id,
                share_pct=p.share_pct,
                memory_mib=p.memory_mib,
                ready=p.ready(t),
            )
            for owner, pods in self._all_pods()
            for p in pods
            if p.card is not None
        ]
        return ClusterSnapshot(
            time_s=t,
            deployments=deployments,
            jobs=jobs,
            inventory=Inventory(cards=self._cards, allocations=tuple(allocations)),
            templates={
                t.reference: JobTemplate(t.pods, t.share_pct_per_pod, t.memory_mib_per_pod)
                for t in self.world.templates
            },
        )

    def apply(self, plan: Plan, *, dry_run: bool = False) -> list[ApplyResult]:
        """Carry out ``plan``; invalid or unknown targets fail alone, the rest still apply.

        Idempotent: an action that asks for the current state changes nothing and is not
        recorded. With ``dry_run`` nothing changes; results say what would have happened.
        """
        results = [self._apply_scale(a, dry_run) for a in plan.scale]
        results += [self._apply_job(a, dry_run) for a in plan.jobs]
        results += [self._apply_retrain(a, dry_run) for a in plan.retrain]
        if not dry_run:
            self._converge(self._now)
        return results

    # ---- Simulation --------------------------------------------------------------------------

    def advance(self, dt_s: float) -> None:
        """Move simulated time forward by ``dt_s`` seconds, serving every request on the way."""
        if dt_s < 0:
            raise ValueError(f"time cannot go backwards (dt_s={dt_s})")
        end = self._now + dt_s
        while self._now < end - EPS_S:
            t1 = min(end, self._next_event_s(self._now))
            self._run_segment(self._now, t1)
            self._now = t1
            self._on_time(t1)
        self._now = max(self._now, end)

    def scrape(self) -> Scrape:
        """Every workload's exported counters and gauges now (what ``/metrics`` shows)."""
        t = self._now
        for d in self._deployments.values():
            d.exporter.gpu_memory_mib_by_pod = {
                p.name: float(d.model.memory_mib) for p in d.ready_pods(t)
            }
        series = {k: d.exporter.sample() for k, d in self._deployments.items()}
        for k, j in self._jobs.items():
            if j.submitted:
                series[k] = job_series(j)
        return Scrape(time_s=t, series=series)

    def report(self) -> SimReport:
        """Exact totals and per-minute timelines (ground truth; not visible to the controller)."""
        hours = 1.0 / 3600.0
        workloads = tuple(
            WorkloadReport(
                key=d.key,
                latency_target_ms=d.target_ms,
                latency_quantile=d.quantile,
                requests=d.requests,
                good_requests=d.good,
                failed_requests=d.failed,
                timed_out_requests=d.timed_out,
                allocated_gpu_h=d.allocated_share_s * hours,
                used_gpu_h=d.used_share_s * hours,
                scale_actions=sum(a.is_scale for a in d.actions),
                resize_actions=sum(a.is_resize for a in d.actions),
                actions=tuple(d.actions),
                timeline=tuple(d.timeline),
            )
            for d in self._deployments.values()
        )
        jobs = tuple(
            JobReport(
                key=j.key,
                phase=str(j.phase) if j.submitted else "NotSubmitted",
                work_gpu_h=j.spec.work_gpu_s * hours,
                delivered_gpu_h=j.progress_s * hours,
                lost_gpu_h=j.lost_s * hours,
                allocated_gpu_h=j.allocated_s * hours,
                preemptions=j.preemptions,
                resumes=j.resumes,
                finished_s=j.finished_s,
            )
            for j in self._jobs.values()
        )
        total = sum(c.capacity_pct for c in self._cards) / 100.0 * (self._now - self.world.start_s)
        pool = PoolReport(
            total_gpu_h=total * hours,
            inference_allocated_gpu_h=self._pool_inference_s * hours,
            job_allocated_gpu_h=self._pool_jobs_s * hours,
        )
        return SimReport(
            start_s=self.world.start_s,
            end_s=self._now,
            seed=self.world.seed,
            workloads=workloads,
            jobs=jobs,
            pool=pool,
        )

    # ---- apply -------------------------------------------------------------------------------

    def _apply_scale(self, action: ScaleAction, dry_run: bool) -> ApplyResult:
        key = action.ref.key
        d = self._deployments.get(key)
        if d is None:
            what = "a Job, not a Deployment" if key in self._jobs else "unknown Deployment"
            return ApplyResult(key, False, f"cannot scale {key}: {what}")
        replicas, slice_pct, memory = (
            action.target.replicas,
            action.target.slice_pct,
            action.memory_mib,
        )
        if replicas < 0:
            return ApplyResult(key, False, f"replicas must be >= 0, got {replicas}")
        if not (SHARE_UNIT_PCT <= slice_pct <= 100 and slice_pct % SHARE_UNIT_PCT == 0):
            return ApplyResult(
                key, False, f"slice must be a multiple of {SHARE_UNIT_PCT} % in 10..100"
            )
        if not 0 < memory <= self._max_card_mib:
            return ApplyResult(
                key, False, f"memory {memory} MiB does not fit a card ({self._max_card_mib} MiB)"
            )
        before = (d.replicas, d.slice_pct, d.memory_mib)
        after = (replicas, slice_pct, memory)
        if before == after:
            return ApplyResult(key, True, "no change")
        change = (
            f"replicas {d.replicas}->{replicas}, slice {d.slice_pct}->{slice_pct} %, "
            f"memory {d.memory_mib}->{memory} MiB"
        )
        if dry_run:
            return ApplyResult(key, True, f"dry-run: would set {change}")
        d.actions.append(
            AppliedAction(
                time_s=self._now,
                replicas_before=d.replicas,
                replicas_after=replicas,
                slice_before_pct=d.slice_pct,
                slice_after_pct=slice_pct,
                memory_before_mib=d.memory_mib,
                memory_after_mib=memory,
                reason=str(action.reason),
            )
        )
        marked = set(action.remove_pods)
        for pod in d.pods:
            if pod.name in marked:
                pod.deletion_cost = -1
        if (slice_pct, memory) != d.template:
            d.surge = None  # a new rollout: its mode is chosen at the next reconcile
        d.replicas, d.slice_pct, d.memory_mib = after
        return ApplyResult(key, True, f"set {change}")

    def _apply_job(self, action: JobAction, dry_run: bool) -> ApplyResult:
        key = action.ref.key
        j = self._jobs.get(key)
        if j is None or not j.submitted:
            what = "a Deployment, not a Job" if key in self._deployments else "unknown Job"
            return ApplyResult(key, False, f"cannot {_verb(action)} {key}: {what}")
        if j.done:
            return ApplyResult(key, True, "job already finished; nothing to do")
        if action.suspend == j.suspended:
            return ApplyResult(key, True, "no change")
        if dry_run:
            return ApplyResult(key, True, f"dry-run: would {_verb(action)}")
        if action.suspend:
            self._preempt(j)
            return ApplyResult(key, True, "suspended")
        j.suspended = False
        if j.attempt > 0:  # a queued job's first start is its admission, not a resume
            j.resumes += 1
        j.create_pods(self._next_seq(j.spec.pods))
        return ApplyResult(key, True, "resumed")

    def _apply_retrain(self, action: RetrainAction, dry_run: bool) -> ApplyResult:
        """Write the watermark annotation, then create the Job from its template (idempotent)."""
        target = action.target
        d = self._deployments.get(action.ref.key)
        if d is None:
            return ApplyResult(target, False, f"unknown Deployment {action.ref.key}")
        template: SimJobTemplate | None = None
        if action.job_name is not None:
            wanted = f"{action.ref.namespace}/{action.template}"
            template = next((t for t in self.world.templates if t.reference == wanted), None)
            if template is None:
                return ApplyResult(target, False, f"job template {action.template} not found")
        if dry_run:
            return ApplyResult(target, True, f"dry-run: would record {action.message}")
        d.retrain_watermark = action.watermark
        if action.job_name is None or template is None:
            return ApplyResult(target, True, "watermark recorded")
        ref = WorkloadRef(action.ref.namespace, action.job_name, kind="Job")
        if ref.key in self._jobs:
            return ApplyResult(target, True, f"job {action.job_name} already exists")
        labels = {ANNOTATION_PREFIX + "retrain-of": action.ref.name}
        j = JobRun(template.job(ref, labels, self._now))
        self._jobs[ref.key] = j
        j.submitted = True
        j.create_pods(self._next_seq(j.spec.pods))
        return ApplyResult(target, True, f"job {action.job_name} created from {action.template}")

    def _preempt(self, j: JobRun) -> None:
        if j.placed_s is not None:
            j.preemptions += 1
        j.lost_s += j.progress_s - j.checkpoint_s
        j.progress_s = j.checkpoint_s
        for p in j.pods:
            self._release(p)
        j.pods = []
        j.placed_s = None
        j.suspended = True

    # ---- Kubernetes-like controllers ---------------------------------------------------------

    def _next_seq(self, n: int = 1) -> int:
        first = self._seq + 1
        self._seq += n
        return first

    def _add_pod(self, d: DeploymentRun) -> None:
        pod = d.new_pod(self._now)
        pod.seq = self._next_seq()
        d.pods.append(pod)

    def _release(self, pod: Pod) -> None:
        if pod.card is not None:
            self._free_pct[pod.card] += pod.share_pct
            self._free_mib[pod.card] += pod.memory_mib
            pod.card = None

    def _remove(self, d: DeploymentRun, pods: Sequence[Pod]) -> bool:
        for p in pods:
            self._release(p)
            d.pods.remove(p)
        return bool(pods)

    def _fits(self, template: tuple[int, int]) -> bool:
        return best_fit(self._free_pct, self._free_mib, *template) is not None

    def _reconcile(self, d: DeploymentRun, t: float) -> bool:
        """One pass of the Deployment controller (ReplicaSets folded in); True if it acted."""
        want = d.replicas
        new = [p for p in d.pods if p.template == d.template]
        old = [p for p in d.pods if p.template != d.template]
        changed = False
        if len(new) > want:
            changed |= self._remove(
                d, sorted(new, key=lambda p: p.removal_rank(t))[: len(new) - want]
            )
            new = [p for p in d.pods if p.template == d.template]
        if not old:
            d.surge = None
            for _ in range(want - len(new)):
                self._add_pod(d)
                changed = True
            return changed
        if d.surge is None:
            d.surge = self._fits(d.template)
        elif d.surge and any(not p.placed for p in new):
            d.surge = False  # the surge pod cannot be placed: fall back to maxUnavailable 1
        max_surge = 1 if d.surge else 0
        max_unavailable = 1 - max_surge
        for _ in range(min(want + max_surge - len(new) - len(old), want - len(new))):
            self._add_pod(d)
            new = [p for p in d.pods if p.template == d.template]
            changed = True
        new_ready = sum(p.ready(t) for p in new)
        min_available = want - max_unavailable
        max_down = len(new) + len(old) - min_available - (len(new) - new_ready)
        if max_down <= 0:
            return changed
        unhealthy = sorted((p for p in old if not p.ready(t)), key=lambda p: p.removal_rank(t))
        changed |= self._remove(d, unhealthy[:max_down])
        max_down -= min(max_down, len(unhealthy))
        healthy = sorted((p for p in old if p.ready(t)), key=lambda p: p.removal_rank(t))
        down = min(max_down, new_ready + len(healthy) - min_available)
        if down > 0:
            changed |= self._remove(d, healthy[:down])
        return changed

    def _schedule(self, t: float) -> bool:
        """Place pending pods best-fit, highest priority and oldest first; True if any."""
        queue: list[tuple[int, int, DeploymentRun | JobRun]] = []
        for d in self._deployments.values():
            queue.extend((-d.priority, p.seq, d) for p in d.pods if not p.placed)
        for j in self._jobs.values():
            if j.pods and j.placed_s is None:
                queue.append((-j.priority, j.pods[0].seq, j))
        placed_any = False
        for _, seq, owner in sorted(queue, key=lambda q: (q[0], q[1])):
            if isinstance(owner, JobRun):
                cards = place_gang(self._free_pct, self._free_mib, [p.template for p in owner.pods])
                if cards is None:
                    continue
                for job_pod, job_card in zip(owner.pods, cards, strict=True):
                    job_pod.card = job_card
                    job_pod.ready_at_s = t + job_pod.cold_start_s
                owner.placed_s = owner.last_started_s = t
                placed_any = True
                continue
            pod = next(p for p in owner.pods if p.seq == seq)
            card = best_fit(self._free_pct, self._free_mib, pod.share_pct, pod.memory_mib)
            if card is None:
                continue
            pod.card = card
            self._free_pct[card] -= pod.share_pct
            self._free_mib[card] -= pod.memory_mib
            pod.ready_at_s = math.inf if pod.never_ready else t + pod.cold_start_s
            placed_any = True
        return placed_any

    def _converge(self, t: float) -> None:
        """Run the controllers and the scheduler until nothing changes (a few passes)."""
        for _ in range(8):
            changed = False
            for d in self._deployments.values():
                changed |= self._reconcile(d, t)
            changed |= self._schedule(t)
            if not changed:
                return

    def _all_pods(self) -> list[tuple[str, list[Pod]]]:
        return [(d.key, d.pods) for d in self._deployments.values()] + [
            (j.key, j.pods) for j in self._jobs.values()
        ]

    # ---- time --------------------------------------------------------------------------------

    def _next_event_s(self, t: float) -> float:
        candidates = [
            _next_multiple(t, MINUTE_S),
            _next_multiple(t, self.world.scrape_interval_s),
        ]
        for _, pods in self._all_pods():
            candidates.extend(
                p.ready_at_s for p in pods if p.placed and t + EPS_S < p.ready_at_s < math.inf
            )
        for j in self._jobs.values():
            if not j.submitted:
                candidates.append(max(j.spec.submit_s, t + EPS_S))
            else:
                finish = j.finish_time_s(t)
                if finish is not None:
                    candidates.append(max(finish, t + EPS_S))
        return min(candidates)

    def _on_time(self, t: float) -> None:
        """Handle whatever happens at ``t``: submissions, completions, rollouts, scheduling,
        minute and scrape boundaries."""
        for j in self._jobs.values():
            if not j.submitted and j.spec.submit_s <= t + EPS_S:
                j.submitted = True
                if j.spec.queued:
                    j.suspended = True
                else:
                    j.create_pods(self._next_seq(j.spec.pods))
            elif j.placed_s is not None and not j.done and j.progress_s >= _done_at(j):
                j.progress_s = j.checkpoint_s = j.spec.work_gpu_s
                j.finished_s = t
                for p in j.pods:
                    self._release(p)
                j.pods = []
                j.placed_s = None
        self._converge(t)
        if _on_multiple(t, MINUTE_S):
            for d in self._deployments.values():
                self._close_minute(d, t)
        if _on_multiple(t, self.world.scrape_interval_s) and t > self.world.start_s:
            self.metrics_history.append(self.scrape())

    def _run_segment(self, a: float, b: float) -> None:
        """Serve requests and make job progress over ``[a, b)``, where nothing changes."""
        span = b - a
        for d in self._deployments.values():
            self._serve(d, a, b)
        for j in self._jobs.values():
            if j.placed_s is None:
                continue
            self._pool_jobs_s += j.rate * span
            j.allocated_s += j.rate * span
            since = j.productive_since_s()
            assert since is not None
            ta = max(a, since)
            if ta >= b:
                continue
            before = j.progress_s
            j.progress_s = min(j.spec.work_gpu_s, before + j.rate * (b - ta))
            interval = j.spec.checkpoint_interval_s
            if interval:
                n = math.floor((b - since) / interval + EPS_S)
                at = since + n * interval
                if n >= 1 and at >= ta - EPS_S:
                    j.checkpoint_s = min(j.spec.work_gpu_s, before + j.rate * max(0.0, at - ta))

    def _serve(self, d: DeploymentRun, a: float, b: float) -> None:
        if d.model.tokens is not None and d.model.tokens.batching is not None:
            self._serve_batched(d, a, b)
            return
        span = b - a
        ready = d.ready_pods(a)
        model = d.model
        arrivals = d.stream.between(a, b)
        service = np.array([model.mean_service_s(p.share_pct) for p in ready])
        residual = np.array([p.residual_s for p in ready])
        result = serve_fifo(
            a, b, arrivals, service_s=service, residual_s=residual, timeout_s=self._timeout_s
        )
        for p, r in zip(ready, result.residual_s.tolist(), strict=True):
            p.residual_s = r
        used = float(np.dot(result.busy_s, [model.effective_share(p.share_pct) for p in ready]))
        ready_share = sum(p.share_pct for p in ready) / 100.0
        placed_share = sum(p.share_pct for p in d.pods if p.placed) / 100.0
        served = result.served
        # exporters
        ex = d.exporter
        ex.observe_latencies(result.latency_s)
        judged = result.latency_s  # what the SLO covers: e2e unless an LLM's annotation says
        if model.tokens is not None and d.latency_metric != "e2e":
            judged = token_latencies(result, arrivals, d.latency_metric)
            ex.observe_signal(judged)
        ex.gpu_used_share_s += used
        ex.gpu_allocated_share_s += ready_share * span
        ex.gpu_busy_s += float(result.busy_s.sum())
        ex.ready_pod_s += len(ready) * span
        ex.data_samples_total += served * model.samples_per_request
        # ground truth
        n = len(arrivals)
        d.requests += n
        if n:
            d.good += int(np.count_nonzero(judged <= d.target_s))
            d.minute_latencies.append(judged)
        d.failed += result.failed
        d.timed_out += result.timed_out
        d.allocated_share_s += placed_share * span
        d.used_share_s += used
        d.minute_ready_s += len(ready) * span
        d.minute_alloc_pct_s += placed_share * 100.0 * span
        self._pool_inference_s += placed_share * span

    def _serve_batched(self, d: DeploymentRun, a: float, b: float) -> None:
        """``_serve`` for an LLM that batches continuously: requests are judged and counted
        when they leave their replica (completed or timed out), as the engine's histograms
        count them, not when they arrive."""
        span = b - a
        ready = d.ready_pods(a)
        model = d.model
        replicas = [self._batch_replica(d, p, a) for p in ready]
        names = {p.name for p in ready}
        draining = [r for name, r in d.batches.items() if name not in names]
        arrivals = d.stream.between(a, b)
        tokens = model.tokens
        assert tokens is not None and arrivals.prefill_share is not None
        prompt = tokens.prompt_tokens_of(arrivals.work, arrivals.prefill_share)
        result = serve_batched(b, arrivals, prompt, replicas, draining, first_id=d.arrived)
        d.arrived += len(arrivals)
        for name in [n for n, r in d.batches.items() if n not in names and not r.in_flight]:
            del d.batches[name]
        used = float(np.dot(result.busy_s, [model.effective_share(p.share_pct) for p in ready]))
        ready_share = sum(p.share_pct for p in ready) / 100.0
        placed_share = sum(p.share_pct for p in d.pods if p.placed) / 100.0
        ex = d.exporter
        ex.observe_latencies(result.e2e_s)
        judged = result.signal(d.latency_metric)
        if d.latency_metric != "e2e":
            ex.observe_signal(judged)
        ex.gpu_used_share_s += used
        ex.gpu_allocated_share_s += ready_share * span
        ex.gpu_busy_s += float(result.busy_s.sum())
        ex.ready_pod_s += len(ready) * span
        ex.data_samples_total += result.served * model.samples_per_request
        n = len(judged)
        d.requests += n
        if n:
            d.good += int(np.count_nonzero(judged <= d.target_s))
            d.minute_latencies.append(judged)
        d.failed += result.failed
        d.timed_out += result.timed_out
        d.allocated_share_s += placed_share * span
        d.used_share_s += used
        d.minute_ready_s += len(ready) * span
        d.minute_alloc_pct_s += placed_share * 100.0 * span
        self._pool_inference_s += placed_share * span

    def _batch_replica(self, d: DeploymentRun, pod: Pod, t: float) -> BatchReplica:
        """The pod's batching replica, started when the pod first serves."""
        replica = d.batches.get(pod.name)
        if replica is None:
            tokens = d.model.tokens
            assert tokens is not None and tokens.batching is not None
            step_s, prefill_s = tokens.card_times(d.model.t0_s)
            limits = tokens.batching.limits(
                share=min(pod.share_pct, d.model.s_sat_pct) / d.model.s_sat_pct,
                step_s=step_s,
                prefill_s_per_token=prefill_s,
            )
            replica = BatchReplica(limits, timeout_s=self._timeout_s, now_s=t)
            d.batches[pod.name] = replica
        return replica

    def _close_minute(self, d: DeploymentRun, t: float) -> None:
        start = d.minute_start_s
        span = t - start
        if span <= EPS_S:
            return
        lat = np.concatenate(d.minute_latencies) if d.minute_latencies else np.empty(0)
        n = len(lat)
        quantile_ms: float | None = None
        if n:
            k = min(n - 1, max(0, math.ceil(d.quantile * n) - 1))
            quantile_ms = float(np.partition(lat, k)[k]) * 1000.0
        d.timeline.append(
            MinuteRow(
                start_s=start,
                arrival_rate_rps=d.stream.expected(start, t) / span,
                requests=n,
                good=int(np.count_nonzero(lat <= d.target_s)),
                latency_ms=quantile_ms,
                ready_replicas=d.minute_ready_s / span,
                slice_pct=d.slice_pct,
                allocated_share_pct=d.minute_alloc_pct_s / span,
            )
        )
        d.minute_start_s = t
        d.minute_latencies = []
        d.minute_ready_s = 0.0
        d.minute_alloc_pct_s = 0.0


def token_latencies(result: SegmentResult, arrivals: Arrivals, metric: str) -> FloatArray:
    """Each request's time to first token (``ttft``: the wait plus the prefill) or time per
    output token (``tpot``: the decode over the output's length), in ``result``'s order;
    ``inf`` for a request that failed. Purely computational."""
    share, out = arrivals.prefill_share, arrivals.output_tokens
    if result.order is None or result.wait_s is None or share is None or out is None:
        return np.full(len(result.latency_s), np.inf)
    prefill = share[result.order]
    with np.errstate(invalid="ignore"):  # inf - inf: a dropped request, replaced below
        service = result.latency_s - result.wait_s
        if metric == "ttft":
            value = result.wait_s + prefill * service
        else:
            value = (1.0 - prefill) * service / out[result.order]
    return np.where(np.isfinite(result.latency_s), value, np.inf)


def rollout_failure(d: DeploymentRun, t: float) -> RolloutFailure | None:
    """What Kubernetes says of the current template's pods that do not become ready: a
    container OOMKilled (its memory below the model's), or a pod Pending with no fit."""
    new = [p for p in d.pods if p.template == d.template and not p.ready(t)]
    crashed = next((p for p in new if p.placed and p.never_ready), None)
    if crashed is not None:
        detail = f"pod {crashed.name}: container OOMKilled at {crashed.memory_mib} MiB"
        return RolloutFailure(RolloutFailureReason.OOM_KILLED, None, detail)
    pending = [p for p in new if not p.placed]
    if not pending:
        return None
    oldest = min(pending, key=lambda p: p.created_s)
    detail = f"pod {oldest.name}: no card fits {oldest.share_pct} %"
    return RolloutFailure(RolloutFailureReason.UNSCHEDULABLE, oldest.created_s, detail)


def job_series(j: JobRun) -> WorkloadSeries:
    """A Job's exported GPU counters (what dcgm-exporter shows for its pods): no requests, SM
    activity ``gpu_util`` of the share it held."""
    return WorkloadSeries(
        namespace=j.spec.ref.namespace,
        name=j.spec.ref.name,
        requests_total=0.0,
        failed_total=0.0,
        latency_buckets=(0.0,) * (len(LATENCY_BUCKETS_S) + 1),
        latency_sum_s=0.0,
        gpu_used_share_s=j.allocated_s * j.spec.gpu_util,
        gpu_allocated_share_s=j.allocated_s,
        gpu_busy_s=0.0,
        ready_pod_s=0.0,
        gpu_memory_mib_by_pod={},
        data_samples_total=0.0,
    )


def _next_multiple(t: float, step: float) -> float:
    return (math.floor(t / step + 1e-9) + 1) * step


def _on_multiple(t: float, step: float) -> bool:
    return abs(t / step - round(t / step)) < 1e-9


def _done_at(j: JobRun) -> float:
    return j.spec.work_gpu_s * (1.0 - 1e-12) - 1e-9


def _verb(action: JobAction) -> str:
    return "suspend" if action.suspend else "resume"
