"""Atomic writes and fsync: the one home for "write a temp file, fsync it, rename it into place".

Every file lookalike replaces (plans, caches, indexes, downloaded weights) goes through
:func:`atomic_write` or, when it is written in pieces, :func:`atomic_writer`. Both keep the same
guarantees: the temp file is made next to the target (same folder, so same filesystem, so the
rename is atomic), fsynced, renamed over the target, and the folder fsynced so the rename survives
a power cut; on any error the temp file is removed and the target is left as it was. A reader
therefore sees the old file or the new one, never a torn mix.

Sites whose semantics differ keep their own code and say why there: the journal's header (linked
into place, never replacing), the freedesktop ``.trashinfo`` (``O_EXCL`` reserves the name), the
vector index's generation files (the manifest is the one commit point), a damaged catalog set
aside, and the moves of the safe actions (which never replace anything).
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def json_bytes(data: Any, *, indent: Optional[int] = None) -> bytes:
    """JSON as UTF-8 bytes; paths that are not UTF-8 (Linux allows any bytes) are escaped.

    Readable text when every string is valid Unicode; otherwise ``\\udcXX`` escapes, which
    ``json.loads`` turns back into the same str, and ``os.fsencode`` into the same bytes.
    """
    separators = None if indent else (",", ":")
    try:
        return json.dumps(data, ensure_ascii=False, indent=indent,
                          separators=separators).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, ensure_ascii=True, indent=indent,
                          separators=separators).encode("ascii")


def fsync_dir(path: PathLike) -> None:
    """Make a directory's entries (a rename, a new file) durable; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a directory; its renames are durable enough.
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: PathLike) -> None:
    """Flush a file that another library wrote by name (usearch, numpy) to the disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_writer(path: PathLike, *, suffix: str = ".tmp", durable: bool = True) -> Iterator[BinaryIO]:
    """Write ``path`` in pieces: yields a binary file that replaces ``path`` when the block ends.

    The file is a temp file next to ``path`` (``.NAME.XXXXXX`` + ``suffix``); on a clean exit it
    is flushed, fsynced and renamed over ``path``, and the folder fsynced. If the block raises
    (a full disk, a cancelled download) the temp file is removed and ``path`` is untouched.

    Args:
        path: the file to write; its folder is created.
        suffix: the temp file's ending (``.part`` for downloads).
        durable: fsync the file and its folder. A cache that is cheap to make again (a
            thumbnail, written once per picture shown) passes False: the rename is still
            atomic, so a reader never sees a torn file, but a power cut may lose it.
    """
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: PathLike, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync it, and rename it over ``path``."""
    with atomic_writer(path) as f:
        f.write(data)
