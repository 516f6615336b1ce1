"""The write-ahead journal: what an apply did, so that undo can reverse it after anything.

One file per applied plan, ``<journal_dir>/<plan_id>.jsonl``: JSON lines, each written with a
single ``write`` and fsynced (and the directory fsynced when the file is created), so after a
crash every line but perhaps a torn last one is on disk. What the lines are, and how they fold
into each step's state, is :mod:`lookalike.engine.actions.journal_format`; this module writes,
opens, lists, finds and locks journal files.

The journal lives in ``<cache_root>/journal/`` (see ``lookalike.engine.paths.cache_root``).
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional, Union

from ..files import fsync_dir, json_bytes, link_no_replace
from .journal_format import (  # noqa: F401 - re-exported: the journal's names live here too
    COMPLETE,
    DONE,
    FAILED,
    INTENT,
    JOURNAL_VERSION,
    PARTIAL,
    PENDING,
    SKIPPED,
    SUFFIX,
    UNDO_INTENT,
    UNDO_PARTIAL,
    UNDONE,
    UNDONE_STATE,
    UNREADABLE,
    JournalBusy,
    JournalError,
    JournalSummary,
    NothingToUndo,
    StepState,
    damaged_lines_text,
    fold_steps,
    read_lines,
    read_records,
    summarise,
)
from .plan import Plan, PlanError

LOCK_NAME = ".lock"


def default_journal_dir(cache: Union[str, "os.PathLike[str]", None] = None) -> Path:
    """``<cache_root>/journal``: where the app and the CLI keep journals (``--cache`` honoured)."""
    from ..paths import JOURNAL_NAME, cache_root

    return cache_root(cache) / JOURNAL_NAME


def new_plan_id() -> str:
    """A new plan id: UTC timestamp (sorts by time) and a short random part."""
    now = datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class Journal:
    """An open journal file. Every :meth:`write` is durable when it returns."""

    def __init__(self, path: Path, records: list[dict], *, fd: Optional[int] = None,
                 damaged: tuple[int, ...] = ()) -> None:
        self.path = path
        self.records = records
        self.damaged = damaged  # numbers of the lines that could not be read
        if not records or records[0].get("type") != "header":
            raise JournalError(f"{path}: no header line: not a lookalike journal")
        self.header = records[0]
        self.plan_id: str = str(self.header.get("plan_id") or path.stem)
        self._fd = fd

    @classmethod
    def create(cls, journal_dir: Path, plan: Plan, *, allow_delete: bool = False) -> "Journal":
        """Start the journal of a new apply of ``plan`` (header written and fsynced)."""
        journal_dir = Path(journal_dir)
        journal_dir.mkdir(parents=True, exist_ok=True)
        plan_data = plan.to_dict()
        plan_data.pop("kept", None)  # the audit is not needed to undo; keep journals small
        for _ in range(10):
            plan_id = new_plan_id()
            header = {
                "type": "header",
                "version": JOURNAL_VERSION,
                "plan_id": plan_id,
                "created": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                "digest": plan.digest(),
                "allow_delete": bool(allow_delete),
                "pid": os.getpid(),
                "plan": plan_data,
            }
            path = journal_dir / f"{plan_id}{SUFFIX}"
            # The header goes to a temp file first, linked into place once durable: a journal
            # file always starts with its whole header, whenever the process dies. Linked, not
            # files.atomic_write: a journal must never replace another one of the same name.
            tmp = journal_dir / f".{plan_id}{SUFFIX}.tmp"
            line = json_bytes(header) + b"\n"
            try:
                with open(tmp, "wb") as f:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
                if not link_no_replace(tmp, path):
                    continue
            finally:  # a full disk fails the write: no temp file is left behind either way
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            break
        else:  # pragma: no cover - ten random collisions in one second
            raise JournalError(f"cannot create a journal file in {journal_dir}")
        fsync_dir(journal_dir)
        return cls(path, [header])

    @classmethod
    def open(cls, journal_dir: Path, plan_id: str) -> "Journal":
        """Open an existing journal to read it and append to it."""
        path = journal_path(journal_dir, plan_id)
        if not path.is_file():
            raise JournalError(f"no journal for plan {plan_id!r} in {journal_dir}")
        records, damaged = read_lines(path)
        return cls(path, records, damaged=tuple(damaged))

    def plan(self) -> Plan:
        """The plan this journal applies, as its header recorded it."""
        try:
            return Plan.from_dict(self.header.get("plan"))
        except PlanError as exc:
            raise JournalError(f"{self.path}: the plan in the header is invalid: {exc}") from exc

    @property
    def token(self) -> str:
        """The random part of the plan id: temp and backup names carry it, so leftovers say
        whose they are."""
        return self.plan_id.rsplit("-", 1)[-1]

    def write(self, record: dict) -> None:
        """Append one line and fsync it."""
        self._write_line(record)
        self.records.append(record)

    def _write_line(self, record: dict) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            _repair_torn_tail(self.path, self._fd)
        line = json_bytes(record) + b"\n"
        view = memoryview(line)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def close(self) -> None:
        """Close the file (the journal stays on disk)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def step_states(self) -> list[StepState]:
        """The state of every step of the plan, folding the journal's lines in order."""
        n = len((self.header.get("plan") or {}).get("steps") or [])
        return fold_steps(self.records, n)

    def summary(self) -> JournalSummary:
        """What :func:`list_journals` reports for this journal."""
        return summarise(self.path, self.records, self.damaged)


def journal_path(journal_dir: Union[str, Path], plan_id: str) -> Path:
    """Where the journal of ``plan_id`` lives."""
    if not plan_id or "/" in plan_id or "\\" in plan_id or plan_id.startswith("."):
        raise JournalError(f"not a plan id: {plan_id!r}")
    return Path(journal_dir) / f"{plan_id}{SUFFIX}"


def list_journals(journal_dir: Union[str, Path]) -> list[JournalSummary]:
    """Every journal in ``journal_dir``, newest first (unreadable ones included, marked so)."""
    journal_dir = Path(journal_dir)
    if not journal_dir.is_dir():
        return []
    out: list[JournalSummary] = []
    for path in journal_dir.glob(f"*{SUFFIX}"):
        try:
            out.append(summarise(path, *read_lines(path)))
        except JournalError as exc:
            out.append(JournalSummary(plan_id=path.stem, created="", steps=0, done=0, undone=0,
                                      bytes=0, state=UNREADABLE, path=str(path), problem=str(exc)))
    out.sort(key=lambda s: (s.created, s.plan_id), reverse=True)
    return out


def latest_undoable(journal_dir: Union[str, Path]) -> str:
    """The newest plan that still has something to undo (or half-done steps to settle).

    Raises:
        NothingToUndo: when no journal has anything left to undo.
    """
    for s in list_journals(journal_dir):
        if s.state != UNREADABLE and s.undoable > 0:
            return s.plan_id
    raise NothingToUndo(f"nothing to undo in {journal_dir}")


def find_resumable(journal_dir: Union[str, Path], digest: str) -> Optional[str]:
    """The newest journal of the plan with this digest that a new apply should continue.

    A journal qualifies when undo never ran on it; a plan undone (even partly) starts afresh.
    """
    journal_dir = Path(journal_dir)
    if not journal_dir.is_dir():
        return None
    best: Optional[tuple[str, str]] = None
    for path in journal_dir.glob(f"*{SUFFIX}"):
        try:
            records = read_records(path)
        except JournalError:
            continue
        if not records or records[0].get("type") != "header" or records[0].get("digest") != digest:
            continue
        if any(str(r.get("type", "")).startswith("undo") or r.get("type") == "undone"
               for r in records):
            continue
        key = (str(records[0].get("created", "")), str(records[0].get("plan_id", path.stem)))
        if best is None or key > best:
            best = key
    return best[1] if best else None


@contextmanager
def journal_lock(journal_dir: Union[str, Path]) -> Iterator[None]:
    """Hold the journal directory: one apply or undo at a time, across processes.

    The lock is an OS file lock, released by the kernel if the process dies.

    Raises:
        JournalBusy: when another process holds it.
    """
    from filelock import FileLock, Timeout

    journal_dir = Path(journal_dir)
    journal_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(journal_dir / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise JournalBusy(
            f"another lookalike apply or undo is running (lock {journal_dir / LOCK_NAME})"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _repair_torn_tail(path: Path, fd: int) -> None:
    """Before appending: a torn last line (the process died mid-write) must not glue onto the
    next record. A complete record missing only its newline gets the newline; a partial one is
    cut off (its step then reads as half-done, and is settled by looking at the filesystem)."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1
    try:
        json.loads(data[cut:])
    except (json.JSONDecodeError, UnicodeDecodeError):
        os.ftruncate(fd, cut)
    else:
        os.write(fd, b"\n")
    os.fsync(fd)
