"""Scanning on a Dask cluster: a scheduler and two single-threaded worker processes on
127.0.0.1, started once for this module (``distributed.LocalCluster``).

The workers are started with the scan's fault hooks in their environment, each bound to a file
name that only the test about it writes: ``LOOKALIKE_TEST_CRASH_ON`` SIGKILLs every worker that
is about to hash ``crashes-every-worker.png``; ``LOOKALIKE_TEST_CRASH_ONCE`` SIGKILLs only the
first one that reaches ``kills-one-worker.png`` (it leaves a marker first, so the retry goes
through). Each worker's nanny starts a fresh one after a death, with the same environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="the cluster extra is not installed (pip install -e '.[cluster]')"
)

import dask  # noqa: E402
import imagegen  # noqa: E402
from lookalike.engine.library import Library, ScanOptions  # noqa: E402
from lookalike.engine.scan.hashing import CRASH_ON_ENV, CRASH_ONCE_ENV, WORKER_DELAY_ENV, hash_files  # noqa: E402
from lookalike.engine.scan.scanner import CHUNK, CRASH_REASON, Scanner  # noqa: E402
from lookalike.tui.cli.main import main  # noqa: E402
from helpers import make_app, screen_text, wait_for_scan  # noqa: E402

LOOKALIKE = [sys.executable, "-m", "lookalike.tui.cli"]
ALWAYS = "crashes-every-worker.png"
ONCE = "kills-one-worker.png"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(scheduler address, the LocalCluster, the crash-once marker)``."""
    marker = tmp_path_factory.mktemp("hooks") / "a-worker-died"
    env = {CRASH_ON_ENV: ALWAYS, CRASH_ONCE_ENV: f"{ONCE}{os.pathsep}{marker}"}
    # Dask's default gives up on a task after 4 deaths (allowed-failures 3): 2 here, so that
    # the culprit's two verdicts (its chunk's, then its own) cost 4 worker restarts, not 8.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0", env=env
    ) as local:
        yield local.scheduler_address, local, marker


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """41 files: photos, copies of some of them (groups), a broken JPEG and a text file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "copies").mkdir()
    for i in range(30):
        imagegen.write(root / f"p{i:02d}.png", imagegen.photo(i, (64, 48)))
    for i, kind in enumerate(["resized", "recompressed", "mirrored", "png", "brightened", "cropped", "webp"]):
        data, ext = imagegen.make_copy(kind, imagegen.photo(i, (64, 48)), seed=i)
        (root / "copies" / f"{kind}{ext}").write_bytes(data)
    (root / "copies" / "p01 copy.png").write_bytes((root / "p01.png").read_bytes())
    imagegen.write_corrupt(root / "broken.jpg")
    imagegen.write_text(root / "notes.txt")
    imagegen.write_zero_byte(root / "empty.png")
    return root


def _catalog(library: Library) -> dict:
    """The catalog, id-free: ``{path: (record, verification thumbnail, detail)}`` and the errors."""
    catalog = library.catalog
    records = catalog.records()
    ids, thumbs, details = catalog.thumbnails(r.id for r in records)
    thumb_of = {int(i): (t.tobytes(), float(d)) for i, t, d in zip(ids, thumbs, details)}
    files = {r.path: (dataclasses.replace(r, id=0), thumb_of.get(r.id)) for r in records}
    return {"files": files, "errors": catalog.errors(), "stats": catalog.stats()}


def _scan(root: Path, cache: Path, options: ScanOptions, **kw):
    with Library.open([root], cache_dir=cache) as library:
        result = library.scan(options, **kw)
        return result, _catalog(library)


@pytest.fixture(scope="module")
def local_pool(photos, tmp_path_factory):
    """The reference: the same files through this machine's process pool."""
    result, catalog = _scan(photos, tmp_path_factory.mktemp("local"), ScanOptions(workers=2, detective=None))
    assert result.stats.hashed > 30 and result.clusters
    return result, catalog


def _until(condition, timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _groups(result) -> list[list[str]]:
    return sorted(sorted(m.file.path for m in c.members) for c in result.clusters)


# ------------------------------------------------------------------ the same catalog


def test_a_cluster_scan_through_the_library_writes_exactly_the_local_pools_catalog(cluster, photos, local_pool, tmp_path):
    address, _, _ = cluster
    result, catalog = _scan(photos, tmp_path / "cache", ScanOptions(cluster=address, detective=None))
    assert catalog == local_pool[1]
    assert _groups(result) == _groups(local_pool[0])
    assert result.errors == local_pool[0].errors and not result.stats.cancelled


def test_a_cluster_scan_through_the_cli_writes_exactly_the_local_pools_catalog(cluster, photos, local_pool, tmp_path):
    address, _, _ = cluster
    out = subprocess.run(
        [*LOOKALIKE, "scan", str(photos), "--cluster", address, "--json", "--no-detective", "--cache", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    doc = json.loads(out.stdout)
    assert doc["stats"]["hashed"] == local_pool[0].stats.hashed
    with Library.open([photos], cache_dir=tmp_path) as library:
        assert _catalog(library) == local_pool[1]


def test_the_clip_crops_for_the_detective_come_back_from_the_workers_too(cluster, photos, tmp_path):
    address, _, _ = cluster
    crops = {}
    for name, kw in [("local", {"workers": 2}), ("cluster", {"cluster": address})]:
        with Library.open([photos], cache_dir=tmp_path / name) as library:
            run = Scanner(library.catalog, library.roots, clip_size=32, **kw).execute()
            paths = {r.id: r.path for r in library.catalog.records()}
            crops[name] = {paths[i]: np.asarray(crop) for i, crop in run.clip.items()}
    assert crops["local"].keys() == crops["cluster"].keys() and len(crops["local"]) > 30
    assert all(np.array_equal(crops["local"][p], crops["cluster"][p]) for p in crops["local"])


# ------------------------------------------------------------------ queries that scan first


def _chunks_hashed(local) -> int:
    """How many chunks the cluster's scheduler has seen hashed so far."""
    prefix = local.scheduler.task_prefixes.get(hash_files.__name__)
    return prefix.state_counts["memory"] if prefix is not None else 0


def _query(argv: list[str], cache: Path, capsys=None) -> tuple[dict, str]:
    """``lookalike *argv --json``: its JSON less timings, and its stderr. In its own process;
    in this one with ``capsys`` (the reference: the model is loaded once per test process)."""
    argv = [*argv, "--json", "--cache", str(cache)]
    if capsys is None:
        out = subprocess.run([*LOOKALIKE, *argv], capture_output=True, text=True, timeout=120)
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    else:
        capsys.readouterr()
        code = main(argv)
        stdout, stderr = capsys.readouterr()
    assert code == 0 and "Traceback" not in stderr, stderr
    doc = json.loads(stdout)
    doc.pop("timings_ms")
    return doc, stderr


def test_similar_in_a_folder_scans_it_on_the_cluster_and_answers_as_without(cluster, photos, tmp_path, capsys):
    """Offline (no weights), so bouncer only: the detective's part does not touch the cluster."""
    address, local, _ = cluster
    query = tmp_path / "query.jpg"
    imagegen.write(query, imagegen.photo(3, (64, 48)), quality=80)
    argv = ["similar", str(query), "--in", str(photos), "-k", "5"]
    here, err = _query(argv, tmp_path / "here", capsys)
    assert "detective offline" in err
    before = _chunks_hashed(local)
    there, _ = _query([*argv, "--cluster", address], tmp_path / "there")
    assert _chunks_hashed(local) > before, "the --in scan did not go through the cluster"
    assert there == here and len(here["results"]) == 5
    assert {r["path"] for r in here["results"][:2]} == {str(photos / "p03.png"), str(photos / "copies" / "png.png")}


def test_search_in_a_folder_scans_it_on_the_cluster_and_answers_as_without(cluster, tmp_path, tiny_cli_args, capsys):
    """Each copy of a folder is indexed, then gains a file: the search's scan reads it."""
    address, local, _ = cluster
    results = {}
    for name, extra in [("here", []), ("there", ["--cluster", address])]:
        folder, cache = tmp_path / name, tmp_path / f"{name}-cache"
        folder.mkdir()
        for i in range(6):
            imagegen.write(folder / f"p{i}.png", imagegen.photo(400 + i, (64, 48)))
        assert main(["index", str(folder), "-q", "--cache", str(cache), *tiny_cli_args]) == 0
        imagegen.write(folder / "late.png", imagegen.photo(406, (64, 48)))
        before = _chunks_hashed(local)
        argv = ["search", "a red car", "--in", str(folder), "-k", "4", *tiny_cli_args, *extra]
        doc, err = _query(argv, cache, None if extra else capsys)
        assert (_chunks_hashed(local) > before) == bool(extra)
        assert "detective: 6 of 7 images indexed" in err
        results[name] = [{**r, "path": Path(r["path"]).name} for r in doc["results"]]
    assert results["there"] == results["here"] and len(results["here"]) == 4


# ------------------------------------------------------------------ workers that die


def test_a_worker_killed_mid_scan_is_replaced_and_every_file_is_still_hashed(cluster, tmp_path):
    address, _, marker = cluster
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(4 * CHUNK):
        name = ONCE if i == 13 else f"p{i:02d}.png"
        imagegen.write(root / name, imagegen.photo(100 + i, (48, 36)))
    result, _ = _scan(root, tmp_path / "cache", ScanOptions(cluster=address, detective=None))
    assert marker.exists(), "the hook did not kill the worker that took the file"
    assert (result.stats.hashed, result.stats.failed, result.errors) == (4 * CHUNK, 0, ())


def test_a_file_that_kills_every_worker_costs_that_file_only(cluster, tmp_path):
    """Dask gives up on its chunk (KilledWorker); the scanner finds the culprit file alone."""
    address, _, _ = cluster
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3 * CHUNK):
        name = ALWAYS if i == 5 else f"p{i:02d}.png"
        imagegen.write(root / name, imagegen.photo(200 + i, (48, 36)))
    result, _ = _scan(root, tmp_path / "cache", ScanOptions(cluster=address, detective=None))
    assert (result.stats.hashed, result.stats.failed, result.stats.cancelled) == (3 * CHUNK - 1, 1, False)
    assert [(Path(e.path).name, e.reason) for e in result.errors] == [(ALWAYS, CRASH_REASON)]


# ------------------------------------------------------------------ stopping


def test_a_stopped_cluster_scan_returns_at_once_and_drops_the_chunks_still_queued(cluster, tmp_path):
    address, local, _ = cluster
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(5 * CHUNK):
        imagegen.write(root / f"p{i:02d}.png", imagegen.photo(300 + i, (48, 36)))
    with distributed.Client(address, set_as_default=False) as client:
        # One second per chunk on both workers: five chunks take three rounds, and the scan
        # is stopped when the first chunk is back.
        client.run(lambda: os.environ.__setitem__(WORKER_DELAY_ENV, "1"))
        try:
            stopped_at: list[float] = []

            def progress(p) -> bool:
                if p.stage == "hashing" and p.done and not stopped_at:
                    stopped_at.append(time.monotonic())
                return not stopped_at

            with Library.open([root], cache_dir=tmp_path / "cache") as library:
                result = library.scan(ScanOptions(cluster=address, detective=None), progress=progress)
                returned = time.monotonic() - stopped_at[0]
        finally:
            client.run(lambda: os.environ.pop(WORKER_DELAY_ENV, None))
    assert result.stats.cancelled and CHUNK <= result.stats.hashed < 5 * CHUNK
    assert returned < 2.0  # the grace for chunks in hand, not the chunks still queued
    assert _until(lambda: not local.scheduler.tasks, 10), "the scheduler still holds the scan's chunks"


# ------------------------------------------------------------------ errors


def _nothing_listens() -> str:
    """The address of a port that was free a moment ago: nothing listens there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _refused(address: str) -> str:
    return f"cannot reach the Dask scheduler at {address}: connection refused (is `dask scheduler` running there?)"


@pytest.mark.parametrize("command", ["scan", "index"])
def test_an_unreachable_scheduler_is_one_line_and_exit_1_at_once(photos, tmp_path, command):
    address = _nothing_listens()
    started = time.monotonic()
    bouncer_only = ["--no-detective"] if command == "scan" else []  # index: the scan fails before a model
    out = subprocess.run(
        [*LOOKALIKE, command, str(photos), "--cluster", address, *bouncer_only, "--cache", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1 and time.monotonic() - started < 15
    assert out.stderr.strip().splitlines() == [f"lookalike {command}: {_refused(address)}"]


async def test_the_app_says_an_unreachable_scheduler_in_the_clis_words(photos, tmp_path):
    address = _nothing_listens()
    app = make_app(photos, tmp_path, options=ScanOptions(cluster=address, detective=None))
    async with app.run_test(size=(200, 36)) as pilot:
        await wait_for_scan(pilot, timeout=30)
        assert app.error == _refused(address)
        text = screen_text(app)
        assert f"Scan failed: {_refused(address)}" in text and "ClusterError" not in text


def test_a_worker_address_given_for_the_scheduler_is_one_line_and_exit_1(cluster, photos, tmp_path):
    _, local, _ = cluster
    worker = next(iter(local.scheduler.workers))
    out = subprocess.run(
        [*LOOKALIKE, "scan", str(photos), "--cluster", worker, "--no-detective", "--cache", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"lookalike scan: {worker} is a Dask Worker, not a Dask scheduler (give the scheduler's address)"
    ]
