"""Large videos: painted at the exemplar's scale (the default) or at their own.

    python demos/video_scale.py [--data ../shared/data/faceblit] [--factors 3]
                                [--styles lincolnbust,het,bronzestatue] [--frames 30]
                                [--json out.json]

The first frames of target1.mp4, each enlarged by each factor (bicubic),
are stylized by :class:`blit.stream.Stylizer` as ``styleblit video`` does
(``scale="auto"``: at the exemplar's scale, chosen on the first frame,
when the face is over ``MAX_FACE_RATIO`` times as wide as the exemplar's)
and at the video's own scale (``scale=1``, ``--native-scale``), with the
real landmarker. The outputs are shrunk back to target1.mp4's size and
measured in the head: the patch distance to the exemplar (every 10th
frame; lower = more made of the exemplar's strokes at their scale against
the face) and the stability ratio (the warping error of the output over
the input's; lower = steadier), beside those of target1.mp4 itself
stylized. Also the milliseconds per frame (median after the first 5
frames, each prefetched while the one before it is painted, as
``styleblit video`` runs the stream: the shrinking and the guides in the
prefetch thread, beside the painting and enlarging; the decoding and the
enlarging of the input not counted) and, painted at the exemplar's scale,
the median of each stage of the painting. Background kept, voting 3x3.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blit.evaluate import face_mask  # noqa: E402
from blit.metrics import patch_distance, stability_ratio  # noqa: E402
from blit.stream import Stylizer  # noqa: E402
from demos.common import add_data_arg, add_scale_args, faceblit_data, save_rows  # noqa: E402
from guides.exemplar import load_style  # noqa: E402
from guides.landmarks import detect_landmarks  # noqa: E402

WARM = 5  # frames left out of the timing


def read_clip(path, n):
    import av

    frames = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == n:
                break
    return frames


def run(style, frames, k, scale):
    """The stylized clip shrunk back, its milliseconds per frame, the scale
    it was painted at, the median milliseconds of each stage of the
    painting. Each frame is prefetched while the one before it is painted,
    as ``styleblit video`` runs the stream."""
    h, w = frames[0].shape[:2]
    big = [f if k == 1 else cv2.resize(f, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
           for f in frames]
    ts = [i / 29.97 for i in range(len(frames))]
    outs, ms, stages = [], [], []
    with Stylizer(style, fps=29.97, scale=scale) as stylizer:
        stylizer.prefetch(big[0], ts[0])
        for i in range(len(big)):
            t0 = time.perf_counter()
            if i + 1 < len(big):
                stylizer.prefetch(big[i + 1], ts[i + 1])
            out = stylizer(big[i], ts[i])
            ms.append((time.perf_counter() - t0) * 1e3)
            stages.append(dict(stylizer.last_times))
            outs.append(out if k == 1 else cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA))
        painted_at = stylizer.painting_scale
    keys = [key for key in stages[-1] if key != "total"]
    medians = {key: float(np.median([s.get(key, 0.0) for s in stages[WARM:]])) for key in keys}
    return outs, float(np.median(ms[WARM:])), painted_at, medians


def measure(data, styles, factors, n):
    frames = read_clip(data / "targets" / "target1.mp4", n)
    marks = [detect_landmarks(f) for f in frames]
    if any(m is None for m in marks):
        raise SystemExit("video_scale: mediapipe lost the face in target1.mp4")
    heads = [face_mask(f.shape, m, region="head") for f, m in zip(frames, marks)]
    rows = []

    def fidelity(outs, style):
        return float(np.mean([patch_distance(outs[i], style.image, mask=heads[i])
                              for i in range(0, len(frames), 10)]))

    for name in styles:
        style = load_style(data / "styles" / f"{name}.png")
        outs, one_ms, _, _ = run(style, frames, 1, 1.0)
        one = {"one_patch_distance": fidelity(outs, style),
               "one_stability_ratio": stability_ratio(outs, frames, masks=heads),
               "one_ms_per_frame": one_ms}
        for k in factors:
            row = {"style": name, "factor": k, "frames": len(frames),
                   "size": [round(frames[0].shape[1] * k), round(frames[0].shape[0] * k)]}
            for label, scale in (("scaled", "auto"), ("native", 1.0)):
                outs, ms, painted_at, stages = run(style, frames, k, scale)
                row[f"{label}_ms_per_frame"] = ms
                row[f"{label}_painted_at"] = painted_at
                row[f"{label}_patch_distance"] = fidelity(outs, style)
                row[f"{label}_stability_ratio"] = stability_ratio(outs, frames, masks=heads)
                if label == "scaled":
                    row["scaled_stage_ms"] = stages
            row.update(one)
            rows.append(row)
            print(f"  {name} x{k:g}: painted at {row['scaled_painted_at']:.3f}; patch distance "
                  f"{row['scaled_patch_distance']:.2f} (own scale "
                  f"{row['native_patch_distance']:.2f}; target1.mp4 "
                  f"{row['one_patch_distance']:.2f}), stability "
                  f"{row['scaled_stability_ratio']:.2f} ({row['native_stability_ratio']:.2f}; "
                  f"{row['one_stability_ratio']:.2f}), {row['scaled_ms_per_frame']:.0f} ms per "
                  f"frame ({row['native_ms_per_frame']:.0f}); stages "
                  + ", ".join(f"{k} {v:.1f}" for k, v in row["scaled_stage_ms"].items()),
                  flush=True)
    return rows


def table(rows):
    lines = ["| style | video | painted at | patch distance: default / own scale / target1.mp4 | "
             "stability ratio: default / own scale / target1.mp4 | "
             "ms per frame: default / own scale / target1.mp4 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['style']} | {r['factor']:g}x ({r['size'][0]}x{r['size'][1]}) | "
                     f"{r['scaled_painted_at']:.2f} | "
                     f"{r['scaled_patch_distance']:.2f} / {r['native_patch_distance']:.2f} / "
                     f"{r['one_patch_distance']:.2f} | "
                     f"{r['scaled_stability_ratio']:.2f} / {r['native_stability_ratio']:.2f} / "
                     f"{r['one_stability_ratio']:.2f} | "
                     f"{r['scaled_ms_per_frame']:.0f} / {r['native_ms_per_frame']:.0f} / "
                     f"{r['one_ms_per_frame']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arg(parser)
    add_scale_args(parser, "target1.mp4", [3.0])
    parser.add_argument("--frames", type=int, default=30,
                        help="frames of target1.mp4 (default 30)")
    args = parser.parse_args(argv)
    data = faceblit_data(args, "video_scale")
    if data is None:
        return 1
    rows = measure(data, args.styles, args.factors, max(args.frames, WARM + 2))
    print()
    print(table(rows))
    save_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
