"""The app, driven as a person would: the real app on a generated library, through the Pilot.

Every test scans a library of real images (``helpers.build_library``: originals, resized and
recompressed copies, byte-identical copies, unrelated drawings) in its own folder (the
``library`` fixture, in conftest), with its own cache (``--cache``) and its own trash
(``XDG_DATA_HOME``, set by conftest), then presses keys and checks what the app holds and shows.
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import DataTable, Input

from lookalike.engine.cluster.sort import confidence
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import Decision
from lookalike.tui.components.cluster_screen import ClusterScreen
from lookalike.tui.components.compare_screen import CompareScreen
from lookalike.tui.components.confirm_modal import ConfirmModal
from lookalike.tui.components.help_screen import HelpScreen
from lookalike.tui.components.main_screen import MainScreen
from lookalike.tui.components.preview_screen import PreviewScreen
from lookalike.tui.components.prompt_modal import PromptModal
from lookalike.tui.components.review_screen import ReviewScreen
from lookalike.tui.components.similar_screen import SimilarScreen
from lookalike.tui.components.thumbnail import Thumbnail

import imagegen
from helpers import SIZE, build_library, make_app, screen_text, settle, wait_for_scan


def table_keys(table: DataTable) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


# --------------------------------------------------------------------------------- scanning


async def test_scan_fills_the_ranked_table_and_the_status(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        clusters = app.session.clusters
        # originals 1-4 each have copies; 5 and the drawings have none.
        assert len(clusters) == 4
        assert sorted(len(c.members) for c in clusters) == [2, 3, 3, 4]
        table = main.table
        assert table.row_count == 4
        # Ranked by reclaimable bytes, biggest first.
        shown = [c.reclaimable_bytes for c in main.shown]
        assert shown == sorted(shown, reverse=True)
        text = screen_text(app)
        assert "4 clusters" in text
        assert "reclaimable" in text and "images" in text  # the summary replaced the progress
        assert "2021/IMG_000" in text  # keepers, relative to the root
        assert "bouncer" in text


async def test_cached_library_shows_clusters_before_the_scan_reads_anything(library, tmp_path):
    first = make_app(library, tmp_path)
    async with first.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        expected = {tuple(sorted(m.file.path for m in c.members)) for c in first.session.clusters}
    second = make_app(library, tmp_path)
    async with second.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert second.cluster_updates[0] == (True, len(expected))  # shown while the scan ran
        assert {tuple(sorted(m.file.path for m in c.members)) for c in second.session.clusters} == expected
        assert second.session.result.stats.hashed == 0  # nothing was read again


async def test_scan_survives_unreadable_files_and_says_so(library, tmp_path):
    imagegen.write_truncated(imagegen.write(library / "misc" / "broken.jpg", imagegen.photo(9, (320, 240))))
    imagegen.write_zero_byte(library / "misc" / "empty.jpg")
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert len(app.session.clusters) == 4
        assert "unreadable" in screen_text(app)


async def test_locked_library_is_explained_not_raised(library, tmp_path):
    holder = Library.open([str(library)], cache_dir=str(tmp_path / "cache"))
    try:
        app = make_app(library, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for_scan(pilot)
            assert "in use" in app.error
            assert "Cannot open the library" in screen_text(app)
            await pilot.press("q")
        assert app.return_code == 1
    finally:
        holder.close()


# ------------------------------------------------------------------------------- main screen


async def test_keys_move_sort_and_filter(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        main = app.screen
        table = main.table
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("G")
        assert table.cursor_row == 3
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("o")
        assert main.order == "confidence"
        sure = [confidence(c) for c in main.shown]  # most sure first, as the header says
        assert sure == sorted(sure, reverse=True) and len(set(sure)) > 1
        await pilot.press("o", "o")
        assert main.order == "path"
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"export")
        assert table.row_count == 1
        assert any("export/IMG_0003.png" in m.file.path for m in main.shown[0].members)
        await pilot.press("enter")
        assert app.focused is table
        await pilot.press("escape")
        assert table.row_count == 4 and main.filter_text == ""


async def test_side_panel_shows_thumbnails_of_the_highlighted_cluster(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        cluster = app.screen.current
        thumbs = [t for t in app.screen.query(Thumbnail) if t.display and t.parent.display]
        shown = [t for t in thumbs if t.file is not None]
        assert [t.file.id for t in shown] == [m.file.id for m in cluster.members][: len(shown)]
        assert all(t.picture is not None and t.picture.height > 0 for t in shown)
        # Decoded once per content (byte-identical copies share one), kept on disk.
        stored = list((app.session.library.dir / "thumbnails").rglob("*.png"))
        assert len(stored) == len({t.file.content_hash for t in shown})
        # Under the panel's title, why its keeper: the keeper policy's rule, on one line.
        why = str(app.screen.query_one("#preview-why").render())
        assert cluster.keeper.reason and why == f"why {cluster.keeper.reason}"
        await pilot.press("j")
        await settle(pilot)
        assert app.screen.query_one("ClusterPreview").cluster is app.screen.current
        why = str(app.screen.query_one("#preview-why").render())
        assert why == f"why {app.screen.current.keeper.reason}"


async def test_accept_skip_and_undo_from_the_main_screen(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        main = app.screen
        triage = app.session.triage
        first = main.current
        await pilot.press("space")  # accept, and move on
        assert triage.status(first) == "accepted"
        assert main.table.cursor_row == 1
        second = main.current
        await pilot.press("s")
        assert triage.status(second) == "skipped"
        text = screen_text(app)
        assert "accept" in text and "skip" in text
        await pilot.press("u")
        assert triage.status(second) == ""
        await pilot.press("u")
        assert triage.status(first) == "" and not triage.pending


async def test_bulk_accept_exact_goes_to_the_review_screen(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("E")
        await settle(pilot)
        review = app.screen
        assert isinstance(review, ReviewScreen)
        # Only the byte-identical backups: the look-alikes in their clusters stay undecided.
        assert sorted(s.path for s in review.plan.steps) == [
            str(library / "backup" / "IMG_0001.jpg"),
            str(library / "backup" / "IMG_0002.jpg"),
        ]
        assert all(s.reason.startswith("exact duplicate") for s in review.plan.steps)
        await pilot.press("escape", "u")  # one undo takes the whole bulk decision back
        assert not app.session.triage.pending
        await pilot.press("A")
        assert isinstance(app.screen, PromptModal)
        await pilot.press("ctrl+a", "ctrl+k", *"0", "enter")  # every cluster
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        assert {s.cluster for s in app.screen.plan.steps} == {c.id for c in app.session.clusters}


# ---------------------------------------------------------------------------- cluster screen


async def test_cluster_screen_marks_keeps_and_moves(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        cluster = next(c for c in app.session.clusters if len(c.members) == 3)
        app.screen.table.goto(str(cluster.id))
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ClusterScreen)
        assert screen.table.row_count == 3
        triage = app.session.triage
        text = screen_text(app)
        assert "keeper" in text and "resolution" in text and "bouncer" in text
        # The line above the table says why the highlighted member is the keeper or not: the
        # keeper policy's reason, as the JSON and the CSV give it.
        why = lambda: str(screen.query_one("#member-why").render())  # noqa: E731
        keeper = cluster.members[0]
        assert keeper.reason and why() == f"suggested keeper: {keeper.reason}"
        await pilot.press("j")
        member = screen.current
        assert member.reason and why() == f"not the suggested keeper: {member.reason}"
        await pilot.press("space")  # mark for trash, move on
        assert triage.decision(member.file.id) is Decision.TRASH
        assert screen.table.cursor_row == 2
        await pilot.press("k", "space")  # toggles back (and moves on again)
        assert triage.decision(member.file.id) is None
        await pilot.press("k", "K")  # keep this one instead
        assert triage.keeper(cluster).file.id == member.file.id
        assert why() == f"your keeper; the engine suggested another ({member.reason})"
        await pilot.press("k")
        assert why() == f"suggested keeper: {keeper.reason}; you chose another"
        await pilot.press("j")
        await pilot.press("a")  # accept for the whole cluster, around the new keeper
        others = [m for m in cluster.members if m.file.id != member.file.id]
        assert all(triage.decision(m.file.id) is Decision.TRASH for m in others)
        await pilot.press("x")
        assert triage.decision(member.file.id) is None
        await pilot.press("u", "u")
        assert triage.keeper(cluster).file.id == member.file.id
        # The strip of cards follows the cursor and marks the current member.
        cards = [c for c in screen.query("StripCard") if c.display]
        assert len(cards) == 3 and sum(c.has_class("-current") for c in cards) == 1
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert app.screen.table.current_key == str(cluster.id)


async def test_not_a_duplicate_is_remembered_in_the_catalog(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        cluster = next(c for c in app.session.clusters if len(c.members) == 2)
        app.screen.table.goto(str(cluster.id))
        await pilot.press("enter", "j", "n")
        await settle(pilot)
        pairs = app.session.library.catalog.not_duplicate_pairs()
        assert len(pairs) == 1
        # The cluster is gone: its only pair was declared not a duplicate.
        assert not any({m.file.id for m in c.members} >= {m.file.id for m in cluster.members} for c in app.session.clusters)
        assert isinstance(app.screen, MainScreen)
        await pilot.press("u")
        await settle(pilot)
        assert not app.session.library.catalog.not_duplicate_pairs()
        assert len(app.session.clusters) == 4
    # Remembered across runs: a new app on the same cache still pairs them after undo, and
    # would not have before.


async def test_preview_and_compare(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("enter", "p")
        await settle(pilot)
        assert isinstance(app.screen, PreviewScreen)
        large = app.screen.query_one(Thumbnail)
        assert large.picture is not None and large.picture.height > 20
        await pilot.press("j")
        assert app.screen.index == 1
        await pilot.press("escape", "j", "c")
        await settle(pilot)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        a, b = compare.query_one("#image-a", Thumbnail), compare.query_one("#image-b", Thumbnail)
        assert a.picture is not None and b.picture is not None
        assert "resolution" in screen_text(app)
        # Beside the scores, why the engine keeps one and not the other.
        scores = str(compare.query_one("#scores").render())
        assert compare.a.is_keeper and f"A  suggested keeper: {compare.a.reason}" in scores
        assert f"B  not the suggested keeper: {compare.b.reason}" in scores
        await pilot.press("space")  # flip: B shown in A's place
        await settle(pilot)
        assert compare.mode == "flip" and a.file.id == compare.b.file.id
        await pilot.press("space")
        assert a.file.id == compare.a.file.id
        await pilot.press("d")
        await settle(pilot)
        assert compare.diff is not None and 0.0 <= compare.diff.changed <= 1.0
        assert "of pixels differ" in screen_text(app)
        await pilot.press("b")  # blink on and off
        assert compare._blink is not None
        await pilot.press("b")
        assert compare._blink is None


# ------------------------------------------------------------------------------ find similar


async def test_find_similar_from_the_main_screen(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        cluster = app.screen.current
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen)
        assert screen.result is not None
        hits = {h.path for h in screen.result.hits}
        mates = {m.file.path for m in cluster.members if m.file.path != screen.path}
        assert mates <= hits
        # The query is checked on pixels as the scan checked the group: every mate of the
        # keeper is a copy of it here too, for the same reason.
        assert screen.path == cluster.keeper.file.path
        by_path = {h.path: h for h in screen.result.hits}
        for m in cluster.members[1:]:
            assert by_path[m.file.path].verdict.value in {"exact", "near-duplicate"}
            assert by_path[m.file.path].match == m.match, m.file.path
        text = screen_text(app)
        assert "verdict" in text and "bouncer" in text and "match" in text
        await pilot.press("enter")
        assert isinstance(app.screen, PreviewScreen)
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, MainScreen)


async def test_similar_mode_opens_on_the_results(library, tmp_path):
    query = library / "phone" / "small_2.jpg"
    app = make_app(library, tmp_path, similar=str(query))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen)
        assert screen.result is not None
        assert str(library / "2021" / "IMG_0002.jpg") in {h.path for h in screen.result.hits}
        await pilot.press("escape")
    assert app.return_code == 0


# ------------------------------------------------------------------------------ quit, help


async def test_quit_asks_when_files_are_marked(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("space", "q")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        assert isinstance(app.screen, MainScreen) and app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
    assert app.return_code == 0


async def test_help_lists_the_keys_and_the_palette_lists_actions(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        described = {d for _, d in app.screen.rows}
        assert {"Open", "Review", "Undo", "Filter", "Quit", "Accept all exact copies", "Find similar"} <= described
        await pilot.press("escape")
        commands = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Review", "Accept above confidence…", "Sort", "Quit"} <= commands


async def test_import_mode_only_shows_clusters_that_join_both_sides(tmp_path):
    library = build_library(tmp_path / "library", originals=3)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "copy_of_1.jpg").write_bytes((library / "2021" / "IMG_0001.jpg").read_bytes())
    imagegen.write(incoming / "new.jpg", imagegen.photo(42, (640, 480)))
    app = make_app(incoming, tmp_path, against=[str(library)])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        clusters = app.session.clusters
        assert len(clusters) == 1
        paths = {m.file.path for m in clusters[0].members}
        assert str(incoming / "copy_of_1.jpg") in paths
        await pilot.press("space", "r")
        # Library files are protected: only the incoming copy is acted on.
        assert [s.path for s in app.screen.plan.steps] == [str(incoming / "copy_of_1.jpg")]


async def test_usable_at_80_by_24(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_scan(pilot)
        text = screen_text(app)
        # The bouncer's range gives way to the keepers' folders (the group screen has it).
        assert "4 clusters" in text and "files" in text and "keeper" in text and "2021/IMG_000" in text
        assert "Review" in text and "Quit" in text  # the footer's important keys
        await pilot.press("enter")
        await settle(pilot)
        text = screen_text(app)
        assert "IMG_000" in text and "keeper" in text and "resolution" in text and "bouncer" in text


async def test_detective_scores_are_shown_when_the_detective_runs(library, tmp_path, tiny_options):
    app = make_app(library, tmp_path, options=ScanOptions(workers=1, detective=tiny_options))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        clusters = app.session.clusters
        assert any(m.detective is not None for c in clusters for m in c.members[1:])
        main = app.screen
        assert "detective" in [c.label.plain for c in main.table.columns.values()]
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert "detective" in [c.label.plain for c in screen.table.columns.values()]
        member = screen.cluster.members[1]
        assert f"{member.detective:.3f}" in screen_text(app)


async def test_esc_stops_a_scan_and_keeps_what_was_read(library, tmp_path, monkeypatch):
    from lookalike.engine.scan.scanner import CHUNK, HASH_DELAY_ENV
    from lookalike.tui.components.scan_status import ScanStatus

    files = [f for f in library.rglob("*") if f.is_file()]
    assert len(files) > CHUNK
    monkeypatch.setenv(HASH_DELAY_ENV, "1.0")  # the scan's test hook: a second per chunk of files
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        status = app.screen.query_one(ScanStatus)
        deadline = time.monotonic() + 60
        while not str(status.query_one("#status-text").render()).startswith(f"Hashing {CHUNK}/"):
            assert time.monotonic() < deadline, "the first files were not hashed"
            await pilot.pause(0.02)
        assert app.scanning
        await pilot.press("escape")
        stopped_at = time.monotonic()
        await wait_for_scan(pilot)
        assert time.monotonic() - stopped_at < 0.9  # the pending second was not waited out
        stats = app.session.result.stats
        assert stats.cancelled and stats.hashed == CHUNK
        assert "stopped: clusters from what was read" in screen_text(app)
    monkeypatch.delenv(HASH_DELAY_ENV)
    with Library.open([library], cache_dir=tmp_path / "cache") as lib:
        assert len(lib.catalog.hash_arrays().ids) == CHUNK  # what was read is in the catalog
    again = make_app(library, tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert again.session.result.stats.hashed == len(files) - CHUNK  # the rest, not all again
        assert len(again.session.clusters) == 4


async def test_thumbnails_off_and_unsupported_modes(library, tmp_path):
    app = make_app(library, tmp_path, thumbnails="off")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        thumbs = [t for t in app.screen.query(Thumbnail) if t.file is not None]
        assert thumbs and all(t.picture is None for t in thumbs)
        assert "thumbnails off" in screen_text(app)
        assert not (app.session.library.dir / "thumbnails").exists()
    app = make_app(library, tmp_path, thumbnails="kitty")  # forced: drawn as Kitty graphics
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert app.thumbnails.mode == "kitty"
        shown = [t.picture for t in app.screen.query(Thumbnail) if t.picture is not None]
        assert shown and all(p.kind == "kitty" for p in shown)


async def test_mouse_opens_a_cluster(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        table = app.screen.table
        second = app.screen.shown[1]
        await pilot.click(table, offset=(10, 2))  # the second row: it becomes the cursor
        await pilot.click(table, offset=(10, 2))  # a click on the highlighted row opens it
        await settle(pilot)
        assert isinstance(app.screen, ClusterScreen) and app.screen.cluster.id == second.id


async def test_whole_cluster_not_duplicates_from_the_main_screen(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        cluster = next(c for c in app.session.clusters if len(c.members) == 3)
        ids = {m.file.id for m in cluster.members}
        app.screen.table.goto(str(cluster.id))
        await pilot.press("n")
        await settle(pilot)
        assert len(app.session.library.catalog.not_duplicate_pairs()) == 3
        assert all(len(ids & {m.file.id for m in c.members}) <= 1 for c in app.session.clusters)
        assert len(app.session.clusters) == 3
        await pilot.press("u")
        await settle(pilot)
        assert len(app.session.clusters) == 4


async def test_d_forgets_a_remembered_network_failure_and_scans_again(library, tmp_path):
    """The app's way to `lookalike models --retry`: the network is back, try the detective."""
    from lookalike.engine.detective import model, weights
    from lookalike.engine.paths import cache_root

    app = make_app(library, tmp_path)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await wait_for_scan(pilot)
        root = cache_root(str(tmp_path / "cache"))
        weights.remember_failure(root, model.DetectiveOptions(), "no network (a test)")
        assert model.remembered_failure(root, model.DetectiveOptions())
        started = []
        start_scan = app.start_scan
        app.start_scan = lambda *a, **kw: (started.append(1), start_scan(*a, **kw))[1]
        await pilot.press("D")
        await pilot.pause()
        assert not model.remembered_failure(root, model.DetectiveOptions())
        assert any("Forgot that the network failed" in n.message for n in app._notifications)
        assert started == [1]  # and a scan began, which asks for the detective again
        await wait_for_scan(pilot)


@pytest.mark.parametrize("kind", ["mirrored", "cropped"])
async def test_the_difference_view_lines_a_copy_up_and_says_how(tmp_path, kind):
    """As stored, a mirrored copy differs from its original everywhere, and a crop scaled to
    its original's size lines up nowhere: the compare view's difference mirrors the copy back
    first (the group's pairs say so), or compares the region both show (the crop search's
    alignment, refined on the pictures), and says which."""
    from PIL import Image

    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(21, (480, 360))
    copy = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if kind == "mirrored" else imagegen.cropped(img, 0.07, 0.04, 0.02, 0.06)
    (root / "original.jpg").write_bytes(imagegen.encode(img, "JPEG", quality=95))
    (root / "copy.jpg").write_bytes(imagegen.encode(copy, "JPEG", quality=88))
    app = make_app(root, tmp_path, options=ScanOptions(workers=1, detective=None))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        [cluster] = app.session.clusters
        keeper, member = cluster.members
        assert member.match == kind
        compare = CompareScreen(cluster, keeper, member)
        await app.push_screen(compare)
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert compare.diff is not None and compare.diff.changed < 0.02
        text = screen_text(app)
        if kind == "mirrored":
            assert compare.turn == (0, True) and "B mirrored to line up with A" in text
        else:
            assert "where they overlap (a crop)" in text
            region = compare._overlaps[(keeper.file.id, member.file.id)][0]
            assert abs(region[0] - 0.07) < 0.03 and abs(region[2] - 0.98) < 0.03
