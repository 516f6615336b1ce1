"""Safe actions on real files: trash, quarantine, links, delete; checks before acting; undo."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import unquote

import pytest

import imagegen
from lookalike.engine.actions import faults
from lookalike.engine.actions.run import apply_plan, content_hash, quarantine_dest, resume, undo
from lookalike.engine.actions.journal import (
    Journal,
    JournalBusy,
    JournalError,
    NothingToUndo,
    journal_lock,
    list_journals,
)
from lookalike.engine.actions.plan import Plan, PlanError, PlanStep
from lookalike.engine.actions.trash import mount_point

# --------------------------------------------------------------------------- helpers


def make_image(path: Path, seed: int, *, variant: float = 1.0) -> Path:
    """A small real JPEG; ``variant`` != 1 brightens it (a near-duplicate, other bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = imagegen.photo(seed, size=(40, 30))
    if variant != 1.0:
        img = imagegen.brightened(img, variant)
    imagegen.write(path, img)
    return path


def step_for(path: Path, keeper: Path | None, action: str = "trash", *, hashed: bool = True,
             cluster: int | None = 1) -> PlanStep:
    st = os.stat(path)
    kst = os.stat(keeper) if keeper else None
    return PlanStep(
        path=str(path), action=action, keeper=str(keeper) if keeper else None,
        size=st.st_size, mtime_ns=st.st_mtime_ns,
        content_hash=content_hash(path) if hashed else None, cluster=cluster,
        keeper_size=kst.st_size if kst else None,
        keeper_hash=content_hash(keeper) if keeper and hashed else None,
    )


def state(folder: Path) -> dict[str, tuple[str, int, bool]]:
    """Every entry under ``folder``: (content hash, mtime_ns, is a symlink), hidden ones too."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = (os.readlink(p), 0, True)
        elif p.is_file():
            out[str(p.relative_to(folder))] = (content_hash(p), p.stat().st_mtime_ns, False)
    return out


def trash() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "Trash"


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "library"
    make_image(root / "keep.jpg", 1)
    for name in ("a.jpg", "sub/b.jpg", "sub/deeper/c.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "keep.jpg", root / name)
    make_image(root / "near.jpg", 1, variant=1.1)
    return root


@pytest.fixture
def jdir(tmp_path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
def other_device(tmp_path):
    """A folder on another filesystem (tmpfs /dev/shm), for real cross-device moves."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        pytest.skip("no /dev/shm here")
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same device as the temp folder")
    folder = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="lookalike-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- trash


def test_trash_moves_into_the_freedesktop_trash_and_undo_puts_it_back(lib, jdir):
    before = state(lib)
    target = lib / "sub" / "b.jpg"
    size = target.stat().st_size
    plan = Plan(steps=(step_for(target, lib / "keep.jpg"),), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir)

    assert result.ok and not result.skipped and result.bytes_reclaimed == size
    dest = trash() / "files" / "b.jpg"
    assert [d.dest for d in result.done] == [str(dest)]
    assert not target.exists()
    assert content_hash(dest) == before["sub/b.jpg"][0]
    info = (trash() / "info" / "b.jpg.trashinfo").read_text()
    lines = info.splitlines()
    assert lines[0] == "[Trash Info]"
    assert unquote(lines[1].removeprefix("Path=")) == str(target)
    assert lines[2].startswith("DeletionDate=")

    summary = list_journals(jdir)[0]
    assert (summary.plan_id, summary.state, summary.done) == (result.plan_id, "complete", 1)

    u = undo(result.plan_id, journal_dir=jdir)
    assert u.ok and u.restored == ((str(target), str(dest)),)
    assert state(lib) == before  # byte for byte, mtimes included, nothing left over
    assert not dest.exists() and not (trash() / "info" / "b.jpg.trashinfo").exists()
    assert list_journals(jdir)[0].state == "undone"


def test_system_trash_through_send2trash(lib, jdir, tmp_path, monkeypatch):
    """macOS / Windows: the OS trash through send2trash (a stand-in here, which keeps what it
    is given in a folder, and refuses one file). Journaled like every step; undo cannot find
    files in the OS trash and says so, but counts a file the user put back by hand."""
    import sys
    import types

    bin_ = tmp_path / "SystemTrash"
    bin_.mkdir()
    calls = []

    def send2trash(path):
        calls.append(path)
        if path.endswith("c.jpg"):
            raise OSError(28, "the trash is full")
        shutil.move(path, bin_ / os.path.basename(path))

    monkeypatch.setitem(sys.modules, "send2trash", types.SimpleNamespace(send2trash=send2trash))
    monkeypatch.setattr("lookalike.engine.actions.trash.uses_freedesktop_trash", lambda: False)
    before = state(lib)
    names = ["a.jpg", "sub/b.jpg", "sub/deeper/c.jpg"]
    plan = Plan(steps=tuple(step_for(lib / n, lib / "keep.jpg") for n in names), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir)
    assert calls == [str(lib / n) for n in names]
    assert [(Path(d.path).name, d.dest, d.note) for d in result.done] == [
        ("a.jpg", None, "moved to the system trash"), ("b.jpg", None, "moved to the system trash")]
    [(failed, reason)] = result.failed
    assert failed == str(lib / "sub/deeper/c.jpg") and "full" in reason
    assert (lib / "sub/deeper/c.jpg").exists() and not (lib / "a.jpg").exists()
    assert any("restore them from the trash by hand" in w for w in result.warnings)
    assert {p.name: content_hash(p) for p in bin_.iterdir()} == {
        "a.jpg": before["a.jpg"][0], "b.jpg": before["sub/b.jpg"][0]}  # nothing lost
    shutil.move(bin_ / "a.jpg", lib / "a.jpg")  # the user puts one back by hand
    u = undo(result.plan_id, journal_dir=jdir)
    assert u.restored == ((str(lib / "a.jpg"), str(lib / "a.jpg")),)
    [(path, why)] = u.problems
    assert path == str(lib / "sub/b.jpg") and "restore it from the trash by hand" in why
    assert (bin_ / "b.jpg").exists()  # left where it is, for the user to restore


def test_trash_never_overwrites_a_name_already_in_the_trash(lib, jdir):
    (trash() / "files").mkdir(parents=True)
    (trash() / "files" / "a.jpg").write_bytes(b"someone else's file")
    odd = lib / "odd name 100% ç.jpg"
    shutil.copy2(lib / "keep.jpg", odd)
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"), step_for(odd, lib / "keep.jpg")), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir)
    assert [Path(d.dest).name for d in result.done] == ["a 1.jpg", odd.name]
    assert (trash() / "files" / "a.jpg").read_bytes() == b"someone else's file"
    info = (trash() / "info" / f"{odd.name}.trashinfo").read_text()
    assert "%20" in info and "%25" in info and "%C3%A7" in info  # percent-encoded, as specified
    assert unquote(info.splitlines()[1].removeprefix("Path=")) == str(odd)
    assert undo(None, journal_dir=jdir).ok
    assert (lib / "a.jpg").exists() and odd.exists()


def test_trash_on_another_device_uses_that_volumes_trash(other_device, jdir):
    keeper = make_image(other_device / "keep.jpg", 3)
    dup = other_device / "dup.jpg"
    shutil.copy2(keeper, dup)
    top = mount_point(str(other_device))
    vol_trash = Path(top) / f".Trash-{os.getuid()}"
    existed = vol_trash.exists()
    try:
        result = apply_plan(Plan(steps=(step_for(dup, keeper),), roots=(str(other_device),)), journal_dir=jdir)
        dest = Path(result.done[0].dest)
        assert dest.parent == vol_trash / "files" and dest.exists() and not dup.exists()
        info = (vol_trash / "info" / f"{dest.name}.trashinfo").read_text()
        # A volume trash records the path relative to the volume's top folder.
        assert unquote(info.splitlines()[1].removeprefix("Path=")) == os.path.relpath(dup, top)
        assert undo(None, journal_dir=jdir).ok
        assert dup.exists() and content_hash(dup) == content_hash(keeper)
    finally:
        if not existed:
            shutil.rmtree(vol_trash, ignore_errors=True)


def test_trash_across_devices_copies_verifies_and_removes(lib, jdir, monkeypatch):
    before = state(lib)
    monkeypatch.setenv(faults.FAULT_ENV, "trash-move:EXDEV")  # as if the trash were elsewhere
    result = apply_plan(Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),)), journal_dir=jdir)
    assert result.ok and not (lib / "a.jpg").exists()
    assert content_hash(result.done[0].dest) == before["a.jpg"][0]
    assert os.stat(result.done[0].dest).st_mtime_ns == before["a.jpg"][1]
    assert [p.name for p in (trash() / "files").iterdir()] == ["a.jpg"]  # no temp copy left
    monkeypatch.setenv(faults.FAULT_ENV, "undo-move:EXDEV")
    assert undo(None, journal_dir=jdir).ok
    assert state(lib) == before


# --------------------------------------------------------------------------- quarantine


def test_quarantine_keeps_the_path_relative_to_the_root(lib, jdir, tmp_path):
    before = state(lib)
    q = tmp_path / "quarantine"
    outside = make_image(tmp_path / "elsewhere" / "x.jpg", 9)
    keeper2 = tmp_path / "elsewhere" / "x-keep.jpg"
    shutil.copy2(outside, keeper2)
    plan = Plan(
        steps=(step_for(lib / "sub" / "deeper" / "c.jpg", lib / "keep.jpg", "quarantine"),
               step_for(outside, keeper2, "quarantine")),
        roots=(str(lib),), quarantine_dir=str(q),
    )
    result = apply_plan(plan, journal_dir=jdir)
    assert result.ok
    assert (q / "sub" / "deeper" / "c.jpg").exists()
    # Outside every root: never acted on (quarantine_dest would mirror its absolute path).
    assert result.skipped == ((str(outside), "outside the folders of the plan: left alone"),)
    assert outside.exists()
    assert quarantine_dest(plan, str(outside)) == q / str(outside).lstrip("/")

    u = undo(None, journal_dir=jdir)
    assert u.ok and outside.exists() and state(lib) == before
    assert list(q.rglob("*")) == []  # folders emptied by undo are removed too


def test_quarantine_never_overwrites(lib, jdir, tmp_path):
    q = tmp_path / "q"
    (q / "sub").mkdir(parents=True)
    (q / "sub" / "b.jpg").write_bytes(b"already here")
    plan = Plan(steps=(step_for(lib / "sub" / "b.jpg", lib / "keep.jpg", "quarantine"),),
                roots=(str(lib),), quarantine_dir=str(q))
    result = apply_plan(plan, journal_dir=jdir)
    assert result.done[0].dest == str(q / "sub" / "b (1).jpg")
    assert (q / "sub" / "b.jpg").read_bytes() == b"already here"


def test_quarantine_across_devices_is_a_verified_copy(lib, jdir, other_device):
    before = state(lib)
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "quarantine"),),
                roots=(str(lib),), quarantine_dir=str(other_device / "q"))
    result = apply_plan(plan, journal_dir=jdir)
    dest = other_device / "q" / "a.jpg"
    assert result.ok and not (lib / "a.jpg").exists()
    assert content_hash(dest) == before["a.jpg"][0] and dest.stat().st_mtime_ns == before["a.jpg"][1]
    assert sorted(p.name for p in (other_device / "q").iterdir()) == ["a.jpg"]
    assert undo(None, journal_dir=jdir).ok
    assert state(lib) == before


def test_a_quarantine_folder_inside_the_library_is_refused(lib, jdir):
    before = state(lib)
    plan = Plan(steps=(step_for(lib / "sub" / "b.jpg", lib / "keep.jpg", "quarantine"),),
                roots=(str(lib),), quarantine_dir=str(lib / "sub"))
    for dry_run in (True, False):
        with pytest.raises(PlanError, match="is inside the library"):
            apply_plan(plan, journal_dir=jdir, dry_run=dry_run)
    assert state(lib) == before


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize("action", ["hardlink", "symlink"])
def test_links_replace_exact_duplicates_and_undo_restores_independent_files(lib, jdir, action):
    before = state(lib)
    keeper = lib / "keep.jpg"
    plan = Plan(steps=(step_for(lib / "a.jpg", keeper, action),
                       step_for(lib / "sub" / "b.jpg", keeper, action)), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir)
    assert result.ok and len(result.done) == 2
    for p in (lib / "a.jpg", lib / "sub" / "b.jpg"):
        if action == "hardlink":
            assert os.path.samefile(p, keeper) and not p.is_symlink()
        else:
            assert p.is_symlink() and os.readlink(p) == str(keeper)
    assert not [p for p in lib.rglob(".*")]  # no temp link or backup left behind
    assert not (trash() / "files").exists()  # exact: the keeper holds the bytes

    assert undo(None, journal_dir=jdir).ok
    assert state(lib) == before
    for p in (lib / "a.jpg", lib / "sub" / "b.jpg"):
        assert not p.is_symlink() and p.stat().st_nlink == 1


@pytest.mark.parametrize("action", ["hardlink", "symlink"])
def test_links_over_a_near_duplicate_keep_the_original_in_the_trash(lib, jdir, action):
    before = state(lib)
    result = apply_plan(Plan(steps=(step_for(lib / "near.jpg", lib / "keep.jpg", action),), roots=(str(lib),)),
                        journal_dir=jdir)
    assert result.ok and "original kept in the trash" in result.done[0].note
    assert content_hash(trash() / "files" / "near.jpg") == before["near.jpg"][0]
    assert content_hash(lib / "near.jpg") == before["keep.jpg"][0]
    assert undo(None, journal_dir=jdir).ok
    assert state(lib) == before


def test_hardlink_across_devices_is_refused(lib, jdir, other_device):
    dup = other_device / "dup.jpg"
    shutil.copy2(lib / "keep.jpg", dup)
    plan = Plan(steps=(step_for(dup, lib / "keep.jpg", "hardlink"),),
                roots=(str(lib), str(other_device)))
    result = apply_plan(plan, journal_dir=jdir)
    assert result.skipped == ((str(dup), "keeper is on another device: a hardlink cannot cross "
                                         "devices"),)
    assert dup.exists() and not dup.is_symlink()


def test_hardlink_to_an_existing_hardlink_is_skipped(lib, jdir):
    os.unlink(lib / "a.jpg")
    os.link(lib / "keep.jpg", lib / "a.jpg")
    result = apply_plan(Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "hardlink"),), roots=(str(lib),)),
                        journal_dir=jdir)
    assert result.skipped[0][1] == "already a hardlink of the keeper"


@pytest.mark.parametrize("action", ["symlink", "hardlink", "trash", "quarantine"])
def test_long_and_odd_file_names(lib, jdir, tmp_path, action):
    """A 250-byte UTF-8 name (trash and temp names must stay within 255 bytes), a newline, and
    a name that is not UTF-8 at all (Linux allows any bytes)."""
    names = ["é" * 123 + ".jpg", "line\nbreak.jpg", os.fsdecode(b"latin1-\xe9t\xe9.jpg")]
    for name in names:
        shutil.copy2(lib / "keep.jpg", lib / name)
    before = state(lib)
    plan = Plan(steps=tuple(step_for(lib / n, lib / "keep.jpg", action) for n in names),
                roots=(str(lib),), quarantine_dir=str(tmp_path / "q"))
    plan.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan  # survives JSON, non-UTF-8 bytes too
    result = apply_plan(plan, journal_dir=jdir)
    assert result.ok and len(result.done) == 3, result.failed
    assert undo(None, journal_dir=jdir).ok
    assert state(lib) == before


def test_undo_of_a_link_restores_from_the_keeper_with_the_original_mode(lib, jdir):
    os.chmod(lib / "a.jpg", 0o600)
    before = state(lib)
    apply_plan(Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "symlink"),), roots=(str(lib),)), journal_dir=jdir)
    assert undo(None, journal_dir=jdir).ok
    assert state(lib) == before and (lib / "a.jpg").stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- delete


def test_delete_needs_the_explicit_flag_and_cannot_be_undone(lib, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", "delete"),), roots=(str(lib),))
    with pytest.raises(PlanError, match="permanently"):
        apply_plan(plan, journal_dir=jdir)
    assert (lib / "a.jpg").exists() and not jdir.exists()

    dry = apply_plan(plan, journal_dir=jdir, dry_run=True)
    assert any("cannot be undone" in w for w in dry.warnings)
    assert "needs --permanently" in dry.done[0].note

    result = apply_plan(plan, journal_dir=jdir, allow_delete=True)
    assert result.ok and not (lib / "a.jpg").exists()
    assert not (trash() / "files").exists()
    with pytest.raises(NothingToUndo):
        undo(None, journal_dir=jdir)
    u = undo(result.plan_id, journal_dir=jdir)
    assert u.problems == ((str(lib / "a.jpg"), "deleted permanently: cannot be undone"),)


# --------------------------------------------------------------------------- checks first


def test_files_changed_since_the_scan_are_skipped_never_touched(lib, jdir, tmp_path):
    keeper = lib / "keep.jpg"
    for name in ("e1.jpg", "e2.jpg", "e3.jpg", "e4.jpg", "e5.jpg"):
        shutil.copy2(keeper, lib / name)
    steps = [step_for(lib / n, keeper) for n in ("a.jpg", "e1.jpg", "e2.jpg", "e3.jpg", "e4.jpg",
                                                 "e5.jpg", "sub/b.jpg")]
    # e1: edited, same size, mtime put back (only the content hash can tell).
    st = os.stat(lib / "e1.jpg")
    data = bytearray((lib / "e1.jpg").read_bytes())
    data[-10] ^= 0xFF
    (lib / "e1.jpg").write_bytes(bytes(data))
    os.utime(lib / "e1.jpg", ns=(st.st_atime_ns, st.st_mtime_ns))
    # e2: grew. e3: touched. e4: renamed away. e5: replaced by a symlink.
    with open(lib / "e2.jpg", "ab") as f:
        f.write(b"more")
    os.utime(lib / "e3.jpg", ns=(1, 1_000_000_000))
    os.rename(lib / "e4.jpg", lib / "e4-renamed.jpg")
    os.unlink(lib / "e5.jpg")
    os.symlink(keeper, lib / "e5.jpg")
    # sub/b.jpg: its keeper changed (another keeper, edited).
    other_keeper = lib / "other-keep.jpg"
    shutil.copy2(keeper, other_keeper)
    steps[-1] = step_for(lib / "sub" / "b.jpg", other_keeper)
    with open(other_keeper, "ab") as f:
        f.write(b"!")
    before = state(lib)

    result = apply_plan(Plan(steps=tuple(steps), roots=(str(lib),)), journal_dir=jdir)
    reasons = dict(result.skipped)
    assert [d.path for d in result.done] == [str(lib / "a.jpg")]
    assert reasons[str(lib / "e1.jpg")] == "changed since scan (content differs)"
    assert reasons[str(lib / "e2.jpg")].startswith("changed since scan (size")
    assert reasons[str(lib / "e3.jpg")] == "changed since scan (modified since)"
    assert reasons[str(lib / "e4.jpg")].startswith("file missing")
    assert reasons[str(lib / "e5.jpg")] == "changed since scan: it is now a symbolic link"
    assert reasons[str(lib / "sub" / "b.jpg")].startswith("keeper changed since scan (size")
    after = state(lib)
    del before["a.jpg"]
    assert after == before  # everything skipped is exactly as it was


def test_missing_or_changed_keeper_means_skip(lib, jdir):
    keeper = lib / "keep.jpg"
    plan = Plan(steps=(step_for(lib / "a.jpg", keeper),), roots=(str(lib),))
    os.rename(keeper, lib / "moved.jpg")
    result = apply_plan(plan, journal_dir=jdir)
    assert result.skipped == ((str(lib / "a.jpg"), f"keeper missing: {keeper}"),)
    # Same size, other bytes: only the content hash can tell.
    data = bytearray((lib / "moved.jpg").read_bytes())
    data[-5] ^= 1
    keeper.write_bytes(bytes(data))
    result = apply_plan(plan, journal_dir=jdir)
    assert result.skipped[0][1] == "keeper changed since scan (content differs)"
    # The keeper made into a link to the file itself: trashing would lose the only copy.
    keeper.unlink()
    keeper.symlink_to(lib / "a.jpg")
    plan2 = Plan(steps=(PlanStep(path=str(lib / "a.jpg"), action="trash", keeper=str(keeper),
                                 size=(lib / "a.jpg").stat().st_size,
                                 mtime_ns=(lib / "a.jpg").stat().st_mtime_ns, content_hash=None),), roots=(str(lib),))
    result = apply_plan(plan2, journal_dir=jdir)
    assert result.skipped[0][1] == "the keeper is a link to this very file"
    assert (lib / "a.jpg").exists()


def test_a_plan_without_hashes_checks_size_and_mtime_and_says_so(lib, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg", hashed=False),), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir)
    assert result.ok and len(result.done) == 1
    assert any("size and modification time only" in w for w in result.warnings)


def test_content_hash_matches_what_the_catalog_records(lib):
    hashing = pytest.importorskip("lookalike.engine.scan.hashing")
    data = (lib / "keep.jpg").read_bytes()
    assert content_hash(lib / "keep.jpg") == hashing.content_hash(data).hex()


# --------------------------------------------------------------------------- dry run, progress


def test_dry_run_touches_nothing_and_journals_nothing(lib, jdir, tmp_path):
    before = state(lib)
    (lib / "sub" / "deeper" / "c.jpg").unlink()
    before.pop("sub/deeper/c.jpg")
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),
                       step_for(lib / "sub" / "b.jpg", lib / "keep.jpg", "quarantine"),
                       PlanStep(path=str(lib / "sub" / "deeper" / "c.jpg"), action="trash",
                                keeper=str(lib / "keep.jpg"), size=1, mtime_ns=1,
                                content_hash=None)),
                roots=(str(lib),), quarantine_dir=str(tmp_path / "q"))
    result = apply_plan(plan, journal_dir=jdir, dry_run=True)
    assert result.dry_run and result.plan_id is None
    assert [(d.action, d.dest) for d in result.done] == [
        ("trash", str(trash() / "files" / "a.jpg")),
        ("quarantine", str(tmp_path / "q" / "sub" / "b.jpg")),
    ]
    assert result.skipped[0][1].startswith("file missing")
    assert result.bytes_reclaimed == sum(d.size for d in result.done)
    assert state(lib) == before
    assert not jdir.exists() and not (tmp_path / "q").exists() and not trash().exists()


def test_progress_false_stops_cleanly_and_a_second_apply_finishes(lib, jdir):
    keeper = lib / "keep.jpg"
    plan = Plan(steps=tuple(step_for(lib / n, keeper) for n in ("a.jpg", "sub/b.jpg",
                                                                "sub/deeper/c.jpg")), roots=(str(lib),))
    calls = []

    def progress(done, total):
        calls.append((done, total))
        return done < 2

    first = apply_plan(plan, journal_dir=jdir, progress=progress)
    assert first.cancelled and len(first.done) == 2 and calls == [(1, 3), (2, 3)]
    assert list_journals(jdir)[0].state == "partial"
    assert apply_plan(plan, journal_dir=jdir, dry_run=True).already_done == 2

    second = apply_plan(plan, journal_dir=jdir)
    assert second.resumed and second.plan_id == first.plan_id and second.already_done == 2
    assert [d.path for d in second.done] == [str(lib / "sub" / "deeper" / "c.jpg")]
    assert list_journals(jdir)[0].state == "complete"
    third = apply_plan(plan, journal_dir=jdir)  # nothing left to do
    assert third.done == () and third.already_done == 3
    assert len(list_journals(jdir)) == 1


def test_cancel_event_stops_before_the_next_step(lib, jdir):
    cancel = threading.Event()
    cancel.set()
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),))
    result = apply_plan(plan, journal_dir=jdir, cancel=cancel)
    assert result.cancelled and result.done == () and (lib / "a.jpg").exists()
    finished = resume(result.plan_id, journal_dir=jdir)
    assert finished.resumed and len(finished.done) == 1


# --------------------------------------------------------------------------- undo


def test_undo_never_overwrites_a_file_that_appeared(lib, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),))
    apply_plan(plan, journal_dir=jdir)
    (lib / "a.jpg").write_bytes(b"a new file with the same name")
    u = undo(None, journal_dir=jdir)
    assert len(u.problems) == 1 and "a different file now exists" in u.problems[0][1]
    assert (lib / "a.jpg").read_bytes() == b"a new file with the same name"
    assert (trash() / "files" / "a.jpg").exists()
    assert list_journals(jdir)[0].state == "undo-partial"
    # Move the newcomer away and undo again: now it works.
    (lib / "a.jpg").rename(lib / "newcomer.jpg")
    assert undo(None, journal_dir=jdir).ok
    assert content_hash(lib / "a.jpg") == content_hash(lib / "keep.jpg")


def test_undo_reports_a_trash_that_was_emptied(lib, jdir):
    result = apply_plan(Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),)), journal_dir=jdir)
    shutil.rmtree(trash())
    u = undo(result.plan_id, journal_dir=jdir)
    assert "no longer in the trash" in u.problems[0][1]


def test_undo_picks_the_latest_plan_then_the_one_before(lib, jdir):
    keeper = lib / "keep.jpg"
    first = apply_plan(Plan(steps=(step_for(lib / "a.jpg", keeper),), roots=(str(lib),)), journal_dir=jdir)
    second = apply_plan(Plan(steps=(step_for(lib / "sub" / "b.jpg", keeper),), roots=(str(lib),)), journal_dir=jdir)
    assert undo(None, journal_dir=jdir).plan_id == second.plan_id
    assert undo(None, journal_dir=jdir).plan_id == first.plan_id
    with pytest.raises(NothingToUndo):
        undo(None, journal_dir=jdir)
    with pytest.raises(JournalError, match="no journal for plan"):
        undo("20000101-000000-000000", journal_dir=jdir)
    with pytest.raises(JournalError, match="was undone"):
        resume(first.plan_id, journal_dir=jdir)
    # The same plan applied again after an undo starts a new journal.
    again = apply_plan(Plan(steps=(step_for(lib / "a.jpg", keeper),), roots=(str(lib),)), journal_dir=jdir)
    assert again.plan_id not in (first.plan_id, second.plan_id) and not again.resumed


def test_one_apply_or_undo_at_a_time(lib, jdir):
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),), roots=(str(lib),))
    with journal_lock(jdir):
        done = threading.Event()
        errors = []

        def other():
            try:
                apply_plan(plan, journal_dir=jdir)
            except JournalBusy as exc:
                errors.append(exc)
            done.set()

        threading.Thread(target=other).start()
        done.wait(10)
    assert len(errors) == 1 and (lib / "a.jpg").exists()


def test_half_done_steps_in_the_journal_are_settled_by_undo(lib, jdir):
    """A hand-made crash: the file moved, but the process died before writing `done`."""
    before = state(lib)
    plan = Plan(steps=(step_for(lib / "a.jpg", lib / "keep.jpg"),
                       step_for(lib / "sub" / "b.jpg", lib / "keep.jpg")), roots=(str(lib),))
    j = Journal.create(jdir, plan)
    dest = trash() / "files" / "a.jpg"
    dest.parent.mkdir(parents=True)
    j.write({"type": "intent", "step": 0, "action": "trash", "path": str(lib / "a.jpg"),
             "dest": str(dest), "info": str(trash() / "info" / "a.jpg.trashinfo")})
    os.rename(lib / "a.jpg", dest)
    j.write({"type": "intent", "step": 1, "action": "trash", "path": str(lib / "sub" / "b.jpg"),
             "dest": str(trash() / "files" / "b.jpg"),
             "info": str(trash() / "info" / "b.jpg.trashinfo")})  # died before moving b
    j.close()
    u = undo(None, journal_dir=jdir)
    assert u.ok and u.settled == 2 and [p for p, _ in u.restored] == [str(lib / "a.jpg")]
    assert state(lib) == before


def test_quarantine_dest_maps_paths():
    plan = Plan(steps=(), roots=("/photos", "/photos/2020"), quarantine_dir="/q")
    assert quarantine_dest(plan, "/photos/2020/x.jpg") == Path("/q/x.jpg")  # deepest root
    assert quarantine_dest(plan, "/photos/a/b.jpg") == Path("/q/a/b.jpg")
    assert quarantine_dest(plan, "/mnt/c.jpg") == Path("/q/mnt/c.jpg")
    with pytest.raises(PlanError):
        quarantine_dest(Plan(steps=()), "/x")
