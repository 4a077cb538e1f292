"""Stylizing a video stream: one :class:`Stylizer` called once per frame.

:func:`blit.stylize.stylize_frame` is a pure function of one frame. A stream
adds state across frames, all of it owned here:

* landmarks from mediapipe in tracking mode (or any injected callable), on
  every frame or on every N-th, carried along the optical flow on the
  frames between (``landmark_every``, :func:`carry_landmarks`);
* per-face One-Euro smoothing of the landmarks (:class:`OneEuroFilter`,
  Casiez et al. 2012), faces matched frame to frame by nearest centroid;
* the last good landmarks, held for a short time when the face is lost;
* one fixed jitter table (or one re-seeded at ``boil_hz`` for a deliberate
  "boiling" look) and its nearest-seed labels, computed once per frame size;
* temporal coherence of the patches (:func:`propagate`): a pixel keeps the
  exemplar source it had in the previous frame, carried along with the
  motion of the frame (optical flow, or the positional guide), while that
  source still passes a threshold; only the other pixels are looked up
  afresh. This is what removes most of the flicker of frame-by-frame
  StyleBlit;
* a recursive temporal filter of the output along the same flow
  (:mod:`blit.temporal`, weight :data:`HISTORY_WEIGHT`, clamped to each
  pixel's neighbourhood so that nothing ghosts), which hides what is left:
  pixels that switch patches and sources snapping to whole pixels.
  Measured on FaceBlit's target1.mp4 with the lincolnbust style
  (:class:`blit.metrics.WarpingErrorMeter` on the face region;
  ``benchmarks/bench_stream.py --stability``): the output changes between
  frames 2.09 times as much as the input (2.32 on every second frame,
  as FaceBlit's reference video, which measures 43.6), at a patch distance to
  the exemplar of 4.57 (FaceBlit 5.64) and with fine detail (mean
  |Laplacian|) 6.70 against the exemplar head's own 6.04 (frame by frame:
  48.7x, 5.29 and 9.2; FaceBlit 8.96, its seams included);
* buffers reused from frame to frame;
* a worker thread (:meth:`Stylizer.prefetch`) that makes the next frame's
  landmarks, head masks, flow and guides while this frame is painted: a
  frame is two halves, ``Stylizer._prepare`` and ``Stylizer._paint``, each
  with its own state;
* the per-frame kernels on the CPU (Numba) or on a CUDA device
  (``device="cuda"``, :mod:`blit.gpu`): the same NNFs and output (with the
  same ``flow_engine``), with only the frame going in (and the landmarks in
  the kernels' arguments) and the output coming out (:class:`Stylizer`, Notes).

Conventions as everywhere: images (H, W, 3) uint8 BGR, landmarks (68, 2)
float32 (x, y) pixels, guides float32, NNFs (H, W, 2) int32 exemplar (x, y).
"""
from __future__ import annotations

import collections
import concurrent.futures
import functools
import math
import numbers
import threading
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from blit.blending import PACK_PAD, blend, denoise_nnf
from blit.dis import dis_flow
from blit.styleblit import _INACTIVE, LookupParams, _error, lookup, make_jitter, seed_labels
from blit.stylize import (StylizeOptions, _face_list, check_max_faces, check_style_and_options,
                          face_width, rescale_points, scaled_shape)
from blit.temporal import temporal_filter
from guides.appearance import _GRAY_TABLES, _gray_kernel, float_tap, target_appearance
from guides.buffers import Buffers, take
from guides.io import check_bgr_frame
from guides.landmarks import CUT_THRESHOLD, cut_sample, is_cut
from guides.mask import MIN_WEIGHT, HeadRegion, composite, head_box, head_outline
from guides.mls import positional_guide

__all__ = ["Stylizer", "OneEuroFilter", "propagate", "carry_landmarks", "upsample_flow",
           "guide_inverse_jacobian",
           "STREAM_STAGES", "NO_SOURCE", "ONE_EURO", "HISTORY_WEIGHT", "CUT_THRESHOLD", "is_cut",
           "cut_sample"]

#: Keys of :attr:`Stylizer.last_times`, in pipeline order (milliseconds);
#: "download" (the output copied back, waiting for the kernels) only with
#: ``device="cuda"``; "scale" (the frame shrunk when it was not prefetched,
#: the painting enlarged and composited) only when painted at a scale < 1.
STREAM_STAGES = ("landmarks", "smooth", "mask", "flow", "mls", "appearance", "propagate", "lookup",
                 "blend", "temporal", "composite", "download", "scale", "total")

#: Source-field value of a pixel that has no exemplar source (outside the
#: region computed); any value below ``NO_SOURCE / 2`` means the same.
NO_SOURCE = np.float32(-1e30)

#: One-Euro settings for landmarks in units of the face width (jaw end to jaw
#: end), at any resolution: cutoff 1.5 Hz at rest, opening by 12 Hz per face
#: width per second of (filtered) speed.
ONE_EURO = {"min_cutoff": 1.5, "beta": 12.0, "d_cutoff": 1.0}

#: Default weight of the flow-warped previous output (:mod:`blit.temporal`).
HISTORY_WEIGHT = 0.75

#: A lost face is not held (``Stylizer(hold=)``) when less than this share
#: of its last face box lies inside the frame (it walked out: a close-up
#: whose chin the frame cuts keeps 80-95 %), or when more than
#: ``HIDDEN_SHARE`` of it lies in the box of a face seen on this frame (it
#: went behind that one): held, it was painted where it no longer is, over
#: the wall or the other person.
INSIDE_SHARE = 0.75
HIDDEN_SHARE = 0.25
#: Nor a face that moved faster than this (face widths a second, its
#: smoothed centre, remembered over SPEED_MEMORY), or seen on one frame only:
#: a face lost on the move (walking out of the frame, or behind someone) is
#: no longer where it was last seen. target1.mp4, a person talking and
#: turning, moves at most 0.54.
MOVING = 1.0
#: Nor a face whose box no longer looks as it did when the face was last
#: seen: the box's pixels, shrunk to 16x16 grey levels (:func:`_look`),
#: differ from those of that frame by more than ``HOLD_CHANGE`` on average
#: (levels of 0-255; a face still there, missed by the detector, differs by
#: a few), or hold nothing to paint any more (their standard deviation under
#: ``HOLD_FLAT`` and under half of what it was: black, a wall; a face at 9 %
#: of full light, found by the detector, has 2.4-2.8, and stays held). A
#: face faded to black, or gone behind a board, was held there for the
#: whole ``hold``, painted on the black.
HOLD_CHANGE = 20.0
HOLD_FLAT = 3.0
#: A face lost on the move (not held, above) is carried along the optical
#: flow instead, for at most this many frames in a row while mediapipe's
#: tracker misses it (a face moving fast, or half out of the frame): it
#: flashed unpainted for a frame. Only while the rules of the hold above
#: are kept where it is carried to (inside the frame, clear of a face seen
#: now); a face gone behind something static (a board) is painted over it
#: for as many frames.
CARRY_FRAMES = 2
#: A face found this much wider or narrower than on the frame before (a
#: share of its width), or with its centre moved by more than ``JUMP_MOVE``
#: of its width, has jumped: a cut that changed the frame less than
#: :data:`CUT_THRESHOLD` (a punch-in on the same scene, 1.2-1.3 times as
#: large in a user's clip). Its smoothing starts afresh there; it lagged the
#: jump by 5-7 px on the first frame. A face moving at :data:`MOVING` moves
#: 0.03 of its width a frame at 30 fps.
JUMP_SCALE = 0.1
JUMP_MOVE = 0.3
#: Seconds over which a face's speed is remembered (a fading maximum): a
#: face half hidden is found with landmarks that barely move (0.06 face
#: widths a second on a test clip, against its 1.8 before).
SPEED_MEMORY = 0.25

#: The background (``background="stylize"``) stays with the face it follows
#: while that face is at least this share of the widest's width: two faces
#: of about one size would otherwise hand the whole frame's painting back
#: and forth as their widths jitter.
MAIN_KEEP = 0.8

def _landmarker_faces(faces):
    """What a landmarker returned, as a list of (68, 2) faces: a list of
    them, one face's array, or None or an empty list for none; a ValueError
    for anything else (naming the landmarker, not the caller's input)."""
    if faces is None:
        return []
    try:
        if (faces.size if isinstance(faces, np.ndarray) else len(faces)) == 0:
            return []
        return _face_list(faces)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the landmarker returned {str(exc).replace('landmarks: ', '')} "
                         "(it must return a list of (68, 2) arrays, one per face)") from None


def _timestamp(t):
    """A frame's timestamp as a float (None: from the frame rate); a
    ValueError for one that is not a finite number of seconds."""
    if t is None:
        return None
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"t: expected a finite timestamp in seconds, got {t}")
    return t


# ---------------------------------------------------------------------------
# One-Euro filter
# ---------------------------------------------------------------------------

class OneEuroFilter:
    """The One-Euro filter over arrays: each element an adaptive low-pass.

    A first-order low-pass whose cutoff rises with the speed of the signal:
    ``cutoff = min_cutoff + beta * |dx/dt|`` (the derivative itself low-passed
    at ``d_cutoff``). Slow signals are smoothed hard (no jitter at rest), fast
    ones barely (no lag on fast motion).

    Parameters
    ----------
    min_cutoff : float
        Cutoff in Hz at rest; lower removes more jitter.
    beta : float
        Cutoff increase per unit/s of speed; higher removes more lag.
    d_cutoff : float
        Cutoff in Hz of the derivative estimate.

    Examples
    --------
    >>> f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    >>> f(np.zeros((68, 2), np.float32), 0.0)[0]
    array([0., 0.], dtype=float32)

    Notes
    -----
    Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass
    Filter for Noisy Input in Interactive Systems", CHI 2012 (their Eq. 1-4,
    smoothing factor ``alpha = 1 / (1 + tau / T_e)``, ``tau = 1 / (2 pi f_c)``).
    """

    def __init__(self, *, min_cutoff=1.0, beta=0.0, d_cutoff=1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"OneEuroFilter: expected min_cutoff > 0, d_cutoff > 0, beta >= 0, "
                             f"got {min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self):
        """Forget the past: the next sample passes through unchanged."""
        self._x = None
        self._dx = None
        self._t = None

    @staticmethod
    def _alpha(cutoff, dt):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x, t):
        """Filter the sample ``x`` taken at time ``t`` (seconds, increasing).

        Parameters
        ----------
        x : ndarray, any shape (the same at every call)
        t : float

        Returns
        -------
        ndarray, float32, the shape of ``x``
        """
        x = np.asarray(x, np.float32)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return self._x.copy()
        dt = float(t) - self._t
        if dt <= 0.0:  # a repeated or out-of-order timestamp: keep the state
            return self._x.copy()
        dx = (x - self._x) / np.float32(dt)
        self._dx += np.float32(self._alpha(self.d_cutoff, dt)) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        tau = 1.0 / (2.0 * np.pi * cutoff)
        a = (1.0 / (1.0 + tau / dt)).astype(np.float32)
        self._x += a * (x - self._x)
        self._t = float(t)
        return self._x.copy()


# ---------------------------------------------------------------------------
# Temporal coherence of the NNF
# ---------------------------------------------------------------------------

@numba.njit(inline="always")
def _propagate_row(prev_src, prev_pos, pox, poy, flow, fox, foy, use_flow, jxx, jxy, jyx, jyy,
                   iterations, pos, app, ox, oy, sapp, lam_pos, lam_app, threshold, active, src,
                   nnf, need, y):
    ph, pw = prev_src.shape[0], prev_src.shape[1]
    hs, ws = sapp.shape
    half = np.float32(0.5)
    y = np.int64(y)  # prange indices may be unsigned
    for x in range(pos.shape[1]):
        kept = False
        if active[y, x]:
            gx = pos[y, x, 0]
            gy = pos[y, x, 1]
            # (px, py): this pixel in the previous box's coordinates
            px = x + ox - pox
            py = y + oy - poy
            if use_flow:
                # q*: where the flow says this pixel's content was
                qfx = np.float32(px) + flow[y + oy - foy, x + ox - fox, 0]
                qfy = np.float32(py) + flow[y + oy - foy, x + ox - fox, 1]
                qx = int(np.floor(qfx + half))
                qy = int(np.floor(qfy + half))
                fx = qfx - np.float32(qx)
                fy = qfy - np.float32(qy)
            else:
                # q*: where the previous positional guide had this pixel's guide
                # value; Newton steps with the landmark fit's inverse Jacobian
                qx = px
                qy = py
                for _ in range(iterations):
                    if not (0 <= qx < pw and 0 <= qy < ph):
                        break
                    dx = gx - prev_pos[qy, qx, 0]
                    dy = gy - prev_pos[qy, qx, 1]
                    qx += int(np.floor(jxx * dx + jxy * dy + 0.5))
                    qy += int(np.floor(jyx * dx + jyy * dy + 0.5))
                fx = np.float32(0.0)
                fy = np.float32(0.0)
                if 0 <= qx < pw and 0 <= qy < ph:
                    dx = gx - prev_pos[qy, qx, 0]
                    dy = gy - prev_pos[qy, qx, 1]
                    fx = np.float32(jxx * dx + jxy * dy)
                    fy = np.float32(jyx * dx + jyy * dy)
            if 0 <= qx < pw and 0 <= qy < ph and prev_src[qy, qx, 0] > NO_SOURCE / 2:
                # patches are unit-scale copies: within one, the source moves as
                # the frame does, so s' = s(q) + (q* - q)
                sx = prev_src[qy, qx, 0] + fx
                sy = prev_src[qy, qx, 1] + fy
                cx = int(np.floor(sx + half))
                cy = int(np.floor(sy + half))
                if 0 <= cx < ws and 0 <= cy < hs:
                    if _error(cx, cy, gx, gy, app[y, x], sapp, lam_pos, lam_app) < threshold:
                        nnf[y, x, 0] = cx
                        nnf[y, x, 1] = cy
                        src[y, x, 0] = sx
                        src[y, x, 1] = sy
                        kept = True
            need[y, x] = not kept
        else:
            need[y, x] = False
        if not kept:
            nnf[y, x, 0] = _INACTIVE
            nnf[y, x, 1] = _INACTIVE
            src[y, x, 0] = NO_SOURCE
            src[y, x, 1] = NO_SOURCE


@numba.njit(parallel=True, cache=True, nogil=True)
def _propagate_kernel(prev_src, prev_pos, pox, poy, flow, fox, foy, use_flow, jxx, jxy, jyx, jyy,
                      iterations, pos, app, ox, oy, sapp, lam_pos, lam_app, threshold, active, src,
                      nnf, need):
    for y in numba.prange(pos.shape[0]):
        _propagate_row(prev_src, prev_pos, pox, poy, flow, fox, foy, use_flow, jxx, jxy, jyx, jyy,
                       iterations, pos, app, ox, oy, sapp, lam_pos, lam_app, threshold, active,
                       src, nnf, need, y)


@numba.njit(parallel=True, cache=True, nogil=True)
def _merge_kernel(fresh, need, nnf, src):
    """Where ``need``: take the fresh lookup's entry, and make it the source."""
    for y in numba.prange(need.shape[0]):
        for x in range(need.shape[1]):
            if need[y, x]:
                nnf[y, x, 0] = fresh[y, x, 0]
                nnf[y, x, 1] = fresh[y, x, 1]
                src[y, x, 0] = fresh[y, x, 0]
                src[y, x, 1] = fresh[y, x, 1]


def propagate(prev_src, target_pos, target_app, style_app, params, *, flow=None, flow_origin=None,
              prev_pos=None, inverse_jacobian=None, iterations=1, prev_origin=(0, 0),
              origin=(0, 0), active=None, out=None, buffers=None):
    """Carry the previous frame's exemplar sources to this frame where they still fit.

    Each target pixel ``p`` (guides ``g``, ``a``) shows a face point that was
    at ``q*`` in the previous frame. Its candidate source is the previous
    source there, extended with unit slope (patches are unit-scale copies):
    ``s' = s(q) + (q* - q)`` with ``q = round(q*)``. The candidate
    ``c = round(s')`` (``floor(v + 0.5)`` in float32 arithmetic, as ``q``)
    is kept when it lies inside the exemplar and its guide
    error (:mod:`blit.styleblit`'s ``E(c; g, a)``) is below
    ``params.threshold``; the other active pixels need a fresh lookup.

    ``q*`` comes from one of two motion estimates:

    * ``flow`` (backward optical flow, this frame to the previous one):
      ``q* = p + flow(p)``. The texture then follows the pixels' true motion.
    * the positional guides: ``q*`` solves ``pos_prev(q*) = g`` by
      ``iterations`` Newton steps from ``p`` with ``inverse_jacobian``; with
      0 steps and the identity this is ``prev_nnf(p) + pos_t(p) - pos_{t-1}(p)``.

    Parameters
    ----------
    prev_src : (Hp, Wp, 2) float32 ndarray
        Previous frame's source field: exemplar (x, y) per pixel, unrounded
        (kept pixels accumulate no rounding); below ``NO_SOURCE / 2`` where
        there was none.
    target_pos : (H, W, 2) float32 ndarray
    target_app : (H, W) float32 ndarray or None
        None: position only (``lam_app`` ignored), as in :func:`blit.styleblit.lookup`.
    style_app : (Hs, Ws) float32 or uint8 ndarray
    params : LookupParams
        Weights of the guide error and the threshold for keeping.
    flow : (Hf, Wf, 2) float32 ndarray, optional
        Backward flow (dx, dy) in frame pixels, on a region of the frame that
        covers this box.
    flow_origin : (int, int), optional
        Frame position (x, y) of ``flow[0, 0]``; default ``origin`` (the flow
        is this box's).
    prev_pos : (Hp, Wp, 2) float32 ndarray, optional
        Previous positional guide; required without ``flow``.
    inverse_jacobian : (2, 2) float ndarray, optional
        Exemplar-to-frame change of position (:func:`guide_inverse_jacobian`);
        required without ``flow``.
    iterations : int
        Newton steps of the guide motion.
    prev_origin, origin : (int, int)
        Frame position (x, y) of the previous box's and this box's pixel (0, 0).
    active : (H, W) bool ndarray, optional
    out : tuple of ((H, W, 2) float32, (H, W, 2) int32, (H, W) bool), optional
    buffers : guides.buffers.Buffers, optional
        Where to take the work arrays from (names ``"propagate_*"``);
        default: new arrays.

    Returns
    -------
    src : (H, W, 2) float32 ndarray
        Unrounded sources of the kept pixels, ``NO_SOURCE`` elsewhere.
    nnf : (H, W, 2) int32 ndarray
        Their rounded sources; large negative elsewhere (as inactive pixels
        of :func:`blit.styleblit.lookup`).
    need : (H, W) bool ndarray
        Active pixels not kept: they need a fresh lookup.

    Examples
    --------
    >>> src, nnf, need = propagate(prev_src, pos, app, style.appearance, params,
    ...                            flow=flow)                    # doctest: +SKIP
    >>> fresh = lookup(pos, app, ..., active=need)              # doctest: +SKIP
    """
    prev_src = np.ascontiguousarray(prev_src, np.float32)
    target_pos = np.ascontiguousarray(target_pos, np.float32)
    if target_pos.ndim != 3 or target_pos.shape[2] != 2:
        raise ValueError(f"target_pos: expected (H, W, 2), got shape {target_pos.shape}")
    if prev_src.ndim != 3 or prev_src.shape[2] != 2:
        raise ValueError(f"prev_src: expected (Hp, Wp, 2), got shape {prev_src.shape}")
    h, w = target_pos.shape[:2]
    lam_app = params.lam_app
    if target_app is None:
        target_app = take(buffers, "propagate_no_app", (h, w), np.float32)
        target_app[...] = 128.0
        lam_app = 0.0
    target_app = np.ascontiguousarray(target_app, np.float32)
    if target_app.shape != (h, w):
        raise ValueError(f"target_app: expected shape {(h, w)}, got {target_app.shape}")
    if active is None:
        active = take(buffers, "propagate_active", (h, w), np.bool_)
        active[...] = True
    elif active.shape != (h, w):
        raise ValueError(f"active: expected shape {(h, w)}, got {active.shape}")
    fox, foy = (int(v) for v in (origin if flow_origin is None else flow_origin))
    if flow is not None:
        flow = np.ascontiguousarray(flow, np.float32)
        bx, by = int(origin[0]) - fox, int(origin[1]) - foy
        if (flow.ndim != 3 or flow.shape[2] != 2 or bx < 0 or by < 0
                or flow.shape[0] < by + h or flow.shape[1] < bx + w):
            raise ValueError(f"flow: expected (>= {by + h}, >= {bx + w}, 2) to cover the box "
                             f"from flow_origin {(fox, foy)}, got {flow.shape}")
        prev_pos = np.zeros((1, 1, 2), np.float32)
        j = np.zeros((2, 2))
        use_flow = True
    else:
        if prev_pos is None or inverse_jacobian is None:
            raise ValueError("prev_pos, inverse_jacobian: required without flow")
        prev_pos = np.ascontiguousarray(prev_pos, np.float32)
        if prev_pos.shape != prev_src.shape:
            raise ValueError(f"prev_pos: expected shape {prev_src.shape}, got {prev_pos.shape}")
        if iterations < 0:
            raise ValueError(f"iterations: expected >= 0, got {iterations}")
        j = np.asarray(inverse_jacobian, np.float64)
        flow = np.zeros((1, 1, 2), np.float32)
        use_flow = False
    if out is None:
        out = (np.empty((h, w, 2), np.float32), np.empty((h, w, 2), np.int32),
               np.empty((h, w), np.bool_))
    src, nnf, need = out
    if h and w:
        _propagate_kernel(prev_src, prev_pos, int(prev_origin[0]), int(prev_origin[1]), flow,
                          fox, foy, use_flow,
                          float(j[0, 0]), float(j[0, 1]), float(j[1, 0]), float(j[1, 1]),
                          int(iterations), target_pos, target_app, int(origin[0]), int(origin[1]),
                          style_app, np.float32(params.lam_pos), np.float32(lam_app),
                          np.float32(params.threshold), np.ascontiguousarray(active, np.bool_),
                          src, nnf, need)
    return src, nnf, need


def carry_landmarks(points, flow, *, flow_origin=(0, 0), iterations=4):
    """Carry points of the previous frame into this one along a backward flow.

    A point at ``p`` in the previous frame is at ``x`` in this one where
    ``x + b(x) = p``, ``b`` being the backward optical flow (this frame to
    the previous one). Solved by fixed-point iteration from ``x = p``:
    ``x <- p - b(x)``, with ``b`` sampled bilinearly (and clamped to the
    flow's region); it converges wherever the flow changes by less than a
    pixel per pixel. Exact for a uniform flow.

    Parameters
    ----------
    points : (N, 2) float ndarray
        (x, y) frame positions in the previous frame.
    flow : (Hf, Wf, 2) float32 ndarray
        Backward flow (dx, dy) in frame pixels on a region of the frame.
    flow_origin : (int, int)
        Frame position (x, y) of ``flow[0, 0]``.
    iterations : int

    Returns
    -------
    (N, 2) float32 ndarray
        Their positions in this frame.
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] < 1 or flow.shape[1] < 1:
        raise ValueError(f"flow: expected (Hf, Wf, 2), got shape {flow.shape}")
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points: expected (N, 2), got shape {p.shape}")
    p = p - np.asarray(flow_origin, np.float64)
    h, w = flow.shape[:2]
    x = p.copy()
    for _ in range(int(iterations)):
        cx = np.clip(x[:, 0], 0.0, w - 1.0)
        cy = np.clip(x[:, 1], 0.0, h - 1.0)
        i0 = np.minimum(cx.astype(np.int64), max(w - 2, 0))
        j0 = np.minimum(cy.astype(np.int64), max(h - 2, 0))
        i1, j1 = np.minimum(i0 + 1, w - 1), np.minimum(j0 + 1, h - 1)
        tx, ty = (cx - i0)[:, None], (cy - j0)[:, None]
        top = flow[j0, i0] * (1 - tx) + flow[j0, i1] * tx
        bottom = flow[j1, i0] * (1 - tx) + flow[j1, i1] * tx
        x = p - (top * (1 - ty) + bottom * ty)
    return (x + np.asarray(flow_origin, np.float64)).astype(np.float32)


@numba.njit(parallel=True, cache=True, nogil=True)
def _upsample_flow_kernel(half, h, w, top, left, along, out):
    """out[y, x] = the (h, w) flow at (clamp(y - top), clamp(x - left)): the
    half-size ``half`` bilinearly, along x on two rows, then along y, in
    float32 (every product rounded on its own: the CUDA twin's arithmetic).
    Each row of ``half`` is interpolated along x once, into ``along``
    (hh, W, 2); ``out`` (H, W, 2) is C-contiguous."""
    hh, hw = half.shape[0], half.shape[1]
    one = np.float32(1.0)
    first = np.empty(out.shape[1], np.int64)
    weight = np.empty(out.shape[1], np.float32)
    for x in range(out.shape[1]):
        first[x], weight[x] = float_tap(min(max(x - left, 0), w - 1), w, hw)
    for rr in numba.prange(hh):
        r = np.int64(rr)
        for x in range(out.shape[1]):
            x0, a = first[x], weight[x]
            x1 = min(x0 + 1, hw - 1)
            na = one - a
            along[r, x, 0] = half[r, x0, 0] * na + half[r, x1, 0] * a
            along[r, x, 1] = half[r, x0, 1] * na + half[r, x1, 1] * a
    for yy in numba.prange(out.shape[0]):
        y = np.int64(yy)
        y0, b = float_tap(min(max(y - top, 0), h - 1), h, hh)
        nb = one - b
        upper = along[y0].reshape(-1)
        lower = along[min(y0 + 1, hh - 1)].reshape(-1)
        row = out[y].reshape(-1)
        for i in range(row.shape[0]):
            row[i] = upper[i] * nb + lower[i] * b


def upsample_flow(half, size, pad=(0, 0, 0, 0), *, out=None):
    """A flow computed at half size brought to ``size``, its edges continued.

    Bilinear with cv2.INTER_LINEAR's pixel centres in float32 arithmetic of
    its own (OpenCV's depends on the CPU), so that :func:`blit.gpu.upsample_flow`
    gives the same bits; ``pad`` (top, bottom, left, right) grows the result
    by that many pixels, each given the flow of the nearest pixel of ``size``
    (cv2.BORDER_REPLICATE).

    Parameters
    ----------
    half : (hh, hw, 2) float32 ndarray
        The flow at half size, its displacements already in full-size pixels.
    size : (int, int)
        (h, w) of the full-size flow; hh, hw are its halves rounded up
        (``cv2.pyrDown``'s).
    pad : (int, int, int, int)
    out : (h + top + bottom, w + left + right, 2) float32 ndarray, optional

    Returns
    -------
    (h + top + bottom, w + left + right, 2) float32 ndarray
    """
    (h, w), (top, _, left, _), shape = _half_flow_sizes(half, size, pad)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out: expected {shape} float32, got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out: expected a C-contiguous array")
    along = np.empty((half.shape[0], shape[1], 2), np.float32)
    _upsample_flow_kernel(np.ascontiguousarray(half, np.float32), h, w, top, left, along, out)
    return out


def _half_flow_sizes(half, size, pad):
    """The arguments of :func:`upsample_flow` (and its CUDA twin) checked, as
    ((h, w), (top, bottom, left, right), the output's shape)."""
    h, w = (int(v) for v in size)
    pad = tuple(int(v) for v in pad)
    if h < 1 or w < 1 or len(pad) != 4 or min(pad) < 0:
        raise ValueError(f"size {(h, w)} and pad {pad}: expected a size of at least 1x1 "
                         "and four pads, none negative")
    if half.shape != ((h + 1) // 2, (w + 1) // 2, 2):
        raise ValueError(f"half: expected {((h + 1) // 2, (w + 1) // 2, 2)} for size {(h, w)}, "
                         f"got {half.shape}")
    top, bottom, left, right = pad
    return (h, w), pad, (h + top + bottom, w + left + right, 2)


def guide_inverse_jacobian(target_landmarks, style_landmarks):
    """(2, 2) inverse of the linear part of the affine map from frame to exemplar
    that best fits the landmarks (least squares).

    The positional guide is locally about ``pos(p) = A p + b``; ``A^-1``
    turns a difference of guide values into frame pixels. The identity when
    the fit is degenerate.
    """
    src = np.asarray(target_landmarks, np.float64)
    dst = np.asarray(style_landmarks, np.float64)
    a_t, *_ = np.linalg.lstsq(src - src.mean(0), dst - dst.mean(0), rcond=None)
    a = a_t.T  # dst - mean ~ a @ (src - mean)
    if not np.isfinite(a).all() or abs(np.linalg.det(a)) < 1e-9:
        return np.eye(2)
    return np.linalg.inv(a)


# ---------------------------------------------------------------------------
# The stream object
# ---------------------------------------------------------------------------

@dataclass
class _Coherence:
    """The previous frame of one lookup (a face's head, or the background).

    ``buffers`` holds the host arrays; ``work`` those the per-frame kernels
    read and write (on the device with ``device="cuda"``, else ``buffers``
    itself), among them ``src``, ``pos`` and ``hist``."""

    src: np.ndarray | None = None  # (H, W, 2) float32 source field
    pos: np.ndarray | None = None  # (H, W, 2) float32 positional guide
    origin: tuple = (0, 0)
    parity: int = 0
    hist: np.ndarray | None = None  # (H, W, 3) float32 filtered output (blit.temporal)
    hist_origin: tuple = (0, 0)
    buffers: Buffers = field(default_factory=Buffers)
    device_buffers: Buffers | None = None  # blit.gpu.DeviceBuffers with device="cuda"

    @property
    def work(self):
        return self.buffers if self.device_buffers is None else self.device_buffers

    def clear(self):
        self.src = self.pos = self.hist = None


class _HostKernels:
    """The per-frame functions of ``device="cpu"`` (the Numba kernels) and
    the exemplar arrays they read: the style's own."""

    xp = np
    lookup = staticmethod(lookup)
    propagate = staticmethod(propagate)
    merge = staticmethod(_merge_kernel)
    temporal_filter = staticmethod(temporal_filter)
    positional_guide = staticmethod(positional_guide)
    composite = staticmethod(composite)
    target_appearance = staticmethod(target_appearance)
    upsample_flow = staticmethod(upsample_flow)
    dis_flow = staticmethod(dis_flow)

    def __init__(self, style):
        self.image, self.appearance = style.image, style.appearance
        self.table, self.app_bin = style.table, style.app_bin
        self.quantiles = style.quantiles
        self.packed = style.packed

    def blend(self, image, nnf, radius, *, out=None):
        """:func:`blit.blending.blend`, reading the style's packed image."""
        return blend(image, nnf, radius, out=out, packed=self.packed if radius <= PACK_PAD else None)

    def denoise(self, nnf, radius, *, out, work):
        """:func:`blit.blending.denoise_nnf` for this exemplar."""
        return denoise_nnf(nnf, radius, self.image.shape[:2], out=out, buffers=work)

    @staticmethod
    def luminance(image, *, out):
        """The appearance guide's luminance of ``image`` (:func:`blit.gpu.luminance`'s twin)."""
        _gray_kernel(image, _GRAY_TABLES, out)
        return out

    @staticmethod
    def pyr_down(src, *, out):
        """``cv2.pyrDown`` (:func:`blit.gpu.pyr_down`'s twin)."""
        import cv2

        return cv2.pyrDown(src, dst=out)

    @staticmethod
    def device_buffers():
        """None: the kernels' arrays are host arrays, in the host buffers."""
        return None

    @staticmethod
    def host_buffers():
        """Buffers for the host arrays :meth:`put` hands to the kernels."""
        return Buffers()

    @staticmethod
    def put(host, work, name):
        """``host`` where the kernels read it: here, itself."""
        return host

    @staticmethod
    def canvas(out, work):
        """The frame the kernels paint: here, the output itself."""
        return out

    @staticmethod
    def in_thread(fn, *args):
        """``fn(*args)``, for another thread than the stream's own."""
        return fn(*args)

    @staticmethod
    def load(frame, canvas):
        canvas[...] = frame

    @staticmethod
    def unload(canvas, out):
        """Nothing to do: the kernels painted ``out``."""


#: The names of the host arrays a frame copies to the device (Stylizer._prepare)
#: besides the frame itself and the landmarks: with flow_engine="opencv", the
#: flow at DIS's half size (brought to full size there; the head masks and
#: the appearance guides are made there; with "blit" the flow is too)
_COPIED = ("flow_half",)


class _PinnedBuffers(Buffers):
    """:class:`guides.buffers.Buffers` whose arrays of the given names are
    made by ``empty`` (page-locked memory), the others by NumPy."""

    def __init__(self, names, empty):
        super().__init__()
        self.pinned = Buffers(empty)
        self._names = frozenset(names)

    def get(self, name, shape, dtype):
        if name in self._names:
            return self.pinned.get(name, shape, dtype)
        return super().get(name, shape, dtype)

    @property
    def nbytes(self):
        return super().nbytes + self.pinned.nbytes

    def clear(self):
        super().clear()
        self.pinned.clear()


class _DeviceKernels:
    """The per-frame functions of ``device="cuda"`` (:mod:`blit.gpu`) and
    the exemplar arrays they read, copied to the device once."""

    def __init__(self, style):
        from blit import gpu

        self.xp = gpu._cupy()
        self.lookup, self.propagate, self.merge = gpu.lookup, gpu.propagate, gpu.merge
        self.blend, self.temporal_filter = gpu.blend, gpu.temporal_filter
        self.positional_guide, self.composite = gpu.positional_guide, gpu.composite
        self.target_appearance, self.upsample_flow = gpu.target_appearance, gpu.upsample_flow
        self.luminance, self.pyr_down, self.dis_flow = gpu.luminance, gpu.pyr_down, gpu.dis_flow
        self.outline_mask = gpu.outline_mask
        self._gpu = gpu
        self.image = gpu.to_device(np.ascontiguousarray(style.image, np.uint8))
        self.appearance = gpu.to_device(np.ascontiguousarray(style.appearance, np.float32))
        self.table = gpu.to_device(np.ascontiguousarray(style.table, np.int32))
        self.app_bin = gpu.to_device(np.ascontiguousarray(style.app_bin, np.int32))
        self.quantiles = gpu.to_device(np.ascontiguousarray(style.quantiles, np.float32))
        self.device_id = self.xp.cuda.runtime.getDevice()

    def device_buffers(self):
        return self._gpu.DeviceBuffers()

    def host_buffers(self):
        """Buffers for the host arrays :meth:`put` copies to the device:
        those of :data:`_COPIED` in page-locked memory, which the copy reads
        directly (from pageable memory the driver copies through a staging
        buffer), the work arrays beside them in plain memory (CuPy's pinned
        pool rounds sizes up to powers of two and keeps what it freed)."""
        return _PinnedBuffers(_COPIED, self._gpu.empty_pinned)

    def denoise(self, nnf, radius, *, out, work):
        """:func:`blit.gpu.denoise_nnf` for this exemplar."""
        return self._gpu.denoise_nnf(nnf, radius, self.image.shape[:2], out=out)

    def put(self, host, work, name):
        """A copy of ``host`` in the device array ``name`` of ``work`` (in a
        new device array where ``work`` is None)."""
        return self._gpu.to_device(host, out=None if work is None else
                                   work.get(name, host.shape, host.dtype))

    @staticmethod
    def canvas(out, work):
        return work.get("canvas", out.shape, np.uint8)

    def in_thread(self, fn, *args):
        """``fn(*args)`` for another thread than the stream's own: with the
        stream's device current (CuPy's current device belongs to the
        thread), and the work it queued on the device done before it returns
        (the stream's thread reads what it wrote, maybe from another CUDA
        stream than this thread's)."""
        cuda = self.xp.cuda
        with cuda.Device(self.device_id):
            result = fn(*args)
            cuda.get_current_stream().synchronize()
        return result

    def load(self, frame, canvas):
        """``frame`` into ``canvas``: copied to the device, or within it (a
        frame already there)."""
        if isinstance(frame, self.xp.ndarray):
            canvas[...] = frame
        else:
            self._gpu.to_device(frame, out=canvas)

    def unload(self, canvas, out):
        self._gpu.to_host(canvas, out=out)


def _box(points):
    """(x0, y0, x1, y1) of a face's landmarks."""
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return float(x0), float(y0), float(x1), float(y1)


def _look(frame, box):
    """The pixels of ``box`` (x0, y0, x1, y1) in ``frame``, as 16x16 grey
    levels (float32), to tell whether a lost face is still there
    (:data:`HOLD_CHANGE`); None for a box outside the frame. The box is
    grown about its middle to a multiple of 16 a side (by at most 15 px,
    kept inside the frame), so that each level is the mean of its block by
    OpenCV's exact-factor area path; where the frame is too small for that,
    the box as it is."""
    import cv2

    h, w = frame.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(math.ceil(box[2])) + 1, w), min(int(math.ceil(box[3])) + 1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    # (the inexact factor of the box as it is took 1.6 ms a frame for a head
    # of 934x1006 at 1920x1080 here, in the stream's prefetch thread)
    grown = _grow16(x0, x1, w), _grow16(y0, y1, h)
    if None not in grown:
        (x0, x1), (y0, y1) = grown
    grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)


def _grow16(a0, a1, size):
    """The span a0..a1 grown about its middle to a multiple of 16, moved to
    lie inside 0..size; None where size is too small."""
    n = -(-(a1 - a0) // 16) * 16
    if n > size:
        return None
    start = min(max(a0 - (n - (a1 - a0)) // 2, 0), size - n)
    return start, start + n


def _still_there(track, frame):
    """Whether the box of the lost face ``track`` in ``frame`` still looks
    as it did when the face was last seen (:data:`HOLD_CHANGE`,
    :data:`HOLD_FLAT`)."""
    if track.look is None:
        return True
    now = _look(frame, _box(track.raw))
    if now is None:
        return False
    flat = float(now.std()) < min(HOLD_FLAT, 0.5 * float(track.look.std()))
    return not flat and float(np.abs(now - track.look).mean()) <= HOLD_CHANGE


def _held(box, seen, shape):
    """Whether a lost face of ``box`` is held: enough of it inside the frame
    of ``shape``, and not behind one of the faces ``seen`` now (boxes)."""
    x0, y0, x1, y1 = box
    area = max((x1 - x0) * (y1 - y0), 1e-6)

    def overlap(a0, b0, a1, b1):
        return max(0.0, min(a1, b1) - max(a0, b0))

    h, w = shape[:2]
    if overlap(x0, -0.5, x1, w - 0.5) * overlap(y0, -0.5, y1, h - 0.5) < INSIDE_SHARE * area:
        return False
    return all(overlap(x0, s[0], x1, s[2]) * overlap(y0, s[1], y1, s[3]) <= HIDDEN_SHARE * area
               for s in seen)


@dataclass
class _Track:
    """One face followed across frames."""

    landmarks: np.ndarray  # smoothed; the last good ones while the face is lost
    raw: np.ndarray  # last detection
    scale: float  # face width at the first detection: the filter's unit
    last_seen: float
    filter: OneEuroFilter | None
    # of its smoothed centre at its last frame, face widths a second (unknown
    # after one frame: a face seen once, in transit or a false detection, is not held)
    speed: float = math.inf
    # frames in a row it was carried along the flow, lost on the move (CARRY_FRAMES)
    carried: int = 0
    # its box as it looked when last seen (_look: HOLD_CHANGE)
    look: np.ndarray | None = None
    head: _Coherence = field(default_factory=_Coherence)
    # the host arrays of its guides, one set per frame slot (Stylizer._prepare;
    # its kernels' host_buffers)
    slots: list = field(default_factory=lambda: [Buffers() for _ in range(3)])


@dataclass
class _FaceGuides:
    """One head's guides for a frame, where the kernels read them."""

    box: tuple  # (x0, y0, x1, y1) in the frame
    pos: np.ndarray | None  # (h, w, 2) float32 positional guide (None until set)
    app: np.ndarray  # (h, w) float32 appearance guide
    mask: np.ndarray  # (h, w) float32 head mask
    active: np.ndarray  # (h, w) bool: the pixels painted


@dataclass
class _FlowField:
    """A frame's DIS flow on a box: its values at half size, doubled
    (``half``, (ceil(h / 2), ceil(w / 2), 2) float32, where it was made: on
    the host, or on the device with ``flow_engine="blit"``), the box's
    ``size`` (h, w), and ``pad`` (top, bottom, left, right): pixels by which
    the box was grown, the flow continued there by its edge values.
    ``origin`` is the grown box's frame position (x0, y0); ``full`` the flow
    on the host once made (:meth:`Stylizer._host_flow`)."""

    origin: tuple
    half: np.ndarray
    size: tuple
    pad: tuple = (0, 0, 0, 0)
    full: np.ndarray | None = None

    @property
    def shape(self):
        """(H, W, 2) of the flow on the grown box."""
        top, bottom, left, right = self.pad
        return (self.size[0] + top + bottom, self.size[1] + left + right, 2)

    def grown(self, grow):
        """The same flow on the box grown further by ``grow`` (top, bottom,
        left, right)."""
        pad = tuple(p + g for p, g in zip(self.pad, grow))
        origin = (self.origin[0] - grow[2], self.origin[1] - grow[0])
        return _FlowField(origin, self.half, self.size, pad)


@dataclass
class _Prepared:
    """The first half of a frame (Stylizer._prepare), all that the second
    (Stylizer._paint) reads of it."""

    frame: np.ndarray
    frame_dev: object  # the frame where the kernels read it (None: ``frame`` itself)
    t: float
    found: list | None  # the faces the landmarker found (None: carried)
    searched: bool
    tracks: list  # the tracks to paint, largest face last
    landmarks: list  # their smoothed landmarks for this frame
    regions: list  # their guides.mask.HeadOutlines (on the CPU, their masks made)
    guides: list  # their _FaceGuides (None: an empty box)
    whole: bool  # background="stylize" and a face seen
    main: np.ndarray | None  # the landmarks the background follows
    pos_whole: np.ndarray | None  # the whole frame's positional guide
    flow: tuple | None  # ((x0, y0), (H, W, 2) float32) backward flow
    jitter: np.ndarray
    labels: np.ndarray
    restart: bool  # a new jitter, or a cut: the painting starts afresh
    times: dict


_FIND = object()  # Stylizer._prepare: find the faces now


@numba.njit(parallel=True, cache=True, nogil=True)
def _count_kernel(out):
    for i in numba.prange(out.shape[0]):
        out[i] = i


def _know_threading_layer():
    """Run a parallel kernel once, so that ``numba.threading_layer()`` is known."""
    try:
        numba.threading_layer()
    except ValueError:
        _count_kernel(np.empty(2, np.int64))


def _numba_threadsafe():
    """Whether Numba's parallel kernels may run in two threads at once: its
    OpenMP and TBB layers allow it (its workqueue layer stops the process
    on it). The layer is known once a parallel kernel has run."""
    try:
        return numba.threading_layer() in ("omp", "tbb")
    except ValueError:  # no parallel kernel has run yet
        return False


class _Failed:
    """The landmarker's error on a frame whose faces were found in the
    landmarks' thread, raised where the frame is prepared."""

    def __init__(self, error):
        self.error = error


def _done(value):
    """A future that holds ``value``."""
    from concurrent.futures import Future

    future = Future()
    future.set_result(value)
    return future


class Stylizer:
    """Stylize a video stream frame by frame, stably.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    options : StylizeOptions
    jitter_seed : int
        Seed of the jitter table (:func:`blit.styleblit.make_jitter`), fixed
        for the whole stream.
    max_faces : int
        The most faces stylized per frame, each with its own smoothing and
        coherence state; faces are matched frame to frame by nearest centroid.
    boil_hz : float, optional
        Re-seed the jitter this many times a second (``jitter_seed + k`` in
        the k-th period, from the frame timestamps): a deliberate, evenly
        paced "boiling" of the strokes, held between re-seeds. Default: never.
    landmarker : callable, optional
        ``landmarker(frame) -> list of (68, 2) float32`` (largest face first).
        Default: :class:`guides.landmarks.FaceLandmarker` in tracking mode
        with ``tiles`` (faces too small for mediapipe's detector, such as a
        person a few metres away in a 4K video, are searched for in tiles
        and tracked in crops; a face upside down or lying on its side is
        tracked in the frames turned to stand it upright), created on the
        first frame.
    smoothing : bool or dict
        One-Euro smoothing of the landmarks: True for :data:`ONE_EURO`, a dict
        of :class:`OneEuroFilter` arguments (in face widths), or False.
    temporal : {"flow", "guide", None}
        How exemplar sources are kept from frame to frame (:func:`propagate`):
        moved along the optical flow of the frames (DIS, ultrafast preset;
        the default and steadiest), along the positional guide (no flow to
        compute), or not at all (``None``: every frame is looked up afresh,
        exactly as :func:`blit.stylize.stylize_frame`).
    history_weight : float
        With ``temporal="flow"``: the weight of the previous output, warped
        along the flow and clamped to each pixel's neighbourhood, mixed into
        every new frame (:func:`blit.temporal.temporal_filter`); 0 turns the
        filter off. Default :data:`HISTORY_WEIGHT`.
    keep_threshold : float, optional
        Guide-error threshold for keeping a propagated source; default twice
        the lookup's (``options.threshold``, ``background_threshold``).
        Higher is steadier, lower follows the guides closer.
    hold : float
        Seconds to keep painting a lost face at its last landmarks before the
        frame passes through unstylized (background-only with
        ``background="stylize"``): a missed detection, a hand in front.
        Not for a face lost on the move (over :data:`MOVING` face widths a
        second) or seen on one frame only, that left the frame (under
        :data:`INSIDE_SHARE` of its box inside) or that went behind a face
        seen now (over :data:`HIDDEN_SHARE` of its box in that one's); one
        lost on the move is carried along the optical flow instead, for at
        most :data:`CARRY_FRAMES` frames in a row (``temporal="flow"``). Not
        across a cut (:func:`is_cut`: a new shot, or a frame of another
        size) or a timestamp earlier than the previous one: the stream
        starts afresh, its faces tracked anew.
    fps : float
        Frame rate assumed when frames come without timestamps.
    device : {"cpu", "cuda", "auto"}
        Where the per-frame kernels run (:func:`blit.gpu.resolve_device`):
        the CPU (Numba, the default), a CUDA device through CuPy (the ``gpu``
        extra; :class:`blit.gpu.CudaUnavailableError`, a ``ValueError``,
        names what to install when CuPy or a device is missing), or CUDA when
        available. The same kernels' logic either way: the same NNFs and
        output, bit for bit, with the same ``flow_engine`` (see Notes; the
        default differs). CuPy is imported only for CUDA.
    landmark_every : int
        Find the faces (mediapipe) on every this-many-th frame only, the
        first included; on the frames between, each face's landmarks of the
        previous frame are carried along the optical flow
        (:func:`carry_landmarks`; needs ``temporal="flow"``) on the previous
        frame's head boxes, a flow that then serves the frame's own boxes
        too, so none is computed twice. 1 (the
        default) finds them on every frame; 2 saves half of the landmark
        stage, the costliest on the CPU. On target1.mp4 (30 fps), landmarks
        carried one frame lie 0.44 % of the inter-ocular distance (mean)
        from those mediapipe finds on that frame, where the face moves 1.35 %
        from frame to frame; with 2, the stylized clip measured a stability
        ratio of 2.10 (2.11 with 1), the same patch distance (4.53) and a
        landmark error of 3.82 % (3.69 %). While no face is in view every
        frame is searched, so a face that comes into view is found at once.
    pipeline : bool
        With :meth:`prefetch` on the CPU: make the next frame's guides (not
        only its landmarks) in the prefetch thread, while this frame is
        painted. The same output either way; False for the landmarks only.
    flow_engine : {"auto", "opencv", "blit"}
        The optical flow of ``temporal="flow"``: DIS (Kroeger et al. 2016,
        OpenCV's ultrafast preset, on the frames' grey images halved), either
        OpenCV's (``"opencv"``: on the CPU, each patch searched after its
        left and upper neighbours, from their flows) or :mod:`blit.dis`'s
        (``"blit"``: every patch of a level searched at once, in rounds,
        from its four neighbours' flows of the round before; with
        ``device="cuda"`` on the device, :func:`blit.gpu.dis_flow`, from the
        frame copied there, so that the flow needs no copy). ``"auto"`` (the
        default): ``"opencv"`` on the CPU, where it is 2.5 times as fast
        (the flow stage of a 640x480 stream on 2 cores: 1.64 against 4.13
        ms; 70.9 against 59.6 frames/s end to end), ``"blit"`` on CUDA. On target1.mp4 with lincolnbust the stream measured a
        stability ratio of 2.06 with ``"blit"`` (2.09 with ``"opencv"``) and
        a patch distance of 4.64 (4.62). A CPU stream and a CUDA stream with
        the same ``flow_engine`` give the same output, bit for bit.
    scale : float or "auto"
        Paint each frame shrunk to this scale (0 < scale <= 1; the default
        1 paints it at its own size) and enlarge the painting back: the
        exemplar's strokes are copied at their size in pixels, so on a face
        much larger than the exemplar's they would be specks. ``"auto"``:
        the scale :func:`blit.stylize.paint_scale` gives for the first frame
        in which a face is found (1 unless its widest face is over
        :data:`blit.stylize.MAX_FACE_RATIO` times as wide as the
        exemplar's), kept for the rest of the stream, through
        :meth:`reset` too (the temporal state lives in the painting's
        pixels). Below scale 1 (or with "auto"), until a face is found each
        frame is searched at its own size and passes through unchanged, as
        it would without a face; from that frame on the landmarker sees the
        frames shrunk. So a stream given the scale that "auto" chooses is
        the same stream (what the Ray engine's ranges rely on). With the
        background kept, each head is enlarged (bicubic) and composited into
        the frame itself through its mask made at the frame's size, the rest
        of the frame untouched; with ``background="stylize"`` the whole
        painting is enlarged. The resizing runs on the CPU with either
        ``device``.

    Attributes
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``: the resolved ``device``.
    last_times : dict
        Milliseconds of each stage of the last frame (keys of
        :data:`STREAM_STAGES` that ran).
    last_landmarks : list of (68, 2) float32 ndarray
        Landmarks painted in the last frame (smoothed; held ones included),
        largest face last, in the frame's pixels.
    last_nnf : list of (H, W, 2) int32 ndarray
        The head NNF of each of them, as looked up and kept (before the
        ``denoise`` of the blend; views of reused buffers; CuPy arrays on the
        device with ``device="cuda"``, not copied back), in the painting's
        pixels (the frame's, shrunk by :attr:`painting_scale`).
    last_boxes : list of (int, int, int, int)
        Their head boxes ``(x0, y0, x1, y1)`` in the painting's pixels.
    painting_scale : float or None
        The scale the frames are painted at: ``scale``, or with
        ``scale="auto"`` the one chosen on the first frame with a face
        (None until then).
    last_searched : bool
        Whether the landmarker looked for the faces of the last frame (False:
        they were carried along the flow, ``landmark_every``). The attribute
        ``landmark_every`` may be changed between frames.

    Notes
    -----
    With ``device="cuda"`` the landmarks, the One-Euro smoothing and the
    head masks' outlines (their polygons and boxes) still run on the CPU;
    the optical flow (``flow_engine="blit"``, the default there: the frame's
    grey image, its halves and DIS; with ``"opencv"``, OpenCV's DIS on the
    CPU and only the flow's way to full size on the device), the head masks,
    the appearance guides, the positional guides (the MLS map at the grid
    nodes, interpolated from them), lookup, propagation, merge, blend,
    temporal filter and composite run on the device, on arrays that stay
    there from frame to frame. The exemplar's image, appearance guide and
    its quantiles, lookup table and bins are copied to the device once, in
    the constructor; the jitter table ((levels, 64, 64, 2) float32) and the
    seed labels ((max(levels, 2), H, W) uint8) when they change (the first
    frame, a new frame size, each ``boil_hz`` re-seed), each into a new
    device array. The copies of a frame are, in order (the flow is made in
    a thread of its own beside the masks and the other guides, which on the
    device set the stream's pace with it; with :meth:`prefetch`, all of the
    guides' work and copies are done while the frame before is painted, and
    with ``landmark_every=1`` the landmarks are found in a thread of their
    own while the worker makes the guides of the frame before):

    * host to device, the frame, (H, W, 3) uint8 (the flow's grey image and
      the heads' appearance guides are made from it there, and it is
      painted on); with ``flow_engine="opencv"`` or without
      ``temporal="flow"``, not when no face is painted on it and the
      stylized background covers it;
    * with ``flow_engine="opencv"`` only, host to device (among the guides'
      work, in any place), the optical flow at DIS's half size, (ceil(Hf /
      2), ceil(Wf / 2), 2) float32, from the second frame on with
      ``temporal="flow"``: the head boxes' bounding box (Hf, Wf), or the
      whole frame with ``background="stylize"`` (with ``landmark_every`` >
      1, on the frames whose landmarks are carried: the previous frame's
      head boxes, continued by up to 16 px to cover this frame's), made in
      page-locked host memory, which its copy reads directly; it is brought
      to full size, and continued, on the device
      (:func:`blit.gpu.upsample_flow`);
    * device to host, the output, (H, W, 3) uint8.

    With ``flow_engine="blit"``, a frame whose landmarks are carried along
    the flow (``landmark_every`` > 1, or a face lost on the move) also
    copies that half-size flow back to the host, where the landmarks are.
    Nothing else crosses but the kernels' by-value argument structs (up to
    3.2 KB each: the head masks' hold the head's polygon and the blur's
    weights, :func:`blit.gpu.outline_mask`; the positional guides' the
    landmarks, the target's and the exemplar's,
    :func:`blit.gpu.positional_guide`). The times in :attr:`last_times` are
    then those of queuing the work: the device runs behind, and
    ``"download"`` waits for it. ``"flow"`` is its own thread's time, spent
    beside ``"mask"``, ``"mls"`` and ``"appearance"`` (with the flow on the
    device, until its kernels have run); with :meth:`prefetch`, the stages
    up to ``"appearance"`` are spent beside the painting of the frame
    before, and ``"total"`` is this call's.

    A stream is one sequence of frames: call it from one thread at a time
    (frames stylized from two threads at once would interleave its state
    across frames); :meth:`prefetch` may be called from another thread, as
    it says. A :class:`guides.landmarks.FaceLandmarker` may be shared by
    several streams: its calls take turns.

    Examples
    --------
    >>> from guides.exemplar import load_style
    >>> with Stylizer(load_style("style.png")) as stylizer:   # doctest: +SKIP
    ...     for frame in frames:
    ...         show(stylizer(frame))
    """

    def __init__(self, style, *, options=StylizeOptions(), jitter_seed=0, max_faces=1,
                 boil_hz=None, landmarker=None, smoothing=True, temporal="flow",
                 keep_threshold=None, history_weight=HISTORY_WEIGHT, hold=0.5, fps=30.0,
                 device="cpu", landmark_every=1, pipeline=True, scale=1.0, flow_engine="auto"):
        check_style_and_options(style, options)
        check_max_faces(max_faces)
        if boil_hz is not None and not boil_hz > 0:
            raise ValueError(f"boil_hz: expected a positive rate, got {boil_hz}")
        if not fps > 0:
            raise ValueError(f"fps: expected a positive frame rate, got {fps}")
        if not hold >= 0:
            raise ValueError(f"hold: expected >= 0 seconds, got {hold}")
        if temporal not in ("flow", "guide", None):
            raise ValueError(f"temporal: expected 'flow', 'guide' or None, got {temporal!r}")
        if keep_threshold is not None and not keep_threshold >= 0:
            raise ValueError(f"keep_threshold: expected a threshold >= 0, got {keep_threshold}")
        if isinstance(jitter_seed, bool) or int(jitter_seed) != jitter_seed or jitter_seed < 0:
            raise ValueError(f"jitter_seed: expected a whole number >= 0, got {jitter_seed}")
        if not 0.0 <= history_weight < 1.0:
            raise ValueError(f"history_weight: expected a weight in [0, 1), got {history_weight}")
        if int(landmark_every) != landmark_every or landmark_every < 1:
            raise ValueError(f"landmark_every: expected a whole number >= 1, got {landmark_every}")
        if scale != "auto" and (isinstance(scale, (bool, str)) or not isinstance(scale, numbers.Real)
                                or not 0 < scale <= 1):
            raise ValueError(f"scale: expected a number in (0, 1] or 'auto', got {scale!r}")
        if landmark_every > 1 and temporal != "flow":
            raise ValueError("landmark_every > 1 carries the landmarks along the optical flow: "
                             f"it needs temporal='flow', got {temporal!r}")
        if flow_engine not in ("auto", "opencv", "blit"):
            raise ValueError(f"flow_engine: expected 'auto', 'opencv' or 'blit', got {flow_engine!r}")
        if device != "cpu":
            from blit.gpu import resolve_device

            device = resolve_device(device)
        if flow_engine == "auto":
            flow_engine = "opencv" if device == "cpu" else "blit"
        if pipeline:  # so that _pipelines() says the same from the first frame on
            _know_threading_layer()
        self.device = device
        self.flow_engine = flow_engine
        # the flow made on the device, from the frame copied there
        self._device_flow = device != "cpu" and flow_engine == "blit" and temporal == "flow"
        self.style = style
        self.options = options
        self.jitter_seed = int(jitter_seed)
        self.max_faces = int(max_faces)
        self.boil_hz = boil_hz
        self.smoothing = dict(ONE_EURO) if smoothing is True else (dict(smoothing) if smoothing else None)
        self.temporal = temporal
        self.keep_threshold = keep_threshold
        self.history_weight = float(history_weight)
        self.hold = float(hold)
        self.fps = float(fps)
        self.landmark_every = int(landmark_every)
        self.pipeline = bool(pipeline)
        self.scale = scale
        self.painting_scale = None if scale == "auto" else float(scale)
        # below scale 1, frames are searched at their own size until a face is found
        self._before_face = self.painting_scale != 1.0
        self._landmark_seq = 0  # frames that have come to the landmarks (prefetched or not)
        self._landmarker = landmarker
        self._own_landmarker = landmarker is None
        self._closed = False
        self._pool = None  # the prefetch() thread, started on first use
        # device="cuda": the threads of the flow (_prepare) and of the
        # landmarks (prefetch)
        self._side_pools = {}
        self._prepare_lock = threading.Lock()  # one _prepare at a time (see prefetch)
        # (frame, kind, t, future) in submission order; kind "frame" (the
        # future gives a _Prepared, which holds the frame as painted),
        # "faces" (the frame as painted and its landmarks, None: carry
        # them) or "pass" (no future: no face yet at a scale below 1)
        self._pending = collections.deque()
        # the last worker task that may call the landmarker (faces found or
        # carried in _prepare): no frame goes to the landmarks' thread before
        # it has ended (the landmarker sees the frames in order)
        self._worker_finds = None
        self._head_params = LookupParams(style.params.lam_pos, style.params.lam_app,
                                         options.threshold, options.levels)
        self._bg_params = LookupParams(style.params.lam_pos, 0.0, options.background_threshold,
                                       options.levels)
        self._dis = []  # a DIS a strip (Stylizer._dis_flow)
        self._buffers = Buffers()  # the painting's host arrays
        self._guide_buffers = Buffers()  # the guides' own work arrays (Stylizer._prepare)
        self._scale_buffers = Buffers()  # the enlarging's (painting_scale < 1)
        # the per-frame kernels and where their arrays live, chosen once
        self._kernels = _DeviceKernels(style) if device == "cuda" else _HostKernels(style)
        self._work = self._kernels.device_buffers() or self._buffers  # the stream's kernel arrays
        # the flow's grey frames and work arrays with flow_engine="blit", where its kernels run
        self._flow_work = self._kernels.device_buffers() or self._guide_buffers
        self._forget()

    # -- life cycle ------------------------------------------------------------

    def reset(self):
        """Forget all state across frames (tracks, smoothing, coherence, clock,
        and the landmarker's tracked faces where it has a ``reset``, as
        :class:`guides.landmarks.FaceLandmarker` has); landmarks already
        prefetched stay valid for their frames (whose guides are then made
        afresh)."""
        landmarker = self._landmarker
        if landmarker is not None and callable(getattr(landmarker, "reset", None)):
            landmarker.reset()  # (else it tracked the last clip's face into the next)
        self._forget()

    def _forget(self):
        """:meth:`reset` but the landmarker's (the stream's own state)."""
        pending, again = collections.deque(), []
        for frame, kind, t, future in self._pending:
            if kind == "frame":  # keep its landmarks only: made again from the new state
                try:
                    prepared = future.result()
                except Exception:
                    continue  # (found again when the frame comes)
                again.append((len(pending), frame, t, prepared.found))
            pending.append((frame, kind, t, future))
        self._pending = pending
        self._tracks: list[_Track] = []
        self._background = self._coherence()
        self._last_any = None  # landmarks of the last face seen, for background-only frames
        self._main = None  # the track the background follows (MAIN_KEEP)
        self._prep_index = 0  # frames prepared (Stylizer._prepare): the clock
        self._slot_index = -1  # the frame being prepared
        # per-frame host arrays (the flow's), a slot per frame
        self._slots = [self._kernels.host_buffers() for _ in range(3)]
        self._guide_boxes = []  # the head boxes of the frame last prepared
        self._jitter_key = None
        self._jitter = None
        self._jitter_host = None
        self._labels = None
        self._labels_shape = None
        self._gray = None  # this frame's grey image, and the previous frame's
        self._prev_gray = None
        self._gray_index = -1  # the frame whose grey image self._gray is
        self._gray_parity = 0
        self._frame_flow = None  # this frame's flow so far: a _FlowField
        self._frame_dev = None  # the frame being prepared on the device (_device_flow)
        self._last_faces = []  # the previous frame's raw landmarks (found or carried)
        self._cut_sample = None  # the previous frame's pixels that tell a cut (is_cut)
        self._cut_shape = None  # and its shape (another size is a cut too)
        self._last_t = None  # the previous frame's timestamp
        self.last_times = {}
        self.last_landmarks = []
        self.last_nnf = []
        self.last_boxes = []
        self.last_searched = False
        # in the worker again, in their order, after the state is new: made in
        # the caller's thread when they came, they could be made after a frame
        # prefetched since (the worker starts at once), the clock gone back
        for i, frame, t, found in again:
            future = self._worker().submit(self._prepare_in_worker, check_bgr_frame(frame), t,
                                           found)
            if found is None:  # (carried again: maybe found afresh)
                self._worker_finds = future
            self._pending[i] = (frame, "frame", t, future)

    def close(self):
        """Release the landmarker if this object created it (and the
        :meth:`prefetch` thread). A closed stylizer refuses frames."""
        self._closed = True
        self._drain()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for pool in self._side_pools.values():
            pool.shutdown()
        self._side_pools = {}
        if self._own_landmarker and self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def _check_open(self):
        if self._closed:
            raise ValueError("this Stylizer is closed (close() released its landmarker); "
                             "make a new one")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- per frame ---------------------------------------------------------------

    def prefetch(self, frame, t=None):
        """Start on a frame that comes next, in a worker thread.

        While this call stylizes frame ``t``, frame ``t + 1`` is started in
        parallel. With ``pipeline=True`` (the default) the worker makes all
        of the frame that does not depend on the painting of the frames
        before it: its shrinking (at a ``scale`` below 1), its landmarks,
        their smoothing, the head masks, the optical flow and the positional
        and appearance guides (with ``device="cuda"`` they, and the frame,
        are copied to the device there, the appearance guides made there,
        into buffers of their own for each of three frames in a row); the call that stylizes the frame then does the rest (the
        lookup, blend, temporal filter, composite and enlarging). With
        ``device="cuda"`` and ``landmark_every=1`` the landmarks are found in
        a thread of their own, in order, while the worker makes the guides of
        the frame before. With ``pipeline=False``, or a Numba threading layer
        that cannot run kernels from two threads at once (its ``workqueue``),
        the worker finds the landmarks only.
        Either way a stream runs at the pace of the slower of the two halves,
        not of their sum, and the output is the same as without prefetching:
        every frame is made once, in order.

        Frames prefetched must then be stylized in the order they were
        prefetched, with the same timestamp (``t``, default as in
        :meth:`__call__`), and must not be modified until they have been.
        A frame is known by its identity: the same array object must be
        passed to the call (a copy is taken for another frame, and the work
        prefetched for the original is dropped, after it has moved the
        stream's state on).
        Another thread may prefetch while this one stylizes (the webcam's
        capture thread does, :class:`blit.webcam.LatestFrame`) as long as
        every frame stylized was prefetched, in order.

        Examples
        --------
        >>> previous = None
        >>> for frame in frames:                                 # doctest: +SKIP
        ...     stylizer.prefetch(frame)
        ...     if previous is not None:
        ...         show(stylizer(previous))
        ...     previous = frame
        >>> show(stylizer(previous))                             # doctest: +SKIP
        """
        t = _timestamp(t)
        self._check_open()
        faces = _FIND if self._detects_next() else None
        if self._before_face:  # (found at the frame's size; "auto": it chooses the scale)
            faces = self._first_faces(check_bgr_frame(frame))
            if faces is None:
                self._pending.append((frame, "pass", t, None))
                return
        # (shrunk in the worker too)
        if self._pipelines():
            frame = check_bgr_frame(frame)
            if (faces is _FIND and self.device != "cpu" and self.landmark_every == 1
                    and (self._worker_finds is None or self._worker_finds.done())):
                # with the painting on the device the worker's CPU half sets the
                # pace: the landmarks of this frame are found in a thread of
                # their own while the worker makes the guides of the frames
                # before it
                found = self._side_thread("landmarks").submit(self._found_apart, frame)
                future = self._worker().submit(self._prepare_found, found, t)
            else:
                future = self._worker().submit(self._prepare_in_worker, frame, t, faces)
                if faces is _FIND or faces is None:
                    self._worker_finds = future
            self._pending.append((frame, "frame", t, future))
        else:  # the landmarks only (or none: carried, landmark_every)
            future = self._worker().submit(self._shrink_and_find, check_bgr_frame(frame), faces)
            if faces is _FIND:
                self._worker_finds = future
            self._pending.append((frame, "faces", t, future))

    def _pipelines(self):
        """Whether :meth:`prefetch` makes whole frames' guides in its thread:
        their Numba kernels then run beside the painting's (on the CPU; with
        ``device="cuda"`` beside any the caller's thread runs), which needs
        :func:`_numba_threadsafe`."""
        return self.pipeline and _numba_threadsafe()

    def _side_thread(self, name, workers=1):
        """The thread of ``name`` that makes that part of a frame beside the
        rest with ``device="cuda"``: "flow" (:meth:`_prepare`),
        "landmarks" (:meth:`prefetch`); or the ``workers`` threads of
        ``name`` ("strips": :meth:`_strip_threads`)."""
        pool = self._side_pools.get(name)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(workers, thread_name_prefix=self._side_name(name))
            self._side_pools[name] = pool
        return pool

    def _side_name(self, name):
        """The name that the threads of :meth:`_side_thread` ``name`` (and of
        the prefetch worker, "prefetch") begin with."""
        return f"styleblit-{name}-{id(self):x}"

    def _worker(self):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._side_name("prefetch"))
        return self._pool

    def _shrink_and_find(self, frame, faces):
        """The frame as painted, and its faces: found now for _FIND (in the
        prefetch thread), else ``faces`` as given (None: to carry)."""
        work = self._shrink(frame)
        return work, (self._find_faces(work) if faces is _FIND else faces)

    def _found_apart(self, frame):
        """:meth:`_shrink_and_find` in the landmarks' thread: the landmarker's
        error is returned (:class:`_Failed`), for :meth:`_prepare` to raise
        where the stream without prefetch raises it (after the frame's clock
        has moved on)."""
        work = self._shrink(frame)
        try:
            return work, self._find_faces(work)
        except Exception as exc:
            return work, _Failed(exc)

    def _prepare_found(self, found, t):
        """:meth:`_prepare_in_worker` of a frame whose landmarks ``found`` (a
        future of :meth:`_found_apart`) are found in the landmarks' thread;
        the wait for them counts with the landmarks."""
        t0 = time.perf_counter()
        work, faces = found.result()
        return self._kernels.in_thread(functools.partial(self._prepare, waited=_ms(t0)), work,
                                       t, faces)

    def _prepare_in_worker(self, frame, t, faces):
        if self.device == "cpu":
            # the guides' kernels on one thread: the painting has the others
            numba.set_num_threads(1)
        # (on the device the painting takes no CPU thread: the guides have them all)
        return self._kernels.in_thread(self._prepare, self._shrink(frame), t, faces)

    def _detects_next(self):
        """Whether the next frame to come to the landmarks is one whose faces
        are found (the others are carried along the flow: landmark_every)."""
        detect = self._landmark_seq % self.landmark_every == 0
        self._landmark_seq += 1
        return detect

    def _coherence(self):
        return _Coherence(device_buffers=self._kernels.device_buffers())

    def _get_landmarker(self):
        if self._landmarker is None:
            from guides.landmarks import FaceLandmarker

            self._landmarker = FaceLandmarker(static_image_mode=False, max_faces=self.max_faces,
                                              tiles=True)
        return self._landmarker

    def _prefetched(self, frame, t):
        """What :meth:`prefetch` started for ``frame``: ``(kind, the frame
        as painted, result)``, with ``("frame", work, _Prepared)``,
        ``("faces", work, faces or None)`` or ``("pass", None, None)``; or
        None when it was not prefetched. Frames prefetched before it that
        were not stylized are dropped (after their work has ended: the
        landmarker saw them)."""
        while self._pending:
            pending, kind, _, future = self._pending.popleft()
            result = None if future is None else future.result()
            if pending is frame:
                if kind == "pass":
                    return kind, None, None
                if kind == "faces":
                    return (kind,) + result
                if t is not None and float(t) != result.t:
                    raise ValueError(f"t: this frame was prefetched for t={result.t}, "
                                     f"stylized with t={t}; give prefetch() the same t")
                return kind, result.frame, result
        return None

    def _first_faces(self, frame):
        """At a scale below 1, before a face has been seen: find the faces of
        ``frame`` at its own size; with ``scale="auto"``, choose
        :attr:`painting_scale` from them (:func:`blit.stylize.paint_scale`).
        Returns the faces in the painting's pixels, or None when there is
        none (the frame passes through: it counts on the clock only)."""
        from blit.stylize import paint_scale

        faces = self._find_faces(np.ascontiguousarray(frame))[: self.max_faces]
        if not faces:
            with self._prepare_lock:
                self._prep_index += 1
            return None
        if self.painting_scale is None:
            self.painting_scale = paint_scale(self.style, faces)
        self._before_face = False
        fx, fy = self._factors(frame.shape)
        if fx == fy == 1.0:  # (as found: the stream of scale 1 to the bit)
            return faces
        return [rescale_points(f, fx, fy) for f in faces]

    def _painted_shape(self, shape):
        """(height, width) of a frame of ``shape`` as painted."""
        s = self.painting_scale
        return tuple(shape[:2]) if s == 1.0 else scaled_shape(shape, s)

    def _factors(self, shape):
        """(fx, fy): the painting's pixels per frame pixel, across and down."""
        sh, sw = self._painted_shape(shape)
        return sw / shape[1], sh / shape[0]

    def _shrink(self, frame):
        """The frame as painted: itself (contiguous), or shrunk (area)."""
        frame = np.ascontiguousarray(frame)
        if self.painting_scale == 1.0:
            return frame
        import cv2

        sh, sw = self._painted_shape(frame.shape)
        return cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA)

    def _enlarge(self, frame, painted, prepared, out):
        """The painting (shrunk) back at the frame's size, into ``out``:
        enlarged whole (bicubic) with the background painted, else composited
        into the frame through each head's mask, enlarged (bilinear) from
        the painting's, in the order painted. Puts :attr:`last_landmarks`
        into the frame's pixels."""
        import cv2

        h, w = frame.shape[:2]
        fx, fy = self._factors(frame.shape)
        self.last_landmarks = [rescale_points(lm, 1 / fx, 1 / fy) for lm in self.last_landmarks]
        if prepared.whole:
            cv2.resize(painted, (w, h), dst=out, interpolation=cv2.INTER_CUBIC)
            return
        np.copyto(out, frame)
        if not prepared.regions:
            return
        # (one resize of the whole painting: OpenCV's resize is many times
        # faster than warping a box of it)
        enlarged = cv2.resize(painted, (w, h), interpolation=cv2.INTER_CUBIC,
                              dst=self._scale_buffers.get("enlarged", frame.shape, np.uint8))
        for region in prepared.regions:
            sx0, sy0, sx1, sy1 = region.box
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            # the frame's pixels whose centres fall within the box's pixels
            x0, y0 = max(0, math.floor(sx0 / fx)), max(0, math.floor(sy0 / fy))
            x1, y1 = min(w, math.ceil(sx1 / fx)), min(h, math.ceil(sy1 / fy))
            # frame pixel (x0 + u, y0 + v) <- mask (fx (x0 + u + 0.5) - 0.5 - sx0, ...)
            m = np.float64([[fx, 0.0, fx * (x0 + 0.5) - 0.5 - sx0],
                            [0.0, fy, fy * (y0 + 0.5) - 0.5 - sy0]])
            mask = cv2.warpAffine(region.region().mask, m, (x1 - x0, y1 - y0),
                                  dst=self._scale_buffers.get("mask", (y1 - y0, x1 - x0),
                                                              np.float32),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
            composite(out, enlarged[y0:y1, x0:x1], HeadRegion((x0, y0, x1, y1), mask), out=out)

    def _find_faces(self, frame):
        """The landmarker on ``frame`` now, in its one thread (it runs in one
        thread at a time, frames in order): the landmarks' thread when there
        is one (:meth:`prefetch` with ``device="cuda"``), else the prefetch
        thread when there is one; here when this is that thread."""
        home, name = self._side_pools.get("landmarks"), self._side_name("landmarks")
        if home is None:
            home, name = self._pool, self._side_name("prefetch")
        if home is not None and not threading.current_thread().name.startswith(name):
            return home.submit(self._find_faces, frame).result()
        return _landmarker_faces(self._get_landmarker()(frame))

    def _carry(self, frame, slot, times):
        """The previous frame's faces carried into this one along the optical
        flow (:func:`carry_landmarks`), computed on the previous frame's head
        boxes (the whole frame with ``background="stylize"``). Found afresh
        instead when there is no face to carry (none in view: the
        stylization costs nothing then) or no previous frame. Returns the
        faces and whether they were searched for."""
        faces = self._last_faces
        flow = None
        if faces:
            h, w = frame.shape[:2]
            if self.options.background == "stylize" or not self._guide_boxes:
                box = (0, 0, w, h)  # (the flow is needed on the whole frame anyway)
            else:
                # the heads' boxes of the previous frame, which hold its landmarks;
                # this frame's boxes, a little elsewhere, reuse the flow (_flow_on)
                box = _bounding_box(self._guide_boxes)
            flow = self._flow_on(frame, box, slot, times)
        if flow is None:
            return self._find_faces(frame), True
        f = self._host_flow(flow, slot)
        return [carry_landmarks(face, f, flow_origin=flow.origin) for face in faces], False

    def _drain(self):
        """Wait for every prefetched frame and drop it."""
        while self._pending:
            _, _, _, future = self._pending.popleft()
            try:
                if future is not None:
                    future.result()
            except Exception:
                pass

    def __call__(self, frame, t=None, *, out=None):
        """Stylize the next frame of the stream.

        Parameters
        ----------
        frame : (H, W, 3) uint8 ndarray, BGR
        t : float, optional
            Timestamp in seconds; default ``frame_index / fps``. One earlier
            than the previous frame's (a video played in a loop, a seek)
            starts afresh, as a cut does.
        out : (H, W, 3) uint8 ndarray, optional
            Where to write the result; not ``frame`` itself, nor any array
            sharing its memory (a ValueError: the frame is read while the
            result is written, also by the prefetch thread).

        Returns
        -------
        (H, W, 3) uint8 ndarray
            The frame with each face painted from the exemplar; a copy of the
            frame when no face has been seen for ``hold`` seconds (or, at a
            scale below 1 or ``"auto"``, none yet).
        """
        frame = check_bgr_frame(frame)
        t = _timestamp(t)
        self._check_open()
        if out is None:
            out = np.empty_like(frame)
        elif out.shape != frame.shape or out.dtype != np.uint8:
            raise ValueError(f"out: expected {frame.shape} uint8, got {out.shape} {out.dtype}")
        elif np.may_share_memory(out, frame):
            raise ValueError("out: must not share memory with frame (the frame is read while "
                             "the result is written)")
        start = time.perf_counter()
        got = self._prefetched(frame, t)
        shrunk = 0.0
        if got is None:
            faces = _FIND if self._detects_next() else None
            if self._before_face:  # (found at the frame's size; "auto": it chooses the scale)
                faces = self._first_faces(frame)
            t0 = time.perf_counter()
            got = ("pass", None, None) if self._before_face else \
                ("faces", self._shrink(frame), faces)
            shrunk = _ms(t0)
        kind, work, result = got
        if kind == "pass":
            np.copyto(out, frame)
            self.last_landmarks, self.last_nnf, self.last_boxes = [], [], []
            self.last_searched = True
            self.last_times = {"landmarks": _ms(start), "total": _ms(start)}
            return out
        canvas = out if work.shape == frame.shape else \
            self._scale_buffers.get("painting", work.shape, np.uint8)
        if kind == "frame":
            # made in the prefetch thread, which now makes the next frame's
            # with one Numba thread: the painting takes one thread fewer
            # (on 2 cores, 1.2x the frames per second of the painting on
            # both beside it; the idle threads of each spin for the other)
            prepared = result
            threads = numba.get_num_threads()
            if self.device == "cpu":
                numba.set_num_threads(max(threads - 1, 1))
            try:
                self._paint(prepared, canvas)
            finally:
                numba.set_num_threads(threads)
        else:  # its landmarks (None: carry them)
            prepared = self._prepare(work, t, result, waited=_ms(start) - shrunk)
            self._paint(prepared, canvas)
        if canvas is not out:
            t0 = time.perf_counter()
            self._enlarge(frame, canvas, prepared, out)
            self.last_times["scale"] = shrunk + _ms(t0)
        self.last_times["total"] = _ms(start)
        return out

    def _prepare(self, frame, t, faces, *, waited=0.0):
        """The first half of a frame (:meth:`prefetch` runs it ahead, in its
        thread): its landmarks (``faces`` as found, None to carry them along
        the flow, or _FIND to find them now; ``waited``: milliseconds spent
        waiting for them, counted with them), their smoothing, the jitter,
        the head regions, the flow and each head's guides, as a
        :class:`_Prepared`. It reads and writes only the state of this half
        (one call at a time: a lock), and writes its arrays in the frame's
        slot of three (the next frame's guides are made while this frame's
        are read, and the previous frame's positional guide is kept)."""
        with self._prepare_lock:
            return self._prepare_locked(frame, t, faces, waited)

    def _prepare_locked(self, frame, t, faces, waited):
        index = self._prep_index
        self._prep_index += 1
        t = index / self.fps if t is None else float(t)
        slot = index % 3
        self._slot_index = index
        times = {}
        start = time.perf_counter()
        found = faces
        sample = cut_sample(frame)
        # a new shot, another frame size, or the clock gone back (a video
        # played in a loop, a seek): nothing carries over from the last one
        # (the landmarks' smoothing would hold them until the clock passed
        # its last time again). The size is the frame's own: the samples of
        # frames under 16 px apart in size are of one size.
        cut = (is_cut(self._cut_sample, sample)
               or (self._cut_shape is not None and frame.shape != self._cut_shape)
               or (self._last_t is not None and t < self._last_t))
        previous_t = self._last_t
        self._cut_sample, self._cut_shape, self._last_t = sample, frame.shape, t
        # with the flow made on the device, the frame goes there first: its
        # grey image is made there (for the landmarks carried along the flow too)
        self._frame_dev = (self._kernels.put(frame, self._work, f"frame{slot}")
                           if self._device_flow else None)
        if cut:
            # (nor does the background: a new shot without a face is not painted
            # as the whole exemplar where the last shot's face was)
            self._tracks, self._last_faces, self._last_any = [], [], None
        if faces is _FIND:
            found = faces = self._find_faces(frame)
            searched = True
        elif isinstance(faces, _Failed):  # (found in the landmarks' thread)
            raise faces.error
        elif faces is None:  # between detections (landmark_every)
            faces, searched = self._carry(frame, slot, times)
            if searched:
                found = faces
        else:
            searched = True
        faces = [np.asarray(f, np.float32) for f in faces][: self.max_faces]
        carried = []
        if searched and not cut:
            carried = self._carry_lost(frame, faces, previous_t, slot, times)
        faces = faces + carried
        self._last_faces = faces
        times["landmarks"] = waited + _ms(start) - times.get("flow", 0.0)

        t0 = time.perf_counter()
        tracks = self._update_tracks(faces, t, frame, carried=len(carried))
        restart = self._update_jitter(frame.shape[:2], t) or cut
        times["smooth"] = _ms(t0)

        options = self.options
        h, w = frame.shape[:2]
        whole = options.background == "stylize" and self._last_any is not None
        # the background follows the largest face (or the last one seen)
        main = (tracks[-1].landmarks if tracks else self._last_any) if whole else None
        flowing = None
        flow_times = {}
        # on the device the frame goes there first: the appearance guides are
        # made from it, and it is the canvas its painting starts from
        frame_dev = self._frame_dev
        if frame_dev is None and self.device != "cpu" and (tracks or not whole):
            frame_dev = self._kernels.put(frame, self._work, f"frame{slot}")
        try:
            if self.device != "cpu":
                # With the painting on the device, this half is the stream's
                # pace: the flow, its longest stage, is made in a thread of its
                # own beside the masks and appearance guides, on the heads' boxes
                # (those of head_region; it reads and writes only its own state:
                # the grey frames, DIS, the frame's flow; OpenCV lets go of the
                # GIL). (The positional guides are made here: on the device
                # their host part is the landmarks' checks and packing.)
                boxes = [head_box(frame.shape, tr.landmarks, margin=options.voting)
                         for tr in tracks]
                if self.temporal == "flow":
                    flowing = self._side_thread("flow").submit(
                        self._kernels.in_thread, self._flow, frame, boxes, whole, slot, flow_times)
            t0 = time.perf_counter()
            self._record_looks(frame, t)  # (once the flow has started)
            _add(times, "smooth", t0)
            t0 = time.perf_counter()
            regions = [head_outline(frame.shape, tr.landmarks, margin=options.voting,
                                    buffers=tr.slots[slot]) for tr in tracks]
            if self.device == "cpu":  # (on the device, made there: _face_guides)
                for region in regions:
                    region.region()
            times["mask"] = _ms(t0)
            self._guide_boxes = [r.box for r in regions]
            if flowing is None:
                flow = self._flow(frame, self._guide_boxes, whole, slot, times)
            pos_whole, positions = self._positions((h, w), tracks, self._guide_boxes, main,
                                                   index, times)
            guides = [self._face_guides(frame, frame_dev, tr, region, index, times)
                      for tr, region in zip(tracks, regions)]
            for guide, pos in zip(guides, positions):
                if guide is not None:
                    guide.pos = pos
        finally:
            if flowing is not None:  # (waited for even when the guides failed)
                flow = flowing.result()
                times["flow"] = times.get("flow", 0.0) + flow_times.get("flow", 0.0)
        return _Prepared(frame=frame, frame_dev=frame_dev, t=t, found=found, searched=searched,
                         tracks=tracks,
                         landmarks=[tr.landmarks for tr in tracks], regions=regions,
                         guides=guides, whole=whole, main=main, pos_whole=pos_whole, flow=flow,
                         jitter=self._jitter, labels=self._labels, restart=restart, times=times)

    def _update_jitter(self, shape, t):
        """The jitter table and its seed labels, where the kernels read them
        (``self._jitter``, ``self._labels``; the host table ``self._jitter_host``).
        Returns whether the stroke layout is new (a ``boil_hz`` re-seed): the
        painting then starts afresh."""
        key = 0 if self.boil_hz is None else int(math.floor(t * self.boil_hz))
        restart = False
        if key != self._jitter_key:
            self._jitter_host = make_jitter(self.jitter_seed + key, levels=self.options.levels)
            # (a new array, not a reused one: with prefetch() the frame before,
            # painted meanwhile, may still read the one it has)
            self._jitter = self._kernels.put(self._jitter_host, None, None)
            self._labels = None
            restart = self._jitter_key is not None
            self._jitter_key = key
        if self._labels is None or self._labels_shape != shape:
            labels = seed_labels(shape, self._jitter_host, self.options.levels)
            self._labels = self._kernels.put(labels, None, None)
            self._labels_shape = shape
        return restart

    def _carry_lost(self, frame, faces, previous_t, slot, times):
        """The faces of the previous frame lost on the move (not held: over
        :data:`MOVING`) that ``faces`` misses, carried into this frame along
        the optical flow on their boxes (:func:`carry_landmarks`), each for
        at most :data:`CARRY_FRAMES` frames in a row, and only where
        :func:`_held` allows a hold (inside the frame, clear of ``faces``)."""
        if self.temporal != "flow" or previous_t is None:
            return []
        h, w = frame.shape[:2]
        seen = [_box(f) for f in faces]
        out = []
        for tr in self._tracks:
            if (tr.last_seen != previous_t or tr.carried >= CARRY_FRAMES or tr.speed <= MOVING
                    or math.isinf(tr.speed)):
                continue  # (lost before the previous frame; carried enough; still: held; seen once)
            centre, width = tr.raw.mean(axis=0), face_width(tr.raw)
            if any(np.hypot(*(f.mean(axis=0) - centre)) < 0.75 * width for f in faces):
                continue  # found (as _update_tracks matches)
            x0, y0, x1, y1 = _box(tr.raw)
            m = 0.5 * width  # where a fast face may have gone since
            box = (max(int(x0 - m), 0), max(int(y0 - m), 0), min(int(x1 + m) + 1, w),
                   min(int(y1 + m) + 1, h))
            flow = self._flow_on(frame, box, slot, times) if box[2] > box[0] and box[3] > box[1] \
                else None
            if flow is None:
                continue
            moved = carry_landmarks(tr.raw, self._host_flow(flow, slot), flow_origin=flow.origin)
            if np.isfinite(moved).all() and _held(_box(moved), seen, frame.shape):
                out.append(moved)
        return out

    def _update_tracks(self, faces, t, frame, carried=0):
        """Match faces to tracks by nearest centroid, smooth, expire; return the
        tracks to paint this frame, largest face last (painted on top), or
        the one the background follows (:data:`MAIN_KEEP`). The last
        ``carried`` faces are lost ones carried along the flow
        (:meth:`_carry_lost`)."""
        tracks, shape = self._tracks, frame.shape
        pairs = []
        for i, track in enumerate(tracks):
            centre = track.raw.mean(axis=0)
            for j, face in enumerate(faces):
                d = float(np.hypot(*(face.mean(axis=0) - centre)))
                if d < 0.75 * face_width(track.raw):
                    pairs.append((d, i, j))
        pairs.sort()
        used_t, used_f = set(), set()
        for _, i, j in pairs:
            if i in used_t or j in used_f:
                continue
            used_t.add(i)
            used_f.add(j)
            track, face = tracks[i], faces[j]
            was_carried = j >= len(faces) - carried
            track.carried = track.carried + 1 if was_carried else 0
            before, then = track.landmarks.mean(axis=0), track.last_seen
            width, last_width = face_width(face), face_width(track.raw)
            if track.filter is not None and (
                    abs(width / max(last_width, 1e-6) - 1.0) > JUMP_SCALE
                    or np.hypot(*(face.mean(axis=0) - track.raw.mean(axis=0)))
                    > JUMP_MOVE * last_width):
                track.filter, track.scale = OneEuroFilter(**self.smoothing), width  # (a jump)
            track.raw = face
            track.last_seen = t
            if track.filter is not None:
                track.landmarks = track.filter(face / track.scale, t) * np.float32(track.scale)
            else:
                track.landmarks = face
            # (a carried face keeps the speed it was lost at: the flow over what hid it,
            # a board, barely moves, and the speed faded under MOVING had the hold
            # paint it there for half a second)
            if t > then and not was_carried:
                moved = float(np.hypot(*(track.landmarks.mean(axis=0) - before)))
                speed = moved / (t - then) / max(face_width(face), 1e-6)
                # the fastest of the last moments, fading over SPEED_MEMORY seconds
                # (a face going behind something slows down in the detector's eye)
                faded = track.speed * math.exp(-(t - then) / SPEED_MEMORY)
                track.speed = speed if math.isinf(track.speed) else max(speed, faded)
        for j, face in enumerate(faces[: len(faces) - carried]):  # (a carried one has its track)
            if j not in used_f:
                scale = face_width(face)
                filt = OneEuroFilter(**self.smoothing) if self.smoothing else None
                if filt is not None:
                    filt(face / scale, t)
                tracks.append(_Track(landmarks=face, raw=face, scale=scale, last_seen=t,
                                     filter=filt, head=self._coherence(),
                                     slots=[self._kernels.host_buffers() for _ in range(3)]))
        seen = [_box(tr.raw) for tr in tracks if tr.last_seen == t]
        # (the looks of the faces seen now are recorded later: _record_looks)
        alive = [tr for tr in tracks if tr.last_seen == t or (
            t - tr.last_seen <= self.hold and tr.speed <= MOVING
            and _held(_box(tr.raw), seen, shape) and _still_there(tr, frame))]
        alive.sort(key=lambda tr: tr.last_seen, reverse=True)  # faces seen now first
        self._tracks = alive[: self.max_faces]
        order = sorted(self._tracks, key=lambda tr: face_width(tr.landmarks))
        if order:
            main = self._main
            if not any(tr is main for tr in order) or (
                    face_width(main.landmarks) < MAIN_KEEP * face_width(order[-1].landmarks)):
                main = order[-1]
            order = [tr for tr in order if tr is not main] + [main]
            self._main, self._last_any = main, main.landmarks
        return order

    def _record_looks(self, frame, t):
        """Record how the box of each face seen at ``t`` looks in ``frame``
        (:func:`_look`), for :func:`_still_there` to compare with once it
        is lost. Only frames after this one read the looks: :meth:`_prepare`
        records them once it has started the flow (with ``device="cuda"``
        in its thread), not before (0.7 ms a frame at 1920x1080 on an H200
        machine, which the flow, the longest path, waited for)."""
        for tr in self._tracks:
            if tr.last_seen == t:
                tr.look = _look(frame, _box(tr.raw))

    def _keep_params(self, params):
        keep = 2.0 * params.threshold if self.keep_threshold is None else float(self.keep_threshold)
        return LookupParams(params.lam_pos, params.lam_app, keep, params.levels)

    def _paint(self, prepared, out):
        """The second half of a frame: each head looked up (sources kept
        along the flow), blended, filtered over time and composited, on the
        background (or on it stylized). It reads and writes only the state of
        this half, and the arrays of ``prepared``."""
        options, kernels = self.options, self._kernels
        frame, tracks = prepared.frame, prepared.tracks
        h, w = frame.shape[:2]
        times = dict(prepared.times)
        if prepared.restart:  # a new stroke layout, or a new shot: start afresh
            for track in tracks:
                track.head.clear()
            self._background.clear()
        self.last_landmarks = prepared.landmarks
        self.last_boxes = [r.box for r in prepared.regions]
        self.last_searched = prepared.searched
        self.last_nnf = []
        flow = prepared.flow
        canvas = kernels.canvas(out, self._work)  # the frame the kernels paint
        if prepared.whole:
            ones = self._work.get("ones", (h, w), np.bool_)
            ones[...] = True
            nnf_bg = self._coherent_lookup(self._background, prepared.pos_whole, None, (0, 0), ones,
                                           self._bg_params, prepared.main, flow, prepared, times)
            t0 = time.perf_counter()
            kernels.blend(kernels.image, nnf_bg, options.voting, out=canvas)
            _add(times, "blend", t0)
            self._filter(self._background, canvas, ones, (0, 0), flow, times)
        else:
            self._background.clear()
            kernels.load(frame if prepared.frame_dev is None else prepared.frame_dev, canvas)
        for track, landmarks, guides in zip(tracks, prepared.landmarks, prepared.guides):
            if guides is None:  # an empty box
                track.head.clear()
                continue
            self._paint_face(track, landmarks, guides, flow, canvas, prepared, times)
        if canvas is not out:
            t0 = time.perf_counter()
            kernels.unload(canvas, out)
            times["download"] = _ms(t0)
        self.last_times = times
        return out

    def _pos_buffer(self, slots, work, index, shape):
        """A frame's positional guide buffer: the frame's slot of three (a
        lookup keeps the previous frame's guide, ``_Coherence.pos``, while
        the worker of :meth:`prefetch` makes the next frame's); on the
        device, the frame's of three buffers in ``work``."""
        if self.device == "cpu":
            return slots.get("pos", tuple(shape) + (2,), np.float32)
        return work.get(f"pos{index % 3}", tuple(shape) + (2,), np.float32)

    def _flow(self, frame, boxes, whole, slot, times):
        """Backward optical flow (this frame to the previous) on the head
        ``boxes`` (x0, y0, x1, y1) (the whole frame where ``whole``), as
        ((x0, y0), (H, W, 2) float32) where the kernels read it, or None."""
        if self.temporal != "flow":
            return None
        times.setdefault("flow", 0.0)
        flow = None
        if boxes or whole:
            h, w = frame.shape[:2]
            if whole:
                box = (0, 0, w, h)
            else:
                # the boxes' bounding box: their outer band (the soft edge of the
                # head mask, 2.5 sigma wide) is where content may come in from
                # outside since the previous frame, and barely shows
                box = _bounding_box(boxes)
            flow_field = self._flow_on(frame, box, slot, times)
            if flow_field is not None:
                t0 = time.perf_counter()
                if self.device == "cpu":
                    flow = (flow_field.origin, self._host_flow(flow_field, slot))
                else:  # the half-size flow (copied there if made on the host), to full size there
                    half = flow_field.half
                    if not self._device_flow:
                        half = self._kernels.put(half, self._work, f"flow_half{slot}")
                    full = self._kernels.upsample_flow(
                        half, flow_field.size, flow_field.pad,
                        out=self._work.get(f"flow{slot}", flow_field.shape, np.float32))
                    flow = (flow_field.origin, full)
                _add(times, "flow", t0)
        else:
            self._gray_of(frame, times)  # the next frame's flow needs this one
        return flow

    def _gray_of(self, frame, times):
        """This frame's grey image, made once per frame; the previous
        frame's stays in ``self._prev_gray``. With ``flow_engine="opencv"``
        OpenCV's (``cvtColor``), on the host; with ``"blit"`` the appearance
        guide's luminance, where the kernels run (on the device from the
        frame copied there)."""
        if self._gray_index != self._slot_index:
            import cv2

            t0 = time.perf_counter()
            self._gray_parity ^= 1  # two buffers: this frame's and the previous one's
            if self.flow_engine == "opencv":
                gray = self._guide_buffers.get(f"gray{self._gray_parity}", frame.shape[:2],
                                               np.uint8)
                cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY, dst=gray)
            else:
                gray = self._kernels.luminance(
                    frame if self._frame_dev is None else self._frame_dev,
                    out=self._flow_work.get(f"gray{self._gray_parity}", frame.shape[:2], np.uint8))
            self._prev_gray, self._gray = self._gray, gray
            self._gray_index = self._slot_index
            self._frame_flow = None
            _add(times, "flow", t0)
        return self._gray

    def _flow_on(self, frame, box, slot, times):
        """DIS flow of this frame to the previous one on ``box`` (x0, y0, x1,
        y1), as a :class:`_FlowField` (its half-size values in the frame's
        slot), or None (no previous frame of this size, or a box under 24 px:
        DIS needs 12 px on one side of the half-size images of :meth:`_dis_flow`).

        Kept for the frame: a later box inside it reuses it, and so does one
        that goes beyond it by at most :data:`_FLOW_REACH` px each way, the
        flow continued there by its edge values. (With ``landmark_every``,
        the flow that carried the landmarks is on the previous frame's head
        boxes; this frame's boxes are a few pixels elsewhere, and their outer
        band is the soft edge of the head mask.)"""
        gray = self._gray_of(frame, times)
        prev = self._prev_gray
        x0, y0, x1, y1 = box
        if prev is None or prev.shape != gray.shape or x1 - x0 < 24 or y1 - y0 < 24:
            return None
        flow_field = self._frame_flow
        if flow_field is not None:
            (fx0, fy0), (fh, fw) = flow_field.origin, flow_field.shape[:2]
            fx1, fy1 = fx0 + fw, fy0 + fh
            if fx0 <= x0 and fy0 <= y0 and x1 <= fx1 and y1 <= fy1:
                return flow_field
            grow = (max(fy0 - y0, 0), max(y1 - fy1, 0), max(fx0 - x0, 0), max(x1 - fx1, 0))
            if max(grow) <= _FLOW_REACH:
                self._frame_flow = flow_field.grown(grow)
                return self._frame_flow
        t0 = time.perf_counter()
        if self._device_flow:  # made where it is read, in the frame's slot there
            out = self._work.get(f"flow_half{slot}", ((y1 - y0 + 1) // 2, (x1 - x0 + 1) // 2, 2),
                                 np.float32)
            half = self._dis_flow(gray[y0:y1, x0:x1], prev[y0:y1, x0:x1], out=out)
        else:
            half = self._dis_flow(gray[y0:y1, x0:x1], prev[y0:y1, x0:x1],
                                  out_buffers=self._slots[slot])
        self._frame_flow = _FlowField((x0, y0), half, (y1 - y0, x1 - x0))
        _add(times, "flow", t0)
        return self._frame_flow

    def _host_flow(self, flow_field, slot):
        """The flow of ``flow_field`` on the host (:func:`upsample_flow`),
        made once, in the frame's slot (name ``"flow"``). A flow made on the
        device comes back for it at half size (the landmarks carried along
        it: ``landmark_every``, a face lost on the move)."""
        if flow_field.full is None:
            half = flow_field.half
            if self._device_flow:
                from blit.gpu import to_host

                half = to_host(half, out=self._slots[slot].get("flow_half_back", half.shape,
                                                               np.float32))
            flow_field.full = upsample_flow(
                half, flow_field.size, flow_field.pad,
                out=self._slots[slot].get("flow", flow_field.shape, np.float32))
        return flow_field.full

    def _dis_flow(self, cur, prev, *, out_buffers=None, out=None):
        """DIS flow (ultrafast preset) from ``cur`` to ``prev``, computed on
        the two one pyramid level down with DIS's finest scale one level
        finer, so at the preset's resolution still (a quarter of the full
        size), its displacements doubled to full-size pixels (into
        ``out_buffers``, name ``"flow_half"``; default the guides' own):
        DIS no longer builds the full-size level of its pyramid;
        :func:`upsample_flow` brings it to the full size. The flow stage of a stream on
        target1.mp4, the two ways interleaved frame by frame in one process:
        2.77 -> 2.42 ms at 640x480, 4.15 -> 3.51 ms at 768x1024; stability
        ratio 2.106 -> 2.086, patch distance 4.579 -> 4.586.

        Where :data:`FLOW_STRIPS_FROM` is set (not by default) and the
        half-size images have at least that many rows, DIS runs on their row
        strips (:func:`flow_strips`), each strip's in a thread of
        :meth:`_strip_threads` (:func:`dis_strips_flow`).

        With ``flow_engine="blit"``, :func:`blit.dis.dis_flow` (the same
        sizes), where the kernels run: ``cur`` and ``prev`` there, and
        ``out`` (the half-size flow, doubled) too where given."""
        import cv2

        buffers = self._guide_buffers
        h, w = cur.shape
        half = ((h + 1) // 2, (w + 1) // 2)  # cv2.pyrDown's size
        if out is None:
            out = (out_buffers or buffers).get("flow_half", half + (2,), np.float32)
        if self.flow_engine == "blit":
            kernels, work = self._kernels, self._flow_work
            cur_half = kernels.pyr_down(cur, out=work.get("flow_cur", half, np.uint8))
            prev_half = kernels.pyr_down(prev, out=work.get("flow_prev", half, np.uint8))
            flow = kernels.dis_flow(cur_half, prev_half, buffers=work,
                                    out=work.get("flow_dis", half + (2,), np.float32))
            return kernels.xp.multiply(flow, np.float32(2.0), out=out)
        cur_half = cv2.pyrDown(cur, dst=buffers.get("flow_cur", half, np.uint8))
        prev_half = cv2.pyrDown(prev, dst=buffers.get("flow_prev", half, np.uint8))
        rows = half[0]
        least = FLOW_STRIPS_FROM
        spans = flow_strips(rows) if least is not None and rows >= least else [(0, rows, 0, rows)]
        while len(self._dis) < len(spans):  # (one DIS a strip: they run at once)
            self._dis.append(_make_dis())
        if len(spans) == 1:
            # DIS allocates its output: handed a reused buffer, it crashed
            # (segfault) in a test whose box changes size between frames
            half_flow = self._dis[0].calc(cur_half, prev_half, None)
        else:
            half_flow = dis_strips_flow(cur_half, prev_half, spans, self._dis,
                                        out=buffers.get("flow_strips", half + (2,), np.float32),
                                        map=self._strip_threads().map)
        # pyrDown's pixel i is the full size's 2i: a displacement doubles. Doubled
        # before the upsampling, on a quarter of the values: the same bits (a
        # float's doubling is exact, and the interpolation's weights are the same)
        return np.multiply(half_flow, np.float32(2.0), out=out)

    def _strip_threads(self):
        """The threads that run the DIS of :func:`flow_strips`' strips at once
        (:meth:`_dis_flow`): :data:`FLOW_STRIP_THREADS`, at most the CPU's
        cores (more strips wait for a thread)."""
        return self._side_thread("strips", flow_strip_workers())

    def _positions(self, shape, tracks, boxes, main, index, times):
        """The frame's positional guides in its slot, as (the whole frame's,
        [each head's]): the whole frame's (``shape``) where the background
        follows the landmarks ``main`` (else None), and each head's on its
        box of ``boxes`` (None for an empty box). The largest face's head
        (the last) takes its box of the frame's guide (no seam with the
        background); every other face has its own guide, of its box only,
        in frame coordinates."""
        style, kernels = self.style, self._kernels
        t0 = time.perf_counter()
        pos_whole = None
        if main is not None:
            pos_whole = kernels.positional_guide(
                shape, main, style.landmarks,
                out=self._pos_buffer(self._slots[index % 3], self._work, index, shape))
        heads = []
        for track, (x0, y0, x1, y1) in zip(tracks, boxes):
            if x1 <= x0 or y1 <= y0:
                heads.append(None)
                continue
            slots = track.slots[index % 3]
            # (on the device, the head's buffers, named for the frame's slot of
            # three: the frame before may be painted meanwhile, the one before it kept)
            work = slots if self.device == "cpu" else track.head.work
            pos = self._pos_buffer(slots, work, index, (y1 - y0, x1 - x0))
            if pos_whole is not None and track is tracks[-1]:
                pos[...] = pos_whole[y0:y1, x0:x1]  # (a contiguous copy, for the kernels)
            else:
                shifted = track.landmarks - np.array([x0, y0], np.float32)
                pos = kernels.positional_guide((y1 - y0, x1 - x0), shifted, style.landmarks,
                                               out=pos)
            heads.append(pos)
        _add(times, "mls", t0)
        return pos_whole, heads

    def _face_guides(self, frame, frame_dev, track, region, index, times):
        """One head's guides in the frame's slot (:class:`_FaceGuides`), or
        None for an empty box; its positional guide (``pos``) is None, for
        the caller to set (:meth:`_positions`). On the device the appearance
        guide is made there, from the frame copied there (``frame_dev``)."""
        kernels = self._kernels
        x0, y0, x1, y1 = region.box
        if x1 <= x0 or y1 <= y0:
            return None
        slots = track.slots[index % 3]
        t0 = time.perf_counter()
        if self.device == "cpu":
            work, slot, image = slots, "", frame[y0:y1, x0:x1]
        else:
            work, slot, image = track.head.work, index % 3, frame_dev[y0:y1, x0:x1]
        if self.device == "cpu":
            mask = region.region().mask
        else:  # made there from its outline (passed by value)
            mask = kernels.outline_mask(region, out=work.get(f"mask{slot}", region.shape,
                                                             np.float32), buffers=work)
        app = kernels.target_appearance(image, kernels.quantiles, mask, buffers=work,
                                        out=work.get(f"app{slot}", mask.shape, np.float32))
        _add(times, "appearance", t0)
        # pixels whose mask would not change the composite by half a level are skipped
        active = kernels.xp.greater_equal(mask, MIN_WEIGHT,
                                          out=work.get(f"active{slot}", mask.shape, np.bool_))
        return _FaceGuides(region.box, None, app, mask, active)

    def _paint_face(self, track, landmarks, guides, flow, canvas, prepared, times):
        """One head: its NNF (:meth:`_coherent_lookup`), blended, filtered
        over time and composited into ``canvas``."""
        kernels = self._kernels
        x0, y0, x1, y1 = guides.box
        work = track.head.work
        nnf = self._coherent_lookup(track.head, guides.pos, guides.app, (x0, y0), guides.active,
                                    self._head_params, landmarks, flow, prepared, times)
        self.last_nnf.append(nnf)
        t0 = time.perf_counter()
        shown = nnf  # (the NNF as looked up is what the next frame keeps)
        if self.options.denoise and self.options.voting > 0:
            shown = kernels.denoise(nnf, self.options.voting, work=work,
                                    out=work.get("denoised", nnf.shape, np.int32))
        head = kernels.blend(kernels.image, shown, self.options.voting,
                             out=work.get("head", (y1 - y0, x1 - x0, 3), np.uint8))
        _add(times, "blend", t0)
        self._filter(track.head, head, guides.active, (x0, y0), flow, times)
        t0 = time.perf_counter()
        # in place, one pass
        kernels.composite(canvas, head, HeadRegion(guides.box, guides.mask), out=canvas)
        _add(times, "composite", t0)

    def _filter(self, state, image, active, origin, flow, times):
        """Mix the flow-warped previous output of this region into ``image``
        (:func:`blit.temporal.temporal_filter`); updates ``state``."""
        if not self.history_weight or self.temporal != "flow":
            return
        t0 = time.perf_counter()
        h, w = image.shape[:2]
        f, f_origin = _box_flow(flow if state.hist is not None else None, origin, (h, w))
        hist = state.work.get(f"hist{state.parity}", (h, w, 3), np.float32)
        state.hist = self._kernels.temporal_filter(image, state.hist, f, self.history_weight,
                                                   active=active, origin=origin,
                                                   prev_origin=state.hist_origin,
                                                   flow_origin=f_origin, history=hist,
                                                   buffers=state.work)
        state.hist_origin = (int(origin[0]), int(origin[1]))
        _add(times, "temporal", t0)

    def _coherent_lookup(self, state, pos, app, origin, active, params, landmarks, flow, prepared,
                         times):
        """NNF of one region: propagated from the previous frame where it still
        fits, looked up afresh elsewhere; updates ``state``."""
        style, kernels = self.style, self._kernels
        h, w = pos.shape[:2]
        buffers = state.work
        fresh = buffers.get("fresh", (h, w, 2), np.int32)
        jitter, labels = prepared.jitter, prepared.labels
        if self.temporal is None:
            t0 = time.perf_counter()
            nnf = kernels.lookup(pos, app, kernels.appearance, kernels.table, kernels.app_bin,
                                 style.cell, params, jitter, origin=origin, active=active,
                                 labels=labels, out=fresh, buffers=buffers)
            _add(times, "lookup", t0)
            return nnf
        state.parity ^= 1  # the previous source field stays readable
        src = buffers.get(f"src{state.parity}", (h, w, 2), np.float32)
        nnf = buffers.get("nnf", (h, w, 2), np.int32)
        need = buffers.get("need", (h, w), np.bool_)
        t0 = time.perf_counter()
        f, f_origin = _box_flow(flow if state.src is not None else None, origin, (h, w))
        if state.src is not None and (self.temporal == "guide" or f is not None):
            inv_j = None if f is not None else guide_inverse_jacobian(landmarks, style.landmarks)
            kernels.propagate(state.src, pos, app, kernels.appearance, self._keep_params(params),
                              flow=f, flow_origin=f_origin, prev_pos=state.pos,
                              inverse_jacobian=inv_j, prev_origin=state.origin, origin=origin,
                              active=active, out=(src, nnf, need), buffers=buffers)
        else:
            src[...] = NO_SOURCE
            nnf[...] = _INACTIVE
            need[...] = active
        _add(times, "propagate", t0)
        t0 = time.perf_counter()
        kernels.lookup(pos, app, kernels.appearance, kernels.table, kernels.app_bin, style.cell,
                       params, jitter, origin=origin, active=need, labels=labels,
                       out=fresh, buffers=buffers)
        kernels.merge(fresh, need, nnf, src)
        _add(times, "lookup", t0)
        # pos is in the frame's slot of three (on the device, its buffer of
        # three): holding it for the next frame is safe
        state.src, state.pos, state.origin = src, pos, (int(origin[0]), int(origin[1]))
        return nnf


#: How far (px) a head box may reach beyond the flow computed earlier in the
#: frame and still use it, continued by its edge values (Stylizer._flow_on).
_FLOW_REACH = 16

#: The least rows of the stream's half-size images (a head box of twice as
#: many) whose DIS runs on row strips in threads of its own
#: (:func:`dis_strips_flow`); None (the default): DIS on the whole image.
#: Not on by default: a candidate for ``device="cuda"``, measured on the CPU
#: only (``benchmarks/bench_flow.py``, ``bench_gpu.py --flow-ab``). OpenCV
#: runs a ``parallel_for_`` called while another thread's runs on the
#: calling thread alone (one flag for the whole process), and on a GPU
#: machine the stream's DIS, beside the masks' and guides' OpenCV calls, took
#: 5.5-6.0 ms a frame against 3.5 alone and 9.5 on one thread; the strips'
#: DIS run in the stream's own threads. Set to 192 (target1's heads at
#: 768x1024, 440 half-size rows, in 3 strips): on target1.mp4 the stability
#: ratio 2.08 against 2.09, the patch distance 4.58 against 4.59. On this
#: project's 2-core CPU the strips in threads took 1.03x DIS on the whole
#: half-size image of a 966x1030 head box (a 1920x1080 close-up), 1.21x of a
#: 665x880 one (target1's at 768x1024), and the CPU stream's flow at
#: 1920x1080 went 12.7-13.5 -> 15.3-15.5 ms a frame (docs/performance.md).
FLOW_STRIPS_FROM = None
#: Rows of a strip (:func:`flow_strips`): the image is cut into
#: ``round(rows / FLOW_STRIP_ROWS)`` parts.
FLOW_STRIP_ROWS = 128
#: Rows each strip's DIS sees beyond its own on either side (fewer at the
#: image's edges), so that content moving across a cut is seen on both sides.
FLOW_STRIP_OVERLAP = 16
#: A strip's first row (its overlap included) is a multiple of this: DIS's
#: patches, 4 px apart on its finest scale (a quarter of the half size),
#: then lie where the whole image's would.
FLOW_STRIP_ALIGN = 8
#: At most this many threads run the strips at once (:meth:`Stylizer._strip_threads`).
FLOW_STRIP_THREADS = 8


def flow_strip_workers():
    """Threads that run :func:`flow_strips`' strips at once:
    :data:`FLOW_STRIP_THREADS`, at most the CPU's cores."""
    import os

    return max(1, min(FLOW_STRIP_THREADS, os.cpu_count() or 1))


def _make_dis():
    """The stream's DIS: the ultrafast preset, its finest scale one level
    finer (it runs on half-size images: :meth:`Stylizer._dis_flow`)."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    dis.setFinestScale(dis.getFinestScale() - 1)
    return dis


def flow_strips(rows, *, strip=FLOW_STRIP_ROWS, overlap=FLOW_STRIP_OVERLAP,
                align=FLOW_STRIP_ALIGN):
    """The row strips of an image of ``rows`` rows on which DIS runs apart,
    as [(a, b, c0, c1)]: DIS sees rows a..b, and its rows c0..c1 (those of
    the strip, which cut the image into ``round(rows / strip)`` near-equal
    parts) are kept. a is c0 - ``overlap`` rounded down to a multiple of
    ``align``, b is c1 + ``overlap``, both within the image. An image of
    fewer than 1.5 * ``strip`` rows is one strip, (0, rows, 0, rows)."""
    n = max(1, int(rows / strip + 0.5))
    cuts = [k * rows // n for k in range(n + 1)]
    return [(max(c0 - overlap, 0) // align * align, min(c1 + overlap, rows), c0, c1)
            for c0, c1 in zip(cuts[:-1], cuts[1:])]


def dis_strips_flow(cur, prev, spans, dis, *, out=None, map=map):
    """DIS flow from ``cur`` to ``prev`` (uint8 images of one shape) on the
    row strips ``spans`` (:func:`flow_strips`): strip k by ``dis[k]`` (one
    object a strip: they may run at once) on rows a..b of both images, its
    rows c0..c1 written into ``out`` (H, W, 2) float32. ``map`` runs the
    strips (the builtin: one after the other; an executor's: in its
    threads); the result is the same either way.

    Why strips (:data:`FLOW_STRIPS_FROM`): OpenCV runs a ``parallel_for_``
    called while another thread's runs on its calling thread alone (a
    process-wide flag), so a DIS beside the stream's other OpenCV calls lost
    its threads; the strips' DIS in threads of their own do not need
    OpenCV's."""
    if out is None:
        out = np.empty(cur.shape + (2,), np.float32)

    def one(k):
        a, b, c0, c1 = spans[k]
        # (DIS allocates its output: handed a reused buffer, it crashed)
        out[c0:c1] = dis[k].calc(cur[a:b], prev[a:b], None)[c0 - a:c1 - a]

    for _ in map(one, range(len(spans))):
        pass
    return out


def _bounding_box(boxes):
    """The (x0, y0, x1, y1) box around boxes (x0, y0, x1, y1)."""
    b = np.array(boxes)
    return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


def _box_flow(flow, origin, shape):
    """``(flow, flow_origin)`` when the frame's flow covers the box of ``shape``
    at ``origin``, else ``(None, None)`` (start the box afresh)."""
    if flow is None:
        return None, None
    f_origin, f = flow
    bx, by = origin[0] - f_origin[0], origin[1] - f_origin[1]
    if bx >= 0 and by >= 0 and by + shape[0] <= f.shape[0] and bx + shape[1] <= f.shape[1]:
        return f, f_origin
    return None, None


def _ms(t0):
    return (time.perf_counter() - t0) * 1e3


def _add(times, stage, t0):
    times[stage] = times.get(stage, 0.0) + _ms(t0)
