"""The loop's memory kept across restarts and leader changes (faults B5).

``MemoryKeeper`` moves the part of the ``StateStore`` a successor needs
(``controller.persist``) in and out of a ``StateSnapshotStore``:

* **restore** on the first tick, once discovery has parsed the cluster's annotations, and
  again on the first tick that acts after ticks in shadow mode (a follower that has just
  become the leader takes over the memory of the one before). Only workloads and jobs in
  the cluster now are restored; a budget only when it counted against the same SLO, the
  short-term forecaster's ticks only those of its window before now, and the scale-down
  window's recommendations only while the newest is inside it: after a longer downtime the
  controller was blind, and as after any blind stretch (faults B1) the planner starts the
  window with what runs, so no scale-down comes before a whole window of fresh data.
* **save** at the end of every tick that acts, and only when the memory changed since the
  last save or restore. A tick in shadow mode (``--dry-run``, or a follower) saves nothing:
  its memory stays in memory, and the leader's document is never overwritten by a follower.

Without a store (the bench, ``--dry-run``) it does nothing, and with one it only reads the
state: a run that never restarts decides exactly as without it. Purely computational
around the port; never raises.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from controller.domain import DEFAULT_SCALE_DOWN_STABILIZATION_S
from controller.forecast import ForecastBank
from controller.persist import (
    BudgetSnapshot,
    JobSnapshot,
    StateSnapshot,
    WorkloadSnapshot,
    decode,
    encode,
)
from controller.ports import StateSnapshotStore
from controller.state import StateStore

log = logging.getLogger("sloscale.keeper")


def capture(state: StateStore, forecasts: ForecastBank, now_s: float) -> StateSnapshot:
    """What a successor needs of ``state`` and ``forecasts``: every workload with a valid
    SLO, every job that sloscale preempted."""
    workloads = {}
    for key, w in state.workloads.items():
        if w.spec is None:
            continue
        budget = BudgetSnapshot.of(w.budget, w.spec) if w.budget is not None else None
        workloads[key] = WorkloadSnapshot(
            w.memory,
            w.capacity,
            budget,
            w.slice_pct,
            w.slice_settled_s,
            forecasts.recent_rates(key),
        )
    jobs = {
        key: JobSnapshot(j.last_preempted_s, j.preemptions_s)
        for key, j in state.jobs.items()
        if j.last_preempted_s is not None or j.preemptions_s
    }
    return StateSnapshot(now_s, workloads, jobs)


def restore(
    state: StateStore,
    forecasts: ForecastBank,
    snapshot: StateSnapshot,
    now_s: float,
) -> int:
    """Put ``snapshot``'s memory into the records ``state`` has now (those discovery kept)
    and the forecaster; the number of workloads restored. Recommendations whose newest is
    as old as the workload's scale-down window are dropped (the planner then starts the
    window afresh)."""
    restored = 0
    for key, saved in snapshot.workloads.items():
        record = state.find_workload(key)
        if record is None or record.spec is None:
            continue
        recommended = saved.memory.recommendations
        window_s = record.spec.behavior.scale_down_stabilization_s
        if window_s is None:
            window_s = DEFAULT_SCALE_DOWN_STABILIZATION_S
        expired = bool(recommended) and recommended[-1][0] <= now_s - window_s
        record.memory = replace(saved.memory, recommendations=()) if expired else saved.memory
        record.capacity = saved.capacity
        record.slice_pct, record.slice_settled_s = saved.slice_pct, saved.slice_settled_s
        if saved.budget is not None and saved.budget.fits(record.spec):
            record.budget = saved.budget.restore()
        forecasts.restore_recent(key, saved.recent_rates, now_s)
        restored += 1
    for key, job in snapshot.jobs.items():
        job_record = state.find_job(key)
        if job_record is not None:
            job_record.last_preempted_s = job.last_preempted_s
            job_record.preemptions_s = job.preemptions_s
    return restored


class MemoryKeeper:
    """Restores the loop's memory when it starts or takes over, and saves it as it changes."""

    def __init__(
        self,
        store: StateSnapshotStore | None,
        state: StateStore,
        forecasts: ForecastBank,
    ) -> None:
        self.store = store
        self.state = state
        self.forecasts = forecasts
        self._started = False
        self._acting = False
        self._saved: StateSnapshot | None = None  # what the store holds, as far as we know

    def restore_if_due(self, now_s: float, *, acting: bool) -> None:
        """On the first tick, and on the first acting tick after shadow ones: restore."""
        due = not self._started or (acting and not self._acting)
        self._started, self._acting = True, acting
        if self.store is None or not due:
            return
        try:
            snapshot = decode(self.store.load())
        except Exception:  # the port must not raise; if it does, start cold
            log.exception("loading the saved controller state failed: starting cold")
            return
        if snapshot is None:
            return
        restored = restore(self.state, self.forecasts, snapshot, now_s)
        self._saved = snapshot
        log.info(
            "restored the memory of %d workloads and %d jobs, saved %.0f s ago",
            restored,
            len(snapshot.jobs),
            now_s - snapshot.saved_at_s,
        )

    def save(self, now_s: float, *, acting: bool) -> None:
        """Save the memory if this tick acted and it changed since the last save."""
        if self.store is None or not acting:
            return
        snapshot = capture(self.state, self.forecasts, now_s)
        if snapshot.same_memory(self._saved):
            return
        try:
            kept = self.store.save(encode(snapshot))
        except Exception:  # the port must not raise; the next tick tries again
            log.exception("saving the controller state failed")
            return
        if kept:
            self._saved = snapshot


__all__ = ["MemoryKeeper", "StateSnapshotStore", "capture", "restore"]
