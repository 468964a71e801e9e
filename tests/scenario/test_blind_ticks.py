"""Faults B1: a Prometheus outage longer than the scale-down window, then recovery.

Blind ticks recommend the current allocation, so the stabilisation window is never empty
when data returns, and no scale-down happens before a whole window of fresh data; the same
holds after start-up, when the controller has seen no data yet.
"""

from controller.domain import Reason
from tests.fakes import slo_annotations
from tests.scenario.test_tick import busy, make, run

WINDOW_TICKS = 20  # the 300 s scale-down window at 15 s ticks


def test_no_scale_down_right_after_an_outage_longer_than_the_window() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add(
        "chat", slo_annotations(slice_min="50", slice_max="50"), replicas=4, slice_pct=50
    )
    metrics.values[ref.key] = busy(60.0, 4, 50)
    run(clock, ctl, 25)  # learnt, and sized for 60 rps
    held = cluster.deployments[ref.key].replicas
    metrics.fail = True  # Prometheus down for 390 s
    run(clock, ctl, 26)
    assert cluster.deployments[ref.key].replicas == held
    metrics.fail = False
    metrics.values[ref.key] = busy(5.0, held, 50)  # back, and the load has dropped
    run(clock, ctl, 1)
    assert cluster.deployments[ref.key].replicas == held  # one fresh tick proves nothing
    assert ctl.last_report is not None
    assert ctl.last_report.decisions[0].reason is Reason.SCALE_DOWN_STABILIZED
    run(clock, ctl, WINDOW_TICKS - 2)
    assert cluster.deployments[ref.key].replicas == held  # still inside the window
    run(clock, ctl, 3)
    assert cluster.deployments[ref.key].replicas < held  # a whole window of fresh data


def test_no_scale_down_before_a_window_of_data_after_start_up() -> None:
    clock, cluster, metrics, ctl = make()
    ref = cluster.add(
        "chat", slo_annotations(slice_min="50", slice_max="50"), replicas=6, slice_pct=50
    )
    metrics.values[ref.key] = busy(5.0, 6, 50)  # far less than 6 replicas need
    run(clock, ctl, WINDOW_TICKS - 1)
    assert cluster.deployments[ref.key].replicas == 6  # a restart does not shrink at once
    run(clock, ctl, 3)
    assert cluster.deployments[ref.key].replicas < 6


def test_no_scale_down_right_after_a_tick_that_could_not_read_the_cluster() -> None:
    """Found by the fault soak: a failed watch (``snapshot()`` raising) made a tick plan
    nothing, so the window's recommendations had a gap and the load that dropped during it
    was scaled down to 15 s later. Now that tick is blind for every workload."""
    clock, cluster, metrics, ctl = make()
    ref = cluster.add(
        "chat", slo_annotations(slice_min="50", slice_max="50"), replicas=4, slice_pct=50
    )
    metrics.values[ref.key] = busy(5.0, 4, 50)  # far less than 4 replicas need
    run(clock, ctl, WINDOW_TICKS - 1)  # the start's window is nearly over, then one fails
    cluster.fail_snapshot = True
    run(clock, ctl, 1)
    cluster.fail_snapshot = False
    run(clock, ctl, WINDOW_TICKS - 2)
    assert cluster.deployments[ref.key].replicas == 4
    assert ctl.last_report is not None
    assert "data missing or partial" in ctl.last_report.decisions[0].message
    run(clock, ctl, 3)
    assert cluster.deployments[ref.key].replicas < 4
