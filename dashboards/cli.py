"""``sloscale dashboards`` and ``sloscale rules``: write the dashboards and the SLO rules.

Bad input (an unreadable file, a manifest that is not YAML, a bad SLO annotation, no SLO at
all) ends with one line per problem on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

import yaml

from controller.domain import ClusterSnapshot, SpecError
from controller.spec import format_errors, parse_slo_spec
from dashboards.catalog import all_dashboards
from dashboards.render import dashboard_json, yaml_documents
from dashboards.rules import SloRules, group_name, prometheus_rule, rule_file

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


def main_rules(
    argv: Sequence[str],
    *,
    cluster: SnapshotSource | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print (or write) the SLO rules for the Deployments in manifests or in the cluster.

    ``cluster`` is the ``Cluster`` port the CLI hands over for ``--from-cluster``; without
    one, ``--from-cluster`` is an input error.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _Parser(
        prog="sloscale rules",
        description="Prometheus recording rules and multi-window, multi-burn-rate alerts per SLO",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="Kubernetes manifests")
    parser.add_argument(
        "--from-cluster", action="store_true", help="read the annotated Deployments in the cluster"
    )
    parser.add_argument(
        "--format",
        choices=("prometheusrule", "rules"),
        default="prometheusrule",
        help="PrometheusRule objects (default) or a plain Prometheus rule file",
    )
    parser.add_argument(
        "--namespace", help="metadata.namespace of the PrometheusRules (default: none set)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="write <namespace>-<name>.prometheusrule.yaml and .rules.yaml per SLO into DIR",
    )
    try:
        args = parser.parse_args(list(argv))
        if bool(args.files) == bool(args.from_cluster):
            raise InputError("sloscale rules: give manifest FILEs or --from-cluster (not both)")
        slos = slos_from_cluster(cluster) if args.from_cluster else slos_from_files(args.files)
        if args.out is not None:
            write_rules(args.out, slos, args.namespace)
        elif args.format == "rules":
            out.write(yaml_documents([rule_file(slos)]))
        else:
            out.write(yaml_documents(prometheus_rule(s, args.namespace) for s in slos))
    except InputError as e:
        print(_error_line("sloscale rules", e), file=err)
        return EXIT_BAD_INPUT
    return 0


def write_rules(directory: Path, slos: Sequence[SloRules], namespace: str | None) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for slo in slos:
            stem = directory / group_name(slo).removeprefix("sloscale-slo-")
            Path(f"{stem}.prometheusrule.yaml").write_text(
                yaml_documents([prometheus_rule(slo, namespace)]), encoding="utf-8"
            )
            Path(f"{stem}.rules.yaml").write_text(
                yaml_documents([rule_file([slo])]), encoding="utf-8"
            )
    except OSError as e:
        raise InputError(f"sloscale rules: cannot write to {directory}: {e.strerror}") from None


def slos_from_cluster(cluster: SnapshotSource | None) -> list[SloRules]:
    if cluster is None:
        raise InputError(
            "sloscale rules: --from-cluster needs the Kubernetes adapter, which this build "
            "does not have yet; pass the Deployments' manifests as FILEs instead"
        )
    try:
        snapshot = cluster.snapshot()
    except Exception as e:  # a cluster read is I/O: report it, do not trace back
        raise InputError(f"sloscale rules: cannot read the cluster: {e}") from None
    return slos_from_annotations((d.ref.key, d.annotations) for d in snapshot.deployments)


def slos_from_files(files: Sequence[Path]) -> list[SloRules]:
    found: list[tuple[str, Mapping[str, str]]] = []
    for path in files:
        found.extend(_deployments_in(path))
    slos = slos_from_annotations(found)
    if not slos:
        raise InputError(
            'sloscale rules: no Deployment with sloscale.io/enabled: "true" in '
            + ", ".join(str(p) for p in files)
        )
    return slos


def slos_from_annotations(
    deployments: Iterator[tuple[str, Mapping[str, str]]] | Sequence[tuple[str, Mapping[str, str]]],
) -> list[SloRules]:
    """Parse each Deployment's annotations; every bad one is an error (all are reported)."""
    slos: list[SloRules] = []
    errors: list[SpecError] = []
    for key, given in deployments:
        parsed = parse_slo_spec(key, given)
        errors.extend(parsed.errors)
        if parsed.spec is not None:
            slos.append(SloRules(key, parsed.spec.objective_ratio, parsed.spec.window_s))
    if errors:
        raise InputError(format_errors(errors))
    return sorted(slos, key=lambda s: s.workload)


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
