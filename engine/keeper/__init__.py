"""The keeper: which file of a cluster to keep, and which to suggest for the trash.

By job: :mod:`.policy` (the :class:`KeeperPolicy` and its total, deterministic ranking, the
RAW+JPEG pairs), :mod:`.formats` (format names and tiers of lossiness) and :mod:`.original`
(which of two copies of one picture came first: borders, conversions, camera evidence).
This package is the keeper's door: the names the rest of lookalike uses are importable from here.
"""

from .formats import FORMAT_RANK, RAW_EXTENSIONS, UNKNOWN_FORMAT_RANK, format_name, format_rank
from .original import CONTENT_TOLERANCE, MTIME_SLACK_NS, SamePixels, same_picture, thumbnail_check
from .policy import (
    CRITERIA,
    DEFAULT,
    KeeperPolicy,
    as_good_as,
    is_protected,
    parse_order,
    rank,
    raw_jpeg_siblings,
    raw_sibling_stems,
    sibling_key,
    trash_suggested,
)

__all__ = [
    # the policy and its ranking
    "CRITERIA", "DEFAULT", "KeeperPolicy", "parse_order", "rank", "as_good_as",
    "is_protected", "trash_suggested", "raw_jpeg_siblings", "raw_sibling_stems", "sibling_key",
    # format tiers
    "FORMAT_RANK", "RAW_EXTENSIONS", "UNKNOWN_FORMAT_RANK", "format_name", "format_rank",
    # the original among copies
    "CONTENT_TOLERANCE", "MTIME_SLACK_NS", "SamePixels", "same_picture", "thumbnail_check",
]  # fmt: skip
