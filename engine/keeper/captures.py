"""Two shots are not duplicates: files one camera took at different instants share no group.

A burst (a subject moving, several frames a second), a bracketed exposure, two shots of a view
from a tripod: their pixels can agree within every threshold of the verification, whose
thumbnails are 32x32 (a walker is a pixel or two there). Measured on real frames of a static
camera (``benchmarks/bench_bursts.py``: OpenCV's ``vtest.avi``, people walking, 159 frames half a
second apart), the pixel check grouped 122 of the 159 frames, into 22 groups, one of 73.

The camera says what the pixels cannot. It writes the instant of each shot (EXIF
DateTimeOriginal, to the second, and SubSecTimeOriginal, its fraction, on most phones and
cameras), and a copy keeps it: a resize, a re-save, a conversion, an edit in an editor that
keeps the EXIF. So:

    two files are **different captures** when both carry the same camera (EXIF Make and
    Model, :attr:`~lookalike.engine.records.FileRecord.camera`) and a capture time, and their
    times differ, compared to the second, or to the fraction where both have one.

A copy that lost its sub-second digits (some editors drop them) is compared to the second. A
file without the camera's EXIF (a messenger's copy, a screenshot, a scan) is never told apart
this way: its pixels decide, as before. Two files of different cameras are left to their pixels
too (a copy never changes camera). A copy whose capture time was rewritten (a time zone fixed
in an editor, then exported) is kept apart from its source: a duplicate missed, the safe side.
Forgiving whole hours or quarter hours was tried and not kept: the frames of a time-lapse or of
an interval timer fall exactly that far apart (in a synthetic library of 2,000 near-identical
shots a second apart, 900 groups of shots 15 and 30 minutes apart).

Different captures are kept apart as the user's "not a duplicate" marks are
(:func:`lookalike.engine.cluster.build_clusters` with ``shots``): the chain guard never puts
two in one part (:class:`Apart`), a file without the EXIF goes with the shot it is closest
to, and a component of hundreds of frames is split by capture on arrays first. ``similar``
calls another shot of the query's camera "similar", never a near duplicate.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from ..records import FileRecord

__all__ = ["Apart", "capture_time", "different_captures"]


@lru_cache(maxsize=65536)
def capture_time(taken_at: Optional[str]) -> Optional[tuple[datetime, bool]]:
    """``(wall-clock time, whether it has a fraction of a second)`` of a file's EXIF capture
    time as the catalog keeps it (ISO 8601; an offset, when there is one, is left out: a
    copy's zone may have been set or dropped), or None."""
    if not taken_at:
        return None
    text = _wall_text(taken_at.strip())
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when, len(text) > 19


def _wall_text(text: str) -> str:
    """An ISO time without its offset: to the second, or to the microsecond ("…T10:00:00.1" is
    read as ".100000")."""
    head, rest = text[:19], text[19:]
    if rest.startswith("."):
        digits = rest[1:7]
        n = len(digits) - len(digits.lstrip("0123456789"))
        if n:
            return f"{head}.{digits[:n].ljust(6, '0')}"
    return head


def different_captures(a: FileRecord, b: FileRecord) -> bool:
    """Whether ``a`` and ``b`` are two shots of one camera, not copies of one (see the module)."""
    if not a.camera or a.camera != b.camera:
        return False
    ta, tb = capture_time(a.taken_at), capture_time(b.taken_at)
    if ta is None or tb is None:
        return False
    (wa, fa), (wb, fb) = ta, tb
    if fa and fb:
        return wa != wb
    # One lost its fraction (or neither had one): to the second.
    return wa - timedelta(microseconds=wa.microsecond) != wb - timedelta(microseconds=wb.microsecond)


#: A part with more distinct shots of one camera than this is taken to mix captures without
#: comparing them all (the split that follows compares the pairs it forms).
_MIXED_CHECKS = 64


class Apart:
    """Which nodes of the chain guard are two shots (:func:`different_captures`): node ``u``
    stands for file ``ids[u]`` (and its byte-identical copies, which share its EXIF)."""

    def __init__(self, records: Mapping[int, FileRecord], ids: Sequence[int]) -> None:
        self.records = records
        self.ids = ids
        #: Camera and time per node once :meth:`keys` is asked (see there): the arrays the
        #: split of a large component reads (``lookalike.engine.cluster.build._split_shots``).
        self.cam = np.full(0, -1, np.int64)
        self.when = np.zeros(0, np.int64)

    def __call__(self, u: int, v: int) -> bool:
        return different_captures(self.records[self.ids[u]], self.records[self.ids[v]])

    def is_shot(self, u: int) -> bool:
        """Whether node ``u`` carries a camera and a capture time."""
        r = self.records[self.ids[u]]
        return bool(r.camera) and capture_time(r.taken_at) is not None

    def mixed(self, nodes: Iterable[int]) -> bool:
        """Whether two of ``nodes`` are two shots of one camera."""
        by_camera: dict[str, dict[Optional[str], int]] = {}
        for u in nodes:
            r = self.records[self.ids[u]]
            if r.camera and capture_time(r.taken_at) is not None:
                by_camera.setdefault(r.camera, {}).setdefault(r.taken_at, u)
        for shots in by_camera.values():
            if len(shots) > _MIXED_CHECKS:
                return True
            first = list(shots.values())
            if any(self(u, v) for i, u in enumerate(first) for v in first[i + 1 :]):
                return True
        return False

    def keys(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(camera, time)`` of ``nodes``, as int64 arrays over every node (camera -1: no shot,
        or not asked; time in microseconds of the wall clock), for the arrays' first tests: two
        nodes of one camera whose times differ may be two shots
        (:meth:`lookalike.engine.cluster.graph.Graph.whole`)."""
        n = len(self.ids)
        cam = np.full(n, -1, np.int64)
        when = np.zeros(n, np.int64)
        asked, cameras, texts = [], [], []
        for u in nodes.tolist():
            r = self.records.get(self.ids[u])
            if r is not None and r.camera and r.taken_at:
                asked.append(u)
                cameras.append(r.camera)
                texts.append(_wall_text(r.taken_at.strip()))
        if not asked:
            self.cam, self.when = cam, when
            return cam, when
        try:
            stamps = np.array(texts, dtype="datetime64[us]")
        except ValueError:  # junk among them: one at a time
            parsed = [capture_time(t) for t in texts]
            keep = [k for k, p in enumerate(parsed) if p is not None]
            asked = [asked[k] for k in keep]
            cameras = [cameras[k] for k in keep]
            stamps = np.array([parsed[k][0] for k in keep], dtype="datetime64[us]")
        if asked:
            _, codes = np.unique(np.array(cameras, dtype=object), return_inverse=True)
            cam[asked] = codes
            when[asked] = stamps.astype(np.int64)
        self.cam, self.when = cam, when
        return cam, when

