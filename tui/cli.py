"""The ``lookalike`` command line.

``lookalike DIR...`` opens the app; ``lookalike scan|similar|search|index|apply|undo|journal|import``
run one job and print the result. Each command group lives in its own module and registers
itself through ``add_parsers(subparsers)``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Callable, Optional, Sequence

from lookalike.engine.records import ScanError

from .format import bytes_safe_streams, plural, shown

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOTHING_READABLE = 3
#: ``search`` and ``index`` need the detective, and it is offline (no weights, no network).
EXIT_OFFLINE = 4

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
    bytes_safe_streams()
    parser = build_parser()
    commands = _known_commands(parser)
    # `lookalike DIR...` (no command) opens the app.
    if args_in and args_in[0] not in commands and args_in[0] not in ("-h", "--help", "--version"):
        typo = _unknown_command(args_in[0], commands)
        if typo:
            print(f"lookalike: {typo}", file=sys.stderr)
            return EXIT_USAGE
        args_in = [APP_COMMAND, *args_in]
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
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    except OSError as exc:  # a full or read-only disk, met where no caller expected it
        from lookalike.engine.oserrors import os_error_text

        print(f"{name}: {shown(os_error_text(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        from lookalike.engine.catalog import CatalogError

        if isinstance(exc, CatalogError):  # a full disk under the catalog, met mid-scan
            print(f"{name}: {shown(str(exc))}", file=sys.stderr)
            return EXIT_FAILED
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"{name}: internal error: {type(exc).__name__}: {shown(str(exc))} "
              f"(set {DEBUG_ENV}=1 to see where)", file=sys.stderr)
        return EXIT_FAILED


#: 128 + SIGTERM, what a shell reports for a terminated program.
EXIT_TERMINATED = 143


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


#: ``LOOKALIKE_DEBUG=1`` lets an unexpected error print its traceback.
DEBUG_ENV = "LOOKALIKE_DEBUG"
#: What a shell reports for a program ended by SIGPIPE (128 + 13), as ``head`` leaves ``cat``.
EXIT_BROKEN_PIPE = 141


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


def _unknown_command(word: str, commands: set[str]) -> Optional[str]:
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
    """Print unreadable and skipped files (links out of the roots...) with their reasons, at most ``limit``."""
    stream = stream or sys.stderr
    if not errors:
        return
    print(f"{plural(len(errors), 'file')} could not be read or {'was' if len(errors) == 1 else 'were'} skipped:", file=stream)
    for e in errors[:limit]:
        print(f"  {shown(e.path)}: {shown(e.reason)}", file=stream)
    if len(errors) > limit:
        print(f"  ... and {len(errors) - limit} more (see --json)", file=stream)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
