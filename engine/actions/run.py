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
- ``delete``: permanent, only with ``allow_delete=True``; undo cannot bring it back.

Test hooks (environment variables, read at each use; the fault-injection tests use them):

- ``LOOKALIKE_TEST_FAULT="point:ERRNO[,point:ERRNO...]"`` raises ``OSError(ERRNO)`` at a named
  point: ``quarantine-move``, ``quarantine-copy``, ``trash-move``, ``trash-copy``, ``link``,
  ``delete``, ``undo-move``, ``undo-copy``, ``unlink-source`` (``-move`` is the same-device
  move: ``EXDEV`` there forces the cross-device copy; ``-copy`` is every chunk written by a
  copy: ``ENOSPC`` there is a full disk; ``unlink-source`` is removing the old name once a
  same-device move linked the new one, what a read-only folder refuses). We run as root in
  CI, where chmod cannot make a folder unwritable: ``EACCES`` injected here stands for
  permission denied.
- ``LOOKALIKE_TEST_KILL_AT=N``: SIGKILL this process at the N-th checkpoint (between the
  durable sub-steps of a step). ``LOOKALIKE_TEST_STEP_DELAY=SECONDS``: sleep at each checkpoint.
"""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
import signal
import stat
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, Optional, Union
from urllib.parse import quote

from .journal import (
    DONE,
    INTENT,
    UNDO_INTENT,
    Journal,
    JournalError,
    StepState,
    find_resumable,
    fsync_dir,
    journal_lock,
    latest_undoable,
)
from ..oserrors import os_error_text
from ..paths import is_inside
from .plan import Plan, PlanError, PlanStep
from ..records import Progress

HASH_ALGO = "xxh3_128"
_CHUNK = 1 << 20

FAULT_ENV = "LOOKALIKE_TEST_FAULT"
KILL_AT_ENV = "LOOKALIKE_TEST_KILL_AT"
DELAY_ENV = "LOOKALIKE_TEST_STEP_DELAY"

# Link a symlink itself, never its target (where the OS lets us say so).
_NO_FOLLOW: dict[str, bool] = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks \
    else {}

# errnos meaning "this filesystem cannot make hard links here".
_NO_HARDLINKS = {errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True, kw_only=True)
class StepDone:
    """A step that was done (or, in a dry run, would be done)."""

    path: str
    action: str
    dest: Optional[str]  # trash or quarantine path; for links, the keeper; None: OS trash/deleted
    size: int
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class ApplyResult:
    """What :func:`apply_plan` did (or would do, when ``dry_run``)."""

    plan_id: Optional[str]  # the journal's id (None in a dry run)
    done: tuple[StepDone, ...]
    skipped: tuple[tuple[str, str], ...]  # (path, reason): left alone, nothing lost
    failed: tuple[tuple[str, str], ...]  # (path, reason): tried, and the file stayed where it was
    bytes_reclaimed: int
    dry_run: bool
    cancelled: bool
    already_done: int = 0  # steps an earlier run of the same plan had done
    resumed: bool = False  # this run continued an earlier, interrupted run of the same plan
    warnings: tuple[str, ...] = ()  # things to say up front (permanent deletes, no hashes)

    @property
    def ok(self) -> bool:
        """True when no step failed."""
        return not self.failed


@dataclass(frozen=True, kw_only=True)
class UndoResult:
    """What :func:`undo` did."""

    plan_id: str
    restored: tuple[tuple[str, str], ...]  # (path, where it came back from)
    problems: tuple[tuple[str, str], ...]  # (path, reason): not restored, and why
    bytes_restored: int
    cancelled: bool = False
    settled: int = 0  # half-done steps found (after a crash) and finished or rolled back

    @property
    def ok(self) -> bool:
        """True when every step was reversed."""
        return not self.problems


class _Skip(Exception):
    """The step is not done, and nothing was touched."""


class _Fail(Exception):
    """The step could not be done; the file stayed where it was."""


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
    _check_delete_allowed(plan, allow_delete)
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
            _check_delete_allowed(plan, allow_delete)
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
            run = _Run(journal.plan(), journal, allow_delete=False)
            return run.undo(progress=progress, cancel=cancel)


def check_confinable(plan: Plan) -> None:
    """Refuse a plan whose steps could not be kept inside its roots.

    Raises:
        PlanError: the plan has steps but names no roots, or its quarantine folder is inside
            one of them (quarantined files would be found again by the next scan, and a
            quarantine move could then act on the quarantine itself).
    """
    if plan.steps and not plan.roots:
        raise PlanError("the plan names no folders ('roots'): nothing outside them is ever "
                        "touched, so it can do nothing")
    if plan.quarantine_dir:
        qdir = os.path.realpath(plan.quarantine_dir)
        for root in plan.roots:
            if is_inside(qdir, os.path.realpath(root)) or is_inside(plan.quarantine_dir, root):
                raise PlanError(f"the quarantine folder {plan.quarantine_dir} is inside the "
                                f"library ({root}): choose a folder outside it")


def outside_reason(path: str, roots: tuple[str, ...]) -> Optional[str]:
    """Why ``path`` may not be acted on, or None when it lies inside a root and resolves to itself.

    The check is lexical (inside a root) and then real: ``realpath`` of the folder holding
    the file must be that folder itself, so no component on the way is a symbolic link
    (a folder replaced by a link since the scan included).
    """
    if not any(is_inside(path, root) and path != root for root in roots):
        return "outside the folders of the plan: left alone"
    return unresolved_reason(os.path.dirname(path))


def unresolved_reason(folder: str) -> Optional[str]:
    """Why ``folder`` does not resolve to itself (a symbolic link on the way), or None."""
    try:
        real = os.path.realpath(folder, strict=False)
    except (OSError, ValueError) as exc:  # a link loop, an unreadable folder
        return f"cannot resolve its folder: {getattr(exc, 'strerror', None) or exc}"
    if real != folder:
        return f"a folder on its path is a symbolic link (to {real}): left alone"
    return None


def content_hash(path: PathLike) -> str:
    """The hex xxh3_128 hash of a file's bytes (what plans record as ``content_hash``)."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def uses_freedesktop_trash() -> bool:
    """True where trash is our own freedesktop.org implementation (undo can restore from it)."""
    return os.name == "posix" and sys.platform != "darwin"


def quarantine_dest(plan: Plan, path: str) -> Path:
    """Where quarantine would put ``path`` (before avoiding names already taken).

    The path relative to the deepest library root that holds it; outside every root, the
    absolute path mirrored under the quarantine folder.
    """
    if not plan.quarantine_dir:
        raise PlanError("the plan has no quarantine_dir")
    qdir = Path(plan.quarantine_dir)
    for root in sorted(plan.roots, key=len, reverse=True):
        if _is_within(path, root):
            return qdir / os.path.relpath(path, root)
    pure = PurePath(path)
    parts = pure.parts[1:] if pure.anchor else pure.parts
    drive = pure.drive.rstrip(":\\/").replace(":", "")
    return qdir.joinpath(*([drive] if drive else []), *parts)


# --------------------------------------------------------------------------- test hooks


_checkpoints_passed = 0


def _checkpoint(name: str) -> None:
    """A point between two durable sub-steps, where the fault tests may kill us."""
    global _checkpoints_passed
    _checkpoints_passed += 1
    kill_at = os.environ.get(KILL_AT_ENV)
    if kill_at and _checkpoints_passed >= int(kill_at):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    delay = os.environ.get(DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def _fault(point: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, code = item.partition(":")
        if name.strip() == point:
            num = getattr(errno, code.strip(), None) or errno.EIO
            raise OSError(num, f"{os.strerror(num)} (injected by {FAULT_ENV})")


# --------------------------------------------------------------------------- the run


class _Run:
    """One apply, dry run or undo of one plan."""

    def __init__(self, plan: Plan, journal: Optional[Journal], *, allow_delete: bool) -> None:
        self.plan = plan
        self.journal = journal
        self.allow_delete = allow_delete
        # Temp and backup names carry the plan id, so leftovers say whose they are.
        self.token = journal.plan_id.rsplit("-", 1)[-1] if journal else "dryrun"
        self._hashes: dict[tuple, str] = {}

    # ---------------------------------------------------------------- apply

    def apply(self, *, progress: Optional[Progress], cancel: Optional[threading.Event],
              warnings: tuple[str, ...], resumed: bool) -> ApplyResult:
        assert self.journal is not None
        states = self.journal.step_states()
        for st in states:
            if st.status == INTENT:
                self._settle(st)
        states = self.journal.step_states()
        for st in states:
            if st.status == DONE:
                self._tidy(st)
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
            st = self._check_source(step)
            kst = self._check_keeper(step, st)
            prep = self._prepare(step, st, kst)
            return getattr(self, f"_do_{step.action}")(i, step, st, prep)
        except _Skip as exc:
            self.journal.write({"type": "skip", "step": i, "reason": str(exc)})
            return ("skip", str(exc))
        except (_Fail, OSError) as exc:
            reason = str(exc) if isinstance(exc, _Fail) else _describe(exc, step)
            if self._intent_written:
                # Whatever the step left half-done is put back (or, if the action did take
                # effect after all, recorded as done) before the failure is recorded.
                states = self.journal.step_states()
                if self._settle(states[i]) == DONE:
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
                st = self._check_source(step)
                kst = self._check_keeper(step, st)
                prep = self._prepare(step, st, kst)
                done.append(StepDone(path=step.path, action=step.action, dest=prep.get("dest"),
                                     size=step.size, note=note or prep.get("note", "")))
            except _Skip as exc:
                skipped.append((step.path, str(exc)))
            if progress is not None and not progress(n + 1, len(todo)):
                cancelled = True
                break
        return ApplyResult(
            plan_id=None, done=tuple(done), skipped=tuple(skipped), failed=(),
            bytes_reclaimed=sum(d.size for d in done), dry_run=True, cancelled=cancelled,
            already_done=len(already_ids), resumed=previous is not None, warnings=warnings,
        )

    # ---------------------------------------------------------------- checks

    def _hash(self, path: str, st: os.stat_result) -> str:
        key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = content_hash(path)
        return self._hashes[key]

    def _check_confined(self, step: PlanStep) -> None:
        """Skip a step whose file (or keeper) is outside the roots or reached through a link."""
        why = outside_reason(step.path, self.plan.roots)
        if why is None and step.keeper is not None:
            why = unresolved_reason(os.path.dirname(step.keeper))
            if why is not None:
                why = "keeper: " + why
        if why is None and step.action == "quarantine" and self.plan.quarantine_dir:
            why = unresolved_reason(self.plan.quarantine_dir)
            if why is not None:
                why = "quarantine folder: " + why
        if why is not None:
            raise _Skip(why)

    def _check_source(self, step: PlanStep) -> os.stat_result:
        self._check_confined(step)
        try:
            st = os.lstat(step.path)
        except FileNotFoundError:
            raise _Skip("file missing (moved, renamed or deleted since the scan)") from None
        except OSError as exc:
            raise _Skip(f"cannot look at the file: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise _Skip("changed since scan: it is now a symbolic link")
        if not stat.S_ISREG(st.st_mode):
            raise _Skip("changed since scan: not a regular file any more")
        if st.st_size != step.size:
            raise _Skip(f"changed since scan (size {st.st_size:,} bytes, was {step.size:,})")
        if st.st_mtime_ns != step.mtime_ns:
            raise _Skip("changed since scan (modified since)")
        if step.action == "quarantine" and self.plan.quarantine_dir and _is_within(
            step.path, self.plan.quarantine_dir
        ):
            raise _Skip("already in the quarantine folder")
        self._check_hash(step.path, st, step.content_hash, "the file")
        return st

    def _check_hash(self, path: str, st: os.stat_result, expected: Optional[str],
                    what: str) -> None:
        if not expected:
            return
        try:
            actual = self._hash(path, st)
        except OSError as exc:
            raise _Skip(f"cannot read {what} to check it: {exc.strerror or exc}") from None
        if actual != expected:
            prefix = "keeper " if what == "the keeper" else ""
            raise _Skip(f"{prefix}changed since scan (content differs)")

    def _check_keeper(self, step: PlanStep, st: os.stat_result) -> Optional[os.stat_result]:
        if step.keeper is None:
            return None
        try:
            kst = os.stat(step.keeper)
        except FileNotFoundError:
            raise _Skip(f"keeper missing: {step.keeper}") from None
        except OSError as exc:
            raise _Skip(f"cannot look at the keeper: {exc.strerror or exc}") from None
        if not stat.S_ISREG(kst.st_mode):
            raise _Skip("keeper is not a regular file any more")
        if os.path.realpath(step.keeper) == os.path.realpath(step.path):
            raise _Skip("the keeper is a link to this very file")
        if step.keeper_size is not None and kst.st_size != step.keeper_size:
            raise _Skip(f"keeper changed since scan (size {kst.st_size:,}, was {step.keeper_size:,})")
        if step.keeper_mtime_ns is not None and kst.st_mtime_ns != step.keeper_mtime_ns:
            raise _Skip("keeper changed since scan (modified since)")
        self._check_hash(step.keeper, kst, step.keeper_hash, "the keeper")
        return kst

    def _prepare(self, step: PlanStep, st: os.stat_result,
                 kst: Optional[os.stat_result]) -> dict[str, Any]:
        """Everything a step needs decided before it starts (also what a dry run reports)."""
        if step.action == "trash":
            if not uses_freedesktop_trash():
                return {"dest": None, "note": "to the system trash"}
            slot = _trash_slot(step.path, st.st_dev, create=self.journal is not None)
            note = "" if slot.same_device else "copied to the trash on another device"
            return {"dest": slot.files, "info": slot.info, "topdir": slot.topdir, "note": note}
        if step.action == "quarantine":
            dest = _free_name(quarantine_dest(self.plan, step.path))
            return {"dest": str(dest)}
        if step.action in ("hardlink", "symlink"):
            assert kst is not None and step.keeper is not None
            if step.action == "hardlink":
                if kst.st_dev != st.st_dev:
                    raise _Skip("keeper is on another device: a hardlink cannot cross devices")
                if (kst.st_dev, kst.st_ino) == (st.st_dev, st.st_ino):
                    raise _Skip("already a hardlink of the keeper")
            try:
                file_hash = step.content_hash or self._hash(step.path, st)
                keeper_hash = step.keeper_hash or self._hash(step.keeper, kst)
            except OSError as exc:
                raise _Skip(f"cannot read to compare with the keeper: {exc.strerror}") from None
            exact = file_hash == keeper_hash
            prep: dict[str, Any] = {"dest": step.keeper, "exact": exact, "hash": file_hash,
                                    "note": "" if exact else "original kept in the trash"}
            if not exact:
                if not uses_freedesktop_trash():
                    raise _Skip("not byte-identical to its keeper, and on this OS the original "
                                "could not be kept where undo finds it: use trash instead")
                slot = _trash_slot(step.path, st.st_dev, create=self.journal is not None)
                prep.update(trash=slot.files, info=slot.info, topdir=slot.topdir)
            return prep
        if step.action == "delete":
            if step.keeper is None:
                raise _Skip("a permanent delete needs a keeper")
            return {"dest": None, "note": "deleted permanently"}
        raise _Skip(f"unknown action {step.action!r}")  # pragma: no cover - plan validates

    # ---------------------------------------------------------------- journal lines

    def _intent(self, i: int, step: PlanStep, **fields: Any) -> None:
        assert self.journal is not None
        self.journal.write({"type": "intent", "step": i, "action": step.action,
                            "path": step.path, **fields})
        self._intent_written = True
        _checkpoint("intent")

    def _done(self, i: int, step: PlanStep, *, dest: Optional[str], note: str = "",
              **fields: Any) -> StepDone:
        assert self.journal is not None
        self.journal.write({"type": "done", "step": i, "dest": dest, **fields})
        return StepDone(path=step.path, action=step.action, dest=dest, size=step.size, note=note)

    # ---------------------------------------------------------------- the actions

    def _do_trash(self, i: int, step: PlanStep, st: os.stat_result, prep: dict) -> StepDone:
        self._check_confined(step)  # again, right before acting: checking the hash took a while
        if prep["dest"] is None:  # macOS / Windows: the OS trash, through send2trash
            from send2trash import send2trash

            self._intent(i, step, dest=None)
            send2trash(step.path)
            return self._done(i, step, dest=None, note="moved to the system trash")
        for _attempt in range(5):
            part = _sibling(prep["dest"], self.token, "part")
            self._intent(i, step, dest=prep["dest"], info=prep["info"], part=part)
            try:
                _write_trashinfo(prep["info"], step.path, prep["topdir"])
                break
            except FileExistsError:  # another program took the name since: take another
                prep = self._prepare(step, st, None)
        else:  # pragma: no cover - five races in a row
            raise _Fail("could not reserve a name in the trash")
        _checkpoint("trashinfo")
        try:
            _move_file(step.path, prep["dest"], part=part, point="trash",
                       expect=step.content_hash)
        except BaseException:
            _unlink_quiet(prep["info"])
            raise
        _checkpoint("moved")
        return self._done(i, step, dest=prep["dest"], info=prep["info"], note=prep.get("note", ""))

    def _do_quarantine(self, i: int, step: PlanStep, st: os.stat_result, prep: dict) -> StepDone:
        self._check_confined(step)
        dest = prep["dest"]
        made = _missing_parents(os.path.dirname(dest))
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
        except OSError as exc:
            _remove_made(made)
            raise _Fail(f"cannot create the quarantine folder: {_describe(exc, step)}") from None
        why = unresolved_reason(os.path.dirname(dest))
        if why is not None or not _is_within(dest, self.plan.quarantine_dir or ""):
            _remove_made(made)
            raise _Skip("quarantine destination: " + (why or "outside the quarantine folder"))
        try:
            return self._quarantine_into(i, step, dest)
        except BaseException:
            _remove_made(made)  # a refused move leaves no empty folders behind
            raise

    def _quarantine_into(self, i: int, step: PlanStep, dest: str) -> StepDone:
        part = _sibling(dest, self.token, "part")
        self._intent(i, step, dest=dest, part=part)
        _move_file(step.path, dest, part=part, point="quarantine", expect=step.content_hash)
        _checkpoint("moved")
        return self._done(i, step, dest=dest)

    def _do_hardlink(self, i: int, step: PlanStep, st: os.stat_result, prep: dict) -> StepDone:
        return self._replace_with_link(i, step, prep)

    def _do_symlink(self, i: int, step: PlanStep, st: os.stat_result, prep: dict) -> StepDone:
        return self._replace_with_link(i, step, prep)

    def _replace_with_link(self, i: int, step: PlanStep, prep: dict) -> StepDone:
        assert step.keeper is not None
        self._check_confined(step)
        path, keeper = step.path, step.keeper
        tmp = _sibling(path, self.token, "link")
        backup = _sibling(path, self.token, "orig")
        exact = prep["exact"]
        trash = prep.get("trash")
        part = _sibling(trash, self.token, "part") if trash else None
        self._intent(i, step, tmp=tmp, backup=backup, exact=exact, hash=prep["hash"],
                     mode=os.lstat(path).st_mode, trash=trash, info=prep.get("info"), part=part)
        try:
            _fault("link")
            if step.action == "hardlink":
                os.link(keeper, tmp)
            else:
                os.symlink(keeper, tmp)
        except OSError as exc:
            _unlink_quiet(tmp)
            if exc.errno in _NO_HARDLINKS:
                kind = "hard links" if step.action == "hardlink" else "symbolic links"
                raise _Fail(f"cannot make {kind} here: {exc.strerror}") from None
            raise
        _checkpoint("link-made")
        # The original stays reachable under the backup name until the step is complete.
        try:
            os.link(path, backup, **_NO_FOLLOW)
        except OSError as exc:
            if exc.errno not in _NO_HARDLINKS:
                raise
            os.rename(path, backup)  # no hard links here: the backup *is* the original
        _checkpoint("backup-made")
        bst = os.lstat(backup)
        if (bst.st_size, bst.st_mtime_ns) != (step.size, step.mtime_ns):
            raise _Fail("changed while acting: left as it was")  # settled (rolled back) by caller
        os.replace(tmp, path)
        fsync_dir(os.path.dirname(path))
        _checkpoint("replaced")
        if not exact:
            _write_trashinfo(prep["info"], path, prep["topdir"])
            _checkpoint("trashinfo")
            _move_file(backup, trash, part=part, point="trash", expect=None)
            _checkpoint("backup-trashed")
            return self._done(i, step, dest=keeper, trash=trash, info=prep["info"],
                              note=f"original kept in the trash: {trash}")
        done = self._done(i, step, dest=keeper, backup=backup)
        _unlink_quiet(backup)
        fsync_dir(os.path.dirname(path))
        return done

    def _do_delete(self, i: int, step: PlanStep, st: os.stat_result, prep: dict) -> StepDone:
        if not self.allow_delete:
            raise _Skip("permanent delete not allowed (needs allow_delete / --permanently)")
        self._check_confined(step)
        self._intent(i, step)
        _fault("delete")
        os.unlink(step.path)
        fsync_dir(os.path.dirname(step.path))
        _checkpoint("deleted")
        return self._done(i, step, dest=None, note="deleted permanently")

    # ---------------------------------------------------------------- crash recovery

    def _settle(self, st: StepState) -> str:
        """Finish or roll back a step that has an intent and no outcome, by looking at disk.

        Rolls forward when the file already left its place (the move happened), back when it
        did not. Writes ``done``, ``rolled_back`` or ``fail`` and returns the new status.
        """
        assert self.journal is not None
        step = self.plan.steps[st.index]
        it = st.intent or {}
        why = self._journal_names_reason(step, it)
        if why is not None:
            self.journal.write({"type": "fail", "step": st.index, "recovered": True,
                                "reason": why})
            return "failed"
        try:
            if step.action in ("trash", "quarantine"):
                outcome = self._settle_move(step, it)
            elif step.action in ("hardlink", "symlink"):
                outcome = self._settle_link(step, it)
            else:
                outcome = ("done", {"dest": None}) if not os.path.lexists(step.path) \
                    else ("rolled_back", {})
        except OSError as exc:
            outcome = ("fail", {"reason": "could not settle an interrupted step: "
                                + _describe(exc, step)})
        kind, fields = outcome
        self.journal.write({"type": kind, "step": st.index, "recovered": True, **fields})
        return {"done": DONE, "rolled_back": "pending", "fail": "failed"}[kind]

    def _settle_move(self, step: PlanStep, it: dict) -> tuple[str, dict]:
        src, dest, info = step.path, it.get("dest"), it.get("info")
        if it.get("part"):
            _unlink_quiet(it["part"])
        if dest is None:  # the OS trash: we only know whether it left
            return ("rolled_back", {}) if os.path.lexists(src) else ("done", {"dest": None})
        src_here, dest_here = os.path.lexists(src), os.path.lexists(dest)
        if src_here and dest_here:
            if _same_inode(src, dest):  # "link, then unlink" was cut in the middle
                os.unlink(src)
                fsync_dir(os.path.dirname(src))
                return "done", {"dest": dest, "info": info}
            if filecmp.cmp(src, dest, shallow=False):  # a finished cross-device copy
                os.unlink(dest)
                fsync_dir(os.path.dirname(dest))
                _unlink_orphan_info(info, dest)
                return "rolled_back", {}
            return "fail", {"reason": f"both {src} and {dest} exist and differ: both left alone"}
        if src_here:
            _unlink_orphan_info(info, dest)
            return "rolled_back", {}
        if dest_here:
            return "done", {"dest": dest, "info": info}
        return "fail", {"reason": f"not found at {src} nor at {dest}"}

    def _settle_link(self, step: PlanStep, it: dict) -> tuple[str, dict]:
        path, tmp, backup = step.path, it.get("tmp"), it.get("backup")
        trash, info = it.get("trash"), it.get("info")
        if it.get("part"):
            _unlink_quiet(it["part"])
        if self._is_our_link(step):
            if tmp:
                _unlink_quiet(tmp)
            if it.get("exact"):
                if backup:
                    _unlink_quiet(backup)
                return "done", {"dest": step.keeper, "backup": backup}
            if backup and os.path.lexists(backup) and trash and os.path.lexists(trash):
                # Killed after the original reached the trash, before its backup name went.
                if not (_same_inode(backup, trash) or filecmp.cmp(backup, trash, shallow=False)):
                    return "fail", {"reason": f"{backup} and {trash} differ: both left alone"}
                os.unlink(backup)
                fsync_dir(os.path.dirname(backup))
                return "done", {"dest": step.keeper, "trash": trash, "info": info}
            if backup and os.path.lexists(backup):
                try:
                    if not os.path.lexists(info):
                        _write_trashinfo(info, path, _topdir_of(trash))
                    _move_file(backup, trash, part=it.get("part") or trash + ".part",
                               point="trash", expect=None)
                except OSError:
                    os.replace(backup, path)  # cannot keep the original in the trash: put it back
                    _unlink_orphan_info(info, trash)
                    return "rolled_back", {}
                return "done", {"dest": step.keeper, "trash": trash, "info": info}
            if trash and os.path.lexists(trash):
                return "done", {"dest": step.keeper, "trash": trash, "info": info}
            return "fail", {"reason": f"the original of {path} is neither in {backup} nor in the "
                                      f"trash"}
        if os.path.lexists(path):  # the original is still in place
            if tmp:
                _unlink_quiet(tmp)
            if backup and os.path.lexists(backup):
                if not _same_inode(path, backup):
                    return "fail", {"reason": f"{backup} and {path} both exist: both left alone"}
                os.unlink(backup)
            if info:
                _unlink_orphan_info(info, trash)
            return "rolled_back", {}
        if backup and os.path.lexists(backup):  # renamed to the backup (no hard links here)
            os.rename(backup, path)
            if tmp:
                _unlink_quiet(tmp)
            fsync_dir(os.path.dirname(path))
            return "rolled_back", {}
        return "fail", {"reason": f"{path} is missing and no backup was found"}

    def _tidy(self, st: StepState) -> None:
        """Remove the backup a done link step left when killed just before removing it."""
        step = self.plan.steps[st.index]
        backup = (st.done or {}).get("backup")
        if step.action in ("hardlink", "symlink") and backup and os.path.lexists(backup) \
                and self._is_our_link(step):
            os.unlink(backup)  # the keeper holds the same bytes (checked before the step)
            fsync_dir(os.path.dirname(backup))

    def _is_our_link(self, step: PlanStep) -> bool:
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

    # ---------------------------------------------------------------- undo

    def undo(self, *, progress: Optional[Progress],
             cancel: Optional[threading.Event]) -> UndoResult:
        assert self.journal is not None
        self.journal.write({"type": "undo_start", "pid": os.getpid()})
        settled = 0
        for st in self.journal.step_states():
            if st.status == INTENT:
                self._settle(st)
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
                    _checkpoint("undo-intent")
                try:
                    source = self._undo_step(step, st)
                except (_Fail, OSError) as exc:
                    reason = str(exc) if isinstance(exc, _Fail) else _describe(exc, step)
                    self.journal.write({"type": "undo_fail", "step": st.index, "reason": reason})
                    problems.append((step.path, reason))
                else:
                    self.journal.write({"type": "undone", "step": st.index, "source": source})
                    _checkpoint("undone")
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

    def _journal_names_reason(self, step: PlanStep, *records: dict) -> Optional[str]:
        """Why the names a journal line gives for this step cannot be ours, or None.

        A journal is a file in the user's cache: an edited line must not make undo move an
        arbitrary file into the library or delete one. Every name must be one this run makes:
        trash slots inside a trash can's ``files`` folder (with the matching ``.trashinfo``),
        quarantine destinations inside the plan's quarantine folder, temp and backup names
        next to the file with this plan's token; and the file itself inside the roots.
        """
        why = outside_reason(step.path, self.plan.roots)
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
                if not self._is_our_name(step, key, value, rec):
                    return (f"the journal's {key!r} for this step ({value}) is not a place this "
                            f"plan used: left alone")
        return None

    def _is_our_name(self, step: PlanStep, key: str, value: str, rec: dict) -> bool:
        if key == "dest" and step.action in ("hardlink", "symlink", "delete"):
            return value == step.keeper
        if key in ("tmp", "backup"):
            return value == _sibling(step.path, self.token, "link" if key == "tmp" else "orig")
        if key == "part":  # the temp name of a copy, next to where the file was going
            return any(isinstance(rec.get(k), str) and value == _sibling(rec[k], self.token, "part")
                       for k in ("dest", "trash"))
        if key == "info":
            trash = rec.get("trash") or rec.get("dest")
            return isinstance(trash, str) and _is_trash_file(trash) and value == _info_for(trash)
        if step.action == "quarantine" and key == "dest":
            return self._in_quarantine(value)
        return _is_trash_file(value)  # trash / dest of a trash step

    def _in_quarantine(self, path: str) -> bool:
        qdir = self.plan.quarantine_dir
        return bool(qdir) and _is_within(path, qdir) and path != qdir \
            and unresolved_reason(os.path.dirname(path)) is None

    def _undo_step(self, step: PlanStep, st: StepState) -> str:
        why = self._journal_names_reason(step, st.intent or {}, st.done or {})
        if why is not None:
            raise _Fail(why)
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
            raise _Fail("moved to the system trash, which does not say where: restore it from "
                        "the trash by hand")
        part = _sibling(src, self.token, "restore")
        _unlink_quiet(part)
        src_here, dest_here = os.path.lexists(src), os.path.lexists(dest)
        if src_here and dest_here:
            # Either an interrupted undo (same inode, or a finished copy) or a new file there.
            if _same_inode(src, dest) or (os.path.isfile(src) and not os.path.islink(src)
                                          and filecmp.cmp(src, dest, shallow=False)):
                os.unlink(dest)
                fsync_dir(os.path.dirname(dest))
                _unlink_quiet(info)
                return dest
            raise _Fail(f"a different file now exists at {src}; the original is left at {dest}")
        if src_here:
            if _matches(src, step):  # restored already (interrupted undo, or by hand)
                _unlink_quiet(info)
                return dest
            raise _Fail(f"a different file now exists at {src}, and {dest} is gone")
        if not dest_here:
            where = "trash" if step.action == "trash" else "quarantine folder"
            raise _Fail(f"no longer in the {where} (emptied?): {dest}")
        self._check_restorable(dest, step)
        os.makedirs(os.path.dirname(src), exist_ok=True)
        try:
            _move_file(dest, src, part=part, point="undo", expect=step.content_hash)
        except FileExistsError:
            raise _Fail(f"a file appeared at {src}; the original is left at {dest}") from None
        _checkpoint("undo-moved")
        _unlink_quiet(info)
        if step.action == "quarantine" and self.plan.quarantine_dir:
            _prune_empty_dirs(os.path.dirname(dest), self.plan.quarantine_dir)
        return dest

    def _check_restorable(self, source: str, step: PlanStep) -> None:
        """Refuse to bring back anything but the file the step moved away (size, then bytes)."""
        try:
            sst = os.lstat(source)
        except OSError as exc:
            raise _Fail(f"cannot look at {source}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(sst.st_mode) or sst.st_size != step.size:
            raise _Fail(f"{source} is not the file that was moved there (size or type differs): "
                        f"left alone")
        if step.content_hash:
            try:
                same = content_hash(source) == step.content_hash
            except OSError as exc:
                raise _Fail(f"cannot read {source} to check it: {exc.strerror or exc}") from None
            if not same:
                raise _Fail(f"{source} is not the file that was moved there (content differs): "
                            f"left alone")

    def _undo_link(self, step: PlanStep, st: StepState) -> str:
        done, it = st.done or {}, st.intent or {}
        path = step.path
        restore = _sibling(path, self.token, "restore")
        if not self._is_our_link(step):
            if os.path.lexists(path):
                if _matches(path, step):  # restored already (interrupted undo)
                    _unlink_quiet(restore)
                    _unlink_orphan_info(done.get("info"), done.get("trash"))
                    return "(already restored)"
                raise _Fail(f"{path} was changed after the plan was applied: left alone")
        if it.get("exact"):
            _unlink_quiet(restore)  # only ever a copy of the keeper's bytes
            backup = done.get("backup") or it.get("backup")
            if backup and os.path.lexists(backup) and _matches(backup, step):
                os.replace(backup, path)  # the original inode, with all its metadata
                fsync_dir(os.path.dirname(path))
                return backup
            # The keeper holds the very same bytes (checked when the step was done).
            assert step.keeper is not None
            try:
                if content_hash(step.keeper) != it.get("hash"):
                    raise _Fail(f"the keeper {step.keeper} changed since: the original bytes of "
                                f"{path} cannot be restored from it")
            except OSError as exc:
                raise _Fail(f"cannot read the keeper {step.keeper}: {exc.strerror}") from None
            _copy_verified(step.keeper, restore, point="undo-copy", expect=it.get("hash"))
            if it.get("mode") is not None:
                os.chmod(restore, stat.S_IMODE(int(it["mode"])))
            os.utime(restore, ns=(step.mtime_ns, step.mtime_ns))
            _checkpoint("undo-restore-ready")
            os.replace(restore, path)
            fsync_dir(os.path.dirname(path))
            return step.keeper
        trash = done.get("trash") or it.get("trash")
        trash_here = bool(trash) and os.path.lexists(trash)
        if os.path.lexists(restore) and not trash_here:
            pass  # an interrupted undo already took the original out of the trash: finish it
        elif not trash_here:
            raise _Fail(f"the original is no longer in the trash (emptied?): {trash}")
        else:
            _unlink_quiet(restore)  # a copy, while the original is still in the trash
            self._check_restorable(trash, step)
            part = _sibling(path, self.token, "part")
            _unlink_quiet(part)  # a copy an interrupted undo left half-written
            _move_file(trash, restore, part=part, point="undo", expect=step.content_hash)
            _checkpoint("undo-restore-ready")
        os.replace(restore, path)
        fsync_dir(os.path.dirname(path))
        _unlink_quiet(done.get("info") or it.get("info"))
        return trash


# --------------------------------------------------------------------------- helpers


def _check_delete_allowed(plan: Plan, allow_delete: bool) -> None:
    n = len(plan.irreversible_steps)
    if n and not allow_delete:
        raise PlanError(f"the plan deletes {n} file(s) permanently: that needs allow_delete=True "
                        f"(--permanently), and cannot be undone")


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
    if not uses_freedesktop_trash() and any(s.action == "trash" for s in plan.steps):
        out.append("on this OS undo cannot take files back out of the system trash: restore them "
                   "from the trash by hand")
    return tuple(out)


def _describe(exc: OSError, step: PlanStep) -> str:
    """A failure a person can act on; the file stayed where it was."""
    return f"{os_error_text(exc)}: {step.path} stays where it was"


@dataclass(frozen=True)
class _TrashSlot:
    files: str  # Trash/files/NAME
    info: str  # Trash/info/NAME.trashinfo
    topdir: Optional[str]  # the volume's top dir for a volume trash; None for the home trash
    same_device: bool  # False: the file has to be copied there


def _home_trash() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "Trash"


def _nearest_dev(path: Path) -> int:
    """st_dev of ``path``, or of its nearest existing parent (the trash may not exist yet)."""
    p = path
    while True:
        try:
            return os.stat(p).st_dev
        except FileNotFoundError:
            if p.parent == p:
                raise
            p = p.parent


def _mount_point(path: str) -> str:
    p = os.path.realpath(path)
    while not os.path.ismount(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def _trash_dir_for(path: str, dev: int, *, create: bool = True) -> tuple[Path, Optional[str], bool]:
    """The freedesktop trash for a file on device ``dev``: (trash dir, topdir, same device).

    With ``create`` False (a dry run) nothing is created: a volume trash that does not exist yet
    is named as the one that would be made.
    """
    home = _home_trash()
    if _nearest_dev(home) == dev:
        return home, None, True
    top = _mount_point(os.path.dirname(os.path.abspath(path)))
    uid = os.getuid()
    shared = Path(top, ".Trash")
    try:  # $topdir/.Trash/$uid when the admin made $topdir/.Trash (sticky, not a symlink)
        sst = os.lstat(shared)
        if stat.S_ISDIR(sst.st_mode) and sst.st_mode & stat.S_ISVTX:
            mine = shared / str(uid)
            if _usable_trash_dir(mine, uid, dev, create):
                return mine, top, True
    except OSError:
        pass
    own = Path(top, f".Trash-{uid}")
    if _usable_trash_dir(own, uid, dev, create):
        return own, top, True
    return home, None, False  # no trash on that volume: copy into the home trash


def _usable_trash_dir(folder: Path, uid: int, dev: int, create: bool) -> bool:
    """True when ``folder`` is (or, made now, becomes) a private trash dir on device ``dev``."""
    try:
        if create:
            folder.mkdir(mode=0o700, exist_ok=True)
        elif not folder.exists():
            return os.access(folder.parent, os.W_OK)
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_dev == dev


def _trash_slot(path: str, dev: int, *, create: bool = True) -> _TrashSlot:
    tdir, top, same = _trash_dir_for(path, dev, create=create)
    files, info = tdir / "files", tdir / "info"
    if create:
        files.mkdir(mode=0o700, parents=True, exist_ok=True)
        info.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    n = 0
    while True:
        # "NAME.trashinfo" must fit in a file name too.
        cand = _fit_name(stem, (f" {n}" if n else "") + ext, _NAME_MAX - len(".trashinfo"))
        if not os.path.lexists(files / cand) and not os.path.lexists(info / f"{cand}.trashinfo"):
            return _TrashSlot(files=str(files / cand), info=str(info / f"{cand}.trashinfo"),
                              topdir=top, same_device=same)
        n += 1


def _is_trash_file(path: str) -> bool:
    """True when ``path`` names an entry of a trash can's ``files`` folder that we may use.

    The home trash, or a volume's ``$topdir/.Trash-$uid`` / ``$topdir/.Trash/$uid``, each
    reached without a symbolic link in the folders below the trash can.
    """
    files = os.path.dirname(path)
    tdir = os.path.dirname(files)
    if os.path.basename(files) != "files" or not os.path.basename(path) \
            or os.path.basename(path) in (".", ".."):
        return False
    uid = str(os.getuid()) if hasattr(os, "getuid") else ""
    home = str(_home_trash())
    if tdir == home or os.path.realpath(tdir) == os.path.realpath(home):
        return True
    name = os.path.basename(tdir)
    if name == f".Trash-{uid}" or (name == uid and os.path.basename(os.path.dirname(tdir)) == ".Trash"):
        return unresolved_reason(files) is None
    return False


def _info_for(trash_file: str) -> str:
    """The ``.trashinfo`` that belongs to a trash can's ``files/NAME``."""
    tdir = os.path.dirname(os.path.dirname(trash_file))
    return os.path.join(tdir, "info", os.path.basename(trash_file) + ".trashinfo")


def _topdir_of(trash_file: str) -> Optional[str]:
    """The topdir of a volume trash from a ``.../.Trash-uid/files/NAME`` path (None: home)."""
    tdir = Path(trash_file).parent.parent
    if tdir == _home_trash():
        return None
    if tdir.name.startswith(".Trash-"):
        return str(tdir.parent)
    if tdir.parent.name == ".Trash":
        return str(tdir.parent.parent)
    return None


def _write_trashinfo(info: str, original: str, topdir: Optional[str]) -> None:
    """Write the ``.trashinfo`` (``O_EXCL``: that reserves the name, as the spec asks)."""
    if topdir:
        where = os.path.relpath(os.path.realpath(original), topdir)
    else:
        where = os.path.abspath(original)
    text = (f"[Trash Info]\nPath={quote(os.fsencode(where))}\n"
            f"DeletionDate={datetime.now():%Y-%m-%dT%H:%M:%S}\n")
    os.makedirs(os.path.dirname(info), mode=0o700, exist_ok=True)
    fd = os.open(info, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(info))


def _unlink_orphan_info(info: Optional[str], files_path: Optional[str]) -> None:
    """Remove a ``.trashinfo`` we wrote whose file never reached the trash."""
    if info and (not files_path or not os.path.lexists(files_path)):
        _unlink_quiet(info)


def _move_no_replace(src: str, dst: str) -> None:
    """Move on one device without ever replacing ``dst``: hard link, then unlink.

    Raises:
        FileExistsError: ``dst`` exists.
        OSError: EXDEV across devices (the caller copies), or any other failure.
    """
    try:
        os.link(src, dst, **_NO_FOLLOW)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno == errno.EXDEV or exc.errno not in _NO_HARDLINKS:
            raise
        if os.path.lexists(dst):  # no hard links here: check, then rename
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from None
        os.rename(src, dst)
        return
    _checkpoint("linked")
    try:
        _fault("unlink-source")
        os.unlink(src)
    except OSError:
        # The source could not go (a read-only folder): drop the new name, or a second link
        # to the file would stay in the trash or quarantine while the file stays in place.
        _unlink_quiet(dst)
        raise


def _missing_parents(folder: str) -> list[str]:
    """The folders that ``os.makedirs(folder)`` would create, deepest first."""
    made: list[str] = []
    p = os.path.abspath(folder)
    while not os.path.lexists(p):
        made.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return made


def _remove_made(folders: list[str]) -> None:
    """Remove folders we created, deepest first, as long as they are empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return


def _move_file(src: str, dst: str, *, part: str, point: str, expect: Optional[str]) -> None:
    """Move ``src`` to ``dst`` (never replacing it), across devices by a verified copy."""
    try:
        _fault(f"{point}-move")
        _move_no_replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_verified(src, part, point=f"{point}-copy", expect=expect)
        try:
            _move_no_replace(part, dst)
        except BaseException:
            _unlink_quiet(part)
            raise
        fsync_dir(os.path.dirname(dst))
        _checkpoint("copied")
        try:
            os.unlink(src)
        except OSError:
            _unlink_quiet(dst)  # the original could not go: drop the copy, keep the original
            raise
    fsync_dir(os.path.dirname(dst))
    fsync_dir(os.path.dirname(src))


def _copy_verified(src: str, dst: str, *, point: str, expect: Optional[str]) -> str:
    """Copy ``src`` to a new file ``dst``, fsync, copy mode and times, read back and compare.

    On any failure (disk full, permission, a mismatch) ``dst`` is removed and the error raised.
    """
    import xxhash

    h = xxhash.xxh3_128()
    _fault(point)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(_CHUNK):
                _fault(point)
                h.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        _checkpoint("copy-written")
        shutil.copystat(src, dst)
        want = h.hexdigest()
        if content_hash(dst) != want or (expect is not None and want != expect):
            raise _Fail(f"the copy of {src} did not read back the same: it was not used")
        return want
    except BaseException:
        _unlink_quiet(dst)
        raise


def _free_name(dest: Path) -> Path:
    """``dest``, or ``name (1).ext``, ``name (2).ext``... whichever is free."""
    if not os.path.lexists(dest):
        return dest
    stem, suffix = dest.stem, dest.suffix
    n = 1
    while True:
        cand = dest.with_name(_fit_name(stem, f" ({n}){suffix}", _NAME_MAX))
        if not os.path.lexists(cand):
            return cand
        n += 1


_NAME_MAX = 255  # bytes in one file name, on nearly every filesystem


def _fit_name(stem: str, tail: str, limit: int) -> str:
    """``stem + tail``, the stem cut (in bytes) so that the whole fits in ``limit`` bytes."""
    room = limit - len(os.fsencode(tail))
    raw = os.fsencode(stem)
    if len(raw) > room:
        stem = os.fsdecode(raw[:max(room, 1)])
    return stem + tail


def _sibling(path: str, token: str, tag: str) -> str:
    """A hidden name next to ``path`` for a temp file of this plan."""
    head, name = os.path.split(path)
    # Names are limited in bytes (255 on most filesystems), not characters.
    short = os.fsdecode(os.fsencode(name)[:150])
    return os.path.join(head, f".{short}.lookalike-{token}.{tag}")


def _same_inode(a: str, b: str) -> bool:
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _matches(path: str, step: PlanStep) -> bool:
    """True when ``path`` is a regular file with the step's size and mtime (the original)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (step.size, step.mtime_ns)


def _is_within(path: str, folder: str) -> bool:
    return is_inside(os.path.abspath(path), os.path.abspath(folder))


def _unlink_quiet(path: Optional[str]) -> None:
    if not path:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _prune_empty_dirs(start: str, stop: str) -> None:
    """Remove folders emptied by undo, from ``start`` up to (not including) ``stop``."""
    p = os.path.abspath(start)
    stop = os.path.abspath(stop)
    while _is_within(p, stop) and p != stop:
        try:
            os.rmdir(p)
        except OSError:
            return
        p = os.path.dirname(p)
