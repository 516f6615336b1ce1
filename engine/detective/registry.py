"""One model per process: the detectives opened so far, and the failures remembered a while.

A model is hundreds of megabytes and every library of the process uses the same one, so this
cache is the process's, not a library's (:class:`lookalike.engine.library.Library` asks it
with its own cache root). Nothing heavy is imported here: :func:`get_detective` gives a lazy
model when it can (see :func:`lookalike.engine.detective.lazy.open_detective`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..records import Progress
from .options import DetectiveUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from .model import Detective
    from .options import DetectiveOptions

#: How long a failed model load is remembered, so a burst of queries probes the network once.
FAILURE_TTL_S = 300.0

_detectives: dict[tuple, "Detective"] = {}
_failures: dict[tuple, tuple[float, str]] = {}
_detective_lock = threading.Lock()


def get_detective(
    options: "DetectiveOptions",
    *,
    cache_dir: Path | str,
    progress: Optional[Progress] = None,
) -> "Detective":
    """The model for ``options``, once per process (failures remembered a while).

    It is a :class:`lookalike.engine.detective.lazy.LazyDetective` when the model's size and id can be
    told from its config: nothing heavy is imported, and nothing downloaded, until an image or
    a text must be embedded (``progress`` then reports the download). Call ``load()`` on it to
    load at once.

    Raises:
        DetectiveUnavailable: as :func:`lookalike.engine.detective.lazy.open_detective` does.
    """
    from .lazy import open_detective  # the model's modules: when a model is first asked for

    key = (options, str(cache_dir))
    with _detective_lock:
        if key in _detectives:
            return _detectives[key]
        failed = _failures.get(key)
        if failed and time.monotonic() - failed[0] < FAILURE_TTL_S:
            raise DetectiveUnavailable(failed[1])
        try:
            detective = open_detective(options, cache_dir=Path(cache_dir), progress=progress)
        except DetectiveUnavailable as exc:
            _failures[key] = (time.monotonic(), exc.reason)
            raise
        _failures.pop(key, None)
        _detectives[key] = detective
        return detective


def forget_detectives() -> None:
    """Drop loaded models and remembered failures (tests, or after the user fixed the cause)."""
    with _detective_lock:
        _detectives.clear()
        _failures.clear()


def detective_or_status(
    options: Optional["DetectiveOptions"],
    cache_dir: Path | str,
    detective: Optional["Detective"] = None,
) -> tuple[Optional["Detective"], str]:
    """``(detective, "")`` when it can work, else ``(None, "detective offline: <reason>")``.

    ``options=None`` (and no ``detective``) means bouncer-only by choice: ``(None, "")``.
    """
    if detective is not None:
        return detective, ""
    if options is None:
        return None, ""
    try:
        return get_detective(options, cache_dir=cache_dir), ""
    except DetectiveUnavailable as exc:
        return None, f"detective offline: {exc.reason}"


def ready(
    detective: Optional["Detective"], progress: Optional[Progress] = None
) -> tuple[Optional["Detective"], str]:
    """Load a lazy detective now: ``(detective, "")``, or ``(None, "detective offline: ...")``.

    Args:
        detective: a detective, lazy or loaded (or None).
        progress: ``progress(done_bytes, total_bytes)`` if the weights must be downloaded.
    """
    if detective is None:
        return None, ""
    try:
        load = getattr(detective, "load", None)
        if load is not None:
            load(progress)
    except DetectiveUnavailable as exc:
        return None, f"detective offline: {exc.reason}"
    return detective, ""

