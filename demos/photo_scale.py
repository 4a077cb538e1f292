"""Large photos: painted at the exemplar's scale (the default) or at their own.

    python demos/photo_scale.py [--data ../shared/data/faceblit] [--factors 1.3,1.7,3]
                                [--styles lincolnbust,het,bronzestatue] [--json out.json]

target1.png enlarged by each factor (bicubic; its landmarks scaled with it)
is painted by :func:`blit.stylize.stylize_image` as ``styleblit image``
paints it (at the exemplar's scale when its face is over
``MAX_FACE_RATIO`` times as wide as the exemplar's) and with
``native_scale=True`` (at its own scale: the strokes keep their size in
pixels). Both are shrunk back to target1's size and measured in its head
mask: the patch distance to the exemplar (lower = more made of the
exemplar's strokes at their scale against the face) and the PSNR against
target1 itself painted. Background kept, voting 3x3.
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
from blit.metrics import patch_distance, psnr  # noqa: E402
from blit.stylize import paint_scale, stylize_image  # noqa: E402
from demos.common import add_data_arg, add_scale_args, faceblit_data, save_rows  # noqa: E402
from guides.exemplar import load_style  # noqa: E402
from guides.io import read_image  # noqa: E402
from guides.landmarks import detect_landmarks  # noqa: E402


def measure(data, styles, factors):
    photo = read_image(data / "targets" / "target1.png")
    lm = detect_landmarks(photo)
    if lm is None:
        raise SystemExit("photo_scale: mediapipe found no face in target1.png")
    h, w = photo.shape[:2]
    head = face_mask(photo.shape, lm, region="head")
    rows = []
    for name in styles:
        style = load_style(data / "styles" / f"{name}.png")
        one = stylize_image(style, photo, landmarks=lm)
        for k in factors:
            big = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
            lm_big = ((lm + 0.5) * k - 0.5).astype(np.float32)
            row = {"style": name, "factor": k, "scale": paint_scale(style, lm_big),
                   "one_patch_distance": patch_distance(one, style.image, mask=head)}
            for label, native in (("scaled", False), ("native", True)):
                t0 = time.perf_counter()
                out = stylize_image(style, big, landmarks=lm_big, native_scale=native)
                row[f"{label}_seconds"] = time.perf_counter() - t0
                small = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
                row[f"{label}_patch_distance"] = patch_distance(small, style.image, mask=head)
                row[f"{label}_psnr_vs_one"] = psnr(small, one, mask=head)
            rows.append(row)
            print(f"  {name} x{k:g}: painted at scale {row['scale']:.3f}; patch distance "
                  f"{row['scaled_patch_distance']:.2f} (own scale {row['native_patch_distance']:.2f}, "
                  f"target1 {row['one_patch_distance']:.2f})", flush=True)
    return rows


def table(rows):
    lines = ["| style | photo | painted at | patch distance: default / own scale / target1 | "
             "PSNR vs target1 painted, dB: default / own scale | seconds: default / own scale |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['style']} | {r['factor']:g}x | {r['scale']:.2f} | "
                     f"{r['scaled_patch_distance']:.2f} / {r['native_patch_distance']:.2f} / "
                     f"{r['one_patch_distance']:.2f} | {r['scaled_psnr_vs_one']:.2f} / "
                     f"{r['native_psnr_vs_one']:.2f} | {r['scaled_seconds']:.2f} / "
                     f"{r['native_seconds']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arg(parser)
    add_scale_args(parser, "target1.png", [1.3, 1.7, 3.0])
    args = parser.parse_args(argv)
    data = faceblit_data(args, "photo_scale")
    if data is None:
        return 1
    rows = measure(data, args.styles, args.factors)
    print()
    print(table(rows))
    save_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
