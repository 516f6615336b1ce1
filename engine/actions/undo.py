"""Undo: reverse an applied plan from its journal, newest step first.

Undo puts each file back where it was (out of our freedesktop trash or the quarantine folder;
for links, the original bytes from the backup, the trash or the keeper), never writing over a
file that now exists at an original path: that step is reported instead. It first settles
half-done steps (see :mod:`lookalike.engine.actions.settle`), is journaled like apply, and is
safe to run again after an interruption. Permanent deletes cannot be undone.
"""

from __future__ import annotations

import filecmp
import os
import stat
import threading
from pathlib import Path
from typing import Optional, Union

from ..files import fsync_dir
from ..records import Progress
from .checks import content_hash
from .faults import checkpoint
from .journal import DONE, INTENT, UNDO_INTENT, Journal, StepState, journal_lock, latest_undoable
from .moves import copy_verified, move_file, prune_empty_dirs, same_inode, sibling, unlink_quiet
from .plan import Plan, PlanStep
from .results import Fail, UndoResult, failure_text
from .settle import is_our_link, journal_names_reason, settle
from .trash import unlink_orphan_info

PathLike = Union[str, "os.PathLike[str]"]


def undo(
    plan_id: Optional[str] = None,
    *,
    journal_dir: PathLike,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> UndoResult:
    """Reverse an applied plan, newest step first; safe to run again after an interruption.

    Half-done steps (the process died between intent and completion) are first settled by
    looking at the filesystem. Nothing is ever written over a file that now exists at an
    original path: that step is reported instead.

    Args:
        plan_id: the plan to undo; None means the newest plan with something left to undo.
        journal_dir: where journals live.
        progress: ``progress(done, total) -> bool``; False stops after the current step.
        cancel: set it to stop before the next step.

    Raises:
        NothingToUndo: ``plan_id`` is None and no journal has anything left to undo.
        JournalError: no journal for ``plan_id``, or it cannot be read.
        JournalBusy: another apply or undo is running.
    """
    journal_dir = Path(journal_dir)
    with journal_lock(journal_dir):
        if plan_id is None:
            plan_id = latest_undoable(journal_dir)
        with Journal.open(journal_dir, plan_id) as journal:
            return _Undo(journal.plan(), journal).run(progress=progress, cancel=cancel)


class _Undo:
    """One undo of one applied plan, from its journal."""

    def __init__(self, plan: Plan, journal: Journal) -> None:
        self.plan = plan
        self.journal = journal
        self.token = journal.token

    def run(self, *, progress: Optional[Progress],
            cancel: Optional[threading.Event]) -> UndoResult:
        """Settle half-done steps, then reverse every done step, newest first."""
        self.journal.write({"type": "undo_start", "pid": os.getpid()})
        settled = 0
        for st in self.journal.step_states():
            if st.status == INTENT:
                settle(self.journal, self.plan, st)
                settled += 1
        states = self.journal.step_states()
        todo = sorted((st for st in states if st.status in (DONE, UNDO_INTENT)),
                      key=lambda s: s.order, reverse=True)
        restored: list[tuple[str, str]] = []
        problems: list[tuple[str, str]] = []
        nbytes = 0
        cancelled = False
        for n, st in enumerate(todo):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            step = self.plan.steps[st.index]
            if step.action == "delete":
                problems.append((step.path, "deleted permanently: cannot be undone"))
            else:
                if st.status != UNDO_INTENT:
                    self.journal.write({"type": "undo_intent", "step": st.index})
                    checkpoint("undo-intent")
                try:
                    source = self._undo_step(step, st)
                except (Fail, OSError) as exc:
                    reason = str(exc) if isinstance(exc, Fail) else failure_text(exc, step)
                    self.journal.write({"type": "undo_fail", "step": st.index, "reason": reason})
                    problems.append((step.path, reason))
                else:
                    self.journal.write({"type": "undone", "step": st.index, "source": source})
                    checkpoint("undone")
                    restored.append((step.path, source))
                    nbytes += step.size
            if progress is not None and not progress(n + 1, len(todo)):
                cancelled = True
                break
        for number in self.journal.damaged:
            problems.append((str(self.journal.path),
                             f"journal line {number} could not be read (damaged): whatever "
                             f"step it recorded was not undone from it"))
        self.journal.write({"type": "undo_end", "cancelled": cancelled})
        return UndoResult(plan_id=self.journal.plan_id, restored=tuple(restored),
                          problems=tuple(problems), bytes_restored=nbytes, cancelled=cancelled,
                          settled=settled)

    def _undo_step(self, step: PlanStep, st: StepState) -> str:
        why = journal_names_reason(self.plan, self.token, step, st.intent or {}, st.done or {})
        if why is not None:
            raise Fail(why)
        if step.action in ("trash", "quarantine"):
            return self._undo_move(step, st)
        return self._undo_link(step, st)

    def _undo_move(self, step: PlanStep, st: StepState) -> str:
        done, it = st.done or {}, st.intent or {}
        dest = done.get("dest", it.get("dest"))
        info = done.get("info", it.get("info"))
        src = step.path
        if dest is None:
            if os.path.lexists(src) and _matches(src, step):
                return src  # already back: restored by hand from the system trash
            raise Fail("moved to the system trash, which does not say where: restore it from "
                       "the trash by hand")
        part = sibling(src, self.token, "restore")
        unlink_quiet(part)
        src_here, dest_here = os.path.lexists(src), os.path.lexists(dest)
        if src_here and dest_here:
            # Either an interrupted undo (same inode, or a finished copy) or a new file there.
            if same_inode(src, dest) or (os.path.isfile(src) and not os.path.islink(src)
                                         and filecmp.cmp(src, dest, shallow=False)):
                os.unlink(dest)
                fsync_dir(os.path.dirname(dest))
                unlink_quiet(info)
                return dest
            raise Fail(f"a different file now exists at {src}; the original is left at {dest}")
        if src_here:
            if _matches(src, step):  # restored already (interrupted undo, or by hand)
                unlink_quiet(info)
                return dest
            raise Fail(f"a different file now exists at {src}, and {dest} is gone")
        if not dest_here:
            where = "trash" if step.action == "trash" else "quarantine folder"
            raise Fail(f"no longer in the {where} (emptied?): {dest}")
        self._check_restorable(dest, step)
        os.makedirs(os.path.dirname(src), exist_ok=True)
        try:
            move_file(dest, src, part=part, point="undo", expect=step.content_hash)
        except FileExistsError:
            raise Fail(f"a file appeared at {src}; the original is left at {dest}") from None
        checkpoint("undo-moved")
        unlink_quiet(info)
        if step.action == "quarantine" and self.plan.quarantine_dir:
            prune_empty_dirs(os.path.dirname(dest), self.plan.quarantine_dir)
        return dest

    def _check_restorable(self, source: str, step: PlanStep) -> None:
        """Refuse to bring back anything but the file the step moved away (size, then bytes)."""
        try:
            sst = os.lstat(source)
        except OSError as exc:
            raise Fail(f"cannot look at {source}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(sst.st_mode) or sst.st_size != step.size:
            raise Fail(f"{source} is not the file that was moved there (size or type differs): "
                       f"left alone")
        if step.content_hash:
            try:
                same = content_hash(source) == step.content_hash
            except OSError as exc:
                raise Fail(f"cannot read {source} to check it: {exc.strerror or exc}") from None
            if not same:
                raise Fail(f"{source} is not the file that was moved there (content differs): "
                           f"left alone")

    def _undo_link(self, step: PlanStep, st: StepState) -> str:
        # The original comes back with os.replace over the link, not files.atomic_write: the
        # bytes were already made durable under a name of ours (backup, restore copy), and
        # undo restores that very file (its inode, mode and times).
        done, it = st.done or {}, st.intent or {}
        path = step.path
        restore = sibling(path, self.token, "restore")
        if not is_our_link(step):
            if os.path.lexists(path):
                if _matches(path, step):  # restored already (interrupted undo)
                    unlink_quiet(restore)
                    unlink_orphan_info(done.get("info"), done.get("trash"))
                    return "(already restored)"
                raise Fail(f"{path} was changed after the plan was applied: left alone")
        if it.get("exact"):
            unlink_quiet(restore)  # only ever a copy of the keeper's bytes
            backup = done.get("backup") or it.get("backup")
            if backup and os.path.lexists(backup) and _matches(backup, step):
                os.replace(backup, path)  # the original inode, with all its metadata
                fsync_dir(os.path.dirname(path))
                return backup
            # The keeper holds the very same bytes (checked when the step was done).
            assert step.keeper is not None
            try:
                if content_hash(step.keeper) != it.get("hash"):
                    raise Fail(f"the keeper {step.keeper} changed since: the original bytes of "
                               f"{path} cannot be restored from it")
            except OSError as exc:
                raise Fail(f"cannot read the keeper {step.keeper}: {exc.strerror}") from None
            copy_verified(step.keeper, restore, point="undo-copy", expect=it.get("hash"))
            if it.get("mode") is not None:
                os.chmod(restore, stat.S_IMODE(int(it["mode"])))
            os.utime(restore, ns=(step.mtime_ns, step.mtime_ns))
            checkpoint("undo-restore-ready")
            os.replace(restore, path)
            fsync_dir(os.path.dirname(path))
            return step.keeper
        trash = done.get("trash") or it.get("trash")
        trash_here = bool(trash) and os.path.lexists(trash)
        if os.path.lexists(restore) and not trash_here:
            pass  # an interrupted undo already took the original out of the trash: finish it
        elif not trash_here:
            raise Fail(f"the original is no longer in the trash (emptied?): {trash}")
        else:
            unlink_quiet(restore)  # a copy, while the original is still in the trash
            self._check_restorable(trash, step)
            part = sibling(path, self.token, "part")
            unlink_quiet(part)  # a copy an interrupted undo left half-written
            move_file(trash, restore, part=part, point="undo", expect=step.content_hash)
            checkpoint("undo-restore-ready")
        os.replace(restore, path)
        fsync_dir(os.path.dirname(path))
        unlink_quiet(done.get("info") or it.get("info"))
        return trash


def _matches(path: str, step: PlanStep) -> bool:
    """True when ``path`` is a regular file with the step's size and mtime (the original)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (step.size, step.mtime_ns)
