"""Closed-loop load tests: locust, an emulated GPU-inference service, Prometheus, sloscale.

``main(argv)`` is ``sloscale loadtest``; see ``docs/loadtests.md``.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """``sloscale loadtest --shape NAME [--duration D] [--report DIR] [--dry-run]``."""
    from loadtests.cli import main as cli_main

    return cli_main(argv)


__all__ = ["main"]
