"""Dense inverse search optical flow (Kroeger et al., "Fast Optical Flow
using Dense Inverse Search", ECCV 2016), every patch of a level at once.

The stream's flow is OpenCV's DIS (ultrafast preset). Its patch search
goes through the patches in order, each trying its left and upper
neighbours' flows (spatial propagation), which a GPU cannot run in
parallel. Here the search runs in rounds instead: in each round every patch
tries its four neighbours' flows of the round before, and then descends the
gradient from the best. So every patch of a round can be one thread on a
GPU, with the same sums in the same order as here: :func:`blit.gpu.dis_flow`
is its CUDA twin, bit for bit. (A stream on the CPU keeps OpenCV's DIS by
default, 2.5-3x faster on 2 CPU cores; on the device it runs this flow,
``Stylizer(flow_engine=...)``.)

For two grey images ``I0``, ``I1`` (uint8) the flow ``u`` maps ``I0(x)`` to
``I1(x + u(x))``, (H, W, 2) float32 (dx, dy). Per level of a pyramid of
halvings, from the coarsest to ``finest``:

1. every ``patch`` x ``patch`` patch of ``I0`` on a grid ``stride`` apart
   starts from the coarser level's flow at its centre;
2. ``rounds`` rounds: it takes whichever of its flow and its neighbours'
   matches best (mean-normalised SSD), then takes ``iterations //
   rounds`` inverse-compositional Gauss-Newton steps from it (stopping when
   the SSD stops falling), kept where it moved by at most ``patch`` px;
3. the dense flow is the patches' flows over each pixel averaged, each
   weighted by 1 / max(1, |I1(x + u) - I0(x)|).

The finest level's flow is enlarged to the input's size (bilinear, ``2 **
finest`` times the displacement).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from guides.buffers import take
from guides.mask import reflect_index

__all__ = ["dis_flow", "settings", "pyramid_levels", "halve", "sobel", "structure_tensor",
           "patch_search", "densify", "upsample_flow2", "PATCH", "STRIDE",
           "ITERATIONS", "ROUNDS", "FINEST"]

#: Patch side, grid spacing, Gauss-Newton steps a level and the finest level
#: searched: OpenCV's ultrafast preset (its finest scale one finer, as the
#: stream runs it on half-size images).
PATCH, STRIDE, ITERATIONS, FINEST = 8, 4, 12, 1
#: Rounds of the patch search a level (the steps are shared among them).
ROUNDS = 3

_EPS = np.float32(0.001)
_INF = np.float32(1e10)


def pyramid_levels(shape, patch=PATCH):
    """The coarsest level searched for an image of ``shape`` (OpenCV's DIS
    rule: its motion reach a quarter of the larger side, its image no
    smaller than a patch)."""
    h, w = shape
    by_reach = int(math.log(max(w, h) / (4.0 * patch)) / math.log(2.0) + 0.5)
    by_size = int(math.log(min(w, h) / patch) / math.log(2.0))
    return max(min(by_reach, by_size), 0)


@numba.njit(parallel=True, cache=True, nogil=True)
def halve(src, dst):
    """``dst`` (h // 2, w // 2) uint8: the rounded mean of each 2x2 block
    of ``src`` (a last odd row or column dropped)."""
    for yy in numba.prange(dst.shape[0]):
        y = np.int64(yy)
        for x in range(dst.shape[1]):
            s = (np.int32(src[2 * y, 2 * x]) + np.int32(src[2 * y, 2 * x + 1])
                 + np.int32(src[2 * y + 1, 2 * x]) + np.int32(src[2 * y + 1, 2 * x + 1]))
            dst[y, x] = (s + 2) >> 2


@numba.njit(parallel=True, cache=True, nogil=True)
def sobel(img, gx, gy):
    """3x3 Sobel gradients of ``img`` into int16 ``gx``, ``gy``, the border
    reflected (cv2.spatialGradient's)."""
    h, w = img.shape
    for yy in numba.prange(h):
        y = np.int64(yy)
        ym, yp = reflect_index(y - 1, h, 1), reflect_index(y + 1, h, 1)
        for x in range(w):
            xm, xp = reflect_index(x - 1, w, 1), reflect_index(x + 1, w, 1)
            a, b, c = np.int32(img[ym, xm]), np.int32(img[ym, x]), np.int32(img[ym, xp])
            d, f = np.int32(img[y, xm]), np.int32(img[y, xp])
            g, k, m = np.int32(img[yp, xm]), np.int32(img[yp, x]), np.int32(img[yp, xp])
            gx[y, x] = (c - a) + 2 * (f - d) + (m - g)
            gy[y, x] = (g - a) + 2 * (k - b) + (m - c)


@numba.njit(parallel=True, cache=True, nogil=True)
def structure_tensor(gx, gy, patch, stride, out):
    """Per patch of the grid (``out`` (hs, ws, 5) float32): the sums of
    Ix*Ix, Iy*Iy, Ix*Iy over it less their means' parts (mean-normalised),
    and the sums of Ix and Iy. The integer sums are exact."""
    hs, ws = out.shape[0], out.shape[1]
    n = np.float32(patch * patch)
    for p in numba.prange(hs * ws):
        i = np.int64(p // ws) * stride
        j = np.int64(p % ws) * stride
        sxx = sy2 = sxy = sx = sy = np.int64(0)
        for r in range(patch):
            for c in range(patch):
                a = np.int64(gx[i + r, j + c])
                b = np.int64(gy[i + r, j + c])
                sxx += a * a
                sy2 += b * b
                sxy += a * b
                sx += a
                sy += b
        fx, fy = np.float32(sx), np.float32(sy)
        o = out[p // ws, p % ws]
        o[0] = np.float32(sxx) - fx * fx / n
        o[1] = np.float32(sy2) - fy * fy / n
        o[2] = np.float32(sxy) - fx * fy / n
        o[3] = fx
        o[4] = fy


@numba.njit(inline="always")
def _weights(pos, lo, hi):
    """Clamped position -> (whole part, fraction) of a bilinear tap."""
    p = min(max(pos, lo), hi)
    f = np.float32(math.floor(p))
    return np.int64(f), p - f


@numba.njit(inline="always")
def _bilinear(img, y0, x0, w00, w01, w10, w11):
    """w00 img[y0, x0] + w01 img[y0, x0 + 1] + w10 img[y0 + 1, x0] + w11
    img[y0 + 1, x0 + 1] in float32, in that order, rows and columns past
    the edge replicated."""
    h, w = img.shape
    ya, yb = min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1)
    xa, xb = min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1)
    return (w00 * np.float32(img[ya, xa]) + w01 * np.float32(img[ya, xb])
            + w10 * np.float32(img[yb, xa]) + w11 * np.float32(img[yb, xb]))


@numba.njit(cache=True, nogil=True)
def _patch(i0, i1, gx, gy, i, j, u, v, patch, sx, sy):
    """The mean-normalised SSD of ``i0``'s patch at (i, j) and ``i1``'s moved
    by (u, v) (bilinear, its position clamped so that the patch keeps at
    least a pixel in the image, reads past the edge replicated), and the
    gradient's parts (dUx, dUy), as OpenCV's processPatchMeanNorm."""
    h, w = i1.shape
    y0, fy = _weights(np.float32(i) + v, np.float32(1 - patch), np.float32(h - 1))
    x0, fx = _weights(np.float32(j) + u, np.float32(1 - patch), np.float32(w - 1))
    one = np.float32(1.0)
    w11 = fy * fx
    w10 = fy * (one - fx)
    w01 = (one - fy) * fx
    w00 = (one - fy) * (one - fx)
    sd = sdd = sgx = sgy = np.float32(0.0)
    if y0 >= 0 and x0 >= 0 and y0 + patch < h and x0 + patch < w:
        # every tap inside: _bilinear's arithmetic without its clamps
        for r in range(patch):
            a, b = i1[y0 + r], i1[y0 + r + 1]
            for c in range(patch):
                x = x0 + c
                d = (w00 * np.float32(a[x]) + w01 * np.float32(a[x + 1])
                     + w10 * np.float32(b[x]) + w11 * np.float32(b[x + 1])
                     - np.float32(i0[i + r, j + c]))
                sd += d
                sdd += d * d
                sgx += d * np.float32(gx[i + r, j + c])
                sgy += d * np.float32(gy[i + r, j + c])
    else:
        for r in range(patch):
            for c in range(patch):
                d = (_bilinear(i1, y0 + r, x0 + c, w00, w01, w10, w11)
                     - np.float32(i0[i + r, j + c]))
                sd += d
                sdd += d * d
                sgx += d * np.float32(gx[i + r, j + c])
                sgy += d * np.float32(gy[i + r, j + c])
    n = np.float32(patch * patch)
    return sdd - sd * sd / n, sgx - sd * sx / n, sgy - sd * sy / n


@numba.njit(inline="always")
def _neighbour(a, b, k):
    """The k-th neighbour of patch (a, b): left, right, up, down."""
    if k == 0:
        return a, b - 1
    if k == 1:
        return a, b + 1
    if k == 2:
        return a - 1, b
    return a + 1, b


@numba.njit(parallel=True, cache=True, nogil=True)
def patch_search(i0, i1, gx, gy, tensor, flow, s_in, s_out, first, steps, patch, stride):
    """One round of the patch search on a level: each patch of the grid
    (``s_out`` (hs, ws, 2) float32) starts from its flow in ``s_in`` (on the
    first round, ``first``: ``flow``'s (the coarser level's, enlarged) at
    its centre), takes the best of it and, after the first round, its left,
    right, upper and lower neighbours' in ``s_in`` (strictly lower SSD, in
    that order), then up to ``steps`` Gauss-Newton steps from it.

    (Two shortcuts that change no bit: a neighbour's flow equal to one
    tried already is not tried again, its SSD being the same; the first
    step reuses the chosen flow's SSD and gradient parts.)"""
    hs, ws = s_out.shape[0], s_out.shape[1]
    half = patch // 2
    for p in numba.prange(hs * ws):
        a = np.int64(p // ws)
        b = np.int64(p % ws)
        i, j = a * stride, b * stride
        if first:
            u, v = flow[i + half, j + half, 0], flow[i + half, j + half, 1]
        else:
            u, v = s_in[a, b, 0], s_in[a, b, 1]
        t = tensor[a, b]
        sx, sy = t[3], t[4]
        cost, du, dv = _patch(i0, i1, gx, gy, i, j, u, v, patch, sx, sy)
        if not first:
            for k in range(4):
                na, nb = _neighbour(a, b, k)
                if na < 0 or na >= hs or nb < 0 or nb >= ws:
                    continue
                cu, cv = s_in[na, nb, 0], s_in[na, nb, 1]
                tried = cu == s_in[a, b, 0] and cv == s_in[a, b, 1]
                for m in range(k):
                    ma, mb = _neighbour(a, b, m)
                    if 0 <= ma < hs and 0 <= mb < ws:
                        tried = tried or (cu == s_in[ma, mb, 0] and cv == s_in[ma, mb, 1])
                if tried:
                    continue
                c, cdu, cdv = _patch(i0, i1, gx, gy, i, j, cu, cv, patch, sx, sy)
                if c < cost:
                    cost, du, dv, u, v = c, cdu, cdv, cu, cv
        det = t[0] * t[1] - t[2] * t[2]
        if abs(det) < _EPS:
            det = _EPS
        h11, h12, h22 = t[1] / det, -t[2] / det, t[0] / det
        cu, cv = u, v
        prev = _INF
        for step in range(steps):
            if step > 0:
                cost, du, dv = _patch(i0, i1, gx, gy, i, j, cu, cv, patch, sx, sy)
            cu -= h11 * du + h12 * dv
            cv -= h12 * du + h22 * dv
            if cost >= prev:
                break
            prev = cost
        eu, ev = cu - u, cv - v
        if eu * eu + ev * ev <= np.float32(patch * patch):
            u, v = cu, cv
        s_out[a, b, 0] = u
        s_out[a, b, 1] = v


@numba.njit(inline="always")
def _covering(i, patch, stride, n):
    """The first and last patch (of n, ``stride`` apart) over pixel i; a
    pixel past the last patch takes the last."""
    hi = min(i // stride, n - 1)
    lo = max((i - patch + stride) // stride, 0)
    return min(lo, hi), hi


@numba.njit(parallel=True, cache=True, nogil=True)
def densify(i0, i1, s, patch, stride, out):
    """The dense flow ``out`` (h, w, 2) float32 from the patches' ``s``: at
    each pixel the mean of the flows of the patches over it, each weighted
    by 1 / max(1, |I1(x + u) - I0(x)|) (bilinear, clamped to the image)."""
    h, w = i0.shape
    hs, ws = s.shape[0], s.shape[1]
    one = np.float32(1.0)
    for yy in numba.prange(h):
        y = np.int64(yy)
        a0, a1 = _covering(y, patch, stride, hs)
        for x in range(w):
            b0, b1 = _covering(x, patch, stride, ws)
            su = sv = sc = np.float32(0.0)
            for a in range(a0, a1 + 1):
                for b in range(b0, b1 + 1):
                    u, v = s[a, b, 0], s[a, b, 1]
                    py, fy = _weights(np.float32(y) + v, np.float32(0.0), np.float32(h - 1))
                    px, fx = _weights(np.float32(x) + u, np.float32(0.0), np.float32(w - 1))
                    val = _bilinear(i1, py, px, (one - fy) * (one - fx), (one - fy) * fx,
                                    fy * (one - fx), fy * fx)
                    c = one / max(one, abs(val - np.float32(i0[y, x])))
                    su += c * u
                    sv += c * v
                    sc += c
            out[y, x, 0] = su / sc
            out[y, x, 1] = sv / sc


@numba.njit(inline="always")
def _up_tap(i, n):
    """Output index i of a doubling (centres aligned: i / 2 - 1/4) -> (first
    input, weight of the next), clamped to n inputs."""
    if i % 2 == 0:
        first, wt = i // 2 - 1, np.float32(0.75)
    else:
        first, wt = i // 2, np.float32(0.25)
    if first < 0:
        return np.int64(0), np.float32(0.0)
    if first >= n - 1:
        return np.int64(n - 1), np.float32(0.0)
    return np.int64(first), wt


@numba.njit(parallel=True, cache=True, nogil=True)
def upsample_flow2(small, out):
    """``out`` (H, W, 2) float32: ``small`` (h, w, 2) enlarged twice
    (bilinear, pixel centres aligned, the edge values held past the last
    centre), its displacements doubled."""
    h, w = small.shape[0], small.shape[1]
    two = np.float32(2.0)
    one = np.float32(1.0)
    for yy in numba.prange(out.shape[0]):
        y = np.int64(yy)
        y0, wy = _up_tap(y, h)
        y1 = min(y0 + 1, h - 1)
        for x in range(out.shape[1]):
            x0, wx = _up_tap(x, w)
            x1 = min(x0 + 1, w - 1)
            for k in range(2):
                top = (one - wx) * small[y0, x0, k] + wx * small[y0, x1, k]
                bottom = (one - wx) * small[y1, x0, k] + wx * small[y1, x1, k]
                out[y, x, k] = two * ((one - wy) * top + wy * bottom)


def settings(shape, patch=None, stride=None, iterations=None, rounds=None, finest=None):
    """:func:`dis_flow`'s settings for an image of ``shape`` (None: the
    defaults), checked: (patch, stride, steps a round, rounds, coarsest
    level, finest level searched)."""
    patch = PATCH if patch is None else int(patch)
    stride = STRIDE if stride is None else int(stride)
    iterations = ITERATIONS if iterations is None else int(iterations)
    rounds = ROUNDS if rounds is None else int(rounds)
    finest = FINEST if finest is None else int(finest)
    for name, value, least in (("patch", patch, 1), ("stride", stride, 1),
                               ("iterations", iterations, 0), ("rounds", rounds, 1),
                               ("finest", finest, 0)):
        if value < least:
            raise ValueError(f"dis_flow: {name} must be at least {least}, got {value}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"dis_flow: expected a grey image of at least one pixel, got {shape}")
    coarsest = pyramid_levels(shape, patch)
    return patch, stride, iterations // rounds, rounds, coarsest, min(finest, coarsest)


def dis_flow(i0, i1, *, patch=None, stride=None, iterations=None, rounds=None, finest=None,
             buffers=None, out=None):
    """The flow (H, W, 2) float32 from ``i0`` to ``i1`` ((H, W) uint8, one
    shape): ``i0(x)`` matches ``i1(x + flow(x))``. See the module's text;
    the settings (None: :data:`PATCH`, :data:`STRIDE`, :data:`ITERATIONS`,
    :data:`ROUNDS`, :data:`FINEST`) are its ``patch`` ... ``finest``.

    ``out``, if given, a C-contiguous (H, W, 2) float32 array; the pyramid
    and the work arrays come from ``buffers`` (a
    :class:`guides.buffers.Buffers`, names ``"dis_*"``) when given, so that
    a stream makes its flow frame after frame without allocating."""
    i0 = np.ascontiguousarray(i0, np.uint8)
    i1 = np.ascontiguousarray(i1, np.uint8)
    if i0.shape != i1.shape or i0.ndim != 2:
        raise ValueError(f"dis_flow: two grey images of one shape, not {i0.shape} and {i1.shape}")
    h, w = i0.shape
    if out is None:
        out = np.empty((h, w, 2), np.float32)
    if out.shape != (h, w, 2) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous {(h, w, 2)} float32 array, got "
                         f"{out.shape} {out.dtype}")
    patch, stride, steps, rounds, coarsest, finest = settings(i0.shape, patch, stride,
                                                               iterations, rounds, finest)
    p0, p1 = [i0], [i1]
    for level in range(1, coarsest + 1):
        sh, sw = p0[-1].shape
        a = take(buffers, f"dis_i0_{level}", (sh // 2, sw // 2), np.uint8)
        b = take(buffers, f"dis_i1_{level}", (sh // 2, sw // 2), np.uint8)
        halve(p0[-1], a)
        halve(p1[-1], b)
        p0.append(a)
        p1.append(b)
    flow = None
    for level in range(coarsest, -1, -1):
        a, b = p0[level], p1[level]
        lh, lw = a.shape
        up = out if level == 0 else take(buffers, f"dis_flow{level % 2}", (lh, lw, 2),
                                          np.float32)
        if flow is None:
            up.fill(0)
        else:
            upsample_flow2(flow, up)
        flow = up
        hs, ws = 1 + (lh - patch) // stride, 1 + (lw - patch) // stride
        if level < finest or hs < 1 or ws < 1:
            continue
        gx = take(buffers, "dis_gx", (lh, lw), np.int16)
        gy = take(buffers, "dis_gy", (lh, lw), np.int16)
        sobel(a, gx, gy)
        tensor = take(buffers, "dis_tensor", (hs, ws, 5), np.float32)
        structure_tensor(gx, gy, patch, stride, tensor)
        s_in = take(buffers, "dis_s0", (hs, ws, 2), np.float32)
        s_out = take(buffers, "dis_s1", (hs, ws, 2), np.float32)
        for r in range(rounds):
            patch_search(a, b, gx, gy, tensor, flow, s_in, s_out, r == 0, steps, patch, stride)
            s_in, s_out = s_out, s_in
        densify(a, b, s_in, patch, stride, flow)
    return out
