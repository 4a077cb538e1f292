"""Small faces in a large video: the landmark stage of the stream with and
without the tile search (``FaceLandmarker(tiles=True)`` in tracking mode).

Not a test (pytest does not collect this folder). FaceBlit's target1.mp4
(its first ``--frames`` frames) is shrunk by ``--zoom`` and pasted on a
flat 3840x2160 canvas, moving 3 px a frame to the right, hidden on the
frames ``--hidden`` names (a hand in front of the face). Three tracking
landmarkers see the same frames: mediapipe alone on the canvas, the same
with ``tiles``, and mediapipe on target1's own frames (the reference,
shrunk and moved as the face was). Printed and saved as JSON (with
versions, CPU and commit): the frames with a face in which each finds
one, the landmark error of the tiled one against the reference (mean
absolute, in % of the inter-ocular distance), and its milliseconds per
frame (median, the first frame apart: it creates the search's graph),
against mediapipe alone's.

Run from the repository root::

    python benchmarks/bench_small_faces.py --json small_faces.json
    python benchmarks/bench_small_faces.py --zoom 0.25
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "faceblit")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="the FaceBlit data folder")
    parser.add_argument("--zoom", type=float, default=0.4,
                        help="target1's frames shrunk by this (0.4: the face 120 px, 3 %% of 3840)")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--hidden", type=int, nargs=2, default=(40, 49), metavar=("FROM", "TO"),
                        help="frames FROM..TO-1 without the face")
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args(argv)

    import av
    import cv2

    from blit.bench import environment
    from guides.landmarks import FaceLandmarker, interocular_distance

    clip = os.path.join(args.data, "targets", "target1.mp4")
    if not os.path.isfile(clip):
        parser.error(f"{clip}: not found (give --data)")
    with av.open(clip) as c:
        frames = [f.to_ndarray(format="bgr24")
                  for _, f in zip(range(args.frames), c.decode(video=0))]
    hidden = range(*args.hidden)
    found = {"plain": 0, "tiles": 0, "reference": 0}
    errors, times, plain_times, widths = [], [], [], []
    with FaceLandmarker(static_image_mode=False) as plain, \
            FaceLandmarker(static_image_mode=False, tiles=True) as tiled, \
            FaceLandmarker(static_image_mode=False) as reference:
        for i, frame in enumerate(frames):
            small = cv2.resize(frame, None, fx=args.zoom, fy=args.zoom, interpolation=cv2.INTER_AREA)
            canvas = np.full((2160, 3840, 3), (60, 70, 80), np.uint8)
            x, y = 1500 + 3 * i, 900
            if i not in hidden:
                canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
            ref = reference(frame) if i not in hidden else []
            t0 = time.perf_counter()
            found["plain"] += bool(plain(canvas)) and i not in hidden
            plain_times.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            faces = tiled(canvas)
            times.append(1000 * (time.perf_counter() - t0))
            found["tiles"] += bool(faces) and i not in hidden
            found["reference"] += bool(ref)
            if ref:
                want = (ref[0] + 0.5) * args.zoom - 0.5 + np.float32([x, y])
                widths.append(float(np.ptp(want[:17, 0])))
            if faces and ref:
                errors.append(100 * float(np.abs(faces[0] - want).mean()) / interocular_distance(want))
    with_face = len(frames) - len([i for i in hidden if i < len(frames)])
    result = {
        "environment": environment(),
        "zoom": args.zoom, "frames": len(frames), "frames_with_face": with_face,
        "hidden": list(args.hidden),
        "face_width_px": round(float(np.median(widths)), 1),  # (jaw end to jaw end)
        "found": found,
        "error_pct_iod": {"mean": round(float(np.mean(errors)), 3),
                          "p95": round(float(np.percentile(errors, 95)), 3),
                          "max": round(float(np.max(errors)), 3)} if errors else None,
        "ms_per_frame": {"first": round(times[0], 1), "median": round(float(np.median(times[1:])), 1),
                         "p90": round(float(np.percentile(times[1:], 90)), 1),
                         "max": round(float(np.max(times[1:])), 1)},
        "ms_per_frame_plain_median": round(float(np.median(plain_times[1:])), 1),
    }
    print(f"bench_small_faces: target1.mp4 x{args.zoom} on 3840x2160, "
          f"face {result['face_width_px']} px, {with_face} of {len(frames)} frames with the face")
    print(f"  found by mediapipe alone {found['plain']}, with tiles {found['tiles']} "
          f"(the reference on target1 itself {found['reference']})")
    if errors:
        e = result["error_pct_iod"]
        print(f"  landmark error with tiles, % IOD: mean {e['mean']}, p95 {e['p95']}, max {e['max']}")
    m = result["ms_per_frame"]
    print(f"  ms per frame with tiles: first {m['first']}, median {m['median']}, "
          f"p90 {m['p90']}, max {m['max']} (mediapipe alone: median "
          f"{result['ms_per_frame_plain_median']})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
