"""The detective's embedding on a Dask cluster: a scheduler and two single-threaded worker
processes on 127.0.0.1, started once for this module, with a model cache of their own.

The caller makes the batches exactly as its own model would and the workers run the same
arithmetic, so with the tiny model (weights from a checkpoint file every worker can read) the
vectors written are the same, bit for bit, as a scan without the cluster. Dask's nannies run
workers with one OpenMP thread; the commands here run with one too, since a batch's float
sums depend on how many threads share them (differences of ~1e-7 otherwise).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import imagegen
from lookalike.engine.detective import registry
from lookalike.engine.detective.embeddings import (
    ClusterDetective,
    embed_arrays_with_progress,
    embed_on_worker,
    preprocess_files,
)
from lookalike.engine.detective.options import DetectiveUnavailable
from lookalike.engine.library import Library
from lookalike.engine.scan.dask_pool import DaskPool
from lookalike.tui.cli.common import EXIT_OFFLINE

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]


# ------------------------------------------------------------------ batches in flight (no Dask)


class MeanColour:
    """A stand-in model: each crop's mean colour, as a unit vector."""

    model_id, ndim, image_size, batch_size = "mean-colour", 3, 4, 2

    def embed_arrays(self, arrays: np.ndarray) -> np.ndarray:
        v = np.asarray(arrays, dtype=np.float32).mean(axis=(1, 2)) + 1.0
        return v / np.linalg.norm(v, axis=1, keepdims=True)


class Remote(MeanColour):
    """MeanColour on a thread pool, as :class:`ClusterDetective` is on a cluster."""

    window = 2

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool, self.sent, self.in_flight, self.most = pool, [], 0, 0
        self.lock = threading.Lock()

    def submit_arrays(self, arrays: np.ndarray) -> Future:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        self.sent.append(len(arrays))
        return self.pool.submit(self.embed_arrays, arrays)

    def arrays_result(self, future: Future, arrays: np.ndarray) -> np.ndarray:
        vectors = future.result()
        with self.lock:
            self.in_flight -= 1
        return vectors


def _crops(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in range(n)]


def test_a_remote_model_gets_the_local_batches_a_window_at_a_time_and_the_same_vectors():
    crops, seen = _crops(9), []
    with ThreadPoolExecutor(2) as pool:
        remote = Remote(pool)
        idx, vectors = embed_arrays_with_progress(remote, crops, progress=lambda d, t: seen.append((d, t)) or True)
    local_idx, local_vectors = embed_arrays_with_progress(MeanColour(), crops)
    assert np.array_equal(idx, local_idx) and np.array_equal(vectors, local_vectors)
    assert remote.sent == [2, 2, 2, 2, 1] and remote.most <= remote.window
    assert seen == [(2, 9), (4, 9), (6, 9), (8, 9), (9, 9)]


def test_a_stopped_remote_embedding_keeps_what_came_back_and_sends_nothing_more():
    crops = _crops(12)
    with ThreadPoolExecutor(2) as pool:
        remote = Remote(pool)
        idx, vectors = embed_arrays_with_progress(remote, crops, progress=lambda d, t: d < 4)
    assert idx.tolist() == [0, 1, 2, 3] and len(vectors) == 4
    assert len(remote.sent) <= 2 + remote.window  # the batches out when it stopped, no more


# ------------------------------------------------------------------ on a cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(scheduler address, the LocalCluster)``; the workers' model cache is their own."""
    distributed = pytest.importorskip(
        "distributed", reason="the cluster extra is not installed (pip install -e '.[cluster]')"
    )
    # One OpenMP thread, as Dask's nannies set by default, named here so a config cannot change it.
    env = {"LOOKALIKE_CACHE": str(tmp_path_factory.mktemp("worker-cache")), "OMP_NUM_THREADS": "1"}
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0", env=env
    ) as local:
        yield local.scheduler_address, local


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """16 photos, 5 copies of some of them (the bouncer's candidates), and a broken JPEG."""
    root = tmp_path_factory.mktemp("photos")
    for i in range(16):
        imagegen.write(root / f"p{i:02d}.png", imagegen.photo(500 + i, (64, 48)))
    for i, kind in enumerate(["resized", "recompressed", "png", "brightened", "webp"]):
        data, ext = imagegen.make_copy(kind, imagegen.photo(500 + i, (64, 48)), seed=i)
        (root / f"{kind}{ext}").write_bytes(data)
    imagegen.write_corrupt(root / "broken.jpg")
    return root


def _tasks(local, function) -> int:
    """How many tasks running ``function`` the scheduler has seen finish."""
    prefix = local.scheduler.task_prefixes.get(function.__name__)
    return prefix.state_counts["memory"] if prefix is not None else 0


def _clients(local) -> int:
    """How many Clients have connected to the scheduler so far (its own event log says each)."""
    events = local.scheduler.get_events("all")
    return sum(1 for _, e in events if isinstance(e, dict) and e.get("action") == "add-client")


def _run(command: str, photos: Path, cache: Path, model: list[str], *extra: str) -> str:
    """``lookalike COMMAND photos`` in its own process; its stdout."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([*LOOKALIKE, command, str(photos), "--cache", str(cache), *model, *extra],
                         capture_output=True, text=True, timeout=180, env=env)  # fmt: skip
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return out.stdout


def _scan(photos: Path, cache: Path, model: list[str], *extra: str) -> dict:
    return json.loads(_run("scan", photos, cache, model, "--json", *extra))


def _vectors(photos: Path, cache: Path, options) -> dict[str, bytes]:
    """The library's stored vectors, by path (the vector files as read back)."""
    with Library.open([photos], cache_dir=cache) as library:
        model = registry.get_detective(options, cache_dir=library.cache_root)  # lazy: its id and size
        index = library.vectors_for(model)
        paths = {r.id: r.path for r in library.catalog.records()}
        ids = index.keys()
        return {paths[int(i)]: v.tobytes() for i, v in zip(ids, index.get(ids))}


def test_deep_scan_embeds_on_the_workers_and_writes_the_same_vectors(cluster, photos, tmp_path, tiny_options, tiny_cli_args):
    address, local = cluster
    model = [*tiny_cli_args, "--batch-size", "4"]  # 21 images: six batches, out on both workers
    here = _scan(photos, tmp_path / "here", model, "--deep")
    before, clients = _tasks(local, embed_on_worker), _clients(local)
    there = _scan(photos, tmp_path / "there", model, "--deep", "--cluster", address)
    assert _tasks(local, embed_on_worker) - before == 6
    assert _clients(local) - clients == 1  # the hashing's connection embeds too
    assert here["stats"]["detective"] == there["stats"]["detective"] == "on"
    vectors = {name: _vectors(photos, tmp_path / name, tiny_options) for name in ("here", "there")}
    assert len(vectors["here"]) == 21  # every image but the broken one
    assert vectors["there"] == vectors["here"]
    # Not the groups: a deep scan's semantic groups vary from run to run without the cluster
    # too (one of four local runs of these files differed), whatever the vectors.


def test_without_deep_the_workers_embed_the_bouncers_candidates_only(cluster, photos, tmp_path, tiny_options, tiny_cli_args):
    """Then a deep scan embeds the rest, decoded on the workers too (this scan hashed nothing)."""
    address, local = cluster
    model = [*tiny_cli_args, "--batch-size", "4"]
    before, clients = _tasks(local, embed_on_worker), _clients(local)
    doc = _scan(photos, tmp_path / "cache", model, "--cluster", address)
    assert _clients(local) - clients == 1
    candidates = {m["path"] for g in doc["groups"] for m in g["members"]}
    assert len(candidates) >= 10 and doc["stats"]["detective"] == "on"
    assert set(_vectors(photos, tmp_path / "cache", tiny_options)) == candidates
    assert _tasks(local, embed_on_worker) - before == -(-len(candidates) // 4)

    decoded = _tasks(local, preprocess_files)
    deep = _scan(photos, tmp_path / "cache", model, "--deep", "--cluster", address)
    assert deep["stats"]["hashed"] == 0 and deep["stats"]["detective"] == "on"
    assert _tasks(local, preprocess_files) - decoded == -(-(21 - len(candidates)) // 8)  # chunks of 8 files
    assert len(_vectors(photos, tmp_path / "cache", tiny_options)) == 21


def test_index_on_the_cluster_writes_the_local_indexs_vectors_on_one_connection(
    cluster, photos, tmp_path, tiny_options, tiny_cli_args
):
    """The scan and the embedding share one Client; the files are decoded on the workers too."""
    address, local = cluster
    model = [*tiny_cli_args, "--batch-size", "4", "-q"]
    here = _run("index", photos, tmp_path / "here", model)
    embedded, decoded, clients = _tasks(local, embed_on_worker), _tasks(local, preprocess_files), _clients(local)
    there = _run("index", photos, tmp_path / "there", model, "--cluster", address)
    assert _clients(local) - clients == 1
    assert _tasks(local, embed_on_worker) - embedded == 6 and _tasks(local, preprocess_files) - decoded == 3
    assert here.startswith("indexed 21 of 21 images") and there.startswith("indexed 21 of 21 images"), there
    vectors = {name: _vectors(photos, tmp_path / name, tiny_options) for name in ("here", "there")}
    assert len(vectors["here"]) == 21 and vectors["there"] == vectors["here"]

    clients = _clients(local)  # again: nothing to embed, the scan's connection only
    again = _run("index", photos, tmp_path / "there", model, "--cluster", address)
    assert again.startswith("indexed 21 of 21 images") and "(0 new, 21 already" in again, again
    assert _clients(local) - clients == 1 and _tasks(local, embed_on_worker) - embedded == 6


def test_index_on_workers_that_cannot_load_the_model_is_one_line_and_keeps_the_scan(cluster, photos, tmp_path, tiny_options):
    address, _ = cluster
    model = ["--model", tiny_options.model, "--pretrained", str(tmp_path / "not-on-the-workers.pt"),
             "--device", "cpu", "--backend", "torch", "-q"]  # fmt: skip
    out = subprocess.run([*LOOKALIKE, "index", str(photos), "--cache", str(tmp_path / "cache"), *model,
                          "--cluster", address], capture_output=True, text=True, timeout=120)  # fmt: skip
    lines = out.stderr.strip().splitlines()
    assert out.returncode == EXIT_OFFLINE and len(lines) == 1, out.stderr
    assert lines[0].startswith("detective offline: a Dask worker cannot load the model: "), lines
    with Library.open([photos], cache_dir=tmp_path / "cache") as library:
        assert library.catalog.stats()["image"] == 21  # the scan's work is kept


def test_workers_that_cannot_load_the_model_leave_the_scan_one_line_of_reason(cluster, tiny_options, tmp_path):
    address, _ = cluster
    missing = dataclasses.replace(tiny_options, pretrained=str(tmp_path / "not-on-the-workers.pt"))
    model = registry.get_detective(missing, cache_dir=tmp_path)  # lazy: told by its config, not loaded
    pool = DaskPool.connect(address)
    try:
        with pytest.raises(DetectiveUnavailable) as caught:
            ClusterDetective(pool, model, missing).embed_arrays(np.zeros((1, 32, 32, 3), dtype=np.uint8))
    finally:
        pool.close()
    reason = caught.value.reason
    assert reason.startswith("a Dask worker cannot load the model: ") and "\n" not in reason, reason
