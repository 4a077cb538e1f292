"""Compile the lookup's kernels in a second process on a first run.

Numba compiles each kernel at its first call and caches it (``cache=True``),
one after the other and on one core: a first ``styleblit image`` spent
29-34 s on 2 cores, most of it compiling, 12-18 s of that on the lookup's
three kernels. Where these are not known to be in the cache (no marker
``lookup-KEY`` beside the commands' first-run markers, left by this child
when it is done and by any command that ran the lookup to the end), a
command that is to look up on this CPU starts this module as a child
process (:func:`start`); it compiles those three on a tiny input of the
same types (so the same signatures) while the command loads mediapipe and
compiles the guides' kernels on the other core (22-24 s then).
:func:`blit.styleblit.lookup` waits for the child (:func:`wait`) before its
first call and then loads the kernels from Numba's cache. Where anything
goes wrong in the child (no cache folder that can be written, the child
killed), the command compiles them itself, as without it.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys

_child = None


def start(marker: str | None = None) -> bool:
    """Start compiling the lookup's kernels in a child process; returns at
    once (False where none was started: one is running, or Numba's JIT is
    off). The child makes the empty file ``marker`` when it is done."""
    global _child
    if _child is not None or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return False
    try:
        _child = subprocess.Popen([sys.executable, "-m", "blit.precompile"]
                                  + ([marker] if marker else []),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    except OSError:
        return False
    atexit.register(_stop)
    return True


def wait() -> None:
    """Wait for the child of :func:`start` to end (at once where there is
    none). Ctrl-C while waiting stops it."""
    global _child
    child, _child = _child, None
    if child is None:
        return
    try:
        child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise


def _stop():
    """At exit: a child still compiling (the command ended before its first
    lookup: no face, an error) is stopped; Numba writes each cache file
    whole or not at all."""
    global _child
    child, _child = _child, None
    if child is not None and child.poll() is None:
        child.kill()
        child.wait()


def compile_lookup() -> None:
    """Call :func:`blit.styleblit.lookup` once on a tiny input of the types
    the stylizers pass (float32 guides, the uint8 exemplar appearance, an
    int32 table): its three kernels are compiled into Numba's cache."""
    import numpy as np

    from blit.styleblit import DEFAULT_LEVELS, LookupParams, lookup, make_jitter

    params = LookupParams.faceblit((96, 72))
    style_app = np.zeros((96, 72), np.uint8)
    table = np.zeros((24, 18, 32), np.int32)  # (any valid entries: the kernels' types are what count)
    app_bin = np.zeros(256, np.int32)
    h, w = 80, 60
    pos = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    app = np.full((h, w), 128.0, np.float32)
    lookup(pos, app, style_app, table, app_bin, 4, params, make_jitter(0, levels=DEFAULT_LEVELS))


if __name__ == "__main__":
    compile_lookup()
    if len(sys.argv) > 1:  # (the kernels are in the cache: no child on the next first run)
        try:
            os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
            open(sys.argv[1], "w").close()
        except OSError:
            pass
