"""CUDA backend: the StyleBlit lookup and blend on CuPy arrays.

:func:`blit.styleblit.lookup` and :func:`blit.blending.blend` come here when
given CuPy arrays (the array type chooses the backend: NumPy runs the Numba
kernels, CuPy the CUDA kernels of ``blit/cuda/styleblit.cu``); the signatures,
checks and results are theirs, plus the dtypes the kernels are written for
(float32 ``style_app`` and ``jitter``, int32 ``table`` and ``app_bin``, as
made by :mod:`blit.styleblit`) and a C-contiguous ``out``. Every array
argument must then live on the current GPU: a NumPy array among CuPy ones is
a ``TypeError`` naming it, never a hidden copy. Inside a call nothing crosses between host and device except
the kernels' small by-value argument structs (the seed grid travels in them).

CuPy is imported only when a CuPy array arrives or :func:`available` /
:func:`resolve_device` is asked; ``import blit`` never touches CUDA.

The kernels are compiled by NVRTC on first use, once per device and
specialisation (levels of the lookup, blend radius 0, 1, 2 or any), and
cached; CuPy also keeps the binaries on disk across runs.

Example (on a machine with a CUDA device)::

    import cupy as cp
    from blit import blend, lookup

    # per stream, once: the exemplar's arrays and the jitter on the device
    style_d, app_d, table_d, bins_d, jitter_d = map(
        cp.asarray, (style, style_app, table, app_bin, jitter))
    # per frame: the guides in, the image out
    nnf = lookup(cp.asarray(pos), cp.asarray(tapp), app_d, table_d, bins_d, 4, params, jitter_d)
    image = blend(style_d, nnf, 1).get()
"""
from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from blit.styleblit import _seed_grid
from guides.io import InputError

__all__ = ["CudaUnavailableError", "INSTALL_HINT", "available", "resolve_device", "lookup", "blend"]

#: What to install for ``device="cuda"``: the ``gpu`` extra (CuPy for CUDA 12).
INSTALL_HINT = ('pip install -e ".[gpu]" (CuPy 13 for CUDA 12, cupy-cuda12x; it compiles the '
                'kernels with NVRTC from the CUDA 12 toolkit)')

#: NVRTC options. IEEE arithmetic without fused multiply-add, so that the
#: guide error is bit-identical to the Numba one (the header also uses the
#: non-fusing intrinsics); no fast math.
NVRTC_OPTIONS = ("--fmad=false",)

_MAX_LEVELS = 12
_BLEND_RADII = (0, 1, 2)  # specialised; other radii share sb_blend_kernel<-1>


class CudaUnavailableError(InputError):
    """``device="cuda"`` was asked for, but CuPy or a CUDA device is missing.

    A ``ValueError`` (through :class:`guides.io.InputError`): the command line
    reports it on one line.
    """


# ---------------------------------------------------------------------------
# Availability
# ---------------------------------------------------------------------------

def _unavailable_reason():
    """Why the CUDA backend cannot run here, or None when it can."""
    try:
        import cupy
    except Exception as exc:  # not installed, or its CUDA libraries are broken
        return f"CuPy cannot be imported ({type(exc).__name__}: {exc}); install it with {INSTALL_HINT}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver
        return f"CuPy finds no CUDA driver ({type(exc).__name__}: {exc})"
    if count == 0:
        return "CuPy finds no CUDA device"
    return None


def available() -> bool:
    """True when CuPy imports and a CUDA device is present; never raises."""
    return _unavailable_reason() is None


def resolve_device(device="auto") -> str:
    """The backend for a stream object's ``device`` argument.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` takes CUDA when :func:`available`, else the CPU.

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    CudaUnavailableError
        ``device="cuda"`` without CuPy or a device; the message says what to
        install.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cpu":
        return "cpu"
    reason = _unavailable_reason()
    if reason is None:
        return "cuda"
    if device == "auto":
        return "cpu"
    raise CudaUnavailableError(f"device='cuda': {reason}")


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        raise CudaUnavailableError(f"the CUDA backend needs CuPy: {INSTALL_HINT}") from exc
    return cupy


# ---------------------------------------------------------------------------
# Kernels: source, compilation cache, argument structs
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def source() -> str:
    """The CUDA source NVRTC compiles: ``cuda/styleblit.cu`` with its header
    ``cuda/styleblit_kernels.cuh`` inlined (CuPy's disk cache is keyed by the
    source text, which an ``#include`` would hide)."""
    folder = resources.files("blit") / "cuda"
    header = (folder / "styleblit_kernels.cuh").read_text(encoding="utf-8")
    main = (folder / "styleblit.cu").read_text(encoding="utf-8")
    include = '#include "styleblit_kernels.cuh"'
    if include not in main:
        raise RuntimeError(f"blit/cuda/styleblit.cu: no line {include}")
    return main.replace(include, header.replace("#pragma once", ""), 1)


def lookup_kernel_names(levels):
    """Name expressions of the seed and lookup kernels for ``levels``."""
    return f"sb_seed_kernel<{levels}>", f"sb_lookup_kernel<{levels}>"


def blend_kernel_name(radius):
    """Name expression of the blend kernel for ``radius``."""
    return f"sb_blend_kernel<{radius if radius in _BLEND_RADII else -1}>"


def kernel_names():
    """Every specialisation :func:`lookup` and :func:`blend` may compile."""
    names = [n for levels in range(1, _MAX_LEVELS + 1) for n in lookup_kernel_names(levels)]
    return names + [blend_kernel_name(r) for r in (*_BLEND_RADII, -1)]


_MODULES = {}  # (device id, name expressions) -> kernels, compiled once


def _kernels(names):
    cp = _cupy()
    key = (cp.cuda.runtime.getDevice(), names)
    kernels = _MODULES.get(key)
    if kernels is None:
        module = cp.RawModule(code=source(), options=NVRTC_OPTIONS, name_expressions=names)
        kernels = _MODULES[key] = tuple(module.get_function(n) for n in names)
    return kernels


# By-value kernel arguments, laid out like sb::SeedGrid / sb::LookupArgs /
# sb::BlendArgs in cuda/styleblit_kernels.cuh (pointers as uint64; align=True
# pads like a C compiler; the header static_asserts the sizes and the tests
# compare every offset with a host build). CuPy passes a size-one NumPy
# array by value: its bytes are the kernel parameter.
SEED_GRID = np.dtype([(name, np.int32, (_MAX_LEVELS,)) for name in ("offset", "bx0", "by0", "ncx")],
                     align=True)
LOOKUP_ARGS = np.dtype(
    [(name, np.uint64) for name in ("tpos", "tapp", "active", "sapp", "table", "app_bin", "jitter",
                                    "labels", "seeds", "nnf")]
    + [(name, np.int32) for name in ("h", "w", "ox", "oy", "hs", "ws", "hc", "wc", "nbins", "cell",
                                     "jsize", "hf", "wf", "levels", "nseeds")]
    + [(name, np.float32) for name in ("lam_pos", "lam_app", "threshold")]
    + [("grid", SEED_GRID)],
    align=True)
BLEND_ARGS = np.dtype(
    [(name, np.uint64) for name in ("style", "nnf", "out")]
    + [(name, np.int32) for name in ("h", "w", "hs", "ws", "radius")],
    align=True)


def _ptr(a):
    """Address of an array's first element (0 for None): host or device."""
    if a is None:
        return 0
    return a.ctypes.data if isinstance(a, np.ndarray) else a.data.ptr


def _check_module(xp, **arrays):
    """Every given array belongs to ``xp`` (and, for CuPy, to the current
    device): a mix of NumPy and CuPy arrays is a TypeError naming the odd one."""
    device = None if xp is np else xp.cuda.runtime.getDevice()
    for name, a in arrays.items():
        if a is None:
            continue
        if not isinstance(a, xp.ndarray):
            kind = "CuPy" if xp is not np else "NumPy"
            raise TypeError(f"{name}: expected a {kind} array like the others, got "
                            f"{type(a).__module__}.{type(a).__name__}; all arrays of a call must be "
                            "on the same backend (move it once, outside the frame loop)")
        if device is not None and a.device.id != device:
            raise ValueError(f"{name}: expected an array on the current device {device}, "
                             f"got one on device {a.device.id}")


def _prepare_lookup(xp, target_pos, target_app, style_app, table, app_bin, cell, params, jitter,
                    *, origin=(0, 0), active=None, labels=None, out=None):
    """Check and convert the arguments of :func:`lookup` for ``xp`` (NumPy or
    CuPy) and pack the kernels' argument struct.

    Returns ``(args, out, keep)``: ``args`` the (1,) :data:`LOOKUP_ARGS`
    array (None when the region is empty), ``keep`` the arrays it points to.
    With NumPy it drives the host build of the kernels in the tests.
    """
    _check_module(xp, target_pos=target_pos, target_app=target_app, style_app=style_app,
                  table=table, app_bin=app_bin, jitter=jitter, active=active, labels=labels, out=out)
    target_pos = xp.ascontiguousarray(target_pos, dtype=xp.float32)
    if target_pos.ndim != 3 or target_pos.shape[2] != 2:
        raise ValueError(f"target_pos: expected (H, W, 2), got shape {target_pos.shape}")
    h, w = target_pos.shape[:2]
    lam_app = params.lam_app
    if target_app is None:
        target_app = xp.zeros((h, w), xp.float32)
        lam_app = 0.0
    target_app = xp.ascontiguousarray(target_app, dtype=xp.float32)
    if target_app.shape != (h, w):
        raise ValueError(f"target_app: expected shape {(h, w)}, got {target_app.shape}")
    if jitter.ndim != 4 or jitter.shape[0] < params.levels or jitter.shape[3] != 2:
        raise ValueError(f"jitter: expected (>= {params.levels}, J, J, 2), got shape {jitter.shape}")
    if jitter.shape[1] != jitter.shape[2]:
        raise ValueError(f"jitter: expected (L, J, J, 2) with square J x J tables, got shape {jitter.shape}")
    if jitter.dtype != np.float32:
        raise TypeError(f"jitter: expected float32 (make_jitter), got {jitter.dtype}")
    if not 1 <= params.levels <= _MAX_LEVELS:
        raise ValueError(f"levels: expected 1..{_MAX_LEVELS}, got {params.levels}")
    if style_app.ndim != 2:
        raise ValueError(f"style_app: expected (Hs, Ws), got shape {style_app.shape}")
    if style_app.dtype != np.float32:
        raise TypeError(f"style_app: expected float32, got {style_app.dtype}")
    if table.ndim != 3 or table.dtype != np.int32:
        raise TypeError(f"table: expected (Hc, Wc, nbins) int32, got {table.shape} {table.dtype}")
    if app_bin.shape != (256,) or app_bin.dtype != np.int32:
        raise TypeError(f"app_bin: expected (256,) int32, got {app_bin.shape} {app_bin.dtype}")
    if out is None:
        out = xp.empty((h, w, 2), xp.int32)
    elif out.shape != (h, w, 2) or out.dtype != np.int32:
        raise ValueError(f"out: expected ({h}, {w}, 2) int32, got {out.shape} {out.dtype}")
    elif not out.flags.c_contiguous:
        raise ValueError("out: expected a C-contiguous array")
    if active is not None:
        if active.shape != (h, w):
            raise ValueError(f"active: expected shape {(h, w)}, got {active.shape}")
        active = xp.ascontiguousarray(active, dtype=xp.bool_)
    if h == 0 or w == 0:
        return None, out, ()
    ox, oy = int(origin[0]), int(origin[1])
    if ox < 0 or oy < 0:
        raise ValueError(f"origin: expected non-negative frame coordinates, got {origin}")
    if labels is not None and (labels.dtype != np.uint8 or labels.ndim != 3
                               or labels.shape[0] < params.levels
                               or labels.shape[1] < oy + h or labels.shape[2] < ox + w):
        raise ValueError(f"labels: expected (>= {params.levels}, >= {oy + h}, >= {ox + w}) uint8 "
                         f"for this region, got {labels.shape} {labels.dtype}")
    grid, nseeds = _seed_grid(h, w, ox, oy, params.levels)
    seeds = xp.empty((max(nseeds, 1), 4), xp.int32)
    keep = (target_pos, target_app, xp.ascontiguousarray(style_app), xp.ascontiguousarray(table),
            xp.ascontiguousarray(app_bin), xp.ascontiguousarray(jitter), active,
            None if labels is None else xp.ascontiguousarray(labels), seeds, out)

    args = np.zeros(1, LOOKUP_ARGS)
    for name, a in zip(("tpos", "tapp", "sapp", "table", "app_bin", "jitter", "active", "labels",
                        "seeds", "nnf"),
                       (keep[0], keep[1], keep[2], keep[3], keep[4], keep[5], keep[6], keep[7],
                        seeds, out)):
        args[name] = _ptr(a)
    hs, ws = style_app.shape
    hc, wc, nbins = table.shape
    hf, wf = (0, 0) if labels is None else labels.shape[1:]
    for name, v in dict(h=h, w=w, ox=ox, oy=oy, hs=hs, ws=ws, hc=hc, wc=wc, nbins=nbins,
                        cell=int(cell), jsize=jitter.shape[1], hf=hf, wf=wf,
                        levels=params.levels, nseeds=nseeds).items():
        args[name] = v
    args["lam_pos"] = np.float32(params.lam_pos)
    args["lam_app"] = np.float32(lam_app)
    args["threshold"] = np.float32(params.threshold)
    rows = grid.shape[0]  # max(levels, 2)
    for col, name in enumerate(("offset", "bx0", "by0", "ncx")):
        args["grid"][name][0, :rows] = grid[:, col]
    return args, out, keep


def _prepare_blend(xp, style, nnf, radius, out):
    """Check and convert the arguments of :func:`blend` for ``xp``; returns
    ``(args, out, keep)`` like :func:`_prepare_lookup`."""
    _check_module(xp, style=style, nnf=nnf, out=out)
    if style.dtype != np.uint8:
        raise TypeError(f"style: expected uint8, got {style.dtype}")
    if style.ndim != 3 or style.shape[2] != 3:
        raise ValueError(f"style: expected (H, W, 3), got shape {style.shape}")
    if nnf.ndim != 3 or nnf.shape[2] != 2:
        raise ValueError(f"nnf: expected (H, W, 2), got shape {nnf.shape}")
    if nnf.dtype != np.int32:
        raise TypeError(f"nnf: expected int32, got {nnf.dtype}")
    if radius < 0:
        raise ValueError(f"radius: expected >= 0, got {radius}")
    h, w = nnf.shape[:2]
    if out is None:
        out = xp.zeros((h, w, 3), xp.uint8)
    elif out.shape != (h, w, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous ({h}, {w}, 3) uint8 array, "
                         f"got {out.shape} {out.dtype}")
    if h == 0 or w == 0:
        return None, out, ()
    keep = (xp.ascontiguousarray(style), xp.ascontiguousarray(nnf), out)
    args = np.zeros(1, BLEND_ARGS)
    args["style"], args["nnf"], args["out"] = (_ptr(a) for a in keep)
    args["h"], args["w"] = h, w
    args["hs"], args["ws"] = style.shape[:2]
    args["radius"] = int(radius)
    return args, out, keep


# ---------------------------------------------------------------------------
# Public functions (reached through blit.styleblit.lookup / blit.blending.blend)
# ---------------------------------------------------------------------------

def lookup(target_pos, target_app, style_app, table, app_bin, cell, params, jitter,
           *, origin=(0, 0), active=None, labels=None, out=None):
    """:func:`blit.styleblit.lookup` on CuPy arrays: same arguments, same NNF.

    Every array must be a CuPy array on the current device (``target_app``,
    ``active``, ``labels`` and ``out`` may be None), with ``style_app`` and
    ``jitter`` float32, ``table`` and ``app_bin`` int32 as
    :func:`~blit.styleblit.argmin_lookup_table` and
    :func:`~blit.styleblit.make_jitter` make them, and ``out`` C-contiguous.
    ``labels`` from :func:`~blit.styleblit.seed_labels`, moved to the device
    once per stream.

    Returns
    -------
    nnf : (H, W, 2) int32 cupy.ndarray
        Exemplar (x, y) per target pixel, equal to the CPU result.
    """
    cp = _cupy()
    args, out, keep = _prepare_lookup(cp, target_pos, target_app, style_app, table, app_bin, cell,
                                      params, jitter, origin=origin, active=active, labels=labels,
                                      out=out)
    if args is None:
        return out
    seed_kernel, lookup_kernel = _kernels(lookup_kernel_names(params.levels))
    nseeds, h, w = int(args["nseeds"][0]), int(args["h"][0]), int(args["w"][0])
    if nseeds:  # same stream: the lookup kernel sees every seed
        seed_kernel(((nseeds + 255) // 256,), (256,), (args,))
    lookup_kernel(((w + 31) // 32, (h + 7) // 8), (32, 8), (args,))
    del keep  # the launches are queued; CuPy's pool reuses memory in stream order
    return out


def blend(style, nnf, radius=1, *, out=None):
    """:func:`blit.blending.blend` on CuPy arrays: same arguments, same image.

    ``style`` (Hs, Ws, 3) uint8 and ``nnf`` (H, W, 2) int32 CuPy arrays;
    ``out``, if given, a C-contiguous (H, W, 3) uint8 CuPy array.

    Returns
    -------
    (H, W, 3) uint8 cupy.ndarray
    """
    cp = _cupy()
    args, out, keep = _prepare_blend(cp, style, nnf, radius, out)
    if args is None:
        return out
    (kernel,) = _kernels((blend_kernel_name(int(radius)),))
    h, w = int(args["h"][0]), int(args["w"][0])
    kernel(((w + 31) // 32, (h + 7) // 8), (32, 8), (args,))
    del keep
    return out
