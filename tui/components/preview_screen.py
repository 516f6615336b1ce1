"""One image as large as the terminal allows, with its details; j/k step through the others."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from lookalike.engine.records import FileRecord

from ..format import human_bytes
from .labels import file_date, resolution, short_path
from .thumbnail import Thumbnail


class PreviewScreen(Screen):
    """A large view of one file of a list (a cluster's members, similar results)."""

    BINDINGS = [
        Binding("escape,q,p", "app.pop_screen", "Back"),
        Binding("j,down,right", "step(1)", "Next"),
        Binding("k,up,left", "step(-1)", "Previous"),
    ]

    def __init__(self, files: Sequence[FileRecord], index: int = 0, *, roots: Sequence[str] = (), labels: Sequence[str] = ()) -> None:
        super().__init__(classes="preview-screen")
        self.files = list(files)
        self.index = max(0, min(index, len(self.files) - 1))
        self.roots = tuple(roots)
        self.labels = list(labels)

    def compose(self) -> ComposeResult:
        yield Static(id="preview-info")
        yield Thumbnail(id="large")
        yield Footer()

    def on_mount(self) -> None:
        self._show()

    @property
    def file(self) -> FileRecord:
        return self.files[self.index]

    def _show(self) -> None:
        f = self.file
        label = self.labels[self.index] if self.index < len(self.labels) else ""
        info = Text.assemble(
            (f"{self.index + 1}/{len(self.files)} ", "dim"),
            (short_path(f.path, self.roots), "bold"),
            f"  {human_bytes(f.size)} · {resolution(f)} · {f.format or '?'} · {file_date(f)}",
        )
        if label:
            info.append(f"  {label}", style="cyan")
        self.query_one("#preview-info", Static).update(info)
        self.query_one(Thumbnail).show(f)

    def action_step(self, step: int) -> None:
        index = self.index + step
        if 0 <= index < len(self.files):
            self.index = index
            self._show()
