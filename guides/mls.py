"""Moving-least-squares similarity warp (Schaefer, McPhail and Warren 2006).

FaceBlit's positional guide is the exemplar's own pixel coordinates carried
into the target frame by an MLS deformation driven by the two landmark sets.
Here the warp is a *backward* map: for every target pixel ``v`` it returns the
exemplar coordinates ``f(v)``, where ``f`` is the similarity transform that best
maps the target landmarks ``p_i`` onto the exemplar landmarks ``q_i`` with
weights ``w_i = 1 / |p_i - v|^(2 alpha)`` (Schaefer et al., eqs. 2 and 7).

In complex notation (a point ``(x, y)`` is ``x + iy``) the weighted similarity
is ``f(v) = a (v - p*) + q*`` with the weighted centroids ``p*, q*`` and

    a = sum_i w_i conj(p_i - p*) (q_i - q*) / sum_i w_i |p_i - p*|^2,

which is Schaefer et al.'s eq. 7 written with complex numbers.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["mls_similarity", "mls_grid_nodes", "mls_similarity_grid", "positional_guide"]

#: The most landmarks :func:`blit.gpu.positional_guide` takes: they travel in
#: its kernel's by-value argument struct (CUDA's 4 KB of parameters).
MAX_DEVICE_POINTS = 100


def _check_points(src, dst):
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape:
        raise ValueError(f"landmarks: expected two (N, 2) arrays of equal shape, got {src.shape} and {dst.shape}")
    if src.shape[0] < 2:
        raise ValueError(f"landmarks: need at least 2 control points, got {src.shape[0]}")
    for name, p in (("target", src), ("style", dst)):
        if not np.isfinite(p).all():
            raise ValueError(f"landmarks: the {name} points are not all finite")
        if np.ptp(p, axis=0).max() < 1e-3:  # (the similarity is undefined: all NaN)
            raise ValueError(f"landmarks: the {name} points all lie at one place, {p[0]}")
    return src, dst


def mls_similarity(points, src, dst, *, alpha=1.0):
    """Evaluate the MLS similarity deformation that maps ``src`` onto ``dst``.

    Parameters
    ----------
    points : (M, 2) float ndarray
        Where to evaluate the map, (x, y).
    src : (N, 2) float ndarray
        Control points in the domain (here: target landmarks).
    dst : (N, 2) float ndarray
        Their images (here: exemplar landmarks).
    alpha : float
        Weight falloff exponent, ``w_i = |src_i - v|^(-2 alpha)``.

    Returns
    -------
    (M, 2) float32 ndarray
        ``f(points)``. Exact at the control points (``f(src_i) = dst_i``) and
        the identity when ``src == dst``.

    Examples
    --------
    >>> src = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    >>> mls_similarity(src, src, src * 2)[1]
    array([20.,  0.], dtype=float32)
    """
    src, dst = _check_points(src, dst)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    v = pts[:, 0] + 1j * pts[:, 1]  # (M,)
    p = src[:, 0] + 1j * src[:, 1]  # (N,)
    q = dst[:, 0] + 1j * dst[:, 1]
    d2 = np.abs(v[:, None] - p[None, :]) ** 2  # (M, N)
    hit = d2 < 1e-12
    with np.errstate(divide="ignore"):
        w = 1.0 / d2 ** alpha
    w[hit] = 0.0
    wsum = w.sum(axis=1)  # (M,)
    p_star = (w @ p) / wsum
    q_star = (w @ q) / wsum
    p_hat = p[None, :] - p_star[:, None]  # (M, N)
    q_hat = q[None, :] - q_star[:, None]
    mu = np.einsum("mn,mn->m", w, np.abs(p_hat) ** 2)
    a = np.einsum("mn,mn->m", w, np.conj(p_hat) * q_hat) / mu
    f = a * (v - p_star) + q_star
    # At a control point the weight is infinite and the map interpolates.
    rows, cols = np.nonzero(hit)
    f[rows] = q[cols]
    return np.stack([f.real, f.imag], axis=1).astype(np.float32)


def mls_grid_nodes(shape, src, dst, *, grid=10, alpha=1.0):
    """The MLS backward map at the grid nodes of :func:`mls_similarity_grid`.

    The nodes span an (H, W) image corner to corner, at most ``grid`` px
    apart each way: ``gh = ceil((H - 1) / grid) + 1`` rows and ``gw =
    ceil((W - 1) / grid) + 1`` columns (at least 2 each), node (j, i) at
    pixel (i (W - 1) / (gw - 1), j (H - 1) / (gh - 1)).

    Parameters
    ----------
    shape : (int, int)
        Target (H, W).
    src, dst : (N, 2) float ndarray
        Target and exemplar landmarks (x, y).
    grid : int
        Largest node spacing in pixels.

    Returns
    -------
    (gh, gw, 2) float32 ndarray
        Exemplar coordinates (x, y) at every node.
    """
    gh, gw, step_x, step_y = grid_layout(shape, grid)
    src, dst = _check_points(src, dst)
    nodes = np.empty((gh, gw, 2), np.float32)
    _mls_nodes(src, dst, float(alpha), step_x, step_y, nodes)
    return nodes


def grid_layout(shape, grid):
    """The nodes of :func:`mls_grid_nodes` on an (H, W) image, checked: (gh,
    gw, step_x, step_y), node (j, i) at pixel (i step_x, j step_y)."""
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"shape: expected positive (H, W), got {shape}")
    if grid < 1:
        raise ValueError(f"grid: expected a spacing >= 1 px, got {grid}")
    gw = max(2, -(-(w - 1) // grid) + 1)
    gh = max(2, -(-(h - 1) // grid) + 1)
    return gh, gw, (w - 1.0) / (gw - 1), (h - 1.0) / (gh - 1)


def mls_similarity_grid(shape, src, dst, *, grid=10, alpha=1.0, out=None):
    """Dense MLS backward map evaluated on a coarse grid and interpolated.

    FaceBlit evaluates the deformation every 10 px and interpolates
    bilinearly; so does this function. The nodes (:func:`mls_grid_nodes`)
    span the image corner to corner (the first and last node lie on the
    border pixels), so the map is exact at every node and no border pixel is
    extrapolated.

    Parameters
    ----------
    shape : (int, int)
        Target (H, W).
    src, dst : (N, 2) float ndarray
        Target and exemplar landmarks (x, y).
    grid : int
        Largest node spacing in pixels; 1 evaluates every pixel exactly.
    out : (H, W, 2) float32 ndarray, optional

    Returns
    -------
    (H, W, 2) float32 ndarray
        Exemplar coordinates (x, y) for every target pixel.
    """
    nodes = mls_grid_nodes(shape, src, dst, grid=grid, alpha=alpha)
    h, w = int(shape[0]), int(shape[1])
    if out is None:
        out = np.empty((h, w, 2), np.float32)
    elif out.shape != (h, w, 2) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a contiguous ({h}, {w}, 2) float32 array, got "
                         f"{out.shape} {out.dtype}")
    _upsample_nodes(nodes, out)
    return out


@numba.njit(inline="always")
def _mls_at(x, y, src, dst, alpha, weights):
    """MLS similarity at one point (the complex-number form of eq. 7), as
    (x, y). ``weights`` (N,) is scratch that keeps the w_i from the first
    pass for the second, where they were computed again (same values; the
    nodes of a 345x449 head box in 0.28 instead of 0.38 ms, of a 665x880 one
    in 0.97 instead of 1.38)."""
    n = src.shape[0]
    wsum = 0.0
    px = py = qx = qy = 0.0
    for i in range(n):
        dx = src[i, 0] - x
        dy = src[i, 1] - y
        d2 = dx * dx + dy * dy
        if d2 < 1e-12:
            return dst[i, 0], dst[i, 1]
        wi = 1.0 / d2 if alpha == 1.0 else 1.0 / d2 ** alpha
        weights[i] = wi
        wsum += wi
        px += wi * src[i, 0]
        py += wi * src[i, 1]
        qx += wi * dst[i, 0]
        qy += wi * dst[i, 1]
    px /= wsum
    py /= wsum
    qx /= wsum
    qy /= wsum
    mu = ar = ai = 0.0
    for i in range(n):
        wi = weights[i]
        phx = src[i, 0] - px
        phy = src[i, 1] - py
        qhx = dst[i, 0] - qx
        qhy = dst[i, 1] - qy
        mu += wi * (phx * phx + phy * phy)
        # conj(p_hat) * q_hat
        ar += wi * (phx * qhx + phy * qhy)
        ai += wi * (phx * qhy - phy * qhx)
    ar /= mu
    ai /= mu
    vx = x - px
    vy = y - py
    return ar * vx - ai * vy + qx, ar * vy + ai * vx + qy


@numba.njit(parallel=True, cache=True, nogil=True)
def _mls_nodes(src, dst, alpha, step_x, step_y, nodes):
    """nodes[j, i] = the MLS map at (i step_x, j step_y) (:func:`_mls_at`,
    float64, rounded to float32 once)."""
    gh, gw = nodes.shape[0], nodes.shape[1]
    for j in numba.prange(gh):
        weights = np.empty(src.shape[0])
        for i in range(gw):
            nodes[j, i, 0], nodes[j, i, 1] = _mls_at(i * step_x, j * step_y, src, dst, alpha, weights)


@numba.njit(parallel=True, cache=True, nogil=True)
def _upsample_nodes(nodes, out):
    """Bilinear interpolation of corner-aligned grid nodes to every pixel.

    The rows between two node rows share their interpolation along x (``top``
    and ``bot``): it is done once per node row, and each pixel row only mixes
    the two (the same arithmetic as pixel by pixel, so the same values; 2-3x
    faster)."""
    gh, gw = nodes.shape[0], nodes.shape[1]
    h, w = out.shape[0], out.shape[1]
    sy = (gh - 1) / max(h - 1, 1)
    sx = (gw - 1) / max(w - 1, 1)
    cols = np.empty(w, np.int64)
    wts = np.empty(w, np.float32)
    for x in range(w):
        fx = x * sx
        cols[x] = min(int(fx), gw - 2)
        wts[x] = fx - cols[x]
    # the pixel rows between node rows j and j + 1: first[j] .. first[j + 1] - 1
    first = np.zeros(gh, np.int64)
    for y in range(h):
        first[min(int(y * sy), gh - 2) + 1] = y + 1
    for j in range(1, gh):
        first[j] = max(first[j], first[j - 1])
    flat = out.reshape(out.size)  # (``out`` is C-contiguous)
    for jj in numba.prange(gh - 1):
        j = np.int64(jj)  # prange indices may be unsigned
        top = np.empty((w, 2), np.float32)
        bot = np.empty((w, 2), np.float32)
        for x in range(w):
            i = cols[x]
            tx = wts[x]
            for c in range(2):
                top[x, c] = nodes[j, i, c] + (nodes[j, i + 1, c] - nodes[j, i, c]) * tx
                bot[x, c] = nodes[j + 1, i, c] + (nodes[j + 1, i + 1, c] - nodes[j + 1, i, c]) * tx
        # each pixel row mixes the two as flat arrays with unsigned indices,
        # which LLVM vectorises (Numba checks a signed index for wraparound)
        t = top.reshape(2 * w)
        b = bot.reshape(2 * w)
        for y in range(first[j], first[j + 1]):
            ty = np.float32(y * sy - j)
            row = flat[np.uint64(y) * np.uint64(2 * w):]
            for kk in range(2 * w):
                k = np.uint64(kk)
                row[k] = t[k] + (b[k] - t[k]) * ty


def positional_guide(shape, target_landmarks, style_landmarks, *, grid=10, out=None):
    """FaceBlit's positional guide: exemplar coordinates warped into the target.

    Parameters
    ----------
    shape : (int, int)
        Target (H, W).
    target_landmarks, style_landmarks : (68, 2) float32 ndarray
    out : (H, W, 2) float32 ndarray, optional

    Returns
    -------
    (H, W, 2) float32 ndarray
        For every target pixel, the exemplar position (x, y) it corresponds
        to — kept as float exemplar pixels, not quantised to 8 bits.
    """
    return mls_similarity_grid(shape, target_landmarks, style_landmarks, grid=grid, out=out)
