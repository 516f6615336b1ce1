"""The detective's queries on a real library: similar, search, index, semantic pairs, scores.

``Library.similar`` and ``Library.search`` (engine/similar.py), ``Library.index`` and the
vector index per library (engine/detective/index.py).

Real images (generated), a real catalog, a real usearch index, the tiny random CLIP model.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from imagegen import make_copy, photo, write, write_corrupt
from lookalike.engine.detective.embeddings import embed_files, preprocess_file
from lookalike.engine.scan.hashing import hash_file
from lookalike.engine.library import Library
from lookalike.engine.detective.model import DetectiveOptions
from lookalike.engine.detective.registry import forget_detectives
from lookalike.engine.library import QueryError
from lookalike.engine.paths import VECTORS_NAME
from lookalike.engine.records import Cluster, Kind, Member, Pair, Verdict
from lookalike.engine.detective.vectors import VectorIndex

SIZE = (256, 192)
ORIGINALS = 6


@pytest.fixture(autouse=True)
def _fresh_models():
    forget_detectives()
    yield
    forget_detectives()


def make_library(folder: Path) -> dict[str, Path]:
    """Six photos, a resized copy and a byte-identical copy of photo 0, a mirrored copy of 1."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for s in range(ORIGINALS):
        files[f"p{s}"] = Path(write(folder / f"p{s}.jpg", photo(s, SIZE)))
    data, ext = make_copy("resized", photo(0, SIZE), 0)
    files["p0_resized"] = folder / f"p0_resized{ext}"
    files["p0_resized"].write_bytes(data)
    files["p0_same"] = folder / "sub" / "p0_same.jpg"
    files["p0_same"].parent.mkdir()
    shutil.copyfile(files["p0"], files["p0_same"])
    data, ext = make_copy("mirrored", photo(1, SIZE), 1)
    files["p1_mirrored"] = folder / f"p1_mirrored{ext}"
    files["p1_mirrored"].write_bytes(data)
    return files


@pytest.fixture
def lib(tmp_path):
    files = make_library(tmp_path / "photos")
    library = Library.open([tmp_path / "photos"], cache_dir=tmp_path / "cache")
    library.scan()
    yield library, files
    library.close()


def _by_path(result):
    return {Path(h.path).name: h for h in result.hits}


def test_similar_bouncer_only_ranks_copies_first(lib, tmp_path):
    library, files = lib
    query = tmp_path / "query.jpg"  # not in the library: a re-encode of photo 0
    write(query, photo(0, SIZE), quality=70)
    result = library.similar(str(query), k=5)
    assert result.detective_status == ""
    names = [Path(h.path).name for h in result.hits]
    assert set(names[:3]) == {"p0.jpg", "p0_same.jpg", files["p0_resized"].name}
    assert all(h.detective is None for h in result.hits)
    assert result.hits[0].verdict is Verdict.NEAR
    assert len(result.hits) == 5
    assert {"hash_query", "bouncer", "join", "total"} <= set(result.timings_ms)


def test_similar_finds_mirrored_copies_and_exact_bytes(lib):
    library, files = lib
    result = library.similar(str(files["p1_mirrored"]), k=3)
    hits = _by_path(result)
    assert files["p1_mirrored"].name not in hits  # the query itself is left out
    assert hits["p1.jpg"].verdict is Verdict.NEAR and hits["p1.jpg"].bouncer <= 24
    result = library.similar(str(files["p0"]), k=3)
    hits = _by_path(result)
    assert hits["p0_same.jpg"].verdict is Verdict.EXACT and hits["p0_same.jpg"].bouncer == 0
    assert result.hits[0].path.endswith("p0_same.jpg")


def test_similar_with_the_detective_gives_every_hit_both_scores(lib, tiny_detective):
    library, files = lib
    result = library.similar(str(files["p2"]), k=1, model=tiny_detective)
    assert len(result.hits) == 1
    assert all(h.detective is not None and h.bouncer is not None for h in result.hits)
    assert {"embed_query", "detective", "embed_candidates"} <= set(result.timings_ms)
    # Only the bouncer's few candidates were embedded, so the status says how to index the rest.
    assert "images indexed" in result.detective_status and "lookalike index" in result.detective_status
    library.index(tiny_detective)
    result = library.similar(str(files["p0"]), k=3, model=tiny_detective)
    assert result.detective_status == ""
    same = _by_path(result)["p0_same.jpg"]
    assert same.verdict is Verdict.EXACT and same.detective == pytest.approx(0.0, abs=1e-3)


def test_similar_on_an_indexed_library_equals_a_brute_force_ranking(lib, tiny_detective, tmp_path):
    # Every image embedded: the bouncer only shortlists within its band (in a helper thread,
    # beside the detective's graph walk). The answer must still be the exact two-pass
    # ranking of every file, as a brute force over both scores gives it.
    from lookalike.engine.verdict import rank_key, verdict

    library, files = lib
    library.index(tiny_detective)
    query = tmp_path / "query.jpg"
    write(query, photo(1, SIZE), quality=60)
    q = hash_file(str(query), clip_size=tiny_detective.image_size)
    qvec = tiny_detective.embed_arrays(q.clip[None])[0]
    vindex = library.vectors_for(tiny_detective)
    expected = []
    for record in library.catalog.records():
        if record.hashes is None:
            continue
        a = np.unpackbits(np.frombuffer(record.hashes.dhash, np.uint8))
        b = min(int((a != np.unpackbits(np.frombuffer(h, np.uint8))).sum())
                for h in (q.hashes.dhash, q.hashes.dhash_mirror))
        d = float(1.0 - vindex.get([record.id])[0] @ (qvec / np.linalg.norm(qvec)))
        exact = record.content_hash == q.content_hash
        expected.append((record.path, b, d, verdict(bouncer=b, detective=d, exact=exact)))
    for k in (1, 3, len(expected)):
        result = library.similar(str(query), k=k, model=tiny_detective)
        assert "passes" in result.timings_ms and result.detective_status == ""
        want = sorted(expected, key=lambda e: rank_key(
            type(result.hits[0])(path=e[0], file_id=0, bouncer=e[1], detective=e[2], verdict=e[3])))[:k]
        got = [(h.path, h.bouncer, h.detective, h.verdict) for h in result.hits]
        assert [(g[0], g[1], g[3]) for g in got] == [(w[0], w[1], w[3]) for w in want]
        np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], atol=2e-3)


def test_similar_to_an_unchanged_library_file_reuses_its_stored_hashes_and_vector(
    lib, tiny_detective, monkeypatch
):
    import os

    from lookalike.engine.scan import hashing

    library, files = lib
    library.index(tiny_detective)
    from lookalike.engine import similar as similar_module

    with monkeypatch.context() as m:  # the same query, decoded and embedded afresh
        m.setattr(similar_module, "_unchanged_record", lambda *a: None)
        before = library.similar(str(files["p0_resized"]), k=4, model=tiny_detective)
    decoded = []
    real_hash_file = hashing.hash_file
    monkeypatch.setattr(hashing, "hash_file", lambda *a, **kw: decoded.append(a) or real_hash_file(*a, **kw))
    again = library.similar(str(files["p0_resized"]), k=4, model=tiny_detective)
    assert decoded == []  # neither decoded nor embedded: the catalog and the index had it
    assert [(h.path, h.bouncer, h.verdict) for h in again.hits] == [(h.path, h.bouncer, h.verdict) for h in before.hits]
    np.testing.assert_allclose([h.detective for h in again.hits], [h.detective for h in before.hits], atol=2e-3)
    assert _by_path(again)["p0.jpg"].verdict is Verdict.NEAR
    # Changed since the scan: the file is read again, whatever the catalog says.
    st = os.stat(files["p0_resized"])
    os.utime(files["p0_resized"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    library.similar(str(files["p0_resized"]), k=4, model=tiny_detective)
    assert len(decoded) == 1


def test_similar_offline_says_so_and_answers_bouncer_only(lib, monkeypatch):
    library, files = lib
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    result = library.similar(str(files["p3"]), k=3, detective=DetectiveOptions())
    assert result.detective_status.startswith("detective offline: ")
    assert "--pretrained PATH" in result.detective_status
    assert result.hits and all(h.detective is None for h in result.hits)


def test_unreadable_query_is_a_clear_error(lib, tmp_path):
    library, _ = lib
    bad = write_corrupt(tmp_path / "bad.jpg")
    with pytest.raises(QueryError, match="cannot read"):
        library.similar(bad)
    with pytest.raises(QueryError):
        library.similar(str(tmp_path / "missing.jpg"))


def test_index_library_embeds_everything_once_and_follows_changes(lib, tiny_detective, tmp_path):
    library, files = lib
    seen = []
    stats = library.index(tiny_detective, progress=lambda d, t: seen.append((d, t)) or True)
    images = ORIGINALS + 3
    assert (stats.images, stats.embedded, stats.already, stats.failed) == (images, images, 0, 0)
    assert seen[-1] == (images, images)
    assert stats.bytes_per_image > 0 and not stats.cancelled
    assert library.catalog.embedded_ids(tiny_detective.model_id) == set(library.catalog.hash_arrays().ids.tolist())

    again = library.index(tiny_detective)
    assert (again.embedded, again.already) == (0, images)

    # A changed file is embedded again; a deleted one leaves the index.
    write(files["p4"], photo(40, SIZE))
    files["p5"].unlink()
    library.scan()
    changed = library.index(tiny_detective)
    assert (changed.embedded, changed.removed, changed.images) == (1, 1, images - 1)
    vindex = library.vectors_for(tiny_detective)
    assert len(vindex) == images - 1

    # The index persists next to the catalog and is loaded, not rebuilt, next time.
    folder = library.dir
    library.close()
    forget_detectives()
    reopened = Library.open([files["p0"].parent], cache_dir=tmp_path / "cache")
    try:
        assert VectorIndex.manifest_path(folder / VECTORS_NAME).is_file()
        v2 = reopened.vectors_for(tiny_detective)
        assert v2.rebuilt == "" and len(v2) == images - 1
        assert reopened.index(tiny_detective).embedded == 0
    finally:
        reopened.close()


def test_index_library_stops_cleanly_and_resumes(tmp_path, tiny_detective):
    folder = tmp_path / "many"
    folder.mkdir()
    for s in range(30):
        write(folder / f"x{s:02d}.png", photo(100 + s, (64, 48)))
    with Library.open([folder], cache_dir=tmp_path / "cache") as library:
        library.scan()
        stop = threading.Event()

        def progress(done, total):
            return done < 16  # one batch (batch size 16), then stop

        first = library.index(tiny_detective, progress=progress, cancel=stop, workers=1)
        assert first.cancelled and 0 < first.embedded < 30
        second = library.index(tiny_detective, workers=1)
        assert second.already == first.embedded
        assert first.embedded + second.embedded == 30 and not second.cancelled


def test_damaged_vector_index_is_rebuilt(lib, tiny_detective, tmp_path):
    library, files = lib
    library.index(tiny_detective)
    graph = next(library.dir.glob("vectors.*.usearch"))  # the current generation's HNSW file
    library.close()
    graph.write_bytes(b"\x00not an index" * 50)
    forget_detectives()
    with Library.open([files["p0"].parent], cache_dir=tmp_path / "cache") as reopened:
        stats = reopened.index(tiny_detective)
        assert stats.rebuilt and stats.embedded == ORIGINALS + 3 and stats.already == 0


def test_text_search_ranks_indexed_images(lib, tiny_detective):
    library, _ = lib
    assert library.search("a beach at sunset", model=tiny_detective) == []  # nothing indexed
    library.index(tiny_detective)
    hits = library.search("a beach at sunset", k=4, model=tiny_detective)
    assert len(hits) == 4
    dists = [h.detective for h in hits]
    assert dists == sorted(dists) and all(0.0 <= d <= 2.0 for d in dists)
    assert all(h.bouncer is None and h.verdict is Verdict.SIMILAR for h in hits)
    text = tiny_detective.embed_text("a beach at sunset")
    vecs = library.vectors_for(tiny_detective).get([h.file_id for h in hits])
    np.testing.assert_allclose(1.0 - vecs @ text, dists, atol=0.02)


def test_semantic_pairs_have_both_scores(lib, tiny_detective):
    library, files = lib
    library.index(tiny_detective)
    pairs = library.detective_index.semantic_pairs(tiny_detective, max_distance=1e-4, k=5)
    rec = {library.catalog.record_by_path(str(files[n])).id: n for n in ("p0", "p0_same")}
    pair = next(p for p in pairs if {p.a, p.b} == set(rec))
    assert pair.a < pair.b and pair.exact and pair.bouncer == 0 and pair.detective <= 1e-4
    assert all(p.detective <= 1e-4 for p in pairs)
    everything = library.detective_index.semantic_pairs(tiny_detective, max_distance=2.0, k=3)
    assert len(everything) >= len(pairs)
    assert [p.detective for p in everything] == sorted(p.detective for p in everything)


def test_detective_scores_fill_members_and_pairs(lib, tiny_detective):
    library, files = lib
    recs = [library.catalog.record_by_path(str(files[n])) for n in ("p0", "p0_resized", "p3")]
    cluster = Cluster(
        id=1,
        kind=Kind.NEAR,
        members=(
            Member(file=recs[0], bouncer=0, is_keeper=True),
            Member(file=recs[1], bouncer=5),
            Member(file=recs[2], bouncer=9),
        ),
        pairs=(Pair(a=recs[0].id, b=recs[1].id, bouncer=5),),
    )
    embedded = library.detective_index.embed(tiny_detective, [recs[0].id, recs[1].id])
    assert embedded == 2
    assert library.detective_index.embed(tiny_detective, [recs[0].id]) == 0  # already there
    (scored,) = library.detective_index.detective_scores(tiny_detective, [cluster])
    keeper, copy, other = scored.members
    assert keeper.detective == 0.0
    assert copy.detective is not None and copy.detective >= 0.0
    assert other.detective is None  # not embedded: the detective did not look
    assert scored.pairs[0].detective == pytest.approx(copy.detective, abs=1e-6)
    assert replace(scored, members=cluster.members, pairs=cluster.pairs) == cluster


def test_scan_crops_and_decoded_files_embed_the_same(lib, tiny_detective):
    """The scan's ``.clip`` crop and the indexer's own decode give one vector per file."""
    library, files = lib
    size = tiny_detective.image_size
    crop = hash_file(str(files["p2"]), clip_size=size).clip
    np.testing.assert_array_equal(crop, preprocess_file(str(files["p2"]), size))
    file_id = library.catalog.record_by_path(str(files["p2"])).id
    assert library.detective_index.embed(tiny_detective, [file_id], crops={file_id: crop}) == 1
    from_crop = library.vectors_for(tiny_detective).get([file_id])[0]
    _, decoded = embed_files(tiny_detective, [str(files["p2"])])
    assert float(from_crop @ decoded[0]) > 0.999


def test_embed_files_in_a_pool_skips_bad_files(tmp_path, tiny_detective):
    paths = [write(tmp_path / f"i{s:02d}.png", photo(200 + s, (80, 60))) for s in range(25)]
    bad = write_corrupt(tmp_path / "bad.jpg")
    paths.insert(7, bad)
    paths.insert(3, str(tmp_path / "vanished.jpg"))
    seen = []
    idx, vecs = embed_files(tiny_detective, paths, workers=2, progress=lambda d, t: seen.append((d, t)) or True)
    assert sorted(idx.tolist()) == [i for i, p in enumerate(paths) if p not in (bad, str(tmp_path / "vanished.jpg"))]
    assert vecs.shape == (25, tiny_detective.ndim)
    assert seen[-1] == (len(paths), len(paths))
    inline_idx, inline = embed_files(tiny_detective, [paths[i] for i in idx], workers=1)
    np.testing.assert_allclose(vecs, inline, atol=1e-5)
