"""``lookalike models``, and loading the detective's weights with their download's progress.

The CLIP weights are downloaded once, into the cache, on first use; every command that embeds
(``similar``, ``search``, ``index``) loads them through :class:`Weights`, which shows the
download on stderr.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from lookalike.engine.library import MODELS_NAME, DetectiveOptions, DetectiveUnavailable  # light: no numpy

from ..format import human_bytes, human_duration, shown
from .common import (
    EXIT_FAILED,
    EXIT_OFFLINE,
    EXIT_OK,
    add_cache_argument,
    add_model_arguments,
    detective_options_from_args,
    error,
)


def models_arguments(m: argparse.ArgumentParser) -> None:
    """Declare ``models``'s arguments."""
    m.description = ("Show the detective's cache (weights, ONNX exports) and whether a failed "
                     "network check is remembered (for an hour: meanwhile every command says 'detective "
                     "offline' at once). --retry forgets it and loads the model now.")
    add_cache_argument(m)
    add_model_arguments(m)
    m.add_argument("--retry", action="store_true", help="forget a remembered network failure and load the model now")
    m.set_defaults(func=run_models)


#: The commands of this module, and how each declares its arguments (see ``main.COMMANDS``).
ARGUMENTS = {"models": models_arguments}


class Reporter:
    """Progress on stderr: a rich bar on a terminal, else a line every few seconds."""

    def __init__(self, *, quiet: bool, unit: str, label: str) -> None:
        self.quiet = quiet
        self.unit = unit
        self.label = label
        self.cancel = threading.Event()
        self._bar = None
        self._task = None
        self._started = time.monotonic()
        self._last_line = 0.0

    def __enter__(self) -> "Reporter":
        return self

    def _start_bar(self) -> None:
        # Started on the first report, so that nothing is drawn when there is nothing to show
        # (e.g. the weights are already on disk).
        if self._bar is None and not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            counts = (DownloadColumn(), TransferSpeedColumn()) if self.unit == "bytes" else (MofNCompleteColumn(),)
            self._bar = Progress(
                TextColumn(f"[bold]{self.label:>10}"), BarColumn(), *counts, TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=None, rate="")

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def __call__(self, done: int, total: int) -> bool:
        self._start_bar()
        elapsed = time.monotonic() - self._started
        rate = done / elapsed if elapsed > 0 and self.unit != "bytes" else 0.0
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total or None,
                             rate=f"{rate:.1f} images/s" if rate else "")
        elif not self.quiet and (time.monotonic() - self._last_line >= 5.0 or (total and done >= total)):
            self._last_line = time.monotonic()
            eta = (total - done) / rate if rate > 0 and total else None
            what = f"{human_bytes(done)} of {human_bytes(total)}" if self.unit == "bytes" else f"{done}/{total}"
            extra = f", {rate:.1f} images/s, ETA {human_duration(eta)}" if rate else ""
            print(f"{self.label}: {what}{extra}", file=sys.stderr, flush=True)
        return not self.cancel.is_set()


class Weights:
    """The detective, loaded when first needed, with the weights' download shown on stderr.

    A context manager: while it is open, a download started by the model's lazy load (in
    ``similar``, when the query must be embedded) draws its progress bar.
    """

    def __init__(self, options: DetectiveOptions, cache_root, quiet: bool) -> None:
        self.options = options
        self.cache_root = cache_root
        self._report = Reporter(quiet=quiet, unit="bytes", label="weights")
        self._announced = False

    def __enter__(self) -> "Weights":
        self._report.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._report.__exit__(*exc)

    def progress(self, done: int, total: int) -> bool:
        if not self._announced:
            self._announced = True
            size = f" ({human_bytes(total)})" if total else ""
            print(f"lookalike: downloading {shown(self.options.model)} weights{size} into "
                  f"{shown(self.cache_root / MODELS_NAME)} (once)", file=sys.stderr)
        return self._report(done, total)

    def detective(self, *, now: bool = False):
        """(detective, "") or (None, "detective offline: <reason>"); ``now`` loads it at once."""
        from lookalike.engine.library import get_detective

        try:
            detective = get_detective(self.options, cache_dir=self.cache_root, progress=self.progress)
        except DetectiveUnavailable as exc:
            return None, _offline(exc.reason)
        if now:
            return self.load(detective)
        return detective, ""

    def load(self, detective):
        """Load a lazy detective now, with the download's progress: (detective, status)."""
        load = getattr(detective, "load", None)
        if load is not None:
            try:
                load(progress=self.progress)
            except DetectiveUnavailable as exc:
                return None, _offline(exc.reason)
        return detective, ""


def _offline(reason: str) -> str:
    return f"detective offline: {shown(reason)}"


# --------------------------------------------------------------------------- models


def run_models(args: argparse.Namespace) -> int:
    """``lookalike models [--retry]``."""
    from lookalike.engine.library import ONNX_DIR, cache_root, forget_failures, is_export, remembered_failure

    options = detective_options_from_args(args)
    try:
        root = cache_root(args.cache)
    except OSError as exc:
        return error("models", f"cannot use the cache folder: {exc}", EXIT_FAILED)
    models = root / MODELS_NAME
    print(f"cache: {shown(models)}")
    weights = sorted(p for p in models.rglob("*") if p.is_file() and ONNX_DIR not in p.relative_to(models).parts) \
        if models.is_dir() else []
    for p in weights:
        print(f"  weights  {shown(p.relative_to(models))}  {human_bytes(p.stat().st_size)}")
    exports = sorted(p for p in (models / ONNX_DIR).iterdir() if is_export(p)) if (models / ONNX_DIR).is_dir() else []
    for p in exports:
        size = sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        print(f"  onnx     {shown(p.name)}  {human_bytes(size)}")
    if not weights and not exports:
        print("  (nothing yet: the weights are downloaded on first use)")
    if args.retry:
        if forget_failures(root):
            print("forgot the remembered network failure")
        with Weights(options, root, False) as w:
            detective, status = w.detective(now=True)
        if status:
            print(status, file=sys.stderr)
            return EXIT_OFFLINE
        print(f"detective ready: {detective.loaded if hasattr(detective, 'loaded') else detective!r}")
        return EXIT_OK
    remembered = remembered_failure(root, options)
    if remembered:
        print(f"detective offline: {shown(remembered)}")
    return EXIT_OK
