"""The StyleBlit lookup and blending against their slow references and invariants."""
import numpy as np
import pytest

from blit import reference as ref
from blit.blending import PACK_PAD, blend, denoise_nnf, pack_exemplar
from blit.styleblit import LookupParams, argmin_lookup_table, lookup, make_jitter, seed_labels


def smooth_noise(rng, shape, sigma=2.0):
    import cv2

    img = rng.random(shape, dtype=np.float32)
    return cv2.GaussianBlur(img, (0, 0), sigma)


def make_style(rng, hs=40, ws=32):
    style = rng.integers(0, 256, (hs, ws, 3), dtype=np.uint8)
    app = (smooth_noise(rng, (hs, ws)) * 255).astype(np.float32)
    app = (app - app.min()) / max(np.ptp(app), 1e-6) * 255
    return style, app.astype(np.float32)


def identity_pos(h, w):
    ys, xs = np.mgrid[0:h, 0:w]
    return np.stack([xs, ys], -1).astype(np.float32)


@pytest.mark.parametrize("lam_app", [0.0, 2.0])
def test_table_reaches_the_minimum_cost(lam_app):
    rng = np.random.default_rng(0)
    _, app = make_style(rng, 24, 20)
    params = LookupParams(lam_pos=2.5, lam_app=lam_app)
    fast, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    slow, bins_ref = ref.argmin_lookup_table(app, params, cell=4, nbins=8)
    np.testing.assert_array_equal(bins, bins_ref)
    # Ties may pick different pixels; the cost reached must be the minimum.
    _, values = __import__("blit.styleblit", fromlist=["x"]).appearance_bins(app, 8)
    if lam_app == 0:
        values[:] = 0
    ws = app.shape[1]
    for j in range(fast.shape[0]):
        for i in range(fast.shape[1]):
            c = np.array([min(i * 4 + 2, ws - 1), min(j * 4 + 2, app.shape[0] - 1)])
            for b in range(8):
                cost = []
                for idx in (fast[j, i, b], slow[j, i, b]):
                    p = np.array([idx % ws, idx // ws])
                    cost.append(params.lam_pos * np.abs(p - c).sum() + lam_app * abs(app[p[1], p[0]] - values[b]))
                assert cost[0] == pytest.approx(cost[1], abs=1e-3)


@pytest.mark.parametrize("threshold", [0.0, 10.0, 50.0, 1e9])
@pytest.mark.parametrize("levels", [1, 3, 5])
@pytest.mark.parametrize("jitter_size", [8, 6])  # a power of two (a mask) and not (a modulo)
def test_lookup_equals_reference(threshold, levels, jitter_size):
    rng = np.random.default_rng(1)
    style, app = make_style(rng)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=threshold, levels=levels)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    h, w = 21, 27
    # a smooth random warp of the exemplar with noisy appearance
    pos = identity_pos(h, w) * 1.2 + rng.normal(0, 0.5, (h, w, 2)).astype(np.float32) + 2
    tapp = np.clip(rng.normal(128, 40, (h, w)), 0, 255).astype(np.float32)
    jitter = make_jitter(3, levels=levels, size=jitter_size)
    origin = (5, 9)
    fast = lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin)
    slow = ref.lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin)
    np.testing.assert_array_equal(fast, slow)
    labels = seed_labels((origin[1] + h + 3, origin[0] + w + 1), jitter, levels)
    with_labels = lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin, labels=labels)
    np.testing.assert_array_equal(with_labels, slow)
    # a sparse region and a dense one with holes (the dense one's coarsest
    # level goes by runs at other sizes: test_lookup_by_runs_equals_reference)
    for share in (0.3, 0.8):
        some = rng.random((h, w)) < share
        for lab in (None, labels):
            part = lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin,
                          labels=lab, active=some)
            np.testing.assert_array_equal(part[some], slow[some])
            assert (part[~some] < 0).all()


@pytest.mark.parametrize("run_spacing", [2, 4, 16])
@pytest.mark.parametrize("threshold", [10.0, 50.0])
def test_lookup_by_runs_equals_reference(monkeypatch, run_spacing, threshold):
    """The coarse levels of a dense region go by runs of pixels sharing a
    seed (spacing 64 by default, coarser than the references' small inputs
    reach): here from spacing 2, 4 and 16 on, with and without labels, on a
    region with holes and a guide partly off the exemplar."""
    from blit import styleblit

    monkeypatch.setattr(styleblit, "_RUN_SPACING", run_spacing)
    rng = np.random.default_rng(7)
    style, app = make_style(rng)
    levels = 5
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=threshold, levels=levels)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    h, w = 37, 45
    pos = identity_pos(h, w) * 0.9 + rng.normal(0, 0.7, (h, w, 2)).astype(np.float32) - 4
    tapp = np.clip(rng.normal(128, 40, (h, w)), 0, 255).astype(np.float32)
    jitter = make_jitter(9, levels=levels, size=8)
    origin = (3, 6)
    slow = ref.lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin)
    labels = seed_labels((origin[1] + h, origin[0] + w), jitter, levels)
    some = rng.random((h, w)) < 0.8
    for lab in (None, labels):
        np.testing.assert_array_equal(
            lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin, labels=lab), slow)
        part = lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin, labels=lab,
                      active=some)
        np.testing.assert_array_equal(part[some], slow[some])
        assert (part[~some] < 0).all()
    # a strided out is written as a contiguous one would be
    out = np.full((h, 2 * w, 2), 7, np.int32)
    lookup(pos, tapp, app, table, bins, 4, params, jitter, origin=origin, out=out[:, ::2])
    np.testing.assert_array_equal(out[:, ::2], slow)
    assert (out[:, 1::2] == 7).all()


def test_lazy_seed_lookup_is_deterministic_under_threads():
    """Many pixels of a sparse region meet each unseen seed at once; every run
    gives the NNF of the dense region, whichever thread looks a seed up."""
    rng = np.random.default_rng(5)
    style, app = make_style(rng)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=30.0, levels=5)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    h, w = 160, 200
    pos = identity_pos(h, w) * 0.3 + rng.normal(0, 0.5, (h, w, 2)).astype(np.float32) + 2
    tapp = np.clip(rng.normal(128, 40, (h, w)), 0, 255).astype(np.float32)
    jitter = make_jitter(4, levels=5)
    dense = lookup(pos, tapp, app, table, bins, 4, params, jitter)
    sparse = rng.random((h, w)) < 0.2
    for _ in range(5):
        part = lookup(pos, tapp, app, table, bins, 4, params, jitter, active=sparse)
        np.testing.assert_array_equal(part[sparse], dense[sparse])


def test_uint8_exemplar_guide_gives_the_nnf_of_its_float32_copy():
    """StyleExemplar keeps its appearance guide as uint8; the kernels read it
    into float32 arithmetic, so the NNF is that of the same values as float32
    (which the CUDA path reads), dense and sparse."""
    rng = np.random.default_rng(4)
    _, app = make_style(rng)
    app8 = np.round(app).astype(np.uint8)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=20.0, levels=5)
    table, bins = argmin_lookup_table(app8, params, cell=4, nbins=8)
    pos = identity_pos(23, 19) * 1.3 + rng.normal(0, 0.5, (23, 19, 2)).astype(np.float32) + 1
    tapp = np.clip(rng.normal(128, 40, (23, 19)), 0, 255).astype(np.float32)
    jitter = make_jitter(5, levels=5, size=8)
    for active in (None, rng.random((23, 19)) < 0.3):
        want = lookup(pos, tapp, app8.astype(np.float32), table, bins, 4, params, jitter, active=active)
        got = lookup(pos, tapp, app8, table, bins, 4, params, jitter, active=active)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        got[active], ref.lookup(pos, tapp, app8.astype(np.float32), table, bins, 4, params, jitter)[active])


@pytest.mark.parametrize("size", [4, 3])
def test_seed_labels_point_at_the_nearest_seed(size):
    jitter = make_jitter(11, levels=4, size=size)
    labels = seed_labels((37, 41), jitter, 4)
    for level in range(1, 4):
        for y in range(0, 37, 5):
            for x in range(0, 41, 3):
                q = ref.nearest_seed((x, y), 2 ** level, jitter[level])
                lab = labels[level, y, x]
                cx, cy = (x >> level) + lab % 3 - 1, (y >> level) + lab // 3 - 1
                j = jitter[level, cy % size, cx % size]
                assert (int(np.floor(2 ** level * (cx + j[0]))), int(np.floor(2 ** level * (cy + j[1])))) == q


def test_lookup_position_only_equals_reference():
    rng = np.random.default_rng(2)
    style, app = make_style(rng)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=8.0, levels=4)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    pos = identity_pos(16, 16) * 1.5 + 3
    jitter = make_jitter(0, levels=4, size=8)
    fast = lookup(pos, None, app, table, bins, 4, params, jitter)
    slow = ref.lookup(pos, None, app, table, bins, 4, params, jitter)
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("levels", [1, 4, 7])
def test_identical_injective_guides_give_identity(levels):
    """Target guides equal to the exemplar's: every pixel copies itself."""
    rng = np.random.default_rng(3)
    style, _ = make_style(rng, 48, 40)
    # injective appearance: every pixel a distinct value
    app = rng.permutation(48 * 40).reshape(48, 40).astype(np.float32) * (255.0 / (48 * 40))
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=50.0, levels=levels)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=16)
    pos = identity_pos(48, 40)
    nnf = lookup(pos, app, app, table, bins, 4, params, make_jitter(0, levels=levels, size=16))
    np.testing.assert_array_equal(nnf, pos.astype(np.int32))
    for r in (0, 1, 2):
        np.testing.assert_array_equal(blend(style, nnf, r), style)


def test_nnf_always_inside_exemplar_and_r0_copies_exemplar_pixels():
    rng = np.random.default_rng(4)
    style, app = make_style(rng)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=30.0, levels=6)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    # guides far outside the exemplar on purpose
    pos = identity_pos(50, 60) * 2.0 - 20
    tapp = rng.uniform(0, 255, (50, 60)).astype(np.float32)
    nnf = lookup(pos, tapp, app, table, bins, 4, params, make_jitter(0, levels=6))
    assert (nnf[..., 0] >= 0).all() and (nnf[..., 0] < 32).all()
    assert (nnf[..., 1] >= 0).all() and (nnf[..., 1] < 40).all()
    out = blend(style, nnf, 0)
    np.testing.assert_array_equal(out, style[nnf[..., 1], nnf[..., 0]])
    colours = {tuple(c) for c in style.reshape(-1, 3)}
    assert all(tuple(c) in colours for c in out.reshape(-1, 3))


def test_lookup_is_deterministic_for_a_fixed_jitter_and_depends_on_it():
    rng = np.random.default_rng(5)
    _, app = make_style(rng)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=40.0)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    pos = identity_pos(60, 50) * 0.6 + 1
    tapp = np.clip(rng.normal(128, 30, (60, 50)), 0, 255).astype(np.float32)
    a = lookup(pos, tapp, app, table, bins, 4, params, make_jitter(7))
    b = lookup(pos, tapp, app, table, bins, 4, params, make_jitter(7))
    c = lookup(pos, tapp, app, table, bins, 4, params, make_jitter(8))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_inactive_pixels_are_skipped_and_keep_output():
    rng = np.random.default_rng(6)
    style, app = make_style(rng)
    params = LookupParams(lam_pos=2.0, lam_app=2.0, threshold=40.0, levels=4)
    table, bins = argmin_lookup_table(app, params, cell=4, nbins=8)
    pos = identity_pos(20, 20) + 5
    active = np.zeros((20, 20), bool)
    active[5:15, 5:15] = True
    full = lookup(pos, None, app, table, bins, 4, params, make_jitter(0, levels=4))
    part = lookup(pos, None, app, table, bins, 4, params, make_jitter(0, levels=4), active=active)
    np.testing.assert_array_equal(part[active], full[active])
    assert (part[~active] < 0).all()
    out = np.full((20, 20, 3), 7, np.uint8)
    blend(style, part, 1, out=out)
    assert (out[~active] == 7).all()


@pytest.mark.parametrize("radius", [0, 1, 2, 4])
@pytest.mark.parametrize("shape", [(20, 25), (1, 7), (6, 1), (2, 2), (75, 9)])  # (75: bands of 2-3 rows)
def test_blend_equals_reference(radius, shape):
    rng = np.random.default_rng(7)
    style = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    nnf = np.stack([rng.integers(0, 40, shape), rng.integers(0, 30, shape)], -1).astype(np.int32)
    np.testing.assert_array_equal(blend(style, nnf, radius), ref.blend(style, nnf, radius))
    # inactive pixels cast no vote and keep their output
    inactive = rng.random(shape) < 0.3
    nnf[inactive] = -(1 << 24)
    inactive[0, 0] = False
    nnf[0, 0] = (3, 4)
    out = np.full(shape + (3,), 9, np.uint8)
    blend(style, nnf, radius, out=out)
    with np.errstate(divide="ignore"):  # the reference's inactive pixels may get no vote
        want = ref.blend(style, nnf, radius)
    np.testing.assert_array_equal(out[~inactive], want[~inactive])
    assert (out[inactive] == 9).all()
    # the exemplar packed once with a wider border (as StyleExemplar.packed): same image
    again = np.full(shape + (3,), 9, np.uint8)
    blend(style, nnf, radius, out=again, packed=pack_exemplar(style, PACK_PAD))
    np.testing.assert_array_equal(again, out)
    # sources beyond the exemplar (outside the NNF's contract): their votes that
    # fall off the exemplar are not counted, and nothing is read out of bounds
    wild = np.stack([rng.integers(0, 60, shape), rng.integers(-20, 50, shape)], -1).astype(np.int32)
    with np.errstate(divide="ignore"):  # (a pixel with no vote: 0 in both)
        np.testing.assert_array_equal(blend(style, wild, radius), ref.blend(style, wild, radius))


def _runs_nnf(rng, shape, style_shape, beyond=0):
    """An NNF of horizontal runs (a pixel copies the source right of its left
    neighbour's), 1 to 30 pixels long, with some inactive pixels; with
    ``beyond``, some runs go up to that far past the exemplar's right edge."""
    h, w = shape
    nnf = np.full((h, w, 2), -(1 << 24), np.int32)
    for y in range(h):
        x = 0
        while x < w:
            n = int(rng.integers(1, 31))
            if rng.random() > 0.1:  # (else left inactive)
                x0 = int(rng.integers(0, style_shape[1] + beyond))
                sy = int(rng.integers(0, style_shape[0]))
                xs = x0 + np.arange(min(n, w - x))
                if not beyond:
                    xs = np.minimum(xs, style_shape[1] - 1)  # (a run cut at the edge)
                nnf[y, x:x + n, 0] = xs
                nnf[y, x:x + n, 1] = sy
            x += n
    return nnf


@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("shape", [(40, 90), (75, 31)])
def test_blend_of_runs_equals_reference(radius, shape):
    """Runs of pixels copying consecutive sources, which the 5x5 blend sends
    as one (each word added once per pixel of the run it reaches): the
    same image as the reference, also for runs cut by the exemplar's edge
    and runs that go past it (outside the NNF's contract: those votes are
    not counted)."""
    rng = np.random.default_rng(11)
    style = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for beyond in (0, 8):
        nnf = _runs_nnf(rng, shape, style.shape[:2], beyond)
        assert (nnf[:, 1:, 0] == nnf[:, :-1, 0] + 1).mean() > 0.5  # mostly runs
        with np.errstate(divide="ignore"):  # (a pixel with no vote: 0 in both)
            want = ref.blend(style, nnf, radius)
        out = np.zeros(shape + (3,), np.uint8)
        blend(style, nnf, radius, out=out)
        active = nnf[..., 0] >= 0
        np.testing.assert_array_equal(out[active], want[active])
        again = np.zeros(shape + (3,), np.uint8)
        blend(style, nnf, radius, out=again, packed=pack_exemplar(style, PACK_PAD))
        np.testing.assert_array_equal(again, out)


def _patchy_nnf(rng, shape, style_shape, noffsets, inactive=0.2):
    """An NNF made of a few offsets (so that neighbourhoods hold repeats and
    ties), with some inactive pixels."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w]
    offsets = rng.integers(-3, 4, (noffsets, 2))
    pick = offsets[rng.integers(0, noffsets, shape)]
    nnf = np.stack([np.clip(xs + pick[..., 0], 0, style_shape[1] - 1),
                    np.clip(ys + pick[..., 1], 0, style_shape[0] - 1)], -1).astype(np.int32)
    nnf[rng.random(shape) < inactive] = -(1 << 24)
    return nnf


@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("shape", [(23, 31), (1, 9), (7, 1), (2, 2)])
@pytest.mark.parametrize("noffsets", [2, 4, 30])
def test_denoise_nnf_equals_reference(radius, shape, noffsets):
    rng = np.random.default_rng(radius * 100 + noffsets)
    style_shape = (26, 33)  # a few px larger than the target: some modes fall off it
    nnf = _patchy_nnf(rng, shape, style_shape, noffsets)
    got = denoise_nnf(nnf, radius, style_shape)
    np.testing.assert_array_equal(got, ref.denoise_nnf(nnf, radius, style_shape))
    strided = np.zeros((shape[0], 2 * shape[1], 2), np.int32)  # an out of every other column
    denoise_nnf(nnf, radius, style_shape, out=strided[:, ::2])
    np.testing.assert_array_equal(strided[:, ::2], got)
    active = nnf[..., 0] >= 0
    np.testing.assert_array_equal(got[~active], nnf[~active])  # untouched
    assert ((got[active] >= 0) & (got[active] < style_shape[::-1])).all()


@pytest.mark.parametrize("counts, want", [
    ((12, 13), 1),  # own 12 of 25 is no majority: the 13 win
    ((13, 12), 0),  # own 13 is
    ((12, 12), 0),  # a tie keeps the own offset (one more pixel has a third)
    ((5, 10), 1),   # two offsets of 10 after an own 5: the first in raster order
])
def test_denoise_5x5_counts_and_ties(counts, want):
    """The 5x5 filter's counting, at the counts where it decides: a pixel
    whose window holds its own offset ``counts[0]`` times and another
    (placed first in raster order) ``counts[1]`` times, the rest a third
    offset (after them)."""
    offsets = [(3, 1), (1, 2), (2, 3)]  # own, other, third
    n_own, n_other = counts
    order = [1] * n_other + [0] * (n_own - 1) + [2] * (24 - n_own - n_other + 1)
    order.insert(12, 0)  # the centre pixel has its own offset
    del order[25:]
    assert order.count(0) == n_own and order.count(1) == n_other and order[12] == 0
    nnf = np.zeros((9, 9, 2), np.int32)
    for i, o in enumerate(order):
        y, x = 2 + i // 5, 2 + i % 5
        nnf[y, x] = (x + offsets[o][0], y + offsets[o][1])
    # the pixels around the window copy the third offset
    for y in range(9):
        for x in range(9):
            if not (2 <= y < 7 and 2 <= x < 7):
                nnf[y, x] = (x + offsets[2][0], y + offsets[2][1])
    got = denoise_nnf(nnf, 2, (20, 20))
    np.testing.assert_array_equal(got, ref.denoise_nnf(nnf, 2, (20, 20)))
    dx, dy = offsets[want]
    assert tuple(got[4, 4]) == (4 + dx, 4 + dy)


def test_denoise_nnf_removes_strays_and_keeps_patches():
    h, w = 40, 50
    ys, xs = np.mgrid[0:h, 0:w]
    # two coherent patches side by side (different offsets), a few stray pixels
    nnf = np.stack([xs + 5, ys + 2], -1).astype(np.int32)
    nnf[:, 25:] = np.stack([xs[:, 25:] + 40, ys[:, 25:] + 30], -1)
    strays = [(10, 10), (30, 40), (0, 0), (39, 49)]
    for y, x in strays:
        nnf[y, x] = (1, 1)
    for radius in (1, 2):
        got = denoise_nnf(nnf, radius, (100, 100))
        clean = nnf.copy()
        clean[:, :25] = np.stack([xs[:, :25] + 5, ys[:, :25] + 2], -1)
        clean[:, 25:] = np.stack([xs[:, 25:] + 40, ys[:, 25:] + 30], -1)
        np.testing.assert_array_equal(got, clean)  # strays gone, the straight seam kept
    # a majority is never overturned, an NNF already coherent is a fixed point
    np.testing.assert_array_equal(denoise_nnf(clean, 1, (100, 100)), clean)
    with pytest.raises(ValueError, match="share memory"):
        denoise_nnf(nnf, 1, (100, 100), out=nnf)
    # a radius past the stylizers' largest voting is refused (its worst case
    # grows as the radius to the fourth: minutes at 100), as is a fraction
    np.testing.assert_array_equal(denoise_nnf(nnf, np.int64(4), (100, 100)),
                                  ref.denoise_nnf(nnf, 4, (100, 100)))
    for radius in (5, 100, -1, 1.5, True):
        with pytest.raises(ValueError, match="whole number 0..4"):
            denoise_nnf(nnf, radius, (100, 100))


def test_packed_exemplar_words_and_border():
    style = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)
    packed = pack_exemplar(style, 1)
    assert packed.shape == (3, 4) and packed.dtype == np.uint32
    assert packed[1, 1] == 1 | 2 << 8 | 3 << 16 | 1 << 24  # channels, then one vote
    assert packed[1, 2] == 4 | 5 << 8 | 6 << 16 | 1 << 24
    border = np.ones((3, 4), bool)
    border[1, 1:3] = False
    assert (packed[border] == 0).all()  # no colour, no vote
    with pytest.raises(ValueError, match="packed"):  # its border is narrower than the radius
        blend(style, np.zeros((2, 2, 2), np.int32), 2, packed=packed)
    with pytest.raises(ValueError, match="packed"):
        blend(style, np.zeros((2, 2, 2), np.int32), 1, packed=packed.astype(np.int64))


def test_bad_arguments_name_the_parameter():
    style = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(TypeError, match="nnf"):
        blend(style, np.zeros((2, 2, 2), np.int64))
    with pytest.raises(ValueError, match="nnf"):
        blend(style, np.zeros((2, 2), np.int32))
    with pytest.raises(TypeError, match="style"):
        blend(style.astype(np.float32), np.zeros((2, 2, 2), np.int32))
    app = np.zeros((4, 4), np.float32)
    params = LookupParams(lam_pos=1.0)
    table, bins = argmin_lookup_table(app, params, nbins=2)
    with pytest.raises(ValueError, match="target_pos"):
        lookup(np.zeros((3, 3), np.float32), None, app, table, bins, 4, params, make_jitter())
    with pytest.raises(ValueError, match="target_app"):
        lookup(np.zeros((3, 3, 2), np.float32), np.zeros((2, 2), np.float32), app, table, bins, 4,
               params, make_jitter())
    with pytest.raises(ValueError, match="jitter"):
        lookup(np.zeros((3, 3, 2), np.float32), None, app, table, bins, 4, params,
               make_jitter(levels=2))
    not_square = make_jitter()[:, :, :32]  # the kernels index both axes modulo shape[1]
    with pytest.raises(ValueError, match="jitter"):
        lookup(np.zeros((3, 3, 2), np.float32), None, app, table, bins, 4, params, not_square)
    with pytest.raises(ValueError, match="jitter"):
        seed_labels((3, 3), not_square)


def test_arguments_the_kernels_index_by_are_checked():
    """Out of range, a table, its bins, the exemplar guide or an ``out``
    would make the kernels read or write outside their arrays (a user's
    table of another exemplar crashed the process): each is a ValueError."""
    app = (np.arange(30, dtype=np.uint8) * 8).reshape(6, 5)
    params = LookupParams(lam_pos=1.0)
    table, bins = argmin_lookup_table(app, params, cell=2, nbins=4)
    assert table.max() > 0
    pos, jitter = np.ones((3, 3, 2), np.float32), make_jitter()
    good = lookup(pos, None, app, table, bins, 2, params, jitter)
    for bad_table, message in ((table * 100, r"entries must be .* \[0, 30\)"),
                               (table - table.min() - 1, r"entries must be"),
                               (table.astype(np.int64), "table: expected"),
                               (table[..., 0], "table: expected")):
        with pytest.raises(ValueError, match=message):
            lookup(pos, None, app, bad_table, bins, 2, params, jitter)
    for bad_bins in (bins[:100], bins + 4, bins.astype(np.int64)):
        with pytest.raises(ValueError, match="app_bin"):
            lookup(pos, None, app, table, bad_bins, 2, params, jitter)
    with pytest.raises(ValueError, match="cell"):
        lookup(pos, None, app, table, bins, 0, params, jitter)
    with pytest.raises(ValueError, match="style_app"):
        lookup(pos, None, app[..., None], table, bins, 2, params, jitter)
    # (a table checked once is not checked again, nor another exemplar size)
    np.testing.assert_array_equal(lookup(pos, None, app, table, bins, 2, params, jitter), good)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        lookup(pos, None, app[:2], table, bins, 2, params, jitter)

    style = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    nnf = np.zeros((2, 3, 2), np.int32)
    for out in (np.zeros((5, 5, 3), np.uint8), np.zeros((2, 3, 3), np.float32),
                np.zeros((2, 3), np.uint8)):
        with pytest.raises(ValueError, match="out: expected"):
            blend(style, nnf, 1, out=out)
    strided = np.zeros((2, 6, 3), np.uint8)[:, ::2]
    np.testing.assert_array_equal(blend(style, nnf, 1, out=strided), blend(style, nnf, 1))


def test_guides_and_composite_refuse_images_that_are_not_bgr8():
    """uint16 grey levels indexed the appearance's tables out of bounds (the
    process aborted); floats gave a guide of two values; a grey background
    took three bytes a pixel into one."""
    from guides.appearance import luminance_detail, target_appearance
    from guides.mask import HeadRegion, composite

    image = np.full((8, 8, 3), 100, np.uint8)
    quantiles = np.linspace(0, 255, 257).astype(np.float32)
    for bad in (image.astype(np.uint16) * 257, image / 255.0, image[..., 0]):
        with pytest.raises(ValueError, match=r"image: expected \(H, W, 3\) uint8"):
            target_appearance(bad, quantiles)
        with pytest.raises(ValueError, match=r"image: expected \(H, W, 3\) uint8"):
            luminance_detail(bad)
    region = HeadRegion((0, 0, 2, 2), np.ones((2, 2), np.float32))
    fg = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="background: expected"):
        composite(image[..., 0], fg, region)
    with pytest.raises(ValueError, match="foreground: expected"):
        composite(image, fg.astype(np.float32), region)
    with pytest.raises(ValueError, match="out: expected"):
        composite(image, fg, region, out=np.zeros((4, 4, 3), np.uint8))
    assert (composite(image, fg, region)[:2, :2] == 0).all()
