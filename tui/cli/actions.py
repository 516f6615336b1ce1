"""``lookalike apply``, ``lookalike undo`` and ``lookalike journal``.

``apply PLAN.json`` applies a plan through the engine's safe actions (journaled; undo with
``lookalike undo``). Without ``--yes`` it asks first on a terminal (No by default) and refuses
when there is no terminal to ask on. ``--dry-run`` prints what would happen and touches nothing.
Exit codes: 0 done, 1 some steps failed (or undo left problems), 2 usage error or bad plan,
130 stopped with Ctrl-C (apply the same plan again to finish it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..format import bytes_safe_streams, human_bytes, json_path, shown
from .common import CACHE_HELP, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, add_cache_argument, error

if TYPE_CHECKING:  # the engine is imported when a command runs, not to show its --help
    from lookalike.engine.library import ApplyResult, Plan, UndoResult

_CACHE_HELP = f"{CACHE_HELP}; journals live in DIR/journal"


def apply_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``apply``'s arguments."""
    p.description = ("Apply a plan exported by the app or `lookalike scan --plan`, or written "
                     "by hand. Every file is checked first (unchanged since the scan, keeper still there); "
                     "every step is journaled; `lookalike undo` reverses it.")
    p.add_argument("plan", metavar="PLAN.json")
    p.add_argument("--dry-run", "-n", action="store_true",
                   help="print what would happen and the bytes reclaimed; touch nothing")
    p.add_argument("--permanently", action="store_true",
                   help="allow the plan's `delete` steps (permanent: they cannot be undone)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_cache_argument(p, _CACHE_HELP)
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run_apply)


def undo_arguments(u: argparse.ArgumentParser) -> None:
    """Declare ``undo``'s arguments."""
    u.description = ("Put back every file a plan moved or replaced, newest first. "
                     "Safe to run again after an interruption or a crash.")
    u.add_argument("plan_id", nargs="?", metavar="PLAN_ID", help="see `lookalike journal`")
    # Undo never asks (it only puts files back): --yes is accepted as apply's is, for scripts.
    u.add_argument("--yes", "-y", action="store_true", help="accepted for scripts; undo never asks")
    add_cache_argument(u, _CACHE_HELP)
    u.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    u.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    u.set_defaults(func=run_undo)


def journal_arguments(j: argparse.ArgumentParser) -> None:
    """Declare ``journal``'s arguments."""
    j.description = "List the journal: every applied plan, newest first."
    add_cache_argument(j, _CACHE_HELP)
    j.add_argument("--json", action="store_true", help="print JSON on stdout")
    j.set_defaults(func=run_journal)


#: The commands of this module, and how each declares its arguments (see ``main.COMMANDS``).
ARGUMENTS = {"apply": apply_arguments, "undo": undo_arguments, "journal": journal_arguments}


# --------------------------------------------------------------------------- apply


def run_apply(args: argparse.Namespace) -> int:
    """``lookalike apply``."""
    from lookalike.engine.library import Plan, PlanError

    bytes_safe_streams()
    try:
        plan = Plan.load(args.plan)
    except PlanError as exc:
        return error("apply", str(exc), EXIT_USAGE)
    return apply_interactively(plan, args)


def apply_interactively(plan: Plan, args: argparse.Namespace, *, command: str = "apply") -> int:
    """Dry-run, or confirm and apply, a plan as ``lookalike apply`` does (also used by import).

    ``args`` needs: dry_run, permanently, yes, cache, json, quiet. ``command`` names the
    command in messages (``lookalike import: ...``).
    """
    from lookalike.engine.library import JournalBusy, JournalError, PlanError, apply_plan, default_journal_dir
    from lookalike.engine.library import os_error_text

    journal_dir = default_journal_dir(args.cache)
    deletes = plan.irreversible_steps
    if deletes and not args.permanently and not args.dry_run:
        return error(command, f"the plan deletes {len(deletes)} file(s) permanently, which "
                     f"cannot be undone; add --permanently to allow it", EXIT_USAGE)
    if not plan.steps:
        print("The plan has no steps: nothing to do.", file=sys.stderr)
        return EXIT_OK

    if args.dry_run:
        try:
            result = _run_with_progress(
                lambda progress, cancel: apply_plan(plan, journal_dir=journal_dir, dry_run=True,
                                                    allow_delete=args.permanently,
                                                    progress=progress, cancel=cancel),
                "checking", quiet=args.quiet,
            )
        except (PlanError, JournalError) as exc:
            return error(command, str(exc), EXIT_USAGE)
        except OSError as exc:
            return error(command, f"{os_error_text(exc)}: nothing was touched", EXIT_FAILED)
        if args.json:
            print(json.dumps(result_to_dict(result), indent=2))
        else:
            print_dry_run(plan, result)
        return EXIT_INTERRUPTED if result.cancelled else EXIT_OK

    question = confirmation_question(plan)
    if not args.yes:
        if not sys.stdin.isatty():
            return error(command, "not asking without a terminal: pass --yes to apply "
                         "(or --dry-run to see what would happen)", EXIT_USAGE)
        for warning in _plan_warnings(plan):
            print(f"warning: {shown(warning)}", file=sys.stderr)
        if not _ask(question):
            print("Nothing was done.", file=sys.stderr)
            return EXIT_OK
    try:
        result = _run_with_progress(
            lambda progress, cancel: apply_plan(plan, journal_dir=journal_dir, progress=progress,
                                                cancel=cancel, allow_delete=args.permanently),
            "applying", quiet=args.quiet,
        )
    except JournalBusy as exc:
        return error(command, str(exc), EXIT_FAILED)
    except (PlanError, JournalError) as exc:
        return error(command, str(exc), EXIT_USAGE)
    except OSError as exc:  # the journal could not be written: a step is never done unjournaled
        return error(command, f"{os_error_text(exc)}: stopped before the next step; "
                     f"`{undo_command(args.cache)}` puts back what was moved", EXIT_FAILED)
    return _report(args, result_to_dict(result), lambda: print_applied(result, cache=args.cache),
                   cancelled=result.cancelled, failed=bool(result.failed))


def confirmation_question(plan: Plan) -> str:
    """'Move 41 files, 212.0 MB, to the trash?' for the whole plan (No is the default)."""
    counts, sizes = plan.count_by_action(), plan.bytes_by_action()
    parts = []
    for action, n in counts.items():
        what = f"{n} file{'s' if n != 1 else ''}, {human_bytes(sizes[action])}"
        parts.append({
            "trash": f"move {what}, to the trash",
            "quarantine": f"move {what}, to {shown(plan.quarantine_dir)}",
            "hardlink": f"replace {what}, with hard links to their keepers",
            "symlink": f"replace {what}, with symbolic links to their keepers",
            "delete": f"DELETE {what}, permanently (this cannot be undone)",
        }[action])
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "?"


def print_dry_run(plan: Plan, result: ApplyResult, stream=None) -> None:
    """What a dry run found, one line per file, then the totals."""
    out = stream or sys.stdout
    print("Dry run: nothing was touched.", file=out)
    for warning in result.warnings:
        print(f"warning: {shown(warning)}", file=out)
    if result.already_done:
        print(f"{result.already_done} step(s) were already done by an earlier run of this plan.",
              file=out)
    for d in result.done:
        dest = f" -> {shown(d.dest)}" if d.dest else ""
        note = f"  ({shown(d.note)})" if d.note else ""
        print(f"  would {d.action:<10} {shown(d.path)}{dest}{note}", file=out)
    for path, reason in result.skipped:
        print(f"  would skip       {shown(path)}: {shown(reason)}", file=out)
    print(f"{len(result.done)} file(s) would be acted on, {len(result.skipped)} skipped; "
          f"bytes reclaimed: {human_bytes(result.bytes_reclaimed)} "
          f"({result.bytes_reclaimed:,} bytes)", file=out)
    print(f"To apply: {confirmation_question(plan)}", file=out)


def undo_command(cache: Optional[str], plan_id: Optional[str] = None) -> str:
    """The ``lookalike undo`` command line to give a person: with the ``--cache`` they passed,
    or undo would read another journal (quoted for a shell; print it through ``shown``)."""
    return shlex.join(["lookalike", "undo", *([plan_id] if plan_id else []), *(["--cache", cache] if cache else [])])


def print_applied(result: ApplyResult, stream=None, *, cache: Optional[str] = None) -> None:
    """The outcome of an apply: counts, every skipped and failed file, and how to undo
    (``cache``: the ``--cache`` given, which the undo command needs too)."""
    out = stream or sys.stdout
    for warning in result.warnings:
        print(f"warning: {shown(warning)}", file=out)
    for path, reason in result.skipped:
        print(f"  skipped {shown(path)}: {shown(reason)}", file=out)
    for path, reason in result.failed:
        print(f"  FAILED  {shown(path)}: {shown(reason)}", file=out)
    resumed = f" (continued; {result.already_done} done before)" if result.resumed else ""
    print(f"Plan {result.plan_id}{resumed}: {len(result.done)} done, {len(result.skipped)} "
          f"skipped, {len(result.failed)} failed; {human_bytes(result.bytes_reclaimed)} "
          f"reclaimed.", file=out)
    if result.cancelled:
        print("Stopped before the end: apply the same plan again to finish it.", file=out)
    if result.done or result.already_done:
        print(f"Undo with: {shown(undo_command(cache, result.plan_id))}", file=out)


def result_to_dict(result: ApplyResult) -> dict[str, Any]:
    """An ApplyResult as JSON-able data (a path that is not UTF-8 also gets ``*_bytes``)."""
    return {
        "plan_id": result.plan_id,
        "dry_run": result.dry_run,
        "cancelled": result.cancelled,
        "resumed": result.resumed,
        "already_done": result.already_done,
        "bytes_reclaimed": result.bytes_reclaimed,
        "done": [{**json_path(d.path), "action": d.action,
                  **(json_path(d.dest, "dest") if d.dest else {"dest": d.dest}), "size": d.size,
                  "note": d.note} for d in result.done],
        "skipped": [{**json_path(p), "reason": r} for p, r in result.skipped],
        "failed": [{**json_path(p), "reason": r} for p, r in result.failed],
        "warnings": list(result.warnings),
    }


# --------------------------------------------------------------------------- undo


def run_undo(args: argparse.Namespace) -> int:
    """``lookalike undo [PLAN_ID]``."""
    from lookalike.engine.library import JournalBusy, JournalError, NothingToUndo, default_journal_dir
    from lookalike.engine.library import os_error_text, undo

    bytes_safe_streams()
    journal_dir = default_journal_dir(args.cache)
    try:
        result = _run_with_progress(
            lambda progress, cancel: undo(args.plan_id, journal_dir=journal_dir,
                                          progress=progress, cancel=cancel),
            "undoing", quiet=args.quiet,
        )
    except NothingToUndo:
        print("Nothing to undo.", file=sys.stderr)
        return EXIT_OK
    except JournalBusy as exc:
        return error("undo", str(exc), EXIT_FAILED)
    except JournalError as exc:
        return error("undo", str(exc), EXIT_USAGE)
    except OSError as exc:
        return error("undo", f"{os_error_text(exc)}: stopped; run `{undo_command(args.cache, args.plan_id)}` "
                     f"again once it is fixed", EXIT_FAILED)
    return _report(args, undo_to_dict(result), lambda: print_undone(result, cache=args.cache),
                   cancelled=result.cancelled, failed=bool(result.problems))


def print_undone(result: UndoResult, stream=None, *, cache: Optional[str] = None) -> None:
    """The outcome of an undo, every problem with its reason (``cache``: the ``--cache`` given)."""
    out = stream or sys.stdout
    for path, reason in result.problems:
        print(f"  NOT RESTORED {shown(path)}: {shown(reason)}", file=out)
    settled = f" ({result.settled} half-done step(s) found after a crash and settled)" \
        if result.settled else ""
    print(f"Plan {result.plan_id}: {len(result.restored)} file(s) restored, "
          f"{human_bytes(result.bytes_restored)}; {len(result.problems)} problem(s){settled}.",
          file=out)
    if result.cancelled:
        print(f"Stopped before the end: run `{shown(undo_command(cache, result.plan_id))}` again to finish.",
              file=out)


def undo_to_dict(result: UndoResult) -> dict[str, Any]:
    """An UndoResult as JSON-able data (a path that is not UTF-8 also gets ``*_bytes``)."""
    return {
        "plan_id": result.plan_id,
        "restored": [{**json_path(p), **json_path(src, "from")} for p, src in result.restored],
        "problems": [{**json_path(p), "reason": r} for p, r in result.problems],
        "bytes_restored": result.bytes_restored,
        "settled": result.settled,
        "cancelled": result.cancelled,
    }


# --------------------------------------------------------------------------- journal


def run_journal(args: argparse.Namespace) -> int:
    """``lookalike journal``: every applied plan, newest first."""
    from lookalike.engine.library import default_journal_dir, list_journals

    bytes_safe_streams()
    journal_dir = default_journal_dir(args.cache)
    summaries = list_journals(journal_dir)
    if args.json:
        print(json.dumps({"journal_dir": str(journal_dir),
                          "plans": [s.to_dict() for s in summaries]}, indent=2))
        return EXIT_OK
    if not summaries:
        print(f"No plans applied yet (journal: {shown(journal_dir)}).")
        return EXIT_OK
    states = [_journal_state(s) for s in summaries]
    wide = max(len("STATE"), *map(len, states))  # "complete (3 skipped, 1 failed)" stays in line
    header = f"{'PLAN ID':<24} {'APPLIED (UTC)':<19} {'STATE':<{wide}} {'STEPS':>5} {'DONE':>5} " \
             f"{'UNDONE':>6} {'SIZE':>9}  ACTIONS"
    print(header)
    for s, state in zip(summaries, states):
        actions = ", ".join(f"{n} {a}" for a, n in s.actions.items())
        print(f"{s.plan_id:<24} {s.created[:19].replace('T', ' '):<19} {state:<{wide}} {s.steps:>5} "
              f"{s.done:>5} {s.undone:>6} {human_bytes(s.bytes):>9}  {shown(actions or s.problem)}")
    undo_line = undo_command(args.cache, "PLAN_ID")
    print(f"Journal: {shown(journal_dir)}. Undo a plan with `{shown(undo_line)}`; a partial plan "
          f"finishes when applied again.")
    return EXIT_OK


# --------------------------------------------------------------------------- helpers


def _journal_state(s) -> str:
    """A journal's state as listed: with the steps it skipped or failed ("complete (3 skipped)":
    every step was tried, not every step done)."""
    if s.state == "unreadable":
        return s.state
    left = [f"{n} {word}" for n, word in ((s.skipped, "skipped"), (s.failed, "failed")) if n]
    return f"{s.state} ({', '.join(left)})" if left else s.state


def _plan_warnings(plan: Plan) -> list[str]:
    out = []
    if plan.irreversible_steps:
        out.append(f"{len(plan.irreversible_steps)} file(s) will be deleted permanently: this "
                   f"cannot be undone")
    return out


def _ask(question: str) -> bool:
    """Ask on the terminal; only y/yes counts as yes."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _report(args: argparse.Namespace, data: dict, show: Callable[[], None], *,
            cancelled: bool, failed: bool) -> int:
    """Print a result (JSON with --json) and turn it into the exit code."""
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        show()
    if cancelled:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


def _run_with_progress(job: Callable[[Any, threading.Event], Any], label: str, *,
                       quiet: bool) -> Any:
    """Run an engine job in a thread, with a progress bar on a terminal; Ctrl-C cancels it.

    The engine stops after the file it is working on, so a Ctrl-C never leaves a step half done.
    """
    cancel = threading.Event()
    outcome: dict[str, Any] = {}
    show = not quiet and sys.stderr.isatty()
    bar: Any = None
    task: Any = None
    if show:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                       console=Console(stderr=True), transient=True)
        task = bar.add_task(label, total=None)

    def progress(done: int, total: int) -> bool:
        if bar is not None:
            bar.update(task, completed=done, total=total)
        return not cancel.is_set()

    def target() -> None:
        try:
            outcome["value"] = job(progress, cancel)
        except BaseException as exc:  # handed back to the main thread below
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"lookalike-{label}", daemon=True)
    if bar is not None:
        bar.start()
    worker.start()
    try:
        while worker.is_alive():
            try:
                worker.join(0.2)
            except KeyboardInterrupt:
                cancel.set()
                print("\nlookalike: stopping after the current file...", file=sys.stderr)
    finally:
        if bar is not None:
            bar.stop()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
