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

from guides.buffers import take

__all__ = ["blend", "denoise_nnf", "pack_exemplar", "PACK_PAD", "MAX_DENOISE_RADIUS"]

#: The largest radius of :func:`denoise_nnf` (the largest voting radius of
#: the stylizers' options): the mode filter's worst case grows as the
#: fourth power of the radius (minutes a frame at radius 100).
MAX_DENOISE_RADIUS = 4

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


@numba.njit(parallel=True, cache=True, nogil=True)
def _blend_kernel(packed, pad, nnf, radius, out):
    """out(p) = rounded mean over offsets o of Style(NNF(p + o) - o), for the
    neighbours inside the target whose shifted source lies in the exemplar
    (``packed`` by :func:`pack_exemplar` with ``pad >= radius``: a source
    off the exemplar reads a zero word, no vote). Pixels whose own NNF
    entry is inactive (negative) are left untouched. Radii 1 and 2 go to
    their own kernels (:func:`_sending_blend`), called by :func:`blend`: a
    call from here compiled both on a first run (22 s) whatever the radius."""
    if radius == 0:  # a gather: a pixel's one vote is its source's word
        for yy in numba.prange(nnf.shape[0]):
            y = np.int64(yy)  # prange indices may be unsigned
            for x in range(nnf.shape[1]):
                if nnf[y, x, 0] >= 0:
                    v = _source(packed, pad, nnf, y, x, 0, 0)
                    if v >> 24:
                        out[y, x, 0] = v & 0xFF
                        out[y, x, 1] = (v >> 8) & 0xFF
                        out[y, x, 2] = (v >> 16) & 0xFF
        return
    for y in numba.prange(nnf.shape[0]):
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
def _emit_row(nnf, y, even, odd, slot, radius, out):
    """Write output row y of a sending blend (:func:`_sending_blend`) from the
    lane sums of its slot (pixel x at ``slot + x + radius``), then clear
    the slot for the row that takes it next."""
    w = nnf.shape[1]
    for x in range(w):
        if nnf[y, x, 0] >= 0:
            e = even[slot + x + radius]
            o = odd[slot + x + radius]
            _write_mean(out, y, x, np.int64(e & 0xFFFF), np.int64(o & 0xFFFF),
                        np.int64(e >> 16), np.int64(o >> 16))
    even[slot:slot + w + 2 * radius] = 0
    odd[slot:slot + w + 2 * radius] = 0


@numba.njit(nogil=True)  # (not inlined: rarely called, and it would slow the loop it sits in)
def _send_checked(packed, pad, nnf, qy, qx, radius, y0, y1, stride, even, odd):
    """The votes of a neighbour q whose block reaches beyond the padded
    exemplar (a source outside the NNF's contract), for a sending blend:
    each read through :func:`_source`'s bounds test, so a vote off the
    exemplar counts as none, as in the fetching blend."""
    d = 2 * radius + 1
    for oy in range(-radius, radius + 1):
        y = qy - oy
        if y < y0 or y >= y1:
            continue
        for ox in range(-radius, radius + 1):
            v = _source(packed, pad, nnf, qy, qx, oy, ox)
            k = (y % d) * stride + qx - ox + radius  # the sums of p_x = qx - o_x
            even[k] += v & _LANES
            odd[k] += (v >> 8) & _LANES


def _sending_blend(radius):
    """:func:`_blend_row`'s image for one radius, the votes sent instead of
    fetched: each neighbour q reads the ``2r+1`` exemplar words of each row
    of its block, ``Style(NNF(q) - o)`` for the row's ``o_x`` (one or two
    cache lines, where the votes that p fetches may lie in as many places),
    and adds them to the sums of the pixels ``p = q - o`` of that row.

    The rows go in bands, in parallel; a band keeps the sums of ``2r+1``
    output rows (row y in slot y % (2r+1)) and writes row y - r once q has
    passed row y, when all its votes are in. Two sums of 16-bit lanes add up
    all three channels and the count: ``even`` takes bytes 0 and 2 of each
    word (channels 0 and 2), ``odd`` bytes 1 and 3 (channel 1 and the vote);
    (2r+1)^2 votes of at most 255 cannot carry from one lane into the next
    for r <= 7. A vote is a word of the padded exemplar, 0 off it (no colour,
    no vote), and an inactive q (negative NNF) sends none, so the sums are
    those of :func:`_blend_row`: the same image, 0.7x its time at radius 1
    and 0.4x at radius 2 (the stream's head box at 640x480 and the still's
    at 768x1024, measured in one process). Flat arrays with unsigned indices
    (no wraparound checks); a q whose block would reach beyond the padded
    exemplar (a source outside the NNF's contract) sends its votes through
    :func:`_send_checked`.

    From radius 2 on, a run of q's along a row that copy consecutive
    sources (``NNF(q + 1) = NNF(q) + (1, 0)``, most of a denoised NNF) is
    sent at once: each p of its rows takes the same word from every q of
    the run within r of it, so the run reads ``n + 2r`` words a row, each
    added m times, instead of ``(2r+1) n``. The same sums: at radius 2,
    0.51-0.53x the time of sending q by q (the still's head box at
    768x1024 after the 5x5 mode filter, three runs of 21 interleaved rounds
    in one process); at radius 1 it gained nothing (runs of 5 pixels on
    average), and q goes alone.

    The radius is a constant of the kernel made here (a closure variable),
    so that LLVM unrolls the loops over a row's words: taken as an argument
    it made the kernel 1.5-1.9x slower."""
    r = int(radius)
    d = 2 * r + 1

    @numba.njit(parallel=True, cache=True, nogil=True)
    def kernel(packed, pad, nnf, out):
        h, w = nnf.shape[0], nnf.shape[1]
        pw = np.uint64(packed.shape[1])
        words = packed.reshape(packed.size)
        stride = w + 2 * r  # a slot's sums: pixel x at x + r, and r either side
        bands = min(h, 32)
        for bb in numba.prange(bands):
            b = np.int64(bb)  # prange indices may be unsigned
            y0 = b * h // bands
            y1 = (b + 1) * h // bands
            even = np.zeros(d * stride, np.uint32)
            odd = np.zeros(d * stride, np.uint32)
            for qy in range(max(y0 - r, 0), min(y1 + r, h)):
                qx = 0
                while qx < w:
                    nx = nnf[qy, qx, 0]
                    if nx < 0:
                        qx += 1
                        continue  # inactive: no votes
                    ny = nnf[qy, qx, 1]
                    if ny < 0 or nx + pad + r >= packed.shape[1] or ny + pad + r >= packed.shape[0]:
                        _send_checked(packed, pad, nnf, qy, qx, r, y0, y1, stride, even, odd)
                        qx += 1
                        continue
                    n = 1  # q = qx .. qx + n - 1: a run (r >= 2) or q alone
                    if r >= 2:
                        # the neighbours right of q that copy the sources right
                        # of q's, as far as their blocks stay in the padded exemplar
                        last = min(w, qx + packed.shape[1] - pad - r - nx) - 1
                        while (qx + n <= last and nnf[qy, qx + n, 0] == nx + n
                               and nnf[qy, qx + n, 1] == ny):
                            n += 1
                    sx = np.uint64(nx + pad)
                    sy = np.int64(ny) + pad
                    for oy in range(-r, r + 1):
                        y = qy - oy  # the output row of this row's votes
                        if y < y0 or y >= y1:
                            continue
                        # the words at o_x = r .. -r go to the sums of p_x =
                        # qx - r .. qx + r (at qx .. qx + 2r); along a run, p_x
                        # = qx - r + j takes the same word from each of the
                        # m q's of the run within r of it
                        at = np.uint64(sy - oy) * pw + sx - np.uint64(r)
                        k = np.uint64((y % d) * stride + qx)
                        if r < 2:  # q alone, a loop of constant length (unrolled)
                            for j in range(d):
                                v = words[at + np.uint64(j)]
                                even[k + np.uint64(j)] += v & _LANES
                                odd[k + np.uint64(j)] += (v >> 8) & _LANES
                            continue
                        for jj in range(n + 2 * r):
                            j = np.int64(jj)
                            m = np.uint32(min(j, n - 1) - max(j - 2 * r, 0) + 1)
                            v = words[at + np.uint64(j)]
                            even[k + np.uint64(j)] += m * (v & _LANES)
                            odd[k + np.uint64(j)] += m * ((v >> 8) & _LANES)
                    qx += n
                # complete now: row qy - r, and the image's last rows once
                # its last q row is done
                for y in range(qy - r, qy + 1):
                    if y0 <= y < y1 and (y == qy - r or qy == h - 1):
                        _emit_row(nnf, y, even, odd, (y % d) * stride, r, out)

    return kernel


_blend_3x3 = _sending_blend(1)
_blend_5x5 = _sending_blend(2)


# an offset (dx, dy) as one positive int64, (dx + _KEY) << 26 | (dy + _KEY), for
# targets and exemplars under 2^24 px a side
_KEY = 1 << 24


@numba.njit(parallel=True, cache=True, nogil=True)
def _offset_kernel(nnf, keys):
    """keys(p) = the offset NNF(p) - p as one int64, or -1 where inactive.

    C-contiguous arrays read as flat ones with unsigned indices and a select
    instead of a branch, which LLVM vectorises (3x faster)."""
    h, w = keys.shape
    n = h * w
    f = nnf.reshape(2 * n)
    k = keys.reshape(n)
    for yy in numba.prange(h):
        y = np.int64(yy)  # prange indices may be unsigned
        row = np.uint64(y) * np.uint64(w)
        for xx in range(w):
            i = row + np.uint64(xx)
            sx = np.int64(f[np.uint64(2) * i])
            sy = np.int64(f[np.uint64(2) * i + np.uint64(1)])
            key = ((sx - xx + _KEY) << 26) | (sy - y + _KEY)
            k[i] = key if sx >= 0 else np.int64(-1)


@numba.njit(inline="always")
def _count9(k, k0, k1, k2, k3, k4, k5, k6, k7, k8):
    return (np.int64(k0 == k) + np.int64(k1 == k) + np.int64(k2 == k) + np.int64(k3 == k)
            + np.int64(k4 == k) + np.int64(k5 == k) + np.int64(k6 == k) + np.int64(k7 == k)
            + np.int64(k8 == k))


@numba.njit(inline="always")
def _mode_3x3(k0, k1, k2, k3, k4, k5, k6, k7, k8):
    """:func:`_mode` for radius 1 of the nine offsets around a pixel in
    raster order (its own is ``k4``, active), without a branch: each
    offset's count among the nine, then, in raster order, the first whose
    count is strictly larger than the best so far, starting from the own
    one's (an inactive neighbour, -1, counts for none)."""
    mode = k4
    best = _count9(k4, k0, k1, k2, k3, k4, k5, k6, k7, k8)
    for k in (k0, k1, k2, k3, k5, k6, k7, k8):  # (unrolled: a tuple)
        c = _count9(k, k0, k1, k2, k3, k4, k5, k6, k7, k8)
        better = (c > best) & (k >= 0)
        best = c if better else best
        mode = k if better else mode
    return mode


@numba.njit(inline="always")
def _denoise_row_3x3(nnf, keys, y, hs, ws, out):
    """The kernel of :func:`_denoiser` (1) on row y, but for its first and
    last pixels (0 < y < h - 1): flat arrays with unsigned indices and
    selects instead of branches, which LLVM vectorises: the filter took
    0.53x its time with these pixels counted one by one with early exits
    (the still's head box at 768x1024, interleaved in one process)."""
    w = keys.shape[1]
    kf = keys.reshape(keys.size)
    nf = nnf.reshape(nnf.size).view(np.int64)  # (x, y) pairs as one word
    of = out.reshape(out.size).view(np.int64)
    one = np.uint64(1)
    up = np.uint64((y - 1) * w)
    mid = np.uint64(y * w)
    down = np.uint64((y + 1) * w)
    for xx in range(one, np.uint64(w - 1)):
        x = np.uint64(xx)
        own = kf[mid + x]
        mode = _mode_3x3(kf[up + x - one], kf[up + x], kf[up + x + one],
                         kf[mid + x - one], own, kf[mid + x + one],
                         kf[down + x - one], kf[down + x], kf[down + x + one])
        sx = np.int64(x) + (mode >> 26) - _KEY
        sy = y + (mode & ((1 << 26) - 1)) - _KEY
        take = ((own >= 0) & (mode != own) & (np.uint64(sx) < np.uint64(ws))
                & (np.uint64(sy) < np.uint64(hs)))
        of[mid + x] = ((sy << 32) | sx) if take else nf[mid + x]


@numba.njit(inline="always")
def _denoise_row_5x5(nnf, keys, y, hs, ws, out, win, count):
    """The kernel of :func:`_denoiser` (2) on row y, but for its first and
    last two pixels (1 < y < h - 2), in two passes. First, for every pixel,
    its own offset's count among the 25 (flat arrays, unsigned indices, no
    branch: vectorised) and NNF(p) copied out; 57% of the still's head
    pixels at 768x1024 have a majority for their own offset, which is then
    their mode. Then the others, one by one: the window read without
    bounds tests and searched by :func:`_search_mode`. 0.61-0.68 of the
    time of :func:`_denoise_pixel` pixel by pixel on that head box
    (interleaved in one process)."""
    w = keys.shape[1]
    kf = keys.reshape(keys.size)
    nf = nnf.reshape(nnf.size).view(np.int64)  # (x, y) pairs as one word
    of = out.reshape(out.size).view(np.int64)
    mid = np.uint64(y * w)
    two = np.uint64(2)
    for xx in range(two, np.uint64(w - 2)):
        x = np.uint64(xx)
        own = kf[mid + x]
        c = np.int64(0)
        for j in range(5):
            row = np.uint64((y - 2 + j) * w) + x - two
            for i in range(5):
                c += np.int64(kf[row + np.uint64(i)] == own)
        count[x] = np.uint8(c)
        of[mid + x] = nf[mid + x]
    for x in range(2, w - 2):
        own = keys[y, x]
        if own < 0 or 2 * np.int64(count[x]) > 25:
            continue  # inactive, or its own offset is the majority
        n = 0
        for qy in range(y - 2, y + 3):
            for qx in range(x - 2, x + 3):
                win[n] = keys[qy, qx]
                n += 1
        # (25, a constant: LLVM unrolls the counts)
        _take_mode(out, y, x, _search_mode(win, 25, own, np.int64(count[x])), own, hs, ws)


@numba.njit(inline="always")
def _mode(keys, y, x, own, radius, win):
    """The most frequent offset among the active pixels of the (2r+1)^2
    neighbourhood of (x, y): ``own`` if no other is strictly more frequent,
    else the first in raster order of those that are most frequent."""
    h, w = keys.shape
    n = win.shape[0]
    i = 0
    for qy in range(y - radius, y + radius + 1):
        for qx in range(x - radius, x + radius + 1):
            win[i] = keys[qy, qx] if 0 <= qy < h and 0 <= qx < w else -1
            i += 1
    best = 0
    for j in range(n):
        best += win[j] == own
    if 2 * best > n:
        return own  # a majority
    return _search_mode(win, n, own, best)


@numba.njit(inline="always")
def _search_mode(win, n, own, best):
    """:func:`_mode` of the window ``win[:n]`` (raster order, -1 inactive)
    whose own offset ``own`` is there ``best`` times, no majority: each
    offset counted in raster order unless it cannot be strictly more
    frequent than the best so far (inactive, or equal to the own one, to
    the best, or to the offset before it, whose count is no larger), until
    one has a majority."""
    mode = own
    for i in range(n):
        k = win[i]
        if k < 0 or k == own or k == mode or (i > 0 and k == win[i - 1]):
            continue
        c = 0
        for j in range(n):
            c += win[j] == k
        if c > best:
            best = c
            mode = k
            if 2 * best > n:
                break  # a majority
    return mode


@numba.njit(inline="always")
def _take_mode(out, y, x, mode, own, hs, ws):
    """out(p) = p + ``mode`` when that differs from ``own`` and lies on the
    exemplar (else out(p) stays NNF(p))."""
    if mode != own:
        sx = x + (mode >> 26) - _KEY
        sy = y + (mode & ((1 << 26) - 1)) - _KEY
        if 0 <= sx < ws and 0 <= sy < hs:
            out[y, x, 0] = sx
            out[y, x, 1] = sy


@numba.njit(nogil=True)
def _denoise_pixel(nnf, keys, y, x, radius, hs, ws, out, win):
    """out(p) for one pixel p = (x, y): :func:`_mode` of the offsets around
    it, from ``keys``. (A call, not inlined: the border pixels it serves
    are few, and its seven inlined copies took most of the 20-35 s that
    the mode filter took to compile on a first run.)"""
    out[y, x, 0] = nnf[y, x, 0]
    out[y, x, 1] = nnf[y, x, 1]
    own = keys[y, x]
    if own >= 0:
        _take_mode(out, y, x, _mode(keys, y, x, own, radius, win), own, hs, ws)


def _denoiser(radius):
    """The mode filter's kernel for one radius: ``kernel(nnf, keys, hs, ws,
    out)``, out(p) = p + the mode of the offsets around p (:func:`_mode`,
    with ``keys`` from :func:`_offset_kernel`), or NNF(p) where that lies off
    the exemplar. Radius 1 away from the border by :func:`_denoise_row_3x3`,
    radius 2 by :func:`_denoise_row_5x5`, the rest pixel by pixel.

    The radius is a constant of the kernel made here (a closure variable),
    so that a run compiles the path of its radius only: with the radius an
    argument, both rows' code was compiled on a first run (with the border
    pixels' seven inlined copies, 20-35 s; 14 s with those a call)."""
    r = int(radius)

    @numba.njit(parallel=True, cache=True, nogil=True)
    def kernel(nnf, keys, hs, ws, out):
        h, w = nnf.shape[0], nnf.shape[1]
        for yy in numba.prange(h):
            y = np.int64(yy)  # prange indices may be unsigned
            win = np.empty((2 * r + 1) * (2 * r + 1), np.int64)
            if r == 1 and 0 < y < h - 1 and w > 2:
                _denoise_row_3x3(nnf, keys, y, hs, ws, out)
                _denoise_pixel(nnf, keys, y, 0, r, hs, ws, out, win)
                _denoise_pixel(nnf, keys, y, w - 1, r, hs, ws, out, win)
            elif r == 2 and 1 < y < h - 2 and w > 4:
                _denoise_row_5x5(nnf, keys, y, hs, ws, out, win, np.empty(w, np.uint8))
                for x in (0, 1, w - 2, w - 1):
                    _denoise_pixel(nnf, keys, y, x, r, hs, ws, out, win)
            else:
                for x in range(w):
                    _denoise_pixel(nnf, keys, y, x, r, hs, ws, out, win)

    return kernel


_DENOISERS = {r: _denoiser(r) for r in range(1, MAX_DENOISE_RADIUS + 1)}


def check_denoise_radius(radius):
    """A ValueError unless ``radius`` is a whole number 0..:data:`MAX_DENOISE_RADIUS`."""
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) \
            or not 0 <= radius <= MAX_DENOISE_RADIUS:
        raise ValueError(f"radius: expected a whole number 0..{MAX_DENOISE_RADIUS}, "
                         f"got {radius!r}")


def denoise_nnf(nnf, radius, style_shape, *, out=None, buffers=None):
    """Make an NNF more coherent before voting: a mode filter of its offsets.

    Each active pixel ``p`` takes the offset ``NNF(q) - q`` that is most
    frequent among the active pixels ``q`` of its ``(2r+1) x (2r+1)``
    neighbourhood, so that a pixel whose neighbours mostly copy one patch
    copies it too; ties keep ``p``'s own offset, else the one met first in
    raster order. FaceBlit runs the same filter (``denoiseNNF``, at the
    voting size) before its voting: the votes of a coherent neighbourhood
    agree, and the output keeps the exemplar's strokes instead of averaging
    neighbouring patches.

    Parameters
    ----------
    nnf : (H, W, 2) int32 ndarray
        As :func:`blit.styleblit.lookup` returns it; negative entries are
        inactive: they stay as they are and cast no vote.
    radius : int
        Neighbourhood radius (FaceBlit: the voting radius), 0 to
        :data:`MAX_DENOISE_RADIUS`.
    style_shape : (int, int)
        (Hs, Ws) of the exemplar: a pixel whose winning offset would copy
        from off the exemplar keeps its own source.
    out : (H, W, 2) int32 ndarray, optional
        Must not be ``nnf``.
    buffers : guides.buffers.Buffers, optional
        Where to take the work array from (name ``"denoise_keys"``); default:
        a new one.

    Returns
    -------
    (H, W, 2) int32 ndarray
        Sources still inside the exemplar.

    Notes
    -----
    CuPy arrays run the CUDA kernel instead (:func:`blit.gpu.denoise_nnf`,
    same NNF) and give a CuPy NNF.

    Examples
    --------
    >>> nnf = np.array([[[5, 5], [6, 5], [0, 0], [8, 5]]], np.int32)  # a stray source at x = 2
    >>> denoise_nnf(nnf, 1, (10, 10))[0, 2]
    array([7, 5], dtype=int32)
    """
    if _is_cupy(nnf) or _is_cupy(out):
        from blit import gpu

        return gpu.denoise_nnf(nnf, radius, style_shape, out=out, buffers=buffers)
    if nnf.ndim != 3 or nnf.shape[2] != 2 or nnf.dtype != np.int32:
        raise ValueError(f"nnf: expected (H, W, 2) int32, got {nnf.shape} {nnf.dtype}")
    check_denoise_radius(radius)
    if out is None:
        out = np.empty(nnf.shape, np.int32)
    elif out.shape != nnf.shape or out.dtype != np.int32:
        raise ValueError(f"out: expected {nnf.shape} int32, got {out.shape} {out.dtype}")
    elif np.shares_memory(out, nnf):
        raise ValueError("out: must not share memory with nnf (the filter reads the neighbours)")
    elif not out.flags.c_contiguous:  # the kernel writes C-contiguous rows
        out[...] = denoise_nnf(nnf, radius, style_shape, buffers=buffers)
        return out
    if radius == 0:  # (no neighbours: every offset is its own mode)
        out[...] = nnf
        return out
    nnf = np.ascontiguousarray(nnf)
    keys = take(buffers, "denoise_keys", nnf.shape[:2], np.int64)
    _offset_kernel(nnf, keys)
    _DENOISERS[int(radius)](nnf, keys, int(style_shape[0]), int(style_shape[1]), out)
    return out


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
    elif out.shape != (h, w, 3) or out.dtype != np.uint8:
        raise ValueError(f"out: expected ({h}, {w}, 3) uint8, got {out.shape} {out.dtype}")
    elif not out.flags.c_contiguous:  # the kernel writes C-contiguous rows
        out[...] = blend(style, nnf, radius, packed=packed)
        return out
    radius = int(radius)
    if packed is None:
        packed = pack_exemplar(style, radius)
    pad = (packed.shape[0] - style.shape[0]) // 2
    if (packed.dtype != np.uint32 or packed.ndim != 2 or pad < radius
            or packed.shape != (style.shape[0] + 2 * pad, style.shape[1] + 2 * pad)):
        raise ValueError(f"packed: expected pack_exemplar(style, pad >= {radius}) of shape "
                         f"{style.shape[:2]} plus the padding, got {packed.shape} {packed.dtype}")
    kernel = {1: _blend_3x3, 2: _blend_5x5}.get(radius)
    if kernel is not None:
        kernel(packed, pad, nnf, out)
    else:
        _blend_kernel(packed, pad, nnf, radius, out)
    return out
