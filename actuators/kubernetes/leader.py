"""Leader election on a ``coordination.k8s.io/v1`` Lease (client-go's algorithm, in small).

The Lease's ``spec`` holds ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``,
``renewTime`` (``MicroTime``) and ``leaseTransitions``. Every ``retry_period_s`` a candidate:

- reads the Lease (creates it, holding it, when absent: a 409 on create means someone else
  was faster);
- when another holder's record has not changed for ``lease_duration_s`` *as measured on
  this candidate's own monotonic clock since it last saw the record change* (clock skew
  between machines plays no part), takes it over: ``update`` with the resourceVersion it
  read, so of two candidates racing only one wins (the other gets 409);
- when it holds the Lease, renews ``renewTime`` the same way.

``is_leader()`` is true only while the last successful renewal is younger than
``renew_deadline_s`` (< ``lease_duration_s``): a leader that cannot renew stops acting before
anyone else may take over, so two controllers never act at once. A stopped elector releases
the Lease (empty holder) so a successor need not wait; a crashed one simply stops renewing,
and a successor takes over within one lease duration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from actuators.kubernetes.api import LEASES, ApiError, KubeApi

log = logging.getLogger("sloscale.kubernetes.leader")

JsonObj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    namespace: str
    name: str = "sloscale-leader"
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period_s < self.renew_deadline_s < self.lease_duration_s:
            raise ValueError("need 0 < retry_period_s < renew_deadline_s < lease_duration_s")


class LeaderElector:
    """One candidate. ``start()`` runs it on a thread; ``step()`` is one round (for tests)."""

    def __init__(
        self,
        api: KubeApi,
        config: LeaseConfig,
        identity: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.api = api
        self.config = config
        self.identity = identity
        self.monotonic = monotonic
        self.wall = wall
        self.on_change = on_change
        self._renewed_at: float | None = None  # monotonic time of our last successful write
        self._last_renewal_s = 0.0  # the same, kept after leadership ends (for reports)
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._was_leader = False

    # ---- public ------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and self.monotonic() - renewed < self.config.renew_deadline_s

    def start(self) -> LeaderElector:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
            self._thread.start()
        return self

    def stop(self, *, release: bool = True) -> None:
        """Stop campaigning; with ``release`` give the Lease up at once (graceful shutdown)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.config.retry_period_s + 5)
            self._thread = None
        if release and self.is_leader():
            self._release()
        self._renewed_at = None
        self._notify()

    def step(self) -> bool:
        """One acquire-or-renew round; returns ``is_leader()`` afterwards. Never raises."""
        try:
            self._try_acquire_or_renew()
        except ApiError as e:
            if e.status != 409:
                log.warning("leader election: %s", e.describe())
        except Exception:
            log.exception("leader election round failed")
        self._notify()
        return self.is_leader()

    # ---- the algorithm -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.step()
            self._stopping.wait(self.config.retry_period_s)

    def _try_acquire_or_renew(self) -> None:
        c = self.config
        now = self.monotonic()
        try:
            lease = self.api.get(LEASES, c.name, c.namespace)
        except ApiError as e:
            if e.status != 404:
                raise
            self.api.create(LEASES, self._lease_body(None, transitions=0), c.namespace)
            self._renewed_at = self._last_renewal_s = now
            return
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration_s = float(spec.get("leaseDurationSeconds") or c.lease_duration_s)
        held_by_other = holder not in ("", self.identity)
        if held_by_other and now < self._observed_at + duration_s:
            self._renewed_at = None  # someone else leads
            return
        transitions = int(spec.get("leaseTransitions") or 0)
        body = self._lease_body(
            lease,
            transitions=transitions if holder == self.identity else transitions + 1,
            acquire_time=spec.get("acquireTime") if holder == self.identity else None,
        )
        updated = self.api.replace(LEASES, c.name, body, c.namespace)
        new_spec = updated.get("spec") or {}
        self._observed = (self.identity, str(new_spec.get("renewTime") or ""))
        self._observed_at = now
        self._renewed_at = self._last_renewal_s = now

    def _lease_body(
        self,
        current: JsonObj | None,
        *,
        transitions: int,
        acquire_time: str | None = None,
    ) -> JsonObj:
        c = self.config
        now = _micro_time(self.wall())
        metadata: JsonObj = {"name": c.name, "namespace": c.namespace}
        if current is not None:
            metadata = dict(current.get("metadata") or {})  # keeps resourceVersion: a CAS
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": max(1, round(c.lease_duration_s)),
                "acquireTime": acquire_time or now,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }

    def _release(self) -> None:
        c = self.config
        try:
            lease = self.api.get(LEASES, c.name, c.namespace)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != self.identity:
                return
            spec.update(
                holderIdentity="", leaseDurationSeconds=1, renewTime=_micro_time(self.wall())
            )
            self.api.replace(LEASES, c.name, {**lease, "spec": spec}, c.namespace)
        except ApiError as e:
            log.warning("releasing the lease failed: %s", e.describe())

    def _notify(self) -> None:
        leading = self.is_leader()
        if leading != self._was_leader:
            self._was_leader = leading
            log.info("%s %s leadership", self.identity, "acquired" if leading else "lost")
            if self.on_change is not None:
                self.on_change(leading)


def _micro_time(t_s: float) -> str:
    """``metav1.MicroTime``: RFC 3339 with microseconds."""
    return datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
