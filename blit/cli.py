"""The ``styleblit`` command line: thin wrappers over the public API.

Every user mistake (a missing file, an image without a face, a malformed
landmark file) ends with one line on stderr and exit code 1; no output file
is left half-written. An option value out of range or not a number is a
usage error when the command line is parsed (:func:`number`,
:func:`frame_size`; exit code 2).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import re
import signal
import sys
import threading
import warnings

__all__ = ["main", "build_parser", "number", "frame_size", "unique_stems", "unique_names",
           "check_output", "check_output_file", "check_optional_outputs", "check_not_input", "check_outputs_apart", "check_frames_folder",
           "style_input_paths", "signal_handlers", "STOP_SIGNALS", "FRAME_NAME", "frames_only"]

_COMMANDS = []  # (module, function) pairs that add subcommands; see register()


def register(add_parser):
    """Decorator for modules that add a subcommand: ``add_parser(subparsers)``
    must create it and ``set_defaults(run=callable(args) -> int)``."""
    _COMMANDS.append(add_parser)
    return add_parser


def number(kind=float, *, least=None, positive=False, most=None):
    """An argparse ``type`` for a numeric option: a finite ``kind`` (int or
    float) that is positive, or at least ``least``, and at most ``most``
    when given. A bad value is a usage
    error naming the option (argparse adds its name; exit code 2), before any
    work starts, never a traceback later.

    >>> number(int, least=1)("3")
    3
    """
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        if least is not None and value < least:
            raise argparse.ArgumentTypeError(f"expected at least {least}, got {text!r}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"expected at most {most}, got {text!r}")
        return value
    return parse


#: The largest side :func:`frame_size` takes (16K; an 8K frame is 7680x4320).
MAX_FRAME_SIDE = 16384

#: The most faces ``--max-faces`` takes (mediapipe's count is a C int: 2**31
#: and up was a traceback).
MOST_FACES = 100

#: The largest ``--threshold`` (the kernels take it as a float32: 1e39 was an
#: overflow warning; 1e9 already accepts every level's first candidate).
MOST_THRESHOLD = 1e30


def frame_size(text):
    """An argparse ``type`` for a frame size ``WxH`` (each 16 to
    :data:`MAX_FRAME_SIDE`): (W, H).

    >>> frame_size("640x480")
    (640, 480)
    """
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 640x480, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"expected at least 16x16, got {text!r}")
    if max(w, h) > MAX_FRAME_SIDE:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_FRAME_SIDE} a side, got {text!r}")
    return w, h


def _voting(value):
    v = number(int)(value)
    if v not in (0, 1, 2):
        raise argparse.ArgumentTypeError("expected 0 (none), 1 (3x3) or 2 (5x5)")
    return v


def _add_style_args(p, *, required=False):
    p.add_argument("--style", required=required, metavar="STYLE.png",
                   help="painted portrait (or a .npz from prepare-style)"
                        + ("" if required else "; default: the embedded painted astronaut"))
    p.add_argument("--style-landmarks", metavar="FILE",
                   help="68 landmarks of the style given with --style (lines 'x y', dlib "
                        "order); default STYLE.lm68.txt beside the image if present, else "
                        "detected")


def add_stylize_args(p):
    """Options shared by every command that runs the patch-based stylizer."""
    p.add_argument("--voting", type=_voting, default=1,
                   help="blending: 0 none, 1 3x3 (default), 2 5x5")
    p.add_argument("--background", choices=("keep", "stylize"), default="keep",
                   help="keep the frame around the head (default) or stylize it too")
    p.add_argument("--threshold", type=number(least=0, most=MOST_THRESHOLD), default=50.0,
                   help="guide-error threshold of the patch lookup (default 50, FaceBlit's); "
                        "higher = larger patches, lower = closer to the guides")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--denoise", dest="denoise", action="store_const", const=True, default=None,
                   help="with voting, first make the patches more coherent (a mode filter of "
                        "the NNF's offsets, FaceBlit's): sharper strokes; default on for still "
                        "images, off for videos (it flickers there)")
    g.add_argument("--no-denoise", dest="denoise", action="store_const", const=False,
                   help="never do that")


def add_device_arg(p):
    """``--device`` of the commands that run a stylizer on a stream."""
    p.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="where the stylizer runs: for --method patch, cpu (default), cuda (a "
                        "CUDA GPU through CuPy: pip install 'styleblit[gpu]') or auto (cuda "
                        "when available); for --method gan, torch's: auto (default: CUDA when "
                        "available), cpu or cuda")
    p.add_argument("--flow-engine", choices=("auto", "opencv", "blit"), default="auto",
                   help="the patch stream's optical flow (the strokes carried from frame to "
                        "frame): opencv (OpenCV's DIS, on the CPU), blit (styleblit's DIS, on "
                        "--device: a CPU run with it gives a CUDA run's output bit for bit) or "
                        "auto (default: opencv on the CPU, blit on CUDA)")


def device_from_args(args):
    """``--device`` resolved to ``"cpu"`` or ``"cuda"`` (:func:`blit.gpu.resolve_device`);
    an :class:`~guides.io.InputError` (one line) when CUDA cannot run here.
    For ``--method gan``, torch's device as given (``"auto"`` by default):
    :class:`gan_distill.infer.GanStylizer` resolves it."""
    if getattr(args, "method", "patch") != "patch":
        return args.device or "auto"
    if args.device is None:
        return "cpu"
    if args.device == "cpu":
        return "cpu"
    from blit.gpu import resolve_device

    return resolve_device(args.device)


def options_from_args(args):
    from blit.stylize import StylizeOptions

    return StylizeOptions(voting=args.voting, background=args.background, threshold=args.threshold,
                          denoise=args.denoise)


def load_style_from_args(args):
    from blit.defaults import default_style_path
    from guides.exemplar import load_style

    path = args.style
    if path is None:
        if args.style_landmarks:
            raise _usage("--style-landmarks needs --style")
        path = default_style_path()
    elif args.style_landmarks and path.lower().endswith(".npz"):
        raise _usage("--style-landmarks: a prepared style (.npz) holds its landmarks already; "
                     "give the painted image with them instead")
    return load_style(path, landmarks_path=args.style_landmarks)


class _UsageError(Exception):
    pass


def _usage(msg):
    return _UsageError(msg)


def check_output(path, overwrite):
    """Refuse, before any work, an output that cannot be written: an empty
    path, a folder that does not exist or cannot be written in, an existing
    file that is not a regular file or folder (a device, a pipe), or an
    existing output without ``overwrite``."""
    from guides.io import InputError, no_folder_error

    if not path:
        raise InputError("the output path is empty")
    if os.path.lexists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
        raise InputError(f"{path}: not a regular file; name a file to write")
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{path}: exists already; pass --overwrite to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise no_folder_error(path, folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY
        raise InputError(f"{path}: cannot write in the folder {folder} "
                         f"({'a read-only file system' if read_only else 'permission denied'})")


def check_optional_outputs(options, overwrite):
    """:func:`check_output_file` of each ``(option, path)`` given (None: not
    asked for); an empty path is refused naming its option (``--json ''``
    was taken for none: nothing saved, nothing said)."""
    from guides.io import InputError

    for option, path in options:
        if path == "":
            raise InputError(f"{option}: the output path is empty")
        if path is not None:
            check_output_file(path, overwrite)


def check_output_file(path, overwrite):
    """:func:`check_output` for an output that is one file (an image, a
    JSON report, a chart, a cache): an existing folder there is refused."""
    from guides.io import InputError

    if path and os.path.isdir(path):
        raise InputError(f"{path}: is a folder; name a file to write")
    check_output(path, overwrite)


class _Paths:
    """Input paths, to tell whether an output names one of them: by the
    same real path, or the same file through another name (a hard link)."""

    def __init__(self, paths):
        self.real, self.files = {}, {}
        for path in paths:
            if not path:
                continue
            self.real.setdefault(os.path.realpath(path), path)
            try:
                st = os.stat(path)
            except OSError:
                continue
            self.files.setdefault((st.st_dev, st.st_ino), path)

    def find(self, output):
        """The input ``output`` names, or None."""
        hit = self.real.get(os.path.realpath(output))
        if hit is None:
            try:
                st = os.stat(output)
            except OSError:
                return None
            hit = self.files.get((st.st_dev, st.st_ino))
        return hit

    def inside(self, folder):
        """An input inside ``folder`` (at any depth), or None."""
        root = os.path.join(os.path.realpath(folder), "")
        return next((p for real, p in self.real.items() if real.startswith(root)), None)


def check_not_input(output, *inputs):
    """Refuse an output that is one of the command's input files (None
    skipped), named another way or through a link: even with --overwrite,
    replacing it would lose the input."""
    check_outputs_apart([output], inputs)


def check_outputs_apart(outputs, inputs):
    """Refuse outputs (None skipped) that name one of the inputs, or each
    other: replacing an input would lose it, and two outputs of one run on
    one path would leave only the last. Checked before any work."""
    from guides.io import InputError

    known = _Paths(inputs)
    written = {}
    for output in outputs:
        if not output:
            continue
        hit = known.find(output)
        if hit is not None:
            raise InputError(f"{output}: the output would replace the input {hit}")
        real = os.path.realpath(output)
        if real in written:
            raise InputError(f"{output}: two of the outputs would be written there")
        written[real] = output


#: The files of a folder of frames styleblit writes (``frame_000001.png``...).
FRAME_NAME = re.compile(r"frame_\d+\.png")


def frames_only(folder):
    """Whether ``folder`` holds nothing but :data:`FRAME_NAME` files."""
    return all(FRAME_NAME.fullmatch(name) for name in os.listdir(folder))


def check_frames_folder(folder, inputs, overwrite):
    """Before a folder of frames is written at ``folder``, which replaces an
    existing one as a whole: refuse a folder that holds (or is) an input,
    the current folder or one above it, or anything but the
    ``frame_NNNNNN.png`` files styleblit writes (the user's own files are
    never deleted, even with ``--overwrite``)."""
    from guides.io import InputError

    if not os.path.isdir(folder) or not overwrite:
        return
    hit = _Paths(inputs).inside(folder)
    if hit is not None:
        raise InputError(f"{folder}: the output folder holds the input {hit}; "
                         "it would be deleted when the folder is replaced")
    here = os.path.join(os.path.realpath(os.getcwd()), "")
    if here.startswith(os.path.join(os.path.realpath(folder), "")):
        raise InputError(f"{folder}: the output folder holds the current folder; name another")
    other = [name for name in os.listdir(folder) if not FRAME_NAME.fullmatch(name)]
    if other:
        raise InputError(f"{folder}: not a folder of frames styleblit wrote (it holds "
                         f"{other[0]!r}); it is replaced as a whole, so name a new or empty one")


def style_input_paths(args):
    """The files a command reads for its style: ``--style``, its landmark
    file (given, or ``STYLE.lm68.txt`` beside it), for the output checks."""
    style = getattr(args, "style", None)
    paths = [style, getattr(args, "style_landmarks", None)]
    if style:
        paths.append(os.path.splitext(style)[0] + ".lm68.txt")
    return paths


# --------------------------------------------------------------------------
# prepare-style
# --------------------------------------------------------------------------

def _prepare_style(args):
    import time

    from blit.defaults import default_style_path
    from guides.exemplar import (StyleExemplar, _style_landmarks, cache_dir, save_cached,
                                 warn_style)
    from guides.io import InputError, read_image

    if args.style_landmarks and args.style is None:
        raise _usage("--style-landmarks needs STYLE.png")
    if args.style and args.style.lower().endswith(".npz"):
        raise InputError(f"{args.style}: is a prepared style already (give the painted image)")
    if args.output is not None:
        if args.output and not args.output.lower().endswith(".npz"):
            raise InputError(f"{args.output}: a prepared style is read back by its ending: "
                             "name it .npz")
        check_output_file(args.output, args.overwrite)
        check_not_input(args.output, *style_input_paths(args))
    path = args.style or default_style_path()
    image = read_image(path)
    landmarks, landmarks_path = _style_landmarks(path, image, args.style_landmarks)
    notes = warn_style(path, image.shape, landmarks, image=image, landmarks_path=landmarks_path)
    t0 = time.perf_counter()
    style = StyleExemplar.prepare(image, landmarks,
                                  name=os.path.splitext(os.path.basename(path))[0])
    style.notes = notes
    elapsed = time.perf_counter() - t0
    out = args.output
    if out is None:  # the cache, where `image` and the others find it
        key = StyleExemplar.cache_key(image, landmarks)
        out = save_cached(style, f"style-{key}.npz")
        if out is None:
            raise InputError(f"{cache_dir()}: the cache folder cannot be written, nor the "
                             "temporary folder: give -o")
    else:
        try:
            style.save(out)
        except OSError as exc:
            raise InputError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    source = f"landmarks from {landmarks_path}" if landmarks_path else "landmarks detected"
    print(f"{path}: {source}, prepared in {elapsed:.2f} s, {style.nbytes / 2**20:.1f} MiB "
          f"(table {style.table.shape[0]}x{style.table.shape[1]}x{style.table.shape[2]}, "
          f"cell {style.cell} px) -> {out}")
    return 0


def _add_prepare_style(sub):
    p = sub.add_parser("prepare-style", help="precompute a style exemplar (guides, lookup table)",
                       description="Precompute a style's landmarks, appearance guide and lookup "
                                   "table and save them; `image`/`video` do this on first use and "
                                   "cache it, keyed by the image's content.")
    p.add_argument("style", nargs="?", metavar="STYLE.png",
                   help="painted portrait (default: the embedded one)")
    p.add_argument("--style-landmarks", metavar="FILE", help="its 68 landmarks (see `image -h`)")
    p.add_argument("-o", "--output", metavar="CACHE.npz",
                   help="where to save (default: the user cache folder, where it is found again)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(run=_prepare_style)


# --------------------------------------------------------------------------
# landmarks
# --------------------------------------------------------------------------

def _landmarks(args):
    from guides.exemplar import warn_style
    from guides.io import (IMAGE_WRITE_EXTENSIONS, InputError, check_image_extension,
                           read_image, write_image)
    from guides.landmarks import (check_face_points, check_landmarks_fit, detect_upright_faces,
                                  interocular_distance, read_lm68, write_lm68)

    if args.template and args.landmarks is not None:
        raise _usage("--template: not with --landmarks (one set of landmarks: a file's, or "
                     "the template)")
    beside = os.path.splitext(args.image)[0] + ".lm68.txt"
    output = args.output
    if output is None and args.landmarks is None:
        output = beside
        if os.path.exists(beside) and not args.overwrite:
            raise InputError(f"{beside}: exists already (the landmarks styleblit uses for "
                             f"{args.image} as a style); pass --overwrite to replace them, or "
                             f"--landmarks {beside} --plot PLOT.png to draw them")
    if output is None and args.plot is None:
        raise _usage("--landmarks: give -o FILE or --plot PLOT.png (there is nothing to do)")
    if output is not None and os.path.splitext(output)[1].lower() in IMAGE_WRITE_EXTENSIONS:
        raise InputError(f"{output}: -o names the landmark file (NAME.lm68.txt); the drawing "
                         "is --plot")
    if args.plot is not None:
        check_image_extension(args.plot)
        check_output_file(args.plot, args.overwrite)
    if output is not None:
        check_output_file(output, args.overwrite)
    # (a file moved by --eyes may be written back over itself with --overwrite)
    rewrite = (args.overwrite and args.landmarks is not None and output is not None
               and os.path.realpath(output) == os.path.realpath(args.landmarks))
    check_outputs_apart([output, args.plot],
                        [args.image] + ([] if rewrite else [args.landmarks]))
    image = read_image(args.image)
    problem = None
    if args.landmarks is not None:
        # read as they are, so that a file that cannot be a face's is drawn before it is refused
        points = read_lm68(args.landmarks, check_face=False)
        how = f"68 landmarks read from {args.landmarks}"
        name = args.landmarks
    elif args.template:
        points = _template_landmarks(image.shape)
        how = "a template's 68 landmarks placed in the middle"
        name = "the template"
    else:
        found = detect_upright_faces(image, 4)
        if not found:
            raise InputError(f"{args.image}: no face found; pass --template to write a "
                             "face's 68 landmarks in the middle of the image, to move onto "
                             "its face by hand")
        points = found[0]
        how = "68 landmarks detected" + (
            f" (of the largest of its {len(found)} faces)" if len(found) > 1 else "")
        name = "the landmarks detected"
    if args.eyes is not None:
        points = _move_eyes(points, args.eyes)
        how += ", moved to put the eyes there"
        name = "--eyes"
    try:  # (a file is named by its path; the others by the image's and what they are)
        check_face_points(points, name if args.landmarks is not None and args.eyes is None
                          else f"{args.image}: {name}")
        check_landmarks_fit(points, image.shape, name, args.image)
    except InputError as exc:
        problem = exc
    if problem is None:  # (what `image` would warn of, said here where they are checked)
        detected = args.landmarks is None and args.eyes is None and not args.template
        warn_style(args.image, image.shape, points, image=None if detected else image,
                   landmarks_path=name)
    done = []
    if args.plot is not None:
        zoom = _plot_zoom(image.shape, points)
        write_image(args.plot, _drawn(image, points, zoom, numbers=not args.no_numbers),
                    overwrite=args.overwrite)
        done.append(f"drawn in {args.plot}" + (
            f" (enlarged {zoom} times to read the numbers: its pixel coordinates are the "
            f"file's times {zoom})" if zoom > 1 else ""))
    if problem is not None:
        raise InputError(f"{problem}{' (drawn in ' + args.plot + ')' if done else ''}")
    if output is not None:
        write_lm68(output, points)
        done.insert(0, output)
    elif args.eyes is not None:
        done.append("not written (give -o FILE to keep them)")
    if not args.quiet:
        print(f"{args.image}: {how} (eyes {interocular_distance(points):.0f} px "
              f"apart) -> {', '.join(done)}")
    return 0


#: A plot is enlarged (by a whole factor) until the face's eyes are this far
#: apart in it, so that its numbers are readable, up to MAX_PLOT_SIDE pixels.
PLOT_EYES = 150
MAX_PLOT_SIDE = 4096


def _plot_zoom(shape, points):
    """The whole factor a landmark plot of an image of ``shape`` is enlarged by."""
    from guides.landmarks import interocular_distance

    want = math.ceil(PLOT_EYES / max(interocular_distance(points), 1.0))
    fits = MAX_PLOT_SIDE // max(shape[:2])
    return max(1, min(want, fits))


def _drawn(image, points, zoom, *, numbers):
    """:func:`guides.landmarks.draw_landmarks` on the image enlarged ``zoom`` times."""
    import cv2

    from guides.landmarks import draw_landmarks

    if zoom > 1:
        image = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
        points = (points + 0.5) * zoom - 0.5  # (pixel centres at integers)
    return draw_landmarks(image, points, numbers=numbers)


def _eyes(text):
    """``--eyes X1,Y1,X2,Y2``: two distinct points, as a (2, 2) list."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected four numbers X1,Y1,X2,Y2, got {text!r}")
    if values[:2] == values[2:]:
        raise argparse.ArgumentTypeError(f"the two eyes are at one place: {text!r}")
    return [values[:2], values[2:]]


def _move_eyes(points, eyes):
    """``points`` moved, turned and scaled as one (a similarity) so that
    their eye centres (points 37-42, 43-48) land on ``eyes``."""
    import numpy as np

    p = np.asarray(points, np.float64)
    z = p[:, 0] + 1j * p[:, 1]
    e1, e2 = z[36:42].mean(), z[42:48].mean()
    t1, t2 = complex(*eyes[0]), complex(*eyes[1])
    a = (t2 - t1) / (e2 - e1) if e2 != e1 else (t2 - t1)
    moved = a * (z - e1) + t1
    return np.stack([moved.real, moved.imag], 1).astype(np.float32)


def _template_landmarks(shape):
    """The embedded default style's landmarks moved to the middle of an
    image of ``shape``, the eyes a quarter of its narrower side apart."""
    import numpy as np

    from blit.defaults import default_style_path
    from guides.landmarks import interocular_distance, read_lm68

    # (its landmarks file: the style's lookup table is not needed)
    face = read_lm68(os.path.splitext(default_style_path())[0] + ".lm68.txt").astype(np.float64)
    h, w = shape[:2]
    scale = 0.25 * min(h, w) / interocular_distance(face)
    middle = (face.max(0) + face.min(0)) / 2
    return ((face - middle) * scale + (w / 2, h / 2)).astype(np.float32)


def _add_landmarks(sub):
    p = sub.add_parser(
        "landmarks", help="find a face's 68 landmarks, to check and correct by hand",
        description="Find the 68 landmarks of the largest face in IMAGE (mediapipe; a face "
                    "upside down or lying on its side too) and write them as NAME.lm68.txt "
                    "beside it (IMAGE's name, its ending replaced). For a style, that is where "
                    "`image`, `video`, `prepare-style` and the others find them instead of "
                    "detecting (the file wins); for a photo, give the file to `image "
                    "--target-landmarks`. Correct a misplaced point in that file (line N of "
                    "the file it writes is point N) and check the result with --landmarks "
                    "NAME.lm68.txt --plot PLOT.png: the outlines, points and line numbers "
                    "drawn on the image.")
    p.add_argument("image", metavar="IMAGE", help="a style exemplar or a photo")
    p.add_argument("-o", "--output", metavar="NAME.lm68.txt",
                   help="where to write them (default: NAME.lm68.txt beside IMAGE; with "
                        "--landmarks, nowhere unless given: with --overwrite it may be the "
                        "--landmarks file itself)")
    p.add_argument("--plot", metavar="PLOT.png",
                   help="also draw them on the image, with each point's line number (a small "
                        "face's plot is enlarged by a whole factor, which the line names)")
    p.add_argument("--landmarks", metavar="FILE",
                   help="read them from FILE (68 lines 'x y', dlib order) instead of detecting "
                        "them: to draw a corrected file with --plot")
    p.add_argument("--template", action="store_true",
                   help="instead of detecting, write a face's landmarks (the embedded style's) "
                        "in the middle of the image, to move onto its face: for a drawing the "
                        "detector misses or gets wrong")
    p.add_argument("--eyes", metavar="X1,Y1,X2,Y2", type=_eyes,
                   help="move, turn and scale the landmarks as one so that the centres of the "
                        "eyes land there: first the eye of points 37-42, the face's own right "
                        "eye (on the image's left when the face is upright, on its right when "
                        "it is upside down); to fit --template onto a face")
    p.add_argument("--no-numbers", action="store_true", help="draw no line numbers")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(run=_landmarks)


# --------------------------------------------------------------------------
# image
# --------------------------------------------------------------------------

def _image(args):
    from blit.defaults import default_target_path
    from blit.stylize import NoFaceError, paint_scale, stylize_image
    from guides.io import InputError, check_image_extension, read_image, write_image
    from guides.landmarks import check_landmarks_fit, detect_upright_faces, read_lm68

    targets = expand_image_targets(args.target) if args.target else [default_target_path()]
    in_folders = any(os.path.isdir(t) for t in args.target)
    if args.target_landmarks and (len(targets) > 1 or in_folders):
        raise _usage("--target-landmarks: only with one TARGET")
    jobs, folder = _image_jobs(targets, args.output, to_folder=in_folders)
    for target, out in jobs:
        check_image_extension(out)
        if folder is None or os.path.isdir(folder):
            check_output_file(out, args.overwrite)
    check_outputs_apart([out for _, out in jobs],
                        targets + style_input_paths(args) + [args.target_landmarks])
    # one image is read first, so that a bad target is reported before the style is made
    image = read_image(targets[0]) if len(jobs) == 1 else None
    landmarks = None
    if args.target_landmarks:
        landmarks = check_landmarks_fit(read_lm68(args.target_landmarks), image.shape,
                                        args.target_landmarks, targets[0])
    style = load_style_from_args(args)
    options = options_from_args(args)
    made = folder is not None and not os.path.isdir(folder)
    if made:
        try:
            os.makedirs(folder)
        except OSError as exc:
            raise InputError(f"{folder}: cannot make the output folder ({exc.strerror or exc})") from None
    failed = written = 0
    for target, out in jobs:
        try:
            photo = image if image is not None else read_image(target)
            faces = (landmarks if landmarks is not None
                     else detect_upright_faces(photo, args.max_faces,  # (a scan upside down too,
                                               other_turns=True))  # and a group with one so)
            if faces is None or len(faces) == 0:
                raise NoFaceError(f"{target}: no face found")
            result = stylize_image(style, photo, landmarks=faces, options=options, name=target,
                                   max_faces=args.max_faces, native_scale=args.native_scale)
            write_image(out, result, overwrite=args.overwrite)
        except InputError as exc:
            if len(jobs) == 1:
                raise
            print(f"styleblit: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        except KeyboardInterrupt:
            if len(jobs) == 1:
                raise
            print(f"styleblit: interrupted at {target}; {written} of the {len(jobs)} images "
                  f"written (in {folder})", file=sys.stderr)
            return 130
        written += 1
        if not args.quiet:
            scale = 1.0 if args.native_scale else paint_scale(style, faces)
            note = "" if scale == 1.0 else (
                f" (its face is {1 / scale:.1f} times as wide as the style's: painted at "
                f"{scale:.2f} of its size and enlarged, so that the strokes keep their size "
                "against the face; --native-scale paints at its own)")
            print(f"{target} in the style of {style.name} -> {out}{note}")
    if made and failed == len(jobs):
        os.rmdir(folder)  # (made here, and nothing went in)
    if failed:
        rest = f"; the others are in {folder}" if failed < len(jobs) else ""
        print(f"styleblit: {failed} of {len(jobs)} images not stylized (above){rest}",
              file=sys.stderr)
        return 1
    return 0


def expand_image_targets(paths):
    """``styleblit image``'s targets: a folder stands for the images in it
    (by their endings, sorted by name; hidden files and subfolders are left
    out, other files too, with a warning naming them: an iPhone's .HEIC, a
    .gif); other paths are kept as they are, to be read (or reported) one
    by one."""
    from blit.video import image_files

    out = []
    for path in paths:
        if not os.path.isdir(path):
            out.append(path)
            continue
        images = image_files(path)
        kept = {os.path.basename(p) for p in images}
        others = sorted(n for n in os.listdir(path) if not n.startswith(".") and n not in kept
                        and os.path.isfile(os.path.join(path, n)))
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            print(f"styleblit: warning: {path}: {len(others)} file(s) left out, not images by "
                  f"their endings ({shown})", file=sys.stderr)
        out.extend(images)
    return out


def _image_jobs(targets, output, *, to_folder=False):
    """(target, output) pairs of ``styleblit image``, and the output folder
    (None for one target written to the file ``output``). Several targets,
    targets from a folder (``to_folder``), or an output that is a folder
    (existing, or ending with a separator), are written into that folder
    as ``NAME.png`` (:func:`unique_stems`, as ``batch`` names its
    outputs)."""
    if (len(targets) == 1 and not to_folder
            and not (os.path.isdir(output) or output.endswith(("/", os.sep)))):
        return [(targets[0], output)], None
    if os.path.exists(output) and not os.path.isdir(output):
        raise _usage(f"-o {output}: with several targets or a folder of them, -o names a folder "
                     "(this is a file)")
    names = unique_stems(targets)
    return [(t, os.path.join(output, f"{name}.png")) for t, name in zip(targets, names)], output


def unique_stems(paths, default="out"):
    """Each path's file or folder name without its extension, made unique
    with -2, -3, ... in order (``a.jpg``, ``b/a.png`` -> ``a``, ``a-2``), whatever
    their case (``A.jpg``: one file on macOS' and Windows' file systems)."""
    return unique_names([os.path.splitext(os.path.basename(os.path.normpath(p)))[0]
                         for p in paths], default)


def unique_names(names, default="out"):
    """``names`` (empty ones ``default``) made unique with -2, -3, ... in
    order, whatever their case (:func:`unique_stems`)."""
    seen, out = set(), []
    for stem in names:
        stem = stem or default
        name, k = stem, 1
        while name.lower() in seen:
            k += 1
            name = f"{stem}-{k}"
        seen.add(name.lower())
        out.append(name)
    return out


def _add_image(sub):
    from blit.stylize import MAX_FACE_RATIO
    p = sub.add_parser("image", help="stylize a photo (or several)",
                       description="Paint the face in TARGET (with --max-faces, each face) in the "
                                   "style of STYLE. With neither given, the embedded default runs: "
                                   "scikit-image's astronaut photo, painted by styleblit, applied to "
                                   "matplotlib's photo of Grace Hopper. Several TARGETs (a "
                                   "folder stands for the images in it) are written into the "
                                   "folder -o as NAME.png (NAME-2.png for a second NAME); one "
                                   "that fails (no face, not an image) is reported and the "
                                   "others are still written (exit code 1).")
    _add_style_args(p)
    p.add_argument("target", nargs="*", metavar="TARGET.png",
                   help="photo with a face, or a folder of them (default: matplotlib's "
                        "grace_hopper.jpg)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png",
                   help="output image; with several TARGETs or a folder of them (or an "
                        "existing folder) the folder for them (made if missing)")
    p.add_argument("--target-landmarks", metavar="FILE",
                   help="68 landmarks of the target (skips detection; one TARGET only)")
    add_stylize_args(p)
    p.add_argument("--max-faces", type=number(int, least=1, most=MOST_FACES), default=1,
                   metavar="N",
                   help="stylize up to N faces, the largest on top (default 1: the largest "
                        f"face; at most {MOST_FACES})")
    p.add_argument("--native-scale", action="store_true",
                   help="paint at the photo's own scale even when its face is over %g times as "
                        "wide as the style's (by default such a photo is painted at the style's "
                        "scale and enlarged, so that the strokes keep their size against the "
                        "face)" % MAX_FACE_RATIO)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(run=_image)


def _version():
    """The installed distribution's version ("unknown" when run from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("styleblit")
    except metadata.PackageNotFoundError:
        return "unknown"


#: The modules whose Numba kernels are compiled on first use and cached.
_KERNEL_MODULES = ("blit/styleblit.py", "blit/blending.py", "blit/temporal.py", "blit/stream.py",
                   "guides/appearance.py", "guides/mask.py", "guides/mls.py")


def _compile_marker(command):
    """The file that says ``command`` has run to the end with these kernel
    sources and this Numba (their compiled code is then in Numba's cache),
    or None where there is no cache folder to keep it in."""
    import hashlib

    import numba

    from guides.cachedir import usable_cache_dir

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    key = hashlib.sha256(numba.__version__.encode())
    for module in _KERNEL_MODULES:
        try:
            st = os.stat(os.path.join(root, module))
        except OSError:
            continue
        key.update(f"{module} {st.st_mtime_ns} {st.st_size}".encode())
    # (where the cache folder cannot be written, in the temporary folder's, as the styles:
    # there every run was a first run, with the notice and the child of _compile_ahead)
    return os.path.join(usable_cache_dir(), "compiled", f"{command}-{key.hexdigest()[:16]}")


def _first_run(args):
    """Say, before a command's first run, that it compiles its kernels
    (Numba, once: about half a minute on 2 cores with nothing printed), on a
    terminal; returns the marker to leave when it succeeds (also where
    nothing is said: a run from a script or a log compiles them as well),
    or None."""
    if args.command == "landmarks":  # (no kernels)
        return None
    try:
        marker = _compile_marker(args.command)
    except Exception:  # (no marker, no notice: never in the way of the command)
        return None
    if (not os.path.exists(marker) and not getattr(args, "quiet", False)
            and sys.stderr.isatty()):
        print(f"styleblit: the first `{args.command}` compiles its kernels (Numba; once, "
              "about half a minute on 2 cores)", file=sys.stderr, flush=True)
    return marker


#: Commands that run the CPU lookup in their own process (``batch`` on Ray
#: runs it in its workers).
_LOOKUP_COMMANDS = ("image", "video", "webcam", "eval", "bench", "compare", "distill", "batch")


def _lookup_marker(marker):
    """The marker, beside ``marker``, that the lookup's kernels of these
    sources are in Numba's cache: left by :mod:`blit.precompile`'s child
    when it is done, and by any command that ran the lookup to the end."""
    folder, name = os.path.split(marker)
    return os.path.join(folder, "lookup-" + name.rsplit("-", 1)[-1])


def _compile_ahead(args, marker):
    """Where the lookup's kernels of these sources are not known to be in
    Numba's cache (no :func:`_lookup_marker`), and this command is to look
    up on this CPU, compile them in a child process while this one starts
    (:mod:`blit.precompile`)."""
    if (marker is None or args.command not in _LOOKUP_COMMANDS
            or getattr(args, "engine", "local") == "ray"
            or (args.command == "eval" and getattr(args, "output", None))  # (ours read, not made)
            or (args.command not in ("compare", "distill")  # (there --device is the GAN's)
                and (getattr(args, "device", None) == "cuda"
                     or (getattr(args, "device", None) == "auto" and _cupy_installed())
                     or getattr(args, "method", None) == "gan"))):
        return
    kernels = sys.modules.get("blit.styleblit")
    if kernels is not None and kernels._lookup_kernel.signatures:  # (compiled in this process)
        return
    lookup = _lookup_marker(marker)
    if os.path.exists(lookup):
        return
    from blit import precompile

    precompile.start(lookup)


def _cupy_installed():
    """Whether CuPy is installed (not imported: a second): ``--device auto``
    then most likely paints on a GPU, where the child's compiling would
    take a core for nothing; with CuPy and no GPU, the first run compiles
    the lookup itself, as before the child."""
    import importlib.util

    try:
        return importlib.util.find_spec("cupy") is not None
    except (ImportError, ValueError):
        return False


def _leave_marker(marker):
    if marker is None:
        return
    kernels = sys.modules.get("blit.styleblit")
    ran = kernels is not None and kernels._lookup_kernel.signatures  # (the lookup ran here)
    for path in (marker, _lookup_marker(marker)) if ran else (marker,):
        _touch(path)


def _touch(path):
    """Make the empty file ``path`` (and its folder) unless it is there."""
    if os.path.exists(path):
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    except OSError:
        pass  # (a cache that cannot be written: the notice again next time)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="styleblit",
        description="Example-based portrait stylization: paint faces in the style of one "
                    "painted portrait (StyleBlit lookup with FaceBlit guides).")
    parser.add_argument("--version", action="version", version=f"styleblit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_prepare_style(sub)
    _add_landmarks(sub)
    _add_image(sub)
    from blit import bench, evaluate  # noqa: F401  (register `bench`, `eval`)
    from blit import video, webcam  # noqa: F401  (register `video`, `webcam`)
    from blit import distributed  # noqa: F401  (register `batch`; Ray lazily)
    from gan_distill import cli as _gan_cli  # noqa: F401  (register `distill`; torch lazily)
    for add in _COMMANDS:
        add(sub)
    for command in sub.choices.values():
        command.set_defaults(command_parser=command)  # usage errors show its usage
    return parser


#: Signals that end a command as Ctrl-C does (``kill``, a job scheduler, a
#: closed terminal): what was written is finalised or removed, never left
#: as a hidden temporary file.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def _stop(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def signal_handlers(handlers):
    """Set ``{signal: handler}`` for the block, restored after; nothing
    outside the main thread (where Python cannot set them)."""
    previous = {}
    try:
        for sig, handler in handlers.items():
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_signals_interrupt():
    """While a command runs: :data:`STOP_SIGNALS` raise KeyboardInterrupt
    where their action is the default."""
    return signal_handlers({sig: _stop for sig in STOP_SIGNALS
                            if signal.getsignal(sig) == signal.SIG_DFL})


def main(argv=None):
    # A console or file that is not UTF-8 (Windows' cp1252, PYTHONIOENCODING=latin-1)
    # cannot print every file name: print those characters escaped rather than fail
    # halfway through a run.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    stdout = sys.stdout = _LossyStream(sys.stdout) if sys.stdout is not None else None
    stderr = sys.stderr = _LossyStream(sys.stderr) if sys.stderr is not None else None
    try:
        with _noted_interrupts() as lost:
            return _main_body(argv, lost)
    finally:
        if stdout is not None:
            stdout.flush()  # (here, not at exit, where an error is Python's traceback)
            sys.stdout = stdout.stream
            lost = stdout.lost
            if lost is not None and lost.errno != errno.EPIPE:  # (a pipe closed: the reader's choice)
                print(f"styleblit: warning: the standard output could not be written "
                      f"({lost.strerror or lost}); the lines after that were dropped",
                      file=sys.stderr)
        if stderr is not None:
            stderr.flush()
            sys.stderr = stderr.stream


class _LossyStream:
    """``sys.stdout`` and ``sys.stderr`` while a command runs: where one
    cannot be written (a pipe its reader closed, ``styleblit image DIR |
    head -1``; a full disk) the line and every later one are dropped and
    the run goes on (a BrokenPipeError traceback stopped it, the rest of the
    targets left unpainted; a photo with no face, said on a standard error
    that could not be written, stopped a whole folder's). ``lost``: the
    first error, else None."""

    def __init__(self, stream):
        self.stream, self.lost = stream, None

    def write(self, text):
        if self.lost is None:
            try:
                return self.stream.write(text)
            except OSError as exc:
                self._drop(exc)
        return len(text)

    def flush(self):
        if self.lost is None:
            try:
                self.stream.flush()
            except OSError as exc:
                self._drop(exc)

    def _drop(self, exc):
        self.lost = exc
        try:  # (what the stream still holds then goes nowhere, at exit too, without an error)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def _noted_interrupts():
    """Ctrl-C as Python's own handler takes it, but noted: one that lands in
    a library's C callback (mediapipe's protobuf import, Numba's cache, the
    import lock) is printed and swallowed there, and the run went on as if
    none came. Yields a list that holds True once one came."""
    lost = [False]

    def handler(signum, frame):
        lost[0] = True
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    if not main_thread or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lost
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield lost
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


#: Options whose value may start with a minus sign (argparse takes "-5,3"
#: for an option): such a value is joined to its option ("--eyes=-5,3").
NEGATIVE_VALUES = ("--eyes",)


def _join_negative_values(argv):
    out = []
    for arg in argv:
        if (out and out[-1] in NEGATIVE_VALUES and re.match(r"-[\d.]", arg)):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _main_body(argv, lost):
    try:  # (the subcommands' imports take a second: Ctrl-C there is no traceback either)
        parser = build_parser()
        argv = _join_negative_values(sys.argv[1:] if argv is None else list(argv))
        args, extra = parser.parse_known_args(argv)
        if extra:  # (with the command's usage, not the top level's)
            getattr(args, "command_parser", parser).error(
                f"unrecognized arguments: {' '.join(extra)}")
        if lost[0]:  # (swallowed by an import)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("styleblit: interrupted", file=sys.stderr)
        return 130
    # OpenCV's FFmpeg reader prints FFmpeg's own errors ("moov atom not
    # found") before ours, which name the file; quiet it (read when OpenCV
    # first opens a video, so a setting of the user's own wins).
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import guides
    from guides.io import InputError, StyleblitWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, StyleblitWarning):
            print(f"styleblit: warning: {message}", file=sys.stderr)
        else:
            default_show(message, category, filename, lineno, file, line)

    marker = _first_run(args)
    _compile_ahead(args, marker)
    try:
        with _stop_signals_interrupt(), warnings.catch_warnings():
            default_show = warnings.showwarning
            warnings.showwarning = show
            warnings.simplefilter("always", StyleblitWarning)
            if guides.NUMBA_CACHE_FALLBACK:  # (said at the first command: not at --version)
                from guides.cachedir import numba_cache_note

                note = numba_cache_note(guides.NUMBA_CACHE_FALLBACK)
                if note:
                    warnings.warn(note, StyleblitWarning)
            lost[0] = False
            code = int(args.run(args) or 0)
        if lost[0] and code == 0:
            print("styleblit: warning: a Ctrl-C was taken and dropped by a library it came "
                  "in; the run went on to its end", file=sys.stderr)
        if code == 0:
            _leave_marker(marker)
        return code
    except _UsageError as exc:
        getattr(args, "command_parser", parser).error(str(exc))
    except InputError as exc:
        print(f"styleblit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("styleblit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # `python -m blit.cli`: run the imported module's main, where the
    # subcommand modules register themselves (not this __main__ copy's).
    from blit.cli import main as _main

    sys.exit(_main())
