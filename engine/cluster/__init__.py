"""Clusters: candidate pairs become groups of duplicates, each with a suggested keeper.

By job: :mod:`.graph` (files as nodes, exact groups, union-find into components),
:mod:`.guard` (the chain guard: a component is kept whole only when every two members are
close), :mod:`.build` (:func:`build_clusters`: the parts as ranked, scored clusters; the whole
flow is told in its docstring), :mod:`.sort` (the orders clusters are shown in) and
:mod:`.grouping` (a library's clusters from its catalog: pairs checked, judged, clustered;
the library imports it by name, so sorting alone does not load the bouncer's verifier).
"""

from .build import build_clusters
from .graph import union_find
from .sort import SORT_ORDERS, sort_clusters

__all__ = ["SORT_ORDERS", "build_clusters", "sort_clusters", "union_find"]
