"""Running the distilled stylizer on a stream: :class:`GanStylizer`.

Same call signature as :class:`blit.stream.Stylizer`: ``stylizer(frame) ->
(H, W, 3) uint8``, ``last_times`` in milliseconds. The generator runs on the
whole frame (it was trained on whole frames, head crops mostly, so it paints
the head and passes the background through). A model trained without guide
channels needs no landmarks; one trained with them tracks the face
(mediapipe) and builds the guides of :func:`gan_distill.data.guide_channels`
every frame.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["GanStylizer", "GAN_STAGES"]

#: Keys of :attr:`GanStylizer.last_times`, in pipeline order (milliseconds).
GAN_STAGES = ("resize", "landmarks", "guides", "network", "total")

#: Inference backends: plain PyTorch, or :func:`torch.compile` (Inductor).
BACKENDS = ("eager", "compile")


#: The long sides (px) a frame may be resized to before the network:
#: ``styleblit distill --long-side``'s range.
MIN_LONG_SIDE, MAX_LONG_SIDE = 32, 4096


def _whole_in_range(value):
    return (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            and MIN_LONG_SIDE <= value <= MAX_LONG_SIDE)


def _long_side(asked, recorded, model_path):
    """The long side a GanStylizer resizes frames to (0: the frame's own
    size): ``asked``, or with ``"model"`` the checkpoint's ``recorded`` one
    (0 or missing: its own size), which must be in the training's range."""
    from guides.io import InputError

    if asked != "model":
        return asked or 0
    if recorded in (0, None):
        return 0
    if not _whole_in_range(recorded):
        raise InputError(f"{model_path}: not a styleblit GAN checkpoint (long_side {recorded!r}; "
                         f"expected {MIN_LONG_SIDE} to {MAX_LONG_SIDE} px)")
    return int(recorded)


class GanStylizer:
    """Stylize frames with a generator trained by :func:`gan_distill.train.train`.

    Parameters
    ----------
    model_path : str
        A checkpoint written by the trainer (``styleblit distill``).
    device : {"auto", "cpu", "cuda"}
        ``"cuda"`` without a CUDA device raises :class:`guides.io.InputError`.
    long_side : int, "model" or None
        Frames are resized so that their long side is this many pixels before
        the network, and the result back to the frame size: ``"model"`` (the
        default) uses the size the model was trained at, None runs at the
        frame's own size; a number is 32 to 4096 (``distill``'s range).
        When resized, the network's change of the small frame is upsampled
        and added to the frame, so unchanged parts keep their full detail.
    threads : int, optional
        CPU threads for torch (default: torch's).
    backend : {"eager", "compile"}
        Plain PyTorch (the default), or ``torch.compile`` (compiled once per
        frame size; 14-17 s on the 2-core CPU with a cold cache; needs a C++
        compiler there). ``benchmarks/bench_gan.py`` on the shared 2 cores
        found no consistent winner (compile faster at one size and slower at
        the other, swapping between two runs), so eager, which starts at
        once, is the default.
    landmarker : callable, optional
        ``landmarker(frame) -> list of (68, 2) float32`` for a model with guide
        channels; default a mediapipe tracker created on the first frame. A
        frame where it finds no face is returned as it is, as the patch
        stylizer returns it (the network has no guides to paint by there).

    On CUDA the network runs in float16 with channels-last tensors.

    Attributes
    ----------
    last_times : dict
        Milliseconds of each stage of the last frame (keys of :data:`GAN_STAGES`;
        ``landmarks`` and ``guides`` only for a model with guide channels,
        and ``guides`` and ``network`` only when a face was found).
    guides : bool
        Whether the model takes guide channels.
    config : gan_distill.model.GeneratorConfig
    step : int
        Training steps of the checkpoint.

    Raises
    ------
    InputError
        Missing file, or not a styleblit GAN checkpoint (names the file).

    Examples
    --------
    >>> with GanStylizer("lincoln.pt") as stylizer:        # doctest: +SKIP
    ...     out = stylizer(frame)
    """

    def __init__(self, model_path, *, device="auto", long_side="model", threads=None,
                 backend="eager", landmarker=None):
        from gan_distill import require_torch

        torch = require_torch()
        from gan_distill.data import GUIDE_CHANNELS
        from gan_distill.train import build_generator, load_checkpoint, pick_device
        from guides.io import InputError

        if long_side != "model" and long_side is not None and not _whole_in_range(long_side):
            raise ValueError(f"long_side: expected a whole number of pixels {MIN_LONG_SIDE} to "
                             f"{MAX_LONG_SIDE}, 'model' or None, got {long_side!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        self._torch = torch
        self.device = pick_device(device)
        if threads:
            torch.set_num_threads(int(threads))
        ckpt = load_checkpoint(model_path)
        try:
            generator = build_generator(ckpt)
            in_channels = generator.config.in_channels
            self.guides = in_channels == 3 + GUIDE_CHANNELS
            #: what the checkpoint records of its exemplar (see trained_on_another_style)
            self.style_record = (ckpt.get("style_fingerprint"), ckpt.get("guide_style"))
            if self.guides:
                info = ckpt["guide_style"]
                self._style_landmarks = np.asarray(info["landmarks"], np.float32).reshape(68, 2)
                self._style_quantiles = np.asarray(info["quantiles"], np.float32)
                self._style_shape = (int(info["shape"][0]), int(info["shape"][1]))
            elif in_channels != 3:
                raise ValueError(f"in_channels {in_channels}")
        except (TypeError, KeyError, RuntimeError, ValueError) as exc:
            raise InputError(f"{model_path}: not a styleblit GAN checkpoint "
                             f"(weights do not fit: {type(exc).__name__})") from None
        self.half = self.device.type == "cuda"
        generator = generator.to(self.device)
        if self.half:
            generator = generator.half().to(memory_format=torch.channels_last)
        self.generator = generator
        self.backend = backend
        self._net = torch.compile(generator, dynamic=False) if backend == "compile" else generator
        self.config = generator.config
        self.step = int(ckpt["step"])
        self.long_side = _long_side(long_side, ckpt.get("long_side", 0), model_path)
        self.model_path = model_path
        self._landmarker = landmarker
        self._own_landmarker = landmarker is None
        self.reset()

    def reset(self):
        """No state across frames but the face tracker's; clears :attr:`last_times`."""
        self.last_times = {}
        self.last_landmarks = []

    def close(self):
        """Release the landmarker if this object created it."""
        if self._own_landmarker and self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __call__(self, frame, t=None, *, out=None):
        """Stylize one frame.

        Parameters
        ----------
        frame : (H, W, 3) uint8 ndarray, BGR
        t : float, optional
            Timestamp; unused (the network has no state), accepted for
            compatibility with :class:`blit.stream.Stylizer`.
        out : (H, W, 3) uint8 ndarray, optional
            Where to write the result.

        Returns
        -------
        (H, W, 3) uint8 ndarray
        """
        import cv2

        from gan_distill.data import resize_long_side
        from gan_distill.train import network_input, to_image
        from guides.io import check_bgr_frame

        frame = check_bgr_frame(frame)
        if out is not None and (out.shape != frame.shape or out.dtype != np.uint8):
            raise ValueError(f"out: expected {frame.shape} uint8, got {out.shape} {out.dtype}")
        times = {}
        start = time.perf_counter()
        small = resize_long_side(frame, self.long_side)
        times["resize"] = _ms(start)
        guides = self._guides(small, times) if self.guides else None
        if self.guides and guides is None:
            # no face: the frame as it is, as the patch stylizer gives it (the network
            # given the guides of no face repainted the whole frame, 20-36 levels)
            if out is None:
                out = frame.copy()
            else:
                out[...] = frame
            times["total"] = _ms(start)
            self.last_times = times
            return out
        t0 = time.perf_counter()
        torch = self._torch
        with torch.inference_mode():
            x = network_input(small[None], None if guides is None else guides[None], self.device)
            if self.half:
                x = x.half().contiguous(memory_format=torch.channels_last)
            y = to_image(self._net(x))[0]  # (h, w, 3)
        times["network"] = _ms(t0)
        t0 = time.perf_counter()
        if y.shape != frame.shape:
            # add the network's change, upsampled, to the full-size frame: what it
            # leaves unchanged (the background) keeps the frame's own detail
            change = y.astype(np.int16) - small.astype(np.int16)  # (h, w, 3)
            change = cv2.resize(change.astype(np.float32), (frame.shape[1], frame.shape[0]),
                                interpolation=cv2.INTER_LINEAR)
            y = np.clip(frame.astype(np.float32) + change + 0.5, 0, 255).astype(np.uint8)
        if out is None:
            out = y
        else:
            out[...] = y
        times["resize"] += _ms(t0)
        times["total"] = _ms(start)
        self.last_times = times
        return out

    def _guides(self, small, times):
        """Landmarks (tracked) and guide channels of the network-size frame
        (None when no face is found)."""
        from gan_distill.data import guide_channels

        t0 = time.perf_counter()
        if self._landmarker is None:
            from guides.landmarks import FaceLandmarker

            self._landmarker = FaceLandmarker(static_image_mode=False)
        faces = self._landmarker(small)
        times["landmarks"] = _ms(t0)
        t0 = time.perf_counter()
        lm = np.asarray(faces[0], np.float32) if faces else None
        self.last_landmarks = [] if lm is None else [lm]
        if lm is None:
            return None
        g = guide_channels(small, lm, self._style_landmarks, self._style_quantiles,
                           self._style_shape)
        times["guides"] = _ms(t0)
        return g


def _ms(t0):
    return 1000.0 * (time.perf_counter() - t0)
