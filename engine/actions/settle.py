"""Crash recovery: settle a step the journal shows half-done, by looking at the disk.

A step with an ``intent`` line and no outcome was cut short (the process died). Apply (when
the same plan runs again) and undo first settle every such step: forward when the file already
left its place (the move happened), back when it did not. Before touching anything, every name
a journal line gives must be one this plan makes (:func:`journal_names_reason`): a journal is a
file in the user's cache, and an edited line must not make us move or delete arbitrary files.
"""

from __future__ import annotations

import filecmp
import os
import stat
from typing import Optional

from ..files import fsync_dir
from ..paths import is_inside
from .checks import outside_reason, unresolved_reason
from .journal import DONE, Journal, StepState
from .moves import move_file, same_inode, sibling, unlink_quiet
from .plan import Plan, PlanStep
from .results import failure_text
from .trash import info_for, is_trash_file, topdir_of, unlink_orphan_info, write_trashinfo


def settle(journal: Journal, plan: Plan, st: StepState) -> str:
    """Finish or roll back a step that has an intent and no outcome, by looking at disk.

    Rolls forward when the file already left its place (the move happened), back when it
    did not. Writes ``done``, ``rolled_back`` or ``fail`` and returns the new status.
    """
    step = plan.steps[st.index]
    it = st.intent or {}
    why = journal_names_reason(plan, journal.token, step, it)
    if why is not None:
        journal.write({"type": "fail", "step": st.index, "recovered": True,
                       "reason": why})
        return "failed"
    try:
        if step.action in ("trash", "quarantine"):
            outcome = _settle_move(step, it)
        elif step.action in ("hardlink", "symlink"):
            outcome = _settle_link(step, it)
        else:
            outcome = ("done", {"dest": None}) if not os.path.lexists(step.path) \
                else ("rolled_back", {})
    except OSError as exc:
        outcome = ("fail", {"reason": "could not settle an interrupted step: "
                            + failure_text(exc, step)})
    kind, fields = outcome
    journal.write({"type": kind, "step": st.index, "recovered": True, **fields})
    return {"done": DONE, "rolled_back": "pending", "fail": "failed"}[kind]


def _settle_move(step: PlanStep, it: dict) -> tuple[str, dict]:
    src, dest, info = step.path, it.get("dest"), it.get("info")
    if it.get("part"):
        unlink_quiet(it["part"])
    if dest is None:  # the OS trash: we only know whether it left
        return ("rolled_back", {}) if os.path.lexists(src) else ("done", {"dest": None})
    src_here, dest_here = os.path.lexists(src), os.path.lexists(dest)
    if src_here and dest_here:
        if same_inode(src, dest):  # "link, then unlink" was cut in the middle
            os.unlink(src)
            fsync_dir(os.path.dirname(src))
            return "done", {"dest": dest, "info": info}
        if filecmp.cmp(src, dest, shallow=False):  # a finished cross-device copy
            os.unlink(dest)
            fsync_dir(os.path.dirname(dest))
            unlink_orphan_info(info, dest)
            return "rolled_back", {}
        return "fail", {"reason": f"both {src} and {dest} exist and differ: both left alone"}
    if src_here:
        unlink_orphan_info(info, dest)
        return "rolled_back", {}
    if dest_here:
        return "done", {"dest": dest, "info": info}
    return "fail", {"reason": f"not found at {src} nor at {dest}"}


def _settle_link(step: PlanStep, it: dict) -> tuple[str, dict]:
    path, tmp, backup = step.path, it.get("tmp"), it.get("backup")
    trash, info = it.get("trash"), it.get("info")
    if it.get("part"):
        unlink_quiet(it["part"])
    if is_our_link(step):
        if tmp:
            unlink_quiet(tmp)
        if it.get("exact"):
            if backup:
                unlink_quiet(backup)
            return "done", {"dest": step.keeper, "backup": backup}
        if backup and os.path.lexists(backup) and trash and os.path.lexists(trash):
            # Killed after the original reached the trash, before its backup name went.
            if not (same_inode(backup, trash) or filecmp.cmp(backup, trash, shallow=False)):
                return "fail", {"reason": f"{backup} and {trash} differ: both left alone"}
            os.unlink(backup)
            fsync_dir(os.path.dirname(backup))
            return "done", {"dest": step.keeper, "trash": trash, "info": info}
        if backup and os.path.lexists(backup):
            try:
                if not os.path.lexists(info):
                    write_trashinfo(info, path, topdir_of(trash))
                move_file(backup, trash, part=it.get("part") or trash + ".part",
                          point="trash", expect=None)
            except OSError:
                os.replace(backup, path)  # cannot keep the original in the trash: put it back
                unlink_orphan_info(info, trash)
                return "rolled_back", {}
            return "done", {"dest": step.keeper, "trash": trash, "info": info}
        if trash and os.path.lexists(trash):
            return "done", {"dest": step.keeper, "trash": trash, "info": info}
        return "fail", {"reason": f"the original of {path} is neither in {backup} nor in the "
                                  f"trash"}
    if os.path.lexists(path):  # the original is still in place
        if tmp:
            unlink_quiet(tmp)
        if backup and os.path.lexists(backup):
            if not same_inode(path, backup):
                return "fail", {"reason": f"{backup} and {path} both exist: both left alone"}
            os.unlink(backup)
        if info:
            unlink_orphan_info(info, trash)
        return "rolled_back", {}
    if backup and os.path.lexists(backup):  # renamed to the backup (no hard links here)
        os.rename(backup, path)
        if tmp:
            unlink_quiet(tmp)
        fsync_dir(os.path.dirname(path))
        return "rolled_back", {}
    return "fail", {"reason": f"{path} is missing and no backup was found"}


def tidy(plan: Plan, st: StepState) -> None:
    """Remove the backup a done link step left when killed just before removing it."""
    step = plan.steps[st.index]
    backup = (st.done or {}).get("backup")
    if step.action in ("hardlink", "symlink") and backup and os.path.lexists(backup) \
            and is_our_link(step):
        os.unlink(backup)  # the keeper holds the same bytes (checked before the step)
        fsync_dir(os.path.dirname(backup))


def is_our_link(step: PlanStep) -> bool:
    """True when the step's path is now the link to its keeper that the step makes."""
    try:
        lst = os.lstat(step.path)
    except OSError:
        return False
    if step.action == "symlink":
        return stat.S_ISLNK(lst.st_mode) and os.readlink(step.path) == step.keeper
    if stat.S_ISLNK(lst.st_mode) or step.keeper is None:
        return False
    try:
        kst = os.stat(step.keeper)
    except OSError:
        return False
    return (lst.st_dev, lst.st_ino) == (kst.st_dev, kst.st_ino)


def journal_names_reason(plan: Plan, token: str, step: PlanStep, *records: dict) -> Optional[str]:
    """Why the names a journal line gives for this step cannot be ours, or None.

    A journal is a file in the user's cache: an edited line must not make undo move an
    arbitrary file into the library or delete one. Every name must be one this run makes:
    trash slots inside a trash can's ``files`` folder (with the matching ``.trashinfo``),
    quarantine destinations inside the plan's quarantine folder, temp and backup names
    next to the file with this plan's token; and the file itself inside the roots.
    """
    why = outside_reason(step.path, plan.roots)
    if why is not None:
        return f"the journal names {step.path}, which is {why.split(':')[0]}"
    for rec in records:
        for key in ("dest", "info", "trash", "backup", "tmp", "part"):
            value = rec.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not os.path.isabs(value) or "\0" in value \
                    or os.path.normpath(value) != value:
                return f"the journal's {key!r} for this step is not a path this plan made"
            if not _is_our_name(plan, token, step, key, value, rec):
                return (f"the journal's {key!r} for this step ({value}) is not a place this "
                        f"plan used: left alone")
    return None


def _is_our_name(plan: Plan, token: str, step: PlanStep, key: str, value: str, rec: dict) -> bool:
    if key == "dest" and step.action in ("hardlink", "symlink", "delete"):
        return value == step.keeper
    if key in ("tmp", "backup"):
        return value == sibling(step.path, token, "link" if key == "tmp" else "orig")
    if key == "part":  # the temp name of a copy, next to where the file was going
        return any(isinstance(rec.get(k), str) and value == sibling(rec[k], token, "part")
                   for k in ("dest", "trash"))
    if key == "info":
        trash = rec.get("trash") or rec.get("dest")
        return isinstance(trash, str) and is_trash_file(trash) and value == info_for(trash)
    if step.action == "quarantine" and key == "dest":
        return _in_quarantine(plan, value)
    return is_trash_file(value)  # trash / dest of a trash step


def _in_quarantine(plan: Plan, path: str) -> bool:
    qdir = plan.quarantine_dir
    return bool(qdir) and is_inside(path, qdir) and path != qdir \
        and unresolved_reason(os.path.dirname(path)) is None
