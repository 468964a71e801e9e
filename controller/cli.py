"""``sloscale`` command line: ``demo`` and ``version``.

Bad input (a malformed option, trace or annotation) ends with a one-line error on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from controller import __version__

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A user error to print as one line and exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise CliError(f"{self.prog}: {message}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sloscale", description="SLO-driven autoscaling for GPU inference")
    p.add_argument("--version", action="version", version=f"sloscale {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log every decision")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = sub.add_parser("demo", help="run the real loop against the embedded simulated cluster")
    demo.add_argument("--hours", type=_positive_float, default=24.0, help="simulated hours (24)")
    demo.add_argument("--trace", type=Path, help="drive the first service from a trace CSV")
    demo.add_argument("--seed", type=_non_negative_int, default=1)
    demo.add_argument(
        "--serve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve the API while the demo runs (default on)",
    )
    demo.add_argument("--host", default="127.0.0.1", help="API address (127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8080, help="API port (8080; 0 = any free)")
    demo.add_argument("--json", type=Path, dest="json_out", help="write the results as JSON")
    demo.add_argument(
        "--interval",
        type=_positive_float,
        default=15.0,
        help="simulated seconds between ticks (15)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress lines")

    sub.add_parser("version", help="print the version")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "version":
        print(f"sloscale {__version__}")
        return 0
    if args.command == "demo":
        from controller.demo import DemoError, DemoOptions, run_demo

        options = DemoOptions(
            hours=args.hours,
            trace=args.trace,
            seed=args.seed,
            serve=args.serve,
            host=args.host,
            port=args.port,
            json_out=args.json_out,
            interval_s=args.interval,
            progress=not args.quiet,
        )
        try:
            return run_demo(options)
        except DemoError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    return EXIT_BAD_INPUT  # pragma: no cover - argparse requires a command


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
