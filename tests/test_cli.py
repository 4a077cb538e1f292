"""The styleblit command line: the default job, exit codes and error lines."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from blit.cli import main
from guides.io import read_image, write_image


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


def test_prepare_style_writes_a_loadable_cache(tmp_path, capsys):
    from guides.exemplar import StyleExemplar

    out = tmp_path / "style.npz"
    assert main(["prepare-style", "-o", str(out)]) == 0
    assert "prepared in" in capsys.readouterr().out
    style = StyleExemplar.load(out)
    assert style.nbytes <= 16 * 2**20
    img = tmp_path / "o.png"
    assert main(["image", "--style", str(out), "-o", str(img)]) == 0


def test_bad_option_values_are_usage_errors(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["image", "-o", str(tmp_path / "o.png"), "--voting", "3"])
    assert exc.value.code == 2


def test_console_script_runs(tmp_path):
    out = tmp_path / "o.png"
    env = dict(os.environ, STYLEBLIT_CACHE=str(tmp_path / "cache2"))
    proc = subprocess.run([sys.executable, "-m", "blit.cli", "image", "-o", str(out), "-q"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and "Traceback" not in proc.stderr


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
    the stream; it is for the patch method only, and not for Ray's workers."""
    import types

    from blit import gpu, video, webcam

    seen = []
    monkeypatch.setattr(video, "check_video_args", lambda args: types.SimpleNamespace(name="s"))
    monkeypatch.setattr(video, "stylize_video", lambda *a, **k: seen.append(k["device"]) or 1)
    monkeypatch.setattr(webcam, "run_webcam", lambda *a, **k: seen.append(k["device"]) or {})
    argv = _device_argv(command, tmp_path)
    assert main(argv) == 0
    assert main(argv + ["--device", "cpu"]) == 0
    assert main(argv + ["--device", "auto"]) == 0
    assert seen == ["cpu", "cpu", "cuda" if gpu.available() else "cpu"]
    assert main(argv + ["--method", "gan", "--model", "m.pt", "--device", "cpu"]) == 1
    assert "--device is for --method patch" in capsys.readouterr().err
    if command == "video":
        assert main(argv + ["--engine", "ray", "--device", "cuda"]) == 1
        assert "use --engine local" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(argv + ["--device", "gpu"])
