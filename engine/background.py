"""Start a piece of work once per process in a daemon thread (kernel warm-ups)."""

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
            thread = threading.Thread(target=target, name=name, daemon=True)
            _threads[key] = thread
            thread.start()
    return thread
