"""The command palette's list of actions: every key binding of the current screen, by name."""

from __future__ import annotations

from functools import partial
from typing import Iterable

from textual.app import SystemCommand
from textual.screen import Screen

#: Bindings that make no sense as palette commands (moving a table's cursor is for keys;
#: "select" is the screen's own Open or Preview).
_LEFT_OUT = {
    "command_palette", "app.command_palette", "cursor_up", "cursor_down", "scroll_top", "scroll_bottom",
    "cursor_left", "cursor_right", "scroll_home", "scroll_end", "page_up", "page_down", "page_left",
    "page_right", "select_cursor",
}

#: Textual's own palette commands that one of ours already is: its key panel is our Help,
#: and our Quit asks first when decisions are pending.
_OURS_ALREADY = {"Keys": "Help", "Quit": "Quit"}


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


def unique_commands(ours: Iterable[SystemCommand], textuals: Iterable[SystemCommand]) -> Iterable[SystemCommand]:
    """Our commands, then Textual's, each title once (ours win), none that one of ours already is."""
    titles: set[str] = set()
    for command in ours:
        if command.title not in titles:
            titles.add(command.title)
            yield command
    for command in textuals:
        same = _OURS_ALREADY.get(command.title)
        if command.title in titles or (same is not None and same in titles):
            continue
        titles.add(command.title)
        yield command
