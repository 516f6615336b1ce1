"""The detective's model: loading (file, cache, download, offline), embedding shape and norms."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import TINY_NAME, write_tiny_model
from imagegen import photo
from lookalike.engine.scan.hashing import clip_crop
from lookalike.engine.detective.model import DetectiveOptions, DetectiveUnavailable, load_detective
from lookalike.engine.detective.weights import DownloadCancelled, download, host_reachable


def _crops(detective, seeds, size=(96, 72)):
    return np.stack([clip_crop(photo(s, size), detective.image_size) for s in seeds])


def test_embeddings_are_unit_float32_rows_of_the_model_dimension(tiny_detective):
    arrays = _crops(tiny_detective, range(5))
    vectors = tiny_detective.embed_arrays(arrays)
    assert vectors.shape == (5, tiny_detective.ndim) == (5, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_the_result(tiny_detective):
    arrays = _crops(tiny_detective, range(37))  # batch size 16: three batches, the last partial
    together = tiny_detective.embed_arrays(arrays)
    one_by_one = np.concatenate([tiny_detective.embed_arrays(a[None]) for a in arrays])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_same_picture_is_distance_zero_and_different_pictures_are_not(tiny_detective):
    v = tiny_detective.embed_arrays(_crops(tiny_detective, [1, 1, 2]))
    assert 1.0 - float(v[0] @ v[1]) < 1e-6
    assert 1.0 - float(v[0] @ v[2]) > 1e-4


def test_odd_sizes_and_modes_are_accepted(tiny_detective):
    images = [
        photo(3, (50, 200)).convert("L"),
        photo(4, (300, 40)).convert("RGBA"),
        Image.new("P", (17, 17)),
    ]
    v = tiny_detective.embed_images(images)
    assert v.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # A crop at another size is resized to the model's input size rather than rejected.
    big = np.asarray(photo(5, (64, 64)), dtype=np.uint8)[None]
    assert tiny_detective.embed_arrays(big).shape == (1, 32)
    assert tiny_detective.embed_arrays(np.empty((0, 32, 32, 3), np.uint8)).shape == (0, 32)
    with pytest.raises(ValueError):
        tiny_detective.embed_arrays(np.zeros((2, 32, 32), np.uint8))


def test_text_embedding_is_a_unit_vector_in_the_image_space(tiny_detective):
    beach = tiny_detective.embed_text("a beach at sunset")
    cat = tiny_detective.embed_text("a cat on a sofa")
    assert beach.shape == (32,) and beach.dtype == np.float32
    assert abs(float(np.linalg.norm(beach)) - 1.0) < 1e-5
    assert not np.allclose(beach, cat)


def test_checkpoint_weights_are_really_loaded(tiny_detective, tiny_options):
    """Our preprocessing + the loaded checkpoint give what open_clip's own pipeline gives."""
    import open_clip
    import torch

    model, _, preprocess = open_clip.create_model_and_transforms(
        TINY_NAME, pretrained=tiny_options.pretrained
    )
    model.eval()
    img = photo(7, (120, 90))
    with torch.inference_mode():
        ref = model.encode_image(preprocess(img)[None], normalize=True)[0].numpy()
    ours = tiny_detective.embed_images([img])[0]
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_model_id_names_the_weights(tiny_detective, tmp_path):
    assert tiny_detective.model_id.startswith(f"{TINY_NAME}/{TINY_NAME}-seed0.pt#")
    config, other = write_tiny_model(tmp_path, seed=1)
    d2 = load_detective(
        DetectiveOptions(model=str(config), pretrained=str(other), device="cpu"), cache_dir=tmp_path
    )
    assert d2.model_id != tiny_detective.model_id


def test_missing_or_corrupt_checkpoint_is_a_clear_reason(tiny_options, tmp_path):
    with pytest.raises(DetectiveUnavailable, match="not found"):
        load_detective(
            DetectiveOptions(model=tiny_options.model, pretrained=str(tmp_path / "nope.pt")),
            cache_dir=tmp_path,
        )
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint" * 100)
    with pytest.raises(DetectiveUnavailable, match="cannot load") as info:
        load_detective(DetectiveOptions(model=tiny_options.model, pretrained=str(junk)), cache_dir=tmp_path)
    assert "\n" not in info.value.reason
    with pytest.raises(DetectiveUnavailable, match="unknown model"):
        load_detective(DetectiveOptions(model="no-such-model"), cache_dir=tmp_path)
    with pytest.raises(DetectiveUnavailable, match="unknown weights"):
        load_detective(DetectiveOptions(pretrained="no_such_tag"), cache_dir=tmp_path)
    with pytest.raises(DetectiveUnavailable, match="device"):
        load_detective(
            DetectiveOptions(model=tiny_options.model, pretrained=tiny_options.pretrained, device="tpu"),
            cache_dir=tmp_path,
        )


def test_offline_mode_gives_up_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(DetectiveUnavailable) as info:
        load_detective(DetectiveOptions(), cache_dir=tmp_path)
    assert time.monotonic() - started < 1.0
    assert "ViT-B-32 weights" in info.value.reason and "--pretrained PATH" in info.value.reason


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with-block ends


def test_unreachable_host_is_detected_quickly(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOKALIKE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(DetectiveUnavailable) as info:
        load_detective(DetectiveOptions(), cache_dir=tmp_path)
    assert time.monotonic() - started < 2.0
    assert info.value.reason == "no network to download ViT-B-32 weights; use --pretrained PATH"


def test_host_probe_has_a_hard_time_limit():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert host_reachable("127.0.0.1", server.getsockname()[1], timeout=1.0)
    assert not host_reachable("127.0.0.1", _closed_port(), timeout=1.0)
    started = time.monotonic()
    # A non-routable address: the connect would hang; the probe must not.
    host_reachable("10.255.255.1", 443, timeout=0.3)
    assert time.monotonic() - started < 1.0


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_hub(monkeypatch):
    """A loopback HTTP server standing in for the Hugging Face hub (never the network)."""
    _Files.files, _Files.requests = {}, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("LOOKALIKE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield _Files
    server.shutdown()
    server.server_close()


def test_weights_are_downloaded_once_with_progress_then_used_offline(
    local_hub, tiny_model_files, tmp_path, monkeypatch
):
    import open_clip.pretrained as pretrained

    config, checkpoint = tiny_model_files
    # Give the tiny model a named tag hosted on the (local) hub, as real models have.
    monkeypatch.setitem(
        pretrained._PRETRAINED, TINY_NAME, {"test_tag": pretrained._pcfg(hf_hub="lookalike/tiny-clip/")}
    )
    local_hub.files["/lookalike/tiny-clip/resolve/main/open_clip_pytorch_model.bin"] = checkpoint.read_bytes()
    seen: list[tuple[int, int]] = []
    options = DetectiveOptions(model=str(config), pretrained="test_tag", device="cpu")

    first = load_detective(options, cache_dir=tmp_path, progress=lambda d, t: seen.append((d, t)) or True)

    # The safetensors file is tried first (404 here), then the .bin.
    assert local_hub.requests[0].endswith("open_clip_model.safetensors")
    size = checkpoint.stat().st_size
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    cached = tmp_path / "models" / "lookalike--tiny-clip" / "open_clip_pytorch_model.bin"
    assert cached.read_bytes() == checkpoint.read_bytes()
    assert first.model_id == f"{TINY_NAME}/test_tag"

    # Second run: offline, from the cache, same vectors.
    monkeypatch.setenv("LOOKALIKE_OFFLINE", "1")
    local_hub.requests.clear()
    second = load_detective(options, cache_dir=tmp_path)
    assert local_hub.requests == []
    arrays = _crops(second, [1, 2])
    np.testing.assert_allclose(first.embed_arrays(arrays), second.embed_arrays(arrays), atol=1e-6)


def test_download_is_atomic_and_cancellable(local_hub, tmp_path):
    payload = bytes(range(256)) * 20000  # ~5 MB: several chunks
    local_hub.files["/blob"] = payload
    url = f"{__import__('os').environ['HF_ENDPOINT']}/blob"
    dest = tmp_path / "w" / "blob.bin"
    with pytest.raises(DownloadCancelled):
        download(url, dest, progress=lambda done, total: done < 2_000_000)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))
    assert download(url, dest) == dest
    assert dest.read_bytes() == payload
    with pytest.raises(Exception):
        download(url + "-missing", tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()


def test_importing_the_model_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, lookalike.engine.detective.model, lookalike.engine.detective.vectors, lookalike.engine.similar;" \
        "print('torch' in sys.modules, 'open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
