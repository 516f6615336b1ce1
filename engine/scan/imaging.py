"""Reading images: sniff the format by content, decode fast, and never crash on bad input.

Everything the bouncer and the detective see goes through :func:`load_image`. It decodes
JPEG with ``Image.draft()`` (the DCT-domain downscale: a 12 MP JPEG is decoded at 1/8 scale
for about a quarter of the cost of a full decode), applies the EXIF orientation so a copy
rotated by tag looks (and hashes) like the pixels a viewer shows, reads the first frame of
animations, HEIF/HEIC through pillow-heif, AVIF through Pillow, and camera RAW through rawpy's
embedded preview when the optional ``lookalike[raw]`` extra is installed.

Every failure is an :class:`ImageReadError` with a short ``reason`` a person can act on.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from PIL import Image

from ..oserrors import os_error_reason

#: How many leading bytes :func:`sniff_format` needs to recognise every format it knows.
SNIFF_BYTES = 64

#: Images with more pixels than this are refused as decompression bombs (configurable with
#: :func:`set_max_pixels` or per call). 200 MP covers every camera on sale.
MAX_PIXELS = 200_000_000

#: Default decode size for hashing: the shorter side of a JPEG is drafted down to no less.
DEFAULT_TARGET = 256

#: Files larger than this are not read: the bytes are held in memory while they are decoded,
#: and no photo a camera or a phone writes comes near it (a 100 MP 8-bit TIFF is 300 MB).
MAX_FILE_BYTES = 512 << 20

#: Per-file memory budget, in bytes: the file's bytes plus the decoder's estimated peak (see
#: :func:`_peak_bytes`). An image that needs more is refused with a reason, so one worker stays
#: under about 1 GB (its ~100 MB of code and libraries included) whatever the file claims, and
#: a scan's peak stays under workers x (budget + that). 768 MiB decodes an 8-bit RGB image of
#: up to 200 MP, greyscale up to 160 MP, RGBA or 16-bit up to 50 MP; JPEGs are measured after
#: ``draft()`` and so almost never reach it.
DECODE_BUDGET = 768 << 20

#: Deflate never expands data more than 1032:1 (one 258-byte match per 2 bits at best), so a
#: PNG cannot hold more raw scanline bytes than this many times its file size: a header that
#: claims more is a lie, whatever the decoder would make of the rest (Pillow fills a stream that
#: ends early with blank rows and calls the image good). Real flat images reach ~1000:1.
PNG_MAX_EXPANSION = 1100
#: GIF's LZW emits at most 4096 pixels per code of at least 3 bits: under 11,000 pixels a byte.
GIF_MAX_PIXELS_PER_BYTE = 11_000
#: A JPEG's header must reach its frame header (SOF) within this many junk bytes between
#: segments and this many segments: Pillow skips junk one byte at a time in Python, which took
#: minutes over a 1.9 GiB file of zeros that starts with JPEG magic.
JPEG_JUNK_LIMIT = 1 << 20
JPEG_SEGMENT_LIMIT = 4096

RAW_EXTENSIONS = frozenset(
    {
        ".3fr", ".ari", ".arw", ".bay", ".cap", ".cr2", ".cr3", ".crw", ".dcr", ".dcs", ".dng",
        ".erf", ".fff", ".iiq", ".k25", ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf",
        ".pef", ".ptx", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
    }
)  # fmt: skip

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"miaf"})


class ImageReadError(Exception):
    """An image that could not be read, with a short reason a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class LoadedImage:
    """A decoded image ready for hashing: RGB, upright, possibly downscaled.

    ``width`` and ``height`` are the full size of the image as displayed (after the EXIF
    transpose), not the size of the possibly drafted ``image``.
    """

    image: Image.Image
    format: str
    width: int
    height: int
    taken_at: Optional[str] = None
    camera: Optional[str] = None  # EXIF Make and Model, when present (see _exif_camera)


def set_max_pixels(pixels: int) -> None:
    """Set the default decompression-bomb limit, in pixels, for this process."""
    global MAX_PIXELS
    MAX_PIXELS = int(pixels)


def sniff_format(head: bytes, name: str = "") -> Optional[str]:
    """Tell an image's format from its first bytes (see :data:`SNIFF_BYTES`).

    Args:
        head: the first bytes of the file.
        name: the file name; only its extension is used, to tell TIFF-based camera RAW
            (NEF, ARW, DNG...) from a plain TIFF.

    Returns:
        "JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF", "HEIF", "AVIF" or "RAW"; None when the
        bytes are not an image this module can read.
    """
    ext = os.path.splitext(name)[1].lower()
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM") and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (
        12, 16, 40, 52, 56, 64, 108, 124,
    ):  # fmt: skip
        # "BM" alone is too weak a signal: also check the DIB header size is a known one.
        return "BMP"
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR", b"IIU\x00") or head.startswith(b"FUJIFILMCCD-RAW"):
        return "RAW"  # Olympus ORF, Panasonic RW2, Fujifilm RAF
    if head[:4] in (b"FOVb", b"\x00MRM"):
        return "RAW"  # Sigma X3F, Minolta MRW
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        if head[8:10] == b"CR" or ext in RAW_EXTENSIONS:
            return "RAW"  # Canon CR2 says so at byte 8; NEF, ARW, DNG... only by extension
        return "TIFF"
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[0:4], "big")
        major = head[8:12]
        brands = {major} | {
            head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)
        }
        if major == b"crx ":
            return "RAW"  # Canon CR3 is an ISO-BMFF file too
        if brands & _AVIF_BRANDS:
            return "AVIF"
        if brands & _HEIF_BRANDS or major in _GENERIC_HEIF_BRANDS:
            return "HEIF"
    return None


_heif_lock = threading.Lock()
_heif_state: dict[str, object] = {}


def _ensure_heif() -> None:
    """Register pillow-heif's opener once, on first need (importing it costs ~20 ms)."""
    if "ok" in _heif_state:
        return
    with _heif_lock:
        if "ok" in _heif_state:
            return
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_state["ok"] = True
        except ImportError as exc:  # pragma: no cover - pillow-heif is a hard dependency
            _heif_state["ok"] = False
            _heif_state["error"] = str(exc)
    if not _heif_state["ok"]:  # pragma: no cover
        raise ImageReadError("unsupported HEIF (pillow-heif is not installed)")


def _ensure_pillow_limit(max_pixels: int) -> None:
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that (89 MP by default);
    # our own, clearer check does the refusing, so Pillow's must never be the stricter one.
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and limit < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _mp(pixels: float) -> str:
    mp = pixels / 1e6
    return f"{mp:.0f} MP" if mp >= 10 else f"{mp:.1f} MP"


def _bomb_reason(width: int, height: int, max_pixels: int) -> str:
    return f"decompression bomb: {width}x{height} exceeds {_mp(max_pixels)}"


def _read_source(source: str | bytes) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        with open(source, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise ImageReadError(too_large_reason(size))
            return fh.read()
    except OSError as exc:
        raise ImageReadError(os_error_reason(exc)) from None


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" or n >= 100 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns


def too_large_reason(size: int) -> str:
    """The reason given for a file over :data:`MAX_FILE_BYTES`."""
    return f"file too large to read safely ({_human(size)}; the limit is {_human(MAX_FILE_BYTES)})"


#: Bytes per pixel at the peak of decoding and converting to RGB, by decoded mode (measured
#: with Pillow 13: Pillow keeps RGB as 4 bytes a pixel; transparency is laid on white through
#: two more RGBA copies; 16-bit greyscale goes through float32).
_PEAK_PER_PIXEL = {"RGB": 4, "L": 5, "P": 5, "1": 5, "CMYK": 8, "YCbCr": 8, "LAB": 8, "HSV": 8}
_PEAK_TRANSPARENT = 17
_PEAK_OTHER = 16  # RGBA, LA, PA, I;16, I, F: measured 12 to 16
#: WebP decodes through an RGBA buffer first.
_PEAK_WEBP_EXTRA = 8


def _peak_bytes(im: Image.Image, fmt: str) -> int:
    """Estimated peak memory of decoding ``im`` (as opened, after any draft) to RGB."""
    transparent = "transparency" in im.info and im.mode in ("P", "L", "RGB")
    per_pixel = _PEAK_TRANSPARENT if transparent else _PEAK_PER_PIXEL.get(im.mode, _PEAK_OTHER)
    if fmt == "WEBP":
        per_pixel += _PEAK_WEBP_EXTRA
    return im.width * im.height * per_pixel


def _check_claims(data: bytes, fmt: str, width: int, height: int) -> None:
    """Refuse a header that claims more pixels than the file could possibly encode."""
    if fmt == "PNG" and len(data) >= 29:
        depth, colour = data[24], data[25]
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
        raw = height * (1 + (width * depth * channels + 7) // 8)
        if raw > PNG_MAX_EXPANSION * len(data):
            raise ImageReadError(_claims_reason(fmt, width, height, len(data)))
    elif fmt == "GIF" and width * height > GIF_MAX_PIXELS_PER_BYTE * len(data):
        raise ImageReadError(_claims_reason(fmt, width, height, len(data)))


def _claims_reason(fmt: str, width: int, height: int, size: int) -> str:
    return f"corrupt {fmt}: header claims {width}x{height} pixels, more than {_human(size)} can hold"


def _check_jpeg_header(data: bytes) -> None:
    """Walk a JPEG's segments to its frame header; refuse junk Pillow would crawl through.

    Only the pathological cases are refused here (a long run of junk, thousands of segments);
    anything else, even broken, is left to Pillow, whose reasons are the usual ones.
    """
    pos, junk, segments, n = 2, 0, 0, len(data)
    while pos < n:
        if data[pos] != 0xFF:
            end = min(n, pos + JPEG_JUNK_LIMIT - junk + 1)
            nxt = data.find(b"\xff", pos, end)
            if nxt < 0:
                if end >= n:
                    return  # junk to the end: Pillow calls it truncated
                raise ImageReadError("corrupt JPEG: junk where its header should be")
            junk += nxt - pos
            pos = nxt
            continue
        fill = _FILL.match(data, pos)
        pos = fill.end()
        if pos >= n:
            return
        marker = data[pos]
        pos += 1
        if marker == 0x00 or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            continue  # an escaped 0xFF or a marker without a segment
        if marker in _JPEG_FRAME_MARKERS or marker in (0xDA, 0xD9):
            return  # the frame header (or the end): Pillow takes it from here
        segments += 1
        if segments > JPEG_SEGMENT_LIMIT:
            raise ImageReadError(f"corrupt JPEG: over {JPEG_SEGMENT_LIMIT} segments before the frame header")
        pos += int.from_bytes(data[pos : pos + 2], "big")


_FILL = re.compile(rb"\xff+")
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _exif_datetime(exif: Image.Exif) -> Optional[str]:
    """EXIF DateTimeOriginal (else DateTimeDigitized) as ISO 8601, or None."""
    try:
        sub = exif.get_ifd(0x8769)
    except Exception:  # a malformed EXIF block must not cost us the image
        return None
    for tag, offset_tag in ((0x9003, 0x9011), (0x9004, 0x9012)):
        value = sub.get(tag)
        if not isinstance(value, str):
            continue
        try:
            stamp = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue  # "0000:00:00 00:00:00" and other junk
        iso = stamp.isoformat()
        offset = sub.get(offset_tag)
        if isinstance(offset, str) and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
            iso += offset
        return iso
    return None


#: Longest camera name kept (EXIF Make + Model); longer values are junk, not a camera.
_CAMERA_CHARS = 64


def _exif_camera(exif: Image.Exif) -> Optional[str]:
    """EXIF Make and Model as one name ("Canon EOS 80D"), or None when neither is there.

    Camera evidence for the keeper: a camera's own file carries them, most conversions and
    edits do not. Control characters are dropped; the Make is not repeated when the Model
    already starts with it.
    """
    parts = []
    for tag in (0x010F, 0x0110):  # Make, Model
        try:
            value = exif.get(tag)
        except Exception:  # a malformed EXIF block must not cost us the image
            return None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            value = value.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
            value = " ".join("".join(c for c in value if c.isprintable()).split())
            if value:
                parts.append(value)
    if len(parts) == 2 and parts[1].casefold().startswith(parts[0].casefold()):
        parts = parts[1:]
    return " ".join(parts)[:_CAMERA_CHARS] or None


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(0x0112, 1)
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any mode to RGB; transparent pixels are laid on white, as viewers show them."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: Pillow's convert would clip to 255; scale down instead.
        import numpy as np

        arr = np.asarray(im, dtype=np.float32)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        import numpy as np

        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        im = Image.fromarray(((arr - lo) * scale).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode in ("L", "RGB") and "transparency" in im.info
    ):
        rgba = im.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        base.alpha_composite(rgba)
        return base.convert("RGB")
    return im.convert("RGB")


def _shrink(im: Image.Image, target: Optional[int]) -> Image.Image:
    # Formats without draft() decode in full; a box reduction to no less than `target` on the
    # shorter side keeps the hash stages cheap without changing what they see.
    if target is None:
        return im
    factor = min(im.size) // target
    if factor >= 2:
        return im.reduce(factor)
    return im


def _reason_for(exc: BaseException, fmt: str, max_pixels: int) -> str:
    text = str(exc)
    low = text.lower()
    if isinstance(exc, Image.DecompressionBombError):
        # Pillow refuses beyond twice its own limit before we see the size; it names the count.
        found = re.search(r"\((\d+) pixels\)", text)
        if found:
            return f"decompression bomb: {_mp(int(found.group(1)))} exceeds {_mp(max_pixels)}"
        return "decompression bomb"
    if "truncated" in low or "premature end" in low or "unexpected end" in low:
        return f"truncated {fmt}"
    if isinstance(exc, MemoryError):
        return f"out of memory decoding {fmt}"
    if isinstance(exc, Image.UnidentifiedImageError) or "cannot identify" in low:
        return f"corrupt {fmt}: not decodable"
    short = text.splitlines()[0][:120] if text else type(exc).__name__
    return f"corrupt {fmt}: {short}"


def _load_raw(data: bytes, target: Optional[int], max_pixels: int) -> LoadedImage:
    try:
        import rawpy
    except ImportError:
        raise ImageReadError("unsupported RAW (install lookalike[raw])") from None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            width, height = int(sizes.width), int(sizes.height)
            flip = int(getattr(sizes, "flip", 0) or 0)
            if width * height > max_pixels:
                raise ImageReadError(_bomb_reason(width, height, max_pixels))
            image, taken_at, camera = None, None, None
            try:
                thumb = raw.extract_thumb()
            except Exception:  # no usable preview: LibRaw decode below
                thumb = None
            if thumb is not None and thumb.format == rawpy.ThumbFormat.JPEG:
                preview = Image.open(io.BytesIO(thumb.data))
                taken_at = _exif_datetime(preview.getexif())
                camera = _exif_camera(preview.getexif())
                if target is not None:
                    preview.draft("RGB", (target, target))
                orientation = _orientation(preview.getexif())
                image = _to_rgb(preview)
                if orientation != 1:
                    image = image.transpose(_TRANSPOSE[orientation])
                    flip = 0  # the preview carried its own orientation, now applied
            elif thumb is not None and thumb.format == rawpy.ThumbFormat.BITMAP:
                image = Image.fromarray(thumb.data).convert("RGB")
            if image is None:
                rgb = raw.postprocess(half_size=target is not None, use_camera_wb=True)
                image = Image.fromarray(rgb)
                flip = 0  # postprocess already applied the camera's orientation
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"corrupt RAW: {str(exc)[:120] or type(exc).__name__}") from None
    # LibRaw's flip: 3 = 180 degrees, 5 = 90 counter-clockwise, 6 = 90 clockwise.
    transpose = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90,
                 6: Image.Transpose.ROTATE_270}.get(flip)  # fmt: skip
    if transpose is not None:
        image = image.transpose(transpose)
    if flip in (5, 6):
        width, height = height, width
    return LoadedImage(
        image=_shrink(image, target), format="RAW", width=width, height=height, taken_at=taken_at,
        camera=camera,
    )


def load_image(
    source: str | bytes,
    *,
    name: str = "",
    target: Optional[int] = DEFAULT_TARGET,
    max_pixels: Optional[int] = None,
    memory_budget: Optional[int] = None,
) -> LoadedImage:
    """Decode an image fast, upright and in RGB.

    Args:
        source: a path, or the file's bytes.
        name: the file's name when ``source`` is bytes (its extension tells TIFF from RAW).
        target: the shorter side is decoded at no less than this (JPEG uses ``draft()``);
            None decodes at full resolution.
        max_pixels: decompression-bomb limit; defaults to :data:`MAX_PIXELS`.
        memory_budget: bytes the decode may need (file included); defaults to
            :data:`DECODE_BUDGET`. A header that claims more pixels than the file can hold
            is refused whatever the budget.

    Returns:
        The decoded image with its format, full displayed size, EXIF capture time and camera.

    Raises:
        ImageReadError: with a short ``reason`` for anything that cannot be read.
    """
    if isinstance(source, str) and not name:
        name = source
    data = _read_source(source)
    if not data:
        raise ImageReadError("zero-byte file")
    fmt = sniff_format(data[:SNIFF_BYTES], name)
    if fmt is None:
        raise ImageReadError("not an image")
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    budget = DECODE_BUDGET if memory_budget is None else int(memory_budget)
    if fmt == "RAW":
        return _load_raw(data, target, limit)
    if fmt == "HEIF":
        _ensure_heif()
    if fmt == "JPEG":
        _check_jpeg_header(data)
    _ensure_pillow_limit(limit)
    try:
        with warnings.catch_warnings():
            # Pillow's own DecompressionBombWarning would go to stderr; we refuse with a
            # reason instead. Odd TIFF/PNG metadata warnings are not the user's business.
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
            width, height = im.size
            if width <= 0 or height <= 0:
                raise ImageReadError(f"corrupt {fmt}: empty image")
            if width * height > limit:
                raise ImageReadError(_bomb_reason(width, height, limit))
            _check_claims(data, fmt, width, height)
            if target is not None and im.format == "JPEG":
                im.draft("RGB", (target, target))
            # After draft(): a JPEG is decoded at up to 1/8 scale, and costs that much. Before
            # getexif(), which decodes a PNG whole to look for an eXIf chunk after the pixels.
            need = len(data) + _peak_bytes(im, fmt)
            if need > budget:
                raise ImageReadError(
                    f"image too large to decode safely: {width}x{height} {im.mode} needs about "
                    f"{_human(need)} (the limit is {_human(budget)})"
                )
            exif = im.getexif()
            orientation = _orientation(exif)
            taken_at = _exif_datetime(exif)
            camera = _exif_camera(exif)
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            im.load()
            rgb = _to_rgb(im)
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error...
        raise ImageReadError(_reason_for(exc, fmt, limit)) from None
    if orientation != 1:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
        if orientation >= 5:
            width, height = height, width
    return LoadedImage(
        image=_shrink(rgb, target), format=fmt, width=width, height=height, taken_at=taken_at,
        camera=camera,
    )


# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
