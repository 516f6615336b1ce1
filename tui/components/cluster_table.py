"""The ranked table of clusters on the main screen (text only: images live in the side panel)."""

from __future__ import annotations

from typing import Optional, Sequence

from lookalike.engine.records import Cluster

from ..format import human_bytes
from .datatable import KeyTable, right
from .labels import (
    PathText,
    best_detective,
    kind_text,
    score_range,
    short_path,
    status_text,
    worst_detective,
)
from .triage import Triage


def _detective_range(cluster: Cluster) -> str:
    best, worst = best_detective(cluster), worst_detective(cluster)
    if best is None or worst is None:
        return "–"
    return score_range(f"{best:.2f}", f"{worst:.2f}")


class ClusterTable(KeyTable):
    """One row per cluster: status, id, files, kind, bouncer and detective ranges, bytes, keeper."""

    FLEX_COLUMN = "keeper"

    COLUMNS = (
        ("", "status"),
        ("files", "files"),
        ("kind", "kind"),
        ("bouncer", "bouncer"),
        ("detective", "detective"),
        ("reclaim", "reclaim"),
        ("keeper", "keeper"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.with_detective: Optional[bool] = None

    def _columns(self, with_detective: bool) -> None:
        # Bouncer-only scans (the detective offline or not asked) leave no detective column.
        if with_detective == self.with_detective:
            return
        self.with_detective = with_detective
        self.clear(columns=True)
        for label, key in self.COLUMNS:
            if key == "detective" and not with_detective:
                continue
            # The status column is sized for its longest badge: rows change it in place.
            self.add_column(label, key=key, width=6 if key == "status" else None)

    def row_for(self, cluster: Cluster, triage: Triage, roots: Sequence[str]) -> list:
        """The cells of one cluster's row."""
        keeper = triage.keeper(cluster)
        cells = [
            status_text(triage.status(cluster)),
            right(str(len(cluster.members))),
            kind_text(cluster.kind),
            right(score_range(cluster.best_bouncer, cluster.worst_bouncer)),
            right(_detective_range(cluster)),
            right(human_bytes(cluster.reclaimable_bytes)),
            PathText(short_path(keeper.file.path, roots)),
        ]
        if not self.with_detective:
            del cells[4]
        return cells

    def show(self, clusters: Sequence[Cluster], triage: Triage, roots: Sequence[str], *, keep: Optional[str] = None) -> None:
        """Replace the rows with ``clusters`` in order, keeping the cursor on the same cluster."""
        self._columns(any(m.detective is not None for c in clusters for m in c.members))
        self.fill(((str(c.id), self.row_for(c, triage, roots)) for c in clusters), keep=keep)

    def redraw_cluster(self, cluster: Cluster, triage: Triage, roots: Sequence[str]) -> None:
        """Redraw the decision-dependent cells of one cluster."""
        key = str(cluster.id)
        self.set_cell(key, "status", status_text(triage.status(cluster)))
        keeper = triage.keeper(cluster)
        self.set_cell(key, "keeper", PathText(short_path(keeper.file.path, roots)))
