"""Merge patches (RFC 7386, strategic) and label selectors, as the API server applies them."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tests.k8s.fakeapi.kinds import ApiFailureError

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = json_merge_patch(result.get(k), v)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch for the list merge keys of the core types used here."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            if k.startswith("$setElementOrder/"):
                continue
            raise ApiFailureError(415, "UnsupportedMediaType", f"directive {k} is not supported")
        if v is None:
            result.pop(k, None)
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(result.get(k), list):
            result[k] = _merge_list(result[k], v, MERGE_KEYS[k])
        elif isinstance(v, list) and k in MERGE_KEYS:
            result[k] = [strategic_merge_patch(None, i) for i in v if i.get("$patch") != "delete"]
        else:
            result[k] = strategic_merge_patch(result.get(k), v)
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    out = [copy.deepcopy(i) for i in current]
    for item in patch:
        match = next((i for i, o in enumerate(out) if o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if match is not None:
                out.pop(match)
        elif match is not None:
            out[match] = strategic_merge_patch(out[match], item)
        else:
            out.append(strategic_merge_patch(None, item))
    return out


_TERM = re.compile(
    r"\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=|\s+in\s+|\s+notin\s+)\s*(\([^)]*\)|[\w./-]*))?\s*"
)


def label_selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """The label selector syntax of list/watch ``labelSelector``."""
    for term in _split_terms(selector):
        m = _TERM.fullmatch(term)
        if m is None:
            raise ApiFailureError(400, "BadRequest", f"unable to parse requirement: {term!r}")
        neg, key, op, value = m.groups()
        op = (op or "").strip()
        if not op:
            if (key in labels) == bool(neg):
                return False
        elif op in ("=", "=="):
            if labels.get(key) != value:
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        else:
            values = {v.strip() for v in value.strip("()").split(",")}
            if (op == "in") != (labels.get(key) in values):
                return False
    return True


def _split_terms(selector: str) -> Iterable[str]:
    depth, start = 0, 0
    for i, ch in enumerate(selector):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            yield selector[start:i]
            start = i + 1
    if selector[start:].strip():
        yield selector[start:]


def object_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelector`` (matchLabels + matchExpressions); empty selects everything."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


__all__ = [
    "MERGE_KEYS",
    "json_merge_patch",
    "label_selector_matches",
    "object_selector_matches",
    "strategic_merge_patch",
]
