"""Training the distilled stylizer: L1 + LSGAN + discriminator feature matching.

:func:`train` fits a :class:`gan_distill.model.Generator` to the shards of
:func:`gan_distill.data.build_dataset` on random crops centred inside the head
mask (and a few anywhere, so the background passes through), with Adam, AMP
on CUDA only, and writes a checkpoint dict that ``torch.load(path,
weights_only=True)`` reads::

    {"format": "styleblit-gan", "version": 1, "step": int,
     "generator": state_dict, "generator_config": asdict(GeneratorConfig),
     "discriminator": state_dict, "discriminator_config": asdict(...),
     "train_config": asdict(TrainConfig), "long_side": int,
     "optimizer_g": state_dict, "optimizer_d": state_dict,
     "guide_style": None or {"landmarks": (68, 2) tensor, "quantiles": (257,) tensor,
                             "shape": [H, W]},
     "style_fingerprint": None or str,  # (of the exemplar's pixels; see style_fingerprint)
     "data": None or str}  # the dataset folder (see data_folder_of)

``guide_style`` holds what the guide channels need from the exemplar when
the generator takes them (``in_channels == 6``), so that inference needs the
checkpoint only.

Seeded: on the CPU two runs with the same data and config give the same
weights. The uncompiled modules are saved; nothing is pickled but tensors and
plain values.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gan_distill.data import relative_inside
from gan_distill.model import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig,
                               VGGFeatures)

__all__ = ["TrainConfig", "train", "pick_device", "save_checkpoint", "load_checkpoint",
           "data_folder_of", "build_generator", "network_input", "style_guide_info",
           "preview_path", "to_tensor", "to_image", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "styleblit-gan"


@dataclass
class TrainConfig:
    """Settings of :func:`train` (stored in the checkpoint).

    steps : int or None
        Stop after this many optimizer steps (in total, counting a resumed run's).
    minutes : float or None
        Stop after this much wall time of this run (whichever comes first).
    batch, crop : int
        Crops per step and their side in pixels (clamped to the frame size).
    head_fraction : float
        Share of crops centred on a head-mask pixel; the others anywhere.
    lr : float
        Adam learning rate of both networks (betas 0.5, 0.999); constant for
        the first half of the run (steps or minutes), then decayed linearly
        to a tenth.
    l1, adv, fm : float
        Weights of the L1, LSGAN and feature-matching terms of the generator's loss.
    vgg : float
        Weight of the VGG-19 perceptual term (L1 between relu1_1..relu4_1
        activations); used only with ``vgg_weights``.
    vgg_weights : str or None
        A local file of VGG-19 weights (:meth:`VGGFeatures.load`); never downloaded.
    clip : float
        Gradient norm clipping of the generator (0: none).
    adv_start : int
        Steps of pure L1 before the adversarial terms switch on.
    seed : int
    checkpoint_every, preview_every : int
        Steps between checkpoints / preview images (0: only at the end).
    """

    steps: int | None = 2000
    minutes: float | None = None
    batch: int = 4
    crop: int = 128
    head_fraction: float = 0.85
    lr: float = 3e-4
    clip: float = 1.0
    l1: float = 10.0
    adv: float = 0.5
    fm: float = 1.0
    vgg: float = 1.0
    vgg_weights: str | None = None
    adv_start: int = 500
    seed: int = 0
    checkpoint_every: int = 200
    preview_every: int = 200


def pick_device(device="auto"):
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without CUDA raises."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        from guides.io import InputError

        raise InputError("device 'cuda': this PyTorch has no CUDA device; install a CUDA build "
                         "of torch (https://pytorch.org) or use --device cpu")
    return torch.device(device)


def to_tensor(images, device):
    """(B, H, W, 3) uint8 BGR ndarray -> (B, 3, H, W) float32 tensor in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_image(x):
    """(B, 3, H, W) tensor in [-1, 1] -> (B, H, W, 3) uint8 ndarray."""
    x = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5 + 0.5).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


# ---------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------

def save_checkpoint(path, *, generator, discriminator, opt_g, opt_d, step, config, long_side,
                    guide_style=None, style_fingerprint=None, data=None):
    """Write the checkpoint dict atomically (temporary file, then rename).

    ``data``, the dataset folder trained on, is recorded relative to the
    checkpoint's folder where it lies inside it (so that the two can be
    moved together), else absolute; :func:`data_folder_of` reads it.
    """
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "step": int(step),
        "generator": generator.state_dict(),
        "generator_config": asdict(generator.config),
        "discriminator": discriminator.state_dict(),
        "discriminator_config": asdict(discriminator.config),
        "train_config": asdict(config),
        "long_side": int(long_side),
        "optimizer_g": opt_g.state_dict(),
        "optimizer_d": opt_d.state_dict(),
        "guide_style": guide_style,
        "style_fingerprint": style_fingerprint,
        "data": None if data is None else relative_inside(data, os.path.dirname(
            os.path.abspath(path))),
    }
    from guides.io import InputError

    folder, name = os.path.split(os.path.abspath(path))
    tmp = f"{path}.tmp" if len(name.encode()) <= 200 else os.path.join(folder, ".styleblit.pt.tmp")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    except BaseException as exc:  # (a full disk, Ctrl-C: no temporary left, the last one kept)
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, (OSError, RuntimeError)):  # (torch's writer fails as RuntimeError)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "write failed"
            kept = "the one before it is kept" if os.path.exists(path) else "nothing written"
            raise InputError(f"{path}: the checkpoint could not be written ({reason}); "
                             f"{kept}") from None
        raise


def data_folder_of(ckpt, path):
    """The dataset folder a checkpoint dict (read from ``path``) records, as a
    path to open; None where it records none (saved before 2026-12-04) or
    something that is not a path."""
    data = ckpt.get("data")
    if not isinstance(data, str) or not data:
        return None
    if os.path.isabs(data):
        return data
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), data))


def _unreadable_because(path):
    """Why torch could not read ``path``, in words (its exceptions name a
    class: KeyError, EOFError, RuntimeError), from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not head:
        return "an empty file"
    if head.startswith(b"PK"):  # a zip archive: what torch.save writes
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:  # (torch's: NAME/data.pkl and the tensors)
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "a torch file cut short or damaged"
        if not any(name.endswith("/data.pkl") for name in names):
            return "a zip archive, not a file torch writes"
        return "a file torch wrote, but not one `styleblit distill` wrote"  # (whole objects)
    return "not a file torch writes"


def load_checkpoint(path, map_location="cpu"):
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises
    ------
    InputError
        Missing file, or not a styleblit GAN checkpoint (names the file).
    """
    from guides.io import InputError

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except OSError as exc:
        why = _unreadable_because(path)
        if why.startswith("cannot be read"):  # (the file's own: a folder, no permission)
            raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        # (torch's reader on a damaged archive: "Invalid argument" was said as the system's)
        raise InputError(f"{path}: not a styleblit GAN checkpoint ({why})") from None
    except Exception:  # zip, unpickling and weights_only errors differ by version
        raise InputError(f"{path}: not a styleblit GAN checkpoint "
                         f"({_unreadable_because(path)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a styleblit GAN checkpoint (a file torch reads, but not "
                         "one `styleblit distill` wrote)")
    if ckpt.get("version") != 1:
        raise InputError(f"{path}: styleblit GAN checkpoint version {ckpt.get('version')!r}, "
                         "expected 1")
    missing = [k for k in ("step", "generator", "generator_config", "long_side") if k not in ckpt]
    if missing:
        raise InputError(f"{path}: not a styleblit GAN checkpoint (no {missing[0]!r})")
    weights = ckpt["generator"].values() if isinstance(ckpt["generator"], dict) else ()
    if any(torch.is_tensor(w) and w.is_floating_point() and not torch.isfinite(w).all()
           for w in weights):
        raise InputError(f"{path}: its weights are not finite numbers (a training that "
                         "diverged); train it again with a lower --lr")
    return ckpt


def style_fingerprint(style):
    """A digest of the exemplar's pixels (its size and bytes): what a checkpoint
    records of the style it was trained on, with or without guide channels,
    so that ``--resume`` and ``compare`` can tell another style."""
    import hashlib

    image = np.ascontiguousarray(style.image)
    h = hashlib.sha256(f"{image.shape} {image.dtype}".encode())
    h.update(image.tobytes())
    return h.hexdigest()[:32]


def trained_on_another_style(fingerprint, guide_style, style):
    """Whether a checkpoint's record of its exemplar (its ``style_fingerprint``
    and ``guide_style``) differs from ``style``: other pixels, or other
    landmarks for the guide channels. False where it records neither (a
    checkpoint without guides from before the fingerprint)."""
    if fingerprint is not None and fingerprint != style_fingerprint(style):
        return True
    return guide_style is not None and not np.allclose(
        np.asarray(guide_style["landmarks"], np.float32).reshape(68, 2), style.landmarks)


def load_vgg(path):
    """The :class:`gan_distill.model.VGGFeatures` of a local VGG-19 weights
    file, on the CPU; an InputError naming the file when it is missing or
    does not fit (checked before any work by ``styleblit distill``)."""
    from guides.io import InputError

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file (VGG-19 weights)")
    try:
        return VGGFeatures.load(path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:  # corrupt or pickled file: weights_only refuses it
        raise InputError(f"{path}: not a VGG-19 state dict that torch can load "
                         f"({type(exc).__name__})") from None


def style_guide_info(style):
    """What the guide channels need of a :class:`guides.exemplar.StyleExemplar`, as stored."""
    return {"landmarks": torch.from_numpy(np.asarray(style.landmarks, np.float32)),
            "quantiles": torch.from_numpy(np.asarray(style.quantiles, np.float32)),
            "shape": [int(style.image.shape[0]), int(style.image.shape[1])]}


def build_generator(ckpt):
    """The generator of a checkpoint dict, weights loaded, in eval mode."""
    g = Generator(GeneratorConfig(**ckpt["generator_config"]))
    g.load_state_dict(ckpt["generator"])
    return g.eval()


# ---------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------

class _Crops:
    """Random crops of (input [+ guides], target) pairs, centred inside the head mask."""

    def __init__(self, inputs, targets, masks, crop, head_fraction, guides=None):
        self.inputs, self.targets, self.guides = inputs, targets, guides
        self.crop = int(min([crop] + [min(x.shape[:2]) for x in inputs]))
        self.head_fraction = head_fraction
        self.head = [np.flatnonzero(m.ravel() >= 128) for m in masks]

    def sample(self, rng, batch):
        """``x (B, c, c, 3 or 6) float32`` in [-1, 1] (frame, guides) and ``y (B, c, c, 3) uint8``."""
        c = self.crop
        xs, ys = [], []
        for _ in range(batch):
            i = int(rng.integers(len(self.inputs)))
            h, w = self.inputs[i].shape[:2]
            head = self.head[i]
            if head.size and rng.random() < self.head_fraction:
                cy, cx = divmod(int(head[rng.integers(head.size)]), w)
            else:
                cy, cx = int(rng.integers(h)), int(rng.integers(w))
            y0 = int(np.clip(cy - c // 2, 0, h - c))
            x0 = int(np.clip(cx - c // 2, 0, w - c))
            x = self.inputs[i][y0:y0 + c, x0:x0 + c].astype(np.float32) * (1 / 127.5) - 1.0
            if self.guides is not None:
                x = np.concatenate([x, self.guides[i][y0:y0 + c, x0:x0 + c]], axis=2)
            xs.append(x)
            ys.append(self.targets[i][y0:y0 + c, x0:x0 + c])
            # no flips: the positional guide is not mirror-symmetric, and the
            # teacher's strokes have a direction
        return np.stack(xs), np.stack(ys)


def _lsgan(scores, real):
    return F.mse_loss(scores, torch.full_like(scores, 1.0 if real else 0.0))


# ---------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------

def train(shards, output, *, config=None, generator_config=None, discriminator_config=None,
          device="auto", resume=False, long_side=None, style=None, quiet=False, log=None,
          vgg=None, data=None):
    """Train (or go on training) a generator on dataset shards.

    Parameters
    ----------
    shards : list of str
        ``.npz`` shards of :func:`gan_distill.data.build_dataset`.
    output : str
        The checkpoint (``MODEL.pt``); previews go to ``MODEL.preview.png``.
    config : TrainConfig
    generator_config, discriminator_config : GeneratorConfig, DiscriminatorConfig
        Ignored when resuming (the checkpoint's are used). A generator with
        ``in_channels=6`` takes the guide channels (the shards must hold them).
    device : {"auto", "cpu", "cuda"}
    resume : bool
        Continue from ``output`` (its weights, optimizers and step).
    long_side : int
        The frame size the shards were made at (:class:`DataOptions.long_side`),
        stored for :class:`gan_distill.infer.GanStylizer`; default the long
        side of the first frame.
    style : guides.exemplar.StyleExemplar, optional
        The exemplar; needed (and stored) when the generator takes guides;
        its :func:`style_fingerprint` is stored either way (resuming keeps
        the checkpoint's).
    quiet : bool
        No progress bar.
    log : list, optional
        Receives one dict of losses per step.
    vgg : gan_distill.model.VGGFeatures, optional
        Already loaded from ``config.vgg_weights`` (:func:`load_vgg`).
    data : str, optional
        The dataset folder of the shards, recorded in the checkpoint (for
        ``styleblit distill --resume`` without ``--data``).

    Returns
    -------
    dict
        ``{"step", "seconds", "l1", "interrupted"}``: final step, wall time
        of this run, the mean L1 (in [0, 2] units) of the last 20 steps, and
        whether Ctrl-C ended it. Interrupted, the model is saved as it is
        (a step in flight may be partly applied), so that ``resume`` goes on
        from there.

    Raises
    ------
    InputError
        Unreadable shards or checkpoint, guides wanted but missing, a VGG
        weights file that does not fit.
    """
    from tqdm import tqdm

    from gan_distill.data import GUIDE_CHANNELS, load_shards
    from guides.io import InputError

    config = config or TrainConfig()
    dev = pick_device(device)
    step = 0
    guide_style = fingerprint = None
    if resume:
        ckpt = load_checkpoint(output)
        try:
            generator_config = GeneratorConfig(**ckpt["generator_config"])
            discriminator_config = DiscriminatorConfig(**ckpt["discriminator_config"])
        except (TypeError, KeyError) as exc:
            raise InputError(f"{output}: not a styleblit GAN checkpoint ({exc})") from None
        step = int(ckpt["step"])
        guide_style = ckpt.get("guide_style")
        fingerprint = ckpt.get("style_fingerprint")
    if fingerprint is None and style is not None:
        fingerprint = style_fingerprint(style)
    generator_config = generator_config or GeneratorConfig()
    discriminator_config = discriminator_config or DiscriminatorConfig()
    use_guides = generator_config.in_channels == 3 + GUIDE_CHANNELS
    if not use_guides and generator_config.in_channels != 3:
        raise ValueError(f"generator_config.in_channels: expected 3 or {3 + GUIDE_CHANNELS}, "
                         f"got {generator_config.in_channels}")
    if use_guides and guide_style is None:
        if style is None:
            raise ValueError("style: the exemplar is needed to train with guide channels")
        guide_style = style_guide_info(style)
    inputs, targets, masks, guides = load_shards(shards, guides=use_guides)
    if long_side is None:
        long_side = max(inputs[0].shape[:2])
    if not (config.vgg_weights and config.vgg > 0):
        vgg = None
    elif vgg is None:
        vgg = load_vgg(config.vgg_weights)
    if vgg is not None:
        vgg = vgg.to(dev)
    torch.manual_seed(config.seed + step)
    rng = np.random.default_rng([config.seed, step])
    g = Generator(generator_config).to(dev)
    d = Discriminator(discriminator_config).to(dev)
    opt_g = torch.optim.Adam(g.parameters(), lr=config.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=config.lr, betas=(0.5, 0.999))
    if resume:
        try:
            g.load_state_dict(ckpt["generator"])
            d.load_state_dict(ckpt["discriminator"])
            opt_g.load_state_dict(ckpt["optimizer_g"])
            opt_d.load_state_dict(ckpt["optimizer_d"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise InputError(f"{output}: its weights do not fit its config "
                             f"({type(exc).__name__})") from None
        del ckpt
    amp = dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    crops = _Crops(inputs, targets, masks, config.crop, config.head_fraction, guides)
    if crops.crop < config.crop:
        h, w = min((x.shape[:2] for x in inputs), key=min)
        print(f"styleblit: warning: --crop {config.crop} is larger than the smallest training "
              f"frame ({w}x{h}); crops of {crops.crop} px are used", file=sys.stderr)
    preview = _preview_sample(inputs, targets, masks, guides)

    saved = [step if resume else None]  # the step of the checkpoint on disk

    def save():
        save_checkpoint(output, generator=g, discriminator=d, opt_g=opt_g, opt_d=opt_d,
                        step=step, config=config, long_side=long_side, guide_style=guide_style,
                        style_fingerprint=fingerprint, data=data)
        saved[0] = step

    t_start = time.perf_counter()
    deadline = None if config.minutes is None else t_start + 60.0 * config.minutes
    total = config.steps
    bar = tqdm(total=total, initial=step if total else 0, desc="distill", unit="step",
               disable=quiet, file=sys.stderr)
    recent = []
    g.train()
    d.train()
    interrupted = False
    try:
        while ((total is None or step < total)
               and (deadline is None or time.perf_counter() < deadline)):
            # learning rate: constant, then linear decay to 10% over the second half
            progress = 0.0 if total is None else step / total
            if deadline is not None:
                progress = max(progress, (time.perf_counter() - t_start) / (60.0 * config.minutes))
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = config.lr * min(1.0, max(0.1, 2.0 * (1.0 - progress)))
            x_np, y_np = crops.sample(rng, config.batch)
            xg = torch.from_numpy(x_np).to(dev).permute(0, 3, 1, 2)  # (B, 3 or 6, c, c)
            x = xg[:, :3]  # (B, 3, c, c) the frame: the discriminator's condition
            y = to_tensor(y_np, dev)  # (B, 3, c, c)
            use_adv = step >= config.adv_start and (config.adv > 0 or config.fm > 0)
            with torch.autocast(dev.type, enabled=amp):
                fake = g(xg)  # (B, 3, c, c)
            # -- discriminator
            loss_d = torch.zeros((), device=dev)
            if use_adv:
                d.requires_grad_(True)
                with torch.autocast(dev.type, enabled=amp):
                    loss_d = 0.5 * (_lsgan(d(x, y)[-1], True)
                                    + _lsgan(d(x, fake.detach())[-1], False))
                opt_d.zero_grad(set_to_none=True)
                scaler.scale(loss_d).backward()
                scaler.step(opt_d)
            # -- generator (the discriminator's weights get no gradient here)
            d.requires_grad_(False)
            with torch.autocast(dev.type, enabled=amp):
                l1 = F.l1_loss(fake.float(), y)
                loss_g = config.l1 * l1
                adv = fm = perc = torch.zeros((), device=dev)
                if use_adv:
                    feats_fake = d(x, fake)
                    with torch.no_grad():
                        feats_real = d(x, y)
                    adv = _lsgan(feats_fake[-1], True)
                    fm = sum(F.l1_loss(a, b) for a, b in zip(feats_fake[:-1], feats_real[:-1]))
                    fm = fm / max(1, len(feats_fake) - 1)
                    loss_g = loss_g + config.adv * adv + config.fm * fm
                if vgg is not None:
                    with torch.no_grad():
                        feats_y = vgg(y)
                    perc = sum(F.l1_loss(a, b) for a, b in zip(vgg(fake), feats_y)) / len(feats_y)
                    loss_g = loss_g + config.vgg * perc
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(loss_g).backward()
            if config.clip:
                scaler.unscale_(opt_g)
                torch.nn.utils.clip_grad_norm_(g.parameters(), config.clip)
            scaler.step(opt_g)
            scaler.update()
            step += 1
            losses = {"step": step, "l1": l1.item(), "adv": adv.item(), "fm": fm.item(),
                      "d": loss_d.item()}
            if not all(torch.isfinite(p).all() for p in g.parameters()):
                # diverged (with AMP the scaler skips a step whose gradients overflow,
                # so only weights gone bad say it): nothing of it is saved
                bar.close()
                kept = (f"{output} keeps step {saved[0]}" if saved[0] is not None
                        else f"{output} is left as it was" if os.path.exists(output)
                        else f"nothing written to {output}")
                raise InputError(f"training diverged at step {step} (an L1 loss of "
                                 f"{losses['l1']:.3g}, weights no longer finite numbers); "
                                 f"{kept}; try a lower --lr (it is {config.lr:g})")
            if vgg is not None:
                losses["vgg"] = perc.item()
            if log is not None:
                log.append(losses)
            recent = (recent + [losses["l1"]])[-20:]
            post = {k: f"{v:.3f}" for k, v in losses.items() if k != "step"}
            if deadline is not None:
                post["left"] = f"{max(0.0, deadline - time.perf_counter()) / 60:.1f}min"
            bar.set_postfix(post, refresh=False)
            bar.update(1)
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save()
            if config.preview_every and step % config.preview_every == 0:
                _write_preview(output, g, preview, dev)
                g.train()
    except KeyboardInterrupt:  # Ctrl-C: keep what was learnt
        interrupted = True
    bar.close()
    save()
    _write_preview(output, g, preview, dev)
    return {"step": step, "seconds": time.perf_counter() - t_start,
            "l1": float(np.mean(recent)) if recent else float("nan"), "interrupted": interrupted}


def _preview_sample(inputs, targets, masks, guides=None):
    i = int(np.argmax([m.sum(dtype=np.int64) for m in masks[: min(len(masks), 64)]]))
    return inputs[i], targets[i], (None if guides is None else guides[i])


def preview_path(output):
    """Where :func:`train` writes its preview: ``MODEL.pt`` -> ``MODEL.preview.png``."""
    root, _ = os.path.splitext(output)
    return f"{root}.preview.png"


@torch.no_grad()
def _write_preview(output, g, sample, dev):
    """input | teacher | student, side by side, as ``MODEL.preview.png`` (atomically)."""
    x, y, guide = sample
    g.eval()
    student = to_image(g(network_input(x[None], None if guide is None else guide[None], dev)))[0]
    from guides.io import InputError, write_image

    try:
        write_image(preview_path(output), np.concatenate([x, y, student], axis=1))
    except InputError as exc:  # (a name near the length limit: the training goes on)
        print(f"styleblit: warning: the preview is not written: {exc}", file=sys.stderr)


def network_input(frames, guides, device):
    """The generator's input: frames (B, H, W, 3) uint8 [+ guides (B, H, W, 3) float]
    -> (B, 3 or 6, H, W) float32 tensor, the frame in [-1, 1]."""
    x = to_tensor(frames, device)
    if guides is None:
        return x
    g = torch.from_numpy(np.ascontiguousarray(guides, dtype=np.float32)).to(device)
    return torch.cat([x, g.permute(0, 3, 1, 2)], dim=1)
