"""A command the tests need that a ``scripts/install-*`` script builds from Go sources into a
cache outside the repository (Sloth's CLI, celcheck, the Kubernetes control plane).

``scripts/check`` (the README's test command, and CI's) builds each first with ``--require``;
after that it is cached. A test run outside it (plain ``pytest``) skips with how to build the
tool, except under CI (``CI`` set), where a missing binary fails: an acceptance test must not
vanish silently. With the tool's ``build_env`` set to 1 and no binary yet, the first test that
needs one builds it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 1200


@dataclass
class GoTool:
    """One tool: ``name`` as messages say it, its installer ``scripts/<script>``, the
    variable that lets a test build it, and what the build is (for the skip message)."""

    name: str
    script: str
    build_env: str
    build: str
    files: tuple[str, ...] = ()
    """When the installer's ``--print-path`` is a directory: the files it must hold."""
    build_timeout_s: float = BUILD_TIMEOUT_S
    _build_failure: str | None = field(default=None, repr=False)

    def _installer(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(REPO / "scripts" / self.script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def path(self) -> Path:
        """Where the installer puts (or would put) the binary, or the directory of ``files``."""
        return Path(self._installer("--print-path", timeout=30).stdout.strip())

    def _built(self, path: Path) -> bool:
        if self.files:
            return all((path / name).is_file() for name in self.files)
        return path.is_file() and os.access(path, os.X_OK)

    def require(self) -> str:
        """The built binary (or directory); skips the calling test, with the reason, when
        there is none (fails it under CI)."""
        path = self.path()
        if self._built(path):
            return str(path)
        if os.environ.get(self.build_env) != "1":
            if os.environ.get("CI"):
                pytest.fail(f"{self.name} is not built ({path}): scripts/check builds it")
            pytest.skip(
                f"{self.name} is not built ({path}): run `bash scripts/{self.script}` "
                f"({self.build}) or set {self.build_env}=1 for the tests to build it"
            )
        if self._build_failure is None:
            proc = self._installer(timeout=self.build_timeout_s)
            if proc.returncode == 0 and self._built(path):
                return str(path)
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            self._build_failure = lines[-2] if len(lines) > 1 else (lines[-1] if lines else "?")
        pytest.skip(
            f"{self.name} could not be built by scripts/{self.script}: {self._build_failure}"
        )
