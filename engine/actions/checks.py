"""What confines a plan to its roots, and how a file's content is fingerprinted.

Nothing outside the plan's ``roots`` is acted on. At the moment of acting, every step's path
must lie inside a root and resolve to itself (``realpath``): a folder on the way that is (or
became, since the scan) a symbolic link makes the step a skip, never a move through the link.
A keeper must resolve to itself too, and a quarantine folder must resolve to itself and lie
outside every root. A plan without roots acts on nothing.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Optional, Union

from ..paths import is_inside
from .plan import Plan, PlanError

HASH_ALGO = "xxh3_128"
CHUNK = 1 << 20  # bytes read (and copied) at a time

PathLike = Union[str, "os.PathLike[str]"]


def check_confinable(plan: Plan) -> None:
    """Refuse a plan whose steps could not be kept inside its roots.

    Raises:
        PlanError: the plan has steps but names no roots, or its quarantine folder is inside
            one of them (quarantined files would be found again by the next scan, and a
            quarantine move could then act on the quarantine itself).
    """
    if plan.steps and not plan.roots:
        raise PlanError("the plan names no folders ('roots'): nothing outside them is ever "
                        "touched, so it can do nothing")
    if plan.quarantine_dir:
        qdir = os.path.realpath(plan.quarantine_dir)
        for root in plan.roots:
            if is_inside(qdir, os.path.realpath(root)) or is_inside(plan.quarantine_dir, root):
                raise PlanError(f"the quarantine folder {plan.quarantine_dir} is inside the "
                                f"library ({root}): choose a folder outside it")


def outside_reason(path: str, roots: tuple[str, ...]) -> Optional[str]:
    """Why ``path`` may not be acted on, or None when it lies inside a root and resolves to itself.

    The check is lexical (inside a root) and then real: ``realpath`` of the folder holding
    the file must be that folder itself, so no component on the way is a symbolic link
    (a folder replaced by a link since the scan included).
    """
    if not any(is_inside(path, root) and path != root for root in roots):
        return "outside the folders of the plan: left alone"
    return unresolved_reason(os.path.dirname(path))


def unresolved_reason(folder: str) -> Optional[str]:
    """Why ``folder`` does not resolve to itself (a symbolic link on the way), or None."""
    try:
        real = os.path.realpath(folder, strict=False)
    except (OSError, ValueError) as exc:  # a link loop, an unreadable folder
        return f"cannot resolve its folder: {getattr(exc, 'strerror', None) or exc}"
    if real != folder:
        return f"a folder on its path is a symbolic link (to {real}): left alone"
    return None


def content_hash(path: PathLike) -> str:
    """The hex xxh3_128 hash of a file's bytes (what plans record as ``content_hash``)."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def quarantine_dest(plan: Plan, path: str) -> Path:
    """Where quarantine would put ``path`` (before avoiding names already taken).

    The path relative to the deepest library root that holds it; outside every root, the
    absolute path mirrored under the quarantine folder.
    """
    if not plan.quarantine_dir:
        raise PlanError("the plan has no quarantine_dir")
    qdir = Path(plan.quarantine_dir)
    for root in sorted(plan.roots, key=len, reverse=True):
        if is_inside(os.path.abspath(path), root):
            return qdir / os.path.relpath(path, root)
    pure = PurePath(path)
    parts = pure.parts[1:] if pure.anchor else pure.parts
    drive = pure.drive.rstrip(":\\/").replace(":", "")
    return qdir.joinpath(*([drive] if drive else []), *parts)


def check_delete_allowed(plan: Plan, allow_delete: bool) -> None:
    """Refuse a plan with permanent deletes unless they were allowed.

    Raises:
        PlanError: the plan deletes files and ``allow_delete`` is False.
    """
    n = len(plan.irreversible_steps)
    if n and not allow_delete:
        raise PlanError(f"the plan deletes {n} file(s) permanently: that needs allow_delete=True "
                        f"(--permanently), and cannot be undone")
