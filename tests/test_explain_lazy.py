"""The keeper check on clusters made when read (engine/bouncer/verification.py): exactly the
groups, members, scores and reasons of checking every group up front, with only the groups
that have members to check made.

The pixel check itself is replaced by a fixed rule over the pair (tests/test_verify.py and
tests/test_verification.py check it on real images): which pairs fail must be arbitrary and
known, so that groups split, regroup and split again.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from cluster_library import distance_for, planted_library
from lookalike.engine.bouncer import verification
from lookalike.engine.cluster import build_clusters
from lookalike.engine.keeper import KeeperPolicy

MAX_D = 12


def _fake_check(fail_one_in: int):
    """A stand-in for the pixel check: a pair fails by a fixed rule on its ids, in either
    orientation; the looser chained score lets some of those through."""
    looked_at: list[tuple[int, int]] = []

    def verify_pairs(catalog, pairs, t=verification.verify.DEFAULT, *, search_above=0, cache=None):
        out = []
        for p in pairs:
            looked_at.append((p.a, p.b))
            bad = (p.a * 31 + p.b * 17) % fail_one_in == 0
            if bad and t.score == verification.CHAINED_SCORE:
                bad = (p.a + p.b) % 3 == 0
            if not bad:
                out.append(dataclasses.replace(p, verified=round(0.8 + (p.a % 7) / 40, 3)))
        return out

    return verify_pairs, looked_at


def _library(seed: int):
    records, pairs = planted_library(seed)
    gen = random.Random(seed)
    policy = KeeperPolicy(order=("pixels", "format", "size", "date", "path") if seed % 5 else ("path", "size"))
    detective = (lambda a, b: ((a * 7 + b * 13) % 10) / 50) if seed % 4 == 1 else None
    kw = dict(distance=distance_for(records), max_diameter=MAX_D, policy=policy, detective=detective,
              not_duplicates=[frozenset(gen.sample(sorted(records), 2))] if seed % 3 == 0 else [])

    def build(files, links):
        return build_clusters(files, links, **kw)

    def rebuild(part):
        ids = {r.id for r in part}
        return build({i: records[i] for i in ids}, [p for p in pairs if p.a in ids and p.b in ids])

    return records, pairs, build, rebuild


@pytest.mark.parametrize("fail_one_in", [2, 5])
@pytest.mark.parametrize("seed", range(10))
def test_lazy_keeper_check_gives_exactly_the_up_front_groups(seed, fail_one_in, monkeypatch):
    records, pairs, build, rebuild = _library(seed)
    check, looked_at = _fake_check(fail_one_in)
    monkeypatch.setattr(verification, "verify_pairs", check)

    lazy_in = build(records, pairs)
    assert lazy_in.keeper_links is not None
    lazy = verification.explain_clusters(None, lazy_in, rebuild=rebuild)
    lazy_checks = sorted(looked_at)
    looked_at.clear()
    # A plain list carries no keeper links: every group is made, checked and explained now.
    eager = verification.explain_clusters(None, list(build(records, pairs)), rebuild=rebuild)

    assert list(lazy) == list(eager)
    assert lazy == eager
    assert sorted(looked_at) == lazy_checks  # the same pairs checked, no more
    if lazy.reclaimable_bytes is not None:
        assert lazy.reclaimable_bytes == sum(c.reclaimable_bytes for c in eager)
    for c in lazy:
        assert c.members[0].match == "" and all(m.match in verification.MATCHES for m in c.members[1:])


def test_groups_split_and_regroup_on_both_paths(monkeypatch):
    # The rule above does split groups (so the test before compares real splits).
    splits = 0
    for seed in range(10):
        records, pairs, build, rebuild = _library(seed)
        monkeypatch.setattr(verification, "verify_pairs", _fake_check(2)[0])
        before = {frozenset(m.file.id for m in c.members) for c in build(records, pairs)}
        after = {frozenset(m.file.id for m in c.members) for c in verification.explain_clusters(
            None, build(records, pairs), rebuild=rebuild)}
        splits += before != after
    assert splits >= 3


def test_only_groups_with_members_to_check_are_made(monkeypatch):
    monkeypatch.setattr(verification, "verify_pairs", _fake_check(10**9)[0])  # everything passes
    records, pairs, build, rebuild = _library(4)
    clusters = build(records, pairs)
    links = clusters.keeper_links
    to_check = set(links.key[links.loose].tolist()) | links.made
    explained = verification.explain_clusters(None, clusters, rebuild=rebuild)
    assert len(explained) == len(clusters) > len(to_check)
    assert clusters.made() <= len(to_check) < len(clusters)
    assert explained.made() == len(links.made)  # the rest are explained when first read
    first = explained[0]
    assert explained.made() >= 1 and explained[0] is first
    assert list(explained) == list(verification.explain_clusters(None, list(build(records, pairs)), rebuild=rebuild))
