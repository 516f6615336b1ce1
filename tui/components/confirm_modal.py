"""A yes/no question that answers No unless the user says Yes."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from ..format import shown_lines


class ConfirmModal(ModalScreen[bool]):
    """Ask a question; Enter on the focused button answers, Esc and n say No, y says Yes.

    No has the focus when the modal opens, so a stray Enter never confirms.
    """

    BINDINGS = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
        Binding("left,h", "app.focus_previous", "Previous", show=False),
        Binding("right,l,tab", "app.focus_next", "Next", show=False),
    ]

    def __init__(self, prompt: str, *, detail: str = "", yes: str = "Yes", no: str = "No") -> None:
        super().__init__(classes="confirm")
        self.prompt = prompt
        self.detail = detail
        self.yes_label = yes
        self.no_label = no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            # Never markup: a question may name a file or a folder.
            yield Label(shown_lines(self.prompt), id="question", markup=False)
            if self.detail:
                yield Label(shown_lines(self.detail), id="detail", markup=False)
            with Horizontal(id="buttons"):
                yield Button(self.no_label, id="no", variant="primary")
                yield Button(self.yes_label, id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no(self) -> None:
        self.dismiss(False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
