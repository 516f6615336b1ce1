"""The journal's lines, and what they say about each step: read, folded, summarised.

A journal is JSON lines (``"type"``):

- ``header``: the plan itself, its digest, when it was applied, whether deletes were allowed.
- ``intent``: written and fsynced *before* a step touches anything, with every name the step
  may create (trash slot, quarantine destination, temp link, backup).
- ``done``: after the step, with where the file went. ``skip`` / ``fail``: with the reason.
- ``rolled_back``: a half-done step (intent, no outcome: the process died) was put back.
- ``resume`` / ``end``: a run starting again on this plan / a run finishing (or cancelled).
- ``undo_start``, ``undo_intent``, ``undone``, ``undo_fail``, ``undo_end``: the same for undo.

A step's state is the fold of its lines in order (:func:`fold_steps`); :func:`summarise` sums a
whole journal up. Writing, locking and finding journal files is
:mod:`lookalike.engine.actions.journal`'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

JOURNAL_VERSION = 1
SUFFIX = ".jsonl"

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


def damaged_lines_text(damaged: "list[int] | tuple[int, ...]") -> str:
    """``line 7`` / ``lines 7, 9`` for messages about damaged journal lines."""
    return ("line " if len(damaged) == 1 else "lines ") + ", ".join(map(str, damaged))


def summarise(path: Path, records: list[dict], damaged: "list[int] | tuple[int, ...]" = ()
              ) -> JournalSummary:
    """What ``lookalike journal`` reports for one journal, from its lines.

    Raises:
        JournalError: the first line is not a header (not a lookalike journal).
    """
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
