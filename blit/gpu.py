"""CUDA backend: the StyleBlit lookup, blend and NNF mode filter, and the stream's propagation,
temporal filter, positional and appearance guides and composite, on CuPy arrays.

:func:`blit.styleblit.lookup`, :func:`blit.blending.blend` and
:func:`blit.blending.denoise_nnf` come here when
given CuPy arrays (the array type chooses the backend: NumPy runs the Numba
kernels, CuPy the CUDA kernels of ``blit/cuda/styleblit.cu``). The stream's
other per-frame kernels have their CUDA twins here, called directly:
:func:`propagate` and :func:`merge` (:func:`blit.stream.propagate` and the
stream's merge of the fresh lookup), :func:`temporal_filter`
(:func:`blit.temporal.temporal_filter`), :func:`positional_guide`
(:func:`guides.mls.positional_guide`), :func:`target_appearance`
(:func:`guides.appearance.target_appearance`), :func:`upsample_flow`
(:func:`blit.stream.upsample_flow`), :func:`outline_mask` and
:func:`enlarge_mask` (:func:`guides.mask.outline_mask`,
:func:`guides.mask.enlarge_mask`) and :func:`composite`
(:func:`guides.mask.composite`); :class:`blit.stream.Stylizer` runs them all
with ``device="cuda"``. The signatures, checks and results
are those of the CPU functions, plus the dtypes the kernels are written for
(float32 ``style_app`` and ``jitter``, int32 ``table`` and ``app_bin``, as
made by :mod:`blit.styleblit`) and C-contiguous arrays for what the kernels
write (``out``, ``history``, ``current`` filtered in place). Every array
argument must then live on the current GPU: a NumPy array among CuPy ones is
a ``TypeError`` naming it, never a hidden copy. Inside a call nothing crosses
between host and device except the kernels' small by-value argument structs
(the seed grid, a head mask's polygon and the positional guide's landmarks
travel in them). :func:`to_device` and :func:`to_host` are the stream's copies;
:class:`DeviceBuffers` holds its reused device arrays.

CuPy is imported only when a CuPy array arrives or :func:`available` /
:func:`resolve_device` is asked; ``import blit`` never touches CUDA.

The kernels are compiled by NVRTC on first use, once per device and
specialisation (levels of the lookup, blend radius 0, 1, 2 or any, mode
filter radius 1, 2 or any), and
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

from blit.blending import check_denoise_radius
from blit.styleblit import _check_jitter, _seed_grid
from blit.temporal import NO_HISTORY
from guides.buffers import Buffers
from guides.io import InputError
from guides.mask import MAX_POLYGON, MAX_RADIUS, MIN_WEIGHT, SAMPLES
from guides.mls import MAX_DEVICE_POINTS, _check_points, grid_layout

__all__ = ["CudaUnavailableError", "INSTALL_HINT", "available", "resolve_device", "lookup", "blend",
           "denoise_nnf", "propagate", "merge", "temporal_filter", "positional_guide", "composite",
           "target_appearance", "upsample_flow", "DeviceBuffers", "to_device", "to_host"]

#: What to install for ``device="cuda"``: the ``gpu`` extra (CuPy for CUDA 12).
INSTALL_HINT = ("pip install 'styleblit[gpu]' (in a checkout: pip install -e \".[gpu]\"; CuPy 13 "
                "for CUDA 12, cupy-cuda12x; it compiles the kernels with NVRTC from the CUDA 12 "
                "toolkit)")

#: NVRTC options. IEEE arithmetic without fused multiply-add, so that the
#: guide error is bit-identical to the Numba one (the header also uses the
#: non-fusing intrinsics); no fast math.
NVRTC_OPTIONS = ("--fmad=false",)

_MAX_LEVELS = 12
_BLEND_RADII = (0, 1, 2)  # specialised; other radii share sb_blend_kernel<-1>
_DENOISE_RADII = (1, 2)  # likewise for sb_denoise_kernel


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
# Device memory: reused work arrays, and the copies between host and device
# ---------------------------------------------------------------------------

class DeviceBuffers(Buffers):
    """:class:`guides.buffers.Buffers` on the device: named flat CuPy arrays
    that grow as needed, handed out as C-contiguous views, so that a warm
    stream takes its device work arrays without allocating. Same contract:
    an array is overwritten the next time its name is asked for."""

    def __init__(self):
        super().__init__(empty=_cupy().empty)


def _take(xp, buffers, name, shape, dtype):
    """``buffers.get(name, shape, dtype)``, or a new ``xp`` array without buffers."""
    return xp.empty(shape, dtype) if buffers is None else buffers.get(name, shape, dtype)


def empty_pinned(n, dtype):
    """A flat host array of ``n`` ``dtype`` values in page-locked (pinned)
    memory, from CuPy's pinned memory pool: a copy to or from the device
    reads or writes it directly, without the driver's staging copy. A NumPy
    array like any other on the host."""
    dtype = np.dtype(dtype)
    memory = _cupy().cuda.alloc_pinned_memory(max(n, 1) * dtype.itemsize)
    return np.ndarray((n,), dtype, buffer=memory)


def to_device(host, out=None):
    """One copy of a host array to the device: into ``out`` (a C-contiguous
    CuPy array of its shape and dtype), or into a new array. The stream moves
    its inputs with this function only, so every copy has one place."""
    host = np.ascontiguousarray(host)
    if out is None:
        out = _cupy().empty(host.shape, host.dtype)
    out.set(host)
    return out


def to_host(device, out=None):
    """One copy of a CuPy array to the host (waits for the kernels that
    write it): into ``out`` (a C-contiguous NumPy array of its shape and
    dtype), or into a new array."""
    return device.get(out=out)


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


def denoise_kernel_name(radius):
    """Name expression of the NNF mode filter's kernel for ``radius``."""
    return f"sb_denoise_kernel<{radius if radius in _DENOISE_RADII else -1}>"


def propagate_kernel_name(use_flow):
    """Name expression of the propagation kernel: along the flow or the guide."""
    return f"sb_propagate_kernel<{int(bool(use_flow))}>"


MERGE_KERNEL = "sb_merge_kernel"


TEMPORAL_ROUND_KERNEL = "sb_temporal_round_kernel"


def temporal_kernel_names(clamp):
    """Name expressions of the temporal filter's two passes: the history (with
    or without the clamp), then the rounding into ``current``."""
    return f"sb_temporal_kernel<{int(bool(clamp))}>", TEMPORAL_ROUND_KERNEL


UPSAMPLE_KERNEL = "sb_upsample_kernel"
MLS_KERNEL = "sb_mls_nodes_kernel"
COMPOSITE_KERNEL = "sb_composite_kernel"
#: The appearance guide's kernels, in the order of their launches.
APPEARANCE_KERNELS = ("sb_gray_kernel", "sb_pyrdown_kernel", "sb_detail_count_kernel",
                      "sb_detail_table_kernel", "sb_detail_map_kernel")
_TABLE_BINS = 512  # sb::kBins: the table kernel's threads, one block
FLOW_UP_KERNEL = "sb_flow_up_kernel"
MASK_UP_KERNEL = "sb_mask_up_kernel"
#: The DIS flow's kernels (gpu.dis_flow).
DIS_KERNELS = ("sb_dis_halve_kernel", "sb_dis_sobel_kernel", "sb_dis_tensor_kernel",
               "sb_dis_search_kernel", "sb_dis_densify_kernel", "sb_dis_up_kernel")
#: The head mask's kernels from its outline, in the order of their launches
#: (then MASK_UP_KERNEL): coverage, share, blur along x, along y.
MASK_KERNELS = ("sb_mask_cover_kernel", "sb_mask_norm_kernel", "sb_mask_blur_kernel<1>",
                "sb_mask_blur_kernel<0>")


def kernel_names():
    """Every specialisation the public functions may compile."""
    names = [n for levels in range(1, _MAX_LEVELS + 1) for n in lookup_kernel_names(levels)]
    names += [blend_kernel_name(r) for r in (*_BLEND_RADII, -1)]
    names += [denoise_kernel_name(r) for r in (*_DENOISE_RADII, -1)]
    names += [propagate_kernel_name(f) for f in (True, False)] + [MERGE_KERNEL]
    names += [temporal_kernel_names(c)[0] for c in (True, False)]
    return names + [TEMPORAL_ROUND_KERNEL, MLS_KERNEL, UPSAMPLE_KERNEL, COMPOSITE_KERNEL,
                    *APPEARANCE_KERNELS,
                    FLOW_UP_KERNEL, *MASK_KERNELS, MASK_UP_KERNEL, *DIS_KERNELS]


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
DENOISE_ARGS = np.dtype(
    [(name, np.uint64) for name in ("nnf", "out")]
    + [(name, np.int32) for name in ("h", "w", "hs", "ws", "radius")],
    align=True)
PROPAGATE_ARGS = np.dtype(
    [(name, np.uint64) for name in ("prev_src", "prev_pos", "flow", "tpos", "tapp", "active", "sapp",
                                    "src", "nnf", "need")]
    + [(name, np.float64) for name in ("jxx", "jxy", "jyx", "jyy")]
    + [(name, np.int32) for name in ("h", "w", "ox", "oy", "ph", "pw", "pox", "poy", "fw", "fox",
                                     "foy", "hs", "ws", "iterations")]
    + [(name, np.float32) for name in ("lam_pos", "lam_app", "threshold")],
    align=True)
MERGE_ARGS = np.dtype(
    [(name, np.uint64) for name in ("fresh", "need", "nnf", "src")]
    + [(name, np.int32) for name in ("h", "w")],
    align=True)
TEMPORAL_ARGS = np.dtype(
    [(name, np.uint64) for name in ("current", "active", "prev", "flow", "hist")]
    + [(name, np.int32) for name in ("h", "w", "ph", "pw", "pox", "poy", "fw", "fox", "foy", "ox",
                                     "oy")]
    + [("alpha", np.float32)],
    align=True)
MLS_ARGS = np.dtype(
    [("nodes", np.uint64), ("step_x", np.float64), ("step_y", np.float64)]
    + [(name, np.int32) for name in ("n", "h", "w")]
    + [("points", np.float64, (4 * MAX_DEVICE_POINTS,))],
    align=True)
UPSAMPLE_ARGS = np.dtype(
    [("nodes", np.uint64), ("out", np.uint64), ("sx", np.float64), ("sy", np.float64)]
    + [(name, np.int32) for name in ("h", "w", "gh", "gw")],
    align=True)
COMPOSITE_ARGS = np.dtype(
    [(name, np.uint64) for name in ("out", "fg", "mask")]
    + [(name, np.int32) for name in ("h", "w", "x0", "y0", "fw")] + [("min_weight", np.float32)],
    align=True)
GRAY_ARGS = np.dtype(
    [("image", np.uint64), ("out", np.uint64), ("stride", np.int64), ("h", np.int32),
     ("w", np.int32)],
    align=True)
PYRDOWN_ARGS = np.dtype(
    [("src", np.uint64), ("out", np.uint64), ("stride", np.int64)]
    + [(name, np.int32) for name in ("h", "w", "sh", "sw")],
    align=True)
FLOW_UP_ARGS = np.dtype(
    [("half", np.uint64), ("out", np.uint64)]
    + [(name, np.int32) for name in ("h", "w", "hh", "hw", "top", "left", "oh", "ow")],
    align=True)
MASK_ARGS = np.dtype(
    [(name, np.uint64) for name in ("counts", "small", "row", "blur")]
    + [(name, np.int32) for name in ("sh", "sw", "f", "n", "radius", "delta", "rows")]
    + [("polygon", np.int32, (2 * MAX_POLYGON,)), ("taps", np.float32, (MAX_RADIUS + 1,))],
    align=True)
MASK_UP_ARGS = np.dtype(
    [("small", np.uint64), ("out", np.uint64)]
    + [(name, np.int32) for name in ("h", "w", "sh", "sw", "gh", "gw", "ox", "oy")],
    align=True)
DETAIL_ARGS = np.dtype(
    [(name, np.uint64) for name in ("gray", "small", "mask", "blur", "counts", "quantiles",
                                    "table", "out")]
    + [(name, np.int32) for name in ("h", "w", "sh", "sw", "nq")],
    align=True)

DIS_ARGS = np.dtype(
    [(name, np.uint64) for name in ("i0", "i1", "half0", "half1", "gx", "gy", "tensor", "flow",
                                    "s_in", "s_out", "small")]
    + [(name, np.int32) for name in ("h", "w", "sh", "sw", "hs", "ws", "patch", "stride", "steps",
                                     "first")],
    align=True)


def _ptr(a):
    """Address of an array's first element (0 for None): host or device."""
    if a is None:
        return 0
    return a.ctypes.data if isinstance(a, np.ndarray) else a.data.ptr


def _pack(dtype, arrays, values):
    """The (1,) argument struct of ``dtype``: ``arrays`` by address (None: 0),
    ``values`` as they are."""
    args = np.zeros(1, dtype)
    for name, a in arrays.items():
        args[name] = _ptr(a)
    for name, v in values.items():
        args[name] = v
    return args


def _launch_pixels(kernel, args):
    """Launch ``kernel`` with one thread per pixel of ``args``' (h, w)."""
    h, w = int(args["h"][0]), int(args["w"][0])
    kernel(((w + 31) // 32, (h + 7) // 8), (32, 8), (args,))


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


def _check_style_app(style_app):
    """The exemplar's appearance guide as the kernels read it."""
    if style_app.ndim != 2:
        raise ValueError(f"style_app: expected (Hs, Ws), got shape {style_app.shape}")
    if style_app.dtype != np.float32:
        raise TypeError(f"style_app: expected float32, got {style_app.dtype}")


def _check_written(name, a, shape, dtype):
    """An array a kernel writes: ``shape``, ``dtype``, C-contiguous."""
    if a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous {shape} {np.dtype(dtype)} array, "
                         f"got {a.shape} {a.dtype}" + ("" if a.flags.c_contiguous else ", strided"))


def _cover_flow(xp, flow, origin, flow_origin, h, w, what):
    """The flow as a contiguous float32 array and its frame position
    ``(fox, foy)``, checked to cover the (h, w) ``what`` at ``origin``."""
    fox, foy = (int(v) for v in (origin if flow_origin is None else flow_origin))
    bx, by = int(origin[0]) - fox, int(origin[1]) - foy
    if (flow.ndim != 3 or flow.shape[2] != 2 or bx < 0 or by < 0
            or flow.shape[0] < by + h or flow.shape[1] < bx + w):
        raise ValueError(f"flow: expected (>= {by + h}, >= {bx + w}, 2) to cover the {what} "
                         f"from flow_origin {(fox, foy)}, got {flow.shape}")
    return xp.ascontiguousarray(flow, dtype=xp.float32), fox, foy


def _prepare_lookup(xp, target_pos, target_app, style_app, table, app_bin, cell, params, jitter,
                    *, origin=(0, 0), active=None, labels=None, out=None, buffers=None):
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
        target_app = _take(xp, buffers, "lookup_no_app", (h, w), xp.float32)
        target_app[...] = 0.0
        lam_app = 0.0
    target_app = xp.ascontiguousarray(target_app, dtype=xp.float32)
    if target_app.shape != (h, w):
        raise ValueError(f"target_app: expected shape {(h, w)}, got {target_app.shape}")
    _check_jitter(jitter, params.levels)
    if jitter.dtype != np.float32:
        raise TypeError(f"jitter: expected float32 (make_jitter), got {jitter.dtype}")
    if not 1 <= params.levels <= _MAX_LEVELS:
        raise ValueError(f"levels: expected 1..{_MAX_LEVELS}, got {params.levels}")
    _check_style_app(style_app)
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
    seeds = _take(xp, buffers, "lookup_seeds", (max(nseeds, 1), 4), xp.int32)
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


def _prepare_denoise(xp, nnf, radius, style_shape, out):
    """Check and convert the arguments of :func:`denoise_nnf` for ``xp`` (the
    checks of :func:`blit.blending.denoise_nnf`); returns ``(args, out,
    keep)`` like :func:`_prepare_lookup`."""
    _check_module(xp, nnf=nnf, out=out)
    if nnf.ndim != 3 or nnf.shape[2] != 2 or nnf.dtype != np.int32:
        raise ValueError(f"nnf: expected (H, W, 2) int32, got {nnf.shape} {nnf.dtype}")
    check_denoise_radius(radius)
    h, w = nnf.shape[:2]
    if out is None:
        out = xp.empty((h, w, 2), xp.int32)
    elif out.shape != nnf.shape or out.dtype != np.int32 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous {nnf.shape} int32 array, "
                         f"got {out.shape} {out.dtype}")
    elif xp.may_share_memory(out, nnf):  # (bounds only: cupy.shares_memory runs kernels)
        raise ValueError("out: must not share memory with nnf (the filter reads the neighbours)")
    if h == 0 or w == 0:
        return None, out, ()
    keep = (xp.ascontiguousarray(nnf), out)
    args = np.zeros(1, DENOISE_ARGS)
    args["nnf"], args["out"] = (_ptr(a) for a in keep)
    args["h"], args["w"] = h, w
    args["hs"], args["ws"] = int(style_shape[0]), int(style_shape[1])
    args["radius"] = int(radius)
    return args, out, keep


def _prepare_propagate(xp, prev_src, target_pos, target_app, style_app, params, *, flow=None,
                       flow_origin=None, prev_pos=None, inverse_jacobian=None, iterations=1,
                       prev_origin=(0, 0), origin=(0, 0), active=None, out=None, buffers=None):
    """Check and convert the arguments of :func:`propagate` for ``xp`` (the
    checks of :func:`blit.stream.propagate`, in its order) and pack
    :data:`PROPAGATE_ARGS`. Returns ``(args, out, keep)``; ``args`` None
    when the box is empty."""
    src_out, nnf_out, need_out = (None, None, None) if out is None else out
    _check_module(xp, prev_src=prev_src, target_pos=target_pos, target_app=target_app,
                  style_app=style_app, flow=flow, prev_pos=prev_pos, active=active,
                  src=src_out, nnf=nnf_out, need=need_out)
    prev_src = xp.ascontiguousarray(prev_src, dtype=xp.float32)
    target_pos = xp.ascontiguousarray(target_pos, dtype=xp.float32)
    if target_pos.ndim != 3 or target_pos.shape[2] != 2:
        raise ValueError(f"target_pos: expected (H, W, 2), got shape {target_pos.shape}")
    if prev_src.ndim != 3 or prev_src.shape[2] != 2:
        raise ValueError(f"prev_src: expected (Hp, Wp, 2), got shape {prev_src.shape}")
    h, w = target_pos.shape[:2]
    lam_app = params.lam_app
    if target_app is None:
        target_app = _take(xp, buffers, "propagate_no_app", (h, w), xp.float32)
        target_app[...] = 128.0
        lam_app = 0.0
    target_app = xp.ascontiguousarray(target_app, dtype=xp.float32)
    if target_app.shape != (h, w):
        raise ValueError(f"target_app: expected shape {(h, w)}, got {target_app.shape}")
    if active is not None:
        if active.shape != (h, w):
            raise ValueError(f"active: expected shape {(h, w)}, got {active.shape}")
        active = xp.ascontiguousarray(active, dtype=xp.bool_)
    _check_style_app(style_app)
    j = np.zeros((2, 2))
    fox = foy = 0
    if flow is not None:
        flow, fox, foy = _cover_flow(xp, flow, origin, flow_origin, h, w, "box")
        prev_pos = None
    else:
        if prev_pos is None or inverse_jacobian is None:
            raise ValueError("prev_pos, inverse_jacobian: required without flow")
        prev_pos = xp.ascontiguousarray(prev_pos, dtype=xp.float32)
        if prev_pos.shape != prev_src.shape:
            raise ValueError(f"prev_pos: expected shape {prev_src.shape}, got {prev_pos.shape}")
        if iterations < 0:
            raise ValueError(f"iterations: expected >= 0, got {iterations}")
        j = np.asarray(inverse_jacobian, np.float64)  # host values, passed by value
        if j.shape != (2, 2):
            raise ValueError(f"inverse_jacobian: expected (2, 2), got shape {j.shape}")
    if out is None:
        out = (xp.empty((h, w, 2), xp.float32), xp.empty((h, w, 2), xp.int32),
               xp.empty((h, w), xp.bool_))
    else:
        for name, a, shape, dtype in zip(("src", "nnf", "need"), out,
                                         ((h, w, 2), (h, w, 2), (h, w)),
                                         (np.float32, np.int32, np.bool_)):
            _check_written(f"out ({name})", a, shape, dtype)
        out = tuple(out)
    if h == 0 or w == 0:
        return None, out, ()
    style_app = xp.ascontiguousarray(style_app)
    keep = (prev_src, prev_pos, flow, target_pos, target_app, active, style_app, *out)
    ph, pw = prev_src.shape[:2]
    hs, ws = style_app.shape
    args = _pack(PROPAGATE_ARGS,
                 dict(zip(("prev_src", "prev_pos", "flow", "tpos", "tapp", "active", "sapp", "src",
                           "nnf", "need"), keep)),
                 dict(jxx=j[0, 0], jxy=j[0, 1], jyx=j[1, 0], jyy=j[1, 1], h=h, w=w,
                      ox=int(origin[0]), oy=int(origin[1]), ph=ph, pw=pw,
                      pox=int(prev_origin[0]), poy=int(prev_origin[1]),
                      fw=0 if flow is None else flow.shape[1], fox=fox, foy=foy, hs=hs, ws=ws,
                      iterations=int(iterations), lam_pos=np.float32(params.lam_pos),
                      lam_app=np.float32(lam_app), threshold=np.float32(params.threshold)))
    return args, out, keep


def _prepare_merge(xp, fresh, need, nnf, src):
    """Check the arguments of :func:`merge` and pack :data:`MERGE_ARGS`;
    returns ``(args, keep)``, ``args`` None when empty."""
    _check_module(xp, fresh=fresh, need=need, nnf=nnf, src=src)
    if need.ndim != 2:
        raise ValueError(f"need: expected (H, W), got shape {need.shape}")
    h, w = need.shape
    if fresh.shape != (h, w, 2) or fresh.dtype != np.int32:
        raise ValueError(f"fresh: expected {(h, w, 2)} int32, got {fresh.shape} {fresh.dtype}")
    _check_written("nnf", nnf, (h, w, 2), np.int32)
    _check_written("src", src, (h, w, 2), np.float32)
    if h == 0 or w == 0:
        return None, ()
    keep = (xp.ascontiguousarray(fresh), xp.ascontiguousarray(need, dtype=xp.bool_), nnf, src)
    return _pack(MERGE_ARGS, dict(zip(("fresh", "need", "nnf", "src"), keep)), dict(h=h, w=w)), keep


def _prepare_temporal(xp, current, prev_history, flow, alpha, *, active=None, origin=(0, 0),
                      prev_origin=(0, 0), flow_origin=None, history=None):
    """Check the arguments of :func:`temporal_filter` (those of
    :func:`blit.temporal.temporal_filter`, in its order) and pack
    :data:`TEMPORAL_ARGS`. Without a history to mix, does what the CPU
    function does then (array operations, no kernel) and returns ``args``
    None. Returns ``(args, history, keep)``."""
    _check_module(xp, current=current, prev_history=prev_history, flow=flow, active=active,
                  history=history)
    if current.dtype != np.uint8 or current.ndim != 3 or current.shape[2] != 3:
        raise ValueError(f"current: expected (H, W, 3) uint8, got {current.shape} {current.dtype}")
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha: expected a weight in [0, 1), got {alpha}")
    h, w = current.shape[:2]
    if active is not None:
        if active.shape != (h, w):
            raise ValueError(f"active: expected shape {(h, w)}, got {active.shape}")
        active = xp.ascontiguousarray(active, dtype=xp.bool_)
    if history is None:
        history = xp.empty((h, w, 3), xp.float32)
    else:
        _check_written("history", history, (h, w, 3), np.float32)
    _check_written("current (filtered in place)", current, (h, w, 3), np.uint8)
    if prev_history is None or flow is None or alpha == 0.0:
        # no history to mix: this frame's output is the history (copyto, not
        # a boolean index: no count of the mask read back to the host)
        history[...] = current
        if active is not None:
            xp.copyto(history[..., 0], NO_HISTORY, where=~active)
        return None, history, ()
    if prev_history.ndim != 3 or prev_history.shape[2] != 3 or prev_history.dtype != np.float32:
        raise ValueError(f"prev_history: expected (Hp, Wp, 3) float32, got {prev_history.shape} "
                         f"{prev_history.dtype}")
    flow, fox, foy = _cover_flow(xp, flow, origin, flow_origin, h, w, "region")
    if h == 0 or w == 0:
        return None, history, ()
    prev_history = xp.ascontiguousarray(prev_history)
    keep = (current, active, prev_history, flow, history)  # current: rounded into by the second pass
    ph, pw = prev_history.shape[:2]
    args = _pack(TEMPORAL_ARGS, dict(zip(("current", "active", "prev", "flow", "hist"), keep)),
                 dict(h=h, w=w, ph=ph, pw=pw, pox=int(prev_origin[0]), poy=int(prev_origin[1]),
                      fw=flow.shape[1], fox=fox, foy=foy, ox=int(origin[0]), oy=int(origin[1]),
                      alpha=np.float32(alpha)))
    return args, history, keep


def _prepare_upsample(xp, nodes, out):
    """Check ``out`` (the (h, w, 2) guide the kernel writes) and pack
    :data:`UPSAMPLE_ARGS` for the (gh, gw, 2) ``nodes``."""
    _check_module(xp, nodes=nodes, out=out)
    h, w = out.shape[:2]
    _check_written("out", out, (h, w, 2), np.float32)
    gh, gw = nodes.shape[:2]
    nodes = xp.ascontiguousarray(nodes, dtype=xp.float32)
    args = _pack(UPSAMPLE_ARGS, dict(nodes=nodes, out=out),
                 dict(sx=(gw - 1) / max(w - 1, 1), sy=(gh - 1) / max(h - 1, 1), h=h, w=w, gh=gh,
                      gw=gw))
    return args, (nodes, out)


def _prepare_composite(xp, background, foreground, region, out):
    """The checks of :func:`guides.mask.composite` and :data:`COMPOSITE_ARGS`
    (None for an empty box); ``out`` filled with ``background`` first."""
    mask = region.mask
    _check_module(xp, background=background, foreground=foreground, mask=mask, out=out)
    if out is None:
        out = background.copy()
    elif out is not background:
        out[...] = background
    x0, y0, x1, y1 = (int(v) for v in region.box)
    if foreground.shape[:2] != (y1 - y0, x1 - x0):
        raise ValueError(f"foreground: expected shape {(y1 - y0, x1 - x0, 3)}, got {foreground.shape}")
    if not (x1 > x0 and y1 > y0):
        return None, out, ()
    h, w = y1 - y0, x1 - x0
    _check_written("out", out, out.shape, np.uint8)
    if out.ndim != 3 or out.shape[2] != 3 or y1 > out.shape[0] or x1 > out.shape[1] or x0 < 0 or y0 < 0:
        raise ValueError(f"out: expected (H, W, 3) holding the box {region.box}, got {out.shape}")
    if mask.shape != (h, w) or mask.dtype != np.float32:
        raise ValueError(f"region.mask: expected {(h, w)} float32, got {mask.shape} {mask.dtype}")
    keep = (out, xp.ascontiguousarray(foreground, dtype=xp.uint8), xp.ascontiguousarray(mask))
    args = _pack(COMPOSITE_ARGS, dict(zip(("out", "fg", "mask"), keep)),
                 dict(h=h, w=w, x0=x0, y0=y0, fw=out.shape[1], min_weight=MIN_WEIGHT))
    return args, out, keep


# ---------------------------------------------------------------------------
# Public functions (reached through blit.styleblit.lookup / blit.blending.blend)
# ---------------------------------------------------------------------------

def lookup(target_pos, target_app, style_app, table, app_bin, cell, params, jitter,
           *, origin=(0, 0), active=None, labels=None, out=None, buffers=None):
    """:func:`blit.styleblit.lookup` on CuPy arrays: same arguments, same NNF.

    Every array must be a CuPy array on the current device (``target_app``,
    ``active``, ``labels`` and ``out`` may be None), with ``style_app`` and
    ``jitter`` float32, ``table`` and ``app_bin`` int32 as
    :func:`~blit.styleblit.argmin_lookup_table` and
    :func:`~blit.styleblit.make_jitter` make them, and ``out`` C-contiguous.
    ``labels`` from :func:`~blit.styleblit.seed_labels`, moved to the device
    once per stream. ``buffers``: a :class:`DeviceBuffers` to take the work
    arrays from (names ``"lookup_*"``), or None: new arrays.

    Returns
    -------
    nnf : (H, W, 2) int32 cupy.ndarray
        Exemplar (x, y) per target pixel, equal to the CPU result.
    """
    cp = _cupy()
    args, out, keep = _prepare_lookup(cp, target_pos, target_app, style_app, table, app_bin, cell,
                                      params, jitter, origin=origin, active=active, labels=labels,
                                      out=out, buffers=buffers)
    if args is None:
        return out
    seed_kernel, lookup_kernel = _kernels(lookup_kernel_names(params.levels))
    nseeds = int(args["nseeds"][0])
    if nseeds:  # same stream: the lookup kernel sees every seed
        seed_kernel(((nseeds + 255) // 256,), (256,), (args,))
    _launch_pixels(lookup_kernel, args)
    del keep  # the launches are queued; CuPy's pool reuses memory in stream order
    return out


def blend(style, nnf, radius=1, *, out=None, packed=None):
    """:func:`blit.blending.blend` on CuPy arrays: same arguments, same image.

    ``style`` (Hs, Ws, 3) uint8 and ``nnf`` (H, W, 2) int32 CuPy arrays;
    ``out``, if given, a C-contiguous (H, W, 3) uint8 CuPy array. ``packed``
    is ignored: the CUDA kernel reads ``style`` itself.

    Returns
    -------
    (H, W, 3) uint8 cupy.ndarray
    """
    cp = _cupy()
    args, out, keep = _prepare_blend(cp, style, nnf, radius, out)
    if args is None:
        return out
    (kernel,) = _kernels((blend_kernel_name(int(radius)),))
    _launch_pixels(kernel, args)
    del keep
    return out


def denoise_nnf(nnf, radius, style_shape, *, out=None, buffers=None):
    """:func:`blit.blending.denoise_nnf` on CuPy arrays: same arguments, same NNF.

    ``nnf`` an (H, W, 2) int32 CuPy array; ``out``, if given, a C-contiguous
    (H, W, 2) int32 CuPy array apart from ``nnf``. ``buffers`` is ignored:
    the kernel needs no work array.

    Returns
    -------
    (H, W, 2) int32 cupy.ndarray
    """
    cp = _cupy()
    args, out, keep = _prepare_denoise(cp, nnf, radius, style_shape, out)
    if args is None:
        return out
    (kernel,) = _kernels((denoise_kernel_name(int(radius)),))
    _launch_pixels(kernel, args)
    del keep
    return out


def propagate(prev_src, target_pos, target_app, style_app, params, *, flow=None, flow_origin=None,
              prev_pos=None, inverse_jacobian=None, iterations=1, prev_origin=(0, 0),
              origin=(0, 0), active=None, out=None, buffers=None):
    """:func:`blit.stream.propagate` on CuPy arrays: same arguments, same result.

    Every array a CuPy array on the current device (``target_app``, ``flow``,
    ``prev_pos``, ``active`` and ``out`` may be None), ``style_app`` float32;
    ``inverse_jacobian`` a host (2, 2) array (four numbers passed by value,
    like ``params``); ``out``, if given, three C-contiguous arrays (H, W, 2)
    float32, (H, W, 2) int32 and (H, W) bool; ``buffers`` a
    :class:`DeviceBuffers` (names ``"propagate_*"``) or None.

    Returns
    -------
    src, nnf, need : cupy.ndarray
        As :func:`blit.stream.propagate`, equal to the CPU result.
    """
    cp = _cupy()
    args, out, keep = _prepare_propagate(cp, prev_src, target_pos, target_app, style_app, params,
                                         flow=flow, flow_origin=flow_origin, prev_pos=prev_pos,
                                         inverse_jacobian=inverse_jacobian, iterations=iterations,
                                         prev_origin=prev_origin, origin=origin, active=active,
                                         out=out, buffers=buffers)
    if args is None:
        return out
    (kernel,) = _kernels((propagate_kernel_name(flow is not None),))
    _launch_pixels(kernel, args)
    del keep
    return out


def merge(fresh, need, nnf, src):
    """Where ``need``, take the fresh lookup's entry into ``nnf`` and make it
    the source in ``src`` (in place), as the stream does after
    :func:`propagate` and the lookup of the needed pixels.

    ``fresh`` (H, W, 2) int32 and ``need`` (H, W) bool CuPy arrays; ``nnf``
    (H, W, 2) int32 and ``src`` (H, W, 2) float32 C-contiguous CuPy arrays,
    updated in place.
    """
    cp = _cupy()
    args, keep = _prepare_merge(cp, fresh, need, nnf, src)
    if args is not None:
        (kernel,) = _kernels((MERGE_KERNEL,))
        _launch_pixels(kernel, args)
    del keep


def temporal_filter(current, prev_history, flow, alpha, *, active=None, clamp=True,
                    origin=(0, 0), prev_origin=(0, 0), flow_origin=None, history=None,
                    buffers=None):
    """:func:`blit.temporal.temporal_filter` on CuPy arrays: same arguments,
    same history and output (``buffers`` is unused: the kernel finds each
    pixel's 3x3 range itself).

    ``current`` (H, W, 3) uint8 and ``history``, if given, C-contiguous (the
    kernels write them). Two launches: the clamp reads the neighbours'
    unfiltered values, so the rounding into ``current`` is a second pass.

    Returns
    -------
    (H, W, 3) float32 cupy.ndarray
        This frame's history, for the next call.
    """
    cp = _cupy()
    args, history, keep = _prepare_temporal(cp, current, prev_history, flow, alpha, active=active,
                                            origin=origin, prev_origin=prev_origin,
                                            flow_origin=flow_origin, history=history)
    if args is None:
        return history
    for kernel in _kernels(temporal_kernel_names(clamp)):
        _launch_pixels(kernel, args)  # in order, on one stream
    del keep
    return history


def positional_guide(shape, target_landmarks, style_landmarks, *, grid=10, out=None):
    """:func:`guides.mls.positional_guide` into a CuPy array: same arguments,
    same guide, bit for bit.

    Nothing is copied: the two landmark sets (at most
    :data:`guides.mls.MAX_DEVICE_POINTS` each, as float64) travel in the
    kernel's by-value argument struct (:data:`MLS_ARGS`). The MLS map is
    evaluated on the device at its grid nodes (one thread per node, one per
    ``grid`` pixels each way: (ceil((H - 1) / grid) + 1) x (ceil((W - 1) /
    grid) + 1) nodes) and interpolated to every pixel.

    Parameters
    ----------
    shape : (int, int)
    target_landmarks, style_landmarks : (68, 2) float32 host ndarray
    grid : int
    out : (H, W, 2) float32 cupy.ndarray, optional; C-contiguous.

    Returns
    -------
    (H, W, 2) float32 cupy.ndarray
    """
    cp = _cupy()
    gh, gw, step_x, step_y = grid_layout(shape, grid)
    src, dst = _check_points(target_landmarks, style_landmarks)
    if out is None:
        out = cp.empty((int(shape[0]), int(shape[1]), 2), cp.float32)
    elif out.shape != (int(shape[0]), int(shape[1]), 2):
        raise ValueError(f"out: expected a contiguous ({shape[0]}, {shape[1]}, 2) float32 array, "
                         f"got {out.shape} {out.dtype}")
    if src.shape[0] > MAX_DEVICE_POINTS:
        raise ValueError(f"landmarks: at most {MAX_DEVICE_POINTS} points on the device, got "
                         f"{src.shape[0]}")
    nodes = cp.empty((gh, gw, 2), cp.float32)
    args, keep = _prepare_upsample(cp, nodes, out)
    mls_args = _pack(MLS_ARGS, dict(nodes=nodes),
                     dict(step_x=step_x, step_y=step_y, n=src.shape[0], h=gh, w=gw))
    mls_args["points"][0, :4 * src.shape[0]] = np.concatenate([src.ravel(), dst.ravel()])
    mls_kernel, kernel = _kernels((MLS_KERNEL, UPSAMPLE_KERNEL))
    _launch_pixels(mls_kernel, mls_args)
    _launch_pixels(kernel, args)
    del keep
    return out


def composite(background, foreground, region, *, out=None):
    """:func:`guides.mask.composite` on CuPy arrays: same arguments, same image.

    ``background`` (H, W, 3) uint8, ``foreground`` the box's (h, w, 3)
    uint8 and ``region.mask`` (h, w) float32 CuPy arrays (``region`` a
    :class:`guides.mask.HeadRegion`, its mask moved to the device); ``out``,
    if given, a C-contiguous (H, W, 3) uint8 CuPy array, possibly
    ``background`` itself. One launch over the box.

    Returns
    -------
    (H, W, 3) uint8 cupy.ndarray
    """
    cp = _cupy()
    args, out, keep = _prepare_composite(cp, background, foreground, region, out)
    if args is not None:
        (kernel,) = _kernels((COMPOSITE_KERNEL,))
        _launch_pixels(kernel, args)
    del keep
    return out


def _check_rows(name, image, channels):
    """An (H, W[, channels]) uint8 image whose pixels' bytes are contiguous
    (its rows may lie apart: a box of a C-contiguous image)."""
    shape = image.shape[2:] if channels > 1 else ()
    if (image.dtype != np.uint8 or image.ndim != (3 if channels > 1 else 2)
            or shape not in ((), (channels,))):
        what = f"(H, W, {channels})" if channels > 1 else "(H, W)"
        raise ValueError(f"{name}: expected an {what} uint8 image, got {image.shape} {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one pixel, got {image.shape}")
    if image.strides[1:] != ((channels, 1) if channels > 1 else (1,)):
        raise ValueError(f"{name}: expected its pixels' bytes contiguous (a box of a C-contiguous "
                         f"image), got strides {image.strides}")


def luminance(image, *, out=None):
    """The luminance of a BGR image as the appearance guide makes it
    (``guides.appearance._gray_kernel``: BT.601 in 14-bit fixed point,
    rounded), on CuPy arrays, bit for bit. ``image`` (H, W, 3) uint8 with
    its pixels' bytes contiguous (a box of a frame, read in place); ``out``
    a C-contiguous (H, W) uint8 array. One launch.

    Returns
    -------
    (H, W) uint8 cupy.ndarray
    """
    cp = _cupy()
    _check_module(cp, image=image, out=out)
    _check_rows("image", image, 3)
    h, w = image.shape[:2]
    if out is None:
        out = cp.empty((h, w), cp.uint8)
    _check_written("out", out, (h, w), np.uint8)
    kernel = _kernels(APPEARANCE_KERNELS)[0]  # (one module with the appearance guide's)
    _launch_pixels(kernel, _pack(GRAY_ARGS, dict(image=image, out=out),
                                 dict(stride=image.strides[0], h=h, w=w)))
    return out


def pyr_down(src, *, out=None):
    """``cv2.pyrDown`` of an (H, W) uint8 image on CuPy arrays, bit for bit:
    ((H + 1) // 2, (W + 1) // 2). ``src``'s rows may lie apart (a box of an
    image, read in place); ``out`` a C-contiguous array of that size. One
    launch.

    Returns
    -------
    cupy.ndarray
    """
    cp = _cupy()
    _check_module(cp, src=src, out=out)
    _check_rows("src", src, 1)
    sh, sw = src.shape
    size = ((sh + 1) // 2, (sw + 1) // 2)
    if out is None:
        out = cp.empty(size, cp.uint8)
    _check_written("out", out, size, np.uint8)
    kernel = _kernels(APPEARANCE_KERNELS)[1]
    _launch_pixels(kernel, _pack(PYRDOWN_ARGS, dict(src=src, out=out),
                                 dict(stride=src.strides[0], h=size[0], w=size[1], sh=sh, sw=sw)))
    return out


def target_appearance(image, style_quantiles, mask=None, *, buffers=None, out=None):
    """:func:`guides.appearance.target_appearance` on CuPy arrays: same
    arguments, same guide, bit for bit.

    ``image`` (H, W, 3) uint8 with its pixels' bytes contiguous (a box of
    a frame on the device, read in place), ``style_quantiles`` float32,
    ``mask`` (H, W) and ``out`` (H, W) float32 C-contiguous; ``buffers``
    a :class:`DeviceBuffers` for the work arrays (names ``"detail*"`` and
    ``"match*"``). Seven kernel launches (the luminance, the pyramid's three levels,
    the blur and the detail's counts, the matching table, the guide); nothing
    crosses between host and device (the counts are zeroed there, by a fill).

    Returns
    -------
    (H, W) float32 cupy.ndarray
    """
    cp = _cupy()
    _check_module(cp, image=image, style_quantiles=style_quantiles, mask=mask, out=out)
    _check_rows("image", image, 3)
    h, w = image.shape[:2]
    if mask is not None:
        if mask.shape != (h, w):
            raise ValueError(f"mask: expected shape {(h, w)}, got {mask.shape}")
        mask = cp.ascontiguousarray(mask, dtype=cp.float32)
    quantiles = cp.ascontiguousarray(style_quantiles, dtype=cp.float32)
    if quantiles.ndim != 1 or quantiles.size < 2:
        raise ValueError(f"style_quantiles: expected (Q,) with Q >= 2, got {quantiles.shape}")
    if out is None:
        out = cp.empty((h, w), cp.float32)
    _check_written("out", out, (h, w), np.float32)
    _, _, count_k, table_k, map_k = _kernels(APPEARANCE_KERNELS)
    gray = luminance(image, out=_take(cp, buffers, "detail_gray", (h, w), np.uint8))
    small = gray
    for i in range(3):
        size = ((small.shape[0] + 1) // 2, (small.shape[1] + 1) // 2)
        small = pyr_down(small, out=_take(cp, buffers, f"detail_down{i}", size, np.uint8))
    blur = _take(cp, buffers, "detail_up", (h, w), np.uint8)
    counts = _take(cp, buffers, "match_counts", (2, 511), np.uint32)
    counts.fill(0)
    table = _take(cp, buffers, "match_table", (_TABLE_BINS,), np.float32)
    keep = (gray, small, mask, blur, counts, quantiles, table, out)
    args = _pack(DETAIL_ARGS, dict(zip(("gray", "small", "mask", "blur", "counts", "quantiles",
                                        "table", "out"), keep)),
                 dict(h=h, w=w, sh=small.shape[0], sw=small.shape[1], nq=quantiles.size))
    _launch_pixels(count_k, args)
    table_k((1,), (_TABLE_BINS,), (args,))
    _launch_pixels(map_k, args)
    del keep
    return out


def upsample_flow(half, size, pad=(0, 0, 0, 0), *, out=None):
    """:func:`blit.stream.upsample_flow` on CuPy arrays: same arguments, same
    flow, bit for bit. ``half`` (hh, hw, 2) float32; ``out``, if given, a
    C-contiguous (h + top + bottom, w + left + right, 2) float32 array. One
    launch over the output.

    Returns
    -------
    cupy.ndarray
    """
    from blit.stream import _half_flow_sizes

    cp = _cupy()
    _check_module(cp, half=half, out=out)
    (h, w), (top, _, left, _), shape = _half_flow_sizes(half, size, pad)
    if out is None:
        out = cp.empty(shape, cp.float32)
    _check_written("out", out, shape, np.float32)
    half = cp.ascontiguousarray(half, dtype=cp.float32)
    args = _pack(FLOW_UP_ARGS, dict(half=half, out=out),
                 dict(h=h, w=w, hh=half.shape[0], hw=half.shape[1], top=top, left=left,
                      oh=shape[0], ow=shape[1]))
    (kernel,) = _kernels((FLOW_UP_KERNEL,))
    kernel(((shape[1] + 31) // 32, (shape[0] + 7) // 8), (32, 8), (args,))
    del half
    return out


def enlarge_mask(small, factor, offset, shape, *, out=None, buffers=None):
    """:func:`guides.mask.enlarge_mask` on CuPy arrays: same arguments, same
    mask, bit for bit. ``small`` (sh, sw) float32; ``out``, if given, a
    C-contiguous (h, w) float32 array; ``buffers`` is not used (the kernel
    needs no work array). One launch over the output.

    Returns
    -------
    cupy.ndarray
    """
    from guides.mask import _enlarged_sizes

    cp = _cupy()
    _check_module(cp, small=small, out=out)
    (h, w), (ox, oy), (gh, gw) = _enlarged_sizes(small, factor, offset, shape)
    if out is None:
        out = cp.empty((h, w), cp.float32)
    _check_written("out", out, (h, w), np.float32)
    if out.size:
        small = cp.ascontiguousarray(small, dtype=cp.float32)
        args = _pack(MASK_UP_ARGS, dict(small=small, out=out),
                     dict(h=h, w=w, sh=small.shape[0], sw=small.shape[1], gh=gh, gw=gw, ox=ox,
                          oy=oy))
        (kernel,) = _kernels((MASK_UP_KERNEL,))
        _launch_pixels(kernel, args)
        del small
    return out


def outline_mask(outline, *, out=None, buffers=None):
    """:func:`guides.mask.outline_mask` into a CuPy array: same arguments,
    same mask, bit for bit.

    Nothing is copied: the head's polygon and the blur's weights travel in
    the kernels' by-value argument struct (:data:`MASK_ARGS`). Five launches
    and a fill: the coverage (one thread per sample row, integer atomic
    additions: the same sums in any order), its share of each block, the
    blur along x and along y, and :func:`enlarge_mask`. ``out``, if given,
    a C-contiguous (h, w) float32 array; the work arrays (``"mask_counts"``,
    ``"mask_small"``, ``"mask_row"``, ``"mask_blur"``) come from
    ``buffers`` (:class:`DeviceBuffers`) when given.

    Returns
    -------
    cupy.ndarray
    """
    from guides.mask import _check_outline

    cp = _cupy()
    h, w = outline.shape
    _check_module(cp, out=out)
    if out is None:
        out = cp.empty((h, w), cp.float32)
    _check_written("out", out, (h, w), np.float32)
    if h * w == 0:
        return out
    _check_outline(outline)
    sh, sw = outline.small_shape
    f = int(outline.factor)
    counts = _take(cp, buffers, "mask_counts", (sh, sw), np.int32)
    counts.fill(0)
    small, row, blur = (_take(cp, buffers, name, (sh, sw), np.float32)
                        for name in ("mask_small", "mask_row", "mask_blur"))
    polygon = np.asarray(outline.polygon, np.int32).reshape(-1)
    taps = np.asarray(outline.taps, np.float32)
    rows = sh * f * SAMPLES
    args = _pack(MASK_ARGS, dict(counts=counts, small=small, row=row, blur=blur),
                 dict(sh=sh, sw=sw, f=f, n=polygon.size // 2, radius=taps.size - 1,
                      delta=0 if outline.reflect else 1, rows=rows))
    args["polygon"][0, :polygon.size] = polygon
    args["taps"][0, :taps.size] = taps
    cover_k, norm_k, blur_x_k, blur_y_k = _kernels(MASK_KERNELS)
    cover_k(((rows + 127) // 128,), (128,), (args,))
    grid = ((sw + 31) // 32, (sh + 7) // 8)
    for kernel in (norm_k, blur_x_k, blur_y_k):
        kernel(grid, (32, 8), (args,))
    return enlarge_mask(blur, f, outline.offset, (h, w), out=out)


def dis_flow(i0, i1, *, patch=None, stride=None, iterations=None, rounds=None, finest=None,
             buffers=None, out=None):
    """:func:`blit.dis.dis_flow` on CuPy arrays: same arguments (None: its
    defaults, :data:`blit.dis.PATCH` ...), same flow, bit for bit.

    ``i0``, ``i1`` (H, W) uint8 C-contiguous; ``out``, if given, a
    C-contiguous (H, W, 2) float32 array; the pyramid and the work arrays
    come from ``buffers`` (:class:`DeviceBuffers`, names ``"dis_*"``) when
    given. Per level of the pyramid: the images halved (one launch for
    both), then, from the coarsest searched level to the finest, the flow
    enlarged, i0's gradients, the structure tensor, ``rounds`` rounds of the
    patch search and the dense flow; nothing crosses between host and device.

    Returns
    -------
    (H, W, 2) float32 cupy.ndarray
    """
    from blit import dis

    cp = _cupy()
    _check_module(cp, i0=i0, i1=i1, out=out)
    for name, a in (("i0", i0), ("i1", i1)):
        if a.ndim != 2 or a.dtype != np.uint8 or not a.flags.c_contiguous:
            raise ValueError(f"{name}: expected a C-contiguous (H, W) uint8 image, got "
                             f"{a.shape} {a.dtype}")
    if i0.shape != i1.shape:
        raise ValueError(f"dis_flow: two grey images of one shape, not {i0.shape} and {i1.shape}")
    h, w = i0.shape
    if out is None:
        out = cp.empty((h, w, 2), cp.float32)
    _check_written("out", out, (h, w, 2), np.float32)
    patch, stride, steps, rounds, coarsest, finest = dis.settings((h, w), patch, stride,
                                                                   iterations, rounds, finest)
    halve_k, sobel_k, tensor_k, search_k, densify_k, up_k = _kernels(DIS_KERNELS)

    def launch(kernel, threads, **fields):
        arrays = {k: v for k, v in fields.items() if not isinstance(v, (int, np.integer))}
        values = {k: v for k, v in fields.items() if k not in arrays}
        args = _pack(DIS_ARGS, arrays, dict(dict(patch=patch, stride=stride), **values))
        if isinstance(threads, tuple):
            ty, tx = threads
            kernel(((tx + 31) // 32, (ty + 7) // 8), (32, 8), (args,))
        else:
            kernel(((threads + 127) // 128,), (128,), (args,))

    p0, p1 = [i0], [i1]
    for level in range(1, coarsest + 1):
        sh, sw = p0[-1].shape
        a = _take(cp, buffers, f"dis_i0_{level}", (sh // 2, sw // 2), np.uint8)
        b = _take(cp, buffers, f"dis_i1_{level}", (sh // 2, sw // 2), np.uint8)
        launch(halve_k, (sh // 2, sw // 2), i0=p0[-1], i1=p1[-1], half0=a, half1=b, h=sh, w=sw)
        p0.append(a)
        p1.append(b)
    flow = None
    for level in range(coarsest, -1, -1):
        lh, lw = p0[level].shape
        up = out if level == 0 else _take(cp, buffers, f"dis_flow{level % 2}", (lh, lw, 2),
                                          np.float32)
        if flow is None:
            up.fill(0)
        else:
            launch(up_k, (lh, lw), small=flow, flow=up, h=lh, w=lw, sh=flow.shape[0],
                   sw=flow.shape[1])
        flow = up
        hs, ws = 1 + (lh - patch) // stride, 1 + (lw - patch) // stride
        if level < finest or hs < 1 or ws < 1:
            continue
        a, b = p0[level], p1[level]
        gx = _take(cp, buffers, "dis_gx", (lh, lw), np.int16)
        gy = _take(cp, buffers, "dis_gy", (lh, lw), np.int16)
        launch(sobel_k, (lh, lw), i0=a, gx=gx, gy=gy, h=lh, w=lw)
        tensor = _take(cp, buffers, "dis_tensor", (hs, ws, 5), np.float32)
        fields = dict(i0=a, i1=b, gx=gx, gy=gy, tensor=tensor, flow=flow, h=lh, w=lw, hs=hs,
                      ws=ws)
        launch(tensor_k, hs * ws, **fields)
        s_in = _take(cp, buffers, "dis_s0", (hs, ws, 2), np.float32)
        s_out = _take(cp, buffers, "dis_s1", (hs, ws, 2), np.float32)
        for r in range(rounds):
            launch(search_k, hs * ws, s_in=s_in, s_out=s_out, steps=steps, first=int(r == 0),
                   **fields)
            s_in, s_out = s_out, s_in
        launch(densify_k, (lh, lw), s_in=s_in, **fields)
    return out
