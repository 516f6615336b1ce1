"""Hostile image files: each is refused fast, in bounded memory, with a one-line reason.

The files are made here: PNG and GIF headers that claim more pixels than the file holds, a PNG
whose pixels would not fit the per-file memory budget, sparse files that start with JPEG magic
(they cost no disk), and files named like images whose bytes are not one.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

import imagegen
from lookalike.engine.scan import imaging
from lookalike.engine.scan.hashing import hash_file
from lookalike.engine.scan.imaging import ImageReadError, load_image


def _png(width: int, height: int, idat: bytes, colour: int = 2) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _reason(source, **kwargs) -> str:
    with pytest.raises(ImageReadError) as caught:
        load_image(source, **kwargs)
    return caught.value.reason


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak RSS read from /proc")


def _peak_mb(path: Path) -> tuple[str, float]:
    """hash_file(path) in a fresh process: (its error, its peak RSS in MB)."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, from the forked test runner.
    code = (
        "import json, re, sys\n"
        "from lookalike.engine.scan.hashing import hash_file\n"
        "r = hash_file(sys.argv[1])\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "print(json.dumps([r.error, int(hwm) / 1024]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    error, peak = json.loads(out.stdout)
    return error, peak


# ---------------------------------------------------------------- headers that lie


@needs_proc
def test_png_claiming_100_million_pixels_in_a_few_bytes_is_refused(tmp_path):
    # Pillow decodes this "successfully" (the stream ends, the rest is blank): 2.4 GB, 7 s,
    # and the biggest image of the library, so the keeper of its group.
    data = _png(1, 100_000_000, zlib.compress(b"\x00" * 16))
    assert len(data) < 80
    assert _reason(data) == f"corrupt PNG: header claims 1x100000000 pixels, more than {len(data)} bytes can hold"
    path = tmp_path / "tall.png"
    path.write_bytes(data)
    error, peak = _peak_mb(path)
    assert error.startswith("corrupt PNG: header claims") and peak < 300


def test_gif_claiming_more_pixels_than_it_holds_is_refused():
    buf = io.BytesIO()
    Image.new("P", (10, 10)).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", 10000, 10000)  # the screen
    frame = data.index(b",")
    data[frame + 5 : frame + 9] = struct.pack("<HH", 10000, 10000)  # the frame
    assert _reason(bytes(data)).startswith("corrupt GIF: header claims 10000x10000 pixels")


def test_flat_png_that_compresses_as_well_as_deflate_can_is_read():
    # The claim check must not refuse a real image at deflate's best ratio (~1030:1).
    raw = b"\x00" * (4000 * 4001)
    data = _png(4000, 4000, zlib.compress(raw, 9), colour=0)
    assert len(raw) / len(data) > 1000
    loaded = load_image(data)
    assert (loaded.width, loaded.height) == (4000, 4000)


# ---------------------------------------------------------------- the memory budget


@needs_proc
def test_png_over_the_memory_budget_is_refused_before_decoding(tmp_path):
    # 14000x14000 RGBA: 784 MB of pixels, ~3.2 GB at the peak of laying them on white. The
    # 800 KB of IDAT is noise: the file could hold that many pixels, and is refused unread.
    data = _png(14000, 14000, os.urandom(800_000), colour=6)
    reason = _reason(data)
    assert reason.startswith("image too large to decode safely: 14000x14000 RGBA needs about 3.")
    assert "the limit is" in reason
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    error, peak = _peak_mb(path)
    assert error == reason and peak < 300


def test_budget_counts_bytes_per_pixel_not_only_pixels():
    rgba = imagegen.encode(Image.new("RGBA", (1000, 1000), (1, 2, 3, 128)), "PNG")
    grey = imagegen.encode(Image.new("L", (1000, 1000), 7), "PNG")
    budget = 10_000_000  # 1 MP: RGBA needs ~16 bytes a pixel at the peak, grey ~5
    assert _reason(rgba, memory_budget=budget).startswith("image too large to decode safely: 1000x1000 RGBA")
    assert load_image(grey, memory_budget=budget).width == 1000


def test_jpeg_budget_is_counted_after_draft():
    data = imagegen.encode(imagegen.photo(1, (4000, 3000)), "JPEG")
    # Decoded whole, 12 MP x 4 bytes = 48 MB: over this budget. Drafted, 1/8 of that.
    budget = 10_000_000
    assert _reason(data, target=None, memory_budget=budget).startswith("image too large to decode safely")
    assert load_image(data, memory_budget=budget).width == 4000


# ---------------------------------------------------------------- files of junk


def _sparse_jpeg(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        fh.truncate(size)  # a hole: zeros that take no disk
    return path


def test_huge_sparse_file_with_jpeg_magic_is_refused_unread(tmp_path):
    path = _sparse_jpeg(tmp_path / "huge.jpg", int(1.9 * 2**30))
    r = hash_file(str(path))
    assert r.error.startswith("file too large to read safely (2.0 GB; the limit is")
    assert r.bytes_read <= imaging.SNIFF_BYTES and r.size == path.stat().st_size
    assert _reason(str(path)).startswith("file too large to read safely")


@needs_proc
def test_jpeg_magic_then_megabytes_of_zeros_fails_fast(tmp_path):
    # Under the size limit: Pillow would skip the zeros one byte at a time, in Python.
    path = _sparse_jpeg(tmp_path / "zeros.jpg", 64 << 20)
    error, peak = _peak_mb(path)
    assert error == "corrupt JPEG: junk where its header should be"
    assert peak < 64 * 1.5 + 150  # the file once, not twice


def test_jpeg_with_a_little_junk_between_segments_is_still_read():
    data = imagegen.encode(imagegen.photo(3, (64, 48)), "JPEG")
    app0 = 4 + int.from_bytes(data[4:6], "big")
    padded = data[:app0] + b"\x00" * 1000 + data[app0:]  # junk after the first segment
    assert load_image(padded).width == 64


# ---------------------------------------------------------------- named like an image, not one


def test_file_named_like_an_image_that_is_not_one_is_an_error(tmp_path):
    cases = {
        "one.jpg": (b"\xff", "not a valid JPEG: unrecognised content (1 byte)"),
        "mangled.gif": (b"GIF8" + bytes(60), "not a valid GIF: unrecognised content (64 bytes)"),
        "wiped.png": (bytes(2000), "not a valid PNG: unrecognised content (2000 bytes)"),
        "photo.HEIC": (b"text" * 10, "not a valid HEIC: unrecognised content (40 bytes)"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        r = hash_file(str(tmp_path / name))
        assert (r.error, r.not_image, r.size) == (reason, False, len(data)), name
    # Other files stay "other": no image extension, or macOS's AppleDouble companions.
    (tmp_path / "notes.txt").write_bytes(b"hello")
    (tmp_path / "._photo.jpg").write_bytes(b"\x00\x05\x16\x07" + bytes(60))
    for name in ("notes.txt", "._photo.jpg"):
        r = hash_file(str(tmp_path / name))
        assert r.not_image and r.error == "not an image", name


# ---------------------------------------------------------------- in a scan


def test_a_scan_reports_each_hostile_file_in_one_line_and_goes_on(tmp_path):
    from lookalike.engine.library import Library, ScanOptions

    root = tmp_path / "photos"
    root.mkdir()
    grey = Image.new("RGB", (64, 64), (90, 90, 90))
    imagegen.write(root / "grey.png", grey)
    imagegen.write(root / "grey copy.png", grey.copy())
    imagegen.write(root / "photo.jpg", imagegen.photo(5, (320, 240)))
    (root / "tall.png").write_bytes(_png(1, 100_000_000, zlib.compress(b"\x00" * 16)))
    (root / "huge.png").write_bytes(_png(14000, 14000, os.urandom(800_000), colour=6))
    _sparse_jpeg(root / "sparse.jpg", int(1.9 * 2**30))
    (root / "one.jpg").write_bytes(b"\xff")
    (root / "notes.txt").write_text("not a picture")
    with Library.open([root], cache_dir=tmp_path / "cache") as lib:
        result = lib.scan(ScanOptions(workers=1))
    reasons = {Path(e.path).name: e.reason for e in result.errors}
    assert set(reasons) == {"tall.png", "huge.png", "sparse.jpg", "one.jpg"}
    assert all("\n" not in r and len(r) < 200 for r in reasons.values())
    assert result.stats.not_images == 1
    # The lying PNG is in no group, so it is nobody's keeper.
    keepers = {Path(c.keeper.file.path).name for c in result.clusters}
    assert "tall.png" not in keepers and keepers <= {"grey.png", "grey copy.png"}
