"""Facial landmarks in the dlib / iBUG-300W 68-point order.

Three parts:

* ``NAME.lm68.txt`` files (:func:`read_lm68`, :func:`write_lm68`): 68 lines
  ``x y`` in pixels, the format FaceBlit ships beside each style exemplar.
* :data:`MESH_TO_68` / :func:`mesh_to_68`: a fixed mapping from the 468-vertex
  mediapipe FaceMesh to the 68 dlib points, each point being the mean of two
  mesh vertices. The table was fitted on hand-corrected landmarks (see the
  comment above it and ``demos/fit_landmark_map.py``).
* :class:`FaceLandmarker` / :func:`detect_faces` / :func:`detect_landmarks`:
  run mediapipe FaceMesh on a BGR image and return 68-point landmarks in
  pixels (of each face, or of the largest).

Landmarks are (N, 2) float32 arrays of (x, y) pixel coordinates; images are
(H, W, 3) uint8 BGR. mediapipe is imported only when a :class:`FaceLandmarker`
is created, so importing this module is cheap.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
import threading

import numpy as np

from guides.io import InputError, check_bgr_frame, filtered_native_stderr, usual_permissions

__all__ = [
    "CUT_THRESHOLD",
    "MESH_TO_68",
    "PAN_RESPONSE",
    "FaceLandmarker",
    "detect_faces",
    "detect_landmarks",
    "detect_upright_faces",
    "detect_upright_landmarks",
    "face_turns",
    "check_face_points",
    "cut_sample",
    "check_landmarks_fit",
    "draw_landmarks",
    "interocular_distance",
    "is_cut",
    "mesh_to_68",
    "read_lm68",
    "write_lm68",
]

N_POINTS = 68
#: Least distance (px) between the eye centres of a landmark file's face.
MIN_INTEROCULAR = 2.0
#: Least width of a landmark file's jaw (points 1 to 17) in eye distances.
#: Over the 12 FaceBlit styles' hand-corrected files it is 1.84-2.28 (and
#: 2.1-2.2 in mediapipe's on target1.mp4); a jaw point copied over another
#: or left at 0 0 gives about 0, and the painting scale, which goes by the
#: jaw's width (:func:`blit.stylize.paint_scale`), would collapse with it.
MIN_JAW_WIDTH = 0.5

# ---------------------------------------------------------------------------
# NAME.lm68.txt
# ---------------------------------------------------------------------------


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_lm68(path: str | os.PathLike, *, check_face: bool = True) -> np.ndarray:
    """Read a 68-point landmark file.

    The file holds 68 lines ``x y`` (integers or decimals separated by
    whitespace or a comma) in the dlib / iBUG-300W order. An optional first
    line ``68``, comments (from a ``#`` to the end of its line), blank
    lines, CRLF line ends and a UTF-8 byte-order mark are accepted.

    Parameters
    ----------
    path : str or os.PathLike
        The ``NAME.lm68.txt`` file.
    check_face : bool
        Also refuse points that cannot be a face's (:func:`check_face_points`);
        False reads them as they are (to draw a file and see what is wrong).

    Returns
    -------
    points : (68, 2) float32 ndarray
        (x, y) pixel coordinates.

    Raises
    ------
    InputError
        If the file is missing or unreadable, a line is not two finite
        numbers (the message names the 1-based line number), the file does
        not hold exactly 68 points, or the points cannot be a face's
        (:func:`check_face_points`: all at one place, say).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, expected a landmark file NAME.lm68.txt")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (expected 68 lines 'x y')") from None

    # (line number, text) of the lines that hold something but a comment (from
    # a '#' on); \n, \r\n and \r end a line
    lines = [(number, line.split("#", 1)[0])
             for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, line) for number, line in lines if line.strip()]
    if lines:
        head = lines[0][1].split()
        if len(head) == 1 and re.fullmatch(r"[+-]?\d+", head[0]):
            if int(head[0]) != N_POINTS:
                raise InputError(
                    f"{path} line {lines[0][0]}: header says {int(head[0])} points, "
                    f"expected {N_POINTS}"
                )
            lines = lines[1:]

    points = []
    for number, line in lines:
        fields = line.replace(",", " ").split()
        values = None
        if len(fields) == 2:
            try:
                values = (float(fields[0]), float(fields[1]))
            except ValueError:
                values = None
        if values is None:
            got = repr(_short(line.strip())) if line.strip() else "an empty line"
            raise InputError(f"{path} line {number}: expected two numbers 'x y', got {got}")
        if not (math.isfinite(values[0]) and math.isfinite(values[1])):
            raise InputError(f"{path} line {number}: coordinates must be finite, got {_short(line.strip())!r}")
        points.append(values)

    if len(points) != N_POINTS:
        raise InputError(f"{path}: expected {N_POINTS} points, found {len(points)}")
    points = np.asarray(points, dtype=np.float32)
    if check_face:
        check_face_points(points, path)
    return points


def check_face_points(points: np.ndarray, path) -> np.ndarray:
    """Refuse 68 points read from ``path`` that cannot be a face's: its eyes
    at one place (under :data:`MIN_INTEROCULAR` px apart), its jaw's ends
    (points 1 and 17) under :data:`MIN_JAW_WIDTH` eye distances apart, or
    the points mirrored (:func:`_mirrored`). Returns ``points``.

    Raises
    ------
    InputError
        Naming the file and what is wrong.
    """
    iod = interocular_distance(points)
    if iod < MIN_INTEROCULAR:
        raise InputError(f"{path}: the eyes (points 37-48) are {iod:.2g} px apart; not the "
                         "landmarks of a face")
    jaw = float(np.hypot(*(np.asarray(points[16], np.float64) - points[0])))
    if jaw < MIN_JAW_WIDTH * iod:
        raise InputError(f"{path}: the jaw's ends (points 1 and 17) are {jaw:.3g} px apart, "
                         f"{jaw / iod:.2g} of the eyes' distance ({iod:.3g} px; a face's is about "
                         "2); not the landmarks of a face (a point copied over another, or left "
                         "at 0 0?)")
    if _mirrored(points):
        raise InputError(f"{path}: its points are mirrored: left and right swapped, y counted "
                         "up from the bottom, or x and y swapped (in dlib's 68-point order "
                         "points 37-42 are the eye on the image's left, y counts down)")
    return points


def _mirrored(points: np.ndarray) -> bool:
    """Whether 68 points are a mirror image of dlib's order: going from the
    eye of points 37-42 to the other, the mouth lies to the left (y down),
    where on any face, however turned in the image, it lies to the right."""
    p = np.asarray(points, np.float64)
    eye1, eye2, mouth = p[36:42].mean(0), p[42:48].mean(0), p[48:68].mean(0)
    across, down = eye2 - eye1, mouth - (eye1 + eye2) / 2
    return bool(across[0] * down[1] - across[1] * down[0] < 0)


def check_landmarks_fit(points: np.ndarray, shape, landmarks_path, image_path) -> np.ndarray:
    """Refuse landmarks read from ``landmarks_path`` that cannot be those of
    the image ``image_path`` of ``shape``: a point further than half the
    image's width or height outside it (a file of another image, or of
    another resolution). Returns ``points``.

    Raises
    ------
    InputError
        Naming both files and the image's size.
    """
    h, w = shape[:2]
    x, y = points[:, 0], points[:, 1]
    far = (x < -0.5 * w) | (x > 1.5 * w) | (y < -0.5 * h) | (y > 1.5 * h)
    if far.any():
        k = int(np.argmax(far))
        raise InputError(f"{landmarks_path}: landmarks lie far outside the {w}x{h} image "
                         f"{image_path} ({int(far.sum())} of 68; point {k + 1} at "
                         f"{_format_coordinate(x[k])} {_format_coordinate(y[k])})")
    return points


def _format_coordinate(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_lm68(path: str | os.PathLike, points: np.ndarray) -> None:
    """Write 68 landmarks as 68 lines ``x y`` with at most two decimals.

    The file is written atomically: to a temporary file in the same folder,
    then renamed over ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, conventionally ``NAME.lm68.txt``.
    points : (68, 2) float ndarray
        (x, y) pixel coordinates; must be finite.

    Raises
    ------
    ValueError
        If ``points`` is not a finite (68, 2) array.
    InputError
        If the folder does not exist or is not writable.
    """
    path = os.fspath(path)
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (N_POINTS, 2):
        raise ValueError(f"{path}: expected (68, 2) landmarks, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError(f"{path}: landmarks must be finite")
    text = "".join(f"{_format_coordinate(x)} {_format_coordinate(y)}\n" for x, y in pts)

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: folder {folder} does not exist")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".partial")
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        usual_permissions(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        raise InputError(f"{path}: cannot be written ({exc.strerror or exc})") from None


def interocular_distance(points68: np.ndarray) -> float:
    """Distance between the two eye centres of 68-point landmarks.

    The eye centres are the means of points 36-41 and 42-47 (0-based).

    Parameters
    ----------
    points68 : (68, 2) float ndarray
        (x, y) landmarks in the dlib order.

    Returns
    -------
    float
        The inter-ocular distance in the landmarks' units (pixels).
    """
    pts = np.asarray(points68, dtype=np.float64)
    if pts.shape != (N_POINTS, 2):
        raise ValueError(f"expected (68, 2) landmarks, got shape {pts.shape}")
    return float(np.linalg.norm(pts[36:42].mean(axis=0) - pts[42:48].mean(axis=0)))


#: The 68 points' outlines in dlib's order: (first, last, closed) for the
#: jaw, the brows, the nose's bridge and base, the eyes and the lips.
OUTLINES = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False),
            (31, 35, False), (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))


def draw_landmarks(image: np.ndarray, points68: np.ndarray, *,
                   numbers: bool = True) -> np.ndarray:
    """A copy of ``image`` with 68 landmarks drawn on it, to check them by eye.

    The outlines of :data:`OUTLINES` in green, each point a red dot and,
    with ``numbers``, its 1-based line number in a ``NAME.lm68.txt`` file
    (the number a text editor shows), so that a misplaced point can be
    found and corrected there. Lines, dots and numbers are sized by the
    face's inter-ocular distance.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
        BGR image.
    points68 : (68, 2) float ndarray
        (x, y) pixel coordinates in the dlib order.
    numbers : bool
        Whether to write each point's line number beside it.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    import cv2

    out = check_bgr_frame(image, "image").copy()
    pts = np.asarray(points68, dtype=np.float64)
    iod = interocular_distance(pts)  # checks the shape
    if not np.isfinite(pts).all():
        raise ValueError("landmarks must be finite")
    # points far off the image (a file of another image's size, drawn before it is
    # refused) are drawn towards where they are, and the sizes kept to the image's:
    # OpenCV's fixed point and line widths overflowed (a traceback)
    side = float(max(out.shape[:2]))
    iod = min(iod, 4.0 * side)
    pts = np.clip(pts, -4.0 * side, 5.0 * side)
    shift = 4  # sub-pixel positions: cv2 takes fixed point with 4 fraction bits
    fixed = np.round(pts * (1 << shift)).astype(np.int32)
    width = max(1, round(iod / 150))
    radius = max(2.0, iod / 60)
    for first, last, closed in OUTLINES:
        cv2.polylines(out, [fixed[first:last + 1].reshape(-1, 1, 2)], closed, (0, 200, 0),
                      width, cv2.LINE_AA, shift)
    for x, y in fixed:
        cv2.circle(out, (int(x), int(y)), round(radius * (1 << shift)), (0, 0, 255), -1,
                   cv2.LINE_AA, shift)
    if numbers:
        # each number beside its point, away from the middle of its outline
        # (towards it for the inner lips, so as not to meet the outer lips')
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, iod / 400)
        thick = max(1, round(scale * 1.5))
        for first, last, _ in OUTLINES:
            part = pts[first:last + 1]
            middle = pts[48:60].mean(0) if first == 60 else part.mean(0)
            for k, p in enumerate(part, start=first):
                away = (p - middle) * (-1 if first == 60 else 1)
                norm = np.hypot(*away)
                away = away / norm if norm > 1e-6 else np.array([0.0, -1.0])
                (tw, th), _ = cv2.getTextSize(str(k + 1), font, scale, thick)
                centre = p + away * (radius + 0.6 * max(tw, th))
                org = (int(round(centre[0] - tw / 2)), int(round(centre[1] + th / 2)))
                cv2.putText(out, str(k + 1), org, font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
                cv2.putText(out, str(k + 1), org, font, scale, (255, 255, 255), thick,
                            cv2.LINE_AA)
    return out


# ---------------------------------------------------------------------------
# mediapipe FaceMesh -> dlib 68
# ---------------------------------------------------------------------------

# MESH_TO_68[k] = (i, j): dlib point k is the mean of FaceMesh vertices i and j
# (i == j: a single vertex). Fitted by demos/fit_landmark_map.py, not chosen by
# hand: mediapipe FaceMesh (static_image_mode=True, refine_landmarks=True) was
# run on the 12 FaceBlit style portraits and on their mirror images (landmark
# order mirrored too), 24 exemplars, against the hand-corrected NAME.lm68.txt;
# for each point, the pair among its 40 nearest vertices whose mean minimises
# the error normalised by inter-ocular distance (IOD), averaged over the
# exemplars, with left/right points constrained to mirror vertices (mirror map
# measured on the same image pairs).
# Mean error 0.054 IOD on the fitting data, 0.058 IOD leave-one-style-out;
# by region (fit / held out): jaw 0.098 / 0.100, brows 0.058 / 0.068,
# nose 0.039 / 0.041, eyes 0.031 / 0.032, lips 0.036 / 0.039.
# The jaw ends 0 and 16 are vertices 127 and 356 (front of the ear, near eye
# height), where the dlib jaw line starts, not at the temple.
MESH_TO_68 = np.array([
    (127, 127), (137, 234), (58, 227), (215, 215), (172, 172), (136, 150),  # 0-5
    (149, 149), (148, 176), (152, 152), (377, 400), (378, 378), (365, 379),  # 6-11
    (397, 397), (435, 435), (288, 447), (366, 454), (356, 356), (46, 156),  # 12-17
    (70, 105), (104, 222), (66, 107), (9, 56), (9, 286), (296, 336),  # 18-23
    (333, 442), (300, 334), (276, 383), (189, 413), (128, 357), (236, 456),  # 24-29
    (220, 440), (75, 240), (2, 240), (2, 2), (2, 460), (305, 460),  # 30-35
    (33, 130), (130, 222), (56, 159), (155, 173), (110, 243), (25, 145),  # 36-41
    (362, 398), (286, 386), (359, 442), (263, 359), (255, 374), (339, 463),  # 42-47
    (61, 61), (37, 61), (37, 37), (39, 269), (267, 267), (267, 291),  # 48-53
    (291, 291), (318, 406), (18, 318), (17, 17), (18, 88), (88, 182),  # 54-59
    (77, 78), (183, 312), (88, 310), (87, 407), (307, 308), (14, 318),  # 60-65
    (179, 403), (14, 88),  # 66-67
], dtype=np.int64)
MESH_TO_68.setflags(write=False)

#: Number of FaceMesh vertices proper; refine_landmarks=True appends 10 iris points.
MESH_VERTICES = 468


def mesh_to_68(mesh_xy: np.ndarray) -> np.ndarray:
    """Convert a mediapipe FaceMesh to 68 dlib-order landmarks.

    Parameters
    ----------
    mesh_xy : (478, 2) or (468, 2) float ndarray
        FaceMesh vertex (x, y) coordinates, with or without the 10 iris
        points that ``refine_landmarks=True`` appends.

    Returns
    -------
    points : (68, 2) float32 ndarray
        Each point is the mean of the two vertices named in :data:`MESH_TO_68`.
    """
    mesh = np.asarray(mesh_xy, dtype=np.float64)
    if mesh.ndim != 2 or mesh.shape[1] != 2 or mesh.shape[0] < MESH_VERTICES:
        raise ValueError(f"expected a (478, 2) or (468, 2) FaceMesh, got shape {mesh.shape}")
    return (0.5 * (mesh[MESH_TO_68[:, 0]] + mesh[MESH_TO_68[:, 1]])).astype(np.float32)


# ---------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------

# One NormalizedLandmark of a serialized NormalizedLandmarkList with x, y and z
# set and nothing else (what FaceMesh gives): the list's field 1 (tag 0x0a),
# length 15, then x, y and z as fixed32 fields (tags 0x0d, 0x15, 0x1d), which
# are little-endian IEEE floats.
_RECORD = np.dtype([("head", "u1", 3), ("x", "<f4"), ("tag_y", "u1"), ("y", "<f4"),
                    ("tag_z", "u1"), ("z", "<f4")])
_RECORD_HEAD = np.array([0x0A, 15, 0x0D], np.uint8)


def _normalized_xy(landmark_list) -> np.ndarray:
    """The (x, y) of a mediapipe ``NormalizedLandmarkList`` as an (N, 2)
    float64 array.

    Read from the message's wire bytes when every landmark has exactly x, y
    and z set (checked byte by byte), which is several times faster than
    reading the 478 landmarks one attribute at a time (0.4 ms); any other
    layout is read attribute by attribute.
    """
    raw = landmark_list.SerializeToString()
    n = len(landmark_list.landmark)
    if n and len(raw) == n * _RECORD.itemsize:
        rec = np.frombuffer(raw, _RECORD)
        if ((rec["head"] == _RECORD_HEAD).all() and (rec["tag_y"] == 0x15).all()
                and (rec["tag_z"] == 0x1D).all()):
            return np.stack([rec["x"], rec["y"]], axis=1).astype(np.float64)
    return np.array([(p.x, p.y) for p in landmark_list.landmark], dtype=np.float64).reshape(-1, 2)

# Lines that mediapipe 0.10.x / TF Lite print to the process's stderr when a
# graph first runs: harmless, and not controllable by any setting.
_NATIVE_NOISE = re.compile(
    rb"^(INFO: Created TensorFlow Lite .*delegate"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\])"
)


def _filtered_native_stderr():
    """:func:`guides.io.filtered_native_stderr` of mediapipe's start-up noise."""
    return filtered_native_stderr(_NATIVE_NOISE)


#: A cut (a new shot) is a frame whose thumbnail (:func:`cut_sample`: one
#: pixel a 16x16 cell, the mean of four) differs from the previous frame's
#: by more than this on average (levels of 0-255), also after the previous
#: frame is moved by the shift that explains it best (:data:`PAN_RESPONSE`).
#: Consecutive frames of target1.mp4, a person turning and talking, differ
#: by at most 2.6 (5.5 five frames apart); a cut from it to one of the
#: FaceBlit portraits or target3.png by 54-104, and between two of those
#: portraits by 45 at least.
CUT_THRESHOLD = 30.0

#: A frame that differs by more than :data:`CUT_THRESHOLD` is compared again
#: after the global shift that phase correlation finds, where its peak
#: response is at least this: a fast or shaky pan over a textured scene
#: differs by up to 39 as it comes, by 3-18 once moved, with a response of
#: 0.73-1.01; the cuts of a user's edited clips answered -0.12-0.54, or, at
#: a response near 1 (the lights switched on), differed by 61 moved.
#: Without it a fast pan restarted the painting on every frame.
PAN_RESPONSE = 0.65


def is_cut(previous, frame, threshold=CUT_THRESHOLD):
    """Whether ``frame`` starts a new shot after ``previous`` (both (H, W, 3)
    uint8, or their samples from :func:`cut_sample`; None: no previous
    frame, not a cut): they differ by more than ``threshold`` on average,
    both as they are and after the shift of a pan (:data:`PAN_RESPONSE`).
    A frame of another size than the previous one is a cut; but the
    samples of frames under 16 px apart in width and height are of one
    size (one pixel a 16x16 cell): a caller that keeps samples compares
    the frames' shapes too."""
    if previous is None:
        return False
    if previous.shape != frame.shape:
        return True
    if float(np.abs(previous.astype(np.int16) - frame).mean()) <= threshold:
        return False
    return _moved_difference(previous, frame) > threshold


def _moved_difference(previous, frame):
    """The mean difference of ``frame`` and ``previous`` moved by the global
    shift phase correlation finds between them (inside the part both
    show); infinite where it finds none (a response under
    :data:`PAN_RESPONSE`, a shift past a quarter of the picture, a picture
    too small to tell)."""
    import cv2

    h, w = frame.shape[:2]
    if h < 8 or w < 8:
        return math.inf

    def grey(image):
        image = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return image.astype(np.float32)

    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(grey(previous), grey(frame), window)
    if not (response >= PAN_RESPONSE and abs(dx) <= w / 4 and abs(dy) <= h / 4):
        return math.inf
    moved = cv2.warpAffine(previous, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mx, my = int(math.ceil(abs(dx))) + 1, int(math.ceil(abs(dy))) + 1
    inside = (slice(my, h - my), slice(mx, w - mx))
    return float(np.abs(moved[inside].astype(np.int16) - frame[inside]).mean())


def cut_sample(frame):
    """What :func:`is_cut` compares of a frame: a thumbnail of one pixel a
    16x16 cell, the mean of four (every 8th pixel in rows and columns, two
    by two; 0.3 ms at 1080p). Averaged, a fine texture on the move (grass,
    gravel, in a shaky pan) reads as what it is: every 16th pixel alone
    made 249 false cuts in 1,725 frame pairs of such pans, of shaking and
    of user clips, this none, and it finds their 17 cuts. (A copy: the
    caller may reuse the frame's memory.)"""
    import cv2

    h, w = frame.shape[:2]
    points = np.ascontiguousarray(frame[::8, ::8])
    return cv2.resize(points, (max(w // 16, 1), max(h // 16, 1)), interpolation=cv2.INTER_AREA)


#: Faces a still image is searched for (at least), so that the largest are
#: the ones returned; each face found costs one more FaceMesh run.
STATIC_SEARCH = 4

#: The smallest tile side of :class:`FaceLandmarker`'s tile search (pixels).
TILE_MIN = 256

#: The face detector's confidence a face found in a tile must reach when it
#: is looked at again in a square of :data:`CROP_FACES` times its size (the
#: detector's best scale), as the crop of a face tracked in a video is. A
#: zoomed-in tile of a busy background is where the detector sees faces that
#: are not there: at mediapipe's 0.5 a rocket's nose cone, a motorcycle's
#: wheel, blurred coffee beans and grass were faces (15 of 32 face-free
#: backgrounds at 1080p and 4K). Their scores in such a square were 0.54-0.71
#: (mediapipe's short-range detector), real faces of 78-150 px 0.91-0.97,
#: among them faces scoring 0.51-0.55 in their tile.
CROP_CONFIDENCE = 0.8

#: Video mode with ``tiles``: the most frames between two tile searches
#: while faces are missing (one second at 30 fps).
SEARCH_EVERY = 30

#: Video mode with ``tiles``: frames a lost face is looked for in its crop,
#: where it was last seen (three seconds at 30 fps: a face behind a board
#: for a second and a half came back unpainted for half a second when this
#: was one second, until the next search).
CROP_KEEP = 90

#: Video mode with ``tiles``: a face found in a tile is tracked in a square
#: crop this many times its size (its mesh's bounding box), centred on it:
#: mediapipe's detector finds a face of a third of its image, and misses one
#: under about a tenth (measured on grace_hopper.jpg).
CROP_FACES = 3.0


#: Video mode: a frame of more than :data:`LANDMARK_SHRINK_FROM` pixels is
#: seen by FaceMesh shrunk (halved by area averages, once or twice) by the
#: largest of 2 and 4 that leaves the smallest face it found on the frame
#: before at least this many pixels across (its mesh's bounding box, the
#: longer side); a frame after none found is seen whole. Its
#: landmark model sees a face at 192x192 px, and its time grows with the
#: frame's pixels (copies, colour conversion) above about a megapixel: on
#: this project's 2-core machine, FaceMesh on target1.mp4's face (360 px)
#: in 1920x1080 frames took 5.4 ms in the stream, 4.8 halved; in 3840x2160
#: (720 px) 10.5 ms, 7.0 halved twice (the stream's landmark stage 13.5 ->
#: 9.9 ms). The points were 0.47 % of the inter-ocular distance from those
#: of the frames seen whole, their frame-to-frame jitter 0.55 % against
#: 0.57 %. On the 12 FaceBlit exemplars enlarged 2x (faces of 950-1250 px),
#: the points' mean distance from the hand-placed ones was 5.40 % of the
#: inter-ocular distance seen whole, 5.04, 5.16, 5.14, 4.96 and 5.11 % with
#: the faces shrunk to 300, 224, 180, 150 and 120 px.
LANDMARK_FACE_PX = 160

#: Frames of at most this many pixels are seen whole (:data:`LANDMARK_FACE_PX`).
LANDMARK_SHRINK_FROM = 1 << 20

#: The most a frame is shrunk for FaceMesh (:data:`LANDMARK_FACE_PX`).
MAX_LANDMARK_SHRINK = 4


def landmark_shrink(shape, face_px: float) -> int:
    """The factor (1, 2 or 4) a video frame of ``shape`` is shrunk by for
    FaceMesh when the smallest face found on the frame before was
    ``face_px`` pixels across (0: none found): :data:`LANDMARK_FACE_PX`,
    :data:`LANDMARK_SHRINK_FROM`, :data:`MAX_LANDMARK_SHRINK`."""
    if int(shape[0]) * int(shape[1]) <= LANDMARK_SHRINK_FROM:
        return 1
    f = 1
    while 2 * f <= MAX_LANDMARK_SHRINK and face_px >= 2 * f * LANDMARK_FACE_PX:
        f *= 2
    return f


def _halved(image: np.ndarray, times: int) -> np.ndarray:
    """``image`` halved ``times`` times, each an area average (OpenCV's fast
    path for a factor of 2: 1.1 ms for 3840x2160 here, where one area
    average by 4 took 3.8)."""
    import cv2

    for _ in range(times):
        h, w = image.shape[:2]
        image = cv2.resize(image, (max(w // 2, 1), max(h // 2, 1)), interpolation=cv2.INTER_AREA)
    return image


def _tile_starts(n: int, side: int) -> list[int]:
    """Starts of windows of ``side`` along ``n`` pixels, overlapping by at
    least half: every stretch of ``side // 2`` lies whole in one of them."""
    if n <= side:
        return [0]
    k = -(-2 * (n - side) // side) + 1  # ceil((n - side) / (side / 2)) + 1
    return sorted({int(round(v)) for v in np.linspace(0, n - side, k)})


def _box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of the bounding boxes of two point sets."""
    lo, hi = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(a.max(0) - a.min(0)) + np.prod(b.max(0) - b.min(0))) - inter
    return inter / union if union > 0 else 0.0


def _mesh_area(mesh: np.ndarray) -> float:
    """Area of the bounding box of a FaceMesh's face (its 468 mesh vertices)."""
    return float(np.prod(mesh[:MESH_VERTICES].max(0) - mesh[:MESH_VERTICES].min(0)))


class _Graph:
    """One mediapipe FaceMesh graph (refined, 478 points) and its runs:
    ``graph(image_bgr)`` gives its faces, (478, 2) float32 pixel
    coordinates; their start-up and first-face messages are filtered.
    ``confidence``: the face detector's least (mediapipe's default 0.5).
    A tracking graph (not ``static_image_mode``) sees each image shrunk by
    :func:`landmark_shrink` of the smallest face it found in the one before:
    mediapipe's points are in the image's own [0, 1], the same place
    whatever its size."""

    def __init__(self, static_image_mode: bool, max_faces: int, confidence: float = 0.5):
        import mediapipe as mp

        self._static = bool(static_image_mode)
        self._face_px = 0.0  # the smallest face found by the last run (tracking only)

        with _filtered_native_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static_image_mode,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=confidence,
                min_tracking_confidence=0.5,
            )
            # The graph loads its models on its own threads; one run on a
            # blank frame (no face, so no tracking state) waits for that, so
            # their start-up messages land inside the filter.
            self._mesh.process(np.full((64, 64, 3), 128, dtype=np.uint8))
        # The landmark stage logs once more on the first face it sees.
        self._quiet = True

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        import cv2

        h, w = image.shape[:2]
        f = 1 if self._static else landmark_shrink(image.shape, self._face_px)
        if f > 1:
            image = _halved(image, f.bit_length() - 1)
        # mediapipe wants RGB; cvtColor is 30x faster than a reversed-slice copy
        rgb = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB)
        if self._quiet:
            with _filtered_native_stderr():
                result = self._mesh.process(rgb)
            self._quiet = not result.multi_face_landmarks
        else:
            result = self._mesh.process(rgb)
        meshes = []
        for face in result.multi_face_landmarks or ():
            # mediapipe's [0, 1] spans the image's outer edges; shift so that
            # pixel centres sit at integers, as in OpenCV and the .lm68 files.
            # (of the image as given: shrunk, it spans the same [0, 1])
            xy = _normalized_xy(face) * (w, h) - 0.5
            meshes.append(xy.astype(np.float32))
        self._face_px = min((float((m[:MESH_VERTICES].max(0) - m[:MESH_VERTICES].min(0)).max())
                             for m in meshes), default=0.0)
        return meshes

    def reset(self) -> None:
        """Forget the faces tracked: the next run detects them afresh. The
        graph starts a new run, whose models load again on its own threads
        (their messages then): a blank frame waits for that inside the
        filter, as at the start (20 ms in all here, against 40-57 ms for a
        new graph)."""
        with _filtered_native_stderr():
            self._mesh.reset()
            self._mesh.process(np.full((64, 64, 3), 128, dtype=np.uint8))
        self._quiet = True
        self._face_px = 0.0

    def close(self) -> None:
        self._mesh.close()


def _face_square(mesh: np.ndarray, side: int | None = None) -> tuple[int, int, int]:
    """(x0, y0, side) of the square of :data:`CROP_FACES` times the size of
    ``mesh``'s face (or of ``side``) centred on it."""
    lo, hi = mesh[:MESH_VERTICES].min(0), mesh[:MESH_VERTICES].max(0)
    if side is None:
        side = max(64, int(round(CROP_FACES * float((hi - lo).max()))))
    cx, cy = (lo + hi) / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def _square_crop(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray | None:
    """``image[y0:y0 + side, x0:x0 + side]``, the image's border padded grey
    where the square leaves it; None when it lies wholly outside."""
    import cv2

    h, w = image.shape[:2]
    ax, ay = max(x0, 0), max(y0, 0)
    bx, by = min(x0 + side, w), min(y0 + side, h)
    if bx <= ax or by <= ay:
        return None
    crop = image[ay:by, ax:bx]
    if (ax, ay, bx, by) != (x0, y0, x0 + side, y0 + side):
        crop = cv2.copyMakeBorder(crop, ay - y0, y0 + side - by, ax - x0, x0 + side - bx,
                                  cv2.BORDER_CONSTANT, value=(128, 128, 128))
    return crop


class _CropTrack:
    """One face tracked in a crop of each frame (``FaceLandmarker``'s
    ``tiles`` in video mode): a tracking-mode graph of one face run on a
    square of :data:`CROP_FACES` times the face's size centred on it, the
    frame's border padded grey; the square follows the face found in it.
    Called on a frame, it gives the face's mesh in the frame's pixels, or
    None when the face is not in the crop (the crop then stays where the
    face was last seen: it may come back there)."""

    def __init__(self, mesh: np.ndarray):
        self._graph = _Graph(False, 1, CROP_CONFIDENCE)
        self.missed = 0  # frames since the face was last found in the crop
        self.side = 0
        self._follow(mesh)

    def _follow(self, mesh: np.ndarray) -> None:
        side = _face_square(mesh)[2]
        # the side changes only when the face's size has changed by a
        # quarter: the graph tracks the face in the crop's own [0, 1], which
        # a new side rescales (a face that moved a fifth of its width a
        # frame was lost on one frame in three otherwise)
        if not self.side or not 0.8 <= side / self.side <= 1.25:
            self.side = side
        self.x0, self.y0, _ = _face_square(mesh, self.side)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        x0, y0 = self.x0, self.y0
        crop = _square_crop(image, x0, y0, self.side)
        if crop is None:
            self.missed += 1
            return None
        # a tracking graph that loses its face returns none and looks for it
        # on the next image only: that is this one again
        faces = self._graph(crop) or self._graph(crop)
        if not faces:
            self.missed += 1
            return None
        self.missed = 0
        mesh = faces[0] + np.float32([x0, y0])
        self._follow(mesh)
        return mesh

    def close(self) -> None:
        self._graph.close()


class FaceLandmarker:
    """68-point face landmarks from mediapipe FaceMesh.

    Parameters
    ----------
    static_image_mode : bool
        True for unrelated images (every call runs face detection); False for
        video frames, where faces are tracked between calls.
    max_faces : int
        The most faces to return per image. A still image (static mode) is
        searched for up to ``max(max_faces, STATIC_SEARCH)`` faces and the
        largest ``max_faces`` are returned: asked for one face, mediapipe
        returns the one its detector ranks first, not the largest. In video
        mode mediapipe looks for ``max_faces`` faces and tracks those it
        found (looking for more would run its detector on every frame).
    tiles : bool
        Where fewer faces than wanted are found (see :meth:`__call__`),
        search the image again in overlapping square tiles of half its
        longer side, and where still too few are found, of a quarter (tiles
        of at least :data:`TILE_MIN` px). mediapipe's detector sees the whole
        image at 128 px and misses a face narrower than about 8 % of its
        longer side: a person a few metres away in a 24-megapixel photo or
        a 4K video, a group. A face found in a tile is kept unless it
        touches the tile's edge inside the image (it lies whole in another
        tile) or overlaps a face found before, and only when it is found
        again, with a confidence of :data:`CROP_CONFIDENCE`, in a square of
        :data:`CROP_FACES` times its size (busy backgrounds zoomed in look
        like faces to the detector); its landmarks are those found there.
        Costs one FaceMesh run per tile (6 and 35 for 6000x4000) and one
        per face found, only when faces are missing.

        In video mode the search runs on the first frame with a face
        missing, and while one is, again after 1, 2, 4, ... frames, at most
        :data:`SEARCH_EVERY` apart (a video without faces is searched once a
        second); a face lost starts the series again. Each face it finds is
        then tracked on its own (a tracking-mode FaceMesh of one face) in a
        square crop :data:`CROP_FACES` times its size, centred on where it
        was in the frame before, so it is found on every frame at the cost
        of the crop, not of another search. A face lost is looked for in its
        crop, where it was last seen, for :data:`CROP_KEEP` frames more (a
        face back from behind a hand is found on the frame it is back; one
        back elsewhere waits for the next search).
        A face whose crop would exceed the frame is left to the whole
        frame's tracker (which finds faces that large).

        In video mode a frame of more than a megapixel is seen by FaceMesh
        halved once or twice where the faces found on the frame before stay
        at least :data:`LANDMARK_FACE_PX` across (its cost grows with the
        frame's pixels; its landmark model sees a face at 192 px).

        In video mode a frame of another size than the last starts the
        tracking afresh (a new graph, 25-40 ms; the crops dropped):
        mediapipe tracks a face in the image's own [0, 1]. So does a cut
        (:func:`is_cut`: a new shot), by :meth:`reset`: mediapipe's tracker
        would look for the face where the last shot had it, and either miss
        it or slide onto it over a few frames (on a cut from target1.mp4 to
        target3.png, landmarks 47 px below the face, then 35, 8, 0; 82 px
        above it on the next cut; none found on a third).

        In video mode a face upside down or lying on its side is tracked as
        itself: FaceMesh lays an upright face over one upside down (the
        mouth on its forehead) or finds none. When the tracking (re)starts
        (the first frame, a new size, a cut, :meth:`reset`, or a frame on
        which every face is lost), on the first frame it finds faces on, the
        largest is looked at upright as its mesh has it and half a turn
        from that (:data:`TURN_SQUARE`: two face detections, once); where
        it stands upright nearer another quarter turn ``k`` of the frame,
        the tracking starts afresh on the frame turned by ``k``
        (``cv2.rotate``), and goes on on the frames turned so, the points
        turned back into the frames' pixels, until it restarts (a turn at
        which no face is found is not taken). Within a shot the turn is
        kept: a face that rolls over slowly is followed as it rolls
        (FaceMesh tracks it to 174 degrees and more), not turned half-way.
        While no face is found, the face detector scores the frame at each
        quarter turn (:func:`face_turns`' look) on the frames in the series
        of the tile search (the first such frame, then 1, 2, 4, ... frames
        later, at most :data:`SEARCH_EVERY` apart); where it scores another
        turn best, by :data:`TURN_MARGIN` and at least
        :data:`OTHER_TURN_SCORE`, FaceMesh alone (no tile search) looks at
        the frame turned so, and the tracking goes on at that turn if it
        finds a face there (else at the turn it had, its crops and the tile
        search's pace kept). So a face upside down that FaceMesh does not
        see at all is found too, where the detector sees it in the whole
        frame (at 128 px: Grace Hopper's face 93 px wide upside down in a
        frame of 860x760 was found on the fourth frame, 60 px wide on
        none). The frame has one turn, its largest face's: every face is
        tracked at it.

    Attributes
    ----------
    last_mesh : list of (478, 2) float32 ndarray
        The full FaceMesh of each face found by the last call (pixels, same
        order as the returned landmarks).

    Examples
    --------
    >>> with FaceLandmarker() as landmarker:          # doctest: +SKIP
    ...     faces = landmarker(read_image("me.jpg"))
    """

    def __init__(self, *, static_image_mode: bool = True, max_faces: int = 1, tiles: bool = False):
        if int(max_faces) < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces}")
        # Read by glog / TensorFlow when mediapipe loads. mediapipe 0.10.21
        # logs through absl before it is configured and ignores them, hence
        # the stderr filter below, but other builds honour them.
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        self.static_image_mode = bool(static_image_mode)
        self.max_faces = int(max_faces)
        self.tiles = bool(tiles)
        self._lock = threading.RLock()
        self._mesh = _Graph(self.static_image_mode,
                            max(self.max_faces, STATIC_SEARCH) if self.static_image_mode
                            else self.max_faces)
        self.last_mesh: list[np.ndarray] = []
        self._check_mesh = None  # the graph that checks a tile's face (CROP_CONFIDENCE)
        # video mode with tiles: the faces found in tiles, each tracked in
        # its crop; the static landmarker that searches the tiles; frames
        # until the next search, and between the next two; the shape of the
        # last frame
        self._crops: list[_CropTrack] = []
        self._searcher: FaceLandmarker | None = None
        self._countdown, self._interval = 0, 1
        self._shape = None
        self._sample = None  # the last frame's cut_sample (video mode: a cut resets)
        # video mode: the quarter turns (np.rot90's k) the frames are tracked
        # at; whether they were found on a face since the tracking
        # (re)started; frames until face_turns looks at a faceless frame
        # again, and between the next two looks
        self._turn, self._turn_settled = 0, False
        self._turn_countdown, self._turn_interval = 0, 1

    def __call__(self, image_bgr: np.ndarray, *, wanted: int | None = None) -> list[np.ndarray]:
        """Find faces and their 68 landmarks.

        Parameters
        ----------
        image_bgr : (H, W, 3) uint8 ndarray
            BGR image.
        wanted : int, optional
            With ``tiles``: search tiles when fewer faces than this are found
            (default ``max_faces``).

        Returns
        -------
        list of (68, 2) float32 ndarray
            Landmarks in pixel coordinates of ``image_bgr`` (pixel centres at
            integers, as in OpenCV), one array per face, largest face first;
            empty when no face is found. Points may fall slightly outside the
            image for faces cut by its border.

        Notes
        -----
        Calls from several threads run one at a time (a tracking graph
        holds the state of the frames before; the webcam hands one
        landmarker from stylizer to stylizer while the last one's thread
        may still be finding a frame's faces).
        """
        with self._lock:
            return self._call(image_bgr, wanted)

    def _call(self, image_bgr, wanted):
        if self._mesh is None:
            raise RuntimeError("FaceLandmarker is closed")
        image = check_bgr_frame(image_bgr, "image")
        wanted = self.max_faces if wanted is None else int(wanted)
        resized = not self.static_image_mode and image.shape != self._shape
        if resized:
            if self._shape is not None:
                # mediapipe tracks a face in the image's own [0, 1]: in a
                # frame of another size its tracking holds a wrong place
                # (36 px off on a 900x700 crop of a 1024x768 frame, then lost)
                self._mesh.close()
                self._mesh = _Graph(False, self.max_faces)
            self._drop_crops(range(len(self._crops)))
            self._shape, self._countdown, self._interval = image.shape, 0, 1
            self._unsettle(0)
        if self.static_image_mode:
            meshes = self._meshes(image)
            if self.tiles and len(meshes) < wanted:
                meshes = self._search_tiles(image, meshes, wanted)
        else:
            sample = cut_sample(image)
            if not resized and is_cut(self._sample, sample):  # (a new size started afresh)
                self._reset()
            self._sample = sample
            meshes = self._turned_faces(image, wanted)
        meshes.sort(key=_mesh_area, reverse=True)
        meshes = meshes[:self.max_faces]
        self.last_mesh = meshes
        return [mesh_to_68(m) for m in meshes]

    def reset(self) -> None:
        """Forget the faces tracked and the turn they were tracked at (video
        mode; nothing to forget in static mode): the next call finds them
        afresh, as on a first frame. Done by the call itself on a cut
        (:func:`is_cut`) or a change of size."""
        with self._lock:
            if self._mesh is None:
                raise RuntimeError("FaceLandmarker is closed")
            if not self.static_image_mode:
                self._reset()

    def _reset(self) -> None:
        self._restart()
        self._unsettle(0)

    def _restart(self) -> None:
        """Forget the faces tracked (video mode)."""
        self._mesh.reset()
        self._drop_crops(range(len(self._crops)))
        self._countdown, self._interval = 0, 1

    def _unsettle(self, turn: int) -> None:
        """Video mode: track at ``turn`` until the turn is found again, on
        the next frame with a face (or by a look at one without)."""
        self._turn, self._turn_settled = turn, False
        self._turn_countdown, self._turn_interval = 0, 1

    def _tracked(self, image: np.ndarray, wanted: int) -> list[np.ndarray]:
        """Video mode: the faces tracked in ``image`` (frame pixels)."""
        if self.tiles:
            return self._track(image, wanted)
        return self._meshes(image)

    def _turned_faces(self, image: np.ndarray, wanted: int) -> list[np.ndarray]:
        """Video mode: the faces tracked in ``image`` turned by the turn of
        the tracking (see "upside down" in the class's notes), in the
        pixels of ``image``."""
        turn = self._turn
        seen = _turned(image, turn)
        meshes = self._tracked(seen, wanted)
        if self._turn_settled:
            if meshes:  # (the way of every frame with faces, once settled)
                return [_unturn(m, image.shape, turn) for m in meshes] if turn else meshes
            self._unsettle(turn)  # all lost: the turn is found again with them
        if not meshes:  # a face FaceMesh does not see as the frame is turned?
            if self._turn_countdown > 0:  # (looked at in the series of the tile search)
                self._turn_countdown -= 1
                return meshes
            self._turn_countdown = self._turn_interval - 1  # (frames skipped)
            self._turn_interval = min(2 * self._turn_interval, SEARCH_EVERY)
            scores = _turn_scores(seen)
            more = _best_turn(scores)
            if not more or scores[more] < OTHER_TURN_SCORE:  # (textures score 0.05 and up)
                return meshes
            self._mesh.reset()  # (the whole frame's tracker: it tracks no face now)
            again = _turned(image, (turn + more) % 4)
            meshes = self._meshes(again)  # (FaceMesh alone: a tile search here cost 0.1-0.3 s)
            if not meshes:  # (a turn no face is found at is not taken)
                # nor are the crops dropped (a face lost a moment ago is looked
                # for in its crop for CROP_KEEP frames) or the tile search's pace
                # started again (each restart here set it back to every frame,
                # 2.6x the time a frame without a face took)
                return meshes
            # the faces found there: the rest of the restart (the crops are
            # at the old turn's pixels)
            self._drop_crops(range(len(self._crops)))
            self._countdown, self._interval = 0, 1
            self._turn, turn, seen = (turn + more) % 4, (turn + more) % 4, again
        # the faces found: the turn that stands the largest nearest upright
        # (FaceMesh lays an upright face over one upside down), else the
        # next nearest (the roll of a face laid over one lying is skewed:
        # 43 degrees over frank.png lying, half a turn from 223, upright at 270)
        roll = 90 * turn + _upright_roll(seen, max(meshes, key=_mesh_area))
        nearest = sorted(range(4), key=lambda k: abs((roll - 90 * k + 180) % 360 - 180))
        if nearest[0] != turn:
            self._restart()
            for k in nearest[:2]:
                if k == turn:  # (the faces found as they were)
                    break
                again = self._tracked(_turned(image, k), wanted)
                if again:  # (a turn no face is found at is not taken)
                    turn, meshes = k, again
                    break
        self._turn, self._turn_settled = turn, True
        return [_unturn(m, image.shape, turn) for m in meshes] if turn else meshes

    def _meshes(self, image: np.ndarray) -> list[np.ndarray]:
        """FaceMesh's faces in ``image``, (478, 2) float32 pixel coordinates."""
        return self._mesh(image)

    def _track(self, image: np.ndarray, wanted: int) -> list[np.ndarray]:
        """Video mode with ``tiles``: the faces tracked in their crops, then
        the whole frame's tracker's where faces are missing, then a tile
        search when it is due (see ``tiles``)."""
        longest = max(image.shape[:2])
        meshes, gone = [], []
        for i, crop in enumerate(self._crops):
            mesh = crop(image)
            if mesh is None:
                if crop.missed == 1:  # just lost: search again from now on
                    self._countdown, self._interval = 0, 1
                if crop.missed > CROP_KEEP:
                    gone.append(i)
                continue
            meshes.append(mesh)
            if crop.side >= longest:  # the whole frame's tracker finds it
                gone.append(i)
        self._drop_crops(gone)
        if len(meshes) < self.max_faces:
            for mesh in self._meshes(image):
                overlaps = [i for i, m in enumerate(meshes)
                            if _box_overlap(mesh[:MESH_VERTICES], m[:MESH_VERTICES]) >= 0.3]
                for j in sorted(overlaps, reverse=True):  # a crop's face: drop its crop
                    del meshes[j]
                self._drop_crops_at(mesh)
                meshes.append(mesh)
        if len(meshes) >= wanted or longest // 2 < TILE_MIN:
            return meshes
        if self._countdown > 0:
            self._countdown -= 1
            return meshes
        self._countdown = self._interval - 1  # (frames skipped)
        self._interval = min(2 * self._interval, SEARCH_EVERY)
        if self._searcher is None:
            self._searcher = FaceLandmarker(static_image_mode=True, max_faces=STATIC_SEARCH,
                                            tiles=True)
        found = self._searcher._search_tiles(image, meshes, wanted)[len(meshes):]
        found.sort(key=_mesh_area, reverse=True)
        for mesh in found[:max(0, self.max_faces - len(meshes))]:
            self._drop_crops_at(mesh)
            crop = _CropTrack(mesh)
            tracked = crop(image)
            meshes.append(mesh if tracked is None else tracked)
            self._crops.append(crop)
        return meshes

    def _drop_crops(self, indices) -> None:
        for i in sorted(set(indices), reverse=True):
            self._crops.pop(i).close()

    def _drop_crops_at(self, mesh: np.ndarray) -> None:
        """Drop the crops whose square holds the centre of ``mesh``'s face
        (found by another means: it is theirs, or in their way)."""
        cx, cy = (mesh[:MESH_VERTICES].min(0) + mesh[:MESH_VERTICES].max(0)) / 2
        self._drop_crops([i for i, c in enumerate(self._crops)
                          if c.x0 <= cx < c.x0 + c.side and c.y0 <= cy < c.y0 + c.side])

    def _search_tiles(self, image: np.ndarray, meshes: list[np.ndarray],
                      wanted: int) -> list[np.ndarray]:
        """``meshes`` and the faces found in tiles of ``image`` (see ``tiles``)."""
        h, w = image.shape[:2]
        meshes = list(meshes)
        for side in (max(h, w) // 2, max(h, w) // 4):
            if side < TILE_MIN or len(meshes) >= wanted:
                break
            margin = 0.01 * side
            for y in _tile_starts(h, side):
                for x in _tile_starts(w, side):
                    tile = image[y:y + side, x:x + side]
                    th, tw = tile.shape[:2]
                    for mesh in self._meshes(tile):
                        lo, hi = mesh[:MESH_VERTICES].min(0), mesh[:MESH_VERTICES].max(0)
                        if ((x > 0 and lo[0] < margin) or (y > 0 and lo[1] < margin)
                                or (x + tw < w and hi[0] > tw - 1 - margin)
                                or (y + th < h and hi[1] > th - 1 - margin)):
                            continue  # cut by the tile's edge: whole in another tile
                        mesh = mesh + np.float32([x, y])
                        if all(_box_overlap(mesh[:MESH_VERTICES], m[:MESH_VERTICES]) < 0.3
                               for m in meshes):
                            mesh = self._checked(image, mesh)
                            if mesh is not None:
                                meshes.append(mesh)
        return meshes

    def _checked(self, image: np.ndarray, mesh: np.ndarray) -> np.ndarray | None:
        """A tile's face found again in its square (:func:`_face_square`) by a
        detector of :data:`CROP_CONFIDENCE`: its mesh there, or None (not
        found, or the face found there is another)."""
        if self._check_mesh is None:
            self._check_mesh = _Graph(True, 1, CROP_CONFIDENCE)
        x0, y0, side = _face_square(mesh)
        square = _square_crop(image, x0, y0, side)
        for again in self._check_mesh(square) if square is not None else ():
            again = again + np.float32([x0, y0])
            # (the same face, not a neighbour's that the square also holds)
            if _box_overlap(again[:MESH_VERTICES], mesh[:MESH_VERTICES]) >= 0.3:
                return again
        return None

    def close(self) -> None:
        """Release mediapipe's graphs. Calling the object afterwards raises."""
        with getattr(self, "_lock", threading.RLock()):
            self._close()

    def _close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
        if getattr(self, "_check_mesh", None) is not None:
            self._check_mesh.close()
            self._check_mesh = None
        self._drop_crops(range(len(getattr(self, "_crops", ()))))
        if getattr(self, "_searcher", None) is not None:
            self._searcher.close()
            self._searcher = None

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


_static_landmarkers: dict = {}  # faces searched -> static-mode FaceLandmarker
_static_lock = threading.Lock()


def detect_faces(image_bgr: np.ndarray, max_faces: int = 1) -> list[np.ndarray]:
    """68 landmarks of each face in a still image, up to ``max_faces``.

    Reuses a module-level static-mode :class:`FaceLandmarker`, created on
    the first call (one for every ``max_faces`` up to ``STATIC_SEARCH``: they
    search as many faces).

    Parameters
    ----------
    image_bgr : (H, W, 3) uint8 ndarray
        BGR image.
    max_faces : int
        The most faces to return.

    Returns
    -------
    list of (68, 2) float32 ndarray
        Pixel coordinates, largest face first; empty when no face is found.
    """
    max_faces = int(max_faces)
    if max_faces < 1:
        raise ValueError(f"max_faces must be at least 1, got {max_faces}")
    searched = max(max_faces, STATIC_SEARCH)
    with _static_lock:
        landmarker = _static_landmarkers.get(searched)
        if landmarker is None:
            landmarker = _static_landmarkers[searched] = FaceLandmarker(
                static_image_mode=True, max_faces=searched, tiles=True)
        return landmarker(image_bgr, wanted=max_faces)[:max_faces]


def detect_landmarks(image_bgr: np.ndarray) -> np.ndarray | None:
    """68 landmarks of the largest face in a still image (:func:`detect_faces`).

    Parameters
    ----------
    image_bgr : (H, W, 3) uint8 ndarray
        BGR image.

    Returns
    -------
    (68, 2) float32 ndarray or None
        Pixel coordinates, or None when no face is found.
    """
    faces = detect_faces(image_bgr, 1)
    return faces[0] if faces else None


#: How much more the face detector must score a still turned by a quarter
#: turn, or two, or three, than as it is, for :func:`face_turns` to turn it.
#: (Its short-range model scored the 12 FaceBlit styles and grace_hopper.jpg
#: upright 0.75-0.94, and each turned copy 0.09-0.87 below the same
#: portrait upright.)
TURN_MARGIN = 0.05

_turn_detector = None
_turn_lock = threading.Lock()


def _unturn(points: np.ndarray, shape, k: int) -> np.ndarray:
    """Points of ``np.rot90(image, k)`` in the pixels of ``image`` of
    ``shape`` (pixel centres at integers)."""
    h, w = shape[:2]
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    k %= 4
    if k == 1:
        x, y = w - 1 - y, x
    elif k == 2:
        x, y = w - 1 - x, h - 1 - y
    elif k == 3:
        x, y = y, h - 1 - x
    return np.stack([x, y], 1).astype(np.float32)


def _turned(image: np.ndarray, k: int) -> np.ndarray:
    """``np.rot90(image, k)``, contiguous: a copy turned by ``cv2.rotate``
    (0.04-0.11 ms at 640x480, where np.rot90 and a contiguous copy take
    1.8-2.2 ms), or ``image`` itself for ``k % 4 == 0``."""
    import cv2

    k %= 4
    if k == 0:
        return image
    return cv2.rotate(image, (cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180,
                              cv2.ROTATE_90_CLOCKWISE)[k - 1])


def _detector_scores(rgbs) -> list[float]:
    """The face detector's best score (0 for none) of each RGB image."""
    global _turn_detector
    scores = []
    # (one filter over the detector's start and its first run: its model loads on
    # the graph's own thread, whose "Created TensorFlow Lite XNNPACK delegate" came
    # after a filter over the start alone, in about one run of 12, and the first
    # run waits for the model)
    with _turn_lock, _filtered_native_stderr():
        if _turn_detector is None:
            import mediapipe as mp

            _turn_detector = mp.solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=0.05)
        for rgb in rgbs:
            found = _turn_detector.process(np.ascontiguousarray(rgb)).detections
            scores.append(max((d.score[0] for d in found or ()), default=0.0))
    return scores


def face_turns(image_bgr: np.ndarray) -> int:
    """The quarter turns (``k`` of ``np.rot90``, anticlockwise) that stand
    a still's face upright: 0 unless mediapipe's face detector scores the
    image turned by ``k`` at least :data:`TURN_MARGIN` above it as it is.

    FaceMesh follows a face turned up to about 90 degrees, but on one upside
    down (a painting scanned upside down, or turned 135 degrees) it lays an
    upright face over it: the eyes on the eyes, the mouth on the forehead.

    Parameters
    ----------
    image_bgr : (H, W, 3) uint8 ndarray

    Returns
    -------
    int
        0, 1, 2 or 3.
    """
    return _best_turn(_turn_scores(image_bgr))


def _turn_scores(image_bgr: np.ndarray) -> list[float]:
    """The face detector's best score of the image turned by 0-3 quarter turns."""
    import cv2

    rgb = cv2.cvtColor(check_bgr_frame(image_bgr, "image"), cv2.COLOR_BGR2RGB)
    return _detector_scores(np.rot90(rgb, k) for k in range(4))


def _best_turn(scores) -> int:
    best = int(np.argmax(scores))
    return best if scores[best] >= scores[0] + TURN_MARGIN else 0


#: :class:`FaceLandmarker` (video mode) tells a face found upside down by
#: the face detector's scores of it in a square this many times its size,
#: turned upright as its mesh has it and half a turn from that: the higher
#: wins. On the first frame of the 12 FaceBlit styles, target1.png,
#: target3.png, grace_hopper.jpg and astronaut.png, each turned by 0-3
#: quarter turns, where the mesh had the face's turn right (54 cases) it
#: scored 0.10-0.93 above the face half a turn from it; where the mesh was
#: an upright face laid over one upside down (10), half a turn from it
#: scored 0.05-0.72 higher. In a square of 3 (:data:`CROP_FACES`) frank.png
#: upright scored 0.12 below itself upside down.
TURN_SQUARE = 2.0


def _upright_roll(image_bgr: np.ndarray, mesh: np.ndarray) -> float:
    """The angle (degrees, anticlockwise as ``np.rot90`` turns) that stands
    the face of ``mesh`` (FaceMesh's, in the pixels of ``image_bgr``)
    upright: as the mesh has it (the roll of its eyes' line), or half a
    turn from that where the face detector scores the face turned so
    higher (FaceMesh lays an upright face over one upside down). The
    detector looks at the face in a square of :data:`TURN_SQUARE` times its
    size turned upright each way: two detections, where it judges better
    than :func:`face_turns` on the whole frame (which, astronaut.png's face,
    92 px wide, upright in a frame of 860x760, scored the frame turned by
    a quarter turn highest)."""
    import cv2

    points = mesh_to_68(mesh)
    across = points[42:48].mean(0) - points[36:42].mean(0)
    roll = math.degrees(math.atan2(float(across[1]), float(across[0])))
    lo, hi = mesh[:MESH_VERTICES].min(0), mesh[:MESH_VERTICES].max(0)
    side = max(64, int(round(TURN_SQUARE * float((hi - lo).max()))))
    cx, cy = (lo + hi) / 2
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), roll, 1.0)
    m[:, 2] += (side / 2 - cx, side / 2 - cy)
    square = cv2.cvtColor(cv2.warpAffine(check_bgr_frame(image_bgr, "image"), m, (side, side),
                                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                         borderValue=(128, 128, 128)), cv2.COLOR_BGR2RGB)
    as_is, flipped = _detector_scores((square, cv2.rotate(square, cv2.ROTATE_180)))
    return roll + 180.0 if flipped > as_is else roll


#: With ``other_turns``, :func:`detect_upright_faces` looks for more faces
#: at each other quarter turn the face detector scores the image turned so
#: at least this (mediapipe's own least confidence); a tracking
#: :class:`FaceLandmarker` that finds no face looks at another turn only
#: where the detector scores it so (textures score 0.05 and up).
OTHER_TURN_SCORE = 0.5

#: ... and keeps one found there only where, with every face found already,
#: the two boxes' overlap is less than this of the smaller box: FaceMesh
#: lays an upright face over one upside down, shifted up by half a face
#: (target1.png turned half a turn: a face from its eyes down past its
#: chin, its box overlapping the real one's by an IoU of 0.18, which an IoU
#: test let through as a second face; the detector scored target1 0.77-0.92
#: at every turn).
OTHER_TURN_COVER = 0.05


def _box_cover(a: np.ndarray, b: np.ndarray) -> float:
    """How much of the bounding box of the smaller of two point sets the
    other's box covers (0 apart, 1 one inside the other)."""
    lo, hi = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    small = min(float(np.prod(a.max(0) - a.min(0))), float(np.prod(b.max(0) - b.min(0))))
    return inter / small if small > 0 else 0.0


def detect_upright_faces(image_bgr: np.ndarray, max_faces: int = 1, *,
                         other_turns: bool = False) -> list[np.ndarray]:
    """:func:`detect_faces` of the image turned by :func:`face_turns`, in
    the image's own pixels: a face upside down (or lying) is found as
    itself. For style exemplars, whose landmarks are found once, and
    ``styleblit image``'s photos; about four face detections (30-50 ms)
    more than :func:`detect_faces`.

    With ``other_turns`` (``styleblit image --max-faces`` above 1), where
    fewer than ``max_faces`` are found, the faces found at each other turn
    the detector scores :data:`OTHER_TURN_SCORE` or more are added, but
    those whose box meets one of a face found already
    (:data:`OTHER_TURN_COVER`: FaceMesh lays an upright face over one upside
    down): a group with one of them upside down; largest first.
    """
    scores = _turn_scores(image_bgr)
    k = _best_turn(scores)
    found = _faces_turned(image_bgr, max_faces, k)
    if not other_turns or len(found) >= max_faces:
        return found
    for t in sorted(range(4), key=lambda t: -scores[t]):
        if t == k or scores[t] < OTHER_TURN_SCORE or len(found) >= max_faces:
            continue
        for face in _faces_turned(image_bgr, max_faces, t):
            if all(_box_cover(face, f) < OTHER_TURN_COVER for f in found):
                found.append(face)
    found.sort(key=lambda f: float(np.prod(f.max(0) - f.min(0))), reverse=True)
    return found[:max_faces]


def _faces_turned(image_bgr: np.ndarray, max_faces: int, k: int) -> list[np.ndarray]:
    """:func:`detect_faces` of the image turned by ``k``, in its own pixels."""
    if k == 0:
        return detect_faces(image_bgr, max_faces)
    found = detect_faces(np.ascontiguousarray(np.rot90(image_bgr, k)), max_faces)
    return [_unturn(face, image_bgr.shape, k) for face in found]


def detect_upright_landmarks(image_bgr: np.ndarray) -> np.ndarray | None:
    """The largest face of :func:`detect_upright_faces`, or None."""
    found = detect_upright_faces(image_bgr, 1)
    return found[0] if found else None
