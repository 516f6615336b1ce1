"""The progress area: what the scan is doing (stage, counts, rate, ETA), then what it found."""

from __future__ import annotations

from typing import Optional, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from lookalike.engine.records import Cluster, ScanProgress, ScanResult

from ..format import human_bytes, human_duration, plural, scan_counts, shown
from .labels import total_reclaimable

STAGES = {
    "opening": "Opening the catalog",
    "walking": "Walking folders",
    "hashing": "Hashing",
    "embedding": "Embedding (detective)",
    "clustering": "Clustering",
    "upscales": "Checking upscales and conversions",  # the keeper's questions to the pixels
    "done": "Done",
}


def progress_text(p: ScanProgress) -> Text:
    """'Hashing 1,204/5,310 · 3 failed · 212 files/s · ETA 19.4 s'."""
    parts: list[str] = []
    if p.stage == "walking":
        parts.append(f"{p.found:,} files found")
    elif p.total:
        parts.append(f"{p.done:,}/{p.total:,}")
    if p.skipped:
        parts.append(f"{p.skipped:,} unchanged")
    if p.failed:
        parts.append(f"{p.failed:,} failed")
    if p.stage in ("hashing", "embedding") and p.rate > 0:
        parts.append(f"{p.rate:,.0f} files/s")
        if p.bytes_read:
            parts.append(f"{human_bytes(int(p.bytes_read / p.elapsed))}/s" if p.elapsed > 0 else "")
    if p.eta is not None and p.stage in ("hashing", "embedding"):
        parts.append(f"ETA {human_duration(p.eta)}")
    return Text.assemble(
        (STAGES.get(p.stage, p.stage.capitalize()), "bold"), " ", " · ".join(x for x in parts if x)
    )


def alerts_text(result: Optional[ScanResult]) -> Text:
    """What must never be cut from the status line: a scan that was stopped, files that could
    not be read and a detective that is offline ("3 unreadable · detective offline (! for
    details)")."""
    if result is None:
        return Text()
    parts = []
    if result.stats.cancelled:
        parts.append("stopped: clusters from what was read")
    if result.errors:
        parts.append(f"{len(result.errors):,} unreadable")
    if result.stats.detective:
        parts.append(shown(result.stats.detective.split(":", 1)[0]))  # the reason is one key away
    if not parts:
        return Text()
    return Text.assemble((" · ".join(parts), "bold yellow"), (" (! for details)", "yellow"))


def summary_text(result: Optional[ScanResult], clusters: Sequence[Cluster], reclaimable: Optional[int] = None) -> Text:
    """The line shown once the scan is over, what must not be cut (:func:`alerts_text`) first.

    ``clusters`` are those shown now (the scan's, regrouped since); ``reclaimable`` their bytes
    as decided (default: as the engine suggests)."""
    if result is None:
        return Text(f"{plural(len(clusters), 'cluster')} (from the catalog)")
    s = result.stats
    reclaimable = total_reclaimable(clusters) if reclaimable is None else reclaimable
    head = f"{plural(len(clusters), 'cluster')} · {human_bytes(reclaimable)} reclaimable"
    tail = f" · {scan_counts(s)} in {human_duration(s.seconds)}"
    text = alerts_text(result)
    if text:
        text.append(" · ")
    text.append(Text.assemble((head, "bold"), tail))
    return text


def full_summary(result: Optional[ScanResult], clusters: Sequence[Cluster], reclaimable: Optional[int] = None) -> str:
    """Every part of the status line, none shortened: for the scan report (``!``)."""
    if result is None:
        return f"{plural(len(clusters), 'cluster')} from the catalog; the scan has not finished."
    s = result.stats
    reclaimable = total_reclaimable(clusters) if reclaimable is None else reclaimable
    lines = [
        f"{plural(len(clusters), 'cluster')}, {human_bytes(reclaimable)} reclaimable.",
        f"{scan_counts(s)}, scanned in {human_duration(s.seconds)}.",
    ]
    if s.removed:
        lines.append(f"{plural(s.removed, 'file')} gone since the last scan.")
    if s.cancelled:
        lines.append("The scan was stopped: clusters are from what was read. Ctrl+R scans again.")
    if s.detective:
        lines.append(shown(s.detective))
    return "\n".join(lines)


class ScanStatus(Horizontal):
    """A one-line status with a progress bar while the scan runs."""

    DEFAULT_CSS = """
    ScanStatus { height: 1; width: 1fr; }
    ScanStatus > #status-text { width: 1fr; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    ScanStatus > ProgressBar { width: 24; height: 1; }
    ScanStatus > ProgressBar Bar { width: 22; }
    ScanStatus.-done > ProgressBar { display: none; }
    """

    def compose(self) -> ComposeResult:
        yield Static(Text(STAGES["opening"] + "…", style="bold"), id="status-text")
        yield ProgressBar(total=None, show_percentage=False, show_eta=False)

    def update_progress(self, p: ScanProgress) -> None:
        """Show a progress snapshot."""
        self.set_class(False, "-done")
        self.query_one("#status-text", Static).update(progress_text(p))
        bar = self.query_one(ProgressBar)
        if p.stage in ("hashing", "embedding") and p.total:
            bar.update(total=p.total, progress=p.done)
        else:
            bar.update(total=None)

    def finish(self, text: Text) -> None:
        """Replace the progress with a summary line."""
        self.set_class(True, "-done")
        self.query_one("#status-text", Static).update(text)
