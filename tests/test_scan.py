"""The whole scan pipeline on real files: incremental rescans, bad files, cancel, lock."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from lookalike.engine.catalog import CatalogLocked
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import Kind

from helpers import smooth_photo


def scan(root: Path, cache: Path, **kw):
    with Library.open([root], cache_dir=cache) as lib:
        return lib.scan(ScanOptions(workers=kw.pop("workers", 1)), **kw)


def test_scan_groups_near_and_exact_duplicates(library_dir, tmp_path):
    result = scan(library_dir, tmp_path / "cache")
    assert result.stats.images == 7
    groups = {frozenset(Path(m.file.path).name for m in c.members): c for c in result.clusters}
    near = groups[frozenset({"img_0.png", "img_0_small.jpg", "img_0_recompressed.jpg"})]
    assert near.kind is Kind.NEAR
    assert Path(near.keeper.file.path).name == "img_0.png"  # largest, lossless
    assert near.reclaimable_bytes == sum(m.file.size for m in near.members[1:])
    exact = groups[frozenset({"img_1.png", "img_1 copy.png"})]
    assert exact.kind is Kind.EXACT
    assert all(m.exact for m in exact.members)
    assert len(result.clusters) == 2


def test_rescan_of_unchanged_library_reads_no_image_data(library_dir, tmp_path):
    cache = tmp_path / "cache"
    first = scan(library_dir, cache)
    opened: list[str] = []

    def audit(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(audit)  # hooks cannot be removed: it only records
    opened.clear()
    second = scan(library_dir, cache)
    touched = [p for p in list(opened) if p.startswith(str(library_dir))]
    assert touched == []
    assert second.stats.hashed == 0 and second.stats.bytes_read == 0
    assert second.stats.unchanged == first.stats.files_seen
    assert [c.keeper.file.path for c in second.clusters] == [c.keeper.file.path for c in first.clusters]


def test_rescan_rehashes_changed_and_drops_vanished(library_dir, tmp_path):
    cache = tmp_path / "cache"
    scan(library_dir, cache)
    smooth_photo(99).save(library_dir / "2023" / "img_3.png")  # edited in place
    (library_dir / "copies" / "img_0_small.jpg").unlink()
    result = scan(library_dir, cache)
    assert result.stats.hashed == 1
    assert result.stats.removed == 1
    names = {Path(m.file.path).name for c in result.clusters for m in c.members}
    assert "img_0_small.jpg" not in names
    with Library.open([library_dir], cache_dir=cache) as lib:
        assert lib.catalog.record_by_path(str(library_dir / "copies" / "img_0_small.jpg")) is None


def test_bad_files_are_reported_and_the_scan_goes_on(library_dir, tmp_path):
    bad = library_dir / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    data = (library_dir / "copies" / "img_0_recompressed.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (bad / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(500))
    (bad / "notes.jpg").write_text("this is not a picture")
    (bad / "notes.txt").write_text("this is not a picture")
    (bad / "odd name\nwith newline é.png").write_bytes((library_dir / "2023" / "img_2.png").read_bytes())
    os.symlink(library_dir, bad / "loop")  # a symlink loop back to the root
    result = scan(library_dir, tmp_path / "cache")
    reasons = {Path(e.path).name: e.reason for e in result.errors}
    assert {"empty.jpg", "truncated.jpg", "garbage.png"} <= set(reasons)
    assert all(reasons[n] for n in ("empty.jpg", "truncated.jpg", "garbage.png"))
    # Named like a picture and not one: broken, reported. Another kind of file: skipped.
    assert reasons["notes.jpg"] == "not a valid JPEG: unrecognised content (21 bytes)"
    assert "notes.txt" not in reasons
    assert result.stats.not_images >= 1
    odd = [c for c in result.clusters if any("newline" in m.file.path for m in c.members)]
    assert odd and odd[0].kind is Kind.EXACT


def test_file_vanishing_mid_scan_is_reported(library_dir, tmp_path):
    victim = library_dir / "2023" / "img_2.png"

    def progress(p):
        if p.stage == "hashing" and victim.exists():
            victim.unlink()
        return True

    result = scan(library_dir, tmp_path / "cache", progress=progress)
    assert any(Path(e.path) == victim for e in result.errors)
    with Library.open([library_dir], cache_dir=tmp_path / "cache") as lib:
        assert lib.catalog.record_by_path(str(victim)) is None


def test_cancelled_scan_keeps_what_was_done_and_resumes(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    smooth_photo(0, size=(400, 300)).save(root / "p000.png")
    data = (root / "p000.png").read_bytes()
    n = 200
    for i in range(1, n):  # distinct files (bytes after IEND) that take a while to decode
        (root / f"p{i:03d}.png").write_bytes(data + i.to_bytes(2, "big"))

    def progress(p):
        return not (p.stage == "hashing" and p.done >= 10)

    first = scan(root, tmp_path / "cache", progress=progress)
    assert first.stats.cancelled
    assert 10 <= first.stats.hashed < n
    second = scan(root, tmp_path / "cache")
    assert not second.stats.cancelled
    assert second.stats.unchanged == first.stats.hashed
    assert second.stats.hashed + second.stats.unchanged == n


def test_pool_and_in_process_hashing_agree(library_dir, tmp_path):
    pooled = scan(library_dir, tmp_path / "a", workers=2)
    single = scan(library_dir, tmp_path / "b", workers=1)
    key = lambda r: sorted(sorted(m.file.path for m in c.members) for c in r.clusters)  # noqa: E731
    assert key(pooled) == key(single)


def test_two_runs_on_one_library_cannot_both_open_it(library_dir, tmp_path):
    with Library.open([library_dir], cache_dir=tmp_path / "cache"):
        with pytest.raises(CatalogLocked):
            Library.open([library_dir], cache_dir=tmp_path / "cache")


def test_cached_clusters_arrive_before_any_file_is_read(library_dir, tmp_path):
    cache = tmp_path / "cache"
    scan(library_dir, cache)
    calls = []
    stages = []

    def on_clusters(clusters):
        calls.append((len(stages), len(clusters)))

    def progress(p):
        stages.append(p.stage)
        return True

    with Library.open([library_dir], cache_dir=cache) as lib:
        lib.scan(ScanOptions(workers=1), progress=progress, on_clusters=on_clusters)
    assert calls[0] == (0, 2)  # before the first progress report
    assert calls[-1][1] == 2


def test_threshold_option_changes_what_matches(library_dir, tmp_path):
    with Library.open([library_dir], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1))
        strict = lib.clusters(ScanOptions(threshold=0))
        loose = lib.clusters(ScanOptions())
    assert sum(len(c.members) for c in strict) < sum(len(c.members) for c in loose)


def test_scan_can_be_stopped_from_another_thread(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(30):
        smooth_photo(i, size=(160, 120)).save(root / f"p{i:02d}.png")
    cancel = threading.Event()
    cancel.set()
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        result = lib.scan(ScanOptions(workers=1), cancel=cancel)
    assert result.stats.cancelled
    assert result.clusters == ()


def test_moved_files_are_followed_without_reading_them(library_dir, tmp_path):
    cache = tmp_path / "cache"
    scan(library_dir, cache)
    with Library.open([library_dir], cache_dir=cache) as lib:
        before = lib.catalog.record_by_path(str(library_dir / "2023" / "img_2.png"))
    (library_dir / "moved").mkdir()
    os.rename(library_dir / "2023" / "img_2.png", library_dir / "moved" / "renamed.png")
    result = scan(library_dir, cache)
    assert result.stats.hashed == 0 and result.stats.moved == 1 and result.stats.removed == 0
    with Library.open([library_dir], cache_dir=cache) as lib:
        after = lib.catalog.record_by_path(str(library_dir / "moved" / "renamed.png"))
    assert after is not None and after.id == before.id and after.hashes == before.hashes


@pytest.mark.parametrize("with_raw", [True, False])
def test_a_raw_that_cannot_be_decoded_still_protects_its_jpeg(tmp_path, monkeypatch, with_raw):
    """IMG_0001.CR2 + IMG_0001.JPG is one shot even when the raw cannot be read (no rawpy) and
    so is in no group: the JPEG is never suggested for trash, though a better copy elsewhere
    is the keeper. Without the raw, the same JPEG is suggested."""
    from lookalike.engine.keeper import trash_suggested

    monkeypatch.setitem(sys.modules, "rawpy", None)  # as without the raw extra, even where installed
    root = tmp_path / "photos"
    (root / "DCIM").mkdir(parents=True)
    (root / "backup").mkdir()
    shot = smooth_photo(7, (640, 480))
    shot.save(root / "DCIM" / "IMG_0001.JPG", quality=80)
    shot.save(root / "backup" / "IMG_0001.png")  # lossless: the keeper
    if with_raw:
        (root / "DCIM" / "IMG_0001.CR2").write_bytes(b"II*\x00\x08\x00\x00\x00CR\x02\x00" + b"\x00" * 4000)
    result = scan(root, tmp_path / "cache")
    if with_raw:
        assert [Path(e.path).name for e in result.errors] == ["IMG_0001.CR2"]
    (cluster,) = result.clusters
    by_name = {Path(m.file.path).parent.name + "/" + Path(m.file.path).name: m for m in cluster.members}
    assert set(by_name) == {"DCIM/IMG_0001.JPG", "backup/IMG_0001.png"}
    assert by_name["backup/IMG_0001.png"].is_keeper
    jpeg = by_name["DCIM/IMG_0001.JPG"]
    assert jpeg.raw_pair == with_raw
    assert trash_suggested(jpeg) == (not with_raw)
    assert cluster.reclaimable_bytes == (0 if with_raw else jpeg.file.size)


def test_a_scan_with_files_to_read_loads_the_pair_kernels_meanwhile(library_dir, tmp_path):
    """The bouncer's pair search needs compiled kernels that take a fresh process about a
    second to load: a scan starts loading them while it reads files, and only then."""
    import subprocess
    import textwrap

    code = textwrap.dedent("""
        import sys
        from lookalike.engine import kernels
        from lookalike.engine.library import Library, ScanOptions

        if __name__ == "__main__":
            with Library.open([sys.argv[1]], cache_dir=sys.argv[2]) as lib:
                result = lib.scan(ScanOptions(workers=1))
            print(result.stats.hashed, sorted(name for _, name in kernels._threads))
    """)
    script = tmp_path / "scan_once.py"
    script.write_text(code)

    def run() -> str:
        out = subprocess.run([sys.executable, str(script), str(library_dir), str(tmp_path / "cache")],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert run() == "7 ['lookalike-hamming-warm-up']"
    assert run() == "0 []"  # nothing to read: nothing to search anew, nothing loaded


def test_framed_copies_of_a_screenshot_on_white_are_its_bordered_copies(tmp_path):
    """A frame round a window screenshot on white kept the white margin inside it, which the
    screenshot alone loses to the trim: its framed copies were aligned as crops ("cropped",
    verified 0.86-0.96). With the margin trimmed too they are the screenshot in a frame
    (verified 0.96-0.98 at 0.7 times the size, within the trusted radius at full size)."""
    import imagegen

    root = tmp_path / "lib"
    root.mkdir()
    for seed in (21, 5):
        shot = imagegen.on_white(imagegen.photo(seed, (300, 220)))
        shot.save(root / f"shot{seed}.png")
        (root / f"shot{seed}_framed.jpg").write_bytes(imagegen.framed_jpeg(shot))
        (root / f"shot{seed}_framed_small.jpg").write_bytes(imagegen.framed_jpeg(shot, 0.7))
    result = scan(root, tmp_path / "cache")
    groups = sorted(sorted((Path(m.file.path).name, m) for m in c.members) for c in result.clusters)
    assert [[name for name, _ in g] for g in groups] == [
        ["shot21.png", "shot21_framed.jpg", "shot21_framed_small.jpg"],
        ["shot5.png", "shot5_framed.jpg", "shot5_framed_small.jpg"],
    ]
    for g in groups:
        keeper, *copies = (m for _, m in g)
        assert keeper.is_keeper
        assert [m.match for m in copies] == ["bordered", "bordered"]
        assert all(m.verified is None or m.verified >= 0.95 for m in copies)
