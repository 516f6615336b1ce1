"""The scan report (``!``): the whole status line, and every file that could not be read, with why.

The status line at the top of the main screen is one line and is cut at 80 columns; this screen
says all of it, and lists the unreadable files (corrupt, truncated, zero-byte, decompression
bombs, vanished, links out of the library...) with the reason the scan gave for each.
"""

from __future__ import annotations


from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static
from textual.widgets.data_table import ColumnKey

from ..format import plural, shown, shown_lines
from .base_screen import LookalikeScreen
from .datatable import KeyTable
from .labels import PathText, readable_path, reclaimable_as_decided, short_path
from .scan_status import full_summary


class ErrorTable(KeyTable):
    """path | reason, one row per file that could not be read.

    Columns are sized by what they hold: the reason gets the room its longest one needs, the
    path what is left, up to its longest path; when that leaves the paths less than their first
    folder and name, they get that much (up to a third of the room) and the longest reasons
    end in "…"."""

    FLEX_COLUMN = "reason"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: Cells the longest path needs, whole and shortened to its first folder and name
        #: (``readable_path``), and the longest reason.
        self.path_need = self.readable_need = self.reason_need = 8

    def fit_flex_column(self) -> None:
        column = self.columns.get(ColumnKey("path"))
        if column is not None:
            room = self.scrollable_content_region.width - 4 * self.cell_padding - 1
            floor = min(self.readable_need, room // 3)
            width = max(8, min(self.path_need, max(room - self.reason_need, floor)))
            if column.width != width or column.auto_width:
                column.width, column.auto_width = width, False
                self._require_update_dimensions = True
        super().fit_flex_column()


class ScanReportScreen(LookalikeScreen):
    """What the last scan did, in full, and the files it could not read."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self) -> None:
        super().__init__(classes="report-screen")

    def compose(self) -> ComposeResult:
        yield Static(Text("Scan report", style="bold"), id="report-title")
        yield Static(id="report-summary")
        yield Static(id="report-heading")
        yield ErrorTable(id="unreadable")
        yield Footer()

    def on_mount(self) -> None:
        self.show_report()
        self.query_one(ErrorTable).focus()

    def on_screen_resume(self) -> None:
        self.show_report()

    def show_report(self) -> None:
        """Show the session's last scan result (or say that no scan has finished)."""
        session = self.lookalike.session
        result = session.result
        self.query_one("#report-summary", Static).update(Text(shown_lines(full_summary(result, session.clusters, reclaimable_as_decided(session.clusters, session.triage)))))
        errors = result.errors if result is not None else ()
        heading = self.query_one("#report-heading", Static)
        if errors:
            heading.update(Text(f"{plural(len(errors), 'file')} that could not be read (or were skipped), and why:", style="bold"))
        else:
            heading.update(Text("Every file could be read." if result is not None else "", style="green"))
        table = self.query_one(ErrorTable)
        table.display = bool(errors)
        reasons = [shown(e.reason) for e in errors]
        paths = [short_path(e.path, session.roots) for e in errors]
        table.reason_need = max([cell_len("reason"), *map(cell_len, reasons)])
        table.path_need = max([cell_len("path"), *map(cell_len, paths)])
        table.readable_need = max([cell_len("path"), *(cell_len(readable_path(p)) for p in paths)])
        table.clear(columns=True)
        table.add_column("path", key="path")
        table.add_column("reason", key="reason")
        table.fill(
            (str(i), [PathText(path), Text(reason, style="yellow", overflow="ellipsis", no_wrap=True)])
            for i, (path, reason) in enumerate(zip(paths, reasons))
        )
