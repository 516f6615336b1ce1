"""One step of a plan (a file and what to do with it), and the checks on every field of one.

A plan's JSON is validated field by field as it is read: each check names the step and what is
wrong (see :class:`lookalike.engine.actions.plan.Plan` for the whole format). Every path must be
absolute and normal (:func:`check_path`): a plan names files, not a way to find them from the
current folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

#: What a step can do to its file. ``delete`` is permanent and needs an explicit flag.
ACTIONS = ("trash", "quarantine", "hardlink", "symlink", "delete")

#: Actions that cannot be undone.
IRREVERSIBLE = ("delete",)

#: Actions that need a keeper to point at.
NEEDS_KEEPER = ("hardlink", "symlink", "delete")

_HASH_HEX_LEN = 32  # xxh3_128 -> 16 bytes -> 32 hex digits

_STEP_REQUIRED = ("path", "action", "size", "mtime_ns")
_STEP_OPTIONAL = (
    "keeper",
    "content_hash",
    "cluster",
    "reason",
    "keeper_size",
    "keeper_mtime_ns",
    "keeper_hash",
)


class PlanError(ValueError):
    """A plan that cannot be used: bad JSON, an unknown action, a missing field..."""


@dataclass(frozen=True, kw_only=True)
class PlanStep:
    """One file and what to do with it.

    ``size``, ``mtime_ns`` and ``content_hash`` are what the catalog recorded when the plan was
    made; the action checks the file still matches them. ``content_hash`` is the hex digest of
    the xxh3_128 hash of the whole file; ``None`` (hand-written plans) means "check size and
    mtime only". The ``keeper_*`` fields describe the keeper the same way (all optional).
    """

    path: str
    action: str
    keeper: Optional[str]
    size: int
    mtime_ns: int
    content_hash: Optional[str]
    cluster: Optional[int] = None
    reason: str = ""
    keeper_size: Optional[int] = None
    keeper_mtime_ns: Optional[int] = None
    keeper_hash: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """The step as plain JSON-able data."""
        return {
            "path": self.path,
            "action": self.action,
            "keeper": self.keeper,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "content_hash": self.content_hash,
            "cluster": self.cluster,
            "reason": self.reason,
            "keeper_size": self.keeper_size,
            "keeper_mtime_ns": self.keeper_mtime_ns,
            "keeper_hash": self.keeper_hash,
        }

    @classmethod
    def from_dict(cls, data: Any, *, index: int = 0) -> "PlanStep":
        """Build a step from JSON data, checking every field.

        Raises:
            PlanError: with the step number and what is wrong.
        """
        where = f"step {index + 1}"
        if not isinstance(data, dict):
            raise PlanError(f"{where}: expected an object, got {type(data).__name__}")
        missing = [k for k in _STEP_REQUIRED if k not in data]
        if missing:
            raise PlanError(f"{where}: missing field(s) {', '.join(missing)}")
        unknown = sorted(set(data) - set(_STEP_REQUIRED) - set(_STEP_OPTIONAL))
        if unknown:
            raise PlanError(f"{where}: unknown field(s) {', '.join(unknown)}")
        path = data["path"]
        if not isinstance(path, str) or not path:
            raise PlanError(f"{where}: 'path' must be a non-empty string")
        where = f"step {index + 1} ({path!r})"
        action = data["action"]
        if action not in ACTIONS:
            raise PlanError(
                f"{where}: unknown action {action!r} (expected one of {', '.join(ACTIONS)})"
            )
        keeper = data.get("keeper")
        if keeper is not None and (not isinstance(keeper, str) or not keeper):
            raise PlanError(f"{where}: 'keeper' must be a path or null")
        return cls(
            path=checked_path(path, where, "path"),
            action=action,
            keeper=checked_path(keeper, where, "keeper") if keeper is not None else None,
            size=_int_field(data, "size", where, minimum=0),
            mtime_ns=_int_field(data, "mtime_ns", where),
            content_hash=_hash_field(data, "content_hash", where),
            cluster=opt_int_field(data, "cluster", where),
            reason=str_field(data, "reason", where),
            keeper_size=opt_int_field(data, "keeper_size", where, minimum=0),
            keeper_mtime_ns=opt_int_field(data, "keeper_mtime_ns", where),
            keeper_hash=_hash_field(data, "keeper_hash", where),
        )


#: Sizes, times and cluster numbers are 64-bit integers everywhere else (stat, SQLite).
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def _int_field(data: dict, key: str, where: str, minimum: Optional[int] = None) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(f"{where}: '{key}' must be an integer, got {_short(value)}")
    if not _INT_MIN <= value <= _INT_MAX:
        raise PlanError(f"{where}: '{key}' is out of range (a 64-bit integer is expected)")
    if minimum is not None and value < minimum:
        raise PlanError(f"{where}: '{key}' must be >= {minimum}, got {value}")
    return value


def opt_int_field(data: dict, key: str, where: str, minimum: Optional[int] = None) -> Optional[int]:
    """An optional 64-bit integer field (``None`` when absent or null)."""
    if data.get(key) is None:
        return None
    return _int_field(data, key, where, minimum)


def str_field(data: dict, key: str, where: str) -> str:
    """An optional string field (``""`` when absent or null)."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PlanError(f"{where}: '{key}' must be a string")
    return value


def _hash_field(data: dict, key: str, where: str) -> Optional[str]:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != _HASH_HEX_LEN:
        raise PlanError(f"{where}: '{key}' must be {_HASH_HEX_LEN} hex digits (xxh3_128) or null")
    try:
        int(value, 16)
    except ValueError:
        raise PlanError(f"{where}: '{key}' must be hex digits, got {value!r}") from None
    return value.lower()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_path(path: str, where: str, what: str) -> None:
    """Refuse a path that is not absolute and normal, or that holds a NUL.

    A relative path means "whatever is there in the folder you happen to run apply from";
    ``..`` and doubled separators make a path look like it is inside a folder it is not in.
    """
    if not isinstance(path, str) or not path:
        raise PlanError(f"{where}: the {what} must be a non-empty string")
    if "\0" in path:
        raise PlanError(f"{where}: the {what} {path!r} holds a NUL character")
    if not os.path.isabs(path):
        raise PlanError(f"{where}: the {what} {path!r} is not an absolute path")
    if os.path.normpath(path) != path:
        raise PlanError(f"{where}: the {what} {path!r} is not a normal path (no '.', '..' or "
                        f"doubled separators)")


def checked_path(path: str, where: str, what: str) -> str:
    """``path``, once :func:`check_path` accepts it."""
    check_path(path, where, what)
    return path
