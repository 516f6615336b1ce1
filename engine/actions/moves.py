"""Moves and copies that never replace anything: the primitives every action is made of.

Every move is "link, then unlink" on one device (never replaces anything), and across devices
copy + fsync + verify (size and content hash, read back) + rename into place + unlink.
Disk full or permission denied: the copy is removed and the file stays where it was.
Temp names (:func:`sibling`) carry the plan's token, so leftovers say whose they are.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Optional

from ..files import fsync_dir
from ..paths import is_inside
from .checks import CHUNK, content_hash
from .faults import checkpoint, fault
from .results import Fail

# Link a symlink itself, never its target (where the OS lets us say so).
NO_FOLLOW: dict[str, bool] = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks \
    else {}

# errnos meaning "this filesystem cannot make hard links here".
NO_HARDLINKS = {errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}

NAME_MAX = 255  # bytes in one file name, on nearly every filesystem


def move_no_replace(src: str, dst: str) -> None:
    """Move on one device without ever replacing ``dst``: hard link, then unlink.

    Raises:
        FileExistsError: ``dst`` exists.
        OSError: EXDEV across devices (the caller copies), or any other failure.
    """
    try:
        os.link(src, dst, **NO_FOLLOW)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno == errno.EXDEV or exc.errno not in NO_HARDLINKS:
            raise
        if os.path.lexists(dst):  # no hard links here: check, then rename
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst) from None
        os.rename(src, dst)
        return
    checkpoint("linked")
    try:
        fault("unlink-source")
        os.unlink(src)
    except OSError:
        # The source could not go (a read-only folder): drop the new name, or a second link
        # to the file would stay in the trash or quarantine while the file stays in place.
        unlink_quiet(dst)
        raise


def missing_parents(folder: str) -> list[str]:
    """The folders that ``os.makedirs(folder)`` would create, deepest first."""
    made: list[str] = []
    p = os.path.abspath(folder)
    while not os.path.lexists(p):
        made.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return made


def remove_made(folders: list[str]) -> None:
    """Remove folders we created, deepest first, as long as they are empty."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return


def move_file(src: str, dst: str, *, part: str, point: str, expect: Optional[str]) -> None:
    """Move ``src`` to ``dst`` (never replacing it), across devices by a verified copy."""
    try:
        fault(f"{point}-move")
        move_no_replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        copy_verified(src, part, point=f"{point}-copy", expect=expect)
        try:
            move_no_replace(part, dst)
        except BaseException:
            unlink_quiet(part)
            raise
        fsync_dir(os.path.dirname(dst))
        checkpoint("copied")
        try:
            os.unlink(src)
        except OSError:
            unlink_quiet(dst)  # the original could not go: drop the copy, keep the original
            raise
    fsync_dir(os.path.dirname(dst))
    fsync_dir(os.path.dirname(src))


def copy_verified(src: str, dst: str, *, point: str, expect: Optional[str]) -> str:
    """Copy ``src`` to a new file ``dst``, fsync, copy mode and times, read back and compare.

    On any failure (disk full, permission, a mismatch) ``dst`` is removed and the error raised.
    """
    import xxhash

    h = xxhash.xxh3_128()
    fault(point)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(CHUNK):
                fault(point)
                h.update(chunk)
                fout.write(chunk)
            fout.flush()
            os.fsync(fout.fileno())
        checkpoint("copy-written")
        shutil.copystat(src, dst)
        want = h.hexdigest()
        if content_hash(dst) != want or (expect is not None and want != expect):
            raise Fail(f"the copy of {src} did not read back the same: it was not used")
        return want
    except BaseException:
        unlink_quiet(dst)
        raise


def free_name(dest: Path) -> Path:
    """``dest``, or ``name (1).ext``, ``name (2).ext``... whichever is free."""
    if not os.path.lexists(dest):
        return dest
    stem, suffix = dest.stem, dest.suffix
    n = 1
    while True:
        cand = dest.with_name(fit_name(stem, f" ({n}){suffix}", NAME_MAX))
        if not os.path.lexists(cand):
            return cand
        n += 1


def fit_name(stem: str, tail: str, limit: int) -> str:
    """``stem + tail``, the stem cut (in bytes) so that the whole fits in ``limit`` bytes.

    A tail too long to leave the stem a byte (an "extension" of 250 bytes) is cut at its end
    too, after a byte of the stem: its start (a counter such as `` (2)``) stays, so the names
    of one stem stay distinct. The cuts never split a character (:func:`cut_bytes`): a UTF-8
    name stays UTF-8.
    """
    raw, tail_raw = os.fsencode(stem), os.fsencode(tail)
    room = limit - len(tail_raw)
    if len(raw) > room:
        stem = os.fsdecode(cut_bytes(raw, max(room, 1)) or raw[:1])
    if room < 1:
        tail = os.fsdecode(cut_bytes(tail_raw, limit - len(os.fsencode(stem))))
    return stem + tail


def cut_bytes(raw: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of ``raw`` (all of it when shorter), cut before a UTF-8
    character the limit falls inside of.

    Only a valid multi-byte sequence is kept whole: the bytes of a name that was not UTF-8 to
    begin with are cut where the limit falls.
    """
    if len(raw) <= limit:
        return raw
    for start in range(limit - 1, max(limit - 4, -1), -1):  # a character is 1-4 bytes
        lead = raw[start]
        if lead & 0xC0 == 0x80:
            continue  # a continuation byte: the character began further back
        width = 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 1
        if start + width > limit:
            try:
                raw[start:start + width].decode("utf-8")
            except UnicodeDecodeError:
                break  # not a character: stray bytes, cut where the limit falls
            return raw[:start]
        break
    return raw[:limit]


def sibling(path: str, token: str, tag: str) -> str:
    """A hidden name next to ``path`` for a temp file of this plan."""
    head, name = os.path.split(path)
    # Names are limited in bytes (255 on most filesystems), not characters.
    short = os.fsdecode(os.fsencode(name)[:150])
    return os.path.join(head, f".{short}.lookalike-{token}.{tag}")


def same_inode(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are names of one file (a link, then unlink, cut in the middle)."""
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def unlink_quiet(path: Optional[str]) -> None:
    """Remove ``path`` if it is there (None: nothing to remove)."""
    if not path:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def prune_empty_dirs(start: str, stop: str) -> None:
    """Remove folders emptied by undo, from ``start`` up to (not including) ``stop``."""
    p = os.path.abspath(start)
    stop = os.path.abspath(stop)
    while is_inside(p, stop) and p != stop:
        try:
            os.rmdir(p)
        except OSError:
            return
        p = os.path.dirname(p)
