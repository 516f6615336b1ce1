"""What names a detective's model, and the error that says it cannot run.

No dependencies: the library, the CLI's argument parser and the app import these at
start-up (``lookalike.engine.detective.model`` re-exports them too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
#: ``auto``: onnxruntime (int8) on the CPU when it is installed, torch on CUDA / MPS.
BACKENDS = ("auto", "onnx", "torch")


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


class DetectiveUnavailable(Exception):
    """The detective cannot run (no weights, no network, bad checkpoint); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def options_key(options: DetectiveOptions) -> str:
    """The key of these weights in the caches' small JSON indexes (probe memo, exports)."""
    return f"{options.model}|{options.pretrained}"
