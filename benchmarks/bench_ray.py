"""Benchmark of the Ray engine (:mod:`blit.distributed`) against the local one.

Not a test (pytest does not collect this folder). Stylizes one clip (FaceBlit's
target1.mp4, scaled; or ``--clip``) into an MP4, end to end (decoding,
stylizing, encoding, joining, audio), with:

* the local engine (:func:`blit.video.stylize_video`) with 1 and 2 Numba threads;
* Ray, 1 worker with 1 CPU (``ray.init(num_cpus=1)``);
* Ray, 2 workers with 1 CPU each (``num_cpus=2``, ``cpus_per_chunk=1``);
* Ray, 1 worker with 2 CPUs (``num_cpus=2``, ``cpus_per_chunk=2``).

Each configuration runs once untimed (warm kernels and worker processes), then
``--runs`` times; the median wall time gives frames/s. The Ray runs do the
warm-up frames of every range on top of the clip's frames, as in real use.
Ratios between configurations are the numbers to quote: other jobs on a
shared machine slow every configuration, so the load average is saved at the
start and end of each. Saved as JSON with versions, CPU and commit.

Run from the repository root::

    python benchmarks/bench_ray.py --json bench_ray.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DEFAULT_CLIP = os.path.join(os.path.dirname(ROOT), "shared", "data", "faceblit", "targets",
                            "target1.mp4")


def load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def save(result, path):
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=2, default=float)
        print(f"saved {path}")


def scaled_clip(src, dst, scale, frames):
    """The first ``frames`` frames of ``src`` scaled by ``scale``, H.264 (same rate)."""
    import av
    import cv2

    with av.open(src) as cin, av.open(dst, "w") as cout:
        vin = cin.streams.video[0]
        out = None
        for i, frame in enumerate(cin.decode(video=0)):
            if i >= frames:
                break
            image = frame.to_ndarray(format="bgr24")
            h, w = image.shape[:2]
            size = (int(round(w * scale / 2)) * 2, int(round(h * scale / 2)) * 2)
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            if out is None:
                out = cout.add_stream("libx264", rate=vin.average_rate)
                out.width, out.height, out.pix_fmt = size[0], size[1], "yuv420p"
                out.options = {"crf": "16"}
            vf = av.VideoFrame.from_ndarray(image, format="bgr24")
            vf.pts = i
            cout.mux(out.encode(vf))
        cout.mux(out.encode(None))
    return dst


def timed(run, runs):
    run()  # warm-up, untimed
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - t0)
    return seconds


def bench_local(style, clip, out, threads, runs):
    import numba

    from blit.video import stylize_video

    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return timed(lambda: stylize_video(style, clip, out, quiet=True), runs)
    finally:
        numba.set_num_threads(old)


def bench_ray(style, clip, out, num_cpus, cpus_per_chunk, chunk, warmup, runs):
    import ray

    from blit.distributed import stylize_videos

    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    try:
        def run():
            job, = stylize_videos(style, [(clip, out)], chunk_frames=chunk, warmup=warmup,
                                  cpus_per_chunk=cpus_per_chunk, overwrite=True, quiet=True)
            if job.status != "done":
                raise RuntimeError(f"bench_ray: {job.status}: {job.message}")
        return timed(run, runs)
    finally:
        ray.shutdown()


def difference(style, clip, starts, warmups, *, after=30):
    """How far ranges started fresh ``W`` frames early are from one process.

    Runs :class:`blit.stream.Stylizer` as a range does (fresh, from ``start -
    W``, one Numba thread as in a 1-CPU task) and compares with one run over
    the whole clip: per range start and warm-up, the mean absolute difference
    (levels per channel, whole frame) at the first frame and over ``after``
    frames, the share of pixels that differ, and the mean change from the
    frame before the boundary to the first one after it (the seam), beside
    the local output's own change there."""
    import av
    import numba
    import numpy as np

    from blit.stream import Stylizer

    numba.set_num_threads(1)
    with av.open(clip) as c:
        items = [(f.to_ndarray(format="bgr24"), float(f.time)) for f in c.decode(video=0)]

    def run(a, b):
        with Stylizer(style, fps=30.0) as stylizer:
            return [stylizer(*items[i]).astype(np.int16) for i in range(a, b)]

    ref = run(0, len(items))
    steps = [float(np.abs(ref[i] - ref[i - 1]).mean()) for i in range(1, len(ref))]
    out = {"local_change_median": float(np.median(steps)),
           "local_change_p90": float(np.percentile(steps, 90)), "ranges": []}
    for start in starts:
        for w in warmups:
            if w >= start:
                continue  # would start at frame 0: the local run itself
            frames = run(start - w, min(start + after, len(items)))[w:]
            d = [np.abs(f - ref[start + k]) for k, f in enumerate(frames)]
            out["ranges"].append({
                "start": start, "warmup": w, "first": float(d[0].mean()),
                "mean": float(np.mean([x.mean() for x in d])),
                "pixels_differing": float(np.mean([(x > 0).any(-1).mean() for x in d])),
                "max": int(max(x.max() for x in d)),
                "seam": float(np.abs(frames[0] - ref[start - 1]).mean()),
                "local_seam": float(np.abs(ref[start] - ref[start - 1]).mean())})
    return out


def main(argv=None):
    from blit.cli import number

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default=DEFAULT_CLIP, help="input video (default target1.mp4)")
    parser.add_argument("--scale", type=number(positive=True), default=0.5,
                        help="scale of the frames (default 0.5)")
    parser.add_argument("--frames", type=number(int, least=1), default=240,
                        help="frames of the clip used")
    parser.add_argument("--chunk-frames", type=number(int, least=1), default=120,
                        help="frames per Ray task")
    parser.add_argument("--warmup-frames", type=number(int, least=0), default=30,
                        help="warm-up frames per range")
    parser.add_argument("--runs", type=number(int, least=1), default=3,
                        help="timed runs per configuration")
    parser.add_argument("--difference", action="store_true",
                        help="instead: how far ranges with 0/10/30/60 warm-up frames are from "
                             "one process (no Ray needed)")
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args(argv)
    if not os.path.exists(args.clip):
        print(f"bench_ray: {args.clip} not found; nothing measured")
        return 0
    from blit.bench import environment
    from blit.defaults import default_style_path
    from blit.distributed import plan_ranges
    from guides.exemplar import load_style

    style = load_style(default_style_path())
    tmp = tempfile.mkdtemp(prefix="bench_ray.")
    clip = scaled_clip(args.clip, os.path.join(tmp, "clip.mp4"), args.scale, args.frames)
    if args.difference:
        result = {"environment": environment(), "clip": args.clip, "scale": args.scale,
                  **difference(style, clip, (60, 120, 180), (0, 10, 30, 60))}
        print(f"local output's change between frames: median {result['local_change_median']:.2f}"
              f", p90 {result['local_change_p90']:.2f}")
        print(f"  {'start':>5}{'warm-up':>8}{'first':>7}{'mean':>7}{'differ':>8}{'max':>5}"
              f"{'seam':>7}{'local':>7}")
        for r in result["ranges"]:
            print(f"  {r['start']:>5}{r['warmup']:>8}{r['first']:>7.2f}{r['mean']:>7.2f}"
                  f"{r['pixels_differing']:>8.3f}{r['max']:>5}{r['seam']:>7.2f}"
                  f"{r['local_seam']:>7.2f}")
        save(result, args.json)
        return 0
    import ray

    out = os.path.join(tmp, "out.mp4")
    from blit.video import open_source

    source = open_source(clip)
    n = len(source.index())
    size = f"{source.stream.width}x{source.stream.height}"
    source.close()
    ranges = plan_ranges(n, args.chunk_frames, args.warmup_frames)
    work = sum(stop - start for start, _, stop in ranges)
    result = {"environment": {**environment(), "ray": ray.__version__}, "clip": args.clip,
              "size": size, "frames": n, "chunk_frames": args.chunk_frames,
              "warmup_frames": args.warmup_frames, "ranges": len(ranges),
              "frames_stylized_on_ray": work, "runs": args.runs, "configs": {}}
    print(f"bench_ray: {n} frames at {size}; Ray: {len(ranges)} ranges of {args.chunk_frames} "
          f"with {args.warmup_frames} warm-up frames ({work} frames stylized); median of "
          f"{args.runs} runs; load average {load_average()}")
    configs = {
        "local, 1 thread": lambda: bench_local(style, clip, out, 1, args.runs),
        "local, 2 threads": lambda: bench_local(style, clip, out, 2, args.runs),
        "ray, 1 worker x 1 CPU": lambda: bench_ray(style, clip, out, 1, 1, args.chunk_frames,
                                                   args.warmup_frames, args.runs),
        "ray, 2 workers x 1 CPU": lambda: bench_ray(style, clip, out, 2, 1, args.chunk_frames,
                                                    args.warmup_frames, args.runs),
        "ray, 1 worker x 2 CPUs": lambda: bench_ray(style, clip, out, 2, 2, args.chunk_frames,
                                                    args.warmup_frames, args.runs),
    }
    print(f"  {'configuration':<24}{'fps':>7}{'median s':>10}{'min s':>8}{'max s':>8}  load avg")
    for name, run in configs.items():
        start = load_average()
        seconds = run()
        med = statistics.median(seconds)
        entry = {"seconds": seconds, "median_s": med, "fps": n / med,
                 "load_average_start": start, "load_average_end": load_average()}
        result["configs"][name] = entry
        print(f"  {name:<24}{entry['fps']:>7.2f}{med:>10.2f}{min(seconds):>8.2f}"
              f"{max(seconds):>8.2f}  {start} -> {entry['load_average_end']}", flush=True)
    c = result["configs"]
    fps = {k: v["fps"] for k, v in c.items()}
    result["ratios"] = {
        "ray 2 workers / ray 1 worker (1 CPU each)":
            fps["ray, 2 workers x 1 CPU"] / fps["ray, 1 worker x 1 CPU"],
        "ray 1 worker x 1 CPU / local 1 thread":
            fps["ray, 1 worker x 1 CPU"] / fps["local, 1 thread"],
        "ray 2 workers x 1 CPU / local 2 threads":
            fps["ray, 2 workers x 1 CPU"] / fps["local, 2 threads"],
        "ray 1 worker x 2 CPUs / local 2 threads":
            fps["ray, 1 worker x 2 CPUs"] / fps["local, 2 threads"],
        "local 2 threads / local 1 thread": fps["local, 2 threads"] / fps["local, 1 thread"],
        "warm-up work (frames stylized on Ray / frames)": work / n,
    }
    print("ratios of frames/s:")
    for k, v in result["ratios"].items():
        print(f"  {k:<48}{v:6.2f}")
    save(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
