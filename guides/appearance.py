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
    h, w = image.shape[:2]
    if not image.flags.c_contiguous:  # a crop: OpenCV would copy it anyway
        crop = take(buffers, "detail_bgr", image.shape, np.uint8)
        crop[...] = image
        image = crop
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY,
                        dst=take(buffers, "detail_gray", (h, w), np.uint8))
    blur = gray
    for i in range(levels):
        size = ((blur.shape[0] + 1) // 2, (blur.shape[1] + 1) // 2)
        blur = cv2.pyrDown(blur, dst=take(buffers, f"detail_down{i}", size, np.uint8))
    blur = cv2.resize(blur, (w, h), dst=take(buffers, "detail_up", (h, w), np.uint8),
                      interpolation=cv2.INTER_LINEAR)
    return cv2.subtract(gray, blur, dst=take(buffers, "detail", (h, w), np.float32),
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


def match_histogram(values, reference_quantiles, mask=None, *, lo=-128.0, hi=128.0, bins=512,
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
    hist = hist.astype(np.float64)
    # mid-rank CDF of each bin, mapped through the reference quantile function
    cdf = (np.cumsum(hist) - hist / 2.0) / hist.sum()
    table = np.interp(cdf, np.linspace(0.0, 1.0, reference_quantiles.size), reference_quantiles)
    if out is None:
        out = np.empty(values.shape, np.float32)
    return np.take(table.astype(np.float32), idx, out=out, mode="clip")  # clip: unbuffered


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
    return match_histogram(luminance_detail(image, buffers=buffers), style_quantiles, mask,
                           buffers=buffers, out=out)
