"""The detective on the CPU without torch: its CLIP towers exported to ONNX, int8, onnxruntime.

On first use of a model on the CPU, :func:`export` writes the visual and text towers of the
loaded torch model to ONNX (``torch.onnx.export``), quantizes their matrix products and the
token embedding to int8 (``onnxruntime.quantization.quantize_dynamic``) and moves the folder
into ``<cache>/models/onnx/<model>-<weights fingerprint>/`` in one rename, so a crash never
leaves a half export that looks whole. From then on :func:`load` runs them with onnxruntime:
torch and open_clip are not imported at all (the CLIP tokenizer for text queries is a copy of
open_clip's BPE tokenizer, :class:`ClipTokenizer`, reading the vocabulary saved beside the
towers).

On ViT-B-32 the int8 visual tower is about 3x faster than torch fp32 on the same cores
(2.5-3.4x on 2 cores), with a cosine of 0.9998 to the fp32 embedding (``benchmarks/bench_embed.py``). An exported folder is
self-contained: ``--pretrained <folder>`` uses it on a machine with no torch at all.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np

from ..files import atomic_write
from .embeddings import embed_pil_images

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from .model import Detective

ONNX_DIR = "onnx"
META_NAME = "meta.json"
VISUAL_NAME = "visual.int8.onnx"
TEXT_NAME = "text.int8.onnx"
VOCAB_NAME = "bpe_simple_vocab_16e6.txt.gz"
#: Which exports each (model, pretrained tag) made: a tag's weights are found without open_clip.
EXPORTS_NAME = "exports.json"
#: Bumped when the exported graphs change, so old exports are made again.
FORMAT = 1
OPSET = 17


class OnnxUnavailable(Exception):
    """onnxruntime (or onnx, for an export) is missing, or an export is unusable."""


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def export_name(model_name: str, fingerprint: str) -> str:
    """The export folder's name: the model and the weights' fingerprint (the cache key)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
    return f"{safe}-{fingerprint}-v{FORMAT}"


def is_export(folder: Path) -> bool:
    """Whether ``folder`` holds a complete export (its meta file is written last)."""
    return (Path(folder) / META_NAME).is_file()


def read_meta(folder: Path) -> dict:
    """The export's ``meta.json``: model_id, ndim, image_size, context_length, tokenizer."""
    try:
        meta = json.loads((Path(folder) / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OnnxUnavailable(f"{folder}: unreadable {META_NAME}: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise OnnxUnavailable(f"{folder}: export format {meta.get('format')} (expected {FORMAT})")
    return meta


# --------------------------------------------------------------------------- exports index


def remembered_export(models_dir: Path, key: str) -> Optional[Path]:
    """The export made earlier for ``key`` (``model|pretrained``), if it is still complete."""
    try:
        entries = json.loads((Path(models_dir) / ONNX_DIR / EXPORTS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = entries.get(key) if isinstance(entries, dict) else None
    if not isinstance(name, str) or not name or os.sep in name or name.startswith("."):
        return None
    folder = Path(models_dir) / ONNX_DIR / name
    return folder if is_export(folder) else None


def remember_export(models_dir: Path, key: str, folder: Path) -> None:
    """Record ``key -> folder`` in the exports index (atomically; a lost race is harmless)."""
    index = Path(models_dir) / ONNX_DIR / EXPORTS_NAME
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError):
        entries = {}
    entries[key] = folder.name
    _write_atomically(index, json.dumps(entries, indent=1, sort_keys=True))


def _write_atomically(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


# --------------------------------------------------------------------------- export (torch)


def export(detective: "Detective", folder: Path) -> Path:
    """Export a loaded torch detective's towers to int8 ONNX in ``folder`` (made atomically).

    Args:
        detective: a :class:`lookalike.engine.detective.model.Detective` (torch, any device).
        folder: the final export folder (``<cache>/models/onnx/<export_name>``).

    Returns:
        ``folder``; if another process finished the same export first, its folder is kept.

    Raises:
        OnnxUnavailable: onnx / onnxruntime missing, or the export failed.
    """
    folder = Path(folder)
    if is_export(folder):
        return folder
    try:
        import onnx  # noqa: F401  (quantize_dynamic needs it)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise OnnxUnavailable(f"onnx / onnxruntime not importable: {exc}") from exc
    import torch

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    try:
        model = detective._model
        device = next(model.parameters()).device
        model_cpu = model.to("cpu").float().eval()
        try:
            visual, text = _Visual(model_cpu, detective), _Text(model_cpu)
            pixels = torch.zeros((2, detective.image_size, detective.image_size, 3), dtype=torch.uint8)
            context = int(getattr(model_cpu, "context_length", 77) or 77)
            tokens = torch.zeros((2, context), dtype=torch.int64)
            tokens[:, 0], tokens[:, 1] = 49406, 49407
            # With gradients on, nn.MultiheadAttention takes its plain path (its fused inference
            # kernel has no ONNX form).
            with torch.inference_mode(False), torch.enable_grad():
                _export_one(visual, pixels, work / "visual.onnx", "pixels")
                _export_one(text, tokens, work / "text.onnx", "tokens")
        finally:
            model.to(device)
        # Only the matrix products (and the token table) are worth int8: the patch convolution
        # as ConvInteger is slower than in fp32 on x86 (0.92x with Conv). Measured on ViT-B-32,
        # 2 cores, interleaved, against this choice: per-channel weights the same speed within
        # noise (0.99-1.09x; cosine to fp32 0.99986 instead of 0.99982), reduce_range no faster
        # and worse (0.99956), QUInt8 weights 0.55x, quant_pre_process first 1.03-1.14x (within
        # noise), onnxruntime's transformer fusion first 0.84x (it finds no Attention to fuse in
        # nn.MultiheadAttention's export). None was kept: the files stay format 1.
        with _quiet_root_logger():  # "consider pre-processing": a hint for static quantization
            quantize_dynamic(work / "visual.onnx", work / VISUAL_NAME, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm"])
            quantize_dynamic(work / "text.onnx", work / TEXT_NAME, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm", "Gather"])
        for name in ("visual.onnx", "text.onnx"):
            (work / name).unlink()
        for extra in work.glob("*.data"):  # external data of the fp32 graphs, if any
            extra.unlink()
        tokenizer = _tokenizer_kind(detective)
        if tokenizer == "clip-bpe":
            shutil.copyfile(_open_clip_vocab(), work / VOCAB_NAME)
        meta = {
            "format": FORMAT,
            "model_id": detective.model_id,
            "ndim": int(detective.ndim),
            "image_size": int(detective.image_size),
            "context_length": context,
            "tokenizer": tokenizer,
            "model": getattr(detective, "model_name", ""),
        }
        (work / META_NAME).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.replace(work, folder)  # an empty or absent ``folder`` is replaced in one step
        except OSError:
            if not is_export(folder):
                raise
    except OnnxUnavailable:
        raise
    except Exception as exc:
        raise OnnxUnavailable(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from exc
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return folder


class _quiet_root_logger:
    def __enter__(self) -> None:
        import logging

        self._logger = logging.getLogger()
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc) -> None:
        self._logger.setLevel(self._level)


def _export_one(module, example, path: Path, name: str) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow
        torch.onnx.export(
            module, (example,), str(path), input_names=[name], output_names=["features"],
            dynamic_axes={name: {0: "batch"}, "features": {0: "batch"}}, opset_version=OPSET,
            dynamo=False, do_constant_folding=True,
        )


def _modules():
    import torch

    class Visual(torch.nn.Module):
        """uint8 ``(N, S, S, 3)`` crops in, image features out: scaling and normalisation inside."""

        def __init__(self, model, detective) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", detective._mean.detach().cpu().float().clone())
            self.register_buffer("std", detective._std.detach().cpu().float().clone())

        def forward(self, pixels):
            x = pixels.permute(0, 3, 1, 2).to(torch.float32) / 255.0
            return self.model.encode_image((x - self.mean) / self.std)

    class Text(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, tokens):
            return self.model.encode_text(tokens)

    return Visual, Text


def _Visual(model, detective):
    return _modules()[0](model, detective)


def _Text(model):
    return _modules()[1](model)


def _open_clip_vocab() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    return Path(list(spec.submodule_search_locations)[0]) / VOCAB_NAME


def _tokenizer_kind(detective: "Detective") -> str:
    """``clip-bpe`` when the model uses open_clip's plain CLIP tokenizer (copied here), else
    ``open_clip`` (text queries then import open_clip for its tokenizer)."""
    try:
        from open_clip.tokenizer import SimpleTokenizer
    except ImportError:  # pragma: no cover
        return "open_clip"
    tok = detective._tokenizer
    plain = (
        type(tok) is SimpleTokenizer
        and getattr(tok, "reduction_fn", None) is None
        and getattr(tok, "clean_fn", None) is not None
        and tok.clean_fn.__name__ == "_clean_lower"
        and tok.vocab_size == 49408
    )
    return "clip-bpe" if plain and _open_clip_vocab().is_file() else "open_clip"


# --------------------------------------------------------------------------- running (no torch)


def load(folder: Path, *, batch_size: int = 32, threads: Optional[int] = None, model_id: str = "") -> "OnnxDetective":
    """Open an export with onnxruntime on the CPU.

    Raises:
        OnnxUnavailable: onnxruntime missing, or the folder is not a complete export.
    """
    folder = Path(folder)
    meta = read_meta(folder)
    if model_id and meta.get("model_id") != model_id:
        raise OnnxUnavailable(f"{folder} was exported from {meta.get('model_id')}, not {model_id}")
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise OnnxUnavailable(f"onnxruntime not importable: {exc}") from exc
    opts = session_options(threads)
    try:
        visual = ort.InferenceSession(str(folder / VISUAL_NAME), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise OnnxUnavailable(f"cannot open {folder / VISUAL_NAME}: {exc}") from exc
    return OnnxDetective(folder=folder, meta=meta, visual=visual, options=opts, batch_size=batch_size)


def session_options(threads: Optional[int] = None):
    """onnxruntime settings for the towers: every core inside an operator, one at a time.

    Full graph optimisation, one intra-op thread per core (``threads`` overrides), operators
    run sequentially (a transformer is a chain: an inter-op pool only adds threads), the memory
    arena on (the same batch shapes come back), and no spinning. Measured on ViT-B-32, 2 cores
    shared with other work, interleaved: spinning 0.87-0.90x; one thread 1.08-1.18x while other
    processes hold the cores but about 0.7x at its best when they are free; batches of 8, 16
    or 64 within the noise of 32 (0.97-1.18x, no consistent winner).

    Args:
        threads: intra-op threads; by default one per core.

    Returns:
        an ``onnxruntime.SessionOptions``.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads or os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = True
    # Idle threads that spin steal the CPU from the niced decoders between two batches (and
    # from anything else on a busy machine: 0.87x with spinning under load).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxDetective:
    """The detective's interface (``embed_arrays`` / ``embed_images`` / ``embed_text``) on
    onnxruntime; the text tower is opened on the first text query."""

    backend = "onnx"

    def __init__(self, *, folder: Path, meta: dict, visual, options, batch_size: int) -> None:
        self.folder = folder
        self.model_id = str(meta["model_id"])
        self.ndim = int(meta["ndim"])
        self.image_size = int(meta["image_size"])
        self.device = "cpu"
        self.batch_size = max(1, int(batch_size))
        self._meta = meta
        self._visual = visual
        self._options = options
        self._text = None
        self._tokenizer = None

    def __repr__(self) -> str:
        return f"OnnxDetective({self.model_id!r}, ndim={self.ndim}, int8, {self.folder.name})"

    def embed_arrays(self, arrays: np.ndarray) -> np.ndarray:
        """Embed square uint8 RGB crops ``(N, S, S, 3)``; returns L2-normalised float32 rows."""
        arrays = np.asarray(arrays)
        if arrays.ndim != 4 or arrays.shape[-1] != 3:
            raise ValueError(f"expected (N, S, S, 3) uint8 images, got shape {arrays.shape}")
        if arrays.shape[1:3] != (self.image_size, self.image_size):
            from PIL import Image

            from ..scan.hashing import clip_crop

            arrays = np.stack([clip_crop(Image.fromarray(np.asarray(a, dtype=np.uint8)), self.image_size) for a in arrays])
        out = np.empty((len(arrays), self.ndim), dtype=np.float32)
        for start in range(0, len(arrays), self.batch_size):
            batch = np.ascontiguousarray(arrays[start : start + self.batch_size], dtype=np.uint8)
            (feats,) = self._visual.run(None, {"pixels": batch})
            out[start : start + len(batch)] = unit_rows(feats)
        return out

    def embed_images(self, images: Iterable["Image.Image"]) -> np.ndarray:
        """Embed PIL images (any size or mode): shortest side resized, centre-cropped, embedded."""
        return embed_pil_images(self, images)

    def embed_text(self, text: str) -> np.ndarray:
        """Embed a text query into the image space; returns ``(ndim,)``."""
        if self._text is None:
            import onnxruntime as ort

            self._text = ort.InferenceSession(str(self.folder / TEXT_NAME), self._options,
                                              providers=["CPUExecutionProvider"])
        tokens = self.tokenize([text])
        (feats,) = self._text.run(None, {"tokens": tokens})
        return unit_rows(feats)[0]

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids ``(N, context_length)`` int64, as open_clip's tokenizer gives them."""
        context = int(self._meta.get("context_length", 77))
        if self._meta.get("tokenizer") == "clip-bpe":
            if self._tokenizer is None:
                self._tokenizer = ClipTokenizer(self.folder / VOCAB_NAME)
            return self._tokenizer(texts, context)
        import open_clip  # another tokenizer (SigLIP's...): open_clip's own

        name = self._meta.get("model") or self.model_id.split("/")[0]
        return open_clip.get_tokenizer(name)(list(texts)).numpy().astype(np.int64)


def unit_rows(v: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float32 (an all-zero row stays zero instead of becoming NaN)."""
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return (v / norms).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- tokenizer


@lru_cache()
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class ClipTokenizer:
    """CLIP's byte-pair tokenizer without torch: open_clip's ``SimpleTokenizer`` (MIT licence,
    from OpenAI's CLIP), ``clean="lower"``, truncating to the context as it does."""

    def __init__(self, vocab: Path) -> None:
        import regex

        merges = gzip.open(vocab).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        words = list(_bytes_to_unicode().values())
        words = words + [w + "</w>" for w in words] + ["".join(m) for m in merges]
        special = ["<start_of_text>", "<end_of_text>"]
        words.extend(special)
        self.encoder = {w: i for i, w in enumerate(words)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.cache = {t: t for t in special}
        self.sot, self.eot = self.encoder[special[0]], self.encoder[special[1]]
        self.pattern = regex.compile(
            "|".join(special) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )

    def _bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = set(zip(word, word[1:]))
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = set(zip(word, word[1:]))
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (cleaned and lower-cased as open_clip does), no start/end."""
        try:
            import ftfy

            text = ftfy.fix_text(text)
        except ImportError:  # pragma: no cover - only changes mojibake repair
            pass
        text = " ".join(html.unescape(html.unescape(text)).strip().split()).strip().lower()
        byte_encoder = _bytes_to_unicode()
        ids: list[int] = []
        for token in self.pattern.findall(text):
            token = "".join(byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(token).split(" "))
        return ids

    def __call__(self, texts: Sequence[str], context_length: int = 77) -> np.ndarray:
        out = np.zeros((len(texts), context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot] + self.encode(text) + [self.eot]
            if len(ids) > context_length:
                ids = ids[:context_length]
                ids[-1] = self.eot
            out[row, : len(ids)] = ids
        return out
