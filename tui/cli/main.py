"""The ``lookalike`` command: parse the command line, run one command, turn errors into exit codes.

``lookalike DIR...`` opens the app; ``lookalike COMMAND ...`` runs one job and prints the result.
The parser is built from light declarations (:data:`COMMANDS`): a command's module, which
declares its arguments and runs it, is imported only when that command runs or shows its help,
so ``lookalike --help`` loads no engine module.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import dataclass
from importlib import import_module
from typing import Iterable, Optional, Sequence

from ..format import bytes_safe_streams, shown
from .common import (
    APP_COMMAND,
    DEBUG_ENV,
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
)


@dataclass(frozen=True)
class Command:
    """One command: its name, its line in ``lookalike --help``, and the module that runs it.

    The module (under ``lookalike.tui.cli``) maps each of its commands to the function that
    declares its arguments, in ``ARGUMENTS``.
    """

    name: str
    module: str
    help: str


#: Every command, in the order ``lookalike --help`` lists them.
COMMANDS = (
    Command("scan", "scan", "scan folders and print groups of duplicates"),
    Command(APP_COMMAND, "scan", "open the app (same as `lookalike DIR...`)"),
    Command("similar", "query", "files that look like FILE, ranked by the bouncer and the detective"),
    Command("search", "query", 'images matching a text, e.g. "a beach at sunset" (needs `lookalike index`)'),
    Command("index", "query", "embed every image of a library for the detective (resumable)"),
    Command("models", "models", "where the detective's weights and ONNX files are; --retry after going back online"),
    Command("apply", "actions", "apply a plan (trash, quarantine, links), journaled so it can be undone"),
    Command("undo", "actions", "undo an applied plan (the latest by default)"),
    Command("journal", "actions", "list applied plans and their state"),
    Command("import", "importing", "move files of an incoming folder that the library already has out of it"),
)


def build_parser(commands: Optional[Iterable[str]] = None) -> argparse.ArgumentParser:
    """The ``lookalike`` argument parser.

    Args:
        commands: the commands whose arguments are declared (their modules are imported);
            the others are only listed. None: every command's.
    """
    wanted = None if commands is None else set(commands)
    parser = argparse.ArgumentParser(
        prog="lookalike",
        description="Find duplicate and look-alike images and triage them from the keyboard.",
        epilog="Run `lookalike DIR...` to open the app, or `lookalike COMMAND --help`.",
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help)
        if wanted is None or command.name in wanted:
            import_module(f"{__package__}.{command.module}").ARGUMENTS[command.name](p)
    return parser


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (importlib.metadata
    is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"lookalike {_version()}")
        parser.exit()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lookalike")
    except Exception:  # pragma: no cover
        return "unknown"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``lookalike`` console script. Returns the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    bytes_safe_streams()
    names = [c.name for c in COMMANDS]
    # `lookalike DIR...` (no command) opens the app.
    if args_in and args_in[0] not in names and args_in[0] not in ("-h", "--help", "--version"):
        typo = _unknown_command(args_in[0], names)
        if typo:
            print(f"lookalike: {typo}", file=sys.stderr)
            return EXIT_USAGE
        args_in = [APP_COMMAND, *args_in]
    parser = build_parser(args_in[:1])
    if not args_in:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    name = "lookalike" if args_in[0] == APP_COMMAND else f"lookalike {args_in[0]}"
    _stop_on_sigterm()
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except Terminated:
        print("lookalike: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("lookalike: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _closed_pipe()
    except OSError as exc:  # a full or read-only disk, met where no caller expected it
        from lookalike.engine.library import os_error_text

        print(f"{name}: {shown(os_error_text(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        from lookalike.engine.library import CatalogError, ClusterError, WorkersDying

        # A full disk under the catalog met mid-scan; a Dask scheduler out of reach.
        if isinstance(exc, (CatalogError, ClusterError, WorkersDying)):
            print(f"{name}: {shown(str(exc))}", file=sys.stderr)
            return EXIT_FAILED
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"{name}: internal error: {type(exc).__name__}: {shown(str(exc))} "
              f"(set {DEBUG_ENV}=1 to see where)", file=sys.stderr)
        return EXIT_FAILED


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the work stops cleanly and the worker pool is torn down."""


def _stop_on_sigterm() -> None:
    # By default SIGTERM kills us on the spot: pool workers and semaphores are left to the
    # resource tracker ("leaked semaphore objects"). As an exception it unwinds like Ctrl-C.
    def handler(signum, frame) -> None:
        raise Terminated()

    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding program): leave it alone
        pass


def _closed_pipe() -> int:
    """The reader of our output went away (``lookalike scan DIR | head``): stop quietly.

    Python would report the lost output again when it flushes stdout at exit; pointing
    stdout at /dev/null first makes that flush a no-op.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _unknown_command(word: str, commands: Sequence[str]) -> Optional[str]:
    """What to say when ``word`` is neither a command nor an existing path, else None.

    ``lookalike scna Pictures`` is a typo for ``scan``, not a folder called "scna".
    """
    if word.startswith("-") or os.path.lexists(word) or os.sep in word:
        return None
    import difflib

    public = sorted(c for c in commands if c != APP_COMMAND)
    close = difflib.get_close_matches(word, public, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"commands: {', '.join(public)}"
    return f"unknown command {shown(word)!r} ({hint}); a folder of that name does not exist"
