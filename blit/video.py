"""``styleblit video``: stylize a video file (or a folder of frames).

A thin loop over :class:`blit.stream.Stylizer` with PyAV for the file
formats:

* video out is H.264 (libx264, yuv420p; odd sizes padded by one edge pixel),
  with the input's frame rate, time base, timestamps and rotation metadata;
  frames are stylized upright and turned back, so a phone video keeps its
  display matrix;
* audio streams are copied packet for packet (no re-encoding), muxed in
  order with the video;
* a folder of images (``*.png``, ``*.jpg``) can stand for the input and/or
  the output (``frame_000001.png``, ...);
* nothing is lost: the output is written beside its final name and renamed at
  the end; Ctrl-C finalises what was written, keeps it as
  ``NAME.partial.EXT`` and exits with code 130;
* a file that cannot be read is one line on stderr and exit code 1; a file
  that breaks off keeps the frames decoded before the break, with a warning.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from contextlib import contextmanager
from fractions import Fraction

import numpy as np

from blit.cli import (_add_style_args, add_stylize_args, check_output, load_style_from_args,
                      options_from_args, register)
from guides.io import InputError

__all__ = ["stylize_video", "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS", "partial_path"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".m4v")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
METHODS = ("patch", "gan")  # gan: gan_distill.infer.GanStylizer (needs torch)


def _warn(msg):
    print(f"styleblit: warning: {msg}", file=sys.stderr)


def partial_path(output):
    """Where an interrupted run leaves its output: ``out.mp4`` -> ``out.partial.mp4``,
    a folder ``frames`` -> ``frames.partial``."""
    root, ext = os.path.splitext(output.rstrip("/\\"))
    if ext.lower() in VIDEO_EXTENSIONS:
        return f"{root}.partial{ext}"
    return output.rstrip("/\\") + ".partial"


def _is_video_path(path):
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _upright(image, rotation):
    """Turn a decoded frame as the display matrix says (``rotation`` degrees CCW)."""
    import cv2

    r = rotation % 360
    if r == 90:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if r == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if r == 270:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    return image


def _stored(image, rotation):
    """Inverse of :func:`_upright`."""
    return _upright(image, -rotation)


# --------------------------------------------------------------------------
# Sources: ("video", bgr, pts, seconds) and ("audio", packet) items in order
# --------------------------------------------------------------------------

class _VideoFileSource:
    def __init__(self, path):
        import av

        self.path = path
        try:
            self.container = av.open(path, "r")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a video file that can be read ({_reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"{path}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.audio = [s for s in self.container.streams.audio]
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(30)
        self.rate = Fraction(rate)
        self.time_base = self.stream.time_base or 1 / self.rate
        self.frames = self.stream.frames or None
        self.rotation = 0  # the display matrix's, read from each decoded frame
        self.decoded = 0

    def __iter__(self):
        import av

        try:
            # demux ends with an empty packet per stream, which drains its decoder
            for packet in self.container.demux(self.stream, *self.audio):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield ("audio", packet)
                    continue
                for frame in packet.decode():
                    yield self._video_item(frame)
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as exc:
            if not self.decoded:
                raise InputError(f"{self.path}: cannot be decoded ({_reason(exc)})") from None
            _warn(f"{self.path}: decoding stopped after {self.decoded} frames ({_reason(exc)}); "
                  "kept the frames decoded")

    def _video_item(self, frame):
        self.decoded += 1
        rotation = int(round(frame.rotation or 0)) if hasattr(frame, "rotation") else 0
        self.rotation = rotation if rotation % 90 == 0 else 0
        bgr = _upright(frame.to_ndarray(format="bgr24"), self.rotation)
        seconds = float(frame.time) if frame.time is not None else (self.decoded - 1) / float(self.rate)
        return ("video", bgr, frame.pts, seconds)

    def close(self):
        self.container.close()


class _FolderSource:
    def __init__(self, path, fps):
        self.path = path
        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)
                       and not n.startswith("."))
        if not names:
            raise InputError(f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.files = [os.path.join(path, n) for n in names]
        self.rate = Fraction(fps).limit_denominator(1001)
        self.time_base = 1 / self.rate
        self.frames = len(self.files)
        self.rotation = 0
        self.audio = []
        self.decoded = 0

    def __iter__(self):
        from guides.io import read_image

        shape = None
        for i, name in enumerate(self.files):
            image = read_image(name)
            if shape is not None and image.shape != shape:
                raise InputError(f"{name}: {image.shape[1]}x{image.shape[0]}, expected "
                                 f"{shape[1]}x{shape[0]} like the first frame")
            shape = image.shape
            self.decoded += 1
            yield ("video", image, i, i / float(self.rate))

    def close(self):
        pass


def _reason(exc):
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:160]


# --------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------

class _VideoFileSink:
    """H.264 in an MP4/MOV/MKV, audio streams copied from the source."""

    def __init__(self, path, source, *, crf=18, preset="veryfast"):
        import av

        self.path = path
        self.container = av.open(path, "w")
        self.rotation = 0
        self.stream = None
        self.crf, self.preset = crf, preset
        self.source = source
        self.audio = {}
        self._pending = []  # audio packets that arrive before the first video frame
        self.frames = 0

    def _open_streams(self, height, width):
        """Video first, then the audio copies; the header is written at the first mux."""
        import av

        self._open_video(height, width)
        for s in self.source.audio:
            try:
                self.audio[s.index] = self.container.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError) as exc:
                _warn(f"{self.source.path}: audio stream {s.index} not copied ({_reason(exc)})")

    def _open_video(self, height, width):
        stream = self.container.add_stream("libx264", rate=self.source.rate)
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.source.time_base
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        if self.rotation:
            stream.set_display_rotation(self.rotation)
        self.stream = stream

    def write(self, image, pts):
        import av

        if self.stream is None:
            self.rotation = self.source.rotation  # known once a frame is decoded
        image = _stored(image, self.rotation)
        h, w = image.shape[:2]
        if self.stream is None:
            self._open_streams(h, w)
            for packet in self._pending:
                self._mux_audio(packet)
            self._pending = []
        if h % 2 or w % 2:  # yuv420p needs even sizes: repeat the last row/column
            image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts if pts is not None else self.frames
        frame.time_base = self.source.time_base
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def write_audio(self, packet):
        if self.stream is None:
            self._pending.append(packet)
        elif packet.stream.index in self.audio:
            self._mux_audio(packet)

    def _mux_audio(self, packet):
        if packet.stream.index in self.audio:
            packet.stream = self.audio[packet.stream.index]
            self.container.mux(packet)

    def close(self):
        """Flush the encoder and write the container's index: a playable file."""
        try:
            if self.stream is not None:
                self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()


class _FolderSink:
    def __init__(self, path, source):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.frames = 0

    def write(self, image, pts):
        import cv2

        self.frames += 1
        name = os.path.join(self.path, f"frame_{self.frames:06d}.png")
        if not cv2.imwrite(name, image):
            raise InputError(f"{name}: cannot be written")

    def write_audio(self, packet):
        pass

    def close(self):
        pass


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------

@contextmanager
def _no_sigint():
    """Ignore Ctrl-C while the output is being finalised (main thread only)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(total, quiet):
    from tqdm import tqdm

    disable = quiet or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    return tqdm(total=total, unit="frame", disable=disable, dynamic_ncols=True, file=sys.stderr,
                smoothing=0.1)


def _temp_path(output, folder):
    parent = os.path.dirname(os.path.abspath(output)) or "."
    base = os.path.basename(output.rstrip("/\\"))
    if folder:
        return tempfile.mkdtemp(prefix=f".{base}.", suffix=".tmp", dir=parent)
    ext = os.path.splitext(base)[1]
    fd, path = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # as a plain open() would have made it, not mkstemp's 0600
    return path


def _move(src, dst, overwrite=True):
    if os.path.isdir(dst) and not os.path.islink(dst):
        if not overwrite:
            raise InputError(f"{dst}: exists already")
        shutil.rmtree(dst)
    os.replace(src, dst)


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def stylize_video(style, source_path, output, *, options=None, max_faces=1, boil_hz=None,
                  fps=30.0, quiet=False, landmarker=None, method="patch", model=None):
    """Stylize a video file or folder of frames into ``output``.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    source_path : str
        A video file PyAV reads, or a folder of images (in name order).
    output : str
        ``.mp4``/``.mov``/``.mkv``/``.m4v`` for H.264 video, anything else a
        folder of ``frame_000001.png``...
    options : blit.stylize.StylizeOptions
    max_faces, boil_hz, landmarker
        As for :class:`blit.stream.Stylizer`.
    fps : float
        Frame rate of a folder input.
    quiet : bool
        No progress bar.
    method : {"patch", "gan"}
        The patch-based :class:`blit.stream.Stylizer`, or the distilled
        :class:`gan_distill.infer.GanStylizer` (``style``, ``options`` and
        the face options unused; needs torch).
    model : str
        The GAN checkpoint, for ``method="gan"``.

    Returns
    -------
    int
        Frames written.

    Raises
    ------
    InputError
        Unreadable input (nothing written).
    KeyboardInterrupt
        After the partial output has been finalised and saved as
        :func:`partial_path` ``(output)``; its ``args`` hold that path and the
        number of frames.
    """
    from blit.stream import Stylizer
    from blit.stylize import StylizeOptions

    options = options or StylizeOptions()
    folder_out = not _is_video_path(output)
    if os.path.isdir(source_path):
        source = _FolderSource(source_path, fps)
    else:
        if not os.path.exists(source_path):
            raise InputError(f"{source_path}: no such file")
        source = _VideoFileSource(source_path)
    if folder_out and source.audio:
        _warn(f"{output}: a folder of frames holds no audio; the audio of {source_path} is dropped")
    tmp = _temp_path(output, folder_out)
    sink = None
    interrupted = False
    try:
        sink = (_FolderSink if folder_out else _VideoFileSink)(tmp, source)
        if method == "gan":
            from gan_distill.infer import GanStylizer

            stylizer = GanStylizer(model)
        else:
            stylizer = Stylizer(style, options=options, max_faces=max_faces, boil_hz=boil_hz,
                                landmarker=landmarker, fps=float(source.rate))
        with stylizer, _progress(source.frames, quiet) as bar:
            try:
                for item in source:
                    if item[0] == "audio":
                        sink.write_audio(item[1])
                        continue
                    _, image, pts, seconds = item
                    sink.write(stylizer(image, seconds), pts)
                    bar.update(1)
            except KeyboardInterrupt:
                interrupted = True
        if sink.frames == 0 and not interrupted:
            raise InputError(f"{source_path}: no video frame could be decoded")
    except BaseException:
        if not interrupted:
            with _no_sigint():
                if sink is not None:
                    try:
                        sink.close()
                    except Exception:
                        pass
                source.close()
                _remove(tmp)
            raise
    with _no_sigint():
        source.close()
        sink.close()
        if interrupted:
            partial = partial_path(output)
            _move(tmp, partial)
            raise KeyboardInterrupt(partial, sink.frames)
        _move(tmp, output)
    return sink.frames


def _video(args):
    import time

    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise InputError(f"{args.output}: the output would replace the input")
    folder_out = not _is_video_path(args.output)
    ext = os.path.splitext(args.output.rstrip("/\\"))[1].lower()
    if folder_out and ext and not os.path.isdir(args.output):
        raise InputError(f"{args.output}: unknown video extension {ext!r} (use "
                         f"{', '.join(VIDEO_EXTENSIONS)}, or a folder for PNG frames)")
    check_output(args.output.rstrip("/\\") or args.output, args.overwrite)
    if args.max_faces < 1:
        raise InputError(f"--max-faces: expected at least 1, got {args.max_faces}")
    if args.boil is not None and not args.boil > 0:
        raise InputError(f"--boil: expected a positive rate in Hz, got {args.boil}")
    if (args.method == "gan") != (args.model is not None):
        raise InputError("--method gan needs --model MODEL.pt" if args.method == "gan"
                         else "--model needs --method gan")
    if args.method == "gan":
        from gan_distill import require_torch

        require_torch()
    style = load_style_from_args(args) if args.method == "patch" else None
    t0 = time.perf_counter()
    try:
        n = stylize_video(style, args.input, args.output, options=options_from_args(args),
                          max_faces=args.max_faces, boil_hz=args.boil, fps=args.fps,
                          quiet=args.quiet, method=args.method, model=args.model)
    except KeyboardInterrupt as exc:
        if len(exc.args) == 2:
            partial, frames = exc.args
            print(f"styleblit: interrupted after {frames} frames; the partial video is in "
                  f"{partial}", file=sys.stderr)
            return 130
        raise
    if not args.quiet:
        dt = time.perf_counter() - t0
        name = style.name if style is not None else args.model
        print(f"{args.input} in the style of {name} -> {args.output} "
              f"({n} frames, {n / max(dt, 1e-9):.1f} fps)")
    return 0


@register
def add_video_parser(sub):
    p = sub.add_parser("video", help="stylize a video (or a folder of frames)",
                       description="Paint every face of INPUT in the style of STYLE, stably from "
                                   "frame to frame. Video out is H.264 with the input's frame "
                                   "rate, timing, rotation and audio (copied unchanged). Ctrl-C "
                                   "keeps what was done as OUTPUT.partial.EXT.")
    _add_style_args(p)
    p.add_argument("input", metavar="INPUT", help="video file, or a folder of images (name order)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help=f"video ({', '.join(VIDEO_EXTENSIONS)}) or a folder for "
                        "frame_000001.png...")
    p.add_argument("--method", choices=METHODS, default="patch",
                   help="stylization method (default patch: StyleBlit lookup; gan: a model "
                        "from `styleblit distill`, needs --model and torch)")
    p.add_argument("--model", metavar="MODEL.pt",
                   help="the GAN checkpoint for --method gan (from `styleblit distill`)")
    add_stylize_args(p)
    p.add_argument("--max-faces", type=int, default=1, metavar="N",
                   help="stylize up to N faces per frame (default 1)")
    p.add_argument("--boil", type=float, metavar="HZ",
                   help="re-draw the strokes HZ times a second for a hand-made 'boiling' look "
                        "(default: steady)")
    p.add_argument("--fps", type=float, default=30.0,
                   help="frame rate of a folder of images (default 30)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(run=_video)
