"""styleblit's guides: face landmarks, the FaceBlit guides, the style exemplar, image I/O."""
import os as _os

# Numba's parallel kernels run on OpenMP threads (its "omp" threading layer, the
# one pip's numba picks on Linux), which by default spin between kernels. With
# one other busy process on a 2-core machine (a video call beside the webcam),
# the spinning threads starved the rest of a frame: `styleblit webcam` fell to
# 5.8-8.3 fps against 29.5-30.4 fps with sleeping threads, which cost nothing
# measurable on a quiet machine (docs/performance.md). A user's own setting
# wins; the setting is read when OpenMP loads, at the first parallel kernel.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _openblas_core(flags):
    """The OpenBLAS kernel set for a CPU with ``flags`` (/proc/cpuinfo's): the
    AVX-512 one, else the AVX2 one; None for older CPUs (OpenBLAS's own
    choice stands)."""
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# numpy 1.26's OpenBLAS (0.3.23, the numpy mediapipe allows) does not know
# CPUs newer than it, and runs them on its oldest kernels ("Prescott", SSE3):
# on a 2-core Xeon with AVX-512 (family 6, model 207) a float32 2000x2000
# matrix product took 377 ms against 75 ms with the AVX-512 kernels, and the
# patch-distance metric of `eval` and `compare` 9.0 s against 3.5 s. Name the
# kernels the CPU supports when numpy is not loaded yet (what OpenBLAS picks
# itself on CPUs it knows); a user's own setting wins.
if "numpy" not in __import__("sys").modules and "OPENBLAS_CORETYPE" not in _os.environ:
    _core = _openblas_core(_cpu_flags())
    if _core is not None:
        _os.environ["OPENBLAS_CORETYPE"] = _core


# Numba caches each kernel where it is first compiled; where it would find no
# folder for it (a read-only install, no home folder), name one before any
# kernel module is imported (else each failed to import); `styleblit` says so
# once (guides.cachedir.numba_cache_note), at the first command that runs.
# matplotlib's font cache too (mediapipe imports pyplot), silently.
from guides.cachedir import matplotlib_config_fallback as _mpl_fallback  # noqa: E402
from guides.cachedir import numba_cache_fallback as _numba_cache_fallback  # noqa: E402

NUMBA_CACHE_FALLBACK = _numba_cache_fallback()
_mpl_fallback()
