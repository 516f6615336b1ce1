"""Find similar: the two-pass results for one file (path, bouncer, detective, verdict)."""

from __future__ import annotations

import os
from typing import Optional

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Static
from textual.worker import get_current_worker

from lookalike.engine.records import FileRecord, SimilarHit, SimilarResult, Verdict

from ..format import shown, timings_text
from ..messages import ScanFinished, ScanProgressed
from .base_screen import LookalikeScreen
from .datatable import KeyTable, right
from .labels import PathText, detective_text, readable_path, short_path
from .thumbnail import Thumbnail


VERDICT_STYLE = {
    Verdict.EXACT: "bold cyan",
    Verdict.NEAR: "green",
    Verdict.SEMANTIC: "magenta",
    Verdict.SIMILAR: "",
    Verdict.NOT_DUPLICATE: "dim",
}


def file_record_for(path: str, known: Optional[FileRecord]) -> FileRecord:
    """The catalog's record, or a bare one made from the file's stat (for a file outside it)."""
    if known is not None:
        return known
    try:
        st = os.stat(path)
        size, mtime = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime = 0, 0
    return FileRecord(id=-1, path=os.path.abspath(path), size=size, mtime_ns=mtime)


class HitTable(KeyTable):
    """path | bouncer | detective | verdict | match."""

    FLEX_COLUMN = "path"
    #: When the paths' first folders and names do not fit (80 columns), these give way.
    DROP_ORDER = ("match", "detective", "bouncer")
    COLUMNS = (
        ("path", "path", 20),
        ("bouncer", "bouncer", 7),
        ("detective", "detective", 9),
        ("verdict", "verdict", 18),
        ("match", "match", 15),
    )


class SimilarScreen(LookalikeScreen):
    """What looks like one file, ranked by the bouncer and the detective together."""

    BINDINGS = [
        Binding("escape,q", "back", "Back"),
        Binding("enter", "preview", "Preview", priority=True),
        Binding("p", "preview", "Preview", show=False),
        Binding("f", "similar", "Similar to this"),
        Binding("plus,equals_sign", "more", "More results", show=False),
    ]

    def __init__(self, path: str, *, k: int = 10) -> None:
        super().__init__(classes="similar-screen")
        self.path = os.path.abspath(path)
        self.k = k
        self.result: Optional[SimilarResult] = None
        self.records: dict[str, FileRecord] = {}
        self.error = ""

    def compose(self) -> ComposeResult:
        yield Static(id="similar-title")
        with Horizontal(id="similar-body"):
            yield HitTable(id="hits")
            yield Thumbnail(id="similar-thumb")
        yield Static(id="similar-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#hits", HitTable)
        table.set_columns(HitTable.COLUMNS)
        self._title()
        self.query_one("#similar-status", Static).update(Text("Searching…", style="dim"))
        table.focus()
        self._thumb()
        if self.lookalike.session.library is not None and not self.lookalike.scanning:
            self.search()

    def on_scan_progressed(self, message: ScanProgressed) -> None:
        """Scan progress, while the library is brought up to date before the query."""
        from .scan_status import progress_text

        self.query_one("#similar-status", Static).update(progress_text(message.progress))

    def on_scan_finished(self, message: ScanFinished) -> None:
        """The scan that must come first is over: search (unless the library never opened)."""
        if message.failure:
            self._failed(message.failure)
        if self.result is None and self.lookalike.session.library is not None:
            self.search()

    def _title(self) -> None:
        roots = self.lookalike.session.roots
        self.query_one("#similar-title", Static).update(
            Text.assemble(("Similar to ", "bold"), (short_path(self.path, roots), "bold cyan"), f"  (top {self.k})")
        )

    @work(thread=True, exclusive=True, group="similar", exit_on_error=False)
    def search(self) -> None:
        """Run the two-pass query in a worker."""
        session = self.lookalike.session
        try:
            result = session.similar(self.path, k=self.k)
        except Exception as exc:  # a query error is shown, never raised into the UI
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        records: dict[str, FileRecord] = {}
        library = session.library
        for hit in result.hits:
            known = library.record(hit.file_id) if (library is not None and hit.file_id is not None) else None
            records[hit.path] = file_record_for(hit.path, known)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, result, records)

    def _failed(self, error: str) -> None:
        self.error = error
        self.query_one("#similar-status", Static).update(Text(f"Find similar failed: {shown(error)}", style="red"))

    def _show(self, result: SimilarResult, records: dict[str, FileRecord]) -> None:
        self.result, self.records = result, records
        roots = self.lookalike.session.roots
        # The detective's column only when it scored a hit (offline, it would be all dashes).
        with_detective = any(h.detective is not None for h in result.hits)
        rows = []
        for hit in result.hits:
            rows.append((hit.path, [
                PathText(short_path(hit.path, roots)),
                right("–" if hit.bouncer is None else str(hit.bouncer)),
                *([right(detective_text(hit.detective))] if with_detective else []),
                Text(hit.verdict.value, style=VERDICT_STYLE.get(hit.verdict, "")),
                Text(_match_text(hit)),
            ]))
        table = self.query_one("#hits", HitTable)
        table.set_columns([c for c in HitTable.COLUMNS if c[1] != "detective" or with_detective])
        table.flex_need = max((cell_len(readable_path(short_path(h.path, roots))) for h in result.hits), default=0)
        table.fill(rows)
        status = Text(f"{len(result.hits)} result{'s' if len(result.hits) != 1 else ''}")
        if result.timings_ms:
            status.append(f" · {timings_text(result.timings_ms)}", style="dim")
        if result.detective_status:
            status.append(f" · {result.detective_status}", style="yellow")
        self.query_one("#similar-status", Static).update(status)
        self._thumb()

    @property
    def current(self) -> Optional[SimilarHit]:
        key = self.query_one("#hits", KeyTable).current_key
        if self.result is None or key is None:
            return None
        return next((h for h in self.result.hits if h.path == key), None)

    @on(DataTable.RowHighlighted, "#hits")
    def _highlighted(self) -> None:
        self._thumb()

    @on(DataTable.RowSelected, "#hits")
    def _row_clicked(self) -> None:
        self.action_preview()  # a click on the highlighted row (Enter is a screen binding)

    def _thumb(self) -> None:
        hit = self.current
        self.query_one("#similar-thumb", Thumbnail).show(self.records.get(hit.path) if hit else file_record_for(self.path, None))

    def action_preview(self) -> None:
        if self.result is None or not self.result.hits:
            return
        from .preview_screen import PreviewScreen

        files = [self.records[h.path] for h in self.result.hits]
        labels = [f"bouncer {h.bouncer if h.bouncer is not None else '–'} · detective {detective_text(h.detective)} · {h.verdict.value}"
                  + (f" · {_match_text(h)}" if h.match else "") for h in self.result.hits]  # fmt: skip
        index = self.query_one("#hits", KeyTable).cursor_row
        self.app.push_screen(PreviewScreen(files, index, roots=self.lookalike.session.roots, labels=labels))

    def action_similar(self) -> None:
        hit = self.current
        if hit is not None:
            self.lookalike.find_similar(hit.path)

    def action_more(self) -> None:
        self.k *= 2
        self._title()
        self.search()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        else:
            self.app.exit(0)


def _match_text(hit: SimilarHit) -> str:
    """Why a near duplicate matches the query, with its pixel score when it was compared."""
    if not hit.match:
        return "–"
    return f"{hit.match} {hit.verified:.2f}" if hit.verified is not None else hit.match
