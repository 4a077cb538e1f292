"""Training pairs for the distilled stylizer: frames and their patch-based stylization.

:func:`build_dataset` runs :class:`blit.stream.Stylizer` (the teacher) over
the frames of videos or image folders, plus augmented copies of each frame
(scale, small rotation, colour and lighting, crops), and writes shards
``shard_000000.npz`` ... to a folder, each holding

* ``input``: (N, H, W, 3) uint8 BGR, the frame;
* ``target``: (N, H, W, 3) uint8 BGR, the teacher's output;
* ``mask``: (N, H, W) uint8, the soft head mask (:func:`guides.mask.head_region`)
  times 255, all zero where no face was found.

Frames are first resized so that their long side is ``long_side`` pixels; the
student is trained and run at that size. A build is resumable: shards that
exist are skipped (the teacher's temporal coherence restarts after them).
No torch here.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from guides.io import InputError

__all__ = ["DataOptions", "build_dataset", "load_shards", "augment", "resize_long_side",
           "SHARD_PATTERN"]

SHARD_PATTERN = "shard_{:06d}.npz"


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
    seed : int
        Seed of the augmentations.
    """

    long_side: int = 512
    shard_size: int = 16
    augment: int = 1
    every: int = 1
    max_frames: int | None = None
    max_bytes: int | None = 2 * 2**30
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


def _mask_of(stylizer, shape):
    from guides.mask import head_region

    mask = np.zeros(shape[:2], np.float32)
    for lm in stylizer.last_landmarks:
        np.maximum(mask, head_region(shape, lm).full(shape), out=mask)
    return (mask * 255.0 + 0.5).astype(np.uint8)


def _folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)
               if n.startswith("shard_") and n.endswith(".npz"))


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
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(options.seed)

    owned = []  # landmarkers created here, closed at the end

    def make(static):
        lm = landmarker_factory(static) if landmarker_factory is not None else None
        if lm is None and static:
            from guides.landmarks import FaceLandmarker

            lm = FaceLandmarker(static_image_mode=True)
            owned.append(lm)
        return Stylizer(style, options=stylize_options, landmarker=lm,
                        temporal=None if static else "flow")

    shard = 0
    buf = {"input": [], "target": [], "mask": []}
    over_budget = False

    def flush():
        nonlocal shard
        if buf["input"]:
            path = os.path.join(folder, SHARD_PATTERN.format(shard))
            tmp = path + ".tmp.npz"
            np.savez_compressed(tmp, **{k: np.stack(v) for k, v in buf.items()})
            os.replace(tmp, path)
        for v in buf.values():
            v.clear()
        shard += 1

    bar = tqdm(desc="teacher", unit="frame", disable=quiet, file=sys.stderr)
    with make(True) as still:
        for source in sources:
            with make(False) as stream:
                for i, frame in enumerate(_frames(source, options.max_frames)):
                    if i % options.every:
                        continue
                    frame = resize_long_side(frame, options.long_side)
                    copies = [augment(frame, rng) for _ in range(options.augment)]
                    bar.update(1)
                    if os.path.exists(os.path.join(folder, SHARD_PATTERN.format(shard))):
                        buf["input"].append(None)  # placeholder: this shard exists
                        buf["input"].extend([None] * len(copies))
                        if len(buf["input"]) >= options.shard_size:
                            for v in buf.values():
                                v.clear()
                            shard += 1
                        stream.reset()
                        continue
                    for image, stylizer in [(frame, stream)] + [(c, still) for c in copies]:
                        out = stylizer(image)
                        buf["input"].append(image)
                        buf["target"].append(out)
                        buf["mask"].append(_mask_of(stylizer, image.shape))
                    if len(buf["input"]) >= options.shard_size:
                        flush()
                        if options.max_bytes and _folder_bytes(folder) >= options.max_bytes:
                            over_budget = True
                            break
                if over_budget:
                    break
                if buf["input"] and buf["input"][0] is not None:
                    flush()  # shards do not span sources (frames must share a size)
                elif buf["input"]:
                    for v in buf.values():
                        v.clear()
                    shard += 1
    bar.close()
    for lm in owned:
        lm.close()
    if over_budget and not quiet:
        print(f"gan_distill: size budget of {options.max_bytes / 2**20:.0f} MiB reached; "
              "stopped", file=sys.stderr)
    shards = sorted(os.path.join(folder, n) for n in os.listdir(folder)
                    if n.startswith("shard_") and n.endswith(".npz") and ".tmp" not in n)
    if not shards:
        raise InputError(f"{folder}: no training data was produced")
    return shards


def load_shards(paths):
    """Load shards into lists of arrays (frames of different shards may differ in size).

    Returns
    -------
    inputs, targets : list of (H, W, 3) uint8 ndarray
    masks : list of (H, W) uint8 ndarray
    """
    inputs, targets, masks = [], [], []
    for path in paths:
        try:
            with np.load(path) as z:
                inputs.extend(z["input"])
                targets.extend(z["target"])
                masks.extend(z["mask"])
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a gan_distill shard ({exc})") from None
    return inputs, targets, masks
