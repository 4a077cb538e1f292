#!/bin/sh
# Issue #6's checks on a machine with a CUDA GPU, in one run: the GPU tests,
# the GPU benchmark (with the flow's A/B: blit.dis on the device, OpenCV's DIS
# on the CPU on the whole head box or on row strips in threads), then the
# flow's benchmark (OpenCV's and blit.dis's DIS on the CPU, blit.dis's on the device). For a GPU machine's own Python (CuPy, NumPy, Numba,
# OpenCV, pytest; mediapipe and PyAV not needed: the tests then take the
# landmarks recorded in tests/data, and the benchmark those of INPUTS).
#
#   python benchmarks/bench_gpu.py --prepare INPUTS     # where styleblit is installed
#   sh benchmarks/gpu_check.sh INPUTS OUT               # on the GPU machine, repo root
#
# Writes OUT/info.txt, OUT/tests.log, OUT/junit.xml, OUT/bench_gpu.json,
# OUT/bench.log, OUT/bench_flow.json and OUT/flow.log. Each step has a time
# limit (TEST_S, BENCH_S, FLOW_S seconds) so that a hang cannot take the
# machine's whole lease.
set -u
INPUTS=${1:?usage: gpu_check.sh INPUTS OUT}
OUT=${2:?usage: gpu_check.sh INPUTS OUT}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$PY" -c "import sys, numpy, numba, cupy, cv2; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'numba', numba.__version__, 'cupy', cupy.__version__, 'cv2', cv2.__version__)"
  "$PY" -c "from blit.bench import source_digest; print('styleblit source', source_digest())"
} 2>&1 | tee "$OUT/info.txt"
start=$(date +%s)
timeout "${TEST_S:-300}" "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py -rfEs \
  --junitxml="$OUT/junit.xml" > "$OUT/tests.log" 2>&1
echo "tests: exit $? in $(( $(date +%s) - start )) s"; tail -5 "$OUT/tests.log"
start=$(date +%s)
timeout "${BENCH_S:-300}" "$PY" benchmarks/bench_gpu.py --inputs "$INPUTS" --pipeline-ab 2 \
  --flow-ab 2 --check-frames 150 --json "$OUT/bench_gpu.json" > "$OUT/bench.log" 2>&1
echo "bench: exit $? in $(( $(date +%s) - start )) s"; cat "$OUT/bench.log"
start=$(date +%s)
timeout "${FLOW_S:-60}" "$PY" benchmarks/bench_flow.py --image "$INPUTS/target.png" \
  --json "$OUT/bench_flow.json" \
  > "$OUT/flow.log" 2>&1
echo "flow: exit $? in $(( $(date +%s) - start )) s"; cat "$OUT/flow.log"
