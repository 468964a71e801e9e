"""One format for every command's one-line errors: ``sloscale <command>: error: <message>``.

The argparse parsers of the subcommands already write theirs that way (``prog`` is
``sloscale <command>``); the errors found after parsing (a bad trace, a busy port, an
unreachable cluster) use ``error_line`` so that a script or a person reads them all alike.
"""

from __future__ import annotations


def error_line(command: str, message: object) -> str:
    """``sloscale <command>: error: <message>``, the message's own prefix not repeated.

    Purely computational. ``command`` is the subcommand (``run``, ``bench --suite``) or empty
    for the top-level parser.
    """
    prog = f"sloscale {command}".strip()
    text = str(message).replace("\n", " ").strip()
    for prefix in (f"{prog}: error: ", f"{prog}: ", "error: "):
        text = text.removeprefix(prefix)
    return f"{prog}: error: {text}"
