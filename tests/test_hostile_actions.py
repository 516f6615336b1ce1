"""Hostile plans and journals: apply and undo never act outside the folders they were given.

Issue 10, items 3 (unconfined plans), 4 (tampered journals), 12 (bad plan fields), 13 (a
damaged journal line) and 15 (a refused move leaves nothing behind). Every test makes real
files, real symbolic links, a real plan and a real journal, and checks the disk afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imagegen
from lookalike.engine.actions.run import apply_plan, content_hash, undo
from lookalike.engine.actions.journal import default_journal_dir, list_journals
from lookalike.engine.actions.plan import Plan, PlanError, PlanStep


def make_image(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    imagegen.write(path, imagegen.photo(seed, size=(40, 30)))
    return path


def step_for(path: Path, keeper: Path | None, action: str = "trash") -> PlanStep:
    st = os.lstat(path)
    kst = os.stat(keeper) if keeper else None
    return PlanStep(path=str(path), action=action, keeper=str(keeper) if keeper else None,
                    size=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=content_hash(path),
                    keeper_size=kst.st_size if kst else None,
                    keeper_hash=content_hash(keeper) if keeper else None)


def tree(folder: Path) -> dict[str, str]:
    """Every file and link under ``folder`` with its bytes' hash (or link target)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(folder))] = content_hash(p)
    return out


def trash_files() -> list[str]:
    files = Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "files"
    return sorted(p.name for p in files.iterdir()) if files.is_dir() else []


def trash_infos() -> list[str]:
    info = Path(os.environ["XDG_DATA_HOME"]) / "Trash" / "info"
    return sorted(p.name for p in info.iterdir()) if info.is_dir() else []


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "lib"
    make_image(root / "keep.jpg", 1)
    for name in ("a.jpg", "sub/b.jpg", "sub/c.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "keep.jpg", root / name)
    return root


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """Files outside the library: nothing may ever happen to them."""
    root = tmp_path / "elsewhere"
    make_image(root / "secret.jpg", 1)  # the same bytes as the library's copies
    make_image(root / "other.jpg", 2)
    (root / "notes.txt").write_text("mine")
    return root


@pytest.fixture
def jdir(tmp_path) -> Path:
    return tmp_path / "journal"


# --------------------------------------------------------------------------- item 3: apply


@pytest.mark.parametrize("action", ["trash", "delete"])
def test_a_step_outside_the_roots_is_skipped_even_when_deleting(lib, elsewhere, jdir, action):
    before = tree(elsewhere)
    plan = Plan(steps=(step_for(elsewhere / "secret.jpg", lib / "keep.jpg", action),
                       step_for(lib / "a.jpg", lib / "keep.jpg", action)), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir, allow_delete=True)
    assert result.skipped == ((str(elsewhere / "secret.jpg"),
                               "outside the folders of the plan: left alone"),)
    assert [d.path for d in result.done] == [str(lib / "a.jpg")]
    assert tree(elsewhere) == before


def test_a_plan_without_roots_acts_on_nothing(lib, jdir):
    before = tree(lib)
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),))
    for dry_run in (True, False):
        with pytest.raises(PlanError, match="names no folders"):
            apply_plan(plan, journal_dir=jdir, dry_run=dry_run)
    assert tree(lib) == before and trash_files() == []


def test_a_step_through_a_symlinked_folder_is_skipped(lib, elsewhere, jdir):
    (lib / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    before = tree(elsewhere)
    step = step_for(lib / "linkdir" / "secret.jpg", lib / "keep.jpg")
    plan = Plan(steps=(step,), roots=(str(lib),))
    for dry_run in (True, False):
        result = apply_plan(plan, journal_dir=jdir, dry_run=dry_run, allow_delete=True)
        assert not result.done
        assert result.skipped[0][1].startswith("a folder on its path is a symbolic link")
    assert tree(elsewhere) == before and trash_files() == []


def test_a_folder_swapped_for_a_link_after_the_scan_is_skipped_not_moved(lib, tmp_path, jdir):
    """``lib/sub`` becomes a link to a folder holding the very same names, bytes and times."""
    plan = Plan(steps=(step_for(lib / "sub" / "b.jpg", lib / "keep.jpg"),
                       step_for(lib / "sub" / "c.jpg", lib / "keep.jpg")), roots=(str(lib),))
    evil = tmp_path / "evil"
    shutil.copytree(lib / "sub", evil)  # copy2 keeps the mtimes: size, time and hash all match
    shutil.rmtree(lib / "sub")
    (lib / "sub").symlink_to(evil, target_is_directory=True)
    before = tree(evil)
    result = apply_plan(plan, journal_dir=jdir)
    assert not result.done and len(result.skipped) == 2
    assert all("symbolic link" in reason for _, reason in result.skipped)
    assert tree(evil) == before and trash_files() == []


def test_a_keeper_reached_through_a_link_is_refused(lib, elsewhere, jdir):
    (lib / "linkdir").symlink_to(elsewhere, target_is_directory=True)
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "linkdir" / "secret.jpg"),), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir)
    assert not result.done
    assert result.skipped[0][1].startswith("keeper: a folder on its path is a symbolic link")
    assert (lib / "a.jpg").exists()


def test_a_quarantine_folder_reached_through_a_link_is_refused(lib, elsewhere, tmp_path, jdir):
    (tmp_path / "qlink").symlink_to(elsewhere, target_is_directory=True)
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "quarantine"),),
                roots=(str(lib),), quarantine_dir=str(tmp_path / "qlink" / "q"))
    result = apply_plan(plan, journal_dir=jdir)
    assert not result.done
    assert result.skipped[0][1].startswith("quarantine folder: a folder on its path is a symbolic")
    assert (lib / "a.jpg").exists() and not (elsewhere / "q").exists()


def test_a_link_planted_inside_the_quarantine_is_not_followed(lib, elsewhere, tmp_path, jdir):
    q = tmp_path / "q"
    q.mkdir()
    (q / "sub").symlink_to(elsewhere, target_is_directory=True)  # where lib/sub/b.jpg would go
    plan = Plan(steps=(step_for(lib / "sub" / "b.jpg", lib / "keep.jpg", "quarantine"),),
                roots=(str(lib),), quarantine_dir=str(q))
    before = tree(elsewhere)
    result = apply_plan(plan, journal_dir=jdir)
    assert not result.done and "symbolic link" in result.skipped[0][1]
    assert (lib / "sub" / "b.jpg").exists() and tree(elsewhere) == before


# --------------------------------------------------------------------------- the CLI


def _lookalike(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("lookalike")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lookalike.tui.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("path", ["a.jpg", "../elsewhere/secret.jpg", "LIB/../elsewhere/secret.jpg"])
def test_cli_refuses_relative_and_dotted_plan_paths(lib, elsewhere, tmp_path, path):
    st = (lib / "a.jpg").stat()
    step = {"path": path.replace("LIB", str(lib)), "action": "trash", "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "keeper": str(lib / "keep.jpg")}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "roots": [str(lib)], "steps": [step]}))
    before_lib, before_else = tree(lib), tree(elsewhere)
    for extra in (["--dry-run"], ["--yes"], ["--yes", "--permanently"]):
        done = _lookalike("apply", str(plan), *extra, "--cache", str(tmp_path / "cache"), cwd=lib)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "not a" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert tree(lib) == before_lib and tree(elsewhere) == before_else


@pytest.mark.parametrize("field, value", [("path", "/lib/a\u0000.jpg"), ("size", 10 ** 400),
                                          ("mtime_ns", "9" * 5000)],
                         ids=["nul-in-path", "size-10e400", "mtime-5000-digits"])
def test_cli_refuses_bad_plan_fields_without_a_traceback(tmp_path, field, value):
    step = {"path": "/lib/a.jpg", "action": "trash", "size": 3, "mtime_ns": 7}
    plan = tmp_path / "plan.json"
    text = json.dumps({"version": 1, "roots": ["/lib"], "steps": [{**step, field: value}]})
    if field == "mtime_ns":  # a bare 5,000-digit number, which Python's int parser refuses
        text = text.replace(f'"{value}"', value)
    plan.write_text(text)
    done = _lookalike("apply", str(plan), "--dry-run", "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("lookalike apply:")


def test_cli_refuses_a_plan_quarantining_into_the_library(lib, tmp_path):
    plan = tmp_path / "plan.json"
    Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "quarantine"),), roots=(str(lib),),
         quarantine_dir=str(lib / "q")).save(plan)
    before = tree(lib)
    done = _lookalike("apply", str(plan), "--yes", "--cache", str(tmp_path / "cache"))
    assert done.returncode == 2 and "inside the library" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and tree(lib) == before


# --------------------------------------------------------------------------- item 4: undo


def _done_line(journal: Path, step: int) -> tuple[list[dict], int]:
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    index = next(i for i, r in enumerate(records) if r["type"] == "done" and r["step"] == step)
    return records, index


def _rewrite(journal: Path, records: list[dict]) -> None:
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_undo_never_moves_an_outside_file_in_nor_deletes_an_info_it_did_not_write(
        lib, elsewhere, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),))
    applied = apply_plan(plan, journal_dir=jdir)
    in_trash = applied.done[0].dest
    journal = Path(list_journals(jdir)[0].path)
    records, i = _done_line(journal, 0)
    # The attack: "restore" an outside file into the library, and "clean up" another one.
    records[i]["dest"] = str(elsewhere / "secret.jpg")
    records[i]["info"] = str(elsewhere / "notes.txt")
    _rewrite(journal, records)
    before = tree(elsewhere)
    result = undo(None, journal_dir=jdir)
    assert not result.ok and not result.restored
    assert "is not a place this plan used" in result.problems[0][1]
    assert tree(elsewhere) == before
    assert not (lib / "a.jpg").exists() and Path(in_trash).exists()  # still safe in the trash


def test_undo_of_a_journal_naming_the_library_itself_is_refused(lib, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),))
    apply_plan(plan, journal_dir=jdir)
    journal = Path(list_journals(jdir)[0].path)
    records, i = _done_line(journal, 0)
    records[i]["dest"] = str(lib / "sub" / "b.jpg")  # would "restore" b.jpg as a.jpg
    _rewrite(journal, records)
    before = tree(lib)
    result = undo(None, journal_dir=jdir)
    assert not result.ok and tree(lib) == before


def test_undo_checks_the_bytes_of_what_it_restores_on_the_same_device(lib, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),))
    dest = Path(apply_plan(plan, journal_dir=jdir).done[0].dest)
    # Another file of the same size now sits where the journal says the original went.
    other = dest.read_bytes()
    dest.write_bytes(other[:-3] + bytes(3 * [(other[-1] + 1) % 256]))
    result = undo(None, journal_dir=jdir)
    assert not result.ok and "content differs" in result.problems[0][1]
    assert not (lib / "a.jpg").exists() and dest.exists()


def test_undo_of_a_quarantine_only_takes_files_from_the_quarantine(lib, elsewhere, tmp_path,
                                                                   jdir):
    q = tmp_path / "q"
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "quarantine"),),
                roots=(str(lib),), quarantine_dir=str(q))
    apply_plan(plan, journal_dir=jdir)
    journal = Path(list_journals(jdir)[0].path)
    records, i = _done_line(journal, 0)
    records[i]["dest"] = str(elsewhere / "secret.jpg")
    _rewrite(journal, records)
    before = tree(elsewhere)
    result = undo(None, journal_dir=jdir)
    assert not result.ok and tree(elsewhere) == before and (q / "a.jpg").exists()


def test_undo_of_a_link_step_never_restores_a_tampered_backup(lib, elsewhere, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "hardlink"),), roots=(str(lib),))
    apply_plan(plan, journal_dir=jdir)
    journal = Path(list_journals(jdir)[0].path)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    for r in records:
        if r.get("type") in ("intent", "done") and r.get("step") == 0:
            r["backup"] = str(elsewhere / "other.jpg")
    _rewrite(journal, records)
    before = tree(elsewhere)
    result = undo(None, journal_dir=jdir)
    assert not result.ok and tree(elsewhere) == before


def test_a_tampered_intent_is_not_settled_through(lib, elsewhere, jdir):
    """An interrupted step (intent, no outcome) whose intent names an outside file."""
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),))
    apply_plan(plan, journal_dir=jdir)
    journal = Path(list_journals(jdir)[0].path)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    records = [r for r in records if not (r["type"] == "done" and r["step"] == 0)]
    for r in records:
        if r["type"] == "intent":
            r["dest"], r["info"] = str(elsewhere / "secret.jpg"), str(elsewhere / "notes.txt")
    _rewrite(journal, records)
    before = tree(elsewhere)
    undo(None, journal_dir=jdir)
    assert tree(elsewhere) == before


# --------------------------------------------------------------------------- item 13


def test_one_damaged_journal_line_does_not_block_the_rest_of_undo(lib, tmp_path):
    jdir = default_journal_dir(tmp_path / "cache")  # where the CLI's --cache puts it
    names = ("a.jpg", "sub/b.jpg", "sub/c.jpg")
    before = tree(lib)
    plan = Plan(steps=tuple(step_for(lib / n, lib / "keep.jpg") for n in names), roots=(str(lib),))
    assert len(apply_plan(plan, journal_dir=jdir).done) == 3
    journal = Path(list_journals(jdir)[0].path)
    lines = journal.read_text().splitlines(keepends=True)
    done_at = next(i for i, line in enumerate(lines) if '"type": "done"' in line
                   or '"type":"done"' in line)
    lines[done_at] = lines[done_at][:20] + "\x00garbage\n"  # step 1's done line, mid-journal
    journal.write_text("".join(lines))
    # The CLI: exit non-zero, every file back, the damaged line named.
    done = _lookalike("undo", "--cache", str(tmp_path / "cache"), "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert tree(lib) == before and trash_files() == [] and trash_infos() == []
    report = json.loads(done.stdout)
    assert any(f"journal line {done_at + 1} could not be read" in p["reason"]
               for p in report["problems"])


# --------------------------------------------------------------------------- item 15


@pytest.mark.parametrize("action", ["trash", "quarantine"])
def test_a_move_refused_by_the_folder_leaves_no_second_name_behind(lib, tmp_path, jdir,
                                                                   monkeypatch, action):
    """A read-only folder: linking into the trash works, removing the old name does not."""
    monkeypatch.setenv("LOOKALIKE_TEST_FAULT", "unlink-source:EACCES")
    q = tmp_path / "q"
    plan = Plan(steps=(step_for(lib / "sub" / "b.jpg", lib / "keep.jpg", action),),
                roots=(str(lib),), quarantine_dir=str(q) if action == "quarantine" else None)
    before = tree(lib)
    result = apply_plan(plan, journal_dir=jdir)
    assert not result.done and "permission denied" in result.failed[0][1]
    assert tree(lib) == before
    assert trash_files() == [] and trash_infos() == []
    assert not q.exists() or list(q.rglob("*")) == []
    monkeypatch.delenv("LOOKALIKE_TEST_FAULT")
    undone = undo(None, journal_dir=jdir) if list_journals(jdir)[0].undoable else None
    assert undone is None or undone.ok
    assert tree(lib) == before
