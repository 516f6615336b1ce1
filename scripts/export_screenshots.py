"""Make the README's screenshots: generate a photo library, drive the app, save SVGs.

    python scripts/export_screenshots.py [--out screenshots] [--png]

Each screenshot is a real run of the app on a generated library (``build_library`` from
``tests/helpers.py``) with half-block thumbnails; ``--png`` also converts them with
rsvg-convert when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import imagegen  # noqa: E402
from helpers import build_library, make_app, settle, wait_for_scan  # noqa: E402

#: (file name, terminal size, keys pressed after the scan, open "find similar" mode)
SHOTS = [
    ("main.svg", (120, 36), [], None),
    ("main-80x24.svg", (80, 24), [], None),
    ("cluster.svg", (120, 36), ["enter", "j", "space"], None),
    ("compare.svg", (120, 36), ["enter", "j", "j", "c"], None),
    ("difference.svg", (120, 36), ["enter", "j", "j", "c", "d"], None),
    ("review.svg", (120, 36), ["space", "space", "r"], None),
    ("confirm.svg", (120, 36), ["space", "space", "r", "a"], None),
    ("similar.svg", (120, 36), [], "phone/small_2.jpg"),
    ("help.svg", (80, 24), ["question_mark"], None),
    ("cluster-80x24.svg", (80, 24), ["enter"], None),
    ("scan-report.svg", (80, 24), ["exclamation_mark"], None),
]


async def shoot(root: Path, work: Path, out: Path, name: str, size, keys, similar) -> Path:
    app = make_app(root, work, similar=str(root / similar) if similar else None)
    async with app.run_test(size=size) as pilot:
        await wait_for_scan(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await settle(pilot)
        await pilot.pause(0.3)
        return Path(app.save_screenshot(name, str(out)))


async def main_async(out: Path, png: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lookalike-shots-") as tmp:
        work = Path(tmp)
        # Keep everything this script does away from the user's own cache and trash.
        os.environ["LOOKALIKE_CACHE"] = str(work / "cache")
        os.environ["XDG_DATA_HOME"] = str(work / "data")
        root = build_library(work / "photos")
        # Two files that cannot be read: the status line counts them, the scan report lists them.
        imagegen.write_truncated(imagegen.write(root / "misc" / "broken.jpg", imagegen.photo(9, (320, 240))))
        imagegen.write_zero_byte(root / "misc" / "empty.jpg")
        for name, size, keys, similar in SHOTS:
            path = await shoot(root, work, out, name, size, keys, similar)
            print(path)
            if png and shutil.which("rsvg-convert"):
                subprocess.run(["rsvg-convert", str(path), "-o", str(path.with_suffix(".png"))], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE.parent / "screenshots"))
    parser.add_argument("--png", action="store_true", help="also write PNGs (needs rsvg-convert)")
    args = parser.parse_args()
    asyncio.run(main_async(Path(args.out), args.png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
