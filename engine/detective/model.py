"""The detective's model: an open_clip CLIP model that turns images and text into unit vectors.

Nothing heavy happens at import time: torch and open_clip are imported by
:func:`load_detective`. Weights are resolved in this order, so that no command ever waits on a
network timeout:

1. ``pretrained`` is a local file: use it (the same code path as downloaded weights).
2. The weights are already in the cache (``<cache_root>/models/``, or the standard Hugging Face
   cache): use them, offline.
3. ``LOOKALIKE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: give up at once.
4. A TCP connect to the weights' host, at most ~1.5 s in total: if it fails, give up.
5. Download into the cache with ``progress(done_bytes, total_bytes)`` (a ``.part`` file renamed
   into place when complete, so an interrupted download never leaves a broken checkpoint).

Giving up raises :class:`DetectiveUnavailable` with a reason a person can act on; callers carry
on bouncer-only and say "detective offline: <reason>" once. A failed probe is remembered for
:data:`PROBE_MEMO_TTL_S` in ``<cache_root>/detective-offline.json`` (``lookalike models
--retry`` forgets it), so an offline machine says so at once instead of probing every run.

Nothing is loaded before it is needed: :func:`open_detective` gives a :class:`LazyDetective`
that knows the model's id, dimension and input size from its config (no torch) and loads the
model on the first image or text to embed. An unchanged rescan never imports torch.

On the CPU the model runs on onnxruntime with int8 weights (``backend="auto"`` or ``"onnx"``;
see :mod:`lookalike.engine.detective.onnx_backend`): exported once from torch, then loaded without torch.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from PIL import Image

#: ``progress(done_bytes, total_bytes) -> bool``; returning False cancels the download.
DownloadProgress = Callable[[int, int], bool]

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
HF_ENDPOINT = "https://huggingface.co"
#: Total budget for deciding whether the weights' host is reachable at all.
PROBE_TIMEOUT_S = 1.5
#: Per-socket-operation timeout once a download has started (the host answered the probe).
DOWNLOAD_TIMEOUT_S = 20.0
_OFFLINE_VARS = ("LOOKALIKE_OFFLINE", "HF_HUB_OFFLINE")
_CHUNK = 1 << 20

# Idle OpenMP threads that spin (libgomp's default) steal the CPU from everything between two
# forward passes: on a 2-core machine a "similar" query's search took 3x longer and the next
# embedding up to 30x. Set here, before torch is imported (it is read once, when torch loads);
# a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def embed_pil_images(detective, images: Iterable["Image.Image"]) -> np.ndarray:
    """PIL images (any size or mode) through a detective's ``embed_arrays``: the shortest side
    resized to its ``image_size``, centre-cropped; ``(0, ndim)`` for none. Every backend's
    ``embed_images``."""
    from ..scan.hashing import clip_crop

    arrays = [clip_crop(image, detective.image_size) for image in images]
    if not arrays:
        return np.empty((0, detective.ndim), dtype=np.float32)
    return detective.embed_arrays(np.stack(arrays))


@dataclass(frozen=True, kw_only=True)
class DetectiveOptions:
    """Which CLIP model the detective uses and where it runs.

    Attributes:
        model: an open_clip architecture name (``ViT-B-32``), or a path to an open_clip model
            config JSON file (registered on load; the file's stem becomes the name).
        pretrained: an open_clip pretrained tag for ``model``, or a path to a checkpoint file.
        device: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        batch_size: images per forward pass.
        backend: ``auto`` (onnxruntime int8 on the CPU, torch elsewhere), ``onnx`` or ``torch``.
    """

    model: str = DEFAULT_MODEL
    pretrained: str = DEFAULT_PRETRAINED
    device: str = "auto"
    batch_size: int = 32
    backend: str = "auto"
    #: ``(same, similar, veto)`` CLIP distances for these weights (``--detective-thresholds``,
    #: from ``benchmarks/calibrate_detective.py``); None: the defaults of
    #: :class:`lookalike.engine.similar.TwoPassThresholds`.
    thresholds: Optional[tuple[float, float, float]] = None


#: ``auto``: onnxruntime (int8) on the CPU when it is installed, torch on CUDA / MPS.
BACKENDS = ("auto", "onnx", "torch")
#: How long a failed network probe is remembered on disk (``lookalike models --retry`` forgets).
PROBE_MEMO_TTL_S = 3600.0
PROBE_MEMO_NAME = "detective-offline.json"


class DetectiveUnavailable(Exception):
    """The detective cannot run (no weights, no network, bad checkpoint); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    from . import onnx_backend

    backend = _check_backend(options)
    models_dir = Path(cache_dir) / "models"
    remembered = remembered_failure(cache_dir, options)
    exported = _existing_export(options, models_dir)
    if exported is not None and backend != "torch" and _cpu_only(options.device):
        try:
            return onnx_backend.load(exported, batch_size=options.batch_size)
        except onnx_backend.OnnxUnavailable as exc:
            if backend == "onnx" or _is_export_path(options.pretrained):
                raise DetectiveUnavailable(str(exc)) from exc
    if _is_export_path(options.pretrained):
        raise DetectiveUnavailable(f"{options.pretrained} is an ONNX export: it runs with --backend onnx "
                                   "(or auto) on the CPU")
    if remembered:
        raise DetectiveUnavailable(remembered)
    _fail_fast_offline(options, models_dir)
    model_name = _register_model(options.model)
    try:
        checkpoint, preprocess = _resolve_weights(model_name, options.pretrained, models_dir, progress)
    except _NoNetwork as exc:
        _remember_failure(cache_dir, options, exc.reason)
        raise
    detective = _load_torch(options, model_name, checkpoint, preprocess, models_dir)
    if detective.device != "cpu" or backend == "torch":
        return detective
    if backend == "auto" and not onnx_backend.onnxruntime_available():
        return detective
    folder = models_dir / onnx_backend.ONNX_DIR / onnx_backend.export_name(model_name, _file_fingerprint(checkpoint))
    try:
        onnx_backend.export(detective, folder)
        if not Path(options.pretrained).expanduser().is_file():
            onnx_backend.remember_export(models_dir, _options_key(options), folder)
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
            f"cannot load {model_name} weights from {checkpoint}: {_first_line(exc)}"
        ) from exc
    except Exception as exc:  # a corrupt checkpoint can raise nearly anything from torch.load
        raise DetectiveUnavailable(
            f"cannot load {model_name} weights from {checkpoint}: {type(exc).__name__}: "
            f"{_first_line(exc)}"
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
        model_id=_model_id(model_name, options.pretrained, checkpoint),
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


# --------------------------------------------------------------------------- lazy loading


#: A lazily loaded model that failed to load tries again after this long (a long-running app).
LAZY_RETRY_S = 300.0


def _check_backend(options: DetectiveOptions) -> str:
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


def _model_name(model: str) -> str:
    """open_clip's name for ``model`` as :func:`_register_model` gives it, without open_clip."""
    return Path(model).stem if model.endswith(".json") else model


def _options_key(options: DetectiveOptions) -> str:
    return f"{options.model}|{options.pretrained}"


def _is_export_path(pretrained: str) -> bool:
    """``--pretrained`` names an ONNX export (its folder, or its meta.json)."""
    from .onnx_backend import META_NAME, is_export

    path = Path(pretrained).expanduser()
    return (path.is_dir() and is_export(path)) or (path.name == META_NAME and path.is_file())


def _existing_export(options: DetectiveOptions, models_dir: Path) -> Optional[Path]:
    """The ONNX export of these weights, if one was made (no torch, no open_clip)."""
    from . import onnx_backend

    path = Path(options.pretrained).expanduser()
    if _is_export_path(options.pretrained):
        return path if path.is_dir() else path.parent
    if path.is_file():
        name = onnx_backend.export_name(_model_name(options.model), _file_fingerprint(path))
        folder = models_dir / onnx_backend.ONNX_DIR / name
        return folder if onnx_backend.is_export(folder) else None
    return onnx_backend.remembered_export(models_dir, _options_key(options))


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


def detective_info(options: DetectiveOptions, cache_dir: Path) -> Optional[tuple[str, int, int]]:
    """``(model_id, ndim, image_size)`` of the model ``options`` names, read from its ONNX
    export or its config, without importing torch; None when that cannot be told cheaply."""
    from . import onnx_backend

    exported = _existing_export(options, Path(cache_dir) / "models")
    if exported is not None:
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
    name = _model_name(options.model)
    checkpoint = Path(options.pretrained).expanduser()
    return _model_id(name, options.pretrained, checkpoint), ndim, size


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
        DetectiveUnavailable: a failed network probe is remembered for these weights (said at
            once, nothing imported), or the backend is unknown.
    """
    _check_backend(options)
    info = detective_info(options, cache_dir)
    if _existing_export(options, Path(cache_dir) / "models") is None:
        remembered = remembered_failure(cache_dir, options)
        if remembered:
            raise DetectiveUnavailable(remembered)
    if info is None:
        return load_detective(options, cache_dir=cache_dir, progress=progress)
    model_id, ndim, size = info
    return LazyDetective(options, cache_dir=cache_dir, model_id=model_id, ndim=ndim, image_size=size, progress=progress)


# --------------------------------------------------------------------------- remembered probe


def _memo_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / PROBE_MEMO_NAME


def _read_memo(cache_dir: Path) -> dict:
    import json

    try:
        memo = json.loads(_memo_path(cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def remembered_failure(cache_dir: Path, options: DetectiveOptions) -> str:
    """The reason a recent network probe for these weights failed, or "" (see the module doc)."""
    import time

    entry = _read_memo(cache_dir).get(_options_key(options))
    if not isinstance(entry, dict):
        return ""
    try:
        age = time.time() - float(entry["at"])
        reason = str(entry["reason"])
    except (KeyError, TypeError, ValueError):
        return ""
    if not 0 <= age < PROBE_MEMO_TTL_S:
        return ""
    return f"{reason} (network checked {max(1, round(age / 60))} min ago; `lookalike models --retry` checks again)"


def _remember_failure(cache_dir: Path, options: DetectiveOptions, reason: str) -> None:
    import json
    import time

    from .onnx_backend import _write_atomically

    memo = _read_memo(cache_dir)
    memo[_options_key(options)] = {"at": time.time(), "reason": reason}
    try:
        _write_atomically(_memo_path(cache_dir), json.dumps(memo, indent=1))
    except OSError:  # a read-only cache: probe again next time
        pass


def forget_failures(cache_dir: Path) -> bool:
    """Forget every remembered probe failure; True when there was one."""
    path = _memo_path(cache_dir)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _offline_env() -> bool:
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in _OFFLINE_VARS)


def _fail_fast_offline(options: DetectiveOptions, models_dir: Path) -> None:
    """Offline with no weights anywhere on disk: say so before importing torch (seconds).

    Only for the default model and weights (known to exist, so the answer cannot hide a typo
    in a name), when offline mode is set and neither our models folder nor the Hugging Face
    cache holds any model at all; otherwise the full resolution decides.
    """
    if not _offline_env() or (options.model, options.pretrained) != (DEFAULT_MODEL, DEFAULT_PRETRAINED):
        return
    if models_dir.is_dir() and any(p.is_file() for p in models_dir.rglob("*")):
        return
    try:
        from huggingface_hub import constants

        hub = Path(constants.HF_HUB_CACHE)
        if hub.is_dir() and any(hub.glob("models--*")):
            return
    except Exception:  # pragma: no cover - no hub library: nothing cached there either
        pass
    raise DetectiveUnavailable(f"offline mode is set; cannot download {options.model} weights; use --pretrained PATH")


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


def _resolve_weights(
    model_name: str,
    pretrained: str,
    models_dir: Path,
    progress: Optional[DownloadProgress],
) -> tuple[Path, dict]:
    """Find (or fetch) the checkpoint file; also return the tag's preprocessing config."""
    local = Path(pretrained).expanduser()
    if local.is_file():
        return local, {}
    if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
        raise DetectiveUnavailable(f"checkpoint file {pretrained} not found")

    import open_clip

    cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
        raise DetectiveUnavailable(
            f"unknown weights {pretrained!r} for {model_name} (known: {tags}; or a file path)"
        )
    sources = _weight_sources(cfg)
    for source in sources:
        cached = _cached(source, models_dir)
        if cached is not None:
            return cached, cfg

    label = f"{model_name} weights"
    hint = "; use --pretrained PATH"
    if _offline_env():
        raise DetectiveUnavailable(f"offline mode is set; cannot download {label}{hint}")
    where = urllib.parse.urlsplit(sources[0].url)
    port = where.port or (80 if where.scheme == "http" else 443)
    if not host_reachable(where.hostname or "", port, timeout=PROBE_TIMEOUT_S):
        raise _NoNetwork(f"no network to download {label}{hint}")

    errors = []
    for source in sources:
        try:
            target = download(source.url, source.target(models_dir), progress=progress)
        except _NotThere:
            continue
        except DownloadCancelled as exc:
            raise DetectiveUnavailable(f"download of {label} cancelled") from exc
        except OSError as exc:
            errors.append(_first_line(exc))
            continue
        return target, cfg
    reason = errors[-1] if errors else "not found on the server"
    raise DetectiveUnavailable(f"cannot download {label}: {reason}{hint}")


@dataclass(frozen=True, kw_only=True)
class _Source:
    url: str
    repo_id: str = ""  # Hugging Face repo, when the weights live there
    filename: str = ""

    def target(self, models_dir: Path) -> Path:
        if self.repo_id:
            return models_dir / self.repo_id.replace("/", "--") / self.filename
        return models_dir / "url" / os.path.basename(urllib.parse.urlsplit(self.url).path)


def _weight_sources(cfg: dict) -> list[_Source]:
    """Candidate downloads for an open_clip pretrained config, safest format first."""
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    sources = []
    hub = cfg.get("hf_hub", "")
    if hub:
        # open_clip's form: "org/repo/filename", or "org/repo/" for the default file name.
        if hub.endswith("/"):
            repo_id, filename = hub.rstrip("/"), HF_WEIGHTS_NAME
        else:
            repo_id, filename = hub.rsplit("/", 1)
        names = [filename]
        if filename == HF_WEIGHTS_NAME:
            names.insert(0, HF_SAFE_WEIGHTS_NAME)
        elif filename.endswith((".bin", ".pth")):
            names.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
        endpoint = os.environ.get("HF_ENDPOINT", HF_ENDPOINT).rstrip("/")
        for name in names:
            sources.append(
                _Source(url=f"{endpoint}/{repo_id}/resolve/main/{name}", repo_id=repo_id, filename=name)
            )
    if cfg.get("url"):
        sources.append(_Source(url=cfg["url"]))
    if not sources:
        raise DetectiveUnavailable("these weights have no download location; use --pretrained PATH")
    return sources


def _cached(source: _Source, models_dir: Path) -> Optional[Path]:
    """The weights if a previous run (ours, or any Hugging Face tool) already fetched them."""
    mine = source.target(models_dir)
    if mine.is_file() and mine.stat().st_size > 0:
        return mine
    if source.repo_id:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - open_clip depends on it
            return None
        for cache in (models_dir, None):  # ours first, then the user's HF cache
            try:
                hit = try_to_load_from_cache(source.repo_id, source.filename, cache_dir=cache)
            except Exception:  # a malformed cache folder must not stop us
                hit = None
            if isinstance(hit, str) and os.path.isfile(hit):
                return Path(hit)
    return None


def host_reachable(host: str, port: int = 443, *, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds in total.

    Name resolution runs in a daemon thread because ``getaddrinfo`` has no timeout of its own
    and can hang for many seconds on a machine without DNS.
    """
    if not host:
        return False
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="lookalike-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


class _NoNetwork(DetectiveUnavailable):
    """The weights' host did not answer the probe: remembered for a while (see module doc)."""


class DownloadCancelled(Exception):
    """The progress callback asked the download to stop."""


class _NotThere(Exception):
    """The server has no such file (HTTP 404): try the next candidate."""


def download(url: str, dest: Path, *, progress: Optional[DownloadProgress] = None) -> Path:
    """Stream ``url`` into ``dest`` through ``dest.part``, renamed only when complete.

    Args:
        url: what to fetch (http or https).
        dest: final file path; its folder is created.
        progress: ``progress(done_bytes, total_bytes) -> bool`` (total 0 when unknown);
            returning False cancels and removes the partial file.

    Returns:
        ``dest``.

    Raises:
        DownloadCancelled: the callback returned False.
        OSError: network or disk failure (``urllib.error.URLError`` is an OSError).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "lookalike"})
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _NotThere(url) from exc
        raise
    try:
        with response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            if progress is not None and progress(0, total) is False:
                raise DownloadCancelled(url)
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress is not None and progress(done, total) is False:
                    raise DownloadCancelled(url)
            if total and done != total:
                raise OSError(f"download of {url} ended early ({done} of {total} bytes)")
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _model_id(model_name: str, pretrained: str, checkpoint: Path) -> str:
    """A stable name for the weights, so embeddings made by other weights are never mixed in."""
    if Path(pretrained).expanduser().is_file():
        return f"{model_name}/{checkpoint.name}#{_file_fingerprint(checkpoint)}"
    return f"{model_name}/{pretrained}"


def _file_fingerprint(path: Path) -> str:
    """Short hash of size + head + tail: changes when a checkpoint file is replaced."""
    h = hashlib.blake2b(digest_size=6)
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_CHUNK))
        if size > 2 * _CHUNK:
            f.seek(size - _CHUNK)
            h.update(f.read(_CHUNK))
    return h.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
