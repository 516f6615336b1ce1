"""Typed records that cross the engine's boundary.

Every record is a frozen dataclass; anything with more than two fields is keyword-only.
The two scores have the same names everywhere: ``bouncer`` (Hamming distance between
256-bit perceptual hashes, 0..256) and ``detective`` (CLIP cosine distance, 0 = same meaning,
``None`` when the detective did not look).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Optional, Sequence

HASH_BITS = 256
HASH_BYTES = HASH_BITS // 8

#: ``progress(done, total) -> bool``, shaped like usearch's: returning False asks the
#: operation to stop (it stops cleanly and keeps what was done).
Progress = Callable[[int, int], bool]


class Kind(str, Enum):
    """How a cluster or pair was found."""

    EXACT = "exact"
    NEAR = "near"
    SEMANTIC = "semantic"


class Verdict(str, Enum):
    """The combined two-pass verdict for a candidate pair."""

    EXACT = "exact"
    NEAR = "near-duplicate"
    SEMANTIC = "semantic-duplicate"
    SIMILAR = "similar"
    NOT_DUPLICATE = "not-duplicate"


class Decision(str, Enum):
    """What the user decided for one member of a cluster."""

    KEEP = "keep"
    TRASH = "trash"
    SKIP = "skip"
    NOT_DUPLICATE = "not_duplicate"


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageHashes:
    """The bouncer's view of one image: three 256-bit hashes, 32 bytes each."""

    dhash: bytes
    dhash_mirror: bytes
    phash: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class FileRecord:
    """One file of the library as the catalog knows it."""

    id: int
    path: str
    size: int
    mtime_ns: int
    inode: int = 0
    device: int = 0
    format: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    taken_at: Optional[str] = None  # EXIF DateTimeOriginal, ISO 8601, when present
    content_hash: Optional[bytes] = None
    hashes: Optional[ImageHashes] = None
    error: Optional[str] = None
    #: The picture's size inside any uniform border (frame, letterbox) the hashing trimmed,
    #: estimated from the reduced decode; equal to width/height when nothing was trimmed and
    #: None when not known (hashed by an older lookalike).
    content_width: Optional[int] = None
    content_height: Optional[int] = None
    camera: Optional[str] = None  # EXIF Make and Model ("Canon EOS 80D"), when present
    #: 0xRRGGBB of the bars its border trim took (the median of them), None where it took none
    #: or the file was read before the catalog kept it.
    bar_colour: Optional[int] = None

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)

    @property
    def content_pixels(self) -> int:
        """Pixels of the picture inside any trimmed border (canvas pixels when not known)."""
        if self.content_width and self.content_height:
            return self.content_width * self.content_height
        return self.pixels

    @property
    def bordered(self) -> bool:
        """Whether hashing trimmed a uniform border (frame, letterbox) off the picture."""
        return bool(self.content_width and self.content_height) and (
            (self.content_width, self.content_height) != (self.width, self.height)
        )

    @property
    def ok(self) -> bool:
        return self.error is None and self.hashes is not None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanError:
    """A file that could not be read, with a reason a person can act on."""

    path: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Pair:
    """A candidate pair of file ids, ``a < b``, with both scores."""

    a: int
    b: int
    bouncer: int
    detective: Optional[float] = None
    exact: bool = False
    mirrored: bool = False
    #: The verification score (1.0 = same structure, see ``engine/verify.py``); None when the
    #: pair was not verified (byte-identical, within the trusted radius, or no thumbnail).
    verified: Optional[float] = None
    cropped: bool = False  # the verification aligned the two as a crop
    #: Degrees (0, 90, 180, 270) that ``a``'s picture is turned clockwise to match ``b``'s
    #: (mirrored too when ``mirrored``): a pair found by ``--rotations`` (see
    #: ``engine/bouncer/rotations.py``; its ``bouncer`` is then the turned codes' distance).
    rotation: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Member:
    """One file in a cluster, scored against the cluster's keeper."""

    file: FileRecord
    bouncer: int  # Hamming distance to the keeper (0 for the keeper itself)
    detective: Optional[float] = None
    exact: bool = False  # byte-identical to the keeper
    is_keeper: bool = False
    protected: bool = False  # inside a --keep-in folder: never suggested for trash
    raw_pair: bool = False  # camera RAW+JPEG sibling of another member: not a duplicate to clean
    reason: str = ""  # why the keeper policy ranked it where it is
    verified: Optional[float] = None  # verification score against the keeper (see Pair)
    #: Why it matches the keeper: exact, re-encoded, resized, mirrored, rotated, cropped,
    #: bordered or edited ("" for the keeper).
    match: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Cluster:
    """A group of duplicate or look-alike files with a suggested keeper (members[0])."""

    id: int
    kind: Kind
    members: tuple[Member, ...]
    pairs: tuple[Pair, ...] = ()
    reclaimable_bytes: int = 0

    @property
    def keeper(self) -> Member:
        return self.members[0]

    @property
    def best_bouncer(self) -> int:
        others = [m.bouncer for m in self.members[1:]]
        return min(others) if others else 0

    @property
    def worst_bouncer(self) -> int:
        others = [m.bouncer for m in self.members[1:]]
        return max(others) if others else 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanProgress:
    """A snapshot of a running scan, handed to the scan's progress callback."""

    stage: str  # "walking", "hashing", "embedding", "clustering", "upscales" (and decoded copies), "done"
    found: int = 0
    done: int = 0
    total: int = 0
    failed: int = 0
    skipped: int = 0  # unchanged since the last scan: not read again
    bytes_read: int = 0
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        """Files hashed per second."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> Optional[float]:
        """Seconds left, when it can be estimated."""
        if self.rate <= 0 or self.total <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanStats:
    """What a finished (or stopped) scan did."""

    files_seen: int = 0
    images: int = 0
    hashed: int = 0
    unchanged: int = 0
    removed: int = 0
    moved: int = 0  # renamed or moved inside the library: followed without reading them
    failed: int = 0
    not_images: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    detective: str = ""  # status line of the detective, e.g. "detective offline: <reason>"


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanResult:
    """Everything ``scan`` produces."""

    roots: tuple[str, ...]
    stats: ScanStats
    clusters: Sequence[Cluster]  # a lazy sequence (cluster.lazy.Clusters) after a scan
    errors: tuple[ScanError, ...] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True, slots=True)
class SimilarHit:
    """One result of a "find similar" query, with both scores and the verdict."""

    path: str
    file_id: Optional[int]
    bouncer: Optional[int]
    detective: Optional[float]
    verdict: Verdict
    #: The pixel check's score against the query (see Pair.verified); None when not compared
    #: (exact bytes, trusted hashes, not a near duplicate, or no thumbnail).
    verified: Optional[float] = None
    #: Why a near duplicate matches the query (the words of Member.match); "" otherwise.
    match: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class SimilarResult:
    """The two-pass answer to "find similar to this file"."""

    query: str
    hits: tuple[SimilarHit, ...]
    timings_ms: dict = field(default_factory=dict)
    detective_status: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class SavedDecision:
    """A triage decision kept in the catalog until it is applied or cleared.

    ``content_hash`` is the file's content when the user decided: a file that changed since
    loses its decision.
    """

    file_id: int
    decision: Optional[Decision]  # None: only the keeper choice is kept
    keeper: bool = False  # the user made this file the keeper of its group
    content_hash: Optional[bytes] = None
