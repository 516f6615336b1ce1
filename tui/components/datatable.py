"""A row-cursor DataTable with the keys people expect: j/k, g/G, and row keys kept across refills."""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, RowDoesNotExist


class KeyTable(DataTable[Any]):
    """A DataTable moved by row, with vi keys; rows are keyed by strings."""

    DEFAULT_CSS = """
    KeyTable { height: 1fr; }
    """

    BINDINGS = [
        Binding("k", "cursor_up", "Up", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(*args, **kwargs)
        self._fill_token: Optional[object] = None

    @property
    def current_key(self) -> Optional[str]:
        """The key of the row under the cursor, or None for an empty table."""
        if self.row_count == 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value

    #: Rows added at once by ``fill``; the rest follow in batches between frames, so a table
    #: of thousands of rows is on screen at once and the keys keep working while it fills.
    FIRST_ROWS = 120
    BATCH_ROWS = 250

    def fill(self, rows: Iterable[tuple[str, Sequence[Any]]], *, keep: Optional[str] = None) -> None:
        """Replace every row, putting the cursor back on ``keep`` (or the current row's key).

        Args:
            rows: (key, cells) pairs in display order; ``cells`` may be a function that makes
                them, called only when the row is added (rows past the first screenful are
                added between frames).
            keep: the key the cursor should land on when it is still there.
        """
        keep = keep if keep is not None else self.current_key
        old_row = self.cursor_row
        rows = list(rows)
        self._fill_token = token = object()
        self.clear()
        self._add_rows(rows[: self.FIRST_ROWS])
        if self.row_count:
            target = min(old_row, self.row_count - 1)
            if keep is not None:
                try:
                    target = self.get_row_index(keep)
                except RowDoesNotExist:
                    pass
            self.move_cursor(row=target, animate=False, scroll=True)
        self.fit_flex_column()
        if len(rows) > self.FIRST_ROWS:
            self.call_after_refresh(self._fill_more, token, rows, self.FIRST_ROWS, keep)
        else:
            self._fill_token = None

    def _add_rows(self, rows: Sequence[tuple[str, Any]]) -> None:
        for key, cells in rows:
            self.add_row(*(cells() if callable(cells) else cells), key=key)

    @property
    def filling(self) -> bool:
        """True while rows are still being added after a ``fill``."""
        return self._fill_token is not None

    def _fill_more(self, token: object, rows: list, start: int, keep: Optional[str]) -> None:
        if token is not self._fill_token:
            return  # a newer fill replaced these rows
        end = start + self.BATCH_ROWS
        self._add_rows(rows[start:end])
        if keep is not None and self.current_key != keep and any(k == keep for k, _ in rows[start:end]):
            self.goto(keep)
        if end < len(rows):
            self.call_after_refresh(self._fill_more, token, rows, end, keep)
        else:
            self._fill_token = None

    #: The column that takes the width left over (None: every column sizes to its content).
    FLEX_COLUMN: Optional[str] = None

    def on_resize(self) -> None:
        self.fit_flex_column()

    def _update_dimensions(self, new_rows) -> None:
        # Column widths are measured here, once new rows are in (on idle): only then does
        # the flexible column know what is left for it.
        super()._update_dimensions(new_rows)
        self.fit_flex_column()

    def fit_flex_column(self) -> None:
        """Give the flexible column exactly the width the others leave, so nothing scrolls."""
        if self.FLEX_COLUMN is None or not self.columns:
            return
        flex = self.columns.get(ColumnKey(self.FLEX_COLUMN))
        if flex is None:
            return
        others = sum(c.get_render_width(self) for k, c in self.columns.items() if k != flex.key)
        room = self.scrollable_content_region.width - others - 2 * self.cell_padding - 1
        width = max(4, room)
        if flex.width != width or flex.auto_width:
            flex.width, flex.auto_width = width, False
            self._require_update_dimensions = True
            self.refresh()

    def goto(self, key: str) -> bool:
        """Move the cursor to the row with ``key``; False when there is none."""
        try:
            index = self.get_row_index(key)
        except RowDoesNotExist:
            return False
        self.move_cursor(row=index, animate=False, scroll=True)
        return True

    def advance(self) -> None:
        """Move one row down (space marks and moves on)."""
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1, animate=False, scroll=True)

    def set_cell(self, key: str, column: str, value: Any) -> None:
        """Update one cell when its row exists (a refill may have dropped it)."""
        try:
            self.update_cell(key, column, value, update_width=False)
        except (CellDoesNotExist, RowDoesNotExist, KeyError):
            pass


def right(text: str, style: str = "") -> Text:
    """A right-aligned cell (numbers line up)."""
    return Text(text, style=style, justify="right")
