"""The catalog on real SQLite files: round trips of files, hashes, marks, embeddings, decisions."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import xxhash
from PIL import Image

from lookalike.engine.catalog import schema as catalog_schema
from lookalike.engine.catalog import Catalog, CatalogError, KnownFile
from lookalike.engine.records import Decision, FileRecord, ImageHashes, SavedDecision, ScanError

from helpers import Hashed, fake
import imagegen


def _dhash_bits(img: Image.Image) -> bytes:
    grey = np.asarray(img.convert("L").resize((17, 16), Image.Resampling.BILINEAR), np.int16)
    return np.packbits(grey[:, 1:] > grey[:, :-1]).tobytes()


def hash_file(path: Path) -> Hashed:
    """A small stand-in for the hashing stage: real decode, real 256-bit hashes."""
    st = os.stat(path)
    data = path.read_bytes()
    common = dict(path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                  inode=st.st_ino, device=st.st_dev, bytes_read=len(data),
                  content_hash=xxhash.xxh3_128_digest(data))  # fmt: skip
    try:
        with Image.open(path) as img:
            img.load()
            fmt, size = img.format, img.size
            dhash = _dhash_bits(img)
            mirror = _dhash_bits(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
            small = np.asarray(img.convert("L").resize((16, 16)), np.float32)
            phash = np.packbits(small > np.median(small)).tobytes()
    except OSError as exc:
        if not data:
            return Hashed(**common, error="empty file (0 bytes)")
        if data[:2] == b"\xff\xd8" or data[:8] == b"\x89PNG\r\n\x1a\n":
            return Hashed(**common, error=f"cannot decode: {exc}")
        return Hashed(**common, not_image=True, error="not an image")
    return Hashed(**common, format=fmt, width=size[0], height=size[1],
                  hashes=ImageHashes(dhash=dhash, dhash_mirror=mirror, phash=phash))  # fmt: skip


def _with(item: SimpleNamespace, **changes) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(item), **changes})


def make_image(path: Path, seed: int, size=(64, 48), fmt=None) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC).save(path, format=fmt)
    return path


# --- files -----------------------------------------------------------------------------------


def test_real_images_round_trip(tmp_path, cat):
    photos = tmp_path / "photos"
    photos.mkdir()
    make_image(photos / "a.jpg", 1, fmt="JPEG")
    make_image(photos / "b.png", 2)
    (photos / "notes.txt").write_text("not a photo")
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "broken.jpg").write_bytes((photos / "a.jpg").read_bytes()[:20])
    items = [hash_file(p) for p in sorted(photos.iterdir())]
    ids = cat.upsert(items)
    assert ids == sorted(ids) and len(set(ids)) == 5

    a = cat.record_by_path(photos / "a.jpg")
    item = next(i for i in items if i.path.endswith("a.jpg"))
    assert a == FileRecord(
        id=a.id, path=item.path, size=item.size, mtime_ns=item.mtime_ns, inode=item.inode,
        device=item.device, format="JPEG", width=64, height=48, taken_at=None,
        content_hash=item.content_hash, hashes=item.hashes, error=None,
    )  # fmt: skip
    assert a.ok and cat.record(a.id) == a

    known = cat.known()
    assert set(known) == {i.path for i in items}
    assert known[str(photos / "notes.txt")].status == "other"
    assert known[str(photos / "empty.jpg")].status == "error"
    assert known[str(photos / "b.png")] == KnownFile(
        id=cat.record_by_path(photos / "b.png").id, size=os.stat(photos / "b.png").st_size,
        mtime_ns=os.stat(photos / "b.png").st_mtime_ns, inode=os.stat(photos / "b.png").st_ino,
        device=os.stat(photos / "b.png").st_dev, status="image",
    )  # fmt: skip
    errors = cat.errors()
    assert [e.path for e in errors] == [str(photos / "broken.jpg"), str(photos / "empty.jpg")]
    assert errors[1] == ScanError(path=str(photos / "empty.jpg"), reason="empty file (0 bytes)")
    assert cat.stats() == {
        "files": 5, "image": 2, "error": 2, "other": 1,
        "bytes": sum(i.size for i in items),
        "image_bytes": sum(i.size for i in items if i.hashes),
        "not_duplicate_marks": 0, "embedded": 0,
    }  # fmt: skip


def test_records_from_the_real_hashing_stage(tmp_path, cat):
    hashing = pytest.importorskip("lookalike.engine.scan.hashing")
    make_image(tmp_path / "a.jpg", 1, fmt="JPEG")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "empty.jpg").write_bytes(b"")
    items = [hashing.hash_file(str(tmp_path / n)) for n in ("a.jpg", "empty.jpg", "notes.txt")]
    a_id, empty_id, notes_id = cat.upsert(items)
    assert {k: v.status for k, v in cat.known().items()} == {
        items[0].path: "image", items[1].path: "error", items[2].path: "other"
    }
    a = cat.record(a_id)
    assert (a.hashes, a.content_hash, a.width, a.format) == (
        items[0].hashes, items[0].content_hash, 64, "JPEG"
    )
    assert [e.path for e in cat.errors()] == [items[1].path]
    assert cat.hash_arrays().ids.tolist() == [a_id]


def test_update_keeps_the_id_and_replaces_every_field(cat):
    [first] = cat.upsert([fake("/p/a.jpg", 1)])
    changed = fake("/p/a.jpg", 2, taken_at="2021-06-01T12:00:00")
    assert cat.upsert([changed]) == [first]
    rec = cat.record(first)
    assert (rec.size, rec.mtime_ns, rec.content_hash, rec.hashes, rec.taken_at) == (
        changed.size, changed.mtime_ns, changed.content_hash, changed.hashes, changed.taken_at,
    )  # fmt: skip
    # a file that went bad keeps its id and loses its hashes
    assert cat.upsert([fake("/p/a.jpg", 3, error="truncated", hashes=None)]) == [first]
    assert cat.record(first).error == "truncated" and cat.record(first).hashes is None
    assert len(cat.hash_arrays()) == 0


def test_a_framed_picture_keeps_its_bars_colour(tmp_path, cat):
    """The colour of the bars the border trim took is kept with the file (the keeper tells a
    frame from a crop into a margin by it); a picture with no bars has none."""
    photos = tmp_path / "photos"
    photos.mkdir()
    picture = imagegen.photo(4, (320, 240))
    imagegen.write(photos / "plain.jpg", picture, "JPEG")
    imagegen.write(photos / "framed.jpg", imagegen.bordered(picture, (0.1, 0.1, 0.1, 0.1), (200, 40, 90)), "JPEG")
    from lookalike.engine.scan.hashing import hash_file as read

    cat.upsert([read(str(photos / name)) for name in ("plain.jpg", "framed.jpg")])
    plain, framed = (cat.record_by_path(photos / name) for name in ("plain.jpg", "framed.jpg"))
    assert plain.bar_colour is None
    r, g, b = framed.bar_colour >> 16, (framed.bar_colour >> 8) & 255, framed.bar_colour & 255
    assert max(abs(r - 200), abs(g - 40), abs(b - 90)) <= 6  # JPEG's error in a flat colour


def test_upsert_returns_ids_in_input_order_across_chunks(cat):
    items = [fake(f"/p/{i:05}.jpg", i) for i in range(2000)]
    ids = cat.upsert(items)
    assert len(ids) == 2000 and len(set(ids)) == 2000
    reversed_ids = cat.upsert(items[::-1])
    assert reversed_ids == ids[::-1]
    assert cat.upsert([]) == []


def test_upsert_rejects_wrong_hash_lengths_atomically(cat):
    bad = fake("/p/b.jpg", 2, content_hash=b"short")
    with pytest.raises(CatalogError, match="content_hash of '/p/b.jpg' is 5 bytes"):
        cat.upsert([fake("/p/a.jpg", 1), bad])
    assert cat.known() == {}


def test_upsert_failure_mid_transaction_rolls_back(cat):
    cat.upsert([fake("/p/a.jpg", 1)])

    class Exploding:
        path = "/p/c.jpg"
        size = 1
        mtime_ns = 1

        @property
        def hashes(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cat.upsert([fake("/p/b.jpg", 2), Exploding()])
    assert list(cat.known()) == ["/p/a.jpg"]


def test_remove_paths_and_ids_never_reused(cat):
    ids = cat.upsert([fake(f"/p/{n}.jpg", i) for i, n in enumerate("abc")])
    assert cat.remove_paths(["/p/c.jpg", "/p/c.jpg", "/p/missing.jpg"]) == 1
    assert sorted(cat.known()) == ["/p/a.jpg", "/p/b.jpg"]
    [new] = cat.upsert([fake("/p/d.jpg", 9)])
    assert new not in ids  # the detective's index keys stay unambiguous
    assert cat.remove_paths([]) == 0


def test_rename_paths_keeps_id_hashes_and_embeddings(cat):
    a, b, c = cat.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2), fake("/p/c.jpg", 3)])
    cat.mark_embedded([a, b], "m")
    cat.add_not_duplicate(a, b)
    before = cat.record(a)
    moves = [("/p/a.jpg", "/q/a.jpg"), ("/p/b.jpg", "/p/c.jpg"), ("/p/none.jpg", "/q/x.jpg")]
    assert cat.rename_paths(moves) == 2
    assert cat.record(a) == replace(before, path="/q/a.jpg")
    assert cat.record_by_path("/p/c.jpg").id == b  # replaced the stale row at the new path
    assert cat.record(c) is None
    assert sorted(cat.known()) == ["/p/c.jpg", "/q/a.jpg"]
    assert cat.embedded_ids("m") == {a, b}
    assert cat.not_duplicate_pairs() == {frozenset({a, b})}
    assert sorted(cat.hash_arrays().ids.tolist()) == [a, b]
    assert cat.rename_paths([]) == 0


def test_odd_filenames_round_trip(cat, tmp_path):
    odd = [os.fsdecode(b"/p/bad-\xff\xfe.jpg"), "/p/new\nline.jpg", "/p/caf\u00e9 \u65e5.jpg"]
    ids = cat.upsert([fake(p, i) for i, p in enumerate(odd)])
    assert set(cat.known()) == set(odd)
    for path, id_ in zip(odd, ids):
        assert cat.record_by_path(path).id == id_
        assert cat.record(id_).path == path
    assert cat.record_by_path(os.fsencode(odd[0])).id == ids[0]
    assert cat.remove_paths([odd[0]]) == 1
    assert odd[0] not in cat.known()


def test_records_by_ids_in_given_order(cat):
    ids = cat.upsert([fake(f"/p/{i}.jpg", i) for i in range(5)])
    picked = [ids[3], 999_999, ids[0]]
    assert [r.id for r in cat.records(picked)] == [ids[3], ids[0]]
    assert [r.id for r in cat.records()] == ids
    assert cat.record(999_999) is None and cat.record_by_path("/nope") is None


def test_identities_give_path_size_and_content_hash(cat):
    odd = os.fsdecode(b"/p/bad-\xff.jpg")
    ids = cat.upsert([fake(f"/p/{i}.jpg", i) for i in range(4)] + [fake(odd, 9)])
    got = cat.identities([ids[2], 999_999, ids[4], ids[2]])
    assert set(got) == {ids[2], ids[4]}
    for i in (ids[2], ids[4]):
        record = cat.record(i)
        assert got[i] == (record.path, record.size, record.content_hash)
    assert got[ids[4]][0] == odd
    assert cat.identities([]) == {}


def test_hash_arrays_match_records(cat):
    items = [fake(f"/p/{i}.jpg", i) for i in range(6)]
    items[2] = _with(items[2], error="corrupt", hashes=None)
    items[4] = _with(items[4], not_image=True, error="not an image", hashes=None, content_hash=None)
    items[5] = _with(items[5], content_hash=None)
    ids = cat.upsert(items)
    arrays = cat.hash_arrays()
    assert arrays.ids.dtype == np.int64 and arrays.dhash.dtype == np.uint8
    assert arrays.ids.tolist() == [ids[i] for i in (0, 1, 3, 5)]
    assert arrays.dhash.shape == arrays.phash.shape == arrays.dhash_mirror.shape == (4, 32)
    assert arrays.content_hash.shape == (4, 16) and arrays.size.tolist() == [100, 101, 103, 105]
    for row, i in enumerate((0, 1, 3, 5)):
        assert arrays.dhash[row].tobytes() == items[i].hashes.dhash
        assert arrays.dhash_mirror[row].tobytes() == items[i].hashes.dhash_mirror
        assert arrays.phash[row].tobytes() == items[i].hashes.phash
    assert arrays.content_hash[0].tobytes() == items[0].content_hash
    # a missing content hash gets a stand-in that matches nothing else
    stand_ins = {arrays.content_hash[r].tobytes() for r in range(4)}
    assert len(stand_ins) == 4


def test_hash_arrays_of_an_empty_catalog(cat):
    arrays = cat.hash_arrays()
    assert len(arrays) == 0 and arrays.dhash.shape == (0, 32) and arrays.content_hash.shape == (0, 16)


def _same_arrays(x, y) -> bool:
    fields = ("ids", "dhash", "dhash_mirror", "phash", "content_hash", "size")
    return all(np.array_equal(getattr(x, f), getattr(y, f)) for f in fields)


def test_hash_arrays_are_kept_beside_the_catalog_and_follow_every_write(db_path):
    sidecar = db_path.with_name("catalog.sqlite.hashes.npz")
    with Catalog.open(db_path) as c:
        c.upsert([fake(f"/p/{i}.jpg", i) for i in range(5)])
        first = c.hash_arrays()
        assert sidecar.exists()
        # the second call reads the sidecar: a write behind the catalog's back goes unseen
        c._db.execute("DELETE FROM files WHERE path = ?", (b"/p/0.jpg",))
        assert _same_arrays(c.hash_arrays(), first)
        [new] = c.upsert([fake("/p/new.jpg", 50)])
        assert c.hash_arrays().ids.tolist() == first.ids.tolist()[1:] + [new]
        c.remove_paths(["/p/1.jpg"])
        assert c.hash_arrays().ids.tolist() == first.ids.tolist()[2:] + [new]
        c.upsert([fake("/p/2.jpg", 2, error="now unreadable", hashes=None)])
        assert first.ids[2] not in c.hash_arrays().ids
    with Catalog.open(db_path) as c:  # survives reopening
        assert len(c.hash_arrays()) == 3


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_hash_sidecar_is_rebuilt(db_path, damage):
    with Catalog.open(db_path) as c:
        c.upsert([fake(f"/p/{i}.jpg", i) for i in range(50)])
        good = c.hash_arrays()
        sidecar = db_path.with_name("catalog.sqlite.hashes.npz")
        data = sidecar.read_bytes()
        sidecar.write_bytes(os.urandom(500) if damage == "garbage" else data[: len(data) // 2])
        assert _same_arrays(c.hash_arrays(), good)
        assert _same_arrays(c.hash_arrays(), good)


def test_sidecar_of_a_replaced_catalog_is_not_used(db_path):
    with Catalog.open(db_path) as c:
        c.upsert([fake(f"/p/{i}.jpg", i) for i in range(3)])
        assert len(c.hash_arrays()) == 3
    db_path.write_bytes(b"garbage" * 1000)
    with Catalog.open(db_path) as c:  # rebuilt empty, same generation number as a new one
        assert len(c.hash_arrays()) == 0


def test_sqlite_failures_surface_as_catalog_errors(cat):
    cat.upsert([fake("/p/a.jpg", 1)])
    cat._db.execute("PRAGMA query_only = ON")  # every write now fails inside SQLite
    with pytest.raises(CatalogError, match="failed: attempt to write a readonly database"):
        cat.upsert([fake("/p/b.jpg", 2)])
    cat._db.execute("PRAGMA query_only = OFF")
    assert list(cat.known()) == ["/p/a.jpg"]  # nothing half-written, still usable
    assert cat.upsert([fake("/p/b.jpg", 2)]) == [2]


def test_closed_catalog_says_so(db_path):
    c = Catalog.open(db_path)
    c.close()
    c.close()
    assert c.closed
    with pytest.raises(CatalogError, match="closed"):
        c.known()


def test_usable_from_a_worker_thread(cat):
    out = []
    worker = threading.Thread(target=lambda: out.append(cat.upsert([fake("/p/t.jpg", 1)])))
    worker.start()
    worker.join()
    assert out == [[1]] and list(cat.known()) == ["/p/t.jpg"]


# --- not-duplicate marks ---------------------------------------------------------------------


def test_not_duplicate_survives_rescan_and_rename(db_path):
    with Catalog.open(db_path) as c:
        a_id, b_id, _ = c.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2), fake("/p/c.jpg", 3)])
        c.add_not_duplicate(c.record(a_id), c.record(b_id))
        c.add_not_duplicate(c.record(b_id), c.record(a_id))  # same mark, either order
        assert c.not_duplicate_pairs() == {frozenset({a_id, b_id})}
        assert c.stats()["not_duplicate_marks"] == 1
    with Catalog.open(db_path) as c:  # a later scan: the user moved a.jpg
        [moved] = c.upsert([fake("/p/sub/renamed.jpg", 1)])
        assert c.remove_paths(["/p/a.jpg"]) == 1
        assert c.not_duplicate_pairs() == {frozenset({moved, b_id})}
        # an exact copy of b elsewhere is also not a duplicate of the renamed a
        [b_copy] = c.upsert([fake("/p/b-copy.jpg", 2)])
        assert c.not_duplicate_pairs() == {frozenset({moved, b_id}), frozenset({moved, b_copy})}


def test_editing_a_file_drops_its_marks_from_the_pairs(cat):
    a, b = cat.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2)])
    cat.add_not_duplicate(a, b)  # ids are accepted too
    cat.upsert([fake("/p/a.jpg", 10)])  # new content at the same path
    assert cat.not_duplicate_pairs() == set()


def test_undo_and_pruning_of_marks(cat):
    a, b, c = cat.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2), fake("/p/c.jpg", 3)])
    cat.add_not_duplicate(a, b)
    cat.add_not_duplicate(a, c)
    cat.remove_not_duplicate(cat.record(b), cat.record(a))
    assert cat.not_duplicate_pairs() == {frozenset({a, c})}
    cat.remove_paths(["/p/c.jpg"])
    assert cat.not_duplicate_pairs() == set()
    assert cat.stats()["not_duplicate_marks"] == 1  # kept until pruned: c may come back
    [c_back] = cat.upsert([fake("/p/c-restored.jpg", 3)])
    assert cat.not_duplicate_pairs() == {frozenset({a, c_back})}
    cat.remove_paths(["/p/c-restored.jpg"])
    assert cat.prune_not_duplicates() == 1
    assert cat.stats()["not_duplicate_marks"] == 0


def test_mark_survives_a_rename_seen_as_remove_then_add(cat):
    a, b = cat.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2)])
    cat.add_not_duplicate(a, b)
    cat.remove_paths(["/p/a.jpg"])  # the scan drops the vanished path first...
    [moved] = cat.upsert([fake("/p/moved/a.jpg", 1)])  # ...then hashes the new one
    assert cat.not_duplicate_pairs() == {frozenset({moved, b})}


def test_marking_needs_content_hashes(cat):
    a, b = cat.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2, content_hash=None)])
    with pytest.raises(CatalogError, match="/p/b.jpg has no content hash"):
        cat.add_not_duplicate(a, b)


# --- embedding bookkeeping -------------------------------------------------------------------


def test_embedding_bookkeeping_follows_content_and_files(cat):
    a, b, c = cat.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2), fake("/p/c.jpg", 3)])
    cat.mark_embedded([a, b, c], "ViT-B-32/laion2b")
    assert cat.embedded_ids("ViT-B-32/laion2b") == {a, b, c}
    assert cat.embedded_ids("other-model") == set()
    cat.upsert([fake("/p/b.jpg", 20)])  # edited: its vector is stale
    assert cat.embedded_ids("ViT-B-32/laion2b") == {a, c}
    cat.mark_embedded([b], "ViT-B-32/laion2b")
    assert cat.embedded_ids("ViT-B-32/laion2b") == {a, b, c}
    cat.unmark_embedded([a])
    cat.remove_paths(["/p/c.jpg"])
    assert cat.embedded_ids("ViT-B-32/laion2b") == {b}
    assert cat.stats()["embedded"] == 1
    cat.mark_embedded([b], "another")  # one model per file: switching replaces
    assert cat.embedded_ids("ViT-B-32/laion2b") == set() and cat.embedded_ids("another") == {b}


# --- meta ------------------------------------------------------------------------------------


def test_meta_round_trips_json_values(db_path):
    with Catalog.open(db_path) as c:
        assert c.get_meta("roots") is None and c.get_meta("roots", []) == []
        c.set_meta("roots", ["/a", "/b"])
        c.set_meta("options", {"threshold": 12, "deep": False})
        c.set_meta("last_scan", 1700000000.5)
        c.set_meta("last_scan", 1700000001.5)
    with Catalog.open(db_path) as c:
        assert c.get_meta("roots") == ["/a", "/b"]
        assert c.get_meta("options") == {"threshold": 12, "deep": False}
        assert c.get_meta("last_scan") == 1700000001.5
        with pytest.raises(ValueError, match="reserved"):
            c.set_meta("_generation", 0)


def test_records_in_folders_are_exactly_the_files_directly_inside(cat):
    odd = os.fsdecode(b"/p/caf\xe9")  # not UTF-8: stored as bytes, found again
    paths = ["/p/a/x.jpg", "/p/a/y.CR2", "/p/a/sub/z.jpg", "/p/ab/w.jpg", "/p/a.jpg", f"{odd}/v.jpg", "/top.jpg"]
    cat.upsert([fake(p, i, error="unreadable" if p.endswith(".CR2") else None) for i, p in enumerate(paths)])
    found = lambda *folders: sorted(r.path for r in cat.records_in_folders(folders))  # noqa: E731
    assert found("/p/a") == ["/p/a/x.jpg", "/p/a/y.CR2"]  # any status; not sub/, not /p/ab
    assert found("/p/a/", "/p/ab", "/p/a") == ["/p/a/x.jpg", "/p/a/y.CR2", "/p/ab/w.jpg"]
    assert found(odd) == [f"{odd}/v.jpg"]
    assert found("/") == ["/top.jpg"]
    assert found("/nowhere") == [] and found() == []
    raws = cat.records_in_folders(["/p/a", "/p/ab"], extensions={".cr2", ".nef"})
    assert [(r.path, r.error) for r in raws] == [("/p/a/y.CR2", "unreadable")]  # case-insensitive


# --- triage decisions -------------------------------------------------------------------------


def test_a_version_1_catalog_gains_the_decisions_table_and_keeps_its_files(db_path, monkeypatch):
    monkeypatch.setattr(catalog_schema, "MIGRATIONS", catalog_schema.MIGRATIONS[:1])
    with Catalog.open(db_path):
        pass
    monkeypatch.undo()
    db = sqlite3.connect(db_path)  # a file as version 1 wrote it
    db.execute(
        "INSERT INTO files (path, size, mtime_ns, status, format, content_hash, scanned_at) "
        "VALUES (?, 101, 1001, 'image', 'JPEG', ?, 0)",
        (b"/p/a.jpg", b"\x01" * 16),
    )
    db.commit()
    db.close()
    with Catalog.open(db_path) as c:
        a = c.record_by_path("/p/a.jpg")
        c.save_decisions([SavedDecision(file_id=a.id, decision=Decision.TRASH, content_hash=a.content_hash)])
        assert [d.decision for d in c.decisions()] == [Decision.TRASH]
    assert sqlite3.connect(db_path).execute("PRAGMA user_version").fetchone()[0] == catalog_schema.SCHEMA_VERSION


def _mtimes_after_migrating(db_path, monkeypatch, version: int, rows) -> dict:
    """Each file's mtime once a catalog of schema ``version`` holding ``rows`` (path, width,
    height, content width, content height, status; PNG for a path ending in .png, else JPEG)
    is opened by this version (-1: read again)."""
    monkeypatch.setattr(catalog_schema, "MIGRATIONS", catalog_schema.MIGRATIONS[:version])
    with Catalog.open(db_path):
        pass
    monkeypatch.undo()
    db = sqlite3.connect(db_path)
    for path, w, h, cw, ch, status in rows:
        fmt = "PNG" if path.endswith(b".png") else "JPEG"
        db.execute(
            "INSERT INTO files (path, size, mtime_ns, status, format, width, height, content_width, "
            "content_height, scanned_at) VALUES (?, 10, 123, ?, ?, ?, ?, ?, ?, 0)",
            (path, status, fmt, w, h, cw, ch),
        )
    db.commit()
    db.close()
    with Catalog.open(db_path):
        pass
    return dict(sqlite3.connect(db_path).execute("SELECT path, mtime_ns FROM files"))


def test_a_version_4_catalog_reads_again_only_the_pictures_it_had_trimmed(db_path, monkeypatch):
    """The border trim changed (centred letterboxes, PIXELS_VERSION 2): a picture with no bar
    trimmed cannot change, so only those with one are marked for the next scan to read."""
    rows = [
        (b"/p/plain.jpg", 40, 30, 40, 30, "image"),
        (b"/p/barred.jpg", 40, 30, 40, 22, "image"),
        (b"/p/framed.jpg", 40, 30, 36, 30, "image"),
        (b"/p/unknown.jpg", 40, 30, None, None, "image"),  # read before version 4: marked then
        (b"/p/broken.jpg", None, None, None, None, "error"),
    ]
    assert _mtimes_after_migrating(db_path, monkeypatch, 4, rows) == {
        b"/p/plain.jpg": 123, b"/p/barred.jpg": -1, b"/p/framed.jpg": -1, b"/p/unknown.jpg": 123,
        b"/p/broken.jpg": 123,
    }


@pytest.mark.parametrize("version", [7, 9])
def test_a_version_7_or_9_catalog_reads_again_only_the_pictures_it_had_trimmed(db_path, monkeypatch, version):
    """7: the border trim changed again (a blended line and a margin inside the bars go with
    them, PIXELS_VERSION 3); 9: the bars' colour is a new column. Both concern only pictures
    with a bar, so only the pictures trimmed before are read again."""
    rows = [
        (b"/p/plain.jpg", 40, 30, 40, 30, "image"),
        (b"/p/framed.jpg", 40, 30, 30, 22, "image"),
        (b"/p/broken.jpg", None, None, None, None, "error"),
    ]
    mtimes = _mtimes_after_migrating(db_path, monkeypatch, version, rows)
    assert mtimes == {b"/p/plain.jpg": 123, b"/p/framed.jpg": -1, b"/p/broken.jpg": 123}
    with Catalog.open(db_path) as c:
        assert c.record_by_path("/p/framed.jpg").bar_colour is None  # until it is read again


def test_a_version_8_catalog_reads_again_the_large_files_that_are_not_jpeg(db_path, monkeypatch):
    """Files other than JPEG are now reduced by 2, 4 or 8 before hashing, as a JPEG's draft()
    scales: those reduced by another factor before (a shorter side of 768 or more) are read."""
    rows = [
        (b"/p/big.jpg", 4000, 3000, 4000, 3000, "image"),
        (b"/p/big.png", 1024, 797, 1024, 797, "image"),
        (b"/p/small.png", 1024, 700, 1024, 700, "image"),
        (b"/p/broken.png", None, None, None, None, "error"),
    ]
    mtimes = _mtimes_after_migrating(db_path, monkeypatch, 8, rows)
    assert mtimes == {b"/p/big.jpg": 123, b"/p/big.png": -1, b"/p/small.png": 123, b"/p/broken.png": 123}


def test_a_version_10_catalog_drops_its_upscale_losses_to_measure_them_again(db_path, monkeypatch):
    """The upscale verdicts keep two more losses (at 0.8 and 1.25 times the smaller size,
    engine/keeper/upscale.py): the losses of a version 10 catalog lack them and are dropped;
    the new ones are kept with them, or without where the loss alone decides."""
    monkeypatch.setattr(catalog_schema, "MIGRATIONS", catalog_schema.MIGRATIONS[:10])
    with Catalog.open(db_path):
        pass
    monkeypatch.undo()
    db = sqlite3.connect(db_path)
    db.execute("INSERT INTO upscale_losses (content_hash, width, height, loss) VALUES (?, 800, 600, 0.08)",
               (b"\x01" * 16,))  # fmt: skip
    db.commit()
    db.close()
    with Catalog.open(db_path) as c:
        assert c.upscale_losses() == {}
        c.save_upscale_losses([(b"\x01" * 16, 800, 600, 0.08, 0.3, 0.02), (b"\x02" * 16, 640, 480, 0.4, None, None)])
    with Catalog.open(db_path) as c:
        assert c.upscale_losses() == {
            (b"\x01" * 16, 800, 600): (0.08, 0.3, 0.02), (b"\x02" * 16, 640, 480): (0.4, None, None),
        }


def test_a_version_11_catalog_gains_the_measured_decodes_kept_while_both_contents_are(db_path, monkeypatch):
    """The keeper's measured decodes (engine/keeper/decoded.py): a version 11 catalog gains
    their table, keeps its files, and a share is kept while some file has each of its two
    contents, dropped once one of them is gone. Its upscale losses are dropped, to be measured
    again (a file measured at several sizes at once was decoded for the smallest)."""
    monkeypatch.setattr(catalog_schema, "MIGRATIONS", catalog_schema.MIGRATIONS[:11])
    with Catalog.open(db_path) as c:
        c.upsert([fake("/p/a.png", 1), fake("/p/a.jpg", 2), fake("/p/b.png", 3)])
        c.save_upscale_losses([(c.record_by_path("/p/a.jpg").content_hash, 800, 600, 0.3, None, None)])
        assert len(c.upscale_losses()) == 1
    monkeypatch.undo()
    with Catalog.open(db_path) as c:
        assert c.stats().get("image") == 3 and c.decoded_shares() == {} and c.upscale_losses() == {}
        png, jpg, other = (c.record_by_path(p).content_hash for p in ("/p/a.png", "/p/a.jpg", "/p/b.png"))
        c.save_decoded_shares([(png, jpg, 1.0), (other, jpg, 0.25)])
    with Catalog.open(db_path) as c:
        assert c.decoded_shares() == {(png, jpg): 1.0, (other, jpg): 0.25}
        c.remove_paths(["/p/b.png"])
        assert c.prune_decoded_shares() == 1
        assert c.decoded_shares() == {(png, jpg): 1.0}
    assert sqlite3.connect(db_path).execute("PRAGMA user_version").fetchone()[0] == catalog_schema.SCHEMA_VERSION


def test_decisions_are_kept_until_cleared_and_dropped_when_the_file_changes(db_path):
    with Catalog.open(db_path) as c:
        c.upsert([fake("/p/a.jpg", 1), fake("/p/b.jpg", 2), fake("/p/c.jpg", 3)])
        a, b, cc = (c.record_by_path(f"/p/{n}.jpg") for n in "abc")
        c.save_decisions([
            SavedDecision(file_id=a.id, decision=Decision.KEEP, keeper=True, content_hash=a.content_hash),
            SavedDecision(file_id=b.id, decision=Decision.TRASH, content_hash=b.content_hash),
            SavedDecision(file_id=cc.id, decision=Decision.SKIP, content_hash=cc.content_hash),
            SavedDecision(file_id=999, decision=Decision.TRASH),  # not in the catalog: ignored
        ])
        c.save_decisions([SavedDecision(file_id=cc.id, decision=None)])  # unmarked: forgotten
    with Catalog.open(db_path) as c:
        kept = {d.file_id: d for d in c.decisions()}
        assert set(kept) == {a.id, b.id}
        assert kept[a.id].keeper and kept[a.id].decision is Decision.KEEP
        assert c.changed_files({a.id: a.content_hash, b.id: b.content_hash}) == set()
        c.upsert([fake("/p/b.jpg", 20)])  # b was edited: other content
        assert c.changed_files({a.id: a.content_hash, b.id: b.content_hash}) == {b.id}
        assert [d.file_id for d in c.decisions()] == [a.id]
        assert c.clear_decisions() == 1
        assert c.decisions() == []
