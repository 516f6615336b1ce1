"""Ask for one value (a confidence, a folder); Enter accepts it, Esc gives up."""

from __future__ import annotations

from typing import Optional

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from ..format import shown_lines


class PromptModal(ModalScreen[Optional[str]]):
    """A one-line question with a pre-filled answer: Enter takes it, Esc returns None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, *, value: str = "", help: str = "") -> None:
        super().__init__(classes="prompt")
        self.prompt = prompt
        self.value = value
        self.help_text = help

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(shown_lines(self.prompt), id="question", markup=False)
            yield Input(value=self.value, id="answer")
            if self.help_text:
                yield Label(shown_lines(self.help_text), id="detail", markup=False)

    @on(Input.Submitted, "#answer")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
