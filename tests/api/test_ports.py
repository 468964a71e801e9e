"""A port that is already taken ends ``sloscale run`` with one line and exit 2, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process (here: this one) listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def run_sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sloscale.cli",
            "run",
            "--cluster",
            "sim",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--interval",
            "0.5",
            "--duration",
            "1",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_exit_2(done: subprocess.CompletedProcess[str], what: str, port: int) -> None:
    err = done.stderr
    assert done.returncode == 2, err
    assert "Traceback" not in err and "Errno" not in err, err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    assert what in errors[0] and f":{port}" in errors[0], errors[0]
    assert "already in use" in errors[0], errors[0]


def test_a_busy_sim_metrics_port_is_one_line_and_exit_2(busy_port: int) -> None:
    done = run_sim("--sim-metrics-port", str(busy_port), "--port", "0")
    assert_one_line_exit_2(done, "simulated metrics", busy_port)


def test_a_busy_api_port_is_one_line_and_exit_2(busy_port: int) -> None:
    done = run_sim("--port", str(busy_port))
    assert_one_line_exit_2(done, "cannot serve the API", busy_port)
