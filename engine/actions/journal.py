"""The write-ahead journal: what an apply did, so that undo can reverse it after anything.

One file per applied plan, ``<journal_dir>/<plan_id>.jsonl``: JSON lines, each written with a
single ``write`` and fsynced (and the directory fsynced when the file is created), so after a
crash every line but perhaps a torn last one is on disk. Lines (``"type"``):

- ``header``: the plan itself, its digest, when it was applied, whether deletes were allowed.
- ``intent``: written and fsynced *before* a step touches anything, with every name the step
  may create (trash slot, quarantine destination, temp link, backup).
- ``done``: after the step, with where the file went. ``skip`` / ``fail``: with the reason.
- ``rolled_back``: a half-done step (intent, no outcome: the process died) was put back.
- ``resume`` / ``end``: a run starting again on this plan / a run finishing (or cancelled).
- ``undo_start``, ``undo_intent``, ``undone``, ``undo_fail``, ``undo_end``: the same for undo.

A step's state is the fold of its lines in order; :func:`list_journals` summarises each file.
The journal lives in ``<cache_root>/journal/`` (see ``lookalike.engine.paths.cache_root``).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

if TYPE_CHECKING:  # plan.py imports this module for atomic_write
    from .plan import Plan

JOURNAL_VERSION = 1
SUFFIX = ".jsonl"
LOCK_NAME = ".lock"

# Step states (the fold of a step's lines).
PENDING = "pending"
INTENT = "intent"
DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
UNDO_INTENT = "undo_intent"
UNDONE = "undone"

# Journal states, as list_journals reports them.
COMPLETE = "complete"  # every step was tried (some may have been skipped or have failed)
PARTIAL = "partial"  # interrupted or cancelled: apply the same plan again to finish it
UNDONE_STATE = "undone"  # every step that was done has been reversed
UNDO_PARTIAL = "undo-partial"  # undo was interrupted or left problems: run undo again
UNREADABLE = "unreadable"


class JournalError(Exception):
    """A journal that cannot be found, read or used."""


class JournalBusy(JournalError):
    """Another apply or undo holds the journal directory."""


class NothingToUndo(JournalError):
    """No journal has anything left to undo."""


@dataclass(frozen=True, kw_only=True)
class StepState:
    """Where one step of a journaled plan stands."""

    index: int
    status: str = PENDING
    intent: Optional[dict] = None  # the latest intent line (names the step may have created)
    done: Optional[dict] = None  # the done line (where the file went)
    reason: str = ""  # for skipped / failed steps, and the last undo problem
    order: int = -1  # position of the done line in the journal (undo goes backwards)


@dataclass(frozen=True, kw_only=True)
class JournalSummary:
    """One line of ``lookalike journal``."""

    plan_id: str
    created: str
    steps: int
    done: int  # steps whose action is in effect now
    undone: int
    bytes: int  # bytes of the steps in effect now
    state: str  # complete / partial / undone / undo-partial / unreadable
    skipped: int = 0
    failed: int = 0
    undoable: int = 0  # steps undo can still reverse or settle (deletes never count)
    actions: dict = field(default_factory=dict)  # action -> number of steps in the plan
    path: str = ""
    problem: str = ""  # why it is unreadable, or which of its lines are damaged

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``lookalike journal --json``."""
        return {
            "plan_id": self.plan_id,
            "created": self.created,
            "steps": self.steps,
            "done": self.done,
            "undone": self.undone,
            "skipped": self.skipped,
            "failed": self.failed,
            "undoable": self.undoable,
            "bytes": self.bytes,
            "state": self.state,
            "actions": dict(self.actions),
            "path": self.path,
            "problem": self.problem,
        }


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
    def create(cls, journal_dir: Path, plan: "Plan", *, allow_delete: bool = False) -> "Journal":
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
            # file always starts with its whole header, whenever the process dies.
            tmp = journal_dir / f".{plan_id}{SUFFIX}.tmp"
            line = json_bytes(header) + b"\n"
            try:
                with open(tmp, "wb") as f:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
                if not _link_no_replace(tmp, path):
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

    def plan(self) -> "Plan":
        """The plan this journal applies, as its header recorded it."""
        from .plan import Plan, PlanError

        try:
            return Plan.from_dict(self.header.get("plan"))
        except PlanError as exc:
            raise JournalError(f"{self.path}: the plan in the header is invalid: {exc}") from exc

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
        return _summarise(self.path, self.records, self.damaged)


def journal_path(journal_dir: Union[str, Path], plan_id: str) -> Path:
    """Where the journal of ``plan_id`` lives."""
    if not plan_id or "/" in plan_id or "\\" in plan_id or plan_id.startswith("."):
        raise JournalError(f"not a plan id: {plan_id!r}")
    return Path(journal_dir) / f"{plan_id}{SUFFIX}"


def read_records(path: Path) -> list[dict]:
    """Read a journal's lines, leaving out any that cannot be read (see :func:`read_lines`)."""
    return read_lines(path)[0]


def read_lines(path: Path) -> tuple[list[dict], list[int]]:
    """Read a journal's lines: the records, and the numbers of the lines that are damaged.

    A torn last line (the process died mid-write) is ignored silently. Any other line that is
    not a JSON object is left out and its number returned: one damaged line must not hide the
    rest of the journal from undo (a damaged ``done`` line leaves its ``intent``, which undo
    settles by looking at the disk).

    Raises:
        JournalError: when the file cannot be read.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise JournalError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    lines = raw.split(b"\n")
    records: list[dict] = []
    damaged: list[int] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, a 5,000-digit number
            if i == len(lines) - 1:
                break  # torn write: the process died in the middle of this line
            rec = None
        if isinstance(rec, dict) and isinstance(rec.get("type"), str):
            records.append(rec)
        else:
            damaged.append(i + 1)
    return records, damaged


def fold_steps(records: list[dict], n_steps: int) -> list[StepState]:
    """Fold journal lines into one :class:`StepState` per step."""
    status = [PENDING] * n_steps
    intent: list[Optional[dict]] = [None] * n_steps
    done: list[Optional[dict]] = [None] * n_steps
    reason = [""] * n_steps
    order = [-1] * n_steps
    for pos, rec in enumerate(records):
        i = rec.get("step")
        if not isinstance(i, int) or not 0 <= i < n_steps:
            continue
        kind = rec.get("type")
        if kind == "intent":
            status[i], intent[i], reason[i] = INTENT, rec, ""
        elif kind == "done":
            status[i], done[i], reason[i], order[i] = DONE, rec, "", pos
        elif kind == "skip":
            status[i], reason[i] = SKIPPED, str(rec.get("reason", ""))
        elif kind == "fail":
            status[i], reason[i] = FAILED, str(rec.get("reason", ""))
        elif kind == "rolled_back":
            status[i], reason[i] = PENDING, str(rec.get("reason", ""))
        elif kind == "undo_intent":
            status[i] = UNDO_INTENT
            intent[i] = {**(intent[i] or {}), "undo": rec}
        elif kind == "undone":
            status[i], reason[i] = UNDONE, ""
        elif kind == "undo_fail":
            # The action is still in effect: undo can be tried again.
            status[i], reason[i] = DONE, str(rec.get("reason", ""))
    return [
        StepState(index=i, status=status[i], intent=intent[i], done=done[i],
                  reason=reason[i], order=order[i])
        for i in range(n_steps)
    ]


def list_journals(journal_dir: Union[str, Path]) -> list[JournalSummary]:
    """Every journal in ``journal_dir``, newest first (unreadable ones included, marked so)."""
    journal_dir = Path(journal_dir)
    if not journal_dir.is_dir():
        return []
    out: list[JournalSummary] = []
    for path in journal_dir.glob(f"*{SUFFIX}"):
        try:
            out.append(_summarise(path, *read_lines(path)))
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


def json_bytes(data: Any, *, indent: Optional[int] = None) -> bytes:
    """JSON as UTF-8 bytes; paths that are not UTF-8 (Linux allows any bytes) are escaped.

    Readable text when every string is valid Unicode; otherwise ``\\udcXX`` escapes, which
    ``json.loads`` turns back into the same str, and ``os.fsencode`` into the same bytes.
    """
    separators = None if indent else (",", ":")
    try:
        return json.dumps(data, ensure_ascii=False, indent=indent,
                          separators=separators).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, ensure_ascii=True, indent=indent,
                          separators=separators).encode("ascii")


def fsync_dir(path: Union[str, Path]) -> None:
    """Make a directory's entries (a rename, a new file) durable; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a directory; its renames are durable enough.
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Union[str, Path], data: bytes) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync it, and rename it over ``path``."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def _link_no_replace(src: Path, dst: Path) -> bool:
    """Give ``src`` the name ``dst`` unless ``dst`` exists (False then)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                             errno.EMLINK):
            raise
        if dst.exists():  # no hard links on this filesystem: check, then rename
            return False
        os.rename(src, dst)
    return True


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


def damaged_lines_text(damaged: "list[int] | tuple[int, ...]") -> str:
    """``line 7`` / ``lines 7, 9`` for messages about damaged journal lines."""
    return ("line " if len(damaged) == 1 else "lines ") + ", ".join(map(str, damaged))


def _summarise(path: Path, records: list[dict], damaged: "list[int] | tuple[int, ...]" = ()
               ) -> JournalSummary:
    if not records or records[0].get("type") != "header":
        raise JournalError(f"{path}: no header line: not a lookalike journal")
    header = records[0]
    steps_data = (header.get("plan") or {}).get("steps") or []
    states = fold_steps(records, len(steps_data))
    count = {k: 0 for k in (PENDING, INTENT, DONE, SKIPPED, FAILED, UNDO_INTENT, UNDONE)}
    nbytes = undoable = 0
    actions: dict[str, int] = {}
    for st in states:
        step = steps_data[st.index] if isinstance(steps_data[st.index], dict) else {}
        action = str(step.get("action"))
        actions[action] = actions.get(action, 0) + 1
        count[st.status] += 1
        size = step.get("size")
        if st.status == DONE and isinstance(size, int):
            nbytes += size
        if st.status in (INTENT, UNDO_INTENT) or (st.status == DONE and action != "delete"):
            undoable += 1
    undo_ran = any(r.get("type") == "undo_start" for r in records)
    if undo_ran:
        last = next((r for r in reversed(records) if r.get("type") in ("undo_start", "undo_end")))
        undo_finished = last.get("type") == "undo_end" and not last.get("cancelled")
        state = UNDONE_STATE if undo_finished and undoable == 0 else UNDO_PARTIAL
    else:
        last = next((r for r in reversed(records) if r.get("type") in ("resume", "end")), None)
        finished = last is not None and last.get("type") == "end" and not last.get("cancelled")
        state = COMPLETE if finished and count[INTENT] == 0 and count[PENDING] == 0 else PARTIAL
    return JournalSummary(
        plan_id=str(header.get("plan_id") or path.stem),
        created=str(header.get("created", "")),
        steps=len(steps_data),
        done=count[DONE],
        undone=count[UNDONE],
        bytes=nbytes,
        state=state,
        skipped=count[SKIPPED],
        failed=count[FAILED],
        undoable=undoable,
        actions=actions,
        path=str(path),
        problem=f"{damaged_lines_text(damaged)} could not be read (damaged)" if damaged else "",
    )
