"""Child processes that always stop: each in its own process group, stopped as a group.

Why it exists: a load test starts Prometheus, the emulator (uvicorn) and locust. Each is
started with ``start_new_session=True`` (its own process group, so a terminal's Ctrl-C does
not reach it half-way and nothing it forks escapes), and ``Processes.stop_all`` sends the
group SIGTERM, waits, then SIGKILL. The harness calls it in ``finally``, and
``interrupt_signals`` turns SIGTERM/SIGHUP into ``KeyboardInterrupt`` so that the same
``finally`` runs when the harness itself is told to stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """The children of one run; ``stop_all`` is idempotent."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        log = log_path.open("ab")
        try:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        child = Child(name, proc, log_path, log)
        self.children.append(child)
        return child

    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def stop(self, child: Child, grace_s: float = 5.0) -> None:
        if child.running():
            _signal_group(child.proc, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while child.running() and time.monotonic() < deadline:
                time.sleep(0.05)
            if child.running():
                _signal_group(child.proc, signal.SIGKILL)
                child.proc.wait(timeout=10)
        else:
            _signal_group(child.proc, signal.SIGKILL)  # whatever it forked and left behind
        child.proc.poll()
        if not child.log.closed:
            child.log.close()

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # the child leads its own session: pgid == pid


class Interrupted:
    """Set by ``interrupt_signals`` when a signal arrived (the loop may swallow the raise)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


@contextmanager
def interrupt_signals() -> Iterator[Interrupted]:
    """Within the block SIGINT, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` and are noted.

    Only the main thread can install handlers; elsewhere the block runs without them.
    """
    import threading

    flag = Interrupted()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.signum = signum
        raise KeyboardInterrupt(f"signal {signum}")

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield flag
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (for tests that check nothing is left)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
