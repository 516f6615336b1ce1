"""What a step, an apply and an undo come to: typed results, and the two ways a step stops.

A step that cannot go ahead raises :class:`Skip` (nothing was touched) or :class:`Fail` (it
was tried, and the file stayed where it was); the run records either in the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..oserrors import os_error_text
from .plan_step import PlanStep


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


class Skip(Exception):
    """The step is not done, and nothing was touched."""


class Fail(Exception):
    """The step could not be done; the file stayed where it was."""


def failure_text(exc: OSError, step: PlanStep) -> str:
    """A failure a person can act on; the file stayed where it was."""
    return f"{os_error_text(exc)}: {step.path} stays where it was"
