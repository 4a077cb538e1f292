"""Inference benchmark of the distilled GAN (:class:`gan_distill.infer.GanStylizer`).

Not a test (pytest does not collect this folder). For each frame size (a
frame of FaceBlit's target1.mp4, scaled and cropped) and each backend
(plain PyTorch ``eager``, ``torch.compile``), the network runs at the frame's
own size (``long_side=None``); after a warm-up (compilation included) it
reports the median and spread of the whole per-frame call (and its stages)
in ms and the fps of the median. With a model trained with guide channels
the landmarks and guides are part of the call, as in use. Saves JSON with
versions, threads, load average at start and end, and the commit.

Without ``--model`` an untrained generator of the default configuration is
timed (the speed depends on the architecture, not on the weights).

Run from the repository root::

    python benchmarks/bench_gan.py --json bench_gan.json
    python benchmarks/bench_gan.py --model lincoln.pt --sizes 320x240 640x480

Numbers from a shared 2-core machine are noisy: the JSON keeps p10/p90 and
the load average so that a busy run can be recognised.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "faceblit")


def untrained_model(folder):
    """A checkpoint of an untrained default generator (for timing only)."""
    import torch

    from gan_distill.model import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
    from gan_distill.train import TrainConfig, save_checkpoint

    torch.manual_seed(0)
    g, d = Generator(GeneratorConfig()), Discriminator(DiscriminatorConfig())
    path = os.path.join(folder, "untrained.pt")
    save_checkpoint(path, generator=g, discriminator=d, opt_g=torch.optim.Adam(g.parameters()),
                    opt_d=torch.optim.Adam(d.parameters()), step=0, config=TrainConfig(),
                    long_side=0)
    return path


def bench_one(model, frame, backend, device, repeats, warmup):
    """Per-call and per-stage latency summaries of one backend at one size."""
    from blit.metrics import latency_summary
    from gan_distill.infer import GanStylizer

    samples = {}
    with GanStylizer(model, device=device, backend=backend, long_side=None) as stylizer:
        t0 = time.perf_counter()
        stylizer(frame)
        first_ms = 1e3 * (time.perf_counter() - t0)
        for _ in range(warmup):
            stylizer(frame)
        for _ in range(repeats):
            stylizer(frame)
            for k, v in stylizer.last_times.items():
                samples.setdefault(k, []).append(v)
    stages = {k: latency_summary(v) for k, v in samples.items()}
    total = stages["total"]
    return {"fps": 1e3 / total["median"], "total": total, "stages": stages,
            "first_call_ms": first_ms, "repeats": repeats, "warmup": warmup}


def main(argv=None):
    from blit.cli import frame_size, number

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a checkpoint of `styleblit distill` (default: untrained)")
    parser.add_argument("--clip", default=os.path.join(DEFAULT_DATA, "targets", "target1.mp4"),
                        help="a video (or folder of frames) whose first frame is timed "
                             "(default: FaceBlit's target1.mp4 in ../shared)")
    parser.add_argument("--sizes", nargs="+", type=frame_size, default=[(320, 240), (640, 480)],
                        metavar="WxH", help="frame sizes (default 320x240 640x480)")
    parser.add_argument("--backends", nargs="+", default=["eager", "compile"],
                        choices=["eager", "compile"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--threads", type=number(int, least=1),
                        help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=number(int, least=1), default=30)
    parser.add_argument("--warmup", type=number(int, least=0), default=5)
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args(argv)

    from gan_distill import require_torch

    torch = require_torch()
    if args.threads:
        torch.set_num_threads(args.threads)
    from blit.bench import environment, fit_frame
    from blit.evaluate import read_frames

    from guides.io import InputError

    try:
        frame0 = next(read_frames(args.clip))
    except (InputError, StopIteration) as exc:
        print(f"bench_gan: {exc or args.clip + ': no frame'}; nothing measured (--clip VIDEO)",
              file=sys.stderr)
        return 1
    load_start = list(os.getloadavg())
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or untrained_model(tmp)
        for w, h in args.sizes:
            size = f"{w}x{h}"
            frame = fit_frame(frame0, w, h)
            for backend in args.backends:
                r = bench_one(model, frame, backend, args.device, args.repeats, args.warmup)
                results.setdefault(size, {})[backend] = r
                print(f"{size} {backend:8s} median {r['total']['median']:7.1f} ms "
                      f"(p10 {r['total']['p10']:.1f}, p90 {r['total']['p90']:.1f}) = "
                      f"{r['fps']:6.1f} fps; network {r['stages']['network']['median']:.1f} ms; "
                      f"first call {r['first_call_ms']:.0f} ms", flush=True)
    env = environment()
    env.update(torch=torch.__version__, torch_threads=torch.get_num_threads(),
               omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"))
    report = {"model": args.model or "untrained default GeneratorConfig", "device": args.device,
              "results": results, "load_average_start": load_start,
              "load_average_end": list(os.getloadavg()), "environment": env}
    print(f"load average start {load_start[0]:.2f}, end {report['load_average_end'][0]:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
