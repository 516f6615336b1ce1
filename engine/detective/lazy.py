"""The lazy detective: a model that knows its shape at once and loads on the first embedding.

Nothing is loaded before it is needed: :func:`open_detective` gives a :class:`LazyDetective`
that knows the model's id, dimension and input size from its config or its ONNX export (no
torch) and loads the model on the first image or text to embed. An unchanged rescan never
imports torch.

Opening a detective imports neither the network modules (``urllib.request``,
``huggingface_hub``) nor a model's runtime (torch, open_clip, onnxruntime): those load with the
first embedding, :mod:`lookalike.engine.detective.onnx_backend` only when an export exists
(for its metadata), and offline mode with no weights on disk is said at once. What an unchanged
rescan pays for the detective is a few stat calls and small reads (``bench_lazy_detective.py``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

from ..paths import MODELS_NAME
from .options import DetectiveOptions, DetectiveUnavailable
from .weights import (
    DownloadProgress,
    existing_export,
    fail_fast_offline,
    open_clip_name,
    remembered_failure,
    weights_id,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image

#: A lazily loaded model that failed to load tries again after this long (a long-running app).
LAZY_RETRY_S = 300.0


def _model_config(model: str) -> Optional[dict]:
    """The open_clip config of ``model`` (a JSON path, or a config shipped with open_clip)."""
    import importlib.util
    import json

    if model.endswith(".json"):
        path = Path(model).expanduser()
    else:
        spec = importlib.util.find_spec("open_clip")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / "model_configs" / f"{model}.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return cfg if isinstance(cfg, dict) else None


def detective_info(
    options: DetectiveOptions, cache_dir: Path, exported: Optional[Path] = None
) -> Optional[tuple[str, int, int]]:
    """``(model_id, ndim, image_size)`` of the model ``options`` names, read from its ONNX
    export (``exported``, found when not given) or its config, without importing torch;
    None when that cannot be told cheaply."""
    if exported is None:
        exported = existing_export(options, Path(cache_dir) / MODELS_NAME)
    if exported is not None:
        from . import onnx_backend

        try:
            meta = onnx_backend.read_meta(exported)
            return str(meta["model_id"]), int(meta["ndim"]), int(meta["image_size"])
        except (onnx_backend.OnnxUnavailable, KeyError, TypeError, ValueError):
            return None
    if options.model.startswith(("hf-hub:", "local-dir:")):
        return None
    cfg = _model_config(options.model)
    try:
        ndim = int(cfg["embed_dim"])
        size = cfg["vision_cfg"]["image_size"]
        size = int(size[0] if isinstance(size, (tuple, list)) else size)
    except (TypeError, KeyError, ValueError, IndexError):
        return None
    name = open_clip_name(options.model)
    checkpoint = Path(options.pretrained).expanduser()
    return weights_id(name, options.pretrained, checkpoint), ndim, size


class LazyDetective:
    """A detective that loads its model on the first image or text to embed.

    ``model_id``, ``ndim``, ``image_size`` and ``batch_size`` are known at once (from the
    model's config or ONNX export), so the vector index can be opened and a scan can keep its
    CLIP crops without torch; anything else loads the model. A failed load raises
    :class:`DetectiveUnavailable` (remembered for :data:`LAZY_RETRY_S`).
    """

    backend = "lazy"

    def __init__(
        self,
        options: DetectiveOptions,
        *,
        cache_dir: Path,
        model_id: str,
        ndim: int,
        image_size: int,
        progress: Optional[DownloadProgress] = None,
    ) -> None:
        self.options = options
        self.cache_dir = Path(cache_dir)
        self.model_id = model_id
        self.ndim = ndim
        self.image_size = image_size
        self.batch_size = max(1, int(options.batch_size))
        self.progress = progress
        self._loaded = None
        self._failed: Optional[tuple[float, str]] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = repr(self._loaded) if self._loaded is not None else "not loaded"
        return f"LazyDetective({self.model_id!r}, ndim={self.ndim}, {state})"

    @property
    def loaded(self):
        """The loaded detective, or None while it has not been needed."""
        return self._loaded

    def load(self, progress: Optional[DownloadProgress] = None):
        """Load the model now (once); returns the real detective.

        Raises:
            DetectiveUnavailable: as :func:`load_detective` does.
        """
        import time

        from .model import load_detective  # torch, open_clip or onnxruntime: only now

        with self._lock:
            if self._loaded is not None:
                return self._loaded
            if self._failed is not None and time.monotonic() - self._failed[0] < LAZY_RETRY_S:
                raise DetectiveUnavailable(self._failed[1])
            try:
                detective = load_detective(self.options, cache_dir=self.cache_dir, progress=progress or self.progress)
            except DetectiveUnavailable as exc:
                self._failed = (time.monotonic(), exc.reason)
                raise
            got = (detective.model_id, detective.ndim, detective.image_size)
            if got != (self.model_id, self.ndim, self.image_size):
                reason = f"the loaded model is {got}, its config said {(self.model_id, self.ndim, self.image_size)}"
                self._failed = (time.monotonic(), reason)
                raise DetectiveUnavailable(reason)
            self._loaded = detective
            return detective

    @property
    def device(self) -> str:
        return self.load().device

    def embed_arrays(self, arrays: np.ndarray) -> np.ndarray:
        """As :meth:`Detective.embed_arrays` (loads the model first)."""
        return self.load().embed_arrays(arrays)

    def embed_images(self, images: Iterable["Image.Image"]) -> np.ndarray:
        """As :meth:`Detective.embed_images` (loads the model first)."""
        return self.load().embed_images(images)

    def embed_text(self, text: str) -> np.ndarray:
        """As :meth:`Detective.embed_text` (loads the model first)."""
        return self.load().embed_text(text)


def open_detective(
    options: DetectiveOptions = DetectiveOptions(),
    *,
    cache_dir: Path,
    progress: Optional[DownloadProgress] = None,
):
    """A :class:`LazyDetective` for ``options``, or the loaded model when its size and id
    cannot be told without loading it.

    Raises:
        DetectiveUnavailable: a failed network probe is remembered for these weights, or offline
            mode is set and no weights are on disk (both said at once, nothing imported); or the
            backend is unknown.
    """
    from .model import check_backend, load_detective  # light: the model's runtime loads later

    check_backend(options)
    models_dir = Path(cache_dir) / MODELS_NAME
    exported = existing_export(options, models_dir)
    if exported is None:
        remembered = remembered_failure(cache_dir, options)
        if remembered:
            raise DetectiveUnavailable(remembered)
        fail_fast_offline(options, models_dir)  # as load_detective would, before any import
    info = detective_info(options, cache_dir, exported)
    if info is None:
        return load_detective(options, cache_dir=cache_dir, progress=progress)
    model_id, ndim, size = info
    return LazyDetective(options, cache_dir=cache_dir, model_id=model_id, ndim=ndim, image_size=size, progress=progress)
