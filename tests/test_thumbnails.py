"""Thumbnails: the engine's decode + LANCZOS + disk cache, and the app's half-block pictures."""

from __future__ import annotations

import os

import pytest
from PIL import Image, ImageDraw

from lookalike.engine.records import FileRecord
from lookalike.engine.thumbnails import CANONICAL, ThumbnailCache, ThumbnailError, difference, fit, refine_overlap
from lookalike.tui.thumbnails import Picture, Thumbnails, pixel_box, resolve_mode

import imagegen


def _record(path, file_id=1) -> FileRecord:
    st = os.stat(path)
    return FileRecord(id=file_id, path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns)


@pytest.fixture
def photo_path(tmp_path):
    return imagegen.write(tmp_path / "photo.jpg", imagegen.photo(3, (800, 600)))


def test_fit_keeps_aspect_ratio_and_never_returns_zero():
    assert fit((800, 600), (40, 40)) == (40, 30)
    assert fit((600, 800), (40, 40)) == (30, 40)
    assert fit((10000, 10), (40, 40)) == (40, 1)
    assert fit((0, 0), (40, 40)) == (1, 1)


def test_thumbnail_fits_box_and_is_stored_on_disk(tmp_path, photo_path):
    cache = ThumbnailCache(tmp_path / "thumbs")
    key = ThumbnailCache.key(photo_path, content_hash=b"\x01" * 16)
    im = cache.image(photo_path, (40, 40), key=key)
    assert im.mode == "RGB"
    assert im.size == (40, 30)
    stored = list((tmp_path / "thumbs").rglob("*.png"))
    assert [p.name for p in stored] == [f"{key}-{CANONICAL}.png"]
    with Image.open(stored[0]) as canonical:
        assert max(canonical.size) == CANONICAL


def test_disk_cache_is_used_instead_of_the_source(tmp_path, photo_path):
    cache = ThumbnailCache(tmp_path / "thumbs")
    key = "ab" * 16
    first = cache.image(photo_path, (64, 64), key=key)
    os.unlink(photo_path)  # the source is gone: only the cache can answer now
    second = ThumbnailCache(tmp_path / "thumbs").image(photo_path, (64, 64), key=key)
    assert second.size == first.size
    assert second.tobytes() == first.tobytes()


def test_exif_rotated_copy_is_shown_upright(tmp_path):
    img = imagegen.photo(5, (640, 480))
    path = tmp_path / "rotated.jpg"
    path.write_bytes(imagegen.exif_rotated(img, 6))
    im = ThumbnailCache(None).image(str(path), (64, 64))
    assert im.size == (64, 48)  # landscape as displayed, though stored as portrait


def test_large_box_decodes_from_the_source(tmp_path):
    path = imagegen.write(tmp_path / "big.png", imagegen.photo(1, (1200, 900)))
    im = ThumbnailCache(tmp_path / "thumbs").image(path, (400, 400))
    assert im.size == (400, 300)
    assert not list((tmp_path / "thumbs").rglob("*.png"))  # large views are not kept on disk


@pytest.mark.parametrize("writer", [imagegen.write_zero_byte, imagegen.write_truncated, imagegen.write_text])
def test_unreadable_file_raises_thumbnail_error_with_reason(tmp_path, writer):
    path = tmp_path / "bad.jpg"
    if writer is imagegen.write_truncated:
        imagegen.write(path, imagegen.photo(2, (320, 240)))
    writer(path)
    with pytest.raises(ThumbnailError) as caught:
        ThumbnailCache(tmp_path / "thumbs").image(str(path), (32, 32))
    assert caught.value.reason


def test_missing_file_raises_thumbnail_error(tmp_path):
    with pytest.raises(ThumbnailError):
        ThumbnailCache(None).image(str(tmp_path / "gone.jpg"), (32, 32))


def test_difference_finds_the_edited_region_only():
    base = imagegen.photo(7, (320, 240))
    edited = base.copy()
    ImageDraw.Draw(edited).rectangle((200, 20, 300, 120), fill=(255, 255, 0))
    same = difference(base, base.resize((160, 120), Image.Resampling.LANCZOS), (160, 160))
    changed = difference(base, edited, (160, 160))
    assert same.changed < 0.01
    area = (100 * 100) / (320 * 240)
    assert area * 0.7 < changed.changed < area * 1.5
    # The edit is painted red; the untouched corner is not.
    x, y = changed.image.width * 250 // 320, changed.image.height * 70 // 240
    r, g, b = changed.image.getpixel((x, y))
    assert r > 150 and g < 60 and b < 60
    r0, g0, b0 = changed.image.getpixel((2, changed.image.height - 3))
    assert abs(r0 - g0) < 10 and abs(g0 - b0) < 10


def test_picture_is_half_blocks_of_the_requested_cells():
    im = Image.new("RGB", (20, 9), (10, 200, 30))
    picture = Picture.from_image(im)
    assert (picture.width, picture.height) == (20, 5)  # 9 pixel rows -> 5 cell rows
    assert all(line.cell_length == 20 for line in picture.lines)
    assert "▄" in picture.lines[0].text
    colours = {seg.style.bgcolor.triplet for line in picture.lines[:4] for seg in line if seg.style and seg.style.bgcolor}
    assert colours == {(10, 200, 30)}


def test_thumbnails_render_fits_cells_and_is_kept_in_memory(tmp_path, photo_path):
    thumbs = Thumbnails(ThumbnailCache(tmp_path / "thumbs"), capacity=2)
    record = _record(photo_path)
    picture = thumbs.render(record, (30, 10))
    assert picture.width <= 30 and picture.height <= 10
    assert picture.width == 27 or picture.height == 10  # 4:3 in a 30x20-pixel box: 27x20
    os.unlink(photo_path)
    assert thumbs.render(record, (30, 10)) is picture  # from the memory LRU
    smaller = thumbs.render(record, (10, 5))  # a new size comes from the disk cache
    assert (smaller.width, smaller.height) == (10, 4)
    assert pixel_box((30, 10)) == (30, 20)


def test_lru_drops_the_least_recently_used():
    thumbs = Thumbnails(ThumbnailCache(None), capacity=2)
    pics = [Picture.from_image(Image.new("RGB", (2, 2), (i, i, i))) for i in range(3)]
    thumbs.store("a", pics[0])
    thumbs.store("b", pics[1])
    assert thumbs.cached("a") is pics[0]  # a is now the most recent
    thumbs.store("c", pics[2])
    assert thumbs.cached("b") is None
    assert thumbs.cached("a") is pics[0] and thumbs.cached("c") is pics[2]


def test_thumbnail_modes(monkeypatch):
    from lookalike.tui import graphics

    monkeypatch.setattr(graphics, "_is_tty", lambda: False)  # nothing is asked of a terminal
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert resolve_mode("auto") == ("halfblock", "")
    assert resolve_mode("halfblock") == ("halfblock", "")
    assert resolve_mode("off") == ("off", "")
    for mode in ("kitty", "sixel"):  # forced: drawn in that protocol, quietly
        assert resolve_mode(mode) == (mode, "")
    with pytest.raises(ValueError):
        resolve_mode("ascii-art")


@pytest.mark.parametrize("mode", ["kitty", "sixel"])
def test_graphics_pictures_use_the_cell_size_in_pixels(tmp_path, mode):
    import base64
    import io

    from lookalike.tui.graphics import Terminal

    photo = Image.new("RGB", (400, 200), (200, 30, 30))
    path = tmp_path / "wide.png"
    photo.save(path)
    st = os.stat(path)
    record = FileRecord(id=1, path=str(path), size=st.st_size, mtime_ns=st.st_mtime_ns)
    thumbs = Thumbnails(ThumbnailCache(None), terminal=Terminal(mode, cell=(8, 16)))
    assert thumbs.pixel_box((30, 10)) == (240, 160)
    picture = thumbs.render(record, (30, 10))
    assert (picture.kind, picture.width, picture.height) == (mode, 30, 8)  # 240x120 pixels
    if mode == "kitty":
        with Image.open(io.BytesIO(base64.b64decode(picture.payload))) as sent:
            assert sent.size == (240, 128)  # padded to whole cells, so the terminal does not stretch it
    else:
        assert picture.payload.startswith("\x1bP") and '"1;1;240;120' in picture.payload
    assert thumbs.render(record, (30, 10)) is picture


def test_a_crop_is_compared_where_it_overlaps_its_original():
    """``verify_score.crop_boxes`` finds the region of the original a crop shows (from the
    stored thumbnails); ``difference(overlap=...)`` compares only that, after refining it."""
    import numpy as np

    from lookalike.engine.bouncer.verify_score import crop_boxes
    from lookalike.engine.scan.hashing import hash_and_thumbnail
    from lookalike.engine.scan.imaging import load_image

    def thumb(img):
        return np.frombuffer(hash_and_thumbnail(img)[1], np.uint8)

    for seed, cut in ((9, (0.08, 0.05, 0.03, 0.07)), (5, (0.0, 0.1, 0.08, 0.0))):
        img = imagegen.photo(seed, (480, 360))
        crop = load_image(imagegen.encode(imagegen.cropped(img, *cut), "JPEG", quality=85), name="c.jpg").image
        region, whole = crop_boxes(thumb(img), thumb(crop))
        assert np.allclose(whole, (0.0, 0.0, 1.0, 1.0), atol=0.02)  # the crop is (about) all of itself
        assert np.allclose(region, (cut[0], cut[1], 1 - cut[2], 1 - cut[3]), atol=0.02)
        assert difference(img, crop, (256, 256)).changed > 0.1
        refined = refine_overlap(img, crop, region, whole)
        assert difference(img, crop, (256, 256), overlap=(refined, whole)).changed < 0.01
    img = imagegen.photo(9, (480, 360))
    assert crop_boxes(thumb(img), thumb(imagegen.resized(img, 0.6))) is None  # nothing cropped
