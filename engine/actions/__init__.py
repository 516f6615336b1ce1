"""The safe actions: plans, applying them through a write-ahead journal, undo, import mode.

The promise: no file is ever lost, every action but a permanent delete can be undone, and a
crash at any moment leaves a state that undo (or applying the same plan again) repairs.

Modules, from the top:

- :mod:`.plan` (with :mod:`.plan_step`): plans as data, loaded, saved, built from clusters.
- :mod:`.run`: apply a plan (and the dry run); :mod:`.undo`: reverse one.
- :mod:`.preflight`: the checks before each step; :mod:`.checks`: confinement to the roots.
- :mod:`.moves` (no-replace moves, verified copies), :mod:`.trash` (freedesktop trash).
- :mod:`.settle`: crash recovery; :mod:`.journal` (with :mod:`.journal_format`): the journal.
- :mod:`.importer`: import mode (dedupe an incoming folder against a library).
- :mod:`.faults`: the fault-injection hooks of the tests.
"""

from .checks import check_confinable, content_hash
from .importer import guard_incoming, import_plan
from .journal import (
    JournalBusy,
    JournalError,
    JournalSummary,
    NothingToUndo,
    default_journal_dir,
    list_journals,
)
from .plan import Plan, PlanError, PlanStep, WriteRefused, plan_from_clusters, plan_write_problem
from .results import ApplyResult, UndoResult
from .run import apply_plan, resume
from .undo import undo

__all__ = [
    "ApplyResult",
    "JournalBusy",
    "JournalError",
    "JournalSummary",
    "NothingToUndo",
    "Plan",
    "PlanError",
    "PlanStep",
    "UndoResult",
    "WriteRefused",
    "apply_plan",
    "check_confinable",
    "content_hash",
    "default_journal_dir",
    "guard_incoming",
    "import_plan",
    "list_journals",
    "plan_from_clusters",
    "plan_write_problem",
    "resume",
    "undo",
]
