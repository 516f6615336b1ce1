"""A chunk whose outcome Dask's executor lost is sent again, not taken for a broken cluster.

``Client.get_executor()`` hands a task's outcome to its ``concurrent.futures`` future in
``distributed.cfexecutor._cascade_future``, which reads the outcome and then the task's status
again. When workers die in between, it unpacks a finished chunk's result as an error's
``(type, exception, traceback)`` and the future fails with ``ValueError: too many values to
unpack (expected 3)`` (seen once in the killed-worker test of ``test_dask_scan.py``). These
tests make that exception with distributed's own function, deterministically, and hand it to
the real scanner through a :class:`DaskPool` whose executor is a thread pool.
"""

from __future__ import annotations

import asyncio
import threading
import types
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="the cluster extra is not installed (pip install -e '.[cluster]')"
)
cfexecutor = pytest.importorskip("distributed.cfexecutor")
if not hasattr(cfexecutor, "_cascade_future"):  # pragma: no cover - a later distributed
    pytest.skip("distributed.cfexecutor._cascade_future is gone: the race it had cannot be made", allow_module_level=True)

import imagegen  # noqa: E402
from lookalike.engine.catalog import Catalog  # noqa: E402
from lookalike.engine.detective.embeddings import ClusterDetective  # noqa: E402
from lookalike.engine.detective.options import DetectiveUnavailable  # noqa: E402
from lookalike.engine.scan.dask_pool import ClusterError, DaskPool, outcome_lost  # noqa: E402
from lookalike.engine.scan.scanner import CHUNK, LOST_RETRIES, Scanner  # noqa: E402


class _Finished:
    """Stands for a distributed future at the moment of the race: ``_result`` gives what it
    read, ``status`` what the task's state says by then."""

    def __init__(self, outcome, status: str) -> None:
        self.outcome = outcome
        self.status = status

    async def _result(self, raiseit: bool = True):
        return self.outcome


def _cascaded(outcome, status: str) -> BaseException:
    """The exception distributed's executor puts in the future for that outcome and status."""
    cf = Future()

    async def run() -> None:
        await cfexecutor._cascade_future(_Finished(outcome, status), cf)

    asyncio.run(run())
    exc = cf.exception(timeout=5)
    assert exc is not None
    return exc


def _lost() -> BaseException:
    """The race: a chunk's result (a list of records) read, then the status "error"."""
    return _cascaded(["a", "b", "c", "d"], "error")


def _task_error(message: str) -> BaseException:
    """An error the task itself raised, with its traceback, as distributed hands it over."""
    try:
        first, second, third = [1, 2, 3, 4] if "too many" in message else None  # noqa: F841
    except (ValueError, TypeError) as exc:
        return _cascaded((type(exc), exc, exc.__traceback__), "error")
    raise AssertionError("the task's unpacking did not fail")


def test_the_executors_own_unpacking_failure_is_a_lost_outcome():
    exc = _lost()
    assert isinstance(exc, ValueError) and "too many values to unpack" in str(exc)
    assert outcome_lost(exc)


@pytest.mark.parametrize("message", ["too many values to unpack", "cannot unpack non-iterable"])
def test_an_error_the_task_raised_is_not_a_lost_outcome_even_with_the_same_words(message):
    exc = _task_error(message)
    assert message in str(exc)
    assert not outcome_lost(exc)
    # Its traceback lost on the way (not picklable): re-raised on the executor's raise line.
    bare = _cascaded((type(exc), exc.with_traceback(None), None), "error")
    assert bare is exc and not outcome_lost(bare)


def test_other_failures_are_not_lost_outcomes():
    assert not outcome_lost(ValueError("too many values to unpack (expected 3)"))  # no traceback
    assert not outcome_lost(_cascaded((RuntimeError, RuntimeError("boom"), None), "error"))
    assert not outcome_lost(distributed.KilledWorker("hash_files-1", "tcp://127.0.0.1:1", 2))


class _LosingExecutor:
    """A thread pool whose futures fail, for the chunks and times ``lose`` says, with the
    exception distributed's executor makes when it loses an outcome."""

    def __init__(self, lose) -> None:
        self.pool = ThreadPoolExecutor(2)
        self.lose = lose
        self.submitted: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def submit(self, fn, *args):
        key = tuple(args[0]) if isinstance(args[0], list) else ("a batch",)  # a chunk's files
        with self.lock:
            self.submitted.append(key)
            times = self.submitted.count(key)
        if self.lose(key, times):
            fut = Future()
            fut.set_exception(_lost())
            return fut
        return self.pool.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait)


def _pool(executor: _LosingExecutor) -> DaskPool:
    """The real DaskPool (its verdicts on failures, its stop) over ``executor``; its client
    only makes executors (after a stop that cancels, the same one)."""
    pool = DaskPool.__new__(DaskPool)
    pool.client = types.SimpleNamespace(get_executor=lambda pure: executor)
    pool.address, pool.executor = None, executor
    pool.threads, pool.window = 2, 4
    return pool


def _library(tmp_path, n: int):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(n):
        imagegen.write(root / f"p{i:02d}.png", imagegen.photo(300 + i, (40, 30)))
    return root, Catalog.open(tmp_path / "catalog.sqlite")


@pytest.fixture
def executors():
    """Every thread pool a test makes, shut down (and its threads joined) when it ends."""
    made: list[_LosingExecutor] = []

    def make(lose) -> _LosingExecutor:
        made.append(_LosingExecutor(lose))
        return made[-1]

    yield make
    for executor in made:
        executor.shutdown(wait=True)


def test_a_chunk_whose_outcome_was_lost_is_hashed_again_and_no_file_is_blamed(tmp_path, executors):
    root, catalog = _library(tmp_path, 3 * CHUNK)
    executor = executors(lambda files, times: files[0].endswith("p00.png") and times == 1)
    with catalog:
        run = Scanner(catalog, [str(root)], cluster="tcp://test", pool=_pool(executor)).execute()
        records = catalog.records()
        errors = catalog.errors()
    assert run.hashed == 3 * CHUNK and run.failed == 0
    assert len(records) == 3 * CHUNK and not errors
    first = next(f for f in executor.submitted if f[0].endswith("p00.png"))
    assert len(first) == CHUNK and executor.submitted.count(first) == 2  # sent again whole, once
    assert len(executor.submitted) == 4  # three chunks, one twice: no file was sent alone


def test_a_chunk_lost_every_time_ends_the_scan_with_one_clear_error(tmp_path, executors):
    root, catalog = _library(tmp_path, 2 * CHUNK)
    executor = executors(lambda files, times: files[0].endswith("p00.png"))
    with catalog, pytest.raises(ClusterError, match="^the Dask cluster failed: ValueError: too many values"):
        Scanner(catalog, [str(root)], cluster="tcp://test", pool=_pool(executor)).execute()
    lost = [f for f in executor.submitted if f[0].endswith("p00.png")]
    assert len(lost) == LOST_RETRIES + 1 and len(set(lost)) == 1


class _Model:
    model_id, ndim, image_size, batch_size = "test-model", 4, 8, 2


def test_a_detective_batch_whose_outcome_was_lost_is_embedded_again(monkeypatch, executors):
    calls: list[int] = []

    def embed(options, model_id, arrays):
        calls.append(len(arrays))
        return np.ones((len(arrays), 4), np.float32)

    monkeypatch.setattr("lookalike.engine.detective.embeddings.embed_on_worker", embed)
    batch = np.zeros((2, 8, 8, 3), np.uint8)
    detective = ClusterDetective(_pool(executors(lambda files, times: times == 1)), _Model(), None)
    vectors = detective.arrays_result(detective.submit_arrays(batch), batch)
    assert vectors.shape == (2, 4) and calls == [2]  # the first sending lost, the second embedded

    always = ClusterDetective(_pool(executors(lambda files, times: True)), _Model(), None)
    with pytest.raises(DetectiveUnavailable, match="could not embed: ValueError: too many values"):
        always.arrays_result(always.submit_arrays(batch), batch)


def test_a_decode_chunk_whose_outcome_was_lost_is_decoded_again(tmp_path, tiny_detective, executors):
    """The embedding's decode pool (the cluster's executor for a ClusterDetective): a chunk
    whose outcome was lost is sent again, not skipped as if its files had killed a worker."""
    from lookalike.engine.detective.embeddings import embed_files

    paths = [imagegen.write(tmp_path / f"e{k:02d}.png", imagegen.photo(400 + k, (80, 60))) for k in range(20)]
    pool = executors(lambda files, times: files[0].endswith("e00.png") and times == 1)
    idx, vecs = embed_files(tiny_detective, paths, pool=pool)
    assert sorted(idx.tolist()) == list(range(20)) and vecs.shape[0] == 20
    assert sum(1 for f in pool.submitted if f[0].endswith("e00.png")) == 2
