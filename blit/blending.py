"""Turning an NNF into an image: StyleBlit's blending by voting.

Each target pixel ``p`` averages, over the offsets ``o`` of its
``(2r+1) x (2r+1)`` neighbourhood, the exemplar colour that the neighbour's
patch puts at ``p``: ``Style(NNF(p + o) - o)`` (Sýkora et al. 2019, Sec. 3.2;
FaceBlit's "voting"). With ``r = 0`` it is a plain gather, so every output
pixel is an exemplar pixel; larger radii hide the seams between patches.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["blend", "pack_exemplar", "PACK_PAD"]

PACK_PAD = 4  # radius that :func:`pack_exemplar`'s default padding serves (the CLI's largest)
_COUNT = np.uint32(1 << 24)  # byte 3 of a packed exemplar pixel: one vote
_LANES = np.uint32(0x00FF00FF)  # bytes 0 and 2 of a packed pixel, as two 16-bit lanes


def pack_exemplar(style, pad=PACK_PAD):
    """The exemplar as :func:`blend` reads it: one uint32 word per pixel.

    Channels 0, 1, 2 are bytes 0, 1, 2 and byte 3 is 1, a vote; a border of
    ``pad`` zero words around it (no colour, no vote) stands for the votes
    whose source falls off the exemplar. One load per vote then fetches all
    three channels and the vote itself, and those votes need no test.

    Parameters
    ----------
    style : (Hs, Ws, 3) uint8 ndarray
    pad : int
        Blending radii up to ``pad`` can use it.

    Returns
    -------
    (Hs + 2 pad, Ws + 2 pad) uint32 ndarray
    """
    if style.dtype != np.uint8 or style.ndim != 3 or style.shape[2] != 3:
        raise ValueError(f"style: expected (H, W, 3) uint8, got {style.shape} {style.dtype}")
    hs, ws = style.shape[:2]
    packed = np.zeros((hs + 2 * pad, ws + 2 * pad), np.uint32)
    inner = packed[pad:pad + hs, pad:pad + ws]
    inner[...] = _COUNT
    for c in range(3):
        inner |= style[..., c].astype(np.uint32) << np.uint32(8 * c)
    return packed


@numba.njit(parallel=True, cache=True)
def _blend_kernel(packed, pad, nnf, radius, out):
    """out(p) = rounded mean over offsets o of Style(NNF(p + o) - o), for the
    neighbours inside the target whose shifted source lies in the exemplar
    (``packed`` by :func:`pack_exemplar` with ``pad >= radius``: a source
    off the exemplar reads a zero word, no vote). Pixels whose own NNF
    entry is inactive (negative) are left untouched."""
    for y in numba.prange(nnf.shape[0]):
        if radius == 1:
            _blend_row_3x3(packed, pad, nnf, out, y)
        else:
            _blend_row(packed, pad, nnf, radius, out, y)


@numba.njit(inline="always")
def _source(packed, pad, nnf, qy, qx, oy, ox):
    """The packed word of neighbour q's vote for p = q - o: Style(NNF(q) - o),
    or 0 (no vote) when that lies off the padded exemplar."""
    sx = nnf[qy, qx, 0] - ox + pad
    sy = nnf[qy, qx, 1] - oy + pad
    if 0 <= sx < packed.shape[1] and 0 <= sy < packed.shape[0]:
        return packed[sy, sx]
    return np.uint32(0)


@numba.njit(inline="always")
def _write_mean(out, y, x, a0, a1, a2, n):
    if n > 0:
        half = n // 2
        out[y, x, 0] = (a0 + half) // n
        out[y, x, 1] = (a1 + half) // n
        out[y, x, 2] = (a2 + half) // n


@numba.njit(inline="always")
def _blend_pixel(packed, pad, nnf, radius, out, y, x):
    h, w = nnf.shape[0], nnf.shape[1]
    a0 = 0
    a1 = 0
    a2 = 0
    n = 0
    for oy in range(max(-radius, -y), min(radius, h - 1 - y) + 1):
        for ox in range(max(-radius, -x), min(radius, w - 1 - x) + 1):
            v = _source(packed, pad, nnf, y + oy, x + ox, oy, ox)
            a0 += v & 0xFF
            a1 += (v >> 8) & 0xFF
            a2 += (v >> 16) & 0xFF
            n += v >> 24
    _write_mean(out, y, x, a0, a1, a2, n)


@numba.njit(inline="always")
def _blend_row(packed, pad, nnf, radius, out, y):
    # A function per row, inlined into the prange loop (called instead, the
    # blend ran 2-3x slower): its per-pixel sums are locals of one
    # iteration, not prange reductions.
    y = np.int64(y)  # prange indices may be unsigned
    for x in range(nnf.shape[1]):
        if nnf[y, x, 0] >= 0:
            _blend_pixel(packed, pad, nnf, radius, out, y, x)


@numba.njit(inline="always")
def _blend_row_3x3(packed, pad, nnf, out, y):
    """:func:`_blend_row` for radius 1 (the default), its nine votes written
    out away from the border. Two sums of 16-bit lanes add up all three
    channels and the count: ``even`` takes bytes 0 and 2 of each word
    (channels 0 and 2), ``odd`` bytes 1 and 3 (channel 1 and the vote); nine
    votes of at most 255 cannot carry from one lane into the next. The same
    sums as :func:`_blend_row`, about twice as fast."""
    h, w = nnf.shape[0], nnf.shape[1]
    y = np.int64(y)  # prange indices may be unsigned
    if y == 0 or y == h - 1 or w < 3:
        _blend_row(packed, pad, nnf, 1, out, y)
        return
    for x in (0, w - 1):
        if nnf[y, x, 0] >= 0:
            _blend_pixel(packed, pad, nnf, 1, out, y, x)
    for x in range(1, w - 1):
        if nnf[y, x, 0] < 0:
            continue
        even = np.uint32(0)
        odd = np.uint32(0)
        for oy in range(-1, 2):
            for ox in range(-1, 2):
                v = _source(packed, pad, nnf, y + oy, x + ox, oy, ox)
                even += v & _LANES
                odd += (v >> 8) & _LANES
        _write_mean(out, y, x, np.int64(even & 0xFFFF), np.int64(odd & 0xFFFF),
                    np.int64(even >> 16), np.int64(odd >> 16))


def _is_cupy(a):
    """A CuPy array, told without importing CuPy (CUDA is touched only then)."""
    return type(a).__module__.split(".", 1)[0] == "cupy"


def blend(style, nnf, radius=1, *, out=None, packed=None):
    """Render an NNF with voting over a ``(2 radius + 1)^2`` neighbourhood.

    Parameters
    ----------
    style : (Hs, Ws, 3) uint8 ndarray
        Exemplar image.
    nnf : (H, W, 2) int32 ndarray
        Exemplar (x, y) per target pixel, as :func:`blit.styleblit.lookup`
        returns: inside the exemplar, or negative for an inactive pixel,
        which casts no vote and whose output pixel is left as it was.
    radius : int
        0 (no voting), 1 (3x3) or 2 (5x5); larger values work too.
    out : (H, W, 3) uint8 ndarray, optional
    packed : ndarray, optional
        :func:`pack_exemplar` of ``style`` with ``pad >= radius``, which the
        kernel reads instead of ``style``; callers that blend many frames
        (:attr:`guides.exemplar.StyleExemplar.packed`) keep one. Default:
        packed here, for this call.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        Rounded mean of the votes.

    Notes
    -----
    CuPy arrays run the CUDA kernel instead (:func:`blit.gpu.blend`, same
    image) and give a CuPy image; NumPy and CuPy arrays in one call are a
    ``TypeError`` naming the odd one.

    Examples
    --------
    >>> style = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    >>> nnf = np.array([[[1, 0]]], np.int32)
    >>> blend(style, nnf, 0)[0, 0]
    array([3, 4, 5], dtype=uint8)
    """
    if _is_cupy(style) or _is_cupy(nnf) or _is_cupy(out):
        from blit import gpu

        return gpu.blend(style, nnf, radius, out=out)  # (reads style, not packed)
    if style.dtype != np.uint8:
        raise TypeError(f"style: expected uint8, got {style.dtype}")
    if style.ndim != 3 or style.shape[2] != 3:
        raise ValueError(f"style: expected (H, W, 3), got shape {style.shape}")
    if nnf.ndim != 3 or nnf.shape[2] != 2:
        raise ValueError(f"nnf: expected (H, W, 2), got shape {nnf.shape}")
    if nnf.dtype != np.int32:
        raise TypeError(f"nnf: expected int32, got {nnf.dtype}")
    if radius < 0:
        raise ValueError(f"radius: expected >= 0, got {radius}")
    h, w = nnf.shape[:2]
    if out is None:
        out = np.zeros((h, w, 3), np.uint8)
    radius = int(radius)
    if packed is None:
        packed = pack_exemplar(style, radius)
    pad = (packed.shape[0] - style.shape[0]) // 2
    if (packed.dtype != np.uint32 or packed.ndim != 2 or pad < radius
            or packed.shape != (style.shape[0] + 2 * pad, style.shape[1] + 2 * pad)):
        raise ValueError(f"packed: expected pack_exemplar(style, pad >= {radius}) of shape "
                         f"{style.shape[:2]} plus the padding, got {packed.shape} {packed.dtype}")
    _blend_kernel(packed, pad, nnf, radius, out)
    return out
