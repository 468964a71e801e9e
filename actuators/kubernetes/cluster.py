"""``KubernetesCluster``: the ``Cluster`` port on a real cluster.

``snapshot()`` reads only the list+watch caches (``cache.Reflector``): Deployments (limited by
label selector), Jobs and pods of the scope (every namespace, or one cache per namespace of
``--namespaces``: ``scope.py``) and nodes; no request per tick. It raises, and the
loop holds, when a cache has not been confirmed current (a list, a watch event or bookmark, an
open watch) within ``max_staleness_s``: a watch that keeps failing never passes an old replica
count off as the current one. ``apply()`` turns a plan into the fewest writes that reach it,
each idempotent:

- replicas through the ``scale`` subresource (merge patch);
- a slice change as a server-side apply of the pod template's slice in the workload's dialect
  (``actuators.dialects``; a strategic-merge patch when it must remove another dialect's or
  MIG profile's keys), with ``maxSurge: 1`` only when the inventory can place one more
  pod of the new slice (else ``maxUnavailable: 1``); never while a rollout is unfinished,
  but to roll back a failed one (``ResizeFailed``);
- a Job suspended or resumed through ``spec.suspend`` (a gang as a whole); a bare pod
  preempted through the Eviction API, which honours PodDisruptionBudgets (429 is reported,
  and retried on a later tick);
- every change recorded as an Event on the object and, on Deployments and Jobs, in the
  ``sloscale.io/last-decision`` annotation (JSON: action, reason, time, message); a
  ``Notice`` (a hold the operator must lift: ``ConflictingAutoscaler``) as a Warning Event.

Discovery also reads the other autoscalers (HPAs, KEDA ScaledObjects, Knative classes:
``autoscalers.py``) into the snapshot, without ever holding it for them.

Every write names the field manager ``sloscale`` (``api.FIELD_MANAGER``), so
``metadata.managedFields`` say which fields sloscale owns (``_write_scale`` says why each
write is an apply or a patch, and why the apply forces).

Writes that depend on what was read carry the resourceVersion it was read at: a 409 re-reads
and retries with backoff, unless the Deployment's replicas or pod template changed since the
snapshot the plan was made on: then the old target is not re-sent over the other writer's
change (a failed "conflict" result; the next tick re-plans on fresh data), its own replicas
written just before by the same action excepted; 404 (deleted
meanwhile) is a no-op; 403 names the missing RBAC verb; 422 carries the API's message. One
action's failure never touches another's. In dry-run (shadow) mode nothing is written: the
results and ``shadow_log`` say what would have been.
Only the leader writes (``leader``: anything with ``is_leader()``), checked before each write.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

from actuators.dialects import SCHEDULERS, mig_profiles_for_card, read_slice, slice_patch
from actuators.kubernetes import objects as k8s
from actuators.kubernetes import rollouts
from actuators.kubernetes.api import (
    CRONJOBS,
    DEPLOYMENTS,
    EVENTS,
    JOBS,
    NODES,
    PODS,
    STRATEGIC_MERGE_PATCH,
    ApiError,
    KubeApi,
    Resource,
)
from actuators.kubernetes.autoscalers import AutoscalerCaches
from actuators.kubernetes.cache import Reflector
from actuators.kubernetes.scope import Scope, ScopedCache
from actuators.kubernetes.writes import (
    EVENT_MESSAGE_LIMIT,
    apply_template_patch,
    deletes_fields,
    event_message,
    fits,
    note_patch,
    resize_apply,
    rfc3339,
)
from controller.domain import (
    ApplyResult,
    ClusterSnapshot,
    Condition,
    DeploymentState,
    JobAction,
    JobPhase,
    Notice,
    Plan,
    Reason,
    RetrainAction,
    ScaleAction,
    SliceDialect,
)
from controller.spec import ANNOTATION_PREFIX

log = logging.getLogger("sloscale.kubernetes")

POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
POD_DELETION_COST_FIRST = -1000
"""Cost of the first pod a scale-in should remove; the next ones count up from it (all
below the default 0, so unmarked pods stay)."""

JsonObj = dict[str, Any]
CONFLICT, NOT_FOUND, FORBIDDEN, INVALID, TOO_MANY = 409, 404, 403, 422, 429


class LeaderGate(Protocol):
    def is_leader(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class KubernetesOptions:
    """How the adapter reads and writes; defaults suit a production controller."""

    scope: Scope = field(default_factory=Scope)  # where it reads and writes (scope.py)
    selector: str | None = None  # label selector on Deployments
    node_selector: str | None = None  # label selector on Nodes: the GPU pool
    dry_run: bool = False  # shadow mode: never write
    default_dialect: SliceDialect = SliceDialect.HAMI
    identity: str = "sloscale"  # Event reportingInstance and User-Agent suffix
    watch_timeout_s: int = 300
    sync_timeout_s: float = 30.0
    max_staleness_s: float | None = None
    """How long a discovery cache may go unconfirmed (``Reflector.staleness_s``) before
    ``snapshot()`` refuses it; ``None``: ``sync_timeout_s``."""
    conflict_retries: int = 4
    conflict_backoff_s: float = 0.05


@dataclass(frozen=True, slots=True)
class ShadowRecord:
    """What shadow mode would have done (also logged at INFO)."""

    time_s: float
    target: str
    action: str
    detail: str


@dataclass
class _Write:
    """The writes one scale action needs, computed from one read of the Deployment."""

    replicas: int | None = None
    template_patch: JsonObj = field(default_factory=dict)
    strategy: JsonObj | None = None
    dialect: SliceDialect = SliceDialect.HAMI
    changes: list[str] = field(default_factory=list)
    replicas_written: bool = False
    """The ``scale`` write went through (``_write_scale``), whatever came after it."""


class KubernetesCluster:
    """The ``Cluster`` port over the Kubernetes API (see the module docstring)."""

    def __init__(
        self,
        api: KubeApi,
        options: KubernetesOptions = KubernetesOptions(),
        *,
        leader: LeaderGate | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.options = options
        self.leader = leader
        self.clock = clock
        self.sleep = sleep
        self.shadow_log: deque[ShadowRecord] = deque(maxlen=1000)
        scope, wt = options.scope, options.watch_timeout_s
        self.deployments = ScopedCache(
            api, DEPLOYMENTS, scope, label_selector=options.selector, watch_timeout_s=wt
        )
        self.jobs = ScopedCache(api, JOBS, scope, watch_timeout_s=wt)
        self.pods = ScopedCache(api, PODS, scope, watch_timeout_s=wt)  # GPU use (scope.py)
        self.nodes = Reflector(
            api, NODES, None, label_selector=options.node_selector, watch_timeout_s=wt
        )
        caches = (self.deployments, self.jobs, self.pods)
        self._reflectors = (*(r for c in caches for r in c.parts), self.nodes)
        # other autoscalers (autoscalers.py): read, but never holding discovery
        self.autoscalers = AutoscalerCaches(api, scope, watch_timeout_s=wt)
        self._lock = threading.Lock()
        self._planned_on: dict[str, tuple[int, str]] = {}  # the last snapshot's Deployments

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> KubernetesCluster:
        for r in self._reflectors:
            r.start()
        self.autoscalers.start()
        return self

    def close(self) -> None:
        for r in self._reflectors:
            r.stop()
        self.autoscalers.stop()
        self.api.close()

    def wait_synced(self, timeout_s: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout_s or self.options.sync_timeout_s)
        return all(r.wait_synced(max(0.0, deadline - time.monotonic())) for r in self._reflectors)

    # ---- discover ----------------------------------------------------------------------------

    def snapshot(self) -> ClusterSnapshot:
        if not self.wait_synced():
            missing = [r.where for r in self._reflectors if not r.synced]
            errors = "; ".join(r.last_error or "" for r in self._reflectors if r.last_error)
            raise RuntimeError(f"discovery not synced: {', '.join(missing)} ({errors})")
        bound = self._staleness_bound()
        self._refuse_stale(bound)
        self.autoscalers.wait_tried(self.options.sync_timeout_s)
        inv = k8s.inventory(self.nodes.items(), self.pods.items())
        card_mib = k8s.max_card_memory_mib(inv)
        owned = rollouts.pods_by_owner(self.pods.items())
        deployments = tuple(
            _controller_annotations_apart(rollouts.with_failure(d, card_mib, owned))
            for d in sorted(self.deployments.items(), key=k8s.object_sort_key)
            if k8s.addressed(d)
        )
        jobs = [
            k8s.job_state(j, card_mib)
            for j in sorted(self.jobs.items(), key=k8s.object_sort_key)
            if k8s.tracked_job(j)
        ]
        with self._lock:
            self._planned_on = {
                f"{k8s.meta(d).get('namespace')}/{k8s.meta(d).get('name')}": _scale_basis(d)
                for d in self.deployments.items()
            }
        jobs += [
            k8s.bare_pod_state(p, card_mib)
            for p in sorted(self.pods.items(), key=k8s.object_sort_key)
            if k8s.bare_pod(p)
        ]
        others, unknown = self.autoscalers.found(self.deployments.items(), bound)
        return ClusterSnapshot(
            time_s=self.clock(),
            deployments=deployments,
            jobs=tuple(jobs),
            inventory=inv,
            autoscalers=others,
            autoscaler_errors=unknown,
        )

    def _staleness_bound(self) -> float:
        bound = self.options.max_staleness_s
        return self.options.sync_timeout_s if bound is None else bound

    def _refuse_stale(self, bound: float) -> None:
        """Raise rather than serve a cache that no list, watch event or open watch has
        confirmed current within the bound: the loop then holds, and says why."""
        stale = []
        for r in self._reflectors:
            age = r.staleness_s()
            if age is not None and age > bound:
                why = r.last_error or "no watch open"
                stale.append(f"{r.where} not confirmed for {age:.1f} s ({why})")
        if stale:
            raise RuntimeError(
                f"discovery stale (bound {bound:g} s), not serving the cache: {'; '.join(stale)}"
            )

    # ---- act ---------------------------------------------------------------------------------

    def apply(self, plan: Plan, *, dry_run: bool = False) -> list[ApplyResult]:
        """Carry out ``plan``; every action independently, none raising."""
        dry = dry_run or self.options.dry_run
        results = [self._guarded(a.ref.key, partial(self._scale, a, dry)) for a in plan.scale]
        results += [self._guarded(a.ref.key, partial(self._job, a, dry)) for a in plan.jobs]
        results += [self._guarded(a.target, partial(self._retrain, a, dry)) for a in plan.retrain]
        results += [self._guarded(n.target, partial(self._notice, n, dry)) for n in plan.notices]
        return results

    def _notice(self, notice: Notice, dry: bool) -> ApplyResult:
        """A Warning Event on the Deployment: a hold only the operator can lift."""
        ref = notice.ref
        if dry:
            return self._shadow(notice.target, "warn", notice.message)
        if not self._leading():
            return ApplyResult(notice.target, False, "not the leader: nothing written")
        dep = self.deployments.get(ref.namespace, ref.name) or {
            "metadata": {"name": ref.name, "namespace": ref.namespace}
        }
        reason = str(notice.reason)
        self._event(DEPLOYMENTS, "Deployment", dep, reason, notice.message, warning=True)
        return ApplyResult(notice.target, True, "warning recorded")

    def _retrain(self, action: RetrainAction, dry: bool) -> ApplyResult:
        """Patch the watermark annotation, then (with ``job_name``) create the Job from the
        CronJob template labelled ``sloscale.io/retrain-of=<deployment>``; idempotent."""
        ref, target = action.ref, action.target
        kind, _, name = (action.template or "").partition("/")
        if action.job_name is not None and kind != "cronjob":
            return ApplyResult(target, False, f"{action.template}: only cronjob/NAME templates")
        if dry:
            return self._shadow(target, "retrain", action.message)
        if not self._leading():
            return ApplyResult(target, False, "not the leader: nothing written")
        body = {"metadata": {"annotations": {WATERMARK_ANNOTATION: action.watermark}}}
        updated = self.api.patch(DEPLOYMENTS, ref.name, body, ref.namespace)
        if action.reason is not None and action.message:
            self._event(DEPLOYMENTS, "Deployment", updated, str(action.reason), action.message)
        if action.job_name is None:
            return ApplyResult(target, True, "watermark recorded")
        try:
            created = self._from_cronjob(
                ref.namespace,
                name,
                action.job_name,
                {RETRAIN_OF_LABEL: ref.name},
                {},
                str(action.reason),
                False,
            )
        except ApiError as e:
            if e.status != NOT_FOUND:
                raise
            message = f"job template {action.template} not found in {ref.namespace}"
            self._event(DEPLOYMENTS, "Deployment", updated, "RetrainBlocked", message, warning=True)
            return ApplyResult(target, False, message)
        return ApplyResult(target, created.ok, created.message)

    def create_job_from_cronjob(
        self,
        namespace: str,
        cronjob: str,
        job_name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        reason: str = "RetrainTriggered",
        dry_run: bool = False,
    ) -> ApplyResult:
        """Create Job ``job_name`` from a CronJob's ``jobTemplate`` (as ``kubectl create job
        --from=cronjob/...``). Idempotent: a Job of that name already there is success."""
        key = f"{namespace}/{job_name}"
        return self._guarded(
            key,
            lambda: self._from_cronjob(
                namespace, cronjob, job_name, labels or {}, annotations or {}, reason, dry_run
            ),
        )

    # ---- scale -------------------------------------------------------------------------------

    def _scale(self, action: ScaleAction, dry: bool) -> ApplyResult:
        ref = action.ref
        dep = self.deployments.get(ref.namespace, ref.name) or self.api.get(
            DEPLOYMENTS, ref.name, ref.namespace
        )
        with self._lock:  # what the plan saw: consumed by the write made from it
            basis = self._planned_on.get(ref.key)
        written: list[str] = []  # the replicas, when written by an attempt that then conflicted
        for attempt in range(self.options.conflict_retries + 1):
            changed = "" if basis is None else _changed_under_us(basis, dep)
            if changed:
                message = f"conflict: {changed} since it was planned; not applied, re-planned"
                return ApplyResult(ref.key, False, f"{message} on the next tick")
            write = self._plan_scale(dep, action, resuming=bool(written))
            if write is None:
                return ApplyResult(ref.key, False, self._deferred_message(dep, action))
            write.changes[:0] = written
            if not write.changes:
                return ApplyResult(ref.key, True, "no change")
            summary = ", ".join(write.changes)
            if dry:
                return self._shadow(ref.key, "scale", summary)
            if not self._leading():
                return ApplyResult(ref.key, False, "not the leader: nothing written")
            try:
                self._write_scale(dep, action, write, summary)
            except ApiError as e:
                if e.status != CONFLICT or attempt == self.options.conflict_retries:
                    raise
                if write.replicas_written and write.replicas is not None:
                    # The replicas went through and the resize's precondition failed: on a
                    # real cluster the Deployment controller answers a scale within
                    # milliseconds with a status update, which moves the resourceVersion.
                    # The retry carries on with the same action, on sloscale's own replicas
                    # (not "changed under us"), and does not wait for the rollout that the
                    # scale itself began.
                    written = [c for c in write.changes if c.startswith("replicas ")]
                    if basis is not None:
                        basis = (write.replicas, basis[1])
                self.sleep(self.options.conflict_backoff_s * 2**attempt)
                dep = self.api.get(DEPLOYMENTS, ref.name, ref.namespace)
                continue
            with self._lock:
                self._planned_on.pop(ref.key, None)
            return ApplyResult(ref.key, True, f"set {summary}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _dialect(self, dep: Mapping[str, Any]) -> SliceDialect:
        text = k8s.annotations_of(dep).get("sloscale.io/slice-dialect", "").strip().lower()
        try:
            return SliceDialect(text)
        except ValueError:
            return self.options.default_dialect

    def _plan_scale(
        self, dep: JsonObj, action: ScaleAction, *, resuming: bool = False
    ) -> _Write | None:
        """What to write; ``None`` when a resize must wait for the running rollout (unless
        ``resuming`` an action whose own scale write began it)."""
        write = _Write()
        spec = dep.get("spec") or {}
        current = int(spec.get("replicas", 1))
        if action.target.replicas != current:
            write.replicas = action.target.replicas
            write.changes.append(f"replicas {current}->{action.target.replicas}")
        template = spec.get("template") or {}
        inv = k8s.inventory(self.nodes.items(), self.pods.items())
        card_mib = k8s.max_card_memory_mib(inv)
        dialect = self._dialect(dep)
        patch = slice_patch(
            dialect,
            template,
            action.target.slice_pct,
            action.memory_mib,
            profiles=mig_profiles_for_card(card_mib),
        )
        before = read_slice(template.get("spec") or {}, k8s.annotations_of(template), card_mib)
        after_template = apply_template_patch(template, patch)
        after = read_slice(
            after_template.get("spec") or {}, k8s.annotations_of(after_template), card_mib
        )
        if after_template != template and before != after:
            # a rollback may not wait: the rollout it undoes never finishes
            waits = not resuming and action.reason is not Reason.RESIZE_FAILED
            if waits and k8s.rollout_in_progress(dep):
                if write.replicas is None:
                    return None
                write.changes.append("resize deferred: rollout in progress")
                return write
            write.template_patch, write.dialect = patch, dialect
            old = f"{before.share_pct} %/{before.memory_mib} MiB" if before else "none"
            assert after is not None
            write.changes.append(
                f"slice {old}->{after.share_pct} %/{after.memory_mib} MiB ({dialect.value})"
            )
            strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
            if strategy == "RollingUpdate":
                surge = fits(inv, after.share_pct, after.memory_mib or 0)
                write.strategy = {
                    "rollingUpdate": {
                        "maxSurge": 1 if surge else 0,
                        "maxUnavailable": 0 if surge else 1,
                    }
                }
                write.changes.append("surge 1" if surge else "no room to surge: maxUnavailable 1")
        return write

    def _deferred_message(self, dep: JsonObj, action: ScaleAction) -> str:
        return (
            f"resize to {action.target.slice_pct} % deferred: rollout of "
            f"generation {k8s.meta(dep).get('generation')} still in progress"
        )

    def _write_scale(self, dep: JsonObj, action: ScaleAction, write: _Write, summary: str) -> None:
        """The writes of one scale action, each under the field manager ``sloscale``.

        - Replicas: a merge patch of the ``scale`` subresource, an update: it makes sloscale
          the owner of ``spec.replicas`` and never conflicts on ownership. No force is
          needed, nor wanted as a guard: another autoscaler on the Deployment (an HPA, a
          KEDA ScaledObject) is found before planning and the loop holds
          (``ConflictingAutoscaler``), and a writer racing this one is caught by the
          resourceVersion it was planned on.
        - A resize: a server-side apply (``writes.resize_apply``) of only the fields sloscale
          owns, with ``force``. The fields it resizes were first set by whoever deployed
          the manifest (kubectl, Helm, Argo CD, Flux), so a plain apply would fail with a
          conflict on the first resize of every such Deployment, and a controller cannot
          settle a conflict by asking; the ``sloscale.io/enabled`` annotation is the
          operator's consent to hand these fields over (Kubernetes asks controllers to force
          on the fields they manage). A concurrent change of the template is still refused:
          the apply carries the resourceVersion read (409: re-read, re-planned when it moved).
        - A resize that must remove keys (another dialect's, another MIG profile's): a
          strategic-merge patch, an update. An apply can only remove fields its own manager
          applied before, never the manifest's, and two writes would roll the pods out
          twice.
        - The decision annotation alone: a merge patch, an update. An apply of it alone
          would remove the slice sloscale applied on the last resize.
        """
        ref = action.ref
        rv = str(k8s.meta(dep).get("resourceVersion", ""))
        note = self._decision("scale", str(action.reason), summary, action.conditions)
        if write.replicas is not None and action.remove_pods:
            self._mark_for_removal(ref.namespace, action.remove_pods)
        if write.replicas is not None:
            scale = self.api.patch(
                DEPLOYMENTS,
                ref.name,
                {"metadata": {"resourceVersion": rv}, "spec": {"replicas": write.replicas}},
                ref.namespace,
                subresource="scale",
            )
            write.replicas_written = True
            rv = str((scale.get("metadata") or {}).get("resourceVersion", rv))
        recorded = note_patch(dep, note)  # {} when the same decision is recorded already
        body: JsonObj = {"metadata": recorded}
        if write.template_patch and not deletes_fields(write.template_patch):
            needs = SCHEDULERS.get(write.dialect)
            config = resize_apply(
                dep,
                write.template_patch,
                note=note if recorded else k8s.annotations_of(dep)[k8s.LAST_DECISION],
                resource_version=rv,
                strategy=write.strategy,
                scheduler_name=needs.scheduler_name if needs else None,
            )
            updated = self.api.apply(DEPLOYMENTS, ref.name, config, ref.namespace, force=True)
        elif write.template_patch:
            body["metadata"]["resourceVersion"] = rv
            body["spec"] = {"template": write.template_patch}
            if write.strategy is not None:
                body["spec"]["strategy"] = write.strategy
            updated = self.api.patch(
                DEPLOYMENTS, ref.name, body, ref.namespace, content_type=STRATEGIC_MERGE_PATCH
            )
        elif body["metadata"]:
            updated = self.api.patch(DEPLOYMENTS, ref.name, body, ref.namespace)
        else:
            updated = dep  # the same decision is recorded already: nothing more to write
        message = event_message(summary, action.conditions)
        self._event(DEPLOYMENTS, "Deployment", updated, str(action.reason), message)

    def _mark_for_removal(self, namespace: str, pods: Sequence[str]) -> None:
        """Ask the ReplicaSet controller to remove ``pods`` first on the coming scale-in.

        ``controller.kubernetes.io/pod-deletion-cost`` (beta since Kubernetes 1.22): among
        ready pods, the lowest cost goes first. The planner names the pods on the emptiest
        cards, so a scale-in frees whole cards. Best effort: a pod that is gone or a patch
        that fails only costs the ordering, never the scale-in itself.
        """
        for rank, name in enumerate(pods):
            cost = str(POD_DELETION_COST_FIRST + rank)
            body = {"metadata": {"annotations": {POD_DELETION_COST: cost}}}
            try:
                self.api.patch(PODS, name, body, namespace)
            except ApiError as e:
                log.warning("cannot mark pod %s/%s for removal first: %s", namespace, name, e)

    # ---- jobs and bare pods ------------------------------------------------------------------

    def _job(self, action: JobAction, dry: bool) -> ApplyResult:
        if action.ref.kind == "Pod":
            return self._pod(action, dry)
        ref = action.ref
        job = self.jobs.get(ref.namespace, ref.name) or self.api.get(JOBS, ref.name, ref.namespace)
        verb = "suspend" if action.suspend else "resume"
        for attempt in range(self.options.conflict_retries + 1):
            if k8s.job_phase(job) in (JobPhase.SUCCEEDED, JobPhase.FAILED):
                return ApplyResult(ref.key, True, "job already finished; nothing to do")
            if bool((job.get("spec") or {}).get("suspend")) == action.suspend:
                return ApplyResult(ref.key, True, "no change")
            if dry:
                return self._shadow(ref.key, verb, f"would {verb} the Job (whole gang)")
            if not self._leading():
                return ApplyResult(ref.key, False, "not the leader: nothing written")
            note = self._decision(verb, str(action.reason), f"{verb} the Job", action.conditions)
            rv = str(k8s.meta(job).get("resourceVersion", ""))
            body = {
                "metadata": {"resourceVersion": rv, **note_patch(job, note)},
                "spec": {"suspend": action.suspend},
            }
            try:
                updated = self.api.patch(JOBS, ref.name, body, ref.namespace)
            except ApiError as e:
                if e.status != CONFLICT or attempt == self.options.conflict_retries:
                    raise
                self.sleep(self.options.conflict_backoff_s * 2**attempt)
                job = self.api.get(JOBS, ref.name, ref.namespace)
                continue
            done = "suspended" if action.suspend else "resumed"
            message = event_message(f"{done} the Job (whole gang)", action.conditions)
            self._event(JOBS, "Job", updated, str(action.reason), message)
            return ApplyResult(ref.key, True, done)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pod(self, action: JobAction, dry: bool) -> ApplyResult:
        ref = action.ref
        if not action.suspend:
            return ApplyResult(
                ref.key, False, "a bare pod cannot be resumed once evicted; recreate it"
            )
        pod = self.pods.get(ref.namespace, ref.name)
        if pod is None:
            return ApplyResult(ref.key, True, "pod already gone; nothing to do")
        if dry:
            return self._shadow(ref.key, "evict", "would evict the pod (Eviction API)")
        if not self._leading():
            return ApplyResult(ref.key, False, "not the leader: nothing written")
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": ref.name, "namespace": ref.namespace},
        }
        try:
            self.api.create(PODS, eviction, ref.namespace, name=ref.name, subresource="eviction")
        except ApiError as e:
            if e.status == TOO_MANY:
                self._event(PODS, "Pod", pod, "EvictionBlocked", e.message, warning=True)
                return ApplyResult(
                    ref.key, False, f"eviction refused, retry later (429): {e.message}"
                )
            raise
        self._event(PODS, "Pod", pod, str(action.reason), "evicted (Eviction API)")
        return ApplyResult(ref.key, True, "evicted")

    def _from_cronjob(
        self,
        namespace: str,
        cronjob: str,
        job_name: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        reason: str,
        dry_run: bool,
    ) -> ApplyResult:
        key = f"{namespace}/{job_name}"
        source = self.api.get(CRONJOBS, cronjob, namespace)
        template = (source.get("spec") or {}).get("jobTemplate") or {}
        tmeta = template.get("metadata") or {}
        if dry_run or self.options.dry_run:
            return self._shadow(key, "create-job", f"would create Job from cronjob/{cronjob}")
        if not self._leading():
            return ApplyResult(key, False, "not the leader: nothing written")
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name,
                "namespace": namespace,
                "labels": {**(tmeta.get("labels") or {}), **labels},
                "annotations": {
                    **(tmeta.get("annotations") or {}),
                    "cronjob.kubernetes.io/instantiate": "manual",
                    **annotations,
                    k8s.LAST_DECISION: self._decision("create", reason, f"from cronjob/{cronjob}"),
                },
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": cronjob,
                        "uid": k8s.meta(source).get("uid", ""),
                        "controller": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        try:
            created = self.api.create(JOBS, job, namespace)
        except ApiError as e:
            if e.status == CONFLICT and e.reason == "AlreadyExists":
                return ApplyResult(key, True, "job already exists; nothing to do")
            raise
        self._event(JOBS, "Job", created, reason, f"created from cronjob/{cronjob}")
        return ApplyResult(key, True, f"created from cronjob/{cronjob}")

    # ---- helpers -----------------------------------------------------------------------------

    def _guarded(self, key: str, fn: Callable[[], ApplyResult]) -> ApplyResult:
        """Run one action; its failure becomes its result and never reaches the others."""
        namespace = key.partition("/")[0]
        if not self.options.scope.covers(namespace):
            return ApplyResult(key, False, f"outside --namespaces {self.options.scope.describe()}")
        try:
            return fn()
        except ApiError as e:
            if e.status == NOT_FOUND:
                return ApplyResult(key, True, "deleted meanwhile; nothing to do")
            log.warning("%s: %s", key, e.describe())
            return ApplyResult(key, False, e.describe())
        except Exception as e:  # a bug in one action must not stop the others
            log.exception("%s: apply failed", key)
            return ApplyResult(key, False, f"{type(e).__name__}: {e}")

    def _leading(self) -> bool:
        return self.leader is None or self.leader.is_leader()

    def _shadow(self, key: str, action: str, detail: str) -> ApplyResult:
        record = ShadowRecord(self.clock(), key, action, detail)
        self.shadow_log.append(record)
        log.info("dry-run %s %s: %s", key, action, detail)
        return ApplyResult(key, True, f"dry-run: would {action}: {detail}")

    def _decision(
        self, action: str, reason: str, message: str, conditions: Sequence[Condition] = ()
    ) -> str:
        """The ``sloscale.io/last-decision`` annotation: JSON with the whole condition set."""
        return json.dumps(
            {
                "action": action,
                "reason": reason,
                "time": rfc3339(self.clock()),
                "message": message,
                "conditions": [c.as_dict() for c in conditions],
            },
            sort_keys=True,
        )

    def _event(
        self,
        res: Resource,
        kind: str,
        obj: Mapping[str, Any],
        reason: str,
        message: str,
        *,
        warning: bool = False,
    ) -> None:
        """Record an Event on ``obj``; best effort (a failed Event is logged, not raised)."""
        m = k8s.meta(obj)
        now = self.clock()
        ns = str(m.get("namespace") or "default")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{m.get('name')}.{int(now * 1e9):x}", "namespace": ns},
            "involvedObject": {
                "apiVersion": res.group_version,
                "kind": kind,
                "name": m.get("name"),
                "namespace": ns,
                "uid": m.get("uid", ""),
                "resourceVersion": m.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message[:EVENT_MESSAGE_LIMIT],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "sloscale"},
            "reportingComponent": "sloscale.io/controller",
            "reportingInstance": self.options.identity,
            "firstTimestamp": rfc3339(now, micro=False),
            "lastTimestamp": rfc3339(now, micro=False),
            "count": 1,
        }
        try:
            self.api.create(EVENTS, body, ns)
        except ApiError as e:
            log.warning("event %s on %s/%s not recorded: %s", reason, ns, m.get("name"), e)


WATERMARK_ANNOTATION = ANNOTATION_PREFIX + "retrain-watermark"
RETRAIN_OF_LABEL = k8s.RETRAIN_OF_LABEL


def _scale_basis(dep: Mapping[str, Any]) -> tuple[int, str]:
    """What a scale action was planned on: the replica count and the pod template."""
    spec = dep.get("spec") or {}
    template = json.dumps(spec.get("template") or {}, sort_keys=True)
    return int(spec.get("replicas", 1)), template


def _changed_under_us(basis: tuple[int, str], dep: Mapping[str, Any]) -> str:
    """How ``dep`` differs from what the plan saw, in words; ``""`` when it does not."""
    replicas, template = _scale_basis(dep)
    if replicas != basis[0]:
        return f"replicas changed {basis[0]}->{replicas}"
    if template != basis[1]:
        return "pod template changed"
    return ""


def _controller_annotations_apart(state: DeploymentState) -> DeploymentState:
    """Keep sloscale's own records (watermark, last decision) out of the user's spec."""
    ann = dict(state.annotations)
    watermark = ann.pop(WATERMARK_ANNOTATION, None)
    ann.pop(k8s.LAST_DECISION, None)
    return replace(state, annotations=ann, retrain_watermark=watermark)
