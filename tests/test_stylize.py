"""The still pipeline's scale: a face much larger than the exemplar's is painted at the exemplar's."""
import cv2
import numpy as np
import pytest

from blit.defaults import default_style_path, default_target_path
from blit.evaluate import face_mask
from blit.metrics import patch_distance
from blit.stylize import MAX_FACE_RATIO, StylizeOptions, face_width, paint_scale, stylize_image
from guides.exemplar import load_style
from guides.io import read_image
from guides.landmarks import detect_landmarks


class _Style:
    def __init__(self, landmarks):
        self.landmarks = landmarks


def _face(width):
    """68 landmarks whose jaw (0 to 16) is ``width`` pixels wide."""
    lm = np.zeros((68, 2), np.float32)
    lm[:, 0] = np.linspace(0, width, 68)
    lm[16, 0] = width
    return lm


def test_paint_scale_follows_the_widest_face():
    style = _Style(_face(400))
    assert face_width(_face(400)) == 400
    assert paint_scale(style, _face(300)) == 1.0  # smaller: painted as it is
    assert paint_scale(style, _face(400 * MAX_FACE_RATIO)) == 1.0  # up to the ratio, too
    assert paint_scale(style, _face(1000)) == pytest.approx(0.4)
    assert paint_scale(style, [_face(300), _face(1600)]) == pytest.approx(0.25)


@pytest.fixture(scope="module")
def hopper_3x():
    """The default style, the Hopper photo and its landmarks, and the photo 3x
    as large (its face 2.4x as wide as the style's) with its landmarks."""
    style = load_style(default_style_path())
    photo = read_image(default_target_path())
    lm = detect_landmarks(photo)
    big = cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    return style, photo, lm, big, ((lm + 0.5) * 3 - 0.5).astype(np.float32)


@pytest.mark.parametrize("background", ["keep", "stylize"])
def test_a_large_face_keeps_the_exemplars_stroke_size(hopper_3x, background):
    # Seen at the size of the 1x photo, the 3x photo's painting is made of the exemplar's
    # patches about as much as the 1x photo's is; painted at its own scale, its strokes
    # are a third as large and far fewer of its patches are the exemplar's.
    style, photo, lm, big, lm_big = hopper_3x
    assert paint_scale(style, lm_big) < 0.5
    options = StylizeOptions(background=background)
    h, w = photo.shape[:2]
    head = face_mask(photo.shape, lm, region="head")

    def distance(image):  # at the 1x photo's size
        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        return patch_distance(small, style.image, mask=head, samples=400)

    scaled = stylize_image(style, big, landmarks=lm_big, options=options)
    native = stylize_image(style, big, landmarks=lm_big, options=options, native_scale=True)
    assert scaled.shape == native.shape == big.shape
    one = patch_distance(stylize_image(style, photo, landmarks=lm, options=options), style.image,
                         mask=head, samples=400)
    d_scaled, d_native = distance(scaled), distance(native)
    assert d_scaled < d_native - 1.0, (d_scaled, d_native)
    assert d_scaled < one + 0.5, (d_scaled, one)
    if background == "keep":  # the photo's own pixels outside the heads
        outside = face_mask(big.shape, lm_big, region="head") == 0
        away = cv2.erode(outside.astype(np.uint8), np.ones((31, 31), np.uint8)).astype(bool)
        np.testing.assert_array_equal(scaled[away], big[away])


# ------------------------------------------------------------ bad arguments

def test_bad_images_and_landmarks_are_refused_by_name(hopper_3x):
    """With landmarks given no detector looks at the image: the image and the
    landmarks are checked as such, never painted into a wrong-typed array."""
    style, photo, lm, _, _ = hopper_3x
    bad_images = [np.dstack([photo, photo[..., :1]]), photo.astype(np.float32) / 255,
                  photo[..., 0], photo.astype(np.uint16), np.zeros((0, 0, 3), np.uint8)]
    for image in bad_images:
        with pytest.raises(ValueError, match="image: expected a non-empty"):
            stylize_image(style, image, landmarks=lm)
    for value in (np.inf, np.nan):
        broken = lm.copy()
        broken[3] = value
        with pytest.raises(ValueError, match="landmarks: expected finite"):
            stylize_image(style, photo, landmarks=broken)
    with pytest.raises(ValueError, match=r"landmarks: expected \(68, 2\) per face, got \(136,\)"):
        stylize_image(style, photo, landmarks=lm.ravel())
    # landmarks as nested lists (as JSON gives them) are one face
    np.testing.assert_array_equal(stylize_image(style, photo, landmarks=lm.tolist()),
                                  stylize_image(style, photo, landmarks=lm))
    # a face wholly outside the frame: nothing to paint
    np.testing.assert_array_equal(stylize_image(style, photo, landmarks=lm + 5000), photo)


def test_bad_settings_are_refused_by_name():
    for kwargs, name in (({"voting": 1.5}, "voting"), ({"voting": "1"}, "voting"),
                         ({"levels": -1}, "levels"), ({"threshold": float("nan")}, "threshold"),
                         ({"background_threshold": -1}, "background_threshold"),
                         ({"denoise": "yes"}, "denoise")):
        with pytest.raises(ValueError, match=f"^{name}: expected"):
            StylizeOptions(**kwargs)
    for kwargs, name in (({"nbins": 0}, "nbins"), ({"nbins": 2.5}, "nbins"),
                         ({"lam_app": float("nan")}, "lam_app"), ({"lam_app": -1}, "lam_app")):
        with pytest.raises(ValueError, match=f"^{name}: expected"):
            load_style(default_style_path(), cache=False, **kwargs)
    from blit.stream import Stylizer

    style = load_style(default_style_path())
    with pytest.raises(TypeError, match="options: expected a blit.stylize.StylizeOptions"):
        Stylizer(style, options={"voting": 1})
    with pytest.raises(ValueError, match="max_faces: expected a whole number"):
        Stylizer(style, max_faces=2.5)
