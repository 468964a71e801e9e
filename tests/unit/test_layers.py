"""The pure core imports no client library (the import-linter contract, checked in-process too)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "controller/domain.py",
    "controller/spec.py",
    "controller/planner.py",
    "controller/capacity.py",
    "controller/slo.py",
    "controller/prediction.py",
    "controller/state.py",
]
FORBIDDEN = {
    "actuators",
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "httpx",
    "kubernetes",
    "prometheus_api_client",
    "pynvml",
    "requests",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_pure_modules_import_no_client_library() -> None:
    files = [ROOT / p for p in PURE] + sorted((ROOT / "forecasting").glob("*.py"))
    for f in files:
        bad = imported_roots(f) & FORBIDDEN
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"
