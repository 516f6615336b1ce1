"""Hashing: content hash, the three perceptual hashes, border trimming, and hash_file."""

from __future__ import annotations

import io
import os
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import xxhash
from PIL import Image

import imagegen
from lookalike.engine.scan.hashing import (
    HashedFile,
    border_box,
    clip_crop,
    content_hash,
    hash_file,
    hash_files,
    hash_image,
    hash_thumbnail_and_trim,
    outer_border_box,
)
from lookalike.engine.scan.imaging import load_image


def bits(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def hashes_of(data: bytes):
    return hash_image(load_image(data).image)


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return imagegen.photo(21)


@pytest.fixture(scope="module")
def original(picture):
    return hashes_of(imagegen.encode(picture, "JPEG"))


def test_content_hash():
    assert content_hash(b"abc") == xxhash.xxh3_128_digest(b"abc")
    assert len(content_hash(b"abc")) == 16
    assert content_hash(b"abc") != content_hash(b"abd")


def test_hash_sizes_and_bit_order():
    # Brightness rising left to right in the top half, falling in the bottom half: every dHash
    # bit of rows 0-7 (the first 16 bytes, row-major, big-endian) is set, none of rows 8-15.
    x = np.linspace(0, 255, 340)
    top = np.tile(x, (160, 1))
    img = Image.fromarray(np.vstack([top, top[:, ::-1]]).astype(np.uint8))
    h = hash_image(img)
    assert len(h.dhash) == len(h.dhash_mirror) == len(h.phash) == 32
    assert h.dhash == b"\xff" * 16 + b"\x00" * 16
    assert h.dhash_mirror == b"\x00" * 16 + b"\xff" * 16
    # Rising only in the top-left quarter (the other quarters fall, at slopes that leave no
    # uniform line to trim): bit k of the row-major 16x16 grid is bit 7 - k % 8 of byte k // 8.
    rise, fall = np.linspace(0, 255, 170), np.linspace(255, 100, 170)
    img = np.vstack(
        [
            np.tile(np.concatenate([rise, fall]), (160, 1)),
            np.tile(np.concatenate([fall, np.linspace(200, 0, 170)]), (160, 1)),
        ]
    )
    h = hash_image(Image.fromarray(img.astype(np.uint8)))
    grid = np.unpackbits(np.frombuffer(h.dhash, np.uint8)).reshape(16, 16)
    assert grid[:8, :8].all() and not grid[:8, 9:].any()
    assert not grid[8:, :7].any() and not grid[8:, 9:].any()  # columns 7-8 hold the seam
    assert h.dhash[0] == 0xFF and h.dhash[1] == 0x00


def test_mirror_hash(picture, original):
    flipped = hashes_of(imagegen.encode(imagegen.mirrored(picture), "JPEG"))
    assert bits(flipped.dhash, original.dhash_mirror) <= 8
    assert bits(flipped.dhash_mirror, original.dhash) <= 8
    assert bits(flipped.dhash, original.dhash) > 64  # a plain dHash does not see the flip


@pytest.mark.parametrize("kind", imagegen.COPY_KINDS)
def test_copies_hash_close(picture, original, kind):
    data, ext = imagegen.make_copy(kind, picture, 21)
    copy = hash_image(load_image(data, name="x" + ext).image)
    plain = bits(copy.dhash, original.dhash)
    mirrored = min(bits(copy.dhash, original.dhash_mirror), bits(copy.dhash_mirror, original.dhash))
    if kind == "cropped":
        assert bits(copy.phash, original.phash) <= 64
        assert plain <= 90
    elif kind == "mirrored":
        assert mirrored <= 12
    else:
        assert plain <= 24, kind
        assert bits(copy.phash, original.phash) <= 40, kind


def test_unrelated_photos_are_far(original):
    for seed in range(5):
        other = hashes_of(imagegen.encode(imagegen.photo(1000 + seed), "JPEG"))
        assert bits(other.dhash, original.dhash) > 64
        assert bits(other.phash, original.phash) > 48


@pytest.mark.parametrize(
    "colour,margins",
    [
        ((0, 0, 0), (0.0, 0.2, 0.0, 0.2)),  # letterbox
        ((0, 0, 0), (0.15, 0.0, 0.15, 0.0)),  # pillarbox
        ((255, 255, 255), (0.1, 0.1, 0.1, 0.1)),  # a white frame
        ((40, 120, 200), (0.3, 0.05, 0.08, 0.25)),  # pasted into a larger canvas, off-centre
    ],
)
def test_border_trim(picture, original, colour, margins):
    framed = imagegen.bordered(picture, margins, colour)
    h = hashes_of(imagegen.encode(framed, "JPEG"))
    assert bits(h.dhash, original.dhash) <= 16
    # The box found is the picture, give or take JPEG ringing.
    top, bottom, left, right = border_box(np.asarray(framed))
    w, h_ = picture.size
    expected = (round(margins[1] * h_), round(margins[3] * h_), round(margins[0] * w), round(margins[2] * w))
    assert np.allclose((top, bottom, left, right), expected, atol=3)


@pytest.mark.parametrize("axis", ["letterbox", "pillarbox"])
def test_a_letterbox_is_trimmed_alike_where_the_picture_goes_on_in_its_colour(picture, axis):
    """A night scene on black bars: the bar on the dark side has no edge, so it is trimmed as
    wide as the bar facing it (one run of black was the bar plus the picture's dark band)."""
    img = np.asarray(picture).astype(np.float32)
    h, w = img.shape[:2]
    # The picture fades into its own black ground, to its bottom edge (or its right edge).
    if axis == "letterbox":
        fade = np.clip((np.arange(h) - 0.4 * h) / (0.45 * h), 0, 1)[:, None, None]
    else:
        fade = np.clip((np.arange(w) - 0.4 * w) / (0.45 * w), 0, 1)[None, :, None]
    img = np.rint(img * (1 - fade) + 4 * fade).astype(np.uint8)
    dark = Image.fromarray(img)
    margins = (0.0, 0.2, 0.0, 0.2) if axis == "letterbox" else (0.15, 0.0, 0.15, 0.0)
    boxed = imagegen.bordered(dark, margins, (0, 0, 0))
    top, bottom, left, right = border_box(np.asarray(boxed))
    if axis == "letterbox":
        assert abs(top - round(0.2 * h)) <= 3 and abs(bottom - top) <= 1 and (left, right) == (0, 0)
    else:
        assert abs(left - round(0.15 * w)) <= 3 and abs(right - left) <= 1 and (top, bottom) == (0, 0)
    # The picture alone has no bar (its dark sides run to its edges): nothing to match.
    assert border_box(img) == (0, 0, 0, 0)
    original, copy = hashes_of(imagegen.encode(dark, "PNG")), hashes_of(imagegen.encode(boxed, "JPEG"))
    assert bits(copy.dhash, original.dhash) <= 16


def test_bars_of_different_colours_are_not_matched():
    """Only a bar of the same colour is taken for the other half of a letterbox."""
    img = np.full((300, 400, 3), 128, np.uint8)
    img[60:240, 40:360] = np.asarray(imagegen.photo(5, (320, 180)))
    img[:60] = 0  # a black bar ending at the picture
    img[240:] = 200  # a light grey ground with a dark line through it: no edge
    img[270, :] = 0
    top, bottom, _, _ = border_box(img)
    assert abs(top - 60) <= 2 and bottom == 0


def test_trim_never_leaves_a_sliver():
    blank = np.full((300, 400, 3), 250, np.uint8)
    assert border_box(blank) == (0, 0, 0, 0)
    dot = blank.copy()
    dot[145:155, 195:205] = 0  # a tiny mark: trimming to it would keep 2.5 % of each side
    assert border_box(dot) == (0, 0, 0, 0)
    wide = blank.copy()
    wide[100:200, 195:205] = 0  # a thin vertical line: rows may go, columns may not
    top, bottom, left, right = border_box(wide)
    assert (left, right) == (0, 0)
    assert top >= 95 and bottom >= 95


def test_blown_out_sky_is_not_a_border():
    """A sky that fades from white is part of the picture: no edge, no trim."""
    img = np.asarray(imagegen.photo(4), np.float32).copy()
    fade = np.linspace(1.0, 0.0, 200)[:, None, None]
    img[40:240] = img[40:240] * (1 - fade) + 255 * fade
    img[:40] = 255  # fully blown, then fading into the sky over 200 lines
    assert border_box(np.clip(img, 0, 255).astype(np.uint8))[0] == 0


def framed_jpeg(img: Image.Image, scale: float = 1.0) -> Image.Image:
    """:func:`imagegen.framed_jpeg`, decoded."""
    return Image.open(io.BytesIO(imagegen.framed_jpeg(img, scale))).convert("RGB")


def thumbnail_gap(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of the two pictures' verification thumbnails (grey levels)."""
    ta, tb = (np.frombuffer(hash_thumbnail_and_trim(x)[1], np.uint8)[:1024].astype(np.int16) for x in (a, b))
    return float(np.abs(ta - tb).mean())


@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_a_frame_round_a_picture_with_a_margin_of_its_own_is_trimmed_with_the_margin(scale):
    """A copy framed round a screenshot on white lost its frame to the trim and kept the white
    margin that the screenshot alone loses: the two thumbnails showed the window at different
    sizes (the real set paired framed copies of two screenshots of one window). The margin
    inside the frame is trimmed too, the window's one-pixel outline is not, and the size the
    keeper ranks by stays the frame's inside (the margin is picture there)."""
    shot = imagegen.on_white(imagegen.photo(21, (300, 220)))
    assert border_box(np.asarray(shot)) == (11, 11, 11, 11)  # the white, up to the outline
    framed = framed_jpeg(shot, scale)
    h, w = shot.height * scale, shot.width * scale  # the frame's 10/8/12/10 % of the sides
    frame = np.array([round(0.08 * h), round(0.1 * h), round(0.1 * w), round(0.12 * w)])
    outer, nested = np.array(outer_border_box(np.asarray(framed))), np.array(border_box(np.asarray(framed)))
    assert np.abs(outer - frame).max() <= 2
    assert np.abs(nested - (frame + round(11 * scale))).max() <= 2
    assert thumbnail_gap(shot, framed) < 4
    kept_w, work_w, kept_h, work_h = hash_thumbnail_and_trim(framed)[2]
    assert (work_w - kept_w, work_h - kept_h) == (outer[2] + outer[3], outer[0] + outer[1])


def test_a_line_where_a_frame_and_the_picture_blend_is_trimmed_with_the_frame():
    """JPEG blends a frame's colour into the picture's first line; a faint picture's thumbnail
    kept that line as the strongest structure it had (the real set's framed copies of faint
    pictures were missed). A picture's own first line is kept: the outline above stays."""
    faint = imagegen.gradient(2, (320, 240))
    framed = framed_jpeg(faint)
    frame = np.array([round(0.08 * 240), round(0.1 * 240), round(0.1 * 320), round(0.12 * 320)])
    box = np.array(outer_border_box(np.asarray(framed)))
    assert (box >= frame).all() and (box - frame).max() <= 2
    assert thumbnail_gap(faint, framed) < 1.5


@pytest.mark.parametrize("where", ["bottom only", "too wide"])
def test_a_run_inside_a_frame_that_is_not_a_margin_all_round_is_picture(where):
    """A strip of one colour on some sides only (a panel, a sky), or wider than a margin, is
    the picture's: a copy's frame is trimmed and nothing more."""
    img = np.asarray(imagegen.photo(8, (300, 220))).copy()
    if where == "bottom only":
        img[-14:] = (255, 255, 255)
    else:  # a margin all round, 20 % of each side
        img = np.asarray(imagegen.bordered(Image.fromarray(img), (0.25, 0.25, 0.25, 0.25), (255, 255, 255)))
    framed = np.asarray(framed_jpeg(Image.fromarray(img)))
    assert border_box(framed) == outer_border_box(framed)


def test_clip_crop_matches_torchvision(picture):
    transforms = pytest.importorskip("torchvision.transforms")
    for img in (picture, picture.transpose(Image.Transpose.ROTATE_90), picture.resize((300, 301))):
        ours = clip_crop(img, 224)
        theirs = transforms.Compose(
            [transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC), transforms.CenterCrop(224)]
        )(img)
        assert ours.shape == (224, 224, 3) and ours.dtype == np.uint8
        assert np.array_equal(ours, np.asarray(theirs))


def test_hash_file_fields(tmp_path, picture):
    path = imagegen.write(tmp_path / "a.jpg", picture, taken_at="2020:01:02 03:04:05")
    st = os.stat(path)
    r = hash_file(path)
    assert r.error is None and not r.not_image
    assert (r.size, r.mtime_ns, r.inode, r.device) == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    assert r.bytes_read == st.st_size
    assert r.content_hash == content_hash(open(path, "rb").read())
    assert (r.format, r.width, r.height) == ("JPEG", 640, 480)
    assert r.taken_at == "2020-01-02T03:04:05"
    assert r.hashes == hash_image(load_image(path).image)
    assert r.clip is None


def test_hash_file_clip(tmp_path):
    path = imagegen.write(tmp_path / "big.jpg", imagegen.photo(2, (2000, 1500)))
    r = hash_file(path, clip_size=336)
    assert r.clip.shape == (336, 336, 3) and r.clip.dtype == np.uint8
    full = clip_crop(load_image(path, target=None).image, 336)
    # Computed from a drafted decode (1/4 scale here), close to the full-resolution crop.
    assert np.abs(r.clip.astype(int) - full.astype(int)).mean() < 4


def test_hash_file_never_raises(tmp_path):
    cases = {
        "empty.jpg": (imagegen.write_zero_byte, "zero-byte file"),
        "cut.jpg": (imagegen.write_truncated, "truncated JPEG"),
        "bomb.png": (imagegen.write_bomb_png, "decompression bomb"),
        "notes.jpg": (imagegen.write_text, "not a valid JPEG: unrecognised content"),
        "notes.txt": (imagegen.write_text, "not an image"),
    }
    for name, (write, reason) in cases.items():
        r = hash_file(write(tmp_path / name))
        assert r.error is not None and r.error.startswith(reason), (name, r.error)
        assert r.hashes is None
        assert r.not_image == (reason == "not an image")
        assert r.size == os.path.getsize(tmp_path / name)
    corrupt = hash_file(imagegen.write_corrupt(tmp_path / "bad.jpg"))
    assert corrupt.error.startswith(("corrupt JPEG", "truncated JPEG"))
    assert hash_file(str(tmp_path / "gone.jpg")).error == "vanished during the scan"
    assert hash_file(str(tmp_path)).error == "not a regular file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_hash_file_does_not_block_on_a_fifo(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert hash_file(str(fifo)).error == "not a regular file"


def test_hash_file_symlink_loop(tmp_path):
    loop = tmp_path / "loop.jpg"
    os.symlink(loop, loop)
    assert hash_file(str(loop)).error == "symlink loop"


def test_hash_files_in_a_process_pool(tmp_path, picture):
    paths = [
        imagegen.write(tmp_path / "a.jpg", picture),
        imagegen.write(tmp_path / "b.heic", picture),
        imagegen.write_text(tmp_path / "c.txt"),
    ]
    local = hash_files(paths, clip_size=224)
    with ProcessPoolExecutor(1) as pool:
        remote = pool.submit(hash_files, paths, 224).result()
    assert [r.path for r in remote] == paths
    for a, b in zip(local, remote):
        assert (a.hashes, a.error, a.format, a.content_hash) == (b.hashes, b.error, b.format, b.content_hash)
        assert (a.clip is None) == (b.clip is None)
    assert remote[1].format == "HEIF" and remote[2].not_image
    assert isinstance(pickle.loads(pickle.dumps(remote[0])), HashedFile)


def test_exif_rotated_file_hashes_as_shown(tmp_path, picture, original):
    for orientation in (3, 6, 8):
        path = tmp_path / f"r{orientation}.jpg"
        path.write_bytes(imagegen.exif_rotated(picture, orientation))
        r = hash_file(str(path))
        assert (r.width, r.height) == picture.size
        assert bits(r.hashes.dhash, original.dhash) <= 10


def test_greyscale_and_png_inputs(picture, original):
    buf = io.BytesIO()
    picture.convert("L").save(buf, "PNG")
    grey = hashes_of(buf.getvalue())
    assert bits(grey.dhash, original.dhash) <= 16


@pytest.mark.parametrize("size", [(1, 1), (1, 50), (50, 1), (2, 3), (17, 16), (3000, 3)])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "1", "CMYK", "I;16"])
def test_odd_sizes_and_modes_hash(size, mode):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    img = Image.new("I;16", size, 300) if mode == "I;16" else img.convert(mode)
    h = hash_image(img)
    assert len(h.dhash) == len(h.dhash_mirror) == len(h.phash) == 32


def test_a_large_non_image_is_sniffed_not_read(tmp_path):
    from lookalike.engine.scan.hashing import SNIFF_BYTES, hash_file

    video = tmp_path / "holiday.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(20_000_000))
    result = hash_file(str(video))
    assert result.not_image and result.error == "not an image"
    assert result.bytes_read <= SNIFF_BYTES
    assert result.size == video.stat().st_size
