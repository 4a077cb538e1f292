"""The CUDA backend (blit.gpu, blit/cuda/) against the Numba kernels: the
lookup and blend, the stream's propagation, merge, temporal filter,
positional guide and composite, and the stream itself with device="cuda".

Three layers, so that the kernels are checked on every run, GPU or not:

- nvcc compiles every specialisation of the CUDA source to PTX (skipped
  without nvcc): a kernel that does not compile cannot land;
- g++ compiles the kernels' per-thread logic (blit/cuda/styleblit_kernels.cuh)
  as host code through tests/cuda_host_harness.cpp; the public functions of
  ``blit.gpu`` then run on NumPy arrays with each kernel launch replaced by
  the host build over the same grid (fixture ``host_gpu``), and must equal
  the Numba functions bit for bit (float outputs compared as bits); the
  guide error and ArgMinLookup are also compared bit for bit on inputs
  chosen where float32 and float64 part (skipped without g++). With
  ``host_cupy`` the device arrays are a type of their own (HostCupy), kept
  apart from host arrays as CuPy keeps them, every copy logged: the stream
  with device="cuda" runs there and must equal the CPU stream, with no
  other copies than those it documents;
- with a CUDA device (``gpu`` marker, skipped without one), the public
  functions on CuPy arrays must equal them on NumPy arrays, and the CUDA
  stream the CPU one.
"""
import ctypes
import importlib.util
import inspect
import re
import shutil
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path

import numba
import numpy as np
import pytest

from blit import dis, gpu
from blit.blending import blend, denoise_nnf
from blit.stream import NO_SOURCE, Stylizer, _merge_kernel, propagate, upsample_flow
from blit.styleblit import LookupParams, argmin_lookup_table, lookup, make_jitter, seed_labels
from blit.stylize import StylizeOptions
from blit.temporal import NO_HISTORY, temporal_filter
from guides.appearance import _LEVEL_BINS, quantile_function, target_appearance
from guides.mask import MIN_WEIGHT, HeadRegion, composite, enlarge_mask, head_outline, outline_mask
from guides.mls import positional_guide
from test_dis import _moved, _portrait  # (Grace Hopper's grey face, and moved)
from test_stream import (Script, ScriptAtSize, big_clip, hopper, moving_clip,  # noqa: F401
                         prefetch_case, reset_while_prefetched, style)  # (hopper, style: fixtures)

TESTS = Path(__file__).resolve().parent
CUDA_DIR = Path(resources.files("blit") / "cuda")


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def smooth_noise(rng, shape, sigma=2.0):
    import cv2

    return cv2.GaussianBlur(rng.random(shape, dtype=np.float32), (0, 0), sigma)


def make_style(rng, hs=40, ws=32):
    """(Hs, Ws, 3) uint8 exemplar and its (Hs, Ws) float32 appearance in [0, 255]."""
    style = rng.integers(0, 256, (hs, ws, 3), dtype=np.uint8)
    app = smooth_noise(rng, (hs, ws))
    app = (app - app.min()) / max(np.ptp(app), 1e-6) * 255
    return style, app.astype(np.float32)


def identity_pos(h, w):
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs, ys], -1).astype(np.float32)


def lookup_case(seed, *, levels=5, threshold=50.0, h=21, w=27, quantized=False):
    """Arguments of ``lookup`` for a random warp of a random exemplar.

    ``quantized`` puts guides on a quarter-pixel grid and the appearance on
    integers, so that many guide errors tie with each other and with the
    threshold and many positions round at exactly .5: the comparisons must
    agree exactly, not just almost.
    """
    rng = np.random.default_rng(seed)
    _, app = make_style(rng)
    if quantized:
        app = np.round(app)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=threshold, levels=levels)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    pos = identity_pos(h, w) * 1.2 + rng.normal(0, 0.7, (h, w, 2)).astype(np.float32) + 2
    pos[:3] -= 10  # some guides outside the exemplar
    tapp = np.clip(rng.normal(128, 40, (h, w)), 0, 255).astype(np.float32)
    if quantized:
        pos = np.round(pos * 4) / 4
        tapp = np.round(tapp)
    jitter = make_jitter(seed + 3, levels=levels, size=8)
    return (pos, tapp, app, table, bins, 4, params, jitter)


def random_nnf(rng, h, w, hs, ws):
    """An NNF of coherent patches, noise and inactive pixels."""
    ys, xs = np.mgrid[0:h, 0:w]
    nnf = np.stack([(xs + 3) % ws, (ys + 5) % hs], -1).astype(np.int32)
    noisy = rng.random((h, w)) < 0.3
    nnf[noisy] = np.stack([rng.integers(0, ws, noisy.sum()), rng.integers(0, hs, noisy.sum())], -1)
    nnf[rng.random((h, w)) < 0.1] = -(1 << 24)
    return nnf


# ---------------------------------------------------------------------------
# No CUDA at import; availability; package data
# ---------------------------------------------------------------------------

def test_import_blit_touches_no_cuda():
    code = ("import sys, blit, blit.styleblit, blit.blending; "
            "assert 'cupy' not in sys.modules and 'blit.gpu' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_available_is_a_bool_and_auto_falls_back():
    assert isinstance(gpu.available(), bool)
    assert gpu.resolve_device("cpu") == "cpu"
    assert gpu.resolve_device("auto") == ("cuda" if gpu.available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        gpu.resolve_device("gpu0")


@pytest.mark.skipif(gpu.available(), reason="a CUDA device is present")
def test_cuda_without_a_device_says_what_to_install():
    with pytest.raises(gpu.CudaUnavailableError, match="device='cuda'") as info:
        gpu.resolve_device("cuda")
    assert isinstance(info.value, ValueError)
    if importlib.util.find_spec("cupy") is None:
        assert 'pip install -e ".[gpu]"' in str(info.value)


class _FakeCupyArray:
    """Looks like a CuPy array to the dispatch (its type's module is cupy)."""


_FakeCupyArray.__module__ = "cupy._core.core"


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cupy_arrays_without_cupy_say_what_to_install():
    args = list(lookup_case(0))
    args[7] = _FakeCupyArray()  # jitter
    with pytest.raises(gpu.CudaUnavailableError, match=re.escape('pip install -e ".[gpu]"')):
        lookup(*args)
    with pytest.raises(gpu.CudaUnavailableError, match=re.escape('pip install -e ".[gpu]"')):
        blend(np.zeros((4, 4, 3), np.uint8), np.zeros((2, 2, 2), np.int32), out=_FakeCupyArray())


def test_a_mix_of_array_types_names_the_argument():
    args = list(lookup_case(0))
    args[3] = args[3].tolist()  # table: not an array of the call's backend
    with pytest.raises(TypeError, match="table"):
        gpu._prepare_lookup(np, *args)
    with pytest.raises(TypeError, match="nnf"):
        gpu._prepare_blend(np, np.zeros((4, 4, 3), np.uint8), [[[0, 0]]], 1, None)


def test_cuda_sources_are_package_data():
    assert (CUDA_DIR / "styleblit.cu").is_file() and (CUDA_DIR / "styleblit_kernels.cuh").is_file()
    src = gpu.source()
    assert '#include "styleblit_kernels.cuh"' not in src  # inlined: CuPy's cache sees it
    for name in ("sb_seed_kernel", "sb_lookup_kernel", "sb_blend_kernel", "sb_denoise_kernel",
                 "sb_propagate_kernel", "sb_merge_kernel", "sb_temporal_kernel", "sb_temporal_round_kernel",
                 "sb_upsample_kernel", "sb_composite_kernel", "guide_error"):
        assert name in src


# ---------------------------------------------------------------------------
# nvcc: every specialisation compiles
# ---------------------------------------------------------------------------

def _nvcc_ptx(tmp_path, *options):
    """PTX of gpu.source() with every name expression instantiated."""
    names = gpu.kernel_names()
    cu = tmp_path / "styleblit_all.cu"
    cu.write_text(gpu.source() + "\n// instantiate what NVRTC would be asked for\nvoid* sb_instances[] = {\n"
                  + "".join(f"    (void*)&{n},\n" for n in names) + "};\n")
    ptx = tmp_path / "styleblit_all.ptx"
    cmd = ["nvcc", "--ptx", "-arch=compute_80", *options, "-o", str(ptx), str(cu)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
    return names, ptx.read_text()


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found")
def test_nvcc_compiles_every_specialisation_to_ptx(tmp_path):
    names, ptx = _nvcc_ptx(tmp_path, *gpu.NVRTC_OPTIONS, "-Werror", "all-warnings")
    entries = re.findall(r"\.entry\s+(\w+)", ptx)
    assert len(entries) == len(names) == 57
    for kind in ("sb_seed_kernel", "sb_lookup_kernel", "sb_blend_kernel", "sb_denoise_kernel",
                 "sb_propagate_kernel", "sb_merge_kernel", "sb_temporal_kernel", "sb_temporal_round_kernel",
                 "sb_upsample_kernel", "sb_composite_kernel", *gpu.APPEARANCE_KERNELS,
                 gpu.FLOW_UP_KERNEL, gpu.MASK_UP_KERNEL, gpu.MLS_KERNEL, "sb_mask_cover_kernel",
                 "sb_mask_norm_kernel", "sb_mask_blur_kernel", *gpu.DIS_KERNELS):
        assert any(kind in e for e in entries)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found")
def test_guide_error_is_not_fused_even_with_fmad(tmp_path):
    """nvcc fuses a * b + c into an FMA by default; the kernels use
    non-fusing intrinsics, so even without --fmad=false none appears and the
    float arithmetic stays that of the Numba kernels (the guide error, the
    propagation's Jacobian step, the temporal filter's bilinear weights and
    mix, the positional guide's interpolation, the composite)."""
    _, ptx = _nvcc_ptx(tmp_path, "--fmad=true")
    assert "fma." not in ptx


# ---------------------------------------------------------------------------
# g++: the kernels' per-thread logic on the host equals the Numba kernels
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """The host build of the kernels, as a ctypes library."""
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    lib = tmp_path_factory.mktemp("cuda-host") / "libstyleblit_host.so"
    # IEEE arithmetic as in the kernels: no contraction into FMA, no fast math.
    cmd = [cxx, "-std=c++11", "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC",
           "-Wall", "-Wextra", f"-I{CUDA_DIR}", "-o", str(lib), str(TESTS / "cuda_host_harness.cpp")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stderr}"
    h = ctypes.CDLL(str(lib))
    for name in ("sb_host_seeds", "sb_host_lookup", "sb_host_blend", "sb_host_denoise",
                 "sb_host_propagate",
                 "sb_host_merge", "sb_host_temporal", "sb_host_temporal_round", "sb_host_upsample",
                 "sb_host_composite", "sb_host_gray", "sb_host_pyrdown", "sb_host_detail_count",
                 "sb_host_detail_table", "sb_host_detail_map", "sb_host_flow_up",
                 "sb_host_mask_up", "sb_host_mls_nodes", "sb_host_mask_cover", "sb_host_mask_norm",
                 "sb_host_mask_blur", "sb_host_dis_halve", "sb_host_dis_sobel",
                 "sb_host_dis_tensor", "sb_host_dis_search", "sb_host_dis_densify",
                 "sb_host_dis_up"):
        getattr(h, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
        getattr(h, name).restype = None
    h.sb_layout.argtypes = [ctypes.c_void_p]
    h.sb_layout.restype = ctypes.c_int
    h.sb_host_level_bins.argtypes = [ctypes.c_void_p]
    h.sb_host_level_bins.restype = None
    vp = ctypes.c_void_p
    h.sb_host_guide_errors.argtypes = [vp, ctypes.c_longlong, vp, vp, vp, vp]
    h.sb_host_argmin_lookups.argtypes = [vp, ctypes.c_longlong, vp, vp, vp]
    return h


@pytest.fixture
def host_gpu(harness, monkeypatch):
    """blit.gpu with NumPy standing in for CuPy and every kernel launch run by
    the host build over the launched grid: gpu.lookup and gpu.blend take the
    path of a real launch (checks, struct packing, kernel choice, grid
    sizes), only the execution is on the host. Yields the launches made."""
    launches = []
    # one thread per pixel: the host function and the argument struct
    pixels = {"sb_lookup_kernel": (harness.sb_host_lookup, gpu.LOOKUP_ARGS),
              "sb_propagate_kernel": (harness.sb_host_propagate, gpu.PROPAGATE_ARGS),
              "sb_merge_kernel": (harness.sb_host_merge, gpu.MERGE_ARGS),
              "sb_temporal_kernel": (harness.sb_host_temporal, gpu.TEMPORAL_ARGS),
              "sb_temporal_round_kernel": (harness.sb_host_temporal_round, gpu.TEMPORAL_ARGS),
              "sb_upsample_kernel": (harness.sb_host_upsample, gpu.UPSAMPLE_ARGS),
              "sb_composite_kernel": (harness.sb_host_composite, gpu.COMPOSITE_ARGS),
              "sb_gray_kernel": (harness.sb_host_gray, gpu.GRAY_ARGS),
              "sb_pyrdown_kernel": (harness.sb_host_pyrdown, gpu.PYRDOWN_ARGS),
              "sb_detail_count_kernel": (harness.sb_host_detail_count, gpu.DETAIL_ARGS),
              "sb_detail_map_kernel": (harness.sb_host_detail_map, gpu.DETAIL_ARGS),
              "sb_mask_up_kernel": (harness.sb_host_mask_up, gpu.MASK_UP_ARGS),
              "sb_mls_nodes_kernel": (harness.sb_host_mls_nodes, gpu.MLS_ARGS),
              "sb_dis_sobel_kernel": (harness.sb_host_dis_sobel, gpu.DIS_ARGS),
              "sb_dis_densify_kernel": (harness.sb_host_dis_densify, gpu.DIS_ARGS),
              "sb_dis_up_kernel": (harness.sb_host_dis_up, gpu.DIS_ARGS)}
    # one thread per patch of the DIS flow's grid (hs, ws)
    patches = {"sb_dis_tensor_kernel": harness.sb_host_dis_tensor,
               "sb_dis_search_kernel": harness.sb_host_dis_search}
    # one thread per output pixel of a grown box (oh, ow)
    outputs = {"sb_flow_up_kernel": (harness.sb_host_flow_up, gpu.FLOW_UP_ARGS)}

    def kernel(name):
        kind, spec = re.fullmatch(r"(\w+)(?:<(-?\d+)>)?", name).groups()
        spec = 0 if spec is None else spec

        def launch(grid, block, args):
            (packed,) = args
            assert isinstance(packed, np.ndarray) and packed.shape == (1,)
            threads = [g * b for g, b in zip(grid + (1, 1), block + (1, 1))][:2]
            launches.append(name)
            if kind == "sb_seed_kernel":
                assert packed.dtype == gpu.LOOKUP_ARGS and threads[0] >= packed["nseeds"][0]
                harness.sb_host_seeds(packed.ctypes.data, int(spec))
            elif kind == "sb_mask_cover_kernel":  # one thread per sample row
                assert packed.dtype == gpu.MASK_ARGS and threads[0] >= packed["rows"][0]
                harness.sb_host_mask_cover(packed.ctypes.data, 0)
            elif kind in ("sb_mask_norm_kernel", "sb_mask_blur_kernel"):  # per block
                assert packed.dtype == gpu.MASK_ARGS
                assert threads[0] >= packed["sw"][0] and threads[1] >= packed["sh"][0]
                host = (harness.sb_host_mask_norm if kind == "sb_mask_norm_kernel"
                        else harness.sb_host_mask_blur)
                host(packed.ctypes.data, int(spec))
            elif kind in patches:
                assert packed.dtype == gpu.DIS_ARGS
                assert threads[0] >= packed["hs"][0] * packed["ws"][0]
                patches[kind](packed.ctypes.data, 0)
            elif kind == "sb_dis_halve_kernel":  # one thread per pixel of the halves
                assert packed.dtype == gpu.DIS_ARGS
                assert threads[0] >= packed["w"][0] // 2 and threads[1] >= packed["h"][0] // 2
                harness.sb_host_dis_halve(packed.ctypes.data, 0)
            elif kind == "sb_detail_table_kernel":  # one thread per bin
                assert packed.dtype == gpu.DETAIL_ARGS and threads[0] >= 512
                harness.sb_host_detail_table(packed.ctypes.data, 0)
            elif kind in outputs:
                host, dtype = outputs[kind]
                assert packed.dtype == dtype
                assert threads[0] >= packed["ow"][0] and threads[1] >= packed["oh"][0]
                host(packed.ctypes.data, 0)
            elif kind in pixels:
                host, dtype = pixels[kind]
                assert packed.dtype == dtype
                assert threads[0] >= packed["w"][0] and threads[1] >= packed["h"][0]
                host(packed.ctypes.data, int(spec))
            else:  # blend or mode filter: the radius of the specialisation, or the struct's
                host, dtype = {"sb_blend_kernel": (harness.sb_host_blend, gpu.BLEND_ARGS),
                               "sb_denoise_kernel": (harness.sb_host_denoise, gpu.DENOISE_ARGS)}[kind]
                assert packed.dtype == dtype
                assert threads[0] >= packed["w"][0] and threads[1] >= packed["h"][0]
                radius = int(spec) if int(spec) >= 0 else int(packed["radius"][0])
                host(packed.ctypes.data, radius)

        return launch

    monkeypatch.setattr(gpu, "_cupy", lambda: np)
    monkeypatch.setattr(gpu, "_kernels", lambda names: tuple(kernel(n) for n in names))
    return launches


class DeviceArray(np.ndarray):
    """Host memory standing in for a CuPy array, kept apart from NumPy's.

    A type of its own: a NumPy array among device ones fails blit.gpu's
    checks as it would with CuPy; NumPy functions, operators and item
    assignment refuse to mix the two (CuPy raises for some mixes and copies
    silently for others: both are refused here); reading a device value as
    a Python number is refused (CuPy would copy it back). The only copies
    are ``set`` (host to device) and ``get`` (device to host), as CuPy's,
    and each is logged in :attr:`log` as (direction, shape, dtype name);
    ``set`` also in :attr:`sources` as (shape, dtype name, whether the host
    array is page-locked memory: :meth:`_HostCuda.alloc_pinned_memory`'s).
    """

    log = []
    sources = []

    @property
    def device(self):
        return _DEVICE_0

    def set(self, arr):
        if (type(arr) is not np.ndarray or arr.shape != self.shape or arr.dtype != self.dtype
                or not self.flags.c_contiguous):
            raise TypeError(f"set: a host array of {self.shape} {self.dtype} into a contiguous "
                            f"device array, got {type(arr).__name__} {arr.shape} {arr.dtype}")
        DeviceArray.log.append(("to device", arr.shape, arr.dtype.name))
        base = arr
        while isinstance(base, np.ndarray):
            base = base.base
        DeviceArray.sources.append((arr.shape, arr.dtype.name, isinstance(base, _HostPinned)))
        _HostCuda.log.append((threading.current_thread().name, "copy"))
        self.view(np.ndarray)[...] = arr

    def get(self, out=None):
        DeviceArray.log.append(("to host", self.shape, self.dtype.name))
        if out is None:
            return np.array(self.view(np.ndarray))
        if (type(out) is not np.ndarray or out.shape != self.shape or out.dtype != self.dtype
                or not out.flags.c_contiguous):
            raise TypeError(f"get: out must be a contiguous host array of {self.shape} {self.dtype}")
        out[...] = self.view(np.ndarray)
        return out

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _no_host(inputs, out, kwargs)
        if out is not None:
            kwargs["out"] = _plain(out)
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        return (out[0] if len(out) == 1 else out) if out is not None else _device(result)

    def __array_function__(self, func, types, args, kwargs):
        _no_host(args, kwargs)
        return _device(func(*_plain(args), **_plain(kwargs)))

    def __getitem__(self, key):
        _no_host(key)
        return _device(self.view(np.ndarray)[_plain(key)])

    def __setitem__(self, key, value):
        _no_host(key, value)
        self.view(np.ndarray)[_plain(key)] = _plain(value)

    def _read_back(self, *args):
        raise TypeError("a device value read on the host: a hidden copy")

    __bool__ = __int__ = __float__ = __index__ = item = tolist = _read_back


_DEVICE_0 = type("Device", (), {"id": 0})()


def _no_host(*objects):
    for obj in objects:
        if type(obj) is np.ndarray:
            raise TypeError(f"a host {obj.shape} {obj.dtype} array in a device operation: "
                            "copy it with gpu.to_device")
        if isinstance(obj, (tuple, list)):
            _no_host(*obj)
        elif isinstance(obj, dict):
            _no_host(*obj.values())


def _plain(obj):
    if isinstance(obj, DeviceArray):
        return obj.view(np.ndarray)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_plain(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _device(obj):
    if type(obj) is np.ndarray:
        return obj.view(DeviceArray)
    if isinstance(obj, tuple):
        return tuple(_device(o) for o in obj)
    return obj


class _HostPinned(bytearray):
    """Host memory standing in for page-locked memory."""


class _HostCuda:
    """The part of ``cupy.cuda`` the stream uses: one device, one stream,
    whose work is done when it is queued; what the stream's threads ask of
    them, and each copy to the device, is logged in :attr:`log` (thread
    name, what)."""

    log = []
    runtime = type("runtime", (), {"getDevice": staticmethod(lambda: 0)})

    class Device:
        def __init__(self, device=0):
            assert device == 0

        def __enter__(self):
            _HostCuda.log.append((threading.current_thread().name, "device 0"))
            return self

        def __exit__(self, *exc):
            _HostCuda.log.append((threading.current_thread().name, "exit"))
            return False

    class _Stream:
        def synchronize(self):
            _HostCuda.log.append((threading.current_thread().name, "synchronize"))

    @staticmethod
    def get_current_stream():
        return _HostCuda._Stream()

    @staticmethod
    def alloc_pinned_memory(nbytes):
        return _HostPinned(nbytes)


class HostCupy:
    """The part of the cupy module that blit.gpu and the stream use, on
    :class:`DeviceArray`: NumPy's functions, refusing host arrays."""

    ndarray = DeviceArray
    cuda = _HostCuda

    def __getattr__(self, name):
        attr = getattr(np, name)
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes, constants

        def call(*args, **kwargs):
            _no_host(args, kwargs)
            return _device(attr(*_plain(args), **_plain(kwargs)))

        return call


@pytest.fixture
def host_cupy(host_gpu, monkeypatch):
    """:func:`host_gpu` with :class:`HostCupy` for CuPy: the kernels run by
    the host build, device arrays kept apart from host ones, CUDA reported
    available. Yields the log of copies between host and device."""
    monkeypatch.setattr(gpu, "_cupy", lambda: HostCupy())
    monkeypatch.setattr(gpu, "_unavailable_reason", lambda: None)
    log = []
    monkeypatch.setattr(DeviceArray, "log", log)
    monkeypatch.setattr(DeviceArray, "sources", [])
    monkeypatch.setattr(_HostCuda, "log", [])
    return log


def test_argument_structs_have_the_header_layout(harness):
    """blit.gpu packs the structs field by field with the C offsets."""
    values = np.zeros(256, np.int64)
    n = harness.sb_layout(values.ctypes.data)
    # the fields in the order cuda_host_harness.cpp reports them
    fields = {
        gpu.LOOKUP_ARGS: ("tpos", "tapp", "active", "sapp", "table", "app_bin", "jitter", "labels",
                          "seeds", "nnf", "h", "w", "ox", "oy", "hs", "ws", "hc", "wc", "nbins",
                          "cell", "jsize", "hf", "wf", "levels", "nseeds", "lam_pos", "lam_app",
                          "threshold", "grid"),
        gpu.SEED_GRID: ("offset", "bx0", "by0", "ncx"),
        gpu.BLEND_ARGS: ("style", "nnf", "out", "h", "w", "hs", "ws", "radius"),
        gpu.DENOISE_ARGS: ("nnf", "out", "h", "w", "hs", "ws", "radius"),
        gpu.PROPAGATE_ARGS: ("prev_src", "prev_pos", "flow", "tpos", "tapp", "active", "sapp", "src",
                             "nnf", "need", "jxx", "jxy", "jyx", "jyy", "h", "w", "ox", "oy", "ph",
                             "pw", "pox", "poy", "fw", "fox", "foy", "hs", "ws", "iterations",
                             "lam_pos", "lam_app", "threshold"),
        gpu.MERGE_ARGS: ("fresh", "need", "nnf", "src", "h", "w"),
        gpu.TEMPORAL_ARGS: ("current", "active", "prev", "flow", "hist", "h", "w", "ph", "pw",
                            "pox", "poy", "fw", "fox", "foy", "ox", "oy", "alpha"),
        gpu.UPSAMPLE_ARGS: ("nodes", "out", "sx", "sy", "h", "w", "gh", "gw"),
        gpu.COMPOSITE_ARGS: ("out", "fg", "mask", "h", "w", "x0", "y0", "fw", "min_weight"),
        gpu.GRAY_ARGS: ("image", "out", "stride", "h", "w"),
        gpu.PYRDOWN_ARGS: ("src", "out", "stride", "h", "w", "sh", "sw"),
        gpu.DETAIL_ARGS: ("gray", "small", "mask", "blur", "counts", "quantiles", "table", "out",
                          "h", "w", "sh", "sw", "nq"),
        gpu.FLOW_UP_ARGS: ("half", "out", "h", "w", "hh", "hw", "top", "left", "oh", "ow"),
        gpu.MASK_UP_ARGS: ("small", "out", "h", "w", "sh", "sw", "gh", "gw", "ox", "oy"),
        gpu.MASK_ARGS: ("counts", "small", "row", "blur", "sh", "sw", "f", "n", "radius", "delta",
                        "rows", "polygon", "taps"),
        gpu.MLS_ARGS: ("nodes", "step_x", "step_y", "n", "h", "w", "points"),
        gpu.DIS_ARGS: ("i0", "i1", "half0", "half1", "gx", "gy", "tensor", "flow", "s_in",
                       "s_out", "small", "h", "w", "sh", "sw", "hs", "ws", "patch", "stride",
                       "steps", "first"),
    }
    expected = []
    for dtype, names in fields.items():
        assert sorted(dtype.names) == sorted(names)
        expected += [dtype.itemsize] + [dtype.fields[name][1] for name in names]
    assert values[:n].tolist() == expected


def adversarial_guides(rng, n, hs, ws, cell):
    """Guides (n, 2) float32 and appearances (n,) float32 where float32 and
    float64 arithmetic part: just below and at half pixels (rounding to the
    nearest pixel), just below and at multiples of the cell (the table's
    cell), full-mantissa values, inside and outside the exemplar."""
    k = rng.integers(-3, max(hs, ws) + 3, (n, 2)).astype(np.float32)
    half = k + np.float32(0.5)
    cells = k * np.float32(cell)
    kinds = [rng.uniform(-20, max(hs, ws) + 20, (n, 2)).astype(np.float32),
             half, np.nextafter(half, np.float32(-np.inf)), np.nextafter(half, np.float32(np.inf)),
             cells, np.nextafter(cells, np.float32(-np.inf))]
    pick = rng.integers(0, len(kinds), (n, 2))
    g = np.choose(pick, kinds).astype(np.float32)
    a = np.where(rng.random(n) < 0.5, rng.uniform(-5, 260, n),
                 np.nextafter(rng.integers(0, 256, n).astype(np.float32), np.float32(0))).astype(np.float32)
    return g, a


def _numba_twins():
    """The Numba _error / _argmin_lookup over arrays of inputs."""
    import numba

    from blit.styleblit import _argmin_lookup, _error

    @numba.njit
    def errors(c, g, a, sapp, lam_pos, lam_app):
        out = np.empty(len(a))
        for i in range(len(a)):
            out[i] = _error(c[i, 0], c[i, 1], g[i, 0], g[i, 1], a[i], sapp, lam_pos, lam_app)
        return out

    @numba.njit
    def argmins(g, a, sapp, table, cell, app_bin, lam_pos, lam_app):
        out = np.empty((len(a), 2), np.int64)
        for i in range(len(a)):
            out[i, 0], out[i, 1] = _argmin_lookup(g[i, 0], g[i, 1], a[i], sapp, table, cell, app_bin,
                                                  lam_pos, lam_app)
        return out

    return errors, argmins


@pytest.mark.parametrize("cell", [3, 4, 5])
def test_host_guide_error_and_argmin_are_bit_identical(harness, cell):
    """The float arithmetic of the kernels is that of the Numba kernels, bit
    for bit, on inputs where float32 and float64 results part."""
    rng = np.random.default_rng(cell)
    _, app = make_style(rng, 37, 29)
    errors, argmins = _numba_twins()
    for lam_pos, lam_app in ((2.0, 2.0), (10 * 256 / 37, 2.0), (0.3, 7.7)):
        params = LookupParams(lam_pos=lam_pos, lam_app=lam_app)
        table, bins = argmin_lookup_table(app, params, cell=cell, nbins=8)
        args = (np.zeros((1, 1, 2), np.float32), None, app, table, bins, cell, params, make_jitter())
        packed, _, keep = gpu._prepare_lookup(np, *args)
        packed["lam_app"] = np.float32(lam_app)  # target_app=None zeroes it
        n = 20000
        g, a = adversarial_guides(rng, n, *app.shape, cell)
        c = np.stack([rng.integers(0, 29, n), rng.integers(0, 37, n)], -1).astype(np.int64)
        host = np.empty(n)
        harness.sb_host_guide_errors(packed.ctypes.data, n, c.ctypes.data, g.ctypes.data,
                                     a.ctypes.data, host.ctypes.data)
        expected = errors(c, g, a, app, np.float32(lam_pos), np.float32(lam_app))
        np.testing.assert_array_equal(host.view(np.int64), expected.view(np.int64))
        host = np.empty((n, 2), np.int64)
        harness.sb_host_argmin_lookups(packed.ctypes.data, n, g.ctypes.data, a.ctypes.data,
                                       host.ctypes.data)
        expected = argmins(g, a, app, table, cell, bins, np.float32(lam_pos), np.float32(lam_app))
        np.testing.assert_array_equal(host, expected)


@pytest.mark.parametrize("origin", [(0, 0), (5, 9), (67, 130)])
@pytest.mark.parametrize("levels", [1, 3, 5, 7])
@pytest.mark.parametrize("threshold", [0.0, 10.0, 50.0, 1e9])
def test_host_kernels_lookup_equals_numba(host_gpu, threshold, levels, origin):
    args = lookup_case(1, levels=levels, threshold=threshold)
    cpu = lookup(*args, origin=origin)
    np.testing.assert_array_equal(gpu.lookup(*args, origin=origin), cpu)
    # the seeds first (none with one level), then the lookup, specialised on levels
    assert host_gpu == list(gpu.lookup_kernel_names(levels))[levels == 1:]
    h, w = args[0].shape[:2]
    labels = seed_labels((origin[1] + h + 2, origin[0] + w + 5), args[7], levels)
    np.testing.assert_array_equal(gpu.lookup(*args, origin=origin, labels=labels), cpu)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [2.0, 4.5, 8.0])
def test_host_kernels_lookup_agrees_on_ties_and_half_pixels(host_gpu, seed, threshold):
    args = lookup_case(seed, levels=6, threshold=threshold, h=33, w=29, quantized=True)
    np.testing.assert_array_equal(gpu.lookup(*args, origin=(3, 1)),
                                  lookup(*args, origin=(3, 1)))


def test_host_kernels_lookup_position_only_active_and_out(host_gpu):
    rng = np.random.default_rng(8)
    pos, tapp, app, table, bins, cell, _, jitter = lookup_case(2, levels=7, h=40, w=36)
    params = LookupParams.faceblit(app.shape, threshold=30.0)
    active = rng.random(pos.shape[:2]) < 0.7
    for target_app in (None, tapp):
        cpu = lookup(pos, target_app, app, table, bins, cell, params, jitter, origin=(11, 2),
                     active=active)
        out = np.full(cpu.shape, 5, np.int32)
        host = gpu.lookup(pos, target_app, app, table, bins, cell, params, jitter,
                          origin=(11, 2), active=active, out=out)
        assert host is out
        np.testing.assert_array_equal(host, cpu)
        assert (host[~active] == -(1 << 24)).all()


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_host_kernels_blend_equals_numba(host_gpu, radius):
    rng = np.random.default_rng(9)
    style = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    nnf = random_nnf(rng, 23, 31, 30, 40)
    cpu = blend(style, nnf, radius, out=np.full((23, 31, 3), 7, np.uint8))
    host = gpu.blend(style, nnf, radius, out=np.full((23, 31, 3), 7, np.uint8))
    np.testing.assert_array_equal(host, cpu)
    assert host_gpu == [f"sb_blend_kernel<{radius if radius <= 2 else -1}>"]


def patchy_nnf(rng, h, w, hs, ws, noffsets, inactive=0.2):
    """An NNF of a few offsets (repeats and ties in every neighbourhood), some
    pixels inactive, some modes pointing off the exemplar."""
    ys, xs = np.mgrid[0:h, 0:w]
    pick = rng.integers(-3, 4, (noffsets, 2))[rng.integers(0, noffsets, (h, w))]
    nnf = np.stack([np.clip(xs + pick[..., 0], 0, ws - 1),
                    np.clip(ys + pick[..., 1], 0, hs - 1)], -1).astype(np.int32)
    nnf[rng.random((h, w)) < inactive] = -(1 << 24)
    return nnf


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
@pytest.mark.parametrize("noffsets", [2, 5, 40])
def test_host_kernels_denoise_equals_numba(host_gpu, radius, noffsets):
    rng = np.random.default_rng(radius * 10 + noffsets)
    for h, w in ((23, 31), (1, 9), (7, 1)):
        nnf = patchy_nnf(rng, h, w, h + 3, w + 2, noffsets)
        cpu = denoise_nnf(nnf, radius, (h + 3, w + 2))
        host_gpu.clear()
        host = gpu.denoise_nnf(nnf, radius, (h + 3, w + 2), out=np.full_like(nnf, 7))
        np.testing.assert_array_equal(host, cpu)
        assert host_gpu == [f"sb_denoise_kernel<{radius if radius in (1, 2) else -1}>"]
    with pytest.raises(ValueError, match="share memory"):
        gpu.denoise_nnf(nnf, 1, (9, 9), out=nnf)


def test_host_kernels_identity_invariants(host_gpu):
    """Identical injective guides give the identity NNF; blending it at any
    radius reproduces the exemplar."""
    rng = np.random.default_rng(3)
    style, _ = make_style(rng, 48, 40)
    app = rng.permutation(48 * 40).reshape(48, 40).astype(np.float32) * (255.0 / (48 * 40))
    pos = identity_pos(48, 40)
    for levels in (1, 4, 7):
        params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=50.0, levels=levels)
        table, bins = argmin_lookup_table(app, params, cell=4, nbins=16)
        jitter = make_jitter(0, levels=levels, size=16)
        nnf = gpu.lookup(pos, app, app, table, bins, 4, params, jitter)
        np.testing.assert_array_equal(nnf, pos.astype(np.int32))
    for radius in (0, 1, 2):
        np.testing.assert_array_equal(gpu.blend(style, nnf, radius), style)


# ---------------------------------------------------------------------------
# g++: the stream's propagation, merge and temporal filter
# ---------------------------------------------------------------------------

def assert_bits_equal(actual, expected):
    """Equal arrays, floats bit for bit (-0.0 is not 0.0, a NaN only a NaN)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if actual.dtype.kind == "f":
        actual, expected = actual.view(f"i{actual.itemsize}"), expected.view(f"i{expected.itemsize}")
    np.testing.assert_array_equal(actual, expected)


def propagate_case(seed, *, h=19, w=23, quantized=False):
    """Arguments of ``propagate``: the previous box (3 pixels left, 2 up of
    this one, a little larger), a flow on a larger region, guides near the
    identity with noise, sources with holes.

    ``quantized`` puts flows, guides and sources on a quarter-pixel grid and
    the appearance on integers: positions round at exactly .5 and guide
    errors tie with the threshold, so the comparisons must agree exactly.
    """
    rng = np.random.default_rng(seed)
    _, style_app = make_style(rng)
    hs, ws = style_app.shape
    ph, pw = h + 3, w + 4
    prev_pos = identity_pos(ph, pw) * 1.1 + rng.normal(0, 0.6, (ph, pw, 2)).astype(np.float32) + 1
    prev_src = prev_pos + rng.normal(0, 1.5, (ph, pw, 2)).astype(np.float32)
    prev_src[:, :3] += np.float32(ws)  # some sources outside the exemplar
    pos = identity_pos(h, w) * 1.1 + rng.normal(0, 0.7, (h, w, 2)).astype(np.float32) + 3
    app = (rng.random((h, w)) * 255).astype(np.float32)
    flow = rng.normal(0, 2.0, (h + 7, w + 5, 2)).astype(np.float32)
    if quantized:
        prev_pos, prev_src, pos, flow = (np.round(a * 4) / 4 for a in (prev_pos, prev_src, pos, flow))
        style_app, app = np.round(style_app), np.round(app)
    prev_src[rng.random((ph, pw)) < 0.15] = NO_SOURCE
    active = rng.random((h, w)) < 0.85
    return dict(prev_src=prev_src.astype(np.float32), prev_pos=prev_pos.astype(np.float32),
                pos=pos.astype(np.float32), app=app.astype(np.float32),
                style_app=style_app.astype(np.float32), flow=flow.astype(np.float32),
                active=active)


# "thirds": with guide differences on a quarter-pixel grid, some Newton steps
# j @ d + 0.5 land exactly on an integer without FMA and just below with it
# (e.g. (1/3) 2.75 + (1/3) 1.75 + 0.5); see also the integer-ties test below.
JACOBIANS = {"identity": np.eye(2), "fit": np.array([[0.9, 0.05], [-0.04, 0.92]]),
             "thirds": np.array([[1.0 / 3.0, 1.0 / 3.0], [2.0 / 3.0, -1.0 / 3.0]])}


def propagate_kwargs(case, motion, origin, active, iterations=1, jacobian="fit"):
    """Keyword arguments of ``propagate`` for ``motion``: "flow" (the flow
    of this box), "flow region" (a larger region 1 left, 2 up) or "guide"."""
    kwargs = dict(prev_origin=(origin[0] - 3, origin[1] - 2), origin=origin,
                  active=case["active"] if active else None)
    h, w = case["pos"].shape[:2]
    if motion == "flow":
        kwargs["flow"] = case["flow"][:h, :w]
    elif motion == "flow region":
        kwargs.update(flow=case["flow"], flow_origin=(origin[0] - 1, origin[1] - 2))
    else:
        kwargs.update(prev_pos=case["prev_pos"], inverse_jacobian=JACOBIANS[jacobian],
                      iterations=iterations)
    return kwargs


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("motion", ["flow", "flow region", "guide"])
@pytest.mark.parametrize("with_app", [True, False])
@pytest.mark.parametrize("active", [True, False])
def test_host_kernels_propagate_equals_numba(host_gpu, seed, motion, with_app, active):
    case = propagate_case(seed)
    params = LookupParams(lam_pos=2.5, lam_app=2.0, threshold=60.0)
    app = case["app"] if with_app else None
    for origin in ((3, 2), (40, 17)):
        kwargs = propagate_kwargs(case, motion, origin, active, iterations=seed)
        cpu = propagate(case["prev_src"], case["pos"], app, case["style_app"], params, **kwargs)
        host = gpu.propagate(case["prev_src"], case["pos"], app, case["style_app"], params, **kwargs)
        for a, b in zip(host, cpu):
            assert_bits_equal(a, b)
        need = cpu[2][case["active"]] if active else cpu[2]
        assert 0.1 < need.mean() < 0.9  # both outcomes are exercised
    assert host_gpu == [gpu.propagate_kernel_name(motion != "guide")] * 2


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("motion", ["flow region", "guide"])
@pytest.mark.parametrize("threshold", [4.0, 8.5, 20.0])
def test_host_kernels_propagate_agrees_on_ties_and_half_pixels(host_gpu, seed, motion, threshold):
    case = propagate_case(seed, quantized=True)
    params = LookupParams(lam_pos=2.0, lam_app=0.5, threshold=threshold)
    for jacobian in ("identity", "thirds"):
        kwargs = propagate_kwargs(case, motion, (5, 9), True, iterations=2, jacobian=jacobian)
        cpu = propagate(case["prev_src"], case["pos"], case["app"], case["style_app"], params,
                        **kwargs)
        host = gpu.propagate(case["prev_src"], case["pos"], case["app"], case["style_app"], params,
                             **kwargs)
        for a, b in zip(host, cpu):
            assert_bits_equal(a, b)


@pytest.mark.parametrize("iterations", [1, 2])
def test_host_kernels_propagate_newton_steps_on_integer_ties(host_gpu, iterations):
    """Every guide difference of a quarter-pixel grid in [-6, 6]^2 against a
    Jacobian of thirds: about 2% of the steps j @ d + 0.5 are an integer in
    float64 without FMA and just below it with one (and vice versa), so a
    contracted step (or one in float32) moves q elsewhere and shows in the
    sources."""
    n = 49
    pos = (identity_pos(n, n) - 24) / 4  # the guide difference itself: prev_pos is 0
    prev_pos = np.zeros((n + 40, n + 40, 2), np.float32)
    rng = np.random.default_rng(iterations)
    _, style_app = make_style(rng)
    hs, ws = style_app.shape
    prev_src = np.stack([rng.integers(0, ws * 4, prev_pos.shape[:2]),
                         rng.integers(0, hs * 4, prev_pos.shape[:2])], -1).astype(np.float32) / 4
    params = LookupParams(lam_pos=0.0, lam_app=0.0, threshold=1.0)  # sources inside are kept
    for jacobian in (np.array([[2.0, 2.0], [2.0, -2.0]]) / 3, np.array([[2.0, 1.0], [1.0, 2.0]]) / 3):
        kwargs = dict(prev_pos=prev_pos, inverse_jacobian=jacobian, iterations=iterations,
                      origin=(20, 20))
        cpu = propagate(prev_src, pos, None, style_app, params, **kwargs)
        host = gpu.propagate(prev_src, pos, None, style_app, params, **kwargs)
        for a, b in zip(host, cpu):
            assert_bits_equal(a, b)
        assert cpu[2].mean() < 0.5


def test_host_kernels_propagate_out_and_merge(host_gpu):
    """``out`` is filled and returned; the merge takes the fresh lookup where
    needed, as the Numba merge does."""
    case = propagate_case(7)
    h, w = case["pos"].shape[:2]
    params = LookupParams(lam_pos=2.5, lam_app=2.0, threshold=60.0)
    kwargs = propagate_kwargs(case, "flow region", (6, 4), True)
    out = (np.full((h, w, 2), 3, np.float32), np.full((h, w, 2), 3, np.int32), np.ones((h, w), bool))
    host = gpu.propagate(case["prev_src"], case["pos"], case["app"], case["style_app"], params,
                         out=out, **kwargs)
    assert all(a is b for a, b in zip(host, out))
    cpu = propagate(case["prev_src"], case["pos"], case["app"], case["style_app"], params, **kwargs)
    for a, b in zip(host, cpu):
        assert_bits_equal(a, b)
    rng = np.random.default_rng(7)
    fresh = np.stack([rng.integers(0, 32, (h, w)), rng.integers(-5, 40, (h, w))], -1).astype(np.int32)
    src, nnf, need = (a.copy() for a in cpu)
    _merge_kernel(fresh, need, nnf, src)
    host_src, host_nnf, _ = host
    assert gpu.merge(fresh, need, host_nnf, host_src) is None
    assert_bits_equal(host_nnf, nnf)
    assert_bits_equal(host_src, src)
    assert host_gpu == [gpu.propagate_kernel_name(True), gpu.MERGE_KERNEL]


def test_host_kernels_propagate_checks_like_the_cpu(host_gpu):
    case = propagate_case(0)
    h, w = case["pos"].shape[:2]
    params = LookupParams(lam_pos=2.0, lam_app=2.0)
    args = (case["prev_src"], case["pos"], None, case["style_app"], params)
    bad = [dict(flow=np.zeros((2, 2, 2), np.float32)),                      # too small
           dict(flow=case["flow"][:h, :w], flow_origin=(1, 0)),             # box not covered
           dict(prev_pos=case["prev_pos"]),                                  # no Jacobian
           dict(prev_pos=case["prev_pos"][1:], inverse_jacobian=np.eye(2)),  # wrong shape
           dict(prev_pos=case["prev_pos"], inverse_jacobian=np.eye(2), iterations=-1),
           dict(flow=case["flow"][:h, :w], active=np.ones((h, w + 1), bool))]
    for kwargs in bad:
        with pytest.raises(ValueError) as cpu_error:
            propagate(*args, **kwargs)
        with pytest.raises(ValueError) as host_error:
            gpu.propagate(*args, **kwargs)
        assert str(host_error.value) == str(cpu_error.value)
    with pytest.raises(ValueError, match="out"):  # written by the kernel: C-contiguous
        gpu.propagate(*args, flow=case["flow"][:h, :w],
                      out=(np.empty((h, w, 2), np.float32), np.empty((w, h, 2), np.int32).swapaxes(0, 1),
                           np.empty((h, w), bool)))
    with pytest.raises(TypeError, match="style_app"):
        gpu.propagate(*args[:3], case["style_app"].astype(np.float64), params, flow=case["flow"][:h, :w])
    with pytest.raises(ValueError, match="nnf"):
        gpu.merge(np.zeros((h, w, 2), np.int32), np.zeros((h, w), bool),
                  np.zeros((h, w, 2), np.int64), np.zeros((h, w, 2), np.float32))
    assert host_gpu == []


def temporal_case(seed, *, h=23, w=31, quantized=False):
    """Arguments of ``temporal_filter``: the previous history a little larger
    (NO_HISTORY holes), a flow on a larger region.

    ``quantized`` puts the flow on an eighth-pixel grid reaching a few pixels
    past the history, so that warped positions fall on whole pixels, on the
    last row and column and just outside the history.
    """
    rng = np.random.default_rng(seed)
    current = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    prev = rng.uniform(0, 255, (h + 4, w + 2, 3)).astype(np.float32)
    prev[rng.random(prev.shape[:2]) < 0.1, 0] = NO_HISTORY
    flow = rng.uniform(-3, 3, (h + 6, w + 5, 2)).astype(np.float32)
    if quantized:
        flow = (np.round(flow * 8) / 8).astype(np.float32)
    active = rng.random((h, w)) < 0.85
    return current, prev, flow, active


TEMPORAL_ORIGINS = dict(origin=(12, 7), prev_origin=(11, 5), flow_origin=(9, 4))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("active", [True, False])
@pytest.mark.parametrize("quantized", [False, True])
def test_host_kernels_temporal_filter_equals_numba(host_gpu, seed, clamp, active, quantized):
    current, prev, flow, mask = temporal_case(seed, quantized=quantized)
    alpha = (0.75, 0.7, 0.3137)[seed]
    kwargs = dict(active=mask if active else None, clamp=clamp, **TEMPORAL_ORIGINS)
    cpu = current.copy()
    cpu_hist = temporal_filter(cpu, prev, flow, alpha, **kwargs)
    host = current.copy()
    history = np.full(cpu_hist.shape, 9.0, np.float32)
    host_hist = gpu.temporal_filter(host, prev, flow, alpha, history=history, **kwargs)
    assert host_hist is history
    assert_bits_equal(host_hist, cpu_hist)
    assert_bits_equal(host, cpu)
    assert host_gpu == list(gpu.temporal_kernel_names(clamp))  # two passes


def test_host_kernels_temporal_filter_over_a_stream(host_gpu):
    """Frame after frame, each history fed back: the same outputs and
    histories as the Numba filter (the history of one call is the previous
    one of the next)."""
    rng = np.random.default_rng(11)
    h, w = 20, 26
    cpu_hist = host_hist = None
    for t in range(5):
        current = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        flow = rng.normal(0, 1.5, (h, w, 2)).astype(np.float32)
        active = rng.random((h, w)) < 0.9
        cpu, host = current.copy(), current.copy()
        cpu_hist = temporal_filter(cpu, cpu_hist, flow, 0.75, active=active)
        host_hist = gpu.temporal_filter(host, host_hist, flow, 0.75, active=active)
        assert_bits_equal(host_hist, cpu_hist)
        assert_bits_equal(host, cpu)
    assert len(host_gpu) == 2 * 4  # the first frame has no history: no kernel


def test_host_kernels_temporal_filter_without_history_and_checks(host_gpu):
    current, prev, flow, active = temporal_case(2)
    for args in ((None, flow, 0.7), (prev, None, 0.7), (prev, flow[:23, :31], 0.0)):
        cpu = temporal_filter(current.copy(), *args, active=active, **TEMPORAL_ORIGINS)
        assert_bits_equal(gpu.temporal_filter(current.copy(), *args, active=active,
                                              **TEMPORAL_ORIGINS), cpu)
    empty = np.zeros((0, 5, 3), np.uint8)
    assert gpu.temporal_filter(empty, prev, flow, 0.5).shape == (0, 5, 3)
    assert host_gpu == []
    frame = np.zeros((4, 4, 3), np.uint8)
    bad = [(frame[..., 0], prev, flow, 0.5, {}),
           (frame, prev, flow, 1.0, {}),
           (frame, prev, flow, 0.5, dict(active=np.ones((4, 5), bool))),
           (frame, prev, flow, 0.5, dict(history=np.zeros((4, 4, 3), np.float64))),
           (frame, prev[..., :2], flow, 0.5, {}),
           (frame, prev, flow[:2], 0.5, {}),
           (frame, prev, flow, 0.5, dict(flow_origin=(1, 0)))]
    for current, prev_history, f, alpha, kwargs in bad:
        with pytest.raises(ValueError) as cpu_error:
            temporal_filter(current.copy(), prev_history, f, alpha, **kwargs)
        with pytest.raises(ValueError) as host_error:
            gpu.temporal_filter(current.copy(), prev_history, f, alpha, **kwargs)
        if "history" not in kwargs:  # the GPU also asks for a C-contiguous history
            assert str(host_error.value) == str(cpu_error.value)
    with pytest.raises(ValueError, match="current"):  # filtered in place: written by the kernel
        gpu.temporal_filter(np.zeros((4, 4, 6), np.uint8)[..., ::2], prev, flow, 0.5)
    assert host_gpu == []


# ---------------------------------------------------------------------------
# g++: the positional guide and the composite; device memory; the signatures
# ---------------------------------------------------------------------------

def face_landmarks(rng, h, w):
    """68 landmarks spread over (and a little past) an (h, w) frame, and
    exemplar landmarks: a scaled, shifted, noisy copy."""
    target = np.stack([rng.uniform(-0.1 * w, 1.1 * w, 68), rng.uniform(-0.1 * h, 1.1 * h, 68)], -1)
    style = target * 0.6 + rng.normal(0, 2.0, (68, 2)) + 7
    return target.astype(np.float32), style.astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (11, 1), (37, 53), (120, 97), (240, 320)])
@pytest.mark.parametrize("grid", [1, 3, 10])
def test_host_kernels_positional_guide_equals_mls(host_cupy, shape, grid):
    """The MLS map at the nodes by one kernel (the landmarks by value: no
    copy), the pixels by the upsampling kernel: the guide of guides.mls bit
    for bit."""
    rng = np.random.default_rng(shape[0] * 7 + grid)
    target, style = face_landmarks(rng, *shape)
    cpu = positional_guide(shape, target, style, grid=grid)
    out = gpu.DeviceBuffers().get("pos", shape + (2,), np.float32)
    dev = gpu.positional_guide(shape, target, style, grid=grid, out=out)
    assert dev is out
    assert_bits_equal(dev.get(), cpu)
    assert host_cupy == [("to host", shape + (2,), "float32")]
    assert_bits_equal(gpu.positional_guide(shape, target, style, grid=grid).get(), cpu)
    with pytest.raises(TypeError, match="out"):  # the guide is written on the device
        gpu.positional_guide(shape, target, style, grid=grid, out=np.empty(shape + (2,), np.float32))


@pytest.mark.parametrize("n", [2, 5, 68, 100])
def test_host_kernels_mls_nodes_equal_numba(host_gpu, n):
    """The MLS map at the grid nodes, one thread per node in float64: Numba's
    nodes bit for bit, landmarks on nodes (the map takes the exemplar's
    landmark there) and between them, near and far."""
    from guides.mls import _check_points, grid_layout, mls_grid_nodes

    rng = np.random.default_rng(n)
    for shape, grid in (((31, 41), 1), ((240, 320), 10), ((1030, 966), 10)):
        h, w = shape
        target = np.stack([rng.uniform(-0.2 * w, 1.2 * w, n), rng.uniform(-0.2 * h, 1.2 * h, n)], -1)
        target[: n // 2] = np.round(target[: n // 2] / grid) * grid  # (near a node, or past the box)
        if grid == 1:
            target[0] = (5, 7)  # on a node: the map is the exemplar's landmark there
        style = target * 0.7 + rng.normal(0, 3.0, (n, 2)) + 11
        target, style = target.astype(np.float32), style.astype(np.float32)
        gh, gw, step_x, step_y = grid_layout(shape, grid)
        points = np.stack(_check_points(target, style))
        nodes = np.full((gh, gw, 2), np.nan, np.float32)
        args = gpu._pack(gpu.MLS_ARGS, dict(nodes=nodes),
                         dict(step_x=step_x, step_y=step_y, n=n, h=gh, w=gw))
        args["points"][0, :points.size] = points.ravel()
        (kernel,) = gpu._kernels((gpu.MLS_KERNEL,))
        gpu._launch_pixels(kernel, args)
        assert_bits_equal(nodes, mls_grid_nodes(shape, target, style, grid=grid))
        if grid == 1:
            np.testing.assert_array_equal(nodes[7, 5], style[0])
    assert host_gpu == [gpu.MLS_KERNEL] * 3


def test_host_kernels_positional_guide_takes_its_landmarks_by_value(host_cupy):
    """Up to MAX_DEVICE_POINTS landmarks travel in the kernel's struct; more
    is an error saying so, before any work."""
    from guides.mls import MAX_DEVICE_POINTS

    rng = np.random.default_rng(5)
    for n in (MAX_DEVICE_POINTS, MAX_DEVICE_POINTS + 1):
        target = rng.uniform(0, 40, (n, 2)).astype(np.float32)
        style = (target * 1.5 + 3).astype(np.float32)
        if n > MAX_DEVICE_POINTS:
            with pytest.raises(ValueError, match=f"at most {MAX_DEVICE_POINTS} points"):
                gpu.positional_guide((30, 40), target, style)
        else:
            assert_bits_equal(gpu.positional_guide((30, 40), target, style).get(),
                              positional_guide((30, 40), target, style))
    assert host_cupy == [("to host", (30, 40, 2), "float32")]


@pytest.mark.parametrize("box", [(0, 0, 40, 30), (5, 7, 33, 30), (30, 20, 40, 30), (3, 4, 3, 9)])
def test_host_kernels_composite_equals_numba(host_gpu, box):
    rng = np.random.default_rng(sum(box))
    frame = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    fg = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    mask = rng.random((y1 - y0, x1 - x0)).astype(np.float32)
    # at and just below the cut, 0 and 1, and weights whose products round at .5
    special = np.float32([0, 1, MIN_WEIGHT, np.nextafter(MIN_WEIGHT, np.float32(0)), 0.5, 0.25,
                          0.75, 1 / 3])
    pick = rng.random(mask.shape) < 0.4
    mask[pick] = rng.choice(special, int(pick.sum()))
    # weights that put channel 0 at k + 1/2 but for float32 rounding, where
    # float32 and float64 arithmetic round apart about half the time
    b = frame[y0:y1, x0:x1, 0].astype(np.float64)
    d = fg[..., 0] - b
    tie = (np.floor(b + rng.random(d.shape) * d) + 0.5 - b) / np.where(d == 0, 1, d)
    pick = (rng.random(mask.shape) < 0.3) & (d != 0) & (tie > 0) & (tie <= 1)
    mask[pick] = tie[pick]
    region = HeadRegion(box, mask)
    cpu = composite(frame, fg, region)
    assert_bits_equal(gpu.composite(frame, fg, region), cpu)
    inplace = frame.copy()
    assert gpu.composite(inplace, fg, region, out=inplace) is inplace
    assert_bits_equal(inplace, cpu)
    other = np.zeros_like(frame)
    assert gpu.composite(frame, fg, region, out=other) is other
    assert_bits_equal(other, cpu)
    assert host_gpu == ([gpu.COMPOSITE_KERNEL] * 3 if x1 > x0 and y1 > y0 else [])
    with pytest.raises(ValueError) as cpu_error:
        composite(frame, fg[1:], region)
    with pytest.raises(ValueError) as host_error:
        gpu.composite(frame, fg[1:], region)
    assert str(host_error.value) == str(cpu_error.value)


def appearance_case(rng, h, w, kind):
    """A frame holding an (h, w) box at (3, 2) (its rows strided), the
    exemplar's quantiles and a head mask of ``kind``: soft, None, or empty."""
    import cv2

    frame = np.zeros((h + 5, w + 7, 3), np.uint8)
    base = smooth_noise(rng, (h, w), sigma=3.0) * 90 + rng.normal(0, 12, (h, w))
    for c in range(3):  # shading with fine detail, channels apart
        frame[2:2 + h, 3:3 + w, c] = np.clip(base * (0.8 + 0.2 * c) + 110 + 20 * c, 0, 255)
    frame[2:2 + h, 3:3 + w][rng.random((h, w)) < 0.02] = 255  # speckles: the histogram's tails
    style = rng.normal(128, 35, (64, 48)).astype(np.float32)
    quantiles = quantile_function(np.clip(style, 0, 255))
    mask = None
    if kind == "soft":
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (w // 2, h // 2), (max(w // 3, 1), max(h // 3, 1)), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(min(h, w) / 12, 0.5))
        mask[mask.shape[0] // 2, mask.shape[1] // 2] = 1.0
    elif kind == "empty":
        mask = np.zeros((h, w), np.float32)
    return frame, frame[2:2 + h, 3:3 + w], quantiles, mask


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 7), (9, 16), (37, 53), (120, 97), (161, 130)])
@pytest.mark.parametrize("kind", ["soft", None, "empty"])
def test_host_kernels_appearance_guide_equals_numba(host_gpu, shape, kind):
    """The luminance, the pyramid, the blur, the detail's counts, the
    matching table and the guide, from a box of a frame read in place: the
    guide of guides.appearance bit for bit, and each step's array too."""
    import cv2

    from guides.buffers import Buffers

    rng = np.random.default_rng(shape[0] * 31 + shape[1])
    frame, box, quantiles, mask = appearance_case(rng, *shape, kind)
    cpu_buffers, buffers = Buffers(), gpu.DeviceBuffers()
    cpu = target_appearance(box, quantiles, mask, buffers=cpu_buffers)
    out = np.full(shape, np.nan, np.float32)
    assert gpu.target_appearance(box, quantiles, mask, buffers=buffers, out=out) is out
    assert_bits_equal(out, cpu)
    for name in ("detail_gray", "detail_up"):
        np.testing.assert_array_equal(buffers._flat[name][:box.size // 3],
                                      cpu_buffers._flat[name][:box.size // 3])
    small = cv2.pyrDown(cv2.pyrDown(cv2.pyrDown(cpu_buffers.get("detail_gray", shape, np.uint8))))
    np.testing.assert_array_equal(buffers.get("detail_down2", small.shape, np.uint8), small)
    assert host_gpu == ["sb_gray_kernel"] + ["sb_pyrdown_kernel"] * 3 + [
        "sb_detail_count_kernel", "sb_detail_table_kernel", "sb_detail_map_kernel"]
    assert_bits_equal(gpu.target_appearance(box, quantiles, mask), cpu)  # without buffers


def test_host_kernels_appearance_guide_of_a_photo(host_gpu, hopper, style):
    """Grace Hopper's head as the stream cuts it (a real photo's histogram,
    the box of a frame, its soft head mask), matched to an exemplar's."""
    from guides.mask import head_region

    frame, landmarks = hopper
    region = head_region(frame.shape, landmarks)
    x0, y0, x1, y1 = region.box
    box = frame[y0:y1, x0:x1]
    for mask in (region.mask, None):
        assert_bits_equal(gpu.target_appearance(box, style.quantiles, mask),
                          target_appearance(box, style.quantiles, mask))


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5), (24, 31), (97, 120), (240, 320)])
@pytest.mark.parametrize("pad", [(0, 0, 0, 0), (3, 0, 16, 1), (16, 16, 16, 16)])
def test_host_kernels_flow_upsampling_equals_numba(host_gpu, size, pad):
    """The flow from DIS's half size to the box's, grown at its edges: the
    CPU's bit for bit, into ``out`` or a new array."""
    rng = np.random.default_rng(size[0] + 7 * size[1])
    half = (smooth_noise(rng, ((size[0] + 1) // 2, (size[1] + 1) // 2, 2), sigma=1.5) * 9
            ).astype(np.float32)
    cpu = upsample_flow(half, size, pad)
    out = np.full(cpu.shape, np.nan, np.float32)
    assert gpu.upsample_flow(half, size, pad, out=out) is out
    assert_bits_equal(out, cpu)
    assert_bits_equal(gpu.upsample_flow(half, size, pad), cpu)
    assert host_gpu == [gpu.FLOW_UP_KERNEL] * 2
    with pytest.raises(ValueError, match="half"):
        gpu.upsample_flow(half[1:], size, pad)


@pytest.mark.parametrize("shape, matrix", [
    ((72, 88), [[1.02, 0.01, 1.3], [-0.01, 1.02, -0.8]]),
    ((75, 97), [[0.99, 0.0, -2.6], [0.0, 0.99, 1.7]]),  # odd sizes: a level's last row dropped
    ((40, 36), [[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]),  # one level: the finest is the coarsest
    ((121, 163), [[0.998, -0.035, 6.0], [0.035, 0.998, -3.0]]),  # a turn, below the finest level
    ((6, 7), [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),  # under a patch: no search
])
def test_host_kernels_dis_flow_equals_numba(host_gpu, shape, matrix):
    """The DIS flow of blit.dis, bit for bit, into ``out`` or a new array,
    its pyramid and work arrays from buffers or not."""
    a = _portrait(shape)
    b, _ = _moved(a, matrix)
    cpu = dis.dis_flow(b, a)
    out = np.full(cpu.shape, np.nan, np.float32)
    assert gpu.dis_flow(b, a, out=out) is out
    assert_bits_equal(out, cpu)
    levels = dis.pyramid_levels(shape)
    searched = levels - min(dis.FINEST, levels) + 1 if min(shape) >= dis.PATCH else 0
    assert host_gpu.count("sb_dis_halve_kernel") == levels
    assert host_gpu.count("sb_dis_search_kernel") == dis.ROUNDS * searched
    buffers = gpu.DeviceBuffers()
    for _ in range(2):
        assert_bits_equal(gpu.dis_flow(b, a, buffers=buffers), cpu)
    # other settings: a patch of 6 every 3 px, 2 rounds of 3 steps, to the full size
    other = dict(patch=6, stride=3, iterations=6, rounds=2, finest=0)
    assert_bits_equal(gpu.dis_flow(b, a, **other), dis.dis_flow(b, a, **other))


def test_host_kernels_luminance_and_pyr_down_read_a_box_in_place(host_gpu, hopper):
    """gpu.luminance and gpu.pyr_down on a box of an image (its rows apart):
    the appearance guide's luminance and cv2.pyrDown, bit for bit."""
    import cv2

    from guides.appearance import _GRAY_TABLES, _gray_kernel

    image, _ = hopper
    whole = np.empty(image.shape[:2], np.uint8)
    _gray_kernel(image, _GRAY_TABLES, whole)
    for y0, y1, x0, x1 in ((0, image.shape[0], 0, image.shape[1]), (31, 250, 17, 200),
                           (5, 6, 9, 10), (40, 43, 60, 61)):
        box = image[y0:y1, x0:x1]
        want = np.empty(box.shape[:2], np.uint8)
        _gray_kernel(box, _GRAY_TABLES, want)
        assert_bits_equal(gpu.luminance(box), want)
        assert_bits_equal(gpu.pyr_down(want), cv2.pyrDown(want))
        part = whole[y0:y1, x0:x1]  # (rows apart)
        assert_bits_equal(gpu.pyr_down(part), cv2.pyrDown(part))
    with pytest.raises(ValueError, match="src: expected its pixels' bytes contiguous"):
        gpu.pyr_down(whole[:, ::2])
    with pytest.raises(ValueError, match=r"image: expected an \(H, W, 3\) uint8"):
        gpu.luminance(whole)


def test_host_kernels_dis_flow_checks(host_gpu):
    a = np.zeros((20, 30), np.uint8)
    with pytest.raises(ValueError, match="one shape"):
        gpu.dis_flow(a, a[1:].copy())
    with pytest.raises(ValueError, match="i1: expected a C-contiguous"):
        gpu.dis_flow(a, a[:, ::2])
    with pytest.raises(ValueError, match="out"):
        gpu.dis_flow(a, a, out=np.empty((20, 30, 2), np.float64))


def mask_cases(rng):
    """(small, factor, offset, shape): masks blurred at 1/factor resolution
    and the boxes read from their enlargement, corners and edges included."""
    for factor, (sh, sw) in ((1, (1, 1)), (1, (7, 5)), (2, (1, 3)), (3, (9, 11)), (4, (30, 26)),
                             (9, (13, 12)), (10, (5, 7))):
        small = np.clip(smooth_noise(rng, (sh, sw), sigma=1.0) * 2 + 0.5, 0, 1).astype(np.float32)
        small.flat[0] = 1.0  # (a value at 1: the cut)
        gh, gw = sh * factor, sw * factor
        yield small, factor, (0, 0), (gh, gw)
        yield small, factor, (gw // 3, gh - gh // 2), (gh // 2, gw - gw // 3 - 1)
        yield small, factor, (gw - 1, 0), (gh, 1)


def test_host_kernels_mask_enlargement_equals_numba(host_gpu):
    """The head mask from its blur's resolution to the box's: the CPU's bit
    for bit, into ``out`` or a new array; an empty box launches nothing."""
    launches = 0
    for small, factor, offset, shape in mask_cases(np.random.default_rng(11)):
        cpu = enlarge_mask(small, factor, offset, shape)
        out = np.full(cpu.shape, np.nan, np.float32)
        assert gpu.enlarge_mask(small, factor, offset, shape, out=out) is out
        assert_bits_equal(out, cpu)
        assert_bits_equal(gpu.enlarge_mask(small, factor, offset, shape), cpu)
        launches += 2 if cpu.size else 0
    assert host_gpu == [gpu.MASK_UP_KERNEL] * launches
    assert gpu.enlarge_mask(np.ones((3, 3), np.float32), 2, (1, 1), (0, 4)).shape == (0, 4)
    assert len(host_gpu) == launches
    with pytest.raises(ValueError, match="not inside"):
        gpu.enlarge_mask(np.ones((3, 3), np.float32), 2, (1, 1), (6, 4))


def hopper_outlines(hopper):
    """Grace Hopper's head at the stream's sizes as HeadOutlines: reduction
    factors 1 to 10, heads cut by the frame's edge (and the blur's
    BORDER_REFLECT), a head outside the frame."""
    image, lm = hopper
    for scale, shift in ((0.08, (0, 0)), (0.5, (0, 0)), (1.0, (0.3, 0)), (4.0, (0, 0)),
                         (4.0, (-0.3, -0.3)), (4.0, (0.3, 0)), (1.0, (2.0, 0))):
        h, w = int(image.shape[0] * scale), int(image.shape[1] * scale)
        marks = (lm * scale + np.array(shift, np.float32) * [w, h]).astype(np.float32)
        yield head_outline((h, w), marks, margin=2)


def test_host_kernels_head_mask_of_a_photo(host_gpu, hopper):
    """The head mask made from its outline by the host build of the
    kernels: the CPU's bit for bit, into ``out`` or a new array, work
    arrays from buffers; nothing launched for a head outside the frame."""
    outlines = list(hopper_outlines(hopper))
    assert {o.factor for o in outlines} >= {1, 4, 9} and any(o.reflect for o in outlines)
    buffers = gpu.DeviceBuffers()
    for outline in outlines:
        cpu = outline_mask(outline)
        host_gpu.clear()
        out = np.full(cpu.shape, np.nan, np.float32)
        assert gpu.outline_mask(outline, out=out, buffers=buffers) is out
        assert_bits_equal(out, cpu)
        assert_bits_equal(gpu.outline_mask(outline), cpu)
        assert host_gpu == ([*gpu.MASK_KERNELS, gpu.MASK_UP_KERNEL] * 2 if cpu.size else [])
    assert {"mask_counts", "mask_small", "mask_row", "mask_blur"} <= set(buffers._flat)


@pytest.mark.parametrize("n", [3, 9, 41, 64])
def test_host_kernels_mask_of_random_polygons(host_gpu, n):
    """Random polygons (self-crossing, past the canvas, on sample rows) and
    blurs of both borders and radii 1 to 32: the CPU's masks bit for bit."""
    from guides.mask import HeadOutline, gaussian_taps

    rng = np.random.default_rng(n)
    for f, (sh, sw), sigma, reflect in ((1, (7, 5), 0.2, False), (3, (11, 9), 2.5, True),
                                        (4, (20, 33), 7.9, False), (9, (6, 4), 7.95, True)):
        poly = rng.integers(-60, 16 * sw * f + 60, (n, 2)).astype(np.int32)
        poly[1, 1] = poly[0, 1]
        outline = HeadOutline((3, 2, 3 + sw * f - 1, 2 + sh * f - 2), poly, f, (1, 2), (sh, sw),
                              gaussian_taps(sigma), reflect)
        assert_bits_equal(gpu.outline_mask(outline), outline_mask(outline))
    with pytest.raises(ValueError, match="polygon"):
        gpu.outline_mask(HeadOutline((0, 0, 4, 4), poly[:2], 1, (0, 0), (4, 4),
                                     gaussian_taps(1.0), False))


def test_host_kernels_level_bins_are_the_cpu_bins(harness):
    bins = np.zeros(511, np.int64)
    harness.sb_host_level_bins(bins.ctypes.data)
    np.testing.assert_array_equal(bins, _LEVEL_BINS)


def test_host_kernels_appearance_guide_checks(host_gpu):
    rng = np.random.default_rng(2)
    frame, box, quantiles, mask = appearance_case(rng, 20, 30, "soft")
    with pytest.raises(ValueError, match="mask: expected shape"):
        gpu.target_appearance(box, quantiles, mask[1:])
    with pytest.raises(ValueError, match="image: expected"):
        gpu.target_appearance(box[..., 0], quantiles, mask)
    with pytest.raises(ValueError, match="contiguous"):
        gpu.target_appearance(box[:, ::2], quantiles, mask[:, ::2])
    with pytest.raises(ValueError, match="out"):
        gpu.target_appearance(box, quantiles, mask, out=np.empty((20, 31), np.float32))
    assert host_gpu == []


def test_device_buffers_reuse_and_grow(host_cupy):
    buffers = gpu.DeviceBuffers()
    a = buffers.get("a", (4, 5), np.float32)
    assert isinstance(a, DeviceArray) and a.flags.c_contiguous and a.shape == (4, 5)
    assert buffers.get("a", (3, 5), np.float32).ctypes.data == a.ctypes.data  # smaller: reused
    assert buffers.get("a", (40, 50), np.float32).shape == (40, 50)  # larger: grown
    assert buffers.get("a", (2, 2), np.int32).dtype == np.int32
    assert buffers.nbytes > 0
    buffers.clear()
    assert buffers.nbytes == 0
    host = np.arange(12, dtype=np.int16).reshape(3, 4)
    dev = gpu.to_device(host)
    assert isinstance(dev, DeviceArray)
    assert gpu.to_device(host[:, ::2], out=buffers.get("b", (3, 2), np.int16)).shape == (3, 2)
    back = np.empty_like(host)
    assert gpu.to_host(dev, out=back) is back
    np.testing.assert_array_equal(back, host)
    assert host_cupy == [("to device", (3, 4), "int16"), ("to device", (3, 2), "int16"),
                         ("to host", (3, 4), "int16")]
    with pytest.raises(TypeError, match="host"):  # no hidden copies
        dev + host


def test_host_kernels_lookup_and_propagate_take_work_arrays_from_buffers(host_gpu):
    pos, tapp, app, table, bins, cell, params, jitter = lookup_case(4, levels=6)
    buffers = gpu.DeviceBuffers()
    for target_app in (None, tapp, None):
        np.testing.assert_array_equal(
            gpu.lookup(pos, target_app, app, table, bins, cell, params, jitter, origin=(3, 2),
                       buffers=buffers),
            lookup(pos, target_app, app, table, bins, cell, params, jitter, origin=(3, 2)))
    assert {"lookup_seeds", "lookup_no_app"} <= set(buffers._flat)
    case = propagate_case(3)
    kwargs = propagate_kwargs(case, "flow region", (5, 9), True)
    params = LookupParams(lam_pos=2.5, lam_app=2.0, threshold=60.0)
    cpu = propagate(case["prev_src"], case["pos"], None, case["style_app"], params, **kwargs)
    host = gpu.propagate(case["prev_src"], case["pos"], None, case["style_app"], params,
                         buffers=buffers, **kwargs)
    for a, b in zip(host, cpu):
        assert_bits_equal(a, b)
    assert "propagate_no_app" in buffers._flat


def test_gpu_functions_take_the_cpu_functions_arguments():
    """Each CUDA twin is called exactly as its CPU function."""
    pairs = [(gpu.lookup, lookup), (gpu.blend, blend), (gpu.denoise_nnf, denoise_nnf),
             (gpu.propagate, propagate),
             (gpu.merge, _merge_kernel.py_func), (gpu.temporal_filter, temporal_filter),
             (gpu.positional_guide, positional_guide), (gpu.composite, composite),
             (gpu.target_appearance, target_appearance), (gpu.upsample_flow, upsample_flow),
             (gpu.enlarge_mask, enlarge_mask), (gpu.outline_mask, outline_mask),
             (gpu.dis_flow, dis.dis_flow)]
    for twin, cpu in pairs:
        assert inspect.signature(twin) == inspect.signature(cpu), twin.__name__


# ---------------------------------------------------------------------------
# The stream with device="cuda" on the host build: the CPU stream, bit for bit
# ---------------------------------------------------------------------------

def cpu_twin(style, **kwargs):
    """A CPU stream with the flow a device stream makes by default (blit.dis,
    flow_engine="blit"): the device stream's output, bit for bit."""
    return Stylizer(style, flow_engine=kwargs.pop("flow_engine", "blit"), **kwargs)


def stream_pair(style, marks, device="cuda", **kwargs):
    """A CPU stream and a ``device`` one, each with its own scripted
    landmarker, both with ``flow_engine`` (default "blit")."""
    answers = [[m] if m is not None else [] for m in marks]
    kwargs.setdefault("flow_engine", "blit")
    return (Stylizer(style, landmarker=Script(answers), **kwargs),
            Stylizer(style, landmarker=Script(answers), device=device, **kwargs))


def frame_copies(stylizer, frame, index, background):
    """The copies Stylizer's docstring lists for this frame of a one-face clip
    with temporal="flow": (direction, shape, dtype name), in order. With
    flow_engine="blit" (the device's default) the flow is made on the device:
    the frame and the output only."""
    h, w = frame.shape[:2]
    (x0, y0, x1, y1), = stylizer.last_boxes

    copies = []
    if index == 0:  # the jitter and its seed labels, once
        levels = stylizer.options.levels
        copies += [("to device", (levels, 64, 64, 2), "float32"),
                   ("to device", (max(levels, 2), h, w), "uint8")]
    # the frame's guides first (Stylizer._prepare), then its painting
    def half(hh, ww):
        return ((hh + 1) // 2, (ww + 1) // 2, 2)

    if index and stylizer.flow_engine == "opencv":
        # the flow of the head box (the whole frame's with "stylize"), at DIS's half size
        copies.append(("to device", half(y1 - y0, x1 - x0) if background == "keep" else half(h, w),
                       "float32"))
    # the frame (its heads' appearance guides are made from it on the device,
    # and it is painted on; the head masks are made there from their outlines)
    copies += [("to device", (h, w, 3), "uint8")]
    return copies + [("to host", (h, w, 3), "uint8")]


def assert_frame_copies(copies, stylizer, frame, index, background):
    """``copies`` are :func:`frame_copies`: those of the guides in any order
    (the flow is made and copied in a thread of its own beside the other
    guides), then those of the painting in order."""
    want = frame_copies(stylizer, frame, index, background)
    assert sorted(copies[:-1]) == sorted(want[:-1])
    assert copies[-1] == want[-1]


@pytest.mark.parametrize("background", ["keep", "stylize"])
@pytest.mark.parametrize("denoise", [None, True])
@pytest.mark.parametrize("flow_engine", ["blit", "opencv"])
def test_host_kernels_stream_equals_the_cpu_stream(host_cupy, style, hopper, background, denoise,
                                                   flow_engine):
    """Stylizer(device="cuda") on the host build of the kernels: the CPU
    stream's output and NNFs, bit for bit, frame after frame (both with the
    flow of ``flow_engine``); the only copies are those its docstring lists
    (and no hidden ones: HostCupy refuses them). ``denoise=True`` adds the
    mode filter's kernel, no copy."""
    frames, marks = moving_clip(hopper, n=6)
    cpu, dev = stream_pair(style, marks, options=StylizeOptions(background=background,
                                                                denoise=denoise),
                           flow_engine=flow_engine)
    assert (cpu.device, dev.device) == ("cpu", "cuda")
    assert Stylizer(style, device="cuda").flow_engine == "blit"  # (the device's default)
    out = np.zeros_like(frames[0])
    for i, frame in enumerate(frames):
        host_cupy.clear()
        DeviceArray.sources.clear()
        assert dev(frame, out=out) is out
        copies = list(host_cupy)
        assert_bits_equal(out, cpu(frame))
        assert dev.last_boxes == cpu.last_boxes
        (nnf,), (want,) = dev.last_nnf, cpu.last_nnf
        assert isinstance(nnf, DeviceArray)
        assert_bits_equal(nnf.get(), want)
        assert_frame_copies(copies, dev, frame, i, background)
        assert set(dev.last_times) >= {"lookup", "blend", "temporal", "composite", "download"}
        # the large guide goes from page-locked memory: the flow
        (x0, y0, x1, y1), = dev.last_boxes
        box = (y1 - y0, x1 - x0) if background == "keep" else frame.shape[:2]
        flow = [] if i == 0 or flow_engine == "blit" else [
            (((box[0] + 1) // 2, (box[1] + 1) // 2, 2), "float32")]
        pinned = [(shape, dtype) for shape, dtype, locked in DeviceArray.sources if locked]
        assert pinned == flow
    # and only those: the guides' work arrays are in plain memory
    from blit.stream import _COPIED

    heads = [b for tr in dev._tracks for b in tr.slots]
    for buffers in dev._slots + heads:
        assert set(buffers.pinned._flat) <= set(_COPIED)
        assert not set(buffers._flat) & set(_COPIED)
    # (nothing of the heads on the host: their masks are made on the device)
    assert not any(buffers._flat or buffers.pinned._flat for buffers in heads)


def prefetched_and_cpu(style, hopper, case, *, wait):
    """The outputs of a device="cuda" stream with every frame prefetched one
    ahead, of a CPU stream frame by frame, and the kinds of work prefetched.
    ``wait``: the worker is let finish the next frame (its guides made and
    copied to the device) before this one is painted, the case where buffers
    shared by two frames in a row would show."""
    frames, answers, t, kwargs = prefetch_case(hopper, case)
    t = t or [None] * len(frames)
    cpu = cpu_twin(style, landmarker=Script(answers), **kwargs)
    want = [cpu(f, ti).copy() for f, ti in zip(frames, t)]
    got, kinds = [], set()
    with Stylizer(style, landmarker=Script(answers), device="cuda", **kwargs) as dev:
        got.append(dev(frames[0], t[0]).copy())  # (a parallel kernel has run)
        dev.prefetch(frames[1], t[1])
        for i in range(1, len(frames)):
            if i + 1 < len(frames):
                dev.prefetch(frames[i + 1], t[i + 1])
                if wait:
                    dev._pending[-1][3].result()
            kinds |= {kind for _, kind, _, _ in dev._pending}
            got.append(dev(frames[i], t[i]).copy())
        # the painting takes no CPU thread: the worker's guides have them all
        kinds.add(("worker's Numba threads", dev._worker().submit(numba.get_num_threads).result()))
    return got, want, kinds


def _side_threads_stream(style, hopper):
    """A device="cuda" stream on the host build, two frames in (its flow's
    thread started), and the clip's frames."""
    frames, marks = moving_clip(hopper, n=4)
    dev = Stylizer(style, landmarker=Script([[m] for m in marks]), device="cuda")
    dev(frames[0])
    dev(frames[1])
    return dev, frames


def _slow(fn, seconds, state):
    """``fn`` that sleeps first, and records in ``state`` when it runs and ends."""
    state["done"] = threading.Event()

    def slow(*args, **kwargs):
        state.setdefault("spans", []).append([time.perf_counter(), None])
        time.sleep(seconds)
        try:
            return fn(*args, **kwargs)
        finally:
            state["spans"][-1][1] = time.perf_counter()
            state["done"].set()

    return slow


def test_host_kernels_positional_guides_are_made_in_the_stream_thread(host_cupy, style,
                                                                     hopper):
    """On the device the positional guides' host part is their landmarks'
    checks and copy: they are made in the thread that makes the frame's
    guides, with no thread of their own (whose end would synchronise the
    device); only the flow has one."""
    dev, frames = _side_threads_stream(style, hopper)
    threads = []
    positions = dev._positions

    def noted(*args, **kwargs):
        threads.append(threading.current_thread())
        return positions(*args, **kwargs)

    dev._positions = noted
    dev(frames[2])
    assert threads == [threading.current_thread()]
    assert set(dev._side_pools) == {"flow"}


@pytest.mark.parametrize("fails", ["positional guides", "masks"])
def test_host_kernels_a_failure_in_the_frame_waits_for_its_side_threads(host_cupy, style,
                                                                        hopper, monkeypatch,
                                                                        fails):
    """Whatever fails in a frame's guides (the positional guides, the masks),
    the flow's thread has ended when the error reaches the caller: nothing
    writes the stream's buffers after it."""
    import blit.stream as stream

    dev, frames = _side_threads_stream(style, hopper)
    flow = {}
    dev._flow = _slow(dev._flow, 0.5, flow)

    def boom(*args, **kwargs):
        raise ZeroDivisionError(fails)

    if fails == "positional guides":
        dev._positions = boom
    else:
        monkeypatch.setattr(stream, "head_outline", boom)
    with pytest.raises(ZeroDivisionError):
        dev(frames[2])
    assert flow["done"].is_set()


class TimedScript(Script):
    """A :class:`Script` that takes ``seconds`` a call (the GIL let go, as
    mediapipe does) and notes each call's (start, end, thread name); it
    refuses to run in two threads at once."""

    def __init__(self, answers, seconds=0.0):
        super().__init__(answers)
        self.seconds, self.spans, self._busy = seconds, [], threading.Lock()

    def __call__(self, frame):
        assert self._busy.acquire(blocking=False), "the landmarker ran in two threads at once"
        try:
            t0 = time.perf_counter()
            time.sleep(self.seconds)
            answer = super().__call__(frame)
            self.spans.append((t0, time.perf_counter(), threading.current_thread().name))
            return answer
        finally:
            self._busy.release()


def test_host_kernels_landmarks_are_found_beside_the_guides(host_cupy, style, hopper):
    """Prefetched on the device (landmark_every=1), a frame's landmarks are
    found in a thread of their own while the worker makes the guides of the
    frame before: both take 0.15 s here, and they overlap. The output is the
    CPU stream's."""
    if numba.threading_layer() not in ("omp", "tbb"):
        pytest.skip("the prefetch worker makes the guides with Numba's omp or tbb layer only")
    frames, marks = moving_clip(hopper, n=5)
    answers = [[m] for m in marks]
    cpu = cpu_twin(style, landmarker=Script(answers))
    want = [cpu(f).copy() for f in frames]
    landmarker = TimedScript(answers, 0.15)
    with Stylizer(style, landmarker=landmarker, device="cuda") as dev:
        prepare, guides = dev._prepare, []

        def slow_prepare(*args, **kwargs):
            t0 = time.perf_counter()
            time.sleep(0.15)
            try:
                return prepare(*args, **kwargs)
            finally:
                guides.append((t0, time.perf_counter()))

        dev._prepare = slow_prepare
        got = [dev(frames[0]).copy()]
        dev.prefetch(frames[1])
        for i in range(1, len(frames)):
            if i + 1 < len(frames):
                dev.prefetch(frames[i + 1])
            got.append(dev(frames[i]).copy())
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")
    found = landmarker.spans
    assert len(found) == len(guides) == len(frames)
    assert all(name.startswith("styleblit-landmarks") for _, _, name in found[1:])
    # the landmarks of frame i + 1 began before the guides of frame i ended
    overlaps = [found[i + 1][0] < guides[i][1] for i in range(1, len(frames) - 1)]
    assert all(overlaps), overlaps


def test_host_kernels_carried_landmarks_bring_the_device_flow_back(host_cupy, style, hopper):
    """landmark_every=2 with the flow made on the device: the CPU stream's
    output; a frame whose landmarks are carried copies the half-size flow
    back to the host (where the landmarks are carried along it), and no
    frame copies a flow to the device."""
    frames, marks = moving_clip(hopper, n=6)
    cpu, dev = stream_pair(style, marks, landmark_every=2)
    for i, frame in enumerate(frames):
        host_cupy.clear()
        assert_bits_equal(dev(frame), cpu(frame))
        assert dev.last_searched == cpu.last_searched == (i % 2 == 0)
        back = [c for c in host_cupy if c[0] == "to host" and c[2] == "float32"]
        assert [c[1][2:] for c in back] == ([] if dev.last_searched else [(2,)])
        assert not [c for c in host_cupy if c[0] == "to device" and len(c[1]) == 3
                    and c[2] == "float32"]  # (the jitter table, (levels, 64, 64, 2), once)


@pytest.mark.parametrize("slow_worker", [0.0, 0.2])
def test_host_kernels_landmark_every_changed_midway_keeps_the_landmarkers_order(
        host_cupy, style, hopper, slow_worker):
    """landmark_every changed between prefetched frames (1, then 2, then back
    to 1) on the device: the landmarker sees the frames in order, in one
    thread at a time, and the output is the CPU stream's with the same
    changes. With the worker slowed down, it still has a frame to find the
    faces of when landmark_every goes back to 1 (the frames after it went to
    the landmarks' thread first: the landmarker saw frame 7 before frame 6
    and the output differed from frame 6 on; helper-51's review)."""
    if numba.threading_layer() not in ("omp", "tbb"):
        pytest.skip("the prefetch worker makes the guides with Numba's omp or tbb layer only")
    frames, marks = moving_clip(hopper, n=10)
    every = [1, 1, 1, 2, 2, 2, 2, 1, 1, 1]
    detected = [i for i, e in enumerate(every) if i % e == 0]  # (the stream's count is i)
    answers = [[marks[i]] for i in detected]
    cpu = cpu_twin(style, landmarker=Script(answers))
    want = []
    for f, e in zip(frames, every):
        cpu.landmark_every = e
        want.append(cpu(f).copy())
    landmarker, seen = TimedScript(answers, 0.02), []

    def spy(frame):
        seen.append(next(i for i, f in enumerate(frames) if np.array_equal(f, frame)))
        return landmarker(frame)

    with Stylizer(style, landmarker=spy, device="cuda") as dev:
        prepare = dev._prepare

        def slow_prepare(*args, **kwargs):
            time.sleep(slow_worker)
            return prepare(*args, **kwargs)

        dev._prepare = slow_prepare
        got = [dev(frames[0]).copy()]
        dev.landmark_every = every[1]
        dev.prefetch(frames[1])
        for i in range(1, len(frames)):
            if i + 1 < len(frames):
                dev.landmark_every = every[i + 1]
                dev.prefetch(frames[i + 1])
            got.append(dev(frames[i]).copy())
    assert seen == detected
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")


class FailingScript(Script):
    """A :class:`Script` whose call number ``fail_at`` raises."""

    def __init__(self, answers, fail_at):
        super().__init__(answers)
        self.fail_at = fail_at

    def __call__(self, frame):
        if self.calls == self.fail_at:
            self.calls += 1
            raise ZeroDivisionError("the landmarker failed")
        return super().__call__(frame)


@pytest.mark.parametrize("boil", [None, 8.0])
def test_host_kernels_a_landmarker_error_in_its_thread_moves_the_clock_on(host_cupy, style,
                                                                         hopper, boil):
    """The landmarker raising on a frame whose faces are found in the
    landmarks' thread: the error reaches the caller for that frame, the
    stream's clock moves on as the CPU stream's does (it stayed a frame
    behind, and with a boiling jitter every later frame differed:
    helper-51's review), and no thread is left after close()."""
    frames, marks = moving_clip(hopper, n=8)
    answers = [[m] for m in marks]
    cpu = cpu_twin(style, landmarker=FailingScript(answers, 3), boil_hz=boil)
    want = []
    for f in frames:
        try:
            want.append(cpu(f).copy())
        except ZeroDivisionError:
            want.append(None)
    got = []
    with Stylizer(style, landmarker=FailingScript(answers, 3), device="cuda",
                  boil_hz=boil) as dev:
        got.append(dev(frames[0]).copy())
        dev.prefetch(frames[1])
        for i in range(1, len(frames)):
            if i + 1 < len(frames):
                dev.prefetch(frames[i + 1])
            try:
                got.append(dev(frames[i]).copy())
            except ZeroDivisionError:
                got.append(None)
        assert dev._prep_index == cpu._prep_index
    assert [g is None for g in got] == [w is None for w in want] == [i == 3 for i in range(8)]
    for i, (a, b) in enumerate(zip(got, want)):
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")
    assert not [t.name for t in threading.enumerate()
                if t.name.endswith(f"-{id(dev):x}") or f"-{id(dev):x}_" in t.name]


PREFETCH_CASES = ["keep", "stylize", "two faces, lost and back", "boil", "guide"]


def test_host_kernels_reset_with_frames_prefetched_keeps_their_order(host_cupy, style, hopper):
    """test_stream's reset with frames prefetched, on the device: the CPU
    stream's output."""
    got, want = reset_while_prefetched(style, hopper, device="cuda", flow_engine="blit")
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")


@pytest.mark.parametrize("case", PREFETCH_CASES)
def test_host_kernels_prefetched_stream_equals_the_cpu_stream(host_cupy, style, hopper, case):
    """Stylizer(device="cuda") with prefetch(): the worker makes the next
    frame's guides and copies them to the device, into buffers of their own
    for each of three frames in a row, while this frame is painted (here it
    finishes first); the flow is made in a thread of its own beside the
    masks and the other guides. The CPU stream's
    output, bit for bit, frame after frame."""
    got, want, kinds = prefetched_and_cpu(style, hopper, case, wait=True)
    if numba.threading_layer() in ("omp", "tbb"):
        assert "frame" in kinds  # (else the worker finds the landmarks only)
    assert ("worker's Numba threads", numba.get_num_threads()) in kinds
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")
    # the worker and the flow's thread (none with the guide motion) work on
    # the stream's device, and what they queued there is done before the
    # stream's thread reads it
    threads = ["styleblit-prefetch-"] + (["styleblit-flow-"] if case != "guide" else [])
    log = [(name, what) for name, what in _HostCuda.log if what != "copy" or
           name.startswith(tuple(threads))]  # (the caller's thread copies too)
    assert all(name.startswith(tuple(threads)) for name, _ in log)
    for prefix in threads:
        asked = " ".join(what for name, what in log if name.startswith(prefix))
        # each task: the device entered, its copies, then its stream synchronised
        tasks = [task.split() for task in asked.split("device 0")[1:]]
        assert tasks and all(task[-2:] == ["synchronize", "exit"] and
                             set(task[:-2]) <= {"copy"} for task in tasks), (prefix, asked)
        # the worker copies the frames; the flow's thread none (made on the device)
        assert any("copy" in task for task in tasks) == (prefix == "styleblit-prefetch-"), prefix


@pytest.mark.parametrize("background", ["keep", "stylize"])
def test_host_kernels_stream_painted_shrunk_equals_the_cpu_stream(host_cupy, style, hopper,
                                                                 background):
    """scale="auto" on a face 2.7x the exemplar's: the frame is shrunk and
    the painting enlarged on the host, the kernels run on the device; the
    CPU stream's output, bit for bit, and the copies are those of the
    shrunk frame."""
    frames, marks = big_clip(hopper, n=4)
    size = frames[0].shape[1::-1]
    options = StylizeOptions(background=background)
    cpu, dev = (Stylizer(style, landmarker=ScriptAtSize([[m] for m in marks], size),
                         options=options, scale="auto", device=device, flow_engine="blit")
                for device in ("cpu", "cuda"))
    for i, frame in enumerate(frames):
        host_cupy.clear()
        out = dev(frame)
        copies = list(host_cupy)
        assert_bits_equal(out, cpu(frame))
        assert dev.painting_scale == cpu.painting_scale < 0.5
        small = np.empty(cpu._painted_shape(frame.shape) + (3,), np.uint8)
        assert_frame_copies(copies, dev, small, i, background)


@pytest.mark.parametrize("temporal", ["guide", None])
def test_host_kernels_stream_other_motions_lost_face_and_boiling(host_cupy, style, hopper, temporal):
    """The sources kept along the guide, or none kept; a face lost (held,
    then gone: the frame passes through) and found again; the strokes
    re-seeded: the CPU stream's output and NNFs."""
    frames, marks = moving_clip(hopper, n=4)
    # (a face is held once seen on two frames, blit.stream.MOVING; the strokes are
    # re-seeded on frames 3 and 5, the frame passed through is 6)
    marks = [marks[0], marks[1], None, marks[2], marks[2], None, None, marks[3]]
    frames = [frames[0], frames[1], frames[1], frames[2], frames[2], frames[2], frames[2],
              frames[3]]
    cpu, dev = stream_pair(style, marks, temporal=temporal, hold=0.04, boil_hz=12.0,
                           options=StylizeOptions(background="keep"))
    painted = []
    for frame in frames:
        host_cupy.clear()
        assert_bits_equal(dev(frame), cpu(frame))
        assert len(dev.last_nnf) == len(cpu.last_nnf)
        for nnf, want in zip(dev.last_nnf, cpu.last_nnf):
            assert_bits_equal(nnf.get(), want)
        painted.append(len(dev.last_nnf))
        if not dev.last_nnf:  # passed through: the frame in, the same frame out
            assert host_cupy == [("to device", frame.shape, "uint8"), ("to host", frame.shape, "uint8")]
    assert painted == [1, 1, 1, 1, 1, 1, 0, 1]


def test_stylizer_device_argument(style):
    assert Stylizer(style, landmarker=Script([[]])).device == "cpu"
    assert Stylizer(style, landmarker=Script([[]]), device="auto").device == (
        "cuda" if gpu.available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        Stylizer(style, device="gpu")


@pytest.mark.skipif(gpu.available(), reason="a CUDA device is present")
def test_stylizer_on_cuda_without_a_device_says_what_to_install(style):
    with pytest.raises(gpu.CudaUnavailableError, match="device='cuda'") as info:
        Stylizer(style, landmarker=Script([[]]), device="cuda")
    if importlib.util.find_spec("cupy") is None:
        assert 'pip install -e ".[gpu]"' in str(info.value)


# ---------------------------------------------------------------------------
# On a CUDA device: the public functions on CuPy arrays equal the CPU path
# ---------------------------------------------------------------------------

def _to_device(args):
    import cupy as cp

    return tuple(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)


@pytest.mark.gpu
@pytest.mark.parametrize("origin", [(0, 0), (5, 9), (67, 130)])
@pytest.mark.parametrize("levels", [1, 3, 5, 7, 12])
@pytest.mark.parametrize("threshold", [0.0, 10.0, 50.0, 1e9])
def test_gpu_lookup_equals_cpu(threshold, levels, origin):
    import cupy as cp

    args = lookup_case(1, levels=levels, threshold=threshold, quantized=threshold == 10.0)
    cpu = lookup(*args, origin=origin)
    nnf = lookup(*_to_device(args), origin=origin)
    assert isinstance(nnf, cp.ndarray) and nnf.dtype == np.int32
    np.testing.assert_array_equal(cp.asnumpy(nnf), cpu)
    h, w = args[0].shape[:2]
    labels = seed_labels((origin[1] + h, origin[0] + w), args[7], levels)
    with_labels = lookup(*_to_device(args), origin=origin, labels=cp.asarray(labels))
    np.testing.assert_array_equal(cp.asnumpy(with_labels), cpu)


@pytest.mark.gpu
def test_gpu_lookup_position_only_active_and_out():
    import cupy as cp

    rng = np.random.default_rng(8)
    pos, tapp, app, table, bins, cell, _, jitter = lookup_case(2, levels=7, h=120, w=97)
    params = LookupParams.faceblit(app.shape, threshold=30.0)
    active = rng.random(pos.shape[:2]) < 0.7
    for target_app in (None, tapp):
        cpu = lookup(pos, target_app, app, table, bins, cell, params, jitter, origin=(11, 2),
                     active=active)
        out = cp.full(cpu.shape, 5, cp.int32)
        dev = lookup(*_to_device((pos, target_app, app, table, bins, cell, params, jitter)),
                     origin=(11, 2), active=cp.asarray(active), out=out)
        assert dev is out
        np.testing.assert_array_equal(cp.asnumpy(dev), cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_gpu_blend_equals_cpu(radius):
    import cupy as cp

    rng = np.random.default_rng(9)
    style = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    nnf = random_nnf(rng, 230, 310, 30, 40)
    cpu = blend(style, nnf, radius, out=np.full((230, 310, 3), 7, np.uint8))
    dev = blend(cp.asarray(style), cp.asarray(nnf), radius, out=cp.full((230, 310, 3), 7, cp.uint8))
    assert isinstance(dev, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(dev), cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("radius", [1, 2, 3])
def test_gpu_denoise_equals_cpu(radius):
    import cupy as cp

    rng = np.random.default_rng(radius)
    nnf = patchy_nnf(rng, 230, 310, 240, 320, 6)
    cpu = denoise_nnf(nnf, radius, (240, 320))
    dev = denoise_nnf(cp.asarray(nnf), radius, (240, 320))
    assert isinstance(dev, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(dev), cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("levels", [1, 4, 7])
def test_gpu_identity_invariants(levels):
    import cupy as cp

    rng = np.random.default_rng(3)
    style, _ = make_style(rng, 48, 40)
    app = rng.permutation(48 * 40).reshape(48, 40).astype(np.float32) * (255.0 / (48 * 40))
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=50.0, levels=levels)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=16)
    pos = identity_pos(48, 40)
    nnf = lookup(*_to_device((pos, app, app, table, bins, 4, params,
                              make_jitter(0, levels=levels, size=16))))
    np.testing.assert_array_equal(cp.asnumpy(nnf), pos.astype(np.int32))
    for r in (0, 1, 2):
        np.testing.assert_array_equal(cp.asnumpy(blend(cp.asarray(style), nnf, r)), style)


@pytest.mark.gpu
def test_gpu_mix_of_numpy_and_cupy_is_a_type_error_naming_it():
    import cupy as cp

    args = list(_to_device(lookup_case(0)))
    args[7] = cp.asnumpy(args[7])  # jitter left on the host
    with pytest.raises(TypeError, match="jitter"):
        lookup(*args)
    args = list(lookup_case(0))
    args[0] = cp.asarray(args[0])  # only target_pos on the device
    with pytest.raises(TypeError, match="target_app"):
        lookup(*args)
    with pytest.raises(TypeError, match="nnf"):
        blend(cp.zeros((4, 4, 3), cp.uint8), np.zeros((2, 2, 2), np.int32))


@pytest.mark.gpu
def test_gpu_kernels_compile_once_per_device_and_specialisation():
    import cupy as cp

    args = _to_device(lookup_case(0, levels=4))
    lookup(*args)
    blend(cp.zeros((4, 4, 3), cp.uint8), cp.zeros((2, 2, 2), cp.int32), 2)
    before = dict(gpu._MODULES)
    lookup(*args)
    blend(cp.zeros((4, 4, 3), cp.uint8), cp.zeros((2, 2, 2), cp.int32), 2)
    assert gpu._MODULES == before
    device = cp.cuda.runtime.getDevice()
    assert (device, gpu.lookup_kernel_names(4)) in gpu._MODULES
    assert (device, ("sb_blend_kernel<2>",)) in gpu._MODULES


@pytest.mark.gpu
@pytest.mark.parametrize("motion", ["flow", "flow region", "guide"])
@pytest.mark.parametrize("quantized", [False, True])
def test_gpu_propagate_and_merge_equal_cpu(motion, quantized):
    import cupy as cp

    for seed in range(3):
        case = propagate_case(seed, h=97, w=83, quantized=quantized)
        params = LookupParams(lam_pos=2.0, lam_app=0.5, threshold=8.5 if quantized else 60.0)
        kwargs = propagate_kwargs(case, motion, (5, 9), seed != 1, iterations=seed)
        cpu = propagate(case["prev_src"], case["pos"], case["app"], case["style_app"], params,
                        **kwargs)
        dev_kwargs = {k: cp.asarray(v) if isinstance(v, np.ndarray) and k != "inverse_jacobian" else v
                      for k, v in kwargs.items()}
        dev = propagate_gpu = gpu.propagate(*_to_device((case["prev_src"], case["pos"], case["app"],
                                                         case["style_app"])), params, **dev_kwargs)
        assert all(isinstance(a, cp.ndarray) for a in propagate_gpu)
        for a, b in zip(dev, cpu):
            assert_bits_equal(cp.asnumpy(a), b)
        fresh = np.random.default_rng(seed).integers(0, 40, case["pos"].shape, dtype=np.int32)
        src, nnf, need = (a.copy() for a in cpu)
        _merge_kernel(fresh, need, nnf, src)
        gpu.merge(cp.asarray(fresh), dev[2], dev[1], dev[0])
        assert_bits_equal(cp.asnumpy(dev[1]), nnf)
        assert_bits_equal(cp.asnumpy(dev[0]), src)


@pytest.mark.gpu
@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("quantized", [False, True])
def test_gpu_temporal_filter_equals_cpu(clamp, quantized):
    import cupy as cp

    for seed in range(3):
        current, prev, flow, active = temporal_case(seed, h=230, w=310, quantized=quantized)
        kwargs = dict(active=active, clamp=clamp, **TEMPORAL_ORIGINS)
        cpu = current.copy()
        cpu_hist = temporal_filter(cpu, prev, flow, 0.75, **kwargs)
        dev_kwargs = dict(kwargs, active=cp.asarray(active))
        dev = cp.asarray(current)
        dev_hist = gpu.temporal_filter(dev, cp.asarray(prev), cp.asarray(flow), 0.75, **dev_kwargs)
        assert isinstance(dev_hist, cp.ndarray)
        assert_bits_equal(cp.asnumpy(dev_hist), cpu_hist)
        assert_bits_equal(cp.asnumpy(dev), cpu)
    with pytest.raises(TypeError, match="flow"):
        gpu.temporal_filter(cp.asarray(current), cp.asarray(prev), flow, 0.75)


@pytest.mark.gpu
@pytest.mark.parametrize("pad", [(0, 0, 0, 0), (3, 0, 16, 1)])
def test_gpu_flow_upsampling_equals_cpu(pad):
    import cupy as cp

    rng = np.random.default_rng(3)
    for size in ((1, 1), (24, 31), (1030, 966), (1080, 1920)):
        half = rng.normal(0, 3, ((size[0] + 1) // 2, (size[1] + 1) // 2, 2)).astype(np.float32)
        dev = gpu.upsample_flow(cp.asarray(half), size, pad)
        assert isinstance(dev, cp.ndarray)
        assert_bits_equal(dev.get(), upsample_flow(half, size, pad))


@pytest.mark.gpu
def test_gpu_dis_flow_equals_cpu(hopper):
    """The DIS flow on the device (its grey images and halves made there
    from a box of the frame, read in place): the CPU's bit for bit, from a
    head's size to a 1080p frame's half."""
    import cupy as cp
    import cv2

    from guides.appearance import _GRAY_TABLES, _gray_kernel

    image, _ = hopper
    big = cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_LINEAR)
    moved = cv2.warpAffine(big, np.float32([[1.01, 0.01, 4.0], [-0.01, 1.01, -2.0]]), (1920, 1080),
                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    buffers = gpu.DeviceBuffers()
    for y0, y1, x0, x1 in ((0, 1080, 0, 1920), (200, 811, 700, 1223), (40, 64, 50, 75)):
        greys = []
        for frame in (big, moved):
            grey = np.empty(frame.shape[:2], np.uint8)
            _gray_kernel(frame, _GRAY_TABLES, grey)
            greys.append(cv2.pyrDown(grey[y0:y1, x0:x1]))
        want = dis.dis_flow(greys[1], greys[0])
        halves = [gpu.pyr_down(gpu.luminance(cp.asarray(frame))[y0:y1, x0:x1])
                  for frame in (big, moved)]
        for a, b in zip(halves, greys):
            assert_bits_equal(a.get(), b)
        got = gpu.dis_flow(halves[1], halves[0], buffers=buffers)
        assert isinstance(got, cp.ndarray)
        assert_bits_equal(got.get(), want)


@pytest.mark.gpu
@pytest.mark.parametrize("grid", [1, 10])
def test_gpu_positional_guide_equals_cpu(grid):
    """The MLS map at the nodes (float64 on the device) and the guide from
    them: the CPU's bit for bit, a landmark on a node among them."""
    import cupy as cp

    rng = np.random.default_rng(grid)
    for shape in ((1, 1), (37, 53), (240, 320), (1030, 966)):
        target, style = face_landmarks(rng, *shape)
        target[0] = (0, 0)  # (a node)
        dev = gpu.positional_guide(shape, target, style, grid=grid)
        assert isinstance(dev, cp.ndarray)
        assert_bits_equal(dev.get(), positional_guide(shape, target, style, grid=grid))


@pytest.mark.gpu
def test_gpu_head_masks_equal_cpu(hopper):
    """The mask's enlargement alone, and whole head masks from their
    outlines (the coverage's atomic integer additions, the blur, the
    enlargement): the CPU's bit for bit."""
    import cupy as cp

    for small, factor, offset, shape in mask_cases(np.random.default_rng(11)):
        dev = gpu.enlarge_mask(cp.asarray(small), factor, offset, shape)
        assert isinstance(dev, cp.ndarray)
        assert_bits_equal(dev.get(), enlarge_mask(small, factor, offset, shape))
    buffers = gpu.DeviceBuffers()
    for outline in hopper_outlines(hopper):  # (a 1080p head is about 2.5x Hopper's)
        dev = gpu.outline_mask(outline, buffers=buffers)
        assert isinstance(dev, cp.ndarray)
        assert_bits_equal(dev.get(), outline_mask(outline))


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["soft", None, "empty"])
def test_gpu_appearance_guide_equals_cpu(kind, hopper, style):
    """The appearance guide of boxes read in place in a frame on the device
    (a synthetic one, and Grace Hopper's head with its mask): the CPU's."""
    import cupy as cp

    from guides.mask import head_region

    for shape in ((1, 1), (9, 16), (161, 130), (700, 540)):
        frame, box, quantiles, mask = appearance_case(np.random.default_rng(shape[0]), *shape, kind)
        dev_frame = cp.asarray(frame)
        dev_box = dev_frame[2:2 + shape[0], 3:3 + shape[1]]
        dev_mask = None if mask is None else cp.asarray(mask)
        out = gpu.target_appearance(dev_box, cp.asarray(quantiles), dev_mask,
                                    buffers=gpu.DeviceBuffers())
        assert isinstance(out, cp.ndarray)
        assert_bits_equal(out.get(), target_appearance(box, quantiles, mask))
    image, landmarks = hopper
    region = head_region(image.shape, landmarks)
    x0, y0, x1, y1 = region.box
    dev = gpu.target_appearance(cp.asarray(image)[y0:y1, x0:x1], cp.asarray(style.quantiles),
                                cp.asarray(region.mask))
    assert_bits_equal(dev.get(), target_appearance(image[y0:y1, x0:x1], style.quantiles,
                                                   region.mask))


@pytest.mark.gpu
@pytest.mark.parametrize("background", ["keep", "stylize"])
def test_gpu_stream_equals_the_cpu_stream(style, hopper, background):
    """Stylizer(device="cuda") on a CUDA device: the CPU stream's output and
    NNFs, frame after frame."""
    import cupy as cp

    frames, marks = moving_clip(hopper, n=6)
    cpu, dev = stream_pair(style, marks, options=StylizeOptions(background=background))
    for frame in frames:
        assert_bits_equal(dev(frame), cpu(frame))
        (nnf,), (want,) = dev.last_nnf, cpu.last_nnf
        assert isinstance(nnf, cp.ndarray)
        assert_bits_equal(nnf.get(), want)


@pytest.mark.gpu
@pytest.mark.parametrize("wait", [True, False])
@pytest.mark.parametrize("case", PREFETCH_CASES)
def test_gpu_prefetched_stream_equals_the_cpu_stream(style, hopper, case, wait):
    """Stylizer(device="cuda") with prefetch() on a CUDA device, the worker
    let finish first or running beside the painting: the CPU stream's output."""
    got, want, kinds = prefetched_and_cpu(style, hopper, case, wait=wait)
    if numba.threading_layer() in ("omp", "tbb"):
        assert "frame" in kinds
    assert ("worker's Numba threads", numba.get_num_threads()) in kinds
    for i, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")


def test_host_side_benchmark_runs_both_flow_engines(style, hopper, tmp_path, monkeypatch):
    """benchmarks/bench_gpu_host_side.py (a CUDA stream with its kernels
    no-ops) on a small frame: both flow engines, timed, saved."""
    import json

    from guides.io import write_image
    from guides.landmarks import write_lm68

    image, marks = hopper
    write_image(str(tmp_path / "style.png"), style.image)
    write_lm68(str(tmp_path / "style.lm68.txt"), style.landmarks)
    write_image(str(tmp_path / "target.png"), image)
    write_lm68(str(tmp_path / "target.lm68.txt"), marks)
    for name in ("_cupy", "_unavailable_reason", "_kernels"):  # (restored afterwards)
        monkeypatch.setattr(gpu, name, getattr(gpu, name))
    spec = importlib.util.spec_from_file_location(
        "bench_gpu_host_side", TESTS.parent / "benchmarks" / "bench_gpu_host_side.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "host.json"
    assert bench.main(["--inputs", str(tmp_path), "--size", "200x160", "--frames", "6",
                       "--rounds", "1", "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["flow_engine"] for r in runs] == ["blit", "opencv"]
    assert all(r["fps"] > 0 and "flow" in r["stages"] for r in runs)


def test_gpu_benchmark_takes_the_device_path(host_cupy, style, hopper, monkeypatch):
    """benchmarks/bench_gpu.py, for the session that has a GPU: its kernel and
    stream measurements on the stand-in for CuPy (the CUDA kernels run by the
    host build, timed by the wall clock here), and its comparisons with the
    CPU path, which must find the same NNF, image and frames."""
    spec = importlib.util.spec_from_file_location("bench_gpu", TESTS.parent / "benchmarks" / "bench_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "Clock", lambda device, cpu=bench.Clock: cpu("cpu"))
    image, marks = hopper
    r = bench.kernels_at(style, image, marks, (96, 80), "cuda", repeats=2, warmup=1, voting=1)
    assert r["same_nnf_as_cpu"] and r["same_image_as_cpu"]
    assert r["size"] == "96x80" and set(r["stages"]) == {"lookup", "denoise", "blend"}
    s = bench.stream_at(style, image, marks, (96, 80), "cuda", frames=4, warmup=1, check=2)
    assert s["same_frames_as_cpu"] == [True, True] and s["fps"] > 0
    assert s["flow_engine"] == "blit"  # (the device's default: the flow made there)
    assert "lookup" in s["stages"] and "landmarks" in s["stages"]
    # a landmarker that takes its time (mediapipe's stand-in): the same frames
    s = bench.stream_at(style, image, marks, (96, 80), "cuda", frames=4, warmup=1, check=2,
                        landmark_ms=20.0)
    assert s["same_frames_as_cpu"] == [True, True] and s["landmark_ms"] == 20.0
    # --flow-ab's strips (a head tall enough for them): the same frames as a
    # CPU stream's with strips too, and the setting as it was afterwards
    import blit.stream

    calls = []
    strips = blit.stream.dis_strips_flow
    monkeypatch.setattr(blit.stream, "dis_strips_flow",
                        lambda *a, **k: calls.append(len(a[2])) or strips(*a, **k))
    s = bench.stream_at(style, image, marks, (200, 760), "cuda", frames=3, warmup=1, check=2,
                        strips_from=192, flow_engine="opencv")
    assert s["same_frames_as_cpu"] == [True, True] and s["strips_from"] == 192
    assert s["flow_engine"] == "opencv"
    assert calls and min(calls) >= 2 and blit.stream.FLOW_STRIPS_FROM is None
