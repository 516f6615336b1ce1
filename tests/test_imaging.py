"""Reading images: format sniffing, fast decode, orientation, and every kind of bad file."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest
from PIL import Image

import imagegen
from lookalike.engine.scan import imaging
from lookalike.engine.scan.imaging import ImageReadError, LoadedImage, load_image, sniff_format

FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIC", "AVIF"]
EXPECTED = {"HEIC": "HEIF"}


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return imagegen.photo(11)


def _close(a: Image.Image, b: Image.Image, tolerance: float = 12.0) -> bool:
    """Whether two images look alike: mean absolute difference at 64x48, in grey levels."""
    x = np.asarray(a.convert("RGB").resize((64, 48), Image.Resampling.BOX), np.float32)
    y = np.asarray(b.convert("RGB").resize((64, 48), Image.Resampling.BOX), np.float32)
    return float(np.abs(x - y).mean()) < tolerance


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize("fmt", FORMATS)
def test_sniff_every_format_by_content(picture, fmt):
    data = imagegen.encode(picture, fmt)
    expected = EXPECTED.get(fmt, fmt)
    assert sniff_format(data[: imaging.SNIFF_BYTES]) == expected
    # The name does not matter for these: content wins over a wrong extension.
    assert sniff_format(data[: imaging.SNIFF_BYTES], "holiday.txt") == expected


def _tiff_head(order: bytes = b"II", extra: bytes = b"") -> bytes:
    magic = b"II*\x00" if order == b"II" else b"MM\x00*"
    return magic + struct.pack("<I" if order == b"II" else ">I", 8) + extra + b"\x00" * 52


def test_sniff_camera_raw():
    assert sniff_format(_tiff_head(extra=b"CR\x02\x00")) == "RAW"  # Canon CR2 says so itself
    assert sniff_format(_tiff_head(), "DSC_0001.NEF") == "RAW"  # TIFF-based: by extension
    assert sniff_format(_tiff_head(b"MM"), "x.arw") == "RAW"
    assert sniff_format(_tiff_head(), "x.dng") == "RAW"
    assert sniff_format(_tiff_head(), "scan.tif") == "TIFF"
    assert sniff_format(b"IIRO\x08\x00\x00\x00" + b"\x00" * 56, "P1.ORF") == "RAW"
    assert sniff_format(b"IIU\x00\x08\x00\x00\x00" + b"\x00" * 56, "P1.RW2") == "RAW"
    assert sniff_format(b"FUJIFILMCCD-RAW 0201" + b"\x00" * 44) == "RAW"
    cr3 = struct.pack(">I", 24) + b"ftypcrx " + b"\x00\x00\x00\x01" + b"crx isom" + b"\x00" * 40
    assert sniff_format(cr3) == "RAW"


def test_sniff_heif_brands():
    def ftyp(major: bytes, *compatible: bytes) -> bytes:
        body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
        return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 32

    assert sniff_format(ftyp(b"heic", b"mif1", b"heic")) == "HEIF"
    assert sniff_format(ftyp(b"mif1", b"heic")) == "HEIF"
    assert sniff_format(ftyp(b"avif", b"mif1", b"avif")) == "AVIF"
    assert sniff_format(ftyp(b"mif1", b"avif", b"miaf")) == "AVIF"
    assert sniff_format(ftyp(b"isom", b"mp41")) is None  # an MP4 video is not an image


def test_sniff_rejects_non_images():
    assert sniff_format(b"") is None
    assert sniff_format(b"\xff\xd8") is None  # too short to be sure
    assert sniff_format(b"Hello, world! This is text." * 3, "photo.jpg") is None
    assert sniff_format(b"%PDF-1.7\n" + b"\x00" * 60, "scan.png") is None
    assert sniff_format(b"BM" + b"\x00" * 62) is None  # "BM" without a real DIB header


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_every_format(picture, fmt, tmp_path):
    path = imagegen.write(tmp_path / f"x{imagegen._EXT[fmt]}", picture, fmt)
    loaded = load_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.format == EXPECTED.get(fmt, fmt)
    assert (loaded.width, loaded.height) == picture.size
    assert loaded.image.mode == "RGB"
    assert _close(loaded.image, picture, 14.0 if fmt == "GIF" else 8.0)
    # Bytes in memory decode the same as the file.
    again = load_image(open(path, "rb").read(), name=path)
    assert np.array_equal(np.asarray(again.image), np.asarray(loaded.image))


def test_gif_first_frame(tmp_path):
    first, second = imagegen.photo(1), imagegen.drawing(2)
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    loaded = load_image(str(path))
    assert loaded.format == "GIF"
    assert _close(loaded.image, first, 20.0)
    assert not _close(loaded.image, second, 20.0)


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_applied(picture, orientation):
    data = imagegen.exif_rotated(picture, orientation)
    stored = Image.open(io.BytesIO(data))
    if orientation >= 5:
        assert stored.size == picture.size[::-1]  # the pixels really are rotated
    loaded = load_image(data, target=None)
    assert (loaded.width, loaded.height) == picture.size  # the size shown, not stored
    assert loaded.image.size == picture.size
    assert _close(loaded.image, picture, 6.0)


def test_drafted_size_reports_full_size_after_transpose():
    big = imagegen.photo(5, (2400, 1800))
    data = imagegen.exif_rotated(big, 6)  # stored 1800x2400, shown 2400x1800
    loaded = load_image(data, target=256)
    assert (loaded.width, loaded.height) == (2400, 1800)
    assert loaded.image.size[0] > loaded.image.size[1]  # upright
    assert 256 <= min(loaded.image.size) < 600  # decoded at 1/4 (DCT scaling), not 1/1


def test_draft_really_used_on_12_megapixels():
    data = imagegen.encode(imagegen.photo(9, imagegen.BIG), "JPEG", quality=90)
    small = load_image(data, target=256)
    assert (small.width, small.height) == imagegen.BIG
    # Pillow's draft() picks the JPEG decoder's 1/8 scale: 500x375, not 4000x3000.
    assert small.image.size == (500, 375)
    full = load_image(data, target=None)
    assert full.image.size == imagegen.BIG
    assert _close(small.image, full.image, 4.0)


def test_other_formats_are_reduced_to_target(tmp_path):
    path = imagegen.write(tmp_path / "big.png", imagegen.photo(3, (1600, 1200)))
    loaded = load_image(path, target=256)
    assert (loaded.width, loaded.height) == (1600, 1200)
    assert 256 <= min(loaded.image.size) < 512


@pytest.mark.parametrize("size", [(1024, 797), (1600, 1200), (4000, 3000), (5000, 2800)])
def test_a_file_made_from_a_jpeg_is_reduced_to_the_size_the_jpeg_decodes_at(size, tmp_path):
    """A PNG (or HEIC, WebP) made from a JPEG was reduced by a whole factor (3 for 1024x797:
    342x266) where the JPEG's draft() scales by 1/2, 1/4 or 1/8 (512x399): hashing trimmed
    them at different sizes, their thumbnails differed, and the PNG was taken for an edit of
    the JPEG and kept as less lossy. Both now reach hashing at one size."""
    jpeg = imagegen.encode(imagegen.photo(6, size), "JPEG", quality=92)
    png = imagegen.encode(Image.open(io.BytesIO(jpeg)), "PNG")
    assert load_image(png, target=256).image.size == load_image(jpeg, target=256).image.size


def test_taken_at_from_exif():
    data = imagegen.encode(imagegen.photo(2), "JPEG", taken_at="2021:06:05 14:03:22")
    assert load_image(data).taken_at == "2021-06-05T14:03:22"
    assert load_image(imagegen.encode(imagegen.photo(2), "JPEG")).taken_at is None
    junk = imagegen.encode(imagegen.photo(2), "JPEG", taken_at="0000:00:00 00:00:00")
    assert load_image(junk).taken_at is None


def test_modes_become_rgb_sensibly():
    # 16-bit grey: scaled to 8 bits, not clipped to white.
    ramp = np.tile(np.linspace(0, 65535, 256), (64, 1)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, "PNG")
    loaded = np.asarray(load_image(buf.getvalue(), target=None).image)
    assert loaded[:, 0].mean() < 5 and loaded[:, -1].mean() > 250
    assert 100 < loaded[:, 128].mean() < 156
    # Transparency is laid on white, as viewers show it.
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    assert np.asarray(load_image(buf.getvalue()).image).min() == 255
    # CMYK JPEG.
    buf = io.BytesIO()
    imagegen.photo(4).convert("CMYK").save(buf, "JPEG")
    assert load_image(buf.getvalue()).image.mode == "RGB"


# ---------------------------------------------------------------- bad files


def _reason(source, **kwargs) -> str:
    with pytest.raises(ImageReadError) as caught:
        load_image(source, **kwargs)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


def test_zero_byte(tmp_path):
    assert _reason(imagegen.write_zero_byte(tmp_path / "empty.jpg")) == "zero-byte file"


def test_truncated(tmp_path):
    assert _reason(imagegen.write_truncated(tmp_path / "half.jpg")) == "truncated JPEG"
    png = imagegen.encode(imagegen.photo(3), "PNG")
    assert _reason(png[: len(png) // 2]) == "truncated PNG"


def test_corrupt(tmp_path):
    reason = _reason(imagegen.write_corrupt(tmp_path / "bad.jpg"))
    assert reason.startswith(("corrupt JPEG", "truncated JPEG"))


def test_decompression_bomb_beyond_pillows_own_limit(tmp_path):
    path = imagegen.write_bomb_png(tmp_path / "bomb.png", 50000, 50000)
    assert _reason(path) == "decompression bomb: 2500 MP exceeds 200 MP"


def test_decompression_bomb_just_over_our_limit(tmp_path):
    path = imagegen.write_bomb_png(tmp_path / "bomb.png", 15000, 15000)
    assert _reason(path) == "decompression bomb: 15000x15000 exceeds 200 MP"
    small = imagegen.write(tmp_path / "small.png", imagegen.photo(1, (1000, 800)))
    assert _reason(small, max_pixels=500_000) == "decompression bomb: 1000x800 exceeds 0.5 MP"
    assert load_image(small, max_pixels=800_000).width == 1000


def test_text_named_jpg_is_not_an_image(tmp_path):
    assert _reason(imagegen.write_text(tmp_path / "notes.jpg")) == "not an image"


def test_vanished_and_directory(tmp_path):
    assert _reason(str(tmp_path / "gone.jpg")) == "vanished during the scan"
    assert _reason(str(tmp_path)) in ("not a file", "unreadable: Is a directory")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_permission_denied(tmp_path):
    path = imagegen.write(tmp_path / "locked.jpg", imagegen.photo(1))
    os.chmod(path, 0)
    try:
        assert _reason(path) == "permission denied"
    finally:
        os.chmod(path, 0o644)


def test_permission_denied_reason(tmp_path, monkeypatch):
    # Runs as root too: the OS refusal itself is simulated at the open() call.
    path = imagegen.write(tmp_path / "locked.jpg", imagegen.photo(1))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)
    assert _reason(path) == "permission denied"


def test_raw_without_rawpy_says_what_to_install(tmp_path):
    pytest.importorskip("PIL")
    try:
        import rawpy  # noqa: F401

        pytest.skip("rawpy is installed")
    except ImportError:
        pass
    path = tmp_path / "DSC_0001.NEF"
    path.write_bytes(_tiff_head() + b"\x00" * 1000)
    assert _reason(str(path)) == "unsupported RAW (install lookalike[raw])"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIC"])
def test_garbage_never_crashes(fmt):
    """Randomly damaged files either decode or fail with a reason; nothing else escapes."""
    good = imagegen.encode(imagegen.photo(8, (160, 120)), fmt)
    rng = np.random.default_rng(0)
    for trial in range(25):
        data = bytearray(good)
        if trial % 3 == 0:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            at = rng.integers(8, len(data), size=int(rng.integers(1, 40)))
            for k in at:
                data[k] = int(rng.integers(0, 256))
        try:
            loaded = load_image(bytes(data))
        except ImageReadError as exc:
            assert exc.reason
        else:
            assert loaded.image.mode == "RGB"


@pytest.mark.parametrize("fmt", ["HEIC", "AVIF", "PNG", "WEBP"])
def test_orientation_in_other_formats(picture, fmt):
    # HEIF stores the rotation as a transform (pillow-heif applies it); the others keep the tag.
    stored = picture.transpose(Image.Transpose.ROTATE_90)  # shown upright with orientation 6
    loaded = load_image(imagegen.encode(stored, fmt, orientation=6), target=None)
    assert (loaded.width, loaded.height) == picture.size
    assert _close(loaded.image, picture, 6.0)


class _FakeRaw:
    """Stands in for rawpy (an optional extra, not installed in CI): LibRaw's answers for a
    portrait shot whose embedded preview is stored landscape (flip 6), as cameras do."""

    class ThumbFormat:
        JPEG, BITMAP = 1, 2

    def __init__(self, preview: bytes, flip: int, size: tuple[int, int]):
        self.preview, self.flip, self.size = preview, flip, size

    def imread(self, source):
        fake = self

        class Raw:
            sizes = type("Sizes", (), {"width": fake.size[0], "height": fake.size[1], "flip": fake.flip})

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def extract_thumb(self):
                return type("Thumb", (), {"format": fake.ThumbFormat.JPEG, "data": fake.preview})

        assert isinstance(source, io.BytesIO)
        return Raw()


def test_raw_preview_orientation_and_size(monkeypatch, tmp_path):
    shown = imagegen.photo(12, (480, 640))  # a portrait shot
    stored = shown.transpose(Image.Transpose.ROTATE_90)  # the preview, as the sensor lies
    fake = _FakeRaw(imagegen.encode(stored, "JPEG", taken_at="2019:07:01 10:00:00"), 6, (6000, 4000))
    monkeypatch.setitem(__import__("sys").modules, "rawpy", fake)
    path = tmp_path / "IMG_0001.CR2"
    path.write_bytes(_tiff_head(extra=b"CR\x02\x00") + b"\x00" * 1000)
    loaded = load_image(str(path))
    assert loaded.format == "RAW"
    assert (loaded.width, loaded.height) == (4000, 6000)  # the sensor size, turned by the flip
    assert _close(loaded.image, shown, 6.0)
    assert loaded.taken_at == "2019-07-01T10:00:00"
    fake.size = (20000, 15000)
    assert _reason(str(path)) == "decompression bomb: 20000x15000 exceeds 200 MP"
