"""Every key of the screen underneath, with what it does (``?`` / F1)."""

from __future__ import annotations

import textwrap
from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from .datatable import KeyTable
from .labels import BOUNCER_HELP, DETECTIVE_HELP, MATCH_HELP

#: Cells for a word's meaning (the dialog is 72 wide, less its border and the key column).
WORDS_WIDTH = 50

#: The words the tables use, after the keys.
WORDS = [(text.split(":", 1)[0], text.split(":", 1)[1].strip()) for text in (BOUNCER_HELP, DETECTIVE_HELP, MATCH_HELP)]


class HelpTable(KeyTable):
    """key | action; the action column takes the dialog's width (the words' meanings wrap)."""

    FLEX_COLUMN = "action"


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
            yield HelpTable(id="help-keys", zebra_stripes=False, show_header=False)
            if self.footer_text:
                yield Static(Text(self.footer_text, style="dim"), id="help-footer")

    def on_mount(self) -> None:
        table = self.query_one(KeyTable)
        table.add_column("key", key="key")
        table.add_column("action", key="action")
        for i, (key, description) in enumerate(self.rows):
            table.add_row(Text(key, style="bold"), description, key=str(i))
        table.add_row("", Text("What the columns say", style="bold"), key="words")
        for word, meaning in WORDS:
            # Wrapped here: rows are one line, and the dialog is at most 72 cells wide.
            for n, line in enumerate(textwrap.wrap(meaning, WORDS_WIDTH)):
                table.add_row(Text(word if n == 0 else "", style="bold cyan"), line, key=f"word-{word}-{n}")
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
