"""``styleblit webcam``: live stylization of a camera (or a file standing in for one).

A thin loop: :class:`LatestFrame` captures in a thread and keeps only the
newest frame, so the stylizer never waits for the camera and never works on
a stale frame (latency stays under two frame times when it keeps up);
:class:`blit.stream.Stylizer` paints; OpenCV shows the result with the frame
rate and per-stage latency, and pyvirtualcam (optional extra ``virtualcam``)
can send it to video-call programs.

By default (``--landmark-every auto``) the faces are searched on every
frame while the stylizer keeps up with the camera, and on every second
frame, carried along the optical flow between, when it does not
(:class:`AutoLandmarkEvery`).

Keys in the preview window: n / p next / previous style, v voting on/off,
o original side by side, s save a snapshot, q or Esc quit.
"""
from __future__ import annotations

import collections
import dataclasses
import importlib.util
import os
import sys
import threading
import time

import numpy as np

from blit.cli import (MOST_FACES, _usage, add_device_arg, add_stylize_args, device_from_args,
                      frame_size, number, options_from_args, register)
from guides.io import InputError, check_readable

__all__ = ["LatestFrame", "AutoLandmarkEvery", "open_capture", "list_cameras", "run_webcam",
           "draw_overlay"]

_KEY_QUIT = (ord("q"), 27)


def _quiet_opencv():
    """Silence OpenCV's own log (a missing camera is reported by us, in one line)."""
    from guides.io import _opencv_log_level

    levels = _opencv_log_level()
    if levels is not None:
        levels[1](0)  # LOG_LEVEL_SILENT


#: Frames whose latency the webcam's summary describes: the last hour's at 30
#: fps (a run longer than that keeps no more, so that its memory stays flat).
LATENCY_WINDOW = 108_000


def open_capture(source, size=None):
    """An opened ``cv2.VideoCapture`` of a camera index or a video file.

    Raises
    ------
    InputError
        When it cannot be opened.
    """
    import cv2

    _quiet_opencv()
    if isinstance(source, int):
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            raise InputError(f"camera {source}: cannot be opened (not connected, or in use by "
                             "another program?); `styleblit webcam --list-cameras` lists them")
        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a queue
        return cap
    if not os.path.exists(source):
        raise InputError(f"{source}: no such file")
    check_readable(source)
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise InputError(f"{source}: not a video file OpenCV can read")
    # upright by its display matrix (a phone's video is stored on its side), as
    # `video` reads it; OpenCV's FFmpeg reader left it as stored
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def list_cameras(max_index=10):
    """[(index, width, height)] of the cameras that open."""
    import cv2

    _quiet_opencv()
    found = []
    for i in range(max_index):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            ok, frame = cap.read()
            if ok and frame is not None:
                found.append((i, frame.shape[1], frame.shape[0]))
        cap.release()
    return found


def fit_inside(width, height, box_width, box_height):
    """(w, h) of a ``width`` x ``height`` picture scaled to fit inside the box,
    its aspect kept (at least 1 px a side)."""
    scale = min(box_width / width, box_height / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class LatestFrame:
    """Capture frames in a thread and keep only the newest.

    Parameters
    ----------
    capture : object with ``read() -> (ok, frame)`` and ``release()``
        An opened ``cv2.VideoCapture``, or anything alike.
    pace : float, optional
        Frames per second to pace reading at (a file standing in for a
        camera); None reads as fast as the source delivers (a camera).
    size : (int, int), optional
        Resize every frame to fit inside (width, height), its aspect kept
        (a portrait file asked for 640x480 is 360x480, not squashed).
    start : callable, optional
        ``start(frame, t)``, called for every frame :meth:`read` returns,
        before it returns it and in the order the frames came: in the
        capture thread the moment a frame comes while no frame handed on
        waits to be read (a stylizer's :meth:`blit.stream.Stylizer.prefetch`
        then makes its landmarks and guides while the frame before it is
        painted), else by :meth:`read` when it takes the newest. Frames that
        come while one handed on waits are kept (the newest only) as
        without ``start``; one handed on later makes them dropped.
        :meth:`hand_over` changes what ``start`` hands frames to (a new
        stylizer) without breaking that order.

    Examples
    --------
    >>> with LatestFrame(open_capture(0)) as frames:     # doctest: +SKIP
    ...     frame, t = frames.read()
    """

    def __init__(self, capture, *, pace=None, size=None, start=None):
        self._capture = capture
        self._pace = pace
        self._size = size
        self._start = start
        self._cond = threading.Condition()
        self._started = None  # (frame, t_capture, index) handed to start, not read yet
        self._latest = None  # (frame, t_capture, index)
        self._times = collections.deque(maxlen=32)  # the last capture times
        self._taken = -1
        self._done = False
        self._error = None
        self.captured = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="styleblit-capture", daemon=True)
        self._thread.start()

    def _run(self):
        import cv2

        start = time.perf_counter()
        try:
            while True:
                with self._cond:
                    if self._done:
                        return
                if self._pace:
                    wait = start + self.captured / self._pace - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                ok, frame = self._capture.read()
                if not ok or frame is None:
                    break
                if self._size is not None:
                    fitted = fit_inside(frame.shape[1], frame.shape[0], *self._size)
                    if fitted != (frame.shape[1], frame.shape[0]):
                        frame = cv2.resize(frame, fitted, interpolation=cv2.INTER_AREA)
                t = time.perf_counter()
                with self._cond:
                    if self._latest is not None and self._latest[2] > self._taken:
                        self.dropped += 1  # never shown: the stylizer was busy
                        self._latest = None  # (a newer frame replaces it, started or not)
                    if self._start is not None and self._started is None:
                        # handed on before read() can see it, in the order the
                        # frames came (read() hands on the others, under this lock)
                        self._start(frame, t)
                        self._started = (frame, t, self.captured)
                    else:
                        self._latest = (frame, t, self.captured)
                    self._times.append(t)
                    self.captured += 1
                    self._cond.notify_all()
        except Exception as exc:  # noqa: BLE001 - reported by read()
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def read(self, timeout=5.0):
        """The newest frame not read yet, waiting for it if needed.

        Returns
        -------
        (frame, t) : ((H, W, 3) uint8 ndarray, float)
            ``t`` is the ``time.perf_counter()`` of its capture; None when the
            source has ended.
        """
        deadline = time.perf_counter() + timeout
        with self._cond:
            while self._started is None and (self._latest is None or self._latest[2] <= self._taken):
                if self._done:
                    if self._error is not None:
                        raise InputError(f"capture failed: {self._error}")
                    return None
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise InputError(f"no frame from the camera for {timeout:g} s")
                self._cond.wait(left)
            if self._started is not None:  # handed to start(): it is read first
                frame, t, index = self._started
                self._started = None
            else:
                frame, t, index = self._latest
                if self._start is not None:  # every frame read has been handed on
                    self._start(frame, t)
            self._taken = index
            return frame, t

    def hand_over(self, swap):
        """Call ``swap()``, which changes what ``start`` hands frames to (the
        webcam's new stylizer), while no frame is being handed on; then hand
        the frame already handed on but not read yet (if any) to ``start``
        again, so that the new receiver is given every frame it will read,
        in order. Returns what ``swap()`` returns."""
        with self._cond:
            result = swap()
            if self._start is not None and self._started is not None:
                frame, t, _ = self._started
                self._start(frame, t)
            return result

    def interval(self):
        """The camera's frame interval in seconds (median of the last 31), or
        None before two frames."""
        with self._cond:
            times = list(self._times)
        return float(np.median(np.diff(times))) if len(times) > 1 else None

    def close(self):
        with self._cond:
            self._done = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)
        self._capture.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AutoLandmarkEvery:
    """``--landmark-every auto``: the faces searched on every frame while the
    stylizer keeps up with the camera, on every second frame when it does not.

    What a frame costs with the faces searched (the stylizer's own time,
    median of the last ``window`` such frames) is compared with the
    camera's frame interval: above it, every second frame's faces are
    carried along the flow instead (``landmark_every`` 2: about half of
    the landmark stage saved); back under ``low`` times the interval, every
    frame's are searched again. Frames keep coming while it decides.

    Examples
    --------
    >>> auto = AutoLandmarkEvery()
    >>> every = 1
    >>> for _ in range(20):
    ...     every = auto.update(searched=True, frame_ms=20.0, interval_ms=16.7)
    >>> every
    2
    """

    def __init__(self, *, window=31, low=0.85, start=1, min_samples=10):
        self.every = start
        self.low = float(low)
        self.min_samples = int(min_samples)
        self._costs = collections.deque(maxlen=int(window))

    def update(self, *, searched, frame_ms, interval_ms):
        """Take one frame's measure; return the ``landmark_every`` for the next."""
        if searched:
            self._costs.append(float(frame_ms))
        if len(self._costs) >= self.min_samples and interval_ms and interval_ms > 0:
            cost = float(np.median(self._costs))
            if self.every == 1 and cost > interval_ms:
                self.every = 2
            elif self.every == 2 and cost < self.low * interval_ms:
                self.every = 1
        return self.every


def draw_overlay(image, lines):
    """Write text lines at the top left of ``image`` (in place), legible on any
    background."""
    import cv2

    y = 18
    for line in lines:
        cv2.putText(image, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
        y += 17
    return image


def say(line):
    """A line of the webcam loop: a diagnostic ("styleblit: ...") on standard
    error, as every command's, anything else (a snapshot's path) on
    standard output."""
    print(line, file=sys.stderr if line.startswith("styleblit:") else sys.stdout, flush=True)


def _snapshot(image, folder, log):
    """Save ``image`` as ``folder/styleblit_DATE_TIME.png`` (``-2``, ``-3``...
    for more in the same second), saying where, or why not, through ``log``."""
    from guides.io import write_image

    stem = os.path.join(folder, time.strftime("styleblit_%Y%m%d_%H%M%S"))
    path, k = f"{stem}.png", 1
    while os.path.exists(path):
        k += 1
        path = f"{stem}-{k}.png"
    try:
        write_image(path, image)
    except InputError as exc:
        log(f"styleblit: snapshot not saved: {exc}")
        return
    log(f"saved {path}")


def _style_paths(specs):
    """Expand --style values (files or folders of images) into a list of paths
    (a file that does not exist stays: it is skipped with a line when the
    webcam comes to it, as one that does not load)."""
    from blit.video import IMAGE_EXTENSIONS, image_files

    paths = []
    for spec in specs:
        if os.path.isdir(spec):
            paths.extend(image_files(spec, extensions=IMAGE_EXTENSIONS + (".npz",),
                                     what="style images"))
        else:
            paths.append(spec)
    return paths


class _VirtualCam:
    """pyvirtualcam, or one line saying why not (the preview keeps running).

    ``required`` (no window to show the preview in): an :class:`InputError`
    instead, since the run would show nothing. The camera is opened once,
    never tried and reopened: with v4l2loopback's ``exclusive_caps=1`` a
    device closed by its writer cannot be opened again until the module
    is reloaded."""

    def __init__(self, width, height, fps, required=False):
        self.cam = None
        try:
            import pyvirtualcam
        except ImportError as exc:
            if required:
                raise InputError("--virtual-cam needs pyvirtualcam (pip install "
                                 "'styleblit[virtualcam]'); without it and without a window "
                                 f"nothing would be shown ({_one_line(exc)})") from None
            print("styleblit: --virtual-cam needs pyvirtualcam (pip install 'styleblit[virtualcam]'); "
                  "preview only", file=sys.stderr)
            return
        try:
            self.cam = pyvirtualcam.Camera(width=width, height=height, fps=fps,
                                           fmt=pyvirtualcam.PixelFormat.BGR)
            print(f"styleblit: virtual camera {self.cam.device}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - missing driver: many exception types
            # (the whole reason: its end names the device or the driver to load)
            if required:
                fix = ("load v4l2loopback (sudo modprobe v4l2loopback)"
                       if sys.platform.startswith("linux")
                       else "install OBS Studio's virtual camera")
                raise InputError(f"--virtual-cam: no virtual camera could be opened "
                                 f"({_one_line(exc)}); without a window nothing would be shown: "
                                 f"{fix}, or drop --no-window to see the preview, or drop "
                                 "--virtual-cam") from None
            print(f"styleblit: virtual camera unavailable ({_one_line(exc)}); "
                  "preview only", file=sys.stderr)

    def send(self, image):
        if self.cam is not None:
            if (image.shape[1], image.shape[0]) != (self.cam.width, self.cam.height):
                import cv2

                image = cv2.resize(image, (self.cam.width, self.cam.height))
            self.cam.send(image)

    def close(self):
        if self.cam is not None:
            self.cam.close()


def _one_line(exc):
    """An exception's message on one line (whitespace and newlines collapsed), whole."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _has_display():
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run_webcam(styles, source, *, options, size=None, window=True, virtual_cam=False,
               frames=None, max_faces=1, boil_hz=None, pace=None, landmarker=None,
               snapshot_dir=".", log=None, method="patch", model=None, device=None,
               landmark_every="auto", pipeline=False, mirror=False, scale="auto",
               flow_engine="auto"):
    """The live loop. Returns a summary dict (frames, fps, latency of the last
    :data:`LATENCY_WINDOW` frames, dropped, warmup_dropped: those of them
    that came while the first frame was painted, ended: whether the source
    ran out, interrupted: whether Ctrl-C ended it; with the patch method,
    the frames painted with each
    ``landmark_every``). Its memory does not grow with the frames.

    Parameters
    ----------
    styles : list of str
        Style images (or .npz caches); loaded when first shown. One that
        cannot be loaded is skipped (at the start too, and with n/p), with
        a line through ``log``; an error if none loads.
    log : callable, optional
        Takes each line the loop says (a style skipped, a snapshot saved or
        not); default :func:`say`: those that begin "styleblit:" on
        standard error, the others on standard output.
    source : int, str or capture object
        Camera index, video file, or an opened capture (``read() -> (ok,
        frame)`` and ``release()``, as :class:`LatestFrame` takes).
    pace : float, optional
        For a file or a capture object: frames per second to deliver them
        at (a file's default: its own; an object's: as fast as it delivers).
    method : {"patch", "gan"}
        The patch stylizer, or :class:`gan_distill.infer.GanStylizer` with the
        checkpoint ``model`` (n/p and v then change nothing).
    device : {"cpu", "cuda", "auto"}
        Where the patch stylizer's kernels run (:class:`blit.stream.Stylizer`;
        default the CPU), or the GAN's (torch's device; default ``"auto"``).
    landmark_every : int or "auto"
        Find the faces on every this-many-th frame, carried along the flow
        between (:class:`blit.stream.Stylizer`); ``"auto"`` (the default):
        every frame while the stylizer keeps up with the camera, every
        second one when it does not (:class:`AutoLandmarkEvery`; the patch
        method only, the GAN searches every frame).
    scale : float or "auto"
        The patch stylizer's painting scale (:class:`blit.stream.Stylizer`):
        by default a face over :data:`blit.stylize.MAX_FACE_RATIO` times as
        wide as the exemplar's is painted at the exemplar's scale, chosen on
        the first face seen, and again when the style or the voting changes
        (a new stylizer); 1.0 paints every frame at the camera's size.
    flow_engine : {"auto", "opencv", "blit"}
        The patch stylizer's optical flow (:class:`blit.stream.Stylizer`).
    virtual_cam : bool
        Also send each frame to a virtual camera (pyvirtualcam), opened at
        the first frame's size. One that cannot be opened is a line, the
        preview running on; without a ``window`` it is an
        :class:`~guides.io.InputError` (the run would show nothing).
    mirror : bool
        Start with the preview mirrored, as a video call shows you to
        yourself (key m toggles it). Only the window is mirrored: the
        virtual camera and snapshots get the picture as the camera sees it.
    pipeline : bool
        With the patch method: hand each frame to the stylizer's
        :meth:`blit.stream.Stylizer.prefetch` the moment it is captured
        (while none handed to it waits), so that its landmarks and guides
        are made while the frame before it is painted (:class:`LatestFrame`,
        ``start``). Off by default: it helps only a camera faster than the
        stylizer, and adds latency (each half of a frame then runs on fewer
        threads). Measured on 2 cores at 640x480 (``bench_webcam.py``,
        ``landmark_every="auto"``): a 60 Hz camera 55.2 against 52.8 fps,
        latency 28.4 against 25.5 ms; a 30 Hz camera 30.1 fps either way,
        latency 24.9 against 21.0 ms.
    """
    import cv2

    from blit.metrics import latency_summary
    from blit.stream import Stylizer
    from guides.exemplar import load_style

    if method not in ("patch", "gan"):
        raise ValueError(f"method: expected 'patch' or 'gan', got {method!r}")
    if method == "gan" and model is None:
        raise ValueError("method 'gan' needs model (a checkpoint from `styleblit distill`)")
    log = say if log is None else log
    styles = [styles] if isinstance(styles, (str, os.PathLike)) else list(styles)
    if not styles and method == "patch":
        raise ValueError("styles: expected at least one style")
    loaded, unusable = {}, set()

    def style_at(i):
        if i not in loaded:
            loaded[i] = load_style(styles[i])
        return loaded[i]

    def next_style(step):
        """The index of the next style (step 1) or the previous one (-1)
        that loads; one that does not is said once and skipped from then
        on, and the style shown stays when no other loads."""
        i = index
        for _ in range(len(styles) - 1):
            i = (i + step) % len(styles)
            if i in unusable:
                continue
            try:
                style_at(i)
            except InputError as exc:
                unusable.add(i)
                log(f"styleblit: style skipped: {exc}")
                continue
            return i
        return index

    index = 0
    if method == "patch":  # before the camera opens; a first style that does not load is skipped
        try:
            style_at(0)
        except InputError as exc:
            if len(styles) == 1:
                raise
            unusable.add(0)
            log(f"styleblit: style skipped: {exc}")
            index = next_style(1)
            if index == 0:  # (none of them loads)
                raise
    if hasattr(source, "read"):
        cap = source  # an opened capture, paced by itself or at ``pace``
    else:
        cap = open_capture(source, size if isinstance(source, int) else None)
        if not isinstance(source, int) and pace is None:
            pace = cap.get(cv2.CAP_PROP_FPS) or 30.0
    own_landmarker = landmarker is None
    if own_landmarker:
        from guides.landmarks import FaceLandmarker

        # (no tile search: a face too small for the detector is too small to
        # paint at a camera's size, and a search would stall the preview)
        landmarker = FaceLandmarker(static_image_mode=False, max_faces=max_faces)
    voting, side_by_side = options.voting, False

    gan_device = device or "auto"

    def make_stylizer():
        if method == "gan":
            from gan_distill.infer import GanStylizer

            return GanStylizer(model, landmarker=landmarker, device=gan_device)
        opts = dataclasses.replace(options, voting=voting)
        return Stylizer(style_at(index), options=opts, max_faces=max_faces, boil_hz=boil_hz,
                        landmarker=landmarker, device=device or "cpu", landmark_every=every,
                        scale=scale, flow_engine=flow_engine)

    auto = AutoLandmarkEvery() if landmark_every == "auto" and method == "patch" else None
    every = 1 if landmark_every == "auto" else landmark_every
    every_counts = collections.Counter()

    stylizer = make_stylizer()

    def start(frame, t_cap):  # (called under the capture's lock, as hand_over's swap)
        stylizer.prefetch(frame, t_cap - t_start)

    def replace_stylizer(capture):
        def swap():
            nonlocal stylizer
            old, stylizer = stylizer, make_stylizer()
            return old

        # the frame handed to the old stylizer and not read yet goes to the
        # new one too, before any newer frame: it paints every frame it
        # was handed, in order
        close_stylizer(capture.hand_over(swap))  # (waits for a frame it was making)

    def close_stylizer(s):
        close = getattr(s, "close", None)  # (the GAN stylizer has none)
        if close is not None:
            close()

    vcam = None
    name = "styleblit"
    # the latencies of the last LATENCY_WINDOW frames and the running sum of the
    # frame times, past the first frame (its own lists grew by 85 bytes a frame:
    # 220 MB a day for a virtual camera left running)
    latencies = collections.deque(maxlen=LATENCY_WINDOW)
    frame_ms = 0.0
    count = 0
    fps = 0.0
    resize_to = size if size is not None and not isinstance(source, int) else None
    display_ms = 0.0  # the last frame's overlay and window, which the loop pays too
    ahead = pipeline and method == "patch"
    interrupted = ended = False
    warmup_dropped = 0  # (the frames that came while the first one was painted)
    try:
        t_start = time.perf_counter()
        with LatestFrame(cap, pace=pace if not isinstance(source, int) else None,
                         size=resize_to, start=start if ahead else None) as capture:
            last = t_start
            try:
                while frames is None or count < frames:
                    item = capture.read()
                    if item is None:
                        ended = True
                        break
                    frame, t_cap = item
                    out = stylizer(frame, t_cap - t_start)
                    now = time.perf_counter()
                    if not count:
                        warmup_dropped = capture.dropped
                    every_counts[every] += 1
                    if auto is not None:
                        interval = capture.interval()
                        every = auto.update(searched=stylizer.last_searched,
                                            frame_ms=stylizer.last_times["total"] + display_ms,
                                            interval_ms=interval * 1e3 if interval else None)
                        stylizer.landmark_every = every
                    latency, frame_time = (now - t_cap) * 1e3, (now - last) * 1e3
                    if count:  # (the first frame's, with its warm-up, left out)
                        latencies.append(latency)
                        frame_ms += frame_time
                    fps = 0.9 * fps + 0.1 * (1e3 / max(frame_time, 1e-3)) if count else 0.0
                    last = now
                    count += 1
                    shown = np.hstack([frame, out]) if side_by_side else out  # (what s saves)
                    if vcam is None and virtual_cam:
                        vcam = _VirtualCam(out.shape[1], out.shape[0], int(round(pace or 30)),
                                           required=not window)
                    if vcam is not None:
                        vcam.send(out)
                    if not window:
                        continue
                    t_display = time.perf_counter()
                    st = stylizer.last_times
                    # the overlay goes on a copy (mirrored, each half, with m): never on a snapshot
                    parts = (frame, out) if side_by_side else (out,)
                    view = np.hstack([p[:, ::-1] for p in parts]) if mirror else shown.copy()
                    draw_overlay(view, [
                        f"{fps:5.1f} fps  latency {latency:5.1f} ms  "
                        + (f"style {index + 1}/{len(styles)} {style_at(index).name}  "
                           f"voting {voting}  landmarks every {every}"
                           + (" (auto)" if auto else "")
                           if method == "patch" else f"model {os.path.basename(model)}"),
                        "  ".join(f"{k} {st[k]:.1f}" for k in ("landmarks", "flow", "mls",
                                                              "appearance", "propagate",
                                                              "lookup", "blend", "temporal")
                                  if k in st),
                        "n/p style  v voting  o original  m mirror  s snapshot  q quit",
                    ])
                    cv2.imshow(name, view)
                    key = cv2.waitKey(1) & 0xFF
                    display_ms = (time.perf_counter() - t_display) * 1e3
                    if key in _KEY_QUIT or cv2.getWindowProperty(name, cv2.WND_PROP_VISIBLE) < 1:
                        break  # q, Esc, or the window was closed
                    if key in (ord("n"), ord("p")) and method == "patch":
                        new = next_style(1 if key == ord("n") else -1)
                        if new != index:
                            index = new
                            replace_stylizer(capture)
                    elif key == ord("v"):
                        voting = 0 if voting else (options.voting or 1)
                        replace_stylizer(capture)
                    elif key == ord("o"):
                        side_by_side = not side_by_side
                    elif key == ord("m"):
                        mirror = not mirror
                    elif key == ord("s"):
                        _snapshot(shown, snapshot_dir, log)
            except KeyboardInterrupt:  # Ctrl-C: how a run without a window is stopped
                interrupted = True
            dropped = capture.dropped
    finally:
        close_stylizer(stylizer)  # (before the landmarker it may still be using)
        if vcam is not None:
            vcam.close()
        if window:
            cv2.destroyAllWindows()
        if own_landmarker:
            landmarker.close()
    summary = {"frames": count, "dropped": dropped, "warmup_dropped": warmup_dropped,
               "ended": ended,
               "fps": (count - 1) * 1e3 / frame_ms if count > 1 and frame_ms > 0 else None,
               "latency_ms": latency_summary(latencies) if count > 1 else None,
               "interrupted": interrupted}
    if method == "patch":  # frames painted with each landmark_every
        summary["landmark_every"] = {int(k): v for k, v in sorted(every_counts.items())}
    return summary


def _webcam(args):
    if args.list_cameras:
        found = list_cameras()
        if not found:
            print("no camera found")
        for i, w, h in found:
            print(f"camera {i}: {w}x{h}")
        return 0
    from blit.defaults import default_style_path

    device = device_from_args(args)  # before opening anything: one line if CUDA cannot run
    styles = _style_paths(args.style or [default_style_path()])
    size = args.size
    if args.source is not None and args.camera is not None:  # (the camera was not used)
        raise _usage("--camera and --source: give one, the camera or the video file to read")
    source = args.source if args.source is not None else (args.camera or 0)
    window = not args.no_window
    if window and not _has_display():
        print("styleblit: no display; running without a window", file=sys.stderr)
        window = False
    from blit.video import check_method_args, scale_from_args

    check_method_args(args)
    if args.method == "gan":
        from gan_distill import require_torch

        require_torch()
    if args.virtual_cam and not window and importlib.util.find_spec("pyvirtualcam") is None:
        raise InputError("--virtual-cam needs pyvirtualcam (pip install 'styleblit[virtualcam]'); "
                         "without it and without a window nothing would be shown")
    summary = run_webcam(styles, source, options=options_from_args(args),
                         size=size if size is not None else ((640, 480) if args.source is None else None),
                         window=window, virtual_cam=args.virtual_cam, frames=args.frames,
                         max_faces=args.max_faces, boil_hz=args.boil, method=args.method,
                         model=args.model, device=device, landmark_every=args.landmark_every,
                         pipeline=args.pipeline, mirror=args.mirror,
                         scale=scale_from_args(args), flow_engine=args.flow_engine)
    if summary.get("interrupted"):
        print("styleblit: interrupted", file=sys.stderr)
    elif summary["frames"] == 0:  # (a camera that gives nothing ends in a timeout error instead)
        raise InputError(f"{source}: no frame could be read")
    if not args.quiet and summary["frames"]:
        lat = summary["latency_ms"]
        fps = summary["fps"]
        print(f"{summary['frames']} frames"
              + (f", {fps:.1f} fps" if fps else "")
              + (f", latency median {lat['median']:.1f} ms (p90 {lat['p90']:.1f})" if lat else "")
              + f", {summary['dropped']} {'camera' if args.source is None else 'source'} "
              f"frames dropped"
              + (f" ({summary['warmup_dropped']} while the first was painted)"
                 if summary["warmup_dropped"] else "")
              + (f"; {args.source} ended" if summary["ended"] and args.source is not None
                 else "")
              + _every_note(summary.get("landmark_every"), args.landmark_every))
    return 130 if summary.get("interrupted") else 0


def _every_note(counts, asked):
    """The summary's words on landmark_every: how many frames had each, under auto."""
    if asked != "auto" or not counts:
        return ""
    total = sum(counts.values())
    return "; landmarks (auto) " + ", ".join(
        f"{'every frame' if k == 1 else f'every {k} frames'} on {100 * v / total:.0f} %"
        for k, v in counts.items())


@register
def add_webcam_parser(sub):
    from blit.video import add_landmark_every_arg, add_native_scale_arg

    p = sub.add_parser("webcam", help="live stylization of a camera",
                       description="Stylize a camera live in a preview window (keys: n/p style, "
                                   "v voting, o original side by side, m mirror, s snapshot, "
                                   "q/Esc quit), optionally sent to a virtual camera.")
    p.add_argument("--style", action="append", metavar="STYLE.png",
                   help="style image, .npz cache or folder of them; repeat for several "
                        "(n/p switch); default: the embedded painted astronaut")
    p.add_argument("--camera", type=number(int, least=0),
                   help="camera index (default 0; not with --source)")
    p.add_argument("--source", metavar="FILE",
                   help="read this video file instead of a camera (paced at its frame rate)")
    p.add_argument("--size", type=frame_size, metavar="WxH",
                   help="capture size to ask the camera for (default 640x480); a --source is "
                        "resized to fit inside it, its aspect kept, only when given")
    p.add_argument("--list-cameras", action="store_true", help="list the cameras that open, and exit")
    p.add_argument("--virtual-cam", action="store_true",
                   help="also send the output to a virtual camera (needs pyvirtualcam)")
    p.add_argument("--no-window", action="store_true", help="run without a preview window")
    p.add_argument("--mirror", action="store_true",
                   help="start with the preview mirrored, as a video call shows you (key m); "
                        "the virtual camera and snapshots are never mirrored")
    p.add_argument("--frames", type=number(int, least=1), metavar="N", help="stop after N frames")
    p.add_argument("--pipeline", action="store_true",
                   help="make each frame's landmarks and guides in a thread while the frame "
                        "before it is painted: more frames per second from a camera faster "
                        "than the stylizer, at some latency")
    p.add_argument("--max-faces", type=number(int, least=1, most=MOST_FACES), default=1,
                   metavar="N", help=f"stylize up to N faces (default 1; at most {MOST_FACES})")
    p.add_argument("--boil", type=number(positive=True), metavar="HZ",
                   help="re-draw the strokes HZ times a second")
    add_landmark_every_arg(p, auto=True)
    add_native_scale_arg(p, "camera")
    p.add_argument("--method", choices=("patch", "gan"), default="patch",
                   help="patch (default) or gan: a model from `styleblit distill` (needs --model)")
    p.add_argument("--model", metavar="MODEL.pt", help="the GAN checkpoint for --method gan")
    add_stylize_args(p)
    add_device_arg(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no summary at the end")
    p.set_defaults(run=_webcam)
