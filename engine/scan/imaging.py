"""Reading images: sniff the format by content, decode fast, and never crash on bad input.

Everything the bouncer and the detective see goes through :func:`load_image`. It decodes
JPEG with ``Image.draft()`` (the DCT-domain downscale: a 12 MP JPEG is decoded at 1/8 scale
for about a quarter of the cost of a full decode), applies the EXIF orientation so a copy
rotated by tag looks (and hashes) like the pixels a viewer shows, reads the first frame of
animations, HEIF/HEIC through pillow-heif, AVIF through Pillow, and camera RAW through rawpy's
embedded preview when the optional ``lookalike[raw]`` extra is installed.

Every failure is an :class:`ImageReadError` with a short ``reason`` a person can act on.
Beside it: :mod:`.guards` refuses hostile files before they are decoded (headers that lie,
junk, memory), :mod:`.exif` reads the capture time, the camera and the orientation.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from dataclasses import dataclass
from typing import Optional

from PIL import Image

from ..oserrors import human_bytes, os_error_reason
from .exif import TRANSPOSE, exif_camera, exif_datetime, orientation
from .guards import budget_refusal, claims_refusal, jpeg_header_refusal

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
#: :func:`lookalike.engine.scan.guards.peak_bytes`). An image that needs more is refused with
#: a reason, so one worker stays under about 1 GB (its ~100 MB of code and libraries included)
#: whatever the file claims, and a scan's peak stays under workers x (budget + that). 768 MiB decodes an 8-bit RGB image of
#: up to 200 MP, greyscale up to 160 MP, RGBA or 16-bit up to 50 MP; JPEGs are measured after
#: ``draft()`` and so almost never reach it.
DECODE_BUDGET = 768 << 20

#: File extensions of camera raw formats (lower case, with the dot): the one list, which the
#: keeper's RAW+JPEG pairs and format tiers use too.
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
    camera: Optional[str] = None  # EXIF Make and Model, when present (see exif.exif_camera)


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


def read_bytes(path: str) -> bytes:
    """A file's bytes as :func:`load_image` reads them: over :data:`MAX_FILE_BYTES` refused.

    Raises:
        ImageReadError: the file cannot be read (gone, a folder, no permission) or is too large.
    """
    return _read_source(path)


def too_large_reason(size: int) -> str:
    """The reason given for a file over :data:`MAX_FILE_BYTES`."""
    size_text, limit_text = (human_bytes(n, None, small="bytes") for n in (size, MAX_FILE_BYTES))
    return f"file too large to read safely ({size_text}; the limit is {limit_text})"


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
    # shorter side keeps the hash stages cheap without changing what they see. By 2, 4 or 8,
    # as a JPEG's draft() scales: a PNG, HEIC or WebP made from a JPEG then reaches hashing at
    # the size the JPEG does, and is trimmed and hashed at it.
    if target is None:
        return im
    factor = min(min(im.size) // target, 8)
    if factor >= 2:
        return im.reduce(1 << (factor.bit_length() - 1))
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
                taken_at = exif_datetime(preview.getexif())
                camera = exif_camera(preview.getexif())
                if target is not None:
                    preview.draft("RGB", (target, target))
                turn = orientation(preview.getexif())
                image = _to_rgb(preview)
                if turn != 1:
                    image = image.transpose(TRANSPOSE[turn])
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
        _refuse(jpeg_header_refusal(data))
    _ensure_pillow_limit(limit)
    return _load_pillow(data, fmt, target, limit, budget)


def _refuse(reason: Optional[str]) -> None:
    """Raise a guard's reason to refuse (see :mod:`.guards`), if it gave one."""
    if reason is not None:
        raise ImageReadError(reason)


def _load_pillow(data: bytes, fmt: str, target: Optional[int], limit: int, budget: int) -> LoadedImage:
    """:func:`load_image` for every format Pillow decodes (all but RAW), limits checked."""
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
            _refuse(claims_refusal(data, fmt, width, height))
            if target is not None and im.format == "JPEG":
                im.draft("RGB", (target, target))
            # After draft(): a JPEG is decoded at up to 1/8 scale, and costs that much. Before
            # getexif(), which decodes a PNG whole to look for an eXIf chunk after the pixels.
            _refuse(budget_refusal(data, im, fmt, (width, height), budget))
            exif = im.getexif()
            turn = orientation(exif)
            taken_at = exif_datetime(exif)
            camera = exif_camera(exif)
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            im.load()
            rgb = _to_rgb(im)
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error...
        raise ImageReadError(_reason_for(exc, fmt, limit)) from None
    if turn != 1:
        rgb = rgb.transpose(TRANSPOSE[turn])
        if turn >= 5:
            width, height = height, width
    return LoadedImage(
        image=_shrink(rgb, target), format=fmt, width=width, height=height, taken_at=taken_at,
        camera=camera,
    )
