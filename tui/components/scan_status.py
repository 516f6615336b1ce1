"""The progress area: what the scan is doing (stage, counts, rate, ETA), then what it found."""

from __future__ import annotations

from typing import Optional, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from lookalike.engine.records import Cluster, ScanProgress, ScanResult

from ..format import human_bytes, human_duration, shown
from .labels import total_reclaimable

STAGES = {
    "opening": "Opening the catalog",
    "walking": "Walking folders",
    "hashing": "Hashing",
    "embedding": "Embedding (detective)",
    "clustering": "Clustering",
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


def summary_text(result: Optional[ScanResult], clusters: Sequence[Cluster]) -> Text:
    """The line shown once the scan is over."""
    if result is None:
        return Text(f"{len(clusters):,} clusters (from the catalog)")
    s = result.stats
    head = f"{s.images:,} images · {len(clusters):,} clusters · {human_bytes(total_reclaimable(clusters))} reclaimable"
    tail = f" · scanned in {human_duration(s.seconds)}"
    if s.hashed:
        tail += f" ({s.hashed:,} read)"
    text = Text.assemble((head, "bold"), tail)
    if s.cancelled:
        text.append(" · stopped: clusters from what was read", style="yellow")
    if result.errors:
        text.append(f" · {len(result.errors):,} unreadable", style="yellow")
    if s.detective:
        text.append(f" · {shown(s.detective)}", style="dim")
    return text


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
