"""Reading images from disk into the project's convention: (H, W, 3) uint8 BGR.

Every user-facing input problem is raised as :class:`InputError` (a
``ValueError``) whose message names the file and what is wrong with it; the
command line turns it into one line on stderr and a non-zero exit code.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import struct
import sys
import tempfile
import threading

import cv2
import numpy as np

__all__ = ["InputError", "StyleblitWarning", "StyleWarning", "check_bgr_frame", "read_image",
           "to_bgr8", "exif_orientation", "exif_upright", "write_image", "write_atomic",
           "publish", "exists_meanwhile", "temp_prefix", "check_readable",
           "check_image_extension", "IMAGE_WRITE_EXTENSIONS",
           "usual_permissions", "VIDEO_FILE_EXTENSIONS"]

#: File endings taken for videos where a command must tell a video from another file by
#: its name (``batch``'s folders and list files, ``eval``'s input): the containers
#: phones, cameras and the web produce, all of which PyAV reads. ``video`` itself opens
#: any file PyAV reads, whatever its name.
VIDEO_FILE_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                         ".wmv", ".mts", ".m2ts", ".ts", ".3gp", ".flv", ".ogv", ".vob", ".dv",
                         ".mxf", ".y4m", ".ivf", ".h264", ".264", ".hevc", ".265")


@functools.lru_cache(maxsize=None)
def _umask() -> int:
    """The process's umask. Reading it means setting it and back, so it is
    read once; the most private mask stands in for that instant."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def usual_permissions(path: str | os.PathLike) -> None:
    """Give a file or folder made by ``tempfile`` (0600 / 0700, private) the
    permissions a plain ``open()`` or ``os.mkdir`` would have given it under
    the user's umask, before it is renamed into place as an output."""
    mode = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, mode & ~_umask())


class InputError(ValueError):
    """A problem with the user's input: a file, a value or a detection.

    The message is meant to be shown to the user as it is, on one line.
    """


def nearest_existing(path) -> str:
    """``path``, or the nearest folder above it that exists (or a file, a
    link: what :func:`os.path.lexists` finds); ``""`` for a relative path
    none of whose parts exists."""
    while path and not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def no_folder_error(path, folder) -> InputError:
    """The error for an output ``path`` whose ``folder`` is not a folder:
    missing, or a file on its way (``-o clip.mp4/x.mp4`` with clip.mp4 a
    file), which the message then names."""
    up = nearest_existing(folder)
    if up and os.path.lexists(up) and not os.path.isdir(up):
        return InputError(f"{path}: {up} is a file, not a folder")
    return InputError(f"{path}: folder {folder} does not exist")


class StyleblitWarning(UserWarning):
    """Something the user should know that does not stop the work (a cache
    folder that cannot be written, say). ``styleblit`` prints these as one
    ``styleblit: warning:`` line each."""


class StyleWarning(StyleblitWarning):
    """Something about a style exemplar that shows in what it paints: its
    face past the image's edge, or a landmark file whose face is not where
    one is found in the image (:func:`guides.exemplar.warn_style`)."""


def check_bgr_frame(frame, name: str = "frame") -> np.ndarray:
    """``frame`` as an array, or a ValueError naming it unless it is a
    non-empty (H, W, 3) uint8 image: the check of every per-frame entry
    point (the stream, the GAN stylizer, the landmarker)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or 0 in frame.shape:
        raise ValueError(f"{name}: expected a non-empty (H, W, 3) uint8 image, got {frame.shape} "
                         f"{frame.dtype}")
    return frame


def to_bgr8(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Convert a decoded image to (H, W, 3) uint8 BGR.

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray, C in {1, 3, 4}; uint8 or uint16
        Grayscale is replicated to three channels; an alpha channel is
        composited over white; 16-bit values are scaled to 8 bits.
    name : str
        How to name the image in an error message.

    Returns
    -------
    (H, W, 3) uint8 ndarray, C-contiguous.
    """
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise TypeError(f"{name}: expected uint8 or uint16 pixels, got {image.dtype}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        rgb = image[:, :, :3].astype(np.float32)
        image = (rgb * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    elif not (image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"{name}: expected (H, W), (H, W, 3) or (H, W, 4) pixels, got shape {image.shape}")
    return np.ascontiguousarray(image)


class _Redirect:
    """File descriptor 2 captured for :func:`filtered_native_stderr`: the
    descriptor it replaced, the capture, the patterns of everyone inside."""

    def __init__(self, saved: int, capture):
        self.saved, self.capture, self.noise, self.depth = saved, capture, [], 0


_redirect_lock = threading.Lock()
_redirect: _Redirect | None = None


@contextlib.contextmanager
def filtered_native_stderr(noise: re.Pattern):
    """Capture file descriptor 2 and re-emit every line but those ``noise``
    matches (a compiled bytes pattern).

    Native code (mediapipe, libpng inside OpenCV) writes to the file
    descriptor directly, bypassing ``sys.stderr``, so the only way to drop
    its chatter is to redirect the descriptor for the duration. Errors and
    any other output are written back unchanged afterwards. The redirection
    is process-wide: output of other threads during it is delayed, not lost.
    Threads inside at once share one capture (the first in redirects, the
    last out puts the descriptor back and drops the lines any of their
    patterns match), so that none restores another's capture in place of
    the real stderr.
    """
    global _redirect
    with _redirect_lock:
        state = _redirect
        if state is None:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):
                saved = None
            if saved is not None:
                capture = None
                try:  # (no temporary folder that can be written: nothing filtered)
                    capture = tempfile.TemporaryFile()
                    os.dup2(capture.fileno(), 2)
                except OSError:
                    os.close(saved)
                    if capture is not None:
                        capture.close()
                else:
                    _redirect = state = _Redirect(saved, capture)
        if state is not None:
            state.depth += 1
            state.noise.append(noise)
    if state is None:
        yield
        return
    try:
        yield
    finally:
        with _redirect_lock:
            state.depth -= 1
            last = state.depth == 0
            if last:
                _redirect = None
                try:
                    sys.stderr.flush()
                except (OSError, ValueError, AttributeError):
                    pass
                os.dup2(state.saved, 2)
                os.close(state.saved)
        if last:
            capture = state.capture
            try:
                capture.seek(0)
                kept = [ln for ln in capture.read().splitlines(keepends=True)
                        if not any(p.match(ln) for p in state.noise)]
                if kept:
                    os.write(2, b"".join(kept))
            except OSError:
                pass  # (a standard error that cannot be written: a full disk, a closed pipe)
            finally:
                capture.close()


#: What libpng says of a PNG's colour profile (iCCP) as OpenCV decodes it: "known
#: incorrect sRGB profile", "cHRM chunk does not match sRGB" (Photoshop's exports),
#: on every read, and nothing a user can act on.
# (and its errors: a file it cannot decode is then named by our own InputError)
_LIBPNG_NOISE = re.compile(rb"^libpng (warning: (iCCP|cHRM|sRGB|gAMA)\b|error: )")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The chunk that ends every PNG (length 0, type, CRC).
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _png_complete(data: np.ndarray) -> bool:
    """Whether a PNG's bytes end with its IEND chunk (not cut short)."""
    return data[-len(_PNG_END):].tobytes() == _PNG_END


def _decode(data: np.ndarray, flags: int):
    """``cv2.imdecode``, libpng's profile warnings and OpenCV's decoders'
    warnings ("PNG input buffer is incomplete": a file cut short, which is
    named by our own error) left out."""
    levels = _opencv_log_level()
    if levels is not None:
        level = levels[0]()
        levels[1](min(level, 2))  # (2: errors only)
    try:
        if data[:8].tobytes() == _PNG_SIGNATURE and (b"iCCP" in data[:1 << 16].tobytes()
                                                      or not _png_complete(data)):
            with filtered_native_stderr(_LIBPNG_NOISE):
                return cv2.imdecode(data, flags)
        return cv2.imdecode(data, flags)
    finally:
        if levels is not None:
            levels[1](level)


def _decode_refused(data: np.ndarray, exc) -> str:
    """Why OpenCV's decoder raised ``exc`` on the file's bytes ``data``: an
    image over OpenCV's limit of 2**30 pixels (its size where the file is a
    PNG), or its one-line message."""
    text = " ".join(str(exc).split())
    if "CV_IO_MAX_IMAGE_PIXELS" in text:
        size = ""
        if data[:8].tobytes() == _PNG_SIGNATURE and data.size >= 24:
            w, h = struct.unpack(">II", data[16:24].tobytes())
            size = f" ({w}x{h})"
        return (f"too large to read: an image of more than 2**30 pixels{size}, OpenCV's limit; "
                "shrink it first")
    return f"cannot be decoded (OpenCV: {text[-200:]})"


def _opencv_log_level():
    """OpenCV's functions that get and set its log level, or None where the
    build has neither ``cv2.getLogLevel`` nor ``cv2.utils.logging``'s
    (OpenCV 5.0's opencv-python-headless has no ``cv2.getLogLevel``)."""
    for module in (cv2, getattr(getattr(cv2, "utils", None), "logging", None)):
        get, set_ = getattr(module, "getLogLevel", None), getattr(module, "setLogLevel", None)
        if get is not None and set_ is not None:
            return get, set_
    return None


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of EXIF data (a TIFF header and its first
    directory); 1 (as stored) when there is none or the data is broken."""
    tiff = tiff[6:] if tiff.startswith(b"Exif\x00\x00") else tiff
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        magic, ifd = struct.unpack_from(order + "HI", tiff, 2)
        if magic != 42:
            return 1
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for k in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHIH", tiff, ifd + 2 + 12 * k)
            if tag == 0x0112 and kind == 3:  # (SHORT)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a PNG (its ``eXIf`` chunk) or a WebP (its
    ``EXIF`` chunk) file's bytes; 1 (as stored) for other files, or none.

    OpenCV turns a JPEG and a TIFF itself, but reads a PNG and a WebP as
    stored with the flags that keep alpha and 16 bits (a WebP with any)."""
    data = memoryview(data).cast("B")
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # chunks: length, type, data, CRC
        at, head, name, step = 8, ">I4s", b"eXIf", 12
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":  # chunks: type, length (LE), data
        at, head, name, step = 12, "<4sI", b"EXIF", 8
    else:
        return 1
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(head, data, at)
        if head == "<4sI":
            kind, length = length, kind
        if kind == name:
            return _tiff_orientation(bytes(data[at + 8:at + 8 + length]))
        if kind == b"IEND":
            break
        at += step + length + (length % 2 if head == "<4sI" else 0)  # (WebP pads to even)
    return 1


def exif_upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` as stored, turned as EXIF ``orientation`` (1-8) says a viewer
    shows it."""
    flips = {1: image, 2: image[:, ::-1], 3: image[::-1, ::-1], 4: image[::-1],
             5: image.swapaxes(0, 1), 6: image[::-1].swapaxes(0, 1),
             7: image[::-1, ::-1].swapaxes(0, 1), 8: image[:, ::-1].swapaxes(0, 1)}
    return np.ascontiguousarray(flips.get(orientation, image))


#: ISO media brands of still images (HEIF: an iPhone's .heic; AVIF), which OpenCV's
#: wheels do not decode; other ``ftyp`` files are videos (MP4, MOV, 3GP).
_STILL_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


def _not_decoded(head: bytes, complete_png: bool = True) -> str:
    """Why a file whose first bytes are ``head`` gave no image
    (``complete_png``: a PNG's bytes end with its IEND chunk)."""
    if not head:
        return "empty file"
    if head[:8] == _PNG_SIGNATURE and not complete_png:
        return "a PNG cut short or damaged (it does not end with PNG's IEND chunk)"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ("a GIF, which OpenCV does not decode (save it as PNG; `styleblit video` reads "
                "an animated GIF as a video)")
    if head[4:8] == b"ftyp" and head[8:12] in _STILL_BRANDS:
        return "a HEIF/AVIF image, which OpenCV does not decode (save it as JPEG or PNG)"
    if (head[4:8] == b"ftyp" or head[:4] == b"\x1a\x45\xdf\xa3"
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")):
        return "a video, not an image (`styleblit video` stylizes videos)"
    return "not an image file OpenCV can decode"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 BGR.

    Grayscale, RGBA and 16-bit files are accepted (see :func:`to_bgr8`); the
    image is turned upright as its EXIF orientation tag says (a JPEG, PNG,
    WebP or TIFF; phones store photos sideways with such a tag).

    Raises
    ------
    InputError
        If the file does not exist, is not readable, or is not an image.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, expected an image file")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    # IMREAD_UNCHANGED keeps alpha and 16 bits but ignores a JPEG's EXIF orientation tag.
    # A JPEG has neither, and phones store photos sideways with such a tag: read it with
    # IMREAD_COLOR, which turns it upright as every viewer shows it. A TIFF is turned
    # by OpenCV either way; a PNG's or a WebP's tag, never: it is turned here.
    jpeg = data[:3].tobytes() == b"\xff\xd8\xff"
    try:
        image = _decode(data, cv2.IMREAD_COLOR if jpeg else cv2.IMREAD_UNCHANGED) if data.size \
            else None
    except cv2.error as exc:
        raise InputError(f"{path}: {_decode_refused(data, exc)}") from None
    if image is None:
        raise InputError(f"{path}: {_not_decoded(data[:16].tobytes(), _png_complete(data))}")
    if not jpeg:
        image = exif_upright(image, exif_orientation(data))
    try:
        return to_bgr8(image, name=path)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from None


def check_readable(path: str | os.PathLike) -> None:
    """An :class:`InputError` naming ``path`` and the system's reason when
    the file cannot be opened for reading (no permission): said so, before
    a library that would take it for a file it cannot decode."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot be read ({exc.strerror or exc})") from None


def write_image(path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = True) -> None:
    """Write an image atomically: to a temporary file beside ``path``, then rename.

    A failure leaves no half-written file at ``path``; with ``overwrite``
    False, neither does a file that appeared there meanwhile get replaced
    (:func:`write_atomic`).

    Raises
    ------
    InputError
        If the extension is not an image format or the folder is not writable.
    """
    path = os.fspath(path)
    ext = check_image_extension(path)
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise InputError(f"{path}: cannot encode an image with extension {ext!r} (use .png or .jpg)")
    write_atomic(path, buf.tofile, suffix=ext, overwrite=overwrite)


#: The endings :func:`write_image` writes (none: PNG).
IMAGE_WRITE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def check_image_extension(path: str | os.PathLike) -> str:
    """The image format of an output path, by its ending (``.png`` when it
    has none); an :class:`InputError` for an ending :func:`write_image`
    cannot write, so that a command can refuse it before any work."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower() or ".png"
    if ext not in IMAGE_WRITE_EXTENSIONS:
        raise InputError(f"{path}: cannot encode an image with extension {ext!r} (use .png or .jpg)")
    return ext


def temp_prefix(name: str) -> str:
    """The start of a temporary name beside an output called ``name``:
    ``.NAME.``, or for a name near the file systems' 255-byte limit (a
    legal name the temporary's additions would take past it) ``.styleblit.``."""
    return f".{name}." if len(name.encode("utf-8", "surrogateescape")) <= 200 else ".styleblit."


def exists_meanwhile(path: str) -> InputError:
    """The error of an output that another run wrote at ``path`` after this
    one checked it (:func:`publish`)."""
    return InputError(f"{path}: exists already (written meanwhile by another run?); pass "
                      "--overwrite to replace it")


def publish(tmp: str, path: str, *, overwrite: bool = True) -> None:
    """Rename the complete file ``tmp`` to ``path``. Without ``overwrite``, a
    file that appeared at ``path`` since the command checked (another run
    writing the same output) is not replaced: a hard link, which refuses an
    existing name, then ``tmp`` removed; where the file system has no hard
    links, a last check before the rename."""
    if not overwrite:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise exists_meanwhile(path) from None
        except OSError:  # (no hard links here)
            if os.path.lexists(path):
                raise exists_meanwhile(path) from None
        else:
            os.remove(tmp)
            return
    os.replace(tmp, path)


def write_atomic(path: str | os.PathLike, write, *, suffix: str = "",
                 overwrite: bool = True) -> None:
    """Write a file atomically: ``write(tmp)`` makes it at a temporary path
    beside ``path`` (ending with ``suffix``, for writers that go by the
    ending; a name of its own, so two runs do not write into one), which is
    then renamed to ``path`` (:func:`publish`: without ``overwrite``, not
    over a file that appeared there meanwhile).

    A failure leaves no half-written file, at ``path`` or beside it.

    Raises
    ------
    InputError
        If the folder does not exist or the file cannot be written there
        (names ``path`` and the system's reason), or, without ``overwrite``,
        a file appeared at ``path``.
    """
    import tempfile

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise no_folder_error(path, folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(os.path.basename(path)),
                                   suffix=f".partial{suffix}", dir=folder)
        os.close(fd)
        usual_permissions(tmp)  # (as open() would have made it, not 0600)
    except OSError as exc:
        raise InputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    try:
        write(tmp)
        publish(tmp, path, overwrite=overwrite)
    except OSError as exc:
        _remove_quietly(tmp)
        raise InputError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path):
    try:
        if os.path.lexists(path):
            os.remove(path)
    except OSError:
        pass
