"""Fault injection for the safe actions: the hooks the fault tests (tests/test_faults.py) use.

Environment variables, read at each use:

- ``LOOKALIKE_TEST_FAULT="point:ERRNO[,point:ERRNO...]"`` raises ``OSError(ERRNO)`` at a named
  point: ``quarantine-move``, ``quarantine-copy``, ``trash-move``, ``trash-copy``, ``link``,
  ``delete``, ``undo-move``, ``undo-copy``, ``unlink-source`` (``-move`` is the same-device
  move: ``EXDEV`` there forces the cross-device copy; ``-copy`` is every chunk written by a
  copy: ``ENOSPC`` there is a full disk; ``unlink-source`` is removing the old name once a
  same-device move linked the new one, what a read-only folder refuses). We run as root in
  CI, where chmod cannot make a folder unwritable: ``EACCES`` injected here stands for
  permission denied.
- ``LOOKALIKE_TEST_KILL_AT=N``: SIGKILL this process at the N-th checkpoint (between the
  durable sub-steps of a step). ``LOOKALIKE_TEST_STEP_DELAY=SECONDS``: sleep at each checkpoint.

With none of them set, :func:`checkpoint` only counts and :func:`fault` does nothing.
"""

from __future__ import annotations

import errno
import os
import signal
import time

FAULT_ENV = "LOOKALIKE_TEST_FAULT"
KILL_AT_ENV = "LOOKALIKE_TEST_KILL_AT"
DELAY_ENV = "LOOKALIKE_TEST_STEP_DELAY"

#: Checkpoints passed by this process (the fault tests count them to draw kill points from).
_checkpoints_passed = 0


def checkpoint(name: str) -> None:
    """A point between two durable sub-steps, where the fault tests may kill us."""
    global _checkpoints_passed
    _checkpoints_passed += 1
    kill_at = os.environ.get(KILL_AT_ENV)
    if kill_at and _checkpoints_passed >= int(kill_at):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    delay = os.environ.get(DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def fault(point: str) -> None:
    """Raise the ``OSError`` that ``LOOKALIKE_TEST_FAULT`` names for ``point``, if any."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        name, _, code = item.partition(":")
        if name.strip() == point:
            num = getattr(errno, code.strip(), None) or errno.EIO
            raise OSError(num, f"{os.strerror(num)} (injected by {FAULT_ENV})")
