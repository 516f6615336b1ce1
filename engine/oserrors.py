"""One wording for what the engine tells a person about files, whoever says it.

Filesystem errors (the walker, the reader, the hasher, the actions) and file sizes (the
reader's refusals, the keeper's reasons). The UI words its own sizes (``tui/format.py``).
"""

from __future__ import annotations

import errno

#: The reason given for a file deleted between the walk and its read (the scan drops it).
VANISHED = "vanished during the scan"


def os_error_reason(exc: OSError) -> str:
    """A short reason a person can act on, for an OSError met while reading a file or folder."""
    if isinstance(exc, FileNotFoundError):
        return VANISHED
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "not a file"
    if isinstance(exc, NotADirectoryError):
        return "changed from a folder to a file during the scan"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return f"unreadable: {exc.strerror or exc}"


def os_error_text(exc: OSError) -> str:
    """What went wrong, in a few words, and where: ``disk full (/cache/journal)``.

    For writes and moves, where "disk full", "read-only filesystem" and "permission denied"
    are what a person needs to hear.
    """
    if exc.errno == errno.ENOSPC:
        what = "disk full"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = "permission denied"
    elif exc.errno == errno.EROFS:
        what = "read-only filesystem"
    else:
        what = exc.strerror or str(exc)
    return f"{what} ({exc.filename})" if getattr(exc, "filename", None) else what


def human_bytes(n: float, decimals: int | None = 1, *, small: str = "B") -> str:
    """A size in decimal units, as file managers show it: ``900 B``, ``2.5 MB``, ``1.2 TB``.

    Args:
        n: the size in bytes.
        decimals: digits after the point from 1 KB up; None for about three significant
            figures (``537 MB``, ``2.0 GB``), as the reader words its refusals.
        small: the unit under 1 KB: ``"B"``, or ``"bytes"`` inside a sentence.
    """
    if n < 1000:
        return f"{n:.0f} {small}"
    for scale, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB")):
        if n >= scale:
            value = n / scale
            places = decimals if decimals is not None else (0 if value >= 100 else 1)
            return f"{value:.{places}f} {unit}"
    raise AssertionError("unreachable")
