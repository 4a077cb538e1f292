"""``styleblit distill``: train a GAN stylizer on the patch-based stylizer's output.

A thin wrapper: :func:`gan_distill.data.build_dataset` (the teacher over the
videos, into ``MODEL.data/``; resumable), then :func:`gan_distill.train.train`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from blit.cli import (_add_style_args, _usage, add_stylize_args, check_output_file,
                      check_outputs_apart, load_style_from_args, number, options_from_args,
                      register, style_input_paths)
from gan_distill import compare as _compare  # noqa: F401  (registers `compare`)

__all__ = ["add_distill_parser"]

#: Whether ``styleblit distill`` gives the network the guide channels by default
#: (measured on target1; see README, "GAN").
DEFAULT_GUIDES = True


def data_folder(output):
    """Default dataset folder of a model: ``MODEL.pt`` -> ``MODEL.data``."""
    return os.path.splitext(output)[0] + ".data"


#: Defaults of ``styleblit distill``'s options that ``--resume`` takes from
#: the run's records where they are not given (their parser default is None,
#: so that a given one is told from a left-out one); the patch options'
#: (--voting, --background, --threshold) are add_stylize_args' own.
DEFAULTS = {"long_side": 512, "augment": 1, "every": 1, "max_mb": 2048, "guides": DEFAULT_GUIDES,
            "width": 16, "lr": 3e-4, "batch": 4, "crop": 128, "seed": 0}

#: Dataset options ``--resume`` takes from (and checks against) the dataset's
#: ``dataset.json``: (dest, option, its section there).
_DATASET_OPTIONS = (("long_side", "--long-side", "options"), ("augment", "--augment", "options"),
                    ("every", "--every", "options"), ("max_frames", "--max-frames", "options"),
                    ("voting", "--voting", "stylize_options"),
                    ("background", "--background", "stylize_options"),
                    ("threshold", "--threshold", "stylize_options"),
                    ("denoise", "--denoise", "stylize_options"))

#: Training options ``--resume`` takes from the checkpoint's ``train_config``
#: where they are not given; given, they may differ (a resumed run may train
#: with another rate, batch or crop).
_TRAIN_OPTIONS = ("batch", "crop", "lr", "seed")


def _check_data_folder(folder):
    """An InputError, before any work, for a dataset folder (``--data``, or
    OUTPUT.data) that cannot be one: a file, a file on the way to it, or a
    folder to make it in that cannot be written (it was a traceback once the
    style was loaded)."""
    from guides.io import InputError, nearest_existing, no_folder_error

    if os.path.isdir(folder):
        return
    if os.path.lexists(folder):
        raise InputError(f"{folder}: is a file, not a folder (the dataset's: give another "
                         "with --data)")
    parent = os.path.dirname(os.path.abspath(folder))
    up = nearest_existing(parent)
    if not os.path.isdir(up):
        raise no_folder_error(folder, parent)
    if not os.access(up, os.W_OK | os.X_OK):
        raise InputError(f"{folder}: the dataset's folder cannot be made ({up} cannot be "
                         "written)")


def _distill(args):
    from gan_distill import require_torch
    from guides.io import InputError

    torch = require_torch()
    from gan_distill.data import DataOptions, build_dataset, read_manifest, recorded_sources
    from gan_distill.data import GUIDE_CHANNELS
    from gan_distill.model import GeneratorConfig
    from gan_distill.train import (TrainConfig, data_folder_of, load_checkpoint, load_vgg,
                                   pick_device, preview_path, train)

    ckpt = record = style = None
    if args.resume:
        if not os.path.exists(args.output):
            built = os.path.isdir(args.data or data_folder(args.output))
            raise InputError(f"{args.output}: --resume needs an existing checkpoint"
                             + ("; none was saved yet (interrupted while the dataset was built?): "
                                "run without --resume, which goes on with the dataset built so "
                                "far" if built else ""))
        ckpt = load_checkpoint(args.output)
    else:
        check_output_file(args.output, args.overwrite)
    folder = args.data
    if folder is None and ckpt is not None:  # (the one it was trained on, if still there)
        recorded = data_folder_of(ckpt, args.output)
        if (recorded and os.path.isdir(recorded) and os.path.realpath(recorded)
                != os.path.realpath(data_folder(args.output))):
            folder = recorded
    folder = folder or data_folder(args.output)
    if args.resume:
        record = read_manifest(folder)
        style = load_style_from_args(args)
        _settle_resume(args, ckpt, record, folder, style)
        del ckpt  # (its weights: train() reads them again)
    for name, value in {**DEFAULTS, **args.distill_defaults}.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.video is None:
        if not args.resume:
            raise _usage("the following arguments are required: --video")
        if record is None:
            raise InputError(f"{folder}: holds no dataset to take the videos from (--resume "
                             "without --video); give them with --video")
        args.video = recorded_sources(folder, record)
    written = [args.output, preview_path(args.output), folder]
    check_outputs_apart(written, [*args.video, *style_input_paths(args), args.vgg_weights])
    for source in args.video:  # (its images are the frames: the preview would be one)
        if os.path.isdir(source):
            inside = os.path.realpath(source) + os.sep
            for path in written:
                if os.path.realpath(path).startswith(inside):
                    raise InputError(f"{path}: inside {source}, a folder of frames this run "
                                     "reads (what is written there would be read as frames "
                                     "next time); write it elsewhere")
    _check_data_folder(folder)
    for v in args.video:
        if not os.path.exists(v):
            raise InputError(f"{v}: no such file")
    pick_device(args.device)  # (before any work: a missing CUDA was said after the dataset)
    vgg = load_vgg(args.vgg_weights) if args.vgg_weights else None  # (before any work)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if style is None:
        style = load_style_from_args(args)
    steps = args.steps if args.steps is not None else (None if args.minutes else 2000)
    if args.resume:
        if steps is not None and args.at >= steps:
            print(f"{args.output}: at step {args.at} already (--steps {steps}); nothing to train",
                  file=sys.stderr)
            return 0
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
                   style=style, quiet=args.quiet, vgg=vgg, data=folder)
    if result["interrupted"]:
        print(f"styleblit: interrupted at step {result['step']}; saved {args.output} "
              f"(`--resume` goes on from there)", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"{len(shards)} shards in {folder}; {result['step']} steps "
              f"({result['seconds'] / 60:.1f} min, L1 {result['l1']:.3f}) -> {args.output} "
              f"(preview {preview_path(args.output)})", file=sys.stderr)
    return 0


def _shown(dest, value):
    """An option's value as the command line gives it."""
    if dest == "denoise":
        return {True: "--denoise", False: "--no-denoise"}.get(
            value, "neither --denoise nor --no-denoise")
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _settle_resume(args, ckpt, record, folder, style):
    """For ``--resume``: the options left out (None) become what the run
    recorded, the checkpoint's (network width, guide channels, frame size,
    training length, batch, crop, rate, seed) and the dataset's in
    ``folder`` (``record``, its dataset.json, or None: sizes, sampling,
    patch options, size budget); ``args.at`` is the checkpoint's step.
    Given ones that must match and differ (the model's and the dataset's;
    the style) are one InputError naming each option, both values and the
    file that records it."""
    from gan_distill.data import GUIDE_CHANNELS, manifest_path
    from gan_distill.train import trained_on_another_style
    from guides.io import InputError

    model = args.output
    problems = []

    def settle(dest, option, recorded, where):
        given = getattr(args, dest)
        if given is None:
            setattr(args, dest, recorded)
        elif given != recorded:
            shown = (_shown(dest, given) if dest == "denoise"
                     else f"{option} {_shown(dest, given)}")
            problems.append(f"{shown} ({where} records {_shown(dest, recorded)})")

    config = ckpt.get("generator_config") or {}
    if "width" in config:
        settle("width", "--width", int(config["width"]), model)
    if "in_channels" in config:
        guides = config["in_channels"] == 3 + GUIDE_CHANNELS
        if args.guides is None:
            args.guides = guides
        elif args.guides != guides:
            problems.append(f"{'--guides' if args.guides else '--no-guides'} ({model} was "
                            f"trained {'with' if guides else 'without'} guide channels)")
    trained_at = int(ckpt["long_side"]) if ckpt.get("long_side") else None
    if trained_at:
        settle("long_side", "--long-side", trained_at, model)
    if trained_on_another_style(ckpt.get("style_fingerprint"), ckpt.get("guide_style"), style):
        problems.append(f"--style {args.style} ({model} was trained on another style)")
    if record is not None:
        manifest = manifest_path(folder)
        for dest, option, section in _DATASET_OPTIONS:
            recorded = record.get(section)
            if not isinstance(recorded, dict) or dest not in recorded:
                continue
            value = recorded[dest]
            if dest == "long_side" and trained_at:
                if value != trained_at:
                    raise InputError(
                        f"{folder}: not the dataset {model} was trained on: {manifest} records "
                        f"options.long_side {value}, {model} long_side {trained_at}; give "
                        f"--data the folder it was trained on, or delete {folder} (it is "
                        "built again from the --video given)")
                continue
            settle(dest, option, value, manifest)
        budget = record.get("max_bytes")
        if args.max_mb is None and isinstance(budget, (int, float)) and budget > 0:
            args.max_mb = budget / 2**20  # (not checked: a larger one takes in more)
    if problems:
        raise InputError(f"{model}: --resume goes on with the settings its run recorded; leave "
                         f"these options out or give them as recorded: {'; '.join(problems)}")
    trained = ckpt.get("train_config") or {}
    for dest in _TRAIN_OPTIONS:
        if getattr(args, dest) is None and trained.get(dest) is not None:
            setattr(args, dest, trained[dest])
    if args.steps is None and args.minutes is None:
        if trained.get("steps"):
            args.steps = int(trained["steps"])
        elif trained.get("minutes"):
            args.minutes = float(trained["minutes"])
    if args.vgg_weights is None and trained.get("vgg_weights"):
        print(f"styleblit: warning: {model} was trained with --vgg-weights "
              f"{trained['vgg_weights']}; without it this run has no perceptual term",
              file=sys.stderr)
    args.at = int(ckpt["step"])


@register
def add_distill_parser(sub):
    d = DEFAULTS
    p = sub.add_parser("distill", help="train a fast GAN stylizer on the patch stylizer's output",
                       description="Stylize the frames of VIDEO (and augmented copies) with the "
                                   "patch-based stylizer, then train a small generator to "
                                   "reproduce them; run it with `styleblit video --method gan "
                                   "--model MODEL.pt`. Needs torch (pip install 'styleblit[gan]'). "
                                   "With --resume, the options left out are the run's own, as "
                                   "recorded in MODEL.pt and the dataset's dataset.json (the "
                                   "videos too); a given one that must match them (the "
                                   "network's, the dataset's, the style) and does not is "
                                   "refused; the training's (--steps, --minutes, --batch, "
                                   "--crop, --lr, --seed) may be changed.")
    _add_style_args(p, required=True)
    p.add_argument("--video", action="append", metavar="V.mp4",
                   help="training video or folder of frames (repeat for more; needed but "
                        "with --resume, whose default is the ones the dataset was built from)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="the checkpoint")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=number(positive=True),
                        help="train this long (wall time of the training, after the "
                             "dataset is built; with --resume this run's, over which the "
                             "learning rate is held, then decayed, again)")
    length.add_argument("--steps", type=number(int, least=1),
                        help="train until this many steps in all (a resumed model's "
                             "counted; default 2000; with --resume, neither given: the "
                             "checkpoint's --steps or --minutes)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (default): CUDA when available")
    p.add_argument("--resume", action="store_true",
                   help="continue training MODEL.pt (and reuse the dataset shards) with the "
                        "settings it was trained with: the options left out are taken from "
                        "MODEL.pt and the dataset")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default MODEL.data beside "
                                                  "the output, or with --resume the one "
                                                  "MODEL.pt was trained on; existing shards "
                                                  "are reused)")
    p.add_argument("--long-side", type=number(int, least=32, most=4096),
                   help="frames are resized to this long side for training and inference "
                        f"(32 to 4096; default {d['long_side']})")
    p.add_argument("--augment", type=number(int, least=0),
                   help=f"augmented copies per frame (default {d['augment']})")
    p.add_argument("--max-frames", type=number(int, least=1),
                   help="use at most N frames of each video")
    p.add_argument("--every", type=number(int, least=1),
                   help=f"use every N-th frame (default {d['every']})")
    p.add_argument("--max-mb", type=number(positive=True),
                   help=f"size budget of the dataset in MiB (default {d['max_mb']}; with "
                        "--resume the dataset's; a larger one takes in more frames)")
    p.add_argument("--guides", action=argparse.BooleanOptionalAction,
                   help="give the network the patch stylizer's guide channels (positional and "
                        "appearance; needs face landmarks at inference) "
                        f"(default: {'on' if d['guides'] else 'off'})")
    p.add_argument("--width", type=number(int, least=1),
                   help=f"channels of the generator's first level (default {d['width']})")
    p.add_argument("--lr", type=number(positive=True),
                   help=f"Adam learning rate (default {d['lr']:g})")
    p.add_argument("--vgg-weights", metavar="FILE",
                   help="local VGG-19 weights (a torch state dict) for a perceptual loss term; "
                        "nothing is downloaded (default: no perceptual term; --resume does "
                        "not take it from the checkpoint: give it again, else a warning)")
    p.add_argument("--batch", type=number(int, least=1),
                   help=f"crops per step (default {d['batch']})")
    p.add_argument("--crop", type=number(int, least=16),
                   help=f"crop side in pixels (at least 16; default {d['crop']}; at most the "
                        "training frames' shorter side, with a warning)")
    p.add_argument("--threads", type=number(int, least=1),
                   help="CPU threads of torch (default: torch's, one per core)")
    p.add_argument("--seed", type=number(int, least=0),
                   help="seed of the networks' first weights and of the crops trained on "
                        f"(default {d['seed']}: two CPU runs with the same settings give the "
                        "same model)")
    add_stylize_args(p)
    # the patch options' defaults, filled in after --resume took the dataset's
    stylize = {k: p.get_default(k) for k in ("voting", "background", "threshold")}
    p.set_defaults(**{k: None for k in stylize}, distill_defaults=stylize)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(run=_distill)
