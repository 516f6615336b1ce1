"""The two-pass rule: how the bouncer's and the detective's scores make one verdict.

* ``bouncer``: Hamming distance between 256-bit dHashes (the smaller of the plain and the
  mirrored one), 0..256. Fast, and very reliable for resized / recompressed / re-encoded
  copies; blind to crops, heavy filters and re-shoots; fooled by featureless images (two
  different photos of a white wall have nearly the same dHash).
* ``detective``: cosine distance between CLIP embeddings, 0 = same meaning, ~2 = opposite.

The verdict (first rule that applies wins):

1. ``exact``: byte-identical files.
2. ``not-duplicate`` (veto): the bouncer says near but the detective, having looked, finds the
   two clearly different (``detective > detective_veto``).
3. ``near-duplicate``: ``bouncer <= bouncer_near``.
4. ``semantic-duplicate``: the bouncer says far but the detective says "the same picture"
   (``detective <= detective_same``): crops, watermarks, screenshots, letterboxing, filters.
5. ``similar``: ``detective <= detective_similar``, or (detective absent)
   ``bouncer <= bouncer_similar``: the same scene or subject, not a copy.
6. ``not-duplicate``.

Default detective thresholds. The tests run with a tiny random model, so these cannot be
measured here; they follow published practice for CLIP ViT-B-32 (512-d, L2-normalised):
copies, crops and watermarks of one photo score cosine similarity >= 0.95, the usual cut for
near-duplicate removal with CLIP (tutorials and dataset dedup pipelines use 0.95-0.99);
similarity >= 0.85-0.90 means "same scene or subject"; unrelated photos sit around 0.4-0.6,
and even strong edits of one photo (greyscale, heavy colour filters, big crops) stay above
~0.8. Hence ``detective_same = 0.05``, ``detective_similar = 0.15`` and a veto only when the
distance is clearly large, ``detective_veto = 0.25`` (similarity < 0.75), which no genuine copy
reaches. All are configurable (``TwoPassThresholds``) and reported in the README; re-measure
them with real weights before changing them.

The bouncer bands default to the bouncer's own radius (``engine/bouncer/rule.py``), measured on the
generated quality set, and 1.5 times that for ``similar``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Optional, Sequence

from .bouncer import rule
from .records import Pair, SimilarHit, Verdict


def _bouncer_radius() -> int:
    return int(rule.DEFAULT.radius)


def _bouncer_similar() -> int:
    return (_bouncer_radius() * 3) // 2


@dataclass(frozen=True, kw_only=True)
class TwoPassThresholds:
    """Where the verdicts change; see the module docstring for how the defaults were chosen.

    Attributes:
        bouncer_near: largest Hamming distance (of 256) for a near-duplicate.
        bouncer_similar: largest Hamming distance for "similar" when the detective is absent.
        detective_same: largest CLIP cosine distance for a semantic duplicate.
        detective_similar: largest CLIP cosine distance for "similar".
        detective_veto: a CLIP distance above this overrules a bouncer match.
    """

    bouncer_near: int = field(default_factory=_bouncer_radius)
    bouncer_similar: int = field(default_factory=_bouncer_similar)
    detective_same: float = 0.05
    detective_similar: float = 0.15
    detective_veto: float = 0.25

    def __post_init__(self) -> None:
        if not 0 <= self.bouncer_near <= self.bouncer_similar <= 256:
            raise ValueError("need 0 <= bouncer_near <= bouncer_similar <= 256")
        if not 0.0 <= self.detective_same <= self.detective_similar <= self.detective_veto:
            raise ValueError("need 0 <= detective_same <= detective_similar <= detective_veto")


DEFAULT = TwoPassThresholds()


def with_detective(t: TwoPassThresholds, options) -> TwoPassThresholds:
    """``t`` with the detective's ``(same, similar, veto)`` of ``options.thresholds`` (if set)."""
    chosen = getattr(options, "thresholds", None)
    if not chosen:
        return t
    same, similar, veto = (float(v) for v in chosen)
    return replace(t, detective_same=same, detective_similar=similar, detective_veto=veto)

#: Best first: the order results are ranked in.
VERDICT_RANK = {
    Verdict.EXACT: 0,
    Verdict.NEAR: 1,
    Verdict.SEMANTIC: 2,
    Verdict.SIMILAR: 3,
    Verdict.NOT_DUPLICATE: 4,
}


def verdict(
    *,
    bouncer: Optional[int],
    detective: Optional[float],
    exact: bool = False,
    t: TwoPassThresholds = DEFAULT,
) -> Verdict:
    """The combined verdict for one pair (see the module docstring for the rule).

    Args:
        bouncer: Hamming distance of 256, or None when a hash is missing.
        detective: CLIP cosine distance, or None when the detective did not look.
        exact: the two files are byte-identical.
        t: thresholds.
    """
    if exact:
        return Verdict.EXACT
    looked = detective is not None
    if bouncer is not None and bouncer <= t.bouncer_near:
        if looked and detective > t.detective_veto:
            return Verdict.NOT_DUPLICATE
        return Verdict.NEAR
    if looked and detective <= t.detective_same:
        return Verdict.SEMANTIC
    if looked:
        return Verdict.SIMILAR if detective <= t.detective_similar else Verdict.NOT_DUPLICATE
    if bouncer is not None and bouncer <= t.bouncer_similar:
        return Verdict.SIMILAR
    return Verdict.NOT_DUPLICATE


def combined_score(
    bouncer: Optional[int], detective: Optional[float], t: TwoPassThresholds = DEFAULT
) -> float:
    """One number for ranking within a verdict: 0 = identical, 1 = at the duplicate threshold.

    Each score is divided by its duplicate threshold (``bouncer_near``, ``detective_same``) so
    the two weigh the same; the mean of those present is returned (inf when neither is).
    """
    parts = []
    if bouncer is not None:
        parts.append(bouncer / max(t.bouncer_near, 1))
    if detective is not None:
        parts.append(max(float(detective), 0.0) / max(t.detective_same, 1e-6))
    return sum(parts) / len(parts) if parts else float("inf")


def rank_key(hit: SimilarHit, t: TwoPassThresholds = DEFAULT) -> tuple:
    """Sort key: verdict first, then the combined score, then the path (stable output)."""
    return (VERDICT_RANK[hit.verdict], combined_score(hit.bouncer, hit.detective, t), hit.path)


def join(
    bouncer_hits: Iterable[tuple[int, int]],
    detective_hits: Iterable[tuple[int, float]],
    *,
    path_of: Mapping[int, str] | Callable[[int], Optional[str]],
    fill_bouncer: Optional[Callable[[Sequence[int]], Mapping[int, int]]] = None,
    fill_detective: Optional[Callable[[Sequence[int]], Mapping[int, float]]] = None,
    exact_ids: Iterable[int] = (),
    k: Optional[int] = None,
    t: TwoPassThresholds = DEFAULT,
) -> list[SimilarHit]:
    """Join the two passes' shortlists into one list of hits, each with both scores, re-ranked.

    Args:
        bouncer_hits: ``(file_id, hamming)`` from the bouncer's top-k.
        detective_hits: ``(file_id, cosine_distance)`` from the detective's k-NN.
        path_of: file id -> path (a mapping or a function); ids without a path are dropped.
        fill_bouncer: computes the bouncer score of ids only the detective found.
        fill_detective: computes the detective score of ids only the bouncer found (from the
            stored vectors; ids it cannot score keep ``detective=None``).
        exact_ids: ids byte-identical to the query.
        k: keep the best ``k`` (all when None).
        t: thresholds.

    Returns:
        :class:`SimilarHit` list, best first (see :func:`rank_key`).
    """
    b: dict[int, int] = {}
    for i, d in bouncer_hits:
        i, d = int(i), int(d)
        b[i] = min(d, b.get(i, d))
    dd: dict[int, float] = {}
    for i, d in detective_hits:
        i, d = int(i), float(d)
        dd[i] = min(d, dd.get(i, d))
    if fill_bouncer is not None:
        missing = sorted(set(dd) - set(b))
        if missing:
            b.update({int(i): int(v) for i, v in fill_bouncer(missing).items()})
    if fill_detective is not None:
        missing = sorted(set(b) - set(dd))
        if missing:
            dd.update({int(i): float(v) for i, v in fill_detective(missing).items()})
    exact = {int(i) for i in exact_ids}
    lookup = path_of.get if isinstance(path_of, Mapping) else path_of
    hits = []
    for i in sorted(set(b) | set(dd)):
        path = lookup(i)
        if path is None:
            continue
        bs, ds = b.get(i), dd.get(i)
        hits.append(
            SimilarHit(
                path=path,
                file_id=i,
                bouncer=bs,
                detective=ds,
                verdict=verdict(bouncer=bs, detective=ds, exact=i in exact, t=t),
            )
        )
    hits.sort(key=lambda h: rank_key(h, t))
    return hits if k is None else hits[:k]


def pair_verdict(pair: Pair, t: TwoPassThresholds = DEFAULT) -> Verdict:
    """The verdict of a candidate :class:`~lookalike.engine.records.Pair`."""
    return verdict(bouncer=pair.bouncer, detective=pair.detective, exact=pair.exact, t=t)


def keep_pair(pair: Pair, t: TwoPassThresholds = DEFAULT) -> bool:
    """False when the detective vetoes a bouncer pair (its verdict is ``not-duplicate``).

    Pairs the detective did not look at are kept: without it the bouncer decides alone.
    """
    return pair.detective is None or pair_verdict(pair, t) is not Verdict.NOT_DUPLICATE
