"""dcgm-exporter (with its pod mapping) and ``sloscale agent`` on the same node: one pod, one
card, two series. The agent's per-process series (``sloscale_split="process"``) is the pod's
own share and wins over dcgm-exporter's copy of the card's value, in whatever order
Prometheus returns them; the pod's share is its own only as the kept series says. Pure: no
Prometheus (tests/prometheus/test_agent_scrape.py scrapes both for real).
"""

from __future__ import annotations

from itertools import permutations

import pytest

from actuators.prometheus.gpu import GpuSample, GpuSignals, gpu_signals, own_share
from actuators.prometheus.podmap import PodInfo

CARD = "GPU-0"
INFO = {
    ("ml", "a-0"): PodInfo("ml/a", 50, card_share_pct=100),
    ("ml", "b-0"): PodInfo("ml/b", 50, card_share_pct=100),
    ("llm", "chat-0"): PodInfo("llm/chat", 29, card_share_pct=29),
}


def _series(key: str, pod: str, value: float, card: str, mig: bool, own: bool) -> GpuSample:
    ns = "llm" if pod == "chat-0" else "ml"
    workload = INFO[(ns, pod)].workload
    return GpuSample(key, workload, ns, pod, card, value, mig=mig, own=own)


def agent(key: str, pod: str, value: float, card: str = CARD, mig: bool = False) -> GpuSample:
    """The agent's per-process series: ``sloscale_split="process"``."""
    return _series(key, pod, value, card, mig, own=True)


def dcgm(key: str, pod: str, value: float, card: str = CARD, mig: bool = False) -> GpuSample:
    """dcgm-exporter's device series, attributed to the pod by its pod mapping."""
    return _series(key, pod, value, card, mig, own=False)


def every_order(samples: list[GpuSample]) -> list[dict[str, GpuSignals]]:
    return [
        gpu_signals(list(order), lambda ns, pod: INFO.get((ns, pod)))
        for order in permutations(samples)
    ]


def test_the_agents_own_share_wins_over_the_card_value_in_either_order() -> None:
    """a-0 (50 % slice) runs 20 % of the card, which is 80 % busy: 0.4 of its slice, read
    from the agent, not 1.6 (the card's 80 % taken as its own) nor the card spread."""
    samples = [
        dcgm("dcgm:util", "a-0", 80.0),
        agent("dcgm:util", "a-0", 20.0),
        dcgm("dcgm:memory", "a-0", 30720.0),
        agent("dcgm:memory", "a-0", 8192.0),
    ]
    results = every_order(samples)
    assert all(r == results[0] for r in results)
    a = results[0]["ml/a"]
    assert a.util == pytest.approx(0.4)
    assert a.memory_mib == pytest.approx(8192.0)  # its processes', not the card's


def test_two_pods_each_read_their_own_share_in_any_order() -> None:
    """Both pods named by both exporters (dcgm-exporter's ``--kubernetes-virtual-gpus``
    copies): each reads its own share."""
    samples = [
        dcgm("dcgm:util", "a-0", 80.0),
        dcgm("dcgm:util", "b-0", 80.0),
        agent("dcgm:util", "a-0", 20.0),
        agent("dcgm:util", "b-0", 60.0),
    ]
    results = every_order(samples)
    assert all(r == results[0] for r in results)
    assert results[0]["ml/a"].util == pytest.approx(0.4)
    assert results[0]["ml/b"].util == pytest.approx(1.2)


def test_an_own_share_beside_a_copy_is_not_a_per_process_split() -> None:
    """b-0 has no process on the card (the agent writes nothing for it), dcgm-exporter a copy
    of the card's 80 %: a-0's own 50 % differs from it, but that is not dcgm-exporter splitting
    per process, so b-0's copy is the card's, spread by share (0.8), not its own (1.6)."""
    samples = [
        dcgm("dcgm:util", "a-0", 80.0),
        agent("dcgm:util", "a-0", 50.0),
        dcgm("dcgm:util", "b-0", 80.0),
    ]
    results = every_order(samples)
    assert all(r == results[0] for r in results)
    assert results[0]["ml/a"].util == pytest.approx(1.0)
    assert results[0]["ml/b"].util == pytest.approx(0.8)


def test_mig_engine_activity_from_dcgm_and_memory_from_the_agent() -> None:
    """On a MIG instance the agent has the pod's memory (no utilisation: NVML has none per
    process there) and dcgm-exporter the instance's engine activity and memory."""
    inst = f"{CARD}/1"
    samples = [
        dcgm("dcgm:engine", "chat-0", 0.55, inst, mig=True),
        dcgm("dcgm:memory", "chat-0", 12000.0, inst, mig=True),
        agent("dcgm:memory", "chat-0", 10240.0, inst, mig=True),
    ]
    results = every_order(samples)
    assert all(r == results[0] for r in results)
    chat = results[0]["llm/chat"]
    assert chat.util == pytest.approx(0.55)
    assert chat.busy == pytest.approx(0.55)
    assert chat.memory_mib == pytest.approx(10240.0)


def test_copies_of_one_kind_are_read_once_whatever_the_order() -> None:
    """Two agent series for one pod and card (two scrape jobs): one value, not the last."""
    samples = [agent("dcgm:util", "a-0", 20.0), agent("dcgm:util", "a-0", 21.0)]
    results = every_order(samples)
    assert all(r == results[0] for r in results)


def test_the_split_label_marks_the_own_share() -> None:
    assert own_share({"sloscale_split": "process", "pod": "a-0"})
    assert not own_share({"pod": "a-0"})
