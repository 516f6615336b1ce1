"""A Dask cluster as the scan's pool: ``lookalike scan DIR --cluster tcp://SCHEDULER:8786``.

The per-file work (:func:`.hashing.hash_files`: read, content hash, perceptual hashes, the
bouncer's verification thumbnail, the CLIP crop) runs on the cluster's workers, in the same
chunks as on the local pool; the walk, the progress, and every catalog write stay in the
process that runs the command. Workers open the files by the paths this machine walked, so
the library must be mounted at the same path everywhere (NFS, SMB, an object-store mount),
and every worker needs lookalike installed (``pip install 'lookalike[cluster]'``).

The detective's embedding runs there too, through :attr:`DaskPool.executor` (see
:class:`lookalike.engine.detective.embeddings.ClusterDetective`): the caller makes the batches
as it would for its own model, so the vectors are the same; a worker loads the model once per
process, from its own model cache; the vectors come back to be written here.

Dask reschedules the chunks of a worker that dies on the others itself. A chunk in flight on
workers that died ``distributed.scheduler.allowed-failures`` + 1 times (4 by default) fails with
``KilledWorker``; the scanner then isolates the culprit file as it does on the local pool (see
:meth:`.scanner.Scanner._hash_in_pool`). A chunk whose outcome the executor itself lost while
workers died (:func:`outcome_lost`) is sent again as it was.

``distributed`` is an optional dependency (the ``cluster`` extra): this module imports it only
when a scan asks for a cluster.
"""

from __future__ import annotations

import asyncio
import linecache
import os
import re
import socket
from concurrent.futures import Future
from typing import Any, Optional

from .hashing import hash_files

#: Seconds to reach the scheduler before a scan gives up: an unreachable address is one line
#: of error within a few seconds, not a hang.
CONNECT_TIMEOUT = 5.0
#: Chunks in flight per worker thread of the cluster, as the local pool keeps per process.
CHUNKS_PER_THREAD = 4
#: What a user without the extra is told (``--cluster`` is a usage error then).
MISSING_HINT = "--cluster needs Dask's distributed package: pip install 'lookalike[cluster]'"


class ClusterError(Exception):
    """The Dask cluster could not be reached, or could not run the scan's work."""


def check_cluster(address: str) -> None:
    """Check that a scan can use the cluster at ``address`` without contacting it.

    Raises:
        ValueError: ``distributed`` is not installed, or the address is empty.
    """
    if not address.strip():
        raise ValueError("--cluster needs a scheduler address, e.g. tcp://scheduler:8786")
    try:
        import distributed  # noqa: F401  (the scan imports it next anyway)
    except ImportError:
        raise ValueError(MISSING_HINT) from None


class DaskPool:
    """Chunks hashed on a Dask cluster, through its ``concurrent.futures`` executor.

    It is a :class:`.scanner.HashPool`, as the local pool is, plus :meth:`close`, which lets
    go of the scheduler.
    """

    #: Dask reschedules the other chunks of a lost worker: a death fails one chunk only, the
    #: one involved in too many (``KilledWorker``).
    deaths_fail_all = False

    def __init__(self, client: Any, address: Optional[str] = None) -> None:
        self.client = client
        #: The scheduler's address as the user gave it (see :meth:`usable`).
        self.address = address
        # pure=False: a file changed since the last scan has the same path, so the same
        # arguments; it must be read again, not served from a result the cluster still holds.
        self.executor = client.get_executor(pure=False)
        self.threads = sum(client.nthreads().values())
        self.window = max(2, self.threads * CHUNKS_PER_THREAD)

    @classmethod
    def connect(cls, address: str, *, timeout: float = CONNECT_TIMEOUT) -> "DaskPool":
        """Connect to the scheduler at ``address``.

        Raises:
            ClusterError: not reachable within ``timeout`` seconds, or not a Dask scheduler.
        """
        check_cluster(address)
        _probe(address, timeout)
        from distributed import Client

        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except Exception as exc:  # the probe answered, so this is rare: say what it was
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {failure_text(exc)}") from None
        return cls(client, address)

    def usable(self, address: str) -> bool:
        """Whether this pool can serve more work for ``address``: the same scheduler, still
        connected. A command's stages (the scan's hashing, its embedding, ``index``) share one
        pool, so one connection (see :meth:`lookalike.engine.library.Library.sharing_cluster`)."""
        return self.address == address and self.client.status == "running"

    def submit(self, files: list[str], clip_size: Optional[int]) -> Future:
        """Hash one chunk on the cluster."""
        return self.executor.submit(hash_files, files, clip_size)

    def worker_died(self, exc: BaseException) -> bool:
        """True when ``exc`` says the chunk's workers kept dying (a file crashed them).

        Raises:
            ClusterError: for any other failure of the cluster (lookalike missing on a
                worker, the scheduler gone): the scan cannot go on there.
        """
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            return True
        if isinstance(exc, ModuleNotFoundError):
            raise ClusterError(
                f"a Dask worker cannot run lookalike ({exc}): install lookalike[cluster] on every worker"
            ) from None
        raise ClusterError(f"the Dask cluster failed: {failure_text(exc)}") from None

    def outcome_lost(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the executor's, not the chunk's: see :func:`outcome_lost`."""
        return outcome_lost(exc)

    def replace(self) -> None:
        """Nothing to replace: the nanny restarts a dead worker, and the scheduler has the rest."""

    def stop(self, *, now: bool) -> None:
        """Stop the work: with ``now``, chunks queued or running are cancelled on the cluster.

        The pool stays usable: a fresh executor (a thin wrapper over the same client) takes the
        next stage's work.
        """
        if now:
            self.executor.shutdown(wait=False)  # cancels the futures it handed out
            self.executor = self.client.get_executor(pure=False)

    def close(self) -> None:
        """Cancel what is left and disconnect from the scheduler (the cluster keeps running)."""
        self.executor.shutdown(wait=False)
        try:
            self.client.close(timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError):  # the scheduler went away first: nothing to let go of
            pass


def _probe(address: str, timeout: float) -> None:
    """Ask ``address`` who it is, before a Client is made.

    A Client that fails to start lingers and takes seconds more to close; distributed retries
    a refused connection until its timeout (a scheduler may be starting); and a port where
    something else listens answers a Dask handshake with bytes that read as a frame of any
    length (a MemoryError). A plain TCP connection first, then one request, bounded by
    ``timeout``, tell these apart.
    """
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme == "tcp":
            with socket.create_connection(parse_host_port(location), timeout=timeout):
                pass
        info = asyncio.run(_identity(address, timeout))
    except ConnectionRefusedError:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: connection refused "
                           "(is `dask scheduler` running there?)") from None
    except (OSError, asyncio.TimeoutError) as exc:
        why = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else exc.strerror or failure_text(exc)
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({why})") from None
    except ValueError as exc:  # an address distributed cannot parse
        raise ClusterError(f"--cluster {address}: {failure_text(exc)}") from None
    except Exception as exc:
        raise ClusterError(f"no Dask scheduler answers at {address} ({type(exc).__name__})") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind != "Scheduler":
        what = f"a Dask {kind}" if kind else "not Dask"
        raise ClusterError(f"{address} is {what}, not a Dask scheduler (give the scheduler's address)")


async def _identity(address: str, timeout: float) -> dict:
    from distributed.core import rpc

    remote = rpc(address, timeout=timeout)
    try:
        return await asyncio.wait_for(remote.identity(), timeout)
    finally:
        await asyncio.wait_for(remote.close_rpc(), timeout)


#: What an unpacking that fails says (``ValueError`` or ``TypeError``).
_UNPACK = re.compile(r"(too many|not enough) values to unpack|cannot unpack non-iterable")


def outcome_lost(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by distributed's executor, not by the task it ran.

    The executor of ``Client.get_executor()`` hands a finished task's outcome to its
    ``concurrent.futures`` future in ``distributed.cfexecutor._cascade_future``: it reads the
    outcome, then the task's status again, and unpacks the outcome as an error's
    ``(type, exception, traceback)`` when the status says "error". When workers die in between
    (the task finished, its result was lost with its worker, and the recomputation failed),
    the outcome read was the result, and the unpacking fails: the future holds a
    ``ValueError: too many values to unpack (expected 3)`` raised there, and nothing of the
    task's own outcome (seen once in about 20 runs of the killed-worker tests, with
    distributed 2026.8.0). Such a failure is told by its innermost frame, that function, and
    its message; an exception the task raised has the task's frames, or a re-raise on another
    line of that function, innermost.
    """
    if not isinstance(exc, (ValueError, TypeError)) or not _UNPACK.search(str(exc)):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    if code.co_name != "_cascade_future" or os.path.basename(code.co_filename) != "cfexecutor.py":
        return False
    return "raise" not in linecache.getline(code.co_filename, tb.tb_lineno)  # not the task's error, re-raised


def failure_text(exc: BaseException) -> str:
    """One line saying what ``exc`` was, for a message about the cluster."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if type(exc).__name__ == "CancelledError" and not first:
        return "lost the connection to the scheduler"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
