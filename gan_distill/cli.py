"""``styleblit distill``: train a GAN stylizer on the patch-based stylizer's output.

A thin wrapper: :func:`gan_distill.data.build_dataset` (the teacher over the
videos, into ``MODEL.data/``; resumable), then :func:`gan_distill.train.train`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from blit.cli import (_add_style_args, add_stylize_args, check_output_file, check_outputs_apart,
                      load_style_from_args, number, options_from_args, register, style_input_paths)
from gan_distill import compare as _compare  # noqa: F401  (registers `compare`)

__all__ = ["add_distill_parser"]

#: Whether ``styleblit distill`` gives the network the guide channels by default
#: (measured on target1; see README, "GAN").
DEFAULT_GUIDES = True


def data_folder(output):
    """Default dataset folder of a model: ``MODEL.pt`` -> ``MODEL.data``."""
    return os.path.splitext(output)[0] + ".data"


def _distill(args):
    from gan_distill import require_torch
    from guides.io import InputError

    torch = require_torch()
    from gan_distill.data import DataOptions, build_dataset
    from gan_distill.data import GUIDE_CHANNELS
    from gan_distill.model import GeneratorConfig
    from gan_distill.train import TrainConfig, load_vgg, pick_device, preview_path, train

    if args.resume:
        if not os.path.exists(args.output):
            built = os.path.isdir(args.data or data_folder(args.output))
            raise InputError(f"{args.output}: --resume needs an existing checkpoint"
                             + ("; none was saved yet (interrupted while the dataset was built?): "
                                "run without --resume, which goes on with the dataset built so "
                                "far" if built else ""))
    else:
        check_output_file(args.output, args.overwrite)
    written = [args.output, preview_path(args.output), args.data or data_folder(args.output)]
    check_outputs_apart(written, [*args.video, *style_input_paths(args), args.vgg_weights])
    for v in args.video:
        if not os.path.exists(v):
            raise InputError(f"{v}: no such file")
    pick_device(args.device)  # (before any work: a missing CUDA was said after the dataset)
    vgg = load_vgg(args.vgg_weights) if args.vgg_weights else None  # (before any work)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    style = load_style_from_args(args)
    steps = args.steps if args.steps is not None else (None if args.minutes else 2000)
    if args.resume:
        at = _check_resume(args, style)
        if steps is not None and at >= steps:
            print(f"{args.output}: at step {at} already (--steps {steps}); nothing to train",
                  file=sys.stderr)
            return 0
    folder = args.data or data_folder(args.output)
    options = DataOptions(long_side=args.long_side, augment=args.augment,
                          max_frames=args.max_frames, every=args.every,
                          max_bytes=int(args.max_mb * 2**20),
                          guides=True)
    made = not os.path.exists(folder)
    try:
        shards = build_dataset(style, args.video, folder, options=options,
                               stylize_options=options_from_args(args), quiet=args.quiet)
    except InputError:
        if made:  # (a bad video: the folder made for this list of videos is of no use)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    config = TrainConfig(steps=steps, minutes=args.minutes, batch=args.batch, crop=args.crop,
                         lr=args.lr, seed=args.seed, vgg_weights=args.vgg_weights)
    generator = GeneratorConfig(in_channels=3 + GUIDE_CHANNELS * args.guides, width=args.width)
    result = train(shards, args.output, config=config, generator_config=generator,
                   device=args.device, resume=args.resume, long_side=args.long_side,
                   style=style, quiet=args.quiet, vgg=vgg)
    if result["interrupted"]:
        print(f"styleblit: interrupted at step {result['step']}; saved {args.output} "
              f"(`--resume` goes on from there)", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"{len(shards)} shards in {folder}; {result['step']} steps "
              f"({result['seconds'] / 60:.1f} min, L1 {result['l1']:.3f}) -> {args.output} "
              f"(preview {preview_path(args.output)})", file=sys.stderr)
    return 0


def _check_resume(args, style):
    """The step a checkpoint to ``--resume`` is at; an InputError naming the
    options that differ from the checkpoint's settings, which resuming
    keeps (the network's shape, its guide channels and their exemplar, the
    frames' size), rather than ignore them."""
    from gan_distill.data import GUIDE_CHANNELS
    from gan_distill.train import load_checkpoint, trained_on_another_style
    from guides.io import InputError

    ckpt = load_checkpoint(args.output)
    config = ckpt.get("generator_config") or {}
    problems = []
    if "width" in config and int(config["width"]) != args.width:
        problems.append(f"--width {args.width} (it has {config['width']})")
    guides = config.get("in_channels") == 3 + GUIDE_CHANNELS
    if guides != args.guides:
        problems.append(f"{'--guides' if args.guides else '--no-guides'} (it was trained "
                        f"{'with' if guides else 'without'} guide channels)")
    if ckpt.get("long_side") and int(ckpt["long_side"]) != args.long_side:
        problems.append(f"--long-side {args.long_side} (it has {int(ckpt['long_side'])})")
    info = ckpt.get("guide_style")
    if trained_on_another_style(ckpt.get("style_fingerprint"), info, style):
        problems.append(f"--style {args.style} (it was trained on another style)")
    if problems:
        raise InputError(f"{args.output}: --resume goes on with the checkpoint's own settings; "
                         f"these differ from them: {'; '.join(problems)}")
    return int(ckpt["step"])


@register
def add_distill_parser(sub):
    p = sub.add_parser("distill", help="train a fast GAN stylizer on the patch stylizer's output",
                       description="Stylize the frames of VIDEO (and augmented copies) with the "
                                   "patch-based stylizer, then train a small generator to "
                                   "reproduce them; run it with `styleblit video --method gan "
                                   "--model MODEL.pt`. Needs torch (pip install 'styleblit[gan]').")
    _add_style_args(p, required=True)
    p.add_argument("--video", action="append", required=True, metavar="V.mp4",
                   help="training video or folder of frames (repeat for more)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="the checkpoint")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=number(positive=True),
                        help="train this long (wall time of the training, after the "
                             "dataset is built; with --resume this run's, over which the "
                             "learning rate is held, then decayed, again)")
    length.add_argument("--steps", type=number(int, least=1),
                        help="train until this many steps in all (a resumed model's "
                             "counted; default 2000)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (default): CUDA when available")
    p.add_argument("--resume", action="store_true",
                   help="continue training MODEL.pt (and reuse the dataset shards)")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default MODEL.data beside "
                                                  "the output; existing shards are reused)")
    p.add_argument("--long-side", type=number(int, least=32, most=4096), default=512,
                   help="frames are resized to this long side for training and inference "
                        "(32 to 4096; default 512)")
    p.add_argument("--augment", type=number(int, least=0), default=1,
                   help="augmented copies per frame (default 1)")
    p.add_argument("--max-frames", type=number(int, least=1),
                   help="use at most N frames of each video")
    p.add_argument("--every", type=number(int, least=1), default=1,
                   help="use every N-th frame (default 1)")
    p.add_argument("--max-mb", type=number(positive=True), default=2048,
                   help="size budget of the dataset in MiB (default 2048)")
    p.add_argument("--guides", action=argparse.BooleanOptionalAction, default=DEFAULT_GUIDES,
                   help="give the network the patch stylizer's guide channels (positional and "
                        "appearance; needs face landmarks at inference) "
                        f"(default: {'on' if DEFAULT_GUIDES else 'off'})")
    p.add_argument("--width", type=number(int, least=1), default=16,
                   help="channels of the generator's first level (default 16)")
    p.add_argument("--lr", type=number(positive=True), default=3e-4,
                   help="Adam learning rate (default 3e-4)")
    p.add_argument("--vgg-weights", metavar="FILE",
                   help="local VGG-19 weights (a torch state dict) for a perceptual loss term; "
                        "nothing is downloaded (default: no perceptual term)")
    p.add_argument("--batch", type=number(int, least=1), default=4,
                   help="crops per step (default 4)")
    p.add_argument("--crop", type=number(int, least=16), default=128,
                   help="crop side in pixels (at least 16; default 128; at most the "
                        "training frames' shorter side, with a warning)")
    p.add_argument("--threads", type=number(int, least=1),
                   help="CPU threads of torch (default: torch's, one per core)")
    p.add_argument("--seed", type=number(int, least=0), default=0,
                   help="seed of the networks' first weights and of the crops trained on "
                        "(default 0: two CPU runs with the same settings give the same model)")
    add_stylize_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(run=_distill)
