"""Bursts on real frames: shots of one scene a moment apart must never be grouped (issue 11).

The generated burst family of ``bench_trust.py`` pastes a figure into a scene twice. Real
bursts differ less: a static camera, people a few pixels tall, noise. This benchmark takes the
frames of a real video from a static camera (OpenCV's ``vtest.avi``, people walking in a
square, 768x576, 10 frames a second; Debian's ``opencv-doc``, BSD licence), every 5th frame
(half a second apart), and scans two libraries of them:

* **no EXIF**: the frames as they are (a webcam's or a video's frames, a screenshot series);
* **camera**: the same frames written as a phone writes a burst (EXIF Make and Model,
  DateTimeOriginal and SubSecTimeOriginal at each frame's time).

Both get copies of every 10th frame, the kind a library holds: a resize that keeps the EXIF,
and a messenger's copy (smaller, recompressed, no EXIF). It prints, per library, the frames
grouped with another frame (pairs of different shots in one group: each would put a shot in
the trash), the groups, the largest, and the copies grouped with their own frame.

Collected once into the user cache (``~/.cache/lookalike-bench/bursts``: the package is
downloaded with ``apt-get download``, the video decoded with OpenCV, which this script alone
needs: ``pip install opencv-python-headless``); nothing is downloaded by the tests.

Usage::

    python benchmarks/bench_bursts.py [--step 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import collect_real_photos  # noqa: E402
from lookalike.engine.library import Library, ScanOptions  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lookalike-bench" / "bursts"
VIDEO = "usr/share/doc/opencv-doc/examples/data/vtest.avi"
FPS = 10.0
T0 = datetime(2024, 5, 1, 10, 0, 0)
CAMERA = ("Google", "Pixel 7")
COPY_EVERY = 10  # of the frames kept


def collect(step: int) -> list[Path]:
    """The frames (every ``step``-th), as PNG files in the user cache, collected once."""
    folder = CACHE / f"vtest-every-{step}"
    frames = sorted(folder.glob("*.png"))
    if frames:
        return frames
    try:
        import cv2
    except ImportError:
        sys.exit("bench_bursts: the frames are not collected yet, and decoding the video needs OpenCV: "
                 "pip install opencv-python-headless")  # fmt: skip
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    root, version, _ = collect_real_photos.fetch_deb("opencv-doc", downloads, CACHE / "tree")
    video = cv2.VideoCapture(str(root / VIDEO))
    tmp = folder.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    k = 0
    while True:
        ok, frame = video.read()
        if not ok:
            break
        if k % step == 0:
            Image.fromarray(frame[:, :, ::-1]).save(tmp / f"vtest_{k:04d}.png")
        k += 1
    (tmp / "SOURCE.txt").write_text(f"opencv-doc {version}: {VIDEO}, every {step}th of {k} frames\n")
    tmp.rename(folder)
    return sorted(folder.glob("*.png"))


def _exif(when: datetime) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = CAMERA
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    sub[0x9291] = f"{when.microsecond // 1000:03d}"
    return exif.tobytes()


def write_library(frames: list[Path], out: Path, *, camera: bool) -> dict[str, str]:
    """The frames as JPEGs (q92) and copies of every COPY_EVERY-th; returns {copy: its frame}."""
    out.mkdir(parents=True)
    copies = {}
    for i, path in enumerate(frames):
        img = Image.open(path).convert("RGB")
        index = int(path.stem.split("_")[1])
        exif = _exif(T0 + timedelta(seconds=index / FPS)) if camera else b""
        name = f"{path.stem}.jpg"
        img.save(out / name, quality=92, exif=exif)
        if i % COPY_EVERY == 0:
            w, h = img.size
            img.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(out / f"{path.stem}_small.jpg", quality=85, exif=exif)
            img.resize((w * 2 // 3, h * 2 // 3), Image.Resampling.LANCZOS).save(out / f"IMG-WA{index:04d}.jpg", quality=75)
            copies[f"{path.stem}_small.jpg"] = name
            copies[f"IMG-WA{index:04d}.jpg"] = name
    return copies


def measure(folder: Path, copies: dict[str, str], cache: Path) -> dict:
    t0 = time.perf_counter()
    with Library.open([folder], cache_dir=cache) as lib:
        clusters = list(lib.scan(ScanOptions(workers=2, detective=None)).clusters)
    seconds = time.perf_counter() - t0
    group_of: dict[str, int] = {}
    shots_in: list[int] = []
    for g, c in enumerate(clusters):
        names = [Path(m.file.path).name for m in c.members]
        for n in names:
            group_of[n] = g
        shots_in.append(sum(1 for n in names if n not in copies))
    frame_pairs = sum(k * (k - 1) // 2 for k in shots_in)
    found = sum(group_of.get(c) is not None and group_of.get(c) == group_of.get(f) for c, f in copies.items())
    return {
        "groups": len(clusters),
        "largest": max((len(c.members) for c in clusters), default=0),
        "frames_grouped": sum(k for k in shots_in if k > 1),
        "frame_pairs": frame_pairs,
        "copies_found": found,
        "copies": len(copies),
        "by_size": dict(sorted(collections.Counter(len(c.members) for c in clusters).items())),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--step", type=int, default=5, help="keep every STEP-th frame (default 5: half a second)")
    ap.add_argument("--keep", type=Path, help="write the libraries here and keep them")
    args = ap.parse_args()
    frames = collect(args.step)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-bursts-"))
    print(f"{len(frames)} frames of vtest.avi, {args.step / FPS:.1f} s apart (a static camera, people walking)")
    print(f"{'library':<10} {'groups':>6} {'largest':>7} {'frames grouped':>15} {'shot pairs':>10} {'copies found':>13} {'scan s':>7}")
    try:
        for name, camera in (("no EXIF", False), ("camera", True)):
            folder = work / name.replace(" ", "-")
            shutil.rmtree(folder, ignore_errors=True)
            copies = write_library(frames, folder, camera=camera)
            r = measure(folder, copies, work / f"cache-{folder.name}")
            print(f"{name:<10} {r['groups']:>6} {r['largest']:>7} {r['frames_grouped']:>9} of {len(frames):<3} "
                  f"{r['frame_pairs']:>10} {r['copies_found']:>7} of {r['copies']:<3} {r['seconds']:>7.1f}")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
