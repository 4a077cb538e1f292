"""``styleblit eval``: quality, temporal stability and speed of a stylized photo or video.

One code path measures our stylization and, optionally, another method's
output of the same input (FaceBlit's reference renders, a GAN, ...) on the
same frames:

* temporal stability ratio (videos): warping error of the output over that of
  the input, with DIS flow from the input frames, inside the head region
  (:class:`blit.metrics.WarpingErrorMeter`);
* patch fidelity to the exemplar: mean distance of sampled 5x5 output patches
  to their nearest exemplar patch inside the head mask, the same samples for
  every method, and for the input frame itself as a baseline
  (:func:`blit.metrics.patch_distance`; a few frames of a video);
* structure: mediapipe landmarks on the output against those on the input,
  normalised by the inter-ocular distance, and the fraction of frames where
  no face is found in the output (:func:`blit.metrics.landmark_error`); a
  face upside down or lying on its side is found as ``styleblit image``
  finds it (:func:`guides.landmarks.face_turns`, on each input frame; its
  outputs are looked at turned as it is);
* speed of our run, per stage (:class:`blit.metrics.StageTimer`);
* agreement of ours with the other output, PSNR and SSIM inside the head mask.

``reference_step`` aligns an output rendered at a lower frame rate: its frame
i belongs to input frame ``reference_step * i`` (FaceBlit's reference video
has every second frame, step 2). All comparative numbers are then measured on
those input frames only, for every method; our own stylization still runs on
every frame (tracking and speed as in real use).

Conventions: frames are (H, W, 3) uint8 BGR; landmarks (68, 2) float32 (x, y)
pixels in the dlib order.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from blit.cli import (_add_style_args, add_stylize_args, load_style_from_args, number,
                      options_from_args, register)
from blit.metrics import (StageTimer, WarpingErrorMeter, landmark_error, patch_distances, psnr,
                          ssim)
from guides.io import VIDEO_FILE_EXTENSIONS as VIDEO_EXTENSIONS
from guides.io import InputError, check_readable, read_image, write_atomic

__all__ = ["VIDEO_EXTENSIONS", "contact_sheet", "evaluate", "evaluate_frames", "face_mask",
           "format_report", "is_video", "plot_report", "read_frames", "frame_count",
           "FrameStylizer"]

#: Frames of our run left out of the speed summary (JIT compilation, tracker start-up).
WARMUP_FRAMES = 3


# ---------------------------------------------------------------------------
# frame I/O
# ---------------------------------------------------------------------------

def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` is read as a video: by its ending
    (:data:`VIDEO_EXTENSIONS`), a folder of frames (its images in name
    order, as ``styleblit video`` reads and writes them), or a file of
    another ending that is not an image by its first bytes (as ``styleblit
    video`` takes it)."""
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(VIDEO_EXTENSIONS) or os.path.isdir(path):
        return True
    from blit.video import IMAGE_EXTENSIONS

    return (not lower.endswith(IMAGE_EXTENSIONS) and os.path.isfile(path)
            and not cv2.haveImageReader(path))


def _frame_files(path: str) -> list:
    from blit.video import image_files

    return image_files(path, what="frames")


def _open_video(path: str) -> cv2.VideoCapture:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, expected a video or image file")
    check_readable(path)
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise InputError(f"{path}: not a video OpenCV can decode")
    # upright, as `styleblit video` reads it (a phone's display matrix; off by
    # default in OpenCV's FFmpeg reader, which gave eval its frames sideways)
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def frame_rate(path: str | os.PathLike) -> float | None:
    """A video file's frame rate as its container states it; None for a
    folder of frames or a rate OpenCV does not know."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return None
    cap = _open_video(path)
    rate = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return float(rate) if rate and math.isfinite(rate) and rate > 0 else None


#: Frame rates within this ratio of each other are taken as the same (29.97
#: and 30 fps, a container's rounding).
RATE_TOLERANCE = 0.02


def _step_of_rates(input_rate, other_rate):
    """The whole k with ``other_rate * k`` the input's rate (within
    :data:`RATE_TOLERANCE`), or None when there is none."""
    ratio = input_rate / other_rate
    k = round(ratio)
    return k if k >= 1 and abs(ratio - k) <= RATE_TOLERANCE * k else None


def frame_count(path: str | os.PathLike) -> int:
    """Number of frames of a video as its container states it (1 for an image).

    May be approximate for some containers; :func:`read_frames` yields what
    actually decodes.
    """
    path = os.fspath(path)
    if not is_video(path):
        return 1
    if os.path.isdir(path):
        return len(_frame_files(path))
    cap = _open_video(path)
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def read_frames(path: str | os.PathLike, *, limit: int | None = None) -> Iterator[np.ndarray]:
    """Frames of a video (OpenCV's FFmpeg reader), or the one frame of an image.

    Parameters
    ----------
    path : str or os.PathLike
        A video (ending in one of :data:`VIDEO_EXTENSIONS`) or an image.
    limit : int, optional
        Stop after this many frames.

    Yields
    ------
    (H, W, 3) uint8 ndarray
        BGR frames, in order.

    Raises
    ------
    InputError
        Missing or undecodable file, or a video without a single frame.
    """
    path = os.fspath(path)
    if limit is not None and limit < 1:
        return
    if not is_video(path):
        yield read_image(path)
        return
    if os.path.isdir(path):
        # as `video` reads a folder: a frame of another size than the first is
        # stretched to it, with one warning (it was an error once the frames
        # before it were painted, naming no file)
        from blit.video import _FolderSource

        files = _frame_files(path)
        source = _FolderSource(path, 30.0)  # (its frame rate is not read here)
        for item in source.read_range(0, len(files) if limit is None else min(limit, len(files))):
            yield item[1]
        return
    cap = _open_video(path)
    try:
        n = 0
        while limit is None or n < limit:
            ok, frame = cap.read()
            if not ok:
                break
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            yield np.ascontiguousarray(frame)
            n += 1
        if n == 0:
            raise InputError(f"{path}: no frame could be decoded")
    finally:
        cap.release()


# ---------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------

def face_mask(shape, landmarks, *, region: str = "head") -> np.ndarray:
    """Where the face metrics are measured.

    Parameters
    ----------
    shape : tuple
        Frame shape, (H, W) or (H, W, 3).
    landmarks : (68, 2) float32 ndarray
        Landmarks of the INPUT frame.
    region : {"head", "face"}
        ``"head"``: the soft head mask the stylizer composites with
        (:func:`guides.mask.head_region`, jaw line plus forehead up to the
        hairline); ``"face"``: the convex hull of the jaw and brow landmarks,
        the part every face stylizer paints.

    Returns
    -------
    (H, W) float32 ndarray
        Weights in [0, 1] (hard 0/1 for ``"face"``).
    """
    h, w = int(shape[0]), int(shape[1])
    if region == "head":
        from guides.mask import head_region

        return head_region((h, w), np.asarray(landmarks, np.float32)).full((h, w))
    if region == "face":
        mask = np.zeros((h, w), np.float32)
        hull = cv2.convexHull(np.round(np.asarray(landmarks)[:27] * 16).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_8, shift=4)
        return mask
    raise ValueError(f"region: expected 'head' or 'face', got {region!r}")


# ---------------------------------------------------------------------------
# our stylizer, one frame at a time
# ---------------------------------------------------------------------------

class FrameStylizer:
    """Stylize video frames in order: tracked landmarks + :func:`blit.stylize.stylize_frame`.

    The simplest faithful video loop: mediapipe in tracking mode, the last
    good landmarks reused when a frame has no face (the frame is returned
    unchanged until a first face is seen, and after a cut or a frame of
    another size until the next: :func:`guides.landmarks.is_cut`), one
    fixed jitter table.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    options : blit.stylize.StylizeOptions
    seed : int
        Seed of the jitter table (:func:`blit.styleblit.make_jitter`).
    native_scale : bool
        For a frame given its landmarks (a still): paint it at its own scale
        (:func:`blit.stylize.stylize_image`); video frames always are.

    Attributes
    ----------
    painting_scale : float or None
        The scale the last frame was painted at (None before a face).
    """

    def __init__(self, style, *, options=None, seed: int = 0, native_scale: bool = False):
        from blit.styleblit import make_jitter
        from blit.stylize import StylizeOptions
        from guides.buffers import Buffers
        from guides.landmarks import FaceLandmarker

        self.style = style
        self.options = options if options is not None else StylizeOptions()
        self.native_scale = bool(native_scale)
        self.jitter = make_jitter(seed, levels=self.options.levels)
        self._make_landmarker = lambda: FaceLandmarker(static_image_mode=False, tiles=True)
        self.landmarker = None  # created on the first frame without given landmarks
        self.landmarks = None
        self.painting_scale = None
        self._buffers = Buffers()  # work arrays reused from frame to frame
        self._sample = None  # the last frame's cut_sample: a cut forgets the landmarks
        self._shape = None  # the last frame's shape: so does another size

    def __call__(self, frame: np.ndarray, *, timer: StageTimer | None = None,
                 landmarks: np.ndarray | None = None) -> np.ndarray:
        """Stylize the next frame; per-stage milliseconds go to ``timer``.

        ``landmarks`` skips the tracker (used for still images, whose
        landmarks come from static detection); such a frame is painted as
        ``styleblit image`` paints a photo (:func:`blit.stylize.stylize_image`:
        a face much larger than the exemplar's at the exemplar's scale).
        """
        from blit.stylize import paint_scale, stylize_frame, stylize_image

        from guides.landmarks import cut_sample, is_cut

        timer = timer if timer is not None else StageTimer()
        if landmarks is None:
            sample = cut_sample(frame)
            # (another size is a cut too: the samples of frames under 16 px
            # apart in size are of one size)
            if is_cut(self._sample, sample) or frame.shape != self._shape:
                self.landmarks = None
            self._sample, self._shape = sample, frame.shape
            if self.landmarker is None:
                self.landmarker = self._make_landmarker()
            with timer("landmarks"):
                faces = self.landmarker(frame)
            if faces:
                self.landmarks = faces[0]
        else:
            self.landmarks = np.asarray(landmarks, np.float32)
        if self.landmarks is None:
            return frame.copy()
        times: dict = {}
        self.painting_scale = 1.0
        if landmarks is not None:
            if not self.native_scale:
                self.painting_scale = paint_scale(self.style, self.landmarks)
            out = stylize_image(self.style, frame, landmarks=self.landmarks, options=self.options,
                                jitter=self.jitter, native_scale=self.native_scale,
                                times=times, buffers=self._buffers)
        else:
            out = stylize_frame(self.style, frame, self.landmarks, self.jitter, self.options,
                                times=times, buffers=self._buffers)
        for stage, ms in times.items():
            timer.record(stage, ms)
        return out

    @property
    def painted(self):
        """The landmarks of the face painted on the last frame, in a list (or none)."""
        return [] if self.landmarks is None else [self.landmarks]

    def close(self) -> None:
        if self.landmarker is not None:
            self.landmarker.close()
            self.landmarker = None


class _StreamStylizer:
    """:class:`blit.stream.Stylizer` (temporally coherent video path) with stage times."""

    def __init__(self, stylizer):
        self.stylizer = stylizer

    @property
    def painting_scale(self):
        return self.stylizer.painting_scale

    @property
    def painted(self):
        """The landmarks of the faces painted on the last frame, the main one last."""
        return self.stylizer.last_landmarks

    def __call__(self, frame, *, timer):
        out = self.stylizer(frame)
        for stage, ms in self.stylizer.last_times.items():
            if stage != "total":
                timer.record(stage, ms)
        return out

    def close(self):
        self.stylizer.close()


def _video_stylizer(style, options, seed, kind, frame_rate, native_scale=False):
    """The stylizer for a video, and the name it is reported under."""
    if kind not in ("auto", "stream", "frame"):
        raise ValueError(f"stylizer: expected 'auto', 'stream' or 'frame', got {kind!r}")
    if kind in ("auto", "stream"):
        try:
            from blit.stream import Stylizer
        except ImportError:
            if kind == "stream":
                raise
        else:
            extra = {"fps": float(frame_rate)} if frame_rate else {}
            # scaled as `styleblit video` paints (a face much larger than the exemplar's)
            return _StreamStylizer(Stylizer(style, options=options, jitter_seed=seed,
                                            scale=1.0 if native_scale else "auto", **extra)), \
                "stream (blit.stream.Stylizer)"
    return FrameStylizer(style, options=options, seed=seed), "frame (tracked landmarks + stylize_frame)"


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------

def _masked_ssim(a, b, mask):
    """:func:`blit.metrics.ssim` inside ``mask``, computed on the mask's box only.

    The box is padded by the SSIM window radius plus the border strip, so the
    result equals the full-frame masked SSIM.
    """
    ys, xs = np.nonzero(mask > 0)
    if ys.size == 0:
        return math.nan
    pad = 12
    y0, y1 = max(0, ys.min() - pad), min(mask.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(mask.shape[1], xs.max() + pad + 1)
    if y1 - y0 < 11 or x1 - x0 < 11:
        return math.nan
    try:
        return ssim(a[y0:y1, x0:x1], b[y0:y1, x0:x1], mask=mask[y0:y1, x0:x1])
    except ValueError:  # no weight left inside the border strip
        return math.nan


def _summary(values: Sequence[float]) -> dict:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], np.float64)
    if v.size == 0:
        return {"mean": math.nan, "median": math.nan, "p90": math.nan, "n": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)),
            "p90": float(np.percentile(v, 90)), "n": int(v.size)}


class _Method:
    """Running measurements of one output sequence (ours or a reference)."""

    def __init__(self, name: str, stability: bool):
        self.name = name
        self.meter = WarpingErrorMeter() if stability else None
        self.landmark_errors: list[float] = []
        self.landmark_at: list[int] = []  # the input frame of each landmark error
        self.no_face_at: list[int] = []  # the input frames whose output showed no face
        self.no_face = 0
        self.faces_expected = 0
        self.patch: list[float] = []
        self.patch_samples: list[np.ndarray] = []  # each frame's sampled distances
        self.patch_frames: list[int] = []

    def report(self) -> dict:
        stab = None
        if self.meter is not None and self.meter.result()["frames"] >= 2:
            stab = self.meter.result()
        lm = _summary(self.landmark_errors)
        lm.update(frames=self.faces_expected, no_face=self.no_face,
                  no_face_fraction=(self.no_face / self.faces_expected) if self.faces_expected else math.nan,
                  per_frame=[float(x) for x in self.landmark_errors],
                  per_frame_at=list(self.landmark_at), no_face_at=list(self.no_face_at))
        return {"stability": stab,
                "patch_distance": {"mean": float(np.mean(self.patch)) if self.patch else math.nan,
                                   "se": _standard_error(self.patch_samples),
                                   "per_frame": [float(x) for x in self.patch],
                                   "frames": list(self.patch_frames)},
                "landmarks": lm}


def evaluate_frames(style, inputs: Iterable[np.ndarray], *,
                    outputs: Iterable[np.ndarray] | None = None,
                    reference: Iterable[np.ndarray] | None = None,
                    reference_step: int = 1,
                    options=None,
                    still: bool | None = None,
                    length: int | None = None,
                    max_frames: int | None = None,
                    patch_frames: int = 4,
                    patch_samples: int = 2000,
                    patch_size: int = 5,
                    patch_region: str = "head",
                    full_rate: bool = False,
                    stylizer: str = "auto",
                    frame_rate: float | None = None,
                    native_scale: bool = False,
                    timing_repeats: int = 5,
                    seed: int = 0,
                    progress: Callable[[int, int | None], None] | None = None,
                    on_sample: Callable[[int, dict], None] | None = None,
                    names: dict | None = None) -> dict:
    """Measure our stylization (or given outputs) and a reference on the same frames.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
        The exemplar: the source of our stylization and the target of the
        patch-fidelity measure.
    inputs : iterable of (H, W, 3) uint8 ndarray
        Input frames, BGR, in order (one frame for a still image).
    outputs : iterable of (H, W, 3) uint8 ndarray, optional
        Our stylized frames, one per input frame; None runs our stylizer
        (see ``stylizer``) and times it.
    reference : iterable of (H, W, 3) uint8 ndarray, optional
        Another method's output; its frame i belongs to input frame
        ``reference_step * i``.
    reference_step : int
        See above; FaceBlit's half-rate reference video needs 2.
    options : blit.stylize.StylizeOptions
    still : bool, optional
        Treat the input as a still photo (static landmark detection, no
        stability); default: when it has exactly one frame.
    length : int, optional
        Number of input frames, if ``inputs`` has no ``len``; used to spread
        the patch-fidelity frames over the video.
    max_frames : int, optional
        Stop after this many input frames.
    patch_frames : int
        Frames (among those compared) on which patch fidelity is measured,
        evenly spread.
    patch_samples, patch_size : int
        :func:`blit.metrics.patch_distance` settings (the seed is ``seed``),
        identical for every method so that the same patches are compared.
    patch_region : {"head", "face"}
        Mask of the patch-fidelity and agreement measures, see :func:`face_mask`.
        Stability is always measured in the head mask.
    full_rate : bool
        With ``reference_step > 1``, also measure our stability over every
        input frame (one more optical-flow pass over the whole video).
    stylizer : {"auto", "stream", "frame"}
        Our video path: ``"stream"`` is :class:`blit.stream.Stylizer`
        (smoothed landmarks, temporally coherent patches), ``"frame"`` is
        :class:`FrameStylizer` (every frame looked up afresh, as FaceBlit
        does); ``"auto"`` takes the stream when it is installed. Stills always
        use :func:`blit.stylize.stylize_frame` on statically detected landmarks.
    frame_rate : float, optional
        Frames per second of the input, for the stream's smoothing filters.
    native_scale : bool
        Paint at the input's own scale: by default a face much larger than
        the exemplar's is painted at the exemplar's scale, as ``styleblit
        image`` and ``video`` paint it (the stream's ``scale="auto"``; the
        "frame" path of a video is never scaled).
    timing_repeats : int
        Still images only: timed runs after one warm-up run.
    seed : int
        Jitter table of our run and patch sampling.
    progress : callable(done, total), optional
        Called after every input frame.
    on_sample : callable(index, frames), optional
        Called on each patch-fidelity frame with a dict of frames ``input``,
        ``ours``, ``reference`` (missing without one) and the input's
        ``landmarks``, e.g. for contact sheets.
    names : dict, optional
        The files the ``input``, ``output`` and ``reference`` frames come
        from, named first in an error about one of their frames.

    Returns
    -------
    dict
        JSON-ready (NaN where undefined): ``kind``, ``frames``,
        ``compared_frames``, ``reference_step``, ``methods`` (``ours``,
        ``reference`` and ``input`` with ``stability``, ``patch_distance``,
        ``landmarks``; ``ours`` also ``speed`` when we stylized),
        ``agreement`` (PSNR and SSIM of ours vs the reference) and
        ``settings``.
    """
    from blit.stylize import StylizeOptions
    from guides.landmarks import FaceLandmarker, _turned, _unturn, face_turns

    options = options if options is not None else StylizeOptions()
    if int(reference_step) != reference_step or reference_step < 1:
        raise ValueError(f"reference_step: expected an integer >= 1, got {reference_step!r}")
    if patch_region not in ("head", "face"):
        raise ValueError(f"patch_region: expected 'head' or 'face', got {patch_region!r}")
    step = int(reference_step)
    if length is None and hasattr(inputs, "__len__"):
        length = len(inputs)
    if max_frames is not None:
        length = max_frames if length is None else min(length, max_frames)
    if still is None:
        still = length == 1
    step = 1 if still else step
    has_ref = reference is not None

    def where(kind):  # "input frame", or "FILE: input frame" with names
        name = (names or {}).get(kind)
        return f"{name}: {kind} frame" if name else f"{kind} frame"

    scaled = set()  # the outputs whose frames were scaled to the input's size (said once)

    # Which compared frames get the (slow) patch-fidelity measure.
    if patch_frames <= 0:
        patch_at = set()  # (none, whether the length is known or not: a still's is not)
    elif length is not None:
        n_compared = -(-length // step)
        if has_ref and hasattr(reference, "__len__"):
            n_compared = min(n_compared, len(reference))
        k = max(1, min(int(patch_frames), n_compared))
        patch_at = set(np.round(np.linspace(0, n_compared - 1, k)).astype(int).tolist())
    else:
        patch_at = None  # every 30th compared frame

    ours = _Method("ours", stability=not still)
    ours_full = _Method("ours_full_rate", stability=True) if (full_rate and step > 1 and not still) else None
    ref = _Method("reference", stability=not still) if has_ref else None
    base = _Method("input", stability=False)
    timer = StageTimer()
    runner, runner_name = None, None
    if outputs is None:
        if still:
            runner, runner_name = FrameStylizer(style, options=options, seed=seed,
                                                native_scale=native_scale), "stylize_frame"
        else:
            runner, runner_name = _video_stylizer(style, options, seed, stylizer, frame_rate,
                                                  native_scale)
    out_iter = iter(outputs) if outputs is not None else None
    ref_iter = iter(reference) if has_ref else None
    psnr_head: list[float] = []
    psnr_frame: list[float] = []
    ssim_head: list[float] = []
    # (tiles: a face too small for mediapipe's detector is found as `image` finds it;
    # up to 4 faces, largest first: the input's largest face is measured, against the
    # output's face nearest it, not whichever the detector ranks first)
    static = FaceLandmarker(static_image_mode=True, tiles=True, max_faces=4)

    def faces_of(image, turn):
        # (the faces of `image` turned by `turn` quarter turns, in its own pixels:
        # a face upside down or lying found as itself, as `image` finds it)
        if not turn:
            return static(image, wanted=1)
        return [_unturn(f, image.shape, turn) for f in static(_turned(image, turn), wanted=1)]

    shape = None
    n = 0
    compared = 0
    ref_ended = False
    try:
        for frame in inputs:
            if max_frames is not None and n >= max_frames:
                break
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise InputError(f"{where('input')} {n}: expected (H, W, 3) uint8, got {frame.shape} "
                                 f"{frame.dtype}")
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise InputError(f"{where('input')} {n}: expected shape {shape}, got {frame.shape}")
            # the input's turn serves its outputs too: their faces are painted where
            # and as its face is (four detections a frame, not four per image)
            turn = face_turns(frame)
            faces = faces_of(frame, turn)
            lm_in = faces[0] if faces else None
            head = face_mask(shape, lm_in, region="head") if lm_in is not None else np.zeros(shape[:2], np.float32)

            # --- our output
            if runner is not None:
                if still:
                    if lm_in is None:
                        raise InputError(f"{where('input')} {n}: no face found")
                    for _ in range(1 + max(1, int(timing_repeats))):
                        with timer.frame():
                            with timer("landmarks"):  # (as `image` finds them)
                                faces_of(frame, face_turns(frame))
                            out = runner(frame, timer=timer, landmarks=lm_in)
                else:
                    with timer.frame():
                        out = runner(frame, timer=timer)
                    # of several faces, the one painted is measured (eval paints one;
                    # which is the largest may change from frame to frame)
                    painted = runner.painted
                    if len(faces) > 1 and painted:
                        lm_in = min(faces, key=lambda f: landmark_error(painted[-1], f))
                        head = face_mask(shape, lm_in, region="head")
            else:
                out = next(out_iter, None)
                if out is None:
                    break  # our output is shorter than the input: stop there
                out = _check_frame(out, shape, f"{where('output')} {n}", scaled, "output")

            # --- the reference frame of this input frame, if any
            ref_frame = None
            aligned = n % step == 0
            if has_ref and aligned and not ref_ended:
                ref_frame = next(ref_iter, None)
                if ref_frame is None:
                    ref_ended = True
                else:
                    ref_frame = _check_frame(ref_frame, shape, f"{where('reference')} {n // step}",
                                             scaled, "reference")
            if has_ref and ref_ended:
                if runner is None:
                    break
                aligned = False  # keep stylizing for the speed, compare nothing more
            if ours_full is not None:
                ours_full.meter.update(out, frame, head)

            if aligned:
                idx = compared
                compared += 1
                if ours.meter is not None:
                    ours.meter.update(out, frame, head)
                if ref is not None and ref.meter is not None:
                    ref.meter.update(ref_frame, frame, head)
                if lm_in is not None:
                    region = head if patch_region == "head" else face_mask(shape, lm_in, region="face")
                    methods = [(ours, out)] + ([(ref, ref_frame)] if ref is not None else [])
                    for m, img in methods:
                        m.faces_expected += 1
                        found = faces_of(img, turn)
                        if found:
                            m.landmark_errors.append(min(landmark_error(lm_in, f) for f in found))
                            m.landmark_at.append(n)
                        else:
                            m.no_face += 1
                            m.no_face_at.append(n)
                    take = (idx in patch_at) if patch_at is not None else idx % 30 == 0
                    if take:
                        for m, img in methods + [(base, frame)]:
                            d = patch_distances(img, style.image, mask=region >= 0.5,
                                                patch=patch_size, samples=patch_samples, seed=seed)
                            m.patch.append(float(d.mean()) if d.size else math.nan)
                            m.patch_samples.append(d)
                            m.patch_frames.append(n)
                        if on_sample is not None:
                            sample = {"input": frame, "ours": out, "landmarks": lm_in}
                            if ref is not None:
                                sample["reference"] = ref_frame
                            on_sample(n, sample)
                    if ref is not None:
                        psnr_head.append(psnr(out, ref_frame, mask=region))
                        ssim_head.append(_masked_ssim(out, ref_frame, region))
                if ref is not None:
                    psnr_frame.append(psnr(out, ref_frame))
            n += 1
            if progress is not None:
                progress(n, length)
    finally:
        static.close()
        if runner is not None:
            runner.close()
    if n == 0:
        raise InputError("input: no frame to evaluate")

    methods = {"ours": ours.report()}
    if runner is not None:
        summary = timer.summary(skip=1 if still else min(WARMUP_FRAMES, max(0, n - 1)))
        methods["ours"]["speed"] = summary
    else:
        methods["ours"]["speed"] = None
    if ours_full is not None:
        methods["ours"]["stability_full_rate"] = ours_full.report()["stability"]
    if ref is not None:
        methods["reference"] = ref.report()
    methods["input"] = {"patch_distance": base.report()["patch_distance"]}
    agreement = None
    if ref is not None:
        agreement = {**_psnr_summary(psnr_head, "psnr"), "ssim": _finite_mean(ssim_head),
                     **_psnr_summary(psnr_frame, "psnr_frame"), "frames": len(psnr_frame),
                     "head_frames": len(psnr_head), "mask": patch_region}
    return {
        "units": UNITS,
        "kind": "image" if still else "video",
        "frames": n,
        "compared_frames": compared,
        "reference_step": step,
        "reference_frames": (compared if has_ref else 0),
        "methods": methods,
        "agreement": agreement,
        "settings": {"options": _options_dict(options, runner_name),
                     "patch_samples": int(patch_samples),
                     "patch_size": int(patch_size), "patch_region": patch_region,
                     "stability_region": "head", "seed": int(seed),
                     "stylizer": runner_name or "outputs given",
                     "painting_scale": getattr(runner, "painting_scale", None),
                     "landmarks": "mediapipe FaceMesh, static mode, on input and output frames "
                                  "turned as the input's face stands upright"},
    }


#: What each number of the report means, saved with it (``units``).
UNITS = {
    "frame indices": "from 0 (patch_distance.frames, per_frame): frame_000001.png of a folder "
                     "is frame 0",
    "stability.output_error": "mean over frame pairs of the weighted mean over head pixels of "
                              "|out(t) - warp(out(t-1))|^2, colours in [0, 1] (so 0-3)",
    "stability.input_error": "the same of the input frames",
    "stability.ratio": "output_error / input_error: 1 = as steady as the input",
    "stability.measured_pairs": "frame pairs with a pixel to measure (the others have no face)",
    "patch_distance.mean": "mean over sampled 5x5 patches of the RMS difference to the nearest "
                           "exemplar patch, 0-255 (0 = copied verbatim)",
    "patch_distance.se": "standard error of that mean over the patches sampled",
    "landmarks.mean": "fraction of the inter-ocular distance (0.0356 = 3.56 %)",
    "landmarks.no_face_fraction": "of the frames with a face in the input",
    "landmarks.per_frame_at": "the input frame of each per_frame error (frames with a face "
                              "in the input and in the output)",
    "landmarks.no_face_at": "the input frames with a face whose output showed none",
    "agreement.psnr": "dB, mean over frames that differ (identical ones counted in "
                      "psnr_identical), inside the mask, over head_frames frames",
    "agreement.psnr_frame": "dB, the same over whole frames",
    "speed.fps": "frames a second of our run, landmarks included, after warm-up",
}


def _standard_error(samples):
    """Standard error of the patch distance's mean (the mean of the frames'
    means) from the frames' sampled distances: how much it moves with the
    patches sampled (another ``seed``)."""
    samples = [np.asarray(s, np.float64) for s in samples if np.size(s) > 1]
    if not samples:
        return math.nan
    # var(mean of k frame means) = sum var_i / n_i / k^2
    return float(math.sqrt(sum(s.var(ddof=1) / s.size for s in samples)) / len(samples))


def _psnr_summary(values, key):
    """``{key: mean PSNR over the frames that differ, key + "_identical":
    the frames that are the same}`` (their PSNR is infinite: in the mean it
    made the whole mean infinite, which JSON cannot hold)."""
    finite = [v for v in values if math.isfinite(v)]
    return {key: float(np.mean(finite)) if finite else math.nan,
            key + "_identical": sum(1 for v in values if v == math.inf)}


def format_psnr(agreement, key, frames):
    """A PSNR of :func:`_psnr_summary` as text: "28.17 dB", with "(1 of 20
    frames identical)" where some are, "identical" where all are."""
    same = agreement.get(key + "_identical") or 0
    value = agreement.get(key)
    if value is None or not math.isfinite(value):
        return f"identical ({same} frame{'s' if same != 1 else ''})" if same else "n/a"
    return f"{value:.2f} dB" + (f" ({same} of {frames} frames identical)" if same else "")


def _finite_mean(values):
    """Mean over finite values (inf PSNR of identical frames counts as inf)."""
    v = [x for x in values if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _options_dict(options, runner_name=None):
    """The options as a dict; ``denoise`` None (its default) as what it was for
    the stylizer that ran (``runner_name``): on for a frame stylizer, off in
    a stream; None where the outputs were given."""
    from dataclasses import asdict, is_dataclass

    out = asdict(options) if is_dataclass(options) else dict(vars(options))
    if out.get("denoise", False) is None and runner_name is not None:
        out["denoise"] = not runner_name.startswith("stream")
    return out


#: An output or reference frame of another size than the input's is scaled
#: to it when their aspect ratios differ by at most this share (a method that
#: paints at its own resolution); otherwise it is refused.
SAME_ASPECT = 0.01


def _check_frame(frame, shape, name, said=None, kind=None):
    """``frame`` (an output or reference frame) as the input's ``shape``: an
    odd size's padding dropped; another size of the same aspect ratio
    (:data:`SAME_ASPECT`) scaled, said once per ``kind`` (in the set
    ``said``); anything else an InputError naming it."""
    frame = np.asarray(frame)
    h, w = shape[:2]
    if frame.shape == (h + h % 2, w + w % 2, 3) and frame.shape != shape:
        # H.264's 4:2:0 needs even sizes: `styleblit video` pads an odd width or
        # height by one repeated row or column, which is not the input's
        frame = np.ascontiguousarray(frame[:h, :w])
    if (frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
            and frame.shape != shape and min(frame.shape[:2]) > 0
            and abs(frame.shape[1] * h / (frame.shape[0] * w) - 1.0) <= SAME_ASPECT):
        fh, fw = frame.shape[:2]
        if said is not None and kind not in said:
            said.add(kind)
            print(f"styleblit: warning: {name}: {fw}x{fh}, scaled to the input's {w}x{h} "
                  "(the same aspect ratio) to be measured", file=sys.stderr)
        interp = cv2.INTER_AREA if fw > w else cv2.INTER_CUBIC
        frame = cv2.resize(frame, (w, h), interpolation=interp)
    if frame.dtype != np.uint8 or frame.shape != shape:
        raise InputError(f"{name}: expected shape {shape} uint8 like the input, got {frame.shape} {frame.dtype}")
    return frame


def evaluate(style, input_path, *, output_path=None, reference_path=None, reference_step=None,
             max_frames=None, **kwargs) -> dict:
    """:func:`evaluate_frames` on files: an input photo or video, optional outputs.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    input_path : str
        Photo or video (see :func:`is_video`).
    output_path : str, optional
        An existing stylization of the input to measure instead of running ours.
    reference_path : str, optional
        Another method's output of the same input.
    reference_step : int, optional
        Reference frame i <-> input frame ``reference_step * i``. Default:
        the ratio of the input's frame rate to the reference's (1 where
        either is unknown, a folder of frames), said in a line when it is
        not 1.
    max_frames : int, optional
        Use at most this many input frames.
    **kwargs
        Passed to :func:`evaluate_frames`.

    Returns
    -------
    dict
        As :func:`evaluate_frames`, plus ``input``, ``output`` and
        ``reference`` (the paths).

    Raises
    ------
    InputError
        An output at another frame rate than the input (its frames would
        be paired with the wrong input frames), or a reference whose rate is
        not the input's divided by a whole number (unless ``reference_step``
        is given).
    """
    input_path = os.fspath(input_path)
    video = is_video(input_path)
    for path in (output_path, reference_path):
        if path is not None and is_video(path) != video:
            raise InputError(f"{path}: expected {'a video' if video else 'an image'} like the input "
                             f"{input_path}")
    in_rate = frame_rate(input_path) if video else None
    if in_rate and output_path is not None:
        out_rate = frame_rate(output_path)
        if out_rate and _step_of_rates(in_rate, out_rate) != 1:
            raise InputError(f"{output_path}: {out_rate:g} frames a second against the input's "
                             f"{in_rate:g}; its frames would be measured against the wrong input "
                             "frames (another method's output at a lower rate goes in --reference, "
                             "with --reference-step)")
    ref_rate = frame_rate(reference_path) if in_rate and reference_path is not None else None
    paired = _step_of_rates(in_rate, ref_rate) if ref_rate else None  # the rates' step
    if reference_step is None:
        if ref_rate and paired is None:
            raise InputError(f"{reference_path}: {ref_rate:g} frames a second against the "
                             f"input's {in_rate:g}, not a whole fraction of it: its frames "
                             "cannot be paired with the input's (give --reference-step K if "
                             "its frame i is the input's frame K*i)")
        reference_step = paired or 1
        if reference_step > 1:
            print(f"styleblit: {reference_path}: {ref_rate:g} frames a second against the "
                  f"input's {in_rate:g}: its frame i is compared with input frame "
                  f"{reference_step}*i (--reference-step {reference_step})", file=sys.stderr)
    elif ref_rate and paired != reference_step:
        print(f"styleblit: warning: {reference_path}: {ref_rate:g} frames a second against "
              f"the input's {in_rate:g}, which --reference-step {reference_step} does not "
              "match", file=sys.stderr)
    length = frame_count(input_path) if video else 1
    if video and output_path is not None:
        # measured as far as both go: the patch frames spread over those
        n_out = frame_count(output_path)
        n_in = min(length, max_frames) if max_frames else length
        if n_out and length and (n_out < n_in or n_out > length):
            print(f"styleblit: warning: {output_path}: {n_out} frames against the input's "
                  f"{length}; measured on the first {min(n_out, n_in)}", file=sys.stderr)
        if n_out:
            length = min(length, n_out) if length else n_out
    if video and kwargs.get("frame_rate") is None:
        kwargs["frame_rate"] = in_rate
    if max_frames is not None:
        length = min(length, max_frames) if length else max_frames
    reference = None
    if reference_path is not None:
        reference = read_frames(reference_path)
        if video:
            n_ref = frame_count(reference_path)
            if n_ref:
                # spread the patch frames over the frames both cover
                covered = n_ref * int(reference_step)
                if length and covered < length - int(reference_step) + 1:
                    print(f"styleblit: warning: {reference_path}: {n_ref} frames cover "
                          f"{covered} of the input's {length}; compared on those",
                          file=sys.stderr)
                length = min(length, covered) if length else covered
    outputs = read_frames(output_path) if output_path is not None else None
    report = evaluate_frames(style, read_frames(input_path, limit=max_frames), outputs=outputs,
                             reference=reference, reference_step=reference_step, still=not video,
                             length=length or None, max_frames=max_frames,
                             names={"input": input_path, "output": output_path,
                                    "reference": reference_path}, **kwargs)
    report.update(input=input_path, output=output_path, reference=reference_path)
    return report


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------

def _json_ready(x):
    """NaN and inf become None: strict JSON has neither."""
    if isinstance(x, dict):
        return {str(k): _json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_ready(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def save_json(report: dict, path: str) -> None:
    """Write ``report`` as strict JSON (NaN/inf as null), atomically
    (:func:`guides.io.write_atomic`: an :class:`InputError` naming ``path``
    when it cannot be written)."""
    text = json.dumps(_json_ready(report), indent=2, allow_nan=False) + "\n"

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomic(path, write)


#: The chart formats :func:`plot_report` writes, by the path's ending.
PLOT_EXTENSIONS = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp")


def plot_path(path: str) -> str:
    """The file a chart named ``path`` goes to: ``path`` itself, or with
    ``.png`` added when it has no ending (as matplotlib would name it); an
    :class:`InputError` for an ending not in :data:`PLOT_EXTENSIONS`, so
    that a command refuses it before any work."""
    ext = os.path.splitext(path)[1].lower()
    if not ext:
        return path + ".png"
    if ext not in PLOT_EXTENSIONS:
        raise InputError(f"{path}: cannot write a chart with extension {ext!r} "
                         f"(use {', '.join(PLOT_EXTENSIONS)})")
    return path


def _fmt(x, spec=".3f", scale=1.0, suffix=""):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x * scale:{spec}}{suffix}"


def patch_text(d):
    """A patch distance of a report as text: its mean and its standard error
    over the patches sampled ("4.47 ± 0.04")."""
    if not d:
        return "n/a"
    se = d.get("se")
    return _fmt(d.get("mean"), ".2f") + (f" ± {se:.2f}" if se is not None and math.isfinite(se) else "")


def metric_rows(report: dict) -> list[tuple[str, str, str, str]]:
    """(metric, ours, reference, input) strings, the table ``format_report`` prints."""
    m = report["methods"]
    names = ["ours"] + (["reference"] if "reference" in m else [])

    def get(name, *keys):
        v = m.get(name)
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v

    rows = []
    if report["kind"] == "video":
        rows.append(("stability ratio (1 = as steady as the input)",
                     *[_fmt(get(n, "stability", "ratio"), ".2f") for n in names]))
        if get("ours", "stability_full_rate") is not None:
            rows.append(("stability ratio, ours on every input frame",
                         _fmt(get("ours", "stability_full_rate", "ratio"), ".2f"),
                         *([""] if len(names) > 1 else [])))
    rows.append((f"patch distance to exemplar ({report['settings']['patch_region']}, 0-255)",
                 *[patch_text(get(n, "patch_distance")) for n in names]))
    rows.append(("landmark error (% inter-ocular distance)",
                 *[_fmt(get(n, "landmarks", "mean"), ".2f", 100.0, "%") for n in names]))
    rows.append(("no face found in output (% of frames with one in the input)",
                 *[_fmt(get(n, "landmarks", "no_face_fraction"), ".1f", 100.0, "%") for n in names]))
    fps = get("ours", "speed", "fps")
    rows.append(("speed (frames/s, landmarks included)", _fmt(fps, ".1f"),
                 *(["n/a"] if len(names) > 1 else [])))
    base = patch_text(get("input", "patch_distance"))
    return [r + (base if r[0].startswith("patch distance") else "",) for r in rows]


def agreement_line(title, ag):
    """The agreement's line of :func:`format_report` (and of ``compare``)."""
    heads, frames = ag.get("head_frames", ag["frames"]), ag["frames"]
    where = (f"{ag['mask']} mask" + (f", {heads} of {frames} frames with a face"
                                      if heads != frames else ""))
    whole = format_psnr(ag, "psnr_frame", frames)
    if not whole.startswith("identical"):  # (that one says the frames' number)
        whole += f" ({frames} frame{'s' if frames != 1 else ''})"
    return (f"{title} ({where}): PSNR {format_psnr(ag, 'psnr', heads)}, SSIM "
            f"{_fmt(ag['ssim'], '.3f')}; whole frame PSNR {whole}")


def format_report(report: dict) -> str:
    """A plain-text table of the report."""
    has_ref = "reference" in report["methods"]
    head = ("metric", "ours") + (("reference",) if has_ref else ()) + ("input",)
    rows = [head] + metric_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    n = report["frames"]
    info = f"{report['kind']}, {n} frame{'s' if n != 1 else ''}"
    if has_ref and report["kind"] == "video":
        k = report["reference_step"]
        info += (f", {report['compared_frames']} compared (reference frame i = input frame "
                 f"{f'{k}i' if k != 1 else 'i'})")
    if report["settings"].get("stylizer") and report["kind"] == "video":
        info += f"; ours: {report['settings']['stylizer']}"
    scale = report["settings"].get("painting_scale")
    if scale is not None and scale != 1.0:
        info += f"; painted at {scale:.2f} of its size (the exemplar's scale)"
    lines.insert(0, info)
    speed = report["methods"]["ours"].get("speed")
    if speed and speed.get("stages"):
        parts = [f"{k} {v['median']:.1f}" for k, v in speed["stages"].items()]
        lines.append("ours per stage, median ms: " + ", ".join(parts))
    ag = report.get("agreement")
    if ag:
        lines.append(agreement_line("agreement ours vs reference", ag))
    for name in ("ours", "reference"):
        stab = (report["methods"].get(name) or {}).get("stability")
        if stab and stab.get("measured_pairs", stab["pairs"]) < stab["pairs"]:
            lines.append(f"{name}: stability measured on {stab['measured_pairs']} of "
                         f"{stab['pairs']} frame pairs (the others have no face in the head mask)")
    return "\n".join(lines)


def plot_report(report: dict, path: str, *, labels=("ours", "reference"), extra_panels=()) -> None:
    """Bar chart, one panel per metric, ours vs the reference (and the input).

    ``extra_panels`` adds panels after these: ``(title, [(label, value or
    None, colour), ...])`` each (``styleblit compare`` adds speed and
    agreement). Uses matplotlib's object-oriented API with the Agg canvas, so
    no global backend is switched and no display is needed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    m = report["methods"]
    has_ref = "reference" in m
    names = ["ours"] + (["reference"] if has_ref else [])
    shown = list(labels[:len(names)])
    colours = {"ours": "#d95f02", "reference": "#1b9e77", "input": "#999999"}

    def val(name, *keys, scale=1.0):
        v = m.get(name)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v * scale if isinstance(v, (int, float)) and math.isfinite(v) else None

    panels = []
    if report["kind"] == "video":
        panels.append(("stability ratio\n(lower = steadier)",
                       [(shown[i], val(n, "stability", "ratio"), colours[n]) for i, n in enumerate(names)]))
    panels.append(("patch distance to exemplar\n(lower = more faithful)",
                   [(shown[i], val(n, "patch_distance", "mean"), colours[n]) for i, n in enumerate(names)]
                   + [("input", val("input", "patch_distance", "mean"), colours["input"])]))
    panels.append(("landmark error, % IOD\n(lower = structure kept)",
                   [(shown[i], val(n, "landmarks", "mean", scale=100.0), colours[n])
                    for i, n in enumerate(names)]))
    panels.append(("no face found in output\n(% frames)",
                   [(shown[i], val(n, "landmarks", "no_face_fraction", scale=100.0), colours[n])
                    for i, n in enumerate(names)]))
    if m["ours"].get("speed"):
        panels.append(("speed of our run\n(frames/s)", [(shown[0], val("ours", "speed", "fps"), colours["ours"])]))
    panels.extend(extra_panels)

    fig = Figure(figsize=(2.6 * len(panels), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    for i, (title, bars) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        xs = np.arange(len(bars))
        heights = [b[1] if b[1] is not None else 0.0 for b in bars]
        ax.bar(xs, heights, color=[b[2] for b in bars])
        for x, b in zip(xs, bars):
            ax.annotate("n/a" if b[1] is None else f"{b[1]:.3g}", (x, heights[x]),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(xs, [b[0] for b in bars], fontsize=8)
        ax.set_title(title, fontsize=9)
        top = max(heights) if heights else 0.0
        ax.set_ylim(0.0, top * 1.18 if top > 0 else 1.0)
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    path = plot_path(path)
    ext = os.path.splitext(path)[1]
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=ext[1:]), suffix=ext)


# ---------------------------------------------------------------------------
# contact sheets
# ---------------------------------------------------------------------------

def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interp)


def _put_label(strip: np.ndarray, text: str, scale: float, thickness: int) -> None:
    """Draw ``text`` centred in ``strip`` (a view into the sheet), shrunk to fit."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    s = scale * min(1.0, (strip.shape[1] - 2) / max(1, tw), (strip.shape[0] - 2) / max(1, th + base))
    (tw, th), base = cv2.getTextSize(text, font, s, thickness)
    tx = max(0, (strip.shape[1] - tw) // 2)
    ty = (strip.shape[0] - (th + base)) // 2 + th
    cv2.putText(strip, text, (tx, ty), font, s, (0, 0, 0), thickness, cv2.LINE_AA)


def contact_sheet(rows: Sequence[Sequence[np.ndarray | None]], *, labels,
                  tile_height: int = 256, label_height: int | None = None,
                  gap: int = 4, background: int = 255) -> np.ndarray:
    """Grid of images scaled to one height, each with a text label above it.

    Parameters
    ----------
    rows : sequence of sequences of (H, W, 3) uint8 ndarray or None
        One inner sequence per row (e.g. input | ours | reference); None
        leaves its slot empty. Images are BGR and may differ in size.
    labels : sequence of str, or sequence of sequences of str
        One label per image in the same nesting as ``rows``, or one flat
        sequence used as column labels for every row. ASCII only (OpenCV's
        Hershey font).
    tile_height : int
        Height every image is scaled to (aspect kept).
    label_height : int, optional
        Height of the label strip; default ``max(14, tile_height // 10)``.
    gap : int
        Pixels between tiles and around the sheet.
    background : int
        Grey level of the sheet.

    Returns
    -------
    (H, W, 3) uint8 ndarray
        BGR, with ``H = n_rows * (tile_height + label_height) + (n_rows + 1) * gap``
        and ``W`` the widest row's tiles plus ``(n_columns + 1) * gap``; a
        column is as wide as its widest tile.

    Examples
    --------
    >>> sheet = contact_sheet([[photo, ours, faceblit]],      # doctest: +SKIP
    ...                       labels=["input", "ours", "FaceBlit"])
    """
    if len(rows) == 0:
        raise ValueError("rows: expected at least one row, got none")
    if int(tile_height) < 8:
        raise ValueError(f"tile_height: expected at least 8, got {tile_height}")
    tile_height = int(tile_height)
    label_height = max(14, tile_height // 10) if label_height is None else int(label_height)
    n_cols = max(len(r) for r in rows)
    if n_cols == 0:
        raise ValueError("rows: expected at least one image, got empty rows")
    flat = len(labels) > 0 and all(isinstance(s, str) for s in labels)
    if flat:
        if len(labels) < n_cols:
            raise ValueError(f"labels: expected {n_cols} column labels, got {len(labels)}")
        label_rows = [list(labels[:len(r)]) for r in rows]
    else:
        if len(labels) != len(rows) or any(len(a) != len(b) for a, b in zip(labels, rows)):
            raise ValueError("labels: expected one label per image, nested like rows")
        label_rows = [list(r) for r in labels]

    tiles = []
    for r, row in enumerate(rows):
        scaled = []
        for c, im in enumerate(row):
            if im is None:
                scaled.append(None)
                continue
            im = np.asarray(im)
            if im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"rows[{r}][{c}]: expected (H, W, 3) uint8, got {im.shape} {im.dtype}")
            scaled.append(_fit_height(im, tile_height))
        tiles.append(scaled)
    col_w = [max((row[c].shape[1] for row in tiles if c < len(row) and row[c] is not None), default=tile_height // 2)
             for c in range(n_cols)]
    H = len(rows) * (tile_height + label_height) + (len(rows) + 1) * gap
    W = sum(col_w) + (n_cols + 1) * gap
    sheet = np.full((H, W, 3), background, np.uint8)
    scale = label_height / 26.0
    thickness = max(1, round(label_height / 18))
    y = gap
    for row, texts in zip(tiles, label_rows):
        x = gap
        for c in range(n_cols):
            if c < len(row) and row[c] is not None:
                im = row[c]
                ox = x + (col_w[c] - im.shape[1]) // 2
                sheet[y + label_height:y + label_height + tile_height, ox:ox + im.shape[1]] = im
                strip = sheet[y:y + label_height, x:x + col_w[c]]  # a view: text cannot spill
                _put_label(strip, str(texts[c]), scale, thickness)
            x += col_w[c] + gap
        y += tile_height + label_height + gap
    return sheet


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def _eval(args):
    from blit.bench import environment
    from blit.cli import check_optional_outputs, check_outputs_apart, style_input_paths

    if args.plot:
        args.plot = plot_path(args.plot)
    check_optional_outputs((("--json", args.json), ("--plot", args.plot)), args.overwrite)
    check_outputs_apart([args.json, args.plot],
                        [args.input, args.output, args.reference] + style_input_paths(args))
    for path in (args.input, args.output, args.reference):
        if path is not None and not os.path.exists(path):
            raise InputError(f"{path}: no such file")
    if args.reference is None and (args.full_rate or args.reference_step is not None):
        raise InputError(f"{'--full-rate' if args.full_rate else '--reference-step'}: only with "
                         "--reference")
    style = load_style_from_args(args)
    options = options_from_args(args)
    t0 = time.perf_counter()

    def progress(done, total):
        if not args.quiet and (done % 30 == 0 or done == total):
            print(f"\r  frame {done}/{total if total else '?'}", end="", file=sys.stderr, flush=True)

    report = evaluate(style, args.input, output_path=args.output, reference_path=args.reference,
                      reference_step=args.reference_step, max_frames=args.frames, options=options,
                      patch_frames=args.patch_frames, patch_samples=args.patch_samples,
                      patch_region=args.patch_region, full_rate=args.full_rate, seed=args.seed,
                      stylizer=args.stylizer, native_scale=args.native_scale,
                      progress=None if args.quiet or not is_video(args.input) else progress)
    if not args.quiet and report["kind"] == "video":
        print(file=sys.stderr)
    report["style"] = style.name
    report["elapsed_s"] = time.perf_counter() - t0
    report["environment"] = environment()
    if not args.quiet:
        print(f"{args.input} in the style of {style.name}"
              + (f" (ours read from {args.output})" if args.output else "")
              + (f" vs {args.reference}" if args.reference else ""))
        print(format_report(report))
    if args.json:
        save_json(report, args.json)
        if not args.quiet:
            print(f"saved {args.json}")
    if args.plot:
        plot_report(report, args.plot)
        if not args.quiet:
            print(f"saved {args.plot}")
    return 0


@register
def _add_eval(sub):
    p = sub.add_parser(
        "eval", help="measure stability, fidelity, structure and speed (optionally vs another output)",
        description="Stylize INPUT (a photo or a video) in the style of STYLE, or read an existing "
                    "stylization with --output, and measure: temporal stability ratio (videos), "
                    "patch distance to the exemplar, landmark error and missed faces in the output, "
                    "speed of our run, and with --reference the same for another method's output "
                    "on the same frames plus PSNR/SSIM agreement.")
    _add_style_args(p)
    p.add_argument("input", metavar="INPUT", help="photo or video (.mp4, .avi, .mov, ..., or a "
                                                  "folder of frames)")
    p.add_argument("--output", metavar="STYLIZED",
                   help="an existing stylization of INPUT to measure instead of running ours")
    p.add_argument("--reference", metavar="OTHER", help="another method's output of INPUT to compare with")
    p.add_argument("--reference-step", type=number(int, least=1), metavar="K",
                   help="reference frame i belongs to input frame K*i (2 for FaceBlit's half-rate "
                        "video; default: the input's frame rate over the reference's, 1 for a "
                        "folder of frames)")
    p.add_argument("--frames", type=number(int, least=1), metavar="N",
                   help="use only the first N input frames")
    p.add_argument("--patch-frames", type=number(int, least=0), default=4, metavar="N",
                   help="video frames on which patch fidelity is measured (default 4; 0: none, for a "
                        "still too)")
    p.add_argument("--patch-samples", type=number(int, least=1), default=2000, metavar="N",
                   help="sampled 5x5 patches per frame (default 2000)")
    p.add_argument("--patch-region", choices=("head", "face"), default="head",
                   help="mask of patch fidelity and agreement: the head mask (default) or the "
                        "landmarks' convex hull")
    p.add_argument("--full-rate", action="store_true",
                   help="with --reference-step > 1, also measure our stability on every frame")
    p.add_argument("--stylizer", choices=("auto", "stream", "frame"), default="auto",
                   help="our video path: 'stream' (blit.stream.Stylizer: smoothed landmarks, "
                        "temporally coherent patches), 'frame' (every frame looked up afresh, as "
                        "FaceBlit does); default: stream when available")
    from blit.stylize import MAX_FACE_RATIO

    p.add_argument("--native-scale", action="store_true",
                   help=f"paint at the input's own scale (by default a face over "
                        f"{MAX_FACE_RATIO:g} times as wide as the exemplar's is painted at the "
                        f"exemplar's scale, as image and video paint it)")
    p.add_argument("--seed", type=number(int, least=0), default=0,
                   help="jitter and patch sampling seed (default 0)")
    p.add_argument("--json", metavar="OUT.json", help="save every number, with versions, here")
    p.add_argument("--plot", metavar="OUT.png", help="save a bar chart here")
    add_stylize_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing --json/--plot files")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(run=_eval)
