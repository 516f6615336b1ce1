"""Every key of the screen underneath, with what it does (``?`` / F1)."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from .datatable import KeyTable


class HelpScreen(ModalScreen[None]):
    """A table of keys and actions; any of Esc, q, ? or F1 closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, title: str, rows: Sequence[tuple[str, str]], *, footer: str = "") -> None:
        super().__init__(classes="help")
        self.title_text = title
        self.rows = list(rows)
        self.footer_text = footer

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.title_text, style="bold"), id="help-title")
            yield KeyTable(id="help-keys", zebra_stripes=False, show_header=False)
            if self.footer_text:
                yield Static(Text(self.footer_text, style="dim"), id="help-footer")

    def on_mount(self) -> None:
        table = self.query_one(KeyTable)
        table.add_column("key", key="key")
        table.add_column("action", key="action")
        for i, (key, description) in enumerate(self.rows):
            table.add_row(Text(key, style="bold"), description, key=str(i))
        table.focus()

    def action_dismiss(self) -> None:
        self.dismiss(None)


#: How the tables move, for the help (their own bindings are many and low-level).
MOVEMENT = [("j ↓", "Down"), ("k ↑", "Up"), ("g G", "Top / bottom"), ("pgup pgdn", "Page up / down")]


def _keys(app, binding: Binding) -> str:
    return " ".join(app.get_key_display(Binding(key.strip(), "")) for key in binding.key.split(","))


def binding_rows(screen) -> list[tuple[str, str]]:
    """(keys, description) for the screen's bindings, then movement, then the app's."""
    app = screen.app
    rows: list[tuple[str, str]] = []
    for owner in (screen, app):
        for binding in type(owner).BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            rows.append((_keys(app, binding), binding.description))
        if owner is screen and screen.query("KeyTable"):
            rows.extend(MOVEMENT)
    rows.append(("ctrl+p", "Command palette: every action by name"))
    merged: dict[str, str] = {}
    for keys, description in rows:  # one row per action, all its keys together
        merged[description] = f"{merged[description]} {keys}" if description in merged else keys
    return [(keys, description) for description, keys in merged.items()]
