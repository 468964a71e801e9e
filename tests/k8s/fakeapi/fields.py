"""Field management, as the API server keeps it in ``metadata.managedFields``.

An entry is a manager, an operation (``Apply`` or ``Update``) and a subresource (``""``, or
``scale``), and owns a set of fields, written as ``fieldsV1``: ``f:<name>`` for a map key,
``k:{"name":"..."}`` for a list item named by its merge key (``patches.MERGE_KEYS``), whose
``.`` is the item itself; lists without a merge key are atomic (owned whole). A field is a
path to a leaf: a scalar, an empty map, an atomic list, or a list item's ``.``.

- An update (POST, PUT, a merge or strategic patch, a write of ``scale``) gives its manager
  the fields whose value it changed and takes them from every other entry; the fields it
  removed leave every entry.
- An apply (``application/apply-patch+yaml``) names the fields its manager owns from now on,
  exactly. A field it sets to another value that another entry owns is a conflict: a ``409``
  naming each field and manager, unless ``force``, which takes the field from them. One set to
  the value it has is shared. A field the manager applied last time and leaves out now is
  removed from the object, unless another entry owns it (or, for a list item, anything in it).

Not kept: the ``time`` of an entry as the server sets it per change (here: the entry's last
write), ``status`` (the fake has no status subresource over HTTP), and ``null`` in an apply
configuration (the fake refuses it rather than guess).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tests.k8s.fakeapi.kinds import ApiFailureError, JsonObj, Kind
from tests.k8s.fakeapi.patches import MERGE_KEYS

Path = tuple[str, ...]
EntryKey = tuple[str, str, str]  # manager, operation, subresource

SERVER_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
"""Metadata the server sets or that names the object: never owned."""

_MISSING = object()


def leaves(obj: Mapping[str, Any]) -> set[Path]:
    """The fields an object (or an apply configuration) sets."""
    out: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata" and isinstance(value, Mapping):
            for mkey, mvalue in value.items():
                if mkey not in SERVER_METADATA:
                    _walk(mvalue, ("f:metadata", f"f:{mkey}"), mkey, out)
            continue
        _walk(value, (f"f:{key}",), key, out)
    return out


def _keyed(key: str, value: Any) -> str | None:
    """The merge key of a list under ``key``, when every item carries it."""
    merge_key = MERGE_KEYS.get(key)
    if merge_key is None or not isinstance(value, list) or not value:
        return None
    ok = all(isinstance(i, Mapping) and merge_key in i for i in value)
    return merge_key if ok else None


def _item(merge_key: str, value: Any) -> str:
    return "k:" + json.dumps({merge_key: value}, separators=(",", ":"))


def _walk(value: Any, path: Path, key: str, out: set[Path]) -> None:
    merge_key = _keyed(key, value)
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _walk(v, (*path, f"f:{k}"), k, out)
    elif merge_key is not None:
        for item in value:
            item_path = (*path, _item(merge_key, item[merge_key]))
            out.add((*item_path, "."))
            for k, v in item.items():
                _walk(v, (*item_path, f"f:{k}"), k, out)
    else:
        out.add(path)


def _step(node: Any, element: str) -> Any:
    if element.startswith("f:") and isinstance(node, Mapping):
        return node.get(element[2:], _MISSING)
    if element.startswith("k:") and isinstance(node, list):
        ((k, v),) = json.loads(element[2:]).items()
        return next((i for i in node if isinstance(i, Mapping) and i.get(k) == v), _MISSING)
    return _MISSING


def value_at(obj: Any, path: Path) -> Any:
    """The value at ``path`` (a list item for ``.``), or ``_MISSING``."""
    node = obj
    for element in path:
        if element == ".":
            return node
        node = _step(node, element)
        if node is _MISSING:
            return _MISSING
    return node


def changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> set[Path]:
    """The fields of ``new`` that ``old`` did not have, or had with another value (a list
    item's ``.`` changes only when the item appears)."""
    if old is None:
        return leaves(new)
    before = leaves(old)
    return {
        p
        for p in leaves(new)
        if p not in before or (p[-1] != "." and value_at(old, p) != value_at(new, p))
    }


def _remove(obj: JsonObj, path: Path) -> None:
    """Remove the field at ``path`` (a list item for ``.``); nothing if it is not there."""
    parent: Any = obj
    target = path[:-1] if path[-1] == "." else path
    for element in target[:-1]:
        parent = _step(parent, element)
        if parent is _MISSING:
            return
    last = target[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        item = _step(parent, last)
        if item is not _MISSING:
            parent.remove(item)


# ---- entries -------------------------------------------------------------------------------


def fields_v1(paths: Iterable[Path]) -> JsonObj:
    root: JsonObj = {}
    for p in sorted(paths):
        node = root
        for element in p:
            node = node.setdefault(element, {})
    return root


def paths_of(fields: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for element, sub in fields.items():
        if isinstance(sub, Mapping) and sub:
            out |= paths_of(sub, (*prefix, element))
        else:
            out.add((*prefix, element))
    return out


def entries_of(obj: Mapping[str, Any] | None) -> dict[EntryKey, set[Path]]:
    out: dict[EntryKey, set[Path]] = {}
    for e in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        key = (e["manager"], e["operation"], e.get("subresource", ""))
        out[key] = paths_of(e.get("fieldsV1") or {})
    return out


def set_entries(
    obj: JsonObj,
    kind: Kind,
    entries: Mapping[EntryKey, set[Path]],
    previous: Mapping[str, Any] | None,
    touched: EntryKey,
) -> None:
    """Write ``entries`` into ``obj``'s ``managedFields`` (empty ones dropped); the entry
    ``touched`` is stamped now, the others keep their time."""
    times = {
        (e["manager"], e["operation"], e.get("subresource", "")): e.get("time")
        for e in ((previous or {}).get("metadata") or {}).get("managedFields") or []
    }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for key, paths in entries.items():
        if not paths:
            continue
        manager, operation, subresource = key
        entry: JsonObj = {
            "manager": manager,
            "operation": operation,
            "apiVersion": kind.api_version,
            "time": now if key == touched else times.get(key, now),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(paths),
        }
        if subresource:
            entry["subresource"] = subresource
        out.append(entry)
    meta = obj.setdefault("metadata", {})
    if out:
        meta["managedFields"] = out
    else:
        meta.pop("managedFields", None)


def owners(obj: Mapping[str, Any], path: Path) -> list[str]:
    """The managers of the field at ``path`` (tests read ownership with it)."""
    return sorted({k[0] for k, paths in entries_of(obj).items() if path in paths})


def owned_by(obj: Mapping[str, Any], manager: str) -> set[Path]:
    """Every field ``manager`` owns, whatever the operation and subresource."""
    return {p for k, paths in entries_of(obj).items() if k[0] == manager for p in paths}


# ---- operations ----------------------------------------------------------------------------


def record_update(
    kind: Kind,
    old: Mapping[str, Any] | None,
    new: JsonObj,
    manager: str,
    subresource: str = "",
) -> None:
    """Set ``new``'s managedFields after an update of ``old`` by ``manager``."""
    entries = entries_of(old)
    moved = changed(old, new)
    gone = leaves(old) - leaves(new) if old is not None else set()
    for paths in entries.values():
        paths.difference_update(moved | gone)
    key = (manager, "Update", subresource)
    entries.setdefault(key, set()).update(moved)
    set_entries(new, kind, entries, old, key)


def apply(
    kind: Kind, live: Mapping[str, Any], config: Mapping[str, Any], manager: str, force: bool
) -> JsonObj:
    """The object after ``manager`` applies ``config`` to ``live``, its managedFields set."""
    if _has_null(config):
        raise ApiFailureError(
            400, "BadRequest", "null in an apply configuration: not supported by the fake"
        )
    entries = entries_of(live)
    me: EntryKey = (manager, "Apply", "")
    applied = leaves(config)
    merged: JsonObj = _merge(copy.deepcopy(dict(live)), config)
    conflicts = [
        (p, key)
        for p in sorted(applied)
        if p[-1] != "." and value_at(live, p) != value_at(merged, p)
        for key, paths in entries.items()
        if key != me and p in paths
    ]
    if conflicts and not force:
        raise _conflict(kind, live, conflicts)
    for p, key in conflicts:
        entries[key].discard(p)
    previous = entries.get(me, set())
    entries[me] = applied
    kept = {p for key, paths in entries.items() if key != me for p in paths}
    for p in sorted(previous - applied, key=len, reverse=True):
        if not _still_owned(p, kept | applied):
            _remove(merged, p)
    set_entries(merged, kind, entries, live, me)
    return merged


def _still_owned(path: Path, owned: set[Path]) -> bool:
    if path in owned:
        return True
    if path[-1] == ".":  # an item stays while anything in it is owned
        item = path[:-1]
        return any(p[: len(item)] == item for p in owned)
    if len(path) >= 2 and path[-2].startswith("k:"):  # its merge key goes with the item
        ((k, _),) = json.loads(path[-2][2:]).items()
        return path[-1] == f"f:{k}" and _still_owned((*path[:-1], "."), owned)
    return False


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _merge(target: Any, config: Any, key: str = "") -> Any:
    """``config`` merged into ``target``: maps by key, keyed lists by item, the rest replaced."""
    if isinstance(config, Mapping) and isinstance(target, dict):
        for k, v in config.items():
            target[k] = _merge(target.get(k), v, k)
        return target
    merge_key = _keyed(key, config)
    if merge_key is not None and isinstance(target, list):
        out = list(target)
        for item in config:
            at = next((i for i, o in enumerate(out) if o.get(merge_key) == item[merge_key]), None)
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = _merge(out[at], item)
        return out
    return copy.deepcopy(config)


def describe(path: Path) -> str:
    """A field as the API server names it in a conflict: ``.spec.template.spec.containers
    [name="server"].resources.limits.nvidia.com/gpucores``."""
    text = ""
    for element in path:
        if element.startswith("f:"):
            text += "." + element[2:]
        elif element.startswith("k:"):
            ((k, v),) = json.loads(element[2:]).items()
            text += f"[{k}={json.dumps(v)}]"
    return text


def _conflict(
    kind: Kind, live: Mapping[str, Any], conflicts: list[tuple[Path, EntryKey]]
) -> ApiFailureError:
    name = (live.get("metadata") or {}).get("name", "")
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{key[0]}"'
            + (" using " + kind.api_version if key[1] == "Update" else ""),
            "field": describe(p),
        }
        for p, key in conflicts
    ]
    listed = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
    plural = "" if len(causes) == 1 else "s"
    return ApiFailureError(
        409,
        "Conflict",
        f"Apply failed with {len(causes)} conflict{plural}:\n{listed}",
        {"name": name, "group": kind.group, "kind": kind.plural, "causes": causes},
    )


__all__ = [
    "apply",
    "changed",
    "describe",
    "entries_of",
    "fields_v1",
    "leaves",
    "owned_by",
    "owners",
    "paths_of",
    "record_update",
    "value_at",
]
