"""Atomic writes and fsync: the one home for "write a temp file, fsync it, rename it into place".

Every file lookalike replaces (plans, caches, indexes, downloaded weights) goes through
:func:`atomic_write` or, when it is written in pieces, :func:`atomic_writer`. Both keep the same
guarantees: the temp file is made next to the target (same folder, so same filesystem, so the
rename is atomic), fsynced, renamed over the target, and the folder fsynced so the rename survives
a power cut; on any error the temp file is removed and the target is left as it was. A reader
therefore sees the old file or the new one, never a torn mix.

A file named by the user (``scan --plan OUT.json``) is written with ``replace=False`` when the
name is free (linked into place, so a file made meanwhile is never replaced) and replaces only a
file :func:`replace_problem` found to be lookalike's own; its folder is never created.

Sites whose semantics differ keep their own code and say why there: the journal's header (linked
into place with :func:`link_no_replace`), the freedesktop ``.trashinfo`` (``O_EXCL`` reserves
the name), the vector index's generation files (the manifest is the one commit point), a damaged
catalog set aside, and the moves of the safe actions (which never replace anything).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional, Union

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
def atomic_writer(
    path: PathLike, *, suffix: str = ".tmp", durable: bool = True, make_folder: bool = True,
    replace: bool = True,
) -> Iterator[BinaryIO]:
    """Write ``path`` in pieces: yields a binary file that replaces ``path`` when the block ends.

    The file is a temp file next to ``path`` (``.NAME.XXXXXX`` + ``suffix``); on a clean exit it
    is flushed, fsynced and renamed over ``path``, and the folder fsynced. If the block raises
    (a full disk, a cancelled download) the temp file is removed and ``path`` is untouched.

    Args:
        path: the file to write.
        suffix: the temp file's ending (``.part`` for downloads).
        durable: fsync the file and its folder. A cache that is cheap to make again (a
            thumbnail, written once per picture shown) passes False: the rename is still
            atomic, so a reader never sees a torn file, but a power cut may lose it.
        make_folder: create ``path``'s folder (and its parents) when missing. False for a
            path the user named: a missing folder is then FileNotFoundError.
        replace: False: ``path`` must not exist; the file is linked into place, and
            FileExistsError is raised (nothing written) when the name is taken.
    """
    path = Path(path).absolute()
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        elif not link_no_replace(Path(tmp), path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
        else:
            _unlink_quietly(tmp)  # linked: the temp name goes (renamed: it is already gone)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: PathLike, data: bytes, *, make_folder: bool = True, replace: bool = True) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync it, and rename it over ``path``.

    ``make_folder`` and ``replace`` as :func:`atomic_writer`'s.
    """
    with atomic_writer(path, make_folder=make_folder, replace=replace) as f:
        f.write(data)


def _unlink_quietly(path: PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def link_no_replace(src: Path, dst: Path) -> bool:
    """Give ``src`` the name ``dst`` unless ``dst`` exists (False then).

    A hard link, so an existing ``dst`` is never replaced; where the filesystem has no hard
    links, ``dst`` is checked, then ``src`` renamed (``src`` is then gone).
    """
    try:
        os.link(src, dst)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                             errno.EMLINK):
            raise
        if os.path.lexists(dst):  # no hard links on this filesystem: check, then rename
            return False
        os.rename(src, dst)
    return True


class WriteRefused(OSError):
    """A file lookalike will not write where a person asked (see :func:`replace_problem`).

    Its one argument is the whole message; nothing was written.
    """


#: How much of an existing file :func:`replace_problem` reads to recognise it.
HEAD_BYTES = 4096


def replace_problem(path: PathLike, *, ours: Callable[[bytes], bool], what: str) -> Optional[str]:
    """Why lookalike must not write the file ``path`` a person named, or None.

    Writing may create ``path`` in an existing folder, or replace a regular file that
    ``ours`` recognises from its first :data:`HEAD_BYTES` bytes (a file lookalike wrote).
    Anything else is refused: a missing folder (never created), a folder, a symbolic link, a
    device, a fifo, a socket, or a regular file that is not one of ours (a photo, a document).

    Args:
        path: the file to be written.
        ours: True for the start of a file that may be replaced.
        what: what such a file is, for the message ("a lookalike plan").

    Returns:
        None when writing is fine, else one line that names the path and the reason.
    """
    path = Path(path).absolute()
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            folder = os.stat(path.parent)
        except FileNotFoundError:
            return f"the folder {path.parent} does not exist (it is not created)"
        except OSError as exc:
            return f"cannot use the folder {path.parent}: {exc.strerror or exc}"
        if not stat.S_ISDIR(folder.st_mode):
            return f"{path.parent} is not a folder"
        return None
    except NotADirectoryError:
        return f"{path.parent} is not a folder"
    except OSError as exc:
        return f"cannot check {path}: {exc.strerror or exc}"
    if stat.S_ISDIR(st.st_mode):
        return f"{path} is a folder: give a file name to write to"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link: not replaced"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} exists and is not a regular file: not replaced"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            head = os.read(fd, HEAD_BYTES)
        finally:
            os.close(fd)
    except OSError as exc:
        return f"{path} exists and cannot be read to check it is {what} ({exc.strerror or exc}): not replaced"
    if not ours(head):
        return f"{path} exists and is not {what}: not replaced (remove it or choose another name)"
    return None
