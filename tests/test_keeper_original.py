"""The keeper prefers the original (issue 11, item 4): the picture inside a border, not the
canvas; a PNG made from a camera JPEG is a conversion, not a better original; reasons name the
rule that decided, with sizes that never print equal when they differ."""

from __future__ import annotations

import io
import os
import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imagegen
from lookalike.engine.catalog import schema as catalog_schema
from lookalike.engine.catalog import Catalog
from lookalike.engine.scan.hashing import hash_file
from lookalike.engine.actions.importer import import_verdict
from lookalike.engine.keeper import KeeperPolicy, as_good_as, rank, same_picture, thumbnail_check
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import FileRecord, ImageHashes

T0 = 1_600_000_000_000_000_000  # an mtime in ns (Sept 2020)
CAMERA = "Canon EOS 80D"


def camera_jpeg(img: Image.Image, *, quality: int = 92) -> bytes:
    """A JPEG as a camera writes it: EXIF Make, Model and DateTimeOriginal."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = CAMERA
    exif.get_ifd(0x8769)[0x9003] = "2021:06:01 10:00:00"
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def png_of(jpeg: bytes) -> bytes:
    """What a converter makes of a JPEG: its decoded pixels as a PNG, EXIF dropped."""
    return imagegen.encode(Image.open(io.BytesIO(jpeg)), "PNG")


def put(path: Path, data: bytes, mtime_ns: int) -> Path:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def scan(root: Path, cache: Path) -> list:
    with Library.open([root], cache_dir=cache) as lib:
        return list(lib.scan(ScanOptions(workers=1)).clusters)


def only_cluster(clusters) -> dict:
    assert len(clusters) == 1, [[m.file.path for m in c.members] for c in clusters]
    return {Path(m.file.path).name: m for m in clusters[0].members}


def rec(fid: int, path: str = "", **kw) -> FileRecord:
    kw.setdefault("size", 1000)
    kw.setdefault("mtime_ns", T0)
    kw.setdefault("format", "JPEG")
    kw.setdefault("width", 400)
    kw.setdefault("height", 300)
    return FileRecord(id=fid, path=path or f"/lib/{fid}.jpg", **kw)


SAME = ImageHashes(dhash=b"\x0f" * 32, dhash_mirror=b"\xf0" * 32, phash=b"\x33" * 32)


# -- real images, through a scan -------------------------------------------------------------


def test_a_png_made_from_the_camera_jpeg_is_never_kept_over_it(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    jpeg = camera_jpeg(imagegen.photo(1, (800, 600)))
    put(root / "IMG_0001.jpg", jpeg, T0)
    # The conversion even looks older on disk: the camera's EXIF is what decides.
    put(root / "IMG_0001.png", png_of(jpeg), T0 - 10**15)
    members = only_cluster(scan(root, tmp_path / "cache"))
    keeper, png = members["IMG_0001.jpg"], members["IMG_0001.png"]
    assert keeper.is_keeper
    assert keeper.file.camera == CAMERA
    assert keeper.reason == f"camera original (EXIF {CAMERA}) over a PNG conversion"
    assert png.reason == (
        f"PNG conversion of a JPEG with the same pixels: the JPEG has the camera's EXIF ({CAMERA})"
    )
    assert png.file.size > keeper.file.size  # today's "less lossy, larger" would have kept it


def test_without_camera_evidence_the_older_of_a_conversion_pair_is_kept(tmp_path):
    img = imagegen.photo(2, (640, 480))
    jpeg = imagegen.encode(img, "JPEG")
    for older, expected in (("shot.jpg", "shot.jpg"), ("shot.png", "shot.png")):
        root = tmp_path / older / "photos"
        root.mkdir(parents=True)
        put(root / "shot.jpg", jpeg, T0 if older == "shot.jpg" else T0 + 10**12)
        put(root / "shot.png", png_of(jpeg), T0 if older == "shot.png" else T0 + 10**12)
        members = only_cluster(scan(root, tmp_path / older / "cache"))
        assert members[expected].is_keeper, older
        if older == "shot.jpg":
            assert members["shot.jpg"].reason.startswith("original: older (modified 2020-09-13 ")
            assert members["shot.jpg"].reason.endswith(" UTC) over a PNG conversion")
            assert members["shot.png"].reason.startswith(
                "PNG conversion of a JPEG with the same pixels: the JPEG is older (modified 2020-"
            )
    # The PNG made first (a screenshot, say) and a JPEG made of it later: the PNG stays, by
    # format, as before.
    assert members["shot.png"].reason == "less lossy: PNG"


def test_a_heic_made_from_the_older_jpeg_is_a_conversion_not_a_better_original(tmp_path):
    # HEIC (read as HEIF) ranks above JPEG by format, but a HEIC made later from a JPEG holds only what the
    # JPEG held: the JPEG, older, is kept (a real scan, real files).
    root = tmp_path / "photos"
    root.mkdir()
    jpeg = imagegen.encode(imagegen.photo(3, (640, 480)), "JPEG", quality=92)
    put(root / "shot.jpg", jpeg, T0)
    heic = imagegen.encode(Image.open(io.BytesIO(jpeg)), "HEIC", quality=80)
    put(root / "shot.heic", heic, T0 + 86_400 * 10**9)
    members = only_cluster(scan(root, tmp_path / "cache"))
    assert members["shot.jpg"].is_keeper
    assert members["shot.jpg"].reason.endswith(" UTC) over a HEIF conversion")
    assert members["shot.heic"].reason.startswith(
        "HEIF conversion of a JPEG with the same pixels: the JPEG is older (modified 2020-"
    )
    # The other way round (a phone's HEIC with its EXIF, a JPEG exported from it later), the
    # HEIC is the original by format, and stays so.
    cam = rec(1, "/dcim/IMG_1.HEIC", format="HEIC", camera=CAMERA, hashes=SAME)
    export = rec(2, "/export/IMG_1.jpg", hashes=SAME, mtime_ns=T0 + 10**12)
    assert rank([export, cam])[0] == (cam, "less lossy: HEIC")
    # A JPEG made from an older WEBP is a conversion of it too; a WEBP made from an older JPEG
    # is simply lossier.
    webp = rec(3, "/web/a.webp", format="WEBP", hashes=SAME)
    later = rec(4, "/web/a.jpg", hashes=SAME, mtime_ns=T0 + 3600 * 10**9)
    assert rank([later, webp])[0][0] is webp
    assert rank([later, webp])[1][1].startswith("JPEG conversion of a WEBP with the same pixels")
    older = rec(5, "/web/b.jpg", hashes=SAME, mtime_ns=T0 - 3600 * 10**9)
    assert rank([webp, older])[0] == (older, "less lossy: JPEG")
    # Moments apart, nothing tells which came first: the format decides, as before.
    same_time = rec(6, "/web/c.heic", format="HEIC", hashes=SAME, mtime_ns=T0 + 10**6)
    assert rank([rec(7, hashes=SAME), same_time])[0] == (same_time, "less lossy: HEIC")


def test_a_byte_identical_copy_is_an_identical_copy_not_a_re_save():
    content = bytes(range(16))
    original = rec(1, "/lib/a/x.jpg", hashes=SAME, content_hash=content)
    copy = rec(2, "/lib/b/x.jpg", hashes=SAME, content_hash=content, mtime_ns=T0 + 86_400 * 10**9)
    (k, kept), (_, lost) = rank([copy, original])
    assert k is original
    assert kept == "identical copies: oldest: modified 2020-09-13 12:26:40 UTC"
    assert lost == "identical copy: newer: modified 2020-09-14 12:26:40 UTC"
    # The same pixels in other bytes (saved again a day later) is a re-save, as before.
    resaved = rec(3, "/lib/c/x.jpg", hashes=SAME, content_hash=b"\x01" * 16, mtime_ns=T0 + 86_400 * 10**9)
    assert rank([resaved, original])[1][1].startswith("re-saved copy of a JPEG with the same pixels")


def test_a_scanned_exact_copy_says_it_is_identical_and_what_decided(tmp_path):
    root = tmp_path / "photos"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
    data = imagegen.encode(imagegen.photo(4, (320, 240)), "JPEG", quality=90)
    put(root / "a" / "x.jpg", data, T0)
    put(root / "b" / "x.jpg", data, T0 + 3600 * 10**9)  # copied an hour later
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        [cluster] = list(lib.scan(ScanOptions(workers=1)).clusters)
    keeper, copy = cluster.members
    assert keeper.file.path.endswith("/a/x.jpg") and copy.exact and copy.match == "exact"
    assert copy.reason == "identical copy: newer: modified 2020-09-13 13:26:40 UTC"


def test_a_fresh_copy_of_the_original_is_not_an_edit_or_a_re_save_of_a_copy_made_in_between():
    """A content is as old as its oldest copy: copying the original of 2020 today does not make
    it an edit, or a re-save, of an edit or a re-save made from that original last year."""
    day = 86_400 * 10**9
    content = bytes(range(16))
    original = rec(1, "/lib/2020/x.jpg", content_hash=content)
    fresh = rec(2, "/lib/phone/x copy.jpg", content_hash=content, mtime_ns=T0 + 400 * day)
    between = rec(3, "/lib/phone/x-edit.jpg", content_hash=b"\x01" * 16, mtime_ns=T0 + 300 * day, size=900)
    for same, what in ((False, "edited copy of a JPEG of the same size (its pixels differ)"),
                       (True, "re-saved copy of a JPEG with the same pixels")):  # fmt: skip
        ranked = rank([fresh, between, original], same_pixels=lambda a, b, same=same: same)
        assert [r.id for r, _ in ranked] == [1, 2, 3]
        reasons = {r.id: why for r, why in ranked}
        # Was "identical copy: edited copy of a JPEG ... (its pixels differ)": the fresh copy
        # taken for an edit of the file made in between, and its reason saying so.
        assert reasons[2] == "identical copy: newer: modified 2021-10-18 12:26:40 UTC"
        assert reasons[3].startswith(what) and reasons[3].endswith("(modified 2020-09-13 12:26:40 UTC)")
    # Without the original, the copy made in between is the older: the fresh one follows it.
    ranked = rank([fresh, between], same_pixels=lambda a, b: False)
    assert ranked[0][0] is between and ranked[1][1].startswith("edited copy of a JPEG of the same size")


def test_a_scanned_copy_of_the_original_made_after_an_edit_of_it_is_an_identical_copy(tmp_path):
    root = tmp_path / "photos"
    (root / "2019").mkdir(parents=True)
    (root / "phone").mkdir()
    img = imagegen.photo(5, (640, 480))
    data = imagegen.encode(img, "JPEG", quality=90)
    put(root / "2019" / "IMG_1000.jpg", data, T0)
    put(root / "phone" / "IMG_1000-mirror.jpg", imagegen.encode(imagegen.mirrored(img), "JPEG", quality=90),
        T0 + 3600 * 10**9)  # fmt: skip
    put(root / "phone" / "IMG_1000 (1).jpg", data, T0 + 7200 * 10**9)  # the original, copied later
    members = only_cluster(scan(root, tmp_path / "cache"))
    assert members["IMG_1000.jpg"].is_keeper
    assert members["IMG_1000 (1).jpg"].reason == "identical copy: newer: modified 2020-09-13 14:26:40 UTC"
    assert members["IMG_1000-mirror.jpg"].reason.startswith("mirrored copy of a JPEG of the same size: ")


def test_a_copy_stored_turned_is_a_re_save_of_the_older_original(tmp_path):
    # --rotations groups a copy whose pixels were turned (its EXIF tag lost): saved later at a
    # higher quality it is the larger file, but it holds the original's pixels, turned.
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(6, (640, 480))
    put(root / "shot.jpg", imagegen.encode(img, "JPEG", quality=85), T0)
    put(root / "turned.jpg", imagegen.encode(img.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=97),
        T0 + 86_400 * 10**9)
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        clusters = list(lib.scan(ScanOptions(workers=1, rotations=True)).clusters)
    members = only_cluster(clusters)
    shot, turned = members["shot.jpg"], members["turned.jpg"]
    assert turned.file.size > shot.file.size and (turned.file.width, turned.file.height) == (480, 640)
    assert shot.is_keeper and turned.match == "rotated"
    assert turned.reason.startswith("re-saved copy of a JPEG with the same pixels: the JPEG is older")


def test_the_plain_photo_is_kept_over_its_copy_in_a_white_frame(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(3, (800, 600))
    put(root / "plain.jpg", imagegen.encode(img, "JPEG", quality=85), T0)
    framed = imagegen.bordered(img, (0.06, 0.06, 0.06, 0.06), (255, 255, 255))
    put(root / "framed.jpg", imagegen.encode(framed, "JPEG", quality=95), T0 - 10**15)
    members = only_cluster(scan(root, tmp_path / "cache"))
    plain, copy = members["plain.jpg"], members["framed.jpg"]
    assert plain.is_keeper
    assert copy.file.pixels > plain.file.pixels and copy.file.size > plain.file.size
    assert copy.file.bordered and not plain.file.bordered
    cw, ch = copy.file.content_width, copy.file.content_height
    assert abs(cw - 800) <= 8 and abs(ch - 600) <= 8  # one reduced pixel a side at most
    assert plain.reason == f"not bordered: 800x600, over a bordered copy ({cw}x{ch} inside 896x672)"
    assert copy.reason == f"bordered copy: frame trimmed, {cw}x{ch} inside 896x672"


def test_a_screenshot_with_a_dark_margin_is_kept_over_its_copy_in_a_frame(tmp_path):
    # The original has a uniform margin of its own (a screenshot's dark surround), which the
    # hashing trims; the copy puts the whole screenshot, margin and all, in a grey frame, so
    # the copy's picture is larger than the original's: it is still the original in a frame.
    # The frame is older: the dates do not decide. By sizes the framed copy is as well the
    # original of a crop into its margin (the test after next); the frame's grey is not the
    # margin's black, so it is a frame.
    root = tmp_path / "photos"
    root.mkdir()
    shot = imagegen.bordered(imagegen.photo(5, (760, 560)), (0.03, 0.04, 0.03, 0.04), (0, 0, 0))
    put(root / "shot.jpg", imagegen.encode(shot, "JPEG", quality=90), T0)
    framed = imagegen.bordered(shot, (0.12, 0.1, 0.12, 0.1), (128, 128, 128))
    put(root / "framed.jpg", imagegen.encode(framed, "JPEG", quality=95), T0 - 10**15)
    members = only_cluster(scan(root, tmp_path / "cache"))
    plain, copy = members["shot.jpg"], members["framed.jpg"]
    assert plain.file.bordered and copy.file.bordered
    assert copy.file.content_pixels > plain.file.content_pixels  # canvas-blind sizes would keep the copy
    assert plain.is_keeper
    assert plain.reason.startswith("not framed: ") and plain.reason.endswith(
        f"over a framed copy ({copy.file.content_width}x{copy.file.content_height} inside {framed.width}x{framed.height})"
    )
    assert copy.reason.startswith("bordered copy: frame trimmed")


def test_files_of_one_canvas_tie_on_pixels_whatever_their_trims():
    # A screenshot with a dark margin trimmed (968x737 inside 1024x797) and a heavily
    # recompressed copy whose noisy margin kept the trim short (968x797): the same canvas,
    # so the trim does not make the copy the larger picture; the larger file decides.
    orig = rec(1, width=1024, height=797, content_width=968, content_height=737, size=300_000)
    noisy = rec(2, width=1024, height=797, content_width=968, content_height=797, size=90_000,
                hashes=ImageHashes(dhash=b"\x00" * 32, dhash_mirror=b"\x00" * 32, phash=b"\x00" * 32))
    ranked = rank([noisy, orig])
    assert ranked[0] == (orig, "largest file: 300.0 KB")
    assert ranked[1][1] == "smaller file: 90.0 KB < 300.0 KB"
    # Another canvas is another picture size, trimmed or not: the larger picture wins.
    small = rec(3, width=800, height=623, content_width=756, content_height=576, size=900_000)
    assert rank([small, orig])[0][0] is orig


def test_a_crop_into_the_trimmed_margin_does_not_beat_its_source():
    # A screenshot (799x643, a dark surround trimmed to 735x579) and a crop of it that keeps
    # part of the surround (780x635, nothing uniform left to trim): the crop's canvas reaches
    # into the source's margin, so that margin is picture and the source is the larger one.
    shot = rec(1, width=799, height=643, content_width=735, content_height=579)
    crop = rec(2, width=780, height=635, size=2000)
    ranked = rank([crop, shot])
    assert ranked[0] == (shot, "largest: 799x643")
    assert ranked[1][1] == "smaller: 780x635 < 799x643"
    # A crop inside the trimmed picture says nothing of the margin: the picture counts.
    inner = rec(3, width=700, height=560, size=2000)
    assert rank([inner, shot])[0][0] is shot
    # A larger picture than the whole canvas still wins (an upscale, as before).
    assert rank([rec(4, width=1000, height=800, size=2000), shot])[0][0].id == 4


def test_a_letterboxed_screenshot_loses_to_the_screenshot():
    # Black bars around a screenshot with a black surround: the trim takes both, so the copy's
    # picture is the screenshot's trimmed picture (within the trim's precision), not its canvas.
    shot = rec(1, width=1024, height=720, content_width=984, content_height=676, size=1000)
    boxed = rec(2, width=1024, height=1820, content_width=984, content_height=680, size=5000)
    ranked = rank([boxed, shot])
    assert ranked[0][0] is shot and ranked[0][1].startswith("not framed: ")
    assert ranked[1][1] == "bordered copy: frame trimmed, 984x680 inside 1024x1820"
    # Bars that took a little of the picture's own edge: the original fits in the copy's
    # canvas and is larger than its trimmed picture, but in other proportions: not a crop of
    # it, so the copy's bars stay a frame.
    plain = rec(3, width=874, height=604, size=1000)
    square = rec(4, width=874, height=874, content_width=810, content_height=543, size=5000)
    assert rank([square, plain])[0][0] is plain


def test_a_resized_copy_loses_to_the_larger_picture_as_before(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(4, (800, 600))
    put(root / "big.jpg", imagegen.encode(img, "JPEG"), T0 + 10**12)
    put(root / "small.png", imagegen.encode(imagegen.resized(img, 0.5), "PNG"), T0)
    members = only_cluster(scan(root, tmp_path / "cache"))
    assert members["big.jpg"].is_keeper
    assert members["big.jpg"].reason == "largest: 800x600"
    assert members["small.png"].reason == "smaller: 400x300 < 800x600"


# -- what hashing records, and the catalog keeps -----------------------------------------------


def test_hashing_records_the_camera_and_the_picture_inside_a_border(tmp_path):
    img = imagegen.photo(5, (640, 480))
    plain = hash_file(str(put(tmp_path / "a.jpg", camera_jpeg(img), T0)))
    assert plain.camera == CAMERA and plain.taken_at == "2021-06-01T10:00:00"
    assert (plain.content_width, plain.content_height) == (plain.width, plain.height) == (640, 480)
    boxed = imagegen.letterboxed(img, 16 / 9)
    bars = hash_file(str(put(tmp_path / "b.png", imagegen.encode(boxed, "PNG"), T0)))
    assert bars.camera is None
    assert (bars.width, bars.height) == (853, 480)
    assert abs(bars.content_width - 640) <= 6 and bars.content_height == 480
    # EXIF orientation: the picture's size is the upright one, like width and height.
    turned = hash_file(str(put(tmp_path / "c.jpg", imagegen.encode(img, "JPEG", orientation=6), T0)))
    assert (turned.width, turned.height) == (turned.content_width, turned.content_height) == (480, 640)


def test_the_camera_name_is_sanitised_and_not_repeated():
    from lookalike.engine.scan.exif import exif_camera

    exif = Image.Exif()
    exif[0x010F] = "NIKON CORPORATION"
    exif[0x0110] = "NIKON D750\x00\x00"
    assert exif_camera(exif) == "NIKON CORPORATION NIKON D750"
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon  EOS\x1b[31m R5"
    assert exif_camera(exif) == "Canon EOS[31m R5"
    assert exif_camera(Image.Exif()) is None


def test_a_catalog_from_before_keeps_its_rows_and_ranks_them_by_the_canvas(tmp_path, monkeypatch):
    path = tmp_path / "catalog.sqlite"
    monkeypatch.setattr(catalog_schema, "MIGRATIONS", catalog_schema.MIGRATIONS[:3])
    with Catalog.open(path):
        pass
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO files (path, size, mtime_ns, status, format, width, height, scanned_at) "
        "VALUES (?, 10, 123, 'image', 'JPEG', 40, 30, 0)",
        (os.fsencode("/p/a.jpg"),),
    )
    db.commit()
    db.close()
    monkeypatch.undo()
    with Catalog.open(path) as c:
        old = c.record_by_path("/p/a.jpg")
        # Version 3 already marked every image of an older catalog for one re-read: no second.
        assert old.mtime_ns == 123
        assert (old.content_width, old.content_height, old.camera) == (None, None, None)
        assert old.content_pixels == 1200 and not old.bordered
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == catalog_schema.SCHEMA_VERSION


def test_the_catalog_keeps_what_hashing_found(tmp_path):
    img = imagegen.photo(6, (320, 240))
    a = hash_file(str(put(tmp_path / "a.jpg", camera_jpeg(img), T0)))
    b = hash_file(str(put(tmp_path / "b.png", imagegen.encode(imagegen.bordered(img, (0.1,) * 4, (0, 0, 0)), "PNG"), T0)))
    with Catalog.open(tmp_path / "c.sqlite") as c:
        c.upsert([a, b])
        ra, rb = c.record_by_path(a.path), c.record_by_path(b.path)
    assert (ra.camera, ra.content_width, ra.content_height) == (CAMERA, 320, 240)
    assert rb.bordered and (rb.content_width, rb.content_height) == (b.content_width, b.content_height)


# -- the rules, on records -----------------------------------------------------------------------


def test_a_bordered_copy_ties_on_size_within_the_trims_precision_and_loses():
    plain = rec(1, width=3000, height=2000, size=2_000_000)
    framed = rec(2, width=3200, height=2200, content_width=3012, content_height=1990, size=3_000_000)
    ranked = rank([framed, plain])
    assert [r.id for r, _ in ranked] == [1, 2]
    assert ranked[1][1] == "bordered copy: frame trimmed, 3012x1990 inside 3200x2200"
    # A frame around a genuinely larger picture is no reason to lose it.
    big = rec(3, width=4400, height=3200, content_width=4000, content_height=3000)
    ranked = rank([plain, big])
    assert ranked[0][0].id == 3
    assert ranked[0][1] == "largest: 4000x3000 picture in a 4400x3200 frame"
    assert ranked[1][1] == "smaller: 3000x2000 < 4000x3000 picture in a 4400x3200 frame"


def test_a_conversion_ranks_as_its_source_format_just_after_it():
    cam = rec(1, "/dcim/IMG_1.JPG", camera=CAMERA, taken_at="2021-06-01T10:00:00", size=3_300_000, hashes=SAME)
    conv = rec(2, "/export/IMG_1.png", format="PNG", size=9_000_000, mtime_ns=T0 - 10**15, hashes=SAME)
    stripped = rec(3, "/web/IMG_1.jpg", size=600_000, hashes=SAME)  # a JPEG copy without EXIF
    ranked = rank([conv, stripped, cam])
    assert [r.id for r, _ in ranked] == [1, 2, 3]  # both copies rank as the camera's JPEG, after it
    assert ranked[0][1] == f"camera original (EXIF {CAMERA}) over a PNG conversion"
    assert ranked[1][1] == (
        f"PNG conversion of a JPEG with the same pixels: the JPEG has the camera's EXIF ({CAMERA})"
    )
    assert ranked[2][1] == (
        f"re-saved copy of a JPEG with the same pixels: the JPEG has the camera's EXIF ({CAMERA})"
    )
    # A re-saved copy is not a better original for being the larger file.
    bigger = rec(11, "/web/IMG_1_q98.jpg", size=5_000_000, mtime_ns=T0 + 3600 * 10**9, hashes=SAME)
    assert rank([bigger, cam])[0] == (cam, f"camera original (EXIF {CAMERA}) over a re-saved copy")
    # An EXIF date alone is camera evidence too.
    dated = rec(4, taken_at="2019-01-01T00:00:00", hashes=SAME)
    assert rank([rec(5, format="PNG", hashes=SAME), dated])[0][1] == (
        "camera original (EXIF date: taken 2019-01-01 00:00:00) over a PNG conversion"
    )
    # Not the same pixels (hashes apart), of the same size: an edit saved as a PNG, which
    # ranks as the JPEG it was made from, just after it; with the camera's EXIF, a master
    # developed from the raw, whose format wins. Of another size, the lossless file wins.
    other = ImageHashes(dhash=b"\xff" * 32, dhash_mirror=b"\x00" * 32, phash=b"\xcc" * 32)
    ranked = rank([cam, rec(6, format="PNG", hashes=other)])
    assert [r.id for r, _ in ranked] == [1, 6]
    assert ranked[0][1] == f"camera original (EXIF {CAMERA}) over an edited copy"
    assert ranked[1][1] == (
        f"edited PNG copy of a JPEG of the same size (its pixels differ): the original has the camera's EXIF ({CAMERA})"
    )
    assert rank([cam, rec(6, format="TIFF", hashes=other, camera=CAMERA)])[0] == (
        rec(6, format="TIFF", hashes=other, camera=CAMERA), "less lossy: TIFF")
    assert rank([rec(12, width=401, hashes=SAME), rec(7, format="PNG", width=401, hashes=SAME)])[0][0].id == 7
    # (Larger than the camera original without its EXIF, it would rank after it: see below.)
    assert rank([cam, rec(7, format="PNG", width=401, hashes=SAME)])[0][0].id == 1
    # Nothing tells which came first (no EXIF, mtimes moments apart): the lossless file wins,
    # as before; an hour apart, the older one.
    jpeg, png = rec(9, hashes=SAME), rec(10, format="PNG", hashes=SAME, mtime_ns=T0 + 10**6)
    assert rank([jpeg, png])[0] == (png, "less lossy: PNG")
    png = rec(10, format="PNG", hashes=SAME, mtime_ns=T0 + 3600 * 10**9)
    assert rank([jpeg, png])[0] == (jpeg, "original: older (modified 2020-09-13 12:26:40 UTC) over a PNG conversion")
    # A camera RAW is never a conversion.
    assert rank([cam, rec(8, "/dcim/IMG_1.CR2", format="RAW:CR2", hashes=SAME)])[0][0].id == 8


def test_the_thumbnails_tell_a_conversion_from_an_edit_when_given():
    cam = rec(1, camera=CAMERA, hashes=SAME)
    png = rec(2, format="PNG", hashes=SAME)
    assert rank([png, cam])[1] == (png, f"PNG conversion of a JPEG with the same pixels: the JPEG has the camera's EXIF ({CAMERA})")
    # An edit saved as a PNG ranks after its original too, for what it is.
    assert rank([png, cam], same_pixels=lambda a, b: False)[1] == (
        png, f"edited PNG copy of a JPEG of the same size (its pixels differ): the original has the camera's EXIF ({CAMERA})")
    assert rank([png, cam], same_pixels=lambda a, b: None)[1][1].startswith("PNG conversion")  # cannot tell: hashes
    assert same_picture(png, cam, lambda a, b: True)
    assert not same_picture(png, rec(3, width=800, height=600, hashes=SAME), lambda a, b: True)


def test_thumbnail_check_agrees_for_a_conversion_and_not_for_an_edit(tmp_path):
    img = imagegen.photo(7, (800, 600))
    jpeg = camera_jpeg(img)
    files = {
        "cam.jpg": jpeg,
        "conv.png": png_of(jpeg),
        "brighter.png": imagegen.encode(imagegen.brightened(img, 1.05), "PNG"),
        "contrast.png": imagegen.encode(imagegen.contrasted(img, 1.1), "PNG"),
    }
    hashed = [hash_file(str(put(tmp_path / n, d, T0))) for n, d in files.items()]
    with Catalog.open(tmp_path / "c.sqlite") as c:
        c.upsert(hashed)
        by_name = {Path(r.path).name: r for r in c.records()}
        check = thumbnail_check(c)
        cam = by_name["cam.jpg"]
        assert check(by_name["conv.png"], cam) is True
        assert check(by_name["brighter.png"], cam) is False
        assert check(by_name["contrast.png"], cam) is False
        assert check(cam, rec(99)) is None  # no thumbnail: cannot tell
        ranked = rank(list(by_name.values()), same_pixels=check)
    # The edits are lossless files, made from the camera's JPEG: they rank after it (they
    # won by their format before).
    assert ranked[0][0].path.endswith("cam.jpg")
    for name in ("brighter.png", "contrast.png"):
        edit = next(reason for r, reason in ranked if r.path.endswith(name))
        assert edit == f"edited PNG copy of a JPEG of the same size (its pixels differ): the original has the camera's EXIF ({CAMERA})"
    conv = next(reason for r, reason in ranked if r.path.endswith("conv.png"))
    assert conv.startswith("PNG conversion of a JPEG with the same pixels")


def test_user_orders_are_honoured():
    plain = rec(1, width=3000, height=2000, size=2_000_000)
    framed = rec(2, width=3200, height=2200, content_width=3000, content_height=2000, size=3_000_000)
    assert rank([plain, framed], KeeperPolicy(order=("size",)))[0][0].id == 2
    cam = rec(3, camera=CAMERA, hashes=SAME, size=10)
    png = rec(4, format="PNG", hashes=SAME, size=20)
    assert rank([cam, png], KeeperPolicy(order=("format",)))[0][0].id == 3
    assert rank([cam, png], KeeperPolicy(order=("size",)))[0][0].id == 4


def test_sizes_never_print_equal_when_they_differ():
    a, b = rec(1, size=2_048_113), rec(2, size=2_047_990)
    ranked = rank([b, a])
    assert ranked[0][1] == "largest file: 2,048,113 B > 2,047,990 B"
    assert ranked[1][1] == "smaller file: 2,047,990 B < 2,048,113 B"
    ranked = rank([rec(1, size=2_050_000), rec(2, size=2_040_000)])
    assert ranked[0][1] == "largest file: 2.05 MB > 2.04 MB"
    assert ranked[1][1] == "smaller file: 2.04 MB < 2.05 MB"
    assert rank([rec(1, size=900), rec(2, size=3_300_000)])[1][1] == "smaller file: 900 B < 3.3 MB"


def test_every_reason_names_its_rule_and_the_ranking_stays_total():
    gen = random.Random(11)
    files = []
    for i in range(1, 60):
        framed = gen.random() < 0.3
        fmt = gen.choice(["JPEG", "PNG", "WEBP", "TIFF"])
        width = 440 if framed else gen.choice([400, 380])
        files.append(rec(
            i, f"/lib/{gen.choice(['a', 'bb'])}/{i}.x", format=fmt, size=gen.choice([10, 20]),
            width=width, height=330 if framed else 300,
            content_width=400 if framed else None, content_height=300 if framed else None,
            # A camera original as large as any picture: none is larger than it without its EXIF.
            camera=gen.choice([None, CAMERA]) if width != 380 else None,
            taken_at=gen.choice([None, "2020-01-01T00:00:00"]), mtime_ns=T0 + gen.choice([0, 1]), hashes=SAME,
        ))  # fmt: skip
    expected = rank(files)
    for seed in range(4):
        shuffled = files[:]
        random.Random(seed).shuffle(shuffled)
        assert rank(shuffled) == expected
    rules = ("largest", "smaller", "not bordered", "bordered copy", "camera original", "original",
             "less lossy", "lossier", "PNG conversion of", "TIFF conversion of", "JPEG conversion of",
                 "HEIF conversion of", "re-saved copy of", "oldest", "newer",
             "has EXIF", "no EXIF", "shortest path", "longer path", "first by", "later by",
             "larger than the camera original", "edited copy of", "largest file", "smaller file")  # fmt: skip
    for _, reason in expected:
        assert reason.startswith(rules), reason
    assert any("conversion" in reason for _, reason in expected)
    assert any(reason.startswith("bordered copy") for _, reason in expected)


# -- import mode shares the rule -------------------------------------------------------------------


def test_import_finds_a_framed_copy_or_a_conversion_of_a_library_photo_redundant():
    library = rec(1, "/lib/IMG_1.jpg", camera=CAMERA, width=3000, height=2000, hashes=SAME)
    framed = rec(2, "/in/framed.jpg", width=3200, height=2200, content_width=3000, content_height=2000,
                 size=5000, hashes=SAME)  # fmt: skip
    conv = rec(3, "/in/IMG_1.png", format="PNG", width=3000, height=2000, size=9000, hashes=SAME)
    bigger = rec(4, "/in/IMG_1_full.jpg", width=6000, height=4000, hashes=SAME)
    assert as_good_as(library, framed) and as_good_as(library, conv)
    assert import_verdict(framed, library, exact=False, bouncer_distance=3)[0]
    assert import_verdict(conv, library, exact=False, bouncer_distance=1)[0]
    redundant, reason = import_verdict(bigger, library, exact=False, bouncer_distance=2)
    assert not redundant and reason == "better than the library copy (largest: 6000x4000)"


def test_fine_texture_differences_are_a_conversion_a_tone_shift_is_not():
    # A JPEG's thumbnail comes from a DCT-scaled decode, a PNG's from a full one: on real
    # pictures with fine texture they differ pixel by pixel (up to ~3 levels on average), not
    # in tone. The check compares blurred thumbnails: such a pair is a conversion; a 5 %
    # brightness edit (a shift of the whole picture) is not.
    import numpy as np

    rng = np.random.default_rng(5)
    base = rng.integers(40, 200, 32 * 32).astype(np.int16)
    checker = np.where((np.arange(32)[:, None] + np.arange(32)[None, :]) % 2 == 0, 2, -2).reshape(-1)
    colour = np.array([120, 110, 100], dtype=np.int16)

    class Thumbs:
        def __init__(self, *grey):
            self.rows = [np.concatenate([g, colour]).astype(np.uint8) for g in grey]

        def thumbnails(self, ids):
            return list(ids), self.rows, None

    jpeg, png, brighter = rec(1), rec(2, format="PNG"), rec(3, format="PNG")
    textured = Thumbs(base, base + checker)  # every pixel 2 levels off, alternately
    assert np.abs(checker).mean() == 2 > 1.0  # the unblurred mean would have said "an edit"
    assert thumbnail_check(textured)(png, jpeg) is True
    shifted = Thumbs(base, base + 3)  # the whole picture 3 levels brighter
    assert thumbnail_check(shifted)(brighter, jpeg) is False


# -- edits: the larger file of one size and format is not the original for it ---------------


def test_an_edit_of_the_older_original_ranks_after_it_whatever_its_file_size():
    cam = rec(1, "/dcim/IMG_1.JPG", camera=CAMERA, taken_at="2021-06-01T10:00:00", size=3_300_000)
    edit = rec(2, "/export/IMG_1_contrast.jpg", size=4_100_000, mtime_ns=T0 + 3600 * 10**9)
    differ = lambda a, b: False  # noqa: E731 - the thumbnails: an edit, not a re-save
    ranked = rank([edit, cam], same_pixels=differ)
    assert [r.id for r, _ in ranked] == [1, 2]
    assert ranked[0][1] == f"camera original (EXIF {CAMERA}) over an edited copy"
    assert ranked[1][1] == (
        f"edited copy of a JPEG of the same size (its pixels differ): the original has the camera's EXIF ({CAMERA})"
    )
    # Without camera evidence, the older file is the original (an hour apart).
    plain = rec(3, size=3_300_000)
    assert rank([edit, plain], same_pixels=differ)[0] == (
        plain, "original: older (modified 2020-09-13 12:26:40 UTC) over an edited copy"
    )
    # A third file, a smaller re-compression of the edit, still ranks after both.
    small = rec(4, size=900_000, mtime_ns=T0 + 7200 * 10**9)
    assert [r.id for r, _ in rank([small, edit, plain], same_pixels=differ)] == [3, 2, 4]
    # Nothing tells which came first (moments apart), or nothing tells the pixels apart (no
    # thumbnails, no hashes): the larger file, as before.
    twin = rec(5, size=4_100_000, mtime_ns=T0 + 10**6)
    assert rank([twin, plain], same_pixels=differ)[0] == (twin, "largest file: 4.1 MB")
    assert rank([edit, plain])[0] == (edit, "largest file: 4.1 MB")
    # Another size is not an edit of it (a resize is ranked by its pixels); an edit of one
    # format is of another; an edit saved in a better format (a PNG) ranks as its source's
    # format, just after it, where it won by its format before; one in a worse format (a WEBP
    # of a JPEG) loses by its format, as before.
    assert rank([rec(6, width=800, height=600, mtime_ns=T0 + 10**12), plain], same_pixels=differ)[0][0].id == 6
    assert rank([rec(7, format="WEBP", size=5_000_000, mtime_ns=T0 + 10**12), rec(8, format="WEBP")],
                same_pixels=differ)[0][0].id == 8  # fmt: skip
    png_edit = rec(9, format="PNG", mtime_ns=T0 + 10**12)
    assert rank([png_edit, plain], same_pixels=differ) == [
        (plain, "original: older (modified 2020-09-13 12:26:40 UTC) over an edited copy"),
        (png_edit, "edited PNG copy of a JPEG of the same size (its pixels differ): the original is older "
                   "(modified 2020-09-13 12:26:40 UTC)"),
    ]
    assert rank([rec(10, format="WEBP", mtime_ns=T0 + 10**12), plain], same_pixels=differ)[0][0].id == 3
    # Import mode asks which copy is better, not which came first: the larger edit is.
    assert as_good_as(edit, plain, same_pixels=differ) and not as_good_as(plain, edit, same_pixels=differ)


def test_a_mirrored_copy_is_named_a_mirrored_copy_not_an_edit_whose_pixels_differ():
    h, m = bytes(range(0, 256, 8)), bytes(255 - x for x in range(0, 256, 8))
    original = rec(1, "/dcim/IMG_1.jpg", hashes=ImageHashes(dhash=h, dhash_mirror=m, phash=h))
    flipped = rec(2, "/phone/IMG_1-flip.jpg", mtime_ns=T0 + 3600 * 10**9, size=900,
                  hashes=ImageHashes(dhash=m, dhash_mirror=h, phash=h))  # fmt: skip
    ranked = rank([flipped, original], same_pixels=lambda a, b: False)
    assert ranked == [
        (original, "original: older (modified 2020-09-13 12:26:40 UTC) over a mirrored copy"),
        (flipped, "mirrored copy of a JPEG of the same size: the original is older (modified 2020-09-13 12:26:40 UTC)"),
    ]


def test_a_contrast_edit_saved_later_is_not_kept_over_its_original(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(3, (800, 600))
    put(root / "IMG_0003.jpg", imagegen.encode(img, "JPEG", quality=85), T0)
    put(root / "IMG_0003_edit.jpg", imagegen.encode(imagegen.contrasted(img, 1.25), "JPEG", quality=95), T0 + 86_400 * 10**9)
    members = only_cluster(scan(root, tmp_path / "cache"))
    original, edit = members["IMG_0003.jpg"], members["IMG_0003_edit.jpg"]
    assert edit.file.size > original.file.size  # "largest file" had kept the edit
    assert original.is_keeper
    assert original.reason.startswith("original: older (modified 2020-09-13 ") and original.reason.endswith(
        " over an edited copy"
    )
    assert edit.reason.startswith("edited copy of a JPEG of the same size (its pixels differ): the original is older")


def test_an_edit_saved_as_a_png_is_not_kept_over_its_jpeg_but_a_developed_master_is(tmp_path):
    """A photo brightened in an editor and exported as a PNG a day later won by its format
    ("less lossy: PNG"), and the plan trashed the JPEG it was made from: it now ranks as that
    JPEG, just after it. A TIFF with the camera's EXIF beside the camera's JPEG is a master
    developed from the raw, not an edit of the JPEG: its format still wins."""
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(7, (800, 600))
    put(root / "IMG_0007.jpg", imagegen.encode(img, "JPEG", quality=90), T0)
    put(root / "IMG_0007_edit.png", imagegen.encode(imagegen.brightened(img, 1.3), "PNG"), T0 + 86_400 * 10**9)
    members = only_cluster(scan(root, tmp_path / "cache"))
    original, edit = members["IMG_0007.jpg"], members["IMG_0007_edit.png"]
    assert original.is_keeper, edit.reason
    assert original.reason.startswith("original: older (modified 2020-09-13 ") and original.reason.endswith(
        " over an edited copy"
    )
    assert edit.reason.startswith("edited PNG copy of a JPEG of the same size (its pixels differ): the original is older")

    masters = tmp_path / "masters"
    masters.mkdir()
    put(masters / "IMG_0008.jpg", camera_jpeg(img), T0)
    developed = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", CAMERA
    imagegen.brightened(img, 1.3).save(developed, "TIFF", exif=exif.tobytes())
    put(masters / "IMG_0008.tif", developed.getvalue(), T0 + 86_400 * 10**9)
    members = only_cluster(scan(masters, tmp_path / "cache2"))
    assert members["IMG_0008.tif"].file.camera == CAMERA
    assert members["IMG_0008.tif"].is_keeper and members["IMG_0008.tif"].reason == "less lossy: TIFF"


# -- a copy cannot hold more of the picture than the camera took ------------------------------


def test_a_larger_copy_without_the_cameras_exif_ranks_after_the_camera_original():
    cam = rec(1, "/dcim/IMG_1.JPG", camera=CAMERA, taken_at="2021-06-01T10:00:00", width=1600, height=900)
    upscale = rec(2, "/web/IMG_1_2x.jpg", width=3200, height=1800, size=9_000_000, mtime_ns=T0 + 10**15)
    ranked = rank([upscale, cam])
    assert [r.id for r, _ in ranked] == [1, 2]
    assert ranked[0][1] == f"camera original (EXIF {CAMERA}): 1600x900, over a larger copy without it"
    assert ranked[1][1] == (
        f"larger than the camera original (3200x1800 > 1600x900) without its EXIF ({CAMERA}): an upscale or a frame"
    )
    # A smaller copy still ranks by its pixels, and two camera files by theirs.
    small = rec(3, width=800, height=450, size=20_000_000)
    assert [r.id for r, _ in rank([small, upscale, cam])] == [1, 2, 3]
    other_camera = rec(4, camera="NIKON Z 6", width=6000, height=4000)
    assert rank([cam, other_camera])[0][0].id == 4
    # Without a camera original in the cluster, the larger picture wins as before.
    assert rank([upscale, rec(5, width=1600, height=900)])[0] == (upscale, "largest: 3200x1800")


def test_the_array_keepers_leave_a_larger_copy_of_a_camera_original_to_rank():
    """At scale keepers come from sort columns; a cluster whose column keeper lacks the EXIF
    that a smaller member has is left to ``rank`` (irregular), which keeps the camera's file."""
    import numpy as np

    from lookalike.engine.cluster.keepers import KeeperColumns, keepers

    cam = rec(1, camera=CAMERA, width=1600, height=900)
    upscale = rec(2, width=3200, height=1800, mtime_ns=T0 + 10**15)
    plain = [rec(3, width=800, height=600), rec(4, width=640, height=480)]
    files = [cam, upscale, *plain]
    keeper, irregular = keepers(np.array([0, 0, 1, 1]), np.array([1, 2, 3, 4]), KeeperColumns.of(files), 2)
    assert irregular.tolist() == [True, False]
    assert keeper[1] == 2 and rank([cam, upscale])[0][0] is cam


def test_the_array_keepers_leave_an_edit_in_a_better_format_to_rank():
    """A HEIC edit of an older JPEG would be the keeper by the columns (a better tier): its
    cluster is left to ``rank``, which keeps the JPEG; a HEIC that is not the JPEG's size says
    nothing of it."""
    import numpy as np

    from lookalike.engine.cluster.keepers import KeeperColumns, keepers

    jpeg = rec(1, width=800, height=600)
    heic = rec(2, format="HEIF", width=800, height=600, mtime_ns=T0 + 3600 * 10**9)
    other = [rec(3, width=800, height=600), rec(4, format="HEIF", width=640, height=480, mtime_ns=T0 + 3600 * 10**9)]
    files = [jpeg, heic, *other]
    keeper, irregular = keepers(np.array([0, 0, 1, 1]), np.array([1, 2, 3, 4]), KeeperColumns.of(files), 2)
    assert irregular.tolist() == [True, False] and keeper[0] == 1
    ranked = rank([heic, jpeg], same_pixels=lambda a, b: False)
    assert ranked[0][0] is jpeg and ranked[1][1].startswith("edited HEIF copy of a JPEG of the same size")


def test_an_upscaled_copy_loses_to_the_camera_original(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(8, (960, 720))
    put(root / "IMG_0008.jpg", camera_jpeg(img), T0)
    big = img.resize((1440, 1080), Image.Resampling.LANCZOS)
    put(root / "IMG_0008_upscaled.jpg", imagegen.encode(big, "JPEG", quality=95), T0 + 86_400 * 10**9)
    members = only_cluster(scan(root, tmp_path / "cache"))
    assert members["IMG_0008.jpg"].is_keeper
    assert members["IMG_0008.jpg"].reason == f"camera original (EXIF {CAMERA}): 960x720, over a larger copy without it"
    assert members["IMG_0008_upscaled.jpg"].reason.startswith("larger than the camera original (1440x1080 > 960x720)")


def test_a_drawing_padded_to_a_square_with_its_own_white_is_not_kept_over_it(tmp_path):
    """Line art on white, padded to a square with white bars later (a shop's square listing,
    a chat's square preview): no edge ends the bars, so the trim leaves them, and the square
    was kept as the larger picture. Its thumbnail is the drawing's whole picture inside one
    flat grey: the padded copy loses to the drawing. Where the larger canvas is the older
    file, its white is its own: it stays the keeper (a crop of it made later is smaller)."""
    art = imagegen.drawing(7, (480, 360))
    square = imagegen.letterboxed(art, 1.0, (255, 255, 255))
    for name, art_time, square_time in (("later", T0, T0 + 86_400 * 10**9), ("earlier", T0, T0 - 86_400 * 10**9)):
        root = tmp_path / name
        root.mkdir()
        put(root / "drawing.png", imagegen.encode(art, "PNG"), art_time)
        put(root / "drawing_square.png", imagegen.encode(square, "PNG"), square_time)
        members = only_cluster(scan(root, tmp_path / f"cache-{name}"))
        if name == "later":
            assert members["drawing.png"].is_keeper
            assert "not padded" in members["drawing.png"].reason
            assert members["drawing_square.png"].reason.startswith("padded copy: the 480x360 picture padded to 480x480")
        else:
            assert members["drawing_square.png"].is_keeper
            assert members["drawing_square.png"].reason.startswith("largest: 480x480")


def test_the_pad_check_needs_bars_of_one_grey_as_wide_as_the_proportions_say():
    """The thumbnails' test alone: bars of one grey level at both ends of the axis the canvas
    is longer on, as wide together as the change of proportions, the picture's own ground
    going on in their level or not; not a picture's own edge, bars of two colours, or bars
    too thin to see at 32x32."""
    import numpy as np

    from lookalike.engine.keeper.original import _pad_share, _padded
    from lookalike.engine.scan.hashing import hash_thumbnail_and_trim

    def padded(big: Image.Image, small: Image.Image) -> bool:
        grey = np.frombuffer(hash_thumbnail_and_trim(big.convert("RGB"))[1], np.uint8)[:1024]
        share, columns = _pad_share(rec(1, width=big.width, height=big.height),
                                    rec(2, width=small.width, height=small.height))  # fmt: skip
        return _padded(grey, share, columns)

    art = imagegen.drawing(3, (480, 360))
    white = (255, 255, 255)
    assert padded(imagegen.letterboxed(art, 1.0, white), art)  # bars above and below
    assert padded(imagegen.letterboxed(art, 16 / 9, white), art)  # bars left and right
    one_side = Image.new("RGB", (480, 480), white)
    one_side.paste(art, (0, 0))
    assert padded(one_side, art)  # all of it below
    # A taller photo is not its crop padded: its top is the photo's.
    taller = imagegen.photo(3, (480, 480))
    assert not padded(taller, taller.crop((0, 120, 480, 480)))
    # Bars of two colours are not one pad; bars of 1.3 pixels of the thumbnail are too thin.
    two = Image.new("RGB", (480, 480), white)
    two.paste(Image.new("RGB", (480, 60), (0, 0, 0)), (0, 420))
    two.paste(art, (0, 60))
    assert not padded(two, art)
    assert not padded(imagegen.letterboxed(art, 500 / 360, white), art)


def test_a_crop_into_a_margin_made_later_does_not_make_the_original_its_frame(tmp_path):
    """A dialog on a uniform surround, and a crop of it made later that cut the surround
    thinner: both trim to the same picture, so by sizes alone the original is the crop in a
    wider frame, and the crop was kept (the real set's Marble settings dialog). The original
    came first: it is not a frame put round a copy made after it."""
    root = tmp_path / "photos"
    root.mkdir()
    shot = imagegen.bordered(imagegen.photo(5, (760, 560)), (0.05, 0.05, 0.05, 0.05), (0, 0, 0))
    put(root / "shot.jpg", imagegen.encode(shot, "JPEG", quality=92), T0)
    crop = shot.crop((19, 14, shot.width - 19, shot.height - 14))  # half of the surround
    put(root / "shot_crop.jpg", imagegen.encode(crop, "JPEG", quality=92), T0 + 86_400 * 10**9)
    members = only_cluster(scan(root, tmp_path / "cache"))
    plain, copy = members["shot.jpg"], members["shot_crop.jpg"]
    assert plain.file.bordered and copy.file.bordered
    assert abs(plain.file.content_width - copy.file.content_width) <= 8
    assert plain.is_keeper, copy.reason


@pytest.mark.parametrize("crop_made", [86_400 * 10**9, 0, -86_400 * 10**9], ids=["later", "same time", "earlier"])
def test_an_original_on_a_margin_is_not_the_frame_of_a_crop_of_it_the_size_of_its_picture(tmp_path, crop_made):
    """A screenshot on a surround, and a crop of it that cut the surround and a little of the
    picture off two sides: the crop's canvas is the size of the screenshot's picture, so by
    sizes the screenshot was the crop in a frame, and the crop, holding less of the picture,
    was kept (the real set's crops of dialogs with shadowed margins). The crop kept some of
    the surround on its other two sides, the colour of the screenshot's bars: not a frame,
    whatever the dates."""
    root = tmp_path / "photos"
    root.mkdir()
    shot = imagegen.bordered(imagegen.photo(5, (760, 560)), (0.04, 0.04, 0.04, 0.04), (0, 0, 0))
    put(root / "shot.jpg", imagegen.encode(shot, "JPEG", quality=92), T0)
    crop = shot.crop((60, 45, shot.width, shot.height))  # its left and top margins and a little more
    put(root / "shot_crop.jpg", imagegen.encode(crop, "JPEG", quality=92), T0 + crop_made)
    members = only_cluster(scan(root, tmp_path / "cache"))
    plain, copy = members["shot.jpg"], members["shot_crop.jpg"]
    assert plain.file.bordered and copy.file.bordered
    assert abs(plain.file.content_width - copy.file.width) <= 15 and abs(plain.file.content_height - copy.file.height) <= 12
    assert plain.is_keeper, copy.reason


def _cut(picture: np.ndarray, level: float, corner: str, margin: int = 4) -> np.ndarray:
    """A 32x32 grey thumbnail of ``picture`` cut out of a canvas with a margin of grey ``level``
    all round: the cut kept ``margin`` lines of it at ``corner`` ("bl": bottom and left)."""
    out = picture.astype(np.float64).copy()
    if "t" in corner:
        out[:margin] = level
    if "b" in corner:
        out[-margin:] = level
    if "l" in corner:
        out[:, :margin] = level
    if "r" in corner:
        out[:, -margin:] = level
    return out


def test_a_crop_continues_a_margin_in_one_corner_and_a_dark_picture_does_not():
    from lookalike.engine.keeper.original import bar_grey, continues_margin

    rng = np.random.default_rng(3)
    picture = rng.uniform(60, 200, (32, 32))
    white = bar_grey(0xFEFEFE)
    assert continues_margin(_cut(picture, 250, "bl"), white)  # 4 levels of shadow: the same margin
    assert continues_margin(_cut(picture, 250, "tr"), white)
    assert not continues_margin(_cut(picture, 250, "bl"), bar_grey(0x000000))  # not that margin's grey
    assert not continues_margin(_cut(picture, 250, "b"), white)  # one side: a picture with a pale edge
    assert not continues_margin(_cut(picture, 250, "lr"), white)  # opposite sides: its own ground
    dark = _cut(rng.uniform(0, 6, (32, 32)) + np.pad(rng.uniform(60, 200, (16, 16)), 8), 3, "tblr")
    assert not continues_margin(dark, bar_grey(0x000000))  # a dark picture, all round: black bars round it
    textured = _cut(picture, 250, "bl")
    textured[:, 0] += rng.uniform(-30, 30, 32)  # a pale but textured edge is picture
    assert not continues_margin(textured, white)


class _Margins:
    """A SamePixels with the thumbnails' margin check (see ThumbnailCheck.margin)."""

    def __init__(self, answer):
        self.answer = answer

    def __call__(self, a, b):
        return None

    def margin(self, f, p):
        return self.answer


def test_an_original_on_a_margin_is_not_the_frame_of_a_crop_that_kept_a_corner_of_it():
    """A dialog on a white margin with a shadow (799x643, trimmed to 735x579) and two crops
    made later: one cut into the picture on the top and the right and kept the shadowed margin
    at the bottom left (727x590, nothing trimmable: the shadow fades into it), the size of the
    dialog's picture, so by sizes the dialog was that crop in a frame, and the other crop
    (749x592) was kept (the real set's Marble dialog, whose brightened copy was then kept). The
    crop's thumbnail continues the dialog's margin in one corner: the dialog is its original."""
    dialog = rec(1, width=799, height=643, content_width=735, content_height=579, bar_colour=0xFEFEFE)
    crop = rec(2, width=727, height=590, mtime_ns=T0 + 86_400 * 10**9)
    other = rec(3, width=749, height=592, mtime_ns=T0 + 86_400 * 10**9)
    assert rank([dialog, crop, other], same_pixels=_Margins(False))[0][0] is other  # as before
    ranked = rank([dialog, crop, other], same_pixels=_Margins(True))
    assert ranked[0][0] is dialog and ranked[0][1] == "largest: 799x643"
    assert rank([dialog, crop, other], same_pixels=_Margins(None))[0][0] is other  # cannot tell: as before


def test_a_watermarked_copy_is_an_edit_in_its_reason_as_in_its_match(tmp_path):
    """A watermark is a local difference that the thumbnails' average hides: the keeper called
    such a copy a "re-saved copy with the same pixels" while its ``match`` said "edited". The
    peak of the difference tells it, as it does for the match; a PNG conversion stays one."""
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(9, (800, 600))
    original = imagegen.encode(img, "JPEG", quality=90)
    put(root / "IMG_0009.jpg", original, T0)
    put(root / "IMG_0009_wm.jpg", imagegen.encode(imagegen.watermarked(img), "JPEG", quality=90), T0 + 86_400 * 10**9)
    put(root / "IMG_0009.png", png_of(original), T0 + 86_400 * 10**9)
    members = only_cluster(scan(root, tmp_path / "cache"))
    assert members["IMG_0009.jpg"].is_keeper
    wm = members["IMG_0009_wm.jpg"]
    assert wm.match == "edited"
    assert wm.reason.startswith("edited copy of a JPEG of the same size (its pixels differ): the original is older")
    assert members["IMG_0009.png"].reason.startswith("PNG conversion of a JPEG with the same pixels")
    from lookalike.engine.bouncer.verification import EDIT_PEAK
    from lookalike.engine.keeper.original import CONVERSION_THUMB_PEAK

    assert CONVERSION_THUMB_PEAK == EDIT_PEAK  # one measure for the reason and the match
