"""Tests of blit.evaluate: `styleblit eval` end to end on tiny inputs, and contact sheets.

Inputs are made from matplotlib's public-domain grace_hopper.jpg (no
FaceBlit data); the style is the embedded default.
"""
import json
import math
import os
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
import skimage

from blit.cli import main
from blit.evaluate import contact_sheet, face_mask, read_frames

HOPPER = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
FAST = ["--patch-samples", "200", "--patch-frames", "1", "--overwrite", "-q"]


@pytest.fixture(scope="module")
def photo():
    """Grace Hopper at half size, (300, 256, 3) uint8 BGR."""
    image = cv2.imread(HOPPER)
    return cv2.resize(image, (256, 300), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def clip(photo, tmp_path_factory):
    """Six frames of the photo drifting by (1, 1) px per frame, MJPG in an .avi."""
    path = str(tmp_path_factory.mktemp("clip") / "hopper.avi")
    h, w = photo.shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    for t in range(6):
        m = np.float32([[1, 0, t], [0, 1, t]])
        writer.write(cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    writer.release()
    return path


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.loads(f.read(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_read_frames_decodes_the_clip(clip, photo, tmp_path):
    frames = list(read_frames(clip))
    assert len(frames) == 6
    assert frames[0].shape == photo.shape and frames[0].dtype == np.uint8
    assert len(list(read_frames(clip, limit=2))) == 2
    # a camera's .MTS (MPEG transport stream) is a video too, whatever the case of its ending
    import av

    mts = str(tmp_path / "hopper.MTS")
    with av.open(mts, "w", format="mpegts") as out:
        stream = out.add_stream("mpeg2video", rate=10)
        stream.width, stream.height, stream.pix_fmt = photo.shape[1], photo.shape[0], "yuv420p"
        for i, frame in enumerate(read_frames(clip)):
            f = av.VideoFrame.from_ndarray(frame, format="bgr24").reformat(format="yuv420p")
            f.pts = i
            out.mux(stream.encode(f))
        out.mux(stream.encode())
    assert len(list(read_frames(mts))) == 6


def test_read_frames_of_a_folder_stretch_a_frame_of_another_size(photo, tmp_path, capsys):
    """A folder of frames, one of another size: eval failed on it once the
    frames before it were painted, naming no file; now it is read as
    `video` reads it, stretched to the first frame's size with one line."""
    folder = tmp_path / "mix"
    folder.mkdir()
    small = cv2.resize(photo, (120, 140), interpolation=cv2.INTER_AREA)
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), small)
    cv2.imwrite(str(folder / "f3.png"), cv2.resize(small, (70, 90)))
    frames = list(read_frames(str(folder)))
    assert [f.shape for f in frames] == [(140, 120, 3)] * 4
    err = capsys.readouterr().err
    assert f"{folder / 'f3.png'}: 70x90, not 120x140 as the first frame" in err
    assert len(list(read_frames(str(folder), limit=2))) == 2


def test_eval_still_image_writes_json_and_png(photo, tmp_path):
    image = str(tmp_path / "hopper.png")
    cv2.imwrite(image, photo)
    out_json, out_png = str(tmp_path / "eval.json"), str(tmp_path / "eval.png")
    # the photo itself as the "reference": exercises the comparison path
    rc = main(["eval", image, "--reference", image, "--json", out_json, "--plot", out_png, *FAST])
    assert rc == 0
    report = _load(out_json)
    assert report["kind"] == "image" and report["frames"] == 1
    assert report["settings"]["options"]["denoise"] is True  # (its default for a still)
    ours, ref = report["methods"]["ours"], report["methods"]["reference"]
    assert ours["stability"] is None  # no stability for a still
    assert ours["patch_distance"]["mean"] > 0
    # the reference IS the input: same patches, same distance as the input baseline
    assert ref["patch_distance"]["mean"] == pytest.approx(
        report["methods"]["input"]["patch_distance"]["mean"])
    assert ref["landmarks"]["mean"] < 1e-6 and ref["landmarks"]["no_face_fraction"] == 0
    assert ours["speed"]["fps"] > 0 and "lookup" in ours["speed"]["stages"]
    assert "environment" in report and report["environment"]["numpy"]
    assert report["agreement"]["ssim"] < 1.0
    assert _is_png(out_png)


@pytest.mark.parametrize("stylizer", ["frame", "auto"])
def test_eval_video_with_reference_step(clip, tmp_path, stylizer):
    out_json, out_png = str(tmp_path / "v.json"), str(tmp_path / "v.png")
    rc = main(["eval", clip, "--reference", clip, "--reference-step", "2", "--voting", "0",
               "--stylizer", stylizer, "--json", out_json, "--plot", out_png, *FAST])
    assert rc == 0
    report = _load(out_json)
    assert report["kind"] == "video" and report["frames"] == 6
    # reference frames 0, 1, 2 <-> input frames 0, 2, 4; the clip has 6 frames, so 3 compared
    assert report["compared_frames"] == 3 and report["reference_step"] == 2
    ours, ref = report["methods"]["ours"], report["methods"]["reference"]
    assert ours["stability"]["frames"] == 3 and math.isfinite(ours["stability"]["ratio"])
    assert ref["stability"]["frames"] == 3
    assert ref["landmarks"]["frames"] == 3 and ref["landmarks"]["no_face_fraction"] == 0
    # each landmark error's input frame (the frames without a face are left out)
    assert ref["landmarks"]["per_frame_at"] == [0, 2, 4] and ref["landmarks"]["no_face_at"] == []
    assert ours["speed"]["fps"] > 0
    assert report["settings"]["options"]["voting"] == 0
    assert report["settings"]["stylizer"].startswith("frame" if stylizer == "frame" else ("stream", "frame"))
    # the mode filter's default: off in a stream, on frame by frame (it was recorded as null)
    assert report["settings"]["options"]["denoise"] is \
        (not report["settings"]["stylizer"].startswith("stream"))
    assert _is_png(out_png)


@pytest.mark.parametrize("kind", ["image", "video"])
def test_eval_paints_a_large_face_as_image_and_video_do(photo, tmp_path, kind, capsys):
    """A face twice as wide as a small exemplar's: painted at the exemplar's
    scale by default (the report says which), at the input's own with
    --native-scale; the same outputs as `styleblit image` / the stream."""
    from guides.landmarks import detect_landmarks, write_lm68

    astronaut = cv2.imread(os.path.join(os.path.dirname(skimage.__file__), "data",
                                        "astronaut.png"))
    small = cv2.resize(astronaut[0:320, 110:410], (150, 160), interpolation=cv2.INTER_AREA)
    style = str(tmp_path / "astro.png")
    cv2.imwrite(style, small)
    write_lm68(tmp_path / "astro.lm68.txt", detect_landmarks(small))
    if kind == "image":
        target = str(tmp_path / "hopper.png")
        cv2.imwrite(target, photo)
    else:
        target = str(tmp_path / "hopper.avi")
        writer = cv2.VideoWriter(target, cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                                 photo.shape[1::-1])
        for _ in range(3):
            writer.write(photo)
        writer.release()
    scales, patch = {}, {}
    for name, extra in (("default", []), ("native", ["--native-scale"])):
        out_json = str(tmp_path / f"{name}.json")
        assert main(["eval", "--style", style, target, "--json", out_json, *FAST, *extra]) == 0
        report = _load(out_json)
        scales[name] = report["settings"]["painting_scale"]
        patch[name] = report["methods"]["ours"]["patch_distance"]["mean"]
    assert 0.4 < scales["default"] < 0.6 and scales["native"] == 1.0
    assert patch["default"] != patch["native"]
    main(["eval", "--style", style, target, "--patch-samples", "200", "--patch-frames", "1"])
    assert "painted at 0." in capsys.readouterr().out


def test_eval_finds_a_small_face_as_image_does(tmp_path):
    """A face 7 % of a wide photo's width, too small for mediapipe's
    detector alone: `image` finds it in tiles, and so does `eval`, whose
    measures (the output's landmarks too) use the same search."""
    image = cv2.imread(HOPPER)
    h, w = image.shape[:2]
    wide = np.full((h + 200, 2600, 3), (90, 120, 90), np.uint8)
    wide[100:100 + h, :w] = image
    target, out_json = str(tmp_path / "wide.png"), str(tmp_path / "wide.json")
    cv2.imwrite(target, wide)
    assert main(["eval", target, "--json", out_json, *FAST]) == 0
    ours = _load(out_json)["methods"]["ours"]
    assert ours["landmarks"]["no_face_fraction"] == 0 and ours["landmarks"]["mean"] < 0.05
    assert ours["patch_distance"]["mean"] < _load(out_json)["methods"]["input"]["patch_distance"]["mean"]


def test_eval_measures_the_largest_face_against_its_own_in_the_output(photo, tmp_path):
    """Two people of one size: the landmark error compares the input's
    largest face with the output face nearest it, not with whichever the
    detector ranks first there (the other person: errors of 190 % of the
    eyes' distance on a user's interview clip)."""
    pair = np.hstack([photo, photo[:, ::-1]])
    target = str(tmp_path / "pair.avi")
    writer = cv2.VideoWriter(target, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, pair.shape[1::-1])
    for _ in range(4):
        writer.write(pair)
    writer.release()
    out_json = str(tmp_path / "pair.json")
    assert main(["eval", target, "--json", out_json, "--patch-frames", "0", "--overwrite",
                 "-q"]) == 0
    lm = _load(out_json)["methods"]["ours"]["landmarks"]
    assert lm["no_face_fraction"] == 0 and lm["mean"] < 0.1, lm  # (of the eyes' distance)


def test_eval_measures_the_face_it_paints_when_the_largest_changes(photo, tmp_path):
    """Two people whose sizes change, the larger no longer the one tracked
    from the first frames; eval paints one face (the one it tracks): that
    one is measured on every frame, not the unpainted one against itself
    when it is the larger (0.02 % of the eyes' distance on those frames of
    a user's clip)."""
    h, w = photo.shape[:2]
    target = str(tmp_path / "swing.avi")
    writer = cv2.VideoWriter(target, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (2 * w, h))
    for i in range(9):
        k = 1.0 if i < 2 else 0.9  # the left face larger first (the one tracked), then not
        left = np.full_like(photo, 120)
        small = cv2.resize(photo, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        left[:small.shape[0], :small.shape[1]] = small
        right = np.full_like(photo, 120)
        small = cv2.resize(photo[:, ::-1], None, fx=1.9 - k, fy=1.9 - k,
                           interpolation=cv2.INTER_AREA)[:h, :w]
        right[:small.shape[0], :small.shape[1]] = small
        writer.write(np.hstack([left, right]))
    writer.release()
    out_json = str(tmp_path / "swing.json")
    assert main(["eval", target, "--json", out_json, "--patch-frames", "0", "--overwrite",
                 "-q"]) == 0
    lm = _load(out_json)["methods"]["ours"]["landmarks"]
    assert lm["no_face_fraction"] == 0 and lm["median"] > 0.005, lm


def test_eval_reads_an_existing_output(clip, tmp_path):
    out_json = str(tmp_path / "o.json")
    # the clip as its own "stylization": as stable as the input, no stylization timed
    rc = main(["eval", clip, "--output", clip, "--json", out_json, "--frames", "4", *FAST])
    assert rc == 0
    report = _load(out_json)
    ours = report["methods"]["ours"]
    assert report["frames"] == 4 and ours["speed"] is None
    assert ours["stability"]["ratio"] == pytest.approx(1.0)
    assert ours["landmarks"]["mean"] < 1e-6


def test_eval_reads_folders_of_frames_and_padded_odd_sizes(clip, tmp_path):
    """A folder of frames is a video (as `styleblit video` writes one), and
    an output one row and column larger than an odd-sized input (H.264's
    padding) is measured without them."""
    from blit.evaluate import read_frames

    frames = list(read_frames(clip, limit=4))
    odd = [f[:-1, :-1] for f in frames]  # (299, 255): odd both ways
    padded = [np.pad(f, ((0, 1), (0, 1), (0, 0)), mode="edge") for f in odd]
    for name, images in (("odd", odd), ("padded", padded)):
        (tmp_path / name).mkdir()
        for i, image in enumerate(images):
            cv2.imwrite(str(tmp_path / name / f"frame_{i + 1:06d}.png"), image)
    out_json = str(tmp_path / "o.json")
    rc = main(["eval", str(tmp_path / "odd"), "--output", str(tmp_path / "padded"),
               "--json", out_json, *FAST])
    assert rc == 0
    report = _load(out_json)
    assert report["kind"] == "video" and report["frames"] == 4
    assert report["methods"]["ours"]["stability"]["ratio"] == pytest.approx(1.0)


def test_eval_missing_input_is_one_line_error(tmp_path, capsys):
    rc = main(["eval", str(tmp_path / "nope.mp4"), "-q"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0]


def test_eval_errors_name_the_file(photo, tmp_path, capsys):
    image = str(tmp_path / "hopper.png")
    cv2.imwrite(image, photo)
    small = str(tmp_path / "small.png")
    cv2.imwrite(small, photo[::2, ::3])  # (another aspect ratio: not scaled)
    blank = str(tmp_path / "blank.png")
    cv2.imwrite(blank, np.full((80, 60, 3), 128, np.uint8))
    for argv, message in (([image, "--output", small], f"{small}: output frame 0: expected shape"),
                          ([image, "--reference", small], f"{small}: reference frame 0: expected shape"),
                          ([blank], f"{blank}: input frame 0: no face found")):
        assert main(["eval", *argv, "-q", *FAST]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_eval_scales_an_output_of_the_same_aspect_ratio(photo, tmp_path, capsys):
    """Another method's output at half the input's size is scaled to it (said
    once) and measured: the photo itself, as a reference, has its landmarks."""
    image, half = str(tmp_path / "hopper.png"), str(tmp_path / "half.png")
    h, w = (s - s % 2 for s in photo.shape[:2])
    cv2.imwrite(image, photo[:h, :w])
    cv2.imwrite(half, cv2.resize(photo[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    out_json = str(tmp_path / "e.json")
    assert main(["eval", image, "--reference", half, "--json", out_json, "-q", *FAST]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"styleblit: warning: {half}: reference frame 0: {w // 2}x{h // 2}, scaled to "
                   f"the input's {w}x{h} (the same aspect ratio) to be measured"]
    assert _load(out_json)["methods"]["reference"]["landmarks"]["mean"] < 0.03


def test_eval_refuses_to_overwrite(photo, tmp_path, capsys):
    image = str(tmp_path / "hopper.png")
    cv2.imwrite(image, photo)
    existing = tmp_path / "eval.json"
    existing.write_text("{}")
    assert main(["eval", image, "--json", str(existing), "-q"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert existing.read_text() == "{}"


@pytest.mark.parametrize("tile_height", [32, 64])
def test_contact_sheet_shape(tile_height):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)  # scaled to width 0.8 h
    b = rng.integers(0, 256, (50, 100, 3), dtype=np.uint8)  # scaled to width 2 h
    rows = [[a, b, a], [b, None, a]]
    sheet = contact_sheet(rows, labels=["input", "ours", "reference"], tile_height=tile_height,
                          label_height=12, gap=3)
    assert sheet.dtype == np.uint8
    col_w = [2 * tile_height, round(2 * tile_height), round(0.8 * tile_height)]
    assert sheet.shape == (2 * (tile_height + 12) + 3 * 3, sum(col_w) + 4 * 3, 3)
    # the first tile lands unchanged in shape under its label strip
    tile = cv2.resize(a, (round(0.8 * tile_height), tile_height), interpolation=cv2.INTER_AREA)
    x0 = 3 + (col_w[0] - tile.shape[1]) // 2
    np.testing.assert_array_equal(sheet[3 + 12:3 + 12 + tile_height, x0:x0 + tile.shape[1]], tile)


def test_contact_sheet_nested_labels_and_errors():
    img = np.zeros((20, 20, 3), np.uint8)
    sheet = contact_sheet([[img], [img, img]], labels=[["a"], ["b", "c"]], tile_height=20)
    assert sheet.shape[0] == 2 * (20 + 14) + 3 * 4
    with pytest.raises(ValueError, match="labels"):
        contact_sheet([[img, img]], labels=["only one"])
    with pytest.raises(ValueError, match="uint8"):
        contact_sheet([[img.astype(np.float32)]], labels=["x"])


def test_face_mask_regions():
    # a synthetic face: landmarks of the embedded style are not needed, any 68 points in a box do
    rng = np.random.default_rng(0)
    pts = rng.uniform(40, 90, (68, 2)).astype(np.float32)
    face = face_mask((128, 128), pts, region="face")
    assert face.dtype == np.float32 and set(np.unique(face)) <= {0.0, 1.0}
    assert face[:30].sum() == 0 and face.sum() > 0
    with pytest.raises(ValueError, match="region"):
        face_mask((128, 128), pts, region="hair")


def test_eval_says_when_the_output_or_reference_falls_short(clip, tmp_path, capsys):
    from blit.evaluate import read_frames

    short = tmp_path / "short"
    short.mkdir()
    for i, frame in enumerate(read_frames(clip, limit=3)):
        cv2.imwrite(str(short / f"frame_{i + 1:06d}.png"), frame)
    out_json = str(tmp_path / "o.json")
    assert main(["eval", clip, "--output", str(short), "--json", out_json, *FAST]) == 0
    assert "short: 3 frames against the input's 6; measured on the first 3" in \
        capsys.readouterr().err
    assert _load(out_json)["frames"] == 3
    assert main(["eval", clip, "--output", clip, "--frames", "4", *FAST]) == 0
    assert "warning" not in capsys.readouterr().err  # (the input's first 4: all there)
    assert main(["eval", clip, "--output", clip, "--reference", str(short), "--json", out_json,
                 *FAST]) == 0
    assert "short: 3 frames cover 3 of the input's 6" in capsys.readouterr().err
    assert main(["eval", clip, "--output", clip, "--full-rate", *FAST]) == 1
    assert "--full-rate: only with --reference" in capsys.readouterr().err


def test_eval_pairs_frames_by_the_videos_rates(clip, tmp_path, capsys):
    """A reference at half the input's rate was compared frame i with input
    frame i (FaceBlit's stability came out 6.5 times too high): its step is
    now taken from the rates, and said. An output at another rate than the
    input's, or a reference at no whole fraction of it, is refused."""
    from blit.evaluate import read_frames

    frames = list(read_frames(clip))
    h, w = frames[0].shape[:2]

    def write(name, rate, chosen):
        path = str(tmp_path / name)
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), rate, (w, h))
        for f in chosen:
            writer.write(f)
        writer.release()
        return path

    half, odd = write("half.avi", 5.0, frames[::2]), write("odd.avi", 7.0, frames[:4])
    out_json = str(tmp_path / "r.json")
    assert main(["eval", clip, "--reference", half, "--json", out_json, *FAST]) == 0
    err = capsys.readouterr().err
    assert "half.avi: 5 frames a second against the input's 10: its frame i is compared with " \
           "input frame 2*i (--reference-step 2)" in err
    report = _load(out_json)
    assert report["reference_step"] == 2 and report["compared_frames"] == 3
    assert main(["eval", clip, "--reference", half, "--reference-step", "1", *FAST]) == 0
    assert "which --reference-step 1 does not match" in capsys.readouterr().err
    assert main(["eval", clip, "--output", half, *FAST]) == 1
    err = capsys.readouterr().err
    assert "half.avi: 5 frames a second against the input's 10; its frames would be measured " \
           "against the wrong input frames" in err and len(err.strip().splitlines()) == 1
    assert main(["eval", clip, "--reference", odd, *FAST]) == 1
    assert "odd.avi: 7 frames a second against the input's 10, not a whole fraction" in \
        capsys.readouterr().err
    assert main(["eval", clip, "--reference", clip, "--json", out_json, *FAST]) == 0
    assert capsys.readouterr().err == "" and _load(out_json)["reference_step"] == 1


def test_identical_frames_do_not_blank_the_psnr_and_counts_are_what_was_measured(
        clip, tmp_path, capsys):
    """PSNR of identical frames is infinite: one identical frame among
    others made the mean "n/a" (null). The mean is now over the frames that
    differ, with the identical ones counted; patch distances carry their
    standard error; the report says what its numbers mean."""
    from blit.evaluate import read_frames

    frames = list(read_frames(clip))
    brighter = tmp_path / "brighter"
    brighter.mkdir()
    for i, frame in enumerate(frames):
        out = frame if i == 0 else cv2.add(frame, np.full_like(frame, 10))
        cv2.imwrite(str(brighter / f"frame_{i + 1:06d}.png"), out)
    out_json = str(tmp_path / "a.json")
    assert main(["eval", clip, "--output", clip, "--reference", str(brighter), "--json", out_json,
                 "--patch-samples", "200", "--patch-frames", "2", "--overwrite"]) == 0
    text = capsys.readouterr().out
    ag = _load(out_json)["agreement"]
    assert ag["psnr_frame_identical"] == 1 and 20 < ag["psnr_frame"] < 40
    assert ag["frames"] == ag["head_frames"] == 6
    assert f"whole frame PSNR {ag['psnr_frame']:.2f} dB (1 of 6 frames identical) (6 frames)" in text
    report = _load(out_json)
    patch = report["methods"]["ours"]["patch_distance"]
    assert 0 < patch["se"] < 0.2 * patch["mean"]
    assert f"{patch['mean']:.2f} ± {patch['se']:.2f}" in text
    assert "fraction of the inter-ocular distance" in report["units"]["landmarks.mean"]
    stab = report["methods"]["ours"]["stability"]
    assert stab["measured_pairs"] == stab["pairs"] == 5
    assert main(["eval", clip, "--output", clip, "--reference", clip, "--json", out_json,
                 *FAST]) == 0
    ag = _load(out_json)["agreement"]
    assert ag["psnr"] is None and ag["psnr_identical"] == 6 and ag["ssim"] == pytest.approx(1.0)


def test_a_cut_short_mp4_is_one_line_of_ours(tmp_path):
    # OpenCV's FFmpeg reader printed FFmpeg's "moov atom not found" before our error
    import subprocess
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from test_video import write_clip

    path = Path(write_clip(tmp_path / "whole.mp4", n=3, audio=False))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:2000])  # (the index, "moov", comes last)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_FFMPEG")}
    proc = subprocess.run([sys.executable, "-m", "blit.cli", "eval", str(cut)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"styleblit: error: {cut}: not a video OpenCV can decode"]


def test_eval_reads_videos_as_styleblit_video_does(tmp_path, photo):
    """Upright, by the display matrix (a phone's clip); and of any ending that
    is not an image's (a raw H.264 stream, a .dv), as `styleblit video` takes
    them. Eval read the rotated clip sideways: landmark error 80 %."""
    import sys

    import av

    sys.path.insert(0, os.path.dirname(__file__))
    from test_video import write_clip

    rotated = write_clip(tmp_path / "phone.mp4", n=3, audio=False, rotation=90)
    with av.open(rotated) as c:
        stored = next(c.decode(video=0))
        assert stored.rotation == 90 and (stored.height, stored.width) == (160, 128)
    from blit.video import open_source

    upright = [item[1] for item in open_source(rotated) if item[0] == "video"]
    frames = list(read_frames(rotated))
    assert frames[0].shape == upright[0].shape == (128, 160, 3)
    np.testing.assert_array_equal(frames[0], upright[0])
    # what `video` wrote from it (upright frames) is the output of that input
    out = tmp_path / "out"
    assert main(["video", rotated, "-o", str(out), "-q"]) == 0
    assert main(["eval", rotated, "--output", str(out), "--json", str(tmp_path / "r.json"),
                 "--patch-samples", "50"]) == 0
    from blit.evaluate import is_video

    other = tmp_path / "clip.vid"  # a video of an ending of its own
    other.write_bytes(open(rotated, "rb").read())
    odd = tmp_path / "photo.dat"  # an image whatever its ending
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    odd.write_bytes((tmp_path / "photo.png").read_bytes())
    assert is_video(other) and is_video(tmp_path / "x.dv") and is_video(tmp_path / "x.Y4M")
    assert not is_video(odd) and not is_video(tmp_path / "photo.png")
    assert len(list(read_frames(other))) == 3


def test_the_frame_path_forgets_the_last_shot_s_face_at_a_cut(photo):
    """`--stylizer frame` reuses the last landmarks on a frame without a face
    (as FaceBlit does), but not across a cut: a new shot without a face
    comes out as it went in (the last shot's face was painted on it)."""
    from blit.defaults import default_style_path
    from blit.evaluate import FrameStylizer
    from guides.exemplar import load_style

    wall = np.full_like(photo, 90)
    wall[::5] = 140  # (a wall with lines: nothing there is a face)
    stylizer = FrameStylizer(load_style(default_style_path()))
    outs = [stylizer(f) for f in (photo, photo, wall, wall)]
    assert np.abs(outs[1].astype(int) - photo).mean() > 2  # (painted)
    np.testing.assert_array_equal(outs[2], wall)
    np.testing.assert_array_equal(outs[3], wall)


@pytest.mark.parametrize("k", [1, 2])
def test_eval_finds_a_face_upside_down_or_lying_as_image_does(photo, tmp_path, k):
    """A photo turned by one or two quarter turns: `image` paints its face
    (face_turns), and `eval` finds it as well, on the input and on the
    output (a still said "no face found", a clip had no face on any
    frame): its landmarks are those of the photo upright, turned."""
    from blit.defaults import default_style_path
    from blit.evaluate import evaluate_frames
    from guides.exemplar import load_style
    from guides.landmarks import _unturn, detect_landmarks, interocular_distance

    turned = np.ascontiguousarray(np.rot90(photo, k))
    upright = detect_landmarks(photo)
    iod = interocular_distance(upright)
    seen = []
    # the input given as its own output: found on both, the same landmarks
    report = evaluate_frames(load_style(default_style_path()), [turned], outputs=[turned],
                             patch_samples=50, on_sample=lambda n, s: seen.append(s["landmarks"]))
    lm = report["methods"]["ours"]["landmarks"]
    assert lm["no_face_fraction"] == 0 and lm["mean"] < 1e-6, lm
    assert np.linalg.norm(_unturn(seen[0], photo.shape, k) - upright, axis=1).mean() \
        < 0.02 * iod
    # stylized by eval: a still, and a clip of it drifting
    still, out_json = str(tmp_path / "turned.png"), str(tmp_path / "still.json")
    cv2.imwrite(still, turned)
    assert main(["eval", still, "--json", out_json, *FAST]) == 0
    lm = _load(out_json)["methods"]["ours"]["landmarks"]
    assert lm["no_face_fraction"] == 0 and lm["mean"] < 0.1, lm
    clip, out_json = str(tmp_path / "turned.avi"), str(tmp_path / "clip.json")
    h, w = turned.shape[:2]
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for t in range(4):
        m = np.float32([[1, 0, t], [0, 1, t]])
        writer.write(cv2.warpAffine(turned, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    writer.release()
    assert main(["eval", clip, "--json", out_json, *FAST]) == 0
    methods = _load(out_json)["methods"]
    lm = methods["ours"]["landmarks"]
    assert lm["no_face_fraction"] == 0 and lm["mean"] < 0.1, lm
    # (painted: a frame passed through unpainted is its input, whose face is found)
    assert methods["ours"]["patch_distance"]["mean"] < methods["input"]["patch_distance"]["mean"]


def test_the_frame_path_forgets_the_last_face_on_a_frame_of_another_size(photo):
    """A frame of another size is a cut for `--stylizer frame`, however
    little larger: one without a face comes out as it went in, not painted
    with the landmarks of the frame before (the thumbnails that tell a cut
    are of one size for frames under 16 px apart, and these look alike)."""
    from blit.defaults import default_style_path
    from blit.evaluate import FrameStylizer
    from guides.exemplar import load_style
    from guides.landmarks import detect_landmarks

    lm = detect_landmarks(photo)
    answers = iter([[lm], [lm], []])  # (the landmarker finds no face on the third)
    larger = cv2.copyMakeBorder(photo, 0, 3, 0, 3, cv2.BORDER_REPLICATE)
    stylizer = FrameStylizer(load_style(default_style_path()))
    stylizer.landmarker = lambda frame: next(answers)
    stylizer.landmarker.close = lambda: None
    outs = [stylizer(f) for f in (photo, photo, photo)]
    assert np.abs(outs[1].astype(int) - photo).mean() > 2  # (painted)
    np.testing.assert_array_equal(outs[2], outs[1])  # (no face: the last landmarks, as FaceBlit)
    answers = iter([[lm], [lm], []])
    outs = [stylizer(f) for f in (photo, photo, larger)]
    np.testing.assert_array_equal(outs[2], larger)
