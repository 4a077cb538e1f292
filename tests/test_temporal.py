"""The temporal filter of the stylized output (blit.temporal)."""
import numpy as np
import pytest

from blit import reference
from blit.temporal import NO_HISTORY, temporal_filter


def random_case(rng, h=23, w=31):
    current = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    prev = rng.uniform(0, 255, (h + 4, w + 2, 3)).astype(np.float32)
    prev[rng.random(prev.shape[:2]) < 0.1, 0] = NO_HISTORY  # some pixels had no history
    flow = rng.uniform(-3, 3, (h + 6, w + 5, 2)).astype(np.float32)
    active = rng.random((h, w)) < 0.85
    return current, prev, flow, active


@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_temporal_filter_equals_its_reference(clamp, seed):
    rng = np.random.default_rng(seed)
    current, prev, flow, active = random_case(rng)
    kwargs = dict(active=active, clamp=clamp, origin=(12, 7), prev_origin=(11, 5),
                  flow_origin=(9, 4))
    want, want_hist = reference.temporal_filter(current, prev, flow, 0.7, **kwargs)
    got = current.copy()
    hist = temporal_filter(got, prev, flow, 0.7, **kwargs)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(hist[active], want_hist[active], atol=1e-3)
    assert (hist[~active, 0] < 0).all()
    np.testing.assert_array_equal(got[~active], current[~active])  # left alone
    # a strided frame (the clamp's range reads a contiguous copy of it) gives the same
    wide = np.zeros((current.shape[0], 2 * current.shape[1], 3), np.uint8)
    strided = wide[:, ::2]
    strided[...] = current
    temporal_filter(strided, prev, flow, 0.7, **kwargs)
    np.testing.assert_array_equal(strided, want)


@pytest.mark.parametrize("shape", [(23, 31), (1, 9), (9, 1), (2, 2)])
def test_clamp_range_is_the_3x3_range_of_the_active_pixels(shape):
    """The clamp's per-channel min and max (a masked copy, then OpenCV's 3x3
    erosion and dilation) against the neighbourhoods read one by one."""
    from blit.temporal import _neighbourhood_range

    rng = np.random.default_rng(5)
    current = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    active = rng.random(shape) < 0.7
    lo, hi = _neighbourhood_range(current, active, None)
    h, w = shape
    for y in range(h):
        for x in range(w):
            ys, xs = slice(max(y - 1, 0), y + 2), slice(max(x - 1, 0), x + 2)
            near = current[ys, xs][active[ys, xs]]
            if near.size:  # (a pixel with no active neighbour is never clamped)
                np.testing.assert_array_equal(lo[y, x], near.min(axis=0))
                np.testing.assert_array_equal(hi[y, x], near.max(axis=0))


def test_no_history_or_zero_weight_keeps_the_frame():
    rng = np.random.default_rng(2)
    current, prev, flow, active = random_case(rng)
    for args in ((None, flow, 0.7), (prev, None, 0.7), (prev, flow[:23, :31], 0.0)):
        got = current.copy()
        hist = temporal_filter(got, *args, active=active)
        np.testing.assert_array_equal(got, current)
        np.testing.assert_array_equal(hist[active], current[active].astype(np.float32))
        assert (hist[~active, 0] < 0).all()


def test_texture_moving_by_whole_pixels_is_not_blurred():
    """With the flow exact and integer, the warped history is the frame
    itself: the filter changes nothing, whatever the weight."""
    rng = np.random.default_rng(3)
    texture = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    hist = None
    for t in range(5):
        frame = np.ascontiguousarray(texture[10:40, 10 + 2 * t:50 + 2 * t])  # moves 2 px left
        flow = np.zeros((30, 40, 2), np.float32)
        flow[..., 0] = 2.0  # backward: this pixel's content was 2 px to the right
        got = frame.copy()
        hist = temporal_filter(got, hist, flow, 0.8)
        np.testing.assert_array_equal(got, frame)


def test_flicker_is_damped_as_a_recursive_filter_says():
    """Independent noise on a still image, no clamp: the steady-state variance
    of H = (1 - a) S + a H_prev is (1 - a) / (1 + a) of the input's."""
    rng = np.random.default_rng(4)
    a = 0.7
    flow = np.zeros((40, 40, 2), np.float32)
    hist, outs = None, []
    for t in range(200):
        frame = np.clip(128 + 20 * rng.standard_normal((40, 40, 3)), 0, 255).astype(np.uint8)
        hist = temporal_filter(frame, hist, flow, a, clamp=False)
        if t >= 50:
            outs.append(hist.copy())
    ratio = np.var(np.array(outs), axis=0).mean() / 20.0 ** 2
    assert ratio == pytest.approx((1 - a) / (1 + a), rel=0.1)


def test_clamp_stops_ghosting_when_the_content_changes():
    """A region that turns uniform shows its new colour at once: the history
    is clamped to what is around each pixel now."""
    flow = np.zeros((20, 20, 2), np.float32)
    dark = np.zeros((20, 20, 3), np.uint8)
    hist = temporal_filter(dark.copy(), None, flow, 0.9)
    light = np.full((20, 20, 3), 200, np.uint8)
    got = light.copy()
    temporal_filter(got, hist, flow, 0.9)
    np.testing.assert_array_equal(got, light)
    got = light.copy()
    temporal_filter(got, hist, flow, 0.9, clamp=False)  # without: a ghost of the old frame
    assert got.max() < 30


def test_bad_arguments_are_value_errors():
    frame = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="alpha"):
        temporal_filter(frame, None, None, 1.0)
    with pytest.raises(ValueError, match="current"):
        temporal_filter(frame[..., 0], None, None, 0.5)
    with pytest.raises(ValueError, match="flow"):
        temporal_filter(frame, np.zeros((4, 4, 3), np.float32), np.zeros((2, 2, 2), np.float32), 0.5)


def test_the_masked_copy_wraps_no_integer_without_numba():
    """With Numba's JIT off (NUMBA_DISABLE_JIT=1, for debugging) the kernels
    run as NumPy code: the masked copy's 0 - 1 in uint8 printed NumPy's
    'overflow encountered' warning on every frame of `styleblit video`."""
    import subprocess
    import sys

    code = ("import numpy as np; from blit.temporal import _masked_kernel; "
            "cur = np.full((4, 4, 3), 7, np.uint8); lo = np.empty_like(cur); "
            "hi = np.empty_like(cur); _masked_kernel(cur, np.eye(4, dtype=bool), lo, hi); "
            "print(int(lo.sum()), int(hi.sum()))")
    run = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, env=dict(__import__("os").environ, NUMBA_DISABLE_JIT="1"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(3 * (4 * 7 + 12 * 255)), str(3 * 4 * 7)]
