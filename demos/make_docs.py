"""Regenerate every picture and table in docs/.

    python demos/make_docs.py [--data ../shared/data/faceblit] [--docs docs]

* ``docs/default.png``: the embedded default (painted astronaut exemplar |
  Grace Hopper target | our output), always made.
* With the FaceBlit test material (skipped with a message when absent):
  ``docs/faceblit_voting.jpg`` (target1 in bronzestatue at voting 0, 3x3,
  5x5, ours above FaceBlit's), ``docs/faceblit_whole_frame.jpg`` (background
  stylized, five styles), ``docs/faceblit_video.jpg`` (head crops of frames
  of target1.mp4 in lincolnbust) and ``docs/faceblit_video_eval.png`` (bar
  chart), and the
  numbers in ``docs/quality.md`` / ``docs/quality.json``.

Everything is measured with :mod:`blit.evaluate`, the code behind
``styleblit eval``. Contact-sheet tiles are 256 px tall: FaceBlit's outputs and
its style artworks appear only as small side-by-side comparisons and are never
copied into the repository at full size. Takes 3-5 minutes on 2 cores (4.7 min
measured while other jobs shared the cores).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from blit.bench import environment
from blit.defaults import default_style_path, default_target_path
from blit.evaluate import contact_sheet, evaluate, evaluate_frames, plot_report, save_json
from blit.stylize import StylizeOptions, stylize_image
from guides.exemplar import load_style
from guides.io import read_image, write_image
from guides.landmarks import detect_landmarks

ROOT = Path(__file__).resolve().parents[1]
TILE = 256
VOTING = {0: "0", 1: "3x3", 2: "5x5"}
WHOLE_FRAME_STYLES = ("het", "ken", "lincolnbust", "stonebust", "charcoalman")

PROVENANCE = (
    "FaceBlit test material (`../shared/data/faceblit`, not part of this repository): the "
    "target photo and video, the twelve style portraits with their hand-corrected landmarks "
    "and the reference outputs all come from the public FaceBlit repository (A. Texler, "
    "O. Texler, M. Kucera, M. Chai, D. Sykora: *FaceBlit: Instant Real-time Example-based "
    "Style Transfer to Facial Videos*, I3D 2021), whose code is in the public domain. The "
    "style artworks carry no licence of their own: they are used here for measurement only "
    "and appear in the pictures below solely as downscaled 256-px tiles beside our outputs.")


def log(msg):
    print(msg, flush=True)


def save_sheet(path, sheet):
    write_image(str(path), sheet)
    log(f"  wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
        f"({sheet.shape[1]}x{sheet.shape[0]}, {path.stat().st_size / 1024:.0f} KiB)")


# ---------------------------------------------------------------------------
# (a) the embedded default
# ---------------------------------------------------------------------------

def make_default(docs):
    log("default: painted astronaut -> Grace Hopper")
    style_path = default_style_path()
    style = load_style(style_path)
    target = read_image(default_target_path())
    ours = stylize_image(style, target)
    sheet = contact_sheet([[style.image, target, ours]],
                          labels=["exemplar (painted astronaut)", "target (Grace Hopper)", "ours"],
                          tile_height=TILE)
    save_sheet(docs / "default.png", sheet)


# ---------------------------------------------------------------------------
# (b, c) stills against FaceBlit's reference outputs
# ---------------------------------------------------------------------------

def still_comparisons(data):
    """(name, style, options, FaceBlit reference file) of every still comparison."""
    items = [(f"bronzestatue, voting {VOTING[v]}", "bronzestatue", StylizeOptions(voting=v),
              f"target1_bronzestatue_{VOTING[v]}_voting.png") for v in (0, 1, 2)]
    items += [(f"{s}, whole frame, 3x3", s, StylizeOptions(voting=1, background="stylize"),
               f"target1_{s}_3x3_voting_bg.png") for s in WHOLE_FRAME_STYLES]
    return items


def measure_stills(data, docs):
    photo = read_image(data / "targets" / "target1.png")
    landmarks = detect_landmarks(photo)
    if landmarks is None:
        raise SystemExit("make_docs: mediapipe found no face in target1.png")
    results, images, styles = [], {}, {}
    for name, style_name, options, ref_file in still_comparisons(data):
        t0 = time.perf_counter()
        style = styles.get(style_name) or load_style(data / "styles" / f"{style_name}.png")
        styles[style_name] = style
        ours = stylize_image(style, photo, landmarks=landmarks, options=options)
        ref = read_image(data / "reference" / ref_file)
        row = {"name": name, "style": style_name, "reference": f"reference/{ref_file}",
               "options": asdict(options)}
        # Face-only outputs: FaceBlit paints a smaller oval than our head mask, so also measure
        # in the landmarks' hull, which both paint. Whole-frame outputs: the head mask is fair.
        for region in ("head", "face") if options.background == "keep" else ("head",):
            # Same frames, same landmarks, same sampled patch centres for ours and FaceBlit.
            row[region] = evaluate_frames(style, [photo], outputs=[ours], reference=[ref], still=True,
                                          options=options, patch_samples=2000, patch_size=5,
                                          patch_region=region)
        results.append(row)
        images[name] = (style.image, ours, ref)
        h = row["head"]["methods"]
        log(f"  {name}: patch distance ours {h['ours']['patch_distance']['mean']:.2f} / FaceBlit "
            f"{h['reference']['patch_distance']['mean']:.2f} / photo "
            f"{h['input']['patch_distance']['mean']:.2f}; landmark error ours "
            f"{100 * h['ours']['landmarks']['mean']:.2f}% / FaceBlit "
            f"{100 * h['reference']['landmarks']['mean']:.2f}% IOD ({time.perf_counter() - t0:.0f} s)")

    # (b) the sheets
    ex, _, _ = images["bronzestatue, voting 0"]
    rows = [[photo, ex, None],
            [images[f"bronzestatue, voting {VOTING[v]}"][1] for v in (0, 1, 2)],
            [images[f"bronzestatue, voting {VOTING[v]}"][2] for v in (0, 1, 2)]]
    labels = [["target1 (input)", "exemplar: bronzestatue", ""],
              [f"ours, voting {VOTING[v]}" for v in (0, 1, 2)],
              [f"FaceBlit, voting {VOTING[v]}" for v in (0, 1, 2)]]
    save_sheet(docs / "faceblit_voting.jpg", contact_sheet(rows, labels=labels, tile_height=TILE))
    names = [f"{s}, whole frame, 3x3" for s in WHOLE_FRAME_STYLES]
    rows = [[images[n][k] for n in names] for k in range(3)]
    labels = [[f"exemplar: {s}" for s in WHOLE_FRAME_STYLES],
              [f"ours: {s}" for s in WHOLE_FRAME_STYLES],
              [f"FaceBlit: {s}" for s in WHOLE_FRAME_STYLES]]
    save_sheet(docs / "faceblit_whole_frame.jpg", contact_sheet(rows, labels=labels, tile_height=TILE))
    return results


# ---------------------------------------------------------------------------
# (d) the video
# ---------------------------------------------------------------------------

def head_crop(landmark_sets, shape, *, margin=0.15):
    """(x0, y0, x1, y1): a 3:4 box around the faces of all ``landmark_sets``, inside the frame."""
    pts = np.concatenate([np.asarray(lm) for lm in landmark_sets if lm is not None])
    (ax, ay), (bx, by) = pts.min(axis=0), pts.max(axis=0)
    h = (by - ay) * (1 + 2 * margin)
    w = max((bx - ax) * (1 + 2 * margin), 0.75 * h)
    h = w / 0.75
    cx, cy = (ax + bx) / 2, (ay + by) / 2 - 0.1 * h  # a little above: forehead and hair
    x0 = int(np.clip(cx - w / 2, 0, max(0, shape[1] - w)))
    y0 = int(np.clip(cy - h / 2, 0, max(0, shape[0] - h)))
    return x0, y0, min(shape[1], x0 + int(w)), min(shape[0], y0 + int(h))


def measure_video(data, docs, max_frames=None):
    log("video: target1.mp4 in lincolnbust vs FaceBlit's half-rate reference")
    style = load_style(data / "styles" / "lincolnbust.png")
    samples = []
    t0 = time.perf_counter()

    def progress(done, total):
        if done % 60 == 0 or done == total:
            log(f"  frame {done}/{total} ({time.perf_counter() - t0:.0f} s)")

    # exactly what `styleblit eval --style lincolnbust.png target1.mp4 --reference
    # target1_lincolnbust_3x3_voting.mp4 --reference-step 2` runs
    report = evaluate(style, data / "targets" / "target1.mp4",
                      reference_path=str(data / "reference" / "target1_lincolnbust_3x3_voting.mp4"),
                      reference_step=2, max_frames=max_frames, options=StylizeOptions(voting=1),
                      patch_frames=4, patch_samples=2000, patch_region="head", full_rate=True,
                      progress=progress,
                      on_sample=lambda i, f: samples.append((i, f)))
    report["input"] = "targets/target1.mp4"
    report["reference"] = "reference/target1_lincolnbust_3x3_voting.mp4"
    report["style"] = style.name
    x0, y0, x1, y1 = head_crop([f["landmarks"] for _, f in samples], samples[0][1]["input"].shape)
    rows = [[f[k][y0:y1, x0:x1] for k in ("input", "ours", "reference")] for _, f in samples]
    labels = [[f"input frame {i}", f"ours, frame {i}", f"FaceBlit, frame {i}"] for i, _ in samples]
    save_sheet(docs / "faceblit_video.jpg", contact_sheet(rows, labels=labels, tile_height=TILE))
    plot_report(report, str(docs / "faceblit_video_eval.png"), labels=("ours", "FaceBlit"))
    log(f"  wrote faceblit_video_eval.png ({time.perf_counter() - t0:.0f} s in all)")
    return report


# ---------------------------------------------------------------------------
# (c) the tables
# ---------------------------------------------------------------------------

def _f(x, spec=".2f", scale=1.0, suffix=""):
    return "n/a" if x is None or x != x or x in (float("inf"), float("-inf")) else f"{x * scale:{spec}}{suffix}"


def _pair(ours, theirs, spec=".2f", scale=1.0, suffix=""):
    """'ours / theirs' with the lower (better) of the two in bold."""
    a, b = _f(ours, spec, scale, suffix), _f(theirs, spec, scale, suffix)
    if "n/a" not in (a, b) and ours != theirs:
        a, b = (f"**{a}**", b) if ours < theirs else (a, f"**{b}**")
    return a, b


def write_tables(docs, stills, video, env):
    md = ["# Quality: ours vs FaceBlit", "",
          f"Generated by `python demos/make_docs.py` on {env['time']} (commit {env['commit'] or 'n/a'}, "
          f"{env['cpu']}, {env['numba_threads']} Numba threads); every number is in "
          "[quality.json](quality.json). Measured with `blit.evaluate`, the code behind "
          "`styleblit eval`.", "", PROVENANCE, "",
          "**Measures.** *Patch distance*: 2000 5x5 patches sampled inside the mask of the input "
          "photo's face (the same centres for every image), each compared with its nearest 5x5 "
          "patch of the exemplar; mean RMS difference in 0-255 units, lower = more made of the "
          "exemplar's own texture. *head* is the mask our stylizer composites with (jaw line up to "
          "the hairline); *face* is the convex hull of the jaw and brow landmarks, which both "
          "methods paint. *photo* is the input photo against the same exemplar, the baseline "
          "to beat. Bold: the better of ours and FaceBlit. *Landmark error*: mediapipe FaceMesh (68 points) on the output against the "
          "same on the input photo, mean distance / inter-ocular distance. *PSNR / SSIM*: "
          "agreement of ours with FaceBlit's output inside the head mask.", "",
          "## Stills: target1.png", "",
          "![bronzestatue at three voting sizes](faceblit_voting.jpg)", "",
          "![whole-frame mode, five styles](faceblit_whole_frame.jpg)", "",
          "| comparison | patch dist., head: photo / ours / FaceBlit | patch dist., face: photo / ours / "
          "FaceBlit | landmark error ours / FaceBlit (% IOD) | ours vs FaceBlit PSNR dB / SSIM |",
          "| --- | --- | --- | --- | --- |"]
    for row in stills:
        h = row["head"]["methods"]
        ag = row["head"]["agreement"]
        cells = [row["name"]]
        for region in ("head", "face"):
            if region not in row:
                cells.append("- (whole frame: both paint the whole head)")
                continue
            m = row[region]["methods"]
            o, r = _pair(m["ours"]["patch_distance"]["mean"], m["reference"]["patch_distance"]["mean"])
            cells.append(f"{_f(m['input']['patch_distance']['mean'])} / {o} / {r}")
        cells.append(" / ".join(_pair(h["ours"]["landmarks"]["mean"], h["reference"]["landmarks"]["mean"],
                                      scale=100)))
        cells.append(f"{_f(ag['psnr'])} / {_f(ag['ssim'], '.3f')}")
        md.append("| " + " | ".join(cells) + " |")
    if video is not None:
        m = video["methods"]
        o, r = m["ours"], m["reference"]
        sp = o["speed"]
        stages = ", ".join(f"{k} {v['median']:.1f}" for k, v in sp["stages"].items())
        md += ["", "## Video: target1.mp4 in lincolnbust", "",
               "FaceBlit's reference has every second frame (its frame i is input frame 2i): all "
               f"numbers are measured on those {video['compared_frames']} input frames for both "
               "methods (so the stability ratio compares frames two input frames apart), except "
               "the row on every input frame; ours is stylized on all "
               f"{video['frames']} frames, 3x3 voting, with our video path: "
               f"{video['settings']['stylizer']}. Same as "
               "`styleblit eval --style lincolnbust.png target1.mp4 --reference "
               "target1_lincolnbust_3x3_voting.mp4 --reference-step 2 --full-rate`.", "",
               "![video frames](faceblit_video.jpg)", "",
               "![video metrics](faceblit_video_eval.png)", "",
               "| metric | ours | FaceBlit |", "| --- | --- | --- |",
               "| stability ratio: warping error of the output / of the input, head mask, DIS flow "
               "(1 = as steady as the input) | %s | %s |" % _pair(o["stability"]["ratio"], r["stability"]["ratio"]),
               "| stability ratio of ours on every input frame (consecutive frames of our 30 fps "
               "output; FaceBlit's output has only every second frame) | %s | |"
               % _f(o["stability_full_rate"]["ratio"]),
               f"| patch distance to the exemplar, head mask, frames {o['patch_distance']['frames']} "
               f"(photo: {_f(m['input']['patch_distance']['mean'])}) | %s | %s |"
               % _pair(o["patch_distance"]["mean"], r["patch_distance"]["mean"]),
               "| landmark error (%% IOD), mean | %s | %s |"
               % _pair(o["landmarks"]["mean"], r["landmarks"]["mean"], scale=100),
               "| landmark error (%% IOD), 90th percentile | %s | %s |"
               % _pair(o["landmarks"]["p90"], r["landmarks"]["p90"], scale=100),
               f"| frames with no face found in the output | {_f(o['landmarks']['no_face_fraction'], '.1f', 100, '%')} | "
               f"{_f(r['landmarks']['no_face_fraction'], '.1f', 100, '%')} |",
               f"| speed, frames/s end to end incl. landmarks (768x1024, this machine) | "
               f"{_f(sp['fps'], '.1f')} | n/a (only its outputs are available) |",
               f"| agreement ours vs FaceBlit, head mask: PSNR dB / SSIM | "
               f"{_f(video['agreement']['psnr'])} / {_f(video['agreement']['ssim'], '.3f')} | |",
               "", f"Our per-stage medians (ms): {stages}. Measured on a shared 2-core machine: "
               "compare speeds only within one run."]
    (docs / "quality.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    save_json({"environment": env, "provenance": PROVENANCE, "stills": stills, "video": video},
              str(docs / "quality.json"))
    log(f"  wrote {docs / 'quality.md'}, {docs / 'quality.json'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "faceblit",
                        help="FaceBlit test material (default ../shared/data/faceblit)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="output folder (default docs/)")
    parser.add_argument("--frames", type=int, help="use only the first N video frames (quick runs)")
    parser.add_argument("--no-video", action="store_true", help="skip the video comparison")
    args = parser.parse_args(argv)
    docs = args.docs.resolve()
    docs.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    make_default(docs)
    data = args.data.resolve()
    if not (data / "styles").is_dir():
        log(f"FaceBlit test material not found at {data}: skipping the comparisons "
            "(docs/quality.md and the faceblit_* pictures are left as they are)")
        return 0
    log("stills: target1.png vs FaceBlit's reference outputs")
    stills = measure_stills(data, docs)
    video = None if args.no_video else measure_video(data, docs, args.frames)
    write_tables(docs, stills, video, environment())
    total = sum(p.stat().st_size for p in docs.iterdir() if p.is_file())
    log(f"done in {time.perf_counter() - t0:.0f} s; docs/ holds {total / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
