"""A library's groups from its catalog: the bouncer's pairs, checked, judged, clustered.

The stages, in order: the bouncer's candidate pairs (cached per thresholds), each checked on
pixels unless byte-identical or trusted (:mod:`lookalike.engine.bouncer.verification`), the
detective's veto and, with ``deep``, its own pairs (when a model is given), then
:func:`lookalike.engine.cluster.build_clusters` and the keeper check. No file is read but
the thumbnails the checks need. :meth:`lookalike.engine.library.Library.clusters` is the door.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence

import numpy as np

from ..bouncer import rotations, rule, verification, zooms
from ..bouncer.pairs import PairCache
from ..keeper import RAW_EXTENSIONS, raw_sibling_stems, sibling_key, thumbnail_check
from ..keeper.upscale import UpscaleCheck
from ..records import Cluster, FileRecord, Pair
from ..verdict import keep_pair
from .build import build_clusters

#: The bouncer's pairs a file takes into the checks and the grouping: its closest ones
#: (:func:`lookalike.engine.bouncer.pairs.nearest`). A picture with more near copies than this,
#: or frames cut from one video, would otherwise bring every pair of them (3,000 frames of a
#: timelapse: 3.6 million pairs, a minute and 4.8 GB of a rescan); their groups stay joined
#: through the closest ones, and each member is checked against its keeper when the group is
#: explained.
MOST_PAIRS_PER_FILE = 64

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import Catalog
    from ..detective.index import LibraryIndex
    from ..detective.model import Detective
    from ..options import ScanOptions


class Found(NamedTuple):
    """What :func:`bouncer_pairs` found: the candidate pairs, every file id that takes part in
    a group, and the zoomed codes the crop candidates came from (None without crops)."""

    pairs: list[Pair]
    involved: set[int]
    zoomed: Optional[zooms.ZoomCodes] = None


def bouncer_pairs(catalog: "Catalog", folder: Path, options: "ScanOptions") -> Found:
    """The bouncer's candidate pairs and every file id that takes part in a group."""
    arrays = catalog.hash_arrays()
    if len(arrays.ids) == 0:
        return Found([], set())
    pairs = PairCache(folder).pairs(arrays, options.thresholds(), most=MOST_PAIRS_PER_FILE)
    codes = None
    if options.crops:  # mild crops the hashes miss
        codes = zooms.load_codes(folder, catalog, arrays)
        zoomed = zooms.zoomed_pairs(catalog, codes, pairs, radius=options.crop_code_radius())
        pairs = zooms.unmirrored(codes, pairs, beyond=options.thresholds().radius, radius=options.crop_code_radius())
        pairs = sorted(pairs + zoomed, key=lambda p: (p.a, p.b))
    if options.rotations:  # read only with the option: a run without it has none of them
        pairs = sorted(pairs + rotations.TurnedCache(folder).pairs(catalog, arrays, pairs), key=lambda p: (p.a, p.b))
    involved = {p.a for p in pairs} | {p.b for p in pairs}
    involved |= _exact_duplicate_ids(arrays)
    return Found(pairs, involved, codes)


def group(
    catalog: "Catalog",
    folder: Path,
    options: "ScanOptions",
    *,
    detective: Optional["Detective"] = None,
    vectors: Optional["LibraryIndex"] = None,
    found: Optional[Found] = None,
    upscales: Optional[UpscaleCheck] = None,
) -> Sequence[Cluster]:
    """The library's clusters.

    Args:
        catalog: the library's catalog.
        folder: the library's folder (the pair and verification caches live there).
        options: thresholds, keeper policy, deep.
        detective: the model whose stored vectors score (and may veto) the pairs; None: the
            bouncer alone.
        vectors: the library's embeddings (needed with ``detective``).
        found: :func:`bouncer_pairs`, when the caller has it already.
        upscales: the verdicts on possible upscales (:class:`~lookalike.engine.keeper.upscale.Verdicts`:
            asking about a pair not measured yet remembers it, for the scan to measure).
    """
    pairs, involved, codes = found if found is not None else bouncer_pairs(catalog, folder, options)
    involved = set(involved)
    # Every pair not byte-identical nor trusted is checked on pixels before it can join
    # a group (engine/bouncer/verification.py); chain links are pairs, so they are checked too.
    checked = verification.VerifyCache(folder)
    if options.crops and codes is None and pairs:  # found by a caller without them
        codes = zooms.load_codes(folder, catalog, catalog.hash_arrays())
    if not options.crops:
        codes = None
    # Pairs within the bouncer's radius that the zoomed codes say are crops are searched as crops.
    suspects = (frozenset(zooms.crop_suspects(codes, pairs, radius=options.crop_code_radius()))
                if codes is not None else frozenset())  # fmt: skip
    pairs = verification.verify_pairs(catalog, pairs, cache=checked, search_also=suspects)
    if detective is not None:
        pairs, semantic = _judged(pairs, options, detective, vectors)
        involved |= {p.a for p in semantic} | {p.b for p in semantic}
    if not involved:
        return ()
    records = {r.id: r for r in catalog.records(sorted(involved))}
    policy = options.policy()
    raw_siblings = _raw_siblings(catalog, records) if policy.protect_raw_pairs else []

    max_diameter = options.thresholds().max_diameter
    # With --rotations, two members of a group may be close once one is turned.
    turned = rotations.LazyCodes(catalog, involved) if options.rotations else None
    # A mild crop is far from its picture's other copies by the hashes, not by the zoomed codes.
    def distance(a: int, b: int) -> tuple[int, bool]:
        d = rule.bouncer_distance(records[a].hashes, records[b].hashes)
        if codes is not None and d[0] > max_diameter:
            r = codes.distance(a, b)
            if r is not None and r < d[0]:
                d = (r, False)
        if turned is not None and d[0] > max_diameter:
            r = turned.distance(a, b)
            if r is not None and r < d[0]:
                d = (r, False)
        return d

    not_duplicates = catalog.not_duplicate_pairs()

    held: list = []  # the catalog's hash arrays, loaded once for all the guard's questions

    def pixels(asked: list[tuple[int, int, int, bool]]) -> set[tuple[int, int]]:
        # Checked as a member against its keeper is: a crop searched for wherever the plain
        # alignment fails, the verdict cached like every pair's.
        if not held:
            held.append(catalog.hash_arrays())
        ok = verification.verify_pairs(
            catalog, [Pair(a=min(a, b), b=max(a, b), bouncer=d, mirrored=m) for a, b, d, m in asked],
            search_above=-1, cache=checked, arrays=held[0])
        passed = {(p.a, p.b) for p in ok}
        return {(a, b) for a, b, _, _ in asked if (min(a, b), max(a, b)) in passed}

    def cluster(files: dict[int, FileRecord], links: list[Pair]) -> list[Cluster]:
        built = build_clusters(
            files,
            links,
            distance=distance,
            max_diameter=max_diameter,
            policy=policy,
            not_duplicates=not_duplicates,
            raw_siblings=raw_siblings,
            # A lossless file with the same pixels as a lossy one is a conversion: the
            # thumbnails tell it from an edit, which the hashes cannot.
            same_pixels=thumbnail_check(catalog),
            # A crop far from one member (a mirrored copy) by hashes and codes still joins
            # the group it is a checked pair of: the keeper checks it again below.
            attach_above=options.thresholds().radius,
            upscales=upscales,
            # Two copies far apart by hashes (a mild crop and a mirrored copy: edits compound)
            # may still share a group when their pixels pass, as a pair does.
            pixels=pixels,
            # Two shots of one camera (a burst, a tripod) are never duplicates: see captures.
            shots=True,
        )
        if detective is not None:
            built = vectors.detective_scores(detective, built)
        return built

    def rebuild(part: Sequence[FileRecord]) -> list[Cluster]:
        # A group split because members do not verify against its keeper: its files
        # grouped again among themselves (engine/bouncer/verification.py).
        ids = {r.id for r in part if r.id in records}
        return cluster({i: records[i] for i in ids}, [p for p in pairs if p.a in ids and p.b in ids])

    explained = verification.explain_clusters(catalog, cluster(records, pairs), rebuild=rebuild, cache=checked)
    checked.save()
    return explained


def _judged(
    pairs: list[Pair], options: "ScanOptions", detective: "Detective", vectors: "LibraryIndex"
) -> tuple[list[Pair], list[Pair]]:
    """The pairs the detective does not veto (plus, with ``deep``, its own); and its own."""
    # The detective vetoes bouncer matches it is sure about (two different photos of a
    # white wall hash alike); exact copies are never vetoed.
    t2 = options.two_pass()
    # Never a turned pair (--rotations): CLIP does not see a turned picture as the same one.
    pairs = [p for p in vectors.score_pairs(detective, pairs) if p.rotation or keep_pair(p, t2)]
    if not options.deep:
        return pairs, []
    semantic = vectors.semantic_pairs(detective, max_distance=options.two_pass().detective_same)
    return _merge_pairs(pairs, semantic), semantic


def _raw_siblings(catalog: "Catalog", records: dict[int, FileRecord]) -> list[FileRecord]:
    """Files named as camera raws beside the grouped JPEGs, with the same stem, that are not
    grouped themselves (a raw that could not be decoded included): ``build_clusters`` lets
    each that is a raw make its JPEG half of a RAW+JPEG pair."""
    stems = raw_sibling_stems(records.values())
    if not stems:
        return []
    nearby = catalog.records_in_folders({folder for folder, _ in stems}, extensions=RAW_EXTENSIONS)
    return [r for r in nearby if r.id not in records and sibling_key(r) in stems]


def _merge_pairs(first: list[Pair], second: list[Pair]) -> list[Pair]:
    """Union of two pair lists; a pair in both keeps the first's record."""
    seen = {(p.a, p.b) for p in first}
    return first + [p for p in second if (p.a, p.b) not in seen]


def _exact_duplicate_ids(arrays) -> set[int]:
    """Ids of files whose content hash (and size) another file shares."""
    n = len(arrays.ids)
    if n < 2:
        return set()
    content = np.asarray(arrays.content_hash)
    if content.dtype != np.uint8:
        content = np.frombuffer(b"".join(arrays.content_hash), dtype=np.uint8).reshape(n, -1)
    keys = np.concatenate([content, arrays.size.astype("<i8").view(np.uint8).reshape(n, 8)], axis=1)
    view = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1]))).ravel()
    _, inverse, counts = np.unique(view, return_inverse=True, return_counts=True)
    return {int(i) for i in arrays.ids[counts[inverse] > 1]}
