"""``sloscale validate FILE|DIR...``: lint ``sloscale.io/`` annotations in manifests, offline.

A directory is every ``*.yaml`` and ``*.yml`` file under it. The last line is a summary on
standard output (files and objects read, errors and warnings found, or ``ok``).

The same parser as the controller (``controller.spec``), so the same errors, one per line:
Deployments through ``parse_slo_spec`` (values only where opted in, unknown keys on any),
Jobs, CronJob job templates and bare Pods through ``parse_job_spec``. Multi-document YAML
and ``kind: List`` are read; ``-`` reads standard input.

The YAML is read as the API server would take it, never with a traceback: a mapping with a
duplicate key is refused (kubectl refuses it; YAML alone would keep the last value), so is
nesting deeper than any manifest needs; an object whose ``metadata`` or ``annotations`` is not
a mapping is an error, and so is an annotation value that is not a string (``true`` or ``5``
unquoted: the API server rejects those).

A latency target that a known default bucket set of the workload's engine cannot resolve
(vLLM 0.6.3's e2e histogram starts at 1 s: an 800 ms target; ``controller.buckets``) is a
``warning:`` line naming the version: the controller would read the SLI as a lower bound.

A priority above ``high`` outside the namespaces of ``--critical-namespaces`` (the
controller's flag, none by default) is capped as the controller caps it: a ``warning:`` line,
not an error.

A Deployment in the ``volcano`` or ``kai`` dialect whose pod template does not name that
dialect's scheduler (``schedulerName: volcano`` / ``kai-scheduler``) is an error, saying so
also when it asks for no GPU at all; a ``kai`` one without the ``kai.scheduler/queue`` label
is a warning (``actuators.dialects.SCHEDULERS``).

Another autoscaler on an opted-in ``auto`` Deployment, anywhere in the files given (an
``autoscaling/v2`` HPA or a KEDA ``ScaledObject`` whose ``scaleTargetRef`` names it, or an
``autoscaling.knative.dev/class`` annotation on it or its pod template) is an error naming
it: the controller would hold the workload (``ConflictingAutoscaler``). The same readers as
the Kubernetes adapter (``actuators.kubernetes.autoscalers``) and the same matching as the
loop (``controller.conflicts``).

Exit codes: 0 clean (warnings or not), 1 annotation errors or malformed objects, 2 a file that
cannot be read or parsed, or a directory with no manifests in it (nothing was validated).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Hashable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

from actuators.dialects import SCHEDULERS, read_slice
from actuators.kubernetes.autoscalers import HPA_KIND, SCALED_OBJECT_KIND, others
from controller.buckets import known_unresolved
from controller.conflicts import conflict_message, conflicts_by_workload
from controller.domain import (
    LatencyMetric,
    MetricsProfile,
    Mode,
    SliceDialect,
    SloSpec,
    SpecError,
)
from controller.spec import ANNOTATION_PREFIX, format_errors, parse_job_spec, parse_slo_spec
from sloscale.errors import error_line

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


class ManifestError(ValueError):
    """An object the API server would not accept as written, in one line."""


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing a mapping that repeats a key (as kubectl does)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` merges are allowed to be overridden
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class says so
                break
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load(text: str) -> list[Any]:
    """Every document of ``text``; ``ValueError`` in one line for YAML the API server refuses."""
    try:
        return list(yaml.load_all(text, Loader=_StrictLoader))  # a SafeLoader
    except RecursionError:
        raise ValueError("nested too deeply to be a manifest") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"{where}{e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ValueError(" ".join(str(e).split())) from None


def _objects(doc: Any) -> Iterator[Mapping[str, Any]]:
    """The objects of a document, ``kind: List`` items flattened (without recursion)."""
    pending = [doc]
    while pending:
        item = pending.pop(0)
        if item is None:
            continue
        if not isinstance(item, Mapping):
            raise ManifestError(f"not an object: {_what(item)}")
        if item.get("kind") == "List" or str(item.get("kind", "")).endswith("List"):
            items = item.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(
                    f"{item.get('kind')}: items must be a sequence, not {_what(items)}"
                )
            pending[:0] = items
        else:
            yield item


def _mapping(value: Any, where: str) -> Mapping[Any, Any]:
    """``value`` when a mapping, ``{}`` when absent; ``ManifestError`` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where} must be a mapping, not {_what(value)}")
    return value


def _annotations(meta: Mapping[Any, Any], key: str) -> tuple[dict[str, str], list[SpecError]]:
    """The object's annotations, and an error per one that is not a string (kept out)."""
    raw = _mapping(meta.get("annotations"), f"{key}: metadata.annotations")
    out: dict[str, str] = {}
    errors: list[SpecError] = []
    for k, v in raw.items():
        if not isinstance(k, str):
            errors.append(SpecError(key, _scalar(k), _scalar(v), "annotation keys must be strings"))
        elif not isinstance(v, str):
            message = f"annotation values must be strings, not a YAML {_yaml_type(v)}: quote it"
            errors.append(SpecError(key, k, _scalar(v), message))
        else:
            out[k] = v
    return out, errors


def _yaml_type(value: object) -> str:
    for types, name in _YAML_TYPES:
        if isinstance(value, types):
            return name
    return type(value).__name__


_YAML_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    (type(None), "null"),
    (Mapping, "mapping"),
    (list, "sequence"),
)


def _scalar(value: object) -> str:
    """A scalar as YAML wrote it (``true``, ``5``), shortened to fit a line; a collection as
    ``...`` (printing a deeply nested one could itself recurse too deep)."""
    if isinstance(value, Mapping | list):
        return "..."
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _what(value: object) -> str:
    """``a YAML integer (5)``: what a value is, for a message."""
    shown = "" if isinstance(value, Mapping | list) else f" ({_scalar(value)})"
    return f"a YAML {_yaml_type(value)}{shown}"


def check_object(obj: Mapping[str, Any], default_dialect: SliceDialect) -> tuple[SpecError, ...]:
    """Every annotation error of one object; purely computational.

    Raises:
        ManifestError: the object's metadata (or a CronJob's template) is not a mapping.
    """
    return check(obj, default_dialect, None)[0]


def check(
    obj: Mapping[str, Any], default_dialect: SliceDialect, critical_namespaces: Set[str] | None
) -> tuple[tuple[SpecError, ...], tuple[SpecError, ...]]:
    """The errors and the warnings of one object, as the controller would find them with
    ``critical_namespaces`` (``None``: every namespace may use ``critical``).

    Raises:
        ManifestError: the object's metadata (or a CronJob's template) is not a mapping.
    """
    kind = obj.get("kind")
    meta = _mapping(obj.get("metadata"), f"{kind or 'object'}: metadata")
    namespace = str(meta.get("namespace") or "default")
    key = f"{namespace}/{meta.get('name') or '?'}"
    cap = critical_namespaces is not None and namespace not in critical_namespaces
    if kind == "CronJob":
        spec = _mapping(obj.get("spec"), f"{key}: spec")
        template = _mapping(spec.get("jobTemplate"), f"{key}: spec.jobTemplate")
        meta = _mapping(template.get("metadata"), f"{key}: spec.jobTemplate.metadata")
    ann, errors = _annotations(meta, key)
    if kind == "Deployment":
        slo = parse_slo_spec(key, ann, default_dialect=default_dialect, cap_priority=cap)
        images = _images(obj)
        resolution = bucket_warnings(key, slo.spec, images) if slo.spec is not None else ()
        dialect = scheduler_problems(key, slo.spec, obj, default_dialect) if slo.spec else ((), ())
        return (*errors, *slo.errors, *dialect[0]), (*slo.warnings, *resolution, *dialect[1])
    if kind == "CronJob" or (
        kind in ("Job", "Pod") and any(k.startswith(ANNOTATION_PREFIX) for k in ann)
    ):
        job = parse_job_spec(key, ann, cap_priority=cap)
        return (*errors, *job.errors), job.warnings
    return tuple(errors), ()


def scheduler_problems(
    key: str, spec: SloSpec, obj: Mapping[str, Any], default_dialect: SliceDialect
) -> tuple[tuple[SpecError, ...], tuple[SpecError, ...]]:
    """The errors and warnings of a Deployment whose dialect needs its own scheduler: no or
    another ``schedulerName`` (an error), no queue where the scheduler requires one."""
    dialect = spec.slice_dialect or default_dialect
    needs = SCHEDULERS.get(dialect)
    if needs is None:
        return (), ()
    template = _mapping(_mapping(obj.get("spec"), f"{key}: spec").get("template"), "template")
    pod = _mapping(template.get("spec"), f"{key}: spec.template.spec")
    meta = _mapping(template.get("metadata"), f"{key}: spec.template.metadata")
    where = f"{ANNOTATION_PREFIX}slice-dialect"
    errors, warnings = [], []
    named = pod.get("schedulerName")
    if named != needs.scheduler_name:
        gpu = read_slice(pod, _mapping(meta.get("annotations"), "annotations"), 0) is not None
        what = "names no schedulerName" if named is None else f"names schedulerName {named!r}"
        if not gpu:
            what = f"asks for no GPU and {what}"
        message = (
            f"the pod template {what}: the {dialect.value} dialect's slices are honoured only "
            f"by schedulerName {needs.scheduler_name!r}; set it in spec.template.spec"
        )
        errors.append(SpecError(key, where, dialect.value, message))
    queue_at = meta.get("labels") if needs.queue_in_labels else meta.get("annotations")
    if needs.queue_required and not _mapping(queue_at, "queue").get(needs.queue_key):
        place = "label" if needs.queue_in_labels else "annotation"
        message = (
            f"the pod template has no {needs.queue_key} {place}: {needs.scheduler_name} "
            "schedules only pods of a queue"
        )
        warnings.append(SpecError(key, where, dialect.value, message))
    return tuple(errors), tuple(warnings)


_VLLM_TAG = re.compile(r"vllm[^:/]*:v?(\d+)\.(\d+)")
VLLM_V1_DEFAULT = (0, 8)
"""vLLM runs the V1 engine (and its finer e2e buckets) by default from v0.8.0."""


def _images(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The container images of a Deployment's pod template (none when malformed)."""
    template = (
        (obj.get("spec") or {}).get("template") if isinstance(obj.get("spec"), Mapping) else {}
    )
    pod = (template or {}).get("spec") if isinstance(template, Mapping) else {}
    containers = (pod or {}).get("containers") if isinstance(pod, Mapping) else []
    if not isinstance(containers, list):
        return ()
    return tuple(str(c["image"]) for c in containers if isinstance(c, Mapping) and c.get("image"))


_HISTOGRAM_OF = {LatencyMetric.E2E: "", LatencyMetric.TTFT: "TTFT ", LatencyMetric.TPOT: "TPOT "}


def _known_version(spec: SloSpec, images: Sequence[str]) -> str | None:
    """The bucket set a recognisable vLLM image tag pins (``None``: any may run)."""
    if spec.metrics_profile is not MetricsProfile.VLLM:
        return None
    for image in images:
        if m := _VLLM_TAG.search(image):
            v1 = (int(m[1]), int(m[2])) >= VLLM_V1_DEFAULT
            return "vLLM V1" if v1 else "vLLM V0 (v0.6.3)"
    return None


def bucket_warnings(key: str, spec: SloSpec, images: Sequence[str] = ()) -> tuple[SpecError, ...]:
    """A warning per known default bucket set of the workload's engine that cannot resolve
    its latency target (``controller.buckets``): the controller would read a lower bound.
    A vLLM image whose tag names its version narrows the sets to that version's."""
    version = _known_version(spec, images)
    found = known_unresolved(
        spec.metrics_profile, spec.latency_target_ms / 1000, spec.latency_metric
    )
    return tuple(
        SpecError(
            key,
            f"{ANNOTATION_PREFIX}latency-target-ms",
            f"{spec.latency_target_ms:g}",
            f"with {name} {_HISTOGRAM_OF[spec.latency_metric]}buckets, {gap.describe()}",
        )
        for name, gap in found
        if version is None or name == version
    )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sloscale validate", description="lint sloscale.io annotations in manifests"
    )
    parser.add_argument(
        "files",
        nargs="+",
        help="YAML/JSON manifests, directories (every *.yaml and *.yml under them) or '-' "
        "for stdin",
    )
    parser.add_argument(
        "--slice-dialect",
        type=SliceDialect,
        choices=list(SliceDialect),
        default=SliceDialect.HAMI,
        help="the controller's default dialect (hami)",
    )
    parser.add_argument(
        "--critical-namespaces",
        default="",
        metavar="NS,...",
        help="the controller's --critical-namespaces: where a priority above high is honoured "
        "(default: none; elsewhere a warning says it is capped)",
    )
    args = parser.parse_args(list(argv))
    critical = frozenset(ns.strip() for ns in args.critical_namespaces.split(",") if ns.strip())
    status = EXIT_OK
    tally = Tally()
    scalers = Autoscalers()
    for name in _expand(args.files, tally):
        tally.files += 1
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            docs = _load(text)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            # an OSError's own text is a repr ("[Errno 2] No such file or directory: 'x'"):
            # its strerror, as `rules` and `forecast-eval` say it
            why = e.strerror if isinstance(e, OSError) and e.strerror else e
            print(error_line("validate", f"{name}: cannot read: {why}"), file=sys.stderr)
            tally.unreadable += 1
            continue
        status = max(status, _check_docs(name, docs, args.slice_dialect, critical, tally, scalers))
    conflicts = scalers.conflicts()
    for line in conflicts:
        print(line.replace("\n", " "))
    tally.errors += len(conflicts)
    if conflicts:
        status = max(status, EXIT_INVALID)
    if tally.unreadable or tally.empty_dirs:
        status = EXIT_UNREADABLE
    print(tally.summary())
    return status


@dataclass
class Autoscalers:
    """Across every file: the opted-in ``auto`` Deployments with a valid spec (and the file
    of each), and the objects that may scale them besides sloscale."""

    managed: dict[str, str] = field(default_factory=dict)  # namespace/name -> file
    hpas: list[Mapping[str, Any]] = field(default_factory=list)
    scaled_objects: list[Mapping[str, Any]] = field(default_factory=list)
    deployments: list[Mapping[str, Any]] = field(default_factory=list)

    def add(self, name: str, obj: Mapping[str, Any], dialect: SliceDialect) -> None:
        """Note one object of file ``name`` (already checked: its metadata is a mapping)."""
        kind = obj.get("kind")
        if kind == HPA_KIND:
            self.hpas.append(obj)
        elif kind == SCALED_OBJECT_KIND:
            self.scaled_objects.append(obj)
        elif kind == "Deployment":
            self.deployments.append(obj)
            meta = _mapping(obj.get("metadata"), "metadata")
            key = f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"
            ann, errors = _annotations(meta, key)
            slo = parse_slo_spec(key, ann, default_dialect=dialect)
            if not errors and slo.spec is not None and slo.spec.mode is Mode.AUTO:
                self.managed[key] = name

    def conflicts(self) -> list[str]:
        """An error line per managed Deployment another autoscaler scales."""
        found = conflicts_by_workload(
            others(self.hpas, self.scaled_objects, self.deployments), self.managed
        )
        return [
            f"{self.managed[key]}: {key}: ConflictingAutoscaler: {conflict_message(o)}"
            for key, o in sorted(found.items())
        ]


@dataclass
class Tally:
    """What one ``validate`` run read and found, for its summary line."""

    files: int = 0
    unreadable: int = 0
    empty_dirs: list[str] = field(default_factory=list)
    """The directories given without a ``*.yaml``/``*.yml`` file under them."""
    objects: int = 0
    annotated: int = 0
    errors: int = 0
    warnings: int = 0

    def summary(self) -> str:
        """``sloscale validate: 3 files, 7 objects (2 with sloscale.io annotations): ok``."""
        read = f"{_count(self.files, 'file')}, {_count(self.objects, 'object')}"
        read += f" ({self.annotated} with {ANNOTATION_PREFIX} annotations)"
        found = []
        if self.errors:
            found.append(_count(self.errors, "error"))
        if self.warnings:
            found.append(_count(self.warnings, "warning"))
        if self.unreadable:
            found.append(f"{_count(self.unreadable, 'file')} unreadable")
        if self.empty_dirs:  # not files that could not be read: there were none
            found.append(f"no manifests in {', '.join(self.empty_dirs)}")
        return f"sloscale validate: {read}: {', '.join(found) or 'ok'}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _expand(names: Sequence[str], tally: Tally) -> Iterator[str]:
    """Each name as it is, but a directory: every ``*.yaml``/``*.yml`` file under it, sorted;
    a directory without any is an error (an empty glob validating 'ok' would mislead)."""
    for name in names:
        path = Path(name)
        if name == "-" or not path.is_dir():
            yield name
            continue
        found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not found:
            print(
                error_line("validate", f"{name}: no *.yaml or *.yml files in it"), file=sys.stderr
            )
            tally.empty_dirs.append(name)
        yield from (str(p) for p in found)


def _check_docs(
    name: str,
    docs: Sequence[Any],
    dialect: SliceDialect,
    critical: Set[str],
    tally: Tally | None = None,
    scalers: Autoscalers | None = None,
) -> int:
    """Print every error (and warning) of a file's documents, one line each; the exit status
    they make. ``tally`` counts the objects, errors and warnings; ``scalers`` gathers the
    autoscaling objects, checked across files at the end."""
    tally = tally if tally is not None else Tally()
    lines: list[str] = []
    warnings: list[str] = []
    for index, doc in enumerate(docs, start=1):
        try:
            for obj in _objects(doc):
                tally.objects += 1
                tally.annotated += _annotated(obj)
                try:
                    errors, warned = check(obj, dialect, critical)
                except ManifestError as e:
                    lines.append(f"document {index}: {e}")
                    continue
                if scalers is not None:
                    scalers.add(name, obj, dialect)
                lines += format_errors(errors).splitlines()
                warnings += format_errors(warned).splitlines()
        except ManifestError as e:
            lines.append(f"document {index}: {e}")
    for line in lines:
        print(f"{name}: {line}".replace("\n", " "))
    for line in warnings:
        print(f"{name}: warning: {line}".replace("\n", " "))
    tally.errors += len(lines)
    tally.warnings += len(warnings)
    return EXIT_INVALID if lines else EXIT_OK


def _annotated(obj: Mapping[str, Any]) -> bool:
    """Whether an object carries any ``sloscale.io/`` annotation (its own metadata's)."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return isinstance(annotations, Mapping) and any(
        str(k).startswith(ANNOTATION_PREFIX) for k in annotations
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
