"""The host's share of a CUDA stream, measurable without a GPU: the stream
of ``bench_gpu.py`` (``Stylizer(device="cuda")``, each frame prefetched,
the landmarks given) with CuPy replaced by the tests' stand-in
(``tests/test_gpu.py``'s ``HostCupy``: NumPy arrays kept apart from host
ones) and every kernel launch a no-op. What is left is what the host does
per frame: the landmarks' smoothing, the head outlines, the argument
structs, the launches' Python, the copies (host memory to host memory
here) and, with ``flow_engine="opencv"``, OpenCV's DIS. So its frame rate
bounds a real device stream's from above, on this machine's CPU.

    python benchmarks/bench_gpu.py --prepare DIR      # once
    python benchmarks/bench_gpu_host_side.py --inputs DIR --json OUT.json

The flow engines alternate, ``--rounds`` times each. The images are
garbage (no kernel runs): only the times mean anything.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "tests"), HERE]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", required=True, metavar="DIR", help="bench_gpu.py --prepare DIR")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", metavar="OUT.json")
    args = p.parse_args(argv)

    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)  # (arithmetic on never-written arrays)
    from blit import gpu
    from test_gpu import HostCupy  # the stand-in for CuPy the tests run the stream on

    stand_in = HostCupy()
    gpu._cupy = lambda: stand_in
    gpu._unavailable_reason = lambda: None
    gpu._kernels = lambda names: tuple((lambda grid, block, args: None) for _ in names)

    import bench_gpu
    from blit.bench import environment
    from guides.exemplar import StyleExemplar
    from guides.io import read_image
    from guides.landmarks import read_lm68

    style = StyleExemplar.prepare(read_image(os.path.join(args.inputs, "style.png")),
                                  read_lm68(os.path.join(args.inputs, "style.lm68.txt")))
    image = read_image(os.path.join(args.inputs, "target.png"))
    marks = read_lm68(os.path.join(args.inputs, "target.lm68.txt"))
    width, height = (int(v) for v in args.size.lower().split("x"))
    report = {"environment": environment(), "size": args.size, "runs": []}
    for i in range(args.rounds):
        for engine in ("blit", "opencv"):
            r = bench_gpu.stream_at(style, image, marks, (width, height), "cuda", args.frames,
                                    min(10, args.frames // 2), 0, flow_engine=engine)
            report["runs"].append(r)
            stages = "  ".join(f"{k} {v['median']:.2f}" for k, v in r["stages"].items())
            print(f"round {i + 1}, flow {engine:<6}: {r['fps']:.1f} fps; ms: {stages}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
