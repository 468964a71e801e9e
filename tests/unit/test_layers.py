"""The core imports no adapter, no shell and no client library (the import-linter contract,
checked in-process too, per package: every module under ``controller/`` and ``forecasting/``)."""

import ast
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORE = ["controller", "forecasting"]
FORBIDDEN = {
    "actuators",
    "sloscale",
    "loadtests",
    "fastapi",
    "uvicorn",
    "prometheus_client",
    "httpx",
    "kubernetes",
    "prometheus_api_client",
    "pynvml",
    "requests",
    "locust",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_roots(path: Path) -> set[str]:
    """The top-level package of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                roots.add(base[0] if base else "")
            elif node.module:
                roots.add(node.module.split(".")[0])
    return roots


def modules_of(name: str) -> list[Path]:
    """Every module of a package, walked recursively, or the one file of a module."""
    path = ROOT / name.replace(".", "/")
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    return [path.with_suffix(".py")]


def forbidden_contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return [c for c in contracts if c["type"] == "forbidden"]


def test_walk_finds_every_core_module() -> None:
    files = [f for pkg in CORE for f in modules_of(pkg)]
    names = {module_name(f) for f in files}
    assert {"controller", "controller.loop", "controller.spec", "forecasting.base"} <= names
    on_disk = {p for pkg in CORE for p in (ROOT / pkg).rglob("*.py")}
    assert set(files) == on_disk


def test_core_imports_no_client_library() -> None:
    for f in [f for pkg in CORE for f in modules_of(pkg)]:
        bad = imported_roots(f) & FORBIDDEN
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_controller_imports_no_shell_and_no_adapter() -> None:
    files = modules_of("controller")
    assert files
    for f in files:
        bad = imported_roots(f) & {"sloscale", "actuators"}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}: the core sits below them"


def test_contract_names_the_core_packages_and_this_forbidden_list() -> None:
    contracts = forbidden_contracts()
    core = [c for c in contracts if set(c["source_modules"]) == set(CORE)]
    assert len(core) == 1, "pyproject.toml has no forbidden contract on the core packages"
    for c in contracts:
        assert set(c["forbidden_modules"]) == FORBIDDEN, c["name"]


def test_every_forbidden_contract_holds_in_process() -> None:
    for contract in forbidden_contracts():
        files = [f for src in contract["source_modules"] for f in modules_of(src)]
        assert files and all(f.exists() for f in files), contract["name"]
        for f in files:
            bad = imported_roots(f) & set(contract["forbidden_modules"])
            assert not bad, f"{f.relative_to(ROOT)} imports {bad}"
