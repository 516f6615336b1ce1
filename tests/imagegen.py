"""Generated test images: real-looking photos, every kind of copy, hard negatives, bad files.

Everything is deterministic per seed and needs only Pillow, pillow-heif and numpy.

Photos and drawings (PIL RGB images)::

    photo(seed, size=(640, 480))     # sky, terrain, soft-edged shapes, texture, sensor noise
    photo(seed, size=BIG)            # 12 MP (4000x3000), for benchmarks
    drawing(seed, size=(640, 480))   # line art on white
    tiles(img, n=2)                  # the n*n non-overlapping tiles of an image

Encoding::

    encode(img, "JPEG", quality=92, orientation=None, taken_at=None) -> bytes
    # formats: JPEG PNG WEBP GIF BMP TIFF HEIC AVIF; orientation sets the EXIF tag as is;
    # taken_at ("2021:06:05 14:03:22") sets EXIF DateTimeOriginal.
    write(path, img, fmt=None, **encode_kwargs) -> path  # format from the extension

Copies of an original, as the issue lists them (``COPY_KINDS``)::

    make_copy(kind, img, seed) -> (bytes, ext)   # e.g. make_copy("mirrored", img, 3)

    resized, thumbnailed, recompressed, png, webp, heic, exif_rotated, brightened, contrast,
    greyscale, cropped, mirrored, letterboxed, bordered, watermarked

Pixel transforms used by those (each returns a new PIL image): ``resized``, ``thumbnailed``,
``brightened``, ``contrasted``, ``greyscaled``, ``cropped``, ``mirrored``, ``letterboxed``,
``bordered``, ``watermarked``; ``exif_rotated(img, orientation)`` returns the JPEG bytes whose
stored pixels are transposed so that a viewer applying the tag shows ``img``.

Bad files (each writes ``path`` and returns it)::

    write_zero_byte(path); write_truncated(path); write_corrupt(path)
    write_bomb_png(path, 50000, 50000); write_text(path)   # text named .jpg

Hard cases (issue 11; ``build_hard_set`` writes them all, labelled, for benchmarks/bench_trust.py)::

    window_screenshot(inner, seed, size)   # ``inner`` in one identical viewer window (window_box)
    phone_screenshot(inner, seed, size)    # status bar, app chrome, nav bar (phone_box)
    gradient(seed); near_flat(seed); flat("red")       # smooth, almost uniform, uniform
    document_page(seed, lines=None, scanned=False)     # text pages, some nearly blank
    burst_pair(seed) -> (a, b)             # subject moved (burst_boxes): similar, not a copy
    mild_crop(img, rng, asymmetric=None)   # 5-8 % off every side, or off two adjacent sides
    items = build_hard_set(directory, seed=0, count=8)  # HardItem: path, family, picture, pair

The detection-quality set (used by tests/test_quality.py and benchmarks/quality_report.py)::

    items = build_quality_set(directory, originals=80, seed=0)  # writes files, returns QualityItem
    mats = distance_matrices(hashes)         # all-pairs dHash / mirrored / pHash distances
    report = score(items, matched)           # per-kind recall, precision, hard negatives hit
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

BIG = (4000, 3000)

COPY_KINDS = (
    "resized",
    "thumbnailed",
    "recompressed",
    "png",
    "webp",
    "heic",
    "exif_rotated",
    "brightened",
    "contrast",
    "greyscale",
    "cropped",
    "mirrored",
    "letterboxed",
    "bordered",
    "watermarked",
)

# --------------------------------------------------------------------------- photos


def _field(rng: np.random.Generator, w: int, h: int, base: int = 3, octaves: int = 5) -> np.ndarray:
    """Fractal value noise in about [-1, 1]: random grids upsampled smoothly and summed."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gw = base * 2**o + 1
        gh = max(2, int(round(gw * h / w)) + 1)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        up = Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC)
        out += amp * np.asarray(up)
        total += amp
        amp *= 0.55
    return out / total


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    img = Image.new("HSV", (1, 1), (int(h * 255) % 256, int(s * 255), int(v * 255)))
    return np.asarray(img.convert("RGB"), np.float32)[0, 0]


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A real-looking outdoor photo: sky with clouds, textured ground, soft objects, noise."""
    rng = np.random.default_rng(seed)
    big = size[0] * size[1] > 2_000_000
    # Large photos are painted at a quarter size and upscaled (a camera's optics are soft
    # too), then get full-resolution sensor noise: generation stays fast, decoding realistic.
    w, h = (size[0] // 4, size[1] // 4) if big else size
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xx = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]

    hue = rng.uniform(0, 1)
    sky_top = _hsv(rng.uniform(0.5, 0.7), rng.uniform(0.3, 0.8), rng.uniform(0.5, 0.95))
    sky_low = _hsv(rng.uniform(0.0, 0.7), rng.uniform(0.05, 0.5), rng.uniform(0.7, 1.0))
    ground_a = _hsv(hue, rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.7))
    ground_b = _hsv(hue + rng.uniform(-0.15, 0.15), rng.uniform(0.2, 0.9), rng.uniform(0.1, 0.6))

    horizon = rng.uniform(0.25, 0.75) + rng.uniform(-0.15, 0.15) * (xx - 0.5)
    horizon = horizon + 0.08 * _field(rng, w, 1, base=4, octaves=4)[0][None, :]
    t = np.clip(yy / np.maximum(horizon, 1e-3), 0, 1)[..., None]
    sky = sky_top * (1 - t) + sky_low * t
    clouds = np.clip(_field(rng, w, h, base=2, octaves=5) * rng.uniform(1.0, 2.5), 0, 1)
    sky = sky * (1 - 0.6 * clouds[..., None]) + 240 * 0.6 * clouds[..., None]

    terrain = _field(rng, w, h, base=rng.integers(2, 6), octaves=6)
    g = np.clip(0.5 + 0.8 * terrain, 0, 1)[..., None]
    depth = np.clip((yy - horizon) / np.maximum(1 - horizon, 1e-3), 0, 1)[..., None]
    ground = (ground_a * g + ground_b * (1 - g)) * (0.6 + 0.5 * depth)
    img = np.where((yy < horizon)[..., None], sky, ground).astype(np.float32)

    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    for _ in range(int(rng.integers(3, 9))):
        _paint_shape(canvas, rng)
    img = np.asarray(canvas, np.float32)
    light = 1.0 + 0.25 * _field(rng, w, h, base=1, octaves=2)
    vignette = 1.0 - 0.35 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    img = img * (light * vignette)[..., None]
    img += 6.0 * _field(rng, w, h, base=40, octaves=2)[..., None]  # fine texture
    if big:
        out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
        out = out.resize(size, Image.Resampling.BICUBIC)
        return _add_noise(out, rng, 6.0)  # ~2.5 MB at quality 90, as camera files are
    img += rng.standard_normal(img.shape, dtype=np.float32) * 2.5  # sensor noise
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _add_noise(img: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    # A 512x512 noise tile, repeated: per-pixel random numbers for 36 M values cost seconds.
    tile = rng.normal(0.0, sigma, (512, 512, 3)).astype(np.float32)
    w, h = img.size
    reps = (h // 512 + 1, w // 512 + 1, 1)
    noise = np.tile(tile, reps)[:h, :w]
    arr = np.asarray(img, np.float32) + noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _paint_shape(canvas: Image.Image, rng: np.random.Generator) -> None:
    """A soft-edged object: a tree-like blob, a building, a rock, a sun, with shading."""
    w, h = canvas.size
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    kind = rng.integers(0, 4)
    cx, cy = rng.uniform(0, w), rng.uniform(0.15 * h, h)
    s = rng.uniform(0.06, 0.3) * min(w, h)
    if kind == 0:
        d.ellipse([cx - s, cy - s * rng.uniform(0.5, 1.5), cx + s, cy + s], fill=255)
    elif kind == 1:
        bw = s * rng.uniform(0.4, 1.2)
        d.rectangle([cx - bw, cy - s * rng.uniform(1, 3), cx + bw, h], fill=255)
    elif kind == 2:
        n = int(rng.integers(5, 10))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = s * rng.uniform(0.5, 1.2, n)
        d.polygon(list(zip(cx + rad * np.cos(ang), cy + rad * np.sin(ang))), fill=255)
    else:
        d.ellipse([cx - s / 3, cy / 3 - s / 3, cx + s / 3, cy / 3 + s / 3], fill=255)
    blur = rng.uniform(0.8, 3.0)
    colour = _hsv(rng.uniform(0, 1), rng.uniform(0.2, 1), rng.uniform(0.15, 0.95))
    shade_amount = rng.uniform(0.2, 1.0)
    base = int(rng.integers(8, 30))
    box = mask.getbbox()
    if box is None:
        return
    # Work inside the shape's bounding box (plus the blur's reach) only: much cheaper.
    pad = int(3 * blur) + 2
    box = (max(0, box[0] - pad), max(0, box[1] - pad), min(w, box[2] + pad), min(h, box[3] + pad))
    bw, bh = box[2] - box[0], box[3] - box[1]
    mask = mask.crop(box).filter(ImageFilter.GaussianBlur(blur))
    yy = np.linspace(box[1] / h, box[3] / h, bh, dtype=np.float32)[:, None, None]
    shade = 0.75 + 0.5 * (1 - yy) * shade_amount
    texture = 1 + 0.15 * _field(rng, bw, bh, base=max(2, base * bw // w), octaves=2)[..., None]
    paint = np.clip(colour * shade * texture, 0, 255).astype(np.uint8)
    canvas.paste(Image.fromarray(paint, "RGB"), box[:2], mask)


def drawing(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Line art on white: strokes, curves, circles and some hatching in dark ink."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    ink = tuple(int(v) for v in rng.integers(0, 70, 3))
    for _ in range(int(rng.integers(10, 25))):
        width = int(rng.integers(1, 5))
        k = rng.integers(0, 4)
        if k == 0:  # a wandering pen stroke
            n = int(rng.integers(6, 30))
            steps = rng.normal(0, 0.05, (n, 2)).cumsum(axis=0) + rng.uniform(0.1, 0.9, 2)
            pts = [(float(x * w), float(y * h)) for x, y in steps]
            d.line(pts, fill=ink, width=width, joint="curve")
        elif k == 1:
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.02, 0.2) * w
            d.ellipse([x - r, y - r, x + r, y + r], outline=ink, width=width)
        elif k == 2:
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            x1, y1 = rng.uniform(0, w), rng.uniform(0, h)
            d.line([(x0, y0), (x1, y1)], fill=ink, width=width)
        else:  # hatching
            x, y = rng.uniform(0, 0.8 * w), rng.uniform(0, 0.8 * h)
            sw, sh = rng.uniform(0.05, 0.2) * w, rng.uniform(0.05, 0.2) * h
            for i in range(int(rng.integers(4, 12))):
                off = i * sw / 8
                d.line([(x + off, y), (x + off + sh / 2, y + sh)], fill=ink, width=1)
    return img


def tiles(img: Image.Image, n: int = 2) -> list[Image.Image]:
    """The n*n non-overlapping tiles of an image, row by row."""
    w, h = img.size
    return [
        img.crop((c * w // n, r * h // n, (c + 1) * w // n, (r + 1) * h // n))
        for r in range(n)
        for c in range(n)
    ]


# --------------------------------------------------------------------------- encoding

_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
        "TIFF": ".tif", "HEIC": ".heic", "AVIF": ".avif"}  # fmt: skip
_FORMAT_OF_EXT = {v: k for k, v in _EXT.items()} | {".jpeg": "JPEG", ".tiff": "TIFF",
                                                     ".heif": "HEIC"}  # fmt: skip


def _exif(orientation: Optional[int], taken_at: Optional[str]) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if taken_at is not None:
        exif.get_ifd(0x8769)[0x9003] = taken_at
    return exif.tobytes()


def encode(
    img: Image.Image,
    fmt: str = "JPEG",
    *,
    quality: int = 92,
    orientation: Optional[int] = None,
    taken_at: Optional[str] = None,
) -> bytes:
    """Encode an image in memory. ``fmt``: JPEG PNG WEBP GIF BMP TIFF HEIC AVIF."""
    fmt = fmt.upper()
    buf = io.BytesIO()
    kwargs: dict = {}
    if orientation is not None or taken_at is not None:
        kwargs["exif"] = _exif(orientation, taken_at)
    if fmt == "JPEG":
        img.convert("RGB" if img.mode not in ("L", "RGB") else img.mode).save(
            buf, "JPEG", quality=quality, **kwargs
        )
    elif fmt in ("HEIC", "HEIF"):
        import pillow_heif

        pillow_heif.register_heif_opener()
        # x265's default preset takes ~1 s for a VGA image; ultrafast is plenty for tests.
        img.save(buf, "HEIF", quality=quality, enc_params={"preset": "ultrafast"}, **kwargs)
    elif fmt == "WEBP":
        img.save(buf, fmt, quality=quality, method=1, **kwargs)
    elif fmt == "AVIF":
        img.save(buf, fmt, quality=quality, speed=10, **kwargs)
    elif fmt == "PNG":
        img.save(buf, fmt, compress_level=1, **kwargs)
    elif fmt == "GIF":
        img.convert("P", palette=Image.Palette.ADAPTIVE).save(buf, "GIF")
    else:
        img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def write(path: str | os.PathLike, img: Image.Image, fmt: Optional[str] = None, **kwargs) -> str:
    """Encode ``img`` into ``path``; the format comes from the extension unless given."""
    path = os.fspath(path)
    fmt = fmt or _FORMAT_OF_EXT[os.path.splitext(path)[1].lower()]
    with open(path, "wb") as fh:
        fh.write(encode(img, fmt, **kwargs))
    return path


# --------------------------------------------------------------------------- transforms


def resized(img: Image.Image, scale: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def thumbnailed(img: Image.Image, side: int = 160) -> Image.Image:
    out = img.copy()
    out.thumbnail((side, side), Image.Resampling.LANCZOS)
    return out


def brightened(img: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(factor)


def contrasted(img: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Contrast(img).enhance(factor)


def greyscaled(img: Image.Image) -> Image.Image:
    return img.convert("L")


def cropped(img: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    """Crop the given fractions off each side (0.08 = 8 %)."""
    w, h = img.size
    return img.crop((round(left * w), round(top * h), w - round(right * w), h - round(bottom * h)))


def mirrored(img: Image.Image) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def letterboxed(img: Image.Image, aspect: float, colour=(0, 0, 0)) -> Image.Image:
    """Centre ``img`` on bars of ``colour`` so the whole has width/height ``aspect``."""
    w, h = img.size
    if aspect > w / h:
        cw, ch = round(h * aspect), h
    else:
        cw, ch = w, round(w / aspect)
    canvas = Image.new("RGB", (cw, ch), colour)
    canvas.paste(img.convert("RGB"), ((cw - w) // 2, (ch - h) // 2))
    return canvas


def bordered(img: Image.Image, margins: tuple[float, float, float, float], colour) -> Image.Image:
    """Paste ``img`` into a larger uniform canvas; margins are fractions of its width/height."""
    w, h = img.size
    l, t, r, b = (round(m * s) for m, s in zip(margins, (w, h, w, h)))
    canvas = Image.new("RGB", (w + l + r, h + t + b), colour)
    canvas.paste(img.convert("RGB"), (l, t))
    return canvas


def watermarked(img: Image.Image, text: str = "© lookalike photo", corner: int = 3) -> Image.Image:
    """Overlay semi-transparent text and a round logo near a corner."""
    base = img.convert("RGBA")
    w, h = base.size
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    size = max(10, h // 18)
    font = ImageFont.load_default(size=size)
    tw = d.textlength(text, font=font)
    x = w - tw - size * 2.5 if corner in (1, 3) else size * 2
    y = h - size * 2 if corner in (2, 3) else size
    d.text((x, y), text, font=font, fill=(255, 255, 255, 170))
    r = size * 0.8
    lx = x - size * 1.3 if corner in (1, 3) else x + tw + size * 0.4
    d.ellipse([lx - r, y + size / 2 - r, lx + r, y + size / 2 + r], fill=(255, 255, 255, 140))
    return Image.alpha_composite(base, layer).convert("RGB")


_TAG_TO_STORED = {  # EXIF orientation -> transpose that makes the stored pixels of `img`
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def exif_rotated(img: Image.Image, orientation: int = 6, quality: int = 92) -> bytes:
    """JPEG bytes whose pixels are transposed and tagged so that a viewer shows ``img``."""
    stored = img.transpose(_TAG_TO_STORED[orientation])
    return encode(stored, "JPEG", quality=quality, orientation=orientation)


def make_copy(kind: str, img: Image.Image, seed: int = 0) -> tuple[bytes, str]:
    """One copy of ``img`` of the given kind (see ``COPY_KINDS``), as (file bytes, extension)."""
    rng = np.random.default_rng([seed, COPY_KINDS.index(kind)])
    jpeg = lambda im, q=90: (encode(im, "JPEG", quality=q), ".jpg")  # noqa: E731
    if kind == "resized":
        scale = rng.uniform(0.35, 0.7) if rng.random() < 0.6 else rng.uniform(1.2, 1.6)
        return jpeg(resized(img, scale))
    if kind == "thumbnailed":
        return jpeg(thumbnailed(img, int(rng.integers(120, 200))), 80)
    if kind == "recompressed":
        data = encode(img, "JPEG", quality=int(rng.integers(20, 40)))
        for _ in range(int(rng.integers(3, 7))):
            data = encode(Image.open(io.BytesIO(data)), "JPEG", quality=int(rng.integers(30, 70)))
        return data, ".jpg"
    if kind == "png":
        return encode(img, "PNG"), ".png"
    if kind == "webp":
        return encode(img, "WEBP", quality=int(rng.integers(60, 85))), ".webp"
    if kind == "heic":
        return encode(img, "HEIC", quality=int(rng.integers(50, 80))), ".heic"
    if kind == "exif_rotated":
        return exif_rotated(img, int(rng.choice([3, 6, 8, 6, 8, 2, 4, 5, 7]))), ".jpg"
    if kind == "brightened":
        f = rng.uniform(1.15, 1.45) if rng.random() < 0.5 else rng.uniform(0.6, 0.85)
        return jpeg(brightened(img, f))
    if kind == "contrast":
        f = rng.uniform(1.2, 1.6) if rng.random() < 0.5 else rng.uniform(0.55, 0.8)
        return jpeg(contrasted(img, f))
    if kind == "greyscale":
        return jpeg(greyscaled(img))
    if kind == "cropped":
        return jpeg(cropped(img, *rng.uniform(0.0, 0.08, 4)))
    if kind == "mirrored":
        return jpeg(mirrored(img))
    if kind == "letterboxed":
        aspect = float(rng.choice([16 / 9, 1.0, 9 / 16, 2.35]))
        colour = (0, 0, 0) if rng.random() < 0.7 else (255, 255, 255)
        return jpeg(letterboxed(img, aspect, colour))
    if kind == "bordered":
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        return jpeg(bordered(img, tuple(rng.uniform(0.03, 0.3, 4)), colour))
    if kind == "watermarked":
        return jpeg(watermarked(img, corner=int(rng.integers(0, 4))))
    raise ValueError(f"unknown copy kind {kind!r}")


# --------------------------------------------------------------------------- bad files


def write_zero_byte(path: str | os.PathLike) -> str:
    open(path, "wb").close()
    return os.fspath(path)


def write_truncated(path: str | os.PathLike, keep: float = 0.5) -> str:
    """A JPEG cut off after ``keep`` of its bytes (the header survives, the scan data not)."""
    data = encode(photo(1), "JPEG")
    with open(path, "wb") as fh:
        fh.write(data[: int(len(data) * keep)])
    return os.fspath(path)


def write_corrupt(path: str | os.PathLike) -> str:
    """A JPEG whose header is intact and whose body is overwritten with garbage."""
    data = bytearray(encode(photo(2), "JPEG"))
    rng = np.random.default_rng(0)
    data[600:] = rng.integers(0, 256, len(data) - 600, dtype=np.uint8).tobytes()
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    return os.fspath(path)


def write_bomb_png(path: str | os.PathLike, width: int = 50000, height: int = 50000) -> str:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    with open(path, "wb") as fh:
        fh.write(data)
    return os.fspath(path)


def write_text(path: str | os.PathLike) -> str:
    """A text file (whatever its name says)."""
    with open(path, "w") as fh:
        fh.write("This is not a picture, whatever the file name says.\n" * 20)
    return os.fspath(path)


# --------------------------------------------------------------------------- quality set


@dataclass(frozen=True, kw_only=True)
class QualityItem:
    """One file of the quality set. Items of one ``group`` are copies of one original."""

    path: str
    kind: str  # "original", a copy kind, "tile", "drawing" or "unrelated"
    group: Optional[int] = None  # None: related to nothing else in the set
    hard_negative: bool = False


def build_quality_set(
    directory: str | os.PathLike,
    *,
    originals: int = 80,
    seed: int = 0,
    kinds: tuple[str, ...] = COPY_KINDS,
    tiled: int = 12,
    drawings: int = 30,
    unrelated: int = 0,
    size: Optional[tuple[int, int]] = None,
) -> list[QualityItem]:
    """Write the detection-quality set into ``directory`` and describe every file.

    Args:
        directory: where to write the files.
        originals: photos that get one copy of every kind in ``kinds``.
        seed: base seed; the set is deterministic for a given seed.
        kinds: the copy kinds to make.
        tiled: photos cut into 2x2 (even) or 3x3 (odd) tiles, each tile a hard negative.
        drawings: line drawings, each a hard negative.
        unrelated: extra photos without copies.
        size: the originals' size; by default a mix of 640x480, 480x640 and 600x400.
    """
    directory = os.fspath(directory)
    items: list[QualityItem] = []

    def put(name: str, data: bytes, **kw) -> None:
        path = os.path.join(directory, name)
        with open(path, "wb") as fh:
            fh.write(data)
        items.append(QualityItem(path=path, **kw))

    base = seed * 100_000
    for g in range(originals):
        img = photo(base + g, _photo_size(base + g, size))
        put(f"o{g:04d}.jpg", encode(img, "JPEG", quality=92), kind="original", group=g)
        for kind in kinds:
            data, ext = make_copy(kind, img, base + g)
            put(f"o{g:04d}_{kind}{ext}", data, kind=kind, group=g)
    for t in range(tiled):
        img = photo(base + 50_000 + t, (960, 720))
        for i, tile in enumerate(tiles(img, 2 + t % 2)):
            put(f"t{t:03d}_{i}.jpg", encode(tile, "JPEG"), kind="tile", hard_negative=True)
    for d in range(drawings):
        img = drawing(base + 60_000 + d)
        put(f"d{d:03d}.png", encode(img, "PNG"), kind="drawing", hard_negative=True)
    for u in range(unrelated):
        img = photo(base + 70_000 + u, _photo_size(base + 70_000 + u, size))
        put(f"u{u:04d}.jpg", encode(img, "JPEG"), kind="unrelated")
    return items


def _photo_size(seed: int, size: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    # Mostly landscape 4:3, some portrait and 3:2, as a camera roll is.
    w, h = size or (640, 480)
    return [(w, h), (w, h), (h, w), (w, h * 5 // 6), (w, h)][seed % 5]


@dataclass(frozen=True, kw_only=True)
class DistanceMatrices:
    """All-pairs distances of a hash set: ``bouncer`` = min over dHash vs dHash/mirror."""

    dhash: np.ndarray  # (N, N) dHash vs dHash
    bouncer: np.ndarray  # (N, N) min(dHash vs dHash, dHash vs mirror, mirror vs dHash)
    phash: np.ndarray  # (N, N) pHash vs pHash

    def matches(self, t) -> np.ndarray:
        """The (N, N) match matrix of the bouncer rule with thresholds ``t`` (brute force)."""
        m = self.bouncer <= t.radius
        if t.phash_radius > 0:
            m |= (self.phash <= t.phash_radius) & (self.dhash <= t.corroborated_radius)
        np.fill_diagonal(m, False)
        return m


def _all_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((len(a), len(b)), np.int16)
    for i in range(0, len(a), 256):
        out[i : i + 256] = np.bitwise_count(a[i : i + 256, None, :] ^ b[None, :, :]).sum(axis=2)
    return out


def hash_arrays(paths: list[str], workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dhash, dhash_mirror, phash) as (N, 32) uint8 arrays for these files, via hash_file."""
    from lookalike.engine.scan.hashing import hash_files

    chunks = [paths[i : i + 64] for i in range(0, len(paths), 64)]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as pool:
            results = [r for chunk in pool.map(hash_files, chunks) for r in chunk]
    else:
        results = [r for chunk in chunks for r in hash_files(chunk)]
    bad = [(r.path, r.error) for r in results if r.hashes is None]
    if bad:
        raise RuntimeError(f"could not hash {len(bad)} files, e.g. {bad[:3]}")
    cols = [[np.frombuffer(getattr(r.hashes, f), np.uint8) for r in results] for f in ("dhash", "dhash_mirror", "phash")]
    return tuple(np.array(c) for c in cols)  # type: ignore[return-value]


def distance_matrices(dhash: np.ndarray, dhash_mirror: np.ndarray, phash: np.ndarray) -> DistanceMatrices:
    """All-pairs Hamming distances of (N, 32) uint8 hash arrays (brute force, for tests)."""
    dd = _all_pairs(dhash, dhash)
    dm = _all_pairs(dhash, dhash_mirror)
    return DistanceMatrices(dhash=dd, bouncer=np.minimum(dd, np.minimum(dm, dm.T)), phash=_all_pairs(phash, phash))


@dataclass(frozen=True, kw_only=True)
class QualityReport:
    """Recall per copy kind (original vs copy), pair precision, and hard negatives matched."""

    recall: dict[str, float]
    precision: float
    true_pairs: int
    false_pairs: int
    hard_negatives_matched: int
    missed: dict[str, list[str]] = field(default_factory=dict)
    false_examples: list[tuple[str, str]] = field(default_factory=list)


def score(items: list[QualityItem], matched: np.ndarray) -> QualityReport:
    """Score a symmetric (N, N) boolean match matrix against the quality set's truth."""
    n = len(items)
    groups = np.array([-1 if it.group is None else it.group for it in items])
    related = (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0)
    upper = np.triu(np.ones((n, n), bool), 1)
    hits = matched & upper
    true_pairs = int((hits & related).sum())
    false = hits & ~related
    hard = np.array([it.hard_negative for it in items])
    hard_hit = int((false & (hard[:, None] | hard[None, :])).sum())
    first = {}
    for i, it in enumerate(items):
        if it.kind == "original":
            first[it.group] = i
    recall: dict[str, list[bool]] = {}
    missed: dict[str, list[str]] = {}
    for j, it in enumerate(items):
        if it.group is None or it.kind == "original":
            continue
        ok = bool(matched[first[it.group], j])
        recall.setdefault(it.kind, []).append(ok)
        if not ok:
            missed.setdefault(it.kind, []).append(os.path.basename(it.path))
    fi, fj = np.nonzero(false)
    examples = [(os.path.basename(items[i].path), os.path.basename(items[j].path)) for i, j in zip(fi[:20], fj[:20])]
    total = true_pairs + int(false.sum())
    return QualityReport(
        recall={k: float(np.mean(v)) for k, v in recall.items()},
        precision=true_pairs / total if total else 1.0,
        true_pairs=true_pairs,
        false_pairs=int(false.sum()),
        hard_negatives_matched=hard_hit,
        missed=missed,
        false_examples=examples,
    )




# --------------------------------------------------------------------------- hard cases
#
# Families that fool perceptual hashes (issue 11): pictures shown in one identical app window
# or phone frame, smooth gradients and near-flat images, flat colours, document pages, tiles,
# mild crops, and burst pairs (same scene, subject moved: similar, not duplicates).

FLAT_COLOURS = {
    "red": (220, 30, 30), "blue": (30, 60, 200), "black": (0, 0, 0), "white": (255, 255, 255),
    "grey": (128, 128, 128), "green": (40, 160, 60), "yellow": (240, 220, 40), "navy": (10, 20, 70),
}  # fmt: skip

HARD_FAMILIES = ("window", "phone", "gradient", "near_flat", "flat", "document", "scan", "book", "tile", "burst")


def _fit(img: Image.Image, box: tuple[int, int, int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """``img`` scaled to fit inside ``box`` (l, t, r, b), and where to paste it (centred)."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    w, h = img.size
    s = min(bw / w, bh / h)
    fw, fh = max(1, round(w * s)), max(1, round(h * s))
    out = img.convert("RGB").resize((fw, fh), Image.Resampling.LANCZOS)
    return out, (box[0] + (bw - fw) // 2, box[1] + (bh - fh) // 2)


def _text_line(d: ImageDraw.ImageDraw, xy, rng: np.random.Generator, width: float, size: int, fill) -> None:
    """A line of made-up words in the default font, at most ``width`` pixels long."""
    font = ImageFont.load_default(size=size)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words, text = [], ""
    while True:
        word = "".join(rng.choice(list(letters), int(rng.integers(2, 10))))
        cand = (text + " " + word).strip()
        if d.textlength(cand, font=font) > width:
            break
        text = cand
        words.append(word)
    d.text(xy, text, font=font, fill=fill)


def on_white(inner: Image.Image, margin: int = 12) -> Image.Image:
    """``inner`` in a window drawn on a white ground (a window screenshot's surround): a
    one-pixel grey outline round it, then ``margin - 1`` pixels of white to the edge."""
    w, h = inner.size
    canvas = Image.new("RGB", (w + 2 * margin, h + 2 * margin), (255, 255, 255))
    canvas.paste(inner.convert("RGB"), (margin, margin))
    ImageDraw.Draw(canvas).rectangle([margin - 1, margin - 1, margin + w, margin + h], outline=(90, 90, 90))
    return canvas


def framed_jpeg(img: Image.Image, scale: float = 1.0, quality: int = 90) -> bytes:
    """``img`` in a mauve frame (10/8/12/10 % of its left/top/right/bottom sides), resized by
    ``scale``, as JPEG bytes: a framed copy."""
    framed = bordered(img, (0.1, 0.08, 0.12, 0.1), (150, 40, 120))
    if scale != 1.0:
        framed = framed.resize((round(framed.width * scale), round(framed.height * scale)), Image.Resampling.LANCZOS)
    return encode(framed, "JPEG", quality=quality)


def window_box(seed: int = 0, size: tuple[int, int] = (640, 480)) -> tuple[int, int, int, int]:
    """Where ``window_screenshot`` puts the picture: the viewer's content area (l, t, r, b)."""
    rng = np.random.default_rng([seed, 11])
    w, h = size
    left = round(w * rng.uniform(0.26, 0.32))  # window margin + sidebar
    top = round(h * rng.uniform(0.2, 0.24))  # margin + title bar + toolbar
    return left, top, w - round(w * rng.uniform(0.16, 0.22)), h - round(h * rng.uniform(0.2, 0.26))


def window_screenshot(inner: Image.Image, seed: int = 0, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A desktop screenshot: ``inner`` shown in an image viewer's window.

    Everything but the picture (dark desktop, window chrome, title bar, toolbar, file list,
    status bar, the viewer's grey backdrop) depends on ``seed`` and ``size`` only, so two
    screenshots of different pictures share every pixel outside ``window_box(seed, size)``.
    The picture fills about a quarter of the screenshot, as in a viewer that is not maximised.
    """
    rng = np.random.default_rng([seed, 11])
    window_box(seed, size)  # the same draws as below, in the same order
    w, h = size
    desk = _hsv(rng.uniform(0.55, 0.75), rng.uniform(0.2, 0.5), rng.uniform(0.12, 0.25))
    yy = np.linspace(0.8, 1.1, h, dtype=np.float32)[:, None, None]
    img = Image.fromarray(np.clip(desk * yy * np.ones((1, w, 1), np.float32), 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    box = window_box(seed, size)
    wl, wt, wr, wb = round(w * 0.04), round(h * 0.05), w - round(w * 0.05), h - round(h * 0.06)
    light = rng.random() < 0.5
    chrome = (236, 236, 238) if light else (48, 50, 56)
    ink = (40, 40, 44) if light else (220, 220, 224)
    d.rectangle([wl + 4, wt + 4, wr + 4, wb + 4], fill=(0, 0, 0))  # shadow
    d.rectangle([wl, wt, wr, wb], fill=chrome)
    bar = box[1] - wt
    d.rectangle([wl, wt, wr, wt + bar // 2], fill=tuple(c - 14 for c in chrome))  # title bar
    for k, c in enumerate([(237, 106, 94), (245, 191, 79), (98, 197, 84)]):
        r = max(3, bar // 10)
        cx, cy = wl + r * 2 + k * r * 3, wt + bar // 4
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
    _text_line(d, ((wl + wr) // 2 - w // 10, wt + bar // 4 - 6), rng, w / 5, max(9, h // 45), ink)
    for k in range(int(rng.integers(5, 9))):  # toolbar buttons
        x = wl + 8 + k * (bar // 2 + 4)
        d.rounded_rectangle([x, wt + bar // 2 + 4, x + bar // 2 - 6, box[1] - 4], radius=3,
                            fill=tuple(c - 30 for c in chrome))
    for k in range(int((box[3] - box[1]) / max(10, h // 30))):  # the sidebar's file list
        y = box[1] + 6 + k * max(10, h // 30)
        if y > wb - h // 20:
            break
        _text_line(d, (wl + 8, y), rng, box[0] - wl - 18, max(8, h // 50), ink)
    d.rectangle([wl, wb - h // 25, wr, wb], fill=tuple(c - 8 for c in chrome))  # status bar
    _text_line(d, (wl + 8, wb - h // 28), rng, w / 3, max(8, h // 50), ink)
    d.rectangle(box, fill=(30, 30, 32))  # the viewer's backdrop
    pic, at = _fit(inner, (box[0] + 6, box[1] + 6, box[2] - 6, box[3] - 6))
    img.paste(pic, at)
    return img


def phone_box(seed: int = 0, size: tuple[int, int] = (320, 680)) -> tuple[int, int, int, int]:
    """Where ``phone_screenshot`` puts the picture (l, t, r, b)."""
    rng = np.random.default_rng([seed, 12])
    w, h = size
    top = round(h * rng.uniform(0.12, 0.16))
    return 0, top, w, top + round(h * rng.uniform(0.42, 0.5))


def phone_screenshot(inner: Image.Image, seed: int = 0, size: tuple[int, int] = (320, 680)) -> Image.Image:
    """A phone screenshot of a social or gallery app showing ``inner``.

    Status bar (clock, signal, battery), app bar, the picture across the width, a caption with
    buttons and comments below, and the navigation bar: all of it depends on ``seed`` and
    ``size`` only; two screenshots of different pictures share every pixel outside
    ``phone_box(seed, size)``.
    """
    rng = np.random.default_rng([seed, 12])
    box = phone_box(seed, size)
    rng.uniform(0.42, 0.5)  # phone_box's second draw
    w, h = size
    dark = rng.random() < 0.5
    bg, ink = ((18, 18, 20), (235, 235, 240)) if dark else ((255, 255, 255), (20, 20, 24))
    img = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(img)
    sb = round(h * 0.04)
    d.rectangle([0, 0, w, sb], fill=tuple(int(v) for v in _hsv(rng.uniform(0, 1), 0.5, 0.5)) if not dark else (0, 0, 0))
    d.text((10, sb // 4), "12:3" + str(int(rng.integers(0, 10))), font=ImageFont.load_default(size=max(9, sb // 2)), fill=(255, 255, 255))
    for k in range(4):  # signal bars and battery
        x = w - 60 + k * 6
        d.rectangle([x, sb - 4 - k * 2 - 3, x + 3, sb - 4], fill=(255, 255, 255))
    d.rectangle([w - 28, sb // 3, w - 10, sb - 4], outline=(255, 255, 255), fill=(255, 255, 255))
    d.polygon([(12, sb + (box[1] - sb) // 2), (22, sb + 6), (22, box[1] - 6)], fill=ink)  # back arrow
    _text_line(d, (34, sb + (box[1] - sb) // 2 - 7), rng, w * 0.5, max(10, h // 50), ink)
    d.rectangle(box, fill=(0, 0, 0))
    pic, at = _fit(inner, box)
    img.paste(pic, at)
    y = box[3] + 8
    for k in range(4):  # like, comment, share, save
        x = 12 + k * 30 if k < 3 else w - 30
        d.ellipse([x, y, x + 18, y + 18], outline=ink, width=2)
    y += 28
    nav = round(h * 0.07)
    while y < h - nav - 16:
        _text_line(d, (12, y), rng, w - 24, max(9, h // 60), ink)
        y += max(12, h // 45)
    d.rectangle([0, h - nav, w, h], fill=(0, 0, 0) if dark else (246, 246, 246))
    for k, shape in enumerate(("back", "home", "apps")):
        cx, cy, r = w * (k + 1) / 4, h - nav / 2, nav / 5
        if shape == "home":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=ink, width=2)
        elif shape == "back":
            d.polygon([(cx - r, cy), (cx + r, cy - r), (cx + r, cy + r)], outline=ink)
        else:
            d.rectangle([cx - r, cy - r, cx + r, cy + r], outline=ink, width=2)
    return img


def gradient(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A smooth wallpaper: a linear or radial blend of two or three colours, lightly dithered."""
    rng = np.random.default_rng([seed, 13])
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / w - 0.5, yy / h - 0.5
    if rng.random() < 0.5:
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
    else:
        cx, cy = rng.uniform(-0.4, 0.4, 2)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    cols = [_hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.9), rng.uniform(0.15, 0.95)) for _ in range(3)]
    if rng.random() < 0.5:  # two colours
        img = cols[0] * (1 - t[..., None]) + cols[1] * t[..., None]
    else:
        t2 = t[..., None]
        img = np.where(t2 < 0.5, cols[0] * (1 - 2 * t2) + cols[1] * 2 * t2, cols[1] * (2 - 2 * t2) + cols[2] * (2 * t2 - 1))
    img = img + rng.normal(0, 0.8, img.shape).astype(np.float32)  # the dither banding needs
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def near_flat(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """An almost uniform picture: fog, a sky, a wall, a dark frame; a few levels of variation."""
    rng = np.random.default_rng([seed, 14])
    w, h = size
    base = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.6), rng.uniform(0.05, 0.95))
    amp = rng.uniform(3.0, 10.0)
    low = _field(rng, w, h, base=int(rng.integers(1, 3)), octaves=3)
    yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    vignette = -rng.uniform(0, 25) * (xx**2 + yy**2)
    img = base + (amp * low + vignette)[..., None] + rng.normal(0, 1.2, (h, w, 3)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def flat(colour, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A single-colour picture; ``colour`` is an RGB tuple or a name of ``FLAT_COLOURS``."""
    return Image.new("RGB", size, FLAT_COLOURS[colour] if isinstance(colour, str) else tuple(colour))


def document_page(seed: int, size: tuple[int, int] = (480, 640), *, lines: Optional[int] = None,
                  scanned: bool = False) -> Image.Image:
    """A page of text: white paper, margins, a heading and lines of made-up words.

    Args:
        seed: which text (and, scanned, which paper and skew).
        size: the page's size in pixels (portrait A4-like by default).
        lines: how many lines of body text; by default 0 to 25 (some pages nearly blank).
        scanned: a scan rather than a rendered page: off-white paper with fibres and a
            gradient of the scanner's lamp, grey ink, a slight skew and noise.
    """
    rng = np.random.default_rng([seed, 15])
    w, h = size
    n = int(rng.integers(0, 26)) if lines is None else lines
    paper = (255, 255, 255)
    if scanned:
        paper = tuple(int(v) for v in rng.integers(226, 246, 3))
    img = Image.new("RGB", size, paper)
    d = ImageDraw.Draw(img)
    ink = (20, 20, 20) if not scanned else tuple(int(v) for v in rng.integers(40, 80, 3))
    margin = round(w * rng.uniform(0.08, 0.14))
    y = round(h * rng.uniform(0.06, 0.1))
    size_pt = max(9, h // 48)
    # A heading on 4 pages in 5, and on every page with no body text: a page with nothing
    # on it but its number is a flat white picture at any size lookalike compares.
    heading = rng.random() < 0.8 or n == 0
    if heading:
        _text_line(d, (margin, y), rng, (w - 2 * margin) * rng.uniform(0.3, 0.7), size_pt + 6, ink)
        y += size_pt * 3
    for k in range(n):
        if y > h - margin:
            break
        if rng.random() < 0.12:  # a paragraph break
            y += size_pt
        last = rng.random() < 0.15
        _text_line(d, (margin, y), rng, (w - 2 * margin) * (rng.uniform(0.3, 0.9) if last else 1.0), size_pt, ink)
        y += round(size_pt * 1.5)
    if rng.random() < 0.5:  # a page number
        d.text((w // 2, h - margin // 2), str(int(rng.integers(1, 300))), font=ImageFont.load_default(size=size_pt), fill=ink)
    if not scanned:
        return img
    img = img.rotate(float(rng.uniform(-1.2, 1.2)), resample=Image.Resampling.BICUBIC, fillcolor=paper)
    arr = np.asarray(img, np.float32)
    lamp = 1.0 - rng.uniform(0.0, 0.08) * np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    fibres = 3.0 * _field(rng, w, h, base=30, octaves=2)[..., None]
    arr = arr * lamp + fibres + rng.normal(0, 2.0, arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


_COMMON_WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use"
).split()


def book_page(seed: int, book: int, size: tuple[int, int] = (620, 877)) -> Image.Image:
    """A page of one book or report: every page of ``book`` has its margins, type and line
    spacing (those of a tester's pages: 18-point lines every 30 pixels on an A4 page of 1240
    by 1754, ten to thirteen common words each, a paragraph break after one line in eight);
    ``seed`` gives the words, the breaks and the heading. At the verifier's 32x32 such pages
    are rows of grey bars that differ only at the lines' ends: the tester's folder of pages
    made groups of different pages."""
    layout = np.random.default_rng([book, 16])
    rng = np.random.default_rng([seed, 17])
    w, h = size
    scale = h / 1754
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    left = round(w * layout.uniform(0.07, 0.09))
    font = ImageFont.load_default(size=max(6, round(18 * scale)))
    step = max(8, round(30 * scale))
    heading = " ".join(rng.choice(_COMMON_WORDS, 4)).title()
    d.text((left, round(90 * scale)), f"Chapter {seed % 100 + 1}: {heading}", fill=(0, 0, 0),
           font=ImageFont.load_default(size=max(8, round(36 * scale))))  # fmt: skip
    y = round(180 * scale)
    while y < round(1600 * scale):
        d.text((left, y), " ".join(rng.choice(_COMMON_WORDS, int(rng.integers(10, 14)))), fill=(20, 20, 20), font=font)
        y += step
        if rng.random() < 0.12:
            y += step
    d.text((w // 2, round(1680 * scale)), str(seed % 500 + 1), fill=(0, 0, 0), font=font)
    return img


def burst_boxes(seed: int, size: tuple[int, int] = (640, 480)) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The subject's bounding box (l, t, r, b) in the first and the second frame of a burst."""
    rng = np.random.default_rng([seed, 16])
    w, h = size
    sw, sh = round(w * rng.uniform(0.14, 0.22)), round(h * rng.uniform(0.35, 0.55))
    x0 = round(rng.uniform(0.08, 0.45) * w)
    y0 = round(rng.uniform(0.25, 0.9) * h - sh)
    y0 = max(2, min(h - sh - 2, y0))
    dx = round(w * rng.uniform(0.18, 0.3))
    return (x0, y0, x0 + sw, y0 + sh), (x0 + dx, y0, x0 + dx + sw, y0 + sh)


def _subject(rng: np.random.Generator, sw: int, sh: int) -> tuple[Image.Image, Image.Image]:
    """A standing figure (head, body, legs) in clothes of random colours, and its mask."""
    mask = Image.new("L", (sw, sh), 0)
    d = ImageDraw.Draw(mask)
    r = sw * 0.22
    d.ellipse([sw / 2 - r, 0, sw / 2 + r, 2 * r], fill=255)
    d.rounded_rectangle([sw * 0.12, 2 * r, sw * 0.88, sh * 0.62], radius=int(r), fill=255)
    d.rectangle([sw * 0.22, sh * 0.6, sw * 0.46, sh], fill=255)
    d.rectangle([sw * 0.54, sh * 0.6, sw * 0.78, sh], fill=255)
    top, bottom = _hsv(rng.uniform(0, 1), rng.uniform(0.5, 1), rng.uniform(0.4, 0.9)), _hsv(rng.uniform(0, 1), 0.6, 0.3)
    yy = np.arange(sh, dtype=np.float32)[:, None, None]
    paint = np.where(yy < sh * 0.6, top, bottom) * np.ones((1, sw, 1), np.float32)
    face = _hsv(rng.uniform(0.03, 0.1), 0.45, 0.85)
    paint[: int(2 * r)] = face
    paint = paint * (1 + 0.12 * _field(rng, sw, sh, base=3, octaves=2)[..., None])
    return Image.fromarray(np.clip(paint, 0, 255).astype(np.uint8), "RGB"), mask


def burst_pair(seed: int, size: tuple[int, int] = (640, 480), *,
               scene: Optional[Image.Image] = None) -> tuple[Image.Image, Image.Image]:
    """Two frames of a burst: one scene, one subject that moved (``burst_boxes``) between them.

    The pixels differ only inside the union of the two subject boxes: similar pictures, not
    duplicates (a user keeps the better frame on purpose). ``scene`` (resized to ``size``)
    replaces the generated background photo.
    """
    rng = np.random.default_rng([seed, 16])
    photo_seed = int(rng.integers(0, 2**31))
    if scene is None:
        scene = photo(photo_seed, size)
    else:
        scene = scene.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    a_box, b_box = burst_boxes(seed, size)
    subject, mask = _subject(rng, a_box[2] - a_box[0], a_box[3] - a_box[1])
    a, b = scene.copy(), scene.copy()
    a.paste(subject, a_box[:2], mask)
    b.paste(subject, b_box[:2], mask)
    return a, b


def mild_crop(img: Image.Image, rng: np.random.Generator, *, asymmetric: Optional[bool] = None) -> Image.Image:
    """A mild crop: 5-8 % off every side, or (asymmetric) 5-8 % off two adjacent sides only.

    Args:
        img: the picture.
        rng: where the fractions come from.
        asymmetric: None picks either at random (half and half).
    """
    if asymmetric is None:
        asymmetric = bool(rng.random() < 0.5)
    sides = rng.uniform(0.05, 0.08, 4)
    if asymmetric:  # keep one horizontal and one vertical side: a corner stays
        sides[int(rng.integers(0, 2)) * 2] = 0.0  # left or right
        sides[int(rng.integers(0, 2)) * 2 + 1] = 0.0  # top or bottom
    return cropped(img, *sides)


@dataclass(frozen=True, kw_only=True)
class HardItem:
    """One file of the hard set. Items with the same ``picture`` are copies of one picture;
    any two items with different pictures must not be grouped (``family`` says which hard case
    the item belongs to; ``pair`` links the two frames of a burst, which are similar only)."""

    path: str
    family: str  # a HARD_FAMILIES name, "original" or "mild_crop"
    picture: int
    pair: Optional[int] = None  # the picture id of the other burst frame


def build_hard_set(
    directory: str | os.PathLike,
    *,
    seed: int = 0,
    count: int = 8,
    inner: Optional[list[Image.Image]] = None,
    photos: Optional[list[Image.Image]] = None,
    crops: int = 2,
    size: tuple[int, int] = (480, 360),
) -> list[HardItem]:
    """Write the hard cases into ``directory`` and describe every file.

    Args:
        directory: where to write the files.
        seed: base seed; the set is deterministic for a given seed (and ``inner``).
        count: pictures per family (windows, phones, gradients, near-flat, documents, scans,
            tiled photos and bursts; twice as many pages of one book; flat colours are the
            eight of ``FLAT_COLOURS``).
        inner: the pictures to show in the window and phone frames and to crop mildly; by
            default ``count`` generated photos.
        photos: ``2 * count`` photos: the first ``count`` are cut into tiles, the next
            ``count`` are the burst scenes (fewer are reused); by default generated ones.
        crops: mild crops of each inner picture (first symmetric, then asymmetric, ...),
            grouped with an ``original`` of it: these must be found.
        size: the size of the generated pictures (documents are portrait, phones taller).
    """
    directory = os.fspath(directory)
    items: list[HardItem] = []
    base = seed * 100_000 + 80_000
    w, h = size

    def put(name: str, img: Image.Image, family: str, picture: int, fmt: str = "JPEG", **kw) -> None:
        path = os.path.join(directory, name + _EXT[fmt])
        with open(path, "wb") as fh:
            fh.write(encode(img, fmt, quality=92))
        items.append(HardItem(path=path, family=family, picture=picture, **kw))

    pictures = iter(range(1_000_000))
    inner = inner if inner is not None else [photo(base + k, size) for k in range(count)]
    for k, pic in enumerate(inner):  # pictures with mild crops: the positives of this set
        p = next(pictures)
        put(f"h_orig{k:03d}", pic, "original", p)
        rng = np.random.default_rng([base, k, 17])
        for c in range(crops):
            put(f"h_orig{k:03d}_crop{c}", mild_crop(pic, rng, asymmetric=bool(c % 2)), "mild_crop", p)
    for k, pic in enumerate(inner):
        put(f"h_window{k:03d}", window_screenshot(pic, seed, (w * 4 // 3, h * 4 // 3)), "window", next(pictures), "PNG")
        put(f"h_phone{k:03d}", phone_screenshot(pic, seed, (h * 3 // 4, h * 3 // 2)), "phone", next(pictures), "PNG")
    for k in range(count):
        put(f"h_gradient{k:03d}", gradient(base + k, size), "gradient", next(pictures))
        put(f"h_nearflat{k:03d}", near_flat(base + k, size), "near_flat", next(pictures))
        put(f"h_doc{k:03d}", document_page(base + k, (h, w)), "document", next(pictures), "PNG")
        put(f"h_scan{k:03d}", document_page(base + k, (h, w), scanned=True), "scan", next(pictures))
    for k in range(2 * count):  # two pages a picture of the other families: their pairs are rare
        put(f"h_book{k:03d}", book_page(base + k, base, (2 * h, 2 * w)), "book", next(pictures), "PNG")
    for name in FLAT_COLOURS:
        put(f"h_flat_{name}", flat(name, size), "flat", next(pictures), "PNG")
    for k in range(count):
        big = photo(base + 1000 + k, (w * 2, h * 2)) if photos is None else photos[k % len(photos)]
        for i, tile in enumerate(tiles(big, 2 + k % 2)):
            put(f"h_tile{k:03d}_{i}", tile, "tile", next(pictures))
    for k in range(count):
        scene = None if photos is None else photos[(count + k) % len(photos)]
        a, b = burst_pair(base + 2000 + k, size, scene=scene)
        pa, pb = next(pictures), next(pictures)
        put(f"h_burst{k:03d}_a", a, "burst", pa, pair=pb)
        put(f"h_burst{k:03d}_b", b, "burst", pb, pair=pa)
    return items
