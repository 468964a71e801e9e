"""``sloscale`` command line: ``demo``, ``soak``, ``run``, ``agent``, ``forecast-eval`` and
``version``.

Bad input (a malformed option, trace or annotation) ends with a one-line error on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from controller import __version__
from sloscale.argtypes import non_negative_int, port, positive_float
from sloscale.errors import error_line
from sloscale.logs import configure as configure_logging

if TYPE_CHECKING:
    from actuators.prometheus.gpu import PodLabels
    from sloscale.run import RunOptions

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A user error to print as one line and exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise CliError(f"{self.prog}: error: {message}")


def _namespaces(text: str) -> frozenset[str]:
    """``ns1,ns2``: the namespaces, blanks dropped."""
    return frozenset(ns.strip() for ns in text.split(",") if ns.strip())


def _pod_labels(text: str) -> PodLabels:
    """``chart``, ``honor`` or ``NAMESPACE_LABEL,POD_LABEL`` (``actuators.prometheus.gpu``)."""
    from actuators.prometheus.gpu import parse_pod_labels

    try:
        return parse_pod_labels(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _duration(text: str) -> float:
    from controller.spec import parse_duration_s

    try:
        return parse_duration_s(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sloscale", description="SLO-driven autoscaling for GPU inference")
    p.add_argument("--version", action="version", version=f"sloscale {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log every decision")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="run the real loop against the embedded simulated cluster")
    demo.add_argument("--hours", type=positive_float, default=24.0, help="simulated hours (24)")
    demo.add_argument("--trace", type=Path, help="drive the first service from a trace CSV")
    demo.add_argument("--seed", type=non_negative_int, default=1)
    demo.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve the API while the demo runs (default on)",
    )
    demo.add_argument(
        "--serve-after",
        action="store_true",
        help="after the simulated run, keep serving the API until Ctrl-C or SIGTERM",
    )
    demo.add_argument("--host", default="127.0.0.1", help="API address (127.0.0.1)")
    demo.add_argument("--port", type=port, default=8080, help="API port (8080; 0 = any free)")
    demo.add_argument("--json", type=Path, dest="json_out", help="write the results as JSON")
    demo.add_argument(
        "--interval",
        type=positive_float,
        default=15.0,
        help="simulated seconds between ticks (15)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.add_argument(
        "--forecast",
        default="auto",
        help="forecast model: auto (default), persistence, seasonal-naive, holt-winters, gbm, "
        "or none (react to the last minutes only)",
    )
    demo.add_argument(
        "--jobs",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="add a backlog of N queued low-priority training jobs (0)",
    )
    demo.add_argument(
        "--scenario",
        choices=["default", "day-night", "llm-ttft"],
        default="default",
        help="default: three services on a tight pool; day-night: two diurnal services (the "
        "first driven by --trace if given) on a pool that training jobs get at night; "
        "llm-ttft: two vLLM twins, one with a TTFT SLO, one end to end",
    )

    demo.add_argument(
        "--restart-every",
        type=_duration,
        metavar="DURATION",
        help="recreate the controller this often (e.g. 2h, 20m), as a rollout or crash would; "
        "it goes on from its saved memory (faults B5)",
    )
    demo.add_argument(
        "--cold-restarts",
        action="store_true",
        help="with --restart-every: each restart forgets the controller's memory",
    )

    _add_soak_parser(sub)
    sub.add_parser(
        "forecast-eval",
        help="rolling-origin evaluation of the forecast models on a trace "
        "(sloscale forecast-eval --help)",
        add_help=False,
    )
    _add_run_parser(sub)
    _add_agent_parser(sub)
    for name, text in (
        (
            "bench",
            "sloscale against HPA, Knative, static and the oracle on a trace (--suite: every "
            "trace x seed x regime against the searched HPAs)",
        ),
        ("loadtest", "locust, Prometheus, an emulated GPU service and the loop, end to end"),
        ("validate", "lint SLO annotations in manifests offline (sloscale validate --help)"),
        ("dashboards", "write the Grafana dashboards (sloscale dashboards --help)"),
        ("rules", "Prometheus SLO recording and burn-rate alert rules (sloscale rules --help)"),
    ):
        sub.add_parser(name, help=text, add_help=False)
    sub.add_parser("version", help="print the version")
    return p


def _add_soak_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    soak = sub.add_parser(
        "soak",
        help="the real loop on the simulator for days with faults injected at the ports; "
        "checks invariants every tick and compares with the fault-free run (exit 1: violation)",
    )
    soak.add_argument("--days", type=positive_float, default=7.0, help="simulated days (7)")
    soak.add_argument("--seed", type=non_negative_int, default=1)
    soak.add_argument("--json", type=Path, dest="json_out", help="write the results as JSON")
    soak.add_argument(
        "--classes",
        default="all",
        metavar="LIST",
        help="comma-separated fault classes to inject: all (default), none, or among "
        "prometheus-outage, partial-scrape, nan-stale, watch-failure, conflict-409, api-5xx, "
        "throttled-429, slow-api, failed-rollout, restart, leader-change",
    )
    soak.add_argument(
        "--min-per-class",
        type=non_negative_int,
        default=10,
        metavar="N",
        help="at least N faults of each class (10); 3 a day of each on longer soaks",
    )
    soak.add_argument(
        "--restart-every",
        type=_duration,
        metavar="DURATION",
        help="also restart the controller this often (e.g. 2h), from its saved memory",
    )
    soak.add_argument("--quiet", action="store_true", help="no progress lines")


def _soak_command(args: argparse.Namespace) -> int:
    from sloscale.soak.command import SoakOptions, run_soak
    from sloscale.soak.faults import parse_classes

    try:
        classes = parse_classes([c.strip() for c in args.classes.split(",") if c.strip()])
    except ValueError as e:
        print(error_line("soak", e), file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.verbose:  # every injected fault is logged by the loop: keep the report legible
        logging.getLogger("sloscale").setLevel(logging.CRITICAL)
    options = SoakOptions(
        days=args.days,
        seed=args.seed,
        classes=classes,
        min_per_class=args.min_per_class,
        restart_every_s=args.restart_every,
        json_out=args.json_out,
        progress=not args.quiet,
    )
    try:
        return run_soak(options)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run = sub.add_parser(
        "run", help="run the loop: Kubernetes (or the simulator) and a real Prometheus"
    )
    run.add_argument("--prometheus-url", required=True, help="e.g. http://127.0.0.1:9090")
    run.add_argument(
        "--cluster",
        choices=["kubernetes", "sim"],
        default="kubernetes",
        help="kubernetes (default: --kubeconfig, else in-cluster) or the embedded simulator",
    )
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, ~/.kube/config)")
    run.add_argument(
        "--namespaces",
        "--namespace",
        dest="namespaces",
        type=_namespaces,
        default=frozenset(),
        metavar="NS,...",
        help="read and write only in these namespaces, with namespaced requests that Roles "
        "there allow (deploy/overlays/namespaced); default: every namespace",
    )
    run.add_argument("--selector", help="only Deployments matching this label selector")
    run.add_argument(
        "--node-selector",
        metavar="SELECTOR",
        help="only Nodes matching this label selector are the GPU pool (e.g. the pool of "
        "--namespaces, whose pods are all it sees)",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="elect a leader on a Lease; followers decide in shadow mode and serve the API",
    )
    run.add_argument(
        "--state-configmap",
        default="sloscale-state",
        metavar="NAME",
        help="keep the controller's memory in this ConfigMap of its namespace, for a restart "
        "or a new leader to go on from (sloscale-state; '' keeps none; not with --dry-run)",
    )
    run.add_argument(
        "--slice-dialect",
        choices=["hami", "volcano", "kai", "mig"],
        default="hami",
        help="how slices are written when a Deployment does not say (hami)",
    )
    run.add_argument(
        "--critical-namespaces",
        type=_namespaces,
        default=frozenset(),
        metavar="NS,...",
        help="namespaces whose workloads may have a priority above high (critical); "
        "elsewhere it is capped to high with a warning (default: none)",
    )
    run.add_argument("--interval", type=positive_float, default=15.0, help="seconds per tick")
    run.add_argument("--window", type=positive_float, default=60.0, help="rate window, s (60)")
    run.add_argument("--query-timeout", type=positive_float, default=5.0, help="per query, s")
    labels = (
        "which labels of {what}'s series name the pod: chart (exported_namespace,exported_pod: "
        "{chart}, honor_labels false), honor (namespace,pod: honor_labels true) or NS_LABEL,"
        "POD_LABEL (default chart; each series still picks the preset that names a managed "
        "pod unless --no-gpu-label-detection; docs/metrics.md)"
    )
    run.add_argument(
        "--dcgm-labels",
        type=_pod_labels,
        default="chart",
        metavar="PRESET",
        help=labels.format(what="dcgm-exporter", chart="its Helm chart's ServiceMonitor"),
    )
    run.add_argument(
        "--hami-labels",
        type=_pod_labels,
        default="chart",
        metavar="PRESET",
        help=labels.format(what="HAMi >= 2.9", chart="the HAMi chart's ServiceMonitor"),
    )
    run.add_argument(
        "--gpu-label-detection",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read each GPU series with whichever preset names a managed pod (default on); "
        "off: only the configured labels",
    )
    run.add_argument("--bearer-token-file", type=Path, help="send this token to Prometheus")
    run.add_argument("--basic-auth-user", help="basic auth user (password: $PROMETHEUS_PASSWORD)")
    run.add_argument("--ca-file", type=Path, help="CA bundle for Prometheus' certificate")
    run.add_argument("--insecure-skip-verify", action="store_true", help="no TLS verification")
    run.add_argument("--dry-run", action="store_true", help="shadow mode: decide, apply nothing")
    run.add_argument("--serve", action=argparse.BooleanOptionalAction, default=True)
    run.add_argument("--host", default="127.0.0.1", help="API address (127.0.0.1)")
    run.add_argument("--port", type=port, default=8080, help="API port (8080; 0 = any free)")
    run.add_argument("--sim-metrics-port", type=port, default=0, help="sim /metrics port")
    run.add_argument("--seed", type=non_negative_int, default=1)
    run.add_argument("--duration", type=positive_float, help="stop after this many seconds")


def _add_agent_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    agent = sub.add_parser(
        "agent",
        help="GPU node exporter (NVML) with DCGM-compatible names",
        epilog="The Hostname label is $NODE_NAME, else the host name (as dcgm-exporter). "
        "Kubernetes: deploy/agent (docs/kubernetes.md).",
    )
    agent.add_argument("--host", default="0.0.0.0", help="listen address (0.0.0.0)")
    agent.add_argument("--port", type=port, default=9400, help="listen port (9400)")
    agent.add_argument("--proc-root", type=Path, default=Path("/proc"), help="host /proc")
    agent.add_argument(
        "--kubelet-url",
        default="https://127.0.0.1:10250/pods",
        help="kubelet pod list for pod names ('' to skip)",
    )
    agent.add_argument("--once", action="store_true", help="print one exposition and exit")


def run_options(args: argparse.Namespace) -> RunOptions:
    """``sloscale run``'s parsed arguments as ``RunOptions`` (the RBAC tests read a
    manifest's controller arguments through it)."""
    from actuators.prometheus.gpu import GpuLabels
    from sloscale.run import RunOptions

    password = os.environ.get("PROMETHEUS_PASSWORD", "")
    return RunOptions(
        prometheus_url=args.prometheus_url,
        cluster=args.cluster,
        interval_s=args.interval,
        window_s=args.window,
        query_timeout_s=args.query_timeout,
        bearer_token_file=args.bearer_token_file,
        basic_auth=(args.basic_auth_user, password) if args.basic_auth_user else None,
        ca_file=args.ca_file,
        insecure_skip_verify=args.insecure_skip_verify,
        dry_run=args.dry_run,
        serve=args.serve,
        host=args.host,
        port=args.port,
        sim_metrics_port=args.sim_metrics_port,
        seed=args.seed,
        duration_s=args.duration,
        kubeconfig=args.kubeconfig,
        namespaces=args.namespaces,
        selector=args.selector,
        node_selector=args.node_selector,
        leader_elect=args.leader_elect,
        state_configmap=args.state_configmap,
        slice_dialect=args.slice_dialect,
        critical_namespaces=args.critical_namespaces,
        gpu_labels=GpuLabels(args.dcgm_labels, args.hami_labels, args.gpu_label_detection),
    )


def _run_command(args: argparse.Namespace) -> int:
    from sloscale.run import RunError, run

    try:
        return run(run_options(args))
    except RunError as e:
        print(error_line("run", e), file=sys.stderr)
        return EXIT_BAD_INPUT


def _agent_command(args: argparse.Namespace) -> int:
    from actuators.nvml.agent import AgentOptions, run_agent

    options = AgentOptions(
        host=args.host,
        port=args.port,
        proc_root=args.proc_root,
        kubelet_url=args.kubelet_url or None,
        once=args.once,
    )
    return run_agent(options)


def _delegated(args: list[str]) -> int | None:
    """Subcommands with their own parsers (each also usable as a library function)."""
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "loadtest":
        try:
            from loadtests import main as loadtest
        except ImportError as e:  # locust and gevent come with the 'loadtest' extra
            print(
                error_line("loadtest", f"needs {e.name}: pip install 'sloscale[loadtest]'"),
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        return loadtest(rest)
    if command == "bench":
        from sloscale.bench import main as bench

        return bench(rest)
    if command == "validate":
        from sloscale.validate import main as validate

        return validate(rest)
    if command == "dashboards":
        from dashboards import main_dashboards

        return main_dashboards(rest)
    if command == "rules":
        from dashboards import main_rules

        if "--from-cluster" not in rest:
            return main_rules(rest)
        try:
            from actuators.kubernetes import build_cluster

            cluster = build_cluster(os.environ.get("KUBECONFIG"), None, None, dry_run=True)
        except Exception as e:  # no kubeconfig, unreachable API server: one line, exit 2
            print(error_line("rules", f"cannot reach the cluster: {e}"), file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            return main_rules(rest, cluster=cluster)
        finally:
            cluster.close()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["forecast-eval"]:
        # its own parser, shared with ``python -m forecasting.evaluation``
        from forecasting.evaluation import main as forecast_eval
        from sloscale.progress import progress_stream, step_reporter

        def progress(force: bool | None) -> Callable[[str, int, int], None] | None:
            return step_reporter(progress_stream(force), "origins")

        return forecast_eval(args_list[1:], progress)
    delegated = _delegated(args_list)
    if delegated is not None:
        return delegated
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except CliError as e:
        print(e, file=sys.stderr)
        return EXIT_BAD_INPUT
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    if args.command == "version":
        print(f"sloscale {__version__}")
        return 0
    if args.command == "demo":
        from sloscale.demo import DemoError, DemoOptions, run_demo

        options = DemoOptions(
            hours=args.hours,
            trace=args.trace,
            seed=args.seed,
            serve=args.serve,
            host=args.host,
            port=args.port,
            json_out=args.json_out,
            interval_s=args.interval,
            progress=not args.quiet,
            forecast=args.forecast,
            jobs=args.jobs,
            scenario=args.scenario,
            restart_every_s=args.restart_every,
            cold_restarts=args.cold_restarts,
            serve_after=args.serve_after,
        )
        try:
            return run_demo(options)
        except DemoError as e:
            print(error_line("demo", e), file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    if args.command == "soak":
        return _soak_command(args)
    if args.command == "run":
        return _run_command(args)
    if args.command == "agent":
        return _agent_command(args)
    return EXIT_BAD_INPUT  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
