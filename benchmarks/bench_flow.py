"""The stream's optical flow on a head box, DIS on the whole half-size image
against DIS on row strips in threads (:func:`blit.stream.dis_strips_flow`),
alone and beside another thread's OpenCV calls; and :mod:`blit.dis`'s DIS
(``flow_engine="blit"``) on the CPU and, where CuPy has a CUDA device, on
the device (:func:`blit.gpu.dis_flow`, timed with CUDA events, its flow
compared with the CPU's bit for bit).

Not a test (pytest does not collect this folder). Why: OpenCV runs a
``parallel_for_`` called while another thread's runs on its calling thread
alone (one flag for the whole process), so with ``device="cuda"`` the
stream's DIS, in a thread of its own beside the masks' and appearance
guides' OpenCV calls, lost its threads; the strips' DIS run in threads of
the stream's own. The other thread here makes the kind of OpenCV calls the
masks make (grey image, area resize, Gaussian blur of a head-sized image)
in a loop, at the lowest priority (nice 19) so that on a machine of few
cores it takes OpenCV's flag more than it takes a core.

The images: matplotlib's Grace Hopper (or ``--image``) enlarged to the head box (``--box``,
default 966x1030, a head's box in a 1920x1080 frame), the second frame the
same moved by (3, -2) px and enlarged 1 %; both halved as the stream halves
them (cv2.pyrDown). Times are medians of ``--repeats`` after ``--warmup``,
in ms, each way's rounds interleaved; printed and saved as JSON with
versions, CPU and commit.

Run from the repository root::

    python benchmarks/bench_flow.py --json bench_flow.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def head_pair(path, width, height):
    """Two grey frames of a head box (the image at ``path`` enlarged to it),
    the second's content moved by (3, -2) px and enlarged 1 %, halved as the
    stream halves them."""
    import cv2

    gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise SystemExit(f"bench_flow: {path}: not an image OpenCV can read")
    prev = cv2.resize(gray, (width, height), interpolation=cv2.INTER_CUBIC)
    move = np.float32([[1.01, 0, 3 - 0.005 * width], [0, 1.01, -2 - 0.005 * height]])
    cur = cv2.warpAffine(prev, move, (width, height), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT)
    return cv2.pyrDown(cur), cv2.pyrDown(prev)


class OtherThread:
    """A thread making OpenCV calls on a head-sized image in a loop, at the
    lowest priority (nice 19) where the system allows it."""

    def __init__(self, width, height):
        self.image = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.calls = 0

    def _run(self):
        import cv2

        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        while not self.stop.is_set():
            g = cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)
            small = cv2.resize(g, (g.shape[1] // 4, g.shape[0] // 4), interpolation=cv2.INTER_AREA)
            cv2.GaussianBlur(small, (0, 0), 5)
            cv2.GaussianBlur(g, (0, 0), 3)
            self.calls += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def main(argv=None):
    from blit.cli import frame_size, number

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--box", type=frame_size, default=(966, 1030), metavar="WxH",
                        help="the head box at full size (default 966x1030)")
    parser.add_argument("--image", help="the head's image (default: matplotlib's "
                        "grace_hopper.jpg)")
    parser.add_argument("--repeats", type=number(int, least=1), default=40)
    parser.add_argument("--warmup", type=number(int, least=1), default=5)
    parser.add_argument("--json", metavar="OUT.json")
    args = parser.parse_args(argv)
    if min(args.box) < 64:
        parser.error(f"argument --box: expected at least 64x64, got {args.box[0]}x{args.box[1]}")

    import cv2
    from concurrent.futures import ThreadPoolExecutor

    from blit.bench import environment
    from blit.defaults import default_target_path
    from blit.stream import _make_dis, dis_strips_flow, flow_strip_workers, flow_strips

    cur, prev = head_pair(args.image or default_target_path(), *args.box)
    spans = flow_strips(cur.shape[0])
    whole = _make_dis()
    strips = [_make_dis() for _ in spans]
    workers = flow_strip_workers()
    pool = ThreadPoolExecutor(workers)
    out = np.empty(cur.shape + (2,), np.float32)
    from blit.dis import dis_flow
    from guides.buffers import Buffers

    dis_buffers, dis_out = Buffers(), np.empty(cur.shape + (2,), np.float32)
    ways = {
        "whole": lambda: whole.calc(cur, prev, None),
        "blit_dis": lambda: dis_flow(cur, prev, buffers=dis_buffers, out=dis_out),
        "strips_threads": lambda: dis_strips_flow(cur, prev, spans, strips, out=out,
                                                  map=pool.map),
        "strips_one_after_another": lambda: dis_strips_flow(cur, prev, spans, strips, out=out),
    }

    def rounds(label):
        times = {name: [] for name in ways}
        for r in range(args.warmup + args.repeats):
            for name, fn in ways.items():
                t0 = time.perf_counter()
                fn()
                if r >= args.warmup:
                    times[name].append((time.perf_counter() - t0) * 1e3)
        result = {name: statistics.median(t) for name, t in times.items()}
        print(f"{label}: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in result.items()))
        return result

    print(f"half-size head box {cur.shape[1]}x{cur.shape[0]}: {len(spans)} strips, "
          f"{workers} threads; OpenCV {cv2.__version__} with {cv2.getNumThreads()} threads, "
          f"{os.cpu_count()} cores")
    alone = rounds("alone")
    with OtherThread(*args.box) as other:
        beside = rounds("beside another thread's OpenCV calls")
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    one = rounds("OpenCV at one thread")
    pool.shutdown()
    device = device_flow(cur, prev, args.warmup, args.repeats)
    report = {
        "environment": environment(), "device_flow": device,
        "box": list(args.box), "half": [cur.shape[1], cur.shape[0]],
        "spans": [list(s) for s in spans], "threads": workers,
        "opencv_threads": opencv_threads, "repeats": args.repeats, "warmup": args.warmup,
        "alone_ms": alone, "beside_ms": beside, "opencv_one_thread_ms": one,
        "other_thread_calls": other.calls,
        "ratio_strips_to_whole": {"alone": alone["strips_threads"] / alone["whole"],
                                  "beside": beside["strips_threads"] / beside["whole"]},
    }
    print("strips in threads / whole: alone {alone:.3f}, beside {beside:.3f}".format(
        **report["ratio_strips_to_whole"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print("wrote", args.json)


def device_flow(cur, prev, warmup, repeats):
    """:func:`blit.gpu.dis_flow` of the pair on the CUDA device: median ms of
    ``repeats`` after ``warmup`` (CUDA events, the kernels' time; and the
    call's wall time to the flow's end), and whether its flow is the CPU's
    bit for bit. None without CuPy or a device."""
    from blit import gpu
    from blit.dis import dis_flow

    if not gpu.available():
        print(f"device flow: not measured ({gpu._unavailable_reason()})")
        return None
    import cupy as cp

    a, b = cp.asarray(cur), cp.asarray(prev)
    buffers, out = gpu.DeviceBuffers(), cp.empty(cur.shape + (2,), cp.float32)
    start, end = cp.cuda.Event(), cp.cuda.Event()
    events, walls = [], []
    for r in range(warmup + repeats):
        t0 = time.perf_counter()
        start.record()
        gpu.dis_flow(a, b, buffers=buffers, out=out)
        end.record()
        end.synchronize()
        if r >= warmup:
            walls.append((time.perf_counter() - t0) * 1e3)
            events.append(cp.cuda.get_elapsed_time(start, end))
    same = bool(np.array_equal(out.get().view(np.uint32), dis_flow(cur, prev).view(np.uint32)))
    result = {"kernels_ms": statistics.median(events), "wall_ms": statistics.median(walls),
              "same_as_cpu": same}
    print("device flow (blit.gpu.dis_flow): kernels {kernels_ms:.3f} ms, call to its end "
          "{wall_ms:.3f} ms, the CPU's flow bit for bit: {same_as_cpu}".format(**result))
    return result


if __name__ == "__main__":
    main()
