"""``sloscale validate``: offline lint with the controller's own errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloscale.cli import main as cli
from sloscale.validate import main

BAD = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ml
  annotations: {sloscale.io/enabled: "true", sloscale.io/slice-stepp: "10"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: train, annotations: {sloscale.io/preemptible: "maybe"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored, annotations: {sloscale.io/whatever: "x"}}
"""


def test_reports_the_controllers_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    assert main([str(f)]) == 1
    *out, summary = capsys.readouterr().out.splitlines()
    assert summary == (
        "sloscale validate: 1 file, 3 objects (3 with sloscale.io/ annotations): 3 errors"
    )
    assert out == [
        f"{f}: ml/web: annotation sloscale.io/slice-stepp='10': unknown key on a Deployment; "
        "did you mean sloscale.io/slice-step?",
        f"{f}: ml/web: annotation sloscale.io/latency-target-ms='': is required but missing",
        f"{f}: default/train: annotation sloscale.io/preemptible='maybe': "
        'must be "true" or "false"',
    ]


def test_unreadable_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.yaml").write_text("a: [")
    assert main([str(tmp_path / "broken.yaml"), str(tmp_path / "missing.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("sloscale validate: error: ") == 2
    assert captured.err.count("cannot read") == 2
    assert captured.out == (
        "sloscale validate: 2 files, 0 objects (0 with sloscale.io/ annotations): "
        "2 files unreadable\n"
    )


GOOD = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ml
  annotations: {sloscale.io/enabled: "true", sloscale.io/latency-target-ms: "250"}
"""


def test_a_directory_is_every_yaml_file_under_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "apps" / "web").mkdir(parents=True)
    (tmp_path / "apps" / "web" / "deploy.yaml").write_text(GOOD)
    (tmp_path / "apps" / "other.yml").write_text(GOOD.replace("name: web", "name: api"))
    (tmp_path / "apps" / "notes.txt").write_text("not: [yaml")  # not a manifest: not read
    assert cli(["validate", str(tmp_path / "apps")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == (
        "sloscale validate: 2 files, 2 objects (2 with sloscale.io/ annotations): ok\n"
    )
    (tmp_path / "apps" / "web" / "bad.yaml").write_text(BAD)
    assert cli(["validate", str(tmp_path / "apps")]) == 1
    *errors, summary = capsys.readouterr().out.splitlines()
    assert len(errors) == 3 and all(
        e.startswith(str(tmp_path / "apps" / "web" / "bad.yaml")) for e in errors
    )
    assert summary.endswith(": 3 errors")


def test_a_directory_without_manifests_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 as for an unreadable file (nothing was validated); the summary says the directory
    had no manifests, where it said ``1 file unreadable`` of a directory holding no file."""
    assert cli(["validate", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"sloscale validate: error: {tmp_path}: no *.yaml or *.yml files in it\n"
    assert captured.out == (
        "sloscale validate: 0 files, 0 objects (0 with sloscale.io/ annotations): "
        f"no manifests in {tmp_path}\n"
    )


def test_a_directory_without_manifests_beside_good_files_is_still_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("not a manifest")
    (tmp_path / "web.yaml").write_text(GOOD)
    dirs = [str(tmp_path / "empty"), str(tmp_path / "notes")]
    assert cli(["validate", str(tmp_path / "web.yaml"), *dirs]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("no *.yaml or *.yml files in it") == 2
    assert captured.out == (
        "sloscale validate: 1 file, 1 object (1 with sloscale.io/ annotations): "
        f"no manifests in {dirs[0]}, {dirs[1]}\n"
    )


# --- odd YAML (B7): one clear line and a non-zero exit, never a traceback --------------------


def validate_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> tuple[int, list[str]]:
    """``sloscale validate`` on ``text`` through the CLI: the exit code and every line."""
    f = tmp_path / "odd.yaml"
    f.write_text(text)
    code = cli(["validate", str(f)])
    captured = capsys.readouterr()
    *lines, summary = captured.out.splitlines()
    assert summary.startswith("sloscale validate: 1 file, "), summary
    lines += [e.removeprefix("sloscale validate: error: ") for e in captured.err.splitlines()]
    assert all(line.startswith(f"{f}: ") for line in lines), lines
    return code, [line.removeprefix(f"{f}: ") for line in lines]


def test_deeply_nested_yaml_is_unreadable_not_a_recursion_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = validate_text(tmp_path, capsys, "[" * 20_000)
    assert (code, lines) == (2, ["cannot read: nested too deeply to be a manifest"])


DEPLOYMENT = "apiVersion: apps/v1\nkind: Deployment\n"
MALFORMED = [
    pytest.param(
        DEPLOYMENT + "metadata: 5\n",
        "document 1: Deployment: metadata must be a mapping, not a YAML integer (5)",
        id="metadata-5",
    ),
    pytest.param(
        DEPLOYMENT + 'metadata: {name: web, annotations: "x"}\n',
        "document 1: default/web: metadata.annotations must be a mapping, not a YAML string (x)",
        id="annotations-x",
    ),
    pytest.param(
        "kind: CronJob\nmetadata: {name: nightly}\nspec: 3\n",
        "document 1: default/nightly: spec must be a mapping, not a YAML integer (3)",
        id="cronjob-spec-3",
    ),
    pytest.param(
        "kind: List\nitems: 5\n",
        "document 1: List: items must be a sequence, not a YAML integer (5)",
        id="list-items-5",
    ),
    pytest.param("- a\n- b\n", "document 1: not an object: a YAML sequence", id="bare-list"),
]


@pytest.mark.parametrize(("text", "line"), MALFORMED)
def test_an_object_that_is_not_a_mapping_where_one_belongs_is_one_line(
    text: str, line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate_text(tmp_path, capsys, text) == (1, [line])


def test_a_duplicate_key_is_refused_as_kubectl_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        DEPLOYMENT + "metadata:\n  name: web\n  annotations:\n"
        '    sloscale.io/enabled: "true"\n'
        '    sloscale.io/latency-target-ms: "fast"\n'
        '    sloscale.io/latency-target-ms: "250"\n'  # YAML alone would keep this one
    )
    code, lines = validate_text(tmp_path, capsys, text)
    assert (code, lines) == (
        2,
        ["cannot read: line 8, column 5: found duplicate key 'sloscale.io/latency-target-ms'"],
    )


def test_merge_keys_may_still_be_overridden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "base: &b {kind: ConfigMap}\nother:\n  <<: *b\n  kind: Secret\n"
    assert validate_text(tmp_path, capsys, text) == (0, [])


def test_an_unquoted_boolean_annotation_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        DEPLOYMENT + "metadata:\n  name: web\n  annotations:\n"
        "    sloscale.io/enabled: true\n"
        '    sloscale.io/latency-target-ms: "250"\n'
    )
    code, lines = validate_text(tmp_path, capsys, text)
    assert (code, lines) == (
        1,
        [
            "default/web: annotation sloscale.io/enabled='true': annotation values must be "
            "strings, not a YAML boolean: quote it"
        ],
    )


def test_critical_outside_the_allowed_namespaces_is_a_warning_as_in_the_controller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        DEPLOYMENT + "metadata:\n  name: web\n  namespace: team-a\n  annotations:\n"
        '    sloscale.io/enabled: "true"\n'
        '    sloscale.io/latency-target-ms: "250"\n'
        '    sloscale.io/priority: "critical"\n'
    )
    code, lines = validate_text(tmp_path, capsys, text)
    assert code == 0 and len(lines) == 1
    assert lines[0].startswith("warning: team-a/web: annotation sloscale.io/priority='critical'")
    assert "capped to high (100)" in lines[0]
    f = tmp_path / "odd.yaml"
    assert cli(["validate", "--critical-namespaces", "ops,team-a", str(f)]) == 0
    assert capsys.readouterr().out.endswith(": ok\n")  # the summary alone
