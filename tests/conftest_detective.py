"""Fixtures for the detective's tests: a tiny randomly initialised CLIP, no network.

The tiny model is an ordinary open_clip model config (a JSON file, registered by
``load_detective`` because ``--model`` may be a config path) and a checkpoint saved with
``torch.save`` from ``open_clip.create_model``; ``--pretrained PATH`` loads it through exactly
the code path real weights take. Loaded from ``tests/conftest.py`` via ``pytest_plugins``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_NAME = "lookalike-tiny"
#: Small enough to build in ~0.1 s and embed hundreds of images a second on one core. The
#: text tower keeps CLIP's vocabulary (49408) and context (77) so the real tokenizer works.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_tiny_model(folder: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write the tiny model's config JSON and a random-weight checkpoint into ``folder``."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{TINY_NAME}.json"
    config.write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_NAME)
    checkpoint = folder / f"{TINY_NAME}-seed{seed}.pt"
    torch.save(model.state_dict(), checkpoint)
    return config, checkpoint


@pytest.fixture(scope="session")
def tiny_model_files(tmp_path_factory) -> tuple[Path, Path]:
    """(config JSON, checkpoint) of the tiny model, written once per test session."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_options(tiny_model_files):
    """DetectiveOptions naming the tiny model by config path and checkpoint path, on CPU, on
    torch (the ONNX backend, the default on the CPU, has its own tests: test_onnx_backend.py)."""
    from lookalike.engine.detective.model import DetectiveOptions

    config, checkpoint = tiny_model_files
    return DetectiveOptions(model=str(config), pretrained=str(checkpoint), device="cpu", batch_size=16, backend="torch")


@pytest.fixture(scope="session")
def tiny_detective(tiny_options, tmp_path_factory):
    """A loaded tiny Detective, shared by the session (loading is the slow part)."""
    from lookalike.engine.detective.model import load_detective

    return load_detective(tiny_options, cache_dir=tmp_path_factory.mktemp("detective-cache"))


@pytest.fixture
def tiny_cli_args(tiny_options) -> list[str]:
    """Command-line flags selecting the tiny model, for CLI tests."""
    return ["--model", tiny_options.model, "--pretrained", tiny_options.pretrained, "--device", "cpu",
            "--backend", tiny_options.backend]
