"""Streaming benchmark of :class:`blit.stream.Stylizer` on FaceBlit's target1.mp4.

Not a test (pytest does not collect this folder). Measures, and saves as JSON
with versions, CPU and commit:

* end-to-end streaming fps (landmarks included, decoding excluded) and
  per-stage medians at 640x480 and 768x1024 (the clip scaled and cropped);
* first-frame latency: of a new Stylizer in a warm process, and of a new
  process with a warm Numba cache (imports, style load and landmarker start
  included);
* per-frame transient NumPy allocation (tracemalloc) and resident memory
  over a long looped run (default 2000 frames; the goal is flat memory over
  10,000);
* with ``--stability``: the temporal warping error ratio of the whole clip
  (face region) against FaceBlit's reference video, and patch distances.

``--landmark-every N`` runs every stream with the Stylizer's
``landmark_every=N`` (faces found on every N-th frame, carried along the
flow between); the JSON records it under ``stream``.

Run from the repository root::

    python benchmarks/bench_stream.py --json bench_stream.json
    python benchmarks/bench_stream.py --stability --json bench_stream.json

It measures the checkout it lives in (its root goes first on ``sys.path``,
before ``PYTHONPATH``): to compare two commits, run each worktree's own copy
of this script; the JSON's ``environment.commit`` names the code measured.

Numbers from a shared 2-core machine are noisy: another process running at
the same time slows every stage; the JSON keeps the spread (p10/p90) and the
load average at start and end so that such runs can be recognised.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "faceblit")


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_average():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def frames_of(path, size=None, *, loop=False):
    """Decoded BGR frames of ``path``, scaled and cropped to ``size`` (W, H); with
    ``loop`` the clip plays forwards and backwards forever (no jump at the seam)."""
    import av

    from blit.bench import fit_frame

    direction = 1
    while True:
        with av.open(path) as c:
            clip = []
            for frame in c.decode(video=0):
                image = frame.to_ndarray(format="bgr24")
                if size is not None and (image.shape[1], image.shape[0]) != size:
                    image = fit_frame(image, *size)
                if not loop:
                    yield image
                else:
                    clip.append(image)
        if not loop:
            return
        while True:
            seq = clip if direction > 0 else clip[::-1]
            yield from seq
            direction = -direction


def bench_size(style, clip, size, options, frames, stream):
    """Streaming fps and per-stage medians at one size; then the fps with the
    next frame prefetched in a thread (Stylizer.prefetch): its landmarks and
    guides made there while this frame is painted (``fps_prefetch``), and its
    landmarks only (``pipeline=False``, ``fps_prefetch_landmarks``), timed in
    the same run so that the three are comparable."""
    from blit.metrics import latency_summary
    from blit.stream import Stylizer

    samples = {}
    with Stylizer(style, options=options, **stream) as stylizer:
        gen = frames_of(clip, size, loop=True)
        for _ in range(10):  # warm-up: compilation, mediapipe start, buffer growth
            stylizer(next(gen))
        total = 0.0
        for _ in range(frames):
            frame = next(gen)
            t0 = time.perf_counter()
            stylizer(frame)
            total += time.perf_counter() - t0
            for k, v in stylizer.last_times.items():
                samples.setdefault(k, []).append(v)
    stages = {k: latency_summary(v) for k, v in samples.items()}
    # pipelined: the frames are decoded first, so that only the stylizer is timed
    gen = frames_of(clip, size, loop=True)
    clip_frames = [next(gen) for _ in range(frames + 10)]
    pipelined = {}
    for name, pipeline in (("fps_prefetch", True), ("fps_prefetch_landmarks", False)):
        with Stylizer(style, options=options, pipeline=pipeline, **stream) as stylizer:
            for frame in clip_frames[:10]:
                stylizer(frame)
            stylizer.prefetch(clip_frames[10])
            t0 = time.perf_counter()
            for i in range(10, len(clip_frames)):
                if i + 1 < len(clip_frames):
                    stylizer.prefetch(clip_frames[i + 1])
                stylizer(clip_frames[i])
            pipelined[name] = frames / (time.perf_counter() - t0)
    return {"fps": frames / total, **pipelined, "frames": frames, "stages": stages}


def first_frame(style_path, clip, size):
    """First-frame latency of a new Stylizer in this (warm) process, and of a
    new process with a warm Numba cache."""
    from blit.stream import Stylizer
    from guides.exemplar import load_style

    frame = next(frames_of(clip, size))
    style = load_style(style_path)
    t0 = time.perf_counter()
    with Stylizer(style) as stylizer:
        stylizer(frame)
    in_process = (time.perf_counter() - t0) * 1e3
    code = f"""
import time; t0 = time.perf_counter()
import sys; sys.path.insert(0, {ROOT!r})
import av
from blit.stream import Stylizer
from blit.bench import fit_frame
from guides.exemplar import load_style
t1 = time.perf_counter()
style = load_style({style_path!r})
with av.open({clip!r}) as c:
    frame = fit_frame(next(c.decode(video=0)).to_ndarray(format="bgr24"), {size[0]}, {size[1]})
t2 = time.perf_counter()
s = Stylizer(style); s(frame)
t3 = time.perf_counter()
s(frame)
t4 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    imports, load, first, second = (float(v) for v in out.stdout.split()[-4:])
    return {"new_stylizer_warm_process_ms": in_process,
            "new_process": {"imports_ms": imports, "style_load_ms": load,
                            "first_frame_ms": first, "second_frame_ms": second}}


def memory_run(style, clip, size, options, frames, stream):
    """RSS over a long looped run, each frame prefetched (Stylizer.prefetch)
    while the one before it is painted; and transient NumPy allocation per
    frame, frame by frame."""
    from blit.stream import Stylizer

    rss = []
    with Stylizer(style, options=options, **stream) as stylizer:
        gen = frames_of(clip, size, loop=True)
        for _ in range(10):
            stylizer(next(gen))
        # transient allocation per frame (NumPy buffers; Numba's own are not traced)
        peaks, kept = [], []
        tracemalloc.start()
        for _ in range(30):
            frame = next(gen)
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            out = stylizer(frame)
            current, peak = tracemalloc.get_traced_memory()
            peaks.append(peak - before)
            kept.append(current - before)
            del out
        tracemalloc.stop()
        start = rss_mib()
        # the long run as the video command runs: each frame prefetched one ahead
        frame = next(gen)
        stylizer.prefetch(frame)
        for i in range(frames):
            following = next(gen)
            stylizer.prefetch(following)
            stylizer(frame)
            frame = following
            if i % 100 == 0 or i == frames - 1:
                rss.append((i, rss_mib()))
        stylizer(frame)
    xs, ys = np.array(rss).T
    slope = float(np.polyfit(xs, ys, 1)[0] * 1000) if len(xs) > 2 else 0.0
    return {"frames": frames, "size": list(size), "rss_mib_start": start, "rss_mib_end": rss[-1][1],
            "rss_mib_max": float(ys.max()), "rss_slope_mib_per_1000_frames": slope,
            "rss_samples": rss,
            "transient_alloc_per_frame_mib": float(np.median(peaks)) / 2**20,
            "frame_bytes_mib": size[0] * size[1] * 3 / 2**20}


def stability(style, data, options, stream):
    """Warping error ratio of the whole of target1 (face region), ours against
    FaceBlit's reference, and patch distances on four frames."""
    import av

    from blit.metrics import WarpingErrorMeter, detail, patch_distance
    from blit.stream import Stylizer
    from guides.landmarks import FaceLandmarker
    from guides.mask import head_region

    clip = os.path.join(data, "targets", "target1.mp4")
    ref_path = os.path.join(data, "reference", "target1_lincolnbust_3x3_voting.mp4")
    with av.open(ref_path) as c:
        reference = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    probe_frames = (0, 60, 120, 180)
    result = {}
    # face masks from an independent tracker on the input frames, for every method alike
    masks = []
    with FaceLandmarker(static_image_mode=False) as tracker:
        for frame in frames_of(clip):
            faces = tracker(frame)
            masks.append(head_region(frame.shape, faces[0]).full(frame.shape) if faces
                         else np.zeros(frame.shape[:2], np.float32))
    for name, kwargs in (("ours", stream), ("ours_frame_by_frame", {"temporal": None})):
        for step in (1, 2):
            meter = WarpingErrorMeter()
            picks = {}
            with Stylizer(style, options=options, fps=29.953 / step, **kwargs) as stylizer:
                for i, frame in enumerate(frames_of(clip)):
                    if i % step:
                        continue
                    out = stylizer(frame)
                    meter.update(out, frame, masks[i])
                    if i in probe_frames:
                        picks[i] = out
            r = meter.result()
            entry = {"ratio": r["ratio"], "output_error": r["output_error"],
                     "input_error": r["input_error"], "pairs": r["pairs"]}
            if step == 1:
                entry["patch_distance"] = {i: patch_distance(picks[i], style.image, mask=masks[i],
                                                             samples=1000) for i in probe_frames}
                entry["patch_distance_mean"] = float(np.mean(list(entry["patch_distance"].values())))
                entry["detail_mean"] = float(np.mean([detail(picks[i], mask=masks[i])
                                                      for i in probe_frames]))
            result[f"{name}_every{'' if step == 1 else '_second'}_frame"] = entry
            print(f"  {name}, every {'' if step == 1 else 'second '}frame: ratio {r['ratio']:.2f}"
                  + (f", patch distance {entry['patch_distance_mean']:.2f}, detail "
                     f"{entry['detail_mean']:.2f}" if step == 1 else ""), flush=True)
    meter = WarpingErrorMeter()
    inputs = list(frames_of(clip))
    for k, out in enumerate(reference):
        meter.update(out, inputs[2 * k], masks[2 * k])
    r = meter.result()
    pd = {2 * k: patch_distance(reference[k], style.image, mask=masks[2 * k], samples=1000)
          for k in (0, 30, 60, 90)}
    fb_detail = float(np.mean([detail(reference[k], mask=masks[2 * k]) for k in (0, 30, 60, 90)]))
    result["faceblit_reference_every_second_frame"] = {
        "ratio": r["ratio"], "output_error": r["output_error"], "input_error": r["input_error"],
        "pairs": r["pairs"], "patch_distance": pd, "patch_distance_mean": float(np.mean(list(pd.values()))),
        "detail_mean": fb_detail}
    print(f"  FaceBlit reference, every second frame: ratio {r['ratio']:.2f}, patch distance "
          f"{result['faceblit_reference_every_second_frame']['patch_distance_mean']:.2f}, detail "
          f"{fb_detail:.2f}", flush=True)
    style_mask = head_region(style.image.shape, style.landmarks).full(style.image.shape)
    result["exemplar_head_detail"] = detail(style.image, mask=style_mask)
    print(f"  the exemplar's own head: detail {result['exemplar_head_detail']:.2f}", flush=True)
    return result


def main(argv=None):
    from blit.cli import frame_size, number

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="FaceBlit data folder")
    parser.add_argument("--style", default="lincolnbust", help="style name in DATA/styles")
    parser.add_argument("--sizes", nargs="+", type=frame_size, default=[(640, 480), (768, 1024)],
                        metavar="WxH", help="frame sizes (default 640x480 768x1024)")
    parser.add_argument("--frames", type=number(int, least=1), default=240,
                        help="timed frames per size")
    parser.add_argument("--long", type=number(int, least=0), default=2000,
                        help="frames of the memory run (0: none)")
    parser.add_argument("--stability", action="store_true",
                        help="also measure the warping error ratio and patch distances (slow)")
    parser.add_argument("--skip-speed", action="store_true", help="only --stability")
    parser.add_argument("--landmark-every", type=number(int, least=1), default=1, metavar="N",
                        help="find the faces on every N-th frame, carry them along the flow "
                             "between (Stylizer's landmark_every; default 1)")
    parser.add_argument("--flow-engine", choices=("auto", "opencv", "blit"), default="auto",
                        help="the stream's optical flow (Stylizer's flow_engine; default auto: "
                             "OpenCV's DIS on the CPU)")
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args(argv)
    stream = {"landmark_every": args.landmark_every, "flow_engine": args.flow_engine}

    clip = os.path.join(args.data, "targets", "target1.mp4")
    if not os.path.exists(clip):
        print(f"bench_stream: FaceBlit data not found ({clip}); nothing measured")
        return 0
    from blit.bench import environment
    from blit.stream import STREAM_STAGES
    from blit.stylize import StylizeOptions
    from guides.exemplar import load_style

    style_path = os.path.join(args.data, "styles", f"{args.style}.png")
    style = load_style(style_path)
    options = StylizeOptions()
    result = {"environment": environment(), "style": args.style, "options": vars(options),
              "stream": stream, "load_average_start": load_average(), "sizes": {}}
    print(f"bench_stream: {args.style} on target1.mp4, {result['environment']['numba_threads']} "
          f"threads on {result['environment']['cpu']}, load average {result['load_average_start']}"
          + (f", landmarks every {args.landmark_every} frames" if args.landmark_every > 1 else "")
          + (f", flow {args.flow_engine}" if args.flow_engine != "auto" else ""))
    if not args.skip_speed:
        for size in args.sizes:
            text = f"{size[0]}x{size[1]}"
            stats = bench_size(style, clip, size, options, args.frames, stream)
            result["sizes"][text] = stats
            st = stats["stages"]
            print(f"\n{text}: {stats['fps']:.1f} fps end to end (landmarks included, decoding "
                  f"excluded); {stats['fps_prefetch']:.1f} fps with the next frame's landmarks "
                  f"and guides made in a thread ({stats['fps_prefetch_landmarks']:.1f} with its "
                  f"landmarks only)")
            print(f"  {'stage':<11}{'median ms':>10}{'p10':>8}{'p90':>8}")
            for k in STREAM_STAGES:
                if k in st:
                    print(f"  {k:<11}{st[k]['median']:>10.2f}{st[k]['p10']:>8.2f}{st[k]['p90']:>8.2f}")
        size = args.sizes[0]
        first = f"{size[0]}x{size[1]}"
        result["first_frame"] = first_frame(style_path, clip, size)
        ff = result["first_frame"]
        print(f"\nfirst frame at {first}: new Stylizer in a warm process "
              f"{ff['new_stylizer_warm_process_ms']:.0f} ms; new process with a warm Numba cache: "
              f"imports {ff['new_process']['imports_ms']:.0f} ms + style load "
              f"{ff['new_process']['style_load_ms']:.0f} ms + first frame "
              f"{ff['new_process']['first_frame_ms']:.0f} ms (second frame "
              f"{ff['new_process']['second_frame_ms']:.0f} ms)")
        if args.long <= 0:
            print("memory run skipped (--long 0)")
        else:
            mem = memory_run(style, clip, size, options, args.long, stream)
            result["memory"] = mem
            print(f"memory over {mem['frames']} looped frames at {first}: RSS "
                  f"{mem['rss_mib_start']:.0f} -> {mem['rss_mib_end']:.0f} MiB (max "
                  f"{mem['rss_mib_max']:.0f}, slope {mem['rss_slope_mib_per_1000_frames']:+.1f} MiB "
                  f"per 1000 frames); transient NumPy allocation "
                  f"{mem['transient_alloc_per_frame_mib']:.1f} MiB per frame (the frame itself is "
                  f"{mem['frame_bytes_mib']:.1f} MiB)")
    if args.stability:
        print("\nstability on the whole of target1.mp4 (face region):")
        result["stability"] = stability(style, args.data, options, stream)
    result["load_average_end"] = load_average()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=float)
        print(f"\nsaved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
