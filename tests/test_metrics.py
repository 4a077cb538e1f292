"""Tests of blit.metrics on tiny synthetic inputs with known answers."""
import math

import cv2
import numpy as np
import pytest

from blit import metrics as M

H, W = 96, 128


def smooth_texture(rng, h=H, w=W, sigma=3.0):
    """(h, w, 3) uint8: blurred noise stretched to the full [0, 255] range."""
    t = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), sigma)
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 255 + 0.5).astype(np.uint8)


def noise_frames(rng, n, h=H, w=W):
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def shifted_video(rng):
    """Five crops of a larger texture, moving by (dx, dy) = (3, 2) px per frame."""
    big = smooth_texture(rng, H + 40, W + 40)
    return [big[20 + 2 * t:20 + 2 * t + H, 20 + 3 * t:20 + 3 * t + W].copy() for t in range(5)]


# --------------------------------------------------------------- stability

def test_flow_dis_recovers_a_translation(shifted_video):
    flow = M.flow_dis(cv2.cvtColor(shifted_video[0], cv2.COLOR_BGR2GRAY),
                      cv2.cvtColor(shifted_video[1], cv2.COLOR_BGR2GRAY))
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    # content moves by (-3, -2) px between the crops
    inner = flow[16:-16, 16:-16].reshape(-1, 2)
    assert np.allclose(np.median(inner, axis=0), [-3.0, -2.0], atol=0.05)


def test_static_video_has_zero_warping_error(rng):
    frames = [smooth_texture(rng)] * 4
    errors = M.warping_errors(frames, frames)
    assert errors.shape == (3,)
    assert np.all(errors < 1e-6)
    assert M.stability_ratio(frames, frames) == 1.0


def test_shifted_video_is_compensated_by_the_flow(rng, shifted_video):
    errors = M.warping_errors(shifted_video, shifted_video)
    assert errors.shape == (4,)
    # measured ~3e-6 (bilinear resampling of the texture)
    assert np.all(errors < 1e-4)
    noise = M.warping_errors(noise_frames(rng, 5), shifted_video)
    assert np.all(noise > 0.3)  # independent uniform noise: E = 3 * 1/6 = 0.5
    assert errors.max() * 1e3 < noise.min()


def test_rolled_video_with_borders_masked_out(rng):
    base = smooth_texture(rng)
    frames = [np.roll(base, (2 * t, 3 * t), axis=(0, 1)) for t in range(5)]
    mask = np.zeros((H, W), dtype=bool)
    mask[16:-16, 16:-16] = True
    errors = M.warping_errors(frames, frames, masks=[mask] * 5)
    assert np.all(errors < 1e-4)  # measured ~3e-6


def test_independent_noise_frames_are_far_less_stable_than_a_shift(rng, shifted_video):
    noise = noise_frames(rng, 5)
    noise_err = M.warping_errors(noise, noise)
    shift_err = M.warping_errors(shifted_video, shifted_video)
    assert noise_err.min() > 1e3 * shift_err.max()


def test_stability_ratio_of_the_input_itself_is_one(shifted_video):
    assert M.stability_ratio(shifted_video, shifted_video) == 1.0


def test_flickering_output_has_a_large_stability_ratio(rng, shifted_video):
    outputs = [np.clip(f.astype(np.int16) + rng.integers(-40, 41, f.shape), 0, 255).astype(np.uint8)
               for f in shifted_video]
    assert M.stability_ratio(outputs, shifted_video) > 100.0


def test_masks_restrict_the_warping_error(rng):
    static = [smooth_texture(rng)] * 4
    outputs = []
    for noise in noise_frames(rng, 4):
        out = static[0].copy()
        out[:, W // 2:] = noise[:, W // 2:]  # right half flickers
        outputs.append(out)
    left = np.zeros((H, W), dtype=np.float32)
    left[:, :W // 2] = 1.0
    right = 1.0 - left
    assert np.all(M.warping_errors(outputs, static, masks=[left] * 4) < 1e-6)
    in_right = M.warping_errors(outputs, static, masks=[right] * 4)
    everywhere = M.warping_errors(outputs, static)
    assert np.allclose(in_right, 0.5, atol=0.05)
    assert np.allclose(everywhere, in_right / 2, rtol=1e-6)


def test_meter_streams_the_same_numbers_as_the_wrappers(rng, shifted_video):
    outputs = [cv2.GaussianBlur(f, (5, 5), 0) for f in shifted_video]
    outputs[2] = noise_frames(rng, 1)[0]
    meter = M.WarpingErrorMeter()
    for out, inp in zip(outputs, shifted_video):
        meter.update(out, inp)
    result = meter.result()
    assert result["pairs"] == 4 and result["frames"] == 5
    errors = M.warping_errors(iter(outputs), (f for f in shifted_video))  # generators work
    np.testing.assert_array_equal(meter.output_errors, errors)
    assert result["output_error"] == pytest.approx(errors.mean())
    assert result["input_error"] == pytest.approx(meter.input_errors.mean())
    assert result["ratio"] == pytest.approx(M.stability_ratio(outputs, shifted_video))
    assert result["ratio"] == pytest.approx(result["output_error"] / result["input_error"])


def test_empty_mask_gives_nan_pairs(rng):
    frames = [smooth_texture(rng)] * 3
    errors = M.warping_errors(frames, frames, masks=[np.zeros((H, W), np.float32)] * 3)
    assert np.all(np.isnan(errors))


def test_warping_validation(rng):
    frames = [smooth_texture(rng)] * 3
    with pytest.raises(ValueError, match="same number of frames"):
        M.warping_errors(frames, frames[:2])
    with pytest.raises(ValueError, match="same number of frames"):
        M.warping_errors(iter(frames), iter(frames[:2]))
    with pytest.raises(ValueError, match="at least 2 frames"):
        M.stability_ratio(frames[:1], frames[:1])
    with pytest.raises(ValueError, match="output_frame"):
        M.warping_errors([f[:, :-1] for f in frames], frames)
    with pytest.raises(ValueError, match="mask"):
        M.warping_errors(frames, frames, masks=[np.ones((H, W - 1), bool)] * 3)
    meter = M.WarpingErrorMeter()
    meter.update(frames[0], frames[0])
    with pytest.raises(ValueError, match="input_frame"):
        meter.update(frames[0][:-1], frames[0][:-1])


def test_stability_counts_the_pairs_it_measured():
    """Pairs whose mask is empty (no face) are left out of the mean and out
    of ``measured_pairs``; ``pairs`` counts them all."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(4)]
    full, empty = np.ones((24, 32), bool), np.zeros((24, 32), bool)
    meter = M.WarpingErrorMeter()
    for frame, mask in zip(frames, (full, full, empty, empty)):
        meter.update(frame, frame, mask)
    result = meter.result()
    assert result["pairs"] == 3 and result["measured_pairs"] == 1 and result["frames"] == 4


# --------------------------------------------------------------- style fidelity

def brute_force_distances(image, exemplar, centres, k):
    r = k // 2
    ex = np.lib.stride_tricks.sliding_window_view(exemplar.astype(np.float64), (k, k), axis=(0, 1))
    ex = ex.reshape(-1, 3 * k * k)
    out = []
    for y, x in centres:
        q = image[y - r:y + r + 1, x - r:x + r + 1].astype(np.float64).transpose(2, 0, 1).ravel()
        out.append(np.sqrt(((ex - q) ** 2).sum(axis=1).min() / q.size))
    return np.array(out)


def test_patch_distances_match_brute_force(rng):
    exemplar = smooth_texture(rng, 40, 48)
    image = smooth_texture(rng, 24, 32)
    got = M.patch_distances(image, exemplar, patch=5, samples=10_000)
    centres = [(y, x) for y in range(2, 22) for x in range(2, 30)]  # all centres, in order
    assert got.shape == (len(centres),)
    np.testing.assert_allclose(got, brute_force_distances(image, exemplar, centres, 5), atol=1e-3)


def test_exemplar_stride_searches_a_subset(rng):
    exemplar = smooth_texture(rng, 40, 48)
    image = smooth_texture(rng, 24, 32)
    full = M.patch_distances(image, exemplar, samples=200)
    strided = M.patch_distances(image, exemplar, samples=200, exemplar_stride=2)
    assert np.all(strided >= full - 1e-9)


def test_exemplar_pixels_are_close_and_noise_is_far(rng):
    exemplar = smooth_texture(rng)
    crop = exemplar[10:70, 20:100]
    assert M.patch_distance(crop, exemplar, samples=500) < 1.0
    # rearranged 16x16 blocks: patches inside a block occur in the exemplar
    blocks = [exemplar[y:y + 16, x:x + 16] for y in range(0, H, 16) for x in range(0, W, 16)]
    order = rng.permutation(len(blocks))
    mosaic = np.vstack([np.hstack([blocks[order[r * 8 + c]] for c in range(8)]) for r in range(6)])
    inside = np.zeros((H, W), dtype=bool)
    for y in range(0, H, 16):
        for x in range(0, W, 16):
            inside[y + 2:y + 14, x + 2:x + 14] = True
    assert M.patch_distance(mosaic, exemplar, mask=inside, samples=500) < 1.0
    assert M.patch_distance(noise_frames(rng, 1)[0], exemplar, samples=500) > 30.0


def test_patch_distance_mask_selects_the_region(rng):
    exemplar = smooth_texture(rng)
    image = exemplar.copy()
    image[:, W // 2:] = noise_frames(rng, 1)[0][:, W // 2:]
    left = np.zeros((H, W), dtype=np.float32)
    left[:, :W // 2 - 2] = 1.0
    right = np.zeros((H, W), dtype=bool)
    right[:, W // 2 + 2:] = True
    assert M.patch_distance(image, exemplar, mask=left, samples=300) < 1.0
    assert M.patch_distance(image, exemplar, mask=right, samples=300) > 30.0


def test_patch_distance_is_seeded(rng):
    exemplar = smooth_texture(rng)
    image = smooth_texture(rng)
    a = M.patch_distances(image, exemplar, samples=50, seed=3)
    b = M.patch_distances(image, exemplar, samples=50, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50,)


def test_patch_distance_validation(rng):
    image = smooth_texture(rng)
    with pytest.raises(ValueError, match="patch"):
        M.patch_distance(image, image, patch=4)
    with pytest.raises(ValueError, match="mask"):
        M.patch_distance(image, image, mask=np.zeros((H, W), bool))
    with pytest.raises(ValueError, match="mask"):
        M.patch_distance(image, image, mask=np.ones((H, W + 1), bool))
    with pytest.raises(ValueError, match="exemplar"):
        M.patch_distance(image, image[:3, :3])


# --------------------------------------------------------------- structure

def synthetic_landmarks(rng):
    points = rng.uniform(0, 200, (68, 2))
    points[36:42] = [60, 80] + rng.normal(0, 3, (6, 2)) - rng.normal(0, 3, (6, 2)).mean(0)
    points[42:48] = [120, 80] + rng.normal(0, 3, (6, 2))
    return points


def test_landmark_error(rng):
    a = synthetic_landmarks(rng)
    assert M.landmark_error(a, a) == 0.0
    iod = M.inter_ocular_distance(a)
    direction = np.array([0.6, 0.8])
    assert M.landmark_error(a, a + 0.1 * iod * direction) == pytest.approx(0.1)
    # scale invariant
    assert M.landmark_error(3 * a, 3 * (a + 0.1 * iod * direction)) == pytest.approx(0.1)


def test_landmark_validation(rng):
    a = synthetic_landmarks(rng)
    with pytest.raises(ValueError, match="points_b"):
        M.landmark_error(a, a[:67])
    with pytest.raises(ValueError, match="points_a"):
        M.landmark_error(np.zeros((68, 2)), a)


# --------------------------------------------------------------- agreement

def test_psnr_and_ssim_of_identical_and_noisy_images(rng):
    a = smooth_texture(rng)
    assert M.psnr(a, a) == math.inf
    assert M.ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 10, a.shape), 0, 255).round().astype(np.uint8)
    p = M.psnr(a, noisy)
    assert 26.0 < p < 30.0  # 20 log10(255 / 10) = 28.1 dB
    assert 0.0 < M.ssim(a, noisy) < 0.99
    assert M.ssim(a, noisy, mask=np.ones((H, W), bool)) == pytest.approx(M.ssim(a, noisy))
    assert M.psnr(a, noisy, mask=np.ones((H, W), np.float32)) == pytest.approx(p)


def test_agreement_masks_restrict_the_region(rng):
    a = smooth_texture(rng)
    b = a.copy()
    b[:, W // 2:] = noise_frames(rng, 1)[0][:, W // 2:]
    left = np.zeros((H, W), dtype=bool)
    left[:, :W // 2] = True
    assert M.psnr(a, b, mask=left) == math.inf
    assert M.psnr(a, b, mask=~left) < M.psnr(a, b) < 20.0
    inner_left = np.zeros((H, W), dtype=bool)
    inner_left[:, :W // 2 - 6] = True  # away from the window reaching the noise
    assert M.ssim(a, b, mask=inner_left) == pytest.approx(1.0)
    assert M.ssim(a, b, mask=~left) < 0.5


def test_agreement_validation(rng):
    a = smooth_texture(rng)
    with pytest.raises(ValueError, match="b"):
        M.psnr(a, a[:, :-1])
    with pytest.raises(ValueError, match="mask"):
        M.ssim(a, a, mask=np.ones((H, W, 1), bool))
    with pytest.raises(ValueError, match="mask"):
        M.psnr(a, a, mask=np.full((H, W), 2.0, np.float32))


# --------------------------------------------------------------- speed

def test_latency_summary():
    s = M.latency_summary(np.arange(101, dtype=float))
    assert s == {"median": 50.0, "p10": 10.0, "p90": 90.0, "iqr": 50.0, "mean": 50.0, "n": 101}
    with pytest.raises(ValueError, match="samples_ms"):
        M.latency_summary([])


def test_stage_timer():
    timer = M.StageTimer()
    for _ in range(3):
        with timer.frame():
            with timer("lookup"):
                pass
            timer.record("upload", 2.0)
    summary = timer.summary()
    assert set(summary["stages"]) == {"lookup", "upload"}
    assert summary["stages"]["lookup"]["n"] == 3
    assert summary["stages"]["upload"]["median"] == 2.0
    assert summary["frame"]["n"] == 3 and summary["fps"] > 0
    skipped = timer.summary(skip=1)
    assert skipped["stages"]["upload"]["n"] == 2 and skipped["frame"]["n"] == 2
    assert M.StageTimer().summary() == {"stages": {}, "frame": None, "fps": None}


def test_detail_is_zero_on_flat_images_and_falls_with_blur():
    from blit.metrics import detail

    flat = np.full((32, 32, 3), 90, np.uint8)
    assert detail(flat) == 0.0
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(noisy, (0, 0), 1.5)
    assert detail(blurred) < 0.5 * detail(noisy)
    mask = np.zeros((32, 32), np.float32)
    mask[:, :16] = 1.0
    half = noisy.copy()
    half[:, 16:] = 90
    assert detail(half, mask=mask) > detail(half[:, 16:].copy())
    with pytest.raises(ValueError, match="mask"):
        detail(noisy, mask=np.zeros((32, 32), np.float32))
