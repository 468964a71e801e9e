"""``sloscale run --cluster kubernetes`` end to end against the fake API server.

Prometheus is unreachable here on purpose: the loop must discover the annotated Deployment
through the adapter, hold it with ``MetricsUnavailable`` (never scale it down on missing
data), and in shadow mode write nothing at all.
"""

from __future__ import annotations

from pathlib import Path

from controller.domain import Reason
from controller.report import Recorder, TickReport
from sloscale.run import RunOptions, run
from tests.k8s.conftest import deployment, gpu_node
from tests.k8s.fakeapi import FakeApiServer


class Reports(Recorder):
    def __init__(self) -> None:
        self.reports: list[TickReport] = []

    def record(self, report: TickReport) -> None:
        self.reports.append(report)


def kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{url}'}}}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: u}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    return path


def test_run_on_kubernetes_holds_without_metrics_and_shadow_writes_nothing(
    tmp_path: Path,
) -> None:
    with FakeApiServer(bookmark_interval_s=0.2) as server:
        server.put(gpu_node("gpu-1"))
        server.put(deployment("web", replicas=2))
        reports = Reports()
        options = RunOptions(
            prometheus_url="http://127.0.0.1:9",  # nothing listens: every query fails
            cluster="kubernetes",
            kubeconfig=str(kubeconfig(tmp_path, server.url)),
            interval_s=0.5,
            query_timeout_s=0.2,
            dry_run=True,
            serve=False,
            duration_s=2.0,
        )
        assert run(options, recorders=[reports]) == 0
        assert server.writes() == []
    seen = [d for r in reports.reports for d in r.decisions if d.target.endswith("/web")]
    assert seen and all(d.reason is Reason.METRICS_UNAVAILABLE for d in seen)
    assert reports.reports[-1].snapshot is not None
    assert {w.key.split("/")[1] for w in reports.reports[-1].workloads} == {"web"}


def test_run_reports_an_unusable_kubeconfig_in_one_line(tmp_path: Path) -> None:
    from sloscale.cli import main

    missing = tmp_path / "nope"
    code = main(["run", "--prometheus-url", "http://127.0.0.1:9", "--kubeconfig", str(missing)])
    assert code == 2
