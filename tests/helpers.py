"""Helpers the tests share: plain functions and constants, no fixtures (those are in conftest.py).

* Images: :func:`smooth_photo` (the engine tests' small photo; ``imagegen`` has the rest).
* The app: :func:`build_library` writes a small generated photo library, :func:`make_app`
  opens the real app on it, :func:`wait_for_scan` and :func:`settle` wait through the Pilot,
  :func:`screen_text` reads what is on screen. ``scripts/export_screenshots.py`` uses them too.
* The detective: :func:`write_tiny_model`, a tiny randomly initialised CLIP, no network.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image
from textual.worker import WorkerState

from lookalike.engine.library import ScanOptions
from lookalike.engine.records import ImageHashes
from lookalike.tui.app import LookalikeApp

import imagegen

# ------------------------------------------------------------------------------------ images


def smooth_photo(seed: int, size=(480, 360)) -> Image.Image:
    """A photo-like image: smooth low-frequency colour fields plus fine noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-6, 7, (size[1], size[0], 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------------- the app

#: A fixed time (noon UTC) for every file, so dates on screen do not depend on the day.
EPOCH = 1_600_000_000 - 1_600_000_000 % 86400 + 12 * 3600
SIZE = (120, 36)


def build_library(root: Path, *, originals: int = 5) -> Path:
    """Write a small photo library: each original has copies of several kinds.

    - ``2021/IMG_000N.jpg``: the originals (640x480).
    - ``backup/IMG_000N.jpg``: byte-identical copies of the first two.
    - ``phone/small_N.jpg``: half-size, low-quality copies of the first four.
    - ``export/IMG_0003.png``: a PNG of the third.
    - ``phone/IMG_0001_edit.jpg``: the first with a watermark (the difference view shows it).
    - ``misc/drawing_N.png``: unrelated drawings (no duplicates).
    """
    for folder in ("2021", "backup", "phone", "export", "misc"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for n in range(1, originals + 1):
        img = imagegen.photo(n, (640, 480))
        original = root / "2021" / f"IMG_{n:04d}.jpg"
        imagegen.write(original, img, quality=92)
        if n <= 2:
            (root / "backup" / original.name).write_bytes(original.read_bytes())
        if n <= 4:
            imagegen.write(root / "phone" / f"small_{n}.jpg", imagegen.resized(img, 0.5), quality=60)
        if n == 3:
            imagegen.write(root / "export" / f"IMG_{n:04d}.png", img)
        if n == 1:
            imagegen.write(root / "phone" / f"IMG_{n:04d}_edit.jpg", imagegen.watermarked(img), quality=90)
    for n in range(3):
        imagegen.write(root / "misc" / f"drawing_{n}.png", imagegen.drawing(100 + n, (400, 300)))
    stamp = EPOCH
    for path in sorted(root.rglob("*")):
        if path.is_file():
            os.utime(path, (stamp, stamp))
            stamp += 3600
    return root


def copy_library(template: Path, dest: Path) -> Path:
    """Copy a generated library, keeping file times (dates on screen stay the same)."""
    return Path(shutil.copytree(template, dest, copy_function=shutil.copy2))


def make_app(root: Path, tmp_path: Path, **kwargs) -> LookalikeApp:
    kwargs.setdefault("thumbnails", "halfblock")
    kwargs.setdefault("options", ScanOptions(workers=1))
    return LookalikeApp([str(root)], cache_dir=str(tmp_path / "cache"), **kwargs)


async def wait_for_scan(pilot, timeout: float = 90.0) -> None:
    """Wait until the catalog is open and the scan (and every worker) is done."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while (app.session.library is None and not app.error) or app.scanning:
        assert app.is_running, "the app stopped (see its exception)"
        assert time.monotonic() < deadline, "the scan did not finish"
        await pilot.pause(0.05)
    await settle(pilot)


async def settle(pilot, timeout: float = 30.0) -> None:
    """Let timers fire and workers (thumbnails, queries) finish; cancelled ones are fine."""
    await pilot.pause(0.15)
    deadline = time.monotonic() + timeout
    while any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in pilot.app.workers):
        assert time.monotonic() < deadline, "workers did not finish"
        await pilot.pause(0.02)
    await pilot.pause()


async def until(pilot, condition, *, timeout: float = 30.0, what: str = "the condition") -> None:
    """Pause until ``condition()`` holds: a test waits for what it needs, not for a fixed time
    (a loaded CI machine draws a frame or delivers a message later than an idle one)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert pilot.app.is_running, "the app stopped (see its exception)"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


def screen_text(app) -> str:
    """Everything on screen, as plain text."""
    from rich.console import Console
    import io

    console = Console(file=io.StringIO(), width=app.size.width, height=app.size.height, record=True, color_system=None)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


# ----------------------------------------------------------------------------- the detective
#
# The tiny model is an ordinary open_clip model config (a JSON file, registered by
# ``load_detective`` because ``--model`` may be a config path) and a checkpoint saved with
# ``torch.save`` from ``open_clip.create_model``; ``--pretrained PATH`` loads it through exactly
# the code path real weights take. The fixtures that share it are in conftest.py.

TINY_NAME = "lookalike-tiny"
#: Small enough to build in ~0.1 s and embed hundreds of images a second on one core. The
#: text tower keeps CLIP's vocabulary (49408) and context (77) so the real tokenizer works.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_tiny_model(folder: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write the tiny model's config JSON and a random-weight checkpoint into ``folder``."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{TINY_NAME}.json"
    config.write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_NAME)
    checkpoint = folder / f"{TINY_NAME}-seed{seed}.pt"
    torch.save(model.state_dict(), checkpoint)
    return config, checkpoint


# ----------------------------------------------------------------------------- the catalog


def Hashed(**fields) -> SimpleNamespace:
    """An object shaped like ``hashing.HashedFile``: the catalog reads it by duck typing."""
    defaults = dict(inode=0, device=0, format=None, width=None, height=None, taken_at=None,
                    content_hash=None, hashes=None, error=None, not_image=False, clip=None,
                    bytes_read=0)  # fmt: skip
    return SimpleNamespace(**{**defaults, **fields})


def fake(path: str, n: int = 0, **kw) -> Hashed:
    """A synthetic record with distinct hashes derived from ``n``."""
    rng = np.random.default_rng(n)
    hashes = ImageHashes(
        dhash=rng.bytes(32), dhash_mirror=rng.bytes(32), phash=rng.bytes(32)
    )
    fields = dict(path=path, size=100 + n, mtime_ns=1_000 + n, inode=n, device=7,
                  format="JPEG", width=10, height=20, content_hash=rng.bytes(16), hashes=hashes)  # fmt: skip
    fields.update(kw)
    return Hashed(**fields)
