"""``sloscale validate FILE...``: lint ``sloscale.io/`` annotations in manifests, offline.

The same parser as the controller (``controller.spec``), so the same errors, one per line:
Deployments through ``parse_slo_spec`` (only those that opted in), Jobs, CronJob job
templates and bare Pods through ``parse_job_spec``. Multi-document YAML and ``kind: List``
are read; ``-`` reads standard input. Exit codes: 0 clean, 1 annotation errors, 2 a file
that cannot be read or parsed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from controller.domain import SliceDialect, SpecError
from controller.spec import ANNOTATION_PREFIX, format_errors, parse_job_spec, parse_slo_spec

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def _objects(doc: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(doc, Mapping):
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
            for item in doc.get("items") or []:
                yield from _objects(item)
        else:
            yield doc


def _annotations(meta: Any) -> dict[str, str]:
    raw = (meta or {}).get("annotations") or {} if isinstance(meta, Mapping) else {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in raw.items()}


def check_object(obj: Mapping[str, Any], default_dialect: SliceDialect) -> tuple[SpecError, ...]:
    """Every annotation error of one object; purely computational."""
    meta = obj.get("metadata") or {}
    key = f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"
    kind = obj.get("kind")
    ann = _annotations(meta)
    if kind == "Deployment":
        return parse_slo_spec(key, ann, default_dialect=default_dialect).errors
    if kind == "CronJob":
        template = (obj.get("spec") or {}).get("jobTemplate") or {}
        return parse_job_spec(key, _annotations(template.get("metadata"))).errors
    if kind in ("Job", "Pod") and any(k.startswith(ANNOTATION_PREFIX) for k in ann):
        return parse_job_spec(key, ann).errors
    return ()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sloscale validate", description="lint sloscale.io annotations in manifests"
    )
    parser.add_argument("files", nargs="+", help="YAML/JSON manifests ('-' for stdin)")
    parser.add_argument(
        "--slice-dialect",
        type=SliceDialect,
        choices=list(SliceDialect),
        default=SliceDialect.HAMI,
        help="the controller's default dialect (hami)",
    )
    args = parser.parse_args(list(argv))
    status = EXIT_OK
    for name in args.files:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
            docs = list(yaml.safe_load_all(text))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            print(f"{name}: cannot read: {e}".replace("\n", " "), file=sys.stderr)
            status = EXIT_UNREADABLE
            continue
        for doc in docs:
            for obj in _objects(doc):
                errors = check_object(obj, args.slice_dialect)
                if errors:
                    print(f"{name}: {format_errors(errors)}".replace("\n", f"\n{name}: "))
                    status = max(status, EXIT_INVALID)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
