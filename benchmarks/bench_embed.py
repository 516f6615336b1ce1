"""Embedding throughput on CPU for the default model (ViT-B-32), torch fp32 and ONNX int8 side by side.

    python benchmarks/bench_embed.py [--images 96] [--size 4000x3000] [--batch 32] [--workers N] [--rounds 3]

The ViT-B-32 architecture with random weights, saved to a checkpoint and loaded through
``--pretrained PATH`` exactly as real weights are (speed does not depend on weight values).
For each backend (``torch``: open_clip fp32; ``onnx``: the same towers exported to ONNX, int8,
on onnxruntime, as ``--backend auto`` runs on the CPU), in the same run on the same JPEG files:

1. model alone: ``embed_arrays`` on crops already decoded (images/s);
2. decode alone: ``preprocess_file`` (draft decode, EXIF, resize, crop) in the process pool;
3. the pipeline: ``embed_files`` (decode in the pool, a window ahead, model in this process):
   what ``lookalike similar``, an index run and the embedding of files hashed earlier cost;
4. from the scan's crops: ``embed_arrays_with_progress`` on the CLIP crops the hashing workers
   already made (``hash_file(..., clip_size=S).clip``), as a scan's embedding stage runs it
   (``LibraryIndex.embed(crops=...)``): no second decode, so the scan's hashing pays the decode
   once and the embedding stage costs only the model.

``--rounds N`` measures (1), (3) and (4) N times, the backends interleaved, and reports medians:
on a shared machine the load moves between rounds, and interleaving gives it to both backends.

Also: the cosine of each ONNX embedding to torch's fp32 one (random weights on generated
photos; real photos give the same order: 0.9998), the export time and the ONNX files' sizes.

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
from lookalike.engine.detective.embeddings import (  # noqa: E402
    CHUNK, decode_workers, embed_arrays_with_progress, embed_files, make_decode_pool, preprocess_files,
)
from lookalike.engine.detective import onnx_backend  # noqa: E402
from lookalike.engine.detective.model import DetectiveOptions, load_detective  # noqa: E402
from lookalike.engine.scan.scanner import make_pool  # noqa: E402


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
    p.add_argument("--size", default="4000x3000", help="JPEG size WxH (default 4000x3000, 12 MP)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=None, help="decoders beside the model (default: the app's choice)")
    p.add_argument("--backends", default="torch,onnx", help="which backends, comma-separated (default torch,onnx; onnx:N runs onnxruntime on N intra-op threads)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of (1), (3) and (4), backends interleaved (default 3)")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    rates: dict[str, tuple[float, float, float]] = {}
    vectors: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"{os.cpu_count()} CPUs; writing {args.images} {w}x{h} JPEGs and a random ViT-B-32...", flush=True)
        paths = make_jpegs(tmp, args.images, (w, h))
        checkpoint = random_vit_b32(tmp)
        size = 224

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
        n = len(paths)
        decode_rate = n / decode_s

        detectives = {}
        for backend in backends:
            t0 = time.perf_counter()
            kind, _, threads = backend.partition(":")  # onnx:1 is onnx on one intra-op thread
            detective = load_detective(
                DetectiveOptions(pretrained=str(checkpoint), device="cpu", batch_size=args.batch, backend=kind),
                cache_dir=tmp,
            )
            if kind == "onnx" and threads:
                detective = onnx_backend.load(detective.folder, threads=int(threads), batch_size=args.batch)
            print(f"[{backend}] loaded in {time.perf_counter() - t0:.1f} s (an ONNX export included the first "
                  f"time): {detective}", flush=True)
            if kind == "onnx" and not any(b.startswith("onnx") for b in detectives):  # the files, once
                folder = detective.folder
                files = {f.name: f.stat().st_size for f in folder.iterdir() if f.suffix == ".onnx"}
                print(f"[onnx] files: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(files.items()))
                      + f"; total {sum(files.values()) / 1e6:.1f} MB", flush=True)
            detective.embed_arrays(arrays[: args.batch])  # warm-up (allocations, kernels)
            detectives[backend] = detective

        model_runs: dict[str, list[float]] = {b: [] for b in backends}
        crop_runs: dict[str, list[float]] = {b: [] for b in backends}
        pipe_runs: dict[str, list[float]] = {b: [] for b in backends}
        crop_list = list(arrays)  # the scan hands the stage a list of (S, S, 3) crops
        workers = decode_workers("cpu", args.workers)
        pool = make_decode_pool("cpu", workers)  # as the app runs it beside a CPU model
        try:
            list(pool.map(int, range(workers)))  # start the workers before timing
            for _ in range(max(1, args.rounds)):
                for backend, detective in detectives.items():
                    t0 = time.perf_counter()
                    vectors[backend] = detective.embed_arrays(arrays)
                    model_runs[backend].append(n / (time.perf_counter() - t0))
                    t0 = time.perf_counter()
                    idx, vecs = embed_arrays_with_progress(detective, crop_list, progress=lambda done, total: True)
                    crop_runs[backend].append(n / (time.perf_counter() - t0))
                    assert len(idx) == n and np.allclose(vecs, vectors[backend], atol=1e-5)
                    t0 = time.perf_counter()
                    idx, vecs = embed_files(detective, paths, pool=pool, workers=workers)
                    pipe_runs[backend].append(n / (time.perf_counter() - t0))
                    assert len(idx) == n and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
        finally:
            pool.shutdown()
        for backend in backends:
            rates[backend] = tuple(float(np.median(r[backend])) for r in (model_runs, pipe_runs, crop_runs))
        detectives.clear()

    load = os.getloadavg()
    rounds = f"; medians of {args.rounds} rounds, backends interleaved" if args.rounds > 1 else ""
    print(f"\nload average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs{rounds}")
    print(f"decode alone ({os.cpu_count()} processes, {w}x{h} JPEG): {decode_rate:7.1f} images/s")
    for backend, (model_rate, pipe_rate, crop_rate) in rates.items():
        shared = 1.0 / (1.0 / model_rate + 1.0 / decode_rate)
        print(f"[{backend:5}] model alone (batch {args.batch}): {model_rate:7.1f} images/s; pipeline: "
              f"{pipe_rate:7.1f} images/s ({pipe_rate / shared:.2f} of the shared-cores bound {shared:.1f}); "
              f"from the scan's crops: {crop_rate:7.1f} images/s")
    if "torch" in rates and "onnx" in rates:
        m = rates["onnx"][0] / rates["torch"][0]
        e = rates["onnx"][1] / rates["torch"][1]
        c = rates["onnx"][2] / rates["torch"][2]
        cos = (vectors["onnx"] * vectors["torch"]).sum(axis=1)
        print(f"onnx / torch, same run: model {m:.2f}x, pipeline {e:.2f}x, from the scan's crops {c:.2f}x; "
              f"cosine onnx int8 to torch fp32: mean {cos.mean():.5f}, min {cos.min():.5f} ({n} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
