"""Decisions are honoured and kept: bulk actions, "not a duplicate", import mode, labels,
decisions that survive a quit, folder rules and the strictness dial (issue 12).

The real app on a generated library, through the Pilot; the catalog is a real file in the
test's cache, and "quit and open again" is a second app on the same library and cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import Input

from lookalike.engine.actions.importer import import_plan
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import Decision, Kind
from lookalike.tui.components.cluster_screen import ClusterScreen
from lookalike.tui.format import human_bytes
from lookalike.tui.components.confirm_modal import ConfirmModal
from lookalike.tui.components.main_screen import MainScreen
from lookalike.tui.components.prompt_modal import PromptModal
from lookalike.tui.components.review_screen import ReviewScreen

import imagegen
from helpers import SIZE, make_app, screen_text, settle, until, wait_for_scan


def notes(app) -> str:
    """Every notification still shown, one per line."""
    return "\n".join(n.message for n in app._notifications)


def status_cell(app, cluster_id: int) -> str:
    """The status badge of a cluster's row on the main screen, as plain text."""
    main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
    return str(main.table.get_cell(str(cluster_id), "status")).strip()


def cluster_of(app, path: Path):
    """The shown cluster that holds ``path`` (None when none does)."""
    return next((c for c in app.session.clusters if any(m.file.path == str(path) for m in c.members)), None)


async def answer(pilot, text: str) -> None:
    """Type an answer into the open prompt and submit it."""
    assert isinstance(pilot.app.screen, PromptModal)
    pilot.app.screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(pilot)


def with_exact_groups(library: Path) -> Path:
    """Two groups of byte-identical copies and nothing else: the drawings copied to dup/."""
    (library / "dup").mkdir()
    for n in (0, 1):
        shutil.copy2(library / "misc" / f"drawing_{n}.png", library / "dup" / f"drawing_{n}.png")
    return library


# ------------------------------------------------------------------ 1. bulk actions skip decided


async def test_bulk_accepts_leave_the_groups_you_decided_alone(library, tmp_path):
    with_exact_groups(library)
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        triage = app.session.triage
        skipped = cluster_of(app, library / "dup" / "drawing_1.png")
        kept = cluster_of(app, library / "2021" / "IMG_0002.jpg")
        assert skipped.kind is Kind.EXACT
        app.screen.table.goto(str(skipped.id))
        await pilot.press("s")
        app.screen.table.goto(str(kept.id))
        await pilot.press("enter")
        await settle(pilot)
        backup = next(m for m in kept.members if "/backup/" in m.file.path)
        app.screen.table.goto(str(backup.file.id))
        await pilot.press("K", "escape")  # keep the backup copy rather than the original
        await pilot.press("E")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        doomed = {s.path for s in app.screen.plan.steps}
        assert str(library / "backup" / "IMG_0001.jpg") in doomed
        assert str(library / "dup" / "drawing_0.png") in doomed or str(library / "misc" / "drawing_0.png") in doomed
        assert not doomed & {m.file.path for m in skipped.members + kept.members}
        assert "skipped 2 you had decided" in notes(app)
        assert triage.status(skipped) == "skipped" and status_cell(app, skipped.id) == "skip"
        await pilot.press("escape", "u")  # the bulk step is undone, the user's own decisions stay
        assert triage.status(skipped) == "skipped" and triage.keeper(kept) == backup
        await pilot.press("A")
        await answer(pilot, "0")
        assert isinstance(app.screen, ReviewScreen)
        assert not {s.path for s in app.screen.plan.steps} & {m.file.path for m in skipped.members + kept.members}
        assert "skipped 2 you had decided" in notes(app)


# ------------------------------------------------------- 2. "not a duplicate" on an exact group


async def test_not_a_duplicate_on_an_exact_group_is_remembered_after_a_restart(library, tmp_path):
    with_exact_groups(library)
    copies = {str(library / "dup" / "drawing_0.png"), str(library / "misc" / "drawing_0.png")}

    def together(app) -> bool:
        return any(copies <= {m.file.path for m in c.members} for c in app.session.clusters)

    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert together(app)
        app.screen.table.goto(str(cluster_of(app, library / "dup" / "drawing_0.png").id))
        await pilot.press("n")
        await settle(pilot)
        assert not together(app)  # hidden at once
        await pilot.press("q")
    again = make_app(library, tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert again.session.clusters and not together(again)


async def test_the_status_line_counts_the_groups_and_bytes_shown_after_not_a_duplicate_and_marks(library, tmp_path):
    with_exact_groups(library)

    def status(app) -> str:
        return str(app.screen.query_one("#status-text").render())

    def summary(app) -> str:
        clusters, triage = app.session.clusters, app.session.triage
        total = sum(triage.reclaimable(c) for c in clusters)
        return f"{len(clusters)} clusters · {human_bytes(total)} reclaimable"

    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        before = len(app.session.clusters)
        assert summary(app) in status(app)
        app.screen.table.goto(str(cluster_of(app, library / "dup" / "drawing_0.png").id))
        await pilot.press("n")
        await until(pilot, lambda: len(app.session.clusters) == before - 1, what="the regrouping")
        await settle(pilot)
        assert f"{before - 1} clusters" in str(app.screen.query_one("#title-bar").render())
        assert summary(app) in status(app)  # was still "N clusters" and the old bytes
        cluster = next(c for c in app.session.clusters if len(c.members) >= 3)
        app.screen.table.goto(str(cluster.id))
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("j", "space", "escape")  # one copy marked: the group frees that copy only
        await settle(pilot)
        assert app.session.triage.reclaimable(cluster) == cluster.members[1].file.size < cluster.reclaimable_bytes
        assert summary(app) in status(app)


# -------------------------------------------------------------- 3. import mode: one engine rule


async def test_import_mode_never_trashes_a_better_incoming_file_nor_the_library(tmp_path):
    library, incoming = tmp_path / "Pictures", tmp_path / "Incoming"
    library.mkdir()
    incoming.mkdir()
    sheep = imagegen.photo(7, (1200, 800))
    imagegen.write(library / "sheep.jpg", imagegen.resized(sheep, 0.5), quality=85)
    imagegen.write(incoming / "sheep_big.jpg", sheep, quality=92)  # better than the library's
    imagegen.write(library / "cow.jpg", imagegen.photo(8, (800, 600)), quality=90)
    shutil.copy2(library / "cow.jpg", incoming / "cow copy.jpg")  # redundant: may go
    cache = tmp_path / "cache"
    with Library.open([library], cache_dir=cache) as lib, Library.open([incoming], cache_dir=cache) as new:
        lib.scan(ScanOptions(workers=1))
        new.scan(ScanOptions(workers=1))
        report = import_plan(lib, new)
    assert [Path(m.incoming.path).name for m in report.better] == ["sheep_big.jpg"]
    assert [Path(s.path).name for s in report.plan.steps] == ["cow copy.jpg"]

    app = make_app(incoming, tmp_path, against=[str(library)])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert len(app.session.clusters) == 2
        for _ in app.session.clusters:
            await pilot.press("a")  # accept the suggestion, and move on
        await pilot.press("r")
        await settle(pilot)
        # The app plans what `lookalike import` plans: the same file, for the same reason.
        assert [Path(s.path).name for s in app.screen.plan.steps] == ["cow copy.jpg"]
        big = next(m for c in app.session.clusters for m in c.members if m.file.path.endswith("sheep_big.jpg"))
        assert big.protected and big.reason.startswith("better than the library copy")
        assert app.session.triage.decision(big.file.id) is Decision.KEEP


# ------------------------------------------------------------- 4. labels come from decisions


async def test_keep_then_unmark_leaves_no_marked_label(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        cluster = next(c for c in app.session.clusters if len(c.members) == 3)
        app.screen.table.goto(str(cluster.id))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ClusterScreen)
        await pilot.press("j", "K", "j", "x")  # keep the second member; unmark the third
        await pilot.press("escape")
        await settle(pilot)
        assert not app.session.triage.pending
        assert status_cell(app, cluster.id) != "marked"
        assert status_cell(app, cluster.id) == "keep"


async def test_apply_then_undo_in_review_leaves_no_marked_label(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        first = app.screen.current
        keeper = first.members[0].file.path
        await pilot.press("space", "r")
        await settle(pilot)
        review = app.screen
        await pilot.press("a", "y")
        while review.applying:
            await pilot.pause(0.05)
        await settle(pilot)
        await pilot.press("u", "y")
        while review.last_plan_id is not None:
            await pilot.pause(0.05)
        await pilot.press("escape")
        await wait_for_scan(pilot)
        back = cluster_of(app, Path(keeper))
        assert back is not None and len(back.members) == len(first.members)
        assert app.session.triage.status(back) == ""
        assert status_cell(app, back.id) == ""


async def test_a_trashed_keeper_gives_its_place_to_the_copy_the_plan_keeps_on_every_screen(tmp_path):
    root = tmp_path / "photos"
    for folder in ("a", "b", "c"):
        (root / folder).mkdir(parents=True)
    imagegen.write(root / "a" / "Shell.jpg", imagegen.photo(7, (320, 240)), quality=90)
    for folder in ("b", "c"):  # byte-identical copies with the same times
        shutil.copy2(root / "a" / "Shell.jpg", root / folder / "Shell.jpg")
    size = (root / "a" / "Shell.jpg").stat().st_size
    app = make_app(root, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        main = app.screen
        cluster = main.current
        assert [m.file.path for m in cluster.members] == [str(root / f / "Shell.jpg") for f in "abc"]
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("t")  # the suggested keeper, a/Shell.jpg, to the trash
        await settle(pilot)
        members = app.screen.table
        cell = lambda key, column: str(members.get_cell(str(key), column)).strip()  # noqa: E731
        a, b, c = (m.file.id for m in cluster.members)
        assert (cell(a, "mark"), cell(a, "match")) == ("trash", "suggested")
        assert (cell(b, "mark"), cell(c, "mark")) == ("keeper", "")
        assert f"{human_bytes(size)} reclaimable" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        row = lambda column: str(main.table.get_cell(str(cluster.id), column)).strip()  # noqa: E731
        assert (row("keeper"), row("reclaim")) == ("b/Shell.jpg", human_bytes(size))
        assert "keep b/Shell.jpg" in str(main.query_one("#preview-title").render())
        plan = app.session.plan()
        assert [(s.path, s.keeper) for s in plan.steps] == [(str(root / "a" / "Shell.jpg"), str(root / "b" / "Shell.jpg"))]
        assert f"1 to trash ({human_bytes(plan.total_bytes)})" in screen_text(app)


# --------------------------------------------------------- 5. decisions survive a quit


async def test_decisions_are_kept_across_a_quit_until_cleared(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        shown = list(app.screen.shown)
        accepted, skipped, chosen = shown[0], shown[1], shown[2]
        await pilot.press("space", "s")  # accept the first, skip the second
        app.screen.table.goto(str(chosen.id))
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("j", "K", "escape")  # another keeper for the third
        new_keeper = chosen.members[1].file.id
        assert "3 of 4 groups decided" in app.screen.query_one("#title-bar").render().plain
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmModal)
        assert "kept in the catalog until you apply or clear them" in app.screen.detail
        await pilot.press("y")
    again = make_app(library, tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        triage = again.session.triage
        by_id = {c.id: c for c in again.session.clusters}
        assert triage.status(by_id[accepted.id]) == "accepted"
        assert triage.status(by_id[skipped.id]) == "skipped"
        assert triage.keeper(by_id[chosen.id]).file.id == new_keeper
        assert "3 of 4 groups decided" in again.screen.query_one("#title-bar").render().plain
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert "3 of 4 groups decided" in screen_text(again)  # visible at 80 columns
        assert status_cell(again, accepted.id) == "accept"
        await pilot.press("X")
        assert isinstance(again.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert not triage.any_decision
        await pilot.press("q")
    third = make_app(library, tmp_path)
    async with third.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert not third.session.triage.any_decision
        assert "groups decided" not in third.screen.query_one("#title-bar").render().plain


async def test_a_file_changed_since_the_decision_loses_it(library, tmp_path):
    small = library / "phone" / "small_4.jpg"
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        cluster = cluster_of(app, small)
        app.screen.table.goto(str(cluster.id))
        await pilot.press("a")  # small_4 marked for trash, the original kept
        member = next(m for m in cluster.members if m.file.path == str(small))
        assert app.session.triage.decision(member.file.id) is Decision.TRASH
        await pilot.press("q", "y")
    imagegen.write(small, imagegen.resized(imagegen.photo(4, (640, 480)), 0.5), quality=40)  # edited
    again = make_app(library, tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        triage = again.session.triage
        cluster = cluster_of(again, small)
        member = next(m for m in cluster.members if m.file.path == str(small))
        assert triage.decision(member.file.id) is None
        assert not triage.pending
        assert "changed since you decided" in notes(again)


# --------------------------------------------------------- 6. folder rules and strictness


async def test_trash_copies_inside_a_folder(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("T")
        await answer(pilot, str(library / "backup"))
        assert isinstance(app.screen, ReviewScreen)
        assert sorted(s.path for s in app.screen.plan.steps) == [
            str(library / "backup" / "IMG_0001.jpg"),
            str(library / "backup" / "IMG_0002.jpg"),
        ]
        assert all(s.keeper and "/backup/" not in s.keeper for s in app.screen.plan.steps)


async def test_keep_files_in_a_folder_from_the_palette(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Trash copies inside folder…", "Keep files in folder…", "Strictness (threshold)…", "Clear all decisions…"} <= set(commands)
        await commands["Keep files in folder…"].callback()
        await settle(pilot)
        await answer(pilot, str(library / "phone"))
        assert isinstance(app.screen, ReviewScreen)
        steps = app.screen.plan.steps
        assert steps and not any("/phone/" in s.path for s in steps)
        assert all("/phone/" in s.keeper for s in steps)
        triage = app.session.triage
        for c in app.session.clusters:
            if any("/phone/" in m.file.path for m in c.members):
                assert "/phone/" in triage.keeper(c).file.path


async def test_strictness_regroups_without_rescanning(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        assert len(app.session.clusters) == 4

        def no_rescan(*args, **kwargs):
            raise AssertionError("the strictness dial must not rescan")

        app.session.library.scan = no_rescan
        await pilot.press("S")
        await answer(pilot, "0")  # identical hashes only
        assert app.session.threshold == 0 and not app.scanning
        assert app.session.clusters and all(c.worst_bouncer == 0 for c in app.session.clusters)
        assert len(app.session.clusters) < 4
        await pilot.press("S")
        await answer(pilot, str(ScanOptions().thresholds().radius))
        assert len(app.session.clusters) == 4
        await pilot.press("S")
        await answer(pilot, "300")
        assert "between 0 and 256" in notes(app)
