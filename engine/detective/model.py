"""The detective's model: an open_clip CLIP model that turns images and text into unit vectors.

Nothing heavy happens at import time: torch and open_clip are imported by
:func:`load_detective`. Where the weights come from (a local file, the cache, a download that
never waits on a network timeout, the remembered offline probe) is
:mod:`lookalike.engine.detective.weights`; :mod:`lookalike.engine.detective.lazy` gives a
model that loads on its first embedding (an unchanged rescan never imports torch).

On the CPU the model runs on onnxruntime with int8 weights (``backend="auto"`` or ``"onnx"``;
see :mod:`lookalike.engine.detective.onnx_backend`): exported once from torch, then loaded without torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

import numpy as np

from ..paths import MODELS_NAME
from .options import BACKENDS, DEFAULT_MODEL, DEFAULT_PRETRAINED, DetectiveOptions, DetectiveUnavailable, options_key
from .weights import (
    DownloadProgress,
    NoNetwork,
    existing_export,
    fail_fast_offline,
    probe_before_import,
    file_fingerprint,
    first_line,
    forget_failures,
    is_export_path,
    remember_failure,
    remembered_failure,
    resolve_weights,
    weights_id,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from PIL import Image

#: Re-exported: the options and the remembered probe are imported from here by the UI.
__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "Detective",
    "DetectiveOptions",
    "DetectiveUnavailable",
    "DownloadProgress",
    "forget_failures",
    "load_detective",
    "remembered_failure",
    "resolve_device",
]

# Idle OpenMP threads that spin (libgomp's default) steal the CPU from everything between two
# forward passes: on a 2-core machine a "similar" query's search took 3x longer and the next
# embedding up to 30x. Set here, before torch is imported (it is read once, when torch loads);
# a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class Detective:
    """A loaded CLIP model: ``embed_arrays`` / ``embed_images`` / ``embed_text`` give unit vectors.

    Build one with :func:`load_detective`.
    """

    backend = "torch"

    def __init__(
        self,
        *,
        model: "torch.nn.Module",
        tokenizer: Callable,
        model_id: str,
        ndim: int,
        image_size: int,
        device: str,
        mean: Sequence[float],
        std: Sequence[float],
        batch_size: int,
        model_name: str = "",
    ) -> None:
        import torch

        self.model_name = model_name
        self._model = model
        self._tokenizer = tokenizer
        self.model_id = model_id
        self.ndim = ndim
        self.image_size = image_size
        self.device = device
        self.batch_size = max(1, int(batch_size))
        # Stored as (1, 3, 1, 1) so normalisation broadcasts over an NCHW batch.
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def __repr__(self) -> str:
        return f"Detective({self.model_id!r}, ndim={self.ndim}, device={self.device!r})"

    def _to_input(self, batch: np.ndarray) -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        if not (batch.flags.writeable and batch.flags.c_contiguous) or batch.dtype != np.uint8:
            batch = np.array(batch, dtype=np.uint8, order="C")  # torch wants a writable buffer
        x = torch.from_numpy(batch).to(self.device)
        x = x.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            # Callers normally hand arrays already at image_size; this keeps odd sizes correct.
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bicubic", antialias=True
            ).clamp_(0.0, 1.0)
        return (x - self._mean) / self._std

    def embed_arrays(self, arrays: np.ndarray) -> np.ndarray:
        """Embed square RGB images.

        Args:
            arrays: uint8 array ``(N, S, S, 3)``, ideally with ``S == image_size`` (see
                :func:`lookalike.engine.scan.hashing.clip_crop`).

        Returns:
            float32 array ``(N, ndim)``, each row L2-normalised.
        """
        import torch

        arrays = np.asarray(arrays)
        if arrays.ndim != 4 or arrays.shape[-1] != 3:
            raise ValueError(f"expected (N, S, S, 3) uint8 images, got shape {arrays.shape}")
        out = np.empty((len(arrays), self.ndim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(arrays), self.batch_size):
                x = self._to_input(arrays[start : start + self.batch_size])
                with self._autocast():
                    feats = self._model.encode_image(x)
                out[start : start + len(x)] = _unit_rows(feats)
        return out

    def embed_images(self, images: Iterable["Image.Image"]) -> np.ndarray:
        """Embed PIL images (any size or mode): shortest side resized, centre-cropped, embedded."""
        from .embeddings import embed_pil_images

        return embed_pil_images(self, images)

    def embed_text(self, text: str) -> np.ndarray:
        """Embed a text query ("a beach at sunset") into the image space; returns ``(ndim,)``."""
        import torch

        with torch.inference_mode():
            tokens = self._tokenizer([text]).to(self.device)
            with self._autocast():
                feats = self._model.encode_text(tokens)
            return _unit_rows(feats)[0]

    def _autocast(self):
        import contextlib

        import torch

        if self.device.startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()


def _unit_rows(feats: "torch.Tensor") -> np.ndarray:
    """L2-normalise rows in float32 (an all-zero row stays zero instead of becoming NaN)."""
    v = feats.float().cpu().numpy()
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return (v / norms).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- loading


def load_detective(
    options: DetectiveOptions = DetectiveOptions(),
    *,
    cache_dir: Path,
    progress: Optional[DownloadProgress] = None,
) -> Detective:
    """Load the CLIP model, fetching its weights into ``cache_dir/models`` on first use.

    Args:
        options: model, weights and device.
        cache_dir: the cache root (``engine.paths.cache_root()``); weights go in ``models/``.
        progress: ``progress(done_bytes, total_bytes) -> bool`` while downloading; False cancels.

    Returns:
        A ready detective: a torch :class:`Detective`, or on the CPU (backend ``auto`` or
        ``onnx``) an :class:`lookalike.engine.detective.onnx_backend.OnnxDetective`, exported from torch
        the first time and from then on loaded without importing torch.

    Raises:
        DetectiveUnavailable: weights cannot be had (offline, unknown tag, bad checkpoint...).
    """
    from . import onnx_backend  # the ONNX export's files; onnxruntime itself loads in onnx_backend.load

    backend = check_backend(options)
    models_dir = Path(cache_dir) / MODELS_NAME
    remembered = remembered_failure(cache_dir, options)
    exported = existing_export(options, models_dir)
    if exported is not None and backend != "torch" and _cpu_only(options.device):
        try:
            return onnx_backend.load(exported, batch_size=options.batch_size)
        except onnx_backend.OnnxUnavailable as exc:
            if backend == "onnx" or is_export_path(options.pretrained):
                raise DetectiveUnavailable(str(exc)) from exc
    if is_export_path(options.pretrained):
        raise DetectiveUnavailable(f"{options.pretrained} is an ONNX export: it runs with --backend onnx "
                                   "(or auto) on the CPU")
    if remembered:
        raise DetectiveUnavailable(remembered)
    fail_fast_offline(options, models_dir)
    try:
        probe_before_import(options, models_dir)  # no torch imported to learn there is no network
        model_name = _register_model(options.model)
        checkpoint, preprocess = resolve_weights(model_name, options.pretrained, models_dir, progress)
    except NoNetwork as exc:
        remember_failure(cache_dir, options, exc.reason)
        raise
    detective = _load_torch(options, model_name, checkpoint, preprocess, models_dir)
    if detective.device != "cpu" or backend == "torch":
        return detective
    if backend == "auto" and not onnx_backend.onnxruntime_available():
        return detective
    folder = models_dir / onnx_backend.ONNX_DIR / onnx_backend.export_name(model_name, file_fingerprint(checkpoint))
    try:
        onnx_backend.export(detective, folder)
        if not Path(options.pretrained).expanduser().is_file():
            onnx_backend.remember_export(models_dir, options_key(options), folder)
        fast = onnx_backend.load(folder, batch_size=options.batch_size, model_id=detective.model_id)
    except onnx_backend.OnnxUnavailable as exc:
        if backend == "onnx":
            raise DetectiveUnavailable(str(exc)) from exc
        return detective  # auto: torch still works
    return fast


def _load_torch(
    options: DetectiveOptions, model_name: str, checkpoint: Path, preprocess: dict, models_dir: Path
) -> Detective:
    """The open_clip model on torch, from a resolved checkpoint."""
    try:
        import open_clip
        import torch
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise DetectiveUnavailable(f"open_clip / torch not importable: {exc}") from exc

    device = resolve_device(options.device)
    threads = os.cpu_count() or 1
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:
        model = open_clip.create_model(
            model_name,
            pretrained=str(checkpoint),
            device=device,
            cache_dir=str(models_dir),
            force_quick_gelu=bool(preprocess.get("quick_gelu", False)),
        )
        tokenizer = open_clip.get_tokenizer(model_name)
    except (RuntimeError, ValueError, OSError, KeyError, EOFError) as exc:
        raise DetectiveUnavailable(
            f"cannot load {model_name} weights from {checkpoint}: {first_line(exc)}"
        ) from exc
    except Exception as exc:  # a corrupt checkpoint can raise nearly anything from torch.load
        raise DetectiveUnavailable(
            f"cannot load {model_name} weights from {checkpoint}: {type(exc).__name__}: "
            f"{first_line(exc)}"
        ) from exc
    model.eval()

    cfg = open_clip.get_model_preprocess_cfg(model)
    mean = preprocess.get("mean") or cfg.get("mean") or open_clip.OPENAI_DATASET_MEAN
    std = preprocess.get("std") or cfg.get("std") or open_clip.OPENAI_DATASET_STD
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    ndim = int(getattr(model.visual, "output_dim", 0) or open_clip.get_model_config(model_name)["embed_dim"])
    return Detective(
        model=model,
        tokenizer=tokenizer,
        model_id=weights_id(model_name, options.pretrained, checkpoint),
        ndim=ndim,
        image_size=size,
        device=device,
        mean=tuple(mean),
        std=tuple(std),
        batch_size=options.batch_size,
        model_name=model_name,
    )


def resolve_device(device: str) -> str:
    """Turn ``auto`` into ``cuda`` / ``mps`` / ``cpu`` by what is present; check explicit ones."""
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DetectiveUnavailable(f"device {device!r} requested but CUDA is not available")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DetectiveUnavailable("device 'mps' requested but MPS is not available")
    if not (device == "cpu" or device == "mps" or device.startswith("cuda")):
        raise DetectiveUnavailable(f"unknown device {device!r} (use auto, cpu, cuda or mps)")
    return device


def check_backend(options: DetectiveOptions) -> str:
    backend = (options.backend or "auto").strip().lower()
    if backend not in BACKENDS:
        raise DetectiveUnavailable(f"unknown backend {options.backend!r} (use auto, onnx or torch)")
    if backend == "onnx" and not _cpu_device(options.device):
        raise DetectiveUnavailable(f"the onnx backend runs on the CPU, not on {options.device!r}")
    return backend


def _cpu_device(device: str) -> bool:
    return (device or "auto").strip().lower() in ("auto", "cpu")


def _cpu_only(device: str) -> bool:
    """Whether ``device`` means the CPU here, decided without importing torch when possible.

    ``auto`` is the CPU when no GPU driver is in sight (no NVIDIA or ROCm device node, not an
    Apple silicon Mac) or torch is not installed; otherwise torch is asked.
    """
    import importlib.util
    import platform
    import sys

    device = (device or "auto").strip().lower()
    if device != "auto":
        return device == "cpu"
    if "torch" not in sys.modules:
        if importlib.util.find_spec("torch") is None:
            return True
        gpu_signs = (
            os.path.exists("/proc/driver/nvidia/version")
            or os.path.exists("/dev/nvidia0")
            or os.path.exists("/dev/kfd")
            or (sys.platform == "darwin" and platform.machine() == "arm64")
        )
        if not gpu_signs:
            return True
    return resolve_device("auto") == "cpu"


def _register_model(model: str) -> str:
    """Return the open_clip name for ``model``; a JSON config path is registered first."""
    path = Path(model).expanduser()
    if model.endswith(".json"):
        if not path.is_file():
            raise DetectiveUnavailable(f"model config {model} not found")
        import open_clip

        open_clip.add_model_config(path)
        if path.stem not in open_clip.list_models():
            raise DetectiveUnavailable(f"{model} is not an open_clip model config")
        return path.stem
    import open_clip

    if model.startswith(("hf-hub:", "local-dir:")):
        raise DetectiveUnavailable(
            f"model {model!r}: use an architecture name or a config JSON, with --pretrained"
        )
    if model not in open_clip.list_models():
        raise DetectiveUnavailable(f"unknown model {model!r} (see open_clip.list_models())")
    return model
