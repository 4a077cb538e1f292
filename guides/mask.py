"""Head region: where the stylized face is composited into the frame.

The region is the jaw line (68-point landmarks 0-16) closed over the top by
a half-ellipse through the jaw ends that covers the forehead, oriented with
the face (chin to nose-root axis), with a soft edge. Work is limited to its
bounding box, as FaceBlit limits it to the head area.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np

from guides.appearance import float_tap
from guides.buffers import take

#: Mask weight below which a pixel keeps the background: it could not change
#: the composite by half a level, so the stylizers do not paint it at all.
MIN_WEIGHT = np.float32(1.0 / 510.0)

__all__ = ["HeadRegion", "HeadOutline", "head_region", "head_outline", "outline_mask",
           "enlarge_mask", "gaussian_taps", "head_box", "head_polygon", "composite", "MIN_WEIGHT"]


@dataclass
class HeadRegion:
    """A soft head mask on a box of the frame.

    Attributes
    ----------
    box : (int, int, int, int)
        ``(x0, y0, x1, y1)``, frame pixels, end-exclusive.
    mask : (y1 - y0, x1 - x0) float32 ndarray in [0, 1]
    """

    box: tuple
    mask: np.ndarray

    def full(self, shape):
        """The mask on the whole (H, W) frame."""
        out = np.zeros(shape[:2], np.float32)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.mask
        return out


def head_polygon(landmarks, *, top=0.75, arc_points=24):
    """Outline of the head: jaw line plus a half-ellipse over the forehead.

    Parameters
    ----------
    landmarks : (68, 2) float32 ndarray
    top : float
        Height of the ellipse above the jaw ends, as a fraction of the
        chin-to-nose-root distance (0.75 reaches the hairline on most faces).

    Returns
    -------
    (17 + arc_points, 2) float32 ndarray, frame pixels.
    """
    lm = np.asarray(landmarks, np.float32)
    jaw = lm[0:17]
    up = lm[27] - lm[8]
    face_h = float(np.hypot(*up)) or 1.0
    up = up / face_h
    centre = (lm[0] + lm[16]) / 2.0
    across = (lm[16] - lm[0]) / 2.0  # half-axis towards jaw end 16
    height = top * face_h + float(np.dot(lm[27] - centre, up))
    theta = np.linspace(0.0, np.pi, arc_points + 2)[1:-1]
    arc = centre + np.cos(theta)[:, None] * across + np.sin(theta)[:, None] * (up * height)
    return np.concatenate([jaw, arc.astype(np.float32)], axis=0)


def head_region(shape, landmarks, *, top=0.75, feather=0.08, margin=0, buffers=None):
    """Soft head mask on its bounding box.

    :func:`head_outline` with the same arguments, its mask made
    (:func:`outline_mask`).

    Parameters
    ----------
    shape : (int, int)
        Frame (H, W).
    landmarks : (68, 2) float32 ndarray
    top : float
        See :func:`head_polygon`.
    feather : float
        Width of the soft edge (Gaussian sigma) as a fraction of the jaw width.
    margin : int
        Extra pixels around the box (e.g. the blending radius).
    buffers : guides.buffers.Buffers, optional
        Where to take the mask and its work arrays from (names ``"mask*"``);
        default: new arrays.

    Returns
    -------
    HeadRegion
        Empty box (zero area) when the head lies outside the frame.
    """
    return head_outline(shape, landmarks, top=top, feather=feather, margin=margin,
                        buffers=buffers).region()


#: Samples per pixel each way of the polygon's coverage (:func:`outline_mask`).
SAMPLES = 4
#: The polygon's coordinates are in 1/SUBPIXEL px (cv2.fillPoly's shift 4),
#: pixel (x, y)'s centre at (SUBPIXEL x, SUBPIXEL y).
SUBPIXEL = 16
_STEP = SUBPIXEL // SAMPLES  # between samples
_FIRST = _STEP // 2 - SUBPIXEL // 2  # sample 0: (1/2 - SAMPLES/2) / SAMPLES px from pixel 0's centre
#: Limits of what the CUDA twin's argument struct holds (blit/cuda).
MAX_POLYGON, MAX_RADIUS = 64, 64


@dataclass
class HeadOutline:
    """What a head's soft mask is made from (:func:`head_outline`), without
    the mask: a few hundred bytes, which the CUDA stream passes to its
    kernels by value (:func:`blit.gpu.outline_mask`).

    The mask (:func:`outline_mask`) is the polygon's coverage of blocks of
    ``factor`` x ``factor`` pixels of a canvas (the box, padded to a
    multiple of ``factor``), blurred there by ``taps`` and enlarged back
    onto the box.

    Attributes
    ----------
    box : (int, int, int, int)
        ``(x0, y0, x1, y1)``, frame pixels, end-exclusive.
    polygon : (n, 2) int32 ndarray
        The head's polygon on the canvas, in 1/:data:`SUBPIXEL` px.
    factor : int
    offset : (int, int)
        ``(ox, oy)``: the box's first pixel on the canvas.
    small_shape : (int, int)
        ``(sh, sw)``: the canvas in blocks.
    taps : (r + 1,) float32 ndarray
        The blur's weights at 0..r blocks (a symmetric Gaussian, sums to 1).
    reflect : bool
        The blur's border: cv2.BORDER_REFLECT where True, else
        BORDER_REFLECT_101.
    buffers : guides.buffers.Buffers or None
        Where :meth:`region` takes its mask (``"mask"``) and work arrays from.
    """

    box: tuple
    polygon: np.ndarray
    factor: int
    offset: tuple
    small_shape: tuple
    taps: np.ndarray
    reflect: bool
    buffers: object = None
    _region: HeadRegion | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self):
        """(h, w) of the box."""
        x0, y0, x1, y1 = self.box
        return y1 - y0, x1 - x0

    def region(self):
        """The :class:`HeadRegion`: the mask made on the host, once."""
        if self._region is None:
            mask = outline_mask(self, out=take(self.buffers, "mask", self.shape, np.float32),
                                buffers=self.buffers)
            self._region = HeadRegion(self.box, mask)
        return self._region


def head_outline(shape, landmarks, *, top=0.75, feather=0.08, margin=0, buffers=None):
    """The :class:`HeadOutline` of :func:`head_region` (same arguments):
    the head's polygon, its box, and how its soft edge is blurred.

    The soft edge is smooth over sigma pixels, so the mask is made at 1/f
    of the resolution: the polygon's coverage of f x f blocks, blurred by
    sigma / f, enlarged back (:func:`outline_mask`).
    """
    poly, sigma, (x0, y0, x1, y1) = _outline(shape, landmarks, top, feather, margin)
    hh, ww = y1 - y0, x1 - x0
    # f = sigma // 2 up to 4 (the blur is then at least 2 small pixels
    # wide), and from sigma 48 f = sigma // 6 (8 or more; the blur at least
    # 6 small pixels wide). Within 0.014 of the polygon's coverage blurred at
    # full resolution at sigma 2.2 (f 1: the 4x4 samples a pixel), 0.0047
    # at sigma 15 (f 4), 0.0024 at sigma 51 (f 8), 0.0018 at sigma 66 (f
    # 10), on Grace Hopper's head scaled (tests/test_guides.py's reference).
    # (With cv2.fillPoly, INTER_AREA and GaussianBlur before 2026-12-05:
    # 0.0036 at sigma 15, 0.0024 at sigma 59.) Measured when f was at most
    # 4 (that pipeline): on target1 at 768x1024
    # with lincolnbust (sigma 38: f 4), f 8 and 9 moved mediapipe's landmark
    # error on the still from 0.046 to 0.052-0.053 of the inter-ocular
    # distance, over #2's bar of 0.05 (f 5 to 7: 0.046), for masks at most
    # 0.0035 apart: heads up to sigma 48, 1.3x target1's at 768x1024, keep
    # f 4. The canvas is the box padded to a multiple of f.
    coarse = sigma >= 48
    f = int(sigma // 6 if coarse else min(4.0, max(1.0, sigma // 2)))
    sh, sw = -(-hh // f), -(-ww // f)
    # Where the frame cuts the box (the head goes on beyond it), the blur
    # reflects the coverage at the frame's edge. From f 8 the small blur
    # reflects at the small image's edge itself (BORDER_REFLECT: half a
    # pixel from the full-resolution blur's axis, where BORDER_REFLECT_101's
    # is (f - 1) / 2 px off), and the padding goes before a side the frame
    # cuts (when the other side is not cut), so that the small grid ends at
    # the frame's edge: Grace Hopper's head at sigma 59 (f 9), cut at the
    # right or the top left, within 0.0089 and 0.0024 of the full-resolution
    # blur of the polygon on the box (measured with the pipeline before
    # 2026-12-05 at sigma 48-120: within 0.0077, and 0.061 with
    # BORDER_REFLECT_101 and the padding after; f 4: 0.023).
    h, w = int(shape[0]), int(shape[1])
    ox = sw * f - ww if (coarse and x1 == w and x0 > 0) else 0
    oy = sh * f - hh if (coarse and y1 == h and y0 > 0) else 0
    # (where the frame's edge cuts the box, the polygon goes on into the
    # padding: the head goes on beyond the frame; far points are held where
    # the coverage's integer arithmetic stays exact)
    lim = float(1 << 26)
    pts = np.clip(np.round((poly.astype(np.float64) - [x0 - ox, y0 - oy]) * SUBPIXEL), -lim, lim)
    return HeadOutline((x0, y0, x1, y1), pts.astype(np.int32), f, (ox, oy), (sh, sw),
                       gaussian_taps(sigma / f), coarse, buffers)


def gaussian_taps(sigma):
    """The weights at 0..r of a normalised Gaussian of ``sigma`` (float32),
    r as cv2.GaussianBlur's for float images: its size round(8 sigma + 1),
    made odd."""
    r = (int(np.floor(sigma * 8 + 1 + 0.5)) | 1) // 2
    if r > MAX_RADIUS:
        raise ValueError(f"sigma {sigma}: a blur of radius {r} is over {MAX_RADIUS}")
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return (g / g.sum())[r:].astype(np.float32)


def outline_mask(outline, *, out=None, buffers=None):
    """The soft mask of a :class:`HeadOutline` on its box.

    1. Coverage: each block of factor x factor canvas pixels holds the
       share of its SAMPLES x SAMPLES samples per pixel (at (i + 1/2) /
       SAMPLES - 1/2 px from the pixel's centre) that lie inside the
       polygon (even-odd), counted in exact integer arithmetic on the
       polygon's 1/SUBPIXEL px coordinates.
    2. Blur: by ``taps`` along x, then along y, in float32 (every product
       rounded on its own), reflected at the small grid's edges.
    3. :func:`enlarge_mask` onto the box.

    :func:`blit.gpu.outline_mask` gives the same bits.

    Parameters
    ----------
    outline : HeadOutline
    out : (h, w) float32 C-contiguous ndarray, optional
    buffers : guides.buffers.Buffers, optional
        Where to take the work arrays (``"mask_counts"``, ``"mask_small"``,
        ``"mask_across"``, ``"mask_row_t"``, ``"mask_row"``, ``"mask_blur"``,
        ``"mask_along"``) from.

    Returns
    -------
    (h, w) float32 ndarray
    """
    h, w = outline.shape
    if out is None:
        out = np.empty((h, w), np.float32)
    elif out.shape != (h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous {(h, w)} float32 array, "
                         f"got {out.shape} {out.dtype}")
    if h * w == 0:
        return out
    small = blurred_coverage(outline, buffers=buffers)
    return enlarge_mask(small, outline.factor, outline.offset, (h, w), out=out, buffers=buffers)


def blurred_coverage(outline, *, buffers=None):
    """Steps 1 and 2 of :func:`outline_mask`: the (sh, sw) float32 blurred
    coverage (``buffers``' ``"mask_blur"``)."""
    sh, sw = outline.small_shape
    f = outline.factor
    _check_outline(outline)
    counts = take(buffers, "mask_counts", (sh, sw), np.int32)
    counts[...] = 0
    _coverage_kernel(np.ascontiguousarray(outline.polygon, np.int64), f, counts)
    small = take(buffers, "mask_small", (sh, sw), np.float32)
    small[...] = counts  # (exact: at most 16 f^2 samples)
    small /= np.float32(SAMPLES * SAMPLES * f * f)
    taps = np.ascontiguousarray(outline.taps, np.float32)
    delta = 0 if outline.reflect else 1
    # along x as along y on the transposed coverage (the rows' loops
    # vectorise: 0.19 instead of 0.50 ms on a 216x168 grid here)
    across = take(buffers, "mask_across", (sw, sh), np.float32)
    across[...] = small.T
    row_t = take(buffers, "mask_row_t", (sw, sh), np.float32)
    _blur_kernel(across, taps, delta, row_t)
    row = take(buffers, "mask_row", (sh, sw), np.float32)
    row[...] = row_t.T
    blur = take(buffers, "mask_blur", (sh, sw), np.float32)
    _blur_kernel(row, taps, delta, blur)
    return blur


def _check_outline(outline):
    """What the kernels (and the CUDA twin's struct) take of an outline."""
    n = len(outline.polygon)
    if not 3 <= n <= MAX_POLYGON or len(outline.taps) > MAX_RADIUS + 1:
        raise ValueError(f"outline: a polygon of {n} points (3 to {MAX_POLYGON}) and "
                         f"{len(outline.taps)} taps (at most {MAX_RADIUS + 1})")


@numba.njit(cache=True, nogil=True)
def ceil_div(p, q):
    """ceil(p / q) for q > 0, in integers (C's division truncates)."""
    return -((-p) // q)


@numba.njit(cache=True, nogil=True)
def crossing_samples(xa, ya, xb, yb, y, cols):
    """The samples of a row at ``y`` (1/SUBPIXEL px) before where the edge
    (xa, ya)-(xb, yb) crosses it: the sample columns s (at _STEP s +
    _FIRST) left of the crossing, 0..cols."""
    if yb < ya:
        xa, ya, xb, yb = xb, yb, xa, ya
    den = yb - ya  # the crossing x = xa + (y - ya)(xb - xa) / den
    # samples s with _STEP s + _FIRST < x: s < (x - _FIRST) / _STEP
    num = (xa - _FIRST) * den + (y - ya) * (xb - xa)
    return min(max(ceil_div(num, _STEP * den), 0), cols)


@numba.njit(parallel=True, cache=True, nogil=True)
def _coverage_kernel(poly, f, counts):
    """counts[by, bx] = the samples of block (bx, by) inside ``poly``
    (even-odd): each sample row's crossings sorted, the spans between pairs
    added to the blocks they cover. One block row per iteration (its f
    SAMPLES sample rows): no two write the same counts."""
    sh, sw = counts.shape
    n = poly.shape[0]
    per = f * SAMPLES  # samples per block each way
    cols = sw * per
    for bb in numba.prange(sh):
        by = np.int64(bb)
        xs = np.empty(n, np.int64)
        for j in range(by * per, (by + 1) * per):
            y = _STEP * j + _FIRST
            k = 0
            for e in range(n):
                xa, ya = poly[e, 0], poly[e, 1]
                xb, yb = poly[(e + 1) % n, 0], poly[(e + 1) % n, 1]
                if min(ya, yb) <= y < max(ya, yb):
                    c = crossing_samples(xa, ya, xb, yb, y, cols)
                    i = k  # insertion into the sorted crossings
                    while i > 0 and xs[i - 1] > c:
                        xs[i] = xs[i - 1]
                        i -= 1
                    xs[i] = c
                    k += 1
            for p in range(0, k - 1, 2):
                s0, s1 = xs[p], xs[p + 1]
                for bx in range(s0 // per, min((s1 + per - 1) // per, sw)):
                    counts[by, bx] += min(s1, (bx + 1) * per) - max(s0, bx * per)


@numba.njit(cache=True, nogil=True)
def reflect_index(p, n, delta):
    """cv2.borderInterpolate: index ``p`` reflected into 0..n-1, the edge
    repeated (``delta`` 0, BORDER_REFLECT) or not (1, BORDER_REFLECT_101)."""
    if n == 1:
        return 0
    while p < 0 or p >= n:
        p = -p - 1 + delta if p < 0 else n - 1 - (p - n) - delta
    return p


@numba.njit(parallel=True, cache=True, nogil=True)
def _blur_kernel(src, taps, delta, out):
    """out = src blurred by the symmetric ``taps`` along y: the sum from -r
    to r of taps[|k|] src[reflected row], in float32, each product rounded
    on its own. Each output row is summed tap by tap over the whole row
    (the same order for each pixel; LLVM vectorises the rows). Along x it
    is this on the transposed arrays (:func:`blurred_coverage`)."""
    h, w = src.shape
    r = taps.shape[0] - 1
    for yy in numba.prange(h):
        y = np.int64(yy)
        row = out[y]
        row[:] = np.float32(0.0)
        for k in range(-r, r + 1):
            t = taps[abs(k)]
            line = src[reflect_index(y + k, h, delta)]
            for x in range(w):
                row[x] += t * line[x]


def enlarge_mask(small, factor, offset, shape, *, out=None, buffers=None):
    """The box's mask from a mask blurred at 1/``factor`` of its resolution.

    ``small`` enlarged ``factor`` times, bilinearly with cv2.INTER_LINEAR's
    pixel centres (a float32 bilinear of its own, as the stream's flow's:
    OpenCV's depends on the CPU), cut to ``shape`` from ``offset`` and to
    at most 1 (the blur mixes with non-negative weights, so only rounding
    can go past 1). :func:`blit.gpu.enlarge_mask` gives the same bits.

    Parameters
    ----------
    small : (sh, sw) float32 ndarray
    factor : int
        At least 1 (1: ``small`` itself, cut to at most 1).
    offset : (int, int)
        ``(ox, oy)`` of the result's first pixel on the (sh factor, sw
        factor) grid.
    shape : (int, int)
        ``(h, w)`` of the result, inside the grid from ``offset``.
    out : (h, w) float32 C-contiguous ndarray, optional
    buffers : guides.buffers.Buffers, optional
        Where to take the work array (``"mask_along"``) from.

    Returns
    -------
    (h, w) float32 ndarray
    """
    (h, w), (ox, oy), (gh, gw) = _enlarged_sizes(small, factor, offset, shape)
    if out is None:
        out = np.empty((h, w), np.float32)
    elif out.shape != (h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous {(h, w)} float32 array, "
                         f"got {out.shape} {out.dtype}")
    if out.size:
        small = np.ascontiguousarray(small, np.float32)
        along = take(buffers, "mask_along", (small.shape[0], w), np.float32)
        _enlarge_mask_kernel(small, gh, gw, oy, ox, along, out)
    return out


def _enlarged_sizes(small, factor, offset, shape):
    """The arguments of :func:`enlarge_mask` (and its CUDA twin) checked, as
    ((h, w), (ox, oy), (gh, gw)): the result's shape, its offset, the grid's."""
    factor = int(factor)
    (h, w), (ox, oy) = (int(v) for v in shape), (int(v) for v in offset)
    if small.ndim != 2 or factor < 1:
        raise ValueError(f"small {small.shape} and factor {factor}: expected a 2-D mask "
                         "and a factor of at least 1")
    gh, gw = small.shape[0] * factor, small.shape[1] * factor
    if min(h, w, ox, oy) < 0 or oy + h > gh or ox + w > gw:
        raise ValueError(f"shape {(h, w)} from offset {(ox, oy)}: not inside the {(gh, gw)} "
                         f"grid of small {small.shape} enlarged {factor} times")
    return (h, w), (ox, oy), (gh, gw)


@numba.njit(parallel=True, cache=True, nogil=True)
def _enlarge_mask_kernel(small, gh, gw, oy, ox, along, out):
    """out[y, x] = min(1, the (gh, gw) enlargement of ``small`` at (y + oy,
    x + ox)): bilinear along x on two rows, then along y, in float32, every
    product rounded on its own (the CUDA twin's arithmetic). Each row of
    ``small`` is interpolated along x once, into ``along`` (sh, w)."""
    sh, sw = small.shape
    one = np.float32(1.0)
    first = np.empty(out.shape[1], np.int64)
    weight = np.empty(out.shape[1], np.float32)
    for x in range(out.shape[1]):
        first[x], weight[x] = float_tap(x + ox, gw, sw)
    for rr in numba.prange(sh):
        r = np.int64(rr)
        for x in range(out.shape[1]):
            x0, a = first[x], weight[x]
            along[r, x] = small[r, x0] * (one - a) + small[r, min(x0 + 1, sw - 1)] * a
    for yy in numba.prange(out.shape[0]):
        y = np.int64(yy)
        y0, b = float_tap(y + oy, gh, sh)
        nb = one - b
        upper, lower = along[y0], along[min(y0 + 1, sh - 1)]
        row = out[y]
        for x in range(out.shape[1]):
            v = upper[x] * nb + lower[x] * b
            row[x] = one if v > one else v


def head_box(shape, landmarks, *, top=0.75, feather=0.08, margin=0):
    """The box of :func:`head_region` with the same arguments, without its
    mask: ``(x0, y0, x1, y1)``, frame pixels, end-exclusive."""
    return _outline(shape, landmarks, top, feather, margin)[2]


def _outline(shape, landmarks, top, feather, margin):
    """The head's polygon, the sigma of its soft edge and its box in the
    frame of ``shape`` (soft edge and ``margin`` included)."""
    h, w = int(shape[0]), int(shape[1])
    landmarks = np.asarray(landmarks, np.float32)
    poly = head_polygon(landmarks, top=top)
    sigma = max(1.0, feather * float(np.hypot(*(landmarks[16] - landmarks[0]))))
    pad = int(np.ceil(2.5 * sigma)) + int(margin)
    x0 = int(np.clip(np.floor(poly[:, 0].min()) - pad, 0, w))
    y0 = int(np.clip(np.floor(poly[:, 1].min()) - pad, 0, h))
    x1 = int(np.clip(np.ceil(poly[:, 0].max()) + pad + 1, x0, w))
    y1 = int(np.clip(np.ceil(poly[:, 1].max()) + pad + 1, y0, h))
    return poly, sigma, (x0, y0, x1, y1)


def composite(background, foreground, region, *, out=None):
    """Blend ``foreground`` (the box's pixels) over ``background`` with the soft mask.

    ``out = round(bg + alpha (fg - bg))`` per channel; pixels with ``alpha <
    MIN_WEIGHT`` keep the background exactly (the stylizers leave their
    foreground unpainted).

    Parameters
    ----------
    background : (H, W, 3) uint8 ndarray
    foreground : (y1 - y0, x1 - x0, 3) uint8 ndarray
    region : HeadRegion
    out : (H, W, 3) uint8 ndarray, optional; may be ``background`` itself.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    x0, y0, x1, y1 = region.box
    for name, image in (("background", background), ("foreground", foreground), ("out", out)):
        if image is not None and (image.dtype != np.uint8 or image.ndim != 3
                                  or image.shape[2] != 3):
            raise ValueError(f"{name}: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    h, w = background.shape[:2]
    if out is not None and out.shape != background.shape:
        raise ValueError(f"out: expected the background's shape {background.shape}, got {out.shape}")
    if not (0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):  # (the kernel does not test its writes)
        raise ValueError(f"region: box {region.box} is not inside the ({h}, {w}) frame")
    if region.mask.shape != (y1 - y0, x1 - x0):
        raise ValueError(f"region: expected a mask of shape {(y1 - y0, x1 - x0)} for box "
                         f"{region.box}, got {region.mask.shape}")
    if foreground.shape[:2] != (y1 - y0, x1 - x0):
        raise ValueError(f"foreground: expected shape {(y1 - y0, x1 - x0, 3)}, got {foreground.shape}")
    if out is None:
        out = background.copy()
    elif out is not background:
        out[...] = background
    if x1 > x0 and y1 > y0:
        flat = np.ascontiguousarray(out)  # the kernel reads its arrays as flat ones
        _composite_kernel(flat, np.ascontiguousarray(foreground), np.ascontiguousarray(region.mask),
                          x0, y0)
        if flat is not out:  # (a strided out went through a contiguous copy)
            out[...] = flat
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _composite_kernel(out, fg, mask, x0, y0):
    """out(box) = round(bg + a (fg - bg)) per channel, where a >= MIN_WEIGHT.

    C-contiguous arrays read as flat ones with unsigned indices, and a
    weight below MIN_WEIGHT taken as 0 (which leaves bg as it is, exactly)
    instead of a branch: LLVM vectorises the rows (3.5x faster than by
    (y, x, c) with the branch; the same values)."""
    h, w = mask.shape
    wf = out.shape[1]
    o = out.reshape(out.size)
    f = fg.reshape(fg.size)
    m = mask.reshape(mask.size)
    half = np.float32(0.5)
    for yy in numba.prange(h):
        y = np.uint64(yy)
        orow = (np.uint64(y0) + y) * np.uint64(wf) + np.uint64(x0)  # pixel (x0, y0 + y) of out
        frow = y * np.uint64(w)
        for xx in range(w):
            x = np.uint64(xx)
            a = m[frow + x]
            a = a if a >= MIN_WEIGHT else np.float32(0.0)  # not painted: bg + 0 rounds to bg
            for c in range(3):
                k = np.uint64(3) * (orow + x) + np.uint64(c)
                b = np.float32(o[k])
                o[k] = np.uint8(b + a * (np.float32(f[np.uint64(3) * (frow + x) + np.uint64(c)]) - b) + half)
