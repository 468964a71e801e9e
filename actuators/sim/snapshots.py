"""The simulator's ``StateSnapshotStore``: the controller's saved memory, held in memory.

The demo recreates its ``Controller`` to simulate restarts (``sloscale demo
--restart-every``); this store outlives each one, as the ConfigMap outlives a pod on a real
cluster. It keeps the document as JSON text, so what a restarted controller reads has been
through the same serialisation, and counts the writes (one per change).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("sloscale.sim.snapshots")


class InMemorySnapshotStore:
    """One document, written only when it changed."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.writes = 0

    def load(self) -> object | None:
        return None if self.text is None else json.loads(self.text)

    def save(self, document: Mapping[str, Any]) -> bool:
        try:
            text = json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            log.warning("controller state not saved: not JSON: %s", e)
            return False
        if text != self.text:
            self.text = text
            self.writes += 1
        return True


__all__ = ["InMemorySnapshotStore"]
