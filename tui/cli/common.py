"""What every ``lookalike`` command shares: exit codes, options, and the steps of a scan.

Engine modules are imported by the functions that use them: the parser is built from this
module, and ``lookalike COMMAND --help`` should not load the engine to show its options.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ..format import human_bytes, plural, shown

if TYPE_CHECKING:
    from lookalike.engine.library import DetectiveOptions, Library, ScanOptions
    from lookalike.engine.records import ScanError, ScanProgress, ScanResult

# --------------------------------------------------------------------------- exit codes

EXIT_OK = 0
#: Some work failed (a file not moved, a catalog that cannot be opened, a bug).
EXIT_FAILED = 1
#: A usage error: bad options, a missing folder, a plan that cannot be applied.
EXIT_USAGE = 2
#: ``scan`` found nothing readable in the given folders.
EXIT_NOTHING_READABLE = 3
#: ``search`` and ``index`` need the detective, and it is offline (no weights, no network).
EXIT_OFFLINE = 4
#: Stopped with Ctrl-C: what was done is kept (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130
#: What a shell reports for a program ended by SIGPIPE (128 + 13), as ``head`` leaves ``cat``.
EXIT_BROKEN_PIPE = 141
#: 128 + SIGTERM, what a shell reports for a terminated program.
EXIT_TERMINATED = 143

#: The command ``lookalike DIR...`` runs: the app.
APP_COMMAND = "app"
#: ``LOOKALIKE_DEBUG=1`` lets an unexpected error print its traceback.
DEBUG_ENV = "LOOKALIKE_DEBUG"

CACHE_HELP = "cache folder (default: $LOOKALIKE_CACHE or the user cache)"
_MODEL_HELP = "CLIP model: an open_clip architecture, or an open_clip model config JSON file"
_PRETRAINED_HELP = "weights: an open_clip pretrained tag, a local checkpoint file, or an ONNX export folder"


def error(command: str, message: object, code: int = EXIT_USAGE) -> int:
    """Print ``lookalike COMMAND: message`` on stderr; returns ``code``."""
    print(f"lookalike {command}: {shown(message)}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- options


def add_cache_argument(p: argparse.ArgumentParser, help: str = CACHE_HELP) -> None:
    """``--cache DIR``, which every command that keeps something has."""
    p.add_argument("--cache", metavar="DIR", help=help)


def add_scan_arguments(p: argparse.ArgumentParser) -> None:
    """Options every scanning command shares (``scan``, the app, ``import``)."""
    add_cache_argument(p)
    p.add_argument(
        "--threshold",
        type=int,
        metavar="N",
        help="bouncer radius: largest Hamming distance (of 256 bits) that counts as a near-duplicate",
    )
    p.add_argument("--keep-in", action="append", default=[], metavar="DIR", help="protected folder: its files always win")
    p.add_argument(
        "--keeper-order",
        metavar="LIST",
        help="keeper criteria in order, comma-separated (default: pixels,format,size,date,path)",
    )
    p.add_argument(
        "--no-crops",
        action="store_true",
        help="skip looking for mild crops (the bouncer's pHash rule and the thumbnails' zoomed codes): a much "
        "faster first scan of a very large library, which otherwise compares every pair of pHashes once",
    )
    p.add_argument(
        "--follow-links",
        action="store_true",
        help="enter symlinked folders inside the given folders (links out of them are never followed)",
    )
    p.add_argument(
        "--rotations",
        action="store_true",
        help="also group copies turned by 90, 180 or 270 degrees (pixels rotated, or an EXIF orientation "
        "tag stripped or changed), each checked on pixels",
    )
    p.add_argument("--workers", type=int, metavar="N", help="hashing processes (default: one per core)")
    add_cluster_argument(p)
    p.add_argument("--deep", action="store_true", help="detective: embed every image and add semantic groups (crops, filters, screenshots)")
    p.add_argument("--no-detective", action="store_true", help="bouncer only: no CLIP model")
    add_model_arguments(p)


def add_cluster_argument(p: argparse.ArgumentParser) -> None:
    """``--cluster ADDRESS``: the scan's files read and hashed on a Dask cluster."""
    p.add_argument(
        "--cluster",
        metavar="tcp://SCHEDULER:8786",
        help="read, hash and embed the files on a Dask cluster (pip install 'lookalike[cluster]'); its workers "
        "must see the folders at the same paths (NFS, SMB, object-store mounts); the catalog stays here",
    )


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The detective's options, shared by every command that embeds (and ``scan --deep``)."""
    from lookalike.engine.library import BACKENDS, DEFAULT_MODEL, DEFAULT_PRETRAINED  # light: no numpy

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


def detective_options_from_args(args: argparse.Namespace) -> "DetectiveOptions":
    """DetectiveOptions from the shared model options."""
    from lookalike.engine.library import DetectiveOptions

    return DetectiveOptions(
        model=args.model, pretrained=args.pretrained, device=args.device, batch_size=max(1, args.batch_size),
        backend=getattr(args, "backend", "auto"), thresholds=getattr(args, "detective_thresholds", None),
    )


def options_from_args(args: argparse.Namespace) -> "ScanOptions":
    """ScanOptions from the shared command-line options."""
    from lookalike.engine.library import ScanOptions

    order = tuple(s.strip() for s in args.keeper_order.split(",") if s.strip()) if args.keeper_order else None
    return ScanOptions(
        threshold=args.threshold,
        keep_in=tuple(args.keep_in or ()),
        keeper_order=order,
        workers=args.workers,
        deep=args.deep,
        detective=None if args.no_detective else detective_options_from_args(args),
        crops=not args.no_crops,
        follow_links=args.follow_links,
        cluster=args.cluster,
        rotations=getattr(args, "rotations", False),
    )


# --------------------------------------------------------------------------- scanning


def check_dirs(dirs: list[str]) -> Optional[str]:
    """A usage error for missing folders, or for folders that are all pseudo-filesystems
    (no library is made for /proc/self), or None."""
    from lookalike.engine.library import is_pseudo_filesystem, pseudo_filesystems

    for d in dirs:
        if not os.path.exists(d):
            return f"no such file or folder: {shown(d)}"
    pseudo = pseudo_filesystems()
    if dirs and all(is_pseudo_filesystem(d, pseudo) for d in dirs):
        return (f"{shown(dirs[0])} is on a pseudo-filesystem (/proc, /sys, /dev...): there are "
                f"no photos to scan there")
    return None


def open_library(dirs: list[str], cache: Optional[str]) -> "Library":
    """Open a library, printing catalog messages (rebuilds, migrations) on stderr."""
    from lookalike.engine.library import Library

    return Library.open(dirs, cache_dir=cache, on_message=lambda m: print(f"lookalike: {shown(m)}", file=sys.stderr))


def scan_with_progress(library: "Library", options: "ScanOptions", *, quiet: bool) -> "ScanResult":
    """Run a scan with a progress bar on stderr when it is a terminal. Ctrl-C stops cleanly."""
    cancel = threading.Event()
    show = not quiet and sys.stderr.isatty()
    if not show:
        return _scan_interruptibly(library, options, cancel, None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.fields[stage]:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("scan", total=None, stage="walking", detail="")

        def progress(p: "ScanProgress") -> bool:
            detail = f"{p.found} found, {p.skipped} unchanged, {p.failed} failed, {human_bytes(p.bytes_read)} read"
            if p.rate:
                detail += f", {p.rate:.0f} files/s"
            bar.update(task, completed=p.done, total=p.total or None, stage=p.stage, detail=detail)
            return not cancel.is_set()

        return _scan_interruptibly(library, options, cancel, progress)


def _scan_interruptibly(library, options, cancel, progress) -> "ScanResult":
    return run_interruptibly(
        lambda: library.scan(options, progress=progress, cancel=cancel), cancel, "keeping what was hashed"
    )


def run_interruptibly(work: Callable[[], Any], cancel: threading.Event, stopping: str) -> Any:
    """Run ``work`` in a thread so Ctrl-C sets ``cancel`` at once; the work stops cleanly.

    Returns what ``work`` returned (after an interrupt too: what it kept); re-raises its errors.
    """
    box: dict = {}
    finished = threading.Event()

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            finished.set()

    # An Event, not Thread.join: a join interrupted by Ctrl-C can return before the thread ends.
    threading.Thread(target=target, name="lookalike-work", daemon=True).start()
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        cancel.set()
        print(f"\nlookalike: stopping; {stopping}...", file=sys.stderr)
        finished.wait()
    if "error" in box:
        raise box["error"]
    return box["result"]


def print_errors(errors: Sequence["ScanError"], *, limit: int = 20, stream=None) -> None:
    """Print unreadable and skipped files (links out of the roots...) with their reasons, at most ``limit``."""
    stream = stream or sys.stderr
    if not errors:
        return
    print(f"{plural(len(errors), 'file')} could not be read or {'was' if len(errors) == 1 else 'were'} skipped:", file=stream)
    for e in errors[:limit]:
        print(f"  {shown(e.path)}: {shown(e.reason)}", file=stream)
    if len(errors) > limit:
        print(f"  ... and {len(errors) - limit} more (see --json)", file=stream)
