"""Webcam-loop benchmark: ``blit.webcam.run_webcam`` headless, on a camera
that plays FaceBlit's target1.mp4 from memory.

Not a test (pytest does not collect this folder). The clip is decoded and
scaled first, so a camera read costs what a real camera's hand-over does:
decoding is excluded, as in ``bench_stream.py``. The camera delivers a new
frame every 1/``--camera-fps`` s (default 60: a 60 Hz camera, which caps
the loop at 60 fps) and :class:`blit.webcam.LatestFrame` keeps the newest.

For each ``--landmark-every`` value given (default ``auto``, the webcam's
default: every frame while the stylizer keeps up with the camera, every
second one when it does not) and each ``--pipeline`` setting (default
``off``, the webcam's default: each frame made whole in the loop; ``on``:
``styleblit webcam --pipeline``, each frame's landmarks and guides made in a
thread while the frame before it is painted), in alternating order over
``--rounds`` rounds in one process, it prints and saves as JSON (with
versions, CPU and commit): frames shown per second (the first excluded),
camera frames dropped (never shown), and the latency from a frame's capture
to its stylized output, in ms and in camera frame times.

Run from the repository root::

    python benchmarks/bench_webcam.py --json bench_webcam.json
    python benchmarks/bench_webcam.py --landmark-every 1 2 auto --camera-fps 30
    python benchmarks/bench_webcam.py --pipeline on off

It measures the checkout it lives in (its root goes first on ``sys.path``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "faceblit")


class MemoryCamera:
    """A capture object (``read() -> (ok, frame)``, ``release()``) that hands
    out decoded frames in a loop, paced by :class:`blit.webcam.LatestFrame`."""

    def __init__(self, frames):
        self.frames, self.i = frames, 0

    def read(self):
        frame = self.frames[self.i % len(self.frames)]
        self.i += 1
        return True, frame

    def release(self):
        pass


def run_once(style_path, frames, camera_fps, shown, every, pipeline):
    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam

    summary = run_webcam([style_path], MemoryCamera(frames), options=StylizeOptions(),
                         window=False, frames=shown, pace=camera_fps, landmark_every=every,
                         pipeline=pipeline, log=lambda *a: None)
    lat = summary["latency_ms"]
    return {"fps": summary["fps"], "frames": summary["frames"], "dropped": summary["dropped"],
            "latency_ms": lat, "latency_frames_median": lat["median"] * camera_fps / 1e3,
            "frames_by_landmark_every": summary["landmark_every"]}


def main(argv=None):
    from blit.cli import frame_size, number
    from blit.video import parse_landmark_every

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="FaceBlit data folder")
    parser.add_argument("--style", default="lincolnbust", help="style name in DATA/styles")
    parser.add_argument("--size", type=frame_size, default=(640, 480), metavar="WxH",
                        help="frame size (default 640x480)")
    parser.add_argument("--frames", type=number(int, least=2), default=300,
                        help="frames shown per run")
    parser.add_argument("--rounds", type=number(int, least=1), default=3)
    parser.add_argument("--camera-fps", type=number(positive=True), default=60.0, metavar="FPS",
                        help="the camera's frame rate (default 60)")
    parser.add_argument("--landmark-every", type=parse_landmark_every, nargs="+", default=["auto"],
                        metavar="N|auto", help="find the faces on every N-th frame (auto: "
                        "the webcam's default); several values alternate")
    parser.add_argument("--pipeline", choices=("on", "off"), nargs="+", default=["off"],
                        help="the webcam's --pipeline (default off); several values alternate")
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args(argv)
    settings = [(every, pipe) for every in args.landmark_every for pipe in args.pipeline]

    def key(every, pipe):
        return f"landmark_every_{every}_pipeline_{pipe}"

    clip = os.path.join(args.data, "targets", "target1.mp4")
    if not os.path.exists(clip):
        print(f"bench_webcam: FaceBlit data not found ({clip}); nothing measured")
        return 0
    from bench_stream import frames_of, load_average

    from blit.bench import environment

    size = args.size
    size_text = f"{size[0]}x{size[1]}"
    gen = frames_of(clip, size, loop=True)
    frames = [next(gen) for _ in range(480)]  # the clip forwards and back
    style_path = os.path.join(args.data, "styles", f"{args.style}.png")
    result = {"environment": environment(), "style": args.style, "size": size_text,
              "camera_fps": args.camera_fps, "pipeline": args.pipeline, "frames": args.frames,
              "load_average_start": load_average(), "rounds": []}
    print(f"bench_webcam: {args.style} on target1.mp4 at {size_text}, camera at "
          f"{args.camera_fps:g} fps, {result['environment']['numba_threads']} threads, load "
          f"average {result['load_average_start']}")
    run_once(style_path, frames, args.camera_fps, 20, *settings[0])  # warm-up
    for r in range(args.rounds):
        order = settings if r % 2 == 0 else settings[::-1]
        runs = {}
        for every, pipe in order:
            run = runs[key(every, pipe)] = run_once(style_path, frames, args.camera_fps,
                                                    args.frames, every, pipe == "on")
            print(f"round {r + 1}, landmarks every {every}, pipeline {pipe}: {run['fps']:.1f} "
                  f"fps, latency median "
                  f"{run['latency_ms']['median']:.1f} ms (p90 {run['latency_ms']['p90']:.1f}; "
                  f"{run['latency_frames_median']:.2f} frame times), {run['dropped']} of "
                  f"{run['frames'] + run['dropped']} camera frames dropped; frames by "
                  f"landmark_every {run['frames_by_landmark_every']}", flush=True)
        result["rounds"].append(runs)
    result["load_average_end"] = load_average()
    result["summary"] = {}
    for every, pipe in settings:
        runs = [r[key(every, pipe)] for r in result["rounds"]]
        fps = [run["fps"] for run in runs]
        lat = [run["latency_ms"]["median"] for run in runs]
        p90 = [run["latency_ms"]["p90"] for run in runs]
        s = result["summary"][key(every, pipe)] = {
            "fps_median": float(np.median(fps)), "fps_min": min(fps), "fps_max": max(fps),
            "latency_median_ms": float(np.median(lat)), "latency_p90_ms": float(np.median(p90))}
        print(f"landmarks every {every}, pipeline {pipe}: {s['fps_median']:.1f} fps "
              f"({s['fps_min']:.1f}-"
              f"{s['fps_max']:.1f}), latency median {s['latency_median_ms']:.1f} ms (p90 "
              f"{s['latency_p90_ms']:.1f}), medians over {args.rounds} rounds")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
