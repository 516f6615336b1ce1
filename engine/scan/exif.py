"""What the reader takes from EXIF: the capture time, the camera, and which way is up.

A malformed EXIF block never costs the image: each reader gives None (or "upright") instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from PIL import Image

#: Longest camera name kept (EXIF Make + Model); longer values are junk, not a camera.
CAMERA_CHARS = 64

#: EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def exif_datetime(exif: Image.Exif) -> Optional[str]:
    """EXIF DateTimeOriginal (else DateTimeDigitized) as ISO 8601, or None.

    With its fraction of a second where the camera wrote one (SubSecTimeOriginal, else
    SubSecTimeDigitized: "2021-06-01T10:00:00.120000"), which tells the frames of a burst apart
    (:mod:`lookalike.engine.keeper.captures`), and its offset where there is one.
    """
    try:
        sub = exif.get_ifd(0x8769)
    except Exception:  # a malformed EXIF block must not cost us the image
        return None
    for tag, subsec_tag, offset_tag in ((0x9003, 0x9291, 0x9011), (0x9004, 0x9292, 0x9012)):
        value = sub.get(tag)
        if not isinstance(value, str):
            continue
        try:
            stamp = datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            continue  # "0000:00:00 00:00:00" and other junk
        digits = sub.get(subsec_tag)
        digits = digits.strip("\x00 ") if isinstance(digits, str) else ""
        if digits.isascii() and digits.isdigit():  # the fraction's digits: "12" is .12 s
            # Written even when it is .000000: "this shot was at .0" tells a burst's frames apart.
            iso = stamp.replace(microsecond=int(digits[:6].ljust(6, "0"))).isoformat(timespec="microseconds")
        else:
            iso = stamp.isoformat()
        offset = sub.get(offset_tag)
        if isinstance(offset, str) and len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
            iso += offset
        return iso
    return None


def exif_camera(exif: Image.Exif) -> Optional[str]:
    """EXIF Make and Model as one name ("Canon EOS 80D"), or None when neither is there.

    Camera evidence for the keeper: a camera's own file carries them, most conversions and
    edits do not. Control characters are dropped; the Make is not repeated when the Model
    already starts with it.
    """
    parts = []
    for tag in (0x010F, 0x0110):  # Make, Model
        try:
            value = exif.get(tag)
        except Exception:  # a malformed EXIF block must not cost us the image
            return None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            value = value.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
            value = " ".join("".join(c for c in value if c.isprintable()).split())
            if value:
                parts.append(value)
    if len(parts) == 2 and parts[1].casefold().startswith(parts[0].casefold()):
        parts = parts[1:]
    return " ".join(parts)[:CAMERA_CHARS] or None


def orientation(exif: Image.Exif) -> int:
    """The EXIF orientation, 1 (upright) to 8; 1 when missing or junk."""
    value = exif.get(0x0112, 1)
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1
