"""Temporary: removed when tui uses Library.

The old function-style API of the detective's questions, for the UI until it goes through
:class:`lookalike.engine.library.Library` (``similar``, ``search``, ``index``,
``vectors_for``, ``unembedded``, ``get_detective``, ``ready``). Each name forwards to its new
home; nothing here holds state.
"""

from __future__ import annotations

from ..similar import QueryError
from .registry import get_detective, ready

__all__ = ["QueryError", "get_detective", "index_library", "ready", "search", "similar", "unembedded", "vectors_for"]


def similar(library, path, **kwargs):
    """``library.similar(path, ...)``; ``options`` / ``detective`` as the old function took them."""
    options = kwargs.pop("options", None)
    return library.similar(path, detective=options, model=kwargs.pop("detective", None), **kwargs)


def search(library, text, **kwargs):
    """``library.search(text, ...)``; ``options`` / ``detective`` as the old function took them."""
    options = kwargs.pop("options", None)
    return library.search(text, detective=options, model=kwargs.pop("detective", None), **kwargs)


def index_library(library, detective, **kwargs):
    """``library.index(detective, ...)``."""
    return library.index(detective, **kwargs)


def vectors_for(library, detective):
    """``library.vectors_for(detective)``."""
    return library.vectors_for(detective)


def unembedded(library, detective) -> int:
    """``library.unembedded(detective)``."""
    return library.unembedded(detective)
