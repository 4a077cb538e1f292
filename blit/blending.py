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

__all__ = ["blend"]


@numba.njit(parallel=True, cache=True)
def _blend_kernel(style, nnf, radius, out):
    """out(p) = rounded mean over offsets o of Style(NNF(p + o) - o), for the
    neighbours inside the target whose shifted source lies in the exemplar.
    Pixels whose own NNF entry is inactive (negative) are left untouched."""
    for y in numba.prange(nnf.shape[0]):
        if radius == 1:
            _blend_row_3x3(style, nnf, out, y)
        else:
            _blend_row(style, nnf, radius, out, y)


@numba.njit(inline="always")
def _votes(style, nnf, y, x, oy, radius):
    """Sums (per channel) and count of the votes that the neighbours of row
    ``y + oy`` (offsets -radius..radius inside the target) cast for pixel
    (x, y): Style(NNF(p + o) - o) where that lies in the exemplar."""
    w = nnf.shape[1]
    hs, ws = style.shape[0], style.shape[1]
    qy = y + oy
    a0 = 0
    a1 = 0
    a2 = 0
    n = 0
    for ox in range(max(-radius, -x), min(radius, w - 1 - x) + 1):
        sx = nnf[qy, x + ox, 0] - ox
        sy = nnf[qy, x + ox, 1] - oy
        if 0 <= sx < ws and 0 <= sy < hs:
            a0 += style[sy, sx, 0]
            a1 += style[sy, sx, 1]
            a2 += style[sy, sx, 2]
            n += 1
    return a0, a1, a2, n


@numba.njit(inline="always")
def _write_mean(out, y, x, a0, a1, a2, n):
    half = n // 2
    out[y, x, 0] = (a0 + half) // n
    out[y, x, 1] = (a1 + half) // n
    out[y, x, 2] = (a2 + half) // n


@numba.njit(cache=True)
def _blend_row(style, nnf, radius, out, y):
    # One row per call: locals stay private to the thread (Numba may
    # otherwise mistake per-pixel accumulators for prange reductions).
    h, w = nnf.shape[0], nnf.shape[1]
    y = np.int64(y)  # prange indices may be unsigned
    for x in range(w):
        if nnf[y, x, 0] < 0:
            continue
        a0 = 0
        a1 = 0
        a2 = 0
        n = 0
        for oy in range(max(-radius, -y), min(radius, h - 1 - y) + 1):
            b0, b1, b2, m = _votes(style, nnf, y, x, oy, radius)
            a0 += b0
            a1 += b1
            a2 += b2
            n += m
        _write_mean(out, y, x, a0, a1, a2, n)


@numba.njit(cache=True)
def _blend_row_3x3(style, nnf, out, y):
    """:func:`_blend_row` for radius 1 (the default) away from the top and
    bottom rows, its three neighbour rows written out for the compiler:
    the same sums, about 8% faster."""
    h, w = nnf.shape[0], nnf.shape[1]
    y = np.int64(y)  # prange indices may be unsigned
    if y == 0 or y == h - 1:
        _blend_row(style, nnf, 1, out, y)
        return
    for x in range(w):
        if nnf[y, x, 0] < 0:
            continue
        a0, a1, a2, n = _votes(style, nnf, y, x, -1, 1)
        b0, b1, b2, m = _votes(style, nnf, y, x, 0, 1)
        c0, c1, c2, k = _votes(style, nnf, y, x, 1, 1)
        _write_mean(out, y, x, a0 + b0 + c0, a1 + b1 + c1, a2 + b2 + c2, n + m + k)


def _is_cupy(a):
    """A CuPy array, told without importing CuPy (CUDA is touched only then)."""
    return type(a).__module__.split(".", 1)[0] == "cupy"


def blend(style, nnf, radius=1, *, out=None):
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

        return gpu.blend(style, nnf, radius, out=out)
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
    _blend_kernel(style, nnf, int(radius), out)
    return out
