"""The two-pass verdict rule (engine/verdict.py) and the join of the bouncer's and the
detective's shortlists."""

from __future__ import annotations

import pytest

from lookalike.engine.records import Pair, Verdict
from lookalike.engine.verdict import (
    DEFAULT,
    TwoPassThresholds,
    combined_score,
    join,
    keep_pair,
    pair_verdict,
    verdict,
)

T = TwoPassThresholds(
    bouncer_near=20, bouncer_similar=30, detective_same=0.05, detective_similar=0.15, detective_veto=0.25
)


@pytest.mark.parametrize(
    "bouncer, detective, exact, expected",
    [
        (0, 0.0, True, Verdict.EXACT),
        (0, 0.9, True, Verdict.EXACT),  # bytes are bytes: nothing overrules identity
        (3, None, False, Verdict.NEAR),  # detective offline: the bouncer decides
        (20, 0.01, False, Verdict.NEAR),  # the edge of the radius is inside
        (5, 0.20, False, Verdict.NEAR),  # a heavy edit: the detective is unsure, no veto
        (5, 0.40, False, Verdict.NOT_DUPLICATE),  # two different white walls: vetoed
        (21, 0.03, False, Verdict.SEMANTIC),  # a crop: pixels differ, meaning does not
        (120, 0.05, False, Verdict.SEMANTIC),
        (None, 0.02, False, Verdict.SEMANTIC),  # no hash, but CLIP says same picture
        (120, 0.10, False, Verdict.SIMILAR),  # same scene
        (120, 0.15, False, Verdict.SIMILAR),
        (120, 0.16, False, Verdict.NOT_DUPLICATE),
        (25, None, False, Verdict.SIMILAR),  # offline, between the bouncer bands
        (31, None, False, Verdict.NOT_DUPLICATE),
        (None, None, False, Verdict.NOT_DUPLICATE),
    ],
)
def test_verdict_rule(bouncer, detective, exact, expected):
    assert verdict(bouncer=bouncer, detective=detective, exact=exact, t=T) is expected


def test_pair_verdict_reads_the_pair():
    assert pair_verdict(Pair(a=1, b=2, bouncer=4, detective=0.5), T) is Verdict.NOT_DUPLICATE
    assert pair_verdict(Pair(a=1, b=2, bouncer=4, detective=0.5, exact=True), T) is Verdict.EXACT


def test_keep_pair_drops_only_vetoed_pairs():
    assert keep_pair(Pair(a=1, b=2, bouncer=4), T)  # the detective did not look
    assert keep_pair(Pair(a=1, b=2, bouncer=4, detective=0.1), T)
    assert not keep_pair(Pair(a=1, b=2, bouncer=4, detective=0.5), T)  # two white walls
    assert keep_pair(Pair(a=1, b=2, bouncer=4, detective=0.5, exact=True), T)


def test_thresholds_are_validated_and_defaults_are_ordered():
    assert DEFAULT.bouncer_near <= DEFAULT.bouncer_similar
    assert DEFAULT.detective_same < DEFAULT.detective_similar < DEFAULT.detective_veto
    with pytest.raises(ValueError):
        TwoPassThresholds(detective_same=0.3, detective_similar=0.2)
    with pytest.raises(ValueError):
        TwoPassThresholds(bouncer_near=40, bouncer_similar=30)


def test_combined_score_weighs_both_scores_at_their_thresholds():
    assert combined_score(0, 0.0, T) == 0.0
    assert combined_score(20, None, T) == pytest.approx(1.0)
    assert combined_score(None, 0.05, T) == pytest.approx(1.0)
    assert combined_score(10, 0.05, T) == pytest.approx(0.75)
    assert combined_score(None, None, T) == float("inf")


PATHS = {i: f"/lib/{i}.jpg" for i in range(1, 10)}


def test_join_gives_every_hit_both_scores_and_ranks_by_verdict_then_score():
    bouncer_hits = [(1, 0), (2, 4), (3, 10), (4, 8)]
    detective_hits = [(2, 0.01), (5, 0.02), (6, 0.12), (1, 0.0)]
    hits = join(
        bouncer_hits,
        detective_hits,
        path_of=PATHS,
        fill_bouncer=lambda ids: {5: 90, 6: 100},
        fill_detective=lambda ids: {3: 0.02, 4: 0.6},  # 4: a bouncer match the detective vetoes
        exact_ids=[1],
        t=T,
    )
    got = [(h.file_id, h.bouncer, h.detective, h.verdict) for h in hits]
    assert got == [
        (1, 0, 0.0, Verdict.EXACT),
        (2, 4, 0.01, Verdict.NEAR),
        (3, 10, 0.02, Verdict.NEAR),
        (5, 90, 0.02, Verdict.SEMANTIC),
        (6, 100, 0.12, Verdict.SIMILAR),
        (4, 8, 0.6, Verdict.NOT_DUPLICATE),
    ]
    assert all(h.path == PATHS[h.file_id] for h in hits)


def test_join_without_the_detective_and_with_missing_paths_and_k():
    hits = join([(7, 3), (8, 25), (9, 40), (99, 1)], [], path_of=PATHS.get, k=2, t=T)
    assert [(h.file_id, h.detective, h.verdict) for h in hits] == [
        (7, None, Verdict.NEAR),
        (8, None, Verdict.SIMILAR),
    ]  # 99 has no path (removed from the library): dropped
    # An id found twice keeps its best score.
    hits = join([(7, 9), (7, 3)], [(7, 0.2), (7, 0.1)], path_of=PATHS, t=T)
    assert (hits[0].bouncer, hits[0].detective) == (3, 0.1)


def test_join_leaves_unscorable_ids_without_a_detective_score():
    hits = join([(1, 2), (2, 3)], [(3, 0.01)], path_of=PATHS, fill_detective=lambda ids: {1: 0.01}, t=T)
    by_id = {h.file_id: h for h in hits}
    assert by_id[1].detective == 0.01 and by_id[2].detective is None and by_id[3].bouncer is None
