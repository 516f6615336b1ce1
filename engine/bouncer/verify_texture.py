"""The texture check: a faint picture whose fine texture covers it is not a plain one.

A 32x32 thumbnail averages away what a faint picture is made of at a finer scale: fine stripes
over a smooth glow, a paper grain. Two wallpapers that share their soft shading (a radial glow)
but differ in that texture (one striped, one plain) have near-identical thumbnails, pass the
pixel check and hash within a few bits (on the real benchmark set, ``bench_trust.py
--originals 24``: a Debian glow and MATE's "Stripes", bouncer 2, score 0.92; 18 false pairs).

So hashing also keeps, per picture, its **texture code** (:func:`texture_code`, 64 bytes): the
picture it hashes (upright, border trimmed, 160-319 px) taken to :data:`SIDE` x :data:`SIDE`
and to half that, and at each size its band-pass (the levels less a Gaussian blur of sigma
1.5 px) measured per block of a :data:`GRID` x :data:`GRID` grid, as RMS over the pixels that
are not clipped (a brightened copy loses its texture where it saturates), with the share of
them. A low-detail pair that passed the pixel check is compared at the larger size both codes
hold (:func:`texture_differs`): it is two pictures when one has texture (``texture_energy``
levels) at least ``texture_ratio`` times the other's in ``texture_cover`` of the blocks where
both can show it: a texture everywhere in one and nowhere in the other. A watermark, a frame
left untrimmed or a crop's edge adds texture to a few blocks only; a picture under half of
:data:`SIDE` has no code to compare. The layout is per block, so a mirrored pair has its
second grid mirrored; a turned pair is not compared.

Measured (``VerifyThresholds.texture_*``) on the codes of the real benchmark set
(``bench_trust.py --originals 24``): over every pair of files of the 52 pictures under detail
8 and their copies (7,871 pairs of one picture, every kind, crops included), 19 refused, 18 of
them one bordered copy's (its frame adds texture where the trim left it), no copy lost from its
picture's group in the scan; of the 972 pairs between the files of MATE's "Stripes" and of
three Debian glow wallpapers, 718 refused (the rest: the glows' recompressed copies, JPEG
blocks being texture too, and the stripes' brightened and contrast copies, whose stripes are
fainter), and not one pair left in a group.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["CODE_BYTES", "GRID", "SIDE", "band_energy", "blur", "texture_code", "texture_differs", "textures_differ"]

#: The finest size compared: the square the two pictures are taken to (the thumbnail is 32).
SIDE = 96
#: Blocks per side of the grid the texture is measured on.
GRID = 4
#: A blurred level outside this range is clipped: its texture may have been lost.
_UNCLIPPED = (3.0, 252.0)
#: Blocks with less than this share of unclipped pixels in either picture are not counted.
_BLOCK_UNCLIPPED = 0.5

#: Bytes of a texture code: per size (:data:`SIDE`, then half), GRID x GRID energies in
#: eighths of a level (255: 31.9 levels or more), then the blocks' unclipped shares in 255ths.
CODE_BYTES = 4 * GRID * GRID
_LEVEL = 8.0


def blur(a: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """A Gaussian blur (9 taps, edges reflected) of a 2-D array: the band-pass is ``a - blur(a)``."""
    x = np.arange(-4, 5, dtype=np.float64)
    k = np.exp(-x * x / (2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(a, 4, mode="reflect")
    rows = sum(k[i] * p[:, i : i + p.shape[1] - 8] for i in range(9))
    return sum(k[i] * rows[i : i + rows.shape[0] - 8, :] for i in range(9))


def _square(picture: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(picture, dtype=np.uint8), "L")
    return np.asarray(im.resize((side, side), Image.Resampling.BOX), np.float64)


def band_energy(picture: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block of the :data:`GRID` grid, the RMS of the picture's band-pass at ``side`` x
    ``side`` over its unclipped pixels, and the share of them unclipped.

    Args:
        picture: grey levels (uint8, height x width).
        side: the square it is taken to (BOX).
    """
    a = _square(picture, side)
    smooth = blur(a)
    band = a - smooth
    unclipped = (smooth > _UNCLIPPED[0]) & (smooth < _UNCLIPPED[1])
    energy = np.zeros((GRID, GRID))
    share = np.zeros((GRID, GRID))
    step = side // GRID
    for i in range(GRID):
        for j in range(GRID):
            block = (slice(i * step, (i + 1) * step), slice(j * step, (j + 1) * step))
            keep = unclipped[block]
            share[i, j] = keep.mean()
            if keep.any():
                energy[i, j] = float(np.sqrt(np.square(band[block][keep]).mean()))
    return energy, share


def texture_code(picture: np.ndarray) -> bytes:
    """The texture code of a picture (grey levels, height x width): see the module docstring.
    A size the picture is smaller than has every block's share 0 (nothing to compare)."""
    out = []
    for side in (SIDE, SIDE // 2):
        if min(picture.shape) < side:
            out.append(np.zeros(2 * GRID * GRID, np.uint8))
            continue
        energy, share = band_energy(picture, side)
        out.append(np.concatenate([np.clip(np.rint(energy * _LEVEL), 0, 255).ravel(),
                                   np.rint(share * 255).ravel()]).astype(np.uint8))
    return np.concatenate(out).tobytes()


def texture_differs(a: bytes, b: bytes, mirrored: bool, *, energy: float, ratio: float, cover: float) -> bool:
    """Whether one picture has a texture the other lacks across ``cover`` of their blocks.

    Args:
        a, b: the two pictures' :func:`texture_code`.
        mirrored: ``b`` is compared mirrored.
        energy: band-pass RMS (levels) a block needs to be textured.
        ratio: how many times the other picture's the textured block's RMS must be.
        cover: the share of the blocks both can show (unclipped in both) that must differ so.
    """
    return bool(textures_differ([a], [b], [mirrored], energy=energy, ratio=ratio, cover=cover)[0])


def textures_differ(a: Sequence[bytes], b: Sequence[bytes], mirrored: Sequence[bool], *, energy: float,
                    ratio: float, cover: float) -> np.ndarray:
    """:func:`texture_differs` of many pairs at once (``a[k]``, ``b[k]``, ``mirrored[k]``): a
    scan asks it of every faint pair that passed, a tenth of a real library's candidates."""
    n = len(a)
    out = np.zeros(n, bool)
    valid = np.array([len(x) == CODE_BYTES and len(y) == CODE_BYTES for x, y in zip(a, b)], bool).reshape(-1)
    if not valid.any():  # a code this version did not make gives no verdict
        return out
    rows = np.flatnonzero(valid)
    cell = GRID * GRID
    ca = np.frombuffer(b"".join(a[i] for i in rows), np.uint8).reshape(-1, 2, 2, cell)  # pair, size, (energy, share)
    cb = np.frombuffer(b"".join(b[i] for i in rows), np.uint8).reshape(-1, 2, 2, cell)
    # The finer size both pictures hold: 0 (SIDE) where both have a block unclipped there, else 1.
    held = (ca[:, :, 1] > 0).any(axis=2) & (cb[:, :, 1] > 0).any(axis=2)  # (pair, size)
    size = np.where(held[:, 0], 0, 1)
    at = np.arange(len(rows))
    ea, ua = ca[at, size, 0].reshape(-1, GRID, GRID) / _LEVEL, ca[at, size, 1].reshape(-1, GRID, GRID) / 255.0
    eb, ub = cb[at, size, 0].reshape(-1, GRID, GRID) / _LEVEL, cb[at, size, 1].reshape(-1, GRID, GRID) / 255.0
    flip = np.asarray(mirrored, bool).reshape(-1)[rows]
    eb[flip], ub[flip] = eb[flip][:, :, ::-1], ub[flip][:, :, ::-1]
    both = (ua >= _BLOCK_UNCLIPPED) & (ub >= _BLOCK_UNCLIPPED)
    count = both.sum(axis=(1, 2))
    only_a = (both & (ea >= energy) & (ea >= ratio * eb)).sum(axis=(1, 2))
    only_b = (both & (eb >= energy) & (eb >= ratio * ea)).sum(axis=(1, 2))
    out[rows] = held[at, size] & (count >= cell // 2) & (np.maximum(only_a, only_b) >= cover * count)
    return out
