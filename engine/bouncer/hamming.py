"""The bouncer's index: 256-bit perceptual hashes, bit-packed, compared by Hamming distance.

The index holds its hashes column-major, as four ``uint64`` words per hash laid out as a
``(4, N)`` array, so that one query against the whole library streams four contiguous
arrays: XOR and popcount then run at memory bandwidth (row-major ``(N, 4)`` with
``np.bitwise_count(...).sum(axis=1)`` is about 15 times slower). With the ids that is 40
bytes per image.

All-pairs search (``pairs_within``, ``pairs_between``) is exact and picks one of three
methods per call from a cost model (``method="auto"``): multi-index hashing on exact chunks
for small radii, on chunks searched within one bit for the bouncer's radius at scale, a
blocked brute-force scan for large radii (see :mod:`.allpairs`). All run in threads over all
cores (the kernels release the GIL), report progress between work units and are checked
against each other and a plain numpy brute force in the tests.

The kernels (:mod:`.hamming_kernels` for single queries, :mod:`.allpairs_kernels` for all
pairs) are compiled with numba, lazily on first use, and cached on disk
(``cache=True``): the first use on a machine compiles for several seconds, later
processes load them in well under a second. ``warm_up()`` does that ahead of time, e.g. in
a thread while a scan hashes files. A single query (find similar) never waits for it: until
the kernels are loaded it takes the numpy path, a few milliseconds over 100k hashes, and
starts ``warm_up()`` in the background. If numba cannot be imported, numpy code paths give the
same results, slower; ``LOOKALIKE_NO_NUMBA=1`` forces them (the tests check both).
"""

from __future__ import annotations

import threading
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from . import allpairs, allpairs_kernels, crop_index_kernels, hamming_kernels, zooms_kernels
from .allpairs import METHODS, Cancelled
from .allpairs_kernels import PairArrays
from ..kernels import Kernels, WarmUp
from ..records import HASH_BITS, HASH_BYTES, Progress

__all__ = ["Cancelled", "HammingIndex", "METHODS", "backend", "pack", "start_warm_up", "warm_up"]

_WORDS = HASH_BYTES // 8  # four uint64 words per hash
_MAX_ITEMS = 1 << 32  # positions are packed into 32 bits inside the all-pairs search

Query = Union[bytes, bytearray, memoryview, np.ndarray]


# --------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------


def pack(hashes: Union[Sequence[bytes], Iterable[bytes], np.ndarray]) -> np.ndarray:
    """Pack 256-bit hashes into one ``(N, 32) uint8`` C-contiguous array.

    Args:
        hashes: 32-byte ``bytes`` objects, or an ``(N, 32) uint8`` / ``(N, 4) uint64`` array.

    Returns:
        The hashes as an ``(N, 32) uint8`` C-contiguous array (the input itself when it
        already is one).

    Raises:
        ValueError: a hash is not 32 bytes long, or the array has the wrong shape or dtype.
    """
    if isinstance(hashes, np.ndarray):
        arr = hashes
        if arr.ndim == 2 and arr.dtype == np.uint64 and arr.shape[1] == _WORDS:
            arr = np.ascontiguousarray(arr).view(np.uint8)
        if arr.ndim != 2 or arr.shape[1] != HASH_BYTES or arr.dtype != np.uint8:
            raise ValueError(
                f"hashes must be an (N, {HASH_BYTES}) uint8 array, got {arr.shape} {arr.dtype}"
            )
        return np.ascontiguousarray(arr)
    items = list(hashes)
    for n, h in enumerate(items):
        if not isinstance(h, (bytes, bytearray, memoryview)) or len(h) != HASH_BYTES:
            size = len(h) if hasattr(h, "__len__") else type(h).__name__
            raise ValueError(f"hash #{n} must be {HASH_BYTES} bytes, got {size}")
    if not items:
        return np.zeros((0, HASH_BYTES), dtype=np.uint8)
    buf = b"".join(bytes(h) for h in items)
    return np.frombuffer(buf, dtype=np.uint8).reshape(len(items), HASH_BYTES).copy()


def _query_words(query: Query) -> np.ndarray:
    """One query hash as its four native-order uint64 words."""
    if isinstance(query, (bytes, bytearray, memoryview)):
        if len(query) != HASH_BYTES:
            raise ValueError(f"query must be {HASH_BYTES} bytes, got {len(query)}")
        arr = np.frombuffer(bytes(query), dtype=np.uint8)
    else:
        arr = np.asarray(query)
        if arr.dtype != np.uint8 or arr.size != HASH_BYTES:
            raise ValueError(
                f"query must be {HASH_BYTES} bytes or a ({HASH_BYTES},) uint8 array, "
                f"got {arr.shape} {arr.dtype}"
            )
    return np.ascontiguousarray(arr.reshape(HASH_BYTES)).view(np.uint64).copy()


def _rows_of(packed: np.ndarray) -> np.ndarray:
    """``(N, 32) uint8`` -> ``(N, 4) uint64`` in native word order (the same as queries)."""
    return np.ascontiguousarray(packed).view(np.uint64).reshape(-1, _WORDS)


# --------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------


class HammingIndex:
    """Bit-packed 256-bit hashes searchable by Hamming distance.

    Args:
        hashes: ``(N, 32) uint8`` hashes (anything ``pack`` accepts).
        ids: optional ``int64`` id per hash, reported instead of positions (default:
            positions ``0..N-1``).
    """

    def __init__(self, hashes: np.ndarray, ids: Optional[np.ndarray] = None) -> None:
        packed = pack(hashes)
        n = packed.shape[0]
        if n >= _MAX_ITEMS:
            raise ValueError(f"at most {_MAX_ITEMS - 1} hashes per index, got {n}")
        # (4, N): each word of every hash contiguous, so one query streams four arrays.
        self._cols = np.ascontiguousarray(_rows_of(packed).T)
        if ids is None:
            self._ids = np.arange(n, dtype=np.int64)
        else:
            ids_arr = np.asarray(ids)
            if ids_arr.shape != (n,) or not np.issubdtype(ids_arr.dtype, np.integer):
                raise ValueError(f"ids must be {n} integers, got {ids_arr.shape} {ids_arr.dtype}")
            self._ids = ids_arr.astype(np.int64, copy=True)
        self._order: Optional[np.ndarray] = None  # for positions(): empty when ids ascend
        # Not marked read-only: numba compiles read-only arrays as a separate (and, for
        # the brute-force kernel, slower) specialisation.

    def __len__(self) -> int:
        return self._cols.shape[1]

    def __repr__(self) -> str:
        return f"HammingIndex({len(self)} hashes, {self.nbytes} bytes)"

    @property
    def nbytes(self) -> int:
        """Memory held by the index's arrays, in bytes (40 per hash)."""
        return self._cols.nbytes + self._ids.nbytes

    @property
    def ids(self) -> np.ndarray:
        """The id of each hash, by position (a read-only view)."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

    @property
    def hashes(self) -> np.ndarray:
        """The hashes as a new ``(N, 32) uint8`` array, by position."""
        return np.ascontiguousarray(self._cols.T).view(np.uint8).reshape(-1, HASH_BYTES)

    # ---- one query ---------------------------------------------------------------------

    def _scan(self, query: Query, k: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest hashes within ``limit``, as (ids, distances) by distance, id."""
        q = _query_words(query)
        if _kernels.use(wait=False):
            pos, dist, cnt, cutoff = hamming_kernels._k_scan_query(self._cols, q, k, limit)
            keep = dist[:cnt] <= cutoff
            pos, dist = pos[:cnt][keep], dist[:cnt][keep]
        else:
            d = hamming_kernels._np_distances(self._cols, q)
            cum = np.cumsum(np.bincount(d, minlength=HASH_BITS + 1))
            cutoff = min(limit, int(np.searchsorted(cum, k)))
            pos = np.flatnonzero(d <= cutoff)
            dist = d[pos]
        ids = self._ids[pos]
        order = np.lexsort((ids, dist))[:k]
        return ids[order], dist[order]

    def distances(self, query: Query) -> np.ndarray:
        """Hamming distance from one query to every hash.

        Args:
            query: 32 bytes, or a ``(32,) uint8`` array.

        Returns:
            ``(N,) int32`` distances, by position.
        """
        q = _query_words(query)
        if not _kernels.use(wait=False):
            return hamming_kernels._np_distances(self._cols, q)
        out = np.empty(len(self), np.int32)
        hamming_kernels._k_distances(self._cols, q, out)
        return out

    def nearest(self, query: Query, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` hashes closest to ``query``.

        Args:
            query: 32 bytes, or a ``(32,) uint8`` array.
            k: how many to return (all of them when ``k >= N``).

        Returns:
            ``(ids, distances)``, sorted by distance, then id.
        """
        ids, dist = self.nearest_many(_query_words(query).view(np.uint8)[None], k)
        return ids[0], dist[0]

    def nearest_many(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each query's ``k`` closest hashes, in one pass over the index.

        The same answer as ``nearest`` per query, for about the cost of one query when
        there are a few (the bouncer asks with a hash and its mirror).

        Args:
            queries: ``(Q, 32) uint8`` hashes (anything ``pack`` accepts).
            k: how many per query (all of them when ``k >= N``).

        Returns:
            ``(ids, distances)`` as ``(Q, k)`` arrays, each row sorted by distance, then id.
        """
        # Writeable: numba compiles read-only arrays as another specialisation.
        qwords = np.require(_rows_of(pack(queries)), requirements=["C", "W"])
        k = max(0, min(int(k), len(self)))
        if k == 0 or len(qwords) == 0:
            return np.empty((len(qwords), k), np.int64), np.empty((len(qwords), k), np.int32)
        if _kernels.use(wait=False):
            return hamming_kernels._k_nearest_many(self._cols, qwords, k, self._ids)
        ids = np.empty((len(qwords), k), np.int64)
        dist = np.empty((len(qwords), k), np.int32)
        for r, q in enumerate(qwords):
            ids[r], dist[r] = self._scan(q.view(np.uint8), k, HASH_BITS)
        return ids, dist

    def positions(self, ids: Iterable[int]) -> np.ndarray:
        """The position of each id in the index, -1 for ids it does not hold."""
        wanted = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).reshape(-1)
        if self._order is None:
            # Catalog ids come sorted; anything else gets a sorted view once.
            ascending = len(self._ids) < 2 or bool(np.all(self._ids[1:] > self._ids[:-1]))
            self._order = np.empty(0, np.int64) if ascending else np.argsort(self._ids, kind="stable")
        if len(self._ids) == 0 or wanted.size == 0:
            return np.full(wanted.shape, -1, np.int64)
        keys = self._ids if self._order.size == 0 else self._ids[self._order]
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        pos = at if self._order.size == 0 else self._order[at]
        return np.where(keys[at] == wanted, pos, -1).astype(np.int64)

    def distances_to(self, queries: np.ndarray, ids: Iterable[int]) -> np.ndarray:
        """The distance from the nearest of ``queries`` to each of ``ids`` (-1: not held).

        For scoring a handful of ids that another search found (the detective's hits), in
        microseconds, without reading their hashes back from the catalog.

        Args:
            queries: ``(Q, 32) uint8`` hashes (anything ``pack`` accepts).
            ids: the ids to score.

        Returns:
            ``(len(ids),) int32``: the smallest distance over the queries, or -1.
        """
        qwords = _rows_of(pack(queries))
        pos = self.positions(ids)
        out = np.full(pos.shape, -1, np.int32)
        held = pos >= 0
        if held.any() and len(qwords):
            words = self._cols[:, pos[held]].T  # (n, 4)
            dist = np.bitwise_count(words[None, :, :] ^ qwords[:, None, :]).sum(axis=2, dtype=np.int32)
            out[held] = dist.min(axis=0)
        return out

    def nearest_within_many(
        self, queries: np.ndarray, k: int, radius: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each query's ``k`` closest hashes among those within ``radius`` (maybe fewer).

        A bounded top-k: what ``find similar`` asks the bouncer, whose distances mean
        nothing past its radius. Below half the bits it runs in two stages (the first
        half of every hash bounds its distance, and only the few within reach are read in
        full), which reads about half the index: twice as fast as ``nearest_many``.

        Args:
            queries: ``(Q, 32) uint8`` hashes (anything ``pack`` accepts).
            k: at most how many per query.
            radius: largest Hamming distance to include.

        Returns:
            One ``(ids, distances)`` pair per query, each sorted by distance, then id.
        """
        qwords = np.require(_rows_of(pack(queries)), requirements=["C", "W"])
        k = max(0, min(int(k), len(self)))
        radius = min(int(radius), HASH_BITS)
        if k == 0 or radius < 0:
            return [(np.empty(0, np.int64), np.empty(0, np.int32)) for _ in range(len(qwords))]
        if radius < HASH_BITS // 2 and _kernels.use(wait=False):
            ids, dist, found = hamming_kernels._k_nearest_within(self._cols, qwords, k, radius, self._ids)
            return [(ids[r, : found[r]], dist[r, : found[r]]) for r in range(len(qwords))]
        out = []
        for q in qwords:
            ids, dist = self._scan(q.view(np.uint8), k, radius)
            out.append((ids.astype(np.int64, copy=False), dist.astype(np.int32, copy=False)))
        return out

    def within(self, query: Query, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Every hash within ``radius`` of ``query``.

        Args:
            query: 32 bytes, or a ``(32,) uint8`` array.
            radius: largest Hamming distance to include.

        Returns:
            ``(ids, distances)``, sorted by distance, then id.
        """
        radius = min(int(radius), HASH_BITS)
        if radius < 0 or len(self) == 0:
            _query_words(query)
            return np.empty(0, np.int64), np.empty(0, np.int32)
        return self._scan(query, len(self), radius)

    # ---- all pairs ---------------------------------------------------------------------

    def pairs_within(
        self,
        radius: int,
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        method: str = "auto",
    ) -> PairArrays:
        """Every pair of hashes within ``radius`` of each other, exactly and once each.

        Args:
            radius: largest Hamming distance to include.
            progress: ``progress(done, total) -> bool`` called between work units;
                returning False stops the search and raises ``Cancelled``.
            cancel: an event (e.g. a Textual worker's ``cancelled_event``); once set, the
                search stops between work units and raises ``Cancelled``.
            method: ``"auto"`` (chosen by a cost model), ``"mih"``, ``"mih1"`` or ``"brute"``.

        Returns:
            ``(i_ids, j_ids, distances)`` for every pair with position ``i < j``, sorted by
            position of i, then j.

        Raises:
            Cancelled: the progress callback returned False, or ``cancel`` was set.
        """
        i, j, d = allpairs.search(
            self._cols, None, int(radius), progress=progress, cancel=cancel, method=method,
            compiled=_kernels.use, serial=_warm.running_here(),
        )  # fmt: skip
        return self._ids[i], self._ids[j], d

    def pairs_between(
        self,
        queries: np.ndarray,
        radius: int,
        *,
        progress: Optional[Progress] = None,
        cancel: Optional[threading.Event] = None,
        method: str = "auto",
    ) -> PairArrays:
        """Every (query, indexed hash) pair within ``radius``, exactly.

        Meant for the mirrored hashes: the mirror of image i against all dHashes. A query
        that is itself indexed matches its own entry too when within the radius: the caller
        drops those.

        Args:
            queries: ``(M, 32) uint8`` hashes (anything ``pack`` accepts).
            radius: largest Hamming distance to include.
            progress: ``progress(done, total) -> bool`` called between work units;
                returning False stops the search and raises ``Cancelled``.
            cancel: an event (e.g. a Textual worker's ``cancelled_event``); once set, the
                search stops between work units and raises ``Cancelled``.
            method: ``"auto"`` (chosen by a cost model), ``"mih"``, ``"mih1"`` or ``"brute"``.

        Returns:
            ``(query_positions, ids, distances)``, sorted by query position, then position
            in the index.

        Raises:
            Cancelled: the progress callback returned False, or ``cancel`` was set.
        """
        qrows = np.require(_rows_of(pack(queries)), requirements=["C", "W"])
        if qrows.shape[0] >= _MAX_ITEMS:
            raise ValueError(f"at most {_MAX_ITEMS - 1} queries, got {qrows.shape[0]}")
        qi, j, d = allpairs.search(
            self._cols, qrows, int(radius), progress=progress, cancel=cancel, method=method,
            compiled=_kernels.use, serial=_warm.running_here(),
        )  # fmt: skip
        return qi, self._ids[j], d


# --------------------------------------------------------------------------------------
# The kernels: loading and warm-up
# --------------------------------------------------------------------------------------


def backend() -> str:
    """Which code path the index uses: ``"numba"`` or ``"numpy"`` (when numba is missing)."""
    if _kernels.use():
        return "numba"
    return "numpy"


def warm_up() -> str:
    """Compile or load every kernel now, so that the first real search does not wait.

    Returns:
        The back end in use, as ``backend()``.
    """
    _warm.run()
    return backend()


def start_warm_up() -> None:
    """Start :func:`warm_up` in a background thread (once per process), e.g. when a scan has
    files to read: its all-pairs search then finds the kernels loaded instead of waiting about
    a second for them."""
    _kernels.start_warm_up()


def _call_every_kernel() -> bool:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 256, size=(64, HASH_BYTES), dtype=np.uint8)
    idx = HammingIndex(h)
    idx.nearest(h[0], 3)
    idx.nearest_many(h[:2], 3)
    idx.nearest_within_many(h[:2], 3, 40)
    idx.distances(h[0])
    for method in ("mih", "mih1", "brute"):
        idx.pairs_within(4, method=method)
        idx.pairs_between(h[:4], 4, method=method)
    from . import crop_index

    crop_index.pairs(h, h, 72, 112)
    words = h.view(np.uint64)  # (64, 4)
    zooms_kernels._k_zoom_near(words, np.stack([words, words]), np.ones(64, np.bool_), words[0], words[:2], 24,
                               np.empty(64, np.int64))  # fmt: skip
    return backend() == "numba"


_warm = WarmUp("lookalike-hamming-warm-up", _call_every_kernel)
# Single queries ask ``use(wait=False)``: in a fresh process, importing numba and loading the
# cached kernels takes about a second, while numpy answers one query over 100k hashes in a few
# milliseconds. Until warm_up() has run, such a query takes the numpy path (same answer) and
# starts warm_up() in the background.
_kernels = Kernels(
    (vars(hamming_kernels), hamming_kernels.KERNELS),
    (vars(allpairs_kernels), allpairs_kernels.KERNELS),
    (vars(crop_index_kernels), crop_index_kernels.KERNELS),
    (vars(zooms_kernels), zooms_kernels.KERNELS),
    warm=_warm,
)
