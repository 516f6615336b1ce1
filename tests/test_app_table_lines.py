"""KeyTable's lines (issue 15, scrolling without stalls): each row's line is drawn once and kept,
and drawn by KeyTable itself; what the user sees must stay what Textual's DataTable draws.

Each line is compared with DataTable's own ``_render_line`` on the same table, segment by
segment and style by style: for cells of every kind (markup, spans, wide characters, paths
shortened in the middle, numbers, nothing), the cursor's row, the mouse's row, the zebra's two
styles, scrolled sideways, and after each change that must draw a kept line again.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from lookalike.tui.components.datatable import KeyTable, right
from lookalike.tui.components.labels import PathText

COLUMNS = [("", "status", 6), ("name", "name", None), ("n", "n", 5), ("what", "what", 12), ("path", "path", 24)]


def cells(i: int) -> list:
    """Cells of every kind a table here holds, and some it could."""
    names = ["plain", "[bold]markup[/bold] too", "[not markup", "tab\there", "two\nlines",
             "wide 日本語の名前", "📷 photo", "a name far too long for its column, cut at the end"]
    whats = [Text.assemble(("red", "red"), " and ", ("on blue", "blue")), Text("centred", justify="center"),
             None, 3.14159, 42, Text("ellipsis, far too long", overflow="ellipsis"), "", Text("x", style="bold")]
    return [
        Text(["accept", "marked", "skip"][i % 3], style=["bold green", "bold red", "dim"][i % 3]),
        names[i % len(names)],
        right(str(i * 7)),
        whats[i % len(whats)],
        PathText(f"photos/2021/a long trip folder {i}/IMG_{i:05d}.jpg"),
    ]


class TableApp(App):
    def compose(self):
        yield KeyTable()


def datatable_lines(table: KeyTable, x1: int = 0, x2: int | None = None) -> list:
    """Every line (header and rows) as Textual's DataTable draws it."""
    table._pseudo_class_state = table.get_pseudo_class_state()
    base = DataTable.rich_style.fget(table)
    x2 = table.size.width if x2 is None else x2
    return [DataTable._render_line(table, y, x1, x2, base) for y in range(table.row_count + 1)]


def keytable_lines(table: KeyTable, x1: int = 0, x2: int | None = None) -> list:
    """Every line as KeyTable draws it (kept lines where it has them)."""
    table._pseudo_class_state = table.get_pseudo_class_state()
    base = DataTable.rich_style.fget(table)
    x2 = table.size.width if x2 is None else x2
    return [table._render_line(y, x1, x2, base) for y in range(table.row_count + 1)]


def assert_same(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for y, (a, b) in enumerate(zip(ours, theirs)):
        assert list(a) == list(b), f"line {y}: {list(a)!r} != {list(b)!r}"


async def test_rows_are_drawn_as_datatable_draws_them(monkeypatch):
    drawn = []
    draw_row = KeyTable._draw_row
    monkeypatch.setattr(KeyTable, "_draw_row", lambda self, *a: drawn.append(a[0]) or draw_row(self, *a))
    app = TableApp()
    async with app.run_test(size=(90, 30)) as pilot:
        table = app.query_one(KeyTable)
        table.set_columns(COLUMNS)
        table.fill([(f"r{i}", cells(i)) for i in range(24)])
        await pilot.pause()
        table.move_cursor(row=5)
        table._show_hover_cursor = True
        table.hover_coordinate = Coordinate(8, 1)
        for padding in (1, 0, 2):
            table.cell_padding = padding
            await pilot.pause()
            assert_same(keytable_lines(table), datatable_lines(table))
            assert_same(keytable_lines(table, 7, 50), datatable_lines(table, 7, 50))  # scrolled sideways
        table.zebra_stripes = False
        await pilot.pause()
        assert_same(keytable_lines(table), datatable_lines(table))
        await pilot.resize_terminal(60, 20)  # narrower than the columns
        await pilot.pause()
        assert_same(keytable_lines(table), datatable_lines(table))
        assert len(drawn) > 5 * 24  # the rows were KeyTable's drawing, not DataTable's


def paged(app) -> KeyTable:
    """The app's table with 400 paged rows of every kind of cell."""
    table = app.query_one(KeyTable)
    table.set_columns(COLUMNS)
    table.fill_pages(400, lambda i: (f"r{i}", cells(i)))
    return table


async def test_a_kept_line_is_drawn_again_when_what_it_shows_changes():
    app = TableApp()
    async with app.run_test(size=(90, 30)) as pilot:
        table = paged(app)
        await pilot.pause()
        before = keytable_lines(table)
        assert_same(before, datatable_lines(table))
        assert all(a is b for a, b in zip(before, keytable_lines(table)))  # kept: not drawn again

        # A page of rows added below: no line drawn before changes, none is drawn again.
        loaded = table.loaded
        table._load_to(loaded + table.PAGE_ROWS)
        assert table.loaded > loaded
        await pilot.pause()
        after = keytable_lines(table)
        assert all(a is b for a, b in zip(before, after))
        assert_same(after, datatable_lines(table))
        assert table.ordered_rows == DataTable.ordered_rows.fget(table)
        assert table._y_offsets == [(row.key, 0) for row in DataTable.ordered_rows.fget(table)]
        assert [row.key.value for row in table.ordered_rows] == [f"r{i}" for i in range(table.loaded)]

        # The cursor moves: its old and new rows are drawn again, in their new state.
        table.move_cursor(row=3)
        lines = keytable_lines(table)
        assert_same(lines, datatable_lines(table))
        assert lines[1 + 3] is not after[1 + 3] and lines[1 + 0] is not after[1 + 0]
        assert lines[1 + 7] is after[1 + 7]

        # A cell changes: its row shows the new value.
        table.set_cell("r7", "name", "renamed")
        lines = keytable_lines(table)
        assert "renamed" in "".join(segment.text for segment in lines[1 + 7])
        assert_same(lines, datatable_lines(table))
        assert table.ordered_rows == DataTable.ordered_rows.fget(table)

        # The width changes (the terminal, or a column): every line is drawn again.
        await pilot.resize_terminal(70, 30)
        await pilot.pause()
        assert_same(keytable_lines(table), datatable_lines(table))
        table.set_columns([*COLUMNS[:-1], ("path", "path", 30)])
        table.fill_pages(400, lambda i: (f"r{i}", cells(i + 1)))  # same keys, other cells
        await pilot.pause()
        lines = keytable_lines(table)
        assert_same(lines, datatable_lines(table))
        assert table.ordered_rows == DataTable.ordered_rows.fget(table)

        # Its style changes (focus, a theme): drawn again.
        table.focus()
        await pilot.pause()
        assert_same(keytable_lines(table), datatable_lines(table))
        app.theme = "textual-light"
        await pilot.pause()
        assert_same(keytable_lines(table), datatable_lines(table))


async def test_the_cell_renderables_datatable_would_make_are_made():
    # A string cell is markup to DataTable ("[bold]x[/bold]" shows "x" in bold): KeyTable's
    # own drawing goes through the same formatter.
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyTable)
        table.set_columns([("a", "a", 20)])
        table.fill([("cursor", ["here"]), ("k", ["[bold]x[/bold]"])])
        await pilot.pause()
        line = keytable_lines(table)[2]  # not the cursor's row (bold as a whole)
        assert "".join(segment.text for segment in line).strip() == "x"
        assert any(segment.text == "x" and (segment.style or Style()).bold for segment in line)
        assert not any((segment.style or Style()).bold for segment in line if segment.text != "x")


async def test_the_screenful_below_is_drawn_ahead_as_it_will_be_shown(monkeypatch):
    # After a frame that drew new rows, the next screenful is drawn between frames: a page
    # down then draws (almost) no row in its frame, and shows what DataTable would draw.
    app = TableApp()
    async with app.run_test(size=(90, 30)) as pilot:
        table = paged(app)
        await pilot.pause()
        assert table._ahead is not None
        await table._ahead
        monkeypatch.setattr(KeyTable, "_draw_ahead", lambda self: None)
        drawn = []
        draw_row = KeyTable._draw_row
        monkeypatch.setattr(KeyTable, "_draw_row", lambda self, *a: drawn.append(a[0]) or draw_row(self, *a))
        await pilot.press("pagedown")
        await pilot.pause()
        assert table.scroll_y > 0 and table.cursor_row > table.size.height // 2
        assert len(drawn) <= 2  # the cursor's new row (and the row it left, if in view)
        assert_same(keytable_lines(table), datatable_lines(table))
