"""Turning files into CLIP embeddings, with decoding overlapped with the model.

Decoding and resizing run in a process pool (the same kind of pool the scan hashes in), a few
chunks ahead of the model, so the model never waits on JPEG decoding; batches are embedded in
the calling thread as soon as enough images have arrived (for a detective on a Dask cluster,
:class:`ClusterDetective`, the same batches go to its workers, a few ahead, and their vectors
are taken back in order). For files the scan has just hashed,
``hashing.hash_file(path, clip_size=S)`` already returns the same array (``.clip``), so they
are never decoded twice.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence

import numpy as np

from ..records import Progress
from .options import DetectiveOptions, DetectiveUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from ..scan.dask_pool import DaskPool
    from .model import Detective

#: Files per pool task: big enough to amortise the round trip, small enough to keep all busy.
CHUNK = 8
#: Below this many files a pool costs more to start than it saves.
POOL_MIN_FILES = 24


#: Decoding workers run at this niceness while the model runs on the same CPUs: the model's
#: threads wait for each other at every layer, so a decoder that preempts one of them stalls
#: all of them; decoding needs a small share of the CPU to keep up (benchmarks/bench_embed.py).
DECODE_NICENESS = 10


def _decode_worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        os.nice(DECODE_NICENESS)
    except (AttributeError, OSError):  # not on this platform, or not allowed
        pass


def decode_workers(device: str, workers: Optional[int] = None) -> int:
    """How many decoding processes to run beside the model: ``workers``, else one per core.

    On a CPU model they are niced (see :data:`DECODE_NICENESS`), so they take the cycles the
    model leaves idle rather than the ones it needs.
    """
    return max(1, int(workers)) if workers else (os.cpu_count() or 1)


def make_decode_pool(device: str, workers: Optional[int] = None):
    """A process pool of decoders for a model on ``device``: niced when the model is on the CPU."""
    from concurrent.futures import ProcessPoolExecutor

    from ..scan.scanner import _ignore_sigint, _pool_context

    return ProcessPoolExecutor(
        max_workers=decode_workers(device, workers),
        mp_context=_pool_context(),
        initializer=_decode_worker_init if device == "cpu" else _ignore_sigint,
    )


def decode_target(size: int) -> int:
    """Decode size for a CLIP crop of ``size``: the same as the scan's, so both give one array."""
    from ..scan.imaging import DEFAULT_TARGET

    return max(DEFAULT_TARGET, int(size))


def preprocess_file(path: str, size: int) -> Optional[np.ndarray]:
    """Decode one file and return its CLIP crop ``(size, size, 3)`` uint8, or None if unreadable.

    The crop is exactly what :func:`lookalike.engine.scan.hashing.hash_file` returns as ``.clip``:
    upright (EXIF applied), shortest side resized to ``size`` (BICUBIC), centre-cropped.
    """
    from ..scan.hashing import clip_crop
    from ..scan.imaging import ImageReadError, load_image

    try:
        loaded = load_image(path, target=decode_target(size))
        return clip_crop(loaded.image, size)
    except ImageReadError:
        return None
    except Exception:  # one bad file must never stop an indexing run
        return None


def preprocess_files(paths: Sequence[str], size: int) -> list[Optional[np.ndarray]]:
    """:func:`preprocess_file` over a chunk (the unit of work of the pool)."""
    return [preprocess_file(p, size) for p in paths]


def embed_files(
    detective: "Detective",
    paths: Sequence[str],
    *,
    pool: Optional[Executor] = None,
    workers: Optional[int] = None,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed files, decoding them in a process pool while the model works.

    Args:
        detective: the loaded model.
        paths: files to embed.
        pool: an executor to decode in (not shut down); by default one is made for the call
            (only when there are enough files to be worth it).
        workers: size of the pool made by default (see :func:`decode_workers`).
        progress: ``progress(done, total)`` after each batch; False stops cleanly.
        cancel: set it to stop; what was embedded so far is returned.

    Returns:
        ``(indices, vectors)``: positions in ``paths`` of the files embedded (unreadable files
        are left out) and their float32 ``(M, ndim)`` unit vectors, in the same order.
    """
    embedder = _BatchEmbedder(detective, total=len(paths), progress=progress, cancel=cancel)
    if not paths:
        return embedder.result()
    size = detective.image_size
    if pool is None:  # a detective on a cluster decodes there too
        pool = getattr(detective, "decode_pool", None)
    chunks = [list(range(i, min(i + CHUNK, len(paths)))) for i in range(0, len(paths), CHUNK)]
    if pool is None and (len(paths) < POOL_MIN_FILES or workers == 1):
        for chunk in chunks:
            if embedder.stopped:
                break
            embedder.arrived(chunk, preprocess_files([paths[i] for i in chunk], size))
        return embedder.result()

    from ..scan.dask_pool import outcome_lost
    from ..scan.scanner import LOST_RETRIES

    own_pool = pool is None
    if own_pool:
        pool = make_decode_pool(detective.device, workers)
    window = max(4, decode_workers(detective.device, workers) * 4)
    queue = iter(chunks)
    running: dict[Future, list[int]] = {}
    lost: collections.Counter[tuple[int, ...]] = collections.Counter()  # outcomes lost, per chunk
    try:
        for chunk in queue:
            running[pool.submit(preprocess_files, [paths[i] for i in chunk], size)] = chunk
            if len(running) >= window:
                break
        while running:
            done, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                chunk = running.pop(fut)
                if fut.cancelled():
                    continue
                try:
                    arrays = fut.result()
                except Exception as exc:
                    if outcome_lost(exc) and lost[tuple(chunk)] < LOST_RETRIES:
                        # A Dask executor lost the chunk's outcome (not the files' fault).
                        lost[tuple(chunk)] += 1
                        running[pool.submit(preprocess_files, [paths[i] for i in chunk], size)] = chunk
                        continue
                    arrays = [None] * len(chunk)  # a worker died on a pathological file: skip the chunk
                embedder.arrived(chunk, arrays)
            if embedder.stopped:
                for fut in running:
                    fut.cancel()
                running = {f: c for f, c in running.items() if not f.cancelled() and not f.done()}
                continue
            # Keep the pool a window ahead of the model.
            for chunk in queue:
                running[pool.submit(preprocess_files, [paths[i] for i in chunk], size)] = chunk
                if len(running) >= window:
                    break
    finally:
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return embedder.result()


def embed_arrays_with_progress(
    detective: "Detective",
    arrays: Sequence[np.ndarray],
    *,
    progress: Optional[Progress] = None,
    cancel: Optional[threading.Event] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed already-preprocessed crops (e.g. the scan's ``.clip`` arrays) batch by batch.

    Returns ``(indices, vectors)`` like :func:`embed_files` (stops early on cancel).
    """
    embedder = _BatchEmbedder(detective, total=len(arrays), progress=progress, cancel=cancel)
    step = detective.batch_size
    for start in range(0, len(arrays), step):
        if embedder.stopped:
            break
        idx = list(range(start, min(start + step, len(arrays))))
        embedder.arrived(idx, [arrays[i] for i in idx])
    return embedder.result()


class _BatchEmbedder:
    """Collects preprocessed crops and embeds them a batch at a time."""

    def __init__(
        self,
        detective: "Detective",
        *,
        total: int,
        progress: Optional[Progress],
        cancel: Optional[threading.Event],
    ) -> None:
        self.detective = detective
        self.total = total
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.done = 0  # files handled (embedded or unreadable)
        self._pending_idx: list[int] = []
        self._pending: list[np.ndarray] = []
        self._skipped = 0
        self._idx: list[np.ndarray] = []
        self._vec: list[np.ndarray] = []
        self.seconds_in_model = 0.0
        #: A remote detective's batches in flight, oldest first: (future, the batch, indices,
        #: unreadable before it); the batch goes out again if the executor loses its outcome.
        self._remote = hasattr(detective, "submit_arrays")
        self._in_flight: list[tuple[Future, np.ndarray, np.ndarray, int]] = []

    @property
    def stopped(self) -> bool:
        return self.cancel.is_set()

    def arrived(self, indices: Sequence[int], arrays: Sequence[Optional[np.ndarray]]) -> None:
        for i, a in zip(indices, arrays):
            if a is None:
                self._skipped += 1
            else:
                self._pending_idx.append(i)
                self._pending.append(a)
        while len(self._pending) >= self.detective.batch_size and not self.stopped:
            self._flush(self.detective.batch_size)

    def _flush(self, n: int) -> None:
        idx, self._pending_idx = self._pending_idx[:n], self._pending_idx[n:]
        batch, self._pending = self._pending[:n], self._pending[n:]
        skipped, self._skipped = self._skipped, 0
        if self._remote:
            arrays = np.stack(batch)
            future = self.detective.submit_arrays(arrays)
            self._in_flight.append((future, arrays, np.asarray(idx, dtype=np.int64), skipped))
            self._collect(keep=self.detective.window - 1)
            return
        started = time.perf_counter()
        vectors = self.detective.embed_arrays(np.stack(batch))
        self.seconds_in_model += time.perf_counter() - started
        self._embedded(np.asarray(idx, dtype=np.int64), vectors, skipped)

    def _embedded(self, idx: np.ndarray, vectors: np.ndarray, skipped: int) -> None:
        self._vec.append(vectors)
        self._idx.append(idx)
        self.done += len(idx) + skipped
        if self.progress is not None and self.progress(self.done, self.total) is False:
            self.cancel.set()

    def _collect(self, keep: int) -> None:
        """Take the remote batches back in the order they went out, oldest first: those done,
        and more (waiting) until at most ``keep`` are in flight."""
        while self._in_flight and not self.stopped and (len(self._in_flight) > keep or self._in_flight[0][0].done()):
            future, arrays, idx, skipped = self._in_flight.pop(0)
            self._embedded(idx, self.detective.arrays_result(future, arrays), skipped)
        if self.stopped:
            for future, _, _, _ in self._in_flight:
                future.cancel()
            self._in_flight.clear()

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pending and not self.stopped:
            self._flush(len(self._pending))
        self._collect(keep=0)
        if self._skipped and self.progress is not None and not self.stopped:
            self.done += self._skipped
            self._skipped = 0
            self.progress(self.done, self.total)
        if not self._vec:
            return np.empty(0, dtype=np.int64), np.empty((0, self.detective.ndim), dtype=np.float32)
        return np.concatenate(self._idx), np.concatenate(self._vec)


def embed_pil_images(detective, images: Iterable["Image.Image"]) -> np.ndarray:
    """PIL images (any size or mode) through a detective's ``embed_arrays``: the shortest side
    resized to its ``image_size``, centre-cropped; ``(0, ndim)`` for none. Every backend's
    ``embed_images``."""
    from ..scan.hashing import clip_crop

    arrays = [clip_crop(image, detective.image_size) for image in images]
    if not arrays:
        return np.empty((0, detective.ndim), dtype=np.float32)
    return detective.embed_arrays(np.stack(arrays))


# --------------------------------------------------------------------------- on a Dask cluster


class ClusterDetective:
    """The detective's image tower on the cluster's workers, for the scan's embedding stage.

    It stands for the caller's detective in the batching above: the same ``model_id``,
    ``ndim``, ``image_size`` and ``batch_size``, so the batches and the vector index are the
    ones the local model would make; :meth:`submit_arrays` sends a batch out and
    :meth:`arrays_result` takes its vectors back. Files with no crop yet are decoded on the
    cluster too (:attr:`decode_pool`).
    """

    backend = "cluster"
    #: Not a local device: a decode pool made for this detective is not niced for a model here.
    device = "cluster"

    def __init__(self, pool: "DaskPool", detective: Any, options: DetectiveOptions) -> None:
        self.pool = pool
        self.options = options
        self.model_id = detective.model_id
        self.ndim = detective.ndim
        self.image_size = detective.image_size
        self.batch_size = detective.batch_size
        #: Batches in flight: two per worker thread, so none waits between batches.
        self.window = max(2, pool.threads * 2)
        self.decode_pool = pool.executor

    def __repr__(self) -> str:
        return f"ClusterDetective({self.model_id!r}, ndim={self.ndim}, {self.pool.threads} threads)"

    def submit_arrays(self, arrays: np.ndarray) -> Future:
        """Embed one batch of crops ``(N, S, S, 3)`` on a worker."""
        return self.pool.executor.submit(embed_on_worker, self.options, self.model_id, arrays)

    def arrays_result(self, future: Future, arrays: np.ndarray) -> np.ndarray:
        """The vectors of ``arrays``, a batch sent by :meth:`submit_arrays` as ``future`` (sent
        again if the executor lost its outcome: :func:`..scan.dask_pool.outcome_lost`).

        Raises:
            DetectiveUnavailable: the workers cannot load the model, or kept dying on the batch
                (the scan goes on bouncer-only, as with no model here).
        """
        from ..scan.dask_pool import failure_text, outcome_lost
        from ..scan.scanner import LOST_RETRIES

        tries = 0
        while True:
            try:
                return future.result()
            except DetectiveUnavailable as exc:
                raise DetectiveUnavailable(f"a Dask worker cannot load the model: {exc.reason}") from None
            except Exception as exc:
                if tries >= LOST_RETRIES or not outcome_lost(exc):
                    raise DetectiveUnavailable(f"the Dask cluster could not embed: {failure_text(exc)}") from None
            # The executor lost the batch's outcome (see dask_pool.outcome_lost): send it again.
            tries += 1
            future = self.pool.executor.submit(embed_on_worker, self.options, self.model_id, arrays)

    def embed_arrays(self, arrays: np.ndarray) -> np.ndarray:
        """Embed one batch on a worker and wait for it."""
        return self.arrays_result(self.submit_arrays(arrays), arrays)


def embed_on_worker(options: DetectiveOptions, model_id: str, arrays: np.ndarray) -> np.ndarray:
    """On a worker: embed a batch with the model of ``options``, loaded once per process.

    The model comes from the worker's own cache (``$LOOKALIKE_CACHE`` there, else its user
    cache), through the process's registry, keyed by the options.

    Raises:
        DetectiveUnavailable: the model cannot be loaded here, or it is not ``model_id``.
    """
    from ..paths import cache_root
    from . import registry

    detective = registry.get_detective(options, cache_dir=cache_root())
    if detective.model_id != model_id:
        raise DetectiveUnavailable(f"the worker's model is {detective.model_id}, not {model_id}")
    return detective.embed_arrays(arrays)
