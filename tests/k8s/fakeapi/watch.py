"""Watch streams: events after a resourceVersion, selector transitions, bookmarks, 410."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Mapping
from typing import Any

from tests.k8s.fakeapi.kinds import ApiFailureError, JsonObj, Kind
from tests.k8s.fakeapi.patches import label_selector_matches
from tests.k8s.fakeapi.storage import Storage


class Watches(Storage):
    _stopping: threading.Event
    bookmark_interval_s: float

    def _watch(self, kind: Kind, ns: str, query: Mapping[str, str]) -> Any:
        selector = query.get("labelSelector", "")
        timeout_s = float(query.get("timeoutSeconds", "1800"))
        bookmarks = query.get("allowWatchBookmarks") == "true"
        rv_text = query.get("resourceVersion", "")
        deadline = time.monotonic() + timeout_s

        def matches(obj: JsonObj | None) -> bool:
            if obj is None:
                return False
            in_ns = not ns or obj["metadata"].get("namespace") == ns
            return in_ns and label_selector_matches(selector, obj["metadata"].get("labels") or {})

        def stream() -> Any:
            with self._cond:
                if rv_text in ("", "0"):
                    since = self._rv
                    initial = [
                        o for (p, _, _), o in sorted(self._objects.items()) if p == kind.plural
                    ]
                else:
                    since = int(rv_text)
                    initial = []
                    if since < self._compacted_rv:
                        yield {
                            "type": "ERROR",
                            "object": ApiFailureError(
                                410,
                                "Expired",
                                f"too old resource version: {since} ({self._compacted_rv})",
                            ).status(),
                        }
                        return
            for o in initial:
                if matches(o):
                    yield {"type": "ADDED", "object": copy.deepcopy(o)}
            last_bookmark = time.monotonic()
            while not self._stopping.is_set():
                with self._cond:
                    pending = [e for e in self._events if e.rv > since and e.kind == kind]
                    if not pending:
                        wait = (
                            min(deadline, last_bookmark + self.bookmark_interval_s)
                            - time.monotonic()
                        )
                        if wait > 0:
                            self._cond.wait(wait)
                        pending = [e for e in self._events if e.rv > since and e.kind == kind]
                    current_rv = self._rv
                for e in pending:
                    since = e.rv
                    now_in, was_in = matches(e.obj), matches(e.old)
                    if e.type == "DELETED":
                        if was_in:
                            yield {"type": "DELETED", "object": copy.deepcopy(e.obj)}
                    elif now_in and not was_in:
                        yield {"type": "ADDED", "object": copy.deepcopy(e.obj)}
                    elif now_in:
                        yield {"type": "MODIFIED", "object": copy.deepcopy(e.obj)}
                    elif was_in:
                        yield {"type": "DELETED", "object": copy.deepcopy(e.obj)}
                now = time.monotonic()
                if now >= deadline:
                    return
                if bookmarks and now - last_bookmark >= self.bookmark_interval_s:
                    last_bookmark = now
                    since = max(since, current_rv)
                    yield {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": kind.kind,
                            "apiVersion": kind.api_version,
                            "metadata": {"resourceVersion": str(since)},
                        },
                    }

        return stream()


__all__ = ["Watches"]
