"""The embedded default: a painted exemplar and a target photo, offline.

Both come from public-domain portraits that installed packages ship:
scikit-image's ``astronaut.png`` (NASA photo of Eileen Collins), cropped to
the head and painted by styleblit itself (OpenCV's oil-painting and
edge-preserving stylization filters, inked edges, a procedural paper
texture), is the exemplar; matplotlib's ``grace_hopper.jpg`` (U.S. Navy
photo) is the target. The exemplar is built once and cached with its
landmarks beside it.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from guides.exemplar import cache_dir
from guides.io import write_image

__all__ = ["default_style_path", "default_target_path", "paint"]

_VERSION = 2
_CROP = (110, 10, 410, 330)  # x0, y0, x1, y1 of the astronaut's head and shoulders
_SCALE = 2.5  # so that the painted face is ~300 px wide


def default_target_path():
    """matplotlib's grace_hopper.jpg (public domain, U.S. Navy)."""
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data",
                        "grace_hopper.jpg")


def _astronaut():
    """scikit-image's astronaut.png as BGR. Read by scikit-image, not OpenCV:
    the file's colour profile makes libpng print a warning (the same pixels
    either way)."""
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def paper_texture(shape, *, seed=0):
    """Procedural paper grain in about [0.85, 1.05]: fibres plus blotches.

    Returns
    -------
    (H, W) float32 ndarray
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    grain = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
    fibres = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigmaX=6, sigmaY=0.7)
    blotch = cv2.GaussianBlur(rng.standard_normal((h // 8 + 1, w // 8 + 1)).astype(np.float32), (0, 0), 2)
    blotch = cv2.resize(blotch, (w, h), interpolation=cv2.INTER_CUBIC)
    paper = 0.97 + 0.025 * grain + 0.03 * fibres / (fibres.std() + 1e-6) * 0.5 + 0.02 * blotch / (blotch.std() + 1e-6)
    return np.clip(paper, 0.8, 1.08).astype(np.float32)


def paint(photo, *, seed=0):
    """Make a photo look painted: oil-paint strokes, flattened colour, inked
    edges, a warm palette and paper grain.

    Parameters
    ----------
    photo : (H, W, 3) uint8 ndarray, BGR

    Returns
    -------
    (H, W, 3) uint8 ndarray, BGR
    """
    oil = cv2.xphoto.oilPainting(photo, 4, 6)
    flat = cv2.stylization(oil, sigma_s=40, sigma_r=0.4)
    gray = cv2.GaussianBlur(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), (0, 0), 3.0)
    edges = cv2.Canny(gray, 20, 50).astype(np.float32) / 255.0
    ink = 1.0 - 0.1 * cv2.GaussianBlur(edges, (0, 0), 1.2)[..., None]
    warm = np.array([0.9, 0.97, 1.05], np.float32)  # BGR: a little sepia
    out = flat.astype(np.float32) * warm * ink * paper_texture(photo.shape[:2], seed=seed)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def default_style_path():
    """Path of the painted default exemplar, built on first use and cached.

    Its 68 landmarks are detected once on the original photo (more reliable
    than on the painting) and written beside it as ``.lm68.txt``. Files in
    the cache that cannot be read (cut short, say) are built again; where
    the cache folder cannot be written (read-only, or a file), they are
    built in :func:`guides.exemplar.fallback_cache_dir`, with a
    :class:`guides.io.StyleblitWarning` saying so.
    """
    from guides.exemplar import cache_dirs, write_cached
    from guides.io import InputError, read_image
    from guides.landmarks import detect_landmarks, read_lm68, write_lm68

    name = f"astronaut_painted_v{_VERSION}"
    for root in cache_dirs():
        folder = os.path.join(root, "default")
        path = os.path.join(folder, name + ".png")
        try:
            read_image(path), read_lm68(os.path.join(folder, name + ".lm68.txt"))
            return path
        except InputError:
            pass  # not there, or not readable: built below
    x0, y0, x1, y1 = _CROP
    photo = _astronaut()[y0:y1, x0:x1]
    photo = cv2.resize(photo, None, fx=_SCALE, fy=_SCALE, interpolation=cv2.INTER_CUBIC)
    landmarks = detect_landmarks(photo)
    if landmarks is None:  # pragma: no cover - the photo is fixed
        raise RuntimeError("mediapipe found no face in astronaut.png")
    painting = paint(photo)

    def write(root):
        folder = os.path.join(root, "default")
        os.makedirs(folder, exist_ok=True)
        write_lm68(os.path.join(folder, name + ".lm68.txt"), landmarks)
        write_image(os.path.join(folder, name + ".png"), painting)

    root = write_cached(write, "the default style")
    if root is None:
        raise InputError(f"the default style cannot be written in the cache folder "
                         f"{cache_dir()} nor in the temporary folder")
    return os.path.join(root, "default", name + ".png")
