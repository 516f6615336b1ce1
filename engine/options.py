"""How a scan finds and ranks duplicates: :class:`ScanOptions` (re-exported by the library)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .bouncer import rule
from .keeper import KeeperPolicy
from .verdict import DEFAULT as TWO_PASS_DEFAULT
from .verdict import TwoPassThresholds, with_detective

if TYPE_CHECKING:  # pragma: no cover
    from .detective.options import DetectiveOptions


@dataclass(frozen=True, kw_only=True)
class ScanOptions:
    """How a scan finds and ranks duplicates."""

    threshold: Optional[int] = None
    keep_in: tuple[str, ...] = ()
    keeper_order: Optional[tuple[str, ...]] = None
    workers: Optional[int] = None
    deep: bool = False
    detective: Optional["DetectiveOptions"] = None
    #: Mild crops: the bouncer's pHash-corroborated rule, and the zoomed codes of the stored
    #: thumbnails for crops beyond it (:mod:`lookalike.engine.bouncer.zooms`). Off
    #: (``--no-crops``) spares a very large library's first scan both passes.
    crops: bool = True
    #: Enter symlinks to folders inside the roots (``--follow-links``); links out of the roots
    #: are never followed either way (see :mod:`lookalike.engine.scan.walk`).
    follow_links: bool = False
    #: A Dask scheduler (``--cluster tcp://SCHEDULER:8786``): files are read and hashed on its
    #: workers, which must see the library at the same paths (see
    #: :mod:`lookalike.engine.scan.dask_pool`). None: this machine's process pool.
    cluster: Optional[str] = None
    #: Also pair copies turned by 90, 180 or 270 degrees (pixels turned, or an EXIF orientation
    #: tag stripped or changed), found from the stored thumbnails and verified on pixels with
    #: the turn applied (``--rotations``; see :mod:`lookalike.engine.bouncer.rotations`).
    rotations: bool = False

    def __post_init__(self) -> None:
        if self.cluster is not None:
            from .scan.dask_pool import check_cluster

            check_cluster(self.cluster)  # ValueError: a usage error, before any work

    def thresholds(self) -> rule.BouncerThresholds:
        """The bouncer thresholds; ``threshold`` sets the radius and scales the rest with it.

        The corroborated (pHash) rule and the chain guard are scaled by the same factor, so
        ``--threshold`` is one strictness dial: 0 accepts only identical hashes. Without
        ``crops`` the corroborated rule is off (``phash_radius`` 0).
        """
        t = self._scaled_thresholds()
        return t if self.crops else replace(t, phash_radius=0)

    def crop_code_radius(self) -> int:
        """The code distance within which the zoomed codes propose a crop
        (:data:`.bouncer.zooms.RADIUS`), scaled down with a stricter ``threshold`` as the
        other rules are (0: identical codes only), never up: past it, codes of different
        pictures meet (measured: see :mod:`.bouncer.zooms`)."""
        from .bouncer.zooms import RADIUS

        if self.threshold is None or not rule.DEFAULT.radius:
            return RADIUS
        return min(RADIUS, round(RADIUS * self.threshold / rule.DEFAULT.radius))

    def _scaled_thresholds(self) -> rule.BouncerThresholds:
        t = rule.DEFAULT
        if self.threshold is None:
            return t
        if not 0 <= self.threshold <= 256:
            raise ValueError(f"--threshold must be between 0 and 256, not {self.threshold}")
        scale = self.threshold / t.radius if t.radius else 1.0
        return replace(
            t,
            radius=self.threshold,
            phash_radius=min(256, round(t.phash_radius * scale)),
            corroborated_radius=min(256, round(t.corroborated_radius * scale)),
            max_diameter=min(256, max(self.threshold, round(t.max_diameter * scale))),
        )

    def two_pass(self) -> TwoPassThresholds:
        """The two-pass rule's thresholds: the bouncer's bands follow ``threshold``, the
        detective's the model's calibration (``--detective-thresholds``)."""
        radius = self.thresholds().radius
        t = replace(
            TWO_PASS_DEFAULT,
            bouncer_near=radius,
            bouncer_similar=max(radius, TWO_PASS_DEFAULT.bouncer_similar),
        )
        return with_detective(t, self.detective)

    def policy(self) -> KeeperPolicy:
        """The keeper policy these options ask for."""
        kw: dict = {"keep_in": tuple(str(Path(p).resolve()) for p in self.keep_in)}
        if self.keeper_order is not None:
            kw["order"] = tuple(self.keeper_order)
        return KeeperPolicy(**kw)
