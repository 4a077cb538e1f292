"""The styleblit command line: the default job, exit codes and error lines."""
import argparse
import importlib.util
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from blit.cli import main
from guides.io import InputError, read_image, write_image


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEBLIT_CACHE", str(tmp_path / "cache"))


def test_default_job_writes_a_stylized_image(tmp_path, capsys):
    out = tmp_path / "out.png"
    assert main(["image", "-o", str(out)]) == 0
    from blit.defaults import default_target_path

    result, target = read_image(out), read_image(default_target_path())
    assert result.shape == target.shape
    changed = np.abs(result.astype(int) - target).sum(-1) > 30
    assert 0.02 < changed.mean() < 0.5  # the head is painted, the rest is kept
    assert "grace_hopper" in capsys.readouterr().out


def test_whole_frame_mode_changes_the_background(tmp_path):
    out = tmp_path / "bg.png"
    assert main(["image", "-o", str(out), "--background", "stylize", "--voting", "0"]) == 0
    from blit.defaults import default_target_path

    changed = np.abs(read_image(out).astype(int) - read_image(default_target_path())).sum(-1) > 30
    assert changed.mean() > 0.5


def test_denoise_flags(tmp_path, capsys):
    import argparse

    from blit.cli import add_stylize_args, options_from_args

    p = argparse.ArgumentParser()
    add_stylize_args(p)
    assert [options_from_args(p.parse_args(a)).denoise
            for a in ([], ["--denoise"], ["--no-denoise"])] == [None, True, False]
    with pytest.raises(SystemExit):
        p.parse_args(["--denoise", "--no-denoise"])
    capsys.readouterr()
    # the default image is denoised; without it the strokes differ
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["image", "-o", str(a)]) == 0
    assert main(["image", "-o", str(b), "--no-denoise"]) == 0
    assert (read_image(a) != read_image(b)).any()


def test_max_faces_paints_each_face_of_a_photo(tmp_path, capsys):
    """Two people: by default the largest face alone is painted; with
    --max-faces 2 the smaller one too, and the largest as before."""
    import cv2

    from blit.defaults import default_target_path

    hopper = read_image(default_target_path())
    h, w = hopper.shape[:2]
    small = cv2.resize(hopper, (w * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA)
    pair = np.full((h, w + small.shape[1], 3), 90, np.uint8)
    pair[h - small.shape[0]:, :small.shape[1]] = small
    pair[:, small.shape[1]:] = hopper
    write_image(str(tmp_path / "pair.png"), pair)
    outs = {}
    for n in ("1", "2"):
        out = tmp_path / f"out{n}.png"
        assert main(["image", str(tmp_path / "pair.png"), "-o", str(out), "--max-faces", n]) == 0
        outs[n] = np.abs(read_image(out).astype(int) - pair).sum(-1) > 30
    left, right = slice(0, small.shape[1]), slice(small.shape[1], None)
    assert outs["1"][:, left].mean() < 0.001 < 0.05 < outs["2"][:, left].mean()
    np.testing.assert_array_equal(outs["1"][:, right], outs["2"][:, right])
    capsys.readouterr()


def test_several_targets_go_into_a_folder(tmp_path, capsys):
    """Each target as a lone run writes it; one without a face is reported
    and the others are still written (exit code 1); nothing half-written."""
    from blit.defaults import default_target_path

    hopper = read_image(default_target_path())
    write_image(tmp_path / "a.png", hopper)
    write_image(tmp_path / "b.jpg", np.ascontiguousarray(hopper[:, ::-1]))
    write_image(tmp_path / "wall.png", np.full((120, 100, 3), 128, np.uint8))
    (tmp_path / "again").mkdir()
    write_image(tmp_path / "again" / "a.png", hopper)
    alone = tmp_path / "alone.png"
    assert main(["image", str(tmp_path / "b.jpg"), "-o", str(alone), "-q"]) == 0
    out = tmp_path / "out"  # made
    targets = [str(tmp_path / n) for n in ("a.png", "wall.png", "b.jpg", "again/a.png")]
    assert main(["image", *targets, "-o", str(out)]) == 1
    cap = capsys.readouterr()
    assert sorted(os.listdir(out)) == ["a-2.png", "a.png", "b.png"]  # names as batch makes them
    np.testing.assert_array_equal(read_image(out / "b.png"), read_image(alone))
    np.testing.assert_array_equal(read_image(out / "a-2.png"), read_image(out / "a.png"))
    assert (read_image(out / "a.png") != hopper).any()
    err = cap.err.strip().splitlines()
    assert len(err) == 2 and "wall.png: no face found" in err[0] and "1 of 4" in err[1]
    assert cap.out.count(" -> ") == 3
    # again: the outputs exist, so nothing is done without --overwrite
    assert main(["image", *targets, "-o", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    # one target into an existing folder
    assert main(["image", str(tmp_path / "b.jpg"), "-o", str(tmp_path), "-q"]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "b.png"), read_image(alone))
    # a folder that cannot be made; a folder made for nothing is removed
    assert main(["image", *targets, "-o", str(tmp_path / "a.png" / "sub")]) == 1
    assert "cannot make the output folder" in capsys.readouterr().err
    assert main(["image", targets[1], targets[1], "-o", str(tmp_path / "none")]) == 1
    assert "2 of 2" in capsys.readouterr().err and not (tmp_path / "none").exists()


def test_ctrl_c_among_several_targets_says_how_many_were_written(tmp_path, capsys, monkeypatch):
    from blit import stylize
    from blit.defaults import default_target_path

    hopper = read_image(default_target_path())
    for n in ("a", "b", "c"):
        write_image(tmp_path / f"{n}.png", hopper)
    real, calls = stylize.stylize_image, []

    def interrupted_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(stylize, "stylize_image", interrupted_second)
    out = tmp_path / "out"
    assert main(["image", *(str(tmp_path / f"{n}.png") for n in "abc"), "-o", str(out)]) == 130
    assert os.listdir(out) == ["a.png"]
    assert capsys.readouterr().err.strip().endswith(
        f"interrupted at {tmp_path / 'b.png'}; 1 of the 3 images written (in {out})")


def test_a_folder_target_stands_for_its_images(tmp_path, capsys):
    from blit.defaults import default_target_path

    hopper = cv2.resize(read_image(default_target_path()), (256, 300), interpolation=cv2.INTER_AREA)
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "one.jpg", hopper)
    write_image(photos / ".hidden.png", hopper)
    (photos / "notes.txt").write_text("not a photo")
    alone = tmp_path / "alone.png"
    assert main(["image", str(photos / "one.jpg"), "-o", str(alone), "-q"]) == 0
    # a folder of one photo still goes into a folder, as a folder of many would
    assert main(["image", str(photos), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert os.listdir(tmp_path / "out") == ["one.png"]
    assert "1 file(s) left out, not images by their endings (notes.txt)" in \
        capsys.readouterr().err
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "one.png"), read_image(alone))
    (tmp_path / "empty").mkdir()
    assert main(["image", str(tmp_path / "empty"), "-o", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty: folder holds no images (.png" in err[0]
    assert not (tmp_path / "o2").exists()


def test_an_unreadable_folder_is_one_line(tmp_path, capsys, monkeypatch):
    """A folder the user may not list (chmod 000; these tests run as root,
    whom that does not stop, hence the stand-in): one line naming it, for
    image, video and eval alike, not a PermissionError traceback."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.listdir

    def listdir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    for args in (["image", str(locked), "-o", str(tmp_path / "o")],
                 ["video", str(locked), "-o", str(tmp_path / "o.mp4")],
                 ["eval", str(locked)]):
        assert main(args) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"styleblit: error: {locked}: folder cannot be read (Permission denied)"]
    # a video file likewise, for the commands that read it with OpenCV (it said 'not a
    # video OpenCV can decode', after OpenCV's own warning)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    real_open = open

    def unreadable(path, *a, **k):
        if os.fspath(path) == str(clip):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", unreadable)
    for args in (["eval", str(clip)],
                 ["webcam", "--source", str(clip), "--no-window", "--frames", "1"]):
        assert main(args) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"styleblit: error: {clip}: cannot be read (Permission denied)"], args


@pytest.mark.parametrize("case", ["output is a file", "landmarks of one", "landmarks of a folder"])
def test_several_targets_usage_errors(tmp_path, capsys, case):
    for n in ("x/p.png", "q.png"):
        (tmp_path / n).parent.mkdir(exist_ok=True)
        write_image(tmp_path / n, np.full((20, 20, 3), 90, np.uint8))
    argv = {"output is a file": [str(tmp_path / "x/p.png"), str(tmp_path / "q.png"), "-o",
                                 str(tmp_path / "q.png")],
            "landmarks of one": [str(tmp_path / "x/p.png"), str(tmp_path / "q.png"), "-o",
                                 str(tmp_path / "o"), "--target-landmarks", "lm.txt"],
            "landmarks of a folder": [str(tmp_path / "x"), "-o", str(tmp_path / "o"),
                                      "--target-landmarks", "lm.txt"]}[case]
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(["image", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert {"output is a file": "names a folder", "landmarks of one": "only with one TARGET",
            "landmarks of a folder": "only with one TARGET"}[case] in err
    assert sorted(os.listdir(tmp_path)) == before


def test_unique_stems_numbers_repeated_names():
    from blit.cli import unique_stems

    assert unique_stems(["a.jpg", "x/a.png", "a-2.png", "b/", "a.tif"]) == ["a", "a-2", "a-2-2", "b", "a-3"]
    assert unique_stems(["a.jpg", "A.png"]) == ["a", "A-2"]


def test_no_face_is_one_line_exit_1_and_no_output(tmp_path, capsys):
    blank = tmp_path / "wall.png"
    write_image(blank, np.full((120, 100, 3), 128, np.uint8))
    out = tmp_path / "o.png"
    assert main(["image", str(blank), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wall.png: no face found" in err[0]
    assert not out.exists()


def test_missing_and_non_image_inputs(tmp_path, capsys):
    assert main(["image", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o.png")]) == 1
    assert "missing.png: no such file" in capsys.readouterr().err
    notes = tmp_path / "notes.jpg"
    notes.write_text("not an image")
    assert main(["image", "--style", str(notes), "-o", str(tmp_path / "o.png")]) == 1
    assert "notes.jpg: not an image" in capsys.readouterr().err


def test_malformed_landmark_file_names_file_and_line(tmp_path, capsys):
    from blit.defaults import default_style_path

    lm = tmp_path / "bad.lm68.txt"
    lm.write_text("68\n1 2\n3 four\n")
    code = main(["image", "--style", default_style_path(), "--style-landmarks", str(lm),
                 "-o", str(tmp_path / "o.png")])
    assert code == 1
    assert "bad.lm68.txt line 3" in capsys.readouterr().err


def test_existing_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    assert main(["image", "-o", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["image", "-o", str(out), "--overwrite", "-q"]) == 0
    assert read_image(out).ndim == 3


def test_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path, capsys):
    from blit.defaults import default_style_path

    photo = tmp_path / "me.png"
    write_image(photo, np.full((40, 30, 3), 90, np.uint8))
    before = photo.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    for out in (photo, tmp_path / "." / "me.png", link):
        assert main(["image", str(photo), "-o", str(out), "--overwrite"]) == 1
        assert "the output would replace the input" in capsys.readouterr().err
    style = tmp_path / "style.png"
    style.write_bytes(open(default_style_path(), "rb").read())
    assert main(["image", "--style", str(style), "-o", str(style), "--overwrite"]) == 1
    assert f"replace the input {style}" in capsys.readouterr().err
    assert photo.read_bytes() == before


def test_an_output_is_refused_when_it_would_replace_any_input(tmp_path, capsys):
    """Each output is checked against every input, not only its own: with
    --overwrite, X/a.png painted from Y/a.png would replace the input
    X/a.png before it is read. Nothing is written."""
    for folder, value in (("X", 60), ("Y", 200)):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "a.png", np.full((40, 30, 3), value, np.uint8))
    before = {p: p.read_bytes() for p in tmp_path.glob("*/a.png")}
    argv = ["image", str(tmp_path / "Y" / "a.png"), str(tmp_path / "X" / "a.png"),
            "-o", str(tmp_path / "X"), "--overwrite"]
    assert main(argv) == 1
    assert f"would replace the input {tmp_path / 'X' / 'a.png'}" in capsys.readouterr().err
    assert main(["image", str(tmp_path / "X"), "-o", str(tmp_path / "X"), "--overwrite"]) == 1
    assert "would replace the input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.glob("*/a.png")} == before
    assert sorted(os.listdir(tmp_path / "X")) == ["a.png"]


def test_output_checks_before_any_work(tmp_path, capsys):
    """An ending that cannot be written, an empty path, a folder where a
    file goes, a device: one line each, before the style is made."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    cases = {str(tmp_path / "o.gif"): "cannot encode an image with extension '.gif'",
             "": "the output path is empty",
             str(fifo): "not a regular file"}
    for out, message in cases.items():
        assert main(["image", "-o", out, "--overwrite"]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # no style was prepared
    assert sorted(os.listdir(tmp_path)) == ["pipe.png"]


def test_target_landmarks_of_another_image_are_refused(tmp_path, capsys):
    from guides.landmarks import write_lm68

    photo = tmp_path / "me.png"
    write_image(photo, np.full((120, 100, 3), 90, np.uint8))
    lm = np.stack([np.linspace(20, 80, 68), np.linspace(30, 90, 68)], 1).astype(np.float32)
    lm[36:42] = (35, 50)
    lm[42:48] = (65, 50)
    write_lm68(tmp_path / "far.txt", lm + 5000)
    code = main(["image", str(photo), "--target-landmarks", str(tmp_path / "far.txt"),
                 "-o", str(tmp_path / "o.png")])
    assert code == 1
    assert "far.txt: landmarks lie far outside the 100x120 image" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_usage_errors_show_the_command_usage(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["image", "-o", str(tmp_path / "o.png"), "--style-landmarks", "lm.txt"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: styleblit image" in err and "styleblit image: error: --style-landmarks" in err


def test_style_landmarks_with_a_prepared_style_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["image", "--style", "s.npz", "--style-landmarks", "lm.txt", "-o", "o.png"])
    assert exc.value.code == 2
    assert "a prepared style (.npz) holds its landmarks" in capsys.readouterr().err


def test_prepare_style_output_checks(tmp_path, capsys):
    """prepare-style refuses, before preparing, an output not named .npz (a
    style is read back as prepared by that ending; so the style and its
    landmark file are never replaced), a folder, a missing folder; and a
    style that is prepared already. A path through a file is named so (it
    was called a folder that does not exist)."""
    from blit.defaults import default_style_path
    from guides.exemplar import load_style
    from guides.landmarks import write_lm68

    style = tmp_path / "s.png"
    style.write_bytes(open(default_style_path(), "rb").read())
    write_lm68(tmp_path / "s.lm68.txt", load_style(default_style_path()).landmarks)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    (tmp_path / "d.npz").mkdir()
    cases = {str(style): "name it .npz",
             str(tmp_path / "s.lm68.txt"): "name it .npz",
             str(tmp_path / "d.npz"): "is a folder",
             str(style / "x.npz"): "s.png is a file, not a folder",
             str(tmp_path / "none" / "x.npz"): "does not exist",
             "": "the output path is empty"}
    for out, message in cases.items():
        assert main(["prepare-style", str(style), "-o", out, "--overwrite"]) == 1
        assert message in capsys.readouterr().err
    os.rmdir(tmp_path / "d.npz")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert main(["prepare-style", str(style), "-o", str(tmp_path / "S.NPZ")]) == 0  # any case
    capsys.readouterr()
    assert main(["prepare-style", str(tmp_path / "S.NPZ"), "-o", str(tmp_path / "t.npz")]) == 1
    assert "is a prepared style already" in capsys.readouterr().err


def test_a_style_cache_with_inconsistent_arrays_is_refused(tmp_path):
    """The kernels read a style's arrays unchecked: a cache whose arrays do
    not fit together is refused when loaded, never painted from."""
    from guides.exemplar import StyleExemplar
    from guides.io import InputError

    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3), np.uint8)
    lm = np.stack([np.linspace(8, 40, 68), np.linspace(10, 56, 68)], 1).astype(np.float32)
    good = StyleExemplar.prepare(image, lm)
    good.save(tmp_path / "good.npz")
    StyleExemplar.load(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as f:
        arrays = dict(f)
    for name, bad in (("image", arrays["image"][:10]), ("landmarks", arrays["landmarks"][:5]),
                      ("table", arrays["table"] + 10**6), ("app_bin", arrays["app_bin"] + 99)):
        np.savez(tmp_path / "bad.npz", **{**arrays, name: bad})
        with pytest.raises(InputError, match="bad.npz: not a styleblit style cache \\("):
            StyleExemplar.load(tmp_path / "bad.npz")


def test_eval_and_bench_outputs_never_replace_inputs(tmp_path, capsys):
    """--json/--plot of eval and bench: refused when they name an input, the
    style's landmark file, each other, or exist without --overwrite; a chart
    without an ending is NAME.png, checked as such; all before any work."""
    from guides.landmarks import write_lm68

    photo = tmp_path / "me.png"
    write_image(photo, np.full((40, 30, 3), 90, np.uint8))
    style = tmp_path / "s.png"
    write_image(style, np.full((40, 30, 3), 120, np.uint8))
    lm = np.stack([np.linspace(5, 25, 68), np.linspace(5, 35, 68)], 1).astype(np.float32)
    write_lm68(tmp_path / "s.lm68.txt", lm)
    (tmp_path / "chart.png").write_bytes(b"old")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    eval_ = ["eval", "--style", str(style), str(photo), "-q"]
    cases = [(eval_ + ["--plot", str(photo), "--overwrite"], "would replace the input"),
             (eval_ + ["--json", str(tmp_path / "s.lm68.txt"), "--overwrite"],
              "would replace the input"),
             (eval_ + ["--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "r.json")],
              "cannot write a chart with extension '.json'"),
             (eval_ + ["--plot", str(tmp_path / "chart")], "chart.png: exists already"),
             (eval_ + ["--plot", str(tmp_path / "c.txt")], "extension '.txt'"),
             (["bench", "--target", str(photo), "--json", str(photo)], "exists already"),
             (["bench", "--target", str(photo), "--json", str(photo), "--overwrite"],
              "would replace the input"),
             # (it ran, saved nothing and said nothing: eval and compare refused it)
             (["bench", "--target", str(photo), "--json", ""], "--json: the output path is empty")]
    for argv, message in cases:
        assert main(argv) == 1, argv
        assert message in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_prepare_style_writes_a_loadable_cache(tmp_path, capsys):
    from guides.exemplar import StyleExemplar

    out = tmp_path / "style.npz"
    assert main(["prepare-style", "-o", str(out)]) == 0
    assert "prepared in" in capsys.readouterr().out
    style = StyleExemplar.load(out)
    assert style.nbytes <= 16 * 2**20
    img = tmp_path / "o.png"
    assert main(["image", "--style", str(out), "-o", str(img)]) == 0
    upper = tmp_path / "STYLE.NPZ"  # the ending's case does not matter
    upper.write_bytes(out.read_bytes())
    assert main(["image", "--style", str(upper), "-o", str(tmp_path / "o2.png")]) == 0
    assert (tmp_path / "o2.png").read_bytes() == img.read_bytes()


_VIDEO = ["video", "in.mp4", "-o", "o.mp4"]
_DISTILL = ["distill", "--style", "s.png", "--video", "in.mp4", "-o", "m.pt"]
# (command line, option, value): every numeric option of every command, with a
# value out of its range, not finite, or not a number
_BAD_VALUES = [
    (["image", "-o", "o.png"], "--voting", "3"),
    (["image", "-o", "o.png"], "--threshold", "-1"),
    (["image", "-o", "o.png"], "--threshold", "nan"),
    (["image", "-o", "o.png"], "--max-faces", "0"),
    (["bench"], "--repeats", "0"),
    (["bench"], "--sizes", "0x0"),
    (["bench"], "--sizes", "big"),
    (_VIDEO, "--fps", "0"),
    (_VIDEO, "--fps", "inf"),
    (_VIDEO, "--fps", "0.0001"),  # (as a fraction with denominators up to 1001: 0)
    (_VIDEO, "--boil", "-1"),
    (_VIDEO, "--boil", "inf"),
    (_VIDEO, "--max-faces", "0"),
    (_VIDEO, "--landmark-every", "auto"),
    (_VIDEO, "--chunk-frames", "0"),
    (_VIDEO, "--warmup-frames", "-1"),
    (_VIDEO, "--cpus-per-chunk", "0"),
    (_VIDEO, "--gpus-per-chunk", "nan"),
    (_VIDEO, "--max-retries", "-1"),
    (["batch", "in.mp4", "-o", "out"], "--fps", "-5"),
    (["webcam"], "--camera", "-1"),
    (["webcam"], "--size", "0x0"),
    (["webcam"], "--frames", "0"),
    (["webcam"], "--max-faces", "0"),
    (["webcam"], "--boil", "nan"),
    (["eval", "in.mp4"], "--frames", "0"),
    (["eval", "in.mp4"], "--reference-step", "0"),
    (["eval", "in.mp4"], "--patch-frames", "-1"),
    (["eval", "in.mp4"], "--patch-samples", "0"),
    (["eval", "in.mp4"], "--seed", "-1"),
    (_DISTILL, "--steps", "0"),
    (_DISTILL, "--minutes", "-1"),
    (_DISTILL, "--lr", "-1"),
    (_DISTILL, "--lr", "nan"),
    (_DISTILL, "--max-mb", "0"),
    (_DISTILL, "--crop", "8"),
    (_DISTILL, "--long-side", "16"),
    (_DISTILL, "--batch", "0"),
    (_DISTILL, "--width", "1.5"),
    (_DISTILL, "--augment", "-1"),
    (_DISTILL, "--every", "0"),
    (_DISTILL, "--threads", "0"),
    (["compare", "--model", "m.pt", "in.mp4", "-o", "o.mp4"], "--frames", "0"),
    (["compare", "--model", "m.pt", "in.mp4", "-o", "o.mp4"], "--threads", "0"),
]


@pytest.mark.parametrize("argv, option, value", _BAD_VALUES,
                         ids=[f"{a[0]} {o} {v}" for a, o, v in _BAD_VALUES])
def test_bad_option_values_are_usage_errors(tmp_path, monkeypatch, capsys, argv, option, value):
    """Refused when parsed, naming the option (exit code 2, before any work:
    the files named need not exist), never a traceback later."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv + [option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "expected" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_number_and_frame_size_accept_what_they_should():
    from blit.cli import frame_size, number

    assert number(int, least=1)("7") == 7 and isinstance(number(int, least=1)("7"), int)
    assert number(least=0)("0") == 0.0 and number(positive=True)("2.5") == 2.5
    assert number(int, least=0)("0") == 0
    assert frame_size("640X480") == (640, 480) and frame_size("16x16") == (16, 16)
    assert frame_size("16384x8640") == (16384, 8640)
    # (100000x100000 failed on allocating 30 GB, in OpenCV's words)
    with pytest.raises(argparse.ArgumentTypeError, match="at most 16384 a side"):
        frame_size("100000x100000")


def test_console_script_runs(tmp_path):
    import shutil

    from blit.defaults import default_target_path

    out = tmp_path / "o.png"
    env = dict(os.environ, STYLEBLIT_CACHE=str(tmp_path / "cache2"))
    proc = subprocess.run([sys.executable, "-m", "blit.cli", "image", "-o", str(out), "-q"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and "Traceback" not in proc.stderr
    # a console that cannot print every name (Windows' cp1252, here Latin-1) printed a
    # traceback at the first line naming one, after its output and before the next target
    target = shutil.copy(default_target_path(), tmp_path / "Grace \u65e5\u672c.jpg")
    proc = subprocess.run([sys.executable, "-m", "blit.cli", "image", target,
                           default_target_path(), "-o", str(tmp_path / "out")],
                          capture_output=True, env=dict(env, PYTHONIOENCODING="latin-1"),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["Grace \u65e5\u672c.png", "grace_hopper.png"]
    assert b"Grace \\u65e5\\u672c.jpg in the style of" in proc.stdout


def test_bench_prints_and_saves_every_stage(tmp_path, capsys):
    import json

    out = tmp_path / "bench.json"
    assert main(["bench", "--sizes", "320x240", "--repeats", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    stats = result["sizes"]["320x240"]
    for stage in ("landmarks", "mask", "mls", "appearance", "lookup", "denoise", "blend",
                  "composite", "total", "remap"):
        assert stats[stage]["median"] > 0 and f"  {stage} " in printed
    assert stats["lookup_blend_over_remap"] > 0 and result["environment"]["numba_threads"] >= 1
    assert result["options"]["denoise"] is True  # (what ran: it was recorded as null)


def test_bench_environment_names_the_source_it_ran(tmp_path):
    """The benchmarks' JSON names the code by a digest of the packages'
    source (a copied tree may carry another commit's .git): a copy of the
    packages has the same digest, a changed byte or a new kernel file
    another, a file that is not source none; the commit of a checkout whose
    package files differ from it is marked dirty."""
    import json
    import shutil
    from pathlib import Path

    from blit.bench import PACKAGES, environment, source_digest

    root = Path(__file__).resolve().parents[1]

    def copy_packages(to):
        for package in PACKAGES:
            shutil.copytree(root / package, to / package,
                            ignore=shutil.ignore_patterns("__pycache__"))

    copy = tmp_path / "copy"
    copy_packages(copy)
    digest = source_digest(copy)
    assert len(digest) == 12 and digest == source_digest(root)
    assert environment()["source"] == digest
    (copy / "blit" / "notes.txt").write_text("not source")
    assert source_digest(copy) == digest
    (copy / "blit" / "cuda" / "extra.cuh").write_text("// a kernel header\n")
    assert source_digest(copy) != digest
    (copy / "blit" / "cuda" / "extra.cuh").unlink()
    stream = copy / "blit" / "stream.py"
    stream.write_bytes(stream.read_bytes() + b"\n")
    assert source_digest(copy) != digest

    # a checkout of its own: clean, then with a package file changed
    if shutil.which("git") is None:
        return  # (the digest is checked; the commit needs git)
    repo = tmp_path / "repo"
    copy_packages(repo)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(git + args, check=True)
    code = "import json, blit.bench; print(json.dumps(blit.bench.environment()['commit']))"
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def commit():
        return json.loads(subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                                         capture_output=True, text=True, check=True).stdout)

    clean = commit()
    assert clean and not clean.endswith("-dirty")
    stream = repo / "blit" / "stream.py"
    stream.write_bytes(stream.read_bytes() + b"\n")
    assert commit() == clean + "-dirty"


# ------------------------------------------------------------------ --device

def _device_argv(command, tmp_path):
    if command == "video":
        return ["video", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4"), "-q"]
    return ["webcam", "--no-window", "--frames", "1", "-q"]


@pytest.mark.parametrize("command", ["video", "webcam"])
def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys, command):
    from blit import gpu

    if gpu.available():
        pytest.skip("a CUDA device is present")
    assert main(_device_argv(command, tmp_path) + ["--device", "cuda"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("styleblit: error: device='cuda': ")
    if importlib.util.find_spec("cupy") is None:
        assert 'pip install -e ".[gpu]"' in err[0]
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []  # nothing written


@pytest.mark.parametrize("command", ["video", "webcam"])
def test_device_reaches_the_stylizer(tmp_path, capsys, monkeypatch, command):
    """--device is resolved once ("auto": CUDA when available) and handed to
    the stream, and not for Ray's workers; with --method gan it is torch's,
    "auto" by default (it was refused: the GAN could not be kept on the CPU
    of a GPU machine, as compare can)."""
    import types

    from blit import gpu, video, webcam

    seen = []
    monkeypatch.setattr(video, "check_video_args",
                        lambda args, inputs=(): types.SimpleNamespace(name="s"))
    monkeypatch.setattr(video, "stylize_video", lambda *a, **k: seen.append(k["device"]) or 1)
    monkeypatch.setattr(webcam, "run_webcam", lambda *a, **k: seen.append(k["device"]) or {"frames": 1})
    argv = _device_argv(command, tmp_path)
    assert main(argv) == 0
    assert main(argv + ["--device", "cpu"]) == 0
    assert main(argv + ["--device", "auto"]) == 0
    assert seen == ["cpu", "cpu", "cuda" if gpu.available() else "cpu"]
    gan = argv + ["--method", "gan", "--model", "m.pt"]
    assert main(gan + ["--device", "cpu"]) == 0 and main(gan) == 0
    assert seen[3:] == ["cpu", "auto"]
    if command == "video":
        assert main(argv + ["--engine", "ray", "--device", "cuda"]) == 1
        assert "use --engine local" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(argv + ["--device", "gpu"])


def test_an_output_on_a_read_only_file_system_says_so(tmp_path, monkeypatch):
    """(It said "permission denied", which sends a user to chmod.) A folder that
    cannot be written in, on a read-only file system or not."""
    from types import SimpleNamespace

    from blit.cli import check_output
    from guides.io import InputError

    monkeypatch.setattr(os, "access", lambda path, mode: False)
    for flag, says in ((0, "permission denied"), (os.ST_RDONLY, "a read-only file system")):
        monkeypatch.setattr(os, "statvfs", lambda path, flag=flag: SimpleNamespace(f_flag=flag))
        with pytest.raises(InputError, match=rf"cannot write in the folder .*\({says}\)"):
            check_output(str(tmp_path / "out.png"), overwrite=False)


def test_an_image_folders_other_files_are_said(tmp_path, capsys):
    """(An iPhone's .HEIC photos in a folder were left out without a word.)"""
    from blit.cli import expand_image_targets

    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.jpg", "a.PNG", "IMG_1.HEIC", "party.gif", "notes.txt", ".hidden.heic"):
        (folder / name).write_bytes(b"")
    assert expand_image_targets([str(folder)]) == [str(folder / "a.PNG"), str(folder / "b.jpg")]
    assert capsys.readouterr().err == (f"styleblit: warning: {folder}: 3 file(s) left out, not "
                                       "images by their endings (IMG_1.HEIC, notes.txt, "
                                       "party.gif)\n")
    (folder / "IMG_1.HEIC").unlink()
    (folder / "party.gif").unlink()
    (folder / "notes.txt").unlink()
    assert len(expand_image_targets([str(folder)])) == 2 and capsys.readouterr().err == ""


def test_landmarks_command_writes_the_file_that_image_then_uses(tmp_path, capsys):
    """`styleblit landmarks` writes the detected landmarks beside the image,
    where `image` picks them up (a corrected point changes the result),
    refuses to replace them without --overwrite, and draws a file's
    landmarks with --plot."""
    from blit.defaults import default_target_path
    from guides.landmarks import detect_landmarks, read_lm68, write_lm68

    photo = tmp_path / "p.png"
    write_image(photo, read_image(default_target_path()))
    before = photo.read_bytes()
    assert main(["landmarks", str(photo)]) == 0
    assert "68 landmarks detected" in capsys.readouterr().out
    written = read_lm68(tmp_path / "p.lm68.txt")
    np.testing.assert_allclose(written, detect_landmarks(read_image(photo)), atol=0.006)
    assert photo.read_bytes() == before

    # a hand-corrected file is kept unless --overwrite
    moved = written.copy()
    moved[8, 1] += 25  # the chin lower
    write_lm68(tmp_path / "p.lm68.txt", moved)
    assert main(["landmarks", str(photo)]) == 1
    err = capsys.readouterr().err
    assert "p.lm68.txt: exists already" in err and "--overwrite" in err
    np.testing.assert_allclose(read_lm68(tmp_path / "p.lm68.txt"), moved, atol=0.006)

    # drawn from the file: the image changes around the points, not elsewhere
    plot = tmp_path / "plot.png"
    assert main(["landmarks", str(photo), "--landmarks", str(tmp_path / "p.lm68.txt"),
                 "--plot", str(plot)]) == 0
    said = capsys.readouterr().out
    assert "read from" in said
    # (its eyes 84 px apart: the plot is enlarged twice, and says so)
    assert "enlarged 2 times to read the numbers" in said
    big = cv2.resize(read_image(photo), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    drawn = np.abs(read_image(plot).astype(int) - big).sum(-1) > 0
    x1, y1 = (2 * moved.max(0) + 0.5).astype(int) + 120
    assert drawn.sum() > 8000 and not drawn[y1:].any() and not drawn[:, x1:].any()
    assert drawn[int(2 * moved[8, 1] + 0.5), int(2 * moved[8, 0] + 0.5)]  # the moved point

    # the target's file is the one `image --target-landmarks` takes
    out_a, out_b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["image", str(photo), "-o", str(out_a),
                 "--target-landmarks", str(tmp_path / "p.lm68.txt")]) == 0
    assert main(["image", str(photo), "-o", str(out_b)]) == 0
    assert (read_image(out_a) != read_image(out_b)).any()


def test_landmarks_far_off_an_image_are_drawn_then_refused_in_one_line(tmp_path, capsys):
    """A landmark file of coordinates a hundred thousand times the image's
    (another image's, or a slip): --plot drew it with OpenCV's fixed point
    and line widths overflowing, a traceback; now drawn towards where the
    points are, then refused in one line, as one a thousand times off."""
    from guides.landmarks import write_lm68

    image = tmp_path / "face.png"
    write_image(image, np.full((200, 160, 3), 128, np.uint8))
    points = _template_points(160, 200)
    for factor in (1e3, 1e5, 1e30):
        marks = tmp_path / f"far{factor:g}.lm68.txt"
        write_lm68(marks, points * factor)
        plot = tmp_path / f"far{factor:g}.png"
        assert main(["landmarks", str(image), "--landmarks", str(marks), "--plot", str(plot)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"styleblit: error: {marks}: landmarks lie far outside the 160x200 "
                              f"image {image}") and err.count("\n") == 1, err
        assert f"(drawn in {plot})" in err and read_image(plot).shape[:2] == (200, 160)


def _template_points(width, height):
    """The template's 68 landmarks in the middle of a width x height image."""
    from blit.cli import _template_landmarks

    return _template_landmarks((height, width, 3))


def test_landmarks_command_errors_and_template(tmp_path, capsys):
    """No face: one line suggesting --template, no file; --template places a
    face in the middle, which the style commands then use. --landmarks
    with nothing to write is a usage error; outputs never replace inputs.
    --eyes moves landmarks as one; a mirrored file is drawn, then refused."""
    from guides.landmarks import interocular_distance, read_lm68, write_lm68

    blank = tmp_path / "blank.png"
    write_image(blank, np.full((300, 400, 3), 180, np.uint8))
    assert main(["landmarks", str(blank)]) == 1
    assert "blank.png: no face found; pass --template" in capsys.readouterr().err
    assert not (tmp_path / "blank.lm68.txt").exists()

    assert main(["landmarks", str(blank), "--template", "--plot", str(tmp_path / "t.png")]) == 0
    assert "a template's 68 landmarks placed in the middle" in capsys.readouterr().out
    lm = read_lm68(tmp_path / "blank.lm68.txt")
    assert interocular_distance(lm) == pytest.approx(75, abs=0.1)  # a quarter of 300
    assert np.allclose((lm.max(0) + lm.min(0)) / 2, (200, 150), atol=0.01)
    assert read_image(tmp_path / "t.png").shape == (600, 800, 3)  # (enlarged twice)
    # the style commands now take it as the blank image's landmarks
    assert main(["prepare-style", str(blank), "-o", str(tmp_path / "s.npz")]) == 0
    capsys.readouterr()
    # an image too small for a face: the line names it (it named 'the template' alone)
    dot = tmp_path / "dot.png"
    write_image(dot, np.zeros((1, 1, 3), np.uint8))
    assert main(["landmarks", str(dot), "--template"]) == 1
    assert f"error: {dot}: the template: the eyes (points 37-48) are" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["landmarks", str(blank), "--landmarks", str(tmp_path / "blank.lm68.txt")])
    assert "there is nothing to do" in capsys.readouterr().err
    assert main(["landmarks", str(blank), "-o", str(blank), "--overwrite"]) == 1
    assert "-o names the landmark file" in capsys.readouterr().err
    assert main(["landmarks", str(blank), "-o", str(tmp_path / "blank.lm68.txt"),
                 "--plot", str(blank), "--overwrite", "--template"]) == 1
    assert "would replace the input" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["landmarks", str(blank), "--template", "--landmarks", "x.txt", "-o", "y.txt"])
    assert "--template: not with --landmarks" in capsys.readouterr().err
    assert main(["landmarks", str(blank), "--landmarks", str(tmp_path / "blank.lm68.txt"),
                 "--plot", str(tmp_path / "t.txt")]) == 1
    assert "t.txt" in capsys.readouterr().err
    assert main(["landmarks", str(tmp_path / "none.png")]) == 1
    assert "none.png" in capsys.readouterr().err

    # --eyes moves the template as one: its eye centres land there, its shape kept;
    # a file moved so is written back over itself with --overwrite, or said unwritten
    assert main(["landmarks", str(blank), "--template", "--eyes", "150,120,230,100",
                 "-o", str(tmp_path / "moved.lm68.txt")]) == 0
    capsys.readouterr()
    moved = read_lm68(tmp_path / "moved.lm68.txt")
    assert main(["landmarks", str(blank), "--landmarks", str(tmp_path / "moved.lm68.txt"),
                 "--eyes", "150,120,230,100", "--plot", str(tmp_path / "m0.png")]) == 0
    assert "not written (give -o FILE to keep them)" in capsys.readouterr().out
    assert main(["landmarks", str(blank), "--landmarks", str(tmp_path / "moved.lm68.txt"),
                 "--eyes", "150,120,230,100", "-o", str(tmp_path / "moved.lm68.txt"),
                 "--overwrite"]) == 0
    capsys.readouterr()
    np.testing.assert_allclose(read_lm68(tmp_path / "moved.lm68.txt"), moved, atol=0.01)
    np.testing.assert_allclose(moved[36:42].mean(0), (150, 120), atol=0.02)
    np.testing.assert_allclose(moved[42:48].mean(0), (230, 100), atol=0.02)
    scale = interocular_distance(moved) / interocular_distance(lm)
    assert scale == pytest.approx(np.hypot(80, 20) / 75, rel=1e-3)
    np.testing.assert_allclose(np.linalg.norm(moved[0] - moved[16]),
                               scale * np.linalg.norm(lm[0] - lm[16]), rtol=1e-3)
    for bad in ("1,2,3", "1,2,1,2", "a,b,c,d"):
        with pytest.raises(SystemExit):
            main(["landmarks", str(blank), "--template", "--eyes", bad])
        assert "argument --eyes" in capsys.readouterr().err
    # an eye left of the image: its value starts with a minus sign, with or without '='
    for eyes in (["--eyes", "-20,120,60,100"], ["--eyes=-20,120,60,100"]):
        assert main(["landmarks", str(blank), "--template", *eyes, "-o",
                     str(tmp_path / "left.lm68.txt"), "--overwrite"]) == 0
        capsys.readouterr()
        np.testing.assert_allclose(read_lm68(tmp_path / "left.lm68.txt", check_face=False)[36:42]
                                   .mean(0), (-20, 120), atol=0.02)

    # what `image` would warn of is said here too; a point far off is named
    face = read_lm68(tmp_path / "blank.lm68.txt")
    write_lm68(tmp_path / "edge.lm68.txt", face - (face[:, 0].min() + 10, 0))
    assert main(["landmarks", str(blank), "--landmarks", str(tmp_path / "edge.lm68.txt"),
                 "--plot", str(tmp_path / "e.png")]) == 0
    assert "warning: " in capsys.readouterr().err
    far = face.copy()
    far[29] = (5000, 40)
    write_lm68(tmp_path / "far.lm68.txt", far)
    assert main(["landmarks", str(blank), "--landmarks", str(tmp_path / "far.lm68.txt"),
                 "--plot", str(tmp_path / "f.png")]) == 1
    assert "(1 of 68; point 30 at 5000 40)" in capsys.readouterr().err

    # a mirrored file is drawn to see, then refused; nothing else written
    write_lm68(tmp_path / "mirror.lm68.txt", lm * (-1, 1) + (400, 0))
    assert main(["landmarks", str(blank), "--landmarks", str(tmp_path / "mirror.lm68.txt"),
                 "--plot", str(tmp_path / "m.png"), "-o", str(tmp_path / "m.lm68.txt")]) == 1
    err = capsys.readouterr().err
    assert "mirror.lm68.txt: its points are mirrored" in err and "(drawn in" in err
    assert (tmp_path / "m.png").exists() and not (tmp_path / "m.lm68.txt").exists()


def test_image_says_when_a_large_face_is_painted_smaller(tmp_path, capsys):
    """A face 2.4 times as wide as the style's is painted at the style's
    scale and enlarged (blit.stylize.paint_scale): the line says so and how
    to paint at its own; the output is stylize_image's."""
    from blit.defaults import default_style_path, default_target_path
    from blit.stylize import stylize_image
    from guides.exemplar import load_style

    big = cv2.resize(read_image(default_target_path()), None, fx=3, fy=3,
                     interpolation=cv2.INTER_CUBIC)
    target = tmp_path / "big.png"
    write_image(target, big)
    out = tmp_path / "out.png"
    assert main(["image", str(target), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2.4 times as wide as the style's: painted at 0.42 of its size" in said
    assert "--native-scale" in said
    np.testing.assert_array_equal(read_image(out),
                                  stylize_image(load_style(default_style_path()), big))
    assert main(["image", str(target), "-o", str(out), "--native-scale", "--overwrite"]) == 0
    assert "painted at" not in capsys.readouterr().out


def test_style_warnings_are_one_line_each_and_the_job_is_done(tmp_path, capsys):
    """A style whose face runs past its image's edge: `image` paints and
    says why part of the face will streak, as one line."""
    from blit.defaults import default_style_path
    from guides.exemplar import load_style
    from guides.landmarks import write_lm68

    style = load_style(default_style_path())
    shift = int(style.landmarks[:, 0].min()) + 15
    cut = np.full_like(style.image, 200)
    cut[:, :-shift] = style.image[:, shift:]
    write_image(tmp_path / "cut.png", cut)
    write_lm68(tmp_path / "cut.lm68.txt", style.landmarks - (shift, 0))
    assert main(["image", "--style", str(tmp_path / "cut.png"), "-o", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"styleblit: warning: {tmp_path / 'cut.png'}: "
                                               "its face runs past the image's left edge")
    assert (tmp_path / "o.png").exists()


def test_kernels_are_cached_in_the_temporary_folder_where_numba_has_nowhere(tmp_path):
    """Installed read-only (no __pycache__ can be made beside the modules)
    with no home folder to write in, importing any kernel failed ("cannot
    cache function ...: no locator available"), so every command did,
    --version included. Numba's cache then goes in styleblit's folder in the
    temporary folder, said once, at the first command that runs, and
    matplotlib's font cache beside it; a NUMBA_CACHE_DIR of the user's own
    wins."""
    import shutil
    from pathlib import Path

    from blit.defaults import default_target_path

    root = tmp_path / "site"
    for package in ("blit", "guides"):
        shutil.copytree(Path(__file__).resolve().parents[1] / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
        (root / package / "__pycache__").write_bytes(b"")  # (a file: no folder can be made)
    (tmp_path / "home").write_bytes(b"")
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "MPLCONFIGDIR", "XDG_CONFIG_HOME")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "home" / "cache"), HOME=str(tmp_path / "home"),
               TMPDIR=str(tmp_path / "tmp"), PYTHONDONTWRITEBYTECODE="1")
    os.makedirs(tmp_path / "tmp")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from blit.cli import main; import guides\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "import blit.styleblit, blit.blending, blit.stream, guides.mls, numba\n"
            "print(guides.NUMBA_CACHE_FALLBACK); print(numba.config.CACHE_DIR)\n"
            "sys.exit(main(['landmarks', sys.argv[2], '-q', '--overwrite', '-o', 'x.lm68.txt']))")
    command = [sys.executable, "-c", code, str(root), default_target_path()]
    runs = [subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
            for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    version, fallback, folder = runs[0].stdout.strip().splitlines()
    (made,) = (tmp_path / "tmp").iterdir()
    assert fallback == folder == str(made / "numba") and os.path.isdir(folder)
    # said once, at the first command (not used up by --version), and nothing of
    # matplotlib's font cache, kept in that folder too (mediapipe's start-up lines
    # are left out of the comparison: "INFO: Created TensorFlow Lite XNNPACK
    # delegate" slipped through its filter in about one run of 12 here, from the
    # face detector's start, since filtered with its first run: none in 80 runs)
    def said(run):
        return [ln for ln in run.stderr.splitlines() if not _MEDIAPIPE_LEAK.match(ln)]

    assert said(runs[0]) == [
        "styleblit: warning: Numba cannot cache the compiled kernels beside the installed "
        f"package nor in the home folder (neither can be written); they are cached in {folder}"]
    assert runs[1].returncode == 0 and said(runs[1]) == []
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.stdout.strip().splitlines()[1:] == ["None", str(tmp_path / "mine")]
    assert said(run) == []


#: mediapipe's start-up lines, which slipped through its stderr filter now and
#: then (a graph's model loaded on its own thread after the filter ended).
_MEDIAPIPE_LEAK = re.compile(
    r"^(INFO: Created TensorFlow Lite XNNPACK delegate|WARNING: All log messages before "
    r"absl::InitializeLog|W0000 .*inference_feedback_manager)")


def test_a_fallback_folder_of_another_users_is_passed_over_for_one_found_again(
        tmp_path, monkeypatch):
    """Where the temporary folder's styleblit-UID is taken (a file, a link
    planted there, which was followed, a folder others can write in; as
    another user's), the next free name is used, the same on every run
    (each run made a new folder of a random name, never used again nor
    deleted)."""
    import tempfile

    from guides.cachedir import fallback_cache_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    taken = tmp_path / f"styleblit-{os.getuid()}"
    taken.write_bytes(b"")
    assert fallback_cache_dir(create=False) == f"{taken}-1"
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    os.symlink(tmp_path / "elsewhere", f"{taken}-1")
    os.mkdir(f"{taken}-2")
    os.chmod(f"{taken}-2", 0o777)
    first = fallback_cache_dir()
    assert first == f"{taken}-3" and os.path.isdir(first)
    assert fallback_cache_dir() == first == fallback_cache_dir(create=False)
    assert os.stat(first).st_mode & 0o777 == 0o700
    assert sorted(os.listdir(tmp_path)) == ["elsewhere"] + [
        f"{taken.name}{suffix}" for suffix in ("", "-1", "-2", "-3")]


def test_a_cache_that_cannot_be_written_or_is_broken(tmp_path, monkeypatch, capsys):
    """A cache path that is a file: the default job is done, the default
    style kept in the user's folder in the temporary folder, said once; a
    cache entry emptied or cut short (a full disk, a killed copy) is built
    again; '~' in the variable is the home folder."""
    import tempfile

    from guides.exemplar import StyleExemplar, cache_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    (tmp_path / "afile").write_bytes(b"")
    monkeypatch.setenv("STYLEBLIT_CACHE", str(tmp_path / "afile"))
    first, second = tmp_path / "1.png", tmp_path / "2.png"
    assert main(["image", "-q", "-o", str(first)]) == 0
    err = capsys.readouterr().err
    assert "styleblit: warning: the cache folder cannot be written" in err
    assert str(tmp_path / "tmp") in err
    assert main(["image", "-q", "-o", str(second)]) == 0  # found there again, nothing said
    assert capsys.readouterr().err == ""
    assert first.read_bytes() == second.read_bytes()
    assert any(name.startswith("style-") for name in os.listdir(tmp_path / "tmp" / os.listdir(
        tmp_path / "tmp")[0]))
    # prepare-style, and a style prepared for the first time, too: kept there, said
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp2"))
    os.makedirs(tmp_path / "tmp2")
    assert main(["prepare-style"]) == 0
    out, err = capsys.readouterr()
    assert str(tmp_path / "tmp2") in out and "cannot be written" in err

    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLEBLIT_CACHE", str(cache))
    assert main(["image", "-q", "-o", str(first), "--overwrite"]) == 0
    (entry,) = cache.glob("style-*.npz")
    entry.write_bytes(b"")
    painting = next((cache / "default").glob("*.png"))
    painting.write_bytes(painting.read_bytes()[:1000])
    assert main(["image", "-q", "-o", str(second), "--overwrite"]) == 0
    assert capsys.readouterr().err == ""
    assert first.read_bytes() == second.read_bytes()
    assert entry.stat().st_size > 1 << 20 and StyleExemplar.load(entry).image.size
    with pytest.raises(InputError, match="not a styleblit style cache"):
        (tmp_path / "empty.npz").write_bytes(b"")
        StyleExemplar.load(tmp_path / "empty.npz")

    monkeypatch.setenv("STYLEBLIT_CACHE", "~/sbcache")
    assert cache_dir() == os.path.join(os.path.expanduser("~"), "sbcache")


def test_version_python_m_and_the_first_run_notice(tmp_path, monkeypatch, capsys):
    """--version; `python -m blit` is the command; on a terminal, a
    command's first run says it compiles its kernels (half a minute of
    silence otherwise), the next does not."""
    from importlib import metadata

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"styleblit {metadata.version('styleblit')}"
    run = subprocess.run([sys.executable, "-m", "blit", "landmarks", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "usage: styleblit landmarks" in run.stdout

    said = []
    for cache, tty in (("a", True), ("a", True), ("b", False), ("b", True)):
        monkeypatch.setenv("STYLEBLIT_CACHE", str(tmp_path / cache))
        monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
        assert main(["image", "-o", str(tmp_path / f"{cache}.png"), "--overwrite"]) == 0
        said.append(capsys.readouterr().err)
    assert "the first `image` compiles its kernels" in said[0] and said[1] == ""
    # a first run from a script says nothing, and the next on a terminal knows it ran
    assert said[2] == said[3] == ""


def test_image_paints_a_photo_upside_down_as_itself(tmp_path):
    """A scan upside down: FaceMesh alone finds no face in this one (on
    target1.png it lays an upright face over it, and the painting is a
    jumble); the photo is looked at turned upright
    (guides.landmarks.detect_upright_faces), and its painting, turned back,
    reads as the same face as the upright photo's."""
    from blit.defaults import default_target_path
    from blit.metrics import landmark_error
    from guides.landmarks import detect_landmarks

    photo = read_image(default_target_path())
    truth = detect_landmarks(photo)
    write_image(tmp_path / "up.png", np.rot90(photo, 2))
    assert main(["image", "-q", str(tmp_path / "up.png"), "-o", str(tmp_path / "o.png")]) == 0
    painted = np.ascontiguousarray(np.rot90(read_image(tmp_path / "o.png"), 2))
    assert landmark_error(truth, detect_landmarks(painted)) < 0.05


def test_a_ctrl_c_a_library_swallows_is_not_lost(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the subcommands are imported: one that lands in a C
    callback is printed and dropped there (mediapipe's protobuf, Numba's
    cache, the import lock), and the run went on to write its output; it is
    noted and ends the run before any work, as one not dropped does."""
    import signal
    import time

    import blit.cli as C

    real = C.build_parser

    def swallowing():
        try:  # as a library's callback takes it
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        return real()

    monkeypatch.setattr(C, "build_parser", swallowing)
    out = tmp_path / "o.png"
    assert C.main(["image", "-o", str(out)]) == 130
    assert capsys.readouterr().err == "styleblit: interrupted\n"
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_an_unknown_option_shows_its_commands_usage(capsys):
    """An option the command does not have is said with that command's
    usage (argparse gave the top level's, which lists no option)."""
    with pytest.raises(SystemExit) as exc:
        main(["image", "x.png", "-o", "y.png", "--method", "gan"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: styleblit image ")
    assert "styleblit image: error: unrecognized arguments: --method gan" in err


def test_an_empty_json_or_plot_path_is_refused(tmp_path, capsys):
    """eval --json '' ran and saved nothing, without a word (an empty -o is
    refused; so are these now), before any work."""
    from blit.defaults import default_target_path

    for option in ("--json", "--plot"):
        assert main(["eval", default_target_path(), option, ""]) == 1
        assert capsys.readouterr().err.strip() == (
            f"styleblit: error: {option}: the output path is empty")


def test_a_first_run_compiles_the_lookup_in_a_second_process(tmp_path):
    """A first run compiles the lookup's three kernels in a child process
    (blit.precompile) while it starts; its lookup then loads them from
    Numba's cache: not one of them compiled by the command itself, and its
    painting the same as with everything compiled in one process."""
    import json

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               STYLEBLIT_CACHE=str(tmp_path / "cache"))
    script = (
        "import json, sys\n"
        "from blit.cli import main\n"
        "from blit import precompile, styleblit as S\n"
        "started = []\n"
        "real = precompile.start\n"
        "precompile.start = lambda *a: started.append(real(*a)) or started[-1]\n"
        f"code = main(['image', '-q', '-o', {str(tmp_path / 'a.png')!r}])\n"
        "stats = {k.__name__: [sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]\n"
        "         for k in (S._lookup_kernel, S._run_seed_kernel, S._seed_position_kernel)}\n"
        "print(json.dumps(dict(code=code, started=started, stats=stats)))\n")
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr
    first = json.loads(run.stdout.strip().splitlines()[-1])
    assert first["code"] == 0 and first["started"] == [True]
    assert all(hits == 1 and misses == 0 for hits, misses in first["stats"].values()), first
    assert [p.name[:7] for p in (tmp_path / "cache" / "compiled").glob("lookup-*")] == ["lookup-"]
    # the next run of any command starts no child (its marker is there)
    run = subprocess.run([sys.executable, "-c", script.replace("a.png'", "b.png'")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert json.loads(run.stdout.strip().splitlines()[-1])["started"] == []
    assert read_image(tmp_path / "a.png").tobytes() == read_image(tmp_path / "b.png").tobytes()


def test_the_compile_ahead_child_is_started_once_and_stopped_at_exit(tmp_path, monkeypatch):
    """Only a run of a command that looks up on this CPU, with the lookup's
    kernels not known to be cached (no lookup marker: another command's
    marker, prepare-style's say, stopped it) and none compiled in this
    process, starts the child; one still running when the command ends
    (no face, an error) is stopped."""
    import blit.cli as C
    from blit import precompile

    started = []
    monkeypatch.setattr(precompile, "start", lambda marker=None: started.append(marker))
    marker = str(tmp_path / "compiled" / "image-0123456789abcdef")
    lookup = str(tmp_path / "compiled" / "lookup-0123456789abcdef")
    ns = argparse.Namespace
    monkeypatch.setitem(sys.modules, "blit.styleblit", None)  # (nothing compiled in this process)
    for args in (ns(command="landmarks"), ns(command="prepare-style"),
                 ns(command="batch", engine="ray"), ns(command="image", device="cuda"),
                 ns(command="webcam", method="gan", device="auto"),
                 ns(command="eval", output="ours.png")):
        C._compile_ahead(args, marker)
    assert started == []
    C._compile_ahead(ns(command="compare", method="gan", device="cuda"), marker)
    C._compile_ahead(ns(command="eval", output=None), marker)
    os.makedirs(os.path.dirname(marker))
    open(marker.replace("image-", "prepare-style-"), "w").close()  # (no lookup there)
    C._compile_ahead(ns(command="image", device="cpu"), marker)
    assert started == [lookup] * 3
    # --device auto: the child only where CuPy is not installed (else a GPU most likely paints)
    monkeypatch.setattr(C, "_cupy_installed", lambda: True)
    C._compile_ahead(ns(command="video", device="auto"), marker)
    assert started == [lookup] * 3
    monkeypatch.setattr(C, "_cupy_installed", lambda: False)
    C._compile_ahead(ns(command="video", device="auto"), marker)
    assert started == [lookup] * 4
    open(lookup, "w").close()  # (left by the child, or by a run that looked up)
    C._compile_ahead(ns(command="image", device="cpu"), marker)
    assert started == [lookup] * 4

    # where the cache folder cannot be written, the markers are kept in the temporary
    # folder's, as the styles (every run was a first run: the notice, the child)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    (tmp_path / "afile").write_bytes(b"")
    monkeypatch.setenv("STYLEBLIT_CACHE", str(tmp_path / "afile"))
    assert C._compile_marker("image").startswith(
        str(tmp_path / "tmp" / f"styleblit-{os.getuid()}" / "compiled" / "image-"))
    monkeypatch.setenv("STYLEBLIT_CACHE", str(tmp_path / "new" / "cache"))
    assert C._compile_marker("image").startswith(str(tmp_path / "new" / "cache" / "compiled"))
    assert not (tmp_path / "new").exists()  # (nothing made before the command's checks)

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(precompile, "_child", child)
    precompile._stop()
    assert child.poll() is not None and precompile._child is None


def test_a_report_that_cannot_be_written_does_not_stop_the_run(tmp_path):
    """`styleblit image DIR -o OUT | head -1`: the reader gone, the next
    line printed was a BrokenPipeError traceback and the rest of the
    targets were left unpainted. Now they are painted, nothing said (the
    reader's choice), exit 0; a standard output on a full disk is said; a
    standard error that cannot be written is no reason to stop either."""
    import shutil

    from blit.defaults import default_target_path

    folder = tmp_path / "in"
    folder.mkdir()
    for name in "abc":
        shutil.copy(default_target_path(), folder / f"{name}.jpg")
    command = [sys.executable, "-m", "blit", "image", str(folder)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # (each line written at once: the first fails)
    child = subprocess.Popen(command + ["-o", str(tmp_path / "piped")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # (the reader gone before the first line)
    err = child.stderr.read().decode()
    assert child.wait(timeout=600) == 0, err
    assert err == ""
    assert sorted(os.listdir(tmp_path / "piped")) == ["a.png", "b.png", "c.png"]
    with open("/dev/full", "w") as full:
        run = subprocess.run(command + ["-o", str(tmp_path / "full")], stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ("styleblit: warning: the standard output could not be written (No "
                          "space left on device); the lines after that were dropped\n")
    assert sorted(os.listdir(tmp_path / "full")) == ["a.png", "b.png", "c.png"]
    # a standard error that cannot be written: a photo with no face, said there first,
    # stopped the whole folder's (nothing painted); both on a full disk: exit 0
    write_image(folder / "0_flat.png", np.full((64, 64, 3), 128, np.uint8))
    with open("/dev/full", "w") as full:
        run = subprocess.run(command + ["-o", str(tmp_path / "noerr")], stdout=full, stderr=full,
                             timeout=600)
    assert run.returncode == 1  # (one photo not stylized)
    assert sorted(os.listdir(tmp_path / "noerr")) == ["a.png", "b.png", "c.png"]
    (folder / "0_flat.png").unlink()
    with open("/dev/full", "w") as full:
        run = subprocess.run(command + ["-o", str(tmp_path / "both")], stdout=full, stderr=full,
                             timeout=600)
    assert run.returncode == 0
    assert sorted(os.listdir(tmp_path / "both")) == ["a.png", "b.png", "c.png"]
