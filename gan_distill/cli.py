"""``styleblit distill``: train a GAN stylizer on the patch-based stylizer's output.

A thin wrapper: :func:`gan_distill.data.build_dataset` (the teacher over the
videos, into ``MODEL.data/``; resumable), then :func:`gan_distill.train.train`.
"""
from __future__ import annotations

import os
import sys

from blit.cli import (_add_style_args, add_stylize_args, check_output, load_style_from_args,
                      options_from_args, register)

__all__ = ["add_distill_parser"]


def data_folder(output):
    """Default dataset folder of a model: ``MODEL.pt`` -> ``MODEL.data``."""
    return os.path.splitext(output)[0] + ".data"


def _distill(args):
    from gan_distill import require_torch
    from guides.io import InputError

    require_torch()
    from gan_distill.data import DataOptions, build_dataset
    from gan_distill.train import TrainConfig, preview_path, train

    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps: expected at least 1, got {args.steps}")
    if args.minutes is not None and not args.minutes > 0:
        raise InputError(f"--minutes: expected a positive number, got {args.minutes}")
    if args.resume:
        if not os.path.exists(args.output):
            raise InputError(f"{args.output}: --resume needs an existing checkpoint")
    else:
        check_output(args.output, args.overwrite)
    for v in args.video:
        if not os.path.exists(v):
            raise InputError(f"{v}: no such file")
    style = load_style_from_args(args)
    folder = args.data or data_folder(args.output)
    options = DataOptions(long_side=args.long_side, augment=args.augment,
                          max_frames=args.max_frames, every=args.every,
                          max_bytes=int(args.max_mb * 2**20) if args.max_mb else None)
    shards = build_dataset(style, args.video, folder, options=options,
                           stylize_options=options_from_args(args), quiet=args.quiet)
    steps = args.steps if args.steps is not None else (None if args.minutes else 2000)
    config = TrainConfig(steps=steps, minutes=args.minutes, batch=args.batch, crop=args.crop,
                         seed=args.seed)
    result = train(shards, args.output, config=config, device=args.device, resume=args.resume,
                   long_side=args.long_side, quiet=args.quiet)
    if not args.quiet:
        print(f"{len(shards)} shards in {folder}; {result['step']} steps "
              f"({result['seconds'] / 60:.1f} min, L1 {result['l1']:.3f}) -> {args.output} "
              f"(preview {preview_path(args.output)})", file=sys.stderr)
    return 0


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
    length.add_argument("--minutes", type=float, help="train this long (wall time)")
    length.add_argument("--steps", type=int, help="train this many steps (default 2000)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (default): CUDA when available")
    p.add_argument("--resume", action="store_true",
                   help="continue training MODEL.pt (and reuse the dataset shards)")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default MODEL.data beside "
                                                  "the output; existing shards are reused)")
    p.add_argument("--long-side", type=int, default=512,
                   help="frames are resized to this long side for training and inference "
                        "(default 512)")
    p.add_argument("--augment", type=int, default=1,
                   help="augmented copies per frame (default 1)")
    p.add_argument("--max-frames", type=int, help="use at most N frames of each video")
    p.add_argument("--every", type=int, default=1, help="use every N-th frame (default 1)")
    p.add_argument("--max-mb", type=float, default=2048,
                   help="size budget of the dataset in MiB (default 2048)")
    p.add_argument("--batch", type=int, default=4, help="crops per step (default 4)")
    p.add_argument("--crop", type=int, default=128, help="crop side in pixels (default 128)")
    p.add_argument("--seed", type=int, default=0)
    add_stylize_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(run=_distill)
