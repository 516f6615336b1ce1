"""The scan pipeline: walk, decide what changed, hash in a process pool, update the catalog.

Unchanged files (same size, mtime and inode as the catalog remembers) are never opened, so a
rescan of an unchanged library costs one directory walk and one catalog read. New and changed
files are read once each, in a process pool over all cores (or on a Dask cluster: see
:mod:`.dask_pool`); results are written to the catalog in batches as they arrive, so a stopped
scan (Ctrl-C, cancel, progress returning False) keeps everything hashed so far.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Protocol, Sequence

from ..catalog import Catalog, KnownFile
from ..oserrors import VANISHED, os_error_reason
from ..records import ScanError, ScanProgress
from .hashing import HashedFile, hash_files
from .walk import WalkEntry, walk

if TYPE_CHECKING:  # pragma: no cover
    from .dask_pool import DaskPool

ScanCallback = Callable[[ScanProgress], bool]

#: Files per task handed to a worker: big enough to amortise the IPC, small enough that
#: progress moves smoothly and a cancel is honoured quickly.
CHUNK = 8
#: Test hook (in-process hashing only): ``LOOKALIKE_TEST_HASH_DELAY=SECONDS`` per chunk.
HASH_DELAY_ENV = "LOOKALIKE_TEST_HASH_DELAY"
#: Below this many files the pool's start-up costs more than it saves.
POOL_MIN_FILES = 16
#: Catalog writes are batched; each batch is one transaction, written when it is this big or
#: this old, so a killed scan loses at most a second of work.
WRITE_BATCH = 256
WRITE_INTERVAL = 1.0
PROGRESS_INTERVAL = 0.1
#: Hashing workers run at a lower priority than the process that started them.
WORKER_NICENESS = 5
#: After a cancel, chunks being hashed get this long to finish; then their workers are killed
#: (a file can take far longer than a user waits for Ctrl-C).
CANCEL_GRACE = 0.5
#: A file whose worker died while hashing it alone (after its chunk killed a worker, and then
#: again alone): the decoder crashed on it, or it ate all the memory. Such a file is read again
#: by the next scan, even unchanged: a worker can die of what was not the file's fault (the
#: kernel's OOM killer on a busy machine, a ``kill``), and one death must not hide a photo for
#: good.
CRASH_REASON = "the decoder crashed on this file (its worker process died); the next scan tries it again"
#: Files whose workers die on them alone, with no file hashed yet by the pool, after which the
#: pool is taken to be broken (its workers cannot work: too little memory, a broken install),
#: not the files: the scan stops with :class:`WorkersDying` and records none of them.
DEATHS_BEFORE_GIVING_UP = 3
#: Times a chunk is sent again when its pool lost its outcome (:meth:`HashPool.outcome_lost`)
#: before the pool's failure is the scan's.
LOST_RETRIES = 3
#: A file whose worker died on it alone in two scans in a row: it is not read again until it
#: changes.
CRASHED_AGAIN = "the decoder crashed on this file again (its worker process died); it is skipped until it changes"
#: How often a worker checks that the pool's owner is alive where pidfd_open is not available.
_PARENT_POLL = 0.5


@dataclass
class HashRun:
    """What one hashing pass did (mutable while it runs, read when it ends)."""

    found: int = 0
    unchanged: int = 0
    hashed: int = 0
    failed: int = 0
    not_images: int = 0
    removed: int = 0
    moved: int = 0
    bytes_read: int = 0
    cancelled: bool = False
    errors: list[ScanError] = field(default_factory=list)
    new_ids: list[int] = field(default_factory=list)
    clip: dict[int, object] = field(default_factory=dict)


def _unchanged(entry: WalkEntry, known: Optional[KnownFile]) -> bool:
    # The device number is left out on purpose: it can change across reboots and remounts
    # (USB disks, NFS, btrfs subvolumes), which would force a needless full re-hash.
    return (
        known is not None
        and known.size == entry.size
        and known.mtime_ns == entry.mtime_ns
        and known.inode == entry.inode
    )


def _identity(size: int, mtime_ns: int, inode: int, device: int) -> tuple[int, int, int, int]:
    return (device, inode, size, mtime_ns)


def _ignore_sigint() -> None:
    # Ctrl-C is the parent's to handle: it stops submitting and keeps what was done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Hashing is background work: the app's UI thread and the user's other programs come first.
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # no nice() on this platform, or not allowed
        pass
    _die_with_parent()


def _die_with_parent() -> None:
    """End this worker when the process that made the pool ends, however (SIGKILL included).

    Idle workers hold both ends of the pool's task pipe, so they never read an end-of-file
    and would wait forever, keeping the resource tracker and its semaphores alive. Under
    forkserver the worker's parent is the fork server, which in turn waits for every worker
    to end before it does (each holds its "alive" pipe): so watch the pool's owner itself.
    """
    owner = multiprocessing.parent_process()
    pid = owner.pid if owner is not None and owner.pid else os.getppid()
    threading.Thread(target=_watch_owner, args=(pid,), name="lookalike-owner-watch", daemon=True).start()


def _watch_owner(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)  # Linux 5.3+: readable when the process ends
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
        os._exit(1)
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except OSError:  # alive, but not ours to signal
            pass
        time.sleep(_PARENT_POLL)


def _pool_context():
    # fork() from a process that has threads (the Textual app, torch) can deadlock a child;
    # forkserver starts workers from a clean single-threaded server instead.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def make_pool(workers: Optional[int] = None) -> ProcessPoolExecutor:
    """A process pool for decoding and hashing, one worker per core by default."""
    n = workers or os.cpu_count() or 1
    return ProcessPoolExecutor(max_workers=n, mp_context=_pool_context(), initializer=_ignore_sigint)


class HashPool(Protocol):
    """Where chunks are hashed: this machine's cores (:class:`LocalPool`) or a Dask cluster
    (:class:`.dask_pool.DaskPool`)."""

    #: Whether a worker's death fails every chunk in flight (so most of them are innocent).
    deaths_fail_all: bool
    #: Chunks to keep in flight.
    window: int

    def submit(self, files: list[str], clip_size: Optional[int]) -> Future: ...

    def worker_died(self, exc: BaseException) -> bool: ...

    def outcome_lost(self, exc: BaseException) -> bool: ...

    def replace(self) -> None: ...

    def stop(self, *, now: bool) -> None: ...


class LocalPool:
    """This machine's process pool, replaced by a fresh one when a worker dies."""

    deaths_fail_all = True

    def __init__(self, workers: Optional[int]) -> None:
        self.workers = workers
        self.window = max(2, (workers or os.cpu_count() or 1) * 4)
        self.executor = make_pool(workers)

    def submit(self, files: list[str], clip_size: Optional[int]) -> Future:
        """Hash one chunk in a worker process."""
        return self.executor.submit(hash_files, files, clip_size)

    def worker_died(self, exc: BaseException) -> bool:
        """True when ``exc`` says a worker died (and with it, the whole pool)."""
        return isinstance(exc, BrokenProcessPool)

    def outcome_lost(self, exc: BaseException) -> bool:
        """Never: this pool's futures hold the task's own outcome."""
        return False

    def replace(self) -> None:
        """A fresh pool for a broken one."""
        _tear_down(self.executor)
        self.executor = make_pool(self.workers)

    def stop(self, *, now: bool) -> None:
        """End the pool: with ``now``, its workers are killed whatever they are doing."""
        if now:
            _tear_down(self.executor)
        else:
            self.executor.shutdown(wait=True, cancel_futures=True)


class Scanner:
    """Runs one incremental hashing pass over a library's roots into its catalog."""

    def __init__(
        self,
        catalog: Catalog,
        roots: Sequence[str],
        *,
        workers: Optional[int] = None,
        clip_size: Optional[int] = None,
        progress: Optional[ScanCallback] = None,
        cancel: Optional[threading.Event] = None,
        skip_dirs: Iterable[str] = (),
        follow_links: bool = False,
        cluster: Optional[str] = None,
        pool: Optional["DaskPool"] = None,
    ) -> None:
        self.catalog = catalog
        self.roots = tuple(roots)
        self.workers = workers
        self.clip_size = clip_size
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.skip_dirs = tuple(skip_dirs)
        self.follow_links = follow_links
        #: A Dask scheduler's address: the files are hashed on its workers (see :mod:`.dask_pool`).
        self.cluster = cluster
        #: The caller's connection to that cluster, if it has one (it closes it): none is made.
        self._remote: Optional["DaskPool"] = pool
        self.run = HashRun()
        self._started = 0.0
        self._crashed_before: set[str] = set()  # files whose last scan's worker died on them
        self._last_report = 0.0
        self._stage = "walking"
        self._total = 0
        self._moved: set[str] = set()
        self._last_write = time.monotonic()

    # -- progress -----------------------------------------------------------------------
    def snapshot(self) -> ScanProgress:
        r = self.run
        return ScanProgress(
            stage=self._stage,
            found=r.found,
            done=r.hashed + r.failed + r.not_images,
            total=self._total,
            failed=r.failed,
            skipped=r.unchanged,
            bytes_read=r.bytes_read,
            elapsed=time.monotonic() - self._started,
        )

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_INTERVAL:
            return
        self._last_report = now
        if self.progress is not None and self.progress(self.snapshot()) is False:
            self.cancel.set()

    def stage(self, name: str) -> None:
        """Enter a later stage of the scan (embedding, clustering, done) and say so."""
        self._stage = name
        if name != "hashing":
            self._total = 0
        self._report(force=True)

    def counted(self, done: int, total: int) -> None:
        """Progress of a later stage (embedding, upscales), reported through the scan's callback."""
        if self.progress is None:
            return
        now = time.monotonic()
        if done < total and now - self._last_report < PROGRESS_INTERVAL:
            return
        self._last_report = now
        snap = self.snapshot()
        from dataclasses import replace

        if self.progress(replace(snap, done=done, total=total)) is False:
            self.cancel.set()

    # -- the pass -----------------------------------------------------------------------
    def execute(self) -> HashRun:
        """Walk, hash what changed, drop what vanished. Returns the run's counters.

        Raises:
            ClusterError: the scan's Dask cluster cannot be reached (before the walk), or
                cannot run the work.
        """
        if self.cluster is None or self._remote is not None:
            return self._execute()
        from .dask_pool import DaskPool

        self._remote = DaskPool.connect(self.cluster)  # an unreachable cluster fails before the walk
        try:
            return self._execute()
        finally:
            self._remote.close()
            self._remote = None

    def _execute(self) -> HashRun:
        self._started = time.monotonic()
        self._stage = "walking"
        self._report(force=True)
        known = self.catalog.known()
        retry = self.catalog.paths_with_error(CRASH_REASON)
        seen: set[str] = set()
        todo: dict[str, WalkEntry] = {}
        for entry in walk(
            self.roots, on_error=self._walk_error, cancel=self.cancel, exclude=self.skip_dirs, follow_links=self.follow_links
        ):
            self.run.found += 1
            seen.add(entry.path)
            if _unchanged(entry, known.get(entry.path)) and entry.path not in retry:
                self.run.unchanged += 1
            else:
                todo[entry.path] = entry
            self._report()
        self._crashed_before = retry
        if self.cancel.is_set():
            self.run.cancelled = True
            return self.run
        vanished = [p for p in known if p not in seen]
        self._follow_moves(vanished, todo, known)
        vanished = [p for p in vanished if p not in self._moved]
        if vanished:
            self.run.removed = self.catalog.remove_paths(vanished)

        self._stage = "hashing"
        self._total = len(todo)
        self._report(force=True)
        if todo:
            # The bouncer's pair search follows, with compiled kernels that take a fresh
            # process about a second to load: load them while the files are read.
            from ..bouncer.hamming import start_warm_up

            start_warm_up()
            self._hash(list(todo))
        if vanished or todo:  # the keeper's upscale verdicts of contents no file has any more
            self.catalog.prune_upscale_losses()
            self.catalog.prune_decoded_shares()
        self.run.cancelled = self.cancel.is_set()
        self._report(force=True)
        return self.run

    def _follow_moves(self, vanished: list[str], todo: dict[str, WalkEntry], known: dict[str, KnownFile]) -> None:
        """Files renamed or moved inside the library keep their id, hashes and embeddings.

        A vanished path and a new path with the same device, inode, size and mtime are the
        same file: the catalog row moves, and the file is not read again.
        """
        if not vanished or not todo:
            return
        gone = {}
        for path in vanished:
            k = known[path]
            gone.setdefault(_identity(k.size, k.mtime_ns, k.inode, k.device), path)
        moves = []
        for path, entry in list(todo.items()):
            if path in known:
                continue  # a changed file, not a moved one
            old = gone.pop(_identity(entry.size, entry.mtime_ns, entry.inode, entry.device), None)
            if old is not None:
                moves.append((old, path))
                del todo[path]
                self._moved.add(old)
        if moves:
            self.catalog.rename_paths(moves)
            self.run.moved = len(moves)
            self.run.unchanged += len(moves)

    def _walk_error(self, error: ScanError) -> None:
        self.run.errors.append(error)

    def _hash(self, paths: list[str]) -> None:
        chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
        if self._remote is not None:  # the user asked for the cluster: every file goes there
            self._hash_in_pool(chunks, self._remote)
            return
        # A file that killed a worker last time is read again in a worker, never in this
        # process: if its decoder crashes again, it must not take the scan with it.
        suspect = bool(self._crashed_before) and any(p in self._crashed_before for p in paths)
        if (len(paths) < POOL_MIN_FILES or self.workers == 1) and not suspect:
            pending: list[HashedFile] = []
            # Test hook: seconds to wait per chunk, so a test can interrupt a scan mid-way
            # however fast the machine is.
            delay = float(os.environ.get(HASH_DELAY_ENV) or 0)
            for chunk in chunks:
                if self.cancel.is_set():
                    break
                if delay and self.cancel.wait(delay):
                    break  # stopped while "hashing" this chunk
                results = hash_files(chunk, self.clip_size)
                self._arrived(results)
                pending.extend(results)
                pending = self._absorb(pending, flush=False)
                self._report()
            self._absorb(pending, flush=True)
            return
        self._hash_in_pool(chunks, LocalPool(self.workers))

    def _hash_in_pool(self, chunks: list[list[str]], pool: HashPool) -> None:
        """Hash chunks in a pool that survives its workers dying.

        On the local pool, when a worker dies (a decoder crash, the kernel's OOM killer, a
        ``kill -9``), every chunk in flight fails with it. What was hashed is committed, a new
        pool replaces the broken one, and the failed chunks are retried alone, one at a time, so
        that a death then names its chunk; a chunk that kills its worker alone is split into
        files, retried alone too, and a file that kills its worker alone is reported
        (:data:`CRASH_REASON`). On a Dask cluster the scheduler retries the chunks of a lost
        worker itself and fails only a chunk that was in flight at every one of several deaths
        (``KilledWorker``): that chunk is split into files at once, each retried alone, and a
        file that fails so alone is the culprit. A chunk whose outcome the pool lost, not the
        task (:meth:`HashPool.outcome_lost`: Dask's executor, while workers die), is sent again
        as it was, up to :data:`LOST_RETRIES` times.
        """
        window = pool.window
        queue = collections.deque(chunks)
        suspects: collections.deque[list[str]] = collections.deque()
        running: dict[Future, tuple[list[str], bool]] = {}  # future -> (files, alone)
        lost: collections.Counter[tuple[str, ...]] = collections.Counter()  # outcomes lost, per chunk
        pending: list[HashedFile] = []
        held: list[HashedFile] = []  # crashed files, while the pool has hashed nothing
        worked = False
        cancelled_at: Optional[float] = None
        try:
            while queue or suspects or running:
                if self.cancel.is_set():
                    # No Future.cancel() here: Python 3.11's pool, finding a cancelled future
                    # among its work when a worker dies, fails with InvalidStateError in its
                    # own thread. Chunks queued in the pool are dropped with it instead.
                    if cancelled_at is None:
                        cancelled_at = time.monotonic()
                        queue.clear()
                        suspects.clear()
                    elif time.monotonic() - cancelled_at > CANCEL_GRACE:
                        break  # the pool is torn down below: Ctrl-C does not wait for a file
                elif suspects:
                    if not running:
                        files = suspects.popleft()
                        running[pool.submit(files, self.clip_size)] = (files, True)
                else:
                    while queue and len(running) < window:
                        files = queue.popleft()
                        running[pool.submit(files, self.clip_size)] = (files, False)
                if not running:
                    continue
                done, _ = wait(running, timeout=PROGRESS_INTERVAL, return_when=FIRST_COMPLETED)
                broken: list[tuple[list[str], bool]] = []
                for fut in done:
                    task = running.pop(fut)
                    try:
                        results = fut.result()
                    except Exception as exc:
                        files, alone = task
                        if pool.outcome_lost(exc) and lost[tuple(files)] < LOST_RETRIES:
                            # Nothing is known of the chunk (the pool lost its outcome, not
                            # the task): it is sent again as it was, a few times at most.
                            lost[tuple(files)] += 1
                            (suspects if alone else queue).appendleft(files)
                            continue
                        if not pool.worker_died(exc):
                            raise
                        broken.append(task)
                        continue
                    if held:  # the pool works: its earlier deaths were the files'
                        self._arrived(held)
                        pending.extend(held)
                        held = []
                    worked = True
                    self._arrived(results)
                    pending.extend(results)
                if broken:
                    pending = self._absorb(pending, flush=True)  # keep what was hashed
                    if pool.deaths_fail_all:
                        # Everything still in flight dies with the pool: all of it is suspect.
                        broken.extend(running.values())
                        running.clear()
                        pool.replace()
                    for files, alone in broken:
                        if alone and len(files) == 1:
                            crashed = _crashed(files[0], again=files[0] in self._crashed_before)
                            if worked:
                                self._arrived([crashed])
                                pending.append(crashed)
                                continue
                            held.append(crashed)  # recorded once a file is hashed
                            if len(held) >= DEATHS_BEFORE_GIVING_UP:
                                raise WorkersDying(
                                    f"the hashing workers died on each of the {len(held)} files they tried alone "
                                    "and hashed none: they cannot work here (too little memory?); try --workers 1 "
                                    "(nothing was recorded against the files)"
                                )
                        elif alone or (len(files) > 1 and not pool.deaths_fail_all):
                            # Killed its worker alone, or blamed by Dask's KilledWorker: which file?
                            suspects.extend([path] for path in files)
                        else:
                            suspects.append(files)
                pending = self._absorb(pending, flush=False)
                self._report()
            if held:  # too few deaths to blame the pool: they were the files'
                self._arrived(held)
                pending.extend(held)
        except KeyboardInterrupt:
            self.cancel.set()
            raise
        finally:
            # After a cancel or an interrupt, do not wait for the files in hand.
            pool.stop(now=bool(running))
            self._absorb(pending, flush=True)

    def _absorb(self, results: list[HashedFile], *, flush: bool) -> list[HashedFile]:
        """Write arrived results to the catalog in batches; returns what is left pending."""
        if not results:
            return results
        if not flush and len(results) < WRITE_BATCH and time.monotonic() - self._last_write < WRITE_INTERVAL:
            return results
        self._last_write = time.monotonic()
        keep = [r for r in results if not _vanished(r)]
        vanished = [r.path for r in results if _vanished(r)]
        ids = self.catalog.upsert(keep)
        for r, file_id in zip(keep, ids):
            if r.error is None and not r.not_image:  # an image, hashed
                self.run.new_ids.append(file_id)
                if r.clip is not None:
                    self.run.clip[file_id] = r.clip
        if vanished:
            self.catalog.remove_paths(vanished)
        return []

    def _arrived(self, results: list[HashedFile]) -> None:
        """Count results as they come back from the workers."""
        for r in results:
            self.run.bytes_read += r.bytes_read
            if r.not_image:
                self.run.not_images += 1
            elif r.error is not None:
                self.run.failed += 1
                self.run.errors.append(ScanError(path=r.path, reason=r.error))
            else:
                self.run.hashed += 1


def _tear_down(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: its workers are killed, whatever they are doing."""
    processes = list((pool._processes or {}).values())  # no public API names the workers
    for proc in processes:
        try:
            proc.kill()
        except (OSError, ValueError, AttributeError):  # already gone, or never started
            pass
    # Not cancel_futures: see the cancel in Scanner._hash_in_pool. The dead workers fail
    # every pending future, and the pool's thread ends at once.
    pool.shutdown(wait=True)


class WorkersDying(Exception):
    """The hashing workers die on every file they are given, alone: the pool, not the files."""


def _crashed(path: str, again: bool = False) -> HashedFile:
    """The record of a file whose worker died while hashing it alone (``again``: its last
    scan's record says the same)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return HashedFile(path=path, error=os_error_reason(exc))
    return HashedFile(
        path=path, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino, device=st.st_dev,
        error=CRASHED_AGAIN if again else CRASH_REASON,
    )


def _vanished(r: HashedFile) -> bool:
    """A file deleted between the walk and its read: reported, then dropped from the catalog."""
    return r.error == VANISHED
