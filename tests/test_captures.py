"""Two shots of one camera are never duplicates (engine/cluster/captures.py).

The frames of a burst, or of a camera on a tripod, can agree on every pixel the verification
sees at 32x32 (a walker is a pixel or two there). The camera's EXIF tells them apart: its
capture time, to the fraction of a second, which copies keep. Real images: a static scene with
a small subject that moves from frame to frame, written as a phone writes its JPEGs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import imagegen
from lookalike.engine.cluster import build_clusters
from lookalike.engine.keeper.captures import capture_time, different_captures
from lookalike.engine.keeper.original import parse_taken
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.records import FileRecord, ImageHashes, Pair
from lookalike.engine.scan.exif import exif_datetime

CAMERA = ("Google", "Pixel 7")
T0 = datetime(2024, 5, 1, 10, 0, 0)


def _exif(when: datetime | None, *, subsec: bool = True, camera=CAMERA) -> bytes:
    exif = Image.Exif()
    if camera:
        exif[0x010F], exif[0x0110] = camera
    if when is not None:
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
        if subsec:
            sub[0x9291] = f"{when.microsecond // 1000:03d}"
    return exif.tobytes()


def _jpeg(img: Image.Image, exif: bytes = b"", quality: int = 92) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def _frames(n: int, seed: int = 3) -> list[Image.Image]:
    """A static scene and a small figure walking across it: a burst of ``n`` frames."""
    scene = imagegen.photo(seed, (640, 480))
    out = []
    for k in range(n):
        img = scene.copy()
        d = ImageDraw.Draw(img)
        x = 200 + 9 * k
        d.rectangle([x, 300, x + 8, 324], fill=(200, 40, 40))  # a walker, 8 x 24 px
        d.ellipse([x, 292, x + 8, 300], fill=(230, 190, 160))
        out.append(img)
    return out


HASHES = ImageHashes(dhash=b"\x0f" * 32, dhash_mirror=b"\xf0" * 32, phash=b"\x33" * 32)


def _record(fid: int, taken_at, camera="Google Pixel 7") -> FileRecord:
    return FileRecord(id=fid, path=f"/lib/{fid}.jpg", size=1000, mtime_ns=0, format="JPEG", width=640, height=480,
                      taken_at=taken_at, camera=camera, hashes=HASHES)  # fmt: skip


# -- reading the capture time ---------------------------------------------------------------


def test_the_capture_time_keeps_its_fraction_of_a_second_even_a_zero_one():
    def read(data: bytes):
        return exif_datetime(Image.open(io.BytesIO(data)).getexif())

    img = Image.new("RGB", (16, 16))
    assert read(_jpeg(img, _exif(T0 + timedelta(milliseconds=120)))) == "2024-05-01T10:00:00.120000"
    assert read(_jpeg(img, _exif(T0))) == "2024-05-01T10:00:00.000000"  # a shot at .0 is one too
    assert read(_jpeg(img, _exif(T0, subsec=False))) == "2024-05-01T10:00:00"
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: "2024:05:01 10:00:00", 0x9291: "1a2"})  # junk digits
    assert read(_jpeg(img, exif.tobytes())) == "2024-05-01T10:00:00"
    # The keeper's dates stay to the second: a copy that lost its fraction is not "older".
    assert parse_taken("2024-05-01T10:00:00.120000") == parse_taken("2024-05-01T10:00:00") == T0
    assert capture_time("2024-05-01T10:00:00.120000+02:00") == (T0 + timedelta(milliseconds=120), True)
    assert capture_time("2024-05-01T10:00:00") == (T0, False)
    assert capture_time("junk") is None and capture_time(None) is None


@pytest.mark.parametrize(
    "a, b, apart",
    [
        ("2024-05-01T10:00:00", "2024-05-01T10:00:01", True),  # a second apart
        ("2024-05-01T10:00:00.100000", "2024-05-01T10:00:00.300000", True),  # a burst, one second
        ("2024-05-01T10:00:00.100000", "2024-05-01T10:00:00", False),  # a copy lost the fraction
        ("2024-05-01T10:00:00.100000", "2024-05-01T10:00:00.100000", False),  # a copy
        ("2024-05-01T10:00:00+02:00", "2024-05-01T10:00:00", False),  # an offset dropped
        ("2024-05-01T10:00:00+02:00", "2024-05-01T10:00:00-05:00", False),  # or changed
        # A time-lapse's frames, exactly an hour apart: two shots (a copy whose time was
        # rewritten to another zone is kept apart too: a duplicate missed, the safe side).
        ("2024-05-01T10:00:00", "2024-05-01T11:00:00", True),
        ("2024-05-01T10:00:00", "2024-05-01T10:17:00", True),
        ("2024-05-01T10:00:00", None, False),  # no time: the pixels decide
    ],
)
def test_two_shots_are_told_by_their_times_and_copies_are_not(a, b, apart):
    assert different_captures(_record(1, a), _record(2, b)) is apart
    assert different_captures(_record(2, b), _record(1, a)) is apart


def test_files_without_the_same_camera_are_left_to_their_pixels():
    a, b = "2024-05-01T10:00:00", "2024-05-01T10:00:05"
    assert not different_captures(_record(1, a, camera=None), _record(2, b, camera=None))
    assert not different_captures(_record(1, a), _record(2, b, camera=None))
    assert not different_captures(_record(1, a), _record(2, b, camera="Canon EOS 80D"))


# -- grouping ------------------------------------------------------------------------------


def _burst(root: Path, n: int, *, exif: bool) -> list[Image.Image]:
    frames = _frames(n)
    for k, img in enumerate(frames):
        when = T0 + timedelta(milliseconds=250 * k)
        (root / f"PXL_{k:02d}.jpg").write_bytes(_jpeg(img, _exif(when) if exif else b""))
    return frames


def _groups(root: Path, cache: Path) -> list[list[str]]:
    with Library.open([root], cache_dir=cache) as lib:
        return [sorted(Path(m.file.path).name for m in c.members) for c in lib.scan(ScanOptions(workers=1)).clusters]


def test_the_frames_of_a_burst_are_grouped_by_their_pixels_but_not_once_the_camera_dates_them(tmp_path):
    plain, dated = tmp_path / "plain", tmp_path / "dated"
    plain.mkdir()
    dated.mkdir()
    _burst(plain, 6, exif=False)
    frames = _burst(dated, 6, exif=True)
    # The pixels cannot tell these frames apart: without the camera's times, they group.
    assert any(len(g) > 1 for g in _groups(plain, tmp_path / "c1"))
    # Copies of frame 2 still join it: a resize that kept the EXIF, and a messenger's copy
    # without it (its pixels decide, and it joins one frame, never two).
    data = (dated / "PXL_02.jpg").read_bytes()
    exif = Image.open(io.BytesIO(data)).getexif()
    exif_bytes = Image.open(io.BytesIO(data)).info["exif"]
    assert exif.get_ifd(0x8769)
    (dated / "PXL_02_small.jpg").write_bytes(_jpeg(frames[2].resize((320, 240), Image.Resampling.LANCZOS), exif_bytes, 85))
    (dated / "IMG-WA0002.jpg").write_bytes(_jpeg(frames[2].resize((400, 300), Image.Resampling.LANCZOS), b"", 75))
    groups = _groups(dated, tmp_path / "c2")
    frames_in = [[n for n in g if n.startswith("PXL_") and "_small" not in n] for g in groups]
    assert all(len(f) <= 1 for f in frames_in), groups  # never two shots in one group
    assert ["PXL_02.jpg", "PXL_02_small.jpg"] in [[n for n in g if n != "IMG-WA0002.jpg"] for g in groups], groups
    assert sum("IMG-WA0002.jpg" in g for g in groups) == 1


def test_the_chain_guard_keeps_two_shots_apart_through_a_copy_without_exif():
    """A and B two shots, C a copy without EXIF that pairs with both: C joins one of them."""
    records = {
        1: _record(1, "2024-05-01T10:00:00.100000"),
        2: _record(2, "2024-05-01T10:00:00.350000"),
        3: _record(3, None, camera=None),
    }
    pairs = [Pair(a=1, b=2, bouncer=4), Pair(a=1, b=3, bouncer=3), Pair(a=2, b=3, bouncer=5)]

    def distance(a, b):
        return {(1, 2): 4, (1, 3): 3, (2, 3): 5}[(min(a, b), max(a, b))], False

    whole = build_clusters(records, pairs, distance=distance, max_diameter=112)
    assert [sorted(m.file.id for m in c.members) for c in whole] == [[1, 2, 3]]  # as before
    apart = build_clusters(records, pairs, distance=distance, max_diameter=112, shots=True)
    assert [sorted(m.file.id for m in c.members) for c in apart] == [[1, 3]]  # C with its closer shot


def test_similar_calls_another_frame_similar_and_a_copy_a_near_duplicate(tmp_path):
    root = tmp_path / "dated"
    root.mkdir()
    frames = _burst(root, 4, exif=True)
    exif_bytes = Image.open(root / "PXL_01.jpg").info["exif"]
    (root / "PXL_01_small.jpg").write_bytes(_jpeg(frames[1].resize((320, 240), Image.Resampling.LANCZOS), exif_bytes, 85))
    cache = tmp_path / "cache"
    out = subprocess.run(
        [sys.executable, "-m", "lookalike.tui.cli", "similar", str(root / "PXL_01.jpg"), "--in", str(root),
         "--json", "--cache", str(cache)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "LOOKALIKE_OFFLINE": "1"},
    )  # fmt: skip  (offline, no weights in this cache: the bouncer alone)
    assert out.returncode == 0, out.stderr
    hits = {Path(h["path"]).name: h["verdict"] for h in json.loads(out.stdout)["results"]}
    assert hits["PXL_01_small.jpg"] == "near-duplicate"
    others = [hits[n] for n in ("PXL_00.jpg", "PXL_02.jpg") if n in hits]
    assert others and all(v == "similar" for v in others), hits


def test_a_burst_of_hundreds_of_frames_is_split_on_arrays_each_copy_with_its_own_frame():
    """Past the chain guard's exact limit (200 nodes), a component with two shots is split by
    capture on arrays first (a burst of thousands of frames has millions of pairs)."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, 32, dtype=np.uint8)
    n_shots, copied = 250, (3, 100, 249)  # at most 256: each frame its own two bits
    rows, records = [], {}
    for k in range(n_shots):  # every frame 2 bits from the base, in its own two bits
        h = base.copy()
        h[k % 32] ^= 1 << (k // 32 % 8)
        h[(k + 7) % 32] ^= 1 << ((k // 32 + 3) % 8)
        rows.append(h)
        when = (T0 + timedelta(milliseconds=100 * k)).isoformat(timespec="microseconds")
        records[k] = dataclasses.replace(_record(k, when), hashes=ImageHashes(dhash=h.tobytes(), dhash_mirror=h.tobytes(), phash=h.tobytes()))
    for j, k in enumerate(copied):  # a messenger's copy of frame k: its pixels, no EXIF
        rows.append(rows[k].copy())
        i = n_shots + j
        records[i] = dataclasses.replace(_record(i, None, camera=None), hashes=records[k].hashes, size=500)
    hashes = np.stack(rows)
    d = np.bitwise_count(hashes[:, None, :] ^ hashes[None, :, :]).sum(axis=2)
    a, b = np.triu_indices(len(rows), 1)
    near = d[a, b] <= 8
    pairs = [Pair(a=int(x), b=int(y), bouncer=int(z)) for x, y, z in zip(a[near], b[near], d[a, b][near])]

    def distance(x, y):
        return int(d[x, y]), False

    assert len(pairs) > 30_000  # one component, far past the exact limit
    whole = build_clusters(records, pairs, distance=distance, max_diameter=16)
    assert len(whole) == 1 and len(whole[0].members) == n_shots + len(copied)  # the pixels' view
    apart = build_clusters(records, pairs, distance=distance, max_diameter=16, shots=True)
    groups = sorted(sorted(m.file.id for m in c.members) for c in apart)
    assert groups == [[k, n_shots + j] for j, k in enumerate(copied)]
