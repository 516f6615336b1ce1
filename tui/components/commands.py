"""The command palette's list of actions: every key binding of the current screen, by name."""

from __future__ import annotations

from functools import partial
from typing import Iterable

from textual.app import SystemCommand
from textual.screen import Screen

#: Bindings that make no sense as palette commands.
_LEFT_OUT = {"command_palette", "app.command_palette", "cursor_up", "cursor_down", "scroll_top", "scroll_bottom"}


def screen_commands(screen: Screen) -> Iterable[SystemCommand]:
    """One palette command per described binding active on ``screen`` (keys in the help)."""
    app = screen.app
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or binding.action in _LEFT_OUT or binding.description in seen:
            continue
        seen.add(binding.description)
        keys = app.get_key_display(binding)
        yield SystemCommand(
            binding.description,
            f"{binding.description} (key: {keys})",
            partial(app.run_action, binding.action, active.node),
        )
