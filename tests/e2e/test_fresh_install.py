"""What a new user meets after the README's `pip install -e .` (no extras): every command's
``--help`` works, and a command that needs an extra says which one in one line, never a
traceback; the extras name every module their code imports."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from sloscale.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """As if ``modules`` were not installed: importing one fails, find_spec says None."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_loadtest_help_needs_no_extra(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    _without(monkeypatch, "httpx", "locust")
    with pytest.raises(SystemExit) as exit_:
        main(["loadtest", "--help"])
    assert exit_.value.code == 0
    assert "--shape" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["httpx", "locust"])
def test_loadtest_without_the_extra_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], module: str
) -> None:
    _without(monkeypatch, module)
    assert main(["loadtest", "--shape", "step"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sloscale loadtest: error: needs " + module)
    assert ".[loadtest]" in lines[0]


def test_a_bad_loadtest_duration_names_the_option(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["loadtest", "--duration", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sloscale loadtest: error: --duration 'abc': cannot parse duration")


def _third_party_imports(package: Path) -> set[str]:
    first_party = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    found: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in first_party:
                    found.add(top)
    return found


def _closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, transitively (installed ones only)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(req.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return seen


def test_the_loadtest_extra_installs_what_loadtests_imports() -> None:
    """`sloscale loadtest` from `pip install -e '.[loadtest]'`: every module it imports comes
    with the base dependencies or the extra (httpx was only in `dev`)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    installed = _closure([*project["dependencies"], *project["optional-dependencies"]["loadtest"]])
    by_module = importlib.metadata.packages_distributions()
    missing = {
        module
        for module in _third_party_imports(ROOT / "loadtests")
        if not {d.lower().replace("_", "-") for d in by_module.get(module, [module])} & installed
    }
    assert not missing, f"imported by loadtests/ but not in the loadtest extra: {missing}"


# ---- validate and rules read what a user points them at alike ---------------------------------

README_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
  namespace: demo
  annotations:
    sloscale.io/enabled: "true"
    sloscale.io/latency-target-ms: "250"
    sloscale.io/objective: "99"
spec:
  template:
    spec:
      containers:
      - name: server
        image: example
        resources: {limits: {nvidia.com/gpu: 1}}
"""


def test_validate_says_a_missing_file_without_a_python_repr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        f"sloscale validate: error: {missing}: cannot read: No such file or directory"
    )
    assert "Errno" not in err


def test_rules_reads_a_directory_as_validate_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = tmp_path / "manifests"
    (manifests / "team").mkdir(parents=True)
    (manifests / "team" / "chat.yaml").write_text(README_DEPLOYMENT)
    (manifests / "notes.txt").write_text("not a manifest")
    assert main(["rules", "--format", "rules", str(manifests / "team" / "chat.yaml")]) == 0
    from_file = capsys.readouterr().out
    assert main(["validate", str(manifests)]) == 0
    capsys.readouterr()
    assert main(["rules", "--format", "rules", str(manifests)]) == 0
    assert capsys.readouterr().out == from_file
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["rules", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"sloscale rules: error: {empty}: no *.yaml or *.yml files in it"


def test_the_readme_demo_synopsis_names_every_option_and_scenario() -> None:
    """The README's `sloscale demo` block is what a new user reads first: it lists each long
    option of the parser and each scenario (`llm-ttft` was missing)."""
    import argparse
    import re

    from sloscale.cli import build_parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n(sloscale demo .*?)```", readme, re.S)
    assert block is not None
    synopsis = block.group(1)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    demo = sub.choices["demo"]
    for action in demo._actions:
        longs = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        if longs:
            assert any(o in synopsis for o in longs), longs
        for choice in action.choices or ():
            if action.dest == "scenario":
                assert choice in synopsis, choice
