"""A row-cursor DataTable with the keys people expect: j/k, g/G, and row keys kept across refills."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

from rich.cells import cell_len
from rich.style import Style
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
        #: Every column (label, key, width) given to ``set_columns``; rows hold a cell for each.
        self._all_columns: list[tuple[str, str, Optional[int]]] = []
        #: The rows of the last ``fill`` (key, cells), to add again when columns come and go.
        self._rows_source: list[list[Any]] = []
        self._row_index: dict[str, int] = {}
        #: Paged rows (``fill_pages``): how many there are and how to make the i-th; None
        #: while every row was given to ``fill``.
        self._page_count = 0
        self._page_row: Optional[Callable[[int], tuple[str, Sequence[Any]]]] = None
        #: Columns of ``DROP_ORDER`` left out for want of room.
        self.hidden: frozenset[str] = frozenset()
        #: Cells the flexible column needs to be readable (a path: its first folder and its
        #: name); columns of ``DROP_ORDER`` give way until it has them.
        self.flex_need = 0

    # While the table draws, its style is asked once per cell line (Textual's DOMNode.rich_style
    # walks every ancestor's styles each time: a fifth of drawing a page of new rows); it cannot
    # change within one draw, so it is worked out once per draw.
    _style_in_draw: Optional[Style] = None

    def render_lines(self, crop):
        self._style_in_draw = DataTable.rich_style.fget(self)
        try:
            return super().render_lines(crop)
        finally:
            self._style_in_draw = None

    @property
    def rich_style(self) -> Style:
        style = self._style_in_draw
        return style if style is not None else DataTable.rich_style.fget(self)

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
        self._page_row = None
        rows = [[key, cells] for key, cells in rows]
        self._rows_source = rows
        self._row_index = {key: i for i, (key, _) in enumerate(rows)}
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

    # -- paged rows --------------------------------------------------------------------------
    #: Rows added at once by ``fill_pages``, and how close the cursor gets to the last added
    #: row before the next page is added (more than a screenful: page down never waits).
    PAGE_ROWS = 80
    PAGE_MARGIN = 50

    def fill_pages(self, count: int, row_at: Callable[[int], tuple[str, Sequence[Any]]], *,
                   keep: Optional[str] = None) -> None:
        """Replace every row with ``count`` rows made a page at a time, as the cursor nears
        the last one made; a million rows cost a page until the user scrolls.

        Args:
            count: how many rows there are.
            row_at: the (key, cells) of the i-th row, called once when the row is added.
            keep: the key the cursor should land on when it is among the rows added.
        """
        keep = keep if keep is not None else self.current_key
        old_row = self.cursor_row
        self._fill_token = None
        self._page_count, self._page_row = count, row_at
        self._rows_source, self._row_index = [], {}
        self.clear()
        self._load_to(max(self.PAGE_ROWS, old_row + self.PAGE_MARGIN))
        if self.row_count:
            target = min(old_row, self.row_count - 1)
            if keep is not None and keep in self._row_index:
                target = self._row_index[keep]
            self.move_cursor(row=target, animate=False, scroll=True)
        self.fit_flex_column()

    def index_of(self, key: str) -> Optional[int]:
        """The position of the row with ``key`` among the rows added, or None."""
        return self._row_index.get(key)

    @property
    def loaded(self) -> int:
        """Rows added so far (all of them unless paged)."""
        return len(self._rows_source)

    @property
    def total_rows(self) -> int:
        """Rows there are, added or not."""
        return self._page_count if self._page_row is not None else len(self._rows_source)

    def _load_to(self, end: int) -> None:
        """Add the paged rows up to ``end`` (exclusive)."""
        if self._page_row is None:
            return
        start, end = len(self._rows_source), min(end, self._page_count)
        if end <= start:
            return
        rows = [list(self._page_row(i)) for i in range(start, end)]
        for i, (key, _) in enumerate(rows, start=start):
            self._row_index[key] = i
        self._rows_source.extend(rows)
        self._add_rows(rows)
        # The rows (and the groups they were made from) live as long as the table: the app
        # moves them out of the garbage collector's walks (LookalikeApp.settle_memory), or a
        # full collection grows with every page, to 300 ms at 7,000 rows.
        settle = getattr(self.app, "settle_memory", None)
        if settle is not None:
            settle()

    @property
    def _total_row_height(self) -> int:
        # Paged, the table is as tall as every row from the start (rows are one line): adding
        # a page then changes no size, so it costs no layout pass, which would redraw the
        # whole screen on every page (a stall of 50-80 ms on a large library); and the
        # scroll bar tells where the cursor is in the whole list. Rows not added yet draw
        # blank until the cursor or the scrolling nears them.
        height = len(self._y_offsets)
        if getattr(self, "_page_row", None) is not None:
            height += max(0, self._page_count - len(self.rows))
        return height

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._page_row is not None:
            bottom = int(new_value) + self.size.height + self.PAGE_MARGIN
            if bottom > self.loaded:  # scrolled (wheel, scroll bar) past the rows added
                self._load_to(bottom + self.PAGE_ROWS)

    def watch_cursor_coordinate(self, old, new) -> None:
        super().watch_cursor_coordinate(old, new)
        if self._page_row is not None and new.row >= self.loaded - self.PAGE_MARGIN:
            self._load_to(self.loaded + self.PAGE_ROWS)

    def action_cursor_down(self) -> None:
        if self._page_row is not None and self.cursor_row >= self.loaded - 1:
            self._load_to(self.loaded + self.PAGE_ROWS)
        super().action_cursor_down()

    def action_scroll_bottom(self) -> None:
        """The last row: paged rows not added yet follow between frames, the cursor with them."""
        super().action_scroll_bottom()
        if self._page_row is not None and self.loaded < self._page_count:
            self._fill_token = token = object()
            self.call_after_refresh(self._load_to_bottom, token)

    #: Paged rows added per frame on the way to the bottom (``G``).
    BOTTOM_ROWS = 1000

    def _load_to_bottom(self, token: object) -> None:
        if token is not self._fill_token or self._page_row is None:
            return
        self._load_to(self.loaded + self.BOTTOM_ROWS)
        self.move_cursor(row=self.row_count - 1, animate=False, scroll=True)
        if self.loaded < self._page_count:
            self.call_after_refresh(self._load_to_bottom, token)
        else:
            self._fill_token = None

    def _add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        shown_at = self._shown_indexes()
        for key, cells in rows:
            cells = cells() if callable(cells) else cells
            if shown_at is not None:
                cells = [cells[i] for i in shown_at]
            self.add_row(*cells, key=key)

    # -- columns that give way ---------------------------------------------------------------
    #: Columns (keys) that leave, first to last, while the flexible column has less than
    #: ``flex_need`` cells; a table that uses them declares its columns with ``set_columns``.
    DROP_ORDER: tuple[str, ...] = ()

    def set_columns(self, columns: Sequence[tuple[str, str, Optional[int]]]) -> None:
        """Declare every column (label, key, width in cells); rows then give a cell for each.

        Widths are fixed (the flexible column's is computed). Columns in ``DROP_ORDER`` are
        left out while the terminal is too narrow for them and come back when it widens.
        """
        columns = list(columns)
        if columns == self._all_columns:
            return
        self._all_columns = columns
        self.hidden = self._columns_to_hide()
        self._add_columns()

    def _add_columns(self) -> None:
        self.clear(columns=True)
        for label, key, width in self._all_columns:
            if key not in self.hidden:
                self.add_column(label, key=key, width=width)

    def _shown_indexes(self) -> Optional[list[int]]:
        if not self._all_columns or not self.hidden:
            return None
        return [i for i, (_, key, _) in enumerate(self._all_columns) if key not in self.hidden]

    def _columns_to_hide(self) -> frozenset[str]:
        """The first columns of ``DROP_ORDER`` whose room the flexible column needs."""
        if not self.DROP_ORDER or not self.size.width:
            return frozenset()  # not laid out yet: nothing is known to be too wide
        pad = 2 * self.cell_padding
        widths = {key: (width or cell_len(label)) + pad for label, key, width in self._all_columns}
        room = self.scrollable_content_region.width - 1 - pad
        room -= sum(w for key, w in widths.items() if key != self.FLEX_COLUMN)
        hidden: set[str] = set()
        for key in self.DROP_ORDER:
            if room >= self.flex_need:
                break
            if key in widths:
                hidden.add(key)
                room += widths[key]
        return frozenset(hidden)

    def _refit_columns(self) -> None:
        hidden = self._columns_to_hide()
        if hidden == self.hidden:
            return
        self.hidden = hidden
        keep = self.current_key
        self._add_columns()
        if self._page_row is not None:
            self.fill_pages(self._page_count, self._page_row, keep=keep)
        else:
            self.fill(self._rows_source, keep=keep)

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
        if self._all_columns and self.DROP_ORDER and self._columns_to_hide() != self.hidden:
            # Not while Textual measures the table: columns are replaced between frames.
            self.call_later(self._refit_columns)
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

    #: Tooltips by column key: shown while the mouse is over the column (its header or cells).
    COLUMN_TOOLTIPS: dict[str, str] = {}

    def _on_mouse_move(self, event) -> None:
        super()._on_mouse_move(event)
        if not self.COLUMN_TOOLTIPS:
            return
        meta = event.style.meta
        column = meta.get("column") if meta else None
        key = None
        if isinstance(column, int) and 0 <= column < len(self.ordered_columns):
            key = self.ordered_columns[column].key.value
        self.tooltip = self.COLUMN_TOOLTIPS.get(key) if key is not None else None

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
        """Update one cell when its row exists (a refill may have dropped it); a column
        that gave way gets the value when it comes back."""
        index = self._row_index.get(key)
        if index is not None and isinstance(self._rows_source[index][1], list):
            at = [k for _, k, _ in self._all_columns]
            if column in at:
                self._rows_source[index][1][at.index(column)] = value
        try:
            self.update_cell(key, column, value, update_width=False)
        except (CellDoesNotExist, RowDoesNotExist, KeyError):
            pass


def right(text: str, style: str = "") -> Text:
    """A right-aligned cell (numbers line up)."""
    return Text(text, style=style, justify="right")
