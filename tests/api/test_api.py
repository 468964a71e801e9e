"""The HTTP API over a controller that has run a few ticks against in-memory ports."""

from fastapi.testclient import TestClient

from controller import __version__
from controller.loop import Controller, LoopConfig
from sloscale.api import create_app
from sloscale.telemetry import MetricsRecorder
from tests.fakes import FakeClock, FakeCluster, FakeMetrics, slo_annotations
from tests.scenario.test_tick import busy


def client_after(ticks: int) -> tuple[TestClient, Controller]:
    clock = FakeClock(0.0)
    cluster = FakeCluster(clock)
    metrics = FakeMetrics()
    good = cluster.add("chat", slo_annotations(slice_min="50", slice_max="50"), replicas=1)
    cluster.add("broken", slo_annotations(objective="100"))
    metrics.values[good.key] = busy(5.0, 1, 50)
    recorder = MetricsRecorder()
    ctl = Controller(cluster, metrics, clock, LoopConfig(), recorders=[recorder])
    for _ in range(ticks):
        clock.advance(15)
        ctl.tick()
    return TestClient(create_app(ctl, recorder)), ctl


def test_health_and_readiness() -> None:
    client, _ = client_after(0)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503  # no tick yet
    client, _ = client_after(1)
    assert client.get("/readyz").status_code == 200


def test_workloads_show_spec_state_sli_budget_and_the_explained_decision() -> None:
    client, _ = client_after(3)
    body = client.get("/api/v1/workloads").json()
    by_name = {w["workload"]: w for w in body["workloads"]}
    chat = by_name["default/chat"]
    assert chat["valid"] and chat["spec"]["latency_target_ms"] == 500.0
    assert chat["state"]["replicas"] == 1
    assert chat["sli"] == 1.0 and chat["error_budget_remaining"] == 1.0
    assert chat["last_decision"]["explanation"].startswith(chat["last_decision"]["reason"])
    broken = by_name["default/broken"]
    assert not broken["valid"]
    assert "sloscale.io/objective" in broken["errors"][0] and "'100'" in broken["errors"][0]
    one = client.get("/api/v1/workloads/default/chat").json()
    assert one["workload"] == "default/chat"
    assert client.get("/api/v1/workloads/default/nope").status_code == 404


def test_decisions_endpoint_filters_by_workload() -> None:
    client, _ = client_after(3)
    all_d = client.get("/api/v1/decisions").json()["decisions"]
    assert {d["target"] for d in all_d} == {"default/chat", "default/broken"}
    chat = client.get("/api/v1/decisions", params={"workload": "default/chat"}).json()["decisions"]
    assert chat and all(d["target"] == "default/chat" for d in chat)
    assert client.get("/api/v1/decisions", params={"limit": 0}).status_code == 422


def test_metrics_exposition() -> None:
    client, _ = client_after(3)
    text = client.get("/metrics").text
    for name in (
        'sloscale_workload_applied_replicas{workload="default/chat"} 1.0',
        'sloscale_workload_desired_slice_percent{workload="default/chat"} 50.0',
        'sloscale_workload_spec_valid{workload="default/broken"} 0.0',
        "sloscale_workload_error_budget_remaining_ratio",
        "sloscale_workload_predicted_rate_rps",
        "sloscale_workload_sli_ratio",
        'sloscale_tick_phase_duration_seconds_count{phase="plan"} 3.0',
        'sloscale_decisions_total{reason="InvalidSpec"} 3.0',
    ):
        assert name in text, name


def test_a_decision_shows_every_condition_in_the_api_and_the_metrics() -> None:
    client, ctl = client_after(3)
    chat = client.get("/api/v1/workloads/default/chat").json()["last_decision"]
    decision = ctl.decision_log[-1] if ctl.decision_log else None
    assert decision is not None
    conditions = chat["conditions"]
    assert conditions and conditions[0]["type"] == "ScalingActive"
    assert all(set(c) == {"type", "status", "reason", "message"} for c in conditions)
    assert all(c["status"] in ("True", "False") for c in conditions)
    assert chat["message"] == "; ".join(c["message"] for c in conditions if c["message"])
    text = client.get("/metrics").text
    first = conditions[0]
    expected = (
        f'sloscale_workload_condition{{reason="{first["reason"]}",type="ScalingActive",'
        f'workload="default/chat"}} {1.0 if first["status"] == "True" else 0.0}'
    )
    assert expected in text


def test_every_decision_of_the_loop_has_a_condition() -> None:
    _, ctl = client_after(4)
    assert ctl.decision_log
    for d in ctl.decision_log:
        assert d.conditions, d
        assert d.conditions[-1].reason is d.reason or d.conditions[0].reason is d.reason
    invalid = [d for d in ctl.decision_log if d.target == "default/broken"]
    assert invalid and invalid[-1].conditions[0].type.value == "SpecValid"
    assert invalid[-1].conditions[0].status is False


def test_before_the_first_tick_the_api_says_retry_not_unknown() -> None:
    """Before the first tick nothing is known of any workload: 503 with a Retry-After of one
    interval (15 s here), never 404 "not managed" nor an empty list that reads as "none"."""
    client, _ = client_after(0)
    for path in (
        "/api/v1/workloads/default/chat",
        "/api/v1/workloads",
        "/api/v1/jobs",
        "/api/v1/retraining",
    ):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == "15"
        assert response.json()["detail"].startswith("no tick yet")
    client, _ = client_after(1)
    assert client.get("/api/v1/workloads/default/chat").status_code == 200
    assert client.get("/api/v1/workloads/default/nope").status_code == 404


def test_metrics_say_the_build_and_count_retraining_triggers_once() -> None:
    """``*_build_info`` as Prometheus' own exporters have it; one retraining counter, not two
    near-twins (``sloscale_retrain_triggered_total`` was merged into ``*_triggers_total``)."""
    client, _ = client_after(1)
    text = client.get("/metrics").text
    assert f'sloscale_build_info{{version="{__version__}"}} 1.0' in text
    assert 'sloscale_retrain_triggers_total{workload="default/chat"} 0.0' in text
    assert "sloscale_retrain_triggered_total" not in text
