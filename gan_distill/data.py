"""Training pairs for the distilled stylizer: frames and their patch-based stylization.

:func:`build_dataset` runs :class:`blit.stream.Stylizer` (the teacher) over
the frames of videos or image folders, plus augmented copies of each frame
(scale, small rotation, colour and lighting, crops), and writes shards
``shard_000000.npz`` ... to a folder, each holding

* ``input``: (N, H, W, 3) uint8 BGR, the frame;
* ``target``: (N, H, W, 3) uint8 BGR, the teacher's output;
* ``mask``: (N, H, W) uint8, the soft head mask (:func:`guides.mask.head_region`)
  times 255, all zero where no face was found;
* ``guide``: (N, H, W, 3) float16, the guide channels of :func:`guide_channels`
  (only with ``DataOptions.guides``).

Frames are first resized so that their long side is ``long_side`` pixels; the
student is trained and run at that size. A build is resumable: shards that
exist are kept, and their frames only run through the teacher's stream
(its output dropped), so that its temporal state goes on as in one build
and the rest comes out as an uninterrupted build makes it (a build that ran
to its end is not run through the teacher again); ``dataset.json``
records the settings, the size budget, each source's path (relative to the
folder that holds the dataset folder where the source lies inside it, so
that a run's folder can be moved as a whole; absolute elsewhere) and its
fingerprint. A folder built with other settings, from other sources or from
a source that has changed since is refused rather than mixed, the message
naming the field, both values and the file; a source is known by its
fingerprint, so one given at another path than recorded (moved) is the same
source, and its new path is recorded. No torch here.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from guides.io import InputError, write_atomic

__all__ = ["DataOptions", "build_dataset", "load_shards", "augment", "resize_long_side",
           "guide_channels", "read_manifest", "recorded_sources", "manifest_path",
           "relative_inside", "GUIDE_CHANNELS", "SHARD_PATTERN", "MANIFEST"]

SHARD_PATTERN = "shard_{:06d}.npz"
MANIFEST = "dataset.json"

#: Guide channels given to the generator beside the frame: the positional
#: guide (exemplar x and y) and the appearance guide.
GUIDE_CHANNELS = 3


@dataclass
class DataOptions:
    """How :func:`build_dataset` samples and augments.

    long_side : int
        Frames are resized so that max(H, W) equals this (0: keep the size).
    shard_size : int
        Samples per shard (one source frame gives ``1 + augment`` samples).
    augment : int
        Augmented copies per source frame.
    every : int
        Use every n-th frame of each source.
    max_frames : int or None
        Use at most this many frames of each source (before ``every``).
    max_bytes : int or None
        Stop once the shards on disk take this much (the size budget).
    guides : bool
        Also store the guide channels (:func:`guide_channels`).
    seed : int
        Seed of the augmentations.
    """

    long_side: int = 512
    shard_size: int = 16
    augment: int = 1
    every: int = 1
    max_frames: int | None = None
    max_bytes: int | None = 2 * 2**30
    guides: bool = True
    seed: int = 0


def resize_long_side(image, long_side):
    """Resize ``image`` (H, W[, C]) so that max(H, W) == long_side (0 or None: unchanged)."""
    if not long_side:
        return image
    h, w = image.shape[:2]
    s = long_side / max(h, w)
    if abs(s - 1.0) < 1e-6:
        return image
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def augment(frame, rng):
    """A randomly scaled, rotated, recoloured and cropped copy of ``frame``.

    Parameters
    ----------
    frame : (H, W, 3) uint8 ndarray, BGR
    rng : numpy.random.Generator

    Returns
    -------
    (H, W, 3) uint8 ndarray
        Same size as ``frame``: scale in [0.8, 1.25] about a random centre
        near the middle (a crop when zooming in), rotation within 10 degrees,
        per-channel gain in [0.85, 1.15], brightness offset within 20 levels,
        gamma in [0.8, 1.25]; borders replicated.
    """
    h, w = frame.shape[:2]
    scale = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    angle = float(rng.uniform(-10.0, 10.0))
    cx = w / 2 + float(rng.uniform(-0.1, 0.1)) * w
    cy = h / 2 + float(rng.uniform(-0.1, 0.1)) * h
    m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    m[:, 2] += (w / 2 - cx, h / 2 - cy)
    out = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gain = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    offset = np.float32(rng.uniform(-20.0, 20.0))
    gamma = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    x = out.astype(np.float32) / 255.0
    x = np.power(np.clip(x * gain + offset / 255.0, 0.0, 1.0), gamma)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def guide_channels(frame, landmarks, style_landmarks, style_quantiles, style_shape, mask=None):
    """The guides of the patch-based stylizer as network input channels.

    Parameters
    ----------
    frame : (H, W, 3) uint8 ndarray, BGR
    landmarks : (68, 2) float32 ndarray or None
        The frame's face; None (no face) gives all-zero channels.
    style_landmarks : (68, 2) float32 ndarray
    style_quantiles : (257,) float32 ndarray
        The exemplar's appearance quantile function (``StyleExemplar.quantiles``).
    style_shape : (int, int)
        The exemplar's (H, W).
    mask : (H, W) float32 ndarray, optional
        The head mask whose histogram is matched (default: the landmarks' head region).

    Returns
    -------
    (H, W, 3) float32 ndarray
        Positional guide (exemplar x and y, mapped so that the exemplar spans
        [-1, 1], clipped to [-2, 2]) and appearance guide (``[0, 255]`` mapped
        to [-1, 1]); FaceBlit's guides (Texler et al. 2020, Sec. 4, feed the
        same to their network).
    """
    from guides.appearance import target_appearance
    from guides.mask import head_region
    from guides.mls import positional_guide

    h, w = frame.shape[:2]
    out = np.zeros((h, w, GUIDE_CHANNELS), np.float32)
    if landmarks is None:
        return out
    landmarks = np.asarray(landmarks, np.float32)
    pos = positional_guide((h, w), landmarks, style_landmarks)  # (H, W, 2) exemplar (x, y)
    sh, sw = style_shape
    out[..., 0] = pos[..., 0] * (2.0 / sw) - 1.0
    out[..., 1] = pos[..., 1] * (2.0 / sh) - 1.0
    np.clip(out[..., :2], -2.0, 2.0, out=out[..., :2])
    if mask is None:
        mask = head_region((h, w), landmarks).full((h, w))
    out[..., 2] = target_appearance(frame, style_quantiles, mask) * (2.0 / 255.0) - 1.0
    return out


def _frames(path, max_frames):
    from blit.evaluate import read_frames

    if os.path.isdir(path):
        from blit.video import IMAGE_EXTENSIONS
        from guides.io import read_image

        names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
        if not names:
            raise InputError(f"{path}: folder holds no images")
        for name in names[:max_frames]:
            yield read_image(os.path.join(path, name))
        return
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    yield from read_frames(path, limit=max_frames)


def _source_frames(path, options):
    """How many frames of ``path`` the build uses (for the progress bar; may be approximate)."""
    from blit.evaluate import frame_count

    if os.path.isdir(path):
        n = len([x for x in os.listdir(path) if not x.startswith(".")])
    else:
        n = frame_count(path)
    if options.max_frames is not None:
        n = min(n, options.max_frames)
    return -(-n // options.every)


def _mask_of(stylizer, shape):
    from guides.mask import head_region

    mask = np.zeros(shape[:2], np.float32)
    for lm in stylizer.last_landmarks:
        np.maximum(mask, head_region(shape, lm).full(shape), out=mask)
    return (mask * 255.0 + 0.5).astype(np.uint8)


def _folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
               if n.startswith("shard_") and n.endswith(".npz"))


def _file_fingerprint(path, chunk=2**20):
    """Size and a hash of the first and last ``chunk`` bytes of a file: a
    video replaced by another at the same path (re-recorded, re-encoded,
    trimmed) gives another fingerprint, without reading gigabytes."""
    size = os.path.getsize(path)
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        h.update(f.read(chunk))
        if size > chunk:
            f.seek(max(chunk, size - chunk))
            h.update(f.read(chunk))
    return f"{size}:{h.hexdigest()}"


def _source_fingerprint(path):
    """What a dataset records of a source, to notice when it has changed: a
    file's :func:`_file_fingerprint`, or a folder's image names with each
    image's."""
    if not os.path.isdir(path):
        return _file_fingerprint(path)
    from blit.video import IMAGE_EXTENSIONS

    h = hashlib.blake2b(digest_size=16)
    for name in sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS)):
        h.update(f"{name}\0{_file_fingerprint(os.path.join(path, name))}\0".encode())
    return f"folder:{h.hexdigest()}"


def manifest_path(folder):
    """The ``dataset.json`` of a dataset folder."""
    return os.path.join(folder, MANIFEST)


def _has_shards(folder):
    return os.path.isdir(folder) and any(n.startswith("shard_") for n in os.listdir(folder))


def read_manifest(folder):
    """What ``folder``'s ``dataset.json`` records, or None where the folder
    holds no dataset yet (no folder, or no shard: nothing to keep).

    Raises
    ------
    InputError
        Shards with no ``dataset.json``, or one that cannot be read.
    """
    if not _has_shards(folder):
        return None
    path = manifest_path(folder)
    if not os.path.exists(path):
        raise InputError(f"{folder}: holds shards but no {MANIFEST}; use another folder")
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                         f"use another folder or delete {folder}") from None
    if (not isinstance(record, dict) or not isinstance(record.get("sources"), list)
            or not all(isinstance(x, str) for x in record["sources"])):
        raise InputError(f"{path}: not a {MANIFEST} that styleblit wrote (no list of "
                         f"'sources'); use another folder or delete {folder}")
    return record


def relative_inside(path, base):
    """``path`` relative to the folder ``base`` where it lies inside it (so
    that the two can be moved together), else absolute."""
    base, path = os.path.abspath(base), os.path.abspath(path)
    try:
        inside = os.path.commonpath([base, path]) == base
    except ValueError:  # (another drive)
        inside = False
    return os.path.relpath(path, base) if inside else path


def _record_path(source, folder):
    """How ``dataset.json`` records ``source``: :func:`relative_inside` the
    folder that holds the dataset folder (the run's folder)."""
    return relative_inside(source, os.path.dirname(os.path.abspath(folder)))


def _resolve_path(recorded, folder):
    """A path as ``dataset.json`` records it (relative to the folder that
    holds ``folder``, or absolute, as it was before) -> a path to open."""
    if os.path.isabs(recorded):
        return recorded
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(folder)), recorded))


def _said(recorded, resolved):
    return recorded if recorded == resolved else f"{recorded} ({resolved})"


def recorded_sources(folder, record=None):
    """The sources ``folder``'s dataset was built from, as paths to open
    (``record``: its :func:`read_manifest`, read when not given).

    Raises
    ------
    InputError
        No dataset there, or a source that is not where it was recorded
        (named with its field, its value and the file).
    """
    record = read_manifest(folder) if record is None else record
    if record is None:
        raise InputError(f"{folder}: holds no dataset to take the sources from")
    sources = [_resolve_path(r, folder) for r in record["sources"]]
    for i, (recorded, path) in enumerate(zip(record["sources"], sources)):
        if not os.path.exists(path):
            raise InputError(f"{manifest_path(folder)}: sources[{i}] is "
                             f"{_said(recorded, path)}, which is not there (moved or deleted?); "
                             + ("give it with --video at its new path" if len(sources) == 1 else
                                f"give the videos with --video, all {len(sources)} in the order "
                                "they were built from"))
    return sources


def _differences(old, new, field):
    """``field.key`` of each setting that differs, with both values."""
    old = old if isinstance(old, dict) else {}
    return [f"{field}.{k} {json.dumps(old.get(k))} ({json.dumps(new.get(k))} asked)"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _check_manifest(folder, manifest, sources):
    """Write ``dataset.json``, or refuse a folder built with other settings
    or from other sources, or from sources that have changed since, naming
    the field, both values and the file. A source is known by its
    fingerprint wherever it is now (a moved run folder, moved videos): the
    new paths are recorded then."""
    path = manifest_path(folder)
    old = read_manifest(folder)
    if old is None:  # (a folder with no shard yet holds nothing to keep)
        _write_json(path, manifest)
        return None
    what = "use another folder or delete it"
    problems = []
    if old.get("style") != manifest["style"]:
        problems.append("style: another exemplar (other pixels or landmarks)")
    problems += _differences(old.get("options"), manifest["options"], "options")
    problems += _differences(old.get("stylize_options"), manifest["stylize_options"],
                             "stylize_options")
    known = {"style", "sources", "fingerprints", "options", "stylize_options", "max_bytes",
             "complete"}
    problems += [f"{k} {json.dumps(old.get(k))} ({json.dumps(manifest.get(k))} asked)"
                 for k in sorted((set(old) | set(manifest)) - known)
                 if old.get(k) != manifest.get(k)]
    if problems:
        raise InputError(f"{folder}: holds a dataset built with other settings: {path} records "
                         f"{'; '.join(problems)}; {what}")
    was = [_resolve_path(r, folder) for r in old["sources"]]
    prints = old.get("fingerprints")
    if not isinstance(prints, list) or len(prints) != len(was):
        raise InputError(f"{folder}: {path} records no fingerprint of each source (one "
                         "written before they were), so its sources cannot be checked; "
                         f"{what}")
    if len(was) != len(sources):
        raise InputError(f"{folder}: holds a dataset built from other sources ({path} records "
                         f"{len(was)}: {', '.join(was)}; {len(sources)} given); give the videos "
                         f"it was built from, or use another --data folder or delete it")
    for i, (then, source) in enumerate(zip(was, sources)):
        if prints[i] == manifest["fingerprints"][i]:
            continue
        if os.path.realpath(then) == os.path.realpath(source):
            raise InputError(f"{folder}: holds a dataset built from {source} as it was before it "
                             f"changed (its fingerprint differs from sources[{i}]'s in {path}); "
                             f"{what}")
        raise InputError(f"{folder}: holds a dataset built from other sources: sources[{i}] is "
                         f"{then} in {path}, not {source} (other frames); give the videos it was "
                         "built from, or use another --data folder or delete it")
    kept = ("sources", "fingerprints", "max_bytes")
    if {k: old.get(k) for k in kept} != {k: manifest[k] for k in kept}:
        old = dict(old, **{k: manifest[k] for k in kept})
        try:  # (the sources where they are now; a record it cannot update is still right)
            _write_json(path, old)
        except InputError:
            pass
    return old


def _write_json(path, record):
    """Write ``record`` to ``path`` whole or not at all (an InputError naming
    it where it cannot be written)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)

    write_atomic(path, write)


def _shard_files(folder):
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if n.startswith("shard_") and n.endswith(".npz") and ".tmp" not in n)


def _complete_shards(folder, record, options):
    """The shards of a build of ``folder`` that ran to its end (``record``'s
    ``complete``), where each is still there and the size budget it stopped
    at, if it did, is not raised; else None (the teacher runs)."""
    done = (record or {}).get("complete")
    if not isinstance(done, dict) or not isinstance(done.get("shards"), int):
        return None
    if not done["shards"] or not all(os.path.isfile(os.path.join(folder, SHARD_PATTERN.format(i)))
                                     for i in range(done["shards"])):
        return None
    if done.get("over_budget") and (not options.max_bytes
                                    or options.max_bytes > (done.get("max_bytes") or 0)):
        return None  # (a larger budget takes in more)
    return _shard_files(folder)


def build_dataset(style, sources, folder, *, options=None, stylize_options=None, quiet=False,
                  landmarker_factory=None):
    """Stylize the frames of ``sources`` with the patch-based teacher into shards.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    sources : list of str
        Video files or folders of images.
    folder : str
        Where the shards go (created).
    options : DataOptions
    stylize_options : blit.stylize.StylizeOptions, optional
    quiet : bool
        No progress bar.
    landmarker_factory : callable, optional
        ``landmarker_factory(static: bool) -> landmarker(frame) -> list of (68, 2)``
        (tests inject one); default mediapipe (tracking for the frames,
        detection for the augmented copies).

    Returns
    -------
    list of str
        Paths of all the shards in ``folder`` (new and existing), in order.

    Raises
    ------
    InputError
        A missing or unreadable source, one given twice, one with no face
        in any frame used, a folder built with other settings, from other
        sources or from sources that have changed since (a source given at
        another path with the recorded fingerprint is the same one), or no
        sample at all.

    Notes
    -----
    Each source frame gives ``1 + augment`` samples: the frame through the
    temporally coherent stream (as in use), and augmented copies, each
    stylized as a still (fresh landmark detection, no state carried from the
    previous copy). A shard is written once it has ``shard_size`` samples
    (temporary file, then rename), so an interrupted build resumes at the
    first missing shard (the frames before it run through the stream again,
    their output dropped). The size budget is checked after every shard. A
    build that ran to its end is recorded so in ``dataset.json``
    (``complete``): building it again (``styleblit distill --resume``)
    returns its shards without running the teacher, unless one is missing
    or the size budget it stopped at is raised.

    Examples
    --------
    >>> build_dataset(load_style("style.png"), ["me.mp4"], "data/")   # doctest: +SKIP
    """
    from tqdm import tqdm

    from blit.stream import Stylizer
    from blit.stylize import StylizeOptions

    options = options or DataOptions()
    stylize_options = stylize_options or StylizeOptions()
    if options.shard_size < 1 or options.every < 1 or options.augment < 0:
        raise ValueError(f"options: expected shard_size >= 1, every >= 1, augment >= 0, got "
                         f"{options.shard_size}, {options.every}, {options.augment}")
    seen = {}
    for source in sources:
        if not os.path.exists(source):
            raise InputError(f"{source}: no such file")
        key = os.path.realpath(source)
        if key in seen:
            raise InputError(f"{source}: given twice (as {seen[key]} too); each source once")
        seen[key] = source
    fingerprints = []
    for source in sources:  # (before the folder is made: an unreadable source leaves none)
        try:
            fingerprints.append(_source_fingerprint(source))
        except OSError as exc:
            raise InputError(f"{exc.filename or source}: cannot be read "
                             f"({exc.strerror or exc})") from None
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: the dataset's folder cannot be made "
                         f"({exc.strerror or exc})") from None
    from guides.exemplar import StyleExemplar

    manifest = {"style": StyleExemplar.cache_key(style.image, style.landmarks),
                "sources": [_record_path(s, folder) for s in sources],
                "fingerprints": fingerprints,
                "options": {k: v for k, v in asdict(options).items() if k != "max_bytes"},
                "stylize_options": asdict(stylize_options),
                "max_bytes": options.max_bytes}  # (not compared: a larger one takes in more)
    done = _complete_shards(folder, _check_manifest(folder, manifest, sources), options)
    if done is not None:  # (a resume of a whole dataset: no teacher pass again)
        return done
    rng = np.random.default_rng(options.seed)
    style_shape = style.image.shape[:2]
    owned = []  # landmarkers created here, closed at the end

    def make(static):
        lm = landmarker_factory(static) if landmarker_factory is not None else None
        if lm is None and static:
            from guides.landmarks import FaceLandmarker

            lm = FaceLandmarker(static_image_mode=True, tiles=True)  # (small faces too)
            owned.append(lm)
        return Stylizer(style, options=stylize_options, landmarker=lm,
                        temporal=None if static else "flow", smoothing=not static, hold=0.0 if static else 0.5)

    shard = 0
    buf = {"input": [], "target": [], "mask": [], "guide": []}
    pending = 0  # samples of the current shard (written or skipped)
    over_budget = False

    def shard_path():
        return os.path.join(folder, SHARD_PATTERN.format(shard))

    def end_shard():
        nonlocal shard, pending
        if buf["input"]:
            tmp = shard_path() + ".tmp.npz"
            arrays = {k: np.stack(v) for k, v in buf.items() if v}
            try:
                np.savez_compressed(tmp, **arrays)
                os.replace(tmp, shard_path())
            except BaseException as exc:  # (Ctrl-C, a full disk: no half-written shard left)
                if os.path.exists(tmp):
                    os.remove(tmp)
                if isinstance(exc, OSError):
                    raise InputError(f"{folder}: a shard could not be written "
                                     f"({exc.strerror or exc})") from None
                raise
        for v in buf.values():
            v.clear()
        shard += 1
        pending = 0

    def add(stylizer, image, out):
        mask = _mask_of(stylizer, image.shape)
        buf["input"].append(image)
        buf["target"].append(out)
        buf["mask"].append(mask)
        if options.guides:
            lm = stylizer.last_landmarks[-1] if stylizer.last_landmarks else None
            g = guide_channels(image, lm, style.landmarks, style.quantiles, style_shape,
                               mask.astype(np.float32) / 255.0)
            buf["guide"].append(g.astype(np.float16))

    counts = [_source_frames(s, options) for s in sources]
    total = sum(counts)
    bar = tqdm(total=total, desc="teacher", unit="frame", disable=quiet, file=sys.stderr)
    stopped_at = None  # (source index, frames of it used) where the budget was reached
    try:
        with make(True) as still:
            for k, source in enumerate(sources):
                used = with_face = 0
                with make(False) as stream:
                    for i, frame in enumerate(_frames(source, options.max_frames)):
                        if i % options.every:
                            continue
                        frame = resize_long_side(frame, options.long_side)
                        copies = [augment(frame, rng) for _ in range(options.augment)]
                        bar.update(1)
                        pending += 1 + len(copies)
                        if os.path.exists(shard_path()):  # done in an earlier run:
                            stream(frame)  # its teacher state goes on as in one build
                        else:
                            add(stream, frame, stream(frame))
                            for c in copies:
                                still.reset()  # each copy on its own: no smoothing, no hold
                                add(still, c, still(c))
                        used += 1
                        with_face += bool(stream.last_landmarks)
                        if pending >= options.shard_size:
                            end_shard()
                            if options.max_bytes and _folder_bytes(folder) >= options.max_bytes:
                                over_budget = True
                                stopped_at = (k, used)
                                break
                    if over_budget:
                        break
                    if not with_face:  # (the teacher leaves such frames as they are)
                        raise InputError(f"{source}: no face found in any of the {used} frames "
                                         "used; nothing to learn the style from")
                    if pending:
                        end_shard()  # shards do not span sources (frames must share a size)
    finally:
        bar.close()
        for lm in owned:
            lm.close()
    if over_budget:  # (said with -q too: the model learns from less than was asked)
        k, used = stopped_at
        rest = sources[k + 1:]
        of = f" of the {counts[k]}" if counts[k] > used else ""
        print(f"styleblit: warning: {folder}: the size budget (--max-mb "
              f"{options.max_bytes / 2**20:g}) was reached after {used}{of} frames used of "
              f"{sources[k]}"
              + (f"; {', '.join(rest)} not used" if rest else "")
              + "; a larger --max-mb, or --every N (every N-th frame), takes in more",
              file=sys.stderr)
    shards = _shard_files(folder)
    if not shards:
        raise InputError(f"{folder}: no training data was produced")
    record = read_manifest(folder)
    record["complete"] = {"shards": len(shards), "over_budget": over_budget,
                          "max_bytes": options.max_bytes}
    try:  # (without it the next build runs the teacher over the frames again)
        _write_json(manifest_path(folder), record)
    except InputError:
        pass
    return shards


def load_shards(paths, *, guides=False):
    """Load shards into lists of arrays (frames of different shards may differ in size).

    Parameters
    ----------
    paths : list of str
    guides : bool
        Also load the guide channels (an error if a shard has none).

    Returns
    -------
    inputs, targets : list of (H, W, 3) uint8 ndarray
    masks : list of (H, W) uint8 ndarray
    guides : list of (H, W, 3) float16 ndarray, or None without ``guides``
    """
    inputs, targets, masks, extra = [], [], [], []
    for path in paths:
        try:
            with np.load(path) as z:
                inputs.extend(z["input"])
                targets.extend(z["target"])
                masks.extend(z["mask"])
                if guides:
                    if "guide" not in z.files:
                        raise InputError(f"{path}: has no guide channels; rebuild the dataset "
                                         "with guides (or train without them)")
                    extra.extend(z["guide"])
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            # (a shard cut short, a copy of the folder interrupted: "File is not a zip file")
            raise InputError(f"{path}: not a gan_distill shard ({exc})") from None
    return inputs, targets, masks, (extra if guides else None)
