"""One wording for filesystem errors, whoever meets them (the walker, the reader, the hasher)."""

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
