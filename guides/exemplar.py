"""Style exemplar precomputation, saved to and loaded from a versioned cache.

Everything about a style that does not depend on the target is computed once:
its landmarks, its appearance guide and that guide's quantile function (for
histogram matching), and the lookup table from (position, appearance) to the
exemplar pixel of least guide error. FaceBlit keeps a 64 MiB 256^3 table per
style; :func:`blit.styleblit.argmin_lookup_table` needs ~6 MiB for 768x1024.

The cache is an ``.npz`` file keyed by the SHA-256 of the image's pixels, its
landmarks and the table's parameters, in the user's cache folder
(``$STYLEBLIT_CACHE``, else ``$XDG_CACHE_HOME/styleblit``, else
``~/.cache/styleblit``).
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field

import numpy as np

from blit.styleblit import LookupParams, argmin_lookup_table
from guides.appearance import quantile_function, style_appearance
from guides.cachedir import cache_dir, cache_dirs, fallback_cache_dir
from guides.io import InputError, StyleWarning, read_image, usual_permissions
from guides.mask import head_region

__all__ = ["StyleExemplar", "StyleWarning", "load_style", "cache_dir", "fallback_cache_dir",
           "save_cached", "write_cached", "CACHE_VERSION"]

# 2: the head mask's soft edge blurred at up to 1/4 resolution (the appearance
# guide's normalisation and quantiles are taken under it)
# 3: the appearance guide kept as uint8 (rounded)
# 4: the appearance guide stretched by the whole image's largest |detail| (FaceBlit's)
# 5: the head mask's fill area-averaged on a canvas padded to the reduction factor
# (the quantiles are taken under it)
# 6: the head masks of heads whose soft edge has sigma >= 48 px blurred at
# 1/(sigma // 6) of their size, reflected at the frame's edge (smaller heads'
# masks unchanged)
# 7: the appearance guide's luminance and its blur's way back up in integer
# arithmetic of its own (guides.appearance), not OpenCV's, which rounds by CPU
# 8: the head mask the polygon's exact 4x4-sample coverage, blurred and
# enlarged by kernels of its own (guides.mask.outline_mask)
CACHE_VERSION = 8
_TABLE_BUDGET = 8 << 20  # bytes for the lookup table


def _table_cell(shape, nbins):
    """Smallest cell (>= 4 px) whose table fits the memory budget."""
    cell = 4
    while -(-shape[0] // cell) * -(-shape[1] // cell) * nbins * 4 > _TABLE_BUDGET:
        cell += 1
    return cell


@dataclass
class StyleExemplar:
    """A painted portrait ready for stylization.

    Attributes
    ----------
    image : (Hs, Ws, 3) uint8 ndarray, BGR
    landmarks : (68, 2) float32 ndarray
    appearance : (Hs, Ws) uint8 ndarray
        Appearance guide, rounded to 8 bits as FaceBlit's: the lookup and
        the stream's propagation read it at random places, and a quarter of
        the bytes stays in cache (propagation 25% faster at 640x480). The
        lookup table is built for these values.
    quantiles : (257,) float32 ndarray
        Quantile function of the appearance guide (before rounding) inside
        the head, which targets are histogram-matched to.
    table : (Hc, Wc, nbins) int32 ndarray
        Lookup table (flat exemplar index) of :func:`blit.styleblit.argmin_lookup_table`.
    app_bin : (256,) int32 ndarray
    cell : int
    params : LookupParams
        The weights the table was built for (the threshold is a default).
    notes : tuple of str
        :class:`guides.io.StyleWarning` messages found when it was prepared
        (:func:`file_note`), saved with it and issued whenever it is loaded.
    packed : (Hs + 8, Ws + 8) uint32 ndarray
        The image as the blending kernel reads it
        (:func:`blit.blending.pack_exemplar`), made on first use (3.1 MiB
        for 768x1024) and not saved.
    """

    image: np.ndarray
    landmarks: np.ndarray
    appearance: np.ndarray
    quantiles: np.ndarray
    table: np.ndarray
    app_bin: np.ndarray
    cell: int
    params: LookupParams
    name: str = field(default="style")
    notes: tuple = field(default=(), compare=False)
    _packed: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def shape(self):
        return self.image.shape[:2]

    @property
    def packed(self):
        if self._packed is None:
            from blit.blending import pack_exemplar

            self._packed = pack_exemplar(self.image)
        return self._packed

    def __getstate__(self):
        # pickled (Ray's object store) without the packed image: made again on use
        return {**self.__dict__, "_packed": None}

    @property
    def nbytes(self):
        """Bytes of its arrays (the packed image counted once it is made)."""
        arrays = (self.image, self.landmarks, self.appearance, self.quantiles, self.table,
                  self.app_bin, self._packed)
        return sum(a.nbytes for a in arrays if a is not None)

    @classmethod
    def prepare(cls, image, landmarks, *, lam_app=2.0, nbins=32, name="style"):
        """Precompute guides and the lookup table of an exemplar.

        Parameters
        ----------
        image : (Hs, Ws, 3) uint8 ndarray, BGR
        landmarks : (68, 2) float ndarray
        """
        image = np.ascontiguousarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
        landmarks = np.asarray(landmarks, np.float32)
        if landmarks.shape != (68, 2):
            raise ValueError(f"landmarks: expected (68, 2), got {landmarks.shape}")
        h, w = image.shape[:2]
        if not np.isfinite(landmarks).all():
            raise ValueError("landmarks: expected finite coordinates")
        if not (landmarks.min(0) >= (-0.5 * w, -0.5 * h)).all() or \
                not (landmarks.max(0) <= (1.5 * w, 1.5 * h)).all():
            raise ValueError(f"landmarks: they lie far outside the {w}x{h} image (of another "
                             f"image, or another resolution?)")
        head = head_region(image.shape, landmarks).full(image.shape)
        detail = style_appearance(image)  # stretched as FaceBlit's: by the whole image
        appearance = np.round(detail).astype(np.uint8)  # in [0, 255] already
        params = LookupParams.faceblit(image.shape, lam_app=lam_app)
        cell = _table_cell(image.shape, nbins)
        table, app_bin = argmin_lookup_table(appearance, params, cell=cell, nbins=nbins)
        return cls(image, landmarks, appearance, quantile_function(detail, head), table,
                   app_bin, cell, params, name)

    @staticmethod
    def cache_key(image, landmarks, *, lam_app=2.0, nbins=32):
        h = hashlib.sha256()
        h.update(f"v{CACHE_VERSION} {image.shape} {lam_app} {nbins}".encode())
        h.update(np.ascontiguousarray(image).tobytes())
        h.update(np.asarray(landmarks, np.float32).tobytes())
        return h.hexdigest()[:32]

    def save(self, path):
        """Write the precomputation to ``path`` (.npz), atomically."""
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz", dir=folder)
        os.close(fd)
        try:
            # made in memory (12 MiB at most), then written: np.savez writing into a
            # full disk left its zip file to fail again when collected ("Exception
            # ignored in ZipFile.__del__", a traceback after our own error line)
            data = io.BytesIO()
            np.savez(data, version=CACHE_VERSION, image=self.image, landmarks=self.landmarks,
                     appearance=self.appearance, quantiles=self.quantiles, table=self.table,
                     app_bin=self.app_bin, cell=self.cell, name=self.name,
                     notes=np.array(list(self.notes), dtype=str),
                     params=np.array([self.params.lam_pos, self.params.lam_app,
                                      self.params.threshold, self.params.levels], np.float64))
            with open(tmp, "wb") as f:
                f.write(data.getbuffer())
            usual_permissions(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save`.

        Raises
        ------
        InputError
            If the file is missing, not such a file, or of another version.
        """
        try:
            with np.load(path, allow_pickle=False) as f:
                version = int(f["version"])
                if version != CACHE_VERSION:
                    raise InputError(f"{path}: style cache version {version}, expected {CACHE_VERSION}; "
                                     "run `styleblit prepare-style` again")
                p = f["params"]
                style = cls(f["image"], f["landmarks"], f["appearance"], f["quantiles"],
                            f["table"], f["app_bin"], int(f["cell"]),
                            LookupParams(float(p[0]), float(p[1]), float(p[2]), int(p[3])),
                            str(f["name"]),
                            tuple(str(n) for n in f["notes"]) if "notes" in f else ())
            problem = style._inconsistency()
            if problem:
                raise InputError(f"{path}: not a styleblit style cache ({problem})")
            return style
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{path}: not a styleblit style cache (as `styleblit prepare-style` "
                             "writes)") from None

    def _inconsistency(self):
        """What is wrong with the arrays of a loaded cache (the kernels read
        them unchecked), or None."""
        image, table = self.image, self.table
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
            return f"image: {image.shape} {image.dtype}"
        h, w = image.shape[:2]
        expected = {"landmarks": ((68, 2), None), "appearance": ((h, w), np.uint8),
                    "quantiles": ((257,), None), "app_bin": ((256,), np.int32)}
        for name, (shape, dtype) in expected.items():
            a = getattr(self, name)
            if a.shape != shape or (dtype is not None and a.dtype != dtype):
                return f"{name}: {a.shape} {a.dtype}"
        if self.cell < 1 or table.ndim != 3 or table.dtype != np.int32 or table.shape[:2] != (
                -(-h // self.cell), -(-w // self.cell)):
            return f"table: {table.shape} {table.dtype} for cell {self.cell}"
        nbins = table.shape[2]
        if nbins < 1 or self.app_bin.min() < 0 or self.app_bin.max() >= nbins:
            return "app_bin: bins out of range"
        if table.min() < 0 or table.max() >= h * w:
            return "table: indices out of range"
        if not (np.isfinite(self.landmarks).all() and np.isfinite(self.quantiles).all()):
            return "landmarks or quantiles not finite"
        return None


def edge_note(shape, landmarks):
    """What to say of landmarks of an image of ``shape`` that lie outside
    it, or None. The positional guide then sends part of a target's face
    off the exemplar, where the lookup can only copy from the edge."""
    h, w = shape[:2]
    x, y = np.asarray(landmarks, np.float64).T
    sides = [side for side, off in (("left", x < -0.5), ("right", x > w - 0.5),
                                    ("top", y < -0.5), ("bottom", y > h - 0.5)) if off.any()]
    if not sides:
        return None
    outside = int(((x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)).sum())
    return (f"its face runs past the image's {' and '.join(sides)} edge ({outside} of its 68 "
            "landmarks outside): that part of a face is painted from the edge, in streaks; a "
            "painting with the whole face in it paints the whole face")


def file_note(image, landmarks):
    """What to say of landmarks read from a file for ``image`` when no face
    found in the image is where they put one (bounding boxes overlapping by
    under a half: hand-corrected landmarks of the 12 FaceBlit styles overlap
    mediapipe's by 0.80-0.95), or the one there stands the other way up
    (mouth to eyes); None otherwise, also when no face is found."""
    from guides.landmarks import _box_overlap, detect_upright_faces

    found = detect_upright_faces(image, 4)
    if not found:
        return None
    overlap, face = max(((_box_overlap(landmarks, f), k) for k, f in enumerate(found)))
    if overlap >= 0.5:
        # where it is, but the other way up (eyes given in the wrong order to --eyes,
        # or a file of the painting turned): the mouth painted on the forehead
        if _up(landmarks) @ _up(found[face]) < 0:
            return ("its face stands the other way up from the face found there (its eyes "
                    "where that one's mouth is): landmarks of the image turned? They are used "
                    "as they are")
        return None
    lo, hi = np.asarray(landmarks).min(0), np.asarray(landmarks).max(0)
    f_lo, f_hi = found[0].min(0), found[0].max(0)  # (the largest)
    def box(a, b):
        return f"{a[0]:.0f},{a[1]:.0f} to {b[0]:.0f},{b[1]:.0f}"

    return (f"its face ({box(lo, hi)}) is not where a face is found in the image "
            f"({box(f_lo, f_hi)}): landmarks of another size or crop of it? They are used as "
            "they are")


def _up(points):
    """The unit direction from a face's mouth to its eyes (68 points)."""
    p = np.asarray(points, np.float64)
    v = (p[36:48].mean(0) - p[48:68].mean(0))
    return v / max(float(np.hypot(*v)), 1e-9)


def _style_landmarks(path, image, landmarks_path):
    """A style image's landmarks and the file they were read from (None:
    detected)."""
    from guides.landmarks import check_landmarks_fit, detect_upright_landmarks, read_lm68

    if landmarks_path is None:
        beside = os.path.splitext(path)[0] + ".lm68.txt"
        if os.path.exists(beside):
            landmarks_path = beside
    if landmarks_path is not None:
        points = read_lm68(landmarks_path)
        return check_landmarks_fit(points, image.shape, landmarks_path, path), landmarks_path
    lm = detect_upright_landmarks(image)  # (a painting scanned upside down too)
    if lm is None:
        raise InputError(f"{path}: no face found in the style image; give its 68 landmarks "
                         f"in {os.path.splitext(path)[0]}.lm68.txt beside it (68 lines 'x y', "
                         "dlib order; `styleblit landmarks STYLE --template` writes one to "
                         "correct), or as --style-landmarks FILE to the commands that take "
                         "one style")
    return lm, None


def warn_style(path, shape, landmarks, *, notes=(), image=None, landmarks_path=None):
    """Issue the :class:`guides.io.StyleWarning` s of a style: its
    :func:`edge_note`, its saved ``notes``, and with ``image`` and the
    ``landmarks_path`` its landmarks were read from, :func:`file_note` (a
    detection: done when a style is prepared). Returns the notes to save
    with the style (the saved ones and the file's)."""
    note = edge_note(shape, landmarks)
    if note:
        warnings.warn(f"{path}: {note}", StyleWarning, stacklevel=3)
    notes = tuple(notes)
    if image is not None and landmarks_path is not None:
        note = file_note(image, landmarks)
        if note:
            notes += (f"{landmarks_path}: {note}",)
    for note in notes:
        warnings.warn(note, StyleWarning, stacklevel=3)
    return notes


def load_style(path, *, landmarks_path=None, cache=True, lam_app=2.0, nbins=32):
    """Load a style exemplar, from the cache when it has been prepared before.

    Parameters
    ----------
    path : str
        The painted portrait (any image OpenCV reads), or a ``.npz`` written by
        :meth:`StyleExemplar.save`.
    landmarks_path : str, optional
        Its 68 landmarks; default ``STYLE.lm68.txt`` beside the image if it
        exists, else detected with mediapipe. Landmarks from a file always
        win. Not with a ``.npz``, which holds its landmarks.
    cache : bool or str
        Use the default cache folder (True), none (False), or this folder.
    lam_app : float
        Weight of the appearance guide in the lookup table's guide error
        (:meth:`blit.styleblit.LookupParams.faceblit`, FaceBlit's 2).
    nbins : int
        Appearance bins of the lookup table
        (:func:`blit.styleblit.argmin_lookup_table`).

    Returns
    -------
    StyleExemplar

    Raises
    ------
    InputError
        Unreadable image or landmark file, or no face and no landmark file;
        landmarks given with a ``.npz``.
    """
    if isinstance(nbins, bool) or not isinstance(nbins, (int, np.integer)) or nbins < 1:
        raise ValueError(f"nbins: expected a whole number at least 1, got {nbins!r}")
    if not (np.isfinite(lam_app) and lam_app >= 0):
        raise ValueError(f"lam_app: expected a finite number at least 0, got {lam_app!r}")
    path = os.fspath(path)
    if path.lower().endswith(".npz"):
        if landmarks_path is not None:
            raise InputError(f"{landmarks_path}: a prepared style ({path}) holds its landmarks "
                             "already; give the painted image with them instead")
        style = StyleExemplar.load(path)
        warn_style(path, style.image.shape, style.landmarks, notes=style.notes)
        return style
    image = read_image(path)
    landmarks, landmarks_path = _style_landmarks(path, image, landmarks_path)
    name = os.path.splitext(os.path.basename(path))[0]
    key = StyleExemplar.cache_key(image, landmarks, lam_app=lam_app, nbins=nbins)
    # the cache folder, and for the default one the fallback where it cannot be written
    folders = cache_dirs() if cache is True else [cache] if cache else []
    file = f"style-{key}.npz"
    for folder in folders:
        cached = os.path.join(folder, file)
        if os.path.exists(cached):
            try:
                style = StyleExemplar.load(cached)
                style.name = name
                warn_style(path, image.shape, landmarks, notes=style.notes)
                return style
            except InputError:
                pass  # stale or broken cache entry: rebuild it
    notes = warn_style(path, image.shape, landmarks, image=image, landmarks_path=landmarks_path)
    style = StyleExemplar.prepare(image, landmarks, lam_app=lam_app, nbins=nbins, name=name)
    style.notes = notes
    if folders:
        save_cached(style, file, folder=None if cache is True else cache)
    return style


def write_cached(write, what, *, folder=None):
    """Call ``write(root)`` to write ``what`` into the cache folder ``root``
    (``folder``, or :func:`cache_dir`); where that cannot be written
    (read-only, or a file: an ``OSError`` or ``InputError``), into
    :func:`fallback_cache_dir` instead, with a
    :class:`guides.io.StyleblitWarning` saying so (only for the default
    cache folder: a folder given is the caller's). Returns the folder
    written in, or None."""
    from guides.io import StyleblitWarning

    first = folder if folder is not None else cache_dir()
    try:
        write(first)
        return first
    except (OSError, InputError) as exc:
        problem = str(exc) if isinstance(exc, InputError) else f"{first}: {exc.strerror or exc}"
    if folder is not None:
        return None
    root = fallback_cache_dir()
    try:
        write(root)
    except (OSError, InputError):
        return None  # (not cached: made again next time)
    warnings.warn(f"the cache folder cannot be written ({problem}); {what} is kept in {root}",
                  StyleblitWarning, stacklevel=3)
    return root


def save_cached(style, file, *, folder=None):
    """Save ``style`` as ``file`` in the cache folder (:func:`write_cached`).
    Returns the path written, or None."""
    root = write_cached(lambda root: style.save(os.path.join(root, file)), style.name,
                        folder=folder)
    return None if root is None else os.path.join(root, file)
