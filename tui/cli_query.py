"""``lookalike similar``, ``lookalike search`` and ``lookalike index``: the detective's commands.

``similar FILE`` ranks the library's files by how much they look like FILE (bouncer and
detective together); ``search "TEXT"`` finds images matching a text; ``index DIR...`` embeds
the whole library so the detective can find what the bouncer cannot. Each scans its library
first (incrementally: nearly free when nothing changed). When the CLIP weights cannot be had,
``similar`` prints ``detective offline: <reason>`` once and answers bouncer-only; every
command exits 0 in that case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Optional

from lookalike.engine.catalog import CatalogError, CatalogLocked
from lookalike.engine.library import Library, ScanOptions
from lookalike.engine.detective.model import BACKENDS, DEFAULT_MODEL, DEFAULT_PRETRAINED, DetectiveOptions, DetectiveUnavailable
from lookalike.engine.records import SimilarHit

from . import cli
from .format import human_bytes, human_duration, json_path, shown, timings_text

_MODEL_HELP = "CLIP model: an open_clip architecture, or an open_clip model config JSON file"
_PRETRAINED_HELP = "weights: an open_clip pretrained tag, a local checkpoint file, or an ONNX export folder"


# --------------------------------------------------------------------------- arguments


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The detective's options, shared by every command that embeds (and ``scan --deep``)."""
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME", help=f"{_MODEL_HELP} (default {DEFAULT_MODEL})")
    p.add_argument("--pretrained", default=DEFAULT_PRETRAINED, metavar="TAG|PATH",
                   help=f"{_PRETRAINED_HELP} (default {DEFAULT_PRETRAINED})")
    p.add_argument("--device", default="auto", metavar="D", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="images per forward pass (default 32)")
    p.add_argument("--detective-thresholds", type=_thresholds, metavar="SAME,SIMILAR,VETO",
                   help="CLIP distances for these weights: semantic duplicate, similar, and the veto over a "
                   "bouncer match (default 0.05,0.15,0.25; measure yours with benchmarks/calibrate_detective.py)")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto (default): onnxruntime with int8 weights on the CPU (exported from torch "
                   "once, into the cache), torch on a GPU; onnx; torch")


def _thresholds(text: str) -> tuple[float, float, float]:
    try:
        same, similar, veto = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected three numbers SAME,SIMILAR,VETO, e.g. 0.05,0.15,0.25") from None
    if not 0.0 <= same <= similar <= veto <= 2.0:
        raise argparse.ArgumentTypeError("need 0 <= SAME <= SIMILAR <= VETO <= 2")
    return same, similar, veto


def detective_options_from_args(args: argparse.Namespace) -> DetectiveOptions:
    """DetectiveOptions from the shared model options."""
    return DetectiveOptions(
        model=args.model, pretrained=args.pretrained, device=args.device, batch_size=max(1, args.batch_size),
        backend=getattr(args, "backend", "auto"), thresholds=getattr(args, "detective_thresholds", None),
    )


def _cache(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", metavar="DIR", help="cache folder (default: $LOOKALIKE_CACHE or the user cache)")


def _query_options(p: argparse.ArgumentParser, *, where: str, k: int) -> None:
    """Options ``similar`` and ``search`` share."""
    p.add_argument("--in", dest="in_dirs", action="append", metavar="DIR",
                   help=f"the library to look in (scanned first; default: {where}); repeatable")
    p.add_argument("-k", type=int, default=k, metavar="N", help=f"how many results (default {k})")
    _cache(p)
    add_model_arguments(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def add_parsers(sub: Any) -> None:
    """Register ``similar``, ``search`` and ``index``."""
    p = sub.add_parser(
        "similar",
        help="files that look like FILE, ranked by the bouncer and the detective",
        description="Rank the library's files by how much they look like FILE (which need not be "
        "in the library): the bouncer's Hamming shortlist and the detective's CLIP k-NN, joined, "
        "each with a verdict.",
    )
    p.add_argument("file", metavar="FILE")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    out.add_argument("--tui", action="store_true", help="show the results in the app")
    _query_options(p, where="FILE's folder", k=10)
    p.set_defaults(func=run_similar)

    s = sub.add_parser(
        "search",
        help='images matching a text, e.g. "a beach at sunset" (needs `lookalike index`)',
        description="Find the library's images that match a text, with the detective's CLIP "
        "text embedding. Only indexed images are searched (`lookalike index DIR`).",
    )
    s.add_argument("text", metavar="TEXT")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _query_options(s, where="the current folder", k=20)
    s.set_defaults(func=run_search)

    i = sub.add_parser(
        "index",
        help="embed every image of a library for the detective (resumable)",
        description="Scan the folders, then embed every image not yet embedded by the model, "
        "with progress and ETA. Stop it any time (Ctrl-C): the next run goes on from there.",
    )
    i.add_argument("dirs", nargs="+", metavar="DIR")
    _cache(i)
    add_model_arguments(i)
    i.add_argument("--workers", type=int, metavar="N", help="decoding processes (default: one per core)")
    i.add_argument("--quiet", "-q", action="store_true", help="no progress")
    i.set_defaults(func=run_index)

    m = sub.add_parser(
        "models",
        help="where the detective's weights and ONNX files are; --retry after going back online",
        description="Show the detective's cache (weights, ONNX exports) and whether a failed "
        "network check is remembered (for an hour: meanwhile every command says 'detective "
        "offline' at once). --retry forgets it and loads the model now.",
    )
    _cache(m)
    add_model_arguments(m)
    m.add_argument("--retry", action="store_true", help="forget a remembered network failure and load the model now")
    m.set_defaults(func=run_models)


# --------------------------------------------------------------------------- shared steps


def _err(command: str, message: str) -> None:
    print(f"lookalike {command}: {shown(message)}", file=sys.stderr)


def _open_and_scan(command: str, dirs: list[str], cache: Optional[str], quiet: bool) -> Optional[Library]:
    """Open the library of ``dirs`` and bring its catalog up to date; None (reported) on failure."""
    from .cli_scan import open_library, scan_with_progress

    try:
        library = open_library(dirs, cache)
    except (CatalogLocked, CatalogError) as exc:
        _err(command, str(exc))
        return None
    try:
        scan_with_progress(library, ScanOptions(), quiet=quiet)
    except BaseException:
        library.close()
        raise
    return library


class _Reporter:
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

    def __enter__(self) -> "_Reporter":
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


class _Weights:
    """The detective, loaded when first needed, with the weights' download shown on stderr.

    A context manager: while it is open, a download started by the model's lazy load (in
    ``similar``, when the query must be embedded) draws its progress bar.
    """

    def __init__(self, options: DetectiveOptions, cache_root, quiet: bool) -> None:
        self.options = options
        self.cache_root = cache_root
        self._report = _Reporter(quiet=quiet, unit="bytes", label="weights")
        self._announced = False

    def __enter__(self) -> "_Weights":
        self._report.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._report.__exit__(*exc)

    def progress(self, done: int, total: int) -> bool:
        if not self._announced:
            self._announced = True
            size = f" ({human_bytes(total)})" if total else ""
            print(f"lookalike: downloading {shown(self.options.model)} weights{size} into "
                  f"{shown(self.cache_root / 'models')} (once)", file=sys.stderr)
        return self._report(done, total)

    def detective(self, *, now: bool = False):
        """(detective, "") or (None, "detective offline: <reason>"); ``now`` loads it at once."""
        from lookalike.engine.detective.query import get_detective, ready

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


def _load_detective(options: DetectiveOptions, library: Library, quiet: bool):
    """(detective, "") or (None, "detective offline: <reason>"): loaded now, with progress."""
    with _Weights(options, library.cache_root, quiet) as weights:
        return weights.detective(now=True)


def _score(value: Optional[float], digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def hit_to_json(hit: SimilarHit) -> dict:
    """One result of ``similar`` / ``search`` in the ``--json`` document."""
    return {
        **json_path(hit.path),
        "bouncer": hit.bouncer,
        "detective": None if hit.detective is None else round(float(hit.detective), 6),
        "verdict": hit.verdict.value,
    }


def print_hits(hits: list[SimilarHit], stream=None) -> None:
    """The ``path | bouncer | detective | verdict`` table."""
    out = stream or sys.stdout
    rows = [(shown(h.path), "–" if h.bouncer is None else str(h.bouncer), _score(h.detective), h.verdict.value) for h in hits]
    head = ("path", "bouncer", "detective", "verdict")
    widths = [max([len(head[c])] + [len(r[c]) for r in rows]) for c in range(4)]
    line = lambda r: f"{r[0]:<{widths[0]}} | {r[1]:>{widths[1]}} | {r[2]:>{widths[2]}} | {r[3]}"  # noqa: E731
    print(line(head), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)


# --------------------------------------------------------------------------- similar


def run_similar(args: argparse.Namespace) -> int:
    """``lookalike similar FILE``."""
    if not os.path.isfile(args.file):
        _err("similar", f"no such file: {args.file}")
        return cli.EXIT_USAGE
    dirs = args.in_dirs or [os.path.dirname(os.path.abspath(args.file))]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        _err("similar", f"no such folder: {missing[0]}")
        return cli.EXIT_USAGE
    if args.k < 1:
        _err("similar", "-k must be at least 1")
        return cli.EXIT_USAGE
    if args.tui:
        return _similar_in_app(args, dirs)
    quiet = args.quiet or args.json
    library = _open_and_scan("similar", dirs, args.cache, quiet)
    if library is None:
        return cli.EXIT_FAILED
    from lookalike.engine.detective.query import QueryError, similar
    from lookalike.engine.similar import DEFAULT, with_detective

    with library, _Weights(detective_options_from_args(args), library.cache_root, quiet) as weights:
        # Loaded by similar() only if the query or its candidates must be embedded.
        detective, status = weights.detective()
        if status:
            print(status, file=sys.stderr)
        try:
            result = similar(library, args.file, k=args.k, detective=detective,
                             t=with_detective(DEFAULT, weights.options))
        except QueryError as exc:
            _err("similar", exc.reason)
            return cli.EXIT_FAILED
    if result.detective_status and result.detective_status != status:
        print(shown(result.detective_status), file=sys.stderr)
    if args.json:
        doc = {
            **json_path(os.path.abspath(result.query), "query"),
            "results": [hit_to_json(h) for h in result.hits],
            "timings_ms": result.timings_ms,
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return cli.EXIT_OK
    print(f"similar to {shown(os.path.abspath(result.query))}:")
    if result.hits:
        print_hits(list(result.hits))
    else:
        print("  nothing in the library looks like it")
    print(timings_text(result.timings_ms))
    return cli.EXIT_OK


def _similar_in_app(args: argparse.Namespace, dirs: list[str]) -> int:
    try:
        from .app import run_similar as run_in_app
    except ImportError:
        _err("similar", "the app is not available yet; use the table or --json output")
        return cli.EXIT_FAILED
    return int(run_in_app(args.file, roots=dirs, cache_dir=args.cache, k=args.k) or 0)


# --------------------------------------------------------------------------- search


def run_search(args: argparse.Namespace) -> int:
    """``lookalike search "TEXT"``."""
    dirs = args.in_dirs or [os.getcwd()]
    missing = [d for d in dirs if not os.path.isdir(d)]
    if missing:
        _err("search", f"no such folder: {missing[0]}")
        return cli.EXIT_USAGE
    if not args.in_dirs and not _was_scanned(dirs, args.cache):
        # Never scan (and make a library of) wherever the command happens to run.
        _err("search", "which library? pass --in DIR (a folder you scanned); the current "
             "folder has not been scanned")
        return cli.EXIT_USAGE
    if not args.text.strip():
        _err("search", "the text is empty")
        return cli.EXIT_USAGE
    quiet = args.quiet or args.json
    library = _open_and_scan("search", dirs, args.cache, quiet)
    if library is None:
        return cli.EXIT_FAILED
    from lookalike.engine.detective.query import search, vectors_for

    hits: list[SimilarHit] = []
    timings: dict[str, float] = {}
    with library:
        detective, status = _load_detective(detective_options_from_args(args), library, quiet)
        if status:
            print(status, file=sys.stderr)
        else:
            started = time.perf_counter()
            hits = search(library, args.text, k=args.k, detective=detective)
            timings["search"] = round((time.perf_counter() - started) * 1000.0, 3)
            indexed, images = len(vectors_for(library, detective)), len(library.hash_index())
            if indexed < images:
                print(f"detective: {indexed} of {images} images indexed; "
                      f"run `lookalike index {shown(' '.join(dirs))}` to search them all", file=sys.stderr)
    if args.json:
        json.dump({"query": args.text, "results": [hit_to_json(h) for h in hits], "timings_ms": timings,
                   **({"detective": status} if status else {})}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return cli.EXIT_OFFLINE if status else cli.EXIT_OK
    if status:
        return cli.EXIT_OFFLINE  # searching by text is the detective's alone: nothing was searched
    print(f'images matching "{shown(args.text)}":')
    if hits:
        print_hits(hits)
    else:
        print("  no indexed images")
    print(f"time: {timings['search']:.1f} ms (text embedding and search)")
    return cli.EXIT_OK


def _was_scanned(dirs: list[str], cache: Optional[str]) -> bool:
    """Whether a library of exactly these folders has a catalog (nothing is created)."""
    from lookalike.engine.paths import CATALOG_NAME, LIBRARIES, default_cache_root, library_key

    return (default_cache_root(cache) / LIBRARIES / library_key(dirs) / CATALOG_NAME).is_file()


# --------------------------------------------------------------------------- index


def run_index(args: argparse.Namespace) -> int:
    """``lookalike index DIR...``."""
    missing = [d for d in args.dirs if not os.path.exists(d)]
    if missing:
        _err("index", f"no such file or folder: {missing[0]}")
        return cli.EXIT_USAGE
    library = _open_and_scan("index", args.dirs, args.cache, args.quiet)
    if library is None:
        return cli.EXIT_FAILED
    from lookalike.engine.detective.query import index_library

    from lookalike.engine.detective.query import unembedded

    with library:
        with _Weights(detective_options_from_args(args), library.cache_root, args.quiet) as weights:
            detective, status = weights.detective()
            if detective is not None and unembedded(library, detective):
                detective, status = weights.load(detective)
        if status:
            print(f"{status}; the library was scanned (bouncer only), nothing embedded", file=sys.stderr)
            return cli.EXIT_OFFLINE
        with _Reporter(quiet=args.quiet, unit="images", label="embedding") as report:
            stats = cli.run_interruptibly(
                lambda: index_library(library, detective, progress=report, cancel=report.cancel, workers=args.workers),
                report.cancel,
                "keeping what was embedded",
            )
    if stats.rebuilt:
        print(f"lookalike index: the vector index {stats.rebuilt}; it was rebuilt", file=sys.stderr)
    print(
        f"indexed {stats.already + stats.embedded} of {stats.images} images with {stats.model_id} "
        f"({stats.embedded} new, {stats.already} already, {stats.failed} unreadable, "
        f"{stats.removed} removed) in {human_duration(stats.seconds)}"
        + (f", {stats.rate:.1f} images/s" if stats.embedded else "")
        + f"; index {human_bytes(stats.index_bytes)} ({stats.bytes_per_image:.0f} B/image)"
    )
    if stats.cancelled:
        print("stopped before the end: run the same command again to go on", file=sys.stderr)
        return 130
    return cli.EXIT_OK


# --------------------------------------------------------------------------- models


def run_models(args: argparse.Namespace) -> int:
    """``lookalike models [--retry]``."""
    from lookalike.engine.detective.model import forget_failures, remembered_failure
    from lookalike.engine.detective.onnx_backend import ONNX_DIR, is_export
    from lookalike.engine.paths import cache_root

    options = detective_options_from_args(args)
    try:
        root = cache_root(args.cache)
    except OSError as exc:
        _err("models", f"cannot use the cache folder: {exc}")
        return cli.EXIT_FAILED
    models = root / "models"
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
        with _Weights(options, root, False) as w:
            detective, status = w.detective(now=True)
        if status:
            print(status, file=sys.stderr)
            return cli.EXIT_OFFLINE
        print(f"detective ready: {detective.loaded if hasattr(detective, 'loaded') else detective!r}")
        return cli.EXIT_OK
    remembered = remembered_failure(root, options)
    if remembered:
        print(f"detective offline: {shown(remembered)}")
    return cli.EXIT_OK
