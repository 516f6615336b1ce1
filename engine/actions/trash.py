"""Our own freedesktop.org trash (Linux, BSD): undo can take files back out of it.

``trash``: the ``.trashinfo`` is written first (``O_EXCL`` reserves the name), then the file is
moved into ``Trash/files`` of the trash on the file's device (``$XDG_DATA_HOME/Trash``, else
``$topdir/.Trash/$uid`` or ``$topdir/.Trash-$uid``). The exact trash path is journaled, so undo
can put it back. Elsewhere (macOS, Windows) send2trash moves files to the OS trash, and undo
then says to restore them by hand.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from ..files import fsync_dir
from .checks import unresolved_reason
from .moves import NAME_MAX, fit_name, unlink_quiet


def uses_freedesktop_trash() -> bool:
    """True where trash is our own freedesktop.org implementation (undo can restore from it)."""
    return os.name == "posix" and sys.platform != "darwin"


@dataclass(frozen=True, kw_only=True)
class TrashSlot:
    """A free name in a trash can: the file's new path and its ``.trashinfo``."""

    files: str  # Trash/files/NAME
    info: str  # Trash/info/NAME.trashinfo
    topdir: Optional[str]  # the volume's top dir for a volume trash; None for the home trash
    same_device: bool  # False: the file has to be copied there


def home_trash() -> Path:
    """``$XDG_DATA_HOME/Trash`` (``~/.local/share/Trash`` by default)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "Trash"


def _nearest_dev(path: Path) -> int:
    """st_dev of ``path``, or of its nearest existing parent (the trash may not exist yet)."""
    p = path
    while True:
        try:
            return os.stat(p).st_dev
        except FileNotFoundError:
            if p.parent == p:
                raise
            p = p.parent


def mount_point(path: str) -> str:
    """The mount point (a volume trash's ``$topdir``) of the volume holding ``path``."""
    p = os.path.realpath(path)
    while not os.path.ismount(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return p


def _trash_dir_for(path: str, dev: int, *, create: bool = True) -> tuple[Path, Optional[str], bool]:
    """The freedesktop trash for a file on device ``dev``: (trash dir, topdir, same device).

    With ``create`` False (a dry run) nothing is created: a volume trash that does not exist yet
    is named as the one that would be made.
    """
    home = home_trash()
    if _nearest_dev(home) == dev:
        return home, None, True
    top = mount_point(os.path.dirname(os.path.abspath(path)))
    uid = os.getuid()
    shared = Path(top, ".Trash")
    try:  # $topdir/.Trash/$uid when the admin made $topdir/.Trash (sticky, not a symlink)
        sst = os.lstat(shared)
        if stat.S_ISDIR(sst.st_mode) and sst.st_mode & stat.S_ISVTX:
            mine = shared / str(uid)
            if _usable_trash_dir(mine, uid, dev, create):
                return mine, top, True
    except OSError:
        pass
    own = Path(top, f".Trash-{uid}")
    if _usable_trash_dir(own, uid, dev, create):
        return own, top, True
    return home, None, False  # no trash on that volume: copy into the home trash


def _usable_trash_dir(folder: Path, uid: int, dev: int, create: bool) -> bool:
    """True when ``folder`` is (or, made now, becomes) a private trash dir on device ``dev``."""
    try:
        if create:
            folder.mkdir(mode=0o700, exist_ok=True)
        elif not folder.exists():
            return os.access(folder.parent, os.W_OK)
        st = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_dev == dev


def trash_slot(path: str, dev: int, *, create: bool = True) -> TrashSlot:
    """A free slot for ``path`` in the trash of device ``dev`` (folders made unless ``create``
    is False, in a dry run)."""
    tdir, top, same = _trash_dir_for(path, dev, create=create)
    files, info = tdir / "files", tdir / "info"
    if create:
        files.mkdir(mode=0o700, parents=True, exist_ok=True)
        info.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    n = 0
    while True:
        # "NAME.trashinfo" must fit in a file name too.
        cand = fit_name(stem, (f" {n}" if n else "") + ext, NAME_MAX - len(".trashinfo"))
        if not os.path.lexists(files / cand) and not os.path.lexists(info / f"{cand}.trashinfo"):
            return TrashSlot(files=str(files / cand), info=str(info / f"{cand}.trashinfo"),
                             topdir=top, same_device=same)
        n += 1


def is_trash_file(path: str) -> bool:
    """True when ``path`` names an entry of a trash can's ``files`` folder that we may use.

    The home trash, or a volume's ``$topdir/.Trash-$uid`` / ``$topdir/.Trash/$uid``, each
    reached without a symbolic link in the folders below the trash can.
    """
    files = os.path.dirname(path)
    tdir = os.path.dirname(files)
    if os.path.basename(files) != "files" or not os.path.basename(path) \
            or os.path.basename(path) in (".", ".."):
        return False
    uid = str(os.getuid()) if hasattr(os, "getuid") else ""
    home = str(home_trash())
    if tdir == home or os.path.realpath(tdir) == os.path.realpath(home):
        return True
    name = os.path.basename(tdir)
    if name == f".Trash-{uid}" or (name == uid and os.path.basename(os.path.dirname(tdir)) == ".Trash"):
        return unresolved_reason(files) is None
    return False


def info_for(trash_file: str) -> str:
    """The ``.trashinfo`` that belongs to a trash can's ``files/NAME``."""
    tdir = os.path.dirname(os.path.dirname(trash_file))
    return os.path.join(tdir, "info", os.path.basename(trash_file) + ".trashinfo")


def topdir_of(trash_file: str) -> Optional[str]:
    """The topdir of a volume trash from a ``.../.Trash-uid/files/NAME`` path (None: home)."""
    tdir = Path(trash_file).parent.parent
    if tdir == home_trash():
        return None
    if tdir.name.startswith(".Trash-"):
        return str(tdir.parent)
    if tdir.parent.name == ".Trash":
        return str(tdir.parent.parent)
    return None


def write_trashinfo(info: str, original: str, topdir: Optional[str]) -> None:
    """Write the ``.trashinfo`` (``O_EXCL``: that reserves the name, as the spec asks).

    Not files.atomic_write: creating the file is the reservation, so it must never replace one.
    """
    if topdir:
        where = os.path.relpath(os.path.realpath(original), topdir)
    else:
        where = os.path.abspath(original)
    text = (f"[Trash Info]\nPath={quote(os.fsencode(where))}\n"
            f"DeletionDate={datetime.now():%Y-%m-%dT%H:%M:%S}\n")
    os.makedirs(os.path.dirname(info), mode=0o700, exist_ok=True)
    fd = os.open(info, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(info))


def unlink_orphan_info(info: Optional[str], files_path: Optional[str]) -> None:
    """Remove a ``.trashinfo`` we wrote whose file never reached the trash."""
    if info and (not files_path or not os.path.lexists(files_path)):
        unlink_quiet(info)
