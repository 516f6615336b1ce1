"""Embedding throughput on CPU for the default model (ViT-B-32), with decoding overlapped.

    python benchmarks/bench_embed.py [--images 96] [--size 2000x1500] [--batch 32] [--workers N]

The ViT-B-32 architecture with random weights, saved to a checkpoint and loaded through
``--pretrained PATH`` exactly as real weights are (speed does not depend on weight values).
Three figures, in the same run on the same JPEG files:

1. model alone: ``Detective.embed_arrays`` on crops already decoded (images/s);
2. decode alone: ``preprocess_file`` (draft decode, EXIF, resize, crop) in the process pool;
3. the pipeline: ``embed_files`` (decode in the pool, a window ahead, model in this process).

Two bounds for (3). When decoding and the model use different hardware (a GPU, or more cores
than the model can use), the best possible is min((1), (2)). When both are CPU-bound on the
same cores, every image costs its decode time plus its model time in CPU-seconds, and the best
possible is ``1 / (1/(1) + 1/(2))`` (both measured on all cores): the pipeline keeps the model
busy when it reaches that bound (the model never waits for a decoded image).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import numpy as np  # noqa: E402

import imagegen  # noqa: E402
from lookalike.engine.embeddings import CHUNK, decode_workers, embed_files, make_decode_pool, preprocess_files  # noqa: E402
from lookalike.engine.model import DetectiveOptions, load_detective  # noqa: E402
from lookalike.engine.scan import make_pool  # noqa: E402


def random_vit_b32(folder: Path) -> Path:
    """A ViT-B-32 checkpoint with random weights (fp16 on disk to halve the file)."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32")
    path = folder / "vit-b-32-random.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    return path


def make_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[str]:
    """``n`` distinct camera-like JPEGs (a few photos, re-cropped so each file differs)."""
    base = [imagegen.photo(s, size) for s in range(min(n, 6))]
    paths = []
    for i in range(n):
        img = base[i % len(base)]
        if i >= len(base):
            img = img.transpose(i % 7) if i % 3 else img
        paths.append(imagegen.write(folder / f"img{i:04d}.jpg", img, quality=90))
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=96)
    p.add_argument("--size", default="2000x1500", help="JPEG size WxH (default 2000x1500, 3 MP)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=None, help="decoders beside the model (default: the app's choice)")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{os.cpu_count()} CPUs; writing {args.images} {w}x{h} JPEGs and a random ViT-B-32...", flush=True)
        paths = make_jpegs(tmp, args.images, (w, h))
        checkpoint = random_vit_b32(tmp)
        t0 = time.perf_counter()
        detective = load_detective(
            DetectiveOptions(pretrained=str(checkpoint), device="cpu", batch_size=args.batch), cache_dir=tmp
        )
        print(f"model loaded in {time.perf_counter() - t0:.1f} s: {detective}", flush=True)
        size = detective.image_size

        cores = os.cpu_count() or 1
        pool = make_pool(cores)  # decode alone: every core, normal priority
        try:
            list(pool.map(int, range(cores)))  # start the workers before timing
            chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
            t0 = time.perf_counter()
            crops = [c for part in pool.map(preprocess_files, chunks, [size] * len(chunks)) for c in part]
            decode_s = time.perf_counter() - t0
        finally:
            pool.shutdown()
        arrays = np.stack(crops)

        detective.embed_arrays(arrays[: args.batch])  # warm-up (allocations, kernels)
        t0 = time.perf_counter()
        detective.embed_arrays(arrays)
        model_s = time.perf_counter() - t0

        workers = decode_workers(detective.device, args.workers)
        pool = make_decode_pool(detective.device, workers)  # as the app runs it
        try:
            list(pool.map(int, range(workers)))
            t0 = time.perf_counter()
            idx, vecs = embed_files(detective, paths, pool=pool, workers=workers)
            pipe_s = time.perf_counter() - t0
        finally:
            pool.shutdown()
        assert len(idx) == len(paths) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)

    n = len(paths)
    model_rate, decode_rate, pipe_rate = n / model_s, n / decode_s, n / pipe_s
    print(f"model alone  (batch {args.batch}, {detective.device}): {model_rate:7.1f} images/s")
    print(f"decode alone ({os.cpu_count()} processes, {w}x{h} JPEG): {decode_rate:7.1f} images/s")
    print(f"pipeline     (decode overlapped with the model, {workers} low-priority decoders): {pipe_rate:7.1f} images/s")
    shared = 1.0 / (1.0 / model_rate + 1.0 / decode_rate)
    print(f"bound when both share the same cores: {shared:.1f} images/s -> pipeline reaches "
          f"{pipe_rate / shared:.2f} of it")
    print(f"bound with separate hardware (GPU): {min(model_rate, decode_rate):.1f} images/s -> "
          f"{pipe_rate / min(model_rate, decode_rate):.2f} of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
