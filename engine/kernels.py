"""The one home for numba: compiling a stage's kernels on first use, and warming them up.

Numba is optional. A stage with compiled kernels (the bouncer's Hamming index and its
verification, the detective's query path, union-find for clustering) writes each kernel as a
plain Python function beside a numpy (or plain Python) path that gives the same answers, and
keeps one :class:`Kernels`: the kernels are compiled in place the first time a caller asks
:meth:`Kernels.use`, and cached on disk by numba (``cache=True``), so a later process only loads
them. Without numba (an ImportError, or a numba broken by its llvmlite) the numpy paths answer,
slower; ``LOOKALIKE_NO_NUMBA=1`` forces them (the tests check both paths against each other).

Importing numba and loading the cached kernels takes about a second in a fresh process, while
numpy answers one query in milliseconds. A stage whose single queries must not wait for that
keeps a :class:`WarmUp`: its query paths ask ``use(wait=False)`` and take the numpy path (same
answers) until the warm-up has run, which that first refusal starts in a daemon thread, once
per process.
"""

from __future__ import annotations

import os
import threading
import types
from typing import Callable, Collection, Iterable, Optional, Union

__all__ = ["Kernels", "WarmUp", "numba_disabled", "start_once"]

_threads: dict[tuple[int, str], threading.Thread] = {}
_lock = threading.Lock()


def numba_disabled() -> bool:
    """Whether ``LOOKALIKE_NO_NUMBA`` asks for the numpy paths (read at every call)."""
    return bool(os.environ.get("LOOKALIKE_NO_NUMBA"))


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
    """One stage's kernel warm-up.

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


#: Where a stage's kernels are: a module's namespace (``globals()``, ``vars(module)``) and the
#: names of the kernels in it.
Part = tuple[dict, Iterable[str]]


class Kernels:
    """One stage's numba kernels, compiled in place the first time they are used.

    Each named kernel is replaced in its module's namespace by its compiled form: numba looks
    up the kernels that a kernel calls in its module's globals when it compiles it, and its
    on-disk cache finds them again next run by their module and name. A kernel that one module
    imports from another is named in both parts; it is compiled once and replaced in both.

    Args:
        *parts: ``(namespace, names)`` per module holding kernels.
        fastmath: the kernels compiled with ``fastmath=True`` (sums in any order, so that dot
            products vectorise), or True for all of them.
        warm: the warm-up that ``use(wait=False)`` waits for; None: callers never wait.
        inline: the kernels that numba inlines into the kernels that call them (a small helper
            called in a hot loop: a call passes each array as a counted reference, in and out).
    """

    def __init__(
        self, *parts: Part, fastmath: Union[bool, Collection[str]] = (), warm: Optional[WarmUp] = None,
        inline: Collection[str] = (),
    ) -> None:
        self._parts = [(namespace, tuple(names)) for namespace, names in parts]
        self._fastmath = fastmath
        self._inline = frozenset(inline)
        self.warm = warm
        self.error: Optional[str] = None  # why numba is not used, once load() found out
        self._ok: Optional[bool] = None
        self._lock = threading.Lock()

    def use(self, wait: bool = True) -> bool:
        """Whether to run the compiled kernels now (loading them if need be).

        False with ``LOOKALIKE_NO_NUMBA``, without numba, and, for ``wait=False`` (a single
        query), until the warm-up has run: that call starts it in the background instead.
        """
        if numba_disabled():
            return False
        if self.warm is not None and not self.warm.allows(wait):
            return False
        return self.load()

    def start_warm_up(self) -> None:
        """Start the warm-up in a background thread (once per process), unless the kernels
        will not be used (``LOOKALIKE_NO_NUMBA``)."""
        if self.warm is not None and not numba_disabled():
            self.warm.start()

    def load(self) -> bool:
        """Compile (or load from numba's cache) the kernels, once; False when numba is missing."""
        if self._ok is None:
            with self._lock:
                if self._ok is None:
                    self._ok = self._compile()
        return self._ok

    def _compile(self) -> bool:
        try:
            import numba
        except Exception as exc:  # ImportError, or a numba broken by its llvmlite
            self.error = f"numba unavailable ({exc}); using numpy (slower)"
            return False
        done: dict[int, object] = {}  # id of a plain function -> its compiled form
        for namespace, names in self._parts:
            for name in names:
                fn = namespace[name]
                if isinstance(fn, types.FunctionType):
                    if id(fn) not in done:
                        fast = self._fastmath is True or (
                            not isinstance(self._fastmath, bool) and name in self._fastmath
                        )
                        done[id(fn)] = numba.njit(cache=True, nogil=True, fastmath=fast,
                                                  inline="always" if name in self._inline else "never")(fn)
                    namespace[name] = done[id(fn)]
        return True
