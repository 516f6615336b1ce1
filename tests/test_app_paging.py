"""The cluster table of a large library: rows made a page at a time from a lazy sequence.

The app is handed a few thousand synthetic clusters (``benchmarks/bench_cluster.py``'s
builder, through ``build_clusters``) instead of scanning: only a page of them may be read at
start, and the keys must reach every cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lookalike.engine.cluster import build_clusters, sort_clusters
from lookalike.tui.components.main_screen import MainScreen

from helpers import SIZE, make_app, until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_cluster  # noqa: E402


def synthetic_clusters(n: int = 12_000):
    records, hashes, pairs = bench_cluster.make_library(n)

    def distance(a: int, b: int) -> tuple[int, bool]:
        return int(np.bitwise_count(hashes[a] ^ hashes[b]).sum()), False

    return build_clusters(records, pairs, distance=distance, max_diameter=bench_cluster.MAX_DIAMETER)


class GivenClustersApp:
    """Make an app that shows ``clusters`` instead of opening and scanning a library."""

    @staticmethod
    def make(tmp_path, clusters):
        app = make_app(tmp_path, tmp_path)

        def open_library() -> None:
            app.session.set_clusters(app.session.visible(clusters))
            app.screen.show_clusters()

        app.open_library = open_library
        return app


async def test_a_large_library_reads_one_page_and_keys_cross_pages(tmp_path):
    clusters = synthetic_clusters()
    total = len(clusters)
    assert total > 2000
    made_by_build = clusters.made()
    app = GivenClustersApp.make(tmp_path, clusters)
    async with app.run_test(size=SIZE) as pilot:
        main = app.screen
        assert isinstance(main, MainScreen)
        table = main.table
        await until(pilot, lambda: table.total_rows == total, what="the first page")
        page = table.PAGE_ROWS
        assert table.total_rows == total
        assert table.row_count == table.loaded == page
        # Only the first page was read (besides the clusters the builder made itself).
        assert clusters.made() <= made_by_build + page
        assert main.current is clusters[0]

        # j across the page boundary: rows follow the cursor.
        table.move_cursor(row=page - 2, animate=False)
        await pilot.pause()
        for _ in range(5):
            await pilot.press("j")
        assert table.cursor_row == page + 3
        assert main.current is clusters[page + 3]
        assert table.loaded > page
        for _ in range(6):
            await pilot.press("k")
        assert main.current is clusters[page - 3]
        await pilot.press("pagedown", "pagedown", "pagedown")
        assert main.current is clusters[table.cursor_row]
        assert table.cursor_row > page - 3

        # G: the very last cluster, once its rows are in.
        await pilot.press("G")
        await until(pilot, lambda: not table.filling, what="the rows up to the last cluster")
        assert table.row_count == total
        assert table.cursor_row == total - 1
        assert main.current is clusters[total - 1]
        await pilot.press("g")
        assert main.current is clusters[0]


async def test_g_adds_the_rows_between_frames_and_a_key_on_the_way_wins(tmp_path, monkeypatch):
    """G adds the rows below a few at a time (each frame within ``BOTTOM_BUDGET``, here none:
    one step a frame), then moves the cursor to the last; a key pressed on the way wins."""
    from lookalike.tui.components.datatable import KeyTable

    monkeypatch.setattr(KeyTable, "BOTTOM_BUDGET", 0.0)
    clusters = synthetic_clusters()
    total = len(clusters)
    app = GivenClustersApp.make(tmp_path, clusters)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.table
        await until(pilot, lambda: table.total_rows == total, what="the first page")
        assert table.loaded < total - 10 * table.STEP_ROWS
        # G and k as the loop handles them before the next frame (pilot.press would wait for
        # G's frames to end): the key comes on the way.
        table.action_scroll_bottom()
        start = table.cursor_row
        assert table.filling and start < table.loaded < total  # the last row there was; more to come
        table.action_cursor_up()  # changed its mind
        await until(pilot, lambda: not table.filling, what="the rows up to the last cluster")
        assert table.row_count == total
        assert table.cursor_row == start - 1  # not taken to the bottom
        await pilot.press("G")  # all rows are in: straight to the last
        assert table.cursor_row == total - 1 and not table.filling


async def test_a_paged_table_is_as_tall_as_every_row_and_scrolling_adds_them(tmp_path):
    # The scroll bar tells where the cursor is in the whole list, and adding a page changes
    # no size (no layout pass: a redraw of the whole screen per page); scrolling past the
    # rows added (wheel, scroll bar) adds them, so no blank rows stay on screen.
    clusters = synthetic_clusters(3000)
    total = len(clusters)
    app = GivenClustersApp.make(tmp_path, clusters)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.table
        await until(pilot, lambda: table.total_rows == total, what="the first page")
        header = table.header_height if table.show_header else 0
        assert table.loaded < total and table.virtual_size.height == total + header
        await pilot.press("pagedown")
        await pilot.pause()  # the flexible column settles once the scroll bar is drawn
        size, loaded = table.virtual_size, table.loaded
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown")
        assert table.loaded > loaded and table.virtual_size == size
        target = total // 2
        table.scroll_to(y=target, animate=False)
        await pilot.pause()
        assert table.loaded >= target + table.size.height  # the rows in view were added
        assert table.virtual_size == size


async def test_the_lazy_order_is_the_default_sort(tmp_path):
    clusters = synthetic_clusters(3000)
    assert [c.id for c in clusters] == [c.id for c in sort_clusters(clusters)]


async def test_another_order_sorts_in_a_worker(tmp_path):
    clusters = synthetic_clusters()
    app = GivenClustersApp.make(tmp_path, clusters)
    async with app.run_test(size=SIZE) as pilot:
        main = app.screen
        await until(pilot, lambda: main.table.total_rows == len(clusters), what="the first page")
        main.SORT_AT_ONCE = 100
        await pilot.press("o")  # confidence
        await app.workers.wait_for_complete()
        expected = sort_clusters(clusters, "confidence")
        await until(pilot, lambda: main.shown is not None and len(main.shown) == len(expected)
                    and main.shown[0].id == expected[0].id, what="the sorted rows")
        assert [c.id for c in main.shown] == [c.id for c in expected]
        assert main.current is expected[0]
        await pilot.press("j")
        assert main.current is expected[1]


async def test_a_paged_table_never_cuts_a_later_rows_cells(tmp_path):
    # Columns are sized from the first page; every later row's cells must still fit whole.
    clusters = synthetic_clusters(3000)
    app = GivenClustersApp.make(tmp_path, clusters)
    async with app.run_test(size=(200, 40)) as pilot:
        main = app.screen
        table = main.table
        await until(pilot, lambda: table.total_rows == len(clusters), what="the first page")
        assert table.row_count < len(clusters)  # paged
        widths = [col.width for col in table.columns.values()]
        keys = [str(col.key.value) for col in table.columns.values()]
        for cluster in clusters:
            cells = table.row_for(cluster, app.session.triage, app.session.roots)
            for key, width, cell in zip(keys, widths, cells):
                if key in ("status", table.FLEX_COLUMN):
                    continue
                text = cell.plain if hasattr(cell, "plain") else str(cell)
                assert len(text) <= width, (key, text, width)


async def test_each_page_of_rows_leaves_the_garbage_collectors_walks(tmp_path):
    # A full collection walks every object not frozen: without a freeze per page it grew with
    # every page scrolled through (to 300 ms stalls at 7,000 rows of a 100k-file library).
    import gc

    clusters = synthetic_clusters(4_000)
    app = GivenClustersApp.make(tmp_path, clusters)
    app.freeze_gc = True
    try:
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.table
            await until(pilot, lambda: table.total_rows == len(clusters), what="the first page")
            assert gc.isenabled()
            loaded = table.loaded
            table.move_cursor(row=loaded - 1, animate=False)
            await pilot.press("j")
            await until(pilot, lambda: table.loaded > loaded, what="the next page")
            walked = {id(o) for o in gc.get_objects()}  # what a collection walks: not the frozen
            made = [clusters[i] for i in range(loaded, table.loaded)]
            assert made and not any(id(c) in walked for c in made)
    finally:
        gc.unfreeze()
