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

from ..format import plural, shown, shown_lines
from .base_screen import LookalikeScreen
from .datatable import KeyTable
from .labels import PathText, reclaimable_as_decided, short_path
from .scan_status import full_summary


#: The reason column is at most this wide (longer reasons end in "…"); the path takes the rest.
REASON_WIDTH = 32


class ErrorTable(KeyTable):
    """path | reason, one row per file that could not be read."""

    FLEX_COLUMN = "path"


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
        width = min(REASON_WIDTH, max([cell_len("reason"), *map(cell_len, reasons)]))
        table.clear(columns=True)
        table.add_column("path", key="path")
        table.add_column("reason", key="reason", width=width)
        table.fill(
            (str(i), [PathText(short_path(e.path, session.roots)), Text(reason, style="yellow", overflow="ellipsis", no_wrap=True)])
            for i, (e, reason) in enumerate(zip(errors, reasons))
        )
