"""Running the distilled stylizer on a stream: :class:`GanStylizer`.

Same call signature as :class:`blit.stream.Stylizer`: ``stylizer(frame) ->
(H, W, 3) uint8``, ``last_times`` in milliseconds. The generator runs on the
whole frame (it was trained on whole frames, head crops mostly, so it paints
the head and passes the background through); no landmarks are needed.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["GanStylizer", "GAN_STAGES"]

#: Keys of :attr:`GanStylizer.last_times`, in pipeline order (milliseconds).
GAN_STAGES = ("resize", "network", "total")


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
        frame's own size. When resized, the network's change of the small
        frame is upsampled and added to the frame, so unchanged parts keep
        their full detail.
    threads : int, optional
        CPU threads for torch (default: torch's).

    Attributes
    ----------
    last_times : dict
        Milliseconds of each stage of the last frame (keys of :data:`GAN_STAGES`).
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

    def __init__(self, model_path, *, device="auto", long_side="model", threads=None):
        from gan_distill import require_torch

        torch = require_torch()
        from gan_distill.train import build_generator, load_checkpoint, pick_device

        self._torch = torch
        self.device = pick_device(device)
        if threads:
            torch.set_num_threads(int(threads))
        ckpt = load_checkpoint(model_path)
        try:
            self.generator = build_generator(ckpt).to(self.device)
        except (TypeError, KeyError, RuntimeError) as exc:
            from guides.io import InputError

            raise InputError(f"{model_path}: not a styleblit GAN checkpoint "
                             f"(weights do not fit: {type(exc).__name__})") from None
        self.config = self.generator.config
        self.step = int(ckpt["step"])
        self.long_side = int(ckpt.get("long_side", 0)) if long_side == "model" else long_side
        self.model_path = model_path
        self.reset()

    def reset(self):
        """No state across frames; clears :attr:`last_times`."""
        self.last_times = {}

    def close(self):
        """Nothing to release (for symmetry with :class:`blit.stream.Stylizer`)."""

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
        from gan_distill.train import to_image, to_tensor

        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame: expected (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if out is not None and (out.shape != frame.shape or out.dtype != np.uint8):
            raise ValueError(f"out: expected {frame.shape} uint8, got {out.shape} {out.dtype}")
        times = {}
        start = time.perf_counter()
        small = resize_long_side(frame, self.long_side)
        times["resize"] = _ms(start)
        t0 = time.perf_counter()
        with self._torch.inference_mode():
            y = to_image(self.generator(to_tensor(small[None], self.device)))[0]  # (h, w, 3)
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


def _ms(t0):
    return 1000.0 * (time.perf_counter() - t0)
