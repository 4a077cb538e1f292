"""FaceBlit's appearance guide: luminance detail, histogram-matched.

The positional guide says *where* on the face a pixel is; the appearance
guide says what local shading it has, so that a wrinkle, an eyebrow or a
highlight of the target finds one in the exemplar. Following Texler et al.
(2021, Sec. 3.2): the guide is the luminance minus a heavily blurred
luminance (three pyramid levels down and back up). On the exemplar it is
contrast-stretched symmetrically around mid-grey; on the target its
histogram is matched to the exemplar's, so both use the same range.
Values are float32 in [0, 255], mid-grey 128 meaning "no detail".
"""
from __future__ import annotations

import cv2
import numba
import numpy as np

from guides.buffers import take

__all__ = ["luminance_detail", "style_appearance", "match_histogram", "quantile_function",
           "target_appearance"]

_NQ = 257  # points of a stored quantile function
_LO, _HI, _BINS = -128.0, 128.0, 512  # match_histogram's default bins, the target guide's
_COUNT_SPANS = 16  # spans of rows counted in parallel (_level_count_kernel)
# the bin of each whole detail value -255..255 (index d + 255), as _bin_kernel
# bins it: the same float32 arithmetic, truncated towards zero, clipped
_LEVEL_BINS = np.clip(((np.arange(-255, 256).astype(np.float32) - np.float32(_LO))
                       / np.float32((_HI - _LO) / _BINS)).astype(np.int64), 0, _BINS - 1)


# The luminance in BT.601's weights with OpenCV's documented 14-bit fixed
# point, rounded (cv2.cvtColor's own 8-bit path rounds differently from one
# version and CPU to another: OpenCV 4.11's SIMD path is one level off for
# 0.3 % of colours), so that the CUDA twin (blit/cuda) computes the same levels.
GRAY_WEIGHTS = (1868, 9617, 4899)  # B, G, R; sum 2^14
GRAY_SHIFT = 14
# each channel's level times its weight (B with the rounding's half): int32
_GRAY_TABLES = (np.arange(256, dtype=np.int32)[None, :] * np.array(GRAY_WEIGHTS, np.int32)[:, None]
                + np.array([1 << (GRAY_SHIFT - 1), 0, 0], np.int32)[:, None])
# The blur's way back up: bilinear with half-pixel centres (cv2.INTER_LINEAR's
# geometry), weights in 1/2^11 as OpenCV's fixed point, in exact integer
# arithmetic (cv2.resize rounds its 8-bit sums one way in SIMD lanes and
# another in a row's tail, so its result depends on the CPU).
LINEAR_BITS = 11
_ONE = np.int32(1 << LINEAR_BITS)
_HALF = np.int32(1 << (2 * LINEAR_BITS - 1))
_SHIFT = np.int32(2 * LINEAR_BITS)


@numba.njit(parallel=True, cache=True, nogil=True)
def _gray_kernel(image, tables, out):
    """out = the luminance of the BGR ``image`` (:data:`GRAY_WEIGHTS`), rounded."""
    tb, tg, tr = tables[0], tables[1], tables[2]
    for yy in numba.prange(image.shape[0]):
        y = np.int64(yy)
        row, dst = image[y], out[y]
        for x in range(image.shape[1]):
            dst[x] = (tb[row[x, 0]] + tg[row[x, 1]] + tr[row[x, 2]]) >> GRAY_SHIFT


@numba.njit(cache=True, nogil=True)
def centre_tap(i, size, src):
    """Output index ``i`` of ``size`` read from ``src`` inputs, with
    cv2.INTER_LINEAR's pixel centres: (first input, rest), the output's
    centre (i + 1/2) src / size - 1/2 lying at first + rest / (2 size), since
    it is (2i + 1) src - size in units of 1/(2 size); before the first
    input's centre or past the last's, that input alone (rest 0)."""
    num = (2 * i + 1) * src - size
    if num <= 0:
        return 0, 0
    first = num // (2 * size)
    if first >= src - 1:
        return src - 1, 0
    return first, num - first * 2 * size


@numba.njit(cache=True, nogil=True)
def linear_tap(i, size, src):
    """:func:`centre_tap` with the weight of the next input rounded to
    1/2^LINEAR_BITS: (first input, weight)."""
    first, rest = centre_tap(i, size, src)
    return first, (rest * (1 << LINEAR_BITS) + size) // (2 * size)


@numba.njit(cache=True, nogil=True)
def float_tap(i, size, src):
    """:func:`centre_tap` with the weight of the next input in float32 (exact
    integers divided once): (first input, weight). The float bilinears (the
    stream's flow, the head mask) take their taps from it."""
    first, rest = centre_tap(i, size, src)
    return first, np.float32(rest) / np.float32(2 * size)


@numba.njit(cache=True, nogil=True)
def _taps(size, src, first, weight):
    """:func:`linear_tap` of every output index, into ``first`` and ``weight``."""
    for i in range(size):
        first[i], weight[i] = linear_tap(i, size, src)


@numba.njit(parallel=True, cache=True, nogil=True)
def _along_x_kernel(small, first, weight, out):
    """out[y, x] = row y of ``small`` interpolated along x at output column x
    (1/2^LINEAR_BITS units: at most 255 * 2^11)."""
    sw = small.shape[1]
    for yy in numba.prange(small.shape[0]):
        y = np.int64(yy)
        for x in range(out.shape[1]):
            x0, a = first[x], weight[x]
            out[y, x] = (np.int32(small[y, x0]) * (_ONE - a)
                         + np.int32(small[y, min(x0 + 1, sw - 1)]) * a)


@numba.njit(cache=True, nogil=True)
def _blur_row(along, y0, b, out):
    """out[x] = the blur at column x of the output row whose rows of
    ``along`` are y0 and the next (weight ``b``), rounded to a level (int32
    sums: at most 255 * 2^22)."""
    top = along[y0]
    bottom = along[min(y0 + 1, along.shape[0] - 1)]
    for x in range(out.shape[0]):
        out[x] = (top[x] * (_ONE - b) + bottom[x] * b + _HALF) >> _SHIFT


@numba.njit(parallel=True, cache=True, nogil=True)
def _upsample_kernel(along, first, weight, out):
    """out = the rows of ``along`` interpolated along y (``first``, ``weight``:
    each output row's taps)."""
    for yy in numba.prange(out.shape[0]):
        y = np.int64(yy)
        _blur_row(along, first[y], weight[y], out[y])


def _gray_and_small(image, levels, buffers):
    """The luminance of ``image`` (H, W) uint8 and the blur's rows
    interpolated along x (``along``, (h, W) int32 for the pyramid's (h, w)
    top level), with each output row's taps along y (``first``, ``weight``):
    the luminance by :data:`GRAY_WEIGHTS`, the pyramid by ``cv2.pyrDown``
    (integer arithmetic, the same everywhere), the way back up by
    :func:`linear_tap`'s weights. :func:`_blur_row` gives the blur."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        # (the kernels index their tables by the grey levels)
        raise ValueError(f"image: expected (H, W, 3) uint8 BGR, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    # (a crop of a frame is read where it lies)
    gray = take(buffers, "detail_gray", (h, w), np.uint8)
    _gray_kernel(image, _GRAY_TABLES, gray)
    small = gray
    for i in range(levels):
        size = ((small.shape[0] + 1) // 2, (small.shape[1] + 1) // 2)
        small = cv2.pyrDown(small, dst=take(buffers, f"detail_down{i}", size, np.uint8))
    first = take(buffers, "detail_first", (h + w,), np.int64)
    weight = take(buffers, "detail_weight", (h + w,), np.int32)
    _taps(w, small.shape[1], first[:w], weight[:w])
    _taps(h, small.shape[0], first[w:], weight[w:])
    along = take(buffers, "detail_along", (small.shape[0], w), np.int32)
    _along_x_kernel(small, first[:w], weight[:w], along)
    return gray, along, first[w:], weight[w:]


def _gray_and_blur(image, levels, buffers):
    """The luminance of ``image`` and its blur ``up(down^levels(gray))``, both
    (H, W) uint8, in ``buffers`` (:func:`_gray_and_small`)."""
    gray, along, first, weight = _gray_and_small(image, levels, buffers)
    blur = take(buffers, "detail_up", gray.shape, np.uint8)
    _upsample_kernel(along, first, weight, blur)
    return gray, blur


def luminance_detail(image, *, levels=3, buffers=None):
    """Luminance minus its blur: ``gray - up(down^levels(gray))``.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray, BGR
    buffers : guides.buffers.Buffers, optional
        Where to take the work arrays and the result from (names
        ``"detail*"``); default: new arrays.

    Returns
    -------
    (H, W) float32 ndarray
        Signed detail in luminance levels (about -128..128).
    """
    gray, blur = _gray_and_blur(image, levels, buffers)
    return cv2.subtract(gray, blur, dst=take(buffers, "detail", gray.shape, np.float32),
                        dtype=cv2.CV_32F)


def style_appearance(image, mask=None, *, clip_fraction=0.0):
    """Exemplar appearance guide: detail stretched symmetrically to [0, 255].

    The detail ``d`` becomes ``128 + d * s`` with ``s`` chosen so that the
    largest ``|d|`` of the image reaches an end of the range: FaceBlit's
    stretch (its guide's min and max, made symmetric around mid-grey).
    FaceBlit's weights (2 per appearance level against 10 per 1/256 of the
    exemplar's size, threshold 50) are tuned for this scale: a stronger
    stretch weighs appearance more, and the lookup then accepts fewer, smaller
    patches (a stretch twice as strong, as an earlier version of this
    function gave, left target1.png in bronzestatue at a patch distance of
    5.56 instead of 4.87 at 3x3 voting).

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray, BGR
    mask : (H, W) bool or float ndarray, optional
        Region whose statistics set the stretch; default the whole image,
        as FaceBlit.
    clip_fraction : float
        Fraction of the most extreme ``|d|`` let clip instead (0: none, as
        FaceBlit; a small fraction makes the stretch robust to a few
        outlying pixels).

    Returns
    -------
    (H, W) float32 ndarray in [0, 255]
    """
    d = luminance_detail(image)
    sample = np.abs(d[mask > 0.5] if mask is not None else d)
    spread = float(np.quantile(sample, 1.0 - clip_fraction)) if sample.size else 0.0
    scale = 127.0 / max(spread, 1.0)
    return np.clip(128.0 + d * scale, 0.0, 255.0).astype(np.float32)


def quantile_function(values, mask=None):
    """Quantile function of ``values`` (inside ``mask``) at 257 evenly spaced
    probabilities, the compact description of a histogram to match to.

    Returns
    -------
    (257,) float32 ndarray, non-decreasing.
    """
    sample = values[mask > 0.5] if mask is not None else values.ravel()
    if sample.size == 0:
        sample = values.ravel()
    return np.quantile(sample, np.linspace(0.0, 1.0, _NQ)).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _bin_kernel(values, mask, lo, step, idx, hist):
    """idx = the bin of each value (clipped); hist = the count of each bin
    over the pixels whose mask is above 0.5 (all of them without a mask, or
    when none is)."""
    bins = hist.shape[0]
    hist[:] = 0
    n = 0
    for y in range(values.shape[0]):
        for x in range(values.shape[1]):
            b = min(max(int((values[y, x] - lo) / step), 0), bins - 1)
            idx[y, x] = b
            if mask.shape[0] == 0 or mask[y, x] > 0.5:
                hist[b] += 1
                n += 1
    if n == 0:
        for y in range(values.shape[0]):
            for x in range(values.shape[1]):
                hist[idx[y, x]] += 1


def match_histogram(values, reference_quantiles, mask=None, *, lo=_LO, hi=_HI, bins=_BINS,
                    buffers=None, out=None):
    """Map ``values`` so that their histogram (inside ``mask``) matches the one
    described by ``reference_quantiles`` (from :func:`quantile_function`).

    The source CDF is taken from a ``bins``-bin histogram over [lo, hi], so the
    whole mapping is one table lookup per pixel.

    Parameters
    ----------
    values : (H, W) float32 ndarray
    reference_quantiles : (Q,) float32 ndarray
    mask : (H, W) ndarray, optional
    buffers : guides.buffers.Buffers, optional
        Where to take the work arrays from; default: new arrays.
    out : (H, W) float32 ndarray, optional

    Returns
    -------
    (H, W) float32 ndarray
    """
    values = np.ascontiguousarray(values, np.float32)
    step = np.float32((hi - lo) / bins)
    idx = take(buffers, "match_bin", values.shape, np.intp)  # np.take would copy other types
    hist = np.empty(bins, np.int64)
    mask = np.zeros((0, 0), np.float32) if mask is None else np.ascontiguousarray(mask)
    _bin_kernel(values, mask, np.float32(lo), step, idx, hist)
    table = _matching_table(hist, reference_quantiles)
    if out is None:
        out = np.empty(values.shape, np.float32)
    return np.take(table, idx, out=out, mode="clip")  # clip: unbuffered


def _matching_table(hist, reference_quantiles):
    """float32 value of each bin: its mid-rank in the CDF of ``hist``, mapped
    through the reference quantile function."""
    hist = hist.astype(np.float64)
    cdf = (np.cumsum(hist) - hist / 2.0) / hist.sum()
    table = np.empty(cdf.size, np.float32)
    _quantile_interp(cdf, np.ascontiguousarray(reference_quantiles, np.float32), table)
    return table


@numba.njit(cache=True, nogil=True)
def quantile_at(p, quantiles):
    """The quantile function ``quantiles`` (at the probabilities
    ``np.linspace(0, 1, n)``) at probability ``p``, interpolated linearly:
    ``np.interp``'s result, its arithmetic written out (float64, every
    operation rounded on its own) so that the CUDA twin's is the same."""
    n = quantiles.shape[0]
    step = 1.0 / (n - 1)  # (linspace's nodes: i * step, the last 1.0)
    if p < 0.0:
        return np.float64(quantiles[0])
    if p >= 1.0:
        return np.float64(quantiles[n - 1])
    j = min(np.int64(p / step), n - 2)  # the last node at or below p
    while j > 0 and j * step > p:
        j -= 1
    while j < n - 2 and (j + 1) * step <= p:
        j += 1
    x0, y0 = j * step, np.float64(quantiles[j])
    if x0 == p:
        return y0
    x1 = 1.0 if j + 1 == n - 1 else (j + 1) * step
    slope = (np.float64(quantiles[j + 1]) - y0) / (x1 - x0)
    return slope * (p - x0) + y0


@numba.njit(cache=True, nogil=True)
def _quantile_interp(cdf, quantiles, out):
    """out[i] = float32(quantile_at(cdf[i], quantiles))."""
    for i in range(cdf.shape[0]):
        out[i] = np.float32(quantile_at(cdf[i], quantiles))


@numba.njit(parallel=True, cache=True, nogil=True)
def _level_count_kernel(gray, along, first, weight, mask, blur, counts):
    """blur = the blur (:func:`_blur_row`); counts[k, d + 255]: pixels of the
    k-th span of rows whose detail ``gray - blur`` is d, among those whose
    mask is above 0.5 (all without a mask); counts[spans, :] the same over
    all pixels (the fallback of an empty mask)."""
    h, w = gray.shape
    spans = counts.shape[0] - 1
    counts[...] = 0
    for kk in numba.prange(spans):
        k = np.int64(kk)
        row = np.empty(w, np.int32)
        for y in range(k * h // spans, (k + 1) * h // spans):
            _blur_row(along, first[y], weight[y], row)
            blur[y] = row
            for x in range(w):
                if mask.shape[0] == 0 or mask[y, x] > 0.5:
                    counts[k, np.int64(gray[y, x]) - row[x] + 255] += 1
    if counts[:spans].sum() == 0:
        for y in range(h):
            for x in range(w):
                counts[spans, np.int64(gray[y, x]) - np.int64(blur[y, x]) + 255] += 1


@numba.njit(parallel=True, cache=True, nogil=True)
def _level_map_kernel(gray, blur, lut, out):
    """out = lut[gray - blur + 255]."""
    for yy in numba.prange(gray.shape[0]):
        y = np.int64(yy)
        for x in range(gray.shape[1]):
            out[y, x] = lut[np.int64(gray[y, x]) - np.int64(blur[y, x]) + 255]


def target_appearance(image, style_quantiles, mask=None, *, buffers=None, out=None):
    """Target appearance guide: luminance detail histogram-matched to the exemplar's.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray, BGR
    style_quantiles : (257,) float32 ndarray
        ``quantile_function`` of the exemplar's appearance guide (its head).
    mask : (H, W) ndarray, optional
        Region of the target whose histogram is matched (its head).
    buffers : guides.buffers.Buffers, optional
        Where to take the work arrays from; default: new arrays.
    out : (H, W) float32 ndarray, optional

    Returns
    -------
    (H, W) float32 ndarray in [0, 255]
    """
    # The same as match_histogram(luminance_detail(image), ...), bit for bit,
    # from the detail's whole values (-255..255): their counts, binned as
    # match_histogram bins them, and the matched value of each, looked up
    # per pixel: the float detail, its bin indices and their gather are
    # never written (styleblit bench at 768x1024: 1.5 instead of 2.9-3.1 ms).
    gray, along, first, weight = _gray_and_small(image, 3, buffers)
    mask = np.zeros((0, 0), np.float32) if mask is None else np.ascontiguousarray(mask)
    if mask.size and mask.shape != gray.shape:
        raise ValueError(f"mask: expected shape {gray.shape}, got {mask.shape}")
    counts = take(buffers, "match_counts", (_COUNT_SPANS + 1, 511), np.int64)
    blur = take(buffers, "detail_up", gray.shape, np.uint8)
    _level_count_kernel(gray, along, first, weight, mask, blur, counts)
    per_level = counts[:_COUNT_SPANS].sum(axis=0)
    if not per_level.any():
        per_level = counts[_COUNT_SPANS]
    hist = np.bincount(_LEVEL_BINS, weights=per_level, minlength=_BINS)
    lut = _matching_table(hist, style_quantiles)[_LEVEL_BINS]
    if out is None:
        out = np.empty(gray.shape, np.float32)
    _level_map_kernel(gray, blur, lut, out)
    return out
