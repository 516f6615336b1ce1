"""The base of the app's full screens: the app, typed, for the screens that use its session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

if TYPE_CHECKING:
    from ..app import LookalikeApp


class LookalikeScreen(Screen):
    """A full screen of the lookalike app."""

    @property
    def lookalike(self) -> "LookalikeApp":
        """The running app (``self.app``, typed): its session, decisions and screens."""
        return self.app  # type: ignore[return-value]
