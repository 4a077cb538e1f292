"""``styleblit bench``: per-stage latency of the patch-based pipeline.

Medians and spread after warm-up, printed as a table and saved as JSON with
the versions, the CPU and the commit. Not a test: numbers from a shared
machine are only comparable within one run, which is why the run also times
one ``cv2.remap`` of the same frame (a gather per pixel, the floor of any
patch-based method) and reports lookup+blend as a multiple of it.
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import time

import cv2
import numpy as np

from blit.cli import (add_stylize_args, frame_size, load_style_from_args, number,
                       options_from_args, register)
from blit.metrics import latency_summary

__all__ = ["run_bench", "environment", "source_digest"]

DEFAULT_SIZES = ("640x480", "768x1024", "1280x720")


#: styleblit's own packages, whose source :func:`source_digest` reads
PACKAGES = ("blit", "guides", "gan_distill")


def source_digest(root=None):
    """The first 12 hex digits of a SHA-256 of styleblit's source: the
    ``.py``, ``.cu`` and ``.cuh`` files of :data:`PACKAGES` under ``root``
    (default: where this package is), names and contents, in name order.
    It names the code a benchmark ran where the commit cannot: a copy of a
    working tree whose ``.git`` is another commit's (a GPU machine's copy
    reported the session's first commit for three later trees), or an
    installed package."""
    if root is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for package in PACKAGES:
        for folder, subfolders, files in os.walk(os.path.join(root, package)):
            subfolders.sort()
            for name in sorted(files):
                if name.endswith((".py", ".cu", ".cuh")):
                    path = os.path.join(folder, name)
                    digest.update(os.path.relpath(path, root).replace(os.sep, "/").encode())
                    with open(path, "rb") as f:
                        digest.update(f.read())
    return digest.hexdigest()[:12]


def environment():
    """Versions, CPU, threads, commit and :func:`source_digest`, saved
    beside every benchmark (mediapipe's version None where it is not
    installed: a GPU machine's image may lack it, benchmarks/bench_gpu.py).
    The commit gets ``-dirty`` where the packages' files differ from it."""
    import numba

    try:
        import mediapipe
    except ImportError:
        mediapipe = None

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = ""
    # the commit of a checkout of styleblit (not of a project whose folder holds the
    # virtual environment it is installed in)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, cwd=root, timeout=5).stdout.strip()
        if top and os.path.realpath(top) == os.path.realpath(root):
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, cwd=root, timeout=5).stdout.strip()
            changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                      "--", *PACKAGES], capture_output=True, text=True,
                                     cwd=root, timeout=5).stdout.strip()
            if commit and changed:
                commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
        "opencv": cv2.__version__,
        "mediapipe": mediapipe.__version__ if mediapipe is not None else None, "cpu": cpu,
        "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
        "commit": commit or None, "source": source_digest(), "gpu": None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def fit_frame(image, width, height):
    """Scale and centre-crop ``image`` to fill (height, width), keeping aspect."""
    h, w = image.shape[:2]
    s = max(width / w, height / h)
    big = cv2.resize(image, (max(width, round(w * s)), max(height, round(h * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    y0 = (big.shape[0] - height) // 2
    x0 = (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y0:y0 + height, x0:x0 + width])


def run_bench(style, frame, options, *, repeats=20, warmup=3, name="the benchmark frame"):
    """Per-stage milliseconds of ``stylize_frame`` on one frame, frame after
    frame with its work arrays reused (as a stream keeps them; only the
    returned image is new each time). ``name`` names the frame in the
    no-face error.

    Returns
    -------
    dict
        ``stages``: {stage: latency_summary}, plus ``landmarks`` (mediapipe in
        tracking mode), ``total`` and ``remap`` (one cv2.remap of the frame).
    """
    from blit.styleblit import make_jitter, seed_labels
    from blit.stylize import stylize_frame
    from guides.buffers import Buffers
    from guides.io import InputError
    from guides.landmarks import FaceLandmarker

    jitter = make_jitter(0, levels=options.levels)
    buffers = Buffers()
    # computed once per frame size, as a stream does
    labels = seed_labels(frame.shape[:2], jitter, options.levels)
    samples = {}
    with FaceLandmarker(static_image_mode=False) as landmarker:
        faces = landmarker(frame)
        if not faces:
            raise InputError(f"{name}: no face found")
        for i in range(warmup + repeats):
            times = {}
            t0 = time.perf_counter()
            faces = landmarker(frame)
            t1 = time.perf_counter()
            stylize_frame(style, frame, faces[0], jitter, options, labels=labels, times=times,
                          buffers=buffers)
            t2 = time.perf_counter()
            if i >= warmup:
                times["landmarks"] = (t1 - t0) * 1e3
                times["total"] = (t2 - t0) * 1e3
                for k, v in times.items():
                    samples.setdefault(k, []).append(v)
    h, w = frame.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs * 0.97 + 3.0, ys * 0.97 + 2.0
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        cv2.remap(frame, map_x, map_y, cv2.INTER_NEAREST)
        if i >= warmup:
            samples.setdefault("remap", []).append((time.perf_counter() - t0) * 1e3)
    return {k: latency_summary(v) for k, v in samples.items()}


_ORDER = ("landmarks", "mask", "mls", "appearance", "lookup", "denoise", "blend", "composite",
          "total", "remap")


def _bench(args):
    from blit.cli import check_optional_outputs, check_outputs_apart, style_input_paths
    from blit.defaults import default_target_path
    from blit.evaluate import save_json
    from guides.io import read_image

    # (--json '' is refused, as eval and compare refuse it: it ran and saved nothing)
    check_optional_outputs((("--json", args.json),), args.overwrite)
    if args.json:
        check_outputs_apart([args.json], [args.target] + style_input_paths(args))
    t0 = time.perf_counter()
    style = load_style_from_args(args)
    load_s = time.perf_counter() - t0
    from guides.exemplar import StyleExemplar

    t0 = time.perf_counter()
    StyleExemplar.prepare(style.image, style.landmarks)
    precompute_s = time.perf_counter() - t0
    target_path = args.target or default_target_path()
    target = read_image(target_path)
    options = options_from_args(args)
    env = environment()
    result = {"environment": env, "style": style.name, "style_shape": list(style.shape),
              # (denoise None is its default: on with voting for a still)
              "options": dict(vars(options), denoise=options.denoise is not False
                              and options.voting > 0), "precompute_s": precompute_s, "style_load_s": load_s,
              "sizes": {}}
    print(f"styleblit bench: style {style.name} {style.shape[1]}x{style.shape[0]} "
          f"(precompute {precompute_s:.2f} s), voting {options.voting}, background "
          f"{options.background}, {env['numba_threads']} threads on {env['cpu']}")
    for w, h in args.sizes:
        size = f"{w}x{h}"
        frame = fit_frame(target, w, h)
        stats = run_bench(style, frame, options, repeats=args.repeats,
                          name=f"{target_path} (fitted to {size})")
        # lookup + blend: the mode filter of the NNF (voting's first step) included
        lb = sum(stats[k]["median"] for k in ("lookup", "denoise", "blend") if k in stats)
        stats["lookup_blend_over_remap"] = lb / stats["remap"]["median"]
        stats["fps"] = 1e3 / stats["total"]["median"]
        result["sizes"][size] = stats
        print(f"\n{size}: {stats['fps']:.1f} fps end to end (landmarks included); "
              f"lookup+denoise+blend = {lb:.2f} ms = {stats['lookup_blend_over_remap']:.1f}x "
              "one cv2.remap")
        print(f"  {'stage':<11}{'median ms':>10}{'p10':>8}{'p90':>8}")
        for k in _ORDER:
            if k not in stats:
                continue  # (denoise: only with voting)
            s = stats[k]
            print(f"  {k:<11}{s['median']:>10.2f}{s['p10']:>8.2f}{s['p90']:>8.2f}")
    if args.json:
        save_json(result, args.json)
        print(f"\nsaved {args.json}")
    return 0


@register
def _add_bench(sub):
    from blit.cli import _add_style_args

    p = sub.add_parser("bench", help="per-stage latency table (median after warm-up)",
                       description="Time every stage of the patch-based pipeline at several "
                                   "resolutions and save the numbers as JSON.")
    _add_style_args(p)
    p.add_argument("--target", metavar="IMAGE",
                   help="frame to stylize, scaled and cropped to each size "
                        "(default: matplotlib's grace_hopper.jpg)")
    p.add_argument("--sizes", nargs="+", type=frame_size, metavar="WxH",
                   default=[frame_size(s) for s in DEFAULT_SIZES],
                   help=f"frame sizes (default {' '.join(DEFAULT_SIZES)})")
    p.add_argument("--repeats", type=number(int, least=1), default=20,
                   help="timed runs per size (default 20)")
    p.add_argument("--json", metavar="OUT.json", help="save the results here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    add_stylize_args(p)
    p.set_defaults(run=_bench)
