"""What a shared card's busy time says about one pod: never idleness it cannot prove.

dcgm-exporter without per-process series gives a time-shared card's busy time, not a pod's;
``gpu_signals`` spreads it over the card's slices by share. Spread, a pod can read under the
idle line (``IDLE_UTIL``) while all of the card's time may have been its own: that reading
must not start an idle reclaim, so it is unavailable. Pure: no Prometheus.
"""

from __future__ import annotations

import pytest

from actuators.prometheus.gpu import GpuSample, gpu_signals
from actuators.prometheus.podmap import PodInfo
from controller.policy.reclaim import IDLE_UTIL

CARD = "GPU-0"


def _pods(busy_pct: float) -> dict[str, object]:
    """Two workloads with a 50 % slice each on one card; dcgm names only ``a-0`` (no
    ``--kubernetes-virtual-gpus``)."""
    samples = [GpuSample("dcgm:util", "ml/a", "ml", "a-0", CARD, busy_pct)]
    info = {
        ("ml", "a-0"): PodInfo("ml/a", 50, card_share_pct=100),
        ("ml", "b-0"): PodInfo("ml/b", 50, card_share_pct=100),
    }
    return dict(gpu_signals(samples, lambda ns, pod: info.get((ns, pod))))


def test_a_spread_reading_under_the_idle_line_is_not_evidence_of_idleness() -> None:
    # card 4 % busy: spread, a-0 used 2 % of the card on a 50 % slice = 4 % < 5 %; but all
    # 4 % may have been a-0's = 8 % of its slice, which is not idle
    assert _pods(4.0)["ml/a"].util is None  # type: ignore[attr-defined]


def test_a_card_too_quiet_for_any_tenant_to_be_busy_reads_idle() -> None:
    util = _pods(2.0)["ml/a"].util  # type: ignore[attr-defined]
    assert util == pytest.approx(0.02)  # even all of it on a-0: 4 % of its slice, under 5 %
    assert util < IDLE_UTIL


def test_a_busy_shared_card_is_still_spread_by_share() -> None:
    assert _pods(60.0)["ml/a"].util == pytest.approx(0.6)  # type: ignore[attr-defined]
