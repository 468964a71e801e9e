"""Argument types shared by every ``sloscale`` command line.

Each parses one option's text or raises ``argparse.ArgumentTypeError`` with a one-line reason,
which the parsers turn into exit code 2. A module of its own so that ``sloscale.cli`` and the
bench's parsers (which ``sloscale.cli`` imports) read the same rules without an import cycle.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive_float(text: str) -> float:
    """A number above 0 (NaN and infinity refused by the comparison and the parse)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def int_at_least(least: int) -> Callable[[str], int]:
    """An integer no smaller than ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}: {text!r}")
        return value

    return parse


non_negative_int = int_at_least(0)


def port(text: str) -> int:
    """A TCP port, 0 meaning any free one."""
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return value
