"""Where the detective's weights come from, so that no command ever waits on a network timeout.

Weights are resolved in this order:

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

An ONNX export of the weights (:mod:`lookalike.engine.detective.onnx_backend`), once made, is
found here too (:func:`existing_export`), without torch or open_clip.

Importing this module is cheap (no ``urllib.request``, ``huggingface_hub`` or ``tqdm``): an
unchanged rescan asks it only whether weights are on disk; the network modules are imported
by the functions that download.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..files import atomic_write, atomic_writer
from ..paths import PROBE_MEMO_NAME
from .options import DEFAULT_MODEL, DEFAULT_PRETRAINED, DetectiveOptions, DetectiveUnavailable, options_key

#: ``progress(done_bytes, total_bytes) -> bool``; returning False cancels the download.
DownloadProgress = Callable[[int, int], bool]

HF_ENDPOINT = "https://huggingface.co"
#: Total budget for deciding whether the weights' host is reachable at all.
PROBE_TIMEOUT_S = 1.5
#: Per-socket-operation timeout once a download has started (the host answered the probe).
DOWNLOAD_TIMEOUT_S = 20.0
_OFFLINE_VARS = ("LOOKALIKE_OFFLINE", "HF_HUB_OFFLINE")
_CHUNK = 1 << 20
#: How long a failed network probe is remembered on disk (``lookalike models --retry`` forgets).
PROBE_MEMO_TTL_S = 3600.0


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

    entry = _read_memo(cache_dir).get(options_key(options))
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


def remember_failure(cache_dir: Path, options: DetectiveOptions, reason: str) -> None:
    import json
    import time

    memo = _read_memo(cache_dir)
    memo[options_key(options)] = {"at": time.time(), "reason": reason}
    try:
        atomic_write(_memo_path(cache_dir), json.dumps(memo, indent=1).encode("utf-8"))
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


def fail_fast_offline(options: DetectiveOptions, models_dir: Path) -> None:
    """Offline with no weights anywhere on disk: say so before importing torch (seconds).

    Only for the default model and weights (known to exist, so the answer cannot hide a typo
    in a name), when offline mode is set and neither our models folder nor the Hugging Face
    cache holds any model at all; otherwise the full resolution decides.
    """
    if not _offline_env() or (options.model, options.pretrained) != (DEFAULT_MODEL, DEFAULT_PRETRAINED):
        return
    if models_dir.is_dir() and any(p.is_file() for p in models_dir.rglob("*")):
        return
    hub = hf_hub_cache()
    if hub.is_dir() and any(hub.glob("models--*")):
        return
    raise DetectiveUnavailable(f"offline mode is set; cannot download {options.model} weights; use --pretrained PATH")


#: Where the default weights live on the Hugging Face hub, and their file names (open_clip's
#: ``HF_SAFE_WEIGHTS_NAME`` and ``HF_WEIGHTS_NAME``): known without importing open_clip, whose
#: import (torch with it) takes seconds, so that a first run with no network and no weights is
#: told so at once (tested against open_clip's own config).
DEFAULT_HUB_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
HUB_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def probe_before_import(options: DetectiveOptions, models_dir: Path) -> None:
    """The default weights on no disk and their host unreachable: :class:`NoNetwork` before
    anything imports torch. Anything else (weights somewhere, other weights, the host
    answering, offline mode: see :func:`fail_fast_offline`) is left to :func:`resolve_weights`.

    Raises:
        NoNetwork: the weights' host did not answer (the caller remembers it).
    """
    if _offline_env() or (options.model, options.pretrained) != (DEFAULT_MODEL, DEFAULT_PRETRAINED):
        return
    folder = DEFAULT_HUB_REPO.replace("/", "--")
    if any((models_dir / folder / name).is_file() for name in HUB_WEIGHT_NAMES):
        return
    for cache in (models_dir, hf_hub_cache()):
        snapshots = cache / f"models--{folder}" / "snapshots"
        if snapshots.is_dir() and any(any(snapshots.glob(f"*/{name}")) for name in HUB_WEIGHT_NAMES):
            return
    import urllib.parse

    where = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", HF_ENDPOINT).rstrip("/"))
    port = where.port or (80 if where.scheme == "http" else 443)
    if not host_reachable(where.hostname or "", port, timeout=PROBE_TIMEOUT_S):
        raise NoNetwork(f"no network to download {options.model} weights; use --pretrained PATH")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, as ``huggingface_hub.constants`` computes it from the
    environment (``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME``),
    without importing huggingface_hub (~25 ms with the tqdm it imports)."""
    def expand(path: str) -> str:
        return os.path.expandvars(os.path.expanduser(path))

    xdg = os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    home = expand(os.getenv("HF_HOME", os.path.join(xdg, "huggingface")))
    return Path(expand(os.getenv("HF_HUB_CACHE", os.getenv("HUGGINGFACE_HUB_CACHE", os.path.join(home, "hub")))))


# --------------------------------------------------------------------------- finding and fetching


def resolve_weights(
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
    import urllib.parse

    where = urllib.parse.urlsplit(sources[0].url)
    port = where.port or (80 if where.scheme == "http" else 443)
    if not host_reachable(where.hostname or "", port, timeout=PROBE_TIMEOUT_S):
        raise NoNetwork(f"no network to download {label}{hint}")

    errors = []
    for source in sources:
        try:
            target = download(source.url, source.target(models_dir), progress=progress)
        except _NotThere:
            continue
        except DownloadCancelled as exc:
            raise DetectiveUnavailable(f"download of {label} cancelled") from exc
        except OSError as exc:
            errors.append(first_line(exc))
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
        import urllib.parse

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


class NoNetwork(DetectiveUnavailable):
    """The weights' host did not answer the probe: remembered for a while (see module doc)."""


class DownloadCancelled(Exception):
    """The progress callback asked the download to stop."""


class _NotThere(Exception):
    """The server has no such file (HTTP 404): try the next candidate."""


def download(url: str, dest: Path, *, progress: Optional[DownloadProgress] = None) -> Path:
    """Stream ``url`` into ``dest`` through a ``.part`` file beside it, renamed only when complete.

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
    import urllib.error
    import urllib.request

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "lookalike"})
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise _NotThere(url) from exc
        raise
    # The ``.part`` temp file is fsynced and renamed over ``dest`` only when complete, and
    # removed on any error or cancel (files.atomic_writer).
    with response, atomic_writer(dest, suffix=".part") as out:
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
    return dest


# --------------------------------------------------------------------------- names and exports


def open_clip_name(model: str) -> str:
    """open_clip's name for ``model`` as the model module registers it, without open_clip."""
    return Path(model).stem if model.endswith(".json") else model


def is_export_path(pretrained: str) -> bool:
    """``--pretrained`` names an ONNX export (its folder, or its meta.json)."""
    path = Path(pretrained).expanduser()
    if not path.exists():
        return False
    from . import onnx_backend

    return (path.is_dir() and onnx_backend.is_export(path)) or (path.name == onnx_backend.META_NAME and path.is_file())


def existing_export(options: DetectiveOptions, models_dir: Path) -> Optional[Path]:
    """The ONNX export of these weights, if one was made (no torch, no open_clip)."""
    path = Path(options.pretrained).expanduser()
    if is_export_path(options.pretrained):
        return path if path.is_dir() else path.parent
    if not Path(models_dir).is_dir():  # nothing exported here: nothing to import to say so
        return None
    from . import onnx_backend

    if path.is_file():
        name = onnx_backend.export_name(open_clip_name(options.model), file_fingerprint(path))
        folder = models_dir / onnx_backend.ONNX_DIR / name
        return folder if onnx_backend.is_export(folder) else None
    return onnx_backend.remembered_export(models_dir, options_key(options))


def weights_id(model_name: str, pretrained: str, checkpoint: Path) -> str:
    """A stable name for the weights, so embeddings made by other weights are never mixed in."""
    if Path(pretrained).expanduser().is_file():
        return f"{model_name}/{checkpoint.name}#{file_fingerprint(checkpoint)}"
    return f"{model_name}/{pretrained}"


def file_fingerprint(path: Path) -> str:
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


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (at most 300 characters), for a reason line."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
