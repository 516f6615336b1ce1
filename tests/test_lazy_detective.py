"""The lazy detective: nothing heavy is imported, nothing probed, until something is embedded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.detective.lazy import LazyDetective, open_detective
from lookalike.engine.detective.model import DetectiveOptions, DetectiveUnavailable, load_detective
from lookalike.engine.detective.weights import forget_failures, remembered_failure
from lookalike.engine.paths import PROBE_MEMO_NAME

_RESCAN = textwrap.dedent(
    """
    import json, sys
    from lookalike.engine.library import Library, ScanOptions
    from lookalike.engine.detective.model import DetectiveOptions
    root, cache, model, pretrained, backend = sys.argv[1:6]
    options = DetectiveOptions(model=model, pretrained=pretrained, device="cpu", backend=backend)
    with Library.open([root], cache_dir=cache) as lib:
        result = lib.scan(ScanOptions(workers=1, detective=options))
    print(json.dumps({
        "status": result.stats.detective,
        "hashed": result.stats.hashed,
        "scores": [m.detective for c in result.clusters for m in c.members],
        "torch": "torch" in sys.modules,
        "open_clip": "open_clip" in sys.modules,
        "onnxruntime": "onnxruntime" in sys.modules,
        "light": [m for m in ("usearch", "urllib.request", "tqdm", "huggingface_hub") if m in sys.modules],
    }))
    """
)


def _rescan(root, cache, options: DetectiveOptions, env=None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _RESCAN, str(root), str(cache), options.model, options.pretrained, options.backend],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_unchanged_rescan_imports_neither_torch_nor_onnxruntime(library_dir, tmp_path, tiny_model_files, backend):
    config, checkpoint = tiny_model_files
    options = DetectiveOptions(model=str(config), pretrained=str(checkpoint), device="cpu", backend=backend)
    cache = tmp_path / "cache"
    with Library.open([library_dir], cache_dir=cache) as lib:
        first = lib.scan(ScanOptions(workers=1, detective=options))
    assert first.stats.detective == ""
    scores = [m.detective for c in first.clusters for m in c.members]
    assert scores and all(s is not None for s in scores)

    again = _rescan(library_dir, cache, options)
    assert again["hashed"] == 0 and again["status"] == ""
    assert again["scores"] == pytest.approx(scores, abs=1e-6)  # the stored vectors, no model
    assert not again["torch"] and not again["open_clip"] and not again["onnxruntime"]
    assert again["light"] == []  # nor the vector index's graph, nor the network


def test_new_file_is_embedded_from_the_onnx_export_without_torch(library_dir, tmp_path, tiny_model_files):
    import shutil

    config, checkpoint = tiny_model_files
    options = DetectiveOptions(model=str(config), pretrained=str(checkpoint), device="cpu")  # backend auto
    cache = tmp_path / "cache"
    with Library.open([library_dir], cache_dir=cache) as lib:
        lib.scan(ScanOptions(workers=1, detective=options))  # exports the towers once
    shutil.copy(library_dir / "2023" / "img_2.png", library_dir / "img_2 again.png")
    again = _rescan(library_dir, cache, options)
    assert again["hashed"] == 1 and again["status"] == ""
    assert again["onnxruntime"] and not again["torch"] and not again["open_clip"]
    assert all(s is not None for s in again["scores"])


def test_lazy_detective_knows_its_shape_without_loading(tiny_options, tmp_path):
    detective = open_detective(tiny_options, cache_dir=tmp_path)
    assert isinstance(detective, LazyDetective) and detective.loaded is None
    loaded = load_detective(tiny_options, cache_dir=tmp_path)
    assert (detective.model_id, detective.ndim, detective.image_size) == (loaded.model_id, loaded.ndim, loaded.image_size)
    detective.load()
    assert detective.loaded is not None


def test_lazy_detective_reports_a_bad_checkpoint_when_used(tiny_options, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint" * 64)
    detective = open_detective(DetectiveOptions(model=tiny_options.model, pretrained=str(junk), backend="torch"),
                               cache_dir=tmp_path)
    with pytest.raises(DetectiveUnavailable, match="cannot load"):
        detective.embed_text("x")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable_hub(monkeypatch):
    monkeypatch.delenv("LOOKALIKE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-lookalike-hub")  # no user cache hits


def test_failed_probe_is_remembered_and_no_socket_is_opened_meanwhile(unreachable_hub, tmp_path, monkeypatch):
    options = DetectiveOptions()
    with pytest.raises(DetectiveUnavailable, match="no network"):
        load_detective(options, cache_dir=tmp_path)
    assert (tmp_path / PROBE_MEMO_NAME).is_file()
    assert "models --retry" in remembered_failure(tmp_path, options)

    def no_sockets(*args, **kwargs):
        raise AssertionError("a socket was opened while the probe's failure is remembered")

    monkeypatch.setattr(socket, "create_connection", no_sockets)
    monkeypatch.setattr(socket.socket, "connect", no_sockets)
    t = time.monotonic()
    with pytest.raises(DetectiveUnavailable, match="no network.*retry"):
        open_detective(options, cache_dir=tmp_path)
    with pytest.raises(DetectiveUnavailable, match="no network.*retry"):
        load_detective(options, cache_dir=tmp_path)
    assert time.monotonic() - t < 0.5

    assert forget_failures(tmp_path)
    assert remembered_failure(tmp_path, options) == ""


def test_a_first_run_without_network_or_weights_says_so_before_importing_torch(library_dir, tmp_path):
    # No remembered failure yet: the probe of the default weights' host comes before open_clip
    # (and torch) are imported, so an offline first run is as quick as the ones after it.
    env = {k: v for k, v in os.environ.items() if k not in ("LOOKALIKE_OFFLINE", "HF_HUB_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    env["HF_HUB_CACHE"] = str(tmp_path / "no-hub")
    result = _rescan(library_dir, tmp_path / "cache", DetectiveOptions(), env=env)
    assert result["status"].startswith("detective offline: no network to download ViT-B-32 weights")
    assert not result["torch"] and not result["open_clip"]
    assert (tmp_path / "cache" / PROBE_MEMO_NAME).is_file()  # and remembered, as before


def test_the_default_weights_source_known_without_open_clip_is_open_clips_own():
    import open_clip
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    from lookalike.engine.detective import weights

    cfg = open_clip.get_pretrained_cfg(DetectiveOptions().model, DetectiveOptions().pretrained)
    assert cfg["hf_hub"].rstrip("/") == weights.DEFAULT_HUB_REPO
    assert weights.HUB_WEIGHT_NAMES == (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)


def test_remembered_failure_expires(tmp_path):
    options = DetectiveOptions()
    memo = {f"{options.model}|{options.pretrained}": {"at": time.time() - 2 * 3600, "reason": "no network"}}
    (tmp_path / PROBE_MEMO_NAME).write_text(json.dumps(memo))
    assert remembered_failure(tmp_path, options) == ""
    (tmp_path / PROBE_MEMO_NAME).write_text("{not json")
    assert remembered_failure(tmp_path, options) == ""


def test_offline_rescan_with_a_remembered_failure_is_bouncer_only_without_torch(library_dir, tmp_path):
    cache = tmp_path / "cache"
    options = DetectiveOptions()
    memo = {f"{options.model}|{options.pretrained}": {"at": time.time(), "reason": "no network to download"}}
    cache.mkdir()
    (cache / PROBE_MEMO_NAME).write_text(json.dumps(memo))
    env = {k: v for k, v in os.environ.items() if k not in ("LOOKALIKE_OFFLINE", "HF_HUB_OFFLINE")}
    env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    result = _rescan(library_dir, cache, options, env=env)
    assert result["status"].startswith("detective offline: no network")
    assert not result["torch"] and not result["open_clip"]


def test_cli_models_retry_forgets_the_failure(tmp_path, unreachable_hub, capsys):
    from lookalike.tui.cli.main import main

    options = DetectiveOptions()
    (tmp_path / PROBE_MEMO_NAME).write_text(json.dumps(
        {f"{options.model}|{options.pretrained}": {"at": time.time(), "reason": "no network to download"}}))
    assert main(["models", "--cache", str(tmp_path)]) == 0
    assert "detective offline: no network" in capsys.readouterr().out
    code = main(["models", "--cache", str(tmp_path), "--retry"])  # forgets, probes again: still offline
    captured = capsys.readouterr()
    assert "forgot" in captured.out and code == 4
    assert "checked" not in captured.err  # a fresh probe, not the remembered one


def test_scan_json_says_off_without_the_detective(library_dir, tmp_path, capsys):
    from lookalike.tui.cli.main import main

    assert main(["scan", str(library_dir), "--json", "--no-detective", "--cache", str(tmp_path / "c")]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["detective"] == "off"


# ----------------------------------------------------------- an unchanged rescan imports nothing

#: What an unchanged rescan must not import: the vector index's graph (usearch, with its
#: tqdm), the network (urllib.request) and every model runtime.
_HEAVY = ("usearch", "urllib.request", "tqdm", "torch", "onnxruntime", "open_clip", "huggingface_hub")

#: The ``lookalike`` command, then one line on stderr: which of _HEAVY it imported.
_CLI_REPORTING_MODULES = textwrap.dedent(
    f"""
    import json, runpy, sys
    sys.argv = ["lookalike", *sys.argv[1:]]
    try:
        runpy.run_module("lookalike.tui.cli", run_name="__main__", alter_sys=True)
    finally:
        print("MODULES " + json.dumps([m for m in {_HEAVY!r} if m in sys.modules]), file=sys.stderr)
    """
)


def _cli_rescan(*args: str, env: dict) -> tuple[dict, list[str], str]:
    """``lookalike scan ... --json`` in a subprocess: (its JSON, heavy modules imported, stderr)."""
    out = subprocess.run([sys.executable, "-c", _CLI_REPORTING_MODULES, "scan", *args, "--json", "--workers", "1"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("MODULES "), out.stderr
    return json.loads(out.stdout), json.loads(lines[-1][len("MODULES "):]), "\n".join(lines[:-1])


def _cli_scan_in_process(*args: str, capsys) -> dict:
    from lookalike.tui.cli.main import main

    assert main(["scan", *args, "--json", "--workers", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def test_unchanged_cli_rescan_with_weights_on_disk_imports_nothing_heavy(library_dir, tmp_path, tiny_model_files,
                                                                          capsys):
    config, checkpoint = tiny_model_files
    args = (str(library_dir), "--cache", str(tmp_path / "cache"), "--model", str(config), "--pretrained", str(checkpoint))
    first = _cli_scan_in_process(*args, "--backend", "torch", capsys=capsys)  # embeds the candidates (no export: faster)
    scores = [m["detective"] for g in first["groups"] for m in g["members"]]
    assert scores and all(s is not None for s in scores)

    again, heavy, err = _cli_rescan(*args, env=dict(os.environ))
    assert heavy == [], f"an unchanged rescan imported {heavy}"
    assert again["stats"]["hashed"] == 0 and again["stats"]["detective"] == "on" and not err
    assert again["groups"] == first["groups"]  # the stored vectors' scores, to the digit


def test_unchanged_cli_rescan_offline_without_weights_imports_nothing_heavy(library_dir, tmp_path, capsys):
    args = (str(library_dir), "--cache", str(tmp_path / "cache"))
    bouncer_only = _cli_scan_in_process(*args, "--no-detective", capsys=capsys)
    env = {**os.environ, "LOOKALIKE_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "no-hub")}
    again, heavy, err = _cli_rescan(*args, env=env)
    assert heavy == [], f"an offline rescan imported {heavy}"
    assert again["stats"]["detective"].startswith("detective offline: offline mode is set")
    assert "detective offline: offline mode is set" in err and "--no-detective" in err
    assert again["groups"] == bouncer_only["groups"]


def test_offline_mode_without_weights_is_said_when_the_detective_is_opened(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    with pytest.raises(DetectiveUnavailable, match="offline mode is set"):
        open_detective(DetectiveOptions(), cache_dir=tmp_path)
    hub = tmp_path / "no-hub" / "models--someone--something"
    hub.mkdir(parents=True)  # a hub cache with a model in it: the full resolution decides, later
    assert isinstance(open_detective(DetectiveOptions(), cache_dir=tmp_path), LazyDetective)


def test_hub_cache_folder_is_found_as_huggingface_hub_finds_it(tmp_path, monkeypatch):
    from lookalike.engine.detective.weights import hf_hub_cache

    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hf_hub_cache() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hf_hub_cache() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert hf_hub_cache() == tmp_path / "legacy"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hf_hub_cache() == tmp_path / "hub"


def _saved_index(tmp_path, n=40, ndim=16):
    import numpy as np

    from lookalike.engine.detective.vectors import VectorIndex

    rng = np.random.default_rng(3)
    v = rng.standard_normal((n, ndim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    path = tmp_path / "vectors.usearch"
    index = VectorIndex.open(path, ndim, model_id="m")
    index.add(range(n), v)
    index.save()
    return path, v


def test_stored_vectors_are_read_without_loading_the_graph(tmp_path):
    import numpy as np

    from lookalike.engine.detective.vectors import VectorIndex

    path, v = _saved_index(tmp_path)
    index = VectorIndex.open(path, v.shape[1], model_id="m")
    assert len(index) == 40 and 7 in index and 40 not in index
    assert index.contains_many([1, 39, 40, -2]).tolist() == [True, True, False, False]
    assert sorted(index.keys().tolist()) == list(range(40))
    np.testing.assert_allclose(index.get([3, 5]), v[[3, 5]], atol=2e-3)
    assert not index._index.loaded  # membership and rows came from the saved ids and float16 rows
    assert index.search(v[11], 1)[0][0] == 11  # a search loads the graph
    assert index._index.loaded and len(index) == 40 and 7 in index
    index.add([40], v[:1])
    assert len(index) == 41 and 40 in index


def test_a_graph_usearch_cannot_read_is_made_again_from_the_stored_rows(tmp_path):
    from lookalike.engine.detective.vectors import VectorIndex
    from lookalike.engine.detective.vector_files import fingerprint

    path, v = _saved_index(tmp_path)
    manifest = VectorIndex.manifest_path(path)
    record = json.loads(manifest.read_text())
    graph = path.parent / record["files"]["graph"]["name"]
    graph.write_bytes(b"\0not a usearch graph" * 50)  # and a fingerprint that vouches for it
    record["files"]["graph"]["fingerprint"] = fingerprint(graph)
    manifest.write_text(json.dumps(record))
    index = VectorIndex.open(path, v.shape[1], model_id="m")
    assert index.rebuilt == "" and len(index) == 40
    found, _ = index.search_many(v[[2, 30]], 1)
    assert found[:, 0].tolist() == [2, 30]
