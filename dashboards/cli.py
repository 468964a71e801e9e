"""``sloscale dashboards`` and ``sloscale rules``: write the dashboards and the SLO rules.

Bad input (an unreadable file, a manifest that is not YAML, a bad SLO annotation, no SLO at
all) ends with one line per problem on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import yaml

from controller.domain import ClusterSnapshot, SpecError
from controller.spec import format_errors, parse_slo_spec
from dashboards.catalog import all_dashboards
from dashboards.pyrra import pyrra_note, pyrra_supports, pyrra_warnings, service_level_objective
from dashboards.render import dashboard_json, yaml_documents
from dashboards.rules import (
    CONTROLLER_GROUP,
    WINDOW_CHOICES,
    SloRules,
    controller_prometheus_rule,
    group_name,
    prometheus_rule,
    resolve_windows,
    rule_file,
)
from dashboards.sli import SLI_SOURCES, SliError, sli_for, sli_name
from dashboards.sloth import prometheus_service_level, slo_period_note, sloth_spec, sloth_supports

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """A user error, printed as one line (or one per annotation error) and exit 2."""


class SnapshotSource(Protocol):
    """What ``--from-cluster`` needs of a ``Cluster`` port: its snapshot."""

    def snapshot(self) -> ClusterSnapshot: ...


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")


def _error_line(prog: str, e: InputError) -> str:
    """``sloscale <command>: error: <message>``, as every command writes its errors."""
    text = str(e)
    for prefix in (f"{prog}: error: ", f"{prog}: "):
        text = text.removeprefix(prefix)
    return f"{prog}: error: {text}"


# --------------------------------------------------------------------------------------------
# sloscale dashboards --out DIR
# --------------------------------------------------------------------------------------------


def main_dashboards(argv: Sequence[str], *, err: TextIO | None = None) -> int:
    """Write every dashboard as ``DIR/<name>.json``; return the exit code."""
    err = err or sys.stderr
    parser = _Parser(prog="sloscale dashboards", description="write the Grafana dashboards")
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    try:
        args = parser.parse_args(list(argv))
        out: Path = args.out
        try:
            out.mkdir(parents=True, exist_ok=True)
            for name, dashboard in all_dashboards().items():
                (out / f"{name}.json").write_text(dashboard_json(dashboard), encoding="utf-8")
        except OSError as e:
            raise InputError(f"sloscale dashboards: cannot write to {out}: {e.strerror}") from None
    except InputError as e:
        print(_error_line("sloscale dashboards", e), file=err)
        return EXIT_BAD_INPUT
    for name in all_dashboards():
        print(out / f"{name}.json", file=err)
    return 0


# --------------------------------------------------------------------------------------------
# sloscale rules [FILE... | --from-cluster]
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """How ``sloscale rules`` reads each SLO: where its SLI comes from, which bucket bounds
    its histogram has (``None``: the engine's known defaults) and which windows alert."""

    sli: str = "histogram"
    buckets_s: tuple[float, ...] | None = None
    windows: str = "auto"


FORMATS = ("prometheusrule", "rules", "sloth", "sloth-k8s", "pyrra")


def main_rules(
    argv: Sequence[str],
    *,
    cluster: SnapshotSource | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print (or write) the SLO rules for the Deployments in manifests or in the cluster.

    ``cluster`` is the ``Cluster`` port the CLI hands over for ``--from-cluster``; without
    one, ``--from-cluster`` is an input error. Warnings (an SLI read at a bucket bound below
    the target, a profile without a histogram) go to ``err`` as one line each, exit 0.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _Parser(
        prog="sloscale rules",
        description="Prometheus recording rules and multi-window, multi-burn-rate alerts per SLO",
    )
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="Kubernetes manifests, or directories (every *.yaml and *.yml under them)",
    )
    parser.add_argument(
        "--from-cluster", action="store_true", help="read the annotated Deployments in the cluster"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="prometheusrule",
        help="PrometheusRule objects (default), a plain Prometheus rule file, Sloth "
        "prometheus/v1 specs (sloth), Sloth PrometheusServiceLevel objects (sloth-k8s) or "
        "Pyrra ServiceLevelObjectives (pyrra)",
    )
    parser.add_argument(
        "--windows",
        choices=WINDOW_CHOICES,
        default="auto",
        help="burn-rate windows: Sloth's (5m 30m 1h 2h 6h 1d 3d), Pyrra's scaled from the SLO "
        "window, or auto (default): Sloth's for 28- and 30-day SLOs, Pyrra's otherwise",
    )
    parser.add_argument(
        "--sli",
        choices=SLI_SOURCES,
        default="histogram",
        help="read the SLI from each workload's latency histogram (default) or from the "
        "sloscale controller's counters",
    )
    parser.add_argument(
        "--buckets",
        metavar="S,S,...",
        help="the histograms' bucket bounds in seconds (default: the engine's known defaults)",
    )
    parser.add_argument(
        "--no-controller-alerts",
        action="store_true",
        help=f"leave out the controller's own alerts ({CONTROLLER_GROUP})",
    )
    parser.add_argument(
        "--namespace", help="metadata.namespace of the PrometheusRules (default: none set)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write <namespace>-<name>.prometheusrule.yaml, .rules.yaml, .sloth.yaml and "
        ".pyrra.yaml per SLO (and the controller's rules) into DIR",
    )
    try:
        args = parser.parse_args(list(argv))
        if bool(args.files) == bool(args.from_cluster):
            raise InputError("sloscale rules: give manifest FILEs or --from-cluster (not both)")
        options = RuleOptions(args.sli, _buckets(args.buckets), args.windows)
        slos = (
            slos_from_cluster(cluster, options)
            if args.from_cluster
            else slos_from_files(args.files, options)
        )
        controller = not args.no_controller_alerts
        warnings = [w for s in slos for w in s.warnings]
        if args.out is not None:
            write_rules(args.out, slos, args.namespace, controller)
        elif args.format == "rules":
            out.write(yaml_documents([rule_file(slos, controller)]))
        elif args.format in ("sloth", "sloth-k8s"):
            out.write(sloth_documents(slos, k8s=args.format == "sloth-k8s"))
        elif args.format == "pyrra":
            out.write(pyrra_documents(slos))
        else:
            objects = [prometheus_rule(s, args.namespace) for s in slos]
            if controller:
                objects.append(controller_prometheus_rule(args.namespace))
            out.write(yaml_documents(objects))
        if args.format.startswith("sloth") or args.out is not None:
            warnings += [slo_period_note(s) for s in slos if not sloth_supports(s)]
        if args.format == "pyrra" or args.out is not None:
            warnings += [w for s in slos for w in pyrra_warnings(s)]
        warnings += _sloth_windows_warnings(slos, args.windows)
    except InputError as e:
        print(_error_line("sloscale rules", e), file=err)
        return EXIT_BAD_INPUT
    for warning in warnings:
        print(f"sloscale rules: warning: {warning}", file=err)
    return 0


def _sloth_windows_warnings(slos: Sequence[SloRules], windows: str) -> list[str]:
    """``--windows sloth`` on a window Sloth has none for: burn rates may fall under 1."""
    if windows != "sloth":
        return []
    return [
        f"{s.workload}: Sloth has alert windows for 28- and 30-day SLOs only; its budget "
        f"shares over a {s.window_s / 86400:g}-day window give burn rates "
        + ", ".join(f"{a.burn_rate:g}" for a in s.alerts)
        for s in slos
        if not sloth_supports(s)
    ]


def _buckets(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        bounds = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(
            f"sloscale rules: --buckets {text!r}: not a comma-separated list of seconds"
        ) from None
    if not bounds or any(not b > 0 for b in bounds):
        raise InputError(f"sloscale rules: --buckets {text!r}: give positive bounds in seconds")
    return bounds


def sloth_documents(slos: Sequence[SloRules], *, k8s: bool = False) -> str:
    """One Sloth document per SLO, each after a comment that says how to run Sloth on it."""
    return "---\n".join(
        f"# {slo_period_note(s)}\n"
        + yaml_documents([prometheus_service_level(s) if k8s else sloth_spec(s)])
        for s in slos
    )


def pyrra_documents(slos: Sequence[SloRules]) -> str:
    """One Pyrra ``ServiceLevelObjective`` per SLO that Pyrra can read (``pyrra_supports``),
    each after a comment line; none at all is an input error."""
    supported = [s for s in slos if pyrra_supports(s)]
    if not supported:
        raise InputError(
            "sloscale rules: --format pyrra: Pyrra's latency indicator reads a histogram, and "
            "no SLO here has one (" + ", ".join(s.workload for s in slos) + ")"
        )
    return "---\n".join(
        f"# {pyrra_note(s)}\n" + yaml_documents([service_level_objective(s)]) for s in supported
    )


def write_rules(
    directory: Path, slos: Sequence[SloRules], namespace: str | None, controller: bool = True
) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for slo in slos:
            stem = directory / group_name(slo).removeprefix("sloscale-slo-")
            Path(f"{stem}.prometheusrule.yaml").write_text(
                yaml_documents([prometheus_rule(slo, namespace)]), encoding="utf-8"
            )
            Path(f"{stem}.rules.yaml").write_text(
                yaml_documents([rule_file([slo], controller=False)]), encoding="utf-8"
            )
            Path(f"{stem}.sloth.yaml").write_text(sloth_documents([slo]), encoding="utf-8")
            if pyrra_supports(slo):
                Path(f"{stem}.pyrra.yaml").write_text(pyrra_documents([slo]), encoding="utf-8")
        if controller:
            stem = directory / CONTROLLER_GROUP
            Path(f"{stem}.prometheusrule.yaml").write_text(
                yaml_documents([controller_prometheus_rule(namespace)]), encoding="utf-8"
            )
            Path(f"{stem}.rules.yaml").write_text(
                yaml_documents([rule_file([], controller=True)]), encoding="utf-8"
            )
    except OSError as e:
        raise InputError(f"sloscale rules: cannot write to {directory}: {e.strerror}") from None


def slos_from_cluster(
    cluster: SnapshotSource | None, options: RuleOptions = RuleOptions()
) -> list[SloRules]:
    if cluster is None:
        raise InputError(
            "sloscale rules: --from-cluster needs the Kubernetes adapter, which this build "
            "does not have yet; pass the Deployments' manifests as FILEs instead"
        )
    try:
        snapshot = cluster.snapshot()
    except Exception as e:  # a cluster read is I/O: report it, do not trace back
        raise InputError(f"sloscale rules: cannot read the cluster: {e}") from None
    return slos_from_annotations(
        ((d.ref.key, d.annotations) for d in snapshot.deployments), options
    )


def slos_from_files(files: Sequence[Path], options: RuleOptions = RuleOptions()) -> list[SloRules]:
    found: list[tuple[str, Mapping[str, str]]] = []
    for path in _manifests(files):
        found.extend(_deployments_in(path))
    slos = slos_from_annotations(found, options)
    if not slos:
        raise InputError(
            'sloscale rules: no Deployment with sloscale.io/enabled: "true" in '
            + ", ".join(str(p) for p in files)
        )
    return slos


def slos_from_annotations(
    deployments: Iterator[tuple[str, Mapping[str, str]]] | Sequence[tuple[str, Mapping[str, str]]],
    options: RuleOptions = RuleOptions(),
) -> list[SloRules]:
    """Parse each Deployment's annotations and find its SLI; every bad annotation and every
    SLI no bucket can serve is an error (all are reported)."""
    slos: list[SloRules] = []
    errors: list[SpecError] = []
    sli_errors: list[str] = []
    for key, given in deployments:
        parsed = parse_slo_spec(key, given)
        errors.extend(parsed.errors)
        spec = parsed.spec
        if spec is None:
            continue
        try:
            sli, warnings = sli_for(key, spec, options.sli, options.buckets_s)
        except SliError as e:
            sli_errors.append(str(e))
            continue
        slos.append(
            SloRules(
                key,
                spec.objective_ratio,
                spec.window_s,
                sli=sli,
                windows=resolve_windows(options.windows, spec.window_s),
                slo_name=sli_name(spec.latency_metric),
                warnings=warnings,
            )
        )
    if errors or sli_errors:
        raise InputError(
            "\n".join(filter(None, [format_errors(errors) if errors else "", *sli_errors]))
        )
    return sorted(slos, key=lambda s: s.workload)


def _manifests(files: Sequence[Path]) -> Iterator[Path]:
    """Each path as it is, but a directory: every ``*.yaml``/``*.yml`` file under it, sorted,
    as ``sloscale validate`` reads one (a directory used to be "cannot read: Is a directory")."""
    for path in files:
        if not path.is_dir():
            yield path
            continue
        found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not found:
            raise InputError(f"sloscale rules: {path}: no *.yaml or *.yml files in it")
        yield from found


def _deployments_in(path: Path) -> Iterator[tuple[str, Mapping[str, str]]]:
    """``(namespace/name, annotations)`` of every Deployment in a manifest (``List`` too)."""
    try:
        text = path.read_text(encoding="utf-8")
        documents = list(yaml.safe_load_all(text))
    except OSError as e:
        raise InputError(f"sloscale rules: cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"sloscale rules: {path}: not a text file") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InputError(f"sloscale rules: {path}: not valid YAML{line}") from None
    for doc in _objects(documents):
        if doc.get("kind") != "Deployment":
            continue
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise InputError(f"sloscale rules: {path}: a Deployment without metadata.name")
        annotations = meta.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise InputError(f"sloscale rules: {path}: {meta['name']}: annotations must be a map")
        bad = sorted(str(k) for k, v in annotations.items() if not isinstance(v, str))
        if bad:
            raise InputError(
                f"sloscale rules: {path}: {meta['name']}: annotation {bad[0]} must be a string "
                "(quote it, as Kubernetes requires)"
            )
        namespace = meta.get("namespace") or "default"
        yield f"{namespace}/{meta['name']}", {str(k): v for k, v in annotations.items()}


def _objects(documents: Sequence[Any]) -> Iterator[dict[str, Any]]:
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            yield from _objects(doc["items"])
        else:
            yield doc
