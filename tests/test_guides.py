"""FaceBlit guides: MLS warp, appearance, head mask, style precomputation, image IO."""
import os
import pickle

import cv2
import matplotlib
import numpy as np
import pytest

from guides.appearance import luminance_detail, match_histogram, quantile_function, style_appearance
from guides.exemplar import CACHE_VERSION, StyleExemplar, load_style
from guides.io import InputError, read_image, to_bgr8, write_image
from guides.mask import composite, enlarge_mask, head_box, head_region
from guides.mls import mls_grid_nodes, mls_similarity, mls_similarity_grid, positional_guide

HOPPER = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="module")
def hopper():
    from guides.landmarks import detect_landmarks

    image = read_image(HOPPER)
    return image, detect_landmarks(image)


def random_landmarks(rng, n=68, lo=20, hi=200):
    return rng.uniform(lo, hi, (n, 2)).astype(np.float32)


# ----------------------------------------------------------------------- MLS

def test_mls_exact_at_control_points():
    rng = np.random.default_rng(0)
    src = random_landmarks(rng)
    dst = src + rng.normal(0, 8, src.shape).astype(np.float32)
    np.testing.assert_allclose(mls_similarity(src, src, dst), dst, atol=1e-4)
    # the dense map too, at control points lying on the grid nodes
    nodes = rng.choice(21 * 22, size=68, replace=False)  # distinct grid nodes
    grid = np.stack([nodes % 22, nodes // 22], 1).astype(np.float32) * 10 + 10
    dense = mls_similarity_grid((231, 241), grid, dst, grid=10)
    g = grid.astype(int)
    np.testing.assert_allclose(dense[g[:, 1], g[:, 0]], dst, atol=1e-3)


def test_mls_identity_for_equal_landmarks():
    rng = np.random.default_rng(1)
    lm = random_landmarks(rng)
    dense = mls_similarity_grid((120, 90), lm, lm, grid=10)
    ys, xs = np.mgrid[0:120, 0:90]
    np.testing.assert_allclose(dense, np.stack([xs, ys], -1), atol=1e-3)


def test_mls_reproduces_a_global_similarity():
    rng = np.random.default_rng(2)
    src = random_landmarks(rng)
    angle, scale, shift = 0.3, 1.4, np.array([12.0, -7.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = (src @ rot.T + shift).astype(np.float32)
    pts = rng.uniform(0, 220, (50, 2))
    np.testing.assert_allclose(mls_similarity(pts, src, dst), pts @ rot.T + shift, atol=1e-3)


def test_mls_grid_matches_dense_evaluation():
    rng = np.random.default_rng(3)
    src = random_landmarks(rng, lo=30, hi=170)
    dst = src + rng.normal(0, 2, src.shape).astype(np.float32)
    exact = mls_similarity_grid((200, 200), src, dst, grid=1)
    ys, xs = np.mgrid[0:200, 0:200]
    ref = mls_similarity(np.stack([xs.ravel(), ys.ravel()], 1), src, dst).reshape(200, 200, 2)
    np.testing.assert_allclose(exact, ref, atol=1e-3)
    coarse = mls_similarity_grid((200, 200), src, dst, grid=10)
    assert np.median(np.abs(coarse - exact)) < 0.05


def test_mls_grid_nodes_are_the_map_at_corner_aligned_nodes():
    """The nodes span the image corner to corner at most ``grid`` px apart,
    and the dense map passes through them."""
    rng = np.random.default_rng(4)
    src = random_landmarks(rng, lo=30, hi=170)
    dst = src + rng.normal(0, 3, src.shape).astype(np.float32)
    nodes = mls_grid_nodes((201, 187), src, dst, grid=10)
    assert nodes.shape == (21, 20, 2) and nodes.dtype == np.float32  # ceil(200/10)+1, ceil(186/10)+1
    xs = np.linspace(0, 186, 20)
    ys = np.linspace(0, 200, 21)
    at = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    np.testing.assert_allclose(nodes.reshape(-1, 2), mls_similarity(at, src, dst), atol=1e-3)
    dense = mls_similarity_grid((201, 187), src, dst, grid=10)
    np.testing.assert_array_equal(dense[0, 0], nodes[0, 0])
    np.testing.assert_array_equal(dense[-1, -1], nodes[-1, -1])
    with pytest.raises(ValueError, match="grid"):
        mls_grid_nodes((10, 10), src, dst, grid=0)


def test_mls_smooth_without_folds_on_a_real_face(hopper):
    """Warping Grace Hopper's face onto a smiling, turned version keeps the map
    orientation-preserving: no folds (positive Jacobian) inside the face."""
    image, lm = hopper
    target = lm.copy()
    target[48:68, 1] += np.where(np.isin(np.arange(48, 68), [48, 54, 60, 64]), -6, 2)  # smile
    target[:, 0] = target[:, 0] * 0.92 + 20  # narrower: a turned head
    guide = positional_guide(image.shape[:2], target, lm)
    region = head_region(image.shape, target)
    x0, y0, x1, y1 = region.box
    g = guide[y0:y1, x0:x1]
    jac = (np.gradient(g[..., 0], axis=1) * np.gradient(g[..., 1], axis=0)
           - np.gradient(g[..., 0], axis=0) * np.gradient(g[..., 1], axis=1))
    assert (jac[region.mask > 0.5] > 0).all()


def test_mls_rejects_bad_shapes():
    with pytest.raises(ValueError, match="landmarks"):
        mls_similarity(np.zeros((3, 2)), np.zeros((4, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="shape"):
        mls_similarity_grid((0, 10), np.zeros((4, 2)), np.zeros((4, 2)))
    # points that all coincide (the warp is undefined: it was NaN everywhere)
    spread = np.float64([[0, 0], [5, 1], [2, 7], [9, 9]])
    for src, dst, name in ((np.ones((4, 2)), spread, "target"), (spread, np.ones((4, 2)), "style")):
        with pytest.raises(ValueError, match=f"the {name} points all lie at one place"):
            mls_similarity_grid((10, 10), src, dst)
    with pytest.raises(ValueError, match="not all finite"):
        mls_similarity_grid((10, 10), spread, spread * np.nan)
    assert np.isfinite(mls_similarity_grid((10, 10), spread, spread)).all()


def test_exemplar_and_head_region_check_their_landmarks():
    from guides.exemplar import StyleExemplar
    from guides.mask import head_region

    image = np.full((40, 30, 3), 90, np.uint8)
    lm = np.stack(np.meshgrid(np.linspace(5, 25, 17), np.linspace(8, 30, 4)), -1).reshape(-1, 2)[:68]
    with pytest.raises(ValueError, match="far outside the 30x40 image"):
        StyleExemplar.prepare(image, lm + 100)
    with pytest.raises(ValueError, match="finite"):
        StyleExemplar.prepare(image, lm * np.nan)
    assert head_region(image.shape, lm.tolist()).box == head_region(image.shape, lm).box


# ---------------------------------------------------------------- appearance

def test_appearance_of_a_flat_image_is_mid_grey():
    flat = np.full((64, 64, 3), 90, np.uint8)
    assert np.abs(luminance_detail(flat)).max() == 0
    assert np.allclose(style_appearance(flat), 128)


def test_exemplar_appearance_is_stretched_by_the_largest_detail():
    """FaceBlit's stretch: 128 + d * 127 / max |d| over the whole image (or
    the mask), so the most extreme detail reaches an end of the range."""
    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.integers(0, 256, (96, 80, 3), dtype=np.uint8), (0, 0), 1.5)
    d = luminance_detail(image)
    app = style_appearance(image)
    np.testing.assert_allclose(app, 128 + d * (127 / np.abs(d).max()), atol=1e-3)
    assert np.isclose(np.abs(app - 128).max(), 127)
    mask = np.zeros(d.shape, bool)
    mask[20:50, 20:50] = True
    inside = style_appearance(image, mask)
    np.testing.assert_allclose(inside, np.clip(128 + d * (127 / np.abs(d[mask]).max()), 0, 255),
                               atol=1e-3)
    # letting the most extreme 1% clip stretches harder
    assert np.abs(style_appearance(image, clip_fraction=0.01) - 128).mean() > np.abs(app - 128).mean()


def test_histogram_matching_matches_quantiles():
    rng = np.random.default_rng(4)
    ref_values = rng.normal(128, 30, (100, 100)).astype(np.float32)
    q = quantile_function(ref_values)
    source = rng.uniform(-20, 20, (120, 80)).astype(np.float32)
    matched = match_histogram(source, q)
    for p in (0.1, 0.5, 0.9):
        assert np.quantile(matched, p) == pytest.approx(np.quantile(ref_values, p), abs=2.0)
    # monotone: the order of values is kept
    order = np.argsort(source.ravel())
    assert (np.diff(matched.ravel()[order]) >= -1e-4).all()


def test_luminance_is_bt601_in_fixed_point_for_every_colour():
    """(1868 B + 9617 G + 4899 R + 2^13) >> 14, for all 2^24 colours, in
    place in a crop (OpenCV's cvtColor is one level off for some colours,
    differently by version and CPU: not used)."""
    from guides.appearance import _GRAY_TABLES, _gray_kernel

    v = np.arange(1 << 24, dtype=np.int64)
    bgr = np.stack([v >> 16, (v >> 8) & 255, v & 255], -1)
    frame = np.zeros((4096 + 2, 4096 + 3, 3), np.uint8)
    frame[1:-1, 2:-1] = bgr.reshape(4096, 4096, 3)
    out = np.empty((4096, 4096), np.uint8)
    _gray_kernel(frame[1:-1, 2:-1], _GRAY_TABLES, out)
    want = (bgr[:, 0] * 1868 + bgr[:, 1] * 9617 + bgr[:, 2] * 4899 + 8192) >> 14
    np.testing.assert_array_equal(out.ravel(), want)


def _slow_linear(small, h, w):
    """Bilinear upsampling from its definition, in exact fractions: the
    output centre (i + 1/2) src / size - 1/2, clamped to the first and last
    input centres; the weight of the next input rounded to 1/2048 (halves
    up); the sum of the products rounded to a level (halves up)."""
    from fractions import Fraction

    def taps(size, src):
        out = []
        for i in range(size):
            c = Fraction(2 * i + 1, 2) * src / size - Fraction(1, 2)
            c = min(max(c, Fraction(0)), Fraction(src - 1))
            first = min(int(c), src - 1)
            out.append((first, int((c - first) * 2048 + Fraction(1, 2)) if first < src - 1 else 0))
        return out

    sh, sw = small.shape
    ys, xs = taps(h, sh), taps(w, sw)
    out = np.empty((h, w), np.uint8)
    for y, (y0, b) in enumerate(ys):
        for x, (x0, a) in enumerate(xs):
            y1, x1 = min(y0 + 1, sh - 1), min(x0 + 1, sw - 1)
            s = ((2048 - b) * ((2048 - a) * int(small[y0, x0]) + a * int(small[y0, x1]))
                 + b * ((2048 - a) * int(small[y1, x0]) + a * int(small[y1, x1])))
            out[y, x] = (s + (1 << 21)) >> 22
    return out


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (9, 16), (37, 53), (100, 61)])
def test_blur_is_bilinear_in_exact_integers(shape):
    """The blur's way back up equals its definition in fractions (and stays
    within a level of cv2.resize, whose rounding depends on the CPU); the
    pyramid down is cv2.pyrDown, whose integer arithmetic this checks."""
    from guides.appearance import _gray_and_blur
    from guides.buffers import Buffers

    rng = np.random.default_rng(shape[0] * 13 + shape[1])
    image = cv2.GaussianBlur(rng.integers(0, 256, shape + (3,), dtype=np.uint8), (0, 0), 2)
    buffers = Buffers()
    gray, blur = _gray_and_blur(image, 3, buffers)
    small = gray
    for i in range(3):
        small = buffers.get(f"detail_down{i}", ((small.shape[0] + 1) // 2,
                                                (small.shape[1] + 1) // 2), np.uint8)
    np.testing.assert_array_equal(blur, _slow_linear(small, *shape))
    assert np.abs(blur.astype(int) - cv2.resize(small, shape[::-1], interpolation=cv2.INTER_LINEAR)
                  ).max() <= 1

    def slow_pyr_down(src):
        k = np.array([1, 4, 6, 4, 1])
        h, w = src.shape
        reflect = lambda i, n: 0 if n == 1 else (  # noqa: E731 (BORDER_REFLECT_101)
            -i if i < 0 else (2 * n - 2 - i if i >= n else i))
        out = np.empty(((h + 1) // 2, (w + 1) // 2), np.uint8)
        for y in range(out.shape[0]):
            for x in range(out.shape[1]):
                s = sum(int(k[i] * k[j]) * int(src[reflect(reflect(2 * y + i - 2, h), h),
                                                   reflect(reflect(2 * x + j - 2, w), w)])
                        for i in range(5) for j in range(5))
                out[y, x] = (s + 128) >> 8
        return out

    down = ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
    np.testing.assert_array_equal(buffers.get("detail_down0", down, np.uint8), slow_pyr_down(gray))


def test_quantile_at_is_np_interp_bit_for_bit():
    """The matching table's interpolation, written out for the CUDA twin:
    np.interp on linspace's nodes, to the bit, at the nodes, between them,
    outside [0, 1], and for flat stretches."""
    from guides.appearance import _quantile_interp

    rng = np.random.default_rng(11)
    for n in (2, 3, 5, 257):
        for _ in range(20):
            q = np.sort(rng.normal(128, 30, n)).astype(np.float32)
            q[: n // 3] = q[0]  # a flat stretch
            p = np.concatenate([rng.random(300), np.linspace(0, 1, n), [-0.1, 0.0, 1.0, 1.5],
                                np.nextafter(np.linspace(0, 1, n), 2.0)])
            got = np.empty(p.size, np.float32)
            _quantile_interp(p, q, got)
            want = np.interp(p, np.linspace(0, 1, n), q).astype(np.float32)
            np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


@pytest.mark.parametrize("mask_kind", ["float", "bool", "none", "empty"])
def test_target_appearance_is_the_matched_detail_bit_for_bit(mask_kind):
    """target_appearance counts the detail's whole values instead of binning
    the float detail: the same guide as match_histogram(luminance_detail),
    on crops (not contiguous) and with any mask; a mask of another shape is
    refused."""
    from guides.buffers import Buffers
    from guides.appearance import target_appearance

    rng = np.random.default_rng(7)
    image = cv2.GaussianBlur(rng.integers(0, 256, (150, 170, 3), dtype=np.uint8), (0, 0), 1.2)
    crop = image[7:140, 11:160]  # a view, as the stream's head box
    masks = {"float": cv2.GaussianBlur(np.float32(rng.random(crop.shape[:2]) > 0.4), (0, 0), 3),
             "bool": rng.random(crop.shape[:2]) > 0.6, "none": None,
             "empty": np.zeros(crop.shape[:2], np.float32)}
    mask = masks[mask_kind]
    q = quantile_function(rng.normal(128, 25, (80, 80)).astype(np.float32))
    want = match_histogram(luminance_detail(crop), q, mask)
    buffers = Buffers()
    for _ in range(2):  # the second time from reused buffers
        got = target_appearance(crop, q, mask, buffers=buffers)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="mask"):
        target_appearance(crop, q, np.zeros((5, 5), np.float32))


# ---------------------------------------------------------------------- mask

def test_head_region_covers_the_face_and_is_soft(hopper):
    image, lm = hopper
    region = head_region(image.shape, lm)
    full = region.full(image.shape)
    assert full.dtype == np.float32 and full.min() >= 0 and full.max() <= 1
    inside = np.round(lm[27:36]).astype(int)  # nose
    assert (full[inside[:, 1], inside[:, 0]] > 0.99).all()
    assert full[0, 0] == 0
    assert ((full > 0.05) & (full < 0.95)).sum() > 0  # a soft edge
    forehead = np.round(lm[27] + (lm[27] - lm[8]) * 0.35).astype(int)
    assert full[forehead[1], forehead[0]] > 0.9


def full_resolution_edge(lm, box):
    """The head polygon's coverage of the pixels of ``box`` blurred at full
    resolution with head_region's sigma: the soft edge it approximates. The
    coverage by OpenCV: the polygon filled (pixel centres inside) on a
    canvas 16x as fine (4x for boxes over 400 px), area-averaged back
    (cv2.fillPoly grows a polygon by half a pixel: here by 1/32 px, 1/8 px
    for the large boxes)."""
    from guides.mask import head_polygon

    x0, y0, x1, y1 = box
    up = 16 if max(x1 - x0, y1 - y0) <= 400 else 4
    fine = np.zeros(((y1 - y0) * up, (x1 - x0) * up), np.float32)
    # pixel x's span [x - 1/2, x + 1/2] is fine pixels up x .. up x + up - 1
    pts = np.round(((head_polygon(lm) - [x0, y0] + 0.5) * up - 0.5) * 16).astype(np.int32)
    cv2.fillPoly(fine, [pts], 1.0, lineType=cv2.LINE_8, shift=4)
    ref = cv2.resize(fine, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    sigma = 0.08 * float(np.hypot(*(lm[16] - lm[0])))
    return np.clip(cv2.GaussianBlur(ref, (0, 0), max(sigma, 1.0)), 0, 1)


@pytest.mark.parametrize("scale", [0.15, 0.35, 0.5, 1.0, 2.5, 4.5])
def test_head_region_soft_edge_matches_a_full_resolution_blur(hopper, scale):
    """The soft edge, blurred at reduced resolution, stays within 0.02 of the
    polygon blurred at full resolution with the same sigma, with no bias in
    area, for small and large faces (sigma 2.2 to 66 px: reduction factors
    1 to 4, and 10 from sigma 48)."""
    image, lm = hopper
    lm = (lm * scale).astype(np.float32)
    shape = (int(image.shape[0] * scale), int(image.shape[1] * scale))
    region = head_region(shape, lm, margin=1)
    ref = full_resolution_edge(lm, region.box)
    assert np.abs(region.mask - ref).max() < 0.02
    # the mask's mass is the polygon's area (shoelace; measured within 0.06 %)
    from guides.mask import head_polygon

    x, y = head_polygon(lm).astype(np.float64).T
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert abs(region.mask.sum() / area - 1) < 0.001


@pytest.mark.parametrize("scale, shift, margin", [(0.15, (0, 0), 0), (1.0, (0.3, 0.0), 1),
                                                  (2.5, (-0.3, -0.3), 2), (1.0, (2.0, 0), 0)])
def test_head_box_is_head_regions_box(hopper, scale, shift, margin):
    """head_box (what the CUDA stream's flow starts on before the masks are
    made) is head_region's box: small and large heads, heads cut by the
    frame's edge, a head outside it (an empty box)."""
    image, lm = hopper
    h, w = image.shape[:2]
    lm = (lm * scale + np.array(shift, np.float32) * [w, h]).astype(np.float32)
    box = head_region((h, w), lm, margin=margin).box
    assert head_box((h, w), lm, margin=margin) == box
    assert all(type(v) is int for v in box)


@pytest.mark.parametrize("scale, bound", [(1.0, 0.1), (4.0, 0.01)])
@pytest.mark.parametrize("shift", [(0.3, 0.0), (-0.3, -0.3)])
def test_head_region_cut_by_the_frame_edge_stays_near_a_full_resolution_blur(hopper, shift,
                                                                             scale, bound):
    """A head that runs off the frame (right; top and left): the box is cut
    there and the soft edge stays near the full-resolution blur of the
    polygon on that box. At reduction factors up to 4 (sigma 15) not as
    near as inside the frame: the two blurs reflect the cut at different
    resolutions (measured: 0.073 right, 0.037 top left). From sigma 48
    (here 59, factor 9) the small blur reflects at the frame's edge
    (measured 0.0089 right, 0.0024 top left; before 2026-12-05's exact
    coverage, 0.051 and 0.025 with BORDER_REFLECT_101 and the padding
    after the box)."""
    image, lm = hopper
    h, w = int(image.shape[0] * scale), int(image.shape[1] * scale)
    lm = (lm * scale + np.array(shift, np.float32) * [w, h]).astype(np.float32)
    region = head_region((h, w), lm, margin=1)
    x0, y0, x1, y1 = region.box
    assert x1 == w if shift[0] > 0 else (x0 == 0 and y0 == 0)  # cut
    assert np.abs(region.mask - full_resolution_edge(lm, region.box)).max() < bound


@pytest.mark.parametrize("factor, small_shape", [(1, (6, 5)), (2, (5, 7)), (3, (4, 6)),
                                                (9, (3, 4)), (10, (2, 3))])
def test_enlarge_mask_is_bilinear_cut_to_the_box_and_to_one(factor, small_shape):
    """The mask from its blur's resolution: the bilinear of its definition
    (the stream's flow's, in fractions and float32) bit for bit, read from
    the offset and cut at 1; within a hair of cv2.resize's (whose
    arithmetic is the CPU's)."""
    from test_stream import _slow_upsample_flow

    rng = np.random.default_rng(factor)
    small = rng.uniform(0, 1.2, small_shape).astype(np.float32)
    gh, gw = small_shape[0] * factor, small_shape[1] * factor
    grid = _slow_upsample_flow(np.repeat(small[..., None], 2, axis=2), (gh, gw), (0, 0, 0, 0))[..., 0]
    for (ox, oy), (h, w) in (((0, 0), (gh, gw)), ((gw // 2, 1), (gh - 1, gw - gw // 2)),
                             ((gw - 1, gh - 1), (1, 1))):
        got = enlarge_mask(small, factor, (ox, oy), (h, w))
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, np.minimum(grid[oy:oy + h, ox:ox + w], 1))
    plain = enlarge_mask(small, factor, (0, 0), (gh, gw))
    np.testing.assert_allclose(plain, np.minimum(cv2.resize(small, (gw, gh)), 1), atol=3e-7)
    out = np.full((gh, gw), np.nan, np.float32)
    assert enlarge_mask(small, factor, (0, 0), (gh, gw), out=out) is out
    np.testing.assert_array_equal(out, plain)
    assert enlarge_mask(small, factor, (1, 0), (0, 0)).shape == (0, 0)
    with pytest.raises(ValueError, match="not inside"):
        enlarge_mask(small, factor, (1, 0), (gh, gw))
    with pytest.raises(ValueError, match="factor"):
        enlarge_mask(small, 0, (0, 0), (1, 1))
    with pytest.raises(ValueError, match="out"):
        enlarge_mask(small, factor, (0, 0), (gh, gw), out=out[:, :-1])


@pytest.mark.parametrize("scale, shift", [(0.08, (0, 0)), (0.5, (0, 0)), (1.0, (0.3, 0)),
                                          (4.0, (-0.3, -0.3)), (2.0, (2.0, 0))])
def test_head_outline_makes_head_regions_mask(hopper, scale, shift):
    """head_region's mask is its outline's (what the CUDA stream passes to
    its kernels): the blurred coverage enlarged onto the box; tiny heads
    (factor 1), heads cut by the frame's edge, a head outside the frame."""
    from guides.mask import blurred_coverage, head_outline, outline_mask

    image, lm = hopper
    h, w = int(image.shape[0] * scale), int(image.shape[1] * scale)
    lm = (lm * scale + np.array(shift, np.float32) * [w, h]).astype(np.float32)
    outline = head_outline((h, w), lm, margin=2)
    region = head_region((h, w), lm, margin=2)
    assert outline.box == region.box and outline.shape == region.mask.shape
    np.testing.assert_array_equal(outline_mask(outline), region.mask)
    if region.mask.size:
        sh, sw = outline.small_shape
        f = outline.factor
        assert (sh, sw) == (-(-outline.shape[0] // f), -(-outline.shape[1] // f))
        small = blurred_coverage(outline)
        np.testing.assert_array_equal(
            enlarge_mask(small, f, outline.offset, outline.shape), region.mask)
    assert outline.region() is outline.region()  # (made once)
    np.testing.assert_array_equal(outline.region().mask, region.mask)


def slow_coverage(poly, f, shape):
    """The samples of each f x f block inside ``poly`` (1/16 px integers),
    from their definition: every sample point (SAMPLES a pixel each way, at
    (i + 1/2) / SAMPLES - 1/2 px from the pixel's centre) tested against
    every edge, even-odd, in exact fractions."""
    from fractions import Fraction

    from guides.mask import SAMPLES

    sh, sw = shape
    counts = np.zeros(shape, np.int64)
    edges = [(poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly))]
    for j in range(sh * f * SAMPLES):
        y = Fraction(2 * j + 1, 2 * SAMPLES) - Fraction(1, 2)  # px
        xs = []
        for (xa, ya), (xb, yb) in edges:
            ya, yb = Fraction(int(ya), 16), Fraction(int(yb), 16)
            if min(ya, yb) <= y < max(ya, yb):
                xs.append(Fraction(int(xa), 16) + (y - ya) * Fraction(int(xb) - int(xa), 16) / (yb - ya))
        for i in range(sw * f * SAMPLES):
            x = Fraction(2 * i + 1, 2 * SAMPLES) - Fraction(1, 2)
            if sum(c > x for c in xs) % 2:
                counts[j // (f * SAMPLES), i // (f * SAMPLES)] += 1
    return counts


@pytest.mark.parametrize("f", [1, 2, 3])
def test_coverage_counts_the_samples_inside_the_polygon(f):
    """The coverage kernel against point-in-polygon tests of every sample:
    random polygons (self-crossing ones among them) with vertices on sample
    rows, horizontal edges, and points past the canvas."""
    from guides.mask import _coverage_kernel

    rng = np.random.default_rng(f)
    shape = (5, 4)
    for n in (3, 4, 7, 12):
        poly = rng.integers(-40, 16 * shape[1] * f + 40, (n, 2))
        poly[0, 1] = poly[1, 1]  # a horizontal edge
        poly[2, 1] = 16 * 1 + (4 * 2 - 6)  # a vertex on a sample row
        counts = np.zeros(shape, np.int32)
        _coverage_kernel(poly.astype(np.int64), f, counts)
        np.testing.assert_array_equal(counts, slow_coverage(poly, f, shape))
    # a square on pixel edges covers whole pixels, half pixels on centres
    counts = np.zeros((4, 4), np.int32)
    _coverage_kernel(np.array([[8, 8], [40, 8], [40, 40], [8, 40]], np.int64), 1, counts)
    np.testing.assert_array_equal(counts[1:3, 1:3], 16)
    assert counts.sum() == 4 * 16
    counts[...] = 0
    _coverage_kernel(np.array([[16, 16], [48, 16], [48, 48], [16, 48]], np.int64), 1, counts)
    np.testing.assert_array_equal(counts[1:4, 1:4], [[4, 8, 4], [8, 16, 8], [4, 8, 4]])


@pytest.mark.parametrize("reflect", [False, True])
def test_blur_is_the_separable_gaussian_in_float32(reflect):
    """The blur: its definition in float32 (sum from -r to r, each product
    rounded on its own, indices reflected as cv2.borderInterpolate) bit for
    bit, and within a hair of cv2.sepFilter2D with the same taps; the taps
    those of cv2.getGaussianKernel."""
    from guides.mask import _blur_kernel, gaussian_taps, reflect_index

    for sigma in (0.8, 2.0, 6.5, 11.9):
        taps = gaussian_taps(sigma)
        r = len(taps) - 1
        full = cv2.getGaussianKernel(2 * r + 1, sigma, cv2.CV_32F)[:, 0]
        assert r == (int(round(8 * sigma + 1)) | 1) // 2
        np.testing.assert_allclose(taps, full[r:], atol=2e-7)
    rng = np.random.default_rng(int(reflect))
    delta = 0 if reflect else 1
    for shape in ((1, 1), (3, 2), (9, 14)):
        src = rng.random(shape, dtype=np.float32)
        taps = gaussian_taps(1.7)
        r = len(taps) - 1
        for along_x in (True, False):
            got = np.empty_like(src)
            if along_x:  # (as blurred_coverage does it: along y, transposed)
                got_t = np.empty_like(src.T)
                _blur_kernel(np.ascontiguousarray(src.T), taps, delta, got_t)
                got = got_t.T
            else:
                _blur_kernel(src, taps, delta, got)
            want = np.empty_like(src)
            h, w = shape
            for y in range(h):
                for x in range(w):
                    acc = np.float32(0)
                    for k in range(-r, r + 1):
                        v = (src[y, reflect_index(x + k, w, delta)] if along_x
                             else src[reflect_index(y + k, h, delta), x])
                        acc = np.float32(acc + np.float32(taps[abs(k)] * v))
                    want[y, x] = acc
            np.testing.assert_array_equal(got, want)
            kernel = np.concatenate([taps[:0:-1], taps])
            one = np.ones(1, np.float32)
            kx, ky = (kernel, one) if along_x else (one, kernel)
            border = cv2.BORDER_REFLECT if reflect else cv2.BORDER_REFLECT_101
            np.testing.assert_allclose(got, cv2.sepFilter2D(src, -1, kx, ky, borderType=border),
                                       atol=1e-6)
    for n in (1, 2, 5):
        for p in range(-12, 13):
            i = reflect_index(p, n, delta)
            want = cv2.borderInterpolate(p, n, cv2.BORDER_REFLECT if reflect else cv2.BORDER_REFLECT_101)
            assert i == want


def test_composite_blends_by_the_mask():
    bg = np.zeros((10, 10, 3), np.uint8)
    from guides.mask import HeadRegion

    region = HeadRegion((2, 2, 6, 6), np.full((4, 4), 0.5, np.float32))
    out = composite(bg, np.full((4, 4, 3), 200, np.uint8), region)
    assert (out[2:6, 2:6] == 100).all() and out.sum() == 100 * 16 * 3
    # against the formula, on random data
    rng = np.random.default_rng(8)
    bg = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    fg = rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)
    region = HeadRegion((5, 7, 25, 17), rng.random((10, 20), dtype=np.float32))
    out = composite(bg, fg, region)
    b = bg[7:17, 5:25].astype(np.float32)
    expect = (b + region.mask[..., None] * (fg.astype(np.float32) - b) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(out[7:17, 5:25], expect)
    outside = np.ones((30, 40), bool)
    outside[7:17, 5:25] = False
    np.testing.assert_array_equal(out[outside], bg[outside])
    # the kernel reads flat arrays: a strided out, foreground and mask give the same
    strided = np.zeros((30, 80, 3), np.uint8)[:, ::2]
    wide_fg = np.zeros((10, 40, 3), np.uint8)
    wide_fg[:, ::2] = fg
    wide_mask = np.zeros((10, 40), np.float32)
    wide_mask[:, ::2] = region.mask
    got = composite(bg, wide_fg[:, ::2], HeadRegion(region.box, wide_mask[:, ::2]), out=strided)
    assert got is strided
    np.testing.assert_array_equal(got, out)
    # a box beyond the frame or a mask of another shape: an error, nothing written
    untouched = np.full_like(bg, 3)
    with pytest.raises(ValueError, match="not inside"):
        composite(bg, fg, HeadRegion((25, 7, 45, 17), region.mask), out=untouched)
    assert (untouched == 3).all()
    with pytest.raises(ValueError, match="mask of shape"):
        composite(bg, fg, HeadRegion(region.box, region.mask[:, :-1]))


# ----------------------------------------------------------- style exemplar

def test_style_precompute_budget_and_cache_round_trip(tmp_path, hopper):
    image, lm = hopper
    style = StyleExemplar.prepare(image, lm)
    assert style.appearance.dtype == np.uint8
    packed = style.packed  # made on first blend, counted in nbytes
    assert style.nbytes <= 16 * 2**20
    shipped = pickle.loads(pickle.dumps(style))  # as Ray ships it: without the packed image
    assert shipped._packed is None and len(pickle.dumps(style)) < style.nbytes - packed.nbytes + (1 << 16)
    np.testing.assert_array_equal(shipped.packed, packed)
    path = tmp_path / "s.npz"
    style.save(path)
    back = StyleExemplar.load(path)
    for name in ("image", "landmarks", "appearance", "quantiles", "table", "app_bin"):
        np.testing.assert_array_equal(getattr(back, name), getattr(style, name))
    assert back.params == style.params and back.cell == style.cell


def test_load_style_uses_landmark_file_beside_and_caches(tmp_path, hopper):
    from guides.landmarks import write_lm68

    image, lm = hopper
    style_png = tmp_path / "portrait.png"
    write_image(style_png, image)
    moved = lm + 3.0
    write_lm68(tmp_path / "portrait.lm68.txt", moved)
    cache = tmp_path / "cache"
    s1 = load_style(style_png, cache=str(cache))
    np.testing.assert_allclose(s1.landmarks, moved, atol=0.01)  # the file wins over detection
    assert len(list(cache.glob("style-*.npz"))) == 1
    s2 = load_style(style_png, cache=str(cache))
    np.testing.assert_array_equal(s2.table, s1.table)


def test_style_warnings_for_a_face_past_the_edge_and_a_landmark_file_of_another_size(
        tmp_path, hopper):
    """A style whose face runs past its image's edge, and one whose landmark
    file puts its face where none is found (a file of a copy ten times
    smaller): a StyleWarning each, on the first load and on every load
    from the cache or a prepared .npz after; none for a face inside its
    image with landmarks where it is."""
    import warnings

    from guides.exemplar import edge_note, file_note
    from guides.io import StyleWarning
    from guides.landmarks import write_lm68

    image, lm = hopper
    h, w = image.shape[:2]
    assert edge_note(image.shape, lm) is None and file_note(image, lm) is None
    shift = int(lm[:, 0].min()) + 20  # the face's left 20 px off the image
    cut = np.full_like(image, 200)
    cut[:, :w - shift] = image[:, shift:]
    note = edge_note(cut.shape, lm - (shift, 0))
    assert "past the image's left edge" in note and "of its 68 landmarks outside" in note
    assert "bottom" in edge_note(image.shape, lm + (0, h - lm[:, 1].min() - 10))
    assert "not where a face is found" in file_note(image, lm * 0.1)
    # where the face is, but turned half round (eyes given in the wrong order to
    # `landmarks --eyes`): the mouth would be painted on the forehead
    centre = (lm.max(0) + lm.min(0)) / 2
    assert "stands the other way up" in file_note(image, 2 * centre - lm)

    write_image(tmp_path / "cut.png", cut)
    write_lm68(tmp_path / "cut.lm68.txt", lm - (shift, 0))
    write_image(tmp_path / "small.png", image)
    write_lm68(tmp_path / "small.lm68.txt", lm * 0.1)
    write_image(tmp_path / "fine.png", image)
    write_lm68(tmp_path / "fine.lm68.txt", lm)

    def loaded(path):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            style = load_style(path, cache=str(tmp_path / "cache"))
        return style, [str(c.message) for c in caught if c.category is StyleWarning]

    for _ in range(2):  # prepared, then from the cache
        assert [m.split(": ")[1][:24] for m in loaded(tmp_path / "cut.png")[1]] == [
            "its face runs past the i"]
        style, said = loaded(tmp_path / "small.png")
        assert len(said) == 1 and said[0].startswith(f"{tmp_path / 'small.lm68.txt'}: its face")
        assert loaded(tmp_path / "fine.png")[1] == []
    style.save(tmp_path / "small.npz")
    assert loaded(tmp_path / "small.npz")[1] == said


def test_style_without_face_asks_for_landmarks(tmp_path):
    path = tmp_path / "abstract.png"
    write_image(path, np.full((80, 60, 3), 200, np.uint8))
    with pytest.raises(InputError, match="--style-landmarks"):
        load_style(path, cache=False)


def test_foreign_cache_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, version=CACHE_VERSION + 7)
    with pytest.raises(InputError, match="version"):
        StyleExemplar.load(bad)
    junk = tmp_path / "y.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a styleblit style cache"):
        StyleExemplar.load(junk)


# ------------------------------------------------------------------- images

@pytest.mark.parametrize("kind", ["gray", "rgba", "gray16", "rgb16"])
def test_read_image_converts_to_bgr8(tmp_path, kind):
    rng = np.random.default_rng(5)
    data = {
        "gray": rng.integers(0, 256, (9, 7), dtype=np.uint8),
        "rgba": rng.integers(0, 256, (9, 7, 4), dtype=np.uint8),
        "gray16": rng.integers(0, 65536, (9, 7), dtype=np.uint16),
        "rgb16": rng.integers(0, 65536, (9, 7, 3), dtype=np.uint16),
    }[kind]
    path = str(tmp_path / f"{kind}.png")
    cv2.imwrite(path, data)
    img = read_image(path)
    assert img.shape == (9, 7, 3) and img.dtype == np.uint8
    if kind == "rgb16":
        np.testing.assert_allclose(img, data / 257.0, atol=1)



def test_read_image_where_opencv_has_no_log_level_functions(tmp_path, monkeypatch):
    """OpenCV 5.0's opencv-python-headless (a GPU machine's image had it) has
    no ``cv2.getLogLevel``: every read failed with an AttributeError."""
    import guides.io as gio

    data = np.random.default_rng(2).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), data)
    for name in ("getLogLevel", "setLogLevel"):
        monkeypatch.delattr(cv2, name, raising=False)
    monkeypatch.delattr(cv2.utils, "logging", raising=False)
    assert gio._opencv_log_level() is None
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), data)

def _exif_orientation(orientation: int) -> bytes:
    """EXIF (TIFF) data whose one tag is Orientation (0x0112)."""
    import struct

    return (b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0))


def _tagged_jpeg(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 Exif segment holding the tag."""
    import struct

    app1 = b"Exif\x00\x00" + _exif_orientation(orientation)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def _tagged_png(png: bytes, orientation: int) -> bytes:
    """The PNG with an eXIf chunk holding the tag, after IHDR."""
    import struct
    import zlib

    tiff = _exif_orientation(orientation)
    body = b"eXIf" + tiff
    chunk = struct.pack(">I", len(tiff)) + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + chunk + png[33:]  # signature 8 + IHDR 25


def _tagged_webp(webp: bytes, orientation: int) -> bytes:
    """The (lossless, simple-format) WebP made extended: a VP8X chunk that
    flags EXIF, its image chunk, and an EXIF chunk holding the tag."""
    import struct

    (bits,) = struct.unpack("<I", webp[21:25])  # VP8L: width - 1, height - 1, alpha used
    w, h, alpha = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, (bits >> 28) & 1
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x08 | alpha << 4, 0, 0, 0]) \
        + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    tiff = _exif_orientation(orientation)
    exif = b"EXIF" + struct.pack("<I", len(tiff)) + tiff + b"\x00" * (len(tiff) % 2)
    body = b"WEBP" + vp8x + webp[12:] + exif
    return b"RIFF" + struct.pack("<I", len(body)) + body


#: How a viewer shows the stored pixels, for each EXIF orientation.
_VIEWED = {1: lambda a: a, 2: lambda a: cv2.flip(a, 1), 3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
           4: lambda a: cv2.flip(a, 0), 5: cv2.transpose,
           6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
           7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
           8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", [".jpg", ".png", "gray16.png", "rgba.png", ".webp", "rgba.webp"])
def test_read_image_turns_a_phone_photo_upright(tmp_path, orientation, fmt):
    # A phone stores the sensor's pixels and an EXIF tag saying how to turn them; viewers
    # show the photo turned, so styleblit must paint (and write) it turned too. (OpenCV
    # turned a JPEG and a PNG without alpha, but neither a PNG with alpha nor a WebP.)
    stored = cv2.resize(cv2.imread(HOPPER), (48, 64), interpolation=cv2.INTER_AREA)
    if fmt == "gray16.png":
        stored = cv2.cvtColor(stored, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    if fmt.startswith("rgba"):
        stored = cv2.cvtColor(stored, cv2.COLOR_BGR2BGRA)
        stored[::7, :, 3] = 0  # transparent rows: over white
    ext = os.path.splitext(fmt)[1] or fmt
    ok, buf = cv2.imencode(ext, stored, [cv2.IMWRITE_WEBP_QUALITY, 101] if ext == ".webp" else [])
    path = tmp_path / f"phone{ext}"
    tagged = {".jpg": _tagged_jpeg, ".png": _tagged_png, ".webp": _tagged_webp}[ext]
    path.write_bytes(tagged(buf.tobytes(), orientation))
    plain = to_bgr8(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))  # as stored
    np.testing.assert_array_equal(read_image(path), _VIEWED[orientation](plain))


def test_exif_orientation_of_broken_data_is_as_stored():
    from guides.io import exif_orientation

    png = cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes()
    for data in (png, _tagged_png(png, 6)[:40], _tagged_png(png, 9), b"RIFF\x00\x00\x00\x00WEBPjunk",
                 _tagged_png(png, 6).replace(b"MM\x00*", b"XX\x00*"), b""):
        assert exif_orientation(data) == 1
    assert exif_orientation(_tagged_png(png, 6)) == 6


def test_read_image_errors_name_the_path(tmp_path):
    with pytest.raises(InputError, match="nope.png: no such file"):
        read_image(tmp_path / "nope.png")
    txt = tmp_path / "notes.png"
    txt.write_text("hello")
    with pytest.raises(InputError, match="notes.png: not an image"):
        read_image(txt)
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)
    # what the file is instead, by its first bytes (OpenCV's wheels decode none of these)
    for name, head, says in (
            ("empty.png", b"", "empty file"),
            ("anim.gif", b"GIF89a\x08\x00\x08\x00", "a GIF, which OpenCV does not decode"),
            ("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
             r"a HEIF/AVIF image, which OpenCV does not decode \(save it as JPEG or PNG\)"),
            ("clip.png", b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00",
             r"a video, not an image \(`styleblit video` stylizes videos\)"),
            ("clip.mkv", b"\x1a\x45\xdf\xa3\x01\x00\x00\x00", "a video, not an image")):
        path = tmp_path / name
        path.write_bytes(head + b"\x00" * 64 if head else b"")
        with pytest.raises(InputError, match=f"{name}: {says}"):
            read_image(path)


def test_openblas_runs_the_kernels_the_cpu_supports():
    """numpy 1.26's OpenBLAS ran a CPU newer than it on its SSE3 kernels (2.6x
    slower patch distances): importing guides first names the kernels the
    CPU's flags allow, unless the user did or numpy is loaded already."""
    import subprocess
    import sys

    from guides import _openblas_core

    avx512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd", "avx2", "fma"}
    assert _openblas_core(avx512) == "SkylakeX"
    assert _openblas_core({"avx2", "fma", "sse4_2", "avx512f"}) == "Haswell"
    assert _openblas_core({"sse4_2", "avx"}) is None
    code = ("import sys; {}import guides, os; "
            "print(os.environ.get('OPENBLAS_CORETYPE'), guides._openblas_core(guides._cpu_flags()))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    out = subprocess.run([sys.executable, "-c", code.format("")], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == out[1]  # (None where /proc/cpuinfo names no AVX2)
    out = subprocess.run([sys.executable, "-c", code.format("")], capture_output=True, text=True,
                         env=dict(env, OPENBLAS_CORETYPE="Prescott"), check=True).stdout.split()
    assert out[0] == "Prescott"
    out = subprocess.run([sys.executable, "-c", code.format("import numpy; ")], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "None"


def test_read_image_keeps_libpngs_profile_warnings_quiet(tmp_path):
    """libpng's "iCCP: known incorrect sRGB profile" (Photoshop's PNGs) came on
    every read, even with -q; what is written to stderr after it still comes."""
    import struct
    import subprocess
    import sys
    import zlib

    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    body = b"iCCP" + b"p\0\0" + zlib.compress(b"\0" * 128 + b"acsp" + b"\0" * 200)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    path = tmp_path / "profile.png"
    path.write_bytes(png[:33] + chunk + png[33:])  # after IHDR
    after = "; os.write(2, b'libpng warning: other\\n')"
    plain = subprocess.run([sys.executable, "-c", f"import cv2, os; cv2.imread(r'{path}')" + after],
                           capture_output=True, text=True, check=True).stderr
    assert "libpng warning: iCCP: too short" in plain  # (what OpenCV lets through)
    code = f"import os; from guides.io import read_image; print(read_image(r'{path}').shape)"
    ours = subprocess.run([sys.executable, "-c", code + after], capture_output=True, text=True,
                          check=True)
    assert ours.stdout.strip() == "(8, 8, 3)"
    assert ours.stderr == "libpng warning: other\n"


def test_read_image_names_a_png_cut_short_in_one_line(tmp_path):
    """A truncated PNG without a colour profile printed libpng's "PNG input
    buffer is incomplete" before our error, which called it "not an image
    file OpenCV can decode"; now only our line, which says what is wrong."""
    import subprocess
    import sys

    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    png = cv2.imencode(".png", image)[1].tobytes()
    assert b"iCCP" not in png
    path = tmp_path / "cut.png"
    path.write_bytes(png[: len(png) // 2])
    code = ("from guides.io import read_image, InputError\n"
            f"try:\n    read_image(r'{path}')\nexcept InputError as e:\n    print(e)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == (f"{path}: a PNG cut short or damaged (it does not end with "
                                   "PNG's IEND chunk)")
    assert done.stderr == ""
    # a whole PNG reads as before
    np.testing.assert_array_equal(read_image(_write(tmp_path / "whole.png", png)), image)


def test_read_image_names_an_image_over_opencvs_pixel_limit_in_one_line(tmp_path):
    """A PNG of over 2**30 pixels (a 1.2 MB file of 40000x30000 grey): OpenCV
    refuses it by its header with cv2.error, which was a traceback; now one
    line naming the file, its size and the limit."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 30000, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * 40001)) + chunk(b"IEND", b""))
    path = _write(tmp_path / "huge.png", png)
    with pytest.raises(InputError) as info:
        read_image(path)
    assert str(info.value) == (f"{path}: too large to read: an image of more than 2**30 pixels "
                               "(40000x30000), OpenCV's limit; shrink it first")


def _write(path, data):
    path.write_bytes(data)
    return path


def test_two_threads_filtering_native_stderr_at_once_leave_it_where_it_was(tmp_path):
    """The stream's landmarker restarts its graph on a cut (on the prefetch
    thread) while the main thread decodes a PNG with a colour profile; both
    filter file descriptor 2. The first in, out first, left the second to
    put back the first's capture: every later message of the run went to a
    deleted temporary file. Each one's noise is still dropped, the rest kept."""
    import re
    import subprocess
    import sys

    code = """if 1:
    import os, re, threading
    from guides.io import filtered_native_stderr
    before = os.fstat(2)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with filtered_native_stderr(re.compile(rb"^noise a")):
            os.write(2, b"noise a\\nkept a\\n")
            a_in.set(); b_in.wait()
        a_out.set()

    t = threading.Thread(target=first); t.start()
    a_in.wait()
    with filtered_native_stderr(re.compile(rb"^noise b")):
        os.write(2, b"noise b\\nkept b\\n")
        b_in.set(); a_out.wait()
        os.write(2, b"noise a\\n")
    t.join()
    after = os.fstat(2)
    os.write(2, b"after\\n")
    print((before.st_dev, before.st_ino) == (after.st_dev, after.st_ino))
    """
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "True"
    assert run.stderr.splitlines() == ["kept a", "kept b", "after"]


def test_write_image_does_not_replace_a_file_another_run_wrote_meanwhile(tmp_path):
    """Two runs writing one output: each writes its own temporary (they
    shared one name), and without ``overwrite`` the second does not replace
    the file the first put there after it checked (it did, silently); a
    name near the 255-byte limit is written (its temporary's name was
    longer than the limit: 'File name too long')."""
    from guides.io import write_atomic

    image = np.full((8, 8, 3), 50, np.uint8)
    out = tmp_path / "o.png"
    temps = []

    def racing(tmp):
        temps.append(tmp)
        write_image(out, image + 100)  # the other run, done first
        cv2.imwrite(tmp, image)

    with pytest.raises(InputError, match=r"o.png: exists already \(written meanwhile by another "
                                         r"run\?\); pass --overwrite"):
        write_atomic(out, racing, suffix=".png", overwrite=False)
    assert read_image(out)[0, 0, 0] == 150 and os.listdir(tmp_path) == ["o.png"]
    assert os.path.basename(temps[0]) != ".o.png.partial.png"
    write_image(out, image)  # overwrite=True (the default): replaced
    assert read_image(out)[0, 0, 0] == 50
    long = tmp_path / ("é" * 124 + ".png")  # 252 bytes
    write_image(long, image, overwrite=False)
    assert read_image(long)[0, 0, 0] == 50 and len(os.listdir(tmp_path)) == 2
    assert (os.stat(long).st_mode & 0o777) == (0o666 & ~_umask())  # not tempfile's 0600


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_style_cache_that_fills_the_disk_is_one_line(tmp_path):
    """prepare-style into a full disk (a file size limit stands in): our one
    error line, nothing after it (numpy's zip file, collected, failed again:
    'Exception ignored in ZipFile.__del__' and a traceback) and no file."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    out = tmp_path / "h.npz"
    r = subprocess.run([sys.executable, "-m", "blit", "prepare-style", HOPPER, "-o", str(out)],
                       capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"styleblit: error: {out}: cannot be written (File too large)"
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    assert os.listdir(tmp_path) == []
