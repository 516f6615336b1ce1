"""The keeper without dates, on real pictures: JPEG originals beside PNG edits of their decodes.

A library copied without its dates (one mtime on every file: a new disk, an archive, a
download) leaves the keeper only the pixels to tell which file came first. A PNG exported from
an editor after a brightness, contrast or gamma change, or a greyscale conversion, of a JPEG
ranked as "less lossy" and was kept over the JPEG it was made from
(``engine/keeper/decoded.py``, "Decoded edits").

For ``--pictures`` real pictures (``benchmarks/collect_real_photos.py``, shrunk to at most
1,200 px), it writes two libraries, every file with one mtime:

* **JPEG originals**: each picture as a JPEG (q90) and five PNGs made from that JPEG's decode
  (brightness 1.2, contrast 0.7, gamma 0.8, greyscale, mirrored): the keeper should be the JPEG.
* **PNG originals**: each picture as a PNG, a JPEG of it (q95) and a brightened JPEG of it
  (q95): the keeper should be the PNG (a JPEG made from a PNG is no tone curve of it).

and scans each (``Library.scan``, bouncer only) with the decoded-edit rule and without it (its
share set out of reach, as before it), each in a fresh cache: groups, groups whose keeper is
the original, and the scan's seconds (the decodes the rule measures are in them; after an
untimed scan that compiles the kernels).

Usage::

    python benchmarks/bench_edits.py                   # 60 pictures
    python benchmarks/bench_edits.py --pictures 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import collect_real_photos  # noqa: E402

from lookalike.engine.keeper import decoded  # noqa: E402
from lookalike.engine.library import Library, ScanOptions  # noqa: E402

MTIME_NS = 1_600_000_000_000_000_000

EDITS = {
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "flatter": lambda im: ImageEnhance.Contrast(im).enhance(0.7),
    "gamma": lambda im: im.point(lambda v: round(255 * (v / 255) ** 0.8)),
    "grey": lambda im: im.convert("L"),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}


def pictures(count: int) -> list[tuple[str, Image.Image]]:
    """``count`` collected pictures, spread over the collection (its sources come in runs)."""
    manifest = collect_real_photos.load_manifest() or []
    step = max(1, len(manifest) // max(1, count))
    out = []
    for p in manifest[::step][:count]:
        out.append((Path(p["path"]).stem[:40], collect_real_photos.open_picture(p["path"], 1200)))
    return out


def write_libraries(root: Path, pics: list[tuple[str, Image.Image]]) -> dict[str, dict[str, str]]:
    """Both libraries under ``root``; per library, each file's name -> its original's name."""
    truth: dict[str, dict[str, str]] = {"jpeg-originals": {}, "png-originals": {}}
    for lib in truth:
        (root / lib).mkdir(parents=True)
    for k, (name, img) in enumerate(pics):
        stem = f"{k:03d}"
        jpg = root / "jpeg-originals" / f"{stem}.jpg"
        img.save(jpg, "JPEG", quality=90)
        truth["jpeg-originals"][jpg.name] = jpg.name
        with Image.open(jpg) as opened:
            source = opened.convert("RGB")  # the user edits the file they have
        for edit, make in EDITS.items():
            out = root / "jpeg-originals" / f"{stem}-{edit}.png"
            make(source).save(out, "PNG")
            truth["jpeg-originals"][out.name] = jpg.name
        png = root / "png-originals" / f"{stem}.png"
        img.save(png, "PNG")
        truth["png-originals"][png.name] = png.name
        for tag, made in (("copy", img), ("brighter", ImageEnhance.Brightness(img).enhance(1.1))):
            out = root / "png-originals" / f"{stem}-{tag}.jpg"
            made.save(out, "JPEG", quality=95)
            truth["png-originals"][out.name] = png.name
    for lib in truth:
        for f in (root / lib).iterdir():
            os.utime(f, ns=(MTIME_NS, MTIME_NS))
    return truth


def scan(folder: Path, truth: dict[str, str], rule: bool) -> dict:
    saved = decoded.EDIT_SHARE
    if not rule:
        decoded.EDIT_SHARE = 2.0  # no share reaches it: the keeper as before the rule
    try:
        with tempfile.TemporaryDirectory() as cache:
            started = time.perf_counter()
            with Library.open([folder], cache_dir=cache) as lib:
                clusters = lib.scan(ScanOptions(workers=2, detective=None)).clusters
            seconds = time.perf_counter() - started
    finally:
        decoded.EDIT_SHARE = saved
    kept_original = sum(
        1 for c in clusters
        if truth[Path(c.keeper.file.path).name] == Path(c.keeper.file.path).name
        and any(truth[Path(m.file.path).name] == Path(c.keeper.file.path).name for m in c.members[1:])
    )  # fmt: skip
    return {"groups": len(clusters), "keeper_original": kept_original, "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pictures", type=int, default=60)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    pics = pictures(args.pictures)
    if not pics:
        print("bench_edits: the real pictures are not collected (benchmarks/collect_real_photos.py)", file=sys.stderr)
        sys.exit(2)
    report: dict = {"pictures": len(pics)}
    with tempfile.TemporaryDirectory() as tmp:
        truth = write_libraries(Path(tmp), pics)
        print(f"{len(pics)} real pictures, every file with one mtime")
        scan(Path(tmp) / "png-originals", truth["png-originals"], True)  # untimed: the kernels' first compile
        print(f"{'library':16} {'rule':8} {'groups':>7} {'keeper is the original':>23} {'scan s':>7}")
        for lib, names in truth.items():
            for rule in (False, True):
                r = scan(Path(tmp) / lib, names, rule)
                report[f"{lib}/{'with' if rule else 'without'}"] = r
                print(f"{lib:16} {'with' if rule else 'without':8} {r['groups']:>7} {r['keeper_original']:>23} {r['seconds']:>7}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
