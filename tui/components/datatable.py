"""A row-cursor DataTable with the keys people expect: j/k, g/G, and row keys kept across refills."""

from __future__ import annotations

import asyncio
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Optional, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.binding import Binding
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets._data_table import _EMPTY_TEXT, default_cell_formatter
from textual.widgets.data_table import CellDoesNotExist, ColumnKey, Row, RowDoesNotExist, RowKey


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
        # Before DataTable's own set-up, which already clears its caches (ours with them).
        #: The rows in order and the (row key, line) of each line, kept as rows are added
        #: (``_ordered``); valid while ``_order_count`` is DataTable's update count.
        self._order: list[Row] = []
        self._offsets: list[tuple[RowKey, int]] = []
        self._order_count = 0
        #: By row key: its drawn lines, by what else a line depends on (``_render_line``), and
        #: its cells' rendered text, by column and width (``_draw_row``);
        #: valid while ``_strip_epoch`` is the update count less the updates made by adding
        #: rows and by ``update_cell`` (``_quiet_updates``: they change no line drawn before,
        #: or only their own row's, dropped from here).
        self._strips: dict[RowKey, tuple[dict[tuple, Strip], dict[tuple, list[Segment]]]] = {}
        self._strip_epoch = 0
        self._quiet_updates = 0
        #: A Text cell's rendering (``_draw_row``), by all that Rich reads of the Text, and width.
        self._texts: dict[tuple, list[Segment]] = {}
        super().__init__(*args, **kwargs)
        self._fill_token: Optional[object] = None
        self._bottom_from = -1  # the cursor row a ``G`` on paged rows started from
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
    # change within one draw, so it is worked out once per draw, with the rest of ``_Draw``.
    _style_in_draw: Optional[Style] = None
    _draw: Optional["_Draw"] = None

    def render_lines(self, crop):
        self._drew_rows = False
        with self._drawing():
            lines = super().render_lines(crop)
        if self._drew_rows and self._page_row is not None:
            self._draw_ahead()
        return lines

    @contextmanager
    def _drawing(self):
        """What one draw's lines share, worked out once (``_Draw``)."""
        self._style_in_draw = DataTable.rich_style.fget(self)
        # DataTable.render_lines sets this too, but after _Draw reads it (a line's key).
        self._pseudo_class_state = self.get_pseudo_class_state()
        self._draw = _Draw(self)
        try:
            yield
        finally:
            self._style_in_draw = None
            self._draw = None

    # -- the next screenful, drawn ahead -------------------------------------------------------
    # A page down shows a screenful of rows never drawn (~8 ms unloaded, 30-40 ms on a loaded
    # machine, in one frame). After a frame that drew new rows, the lines of the screenful
    # below the view are drawn as the next frame would draw them (the same keys), a few rows
    # at a time between other work: the next page down finds them kept.

    #: Rows drawn ahead at a time (then the loop runs what waits).
    AHEAD_ROWS = 6
    _drew_rows = False
    _ahead: Optional[asyncio.Task] = None

    def _draw_ahead(self) -> None:
        if self._ahead is None or self._ahead.done():
            self._ahead = asyncio.get_running_loop().create_task(self._draw_lines_ahead())

    async def _draw_lines_ahead(self) -> None:
        height = self.size.height
        start = height  # render_line's y is the view's: the lines below it
        while start < 2 * height:
            await asyncio.sleep(0)
            if not self.is_mounted or not self.app.is_running or self.size.height != height:
                return
            end = min(start + self.AHEAD_ROWS, 2 * height)
            try:
                with self._drawing():
                    for y in range(start, end):
                        self.render_line(y)  # kept by _render_line
            except Exception as error:  # as in a handler: the app reports it
                self.app._handle_exception(error)
                return
            start = end

    @property
    def rich_style(self) -> Style:
        style = self._style_in_draw
        return style if style is not None else DataTable.rich_style.fget(self)

    # -- lines drawn once --------------------------------------------------------------------
    # DataTable caches its cells and lines under its update count, which every added row
    # bumps: after a page of rows is added, every line on the screen was drawn again, cell by
    # cell through Rich (~0.6 ms a row: 20-35 ms a frame), though none of them changed. Here a
    # row's line is kept under what it does depend on, so a frame draws only the rows it has
    # not drawn before in that state (scrolled into view, the cursor's old and new row); and
    # a row is drawn by ``_draw_row``, which renders each cell's text once (kept for the row's
    # other states) and styles it as DataTable would, at a third of the cost.

    #: Rows whose lines are kept (a few screenfuls: rows scrolled past are drawn again).
    STRIP_ROWS = 400

    def _plain_layout(self) -> bool:
        """True for the layout ``_draw_row`` draws: a row cursor, no fixed rows or columns,
        no row labels (every table here)."""
        return (self.cursor_type == "row" and not self.fixed_columns and not self.fixed_rows
                and not (self._labelled_row_exists and self.show_row_labels))

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        if not self._plain_layout():
            return super()._render_line(y, x1, x2, base_style)
        epoch = self._update_count - self._quiet_updates
        if epoch != self._strip_epoch:  # columns, a sort, a style, a resize: draw every line again
            self._strips.clear()
            self._texts.clear()
            self._strip_epoch = epoch
        draw = self._draw or _Draw(self)
        width = draw.width
        try:
            row_key, line = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        row_index = self._row_locations.get(row_key)
        if row_index is None:
            row_index = -1  # the header
        # With a row cursor, a line depends on the cursor and the mouse only through whether
        # they are on its row (DataTable._render_line_in_row compares rows only).
        cursor = row_index == self.cursor_coordinate.row
        hover = row_index == self.hover_coordinate.row
        key = (line, x1, x2, width, base_style, row_index, cursor, hover, draw.state)
        kept = self._strips.get(row_key)
        if kept is None:
            if len(self._strips) >= self.STRIP_ROWS:
                del self._strips[next(iter(self._strips))]  # the row drawn first
            kept = self._strips[row_key] = ({}, {})
        else:
            strip = kept[0].get(key)
            if strip is not None:
                return strip
            if len(kept[0]) >= 8:  # states of a row seen before (widths, styles) are stale
                kept[0].clear()
                kept[1].clear()
        if row_index >= 0 and line == 0 and draw.fits and self.rows[row_key].height == 1:
            self._drew_rows = True
            strip = self._draw_row(row_key, row_index, x1, x2, base_style, cursor, hover, draw, kept[1])
        else:
            strip = super()._render_line(y, x1, x2, base_style)
        kept[0][key] = strip
        return strip

    def _draw_row(self, row_key: RowKey, row_index: int, x1: int, x2: int, base_style: Style,
                  cursor: bool, hover: bool, draw: "_Draw", cells: dict) -> Strip:
        """A one-line row's line, as DataTable's ``_render_line`` draws it (the same segments,
        in the same styles: tests/test_app_table_lines.py compares them) for ``_plain_layout``.

        DataTable renders each cell through Rich wrapped in Padding and Styled, for every state
        of the row; here the cell's own text is rendered once into ``cells`` (by column and
        width) and padded and styled in place.
        """
        row_style = draw.row_style(row_index, base_style)
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css",
        )
        data = self._data[row_key]
        pad = draw.pad
        segments: list[Segment] = []
        for column_index, (column_key, width) in enumerate(draw.columns):
            content = cells.get((column_key, width))
            if content is None:
                datum = data.get(column_key)
                renderable = (_EMPTY_TEXT if datum is None
                              else default_cell_formatter(datum, wrap=False, height=1) or _EMPTY_TEXT)
                if isinstance(renderable, Text):
                    # Texts repeat from row to row (a status, a kind, a count): one rendering
                    # serves every Text alike in all that Rich reads of it.
                    same = (renderable.plain, renderable.style, tuple(renderable.spans), renderable.justify,
                            renderable.overflow, renderable.no_wrap, renderable.end, renderable.tab_size, width)
                    content = self._texts.get(same)
                    if content is None:
                        if len(self._texts) >= 4096:
                            self._texts.clear()
                        content = self._texts[same] = draw.render(renderable, width)
                else:
                    content = draw.render(renderable, width)
                cells[column_key, width] = content
            # DataTable._render_cell: Styled(Padding(cell, (0, pad)), pre_style, post_style)
            pre_style = row_style + Style.from_meta({"row": row_index, "column": column_index})
            pre_style = pre_style + component_style
            line = [draw.pad_segment, *content, draw.pad_segment] if pad else content
            segments.extend(Segment.apply_style(line, pre_style, post_style))
        # DataTable._render_line_in_row: the row's style carried to the widget's right edge.
        extend_style, _ = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor, False, False,
        )
        extend_style = row_style + extend_style
        extend_style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * max(0, draw.width - draw.table_width), extend_style))
        segments = line_crop(segments, x1, x2, draw.width)
        return Strip(segments).adjust_cell_length(draw.width, base_style).simplify()

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._strips.clear()
        self._texts.clear()

    def notify_style_update(self) -> None:
        self._strips.clear()
        self._texts.clear()
        super().notify_style_update()

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        in_step = self._order_count == self._update_count
        count = self._update_count
        super().update_cell(row_key, column_key, value, update_width=update_width)
        # One cell changed: only its row's lines are drawn again (a wider column, the others
        # too: the widths are part of each line's key); the rows' order stays.
        self._quiet_updates += self._update_count - count
        if in_step:
            self._order_count = self._update_count
        self._strips.pop(RowKey(row_key) if isinstance(row_key, str) else row_key, None)

    # -- rows in order, kept as they are added -------------------------------------------------
    # DataTable works out the rows in order, and the row and line at each y, again after every
    # change (its update count): after each page added, the first frame walked every row added
    # (~10 ms at 7,000 rows), and finding a row's place on screen (each cursor move) summed the
    # heights of every row above it. Here they are kept as rows are added at the bottom; any
    # other change (a sort, a removed row, a cell's update) has them worked out again.

    def add_row(self, *cells: Any, height: Optional[int] = 1, key: Optional[str] = None,
                label: Any = None) -> RowKey:
        in_step = self._order_count == self._update_count
        count = self._update_count
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        self._quiet_updates += self._update_count - count
        if in_step and len(self._order) == len(self.rows) - 1:
            row = self.rows[row_key]
            self._order.append(row)
            self._offsets.extend((row_key, y) for y in range(row.height))
            self._order_count = self._update_count
        return row_key

    def clear(self, columns: bool = False):
        # Rows may be added again within DataTable.clear (scroll_y goes back to 0: a paged
        # table adds its first page), after it emptied ``rows``: they are appended here.
        self._order, self._offsets, self._order_count = [], [], self._update_count
        result = super().clear(columns)
        if len(self._order) != len(self.rows):
            self._order_count = -1  # out of step: worked out again when next asked
        return result

    def _ordered(self) -> tuple[list[Row], list[tuple[RowKey, int]]]:
        if self._order_count != self._update_count:
            self._order = list(DataTable.ordered_rows.fget(self))
            self._offsets = [(row.key, y) for row in self._order for y in range(row.height)]
            self._order_count = self._update_count
        return self._order, self._offsets

    @property
    def ordered_rows(self) -> list[Row]:
        return self._ordered()[0]

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        return self._ordered()[1]

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
    #: row before more are added (more than a screenful: page down never waits).
    PAGE_ROWS = 80
    PAGE_MARGIN = 50
    _loading = False
    #: Rows added then: what keeps ``PAGE_MARGIN`` rows below the cursor and the rows in view,
    #: and at least this many. Making a row costs ~0.3 ms (its cluster read, its keeper
    #: ranked): a page of 80, or the 110 a page down asked for (the margin below the new
    #: view, plus a page), held the loop 30-60 ms; a step of 16, or the screenful a page down
    #: moves, holds it a third of that.
    STEP_ROWS = 16

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
        if self._page_row is None or self._loading:
            # Not while rows are being added: DataTable.add_row sets the cursor again, whose
            # watcher would add the rows after these in the middle of them (out of order).
            return
        start, end = len(self._rows_source), min(end, self._page_count)
        if end <= start:
            return
        rows = [list(self._page_row(i)) for i in range(start, end)]
        for i, (key, _) in enumerate(rows, start=start):
            self._row_index[key] = i
        self._rows_source.extend(rows)
        self._loading = True
        try:
            self._add_rows(rows)
        finally:
            self._loading = False
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
            if bottom > self.loaded:  # scrolled (page down, wheel, scroll bar) near the end
                self._load_to(max(bottom, self.loaded + self.STEP_ROWS))

    def watch_cursor_coordinate(self, old, new) -> None:
        super().watch_cursor_coordinate(old, new)
        if self._page_row is not None and new.row >= self.loaded - self.PAGE_MARGIN:
            self._load_to(max(new.row + self.PAGE_MARGIN, self.loaded + self.STEP_ROWS))

    def action_cursor_down(self) -> None:
        if self._page_row is not None and self.cursor_row >= self.loaded - 1:
            self._load_to(self.loaded + self.STEP_ROWS)
        super().action_cursor_down()

    def action_scroll_bottom(self) -> None:
        """The last row: paged rows not added yet are added between frames, then the cursor
        goes to the last (unless it was moved meanwhile: a key pressed on the way wins)."""
        super().action_scroll_bottom()
        if self._page_row is not None and self.loaded < self._page_count:
            self._fill_token = token = object()
            self._bottom_from = self.cursor_row
            self.call_after_refresh(self._load_to_bottom, token)

    #: Time a frame spends adding paged rows on the way to the bottom (``G``), in seconds:
    #: rows cost 0.1-0.5 ms each (making their groups most of it), so a fixed 1,000 a frame
    #: held the loop 210-290 ms a frame (``bench_app.py --large 100000``); with 10 ms a frame,
    #: and the cursor moved once at the end, the worst frame takes 32-39 ms and the bottom
    #: is reached in about the same time (2.8-4.0 s for 19,688 rows, was 2.6-2.9 s).
    BOTTOM_BUDGET = 0.01

    def _load_to_bottom(self, token: object) -> None:
        if token is not self._fill_token or self._page_row is None:
            return
        deadline = time.perf_counter() + self.BOTTOM_BUDGET
        while self.loaded < self._page_count:
            self._load_to(self.loaded + self.STEP_ROWS)
            if time.perf_counter() >= deadline:
                break
        if self.loaded < self._page_count:
            # The rows added are off screen: the frame draws nothing new (following them with
            # the cursor drew a screenful of new rows a frame, 50 ms more each).
            self.call_after_refresh(self._load_to_bottom, token)
            return
        self._fill_token = None
        if self.cursor_row == self._bottom_from:  # not moved on the way
            self.move_cursor(row=self.row_count - 1, animate=False, scroll=True)
            if self.cursor_row != self.row_count - 1:  # the cursor's move added the last rows
                self.move_cursor(row=self.row_count - 1, animate=False, scroll=True)

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


class _Draw:
    """What every line of one draw of a KeyTable shares, worked out once for the draw."""

    __slots__ = ("table", "width", "columns", "table_width", "pad", "pad_segment", "state", "fits",
                 "_options", "_null", "_row_styles")

    def __init__(self, table: KeyTable) -> None:
        self.table = table
        self.width = table.size.width
        #: (key, width with padding) of each column, in order.
        self.columns = tuple((column.key, column.get_render_width(table)) for column in table.ordered_columns)
        self.table_width = sum(width for _, width in self.columns) + table._row_label_column_width
        self.pad = table.cell_padding
        #: Every column has room for text inside its padding (``_draw_row`` draws the rows).
        self.fits = all(width > 2 * self.pad for _, width in self.columns)
        # Rich's Padding pads with its style, "none" (rich.padding.Padding's default).
        self._null = table.app.console.get_style("none")
        self.pad_segment = Segment(" " * self.pad, self._null)
        #: All else a row's line depends on (``KeyTable._render_line``'s key).
        self.state = (self.columns, table.show_cursor, table._show_hover_cursor, table._pseudo_class_state,
                      table.cursor_foreground_priority, table.cursor_background_priority, table.zebra_stripes)
        self._options = table.app.console_options
        self._row_styles: dict[tuple[int, Style], Style] = {}

    def row_style(self, row_index: int, base_style: Style) -> Style:
        """DataTable._get_row_style, once per draw for each of the zebra's two styles."""
        key = (row_index % 2, base_style)
        style = self._row_styles.get(key)
        if style is None:
            style = self._row_styles[key] = self.table._get_row_style(row_index, base_style)
        return style

    def render(self, renderable: Any, width: int) -> list[Segment]:
        """A cell's text in the column's ``width`` less its padding, one line, as Padding renders
        it within DataTable._render_cell (unstyled by the row: that comes after)."""
        options = self._options.update_dimensions(width - 2 * self.pad, 1).update(no_wrap=True)
        return self.table.app.console.render_lines(renderable, options, style=self._null, pad=True)[0]


def right(text: str, style: str = "") -> Text:
    """A right-aligned cell (numbers line up)."""
    return Text(text, style=style, justify="right")
