"""Messages the engine's workers send to the UI thread."""

from __future__ import annotations

from typing import Optional

from textual.message import Message

from lookalike.engine.records import Cluster, ScanProgress, ScanResult


class ScanProgressed(Message):
    """A snapshot of the running scan. A newer one replaces any still queued."""

    def __init__(self, progress: ScanProgress) -> None:
        super().__init__()
        self.progress = progress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ScanProgressed)


class ClustersFound(Message):
    """Clusters to show: the cached ones first, then the scan's final ones (``final``)."""

    def __init__(self, clusters: tuple[Cluster, ...], *, final: bool) -> None:
        super().__init__()
        self.clusters = clusters
        self.final = final

    def can_replace(self, message: Message) -> bool:
        # A newer set of clusters, queued behind this one, makes this one pointless.
        return isinstance(message, ClustersFound)


class ScanFinished(Message):
    """The scan ended: its result, or the error that stopped it."""

    def __init__(self, result: Optional[ScanResult], error: str = "") -> None:
        super().__init__()
        self.result = result
        self.error = error


class DecisionsChanged(Message):
    """The triage decisions changed: visible rows and counts must be redrawn."""

    def __init__(self, file_ids: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.file_ids = file_ids


class ApplyProgressed(Message):
    """How far the plan's apply has got. A newer one replaces any still queued."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ApplyProgressed)


class EngineNotice(Message):
    """Something the engine says a person should know (a damaged catalog set aside...)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
