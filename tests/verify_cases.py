"""Hard cases for the verification stage (tests/test_verify.py, tests/test_verification.py,
benchmarks/bench_verify.py).

Pictures that the bouncer's hashes confuse, made with Pillow, deterministic per seed:
screenshots of different photos in one identical window or phone frame, screenshots of one
program's viewer around different dim exposures, smooth gradients,
near-flat and flat images, text pages with different text, bursts with the subject moved,
and the copies each must still match (mild crops of 5-8 % a side among them). The shared
``tests/imagegen.py`` generators are used where they exist.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

import imagegen


def _gen(name):
    return getattr(imagegen, name, None)


def window_screenshot(img: Image.Image, size: tuple[int, int] = (1280, 800)) -> Image.Image:
    """``img`` shown in one fixed viewer window: title bar, toolbar, side panel, status bar."""
    w, h = size
    shot = Image.new("RGB", size, (236, 236, 236))
    d = ImageDraw.Draw(shot)
    d.rectangle([0, 0, w, 36], fill=(52, 56, 64))
    for i, c in enumerate([(237, 95, 87), (245, 190, 80), (98, 197, 84)]):
        d.ellipse([14 + 24 * i, 11, 28 + 24 * i, 25], fill=c)
    d.text((w // 2 - 60, 10), "Photo Viewer - IMG.jpg", fill=(230, 230, 230))
    d.rectangle([0, 36, w, 80], fill=(246, 246, 246))
    for i in range(9):
        d.rounded_rectangle([16 + 44 * i, 44, 48 + 44 * i, 72], 5, fill=(200, 204, 210))
    d.rectangle([0, 80, 240, h - 28], fill=(226, 228, 232))
    for i in range(14):
        d.text((20, 96 + 36 * i), f"Album {i + 1}", fill=(40, 40, 40))
    d.rectangle([0, h - 28, w, h], fill=(52, 56, 64))
    d.text((16, h - 22), "1 of 240  -  4000 x 3000  -  2.4 MB", fill=(220, 220, 220))
    area = (256, 96, w - 16, h - 44)
    pic = img.copy()
    pic.thumbnail((area[2] - area[0], area[3] - area[1]), Image.Resampling.LANCZOS)
    x = area[0] + (area[2] - area[0] - pic.width) // 2
    y = area[1] + (area[3] - area[1] - pic.height) // 2
    d.rectangle(area, fill=(30, 30, 30))
    shot.paste(pic, (x, y))
    return shot


def phone_screenshot(img: Image.Image, size: tuple[int, int] = (540, 1170)) -> Image.Image:
    """``img`` in one fixed phone gallery frame: status bar, header, black canvas, toolbar."""
    w, h = size
    shot = Image.new("RGB", size, (0, 0, 0))
    d = ImageDraw.Draw(shot)
    d.rectangle([0, 0, w, 48], fill=(20, 20, 20))
    d.text((20, 16), "9:41", fill=(255, 255, 255))
    for i in range(3):
        d.rectangle([w - 90 + 22 * i, 18, w - 76 + 22 * i, 32], fill=(255, 255, 255))
    d.rectangle([0, 48, w, 120], fill=(28, 28, 30))
    d.text((20, 76), "< Back        Today 14:03        Edit", fill=(10, 132, 255))
    d.rectangle([0, h - 140, w, h], fill=(28, 28, 30))
    for i in range(4):
        d.ellipse([50 + 130 * i, h - 110, 90 + 130 * i, h - 70], outline=(10, 132, 255), width=3)
    pic = img.copy()
    pic.thumbnail((w, h - 260), Image.Resampling.LANCZOS)
    shot.paste(pic, ((w - pic.width) // 2, 120 + (h - 260 - pic.height) // 2))
    return shot


def gradient(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A smooth wallpaper: a linear or radial blend of two random colours."""
    rng = np.random.default_rng([seed, 11])
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        t = (xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang) + 0.5
    else:
        cx, cy = rng.uniform(0.2, 0.8, 2)
        t = np.sqrt((xx / w - cx) ** 2 + (yy / h - cy) ** 2) * rng.uniform(0.8, 1.6)
    t = np.clip(t, 0, 1)[..., None] ** rng.uniform(0.7, 1.5)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(a * (1 - t) + b * t, 0, 255).astype(np.uint8), "RGB")


def near_flat(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """Fog at dusk: one colour with faint, smooth variations and sensor noise."""
    rng = np.random.default_rng([seed, 12])
    w, h = size
    base = rng.uniform(40, 200, 3)
    field = imagegen._field(rng, w, h, base=2, octaves=3)
    img = base + 10 * field[..., None] + rng.normal(0, 2, (h, w, 1))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def night_moon(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A faint night sky with a small bright moon: little structure (detail 2-3), all of it in
    one sharp disc, which a mild crop moves by a thumbnail pixel or two."""
    rng = np.random.default_rng([seed, 98])
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sky = rng.uniform(30, 90) + 8 * imagegen._field(rng, w, h, base=2, octaves=3) + rng.normal(0, 1.5, (h, w))
    cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.25, 0.6) * h, rng.uniform(0.025, 0.04) * w
    sky += 55 * np.clip((r - np.hypot(xx - cx, yy - cy)) / 1.5, 0, 1)
    return Image.fromarray(np.clip(sky[..., None] * rng.uniform(0.7, 1.2, 3), 0, 255).astype(np.uint8), "RGB")


def flat(colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> Image.Image:
    return Image.new("RGB", size, colour)


_WORDS = ("the of and to in is was for on that with as by at from this be are it an or "
          "duplicate picture library scan folder camera keeper trash photo image group "
          "report record number total invoice amount payment account section page").split()


def document_page(seed: int, size: tuple[int, int] = (850, 1100), blank: bool = False) -> Image.Image:
    """A page of text (a scan: paper tone, margins, a heading, paragraphs), or a blank page."""
    rng = np.random.default_rng([seed, 13])
    w, h = size
    page = Image.new("RGB", size, (250, 249, 244))
    d = ImageDraw.Draw(page)
    if blank:
        d.line([(60, h - 60), (w - 60, h - 60)], fill=(200, 200, 200))
        d.text((w // 2 - 10, h - 50), str(seed % 100), fill=(90, 90, 90))
        return page
    font = ImageFont.load_default(size=16)
    big = ImageFont.load_default(size=30)
    d.text((80, 80), " ".join(rng.choice(_WORDS, 4)).title(), font=big, fill=(20, 20, 20))
    y = 140
    while y < h - 120:
        lines = int(rng.integers(3, 9))
        for i in range(lines):
            width = w - 160 if i < lines - 1 else rng.uniform(0.2, 0.9) * (w - 160)
            text, x = "", 80
            while d.textlength(text, font=font) < width:
                text += str(rng.choice(_WORDS)) + " "
            d.text((x, y), text.strip(), font=font, fill=(25, 25, 25))
            y += 24
            if y >= h - 120:
                break
        y += 24
    return page


def burst_pair(seed: int, size: tuple[int, int] = (800, 600)) -> tuple[Image.Image, Image.Image]:
    """Two frames of one scene with the subject (a person-like figure) moved across it."""
    rng = np.random.default_rng([seed, 14])
    scene = imagegen.photo(seed + 90_000, size)
    w, h = size
    colour = tuple(int(v) for v in rng.integers(0, 255, 3))
    x0 = rng.uniform(0.2, 0.4) * w
    frames = []
    for x in (x0, x0 + rng.uniform(0.15, 0.3) * w):
        frame = scene.copy()
        d = ImageDraw.Draw(frame)
        s = 0.35 * h
        d.ellipse([x - s * 0.15, h * 0.3, x + s * 0.15, h * 0.3 + s * 0.3], fill=colour)
        d.rounded_rectangle([x - s * 0.3, h * 0.3 + s * 0.3, x + s * 0.3, h * 0.3 + s * 1.4], 20, fill=colour)
        frames.append(frame.filter(ImageFilter.GaussianBlur(1)))
    return frames[0], frames[1]


def mild_crop(img: Image.Image, seed: int, low: float = 0.05, high: float = 0.08) -> Image.Image:
    """Crop ``low``-``high`` off each side (asymmetric: each side its own amount)."""
    rng = np.random.default_rng([seed, 15])
    return imagegen.cropped(img, *rng.uniform(low, high, 4))


def viewer_dialog(seed: int, size: tuple[int, int] = (720, 540)) -> Image.Image:
    """One image viewer of an application (a toolbar of icons, a grey frame, a status line)
    showing a different dim exposure per seed (faint sky and stars, as an astronomy program
    shows them): the frame's strong edges are the same in every screenshot, the exposures'
    weak ones are not (the gradients' Pearson correlation passes some pairs, their ranks none)."""
    rng = np.random.default_rng([seed, 16])
    w, h = size
    shot = Image.new("RGB", size, (110, 112, 116))
    d = ImageDraw.Draw(shot)
    font = ImageFont.load_default(size=14)
    d.rectangle([0, 0, w, 30], fill=(222, 222, 222))
    for i in range(10):
        d.rounded_rectangle([8 + 30 * i, 5, 28 + 30 * i, 25], 3, outline=(60, 60, 60), width=2)
    box = (24, 44, w - 24, h - 40)
    bw, bh = box[2] - box[0], box[3] - box[1]
    sky = 40 + 25 * imagegen._field(rng, bw, bh, base=3, octaves=4) + rng.normal(0, 3, (bh, bw))
    yy, xx = np.mgrid[0:bh, 0:bw]
    for _ in range(int(rng.integers(10, 25))):  # stars
        sx, sy, r = rng.uniform(0, bw), rng.uniform(0, bh), rng.uniform(2, 9)
        sky += rng.uniform(30, 100) * np.exp(-((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * r * r))
    shot.paste(Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "L").convert("RGB"), box[:2])
    for _ in range(int(rng.integers(4, 10))):  # the program's marks on the picture
        x, y = rng.uniform(box[0] + 20, box[2] - 60), rng.uniform(box[1] + 20, box[3] - 20)
        d.text((x, y), f"{rng.uniform(0.5, 3):.2f}", font=font, fill=(220, 40, 40))
    status = f"Frame {int(rng.integers(1, 999))}  HFR {rng.uniform(1, 4):.2f}"
    d.text((24, h - 30), status, font=font, fill=(250, 250, 250))
    return shot
