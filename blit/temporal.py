"""A recursive temporal filter of the stylized output along the optical flow.

Keeping each pixel's exemplar source from frame to frame
(:func:`blit.stream.propagate`) removes most of the flicker of frame-by-frame
StyleBlit, but not all of it: a pixel whose kept source no longer fits is
looked up afresh and jumps to another patch, and whole-pixel patch sources
snap as the face moves by fractions of a pixel. What is left is hidden by
mixing into each new frame the previous *output*, warped along the flow:

    H_t(p) = (1 - alpha) S_t(p) + alpha clamp(H_{t-1}(p + b(p)), N_t(p))

where ``S_t`` is this frame's stylization, ``b`` the backward optical flow
(this frame to the previous one), ``H_{t-1}(q)`` the previous filtered output
sampled bilinearly, and ``clamp(., N_t(p))`` limits it per channel to the
range of ``S_t`` over the 3x3 neighbourhood of ``p``: the history may
smooth a change but never drag in a colour that is not around ``p`` now, so
content the flow got wrong (a mouth opening, an occlusion) does not ghost.
This is the recursive filter of temporal anti-aliasing (Karis, "High Quality
Temporal Supersampling", SIGGRAPH 2014) applied to stylization, in the spirit
of blind video temporal consistency (Bonneel et al. 2015; Lai et al. 2018).
Pixels whose warped position has no history (outside the previous region,
or next to a pixel that was not painted) take ``S_t`` unchanged.

Conventions: images (H, W, 3) uint8 BGR; the history (H, W, 3) float32,
channel 0 below 0 where there is none; flows (H, W, 2) float32 (dx, dy).
"""
from __future__ import annotations

import cv2
import numba
import numpy as np

from guides.buffers import take

__all__ = ["temporal_filter", "NO_HISTORY"]

#: History value (channel 0) of a pixel that was not painted.
NO_HISTORY = np.float32(-1.0)

_SQUARE = np.ones((3, 3), np.uint8)  # the clamp's neighbourhood, for cv2.erode / cv2.dilate


@numba.njit(parallel=True, cache=True, nogil=True)
def _masked_kernel(current, active, low, high):
    """``current`` where ``active``, else 255 (``low``) and 0 (``high``): an
    unpainted pixel then counts in neither a minimum nor a maximum.

    C-contiguous arrays, read as flat ones in a few spans of pixels, with
    unsigned indices: LLVM then vectorises the loop (7x faster than by
    (y, x, c), whose signed indices each carry Numba's check for a negative
    index)."""
    n = active.size
    cur = current.reshape(3 * n)
    lo = low.reshape(3 * n)
    hi = high.reshape(3 * n)
    act = active.reshape(n)
    spans = 8
    for ss in numba.prange(spans):
        s = np.int64(ss)
        for ii in range(s * n // spans, (s + 1) * n // spans):
            i = np.uint64(ii)
            m = np.uint8(255 * act[i])  # 255 where active, else 0 (no wrap-around: numpy warns)
            k0 = np.uint64(3) * i
            k1 = k0 + np.uint64(1)
            k2 = k0 + np.uint64(2)
            # (the three channels written out: a loop over them is not vectorised)
            lo[k0] = cur[k0] | ~m
            lo[k1] = cur[k1] | ~m
            lo[k2] = cur[k2] | ~m
            hi[k0] = cur[k0] & m
            hi[k1] = cur[k1] & m
            hi[k2] = cur[k2] & m


def _neighbourhood_range(current, active, buffers):
    """Per-channel minimum and maximum of ``current`` over the active pixels
    of each pixel's 3x3 neighbourhood (pixels off the image do not count):
    a masked copy, then OpenCV's vectorised 3x3 erosion and dilation (whose
    default border leaves the minimum and maximum alone)."""
    shape = current.shape
    low = take(buffers, "temporal_low", shape, np.uint8)
    high = take(buffers, "temporal_high", shape, np.uint8)
    _masked_kernel(np.ascontiguousarray(current), np.ascontiguousarray(active), low, high)
    lo = cv2.erode(low, _SQUARE, dst=take(buffers, "temporal_lo", shape, np.uint8))
    hi = cv2.dilate(high, _SQUARE, dst=take(buffers, "temporal_hi", shape, np.uint8))
    return lo, hi


@numba.njit(inline="always")
def _filter_row(current, active, prev, pox, poy, flow, fox, foy, ox, oy, alpha, clamp, lo, hi,
                hist, y):
    w = current.shape[1]
    ph, pw = prev.shape[0], prev.shape[1]
    y = np.int64(y)  # prange indices may be unsigned
    one = np.float32(1.0)
    half = np.float32(0.5)
    for x in range(w):
        if not active[y, x]:
            hist[y, x, 0] = NO_HISTORY
            hist[y, x, 1] = NO_HISTORY
            hist[y, x, 2] = NO_HISTORY
            continue
        s0 = np.float32(current[y, x, 0])
        s1 = np.float32(current[y, x, 1])
        s2 = np.float32(current[y, x, 2])
        # q: where this pixel's content was, in the previous region's pixels
        qx = np.float32(x + ox - pox) + flow[y + oy - foy, x + ox - fox, 0]
        qy = np.float32(y + oy - poy) + flow[y + oy - foy, x + ox - fox, 1]
        ok = np.float32(0.0) <= qx <= np.float32(pw - 1) and np.float32(0.0) <= qy <= np.float32(ph - 1)
        if ok:
            ix = int(np.floor(qx))
            iy = int(np.floor(qy))
            jx = min(ix + 1, pw - 1)  # on the last row or column the weight of the next is 0
            jy = min(iy + 1, ph - 1)
            ok = (prev[iy, ix, 0] >= 0 and prev[iy, jx, 0] >= 0
                  and prev[jy, ix, 0] >= 0 and prev[jy, jx, 0] >= 0)
        if not ok:
            hist[y, x, 0] = s0
            hist[y, x, 1] = s1
            hist[y, x, 2] = s2
            continue
        fx = qx - np.float32(ix)
        fy = qy - np.float32(iy)
        w00 = (one - fx) * (one - fy)
        w01 = fx * (one - fy)
        w10 = (one - fx) * fy
        w11 = fx * fy
        o0 = prev[iy, ix, 0] * w00 + prev[iy, jx, 0] * w01 + prev[jy, ix, 0] * w10 + prev[jy, jx, 0] * w11
        o1 = prev[iy, ix, 1] * w00 + prev[iy, jx, 1] * w01 + prev[jy, ix, 1] * w10 + prev[jy, jx, 1] * w11
        o2 = prev[iy, ix, 2] * w00 + prev[iy, jx, 2] * w01 + prev[jy, ix, 2] * w10 + prev[jy, jx, 2] * w11
        if clamp:  # to the 3x3 range of this frame
            o0 = min(max(o0, np.float32(lo[y, x, 0])), np.float32(hi[y, x, 0]))
            o1 = min(max(o1, np.float32(lo[y, x, 1])), np.float32(hi[y, x, 1]))
            o2 = min(max(o2, np.float32(lo[y, x, 2])), np.float32(hi[y, x, 2]))
        h0 = (one - alpha) * s0 + alpha * o0
        h1 = (one - alpha) * s1 + alpha * o1
        h2 = (one - alpha) * s2 + alpha * o2
        hist[y, x, 0] = h0
        hist[y, x, 1] = h1
        hist[y, x, 2] = h2
        # the output, rounded (the clamp's ranges were taken before, in lo, hi)
        current[y, x, 0] = np.uint8(int(h0 + half))
        current[y, x, 1] = np.uint8(int(h1 + half))
        current[y, x, 2] = np.uint8(int(h2 + half))


@numba.njit(parallel=True, cache=True, nogil=True)
def _filter_kernel(current, active, prev, pox, poy, flow, fox, foy, ox, oy, alpha, clamp, lo, hi,
                   hist):
    # one pass: the clamp's ranges (lo, hi) of the unfiltered values are
    # taken beforehand, so each pixel may be overwritten as soon as it is done
    for y in numba.prange(current.shape[0]):
        _filter_row(current, active, prev, pox, poy, flow, fox, foy, ox, oy, alpha, clamp, lo, hi,
                    hist, y)


def temporal_filter(current, prev_history, flow, alpha, *, active=None, clamp=True,
                    origin=(0, 0), prev_origin=(0, 0), flow_origin=None, history=None,
                    buffers=None):
    """Mix the flow-warped previous output into this frame's, in place.

    Parameters
    ----------
    current : (H, W, 3) uint8 ndarray
        This frame's stylization of a region whose pixel (0, 0) is at frame
        position ``origin``; overwritten with the filtered output (rounded).
    prev_history : (Hp, Wp, 3) float32 ndarray or None
        The previous frame's filtered output of its region (at
        ``prev_origin``), unrounded, as this function returned it; channel 0
        below 0 where there was none. None: no history (``current`` is kept).
    flow : (Hf, Wf, 2) float32 ndarray or None
        Backward flow (dx, dy) in frame pixels (this frame to the previous
        one) on a region at ``flow_origin`` that covers this one.
    alpha : float
        Weight of the history, in [0, 1); 0 keeps ``current``.
    active : (H, W) bool ndarray, optional
        Pixels painted this frame; the others are left alone and hold no
        history. Default: all.
    clamp : bool
        Limit the warped history to the range of ``current`` over each
        pixel's 3x3 neighbourhood (no ghosting).
    origin, prev_origin : (int, int)
        Frame position (x, y) of this region's and the previous region's
        pixel (0, 0).
    flow_origin : (int, int), optional
        Frame position of ``flow[0, 0]``; default ``origin``.
    history : (H, W, 3) float32 ndarray, optional
        Where to write this frame's history.
    buffers : guides.buffers.Buffers, optional
        Where to take the clamp's work arrays from (names ``"temporal_*"``);
        default: new arrays.

    Returns
    -------
    (H, W, 3) float32 ndarray
        This frame's history, for the next call.

    Examples
    --------
    >>> hist = None
    >>> for frame in frames:                                   # doctest: +SKIP
    ...     out = stylize(frame)
    ...     hist = temporal_filter(out, hist, backward_flow(frame), 0.6)
    """
    if current.dtype != np.uint8 or current.ndim != 3 or current.shape[2] != 3:
        raise ValueError(f"current: expected (H, W, 3) uint8, got {current.shape} {current.dtype}")
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha: expected a weight in [0, 1), got {alpha}")
    h, w = current.shape[:2]
    if active is None:
        active = np.ones((h, w), np.bool_)
    elif active.shape != (h, w):
        raise ValueError(f"active: expected shape {(h, w)}, got {active.shape}")
    if history is None:
        history = np.empty((h, w, 3), np.float32)
    elif history.shape != (h, w, 3) or history.dtype != np.float32:
        raise ValueError(f"history: expected {(h, w, 3)} float32, got {history.shape} {history.dtype}")
    if prev_history is None or flow is None or alpha == 0.0:
        # no history to mix: this frame's output is the history
        history[...] = current
        history[~active, 0] = NO_HISTORY
        return history
    if prev_history.ndim != 3 or prev_history.shape[2] != 3 or prev_history.dtype != np.float32:
        raise ValueError(f"prev_history: expected (Hp, Wp, 3) float32, got {prev_history.shape} "
                         f"{prev_history.dtype}")
    fox, foy = (int(v) for v in (origin if flow_origin is None else flow_origin))
    bx, by = int(origin[0]) - fox, int(origin[1]) - foy
    if (flow.ndim != 3 or flow.shape[2] != 2 or bx < 0 or by < 0
            or flow.shape[0] < by + h or flow.shape[1] < bx + w):
        raise ValueError(f"flow: expected (>= {by + h}, >= {bx + w}, 2) to cover the region "
                         f"from flow_origin {(fox, foy)}, got {flow.shape}")
    if h and w:
        active = np.ascontiguousarray(active, np.bool_)
        if clamp:
            lo, hi = _neighbourhood_range(current, active, buffers)
        else:
            lo = hi = np.zeros((1, 1, 3), np.uint8)
        _filter_kernel(current, active, np.ascontiguousarray(prev_history), int(prev_origin[0]),
                       int(prev_origin[1]), np.ascontiguousarray(flow, np.float32), fox, foy,
                       int(origin[0]), int(origin[1]), np.float32(alpha), bool(clamp), lo, hi,
                       history)
    return history
