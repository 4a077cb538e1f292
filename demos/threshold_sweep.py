"""The lookup threshold's trade-off, measured on the still comparisons of docs/quality.md.

    python demos/threshold_sweep.py [--data ../shared/data/faceblit] [--thresholds 35,50,60,70,100]
                                    [--json sweep.json]

For each still comparison of ``demos/make_docs.py`` (target1.png in
bronzestatue at voting 0, 3x3, 5x5, and five styles in whole-frame mode) and
each threshold, stylizes target1.png and measures, as ``make_docs.py`` does
with :func:`blit.evaluate.evaluate_frames`: the patch distance to the exemplar
in the head mask (lower = more made of the exemplar's strokes) and the
landmark error of the output (% of the inter-ocular distance; lower = truer to
the target's expression), beside FaceBlit's output for the same comparison.
Prints a table (``*`` marks a threshold at which ours is at least as good as
FaceBlit's on both measures) and saves the numbers as JSON. Takes about
10 minutes on 2 cores for five thresholds.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blit.evaluate import evaluate_frames  # noqa: E402
from blit.stylize import stylize_image  # noqa: E402
from demos.common import add_data_arg, comma_list, faceblit_data, save_rows  # noqa: E402
from demos.make_docs import still_comparisons  # noqa: E402
from guides.exemplar import load_style  # noqa: E402
from guides.io import read_image  # noqa: E402
from guides.landmarks import detect_landmarks  # noqa: E402


def sweep(data: Path, thresholds):
    """Rows of (comparison, threshold, ours and FaceBlit's patch distance and landmark error)."""
    photo = read_image(data / "targets" / "target1.png")
    landmarks = detect_landmarks(photo)
    if landmarks is None:
        raise SystemExit("threshold_sweep: mediapipe found no face in target1.png")
    rows, styles = [], {}
    for name, style_name, options, ref_file in still_comparisons(data):
        style = styles.get(style_name) or load_style(data / "styles" / f"{style_name}.png")
        styles[style_name] = style
        ref = read_image(data / "reference" / ref_file)
        for threshold in thresholds:
            opts = replace(options, threshold=threshold)
            ours = stylize_image(style, photo, landmarks=landmarks, options=opts)
            m = evaluate_frames(style, [photo], outputs=[ours], reference=[ref], still=True,
                                options=opts, patch_samples=2000, patch_size=5,
                                patch_region="head")["methods"]
            row = {"comparison": name, "threshold": threshold,
                   "patch_distance": m["ours"]["patch_distance"]["mean"],
                   "landmark_error_iod": m["ours"]["landmarks"]["mean"],
                   "faceblit_patch_distance": m["reference"]["patch_distance"]["mean"],
                   "faceblit_landmark_error_iod": m["reference"]["landmarks"]["mean"]}
            row["as_good_on_both"] = bool(row["patch_distance"] <= row["faceblit_patch_distance"]
                                          and row["landmark_error_iod"] <= row["faceblit_landmark_error_iod"])
            rows.append(row)
            print(f"  {name}, threshold {threshold:g}: patch distance {row['patch_distance']:.2f}, "
                  f"landmark error {100 * row['landmark_error_iod']:.2f}%", flush=True)
    return rows


def table(rows, thresholds):
    """Markdown: one row per comparison, 'patch distance / landmark error' per threshold."""
    head = ("| comparison | FaceBlit | " + " | ".join(f"threshold {t:g}" for t in thresholds) + " |\n"
            + "| --- | --- |" + " --- |" * len(thresholds) + "\n")
    lines = []
    for name in dict.fromkeys(r["comparison"] for r in rows):
        mine = {r["threshold"]: r for r in rows if r["comparison"] == name}
        first = next(iter(mine.values()))
        cells = [f"{first['faceblit_patch_distance']:.2f} / {100 * first['faceblit_landmark_error_iod']:.2f}"]
        for t in thresholds:
            r = mine[t]
            cells.append(f"{r['patch_distance']:.2f} / {100 * r['landmark_error_iod']:.2f}"
                         + (" *" if r["as_good_on_both"] else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arg(parser)
    parser.add_argument("--thresholds", type=comma_list(float, check=lambda t: t >= 0,
                                                        what="numbers >= 0"),
                        default=[35.0, 50.0, 60.0, 70.0, 100.0],
                        help="comma-separated lookup thresholds (default 35,50,60,70,100)")
    args = parser.parse_args(argv)
    data = faceblit_data(args, "threshold_sweep")
    if data is None:
        return 1
    t0 = time.perf_counter()
    rows = sweep(data, args.thresholds)
    print("\npatch distance (head) / landmark error (% IOD); * = ours at least as good as FaceBlit on both\n")
    print(table(rows, args.thresholds))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    save_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
