"""When a rate covers its whole window and every ready pod: the rule for partial data.

Why it exists: ``rate()`` over a window answers with a plausible number even when part of the
data is missing. One of four ready pods not scraped reads 60 rps instead of 80; a pod whose
scrapes stopped (or resumed) inside the window reads low while its samples age out of it (the
extrapolation of ``rate()`` reaches at most half a scrape past the first and last sample).
Read as load, such a number is a wrong scale-down. A workload's rate is trusted only when

- every pod the cluster reports ready for it has a rate series (when its series name pods: a
  series labelled only by workload cannot be checked pod by pod), and
- every pod that counts (below) covers the window: its counter is live, not marked stale, at
  the window's end (``now``) and, unless the pod is new (no sample in the lookback before the
  window), at its start (``start``). Prometheus marks a series stale at the first scrape that
  fails or lacks it, so this sees a gap of one scrape. Where no staleness marker was written
  (Prometheus itself was down) the halves of the window tell instead: a counter with more than
  one sample fewer in one half than in the other has a gap at that end, and
- not every series of the workload is new: at least one had a sample in the lookback before
  the window (``before``). A new pod is exempt because the others carried the load while it
  started; when every series is new, nothing did: Prometheus was just started or wiped, the
  controller points at another one, the recording or relabelling changed, or the workload
  itself is new. ``rate()`` then reads the part of the window its samples cover (a series
  20 s old in a 60 s window reads about a third). Every series with coverage is evidence
  here, a pod the cluster no longer reports included: its samples before the window show
  that Prometheus saw the workload's load then (a rolling update replaced every pod). A new
  workload's rate so stays partial for one window: without an earlier full reading it is
  unavailable, a hold, neither a scale-down nor a scale-up.

Which pods count: those the cluster reports ready, and any series without a pod label; a pod
the cluster no longer reports (deleted, terminating) stopped for a reason, and its requests
until then were real. When the cluster reports no pod of the workload at all, every pod counts.

The source sizes a partial reading on the larger of it and the last full reading, or calls it
unavailable when there is no recent one (``source``). Purely computational.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

TOLERANCE = 1.0
"""Samples by which a window's halves may differ (a scrape falling on the boundary)."""


def partial_reasons(
    reporting: Collection[str | None],
    coverage: Mapping[str | None, Mapping[str, float]],
    ready: Collection[str],
    known: Collection[str] = (),
) -> list[str]:
    """Why a workload's rate is partial (empty when it is not).

    ``reporting``: the pods with a rate series (``None`` for a series without a pod label);
    ``coverage``: per pod, the ``COVER_TAG`` series of its counter (``now``, ``start``,
    ``early``, ``late``, ``before``); ``ready``: the pods the cluster reports ready for the
    workload; ``known``: every pod it reports for the workload, ready or not.
    """
    reasons = []
    judged = [p for p in reporting if coverage.get(p)]
    if judged and not any(coverage[p].get("before", 0.0) > 0 for p in judged):
        reasons.append("no rate series covers the whole window: Prometheus or the workload is new")
    if ready and None not in reporting:
        absent = sorted(set(ready) - set(reporting))
        if absent:
            reasons.append(
                f"{len(absent)} of {len(ready)} ready pods not reporting: {', '.join(absent)}"
            )
    for pod in sorted(reporting, key=lambda p: p or ""):
        counts = coverage.get(pod)
        if not counts or (pod is not None and known and pod not in ready):
            continue
        name = pod or "its series"
        early, late = counts.get("early", 0.0), counts.get("late", 0.0)
        existed = counts.get("before", 0.0) > 0
        if "now" not in counts or late < early - TOLERANCE:
            reasons.append(f"{name} stopped reporting inside the window")
        elif existed and ("start" not in counts or early < late - TOLERANCE):
            reasons.append(f"{name} resumed reporting inside the window")
    return reasons
