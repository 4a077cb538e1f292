"""GPU benchmark (issue #6): the CUDA kernels and the CUDA stream, timed and
checked against the CPU path.

Two steps, because the GPU machine this is meant for has neither mediapipe
nor PyAV (nor OpenCV's contrib modules, which paint the default exemplar):

1. Where styleblit is installed::

       python benchmarks/bench_gpu.py --prepare DIR

   writes the embedded default exemplar (styleblit's painted astronaut) and
   target (matplotlib's grace_hopper.jpg) into DIR, each with its 68
   landmarks (``NAME.lm68.txt``; the target's found by mediapipe here).
2. On the GPU machine::

       python benchmarks/bench_gpu.py --inputs DIR --json OUT.json

   prints the device, then at each size (default 1920x1080 and 3840x2160) the
   target scaled and cropped to fill the frame, its guides made on the CPU
   once for the whole frame, and the lookup, the mode filter and the blend
   timed on the GPU with CUDA events (median and spread of ``--repeats``
   after ``--warmup``), their NNF and image compared with the CPU kernels'
   (the GPU path must give the same NNF, bit for bit). Then the CUDA stream
   (``Stylizer(device="cuda")``) on a clip made from the target, slowly
   zoomed and panned, each frame prefetched as ``styleblit video`` does; the
   clip's landmarks are moved with it exactly and handed to the stream as its
   landmarker, so mediapipe's time is not in these figures (on the CPU it runs
   in parallel with the painting; ``styleblit bench`` measures it).

``--pipeline-ab N`` then runs the stream N more times each way, alternately:
with ``pipeline=False`` (the worker finds the landmarks only, the frame's
CPU half runs in the caller's thread) and with ``pipeline=True`` (the
worker makes the whole CPU half while the frame before is painted).

``--flow-ab N`` runs the stream N more times each way, in turn: the flow
made on the device (``flow_engine="blit"``, the default there: blit.dis's
CUDA twin, no copy), and OpenCV's DIS on the CPU (``flow_engine="opencv"``,
its half-size flow copied to the device) on the whole head box and on row
strips in threads of the stream's own (``blit.stream.FLOW_STRIPS_FROM``: OpenCV
runs a ``parallel_for_`` called while another thread's runs on the calling
thread alone, and the stream's DIS runs beside the masks' and guides'
OpenCV calls).

``--device cpu`` runs the same on the CPU, to check the script where there is
no GPU (with small ``--sizes``). Not a test: speeds are medians after warm-up,
saved as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402

from blit.blending import denoise_nnf, blend  # noqa: E402
from blit.metrics import latency_summary  # noqa: E402
from blit.styleblit import LookupParams, lookup, make_jitter, seed_labels  # noqa: E402
from guides.appearance import target_appearance  # noqa: E402
from guides.buffers import Buffers  # noqa: E402
from guides.io import read_image, write_image  # noqa: E402
from guides.mls import positional_guide  # noqa: E402


def prepare(folder):
    """The default exemplar and target with their landmarks, into ``folder``."""
    from blit.defaults import default_style_path, default_target_path
    from guides.landmarks import detect_landmarks, write_lm68

    os.makedirs(folder, exist_ok=True)
    style = default_style_path()
    shutil.copyfile(style, os.path.join(folder, "style.png"))
    shutil.copyfile(os.path.splitext(style)[0] + ".lm68.txt", os.path.join(folder, "style.lm68.txt"))
    target = read_image(default_target_path())
    marks = detect_landmarks(target)
    if marks is None:
        raise SystemExit("bench_gpu: no face found in the default target")
    write_image(os.path.join(folder, "target.png"), target)
    write_lm68(os.path.join(folder, "target.lm68.txt"), marks)
    print(f"bench_gpu: wrote style.png, target.png and their landmarks into {folder}")


def fill_frame(image, marks, width, height, zoom=1.0, shift=(0.0, 0.0)):
    """``image`` scaled (by ``zoom`` more than to fill the frame) about its
    landmarks' centre, put at the frame's centre plus ``shift``, and its
    landmarks moved with it."""
    h, w = image.shape[:2]
    s = max(width / w, height / h) * zoom
    cx, cy = marks.mean(0)
    m = np.float32([[s, 0, width / 2 - s * cx + shift[0]], [0, s, height / 2 - s * cy + shift[1]]])
    frame = cv2.warpAffine(image, m, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    return frame, (marks @ m[:, :2].T + m[:, 2]).astype(np.float32)


class ClipLandmarks:
    """The stream's landmarker for a made clip: each frame's exact landmarks
    (the frame known by its identity at once, else by its memory), after
    ``delay_ms`` milliseconds of sleep (a stand-in for mediapipe's time that
    lets go of the GIL, as mediapipe's graph mostly does)."""

    def __init__(self, frames, marks, delay_ms=0.0):
        self.frames, self.marks = frames, marks
        self.delay = delay_ms / 1000.0
        self._index = {id(f): i for i, f in enumerate(frames)}

    def __call__(self, frame):
        if self.delay:
            time.sleep(self.delay)
        i = self._index.get(id(frame))
        if i is not None and self.frames[i] is frame:
            return [self.marks[i].copy()]
        for f, m in zip(self.frames, self.marks):
            if np.shares_memory(f, frame):
                return [m.copy()]
        raise ValueError("a frame that is not in the clip")


class Clock:
    """Milliseconds of a call: CUDA events on the GPU, the wall clock on the CPU."""

    def __init__(self, device):
        self.cp = None
        if device == "cuda":
            from blit import gpu

            self.cp = gpu._cupy()

    def __call__(self, fn):
        if self.cp is None:
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
        start, end = self.cp.cuda.Event(), self.cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return self.cp.cuda.get_elapsed_time(start, end)


def kernels_at(style, image, marks, size, device, repeats, warmup, voting):
    """The whole frame's lookup, mode filter and blend at ``size``, timed on
    ``device`` and compared with the CPU kernels."""
    width, height = size
    frame, lm = fill_frame(image, marks, width, height)
    pos = positional_guide((height, width), lm, style.landmarks)
    app = target_appearance(frame, style.quantiles)
    jitter = make_jitter(0)
    labels = seed_labels((height, width), jitter)
    params = LookupParams(style.params.lam_pos, style.params.lam_app, 50.0)
    host = dict(pos=pos, app=app, sapp=style.appearance, table=style.table, app_bin=style.app_bin,
                jitter=jitter, labels=labels, image=style.image)
    if device == "cuda":
        from blit import gpu

        # (the CUDA kernels read the exemplar's appearance as float32: same values)
        host["sapp"] = style.appearance.astype(np.float32)
        dev = {k: gpu.to_device(v) for k, v in host.items()}
        xp = gpu._cupy()
        k_lookup, k_denoise, k_blend = gpu.lookup, gpu.denoise_nnf, gpu.blend
    else:
        dev, xp = dict(host), np
        k_lookup, k_denoise, k_blend = lookup, denoise_nnf, blend
    nnf = xp.empty((height, width, 2), np.int32)
    den = xp.empty((height, width, 2), np.int32)
    out = xp.empty((height, width, 3), np.uint8)
    shape = style.image.shape[:2]

    # work arrays kept from call to call, as a stream keeps them (CuPy's pool does on the GPU)
    work = {"buffers": Buffers()} if device == "cpu" else {}

    def run_lookup():
        k_lookup(dev["pos"], dev["app"], dev["sapp"], dev["table"], dev["app_bin"], style.cell,
                 params, dev["jitter"], labels=dev["labels"], out=nnf, **work)

    def run_denoise():
        k_denoise(nnf, voting, shape, out=den, **work)

    packed = {"packed": style.packed} if device == "cpu" else {}  # (the CUDA blend reads the image)

    def run_blend():
        k_blend(dev["image"], den, voting, out=out, **packed)

    clock = Clock(device)
    times = {"lookup": [], "denoise": [], "blend": []}
    for i in range(warmup + repeats):
        t = [clock(run_lookup), clock(run_denoise), clock(run_blend)]
        if i >= warmup:
            for k, v in zip(times, t):
                times[k].append(v)
    stages = {k: latency_summary(v) for k, v in times.items()}
    total = [sum(t) for t in zip(*times.values())]
    result = {"size": f"{width}x{height}", "pixels": width * height, "stages": stages,
              "lookup_denoise_blend": latency_summary(total)}
    result["fps"] = 1e3 / result["lookup_denoise_blend"]["median"]
    if device == "cuda":
        cpu_nnf = lookup(pos, app, style.appearance, style.table, style.app_bin, style.cell, params,
                         jitter, labels=labels)
        cpu_out = blend(style.image, denoise_nnf(cpu_nnf, voting, shape), voting, packed=style.packed)
        result["same_nnf_as_cpu"] = bool(np.array_equal(nnf.get(), cpu_nnf))
        result["same_image_as_cpu"] = bool(np.array_equal(out.get(), cpu_out))
    return result


def stream_at(style, image, marks, size, device, frames, warmup, check, pipeline=True,
              landmark_ms=0.0, strips_from=None, flow_engine="auto"):
    """Frames per second of a ``Stylizer`` on ``device`` over a made clip,
    each frame prefetched while the one before it is painted (``pipeline``:
    the Stylizer's, False for the landmarks only in its worker); with
    ``check``, the first frames compared with a CPU stream's. The
    landmarker takes ``landmark_ms`` a frame (:class:`ClipLandmarks`).
    ``strips_from``: :data:`blit.stream.FLOW_STRIPS_FROM` for this run (the
    flow's DIS on row strips in threads of its own for heads of that many
    half-size rows or more; None: on the whole head box), with
    ``flow_engine="opencv"``; ``flow_engine`` the Stylizer's (the CPU
    stream it is checked against has the same)."""
    import blit.stream
    from blit.stream import Stylizer

    before = blit.stream.FLOW_STRIPS_FROM
    blit.stream.FLOW_STRIPS_FROM = strips_from
    try:
        result = _stream_at(Stylizer, style, image, marks, size, device, frames, warmup, check,
                            pipeline, landmark_ms, flow_engine)
    finally:
        blit.stream.FLOW_STRIPS_FROM = before
    result["strips_from"] = strips_from
    return result


def _stream_at(Stylizer, style, image, marks, size, device, frames, warmup, check, pipeline,
               landmark_ms, flow_engine):
    """:func:`stream_at` with the flow's setting as it is."""
    width, height = size
    clip, clip_marks = [], []
    for i in range(frames):
        zoom = 1.0 + 0.035 * np.sin(i / 9.0)
        shift = (0.02 * width * np.sin(i / 12.0), 0.01 * height * np.cos(i / 15.0))
        f, m = fill_frame(image, marks, width, height, zoom, shift)
        clip.append(f)
        clip_marks.append(m)
    stylizer = Stylizer(style, device=device,
                        landmarker=ClipLandmarks(clip, clip_marks, landmark_ms),
                        pipeline=pipeline, flow_engine=flow_engine)
    totals, stages, outputs = [], {}, []
    with stylizer:
        stylizer.prefetch(clip[0])
        start = None
        for i, frame in enumerate(clip):
            if i == warmup:
                start = time.perf_counter()
            if i + 1 < len(clip):
                stylizer.prefetch(clip[i + 1])
            out = stylizer(frame)
            if i < check:
                outputs.append(out.copy())
            if i >= warmup:
                totals.append(stylizer.last_times["total"])
                for k, v in stylizer.last_times.items():
                    stages.setdefault(k, []).append(v)
        elapsed = time.perf_counter() - start
    result = {"size": f"{width}x{height}", "frames": frames, "warmup": warmup,
              "pipeline": pipeline, "landmark_ms": landmark_ms,
              "flow_engine": stylizer.flow_engine,
              "fps": (frames - warmup) / elapsed,
              "stages": {k: latency_summary(v) for k, v in stages.items()}}
    if check and device == "cuda":
        with Stylizer(style, device="cpu", landmarker=ClipLandmarks(clip, clip_marks),
                      flow_engine=stylizer.flow_engine) as cpu:
            same = [bool(np.array_equal(cpu(clip[i]), outputs[i])) for i in range(check)]
        result["same_frames_as_cpu"] = same
    return result


def environment(device):
    """:func:`blit.bench.environment`, with the GPU's name and CuPy's version."""
    from blit.bench import environment as base

    env = {**base(), "device": device}
    if device == "cuda":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.runtime.getDevice())
        name = props["name"]
        env.update(gpu=name.decode() if isinstance(name, bytes) else str(name),
                   cupy=cupy.__version__, cuda_runtime=cupy.cuda.runtime.runtimeGetVersion())
    return env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepare", metavar="DIR", help="write the inputs into DIR and stop")
    p.add_argument("--inputs", metavar="DIR", help="the folder --prepare wrote")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--sizes", nargs="+", default=["1920x1080", "3840x2160"])
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--voting", type=int, default=1, help="blend radius (default 1: 3x3)")
    p.add_argument("--stream-size", default="1920x1080", help="the stream's frame size ('' skips it)")
    p.add_argument("--frames", type=int, default=150, help="frames of the stream's clip")
    p.add_argument("--check-frames", type=int, default=3,
                   help="first stream frames compared with a CPU stream's (GPU only)")
    p.add_argument("--pipeline-ab", type=int, default=0, metavar="ROUNDS",
                   help="then the stream with pipeline=False and True alternately, ROUNDS "
                        "times each (the worker finding the landmarks only, or making the "
                        "frame's CPU half)")
    p.add_argument("--flow-ab", type=int, default=0, metavar="ROUNDS",
                   help="then the stream with the flow made on the device (flow_engine "
                        "'blit'), and by OpenCV's DIS on the CPU on the whole head box and on "
                        "row strips in threads (blit.stream.FLOW_STRIPS_FROM = --strips-from), "
                        "in turn, ROUNDS times each")
    p.add_argument("--strips-from", type=int, default=192, metavar="ROWS",
                   help="FLOW_STRIPS_FROM in --flow-ab's strips runs (default 192)")
    p.add_argument("--landmark-ms", type=float, default=0.0, metavar="MS",
                   help="the stream's landmarker sleeps MS ms a frame before it answers (a "
                        "stand-in for mediapipe, which the GPU machines lack; default 0: the "
                        "landmarks given at once)")
    p.add_argument("--json", metavar="OUT.json")
    args = p.parse_args(argv)
    if args.prepare:
        prepare(args.prepare)
        return 0
    if not args.inputs:
        p.error("give --inputs DIR (written by --prepare DIR)")
    if args.device == "cuda":
        from blit import gpu

        if not gpu.available():
            print(f"bench_gpu: no CUDA device: {gpu._unavailable_reason()}", file=sys.stderr)
            return 2
    from guides.exemplar import StyleExemplar
    from guides.landmarks import read_lm68

    # (prepared from its landmark file, not through load_style, whose check of
    # the file against the faces it finds needs mediapipe)
    style = StyleExemplar.prepare(read_image(os.path.join(args.inputs, "style.png")),
                                  read_lm68(os.path.join(args.inputs, "style.lm68.txt")))
    image = read_image(os.path.join(args.inputs, "target.png"))
    marks = read_lm68(os.path.join(args.inputs, "target.lm68.txt"))
    report = {"environment": environment(args.device), "voting": args.voting, "sizes": []}
    print(f"bench_gpu: {report['environment'].get('gpu') or 'CPU'}, voting {args.voting}")

    def size(text):
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h

    for s in args.sizes:
        r = kernels_at(style, image, marks, size(s), args.device, args.repeats, args.warmup,
                       args.voting)
        report["sizes"].append(r)
        st = r["stages"]
        same = "" if "same_nnf_as_cpu" not in r else \
            f"  same NNF as the CPU: {r['same_nnf_as_cpu']}, same image: {r['same_image_as_cpu']}"
        print(f"{r['size']}: lookup {st['lookup']['median']:.3f}  mode filter "
              f"{st['denoise']['median']:.3f}  blend {st['blend']['median']:.3f} ms  "
              f"-> {r['fps']:.0f} fps{same}", flush=True)
    if args.stream_size:
        r = stream_at(style, image, marks, size(args.stream_size), args.device, args.frames,
                      min(10, args.frames // 2), args.check_frames, landmark_ms=args.landmark_ms)
        report["stream"] = r
        parts = "  ".join(f"{k} {v['median']:.2f}" for k, v in r["stages"].items())
        same = f"  same frames as the CPU: {r['same_frames_as_cpu']}" if "same_frames_as_cpu" in r else ""
        given = (f"landmarks given after {args.landmark_ms:g} ms" if args.landmark_ms else
                 "landmarks given")
        print(f"stream {r['size']}: {r['fps']:.1f} fps ({given}){same}\n  ms: {parts}", flush=True)
        for i in range(args.pipeline_ab):
            for pipeline in (False, True):
                r = stream_at(style, image, marks, size(args.stream_size), args.device,
                              args.frames, min(10, args.frames // 2), 0, pipeline=pipeline,
                              landmark_ms=args.landmark_ms)
                report.setdefault("pipeline_ab", []).append(r)
                print(f"  round {i + 1}, pipeline={pipeline}: {r['fps']:.1f} fps", flush=True)
        for i in range(args.flow_ab):
            for engine, strips_from in (("blit", None), ("opencv", None),
                                        ("opencv", args.strips_from)):
                r = stream_at(style, image, marks, size(args.stream_size), args.device,
                              args.frames, min(10, args.frames // 2), 0,
                              landmark_ms=args.landmark_ms, strips_from=strips_from,
                              flow_engine=engine)
                report.setdefault("flow_ab", []).append(r)
                st = r["stages"]
                way = {"blit": "blit.dis    ", "opencv": "OpenCV whole"}[engine]
                print(f"  round {i + 1}, flow {'OpenCV strips' if strips_from else way}: "
                      f"{r['fps']:.1f} fps, flow {st['flow']['median']:.2f} ms, total "
                      f"{st['total']['median']:.2f} ms", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
