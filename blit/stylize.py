"""The still-image pipeline: guides, lookup, blend, composite.

:func:`stylize_frame` is the whole FaceBlit pipeline on one frame whose
faces' landmarks are known (each face's head painted in turn);
:func:`stylize_image` adds landmark detection. Both are
pure functions of their inputs (the jitter table is passed in).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from blit.blending import PACK_PAD, blend, denoise_nnf
from blit.styleblit import LookupParams, lookup, make_jitter
from guides.appearance import target_appearance
from guides.buffers import take
from guides.io import InputError, check_bgr_frame
from guides.mask import MIN_WEIGHT, composite, head_region
from guides.mls import positional_guide

__all__ = ["StylizeOptions", "stylize_frame", "stylize_image", "face_width", "paint_scale",
           "scaled_shape", "rescale_points", "NoFaceError", "STAGES", "MAX_FACE_RATIO"]

STAGES = ("mask", "mls", "appearance", "lookup", "denoise", "blend", "composite")

#: :func:`stylize_image` paints a face more than this many times as wide as
#: the exemplar's at the exemplar's scale and enlarges the painting back (see
#: :func:`paint_scale`).
MAX_FACE_RATIO = 1.25


class NoFaceError(InputError):
    """No face was found in a target image."""


@dataclass(frozen=True)
class StylizeOptions:
    """Settings of the patch-based stylizer.

    Attributes
    ----------
    voting : int
        Blending radius: 0 none, 1 for 3x3, 2 for 5x5 voting.
    background : {"keep", "stylize"}
        Keep the frame around the head, or stylize it too with the positional
        guide alone (FaceBlit's ``_bg`` outputs).
    threshold : float
        Guide-error threshold of the head lookup (FaceBlit: 50).
    background_threshold : float
        Threshold of the position-only background lookup (FaceBlit: 20).
    levels : int
        Lookup levels; seed spacing 2**(levels-1) .. 1.
    denoise : bool or None
        With voting, first make the head's NNF more coherent with a mode
        filter of its offsets at the voting radius
        (:func:`blit.blending.denoise_nnf`, FaceBlit's ``denoiseNNF``): the
        votes of a neighbourhood then mostly agree and the strokes stay
        sharp. The background's position-only NNF is coherent already.
        None (the default): on for still images (:func:`stylize_frame`),
        off in a stream (:class:`blit.stream.Stylizer`), where the filter's
        choices flip from frame to frame: on a test clip it made the output
        change 2.3x as much between frames (warping-error ratio 2.48 -> 5.60
        without the temporal filter, 0.37 -> 0.59 with it).
    """

    voting: int = 1
    background: str = "keep"
    threshold: float = 50.0
    background_threshold: float = 20.0
    levels: int = 7
    denoise: bool | None = None

    def __post_init__(self):
        if self.background not in ("keep", "stylize"):
            raise ValueError(f"background: expected 'keep' or 'stylize', got {self.background!r}")
        if not _whole(self.voting) or not 0 <= self.voting <= 4:
            raise ValueError(f"voting: expected a whole radius 0..4, got {self.voting!r}")
        if not _whole(self.levels) or not 1 <= self.levels <= 12:
            raise ValueError(f"levels: expected a whole number 1..12, got {self.levels!r}")
        for name in ("threshold", "background_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a finite number at least 0, got {value!r}")
        if self.denoise not in (None, True, False):
            raise ValueError(f"denoise: expected None, True or False, got {self.denoise!r}")


def _whole(value):
    """Whether ``value`` is an integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class _Timer:
    """Adds the wall time of each stage into a dict (milliseconds)."""

    def __init__(self, sink):
        self.sink = sink

    @contextmanager
    def __call__(self, stage):
        if self.sink is None:
            yield
            return
        t0 = time.perf_counter()
        yield
        self.sink[stage] = self.sink.get(stage, 0.0) + (time.perf_counter() - t0) * 1e3


def face_width(landmarks):
    """The jaw's width (landmarks 0 to 16) in pixels, at least 1: which of
    several faces is the largest (painted last, on top)."""
    return max(float(np.hypot(*(landmarks[16] - landmarks[0]))), 1.0)


def stylize_frame(style, frame, landmarks, jitter, options=StylizeOptions(), *, labels=None,
                  times=None, buffers=None):
    """Stylize one frame whose faces' 68 landmarks are known.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    frame : (H, W, 3) uint8 ndarray, BGR
    landmarks : (68, 2) float32 ndarray, or a list of them
        Target landmarks (x, y) in frame pixels: of one face, or of each
        face to paint. Heads are painted from the narrowest face to the
        widest (:func:`face_width`), the widest on top. With
        ``background="stylize"`` the background follows the widest face,
        whose head takes its box of the frame's positional guide (no seam);
        every other head is looked up on its own guide, as with the
        background kept (as :class:`blit.stream.Stylizer` paints a frame).
    jitter : (L, J, J, 2) float32 ndarray
        Seed jitter, :func:`blit.styleblit.make_jitter`.
    options : StylizeOptions
    labels : (L, H, W) uint8 ndarray, optional
        :func:`blit.styleblit.seed_labels` for this frame size and jitter; a
        stream computes them once and saves the nearest-seed search per pixel.
    times : dict, optional
        Receives per-stage milliseconds (keys of ``STAGES``), summed over
        the faces.
    buffers : guides.buffers.Buffers, optional
        Where to take the work arrays from, for a caller that stylizes frame
        after frame (``styleblit bench``): then only the returned image is
        allocated. Default: new arrays.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        The frame with the heads (and with ``background="stylize"``
        everything) painted from the exemplar; a new array.
    """
    check_style_and_options(style, options)
    frame = check_bgr_frame(frame)
    faces = [np.asarray(f, np.float32) for f in _face_list(landmarks)]
    faces.sort(key=face_width)  # (stable: equal widths keep their order)
    timer = _Timer(times)
    h, w = frame.shape[:2]
    radius = options.voting
    packed = style.packed if radius <= PACK_PAD else None
    pos = None
    out = None
    if options.background == "stylize":
        # the background: the position guide alone, warped by the widest face
        with timer("mls"):
            pos = positional_guide((h, w), faces[-1], style.landmarks,
                                   out=take(buffers, "stylize_pos", (h, w, 2), np.float32))
        with timer("lookup"):
            bg_params = LookupParams(style.params.lam_pos, 0.0, options.background_threshold,
                                     options.levels)
            nnf_bg = lookup(pos, None, style.appearance, style.table, style.app_bin, style.cell,
                            bg_params, jitter, labels=labels,
                            out=take(buffers, "stylize_nnf_bg", (h, w, 2), np.int32),
                            buffers=buffers)
        with timer("blend"):
            out = blend(style.image, nnf_bg, radius, packed=packed)  # new: the returned image
    for i, face in enumerate(faces):
        head, region = _paint_head(style, frame, face, pos if i == len(faces) - 1 else None,
                                   jitter, options, labels, timer, buffers)
        if head is None:  # (a head wholly outside the frame)
            continue
        with timer("composite"):
            # the first composite over the kept frame makes the returned image
            out = composite(frame if out is None else out, head, region, out=out)
    return frame.copy() if out is None else out


def check_style_and_options(style, options):
    """A TypeError unless ``style`` is a :class:`guides.exemplar.StyleExemplar`
    and ``options`` a :class:`StylizeOptions` (a path or an image for the
    style, a dict for the options, are common slips: the error says what
    makes one)."""
    from guides.exemplar import StyleExemplar

    if not isinstance(style, StyleExemplar):
        hint = ("; guides.exemplar.load_style(path) makes one from an image file"
                if isinstance(style, (str, bytes, os.PathLike)) else
                "; StyleExemplar.prepare(image, landmarks) makes one from an image"
                if isinstance(style, np.ndarray) else "")
        raise TypeError(f"style: expected a guides.exemplar.StyleExemplar, got "
                        f"{type(style).__name__}{hint}")
    if not isinstance(options, StylizeOptions):
        hint = "; StylizeOptions(**d) makes one from a dict" if isinstance(options, dict) else ""
        raise TypeError(f"options: expected a blit.stylize.StylizeOptions, got "
                        f"{type(options).__name__}{hint}")


def check_max_faces(max_faces):
    """``max_faces`` as an int, or a ValueError unless it is a whole number >= 1."""
    if isinstance(max_faces, bool) or int(max_faces) != max_faces or max_faces < 1:
        raise ValueError(f"max_faces: expected a whole number at least 1, got {max_faces}")
    return int(max_faces)


def _face_list(landmarks):
    """One face's (68, 2) landmarks (an array, or nested lists as JSON
    gives them), or a non-empty sequence of them, as a list; a ValueError
    naming ``landmarks`` for anything else or a coordinate not finite."""
    try:
        shape = np.shape(landmarks)
    except ValueError:  # (faces of different shapes: each is checked below)
        shape = None
    if shape == (68, 2):
        faces = [landmarks]
    elif isinstance(landmarks, np.ndarray) and landmarks.ndim != 3:
        raise ValueError(f"landmarks: expected (68, 2) per face, got {landmarks.shape}")
    else:
        faces = list(landmarks)
    if not faces:
        raise ValueError("landmarks: expected at least one face")
    for f in faces:
        if np.shape(f) != (68, 2):
            raise ValueError(f"landmarks: expected (68, 2) per face, got {np.shape(f)}")
        if not np.isfinite(np.asarray(f, np.float64)).all():
            raise ValueError("landmarks: expected finite coordinates")
    return faces


def _paint_head(style, frame, landmarks, pos, jitter, options, labels, timer, buffers):
    """One face's head: its box and soft mask, guides, NNF (mode-filtered
    with voting), blended; ``pos`` is the frame's positional guide where the
    background follows this face (its box of it is the head's guide), else
    None (the head's own guide). Returns (head image, HeadRegion); the head
    image is a work array (``buffers``), to composite before the next face,
    and None when the head lies wholly outside the frame."""
    radius = options.voting
    head_params = LookupParams(style.params.lam_pos, style.params.lam_app, options.threshold,
                               options.levels)
    with timer("mask"):
        region = head_region(frame.shape, landmarks, margin=radius, buffers=buffers)
    x0, y0, x1, y1 = region.box
    if x1 <= x0 or y1 <= y0:
        return None, region
    with timer("mls"):
        if pos is not None:
            pos_head = pos[y0:y1, x0:x1]
        else:
            # the guide of the head box only, in frame coordinates
            pos_head = _box_guide(region.box, landmarks, style.landmarks, buffers)
    with timer("appearance"):
        box_img = frame[y0:y1, x0:x1]
        app_head = target_appearance(box_img, style.quantiles, region.mask, buffers=buffers,
                                     out=take(buffers, "stylize_app", (y1 - y0, x1 - x0), np.float32))
    with timer("lookup"):
        # pixels whose mask would not change the composite by half a level are skipped
        active = np.greater_equal(region.mask, MIN_WEIGHT,
                                  out=take(buffers, "stylize_active", region.mask.shape, np.bool_))
        nnf = lookup(pos_head, app_head, style.appearance, style.table, style.app_bin, style.cell,
                     head_params, jitter, origin=(x0, y0), active=active, labels=labels,
                     out=take(buffers, "stylize_nnf", (y1 - y0, x1 - x0, 2), np.int32),
                     buffers=buffers)
    if options.denoise is not False and radius > 0:  # (None: on, for a still)
        with timer("denoise"):
            nnf = denoise_nnf(nnf, radius, style.image.shape[:2], buffers=buffers,
                              out=take(buffers, "stylize_denoised", nnf.shape, np.int32))
    with timer("blend"):
        packed = style.packed if radius <= PACK_PAD else None
        head = blend(style.image, nnf, radius, packed=packed,
                     out=take(buffers, "stylize_head", (y1 - y0, x1 - x0, 3), np.uint8))
    return head, region


def _box_guide(box, target_landmarks, style_landmarks, buffers=None):
    """Positional guide on a box of the frame (frame coordinates)."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return np.zeros((max(y1 - y0, 0), max(x1 - x0, 0), 2), np.float32)
    shifted = np.asarray(target_landmarks, np.float32) - np.array([x0, y0], np.float32)
    return positional_guide((y1 - y0, x1 - x0), shifted, style_landmarks,
                            out=take(buffers, "stylize_pos_box", (y1 - y0, x1 - x0, 2), np.float32))


def paint_scale(style, landmarks):
    """The scale at which :func:`stylize_image` paints a photo: 1, or, when
    its widest face is more than :data:`MAX_FACE_RATIO` times as wide as
    the exemplar's (jaw, :func:`face_width`), the scale that makes it as
    wide.

    The lookup copies the exemplar's strokes at their size in pixels. On a
    face much larger than the exemplar's (a phone's 12-48 megapixel photo)
    they would be small specks, and its patches small (the positional guide
    changes less than a pixel per pixel, and a copied patch drifts from it),
    so the photo is painted smaller and the painting enlarged: the strokes
    keep their size against the face, as in the exemplar."""
    widest = max(face_width(np.asarray(f, np.float32)) for f in _face_list(landmarks))
    ratio = widest / face_width(np.asarray(style.landmarks, np.float32))
    return 1.0 / ratio if ratio > MAX_FACE_RATIO else 1.0


def scaled_shape(shape, scale):
    """(height, width) of an image of ``shape`` resized by ``scale`` (at
    least one pixel each way)."""
    h, w = shape[:2]
    return max(1, round(h * scale)), max(1, round(w * scale))


def rescale_points(points, fx, fy):
    """Points (x, y) of an image, float32, in that image resized by ``fx``
    across and ``fy`` down (as ``cv2.resize`` samples: pixel centres at
    integers, ``x' + 0.5 = (x + 0.5) fx``)."""
    return (np.asarray(points, np.float32) + 0.5) * np.float32([fx, fy]) - 0.5


def stylize_image(style, image, *, landmarks=None, options=StylizeOptions(), jitter=None,
                  name="target", max_faces=1, native_scale=False, times=None, buffers=None):
    """Stylize a still photo: detect its faces, then :func:`stylize_frame`,
    at the scale :func:`paint_scale` says.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    image : (H, W, 3) uint8 ndarray, BGR
    landmarks : (68, 2) float32 ndarray, or a list of them, optional
        Skip detection and paint these faces.
    options : StylizeOptions
    jitter : ndarray, optional
        Default: ``make_jitter(0, levels=options.levels)``.
    name : str
        How to name the image in the no-face error.
    max_faces : int
        Paint up to this many of the faces found, the largest first
        (default 1: the largest face only).
    native_scale : bool
        Paint at the photo's own scale whatever its faces' size (the
        exemplar's strokes then keep their size in pixels).
    times : dict, optional
        Receives per-stage milliseconds, as :func:`stylize_frame`'s (the
        resizing of a photo painted at another scale counts as "composite").
    buffers : guides.buffers.Buffers, optional
        Work arrays, as :func:`stylize_frame` takes them.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        The photo's size. Painted at a smaller scale, the heads (with
        ``background="stylize"``, the whole frame) are the painting enlarged
        (bicubic); with the background kept, the rest of the photo is its
        own pixels.

    Raises
    ------
    NoFaceError
        When no face is found.
    """
    check_style_and_options(style, options)
    max_faces = check_max_faces(max_faces)
    image = check_bgr_frame(image, "image")
    if landmarks is None:
        from guides.landmarks import detect_faces

        landmarks = detect_faces(image, max_faces)
        if not landmarks:
            raise NoFaceError(f"{name}: no face found")
    else:
        landmarks = _face_list(landmarks)
    if jitter is None:
        jitter = make_jitter(0, levels=options.levels)
    scale = 1.0 if native_scale else paint_scale(style, landmarks)
    if scale == 1.0:
        return stylize_frame(style, image, landmarks, jitter, options, times=times, buffers=buffers)
    return _stylize_scaled(style, image, _face_list(landmarks), jitter, options, scale, times,
                           buffers)


def _stylize_scaled(style, image, faces, jitter, options, scale, times, buffers):
    """:func:`stylize_frame` on the photo resized by ``scale`` (< 1), the
    painting enlarged back; with the background kept, composited into the
    photo itself through each head's mask at full size."""
    import cv2

    timer = _Timer(times)
    h, w = image.shape[:2]
    sh, sw = scaled_shape(image.shape, scale)
    with timer("composite"):
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    small_faces = [rescale_points(f, sw / w, sh / h) for f in faces]
    painted = stylize_frame(style, small, small_faces, jitter, options, times=times, buffers=buffers)
    with timer("composite"):
        painted = cv2.resize(painted, (w, h), interpolation=cv2.INTER_CUBIC)
        if options.background == "stylize":
            return painted
        out = image.copy()
        for face in sorted((np.asarray(f, np.float32) for f in faces), key=face_width):
            region = head_region(image.shape, face)
            x0, y0, x1, y1 = region.box
            composite(out, painted[y0:y1, x0:x1], region, out=out)
    return out
