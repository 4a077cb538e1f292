"""Integration on the FaceBlit test material (../shared/data/faceblit; skipped without it).

target1.png in three styles: inside the face, the output must be made of the
exemplar's patches (closer to them than the photo's own patches are), and it
must still read as the same face to mediapipe (landmarks within 5 % of the
inter-ocular distance of those found on the photo).
"""
import pytest

from blit.evaluate import face_mask
from blit.metrics import landmark_error, patch_distance
from blit.stylize import StylizeOptions, stylize_image
from guides.exemplar import load_style
from guides.io import read_image
from guides.landmarks import detect_landmarks

pytestmark = pytest.mark.data

STYLES = ("bronzestatue", "het", "lincolnbust")
SAMPLES = 1000  # 5x5 patches per image; ~1.5 s per distance against a 768x1024 exemplar


@pytest.fixture(scope="module")
def target(faceblit_dir):
    image = read_image(faceblit_dir / "targets" / "target1.png")
    landmarks = detect_landmarks(image)
    assert landmarks is not None, "mediapipe found no face in target1.png"
    return image, landmarks


@pytest.mark.parametrize("name", STYLES)
def test_target1_is_painted_with_exemplar_patches(faceblit_dir, target, name):
    image, landmarks = target
    style = load_style(faceblit_dir / "styles" / f"{name}.png")  # uses NAME.lm68.txt beside it
    out = stylize_image(style, image, landmarks=landmarks, options=StylizeOptions(voting=1))
    assert out.shape == image.shape

    inside = face_mask(image.shape, landmarks, region="face") >= 0.5  # jaw + brows hull
    d_out = patch_distance(out, style.image, mask=inside, samples=SAMPLES, seed=0)
    d_photo = patch_distance(image, style.image, mask=inside, samples=SAMPLES, seed=0)
    assert d_out < d_photo, f"{name}: output patches {d_out:.2f} vs photo patches {d_photo:.2f}"

    found = detect_landmarks(out)
    assert found is not None, f"{name}: mediapipe finds no face in the stylized photo"
    err = landmark_error(landmarks, found)
    assert err < 0.05, f"{name}: landmark error {err:.3f} IOD on the output"
