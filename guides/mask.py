"""Head region: where the stylized face is composited into the frame.

The region is the jaw line (68-point landmarks 0-16) closed over the top by
a half-ellipse through the jaw ends that covers the forehead, oriented with
the face (chin to nose-root axis), with a soft edge. Work is limited to its
bounding box, as FaceBlit limits it to the head area.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numba
import numpy as np

from guides.appearance import float_tap
from guides.buffers import take

#: Mask weight below which a pixel keeps the background: it could not change
#: the composite by half a level, so the stylizers do not paint it at all.
MIN_WEIGHT = np.float32(1.0 / 510.0)

__all__ = ["HeadRegion", "CoarseRegion", "head_region", "coarse_head_region", "enlarge_mask",
           "head_box", "head_polygon", "composite", "MIN_WEIGHT"]


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

    :func:`coarse_head_region` with the same arguments, its mask enlarged
    onto the box (:meth:`CoarseRegion.region`).

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
    return coarse_head_region(shape, landmarks, top=top, feather=feather, margin=margin,
                              buffers=buffers).region()


@dataclass
class CoarseRegion:
    """A head mask before its last step (:func:`coarse_head_region`): the
    soft edge blurred at 1/``factor`` of the frame's resolution.

    Its mask on the box is the box's part of the blurred mask enlarged
    ``factor`` times (:func:`enlarge_mask`): the stream copies ``small`` to
    the device (1/16 to 1/81 of the mask's values for heads of sigma 8 and
    more) and enlarges it there (:func:`blit.gpu.enlarge_mask`).

    Attributes
    ----------
    box : (int, int, int, int)
        ``(x0, y0, x1, y1)``, frame pixels, end-exclusive.
    small : (sh, sw) float32 ndarray
        The blurred mask; the box's mask itself where ``factor`` is 1.
    factor : int
    offset : (int, int)
        ``(ox, oy)``: the box's first pixel on the enlarged (sh factor, sw
        factor) grid.
    buffers : guides.buffers.Buffers or None
        Where :meth:`region` takes its mask (``"mask"``) from.
    """

    box: tuple
    small: np.ndarray
    factor: int
    offset: tuple
    buffers: object = None
    _region: HeadRegion | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self):
        """(h, w) of the box."""
        x0, y0, x1, y1 = self.box
        return y1 - y0, x1 - x0

    def region(self):
        """The :class:`HeadRegion`: the mask enlarged on the host, once."""
        if self._region is None:
            mask = enlarge_mask(self.small, self.factor, self.offset, self.shape,
                                out=take(self.buffers, "mask", self.shape, np.float32),
                                buffers=self.buffers)
            self._region = HeadRegion(self.box, mask)
        return self._region


def coarse_head_region(shape, landmarks, *, top=0.75, feather=0.08, margin=0, buffers=None):
    """The head region of :func:`head_region` (same arguments) before its
    mask is enlarged onto the box: a :class:`CoarseRegion`.

    The head's polygon is filled (anti-aliased) at the frame's resolution,
    area-averaged down by the factor, blurred there by the soft edge's sigma
    over the factor; :func:`enlarge_mask` brings it back. The work arrays
    are ``buffers``' ``"mask_fill"``, ``"mask_small"`` and ``"mask_blur"``
    (the last one is ``small``).
    """
    poly, sigma, (x0, y0, x1, y1) = _outline(shape, landmarks, top, feather, margin)
    hh, ww = y1 - y0, x1 - x0
    if hh * ww == 0:
        return CoarseRegion((x0, y0, x1, y1), np.zeros((hh, ww), np.float32), 1, (0, 0), buffers)
    # The soft edge is smooth over sigma pixels, so it is blurred at 1/f of
    # the resolution and interpolated back: f = sigma // 2 up to 4 (the
    # blur is then at least 2 small pixels wide), and from sigma 48 f =
    # sigma // 6 (8 or more; the blur at least 6 small pixels wide).
    # Within 0.0036 of a full-resolution blur at sigma 15 (f 4), 0.0024 at
    # sigma 59 (f 9; 0.0008 at f 4), on Grace Hopper's head scaled; a
    # head of the 1920x1080 stream (sigma 54) takes 2.2-2.3 instead of
    # 4.2-4.3 ms on one thread. Measured when f was at most 4: in one process 2x faster than
    # at half resolution at 640x480 and 768x1024, 4.6x at 1920x1080; on
    # target1 at 768x1024 with lincolnbust (sigma 38: f 4), f 8 and 9
    # moved mediapipe's landmark error on the still from 0.046 to
    # 0.052-0.053 of the inter-ocular distance, over #2's bar of 0.05 (f 5
    # to 7: 0.046), for masks at most 0.0035 apart: heads up to sigma 48,
    # 1.3x target1's at 768x1024, keep f 4. The fill stays at full
    # resolution and is area-averaged down: filled at low resolution, the
    # polygon would grow by half a small pixel. The fill's canvas is the
    # box padded to a multiple of f, so that the area average is OpenCV's
    # exact-factor path (6x faster than an inexact factor at 640x480).
    coarse = sigma >= 48
    f = int(sigma // 6 if coarse else min(4.0, max(1.0, sigma // 2)))
    sh, sw = -(-hh // f), -(-ww // f)
    # Where the frame cuts the box (the head goes on beyond it), the blur
    # reflects the fill at the frame's edge. From f 8 the small blur
    # reflects at the small image's edge itself (BORDER_REFLECT: half a
    # pixel from the full-resolution blur's axis, where the default
    # BORDER_REFLECT_101's is (f - 1) / 2 px off), and the padding goes
    # before a side the frame cuts (when the other side is not cut), so
    # that the small grid ends at the frame's edge: Grace Hopper's head
    # at sigma 48-120, cut at the right or the top left, within 0.0077 of
    # the full-resolution blur of the polygon on the box (0.061 with the
    # default border and the padding after; f 4: 0.023), inside the
    # frame within 0.0031.
    h, w = int(shape[0]), int(shape[1])
    ox = sw * f - ww if (coarse and x1 == w and x0 > 0) else 0
    oy = sh * f - hh if (coarse and y1 == h and y0 > 0) else 0
    fill = take(buffers, "mask_fill", (sh * f, sw * f), np.float32)
    fill[...] = 0.0
    pts = np.round((poly - [x0 - ox, y0 - oy]) * 16).astype(np.int32)  # 4 fractional bits
    # (where the frame's edge cuts the box, the polygon goes on into the
    # padding: the head goes on beyond the frame)
    cv2.fillPoly(fill, [pts], 1.0, lineType=cv2.LINE_AA, shift=4)
    small = fill if f == 1 else cv2.resize(
        fill, (sw, sh), dst=take(buffers, "mask_small", (sh, sw), np.float32),
        interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / f,
                             dst=take(buffers, "mask_blur", (sh, sw), np.float32),
                             borderType=cv2.BORDER_REFLECT if coarse else cv2.BORDER_REFLECT_101)
    return CoarseRegion((x0, y0, x1, y1), small, f, (ox, oy), buffers)


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
