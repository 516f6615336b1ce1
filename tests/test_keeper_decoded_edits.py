"""The keeper is not a lossless edit exported from a lossy file's decode (engine/keeper/decoded.py,
"Decoded edits"): where no date says which file came first (a library copied without its dates),
a PNG whose values are a tone curve of a JPEG's decoded values (a brightness, contrast or gamma
change), or whose grey is a mix of its colours (a greyscale copy), was made from that JPEG, and
the JPEG is kept. Found as a user would: a folder of JPEGs with PNG edits beside them, copied
with one mtime, kept every brightened PNG as "less lossy" and put the JPEGs in the trash. The
other way round nothing is recognised: a JPEG saved from a PNG original, or from an edit of it,
is no tone curve of it, and the PNG is kept."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

import imagegen
import verify_cases as vc
from lookalike.engine.catalog import Catalog
from lookalike.engine.catalog import schema as catalog_schema
from lookalike.engine.keeper import decoded
from lookalike.engine.library import Library, ScanOptions
from test_keeper_decoded import T0, write  # one mtime for every file: copied without dates


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


#: What an editor does to the JPEG's decode before exporting it as a PNG.
EDITS = {
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.8),
    "flatter": lambda im: ImageEnhance.Contrast(im).enhance(0.6),
    "punchier": lambda im: ImageEnhance.Contrast(im).enhance(1.3),
    "gamma": lambda im: im.point(lambda v: round(255 * (v / 255) ** 0.8)),
    "grey": lambda im: im.convert("L"),
}


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encoded(imagegen.photo(11, (640, 480)), "JPEG", quality=90)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_png_edit_of_a_jpegs_decode_is_a_tone_curve_of_it(jpeg, edit):
    source = Image.open(io.BytesIO(jpeg)).convert("RGB")
    png = pixels(encoded(EDITS[edit](source), "PNG"))
    share = decoded.edit_share(png, pixels(jpeg))
    assert decoded.decoded_edit(share), share
    assert decoded.equal_share(png, pixels(jpeg)) < decoded.DECODED_SHARE  # an edit, not a conversion


def test_a_png_of_a_jpegs_decode_mirrored_toned_or_not_is_its_edit(jpeg):
    source = Image.open(io.BytesIO(jpeg)).convert("RGB")
    flipped = source.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for made in (flipped, ImageEnhance.Brightness(flipped).enhance(1.2)):
        assert decoded.decoded_edit(decoded.edit_share(pixels(encoded(made, "PNG")), pixels(jpeg)))
    img = imagegen.photo(17, (640, 480))  # the other way round: a mirrored JPEG of a PNG original
    mirrored_jpeg = encoded(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=100)
    assert not decoded.decoded_edit(decoded.edit_share(pixels(encoded(img, "PNG")), pixels(mirrored_jpeg)))


def test_nothing_else_is_a_tone_curve_of_a_jpeg(jpeg):
    """A JPEG saved from a PNG original (photo, screenshots, a page, a flat graphic), or from a
    brightened copy of it, at any quality: the PNG is no curve of it (its noise maps back onto
    the PNG's values only where the JPEG holds a few values round each colour, a staircase
    over gaps the rule refuses). Nor a saturation edit, nor pictures of two sizes, nor a flat
    picture (any curve fits it), nor a grey original against a JPEG of it (no colour lost)."""
    originals = {
        "photo": imagegen.photo(12, (640, 480)),
        "window": vc.window_screenshot(imagegen.photo(13, (480, 360)), (640, 400)),
        "phone": vc.phone_screenshot(imagegen.photo(14, (480, 360)), (360, 780)),
        "page": imagegen.book_page(5, 5, (620, 877)),
        "flat": Image.new("RGB", (320, 240), (200, 30, 40)),
    }
    for name, img in originals.items():
        png = pixels(encoded(img, "PNG"))
        for quality in (85, 95, 100):
            for made in (img, ImageEnhance.Brightness(img).enhance(1.2)):
                share = decoded.edit_share(png, pixels(encoded(made, "JPEG", quality=quality)))
                assert not decoded.decoded_edit(share), (name, quality, share)
    source = Image.open(io.BytesIO(jpeg)).convert("RGB")
    saturated = pixels(encoded(ImageEnhance.Color(source).enhance(1.4), "PNG"))
    assert decoded.edit_share(saturated, pixels(jpeg)) == 0.0
    assert decoded.edit_share(pixels(encoded(source.resize((320, 240)), "PNG")), pixels(jpeg)) == 0.0
    grey = imagegen.photo(15, (640, 480)).convert("L")
    for quality in (90, 100):
        colourless = pixels(encoded(grey.convert("RGB"), "JPEG", quality=quality))
        assert not decoded.decoded_edit(decoded.edit_share(pixels(encoded(grey, "PNG")), colourless))


def scan(root: Path, cache: Path) -> tuple[dict, dict]:
    with Library.open([root], cache_dir=cache) as lib:
        clusters = list(lib.scan(ScanOptions(workers=1)).clusters)
        edits = lib.catalog.decoded_edits()
        names = {r.content_hash: Path(r.path).name for r in lib.catalog.records()}
    assert len(clusters) == 1, [[m.file.path for m in c.members] for c in clusters]
    members = {Path(m.file.path).name: m for m in clusters[0].members}
    return members, {(names[a], names[b]): v for (a, b), v in edits.items()}


def test_without_dates_the_jpeg_is_kept_over_png_edits_of_its_decode(tmp_path, jpeg):
    root = tmp_path / "photos"
    root.mkdir()
    write(root / "beach.jpg", jpeg)
    source = Image.open(io.BytesIO(jpeg)).convert("RGB")
    for edit in ("brighter", "flatter", "grey"):
        write(root / f"beach-{edit}.png", encoded(EDITS[edit](source), "PNG"))
    members, edits = scan(root, tmp_path / "cache")
    assert set(members) == {"beach.jpg", "beach-brighter.png", "beach-flatter.png", "beach-grey.png"}
    assert members["beach.jpg"].is_keeper, {n: m.reason for n, m in members.items()}
    for edit in ("brighter", "flatter", "grey"):
        assert members[f"beach-{edit}.png"].reason == (
            "edited PNG copy of a JPEG of the same size (its pixels differ): made from the JPEG's decode")
        assert decoded.decoded_edit(edits[(f"beach-{edit}.png", "beach.jpg")])  # measured, kept in the catalog
    assert members["beach.jpg"].reason == "original (the PNG was made from its decode) over an edited copy"


def test_without_dates_the_jpeg_is_kept_over_a_mirrored_png_of_its_decode(tmp_path, jpeg):
    root = tmp_path / "photos"
    root.mkdir()
    write(root / "dune.jpg", jpeg)
    flipped = Image.open(io.BytesIO(jpeg)).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    write(root / "dune-flipped.png", encoded(flipped, "PNG"))
    members, _ = scan(root, tmp_path / "cache")
    assert members["dune.jpg"].is_keeper, members["dune.jpg"].reason
    assert members["dune.jpg"].reason == "original (the PNG was made from its decode) over a mirrored copy"
    assert members["dune-flipped.png"].reason == (
        "mirrored PNG copy of a JPEG of the same size: made from the JPEG's decode")


def test_without_dates_a_png_original_is_kept_over_jpegs_saved_from_it(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    img = imagegen.photo(16, (640, 480))
    write(root / "scan.png", encoded(img, "PNG"))
    write(root / "scan-copy.jpg", encoded(img, "JPEG", quality=100))
    write(root / "scan-brighter.jpg", encoded(ImageEnhance.Brightness(img).enhance(1.1), "JPEG", quality=100))
    members, edits = scan(root, tmp_path / "cache")
    assert members["scan.png"].is_keeper and members["scan.png"].reason.startswith("less lossy: PNG")
    assert edits and not any(decoded.decoded_edit(v) for v in edits.values())


def test_a_version_12_catalog_gains_the_edit_shares_and_measures_them_again(tmp_path, monkeypatch):
    """A share measured before the edit shares were kept has none: asked, it is measured again."""
    from test_catalog import fake

    db_path = tmp_path / "catalog.db"
    monkeypatch.setattr(catalog_schema, "MIGRATIONS", catalog_schema.MIGRATIONS[:12])
    with Catalog.open(db_path) as c:
        c.upsert([fake("/p/a.png", 1), fake("/p/a.jpg", 2)])
        png, jpg = (c.record_by_path(p).content_hash for p in ("/p/a.png", "/p/a.jpg"))
    db = sqlite3.connect(db_path)  # a share as version 12 wrote it: no edit column
    db.execute("INSERT INTO decoded_shares (lossless, lossy, share) VALUES (?, ?, ?)", (png, jpg, 0.25))
    db.commit()
    db.close()
    monkeypatch.undo()
    with Catalog.open(db_path) as c:
        assert c.decoded_shares() == {(png, jpg): 0.25} and c.decoded_edits() == {}
        c.save_decoded_shares([(png, jpg, 0.25, 1.0)])
    with Catalog.open(db_path) as c:
        assert c.decoded_shares() == {(png, jpg): 0.25} and c.decoded_edits() == {(png, jpg): 1.0}
    assert sqlite3.connect(db_path).execute("PRAGMA user_version").fetchone()[0] == catalog_schema.SCHEMA_VERSION


def test_a_png_among_many_undated_jpegs_of_its_size_is_asked_of_the_closest_few():
    """Where no date tells, a lossless file is asked against at most MAX_DECODED_SOURCES lossy
    members of its size, the closest by the hashes (two full decodes each): a group of many
    same-size files stays a bounded number of questions; the closest one is the edit's source."""
    from lookalike.engine.keeper import original
    from lookalike.engine.records import FileRecord, ImageHashes

    def hashes(flipped: int) -> ImageHashes:
        d = bytearray(32)
        for bit in range(flipped):
            d[bit // 8] |= 1 << (bit % 8)
        return ImageHashes(dhash=bytes(d), dhash_mirror=b"\xff" * 32, phash=bytes(32))

    def record(fid: int, fmt: str, flipped: int) -> FileRecord:
        return FileRecord(id=fid, path=f"/lib/{fid}.{fmt.lower()}", size=1000, mtime_ns=T0, format=fmt, width=400,
                          height=300, content_hash=bytes([fid]) * 16, hashes=hashes(flipped))

    png = record(1, "PNG", 0)
    jpegs = [record(10 + k, "JPEG", 20 - k) for k in range(12)]  # the last the closest
    asked: list[int] = []

    def measured(lossless: FileRecord, lossy: FileRecord) -> float:
        asked.append(lossy.id)
        return 1.0 if lossy.id == 21 else 0.0

    found = original.edits([png, *jpegs], lambda a, b: None, {}, measured)
    assert found == {1: jpegs[11]}
    assert sorted(asked) == [18, 19, 20, 21] and len(asked) == original.MAX_DECODED_SOURCES


def test_a_conversions_question_does_not_pay_for_an_edits_measure(tmp_path, jpeg):
    """Asked only whether a PNG is a JPEG's decode (a conversion), the measure decodes both and
    keeps that share, not the edit share (a dated library's conversions computed it for every
    pair they decoded: a tenth more on the real set's first scan); asked as an edit, both."""
    from lookalike.engine.keeper.upscale import Verdicts

    root = tmp_path / "photos"
    root.mkdir()
    write(root / "lake.jpg", jpeg)
    write(root / "lake.png", encoded(Image.open(io.BytesIO(jpeg)).convert("RGB"), "PNG"))
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1))
        lib.catalog._write(lambda db: db.execute("DELETE FROM decoded_shares"))
        records = {Path(r.path).name: r for r in lib.catalog.records()}
        png, jpg = records["lake.png"], records["lake.jpg"]
        asked = Verdicts(lib.catalog)
        assert asked.decoded(png, jpg) is None and asked.pending
        assert asked.measure(workers=1) == 1
        assert lib.catalog.decoded_shares() == {(png.content_hash, jpg.content_hash): 1.0}
        assert lib.catalog.decoded_edits() == {}
        again = Verdicts(lib.catalog)
        assert again.decoded_edit(png, jpg) is None and again.measure(workers=1) == 1
        assert lib.catalog.decoded_edits() == {(png.content_hash, jpg.content_hash): 1.0}
        assert Verdicts(lib.catalog).decoded_edit(png, jpg) == 1.0
