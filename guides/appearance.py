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
import numpy as np

__all__ = ["luminance_detail", "style_appearance", "match_histogram", "quantile_function",
           "target_appearance"]

_NQ = 257  # points of a stored quantile function


def luminance_detail(image, *, levels=3):
    """Luminance minus its blur: ``gray - up(down^levels(gray))``.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray, BGR

    Returns
    -------
    (H, W) float32 ndarray
        Signed detail in luminance levels (about -128..128).
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    blur = gray
    for _ in range(levels):
        blur = cv2.pyrDown(blur)
    blur = cv2.resize(blur, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    return gray.astype(np.float32) - blur.astype(np.float32)


def style_appearance(image, mask=None, *, clip_fraction=0.005):
    """Exemplar appearance guide: detail stretched symmetrically to [0, 255].

    The detail ``d`` becomes ``128 + d * s`` with ``s`` chosen so that the
    ``clip_fraction`` most extreme values of ``|d|`` (inside ``mask``) reach
    the ends of the range: FaceBlit's stretch, made robust to a few outliers.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray, BGR
    mask : (H, W) bool or float ndarray, optional
        Region whose statistics set the stretch (the head).

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


def match_histogram(values, reference_quantiles, mask=None, *, lo=-128.0, hi=128.0, bins=512):
    """Map ``values`` so that their histogram (inside ``mask``) matches the one
    described by ``reference_quantiles`` (from :func:`quantile_function`).

    The source CDF is taken from a ``bins``-bin histogram over [lo, hi], so the
    whole mapping is one table lookup per pixel.

    Returns
    -------
    (H, W) float32 ndarray
    """
    step = (hi - lo) / bins
    idx = np.clip(((values - lo) / step).astype(np.int32), 0, bins - 1)
    sample = idx[mask > 0.5] if mask is not None else idx
    if sample.size == 0:
        sample = idx
    hist = np.bincount(sample.ravel(), minlength=bins).astype(np.float64)
    # mid-rank CDF of each bin, mapped through the reference quantile function
    cdf = (np.cumsum(hist) - hist / 2.0) / hist.sum()
    table = np.interp(cdf, np.linspace(0.0, 1.0, reference_quantiles.size), reference_quantiles)
    return table.astype(np.float32)[idx]


def target_appearance(image, style_quantiles, mask=None):
    """Target appearance guide: luminance detail histogram-matched to the exemplar's.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray, BGR
    style_quantiles : (257,) float32 ndarray
        ``quantile_function`` of the exemplar's appearance guide (its head).
    mask : (H, W) ndarray, optional
        Region of the target whose histogram is matched (its head).

    Returns
    -------
    (H, W) float32 ndarray in [0, 255]
    """
    return match_histogram(luminance_detail(image), style_quantiles, mask)
