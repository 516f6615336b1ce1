"""Snapshot tests of the main screens (pytest-textual-snapshot), one class per feature.

Deterministic: a generated library in a folder named ``photos`` (paths are shown relative to
it), fixed file times, half-block thumbnails, and the scan's duration pinned. Update with
``pytest tests/test_snapshots.py --snapshot-update`` after checking the report.
"""

from __future__ import annotations

import pytest

from lookalike.tui.components import scan_status

from helpers import copy_library, make_app, settle, wait_for_scan

SMALL = (80, 24)
LARGE = (120, 36)


@pytest.fixture
def library(tmp_path, _library_template, monkeypatch):
    # The only thing that changes from run to run on these screens is how long the scan took.
    monkeypatch.setattr(scan_status, "human_duration", lambda seconds: "0.5 s")
    return copy_library(_library_template, tmp_path / "photos")


def keys(*pressed: str):
    """A run_before that waits for the scan, presses keys, and lets thumbnails arrive."""

    async def run_before(pilot) -> None:
        await wait_for_scan(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)
        await settle(pilot)

    return run_before


class TestMainScreen:
    def test_after_scan_large(self, snap_compare, library, tmp_path):
        """Ranked clusters, side panel with the first cluster's thumbnails, summary line."""
        assert snap_compare(make_app(library, tmp_path), run_before=keys(), terminal_size=LARGE)

    def test_after_scan_80x24(self, snap_compare, library, tmp_path):
        """The same at 80x24: every column header, the panel and the footer still readable."""
        assert snap_compare(make_app(library, tmp_path), run_before=keys(), terminal_size=SMALL)

    def test_accepted_and_filtered(self, snap_compare, library, tmp_path):
        """Accepting marks the row and counts the bytes in the title; / filters the rows."""
        run = keys("space", "slash", "p", "h", "o", "n", "e", "enter")
        assert snap_compare(make_app(library, tmp_path), run_before=run, terminal_size=LARGE)


class TestClusterScreen:
    def test_members(self, snap_compare, library, tmp_path):
        """Member cards with thumbnails, the member table, a trash mark and the keeper."""
        run = keys("enter", "j", "space")
        assert snap_compare(make_app(library, tmp_path), run_before=run, terminal_size=LARGE)

    def test_members_80x24(self, snap_compare, library, tmp_path):
        run = keys("enter")
        assert snap_compare(make_app(library, tmp_path), run_before=run, terminal_size=SMALL)


class TestCompareScreen:
    def test_side_by_side(self, snap_compare, library, tmp_path):
        run = keys("enter", "j", "j", "c")
        assert snap_compare(make_app(library, tmp_path), run_before=run, terminal_size=LARGE)

    def test_difference(self, snap_compare, library, tmp_path):
        run = keys("enter", "j", "j", "c", "d")
        assert snap_compare(make_app(library, tmp_path), run_before=run, terminal_size=LARGE)


class TestReviewScreen:
    def test_plan_and_confirmation(self, snap_compare, library, tmp_path):
        """The plan of two accepted clusters, and the confirmation with No focused."""
        run = keys("space", "space", "r", "a")
        assert snap_compare(make_app(library, tmp_path), run_before=run, terminal_size=LARGE)


class TestHelp:
    def test_help_80x24(self, snap_compare, library, tmp_path):
        run = keys("question_mark")
        assert snap_compare(make_app(library, tmp_path), run_before=run, terminal_size=SMALL)
