"""Leader election on a Lease: one leader at a time, takeover within one lease duration."""

from __future__ import annotations

import threading
import time

from actuators.kubernetes import KubernetesCluster, KubernetesOptions, LeaderElector, LeaseConfig
from controller.domain import Allocation, Plan, Reason, ScaleAction, WorkloadRef
from tests.k8s.conftest import deployment, make_api
from tests.k8s.fakeapi import FakeApiServer

LEASE = LeaseConfig("sloscale", lease_duration_s=1.0, renew_deadline_s=0.7, retry_period_s=0.1)


def test_one_leader_then_takeover_within_a_lease_duration(server: FakeApiServer) -> None:
    server.put(deployment("web", replicas=1))
    apis = {who: make_api(server, who) for who in ("a", "b")}
    electors = {who: LeaderElector(apis[who], LEASE, who) for who in ("a", "b")}
    clusters = {
        who: KubernetesCluster(
            apis[who], KubernetesOptions(identity=who), leader=electors[who], sleep=lambda _s: None
        )
        for who in ("a", "b")
    }
    both_leading: list[float] = []
    stop = threading.Event()
    alive = {"a": True, "b": True}

    def watch_leaders() -> None:
        while not stop.is_set():
            if alive["a"] and electors["a"].is_leader() and electors["b"].is_leader():
                both_leading.append(time.monotonic())
            time.sleep(0.005)

    def act(who: str, n: int) -> None:
        act_plan = Plan(
            scale=(
                ScaleAction(WorkloadRef("ml", "web"), Allocation(n, 50), 20480, Reason.SCALE_UP),
            )
        )
        clusters[who].apply(act_plan)

    electors["a"].start()
    time.sleep(0.3)
    electors["b"].start()
    watcher = threading.Thread(target=watch_leaders)
    watcher.start()
    try:
        time.sleep(0.5)
        assert electors["a"].is_leader() and not electors["b"].is_leader()
        for i in range(3):  # both try to act; only the leader writes
            act("a", 2 + i)
            act("b", 10 + i)
        killed_at = time.monotonic()
        electors["a"].stop(release=False)  # a crash: the lease is not released
        alive["a"] = False
        while not electors["b"].is_leader():
            assert time.monotonic() - killed_at < 5
            time.sleep(0.01)
        act("b", 7)
    finally:
        stop.set()
        watcher.join()
        for e in electors.values():
            e.stop()
        for a in apis.values():
            a.close()
    # Measured on the API server's clock, from a's last renewal to b's first write of the
    # Lease: b waits a whole lease duration from when it saw that renewal (never less: no
    # split brain), then takes over at its next poll. The slack is for b's request and thread
    # scheduling on 2 cores shared with the rest of the suite; a takeover that waited for a
    # second lease duration (or never expired the old one) is far outside it.
    leases = [w for w in server.writes() if w.resource == "leases"]
    a_renewed = max(w.time_s for w in leases if w.user_agent == "sloscale/a")
    b_acquired = min(w.time_s for w in leases if w.user_agent == "sloscale/b")
    took_over_s = b_acquired - a_renewed
    assert LEASE.lease_duration_s <= took_over_s
    assert took_over_s <= LEASE.lease_duration_s + LEASE.retry_period_s + 0.35
    assert both_leading == []
    writers = [(w.user_agent, w.time_s) for w in server.writes() if w.resource != "leases"]
    a_writes = [t for ua, t in writers if ua == "sloscale/a"]
    b_writes = [t for ua, t in writers if ua == "sloscale/b"]
    assert a_writes and b_writes
    assert max(a_writes) < killed_at < min(b_writes)  # never both: a before, b after
    lease = server.obj("Lease", "sloscale", "sloscale-leader")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] in ("", "b") and lease["spec"]["leaseTransitions"] >= 1
    dep = server.obj("Deployment", "ml", "web")
    assert dep is not None and dep["spec"]["replicas"] == 7


def test_graceful_stop_releases_the_lease(server: FakeApiServer) -> None:
    api = make_api(server)
    try:
        e = LeaderElector(api, LEASE, "a")
        assert e.step()
        e.stop()
        lease = server.obj("Lease", "sloscale", "sloscale-leader")
        assert lease is not None and lease["spec"]["holderIdentity"] == ""
        other = LeaderElector(api, LEASE, "b")
        assert other.step()  # no need to wait a lease duration
    finally:
        api.close()
