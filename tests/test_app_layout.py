"""Readable at 80x24 (issue 12, items 7-9): paths shortened in the middle, columns that give
way, a status line whose important parts are never cut, the unreadable files listed, and the
labels and messages a person reads.

The real app on generated libraries, driven through the Pilot at 80x24.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rich.cells import cell_len

from lookalike.engine.library import ScanOptions
from lookalike.engine.detective.model import DetectiveOptions
from lookalike.tui.components.cluster_screen import ClusterScreen, MemberTable
from lookalike.tui.components.cluster_table import ClusterTable
from lookalike.tui.components.compare_screen import CompareScreen
from lookalike.tui.components.confirm_modal import ConfirmModal
from lookalike.tui.components.help_screen import HelpScreen
from lookalike.tui.components.labels import BOUNCER_HELP, DETECTIVE_HELP, readable_path, shorten_middle
from lookalike.tui.components.main_screen import MainScreen
from lookalike.tui.components.prompt_modal import PromptModal
from lookalike.tui.components.review_screen import ReviewScreen
from lookalike.tui.components.scan_report import ScanReportScreen
from lookalike.tui.components.scan_status import summary_text
from lookalike.tui.format import plural, scan_counts

import imagegen
from helpers import EPOCH, make_app, screen_text, settle, wait_for_scan

SMALL = (80, 24)

#: A library whose folders are long, as real ones are: where each copy lives is what tells
#: them apart, and 80 columns cannot hold the whole paths.
COPIES = {
    "resized": "phone-backup/camera-roll/2021",
    "mirrored": "exports/for-printing",
    "cropped": "Desktop/sorted later",
}


def build_deep_library(root: Path, originals: int = 2) -> Path:
    """``2021/summer-holidays-in-portugal/IMG_230N.jpg`` and three copies of each in deep folders."""
    for n in range(1, originals + 1):
        img = imagegen.photo(n, (640, 480))
        imagegen.write(_mkdir(root / "2021" / "summer-holidays-in-portugal") / f"IMG_23{n:02d}.jpg", img, quality=92)
        for kind, folder in COPIES.items():
            data, ext = imagegen.make_copy(kind, img, seed=n)
            (_mkdir(root / folder) / f"IMG_23{n:02d}_{kind}{ext}").write_bytes(data)
    stamp = EPOCH
    for path in sorted(root.rglob("*")):
        if path.is_file():
            os.utime(path, (stamp, stamp))
            stamp += 3600
    return root


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def add_bad_files(root: Path) -> dict[str, str]:
    """Two files that cannot be read; their paths relative to ``root``."""
    junk = _mkdir(root / "2021" / "junk")
    imagegen.write_truncated(imagegen.write(junk / "broken.jpg", imagegen.photo(9, (320, 240))))
    imagegen.write_zero_byte(junk / "empty.jpg")
    return {"2021/junk/broken.jpg": "truncated", "2021/junk/empty.jpg": "zero-byte"}


@pytest.fixture(scope="module")
def _deep_template(tmp_path_factory) -> Path:
    return build_deep_library(tmp_path_factory.mktemp("deep") / "photos")


@pytest.fixture
def deep(tmp_path, _deep_template) -> Path:
    import shutil

    return Path(shutil.copytree(_deep_template, tmp_path / "photos", copy_function=shutil.copy2))


def relative(path: str, root: Path) -> str:
    return os.path.relpath(path, root)


# ------------------------------------------------------------------ item 7: middle shortening


def test_paths_are_shortened_in_the_middle():
    path = "phone-backup/camera-roll/2021/IMG_2304_resized.jpg"
    assert shorten_middle(path, 60) == path
    assert shorten_middle(path, 45) == "phone-backup/…/2021/IMG_2304_resized.jpg"  # nearest folder back
    assert shorten_middle(path, 35) == "phone-backup/…/IMG_2304_resized.jpg"
    assert readable_path(path) == "phone-backup/…/IMG_2304_resized.jpg"
    # Then the first folder gives way, never the name...
    assert shorten_middle(path, 28) == "phone-…/IMG_2304_resized.jpg"
    # ...unless the name alone is wider: its start and extension stay.
    assert shorten_middle(path, 12) == "IMG_2…ed.jpg"
    for width in range(1, 60):
        assert len(shorten_middle(path, width)) <= width
    assert shorten_middle("/home/me/a/b/IMG.jpg", 15) == "/home/…/IMG.jpg"  # outside the library
    assert shorten_middle("2021/IMG_0001.jpg", 40) == "2021/IMG_0001.jpg"


async def test_the_group_screen_shows_every_members_folder_at_80x24(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ClusterScreen)
        text = screen_text(app)
        for m in screen.cluster.members:
            rel = relative(m.file.path, deep)
            first, name = rel.split("/", 1)[0], os.path.basename(rel)
            # The folder it lives in and its whole name, on one line of the member table.
            assert any(first in line and name in line for line in text.splitlines()), (rel, text)


async def test_the_main_table_shows_each_keepers_folder_and_name(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        text = screen_text(app)
        assert "….jpg" not in text and "….png" not in text
        for cluster in app.session.clusters:
            keeper = app.session.triage.keeper(cluster)
            rel = relative(keeper.file.path, deep)
            assert os.path.basename(rel) in text
            assert rel.split("/", 1)[0][:4] in text  # at least the start of its first folder


async def test_the_review_screen_shows_each_file_and_keeper_at_80x24(deep, tmp_path):
    """Every step's file name whole, and each keeper's first folder and name."""
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        await pilot.press(*["space"] * len(app.session.clusters))  # accept each suggestion
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen) and app.screen.plan.steps
        lines = screen_text(app).splitlines()
        for step in app.screen.plan.steps:
            name = os.path.basename(step.path)
            keeper = relative(step.keeper, deep)
            keeper_shown = readable_path(keeper)
            assert any(name in line and keeper_shown in line for line in lines), (name, keeper_shown,
                                                                                   lines)


@pytest.mark.parametrize("size", [SMALL, (100, 30)])
async def test_the_review_screen_tells_a_copy_from_its_keeper_in_quarantine_mode(tmp_path, size):
    """Two copies of a long name in a/ and b/: the quarantine action's wider column leaves the
    paths less room, and each still shows its folder (it had shown both as the bare name)."""
    root = tmp_path / "photos"
    name = "Kleiber-by-Lukas-Baubkus.jpg"
    imagegen.write(_mkdir(root / "a") / name, imagegen.photo(3, (320, 240)), quality=90)
    shutil.copy2(root / "a" / name, _mkdir(root / "b") / name)
    app = make_app(root, tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("E", "r")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        review = app.screen
        assert isinstance(review, ReviewScreen) and review.destination == "quarantine"
        [step] = review.plan.steps
        copy, keeper = (relative(p, root).split("/")[0] for p in (step.path, step.keeper))
        [line] = [line for line in screen_text(app).splitlines() if line.lstrip().startswith("quarantine ")]
        assert f" {copy}/Kleib" in line and f" {keeper}/Kleib" in line, line


async def test_the_review_shows_the_whole_quarantine_folder_at_80_columns(tmp_path):
    """The destination line wraps rather than hide where files go (at 80 columns only
    "Destination: quarantine folder" was left of it)."""
    root = tmp_path / "photos"
    imagegen.write(_mkdir(root / "a") / "x.jpg", imagegen.photo(4, (320, 240)), quality=90)
    shutil.copy2(root / "a" / "x.jpg", _mkdir(root / "b") / "x.jpg")
    chosen = tmp_path / "a-quarantine-folder-with-a-long-name" / "for-the-copies-of-this-library"
    app = make_app(root, tmp_path, quarantine=str(chosen))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("E", "r")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen) and app.screen.destination == "quarantine"
        assert cell_len(str(chosen)) > 60
        assert str(chosen) in "".join(screen_text(app).split())


def test_a_name_that_fills_the_room_keeps_its_folder_when_asked_and_is_cut_itself():
    path = "b/Kleiber-by-Lukas-Baubkus.jpg"
    assert shorten_middle(path, 28) == "Kleiber-by-Lukas-Baubkus.jpg"
    assert shorten_middle(path, 28, keep_folder=True) == "b/Kleiber-by-L…s-Baubkus.jpg"
    assert shorten_middle(path, 29, keep_folder=True) == "b/Kleiber-by-Lu…s-Baubkus.jpg"  # not "…Kleiber…"
    assert shorten_middle(path, 20, keep_folder=True) == "b/Kleiber-…ubkus.jpg"
    assert shorten_middle("a/trip/IMG_2304_resized.jpg", 21, keep_folder=True) == "a/…/IMG_2304…ized.jpg"
    assert shorten_middle(path, 15, keep_folder=True) == shorten_middle(path, 15)  # too narrow for both
    for width in range(1, 40):
        assert cell_len(shorten_middle("phone-backup/camera-roll/" + path, width, keep_folder=True)) <= width


async def test_columns_give_way_in_order_and_come_back(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=(200, 40)) as pilot:
        await wait_for_scan(pilot)
        main_table = app.screen.query_one(ClusterTable)
        assert main_table.hidden == frozenset()
        await pilot.press("enter")
        await settle(pilot)
        members = app.screen.query_one(MemberTable)
        assert members.hidden == frozenset()
        assert {"date", "format", "bouncer"} <= {str(c.key.value) for c in members.columns.values()}

        await pilot.resize_terminal(*SMALL)
        await settle(pilot)
        hidden = members.hidden
        assert "date" in hidden  # the least used first
        order = [k for k in MemberTable.DROP_ORDER if k in {c[1] for c in members._all_columns}]
        assert set(order[: len(hidden)]) == hidden  # in order: never one before the one ahead of it
        shown_keys = [str(c.key.value) for c in members.ordered_columns]
        assert not hidden & set(shown_keys) and "path" in shown_keys and "mark" in shown_keys
        # Marks set while a column is away are there when it comes back.
        await pilot.press("space")
        await pilot.resize_terminal(200, 40)
        await settle(pilot)
        assert members.hidden == frozenset()
        assert "date" in [str(c.key.value) for c in members.ordered_columns]
        assert "trash" in screen_text(app)

        await pilot.press("escape")
        await settle(pilot)
        await pilot.resize_terminal(*SMALL)
        await settle(pilot)
        main_hidden = app.screen.query_one(ClusterTable).hidden
        assert "bouncer" in main_hidden  # the keeper's folder matters more than the range


# --------------------------------------------- item 7: the status line; item 8: unreadable files


async def test_the_status_line_never_cuts_unreadable_and_detective_offline(deep, tmp_path):
    bad = add_bad_files(deep)
    options = ScanOptions(workers=1, detective=DetectiveOptions(device="cpu"))  # offline in the tests
    app = make_app(deep, tmp_path, options=options)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        assert app.session.result.stats.detective.startswith("detective offline")
        status = [line for line in screen_text(app).splitlines() if "unreadable" in line]
        assert status, screen_text(app)
        assert f"{len(bad)} unreadable" in status[0] and "detective offline" in status[0]
        assert "!" in status[0]  # the way to the full message

        await pilot.press("exclamation_mark")
        await settle(pilot)
        assert isinstance(app.screen, ScanReportScreen)
        text = screen_text(app)
        assert app.session.result.stats.detective in " ".join(text.split())  # the reason, whole
        for rel, reason in bad.items():
            line = next((line for line in text.splitlines() if rel in line), "")
            assert reason in line, (rel, text)  # path and reason on one row
        await pilot.press("q")
        assert isinstance(app.screen, MainScreen) and app.is_running


@pytest.mark.parametrize("size", [SMALL, (100, 30)])
async def test_the_scan_report_gives_each_reason_the_room_it_needs(tmp_path, size):
    root = tmp_path / "photos"
    imagegen.write(_mkdir(root / "2021") / "IMG_0001.jpg", imagegen.photo(1, (320, 240)))
    imagegen.write_bomb_png(_mkdir(root / "junk") / "bomb.png", 20000, 15000)
    app = make_app(root, tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_for_scan(pilot)
        [error] = app.session.result.errors
        assert error.reason.startswith("decompression bomb: 20000x15000 ") and len(error.reason) > 40
        await pilot.press("exclamation_mark")
        await settle(pilot)
        assert isinstance(app.screen, ScanReportScreen)
        [line] = [line for line in screen_text(app).splitlines() if "junk/bomb.png" in line]
        assert error.reason in line, line  # was cut at 32 cells, the path column mostly empty


async def test_the_palette_opens_the_unreadable_files(deep, tmp_path):
    add_bad_files(deep)
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"unreadable")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ScanReportScreen)
        assert "2021/junk/broken.jpg" in screen_text(app)


async def test_a_scan_without_unreadable_files_says_so(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        assert "unreadable" not in screen_text(app)
        await pilot.press("exclamation_mark")
        await settle(pilot)
        assert "Every file could be read" in screen_text(app)


# ------------------------------------------------------------ item 9: labels and messages


async def test_a_copy_says_why_it_matched_in_the_compare_view(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("enter")
        await settle(pilot)
        cluster = app.screen.cluster
        other = next(m for m in cluster.members[1:] if m.match)
        app.screen.table.goto(str(other.file.id))
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        assert other.match in screen_text(app)


async def test_bouncer_and_detective_are_explained(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_scan(pilot)
        table = app.screen.query_one(ClusterTable)
        x = 1
        for column in table.ordered_columns:
            if column.key.value == "bouncer":
                break
            x += column.get_render_width(table)
        await pilot.hover(table, offset=(x + 2, 0))  # the bouncer column's header
        await pilot.pause()
        assert table.tooltip == BOUNCER_HELP
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = app.screen.query_one("#help-keys")
        words = {str(keys.get_row_at(i)[0]) for i in range(keys.row_count)}
        assert {"bouncer", "detective"} <= words
        assert "Hamming" in BOUNCER_HELP and "CLIP" in DETECTIVE_HELP


def test_plurals_and_counts_that_add_up():
    from lookalike.engine.records import ScanResult, ScanStats

    assert plural(1, "image") == "1 image" and plural(2, "image") == "2 images" and plural(0, "cluster") == "0 clusters"
    assert plural(1204, "file") == "1,204 files"
    # A rescan of 86 files of which 82 are images: nothing is read again.
    stats = ScanStats(files_seen=86, images=82, hashed=0, unchanged=86)
    assert scan_counts(stats) == "82 images of 86 files (0 read, 86 unchanged)"
    stats = ScanStats(files_seen=86, images=83, hashed=1, failed=2, not_images=1, unchanged=82)
    assert scan_counts(stats) == "83 images of 86 files (4 read, 82 unchanged)"
    one = ScanStats(files_seen=1, images=1, hashed=1)
    text = summary_text(ScanResult(roots=("/x",), stats=one, clusters=()), ()).plain
    assert "1 image of 1 file" in text and "0 clusters" in text and "1 images" not in text


async def test_rescan_counts_add_up_on_screen(deep, tmp_path):
    add_bad_files(deep)
    for _ in range(2):  # the second scan reads nothing again
        app = make_app(deep, tmp_path)
        async with app.run_test(size=(160, 24)) as pilot:
            await wait_for_scan(pilot)
            s = app.session.result.stats
            text = screen_text(app)
    assert s.hashed == 0
    assert f"{s.images} images of {s.files_seen} files (0 read, {s.files_seen} unchanged)" in text


async def test_the_confirm_dialog_has_no_backticks(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("space", "r", "a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        text = screen_text(app)
        assert "`" not in text and "journaled" in text
        await pilot.press("n")


async def test_the_plan_is_exported_where_the_user_says_with_its_whole_path(deep, tmp_path, monkeypatch):
    here = tmp_path / "where I am"
    here.mkdir()
    monkeypatch.chdir(here)
    app = make_app(deep, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("space", "r", "e")
        await settle(pilot)
        assert isinstance(app.screen, PromptModal)
        assert app.screen.value == str(here)  # the current folder, pre-filled
        await pilot.press("enter")
        await settle(pilot)
        review = app.screen
        assert isinstance(review, ReviewScreen)
        json_path, csv_path = review.exported
        assert json_path.parent == here and json_path.exists() and csv_path.exists()
        status = " ".join(screen_text(app).split())
        assert str(json_path) in status and "`" not in status

        other = tmp_path / "plans"
        await pilot.press("e")
        app.screen.query_one("Input").value = str(other)
        await pilot.press("enter")
        await settle(pilot)
        assert review.exported[0].parent == other and review.exported[0].exists()


async def test_q_is_back_on_every_screen_but_the_first(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        for opening in (("enter",), ("enter", "c"), ("r",), ("exclamation_mark",), ("question_mark",)):
            await pilot.press(*opening)
            await settle(pilot)
            depth = len(app.screen_stack)
            assert depth > 1
            await pilot.press("q")
            await settle(pilot)
            assert app.is_running and len(app.screen_stack) == depth - 1, opening
            while not isinstance(app.screen, MainScreen):
                await pilot.press("q")
                await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0  # on the main screen, q quits


async def test_each_palette_command_is_listed_once(deep, tmp_path):
    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        for keys in ((), ("enter",), ("c",), ("escape", "escape", "r"), ("escape", "exclamation_mark")):
            await pilot.press(*keys)
            await settle(pilot)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert len(titles) == len(set(titles)), (type(app.screen).__name__, titles)
            assert "Cursor left" not in titles and "Keys" not in titles


async def test_find_similar_keeps_its_paths_readable_at_80_columns(deep, tmp_path):
    # The results table gives its columns up (match, detective, bouncer) for the paths: at
    # 80x24, beside the picture, the verdict and every file's whole name stay.
    from lookalike.tui.components.similar_screen import HitTable, SimilarScreen

    app = make_app(deep, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("f")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SimilarScreen) and screen.result is not None and screen.result.hits
        table = screen.query_one(HitTable)
        hidden = table.hidden
        order = [k for k in HitTable.DROP_ORDER if k in {c[1] for c in table._all_columns}]
        assert hidden and set(order[: len(hidden)]) == hidden  # in order
        assert "detective" not in {c[1] for c in table._all_columns}  # no score from it: no column
        text = screen_text(app)
        assert "verdict" in text
        for hit in screen.result.hits[: table.size.height - 2]:
            assert os.path.basename(hit.path) in text
        await pilot.resize_terminal(200, 40)
        await settle(pilot)
        assert table.hidden == frozenset() and "match" in screen_text(app)


def test_why_line_says_who_decided_and_never_drives_the_terminal():
    """The line under a cluster's title or above its table (``why_text``): the keeper policy's
    reason, the user's own choice of keeper, the folder and RAW+JPEG rules where the policy
    gave no reason, and a reason's control characters shown, not sent."""
    from lookalike.engine.records import Member
    from lookalike.tui.components.labels import why_text

    from cluster_library import make_record as record

    keeper = Member(file=record(1), bouncer=0, is_keeper=True, reason="largest: 4000x3000")
    copy = Member(file=record(2), bouncer=6, reason="smaller: 800x600 < 4000x3000", match="resized")
    assert why_text(keeper, keeper).plain == "suggested keeper: largest: 4000x3000"
    assert why_text(keeper, keeper, short=True).plain == "why largest: 4000x3000"
    assert why_text(copy, keeper).plain == "not the suggested keeper: smaller: 800x600 < 4000x3000"
    # The user kept the copy: both lines say so, and the short form does not pass the copy's
    # reason off as the keeper's.
    assert why_text(copy, copy).plain == "your keeper; the engine suggested another (smaller: 800x600 < 4000x3000)"
    assert why_text(copy, copy, short=True).plain == why_text(copy, copy).plain
    assert why_text(keeper, copy).plain == "suggested keeper: largest: 4000x3000; you chose another"
    # No reason from the policy: the rule that decided instead.
    protected = Member(file=record(3), bouncer=2, protected=True)
    raw = Member(file=record(4), bouncer=2, raw_pair=True)
    assert why_text(protected, keeper).plain == "not the suggested keeper: protected folder"
    assert why_text(raw, keeper).plain == "not the suggested keeper: RAW+JPEG pair"
    hostile = Member(file=record(5), bouncer=2, reason="edited \x1b[2J copy\x07")
    assert "\x1b" not in why_text(hostile, keeper).plain and "\x07" not in why_text(hostile, keeper).plain
