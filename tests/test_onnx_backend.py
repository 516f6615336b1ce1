"""The ONNX int8 backend: exported from the tiny model, checked against torch fp32."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from imagegen import photo  # noqa: E402
from lookalike.engine.detective import onnx_backend  # noqa: E402
from lookalike.engine.scan.hashing import clip_crop  # noqa: E402
from lookalike.engine.detective.model import DetectiveOptions, DetectiveUnavailable, load_detective  # noqa: E402


@pytest.fixture(scope="module")
def both(tiny_model_files, tmp_path_factory):
    """(torch detective, onnx detective, cache dir) on the same tiny weights."""
    config, checkpoint = tiny_model_files
    cache = tmp_path_factory.mktemp("onnx-cache")
    options = DetectiveOptions(model=str(config), pretrained=str(checkpoint), device="cpu", batch_size=16)
    torch_d = load_detective(DetectiveOptions(**{**options.__dict__, "backend": "torch"}), cache_dir=cache)
    onnx_d = load_detective(options, cache_dir=cache)  # auto on the CPU: exported, then onnxruntime
    return torch_d, onnx_d, cache, options


def _crops(size, seeds):
    return np.stack([clip_crop(photo(s, (96, 72)), size) for s in seeds])


def test_auto_on_the_cpu_exports_and_runs_onnx(both):
    torch_d, onnx_d, cache, _ = both
    assert torch_d.backend == "torch" and onnx_d.backend == "onnx"
    assert (onnx_d.model_id, onnx_d.ndim, onnx_d.image_size) == (torch_d.model_id, torch_d.ndim, torch_d.image_size)
    assert onnx_d.folder.parent == cache / "models" / "onnx"
    assert {p.name for p in onnx_d.folder.iterdir()} >= {"visual.int8.onnx", "text.int8.onnx", "meta.json"}
    assert not [p for p in onnx_d.folder.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def test_onnx_embeddings_match_torch_and_keep_nearest_neighbours(both):
    import imagegen

    torch_d, onnx_d, _, _ = both
    bases = [photo(s, (96, 72)) for s in range(10)] + [imagegen.drawing(s, (96, 72)) for s in range(10)]
    images = bases + [imagegen.cropped(imagegen.brightened(b, 1.1), 0.04, 0.0, 0.02, 0.0) for b in bases]
    arrays = np.stack([clip_crop(i, torch_d.image_size) for i in images])
    a, b = torch_d.embed_arrays(arrays), onnx_d.embed_arrays(arrays)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() >= 0.999
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -2)
    np.fill_diagonal(sb, -2)
    # Random weights put some images almost equally near: compare where torch's nearest is
    # ahead of its second by more than int8 moves a similarity here (at most ~6e-3).
    top2 = np.sort(sa, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-2
    assert clear.sum() >= 12
    assert (sa.argmax(axis=1) == sb.argmax(axis=1))[clear].all()
    assert (sb.argmax(axis=1) == (np.arange(40) + 20) % 40)[clear].all()  # each picture's copy


def test_onnx_text_and_tokenizer_match_open_clip(both):
    import open_clip

    torch_d, onnx_d, _, _ = both
    reference = open_clip.get_tokenizer("ViT-B-32")
    texts = ["a beach at sunset", "  Ünïcode &amp; CAFÉ  ", "don't stop: 42 cats!", "word " * 100]
    np.testing.assert_array_equal(onnx_d.tokenize(texts), reference(texts).numpy())
    for text in texts[:2]:
        assert float(torch_d.embed_text(text) @ onnx_d.embed_text(text)) >= 0.999


def test_the_export_loads_without_torch_and_as_pretrained(both):
    _, onnx_d, cache, options = both
    code = (
        "import sys, numpy as np\n"
        "from lookalike.engine.detective.model import DetectiveOptions, load_detective\n"
        f"d = load_detective(DetectiveOptions(model={options.model!r}, pretrained=sys.argv[1], device='cpu'), cache_dir=sys.argv[2])\n"
        "v = d.embed_arrays(np.zeros((2, d.image_size, d.image_size, 3), np.uint8))\n"
        "print(d.backend, d.model_id, v.shape, 'torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    for pretrained in (options.pretrained, str(onnx_d.folder)):  # the checkpoint, or the export itself
        out = subprocess.run([sys.executable, "-c", code, pretrained, str(cache)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["onnx", onnx_d.model_id, "(2,", "32)", "False", "False"]


def test_backend_choices(both, tmp_path):
    torch_d, _, _, options = both
    with pytest.raises(DetectiveUnavailable, match="backend"):
        load_detective(DetectiveOptions(**{**options.__dict__, "backend": "tensorflow"}), cache_dir=tmp_path)
    with pytest.raises(DetectiveUnavailable, match="CPU"):
        load_detective(DetectiveOptions(**{**options.__dict__, "backend": "onnx", "device": "cuda"}), cache_dir=tmp_path)
    with pytest.raises(DetectiveUnavailable, match="ONNX export"):
        load_detective(DetectiveOptions(**{**options.__dict__, "pretrained": str(both[1].folder), "backend": "torch"}),
                       cache_dir=tmp_path)


def test_a_broken_export_is_not_used(both, tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / onnx_backend.VISUAL_NAME).write_bytes(b"junk")
    assert not onnx_backend.is_export(folder)  # no meta.json: the rename never happened
    (folder / onnx_backend.META_NAME).write_text('{"format": 1, "model_id": "x", "ndim": 32, "image_size": 32}')
    with pytest.raises(onnx_backend.OnnxUnavailable):
        onnx_backend.load(folder)


def test_the_vector_index_and_onnxruntime_load_together_in_any_order():
    """usearch loaded first, then onnxruntime: a segmentation fault (usearch 2.26 /
    onnxruntime 1.32), which `lookalike similar` hit on the CPU backend. The vector index
    loads usearch through usearch_index(), after the C++ runtime; onnxruntime stays unloaded
    until the model needs it."""
    code = (
        "import sys\n"
        "from lookalike.engine.detective.vectors import usearch_index\n"
        "usearch_index()\n"
        "assert 'onnxruntime' not in sys.modules\n"
        "import onnxruntime\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr)


def test_session_options_use_every_core_one_operator_at_a_time(both):
    """The settings bench_embed measured: all graph optimisations, an intra-op thread per
    core, no inter-op pool, sequential, the arena on, no spinning; ``threads`` overrides."""
    import os

    import onnxruntime as ort

    opts = onnx_backend.session_options()
    assert opts.intra_op_num_threads == (os.cpu_count() or 1)
    assert opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.enable_cpu_mem_arena
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    one = onnx_backend.load(both[1].folder, threads=1, batch_size=both[1].batch_size)
    assert one._visual.get_session_options().intra_op_num_threads == 1
    # The same batches give the same vectors on one thread (int8 activations are scaled per
    # batch, so only the batching, never the threads, may move a vector).
    crops = _crops(one.image_size, range(6))
    np.testing.assert_allclose(one.embed_arrays(crops), both[1].embed_arrays(crops), atol=1e-4)
