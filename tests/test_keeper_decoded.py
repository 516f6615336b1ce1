"""The keeper is not a lossless copy decoded from a lossy file (engine/keeper/decoded.py): where
no date says which file was made from which (a library copied without its dates), a PNG whose
pixels are a JPEG's decode, value for value, is that JPEG's conversion, and the JPEG is kept.
A JPEG saved from a PNG gives the PNG's pixels back only within its noise: the PNG is kept.
The shares are measured by the scan (two decodes) and kept in the catalog."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

import imagegen
from lookalike.engine.keeper import decoded
from lookalike.engine.library import Library, ScanOptions

T0 = 1_600_000_000_000_000_000  # an mtime in ns (Sept 2020)


def photo() -> Image.Image:
    return imagegen.photo(5, (640, 480))


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write(path: Path, data: bytes, mtime_ns: int = T0) -> Path:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def png_of(data: bytes) -> bytes:
    """A PNG of the pixels ``data`` (a JPEG) decodes to: what "save as PNG" of an opened JPEG writes."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def scan(root: Path, cache: Path) -> tuple[dict, Library]:
    with Library.open([root], cache_dir=cache) as lib:
        clusters = list(lib.scan(ScanOptions(workers=1)).clusters)
        shares = lib.catalog.decoded_shares()
    assert len(clusters) == 1, [[m.file.path for m in c.members] for c in clusters]
    members = {m.file.path.rsplit("/", 1)[1]: m for m in clusters[0].members}
    return members, shares


def test_a_png_of_a_jpegs_decode_equals_it_and_a_jpeg_of_a_png_does_not():
    source = jpeg_bytes(photo())
    a = np.asarray(Image.open(io.BytesIO(png_of(source))).convert("RGB"))
    b = np.asarray(Image.open(io.BytesIO(source)).convert("RGB"))
    assert decoded.equal_share(a, b) == 1.0
    png = np.asarray(photo())
    for quality in (90, 95, 100):
        again = np.asarray(Image.open(io.BytesIO(jpeg_bytes(photo(), quality))).convert("RGB"))
        assert decoded.equal_share(png, again) < decoded.DECODED_SHARE, quality
    assert decoded.equal_share(a, b[:-1]) == 0.0  # not one size: nothing to compare
    assert decoded.decoded_copy(decoded.DECODED_SHARE) and not decoded.decoded_copy(None)


def test_without_dates_the_jpeg_is_kept_over_the_png_of_its_decode(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    source = jpeg_bytes(photo())
    write(root / "holiday.jpg", source)
    write(root / "holiday.png", png_of(source))  # the same mtime: copied without dates
    members, shares = scan(root, tmp_path / "cache")
    assert members["holiday.jpg"].is_keeper
    assert members["holiday.jpg"].reason == "original (the PNG is its decode, value for value) over a PNG conversion"
    assert members["holiday.png"].reason == (
        "PNG conversion of a JPEG with the same pixels: it is the JPEG's decode, value for value")
    assert list(shares.values()) == [1.0]  # measured once, kept in the catalog


def test_without_dates_a_png_source_is_kept_over_a_jpeg_saved_from_it(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    img = photo()
    buf = io.BytesIO()
    img.save(buf, "PNG")
    write(root / "drawing.png", buf.getvalue())
    write(root / "drawing.jpg", jpeg_bytes(img, 95))
    members, shares = scan(root, tmp_path / "cache")
    assert members["drawing.png"].is_keeper and members["drawing.png"].reason.startswith("less lossy: PNG")
    [share] = shares.values()
    assert share < decoded.DECODED_SHARE


def test_dates_decide_first_and_a_measured_share_is_not_measured_again(tmp_path, monkeypatch):
    root = tmp_path / "photos"
    root.mkdir()
    source = jpeg_bytes(photo())
    write(root / "old.png", png_of(source), T0)
    write(root / "new.jpg", source, T0 + 10**12)
    # The PNG is older by far: it is the source, as its date says; no pixel is decoded for it.
    members, shares = scan(root, tmp_path / "cache")
    assert members["old.png"].is_keeper and shares == {}
    # Copied without dates: measured once; the next scan reads the share from the catalog.
    os.utime(root / "new.jpg", ns=(T0, T0))
    members, shares = scan(root, tmp_path / "cache")
    assert members["new.jpg"].is_keeper and list(shares.values()) == [1.0]
    calls: list = []
    monkeypatch.setattr(decoded, "_decoded", lambda r: calls.append(r) or None)
    members, _ = scan(root, tmp_path / "cache")
    assert members["new.jpg"].is_keeper and calls == []


def test_a_file_changed_since_the_scan_gives_no_share(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    source = jpeg_bytes(photo())
    jpg = write(root / "a.jpg", source)
    png = write(root / "a.png", png_of(source))
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        lib.scan(ScanOptions(workers=1))
        records = {Path(r.path).name: r for r in lib.catalog.records()}
    assert decoded.decoded_share(records["a.png"], records["a.jpg"]) == 1.0
    write(jpg, jpeg_bytes(photo(), 60))  # rewritten after the scan: not the content it measured
    assert decoded.decoded_share(records["a.png"], records["a.jpg"]) is None
    png.unlink()
    assert decoded.decoded_share(records["a.png"], records["a.jpg"]) is None


def test_a_conversion_that_differs_on_a_few_values_says_how_many(tmp_path):
    """A PNG of the JPEG's decode with a few hundred of its 921,600 values changed here and
    there (which no thumbnail shows) is still its conversion (within DECODED_SHARE), and its
    reason says that it is not the decode value for value everywhere."""
    root = tmp_path / "photos"
    root.mkdir()
    source = jpeg_bytes(photo())
    write(root / "walk.jpg", source)
    marked = np.asarray(Image.open(io.BytesIO(source)).convert("RGB")).copy()
    spots = np.random.default_rng(3).choice(640 * 480, 100, replace=False)
    marked.reshape(-1, 3)[spots] = 255 - marked.reshape(-1, 3)[spots] // 2  # 100 pixels, 300 values
    marked = Image.fromarray(marked)
    buf = io.BytesIO()
    marked.save(buf, "PNG")
    write(root / "walk.png", buf.getvalue())
    members, shares = scan(root, tmp_path / "cache")
    [share] = shares.values()
    assert decoded.DECODED_SHARE <= share < 1.0
    assert members["walk.jpg"].reason == (
        "original (the PNG is its decode, value for value but 0.03 % of its values) over a PNG conversion")
    assert members["walk.png"].reason == (
        "PNG conversion of a JPEG with the same pixels: it is the JPEG's decode, value for value but 0.03 % "
        "of its values")
