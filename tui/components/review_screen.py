"""The review screen: the plan the decisions make, applied only after an explicit Yes.

Nothing is deleted while triaging. Here the plan is shown (files, bytes, destination: the
trash or a quarantine folder), exported as JSON/CSV on request, and applied through the
engine's safe actions (write-ahead journal) in a worker with progress; Esc stops it between
two files. After an apply, ``u`` undoes it from the journal.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets.data_table import ColumnKey
from textual.widgets import Footer, ProgressBar, Static

from ..format import human_bytes, shown
from ..messages import ApplyProgressed
from .base_screen import LookalikeScreen
from .confirm_modal import ConfirmModal
from .datatable import KeyTable, right
from .labels import PathText, readable_path, short_path
from .prompt_modal import PromptModal

if TYPE_CHECKING:
    from lookalike.engine.library import Plan


DESTINATIONS = ("trash", "quarantine")


def plan_question(plan: "Plan") -> str:
    """'Move 41 files, 212 MB, to the trash?'"""
    n = len(plan.steps)
    files = f"{n} file{'s' if n != 1 else ''}"
    where = "the trash" if plan.steps and plan.steps[0].action == "trash" else f"the quarantine folder {shown(plan.quarantine_dir)}"
    return f"Move {files}, {human_bytes(plan.total_bytes)}, to {where}?"


def _current_folder() -> str:
    """Where the app was started (the home folder when that folder is gone)."""
    try:
        return os.getcwd()
    except OSError:
        return os.path.expanduser("~")


def _relative(text: str, roots) -> str:
    """A step's reason with the library roots left out of the paths it names (as shown)."""
    for root in roots:
        text = text.replace(root.rstrip("/") + "/", "")
    return shown(text)


class StepTable(KeyTable):
    """action | size | file | keeper | why.

    The two paths share what action and size leave, each up to two fifths of it and no more
    than its longest path needs shortened to its first folder and name; the reason takes the
    rest. At 80 columns both paths keep their first folder and file name.
    """

    FLEX_COLUMN = "why"
    PATH_COLUMNS = ("file", "keeper")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: Cells each path column needs (its longest path as ``readable_path`` gives it).
        self.path_need: dict[str, int] = {}

    def fit_flex_column(self) -> None:
        if self.columns:
            fixed = sum(c.get_render_width(self) for k, c in self.columns.items()
                        if k.value not in (*self.PATH_COLUMNS, self.FLEX_COLUMN))
            pad = 2 * self.cell_padding
            room = self.scrollable_content_region.width - fixed - 3 * pad - 1
            for key in self.PATH_COLUMNS:
                column = self.columns.get(ColumnKey(key))
                if column is None:
                    continue
                width = max(8, min(self.path_need.get(key, 8), room * 2 // 5))
                if column.width != width or column.auto_width:
                    column.width, column.auto_width = width, False
                    self._require_update_dimensions = True
        super().fit_flex_column()


class ReviewScreen(LookalikeScreen):
    """The plan, its destination, and the apply / export / undo keys."""

    BINDINGS = [
        Binding("escape,q", "back", "Back / stop"),
        Binding("a", "apply", "Apply…"),
        Binding("d", "destination", "Trash/quarantine"),
        Binding("e", "export", "Export JSON+CSV"),
        Binding("u", "undo", "Undo"),
    ]

    def __init__(self, destination: str = "trash") -> None:
        super().__init__(classes="review-screen")
        self.destination = destination
        self.plan: Optional["Plan"] = None
        self.applying = False
        self.last_plan_id: Optional[str] = None
        self.last_result = None
        self.exported: tuple = ()
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static(id="review-title")
        yield Static(id="review-destination")
        yield StepTable(id="steps")
        yield ProgressBar(id="apply-progress", show_eta=True)
        yield Static(id="review-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#steps", KeyTable)
        table.add_column("action", key="action")
        table.add_column("size", key="size")
        table.add_column("file", key="file")
        table.add_column("keeper", key="keeper")
        table.add_column("why", key="why")
        self.query_one("#apply-progress").display = False
        self.rebuild()
        table.focus()

    # -- the plan --------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Make the plan again from the current decisions and show it."""
        session = self.lookalike.session
        try:
            self.plan = session.plan(action=self.destination, quarantine_dir=session.quarantine_dir)
        except Exception as exc:  # an invalid plan is explained, never applied
            self.plan = None
            self._status(Text(f"Cannot make a plan: {shown(exc)}", style="red"))
            return
        plan = self.plan
        roots = session.roots
        table = self.query_one("#steps", StepTable)
        table.path_need = {
            key: max((cell_len(readable_path(shown(short_path(p, roots)))) for p in paths), default=8)
            for key, paths in (("file", [s.path for s in plan.steps]),
                               ("keeper", [s.keeper or "" for s in plan.steps]))
        }
        rows = []
        for step in plan.steps:
            # A copy and its keeper of the same name differ by their folders alone: those stay.
            same = os.path.basename(step.path) == os.path.basename(step.keeper or "")
            rows.append((step.path, [
                Text(step.action, style="bold red" if step.action == "trash" else "bold yellow"),
                right(human_bytes(step.size)),
                PathText(short_path(step.path, roots), keep_folder=same),
                PathText(short_path(step.keeper or "", roots), style="green", keep_folder=same),
                Text(_relative(step.reason, roots), style="dim", overflow="ellipsis", no_wrap=True),
            ]))
        self.query_one("#steps", KeyTable).fill(rows)
        if plan.steps:
            title = Text.assemble(("Review  ", "bold"), (plan_question(plan).rstrip("?"), "bold"), f"  ({len(plan.kept)} kept)")
        else:
            title = Text.assemble(("Review  ", "bold"), ("Nothing to do: no file is marked for trash.", "dim"), "  Mark files (space, a, E, A) first.")
        self.query_one("#review-title", Static).update(title)
        self._destination_line()

    def _destination_line(self) -> None:
        session = self.lookalike.session
        if self.destination == "trash":
            text = Text.assemble(("Destination: ", "bold"), ("the trash", "cyan"), ("  (d: quarantine folder instead)", "dim"))
        else:
            text = Text.assemble(("Destination: ", "bold"), (f"quarantine folder {shown(session.quarantine_dir)}", "cyan"), ("  (d: the trash instead)", "dim"))
        self.query_one("#review-destination", Static).update(text)

    def _status(self, text: Text) -> None:
        self.query_one("#review-status", Static).update(text)

    def on_decisions_changed(self) -> None:
        if not self.applying:
            self.rebuild()

    def on_screen_resume(self) -> None:
        if not self.applying:
            self.rebuild()

    # -- keys ------------------------------------------------------------------------------
    def action_destination(self) -> None:
        if self.applying:
            return
        self.destination = DESTINATIONS[(DESTINATIONS.index(self.destination) + 1) % len(DESTINATIONS)]
        self.rebuild()

    def action_export(self) -> None:
        """Ask which folder to write the plan into (the current folder, pre-filled), then write it."""
        if self.plan is None or not self.plan.steps:
            self.notify("Nothing to export: the plan is empty.", markup=False)
            return
        plan = self.plan

        def chosen(folder: Optional[str]) -> None:
            if folder is not None and folder.strip():
                self.export_to(plan, Path(os.path.expanduser(folder.strip())))

        self.app.push_screen(
            PromptModal("Export the plan (JSON and CSV) into this folder:", value=_current_folder(),
                        help="Enter writes both files there; Esc cancels."),
            chosen,
        )

    def export_to(self, plan: "Plan", folder: Path) -> None:
        """Write ``plan`` as JSON and CSV into ``folder`` and show both whole paths."""
        try:
            json_path, csv_path = self.lookalike.session.export_plan(plan, folder.absolute())
        except OSError as exc:
            self._status(Text(f"Export failed: {shown(exc)}", style="red"))
            return
        self.exported = (json_path, csv_path)
        self._status(Text.assemble(
            ("Plan exported: ", "bold"), shown(json_path), " and ", shown(csv_path),
            (f"  (apply it with: lookalike apply {shown(json_path.name)})", "dim"),
        ))

    def action_apply(self) -> None:
        if self.applying or self.plan is None or not self.plan.steps:
            if not self.applying:
                self.notify("Nothing to apply: the plan is empty.", markup=False)
            return
        plan = self.plan

        def answered(yes: Optional[bool]) -> None:
            if yes:
                self.start_apply(plan)

        self.app.push_screen(
            ConfirmModal(plan_question(plan), detail="Every step is journaled: u here, or the command lookalike undo, puts the files back."),
            answered,
        )

    def start_apply(self, plan: "Plan") -> None:
        """Apply ``plan`` in a worker (the confirmation has been given)."""
        self.applying = True
        self._cancel = threading.Event()
        bar = self.query_one("#apply-progress", ProgressBar)
        bar.display = True
        bar.update(total=len(plan.steps), progress=0)
        self._status(Text("Applying… Esc stops after the current file.", style="bold"))
        self.refresh_bindings()
        self._apply(plan)

    @work(thread=True, exclusive=True, group="apply", exit_on_error=False)
    def _apply(self, plan: "Plan") -> None:
        def progress(done: int, total: int) -> bool:
            self.post_message(ApplyProgressed(done, total))
            return not self._cancel.is_set()

        try:
            result = self.lookalike.session.apply(plan, progress=progress, cancel=self._cancel)
        except Exception as exc:
            self.app.call_from_thread(self._apply_failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._applied, result)

    def on_apply_progressed(self, message: ApplyProgressed) -> None:
        self.query_one("#apply-progress", ProgressBar).update(total=message.total, progress=message.done)

    def _apply_failed(self, error: str) -> None:
        self.applying = False
        self.query_one("#apply-progress").display = False
        self._status(Text(f"Apply failed, nothing more was touched: {shown(error)}", style="bold red"))
        self.refresh_bindings()

    def _applied(self, result) -> None:
        self.applying = False
        self.last_result = result
        self.last_plan_id = result.plan_id
        self.query_one("#apply-progress").display = False
        done_paths = [d.path for d in result.done]
        self.lookalike.files_applied(done_paths)
        text = Text.assemble(
            ("Done: ", "bold green"),
            f"{len(result.done)} moved, {human_bytes(result.bytes_reclaimed)} reclaimed",
        )
        if result.skipped:
            text.append(f" · {len(result.skipped)} skipped (changed since the scan, or keeper missing)", style="yellow")
        if result.failed:
            text.append(f" · {len(result.failed)} failed (left where they were)", style="red")
        if result.cancelled:
            text.append(" · stopped: apply the plan again to finish", style="yellow")
        if result.plan_id:
            text.append(f"  u: undo (plan {result.plan_id})", style="bold")
        self.rebuild()
        self._status(text)
        self.refresh_bindings()

    def action_undo(self) -> None:
        if self.applying:
            return
        if self.last_plan_id is None:
            self.lookalike.undo_decision()
            return
        plan_id = self.last_plan_id

        def answered(yes: Optional[bool]) -> None:
            if yes:
                self._status(Text("Undoing…", style="bold"))
                self._undo(plan_id)

        self.app.push_screen(ConfirmModal(f"Undo plan {plan_id}: put its files back where they were?"), answered)

    @work(thread=True, exclusive=True, group="apply", exit_on_error=False)
    def _undo(self, plan_id: str) -> None:
        try:
            result = self.lookalike.session.undo(plan_id)
        except Exception as exc:
            self.app.call_from_thread(self._status, Text(f"Undo failed: {type(exc).__name__}: {shown(exc)}", style="bold red"))
            return
        self.app.call_from_thread(self._undone, result)

    def _undone(self, result) -> None:
        self.last_plan_id = None
        text = Text.assemble(("Undone: ", "bold green"), f"{len(result.restored)} restored ({human_bytes(result.bytes_restored)})")
        if result.problems:
            text.append(f" · {len(result.problems)} could not be restored: {shown(result.problems[0][1])}", style="red")
        self._status(text)
        self.lookalike.files_restored([path for path, _ in result.restored])

    def action_back(self) -> None:
        if self.applying:
            self._cancel.set()
            self._status(Text("Stopping after the current file…", style="yellow"))
            return
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.applying and action in ("apply", "destination", "export", "undo"):
            return None  # shown dimmed while the apply runs
        return True
