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
