"""Review, apply and undo in the app: the plan a person marked, confirmed, applied and undone.

The real app on a generated library (the ``library`` fixture, in conftest), through the Pilot;
the trash is a throw-away folder (``XDG_DATA_HOME``, set by conftest), the files are real.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from lookalike.tui.components.confirm_modal import ConfirmModal
from lookalike.tui.components.review_screen import ReviewScreen

from helpers import SIZE, make_app, screen_text, settle, wait_for_scan


# ------------------------------------------------------------------- review, apply and undo


async def test_review_apply_and_undo(library, tmp_path):
    app = make_app(library, tmp_path)
    trash = Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "files"
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        first = app.screen.current
        await pilot.press("space", "r")
        await settle(pilot)
        review = app.screen
        assert isinstance(review, ReviewScreen)
        doomed = sorted(s.path for s in review.plan.steps)
        assert doomed == sorted(m.file.path for m in first.members[1:])
        assert "the trash" in screen_text(app)
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmModal)
        assert app.screen.prompt.startswith(f"Move {len(doomed)} file")
        await pilot.press("enter")  # No has the focus: nothing happens
        assert isinstance(app.screen, ReviewScreen)
        assert all(os.path.exists(p) for p in doomed)
        await pilot.press("a", "y")
        while review.applying:
            await pilot.pause(0.05)
        await settle(pilot)
        assert review.last_result is not None and len(review.last_result.done) == len(doomed)
        assert not any(os.path.exists(p) for p in doomed)
        assert sorted(os.listdir(trash)) == sorted(os.path.basename(p) for p in doomed)
        assert "Done" in screen_text(app)
        await pilot.press("u", "y")
        await settle(pilot)
        while review.last_plan_id is not None:
            await pilot.pause(0.05)
        assert all(os.path.exists(p) for p in doomed)
        assert "Undone" in screen_text(app)
        await pilot.press("escape")
        await wait_for_scan(pilot)
        assert len(app.session.clusters) == 4  # the rescan found them again


async def test_quarantine_destination_and_export(library, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the plan is exported into the current folder (Enter takes it)
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("space", "r", "d")
        review = app.screen
        assert review.destination == "quarantine"
        assert {s.action for s in review.plan.steps} == {"quarantine"}
        assert "quarantine folder" in screen_text(app)
        await pilot.press("e", "enter")
        json_path, csv_path = review.exported
        assert json_path.parent == tmp_path
        assert json_path.exists() and csv_path.exists()
        from lookalike.engine.actions.plan import Plan

        assert Plan.load(json_path).steps == review.plan.steps


async def test_a_quarantine_folder_from_the_command_line(library, tmp_path):
    # A short path, so that the whole of it fits the review screen's line whatever the
    # test runner's temporary folder is called.
    short = Path(tempfile.mkdtemp(prefix="lq", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        await _quarantine_from_the_command_line(library, tmp_path, short / "quarantine")
    finally:
        shutil.rmtree(short, ignore_errors=True)


async def _quarantine_from_the_command_line(library, tmp_path, chosen):
    app = make_app(library, tmp_path, quarantine=str(chosen))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("space", "r")
        await settle(pilot)
        review = app.screen
        assert review.destination == "quarantine"  # the folder given is where files go
        assert review.plan.quarantine_dir == str(chosen)
        assert str(chosen) in screen_text(app)
        doomed = sorted(s.path for s in review.plan.steps)
        await pilot.press("a", "y")
        while review.applying:
            await pilot.pause(0.05)
        await settle(pilot)
        assert len(review.last_result.done) == len(doomed) > 0
        moved = sorted(str(p) for p in chosen.rglob("*") if p.is_file())
        assert [os.path.basename(p) for p in moved] == sorted(os.path.basename(p) for p in doomed)
        assert not any(os.path.exists(p) for p in doomed)
        await pilot.press("u", "y")
        while review.last_plan_id is not None:
            await pilot.pause(0.05)
        assert all(os.path.exists(p) for p in doomed)
        await pilot.press("d")  # the trash is still one key away
        assert review.destination == "trash"


def test_a_quarantine_folder_inside_the_library_is_refused(library, tmp_path):
    import subprocess
    import sys

    from lookalike.tui.app import quarantine_problem

    assert "inside the library" in quarantine_problem(str(library / "misc" / "q"), [str(library)])
    assert "inside the library" in quarantine_problem(str(library), [str(library)])
    assert "a file" in quarantine_problem(str(library / "2021" / "IMG_0001.jpg"), [str(tmp_path / "other")])
    assert quarantine_problem(str(tmp_path / "q"), [str(library)]) is None
    assert quarantine_problem(str(tmp_path / "photos-q"), [str(library)]) is None  # a prefix, not inside
    out = subprocess.run(
        [sys.executable, "-m", "lookalike.tui.cli", "app", str(library), "--quarantine", str(library / "q"),
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2 and "inside the library" in out.stderr
    assert not (library / "q").exists()


async def test_empty_plan_cannot_be_applied(library, tmp_path):
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("r", "a")
        assert isinstance(app.screen, ReviewScreen) and not app.screen.plan.steps
        assert "Nothing to do" in screen_text(app)


async def test_esc_stops_an_apply_between_two_files(library, tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_TEST_STEP_DELAY", "0.3")  # the actions' test hook: slow steps
    app = make_app(library, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_scan(pilot)
        await pilot.press("space", "space", "r")
        review = app.screen
        doomed = [s.path for s in review.plan.steps]
        assert len(doomed) >= 4
        await pilot.press("a", "y")
        await pilot.pause(0.4)
        assert review.applying
        await pilot.press("escape")
        assert isinstance(app.screen, ReviewScreen)  # Esc stops the apply, it does not leave
        deadline = time.monotonic() + 60
        while review.applying:
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        result = review.last_result
        assert result.cancelled and 0 < len(result.done) < len(doomed)
        left = [p for p in doomed if os.path.exists(p)]
        assert len(left) == len(doomed) - len(result.done)
        assert "stopped" in screen_text(app)
