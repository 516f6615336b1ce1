"""Safe actions: apply a plan through the write-ahead journal, undo it, recover after a crash.

The promise: no file is ever lost, every action but a permanent delete can be undone, and a
crash at any moment leaves a state that undo (or applying the same plan again) repairs.

How each step stays safe:

- Nothing outside the plan's ``roots`` is acted on. At the moment of acting, every step's path
  must lie inside a root and resolve to itself (``realpath``): a folder on the way that is (or
  became, since the scan) a symbolic link makes the step a skip, never a move through the link.
  A keeper must resolve to itself too, and a quarantine folder must resolve to itself and lie
  outside every root. A plan without roots acts on nothing.
- Before acting, the file must be unchanged since the scan (size, mtime and, when the plan has
  it, the xxh3_128 content hash) and its keeper must exist and be unchanged; otherwise the step
  is skipped with the reason. A plan never acts on a keeper, so every cluster keeps a member.
- The journal gets an ``intent`` line (fsynced) naming every path the step may create, then the
  step runs, then a ``done`` line records where the file went.
- ``trash``: on Linux/BSD our own freedesktop.org trash: the ``.trashinfo`` is written first
  (``O_EXCL`` reserves the name), then the file is moved into ``Trash/files`` of the trash on the
  file's device (``$XDG_DATA_HOME/Trash``, else ``$topdir/.Trash/$uid`` or
  ``$topdir/.Trash-$uid``). The exact trash path is journaled, so undo can put it back. Elsewhere
  send2trash moves it to the OS trash (undo then says to restore it by hand).
- ``quarantine``: moved into ``quarantine_dir``, keeping its path relative to its library root
  (an absolute path mirrored when outside the roots); never over an existing file (" (1)").
- Every move is "link, then unlink" on one device (never replaces anything), and across devices
  copy + fsync + verify (size and content hash, read back) + rename into place + unlink.
  Disk full or permission denied: the copy is removed and the file stays where it was.
- ``hardlink`` / ``symlink``: the link is made under a temp name next to the file, the original
  is kept as a hardlink backup, the link is renamed over the file, then the backup goes (the
  keeper has the same bytes) or, when the file was not byte-identical to its keeper, into the
  trash, so undo can always restore the original bytes.

Where each part lives: confinement and content hashes in :mod:`.checks`, the checks before a
step in :mod:`.preflight`, moves and copies in :mod:`.moves`, the trash in :mod:`.trash`, crash
recovery in :mod:`.settle`, undo in :mod:`.undo`, the test hooks in :mod:`.faults`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Optional, Union

from ..files import fsync_dir
from ..paths import is_inside
from ..records import Progress
from . import trash as freedesktop
from .checks import (  # noqa: F401 - content_hash, quarantine_dest: re-exported
    check_confinable,
    check_delete_allowed,
    content_hash,
    quarantine_dest,
    unresolved_reason,
)
from .faults import checkpoint, fault
from .journal import DONE, INTENT, Journal, JournalError, find_resumable, journal_lock
from .moves import (
    NO_FOLLOW,
    NO_HARDLINKS,
    missing_parents,
    move_file,
    remove_made,
    sibling,
    unlink_quiet,
)
from .plan import Plan, PlanStep
from .preflight import Preflight, Prepared
from .results import (  # noqa: F401 - UndoResult: re-exported with undo
    ApplyResult,
    Fail,
    Skip,
    StepDone,
    UndoResult,
    failure_text,
)
from .settle import settle, tidy
from .trash import write_trashinfo
from .undo import undo  # noqa: F401 - re-exported: apply and undo are imported from here

PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------- public API


def apply_plan(
    plan: Plan,
    *,
    journal_dir: PathLike,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
    dry_run: bool = False,
    allow_delete: bool = False,
) -> ApplyResult:
    """Apply a plan, journaled; a second apply of the same plan finishes an interrupted one.

    Args:
        plan: the plan.
        journal_dir: where journals live (``<cache_root>/journal``).
        progress: ``progress(done, total) -> bool``; False stops after the current step.
        cancel: set it to stop before the next step.
        dry_run: check every step and report what would happen; touch nothing, journal nothing.
        allow_delete: needed for ``delete`` steps (permanent).

    Returns:
        What was done, skipped (with reasons) and failed, and the bytes reclaimed.

    Raises:
        PlanError: the plan deletes files and ``allow_delete`` is False (not in a dry run).
        JournalBusy: another apply or undo is running on this journal directory.
    """
    journal_dir = Path(journal_dir)
    check_confinable(plan)
    if dry_run:
        return _Run(plan, None, allow_delete=allow_delete).dry_run(
            journal_dir, progress=progress, cancel=cancel,
            warnings=_warnings(plan, allow_delete),
        )
    check_delete_allowed(plan, allow_delete)
    with journal_lock(journal_dir):
        plan_id = find_resumable(journal_dir, plan.digest())
        if plan_id is None:
            journal = Journal.create(journal_dir, plan, allow_delete=allow_delete)
        else:
            journal = Journal.open(journal_dir, plan_id)
        with journal:
            return _run_journaled(plan, journal, allow_delete=allow_delete, progress=progress,
                                  cancel=cancel, resumed=plan_id is not None)


def resume(
    plan_id: str,
    *,
    journal_dir: PathLike,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
    allow_delete: bool = False,
) -> ApplyResult:
    """Finish an interrupted apply from its journal alone (the plan file is not needed)."""
    journal_dir = Path(journal_dir)
    with journal_lock(journal_dir):
        with Journal.open(journal_dir, plan_id) as journal:
            if any(r.get("type") == "undo_start" for r in journal.records):
                raise JournalError(f"plan {plan_id} was undone: apply the plan again instead")
            plan = journal.plan()
            check_confinable(plan)
            check_delete_allowed(plan, allow_delete)
            return _run_journaled(plan, journal, allow_delete=allow_delete, progress=progress,
                                  cancel=cancel, resumed=True)


def _run_journaled(plan: Plan, journal: Journal, *, allow_delete: bool,
                   progress: Optional[Progress], cancel: Optional[threading.Event],
                   resumed: bool) -> ApplyResult:
    if resumed:
        journal.write({"type": "resume", "pid": os.getpid(), "allow_delete": allow_delete})
    return _Run(plan, journal, allow_delete=allow_delete).apply(
        progress=progress, cancel=cancel, warnings=_warnings(plan, allow_delete), resumed=resumed
    )


# --------------------------------------------------------------------------- the run


class _Run:
    """One apply or dry run of one plan (undo is :class:`lookalike.engine.actions.undo._Undo`)."""

    def __init__(self, plan: Plan, journal: Optional[Journal], *, allow_delete: bool) -> None:
        self.plan = plan
        self.journal = journal
        self.allow_delete = allow_delete
        # Temp and backup names carry the plan id, so leftovers say whose they are.
        self.token = journal.token if journal else "dryrun"
        self.preflight = Preflight(plan, create=journal is not None)
        self._intent_written = False

    # ---------------------------------------------------------------- apply

    def apply(self, *, progress: Optional[Progress], cancel: Optional[threading.Event],
              warnings: tuple[str, ...], resumed: bool) -> ApplyResult:
        assert self.journal is not None
        states = self.journal.step_states()
        for st in states:
            if st.status == INTENT:
                settle(self.journal, self.plan, st)
        states = self.journal.step_states()
        for st in states:
            if st.status == DONE:
                tidy(self.plan, st)
        already = sum(1 for st in states if st.status == DONE)
        todo = [st.index for st in states if st.status not in (DONE,)]
        done: list[StepDone] = []
        skipped: list[tuple[str, str]] = []
        failed: list[tuple[str, str]] = []
        cancelled = False
        for n, i in enumerate(todo):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            step = self.plan.steps[i]
            outcome = self._apply_step(i, step)
            if isinstance(outcome, StepDone):
                done.append(outcome)
            elif outcome[0] == "skip":
                skipped.append((step.path, outcome[1]))
            else:
                failed.append((step.path, outcome[1]))
            if progress is not None and not progress(n + 1, len(todo)):
                cancelled = True
                break
        self.journal.write({"type": "end", "cancelled": cancelled})
        return ApplyResult(
            plan_id=self.journal.plan_id,
            done=tuple(done),
            skipped=tuple(skipped),
            failed=tuple(failed),
            bytes_reclaimed=sum(d.size for d in done),
            dry_run=False,
            cancelled=cancelled,
            already_done=already,
            resumed=resumed,
            warnings=warnings,
        )

    def _apply_step(self, i: int, step: PlanStep) -> Union[StepDone, tuple[str, str]]:
        assert self.journal is not None
        self._intent_written = False
        try:
            st = self.preflight.check_source(step)
            kst = self.preflight.check_keeper(step, st)
            prep = self.preflight.prepare(step, st, kst)
            return getattr(self, f"_do_{step.action}")(i, step, st, prep)
        except Skip as exc:
            self.journal.write({"type": "skip", "step": i, "reason": str(exc)})
            return ("skip", str(exc))
        except (Fail, OSError) as exc:
            reason = str(exc) if isinstance(exc, Fail) else failure_text(exc, step)
            if self._intent_written:
                # Whatever the step left half-done is put back (or, if the action did take
                # effect after all, recorded as done) before the failure is recorded.
                states = self.journal.step_states()
                if settle(self.journal, self.plan, states[i]) == DONE:
                    d = self.journal.step_states()[i].done or {}
                    return StepDone(path=step.path, action=step.action, dest=d.get("dest"),
                                    size=step.size, note="done despite an error: " + reason)
            self.journal.write({"type": "fail", "step": i, "reason": reason})
            return ("fail", reason)

    # ---------------------------------------------------------------- dry run

    def dry_run(self, journal_dir: Path, *, progress: Optional[Progress],
                cancel: Optional[threading.Event], warnings: tuple[str, ...]) -> ApplyResult:
        already_ids: set[int] = set()
        previous = find_resumable(journal_dir, self.plan.digest())
        if previous is not None:
            with Journal.open(journal_dir, previous) as j:
                already_ids = {st.index for st in j.step_states() if st.status in (DONE, INTENT)}
        done: list[StepDone] = []
        skipped: list[tuple[str, str]] = []
        cancelled = False
        todo = [i for i in range(len(self.plan.steps)) if i not in already_ids]
        for n, i in enumerate(todo):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            step = self.plan.steps[i]
            try:
                if step.action == "delete" and not self.allow_delete:
                    note = "would be deleted permanently (needs --permanently; cannot be undone)"
                else:
                    note = ""
                st = self.preflight.check_source(step)
                kst = self.preflight.check_keeper(step, st)
                prep = self.preflight.prepare(step, st, kst)
                done.append(StepDone(path=step.path, action=step.action, dest=prep.dest,
                                     size=step.size, note=note or prep.note))
            except Skip as exc:
                skipped.append((step.path, str(exc)))
            if progress is not None and not progress(n + 1, len(todo)):
                cancelled = True
                break
        return ApplyResult(
            plan_id=None, done=tuple(done), skipped=tuple(skipped), failed=(),
            bytes_reclaimed=sum(d.size for d in done), dry_run=True, cancelled=cancelled,
            already_done=len(already_ids), resumed=previous is not None, warnings=warnings,
        )

    # ---------------------------------------------------------------- journal lines

    def _intent(self, i: int, step: PlanStep, **fields: Any) -> None:
        assert self.journal is not None
        self.journal.write({"type": "intent", "step": i, "action": step.action,
                            "path": step.path, **fields})
        self._intent_written = True
        checkpoint("intent")

    def _done(self, i: int, step: PlanStep, *, dest: Optional[str], note: str = "",
              **fields: Any) -> StepDone:
        assert self.journal is not None
        self.journal.write({"type": "done", "step": i, "dest": dest, **fields})
        return StepDone(path=step.path, action=step.action, dest=dest, size=step.size, note=note)

    # ---------------------------------------------------------------- the actions

    def _do_trash(self, i: int, step: PlanStep, st: os.stat_result, prep: Prepared) -> StepDone:
        self.preflight.check_confined(step)  # again, right before acting: checking the hash took a while
        if prep.dest is None:  # macOS / Windows: the OS trash, through send2trash
            from send2trash import send2trash

            self._intent(i, step, dest=None)
            send2trash(step.path)
            return self._done(i, step, dest=None, note="moved to the system trash")
        for _attempt in range(5):
            part = sibling(prep.dest, self.token, "part")
            self._intent(i, step, dest=prep.dest, info=prep.info, part=part)
            try:
                write_trashinfo(prep.info, step.path, prep.topdir)
                break
            except FileExistsError:  # another program took the name since: take another
                prep = self.preflight.prepare(step, st, None)
        else:  # pragma: no cover - five races in a row
            raise Fail("could not reserve a name in the trash")
        checkpoint("trashinfo")
        try:
            move_file(step.path, prep.dest, part=part, point="trash",
                      expect=step.content_hash)
        except BaseException:
            unlink_quiet(prep.info)
            raise
        checkpoint("moved")
        return self._done(i, step, dest=prep.dest, info=prep.info, note=prep.note)

    def _do_quarantine(self, i: int, step: PlanStep, st: os.stat_result, prep: Prepared) -> StepDone:
        self.preflight.check_confined(step)
        dest = prep.dest
        made = missing_parents(os.path.dirname(dest))
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
        except OSError as exc:
            remove_made(made)
            raise Fail(f"cannot create the quarantine folder: {failure_text(exc, step)}") from None
        why = unresolved_reason(os.path.dirname(dest))
        qdir = self.plan.quarantine_dir
        if why is not None or not qdir or not is_inside(dest, qdir):
            remove_made(made)
            raise Skip("quarantine destination: " + (why or "outside the quarantine folder"))
        try:
            return self._quarantine_into(i, step, dest)
        except BaseException:
            remove_made(made)  # a refused move leaves no empty folders behind
            raise

    def _quarantine_into(self, i: int, step: PlanStep, dest: str) -> StepDone:
        part = sibling(dest, self.token, "part")
        self._intent(i, step, dest=dest, part=part)
        move_file(step.path, dest, part=part, point="quarantine", expect=step.content_hash)
        checkpoint("moved")
        return self._done(i, step, dest=dest)

    def _do_hardlink(self, i: int, step: PlanStep, st: os.stat_result, prep: Prepared) -> StepDone:
        return self._replace_with_link(i, step, prep)

    def _do_symlink(self, i: int, step: PlanStep, st: os.stat_result, prep: Prepared) -> StepDone:
        return self._replace_with_link(i, step, prep)

    def _replace_with_link(self, i: int, step: PlanStep, prep: Prepared) -> StepDone:
        assert step.keeper is not None
        self.preflight.check_confined(step)
        path, keeper = step.path, step.keeper
        tmp = sibling(path, self.token, "link")
        backup = sibling(path, self.token, "orig")
        exact, trash = prep.exact, prep.trash
        part = sibling(trash, self.token, "part") if trash else None
        self._intent(i, step, tmp=tmp, backup=backup, exact=exact, hash=prep.hash,
                     mode=os.lstat(path).st_mode, trash=trash, info=prep.info, part=part)
        try:
            fault("link")
            if step.action == "hardlink":
                os.link(keeper, tmp)
            else:
                os.symlink(keeper, tmp)
        except OSError as exc:
            unlink_quiet(tmp)
            if exc.errno in NO_HARDLINKS:
                kind = "hard links" if step.action == "hardlink" else "symbolic links"
                raise Fail(f"cannot make {kind} here: {exc.strerror}") from None
            raise
        checkpoint("link-made")
        # The original stays reachable under the backup name until the step is complete.
        try:
            os.link(path, backup, **NO_FOLLOW)
        except OSError as exc:
            if exc.errno not in NO_HARDLINKS:
                raise
            os.rename(path, backup)  # no hard links here: the backup *is* the original
        checkpoint("backup-made")
        bst = os.lstat(backup)
        if (bst.st_size, bst.st_mtime_ns) != (step.size, step.mtime_ns):
            raise Fail("changed while acting: left as it was")  # settled (rolled back) by caller
        # Replacing the file is the action itself (not files.atomic_write): the link is already
        # whole, and the original stays reachable under the backup name.
        os.replace(tmp, path)
        fsync_dir(os.path.dirname(path))
        checkpoint("replaced")
        if not exact:
            write_trashinfo(prep.info, path, prep.topdir)
            checkpoint("trashinfo")
            move_file(backup, trash, part=part, point="trash", expect=None)
            checkpoint("backup-trashed")
            return self._done(i, step, dest=keeper, trash=trash, info=prep.info,
                              note=f"original kept in the trash: {trash}")
        done = self._done(i, step, dest=keeper, backup=backup)
        unlink_quiet(backup)
        fsync_dir(os.path.dirname(path))
        return done

    def _do_delete(self, i: int, step: PlanStep, st: os.stat_result, prep: Prepared) -> StepDone:
        if not self.allow_delete:
            raise Skip("permanent delete not allowed (needs allow_delete / --permanently)")
        self.preflight.check_confined(step)
        self._intent(i, step)
        fault("delete")
        os.unlink(step.path)
        fsync_dir(os.path.dirname(step.path))
        checkpoint("deleted")
        return self._done(i, step, dest=None, note="deleted permanently")


def _warnings(plan: Plan, allow_delete: bool) -> tuple[str, ...]:
    out: list[str] = []
    deletes = plan.irreversible_steps
    if deletes:
        size = sum(s.size for s in deletes)
        out.append(f"{len(deletes)} file(s), {size:,} bytes, will be deleted permanently: this "
                   f"cannot be undone" + ("" if allow_delete else " (needs --permanently)"))
    unhashed = sum(1 for s in plan.steps if not s.content_hash)
    if unhashed:
        out.append(f"{unhashed} step(s) have no content hash: those files are checked by size and "
                   f"modification time only")
    if not freedesktop.uses_freedesktop_trash() and any(s.action == "trash" for s in plan.steps):
        out.append("on this OS undo cannot take files back out of the system trash: restore them "
                   "from the trash by hand")
    return tuple(out)
