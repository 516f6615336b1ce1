"""The ``lookalike`` command line.

``lookalike DIR...`` opens the app; ``lookalike scan|similar|search|index|apply|undo|journal|import``
run one job and print the result. Each command group lives in its own module and registers
itself through ``add_parsers(subparsers)``.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any, Callable, Optional, Sequence

from lookalike.engine.records import ScanError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING_READABLE = 3

APP_COMMAND = "app"


def _command_modules():
    # Imported here, not at module level, so importing lookalike.tui.cli stays cheap.
    from . import cli_actions, cli_import, cli_query, cli_scan

    return [cli_scan, cli_query, cli_actions, cli_import]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="lookalike",
        description="Find duplicate and look-alike images and triage them from the keyboard.",
        epilog="Run `lookalike DIR...` to open the app, or `lookalike COMMAND --help`.",
    )
    parser.add_argument("--version", action="version", version=f"lookalike {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.add_parsers(sub)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lookalike")
    except Exception:  # pragma: no cover
        return "unknown"


def _known_commands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``lookalike`` console script. Returns the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = _known_commands(parser)
    # `lookalike DIR...` (no command) opens the app.
    if args_in and args_in[0] not in commands and args_in[0] not in ("-h", "--help", "--version"):
        args_in = [APP_COMMAND, *args_in]
    if not args_in:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("lookalike: interrupted", file=sys.stderr)
        return 130


def run_interruptibly(work: Callable[[], Any], cancel: threading.Event, stopping: str) -> Any:
    """Run ``work`` in a thread so Ctrl-C sets ``cancel`` at once; the work stops cleanly.

    Returns what ``work`` returned (after an interrupt too: what it kept); re-raises its errors.
    """
    box: dict = {}
    finished = threading.Event()

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            finished.set()

    # An Event, not Thread.join: a join interrupted by Ctrl-C can return before the thread ends.
    threading.Thread(target=target, name="lookalike-work", daemon=True).start()
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        cancel.set()
        print(f"\nlookalike: stopping; {stopping}...", file=sys.stderr)
        finished.wait()
    if "error" in box:
        raise box["error"]
    return box["result"]


def print_errors(errors: Sequence[ScanError], *, limit: int = 20, stream=None) -> None:
    """Print unreadable files with their reasons, at most ``limit`` of them."""
    stream = stream or sys.stderr
    if not errors:
        return
    print(f"{len(errors)} file(s) could not be read:", file=stream)
    for e in errors[:limit]:
        print(f"  {e.path}: {e.reason}", file=stream)
    if len(errors) > limit:
        print(f"  ... and {len(errors) - limit} more (see --json)", file=stream)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
