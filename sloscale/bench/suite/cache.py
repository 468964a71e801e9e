"""Baseline results on disk, keyed so that a change to sloscale alone replays sloscale alone.

One JSON file per replay of a baseline (``hpa@T``, ``rps@T``, ``oracle``), keyed by the cell
(trace file's content, seed, regime, hours), the bench's settings, the replay's label and the
**baseline code hash**: the source of every first-party module a baseline replay runs. That
set is found, not listed: the transitive imports (``sloscale``, ``controller``,
``actuators``, ``forecasting``) of the baseline modules (``BASELINE_ROOTS``), with one edge
cut, ``sloscale.bench.runner`` -> ``sloscale.bench.sloscale`` (the only way to the control
loop), so the controller's own modules are not in it; the whole simulator
(``actuators/sim/*.py``) is in it in any case. Numpy's version is in the key too (its
random streams make the arrivals).

The only I/O is ``ResultCache.get``/``put``; a file that cannot be read or parsed is a miss.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from sloscale.bench.suite.cells import Cell
from sloscale.bench.suite.outcome import Outcome

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "sloscale-bench"
FIRST_PARTY = ("sloscale", "controller", "actuators", "forecasting")
BASELINE_ROOTS = (
    "sloscale.bench.hpa",
    "sloscale.bench.rps",
    "sloscale.bench.kpa",
    "sloscale.bench.oracle",
    "sloscale.bench.static",
    "sloscale.bench.setup",
    "sloscale.bench.results",
    "sloscale.bench.runner",
    "sloscale.bench.suite.outcome",
    "sloscale.bench.suite.replay",
)
"""The modules whose code (and first-party imports) decides a baseline's result."""
BASELINE_GLOBS = ("actuators/sim/*.py",)
"""Hashed whether or not a baseline imports them: the whole simulator."""
CUT_EDGES = frozenset({("sloscale.bench.runner", "sloscale.bench.sloscale")})
"""Imports not followed: the runner wires sloscale too, but a baseline replay never runs it."""
FORMAT = 1
"""Bumped when the file's layout changes."""


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` (never imported at run time)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if _type_checking(child):
            assert isinstance(child, ast.If)
            for other in child.orelse:
                yield from _runtime_nodes(other)
        else:
            yield from _runtime_nodes(child)


def _imports(root: Path, module: str, path: Path) -> set[str]:
    """First-party modules ``module`` names in its imports.

    A package's ``__init__`` counts only where it is named itself (``from pkg import x``):
    the packages on the way to a module only re-export, they decide no result.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        found.update(
            name
            for name in names
            if name.split(".")[0] in FIRST_PARTY and _module_file(root, name) is not None
        )
    return found


def baseline_modules(root: Path = REPO_ROOT) -> tuple[str, ...]:
    """Every first-party module a baseline replay runs, sorted."""
    seen: set[str] = set()
    todo = list(BASELINE_ROOTS)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_file(root, module)
        if path is None:
            raise FileNotFoundError(f"baseline module {module} not found under {root}")
        seen.add(module)
        todo.extend(m for m in _imports(root, module, path) if (module, m) not in CUT_EDGES)
    return tuple(sorted(seen))


def baseline_files(root: Path = REPO_ROOT) -> tuple[Path, ...]:
    """The baseline modules' files, and every file of the simulator (``BASELINE_GLOBS``)."""
    found = {_module_file(root, m) for m in baseline_modules(root)}
    found.update(p for pattern in BASELINE_GLOBS for p in root.glob(pattern))
    return tuple(sorted(p for p in found if p is not None))


@lru_cache(maxsize=4)
def code_hash(root: Path = REPO_ROOT) -> str:
    """SHA-256 over the baseline files' paths and bytes."""
    h = hashlib.sha256()
    for path in baseline_files(root):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def cache_key(cell: Cell, label: str, settings: Mapping[str, Any], code: str) -> str:
    """The hex key of one baseline replay; any input that changes its result changes it."""
    fields = {
        "format": FORMAT,
        "trace": cell.trace.name,
        "trace_sha256": cell.trace.sha256,
        "seed": cell.seed,
        "regime": str(cell.regime),
        "hours": cell.hours,
        "run": label,
        "settings": dict(settings),
        "code": code,
        "numpy": np.__version__,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class ResultCache:
    """Baseline outcomes in ``directory``, one JSON file each; ``None`` directory: no cache."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.hits = 0
        self.stored = 0

    def _path(self, cell: Cell, label: str, key: str) -> Path:
        assert self.directory is not None
        safe = label.replace("@", "-").replace("*", "")
        return self.directory / f"{cell.slug}-{safe}-{key[:20]}.json"

    def get(self, cell: Cell, label: str, key: str) -> Outcome | None:
        if self.directory is None:
            return None
        try:
            data = json.loads(self._path(cell, label, key).read_text())
            if data.get("key") != key:
                return None
            outcome = Outcome.from_json(data["outcome"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        self.hits += 1
        return outcome

    def put(self, cell: Cell, label: str, key: str, outcome: Outcome) -> None:
        if self.directory is None:
            return
        path = self._path(cell, label, key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            payload = {"key": key, "cell": cell.label, "outcome": outcome.to_json(wall=True)}
            tmp.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
            tmp.replace(path)
        except OSError:
            return  # a cache that cannot be written only costs time
        self.stored += 1
