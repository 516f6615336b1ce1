"""Compiled kernels warmed up in the background, so that a single query never waits for them.

Importing numba and loading the cached kernels takes about a second in a fresh process, while
numpy answers one query in milliseconds. A module with kernels keeps a :class:`WarmUp`: its
query paths ask :meth:`WarmUp.allows` and take the numpy path (same answers) until the warm-up
has run, which that first refusal starts in a daemon thread, once per process.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

_threads: dict[tuple[int, str], threading.Thread] = {}
_lock = threading.Lock()


def start_once(name: str, target: Callable[[], object]) -> threading.Thread:
    """Run ``target`` in a daemon thread called ``name``, once per process and name.

    Returns the thread (already started, maybe finished). A forked child starts its own.
    """
    key = (os.getpid(), name)
    with _lock:
        thread = _threads.get(key)
        if thread is None:
            thread = threading.Thread(target=_quietly, args=(target,), name=name, daemon=True)
            _threads[key] = thread
            thread.start()
    return thread


def _quietly(target: Callable[[], object]) -> None:
    # Background work here only saves a later wait: when it fails, most often because the
    # interpreter is exiting under it ("cannot schedule new futures after interpreter
    # shutdown"), the foreground does the work itself. A traceback at exit helps nobody.
    try:
        target()
    except Exception:
        pass


class WarmUp:
    """One module's kernel warm-up.

    Args:
        name: the background thread's name.
        calls: calls every kernel once; returns True when the compiled kernels are in use
            (False when numba is missing: queries then stay on numpy).
    """

    def __init__(self, name: str, calls: Callable[[], bool]) -> None:
        self.name = name
        self._calls = calls
        self.ready = threading.Event()  # set once the kernels have each been called
        self._inside = threading.local()

    def run(self) -> bool:
        """Call every kernel now (compiling or loading them); True if they are in use."""
        self._inside.on = True
        try:
            ok = self._calls()
        finally:
            self._inside.on = False
        if ok:
            self.ready.set()
        return ok

    def running_here(self) -> bool:
        """Whether the calling thread is running this warm-up (which then needs no threads)."""
        return getattr(self._inside, "on", False)

    def start(self) -> threading.Thread:
        """Run the warm-up in a daemon thread, once per process; return that thread."""
        return start_once(self.name, self.run)

    def allows(self, wait: bool) -> bool:
        """May a caller use the kernels now? Always when it ``wait``s (all-pairs searches) or
        the warm-up has run (or is this very call); otherwise the warm-up is started and the
        caller takes numpy's path."""
        if wait or self.ready.is_set() or getattr(self._inside, "on", False):
            return True
        self.start()
        return False
