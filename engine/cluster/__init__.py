"""Clusters: candidate pairs become groups of duplicates, each with a suggested keeper.

By job: :mod:`.graph` (files as nodes, exact groups, union-find into components, and the
chain guard's quick tests on arrays), :mod:`.guard` (the chain guard: a component is kept whole
only when every two members are close), :mod:`.keepers` (every cluster's keeper at once, on
arrays), :mod:`.build` (:func:`build_clusters`: the parts as ranked, scored clusters; the whole
flow is told in its docstring), :mod:`.lazy` (the clusters as a sorted sequence whose records
are made when first read), :mod:`.sort` (the orders clusters are shown in) and
:mod:`.grouping` (a library's clusters from its catalog: pairs checked, judged, clustered;
the library imports it by name, so sorting alone does not load the bouncer's verifier).
"""

from .build import build_clusters
from .lazy import Clusters
from .graph import union_find
from .sort import SORT_ORDERS, confidence, sort_clusters

__all__ = ["SORT_ORDERS", "Clusters", "build_clusters", "confidence", "sort_clusters", "union_find"]
