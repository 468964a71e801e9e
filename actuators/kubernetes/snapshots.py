"""The controller's saved memory (``controller.persist``) in ConfigMaps of its own.

``ConfigMapSnapshotStore`` implements the ``StateSnapshotStore`` port in the controller's
namespace, on a head ConfigMap (``sloscale-state`` by default; ``sloscale run
--state-configmap``) and, for a memory too large for one object, parts beside it. A restarted
controller, or a follower that becomes the leader, reads it and goes on from it
(``controller.keeper``).

**The format.** The document is JSON, gzip-compressed (about a tenth of its size: 1,000
workloads' memory is megabytes of JSON, and one ConfigMap holds at most 1 MiB):

- compressed, it fits in one object (``max_bytes``, 900 KiB): the head holds it,
  ``binaryData["state.json.gz"]``, and one write saves it;
- larger: it is cut into ``n`` parts of ``max_bytes``, at most ``max_parts`` (8: about 7 MiB
  compressed), kept in ConfigMaps ``<name>-a-0 .. <name>-a-7`` or ``<name>-b-0 .. <name>-b-7``
  (two sets); the head names the set and the part count. A fixed set of names, so that RBAC
  can name each object.

In both cases the head's ``data`` says ``format``, ``parts`` (0: in the head), ``set``, the
compressed ``bytes`` and their ``sha256``; each part carries the same ``sha256`` too.

**A save is all or nothing.** The parts go to the set the head does *not* name, then the head
is updated last, guarded by its resourceVersion: until that single write, the head names the
previous save, whose parts nothing touched. A crash, a lost leadership or a refused request
between two writes leaves the previous save loadable, never a mix of two. ``load`` reads the
head, then its parts, and checks the length and the sha256 of their concatenation: a part
missing, of another save (two writers at once) or damaged is a cold start with a warning
naming the object, never a mix and never an exception.

**An older save** (a head with the whole document as JSON text in ``data["state.json"]``,
before the compressed format) is still read; the next save writes the new format.

- **Written only when it changed**: the JSON last read or written is kept, and a save of the
  same text makes no request.
- **Guarded by resourceVersion**: the head's update carries the version last read or written,
  so a write by anyone else in between (a former leader that has not noticed yet) is never
  overwritten unseen: the 409 is logged, the head read again, and the next save replaces it
  knowingly. Created when absent (a 409 ``AlreadyExists`` means another replica was first:
  it is read, then updated). Parts are replaced without a version (the head's hash tells a
  part of another save), or created when absent.
- **Only the leader writes** (``leader``: anything with ``is_leader()``), checked before each
  save, as the cluster adapter does; a follower's ticks are in shadow mode and do not save.
- **Never raises**: a failed read is a cold start, a failed write is logged and tried again
  at the next save. A document over ``max_parts`` parts is not written (an ERROR each save,
  with its size and the limit).

RBAC (deploy/base/rbac.yaml): ``get`` and ``update`` on the head and the 16 parts by name
(``object_names``), ``create`` on ConfigMaps in the controller's namespace (the API cannot
restrict a create by name). Stale parts are left in place (no ``delete``): a later save
replaces them, and only the parts the head names are read.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import logging
import math
import zlib
from collections.abc import Mapping
from typing import Any

from actuators.kubernetes.api import CONFIGMAPS, ApiError, KubeApi
from actuators.kubernetes.cluster import LeaderGate

log = logging.getLogger("sloscale.kubernetes.state")

DATA_KEY = "state.json"
"""The older format's key: the whole document as JSON text in the head (still read)."""
BINARY_KEY = "state.json.gz"
"""The compressed document, in the head (parts 0) or cut across the parts."""
FORMAT = "gzip-json/v1"
DEFAULT_NAME = "sloscale-state"
MAX_BYTES = 900 * 1024
"""Compressed bytes per object: under the 1 MiB a ConfigMap holds, with room for metadata."""
MAX_PARTS = 8
"""Parts per save: ``MAX_PARTS * MAX_BYTES`` (about 7 MiB) compressed at most."""
SETS = ("a", "b")
COMPRESS_LEVEL = 6  # gzip's default speed/size trade-off; 9 saves ~1 % for twice the time
CONFLICT, NOT_FOUND = 409, 404
LABELS = {"app.kubernetes.io/name": "sloscale", "app.kubernetes.io/component": "controller-state"}


def part_name(name: str, which: str, index: int) -> str:
    return f"{name}-{which}-{index}"


def object_names(name: str = DEFAULT_NAME, max_parts: int = MAX_PARTS) -> tuple[str, ...]:
    """Every ConfigMap a store of head ``name`` may read or write: the head, then the parts
    of set a, then of set b (what the RBAC Role names)."""
    return (name, *(part_name(name, s, i) for s in SETS for i in range(max_parts)))


class CorruptStateError(ValueError):
    """A saved state that cannot be loaded as a whole (a cold start)."""


class ConfigMapSnapshotStore:
    """The controller's saved memory: a head ConfigMap, and parts when it is large."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str = DEFAULT_NAME,
        *,
        leader: LeaderGate | None = None,
        max_bytes: int = MAX_BYTES,
        max_parts: int = MAX_PARTS,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.leader = leader
        self.max_bytes = max_bytes
        self.max_parts = max_parts
        self._version: str | None = None  # the head's resourceVersion last read or written
        self._set: str | None = None  # the part set the head names (None: none)
        self._text: str | None = None  # the JSON it holds, as far as we know

    # ---- the port ----------------------------------------------------------------------------

    def load(self) -> object | None:
        """The saved document, or ``None`` (none yet, unreadable, incomplete: a cold start)."""
        try:
            text = self._read()
        except ApiError as e:
            log.warning("cannot read the saved controller state: %s", e.describe())
            return None
        except CorruptStateError as e:
            log.warning("the saved controller state is not loaded (a cold start): %s", e)
            return None
        except Exception:
            log.exception("cannot read the saved controller state")
            return None
        if text is None:
            return None
        try:
            document: object = json.loads(text)
        except ValueError as e:
            log.warning("ConfigMap %s/%s: the state is not JSON: %s", self.namespace, self.name, e)
            self._text = None
            return None
        return document

    def save(self, document: Mapping[str, Any]) -> bool:
        """Write ``document`` if it changed and this replica leads; whether it is kept."""
        if self.leader is not None and not self.leader.is_leader():
            return False
        try:
            text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            log.warning("controller state not saved: not JSON: %s", e)
            return False
        if text == self._text:
            return True
        raw = text.encode()
        packed = gzip.compress(raw, compresslevel=COMPRESS_LEVEL, mtime=0)
        parts = 0 if len(packed) <= self.max_bytes else math.ceil(len(packed) / self.max_bytes)
        if parts > self.max_parts:
            log.error(
                "controller state not saved: %d bytes compressed (%d as JSON), over the %d "
                "that %d ConfigMaps of %d bytes can hold",
                len(packed),
                len(raw),
                self.max_parts * self.max_bytes,
                self.max_parts,
                self.max_bytes,
            )
            return False
        try:
            self._write(text, packed, parts)
        except ApiError as e:
            self._after_failed_write(e)
            return False
        except Exception:
            log.exception("saving the controller state failed")
            return False
        return True

    # ---- reading -----------------------------------------------------------------------------

    def _read_head(self) -> Mapping[str, Any] | None:
        """The head, its version and set remembered; ``None`` when there is none."""
        try:
            obj = self.api.get(CONFIGMAPS, self.name, self.namespace)
        except ApiError as e:
            if e.status != NOT_FOUND:
                raise
            self._version = self._text = self._set = None
            return None
        self._version = str((obj.get("metadata") or {}).get("resourceVersion") or "") or None
        self._text = None
        data = obj.get("data") or {}
        which = data.get("set")
        self._set = which if which in SETS else None
        return obj

    def _read(self) -> str | None:
        """The JSON text the head (and its parts) hold; ``None`` when nothing is saved."""
        head = self._read_head()
        if head is None:
            return None
        where = f"ConfigMap {self.namespace}/{self.name}"
        data = head.get("data") or {}
        if "format" not in data and isinstance(data.get(DATA_KEY), str):
            # the older format: read it, and write the new one at the next save (_text unset)
            text: str = data[DATA_KEY]
            return text
        if data.get("format") != FORMAT:
            raise CorruptStateError(f"{where} holds no saved state of format {FORMAT}")
        try:
            parts = int(data.get("parts", ""))
            size = int(data.get("bytes", ""))
        except ValueError:
            raise CorruptStateError(f"{where}: its parts or bytes are not numbers") from None
        digest = data.get("sha256")
        if not isinstance(digest, str) or not 0 <= parts <= self.max_parts:
            raise CorruptStateError(f"{where}: no sha256, or {parts} parts")
        if parts == 0:
            packed = _binary(head, where)
        else:
            if self._set is None:
                raise CorruptStateError(f"{where}: {parts} parts but no set a or b")
            chunks = [self._read_part(self._set, i, parts, digest) for i in range(parts)]
            packed = b"".join(chunks)
        if len(packed) != size or hashlib.sha256(packed).hexdigest() != digest:
            raise CorruptStateError(
                f"{where}: the {'parts hold' if parts else 'head holds'} {len(packed)} bytes "
                f"whose sha256 is not the head's ({size} bytes, {digest[:12]}...): an "
                "incomplete or damaged save"
            )
        try:
            text = gzip.decompress(packed).decode()
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
            raise CorruptStateError(f"{where}: not gzip-compressed UTF-8: {e}") from None
        self._text = text
        return text

    def _read_part(self, which: str, index: int, parts: int, digest: str) -> bytes:
        name = part_name(self.name, which, index)
        where = f"ConfigMap {self.namespace}/{name} (part {index + 1} of {parts})"
        try:
            obj = self.api.get(CONFIGMAPS, name, self.namespace)
        except ApiError as e:
            if e.status != NOT_FOUND:
                raise
            raise CorruptStateError(f"{where} is missing") from None
        if (obj.get("data") or {}).get("sha256") != digest:
            raise CorruptStateError(f"{where} belongs to another save than the head's")
        return _binary(obj, where)

    # ---- writing -----------------------------------------------------------------------------

    def _write(self, text: str, packed: bytes, parts: int) -> None:
        digest = hashlib.sha256(packed).hexdigest()
        which = None
        if parts:  # the set the head does not name: the previous save stays whole meanwhile
            which = SETS[1] if self._set == SETS[0] else SETS[0]
            for i in range(parts):
                chunk = packed[i * self.max_bytes : (i + 1) * self.max_bytes]
                self._write_part(part_name(self.name, which, i), digest, i, parts, chunk)
        data = {"format": FORMAT, "parts": str(parts), "bytes": str(len(packed)), "sha256": digest}
        if which is not None:
            data["set"] = which
        body = self._body(self.name, data, None if parts else packed)
        if self._version is None:
            try:
                written = self.api.create(CONFIGMAPS, body, self.namespace)
            except ApiError as e:
                if e.status != CONFLICT:
                    raise
                self._read_head()  # another replica created it first: update what it holds
                if self._version is None:
                    raise
                body["metadata"]["resourceVersion"] = self._version
                written = self.api.replace(CONFIGMAPS, self.name, body, self.namespace)
        else:
            body["metadata"]["resourceVersion"] = self._version
            written = self.api.replace(CONFIGMAPS, self.name, body, self.namespace)
        self._version = str((written.get("metadata") or {}).get("resourceVersion") or "") or None
        self._set = which
        self._text = text

    def _write_part(self, name: str, digest: str, index: int, parts: int, chunk: bytes) -> None:
        """Replace part ``name`` whatever it holds (no version: the head's hash tells a part
        of another save), or create it; the first save into a set creates its parts."""
        data = {"format": FORMAT, "sha256": digest, "part": f"{index + 1}/{parts}"}
        body = self._body(name, data, chunk)
        try:
            self.api.replace(CONFIGMAPS, name, body, self.namespace)
            return
        except ApiError as e:
            if e.status != NOT_FOUND:
                raise
        try:
            self.api.create(CONFIGMAPS, body, self.namespace)
        except ApiError as e:
            if e.status != CONFLICT:
                raise
            self.api.replace(CONFIGMAPS, name, body, self.namespace)  # created meanwhile

    def _body(self, name: str, data: dict[str, str], packed: bytes | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace, "labels": dict(LABELS)},
            "data": data,
        }
        if packed is not None:
            body["binaryData"] = {BINARY_KEY: base64.b64encode(packed).decode("ascii")}
        return body

    def _after_failed_write(self, e: ApiError) -> None:
        head = e.call.name == self.name  # its update (a create's 409 is handled in _write)
        if head and e.status == CONFLICT:
            log.warning(
                "ConfigMap %s/%s changed since it was read: reading it again before the next "
                "save (%s)",
                self.namespace,
                self.name,
                e.message,
            )
        elif head and e.status == NOT_FOUND:
            log.warning("ConfigMap %s/%s was deleted: creating it again", self.namespace, self.name)
        else:
            log.warning("saving the controller state failed: %s", e.describe())
            return
        try:
            self._read_head()
        except Exception as again:  # the next save tries again from scratch
            log.warning("reading the controller state again failed: %s", again)
            self._version = self._text = self._set = None


def _binary(obj: Mapping[str, Any], where: str) -> bytes:
    encoded = (obj.get("binaryData") or {}).get(BINARY_KEY)
    if not isinstance(encoded, str):
        raise CorruptStateError(f"{where} has no binaryData[{BINARY_KEY!r}]")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CorruptStateError(f"{where}: binaryData[{BINARY_KEY!r}] is not base64") from None


__all__ = [
    "BINARY_KEY",
    "DATA_KEY",
    "DEFAULT_NAME",
    "FORMAT",
    "MAX_BYTES",
    "MAX_PARTS",
    "SETS",
    "ConfigMapSnapshotStore",
    "object_names",
    "part_name",
]
