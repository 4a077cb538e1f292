"""The Ray engine (blit.distributed): the same output as the local engine, in ranges.

One local Ray instance (2 CPUs) serves the whole module; the tests that need it
skip without Ray (it is the ``dist`` extra).
"""
import os
import re
import sys
from contextlib import contextmanager

import av
import cv2
import numba
import numpy as np
import pytest

from blit.cli import main
from blit.distributed import (OUTPUTS_FILE, Job, StylizerSpec, expand_inputs, named_inputs,
                              output_names, plan_ranges, stylize_videos, summary_table)
from blit.video import stylize_video
from guides.io import InputError, read_image, write_image

sys.path.insert(0, os.path.dirname(__file__))
from test_video import (ASTRONAUT, RATE, clip_frames, probe, style_png, write_clip,  # noqa: E402,F401
                        write_frames)

#: Ranges of 8 frames: a clip of 24 has two boundaries.
CHUNK = 8


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def style():
    from guides.exemplar import StyleExemplar
    from guides.landmarks import detect_landmarks

    image = cv2.resize(read_image(ASTRONAUT)[0:320, 110:410], (150, 160),
                       interpolation=cv2.INTER_AREA)
    return StyleExemplar.prepare(image, detect_landmarks(image), name="astro")


def faceless_frames(n, size=(96, 80)):
    """Smooth coloured noise drifting to the right: no face in it."""
    rng = np.random.default_rng(3)
    w, h = size
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (w + n, h),
                      interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(base[:, i:i + w]) for i in range(n)]


def read_frames(folder):
    names = sorted(os.listdir(folder))
    assert names == [f"frame_{i:06d}.png" for i in range(1, len(names) + 1)]
    return [read_image(os.path.join(folder, n)).astype(np.int16) for n in names]


def decoded(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24").astype(np.int16) for f in c.decode(video=0)]


@contextmanager
def one_numba_thread():
    """One Numba thread, as in a 1-CPU task: with more, the local engine
    itself differs from run to run by a level in a few head pixels (found
    here)."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def in_ranges(style, frames, n, tmp_path):
    """The ``n`` frames of the folder ``frames`` stylized on Ray in ranges
    of CHUNK with 4 warm-up frames (into ``tmp_path / "ray"``)."""
    job, = stylize_videos(style, [(frames, str(tmp_path / "ray"))], chunk_frames=CHUNK,
                          warmup=4, fps=RATE, quiet=True)
    assert (job.status, job.frames) == ("done", n)
    return read_frames(tmp_path / "ray")


def no_temporaries(folder):
    return not [n for n in os.listdir(folder) if n.startswith(".")]


# ------------------------------------------------------------------ no Ray needed

def test_plan_ranges_tile_the_video_with_warm_up():
    assert plan_ranges(20, 8, 3) == [(0, 0, 8), (5, 8, 16), (13, 16, 20)]
    assert plan_ranges(5, 8, 30) == [(0, 0, 5)]
    for n, chunk, warm in [(1, 1, 0), (97, 10, 4), (30, 7, 50)]:
        ranges = plan_ranges(n, chunk, warm)
        assert [f for _, f, _ in ranges] == list(range(0, n, chunk))
        assert ranges[-1][2] == n
        assert all(b == c for (_, _, b), (_, c, _) in zip(ranges, ranges[1:]))
        assert all(f - s == min(warm, f) for s, f, _ in ranges)
    with pytest.raises(ValueError, match="chunk_frames"):
        plan_ranges(10, 0)
    with pytest.raises(ValueError, match="warmup"):
        plan_ranges(10, 4, -1)


def test_engine_ray_without_ray_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    assert main(["video", src, "-o", str(tmp_path / "o.mp4"), "--engine", "ray"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'styleblit[dist]'" in err[0]
    assert main(["batch", src, "-o", str(tmp_path / "out")]) == 1
    assert "pip install 'styleblit[dist]'" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_ray_options_need_the_ray_engine(tmp_path, capsys):
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    assert main(["video", src, "-o", str(tmp_path / "o.mp4"), "--chunk-frames", "4"]) == 1
    assert "--chunk-frames needs --engine ray" in capsys.readouterr().err


def test_batch_inputs_folders_and_list_files(tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    for name in ("b.mp4", "a.MOV", "notes.txt", "poster.jpg"):
        (tmp_path / "videos" / name).write_bytes(b"")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.MOV").write_bytes(b"")
    frames = write_frames(tmp_path / "shot", faceless_frames(2))
    (tmp_path / "list.txt").write_text("# catalogue\nvideos/a.MOV\n\nmissing.mp4  # gone\n"
                                       "other/a.MOV\n")
    inputs = expand_inputs([str(tmp_path / "videos"), frames, str(tmp_path / "list.txt")])
    # a video named twice (by its folder and by the list) is stylized once, and said so;
    # so are the images a folder of videos holds, left out
    assert inputs == [str(tmp_path / "videos" / "a.MOV"), str(tmp_path / "videos" / "b.mp4"),
                      frames, str(tmp_path / "missing.mp4"), str(tmp_path / "other" / "a.MOV")]
    err = capsys.readouterr().err.splitlines()
    assert err == [f"styleblit: warning: {tmp_path / 'videos'}: its 1 image(s) are left out: a "
                   "folder of videos (a sequence of frames is a folder of its own)",
                   f"styleblit: warning: {tmp_path / 'videos' / 'a.MOV'}: named more than once; "
                   "stylized once"]
    outs = output_names(inputs, "OUT", "mp4")
    assert outs == [os.path.join("OUT", n) for n in ("a.mp4", "b.mp4", "shot.mp4", "missing.mp4",
                                                     "a-2.mp4")]
    assert output_names([frames], "OUT", "png") == [os.path.join("OUT", "shot")]
    # cameras' and the web's containers are videos too, in folders and on the command line;
    # a file of another ending is a list only if it is text
    (tmp_path / "cams").mkdir()
    for name in ("c.avi", "d.webm", "e.MTS", "f.mpg"):
        (tmp_path / "cams" / name).write_bytes(b"\x1a\x45\xdf\xa3\x00\xff")
    (tmp_path / "clip.dv").write_bytes(b"\x1f\x07\x00\x3f\xff\xfe")
    cams = sorted(str(p) for p in (tmp_path / "cams").iterdir())
    assert expand_inputs([str(tmp_path / "cams")]) == cams
    assert expand_inputs(cams + [str(tmp_path / "clip.dv")]) == cams + [str(tmp_path / "clip.dv")]
    # a photo is not read as a list of inputs, even when it does not exist
    for photo in (os.path.join(frames, os.listdir(frames)[0]), str(tmp_path / "me.JPG")):
        with pytest.raises(InputError, match=r"a still image; batch takes videos"):
            expand_inputs([photo])
    # a list's lines are read as inputs on the command line are (a folder's videos, a photo
    # refused), but a text file: a photo became a one-frame video, a text file a 136-frame one
    (tmp_path / "cams.txt").write_text("cams\n")
    assert expand_inputs([str(tmp_path / "cams.txt")]) == cams
    for line, says in (("me.JPG", "a still image"), ("list.txt", "a text file, not a video")):
        (tmp_path / "bad.txt").write_text(f"cams/c.avi\n{line}\n")
        with pytest.raises(InputError, match=rf"{line} \(named in .*bad.txt\): {says}"):
            expand_inputs([str(tmp_path / "bad.txt")])


def test_batch_searches_subfolders_and_keeps_their_tree(tmp_path, capsys):
    """A footage folder of days and shots: the videos of its subfolders are
    found, a subfolder of frames is one sequence, and the outputs keep the
    tree; the output folder inside it and hidden folders are not searched,
    and a link back up the tree is followed once."""
    root = tmp_path / "footage"
    for rel in ("day1/a.mp4", "day1/b.mov", "day2/a.mp4", "day2/late/c.mp4", "A.mp4",
                ".trash/x.mp4", "out/day1/a.mp4"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    write_frames(root / "shots", [])
    frames = write_frames(root / "shots" / "s1", faceless_frames(2))
    (root / "empty").mkdir()
    os.symlink(root, root / "day2" / "up")
    found = [(os.path.relpath(p, root), n) for p, n in named_inputs([str(root)],
                                                                   skip=[str(root / "out")])]
    assert found == [("A.mp4", "A"), ("day1/a.mp4", "day1/a"), ("day1/b.mov", "day1/b"),
                     ("day2/a.mp4", "day2/a"), ("day2/late/c.mp4", "day2/late/c"),
                     ("shots/s1", "shots/s1")]
    names = [n for _, n in found]
    outs = output_names([p for p, _ in found], "OUT", "mp4", names)
    assert outs == [os.path.join("OUT", *n.split("/")) + ".mp4" for n in names]
    # names unique whatever their case (one file on macOS' and Windows' file systems)
    assert output_names(["x/a.mp4", "y/A.mp4"], "OUT", "mp4") == [os.path.join("OUT", "a.mp4"),
                                                                   os.path.join("OUT", "A-2.mp4")]
    # the output folder named as the input folder is searched: its videos' outputs would
    # replace them, which is refused before any work
    assert named_inputs([str(root / "out")], skip=[str(root / "out")]) == [
        (str(root / "out" / "day1" / "a.mp4"), "day1/a")]
    assert main(["batch", "--engine", "local", "--quiet", str(root / "day1"), "-o",
                 str(root / "day1")]) == 1
    assert "the output would replace the input" in capsys.readouterr().err
    # a poster beside a shoot's folders is left out, not taken for a one-frame sequence
    # that hid the videos below it; a sequence keeps a subfolder of its own images (proxies)
    # as it was; a subfolder that cannot be read is left out, said, the rest stylized
    shoot = tmp_path / "shoot"
    (shoot / "cam").mkdir(parents=True)
    (shoot / "cam" / "clip.mp4").write_bytes(b"")
    write_image(shoot / "poster.png", np.zeros((8, 8, 3), np.uint8))
    seq = write_frames(shoot / "seq", faceless_frames(2))
    write_frames(shoot / "seq" / "proxy", faceless_frames(1))
    (shoot / "locked").mkdir()
    real = os.listdir

    def listdir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "listdir", listdir)
        found = named_inputs([str(shoot)])
    assert found == [(str(shoot / "cam" / "clip.mp4"), "cam/clip"), (seq, "seq")]
    err = capsys.readouterr().err
    assert f"{shoot}: its 1 image(s) are left out: a folder of folders" in err
    assert f"{shoot / 'locked'}: folder cannot be read (Permission denied); left out" in err
    # a folder with nothing to stylize in its whole tree is refused
    with pytest.raises(InputError, match=r"empty: folder holds no videos .* nor do its subfolders"):
        expand_inputs([str(root / "empty")])
    # end to end: a frame sequence two folders down comes out two folders down, and a second
    # run does not take the first run's outputs, inside the footage, for inputs
    tree = tmp_path / "tree"
    (tree / "day1").mkdir(parents=True)
    write_frames(tree / "day1" / "shot", faceless_frames(2))
    out = tree / "styled"
    for _ in range(2):
        assert main(["batch", "--engine", "local", "--quiet", str(tree), "-o", str(out),
                     "--format", "png", "--overwrite"]) == 0
        assert sorted(os.listdir(out / "day1" / "shot")) == ["frame_000001.png", "frame_000002.png"]
        assert sorted(os.listdir(out)) == [OUTPUTS_FILE, "day1"]
    capsys.readouterr()


def test_a_batch_again_gives_each_input_the_output_it_had(tmp_path, capsys):
    """A batch into a folder it wrote before: ``clip.mkv`` added beside
    ``clip.mp4`` took ``clip.mp4``'s output (``clip.mp4``, in name order,
    said "exists", exit 0) and ``clip.mp4`` was stylized again as
    ``clip-2.mp4``. Each input keeps its output, moved with its folder too;
    a new one gets a name no other output has."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    write_clip(src / "clip.mp4", n=3, audio=False)
    assert main(["batch", "--engine", "local", "-q", str(src), "-o", str(out)]) == 0
    assert probe(out / "clip.mp4")["frames"] == 3
    write_clip(src / "clip.mkv", n=4, audio=False)
    assert main(["batch", "--engine", "local", str(src), "-o", str(out)]) == 0
    table = capsys.readouterr().out
    assert re.search(r"clip\.mkv .*clip-2\.mp4 .*done", table), table
    assert re.search(r"clip\.mp4 .*clip\.mp4 .*exists", table), table
    assert probe(out / "clip.mp4")["frames"] == 3 and probe(out / "clip-2.mp4")["frames"] == 4
    # the footage moved: still its outputs, nothing made again
    os.rename(src, tmp_path / "moved")
    assert main(["batch", "--engine", "local", str(tmp_path / "moved"), "-o", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.count("exists") == 2 and "done" not in table, table
    # an output removed is made again under its name; another clip.mp4 gets a new one
    os.remove(out / "clip-2.mp4")
    (tmp_path / "b").mkdir()
    write_clip(tmp_path / "b" / "clip.mp4", n=2, audio=False)
    assert main(["batch", "--engine", "local", "-q", str(tmp_path / "moved"),
                 str(tmp_path / "b" / "clip.mp4"), "-o", str(out)]) == 0
    assert probe(out / "clip-2.mp4")["frames"] == 4 and probe(out / "clip-3.mp4")["frames"] == 2
    assert sorted(os.listdir(out)) == [OUTPUTS_FILE, "clip-2.mp4", "clip-3.mp4", "clip.mp4"]
    # a file that cannot be read: said, the names as with none
    (out / OUTPUTS_FILE).write_text("{")
    capsys.readouterr()
    assert output_names([str(src / "x.mp4")], str(out), "mp4") == [str(out / "x.mp4")]
    assert f"{out / OUTPUTS_FILE}: cannot be read" in capsys.readouterr().err


def test_a_batch_never_replaces_the_user_s_own_videos_in_the_output_folder(tmp_path, capsys):
    """``batch b10 -o b10/a --overwrite``: the videos of b10/a, the output
    folder inside the named one, were left out unsaid, and b10/clip.mp4's
    output replaced the user's own b10/a/clip.mp4. Now the videos left out
    are said, and a file no batch recorded making is refused before any
    work, kept as "exists" without --overwrite (and not recorded then, which
    let a later --overwrite replace it); a batch's own outputs are still
    replaced with --overwrite."""
    import hashlib
    import importlib.util

    def md5(path):
        return hashlib.md5(open(path, "rb").read()).hexdigest()

    root, out = tmp_path / "b10", tmp_path / "b10" / "a"
    out.mkdir(parents=True)
    write_clip(root / "clip.mp4", n=2, audio=False)
    write_clip(out / "clip.mp4", n=3, audio=False)
    write_clip(out / "other.mp4", n=3, audio=False)
    mine = {n: md5(out / n) for n in ("clip.mp4", "other.mp4")}
    left = (f"styleblit: warning: {out}: the output folder is not searched: 2 input(s) in it are "
            f"left out ({out / 'clip.mp4'}, {out / 'other.mp4'}); name them to stylize them")
    batch = ["batch", "--engine", "local", str(root), "-o", str(out)]
    assert main(batch + ["-q"]) == 0
    captured = capsys.readouterr()
    assert left in captured.err.splitlines(), captured.err
    assert re.search(r"clip\.mp4 .*clip\.mp4 .*exists: not an output styleblit wrote",
                     captured.out), captured.out
    engines = ["local"] + (["ray"] if importlib.util.find_spec("ray") else [])
    for engine in engines:  # (refused before Ray starts; not recorded by the run before)
        assert main(batch[:2] + [engine] + batch[3:] + ["-q", "--overwrite"]) == 1
        captured = capsys.readouterr()
        assert captured.err.splitlines()[-1] == (
            f"styleblit: error: {out / 'clip.mp4'}: not an output styleblit wrote "
            f"({out / OUTPUTS_FILE} does not record it); the user's own files are never "
            "replaced, even with --overwrite, so move it or name another OUTDIR"), captured.err
        assert "Traceback" not in captured.err and captured.out == ""
    assert {n: md5(out / n) for n in mine} == mine
    # a batch's own outputs in a folder of the user's videos: said of those alone, and
    # replaced with --overwrite (its partial outputs are its own too)
    own = tmp_path / "own"
    own.mkdir()
    write_clip(own / "x.mp4", n=2, audio=False)
    assert main(["batch", "--engine", "local", "-q", str(own / "x.mp4"), "-o", str(out)]) == 0
    made = md5(out / "x.mp4")
    os.remove(own / "x.mp4")
    write_clip(own / "x.mp4", n=4, audio=False)
    capsys.readouterr()
    assert main(["batch", "--engine", "local", "-q", "--overwrite", str(own / "x.mp4"), "-o",
                 str(out)]) == 0
    assert md5(out / "x.mp4") != made and probe(out / "x.mp4")["frames"] == 4
    assert {n: md5(out / n) for n in mine} == mine
    (out / "x.partial.mp4").write_bytes(b"")  # (as an interrupted run leaves it)
    assert named_inputs([str(tmp_path)], skip=[str(out)]) == [(str(root / "clip.mp4"), "b10/clip"),
                                                              (str(own / "x.mp4"), "own/x")]
    assert left in capsys.readouterr().err.splitlines()
    # b10's own input, its output moved aside: made, and made again with --overwrite
    os.rename(out / "clip.mp4", tmp_path / "clip.mine.mp4")
    for _ in range(2):
        assert main(batch + ["-q", "--overwrite"]) == 0
        assert probe(out / "clip.mp4")["frames"] == 2
    err = capsys.readouterr().err
    assert f"1 input(s) in it are left out ({out / 'other.mp4'})" in err, err
    assert md5(tmp_path / "clip.mine.mp4") == mine["clip.mp4"]
    assert md5(out / "other.mp4") == mine["other.mp4"]


def test_kill_keeps_the_joined_frames_with_their_audio(tmp_path):
    """SIGTERM, taken as Ctrl-C: ray.init's own handler had replaced ours (no
    partial output, a hidden temporary file left), and the partial output of
    Ctrl-C kept all of the audio. In its own process and Ray instance."""
    import signal
    import subprocess
    import time

    pytest.importorskip("ray")
    src = write_clip(tmp_path / "long.mp4", n=1200, audio=True)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "blit.cli", "video", src, "-o", str(out),
                             "-q", "--engine", "ray", "--chunk-frames", "60"],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 180
    while time.time() < deadline:
        temps = [n for n in os.listdir(tmp_path) if n.startswith(".out.mp4")]
        if temps and os.path.getsize(tmp_path / temps[0]) > 20000:  # frames joined
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    # (Ray may abort the process as it cancels the tasks left, a bug of its own;
    # the partial output is saved before that)
    assert proc.returncode == 130 or "bug in Ray" in err, err
    assert "out.partial.mp4" in err or proc.returncode != 130
    assert sorted(os.listdir(tmp_path)) == ["long.mp4", "out.partial.mp4"]
    with av.open(str(tmp_path / "out.partial.mp4")) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        seconds = [float(s.duration * s.time_base) for s in (video, audio)]
        assert 0 < video.frames < 1200
    assert seconds[1] <= seconds[0] + 0.1, seconds  # the audio ends with the frames


def test_ctrl_c_pressed_again_still_ends_with_the_table(tmp_path):
    """Ctrl-C three times, 0.3 s apart, as users press it: the later ones hit
    Ray's shutdown, which crashed the process (a segfault, no table, no word
    of the partial output). In its own process and Ray instance."""
    import signal
    import subprocess
    import time

    pytest.importorskip("ray")
    src = write_clip(tmp_path / "long.mp4", n=1200, audio=True)
    proc = subprocess.Popen([sys.executable, "-m", "blit.cli", "batch", src, "-o",
                             str(tmp_path / "out"), "--chunk-frames", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline:
        temps = ([n for n in os.listdir(tmp_path / "out") if n != OUTPUTS_FILE]
                 if (tmp_path / "out").is_dir() else [])
        if temps and os.path.getsize(tmp_path / "out" / temps[0]) > 20000:  # frames joined
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
    out, err = proc.communicate(timeout=180)
    # (Ray may abort the process as it cancels the tasks left, a bug of its own that the
    # SIGTERM test above describes; the partial output is saved before that)
    assert proc.returncode == 130 or "bug in Ray" in err, (proc.returncode, err)
    assert sorted(os.listdir(tmp_path / "out")) == [OUTPUTS_FILE, "long.partial.mp4"]
    if proc.returncode == 130:
        assert f"interrupted: partial output in {tmp_path / 'out' / 'long.partial.mp4'}" in out


def test_a_cluster_address_that_takes_no_connection_is_one_line(tmp_path):
    """HOST:PORT, the form `ray start` prints: Ray retried it for ever."""
    import socket
    import subprocess

    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = write_clip(tmp_path / "a.mp4", n=2, audio=False)
    proc = subprocess.run([sys.executable, "-m", "blit.cli", "batch", src, "-o",
                           str(tmp_path / "out"), "--address", f"127.0.0.1:{port}", "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"styleblit: error: Ray: cannot connect to 127.0.0.1:{port} "
                                   "(Connection refused)")


def test_an_interrupted_join_of_frames_is_kept(tmp_path):
    # the partial PNG folder's sink was closed as a video's (close(complete=False)): a TypeError
    from blit.distributed import _save_partial
    from blit.video import _FolderSink, open_source

    frames = write_frames(tmp_path / "in", faceless_frames(3))
    for partial in ("out.partial", "out.partial-2"):
        job = Job(frames, str(tmp_path / "out"), status="running", frames=1,
                  _source=open_source(frames), _tmp=str(tmp_path / ".out.tmp"))
        job._sink = _FolderSink(job._tmp, job._source)
        job._sink.write(faceless_frames(1)[0], 0)
        _save_partial(job)
        assert (job.status, job.message) == ("interrupted",
                                             f"partial output in {tmp_path / partial}")
        assert os.listdir(tmp_path / partial) == ["frame_000001.png"]
        # a second interrupted join is saved beside the first, which is kept as it was
        # (here with a file of the user's: it was deleted)
        (tmp_path / "out.partial" / "notes.txt").write_text("mine")
    assert sorted(os.listdir(tmp_path / "out.partial")) == ["frame_000001.png", "notes.txt"]


def test_summary_table_has_one_row_per_job():
    jobs = [Job("a.mp4", "o/a.mp4", "done", 240, 12.0),
            Job("b.mp4", "o/b.mp4", "failed", message="b.mp4: cannot be decoded")]
    lines = summary_table(jobs).splitlines()
    assert lines[0].split() == ["input", "output", "frames", "seconds", "fps", "status"]
    assert lines[1].split() == ["a.mp4", "a.mp4", "240", "12.0", "20.0", "done"]
    assert lines[2].split()[:7] == ["b.mp4", "b.mp4", "0", "0.0", "-", "failed:", "cannot"]
    # inputs found in subfolders: their outputs' paths inside the output folder
    jobs = [Job("f/day1/a.mp4", "o/day1/a.mp4", "done", 1, 1.0),
            Job("f/day2/a.mp4", "o/day2/a.mp4", "done", 1, 1.0),
            Job("f/b.mp4", "o/b.mp4", "done", 1, 1.0)]
    assert [line.split()[1] for line in summary_table(jobs).splitlines()[1:]] == \
        [os.path.join("day1", "a.mp4"), os.path.join("day2", "a.mp4"), "b.mp4"]
    # a folder of frames as the output
    assert summary_table([Job("a.mp4", "o/a/", "done", 1, 1.0)]).splitlines()[1].split()[1] == "a"


# ------------------------------------------------------------------ on Ray

def test_faceless_clip_is_bit_identical_in_ranges(ray_local, style, tmp_path):
    """Without a face the stylizer has no state to carry: every frame equals
    the local engine's, and a video keeps frames, timing, rotation and audio."""
    frames = write_frames(tmp_path / "in", faceless_frames(20))
    stylize_video(style, frames, str(tmp_path / "local"), quiet=True, fps=RATE)
    job, = stylize_videos(style, [(frames, str(tmp_path / "ray"))], chunk_frames=6, warmup=2,
                          fps=RATE, quiet=True)
    assert (job.status, job.frames) == ("done", 20)
    local, ray = read_frames(tmp_path / "local"), read_frames(tmp_path / "ray")
    assert len(ray) == 20 and all(np.array_equal(a, b) for a, b in zip(local, ray))

    # a video file: 4 segments joined, audio copied, rotation kept
    src = str(tmp_path / "in.mp4")
    with av.open(src, "w") as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 96, 80, "yuv420p"
        v.set_display_rotation(90)
        for i, f in enumerate(faceless_frames(20)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    clip = write_clip(tmp_path / "clip.mp4", n=20)  # for its audio: muxed in below
    with av.open(clip) as a_in, av.open(src) as v_in, av.open(str(tmp_path / "av.mp4"), "w") as out:
        vs = out.add_stream_from_template(v_in.streams.video[0])
        vs.set_display_rotation(90)
        as_ = out.add_stream_from_template(a_in.streams.audio[0])
        for p in v_in.demux(v_in.streams.video[0]):
            if p.size:
                p.stream = vs
                out.mux(p)
        for p in a_in.demux(a_in.streams.audio[0]):
            if p.size:
                p.stream = as_
                out.mux(p)
    src = str(tmp_path / "av.mp4")
    stylize_video(style, src, str(tmp_path / "local.mp4"), quiet=True)
    job, = stylize_videos(style, [(src, str(tmp_path / "ray.mp4"))], chunk_frames=6, warmup=2,
                          quiet=True)
    assert job.status == "done"
    a, b = probe(tmp_path / "local.mp4"), probe(tmp_path / "ray.mp4")
    assert b == a and b["frames"] == 20 and b["rotation"] == 90
    assert b["streams"] == ["video", "audio"] and b["pts"] == probe(src)["pts"]
    # the frames differ by the encoder's noise alone (four short encodes instead of
    # one: about 3.6 levels from the source on this noise texture, 2.9 locally)
    source = decoded(src)
    for i, (x, y) in enumerate(zip(decoded(tmp_path / "local.mp4"), decoded(tmp_path / "ray.mp4"))):
        noise = np.abs(x - source[i]).mean()
        assert np.abs(y - source[i]).mean() < 2.0 * noise
        assert np.abs(y - source[i - 1]).mean() > 2.0 * noise  # and in order
    assert no_temporaries(tmp_path)


def test_face_clip_in_ranges_matches_the_local_engine(ray_local, style, tmp_path):
    """Ranges of 8 frames with 4 warm-up frames against one process.

    The first range starts where the local run starts, so its frames are
    bit-identical (with one Numba thread on both sides). Later ranges start
    with fresh face tracking, smoothing and patch coherence; the warm-up
    brings the landmarks together, but which exemplar patch a pixel keeps
    depends on its whole history, so a part of the painted pixels take other
    (equally good) patches. Measured on this
    clip: mean |difference| 0.31-0.85 levels per frame after a boundary
    (0.55-1.07 before the stream's temporal filter of the output; more
    without warm-up), none outside the painted head, and the painted head as
    far from the input in both. The bounds below leave about 50% headroom on
    the larger figures."""
    n = 24
    frames = write_frames(tmp_path / "in", clip_frames(n))
    with one_numba_thread():
        stylize_video(style, frames, str(tmp_path / "local"), quiet=True, fps=RATE)
    local, ray = read_frames(tmp_path / "local"), in_ranges(style, frames, n, tmp_path)
    inputs = [f.astype(np.int16) for f in clip_frames(n)]
    for i in range(CHUNK):
        np.testing.assert_array_equal(ray[i], local[i])
    painted_any = False
    for i in range(CHUNK, n):
        diff = np.abs(ray[i] - local[i])
        painted = np.abs(local[i] - inputs[i]).sum(-1) > 0
        painted_ray = np.abs(ray[i] - inputs[i]).sum(-1) > 0
        # a sliver at the head mask's edge may round differently; nothing beyond it
        head = cv2.dilate((painted | painted_ray).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert not diff[~head].any(), f"frame {i}: differences outside the head"
        assert diff.mean() < 1.6, f"frame {i}: mean difference {diff.mean():.2f}"
        painted_any |= painted.mean() > 0.05
        # equally stylized: the painted head is about as far from the input
        a = np.abs(local[i] - inputs[i])[painted].mean()
        b = np.abs(ray[i] - inputs[i])[painted].mean()
        assert abs(a - b) < 0.15 * a, f"frame {i}: {a:.1f} vs {b:.1f} from the input"
    assert painted_any


def test_a_large_face_is_painted_at_one_scale_in_every_range(ray_local, style, tmp_path):
    """A face 2.4 times as wide as the exemplar's: the driver chooses the
    video's scale once (first_face_scale, what the local engine's stream
    chooses on its first frame), and every range paints at it. The first
    range is bit-identical to the local engine; the later ones differ as in
    the test above (they would differ far more at another scale)."""
    from blit.video import first_face_scale

    n = 16
    clip = clip_frames(n, size=(256, 320), zoom=0.6)
    frames = write_frames(tmp_path / "in", clip)
    scale = first_face_scale(style, frames, fps=RATE)
    assert scale < 0.5
    assert StylizerSpec().for_video(style, frames, RATE).scale == scale
    assert StylizerSpec(scale=1.0).for_video(style, frames, RATE).scale == 1.0
    assert StylizerSpec(method="gan").for_video(style, frames, RATE).scale == "auto"  # (unused)
    with one_numba_thread():
        stylize_video(style, frames, str(tmp_path / "local"), quiet=True, fps=RATE)
        stylize_video(style, frames, str(tmp_path / "native"), quiet=True, fps=RATE, scale=1.0)
    local, ray = read_frames(tmp_path / "local"), in_ranges(style, frames, n, tmp_path)
    native = read_frames(tmp_path / "native")
    for i in range(CHUNK):
        np.testing.assert_array_equal(ray[i], local[i])
    for i in range(CHUNK, n):
        diff = np.abs(ray[i] - local[i]).mean()
        assert diff < 1.6, f"frame {i}: mean difference {diff:.2f}"
        assert diff < 0.5 * np.abs(native[i] - local[i]).mean()


def write_timed_clip(path, frames, pts, *, time_base, audio_seconds=0.0, format=None,
                     audio_start=0.0):
    """H.264 of ``frames`` at the timestamps ``pts`` (``time_base``), with a
    mono AAC sine of ``audio_seconds`` from time ``audio_start`` (``format``:
    "h264" for a raw stream, which has no timestamps)."""
    from fractions import Fraction

    with av.open(str(path), "w", format=format) as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        v.codec_context.time_base = time_base
        a = None
        if audio_seconds:
            a = c.add_stream("aac", rate=22050)
            a.layout = "mono"
        for f, t in zip(frames, pts):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts, frame.time_base = t, time_base
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        if a is not None:
            n = int(22050 * audio_seconds)
            pcm = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 22050)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
            af.sample_rate, af.time_base = 22050, Fraction(1, 22050)
            af.pts = round(audio_start * 22050)
            c.mux(a.encode(af))
            c.mux(a.encode(None))
    return str(path)


def audio_pts(path):
    with av.open(str(path)) as c:
        return [p.pts for p in c.demux(c.streams.audio[0]) if p.size]


def frame_times(path):
    with av.open(str(path)) as c:
        return [round(float(f.time), 5) for f in c.decode(video=0)]


def test_late_video_variable_rate_and_raw_streams_join_as_locally(ray_local, style, tmp_path):
    """Ranges joined into one file keep what one local run keeps: the audio
    before a video that starts late (a seek to index the video moved the
    audio to its first key frame), a variable frame rate (frames 1, 2 and 4
    ticks apart, and a pause of 30: the decode times of a delay in time over
    the widest gaps, not of a delay in frames, moved every frame of the MP4
    34 ms before its time and the audio's), and a raw
    H.264 stream, which has no timestamps (timed by its frame rate, and
    read again from the start where it cannot seek)."""
    from fractions import Fraction

    frames = faceless_frames(18)
    tb = Fraction(1, 90000)
    gaps = [3000, 6000, 12000, 3000, 3000, 12000, 6000, 3000, 12000, 90000, 3000, 3000, 6000,
            3000, 12000, 3000, 6000]
    pts = list(45000 + np.concatenate([[0], np.cumsum(gaps)]))  # from 0.5 s
    src = write_timed_clip(tmp_path / "vfr.mp4", frames, pts, time_base=tb, audio_seconds=2.0)
    stylize_video(style, src, str(tmp_path / "local.mp4"), quiet=True)
    for chunk in (5, 6, 7):
        out = tmp_path / f"ray{chunk}.mp4"
        job, = stylize_videos(style, [(src, str(out))], chunk_frames=chunk, warmup=2, quiet=True)
        assert (job.status, job.frames) == ("done", 18), job.message
        assert frame_times(out) == frame_times(tmp_path / "local.mp4") == frame_times(src)
        assert audio_pts(out) == audio_pts(tmp_path / "local.mp4") == audio_pts(src)
        assert audio_pts(src)[0] <= 0  # (the audio does start before the video)
    # a camcorder's transport stream, its clock at 600 s: the outputs start at 0 (an .mp4
    # opened with 600 s of nothing), the audio before the video by as much as in the input
    ts = write_timed_clip(tmp_path / "cam.mts", frames[:12], [54_009_000 + 3000 * k for k in range(12)],
                          time_base=tb, audio_seconds=0.6, audio_start=600.0, format="mpegts")
    stylize_video(style, ts, str(tmp_path / "ts_local.mp4"), quiet=True)
    job, = stylize_videos(style, [(ts, str(tmp_path / "ts_ray.mp4"))], chunk_frames=5, warmup=2,
                          quiet=True)
    assert job.status == "done", job.message

    def starts(path):
        with av.open(str(path)) as c:
            return [float(s.start_time * s.time_base) for s in c.streams], c.duration / 1e6

    (video, audio), _ = starts(ts)
    assert 599.9 < audio < 600 < video < 600.2  # (the AAC encoder's priming comes first)
    for out in ("ts_local.mp4", "ts_ray.mp4"):
        (v, a), seconds = starts(tmp_path / out)
        assert abs(a) < 0.001 and abs(v - (video - audio)) < 0.001 and seconds < 1.0, (v, a)
    assert frame_times(tmp_path / "ts_ray.mp4") == frame_times(tmp_path / "ts_local.mp4")
    assert audio_pts(tmp_path / "ts_ray.mp4") == audio_pts(tmp_path / "ts_local.mp4")
    raw = write_timed_clip(tmp_path / "raw.h264", frames[:12], range(12), time_base=Fraction(1, RATE),
                           format="h264")
    stylize_video(style, raw, str(tmp_path / "raw_local.mp4"), quiet=True)
    job, = stylize_videos(style, [(raw, str(tmp_path / "raw_ray.mp4"))], chunk_frames=5, warmup=2,
                          quiet=True)
    assert job.status == "done", job.message
    for out in ("raw_local.mp4", "raw_ray.mp4"):
        times = np.diff(frame_times(tmp_path / out))
        assert len(times) == 11 and np.allclose(times, times[0]) and 1 / 61 < times[0] < 1 / 23
    assert no_temporaries(tmp_path)


@pytest.mark.parametrize("how", ["jump", "lost"])
def test_a_damaged_timestamp_in_a_transport_stream_joins_as_locally(ray_local, style, tmp_path,
                                                                    capsys, how):
    """One video packet's damaged header in a transport stream (see
    test_video's test_a_video_packet_with_a_damaged_timestamp_in_a_transport_stream):
    its timestamp 13 hours on, the ranges failed as clips joined end to
    end; now the index leaves its packet out, the ranges its frame, and
    the joined file has the local run's frames and times, with one line.
    Its timestamp gone, the frames are the local run's (timed to a
    millisecond: the index has a frame without a timestamp, so the
    ranges keep their segments' own times)."""
    from test_video import as_transport_stream, damaged_pes_header

    src = as_transport_stream(write_clip(tmp_path / "in.mp4", n=24, audio=False),
                              tmp_path / "in.ts")
    damaged = damaged_pes_header(src, tmp_path / f"{how}.ts", 10, how)
    stylize_video(style, damaged, str(tmp_path / "local.mp4"), quiet=True)
    capsys.readouterr()
    out = tmp_path / "ray.mp4"
    job, = stylize_videos(style, [(damaged, str(out))], chunk_frames=CHUNK, warmup=2, quiet=True)
    assert job.status == "done", job.message
    local, ray = frame_times(tmp_path / "local.mp4"), frame_times(out)
    if how == "jump":
        assert job.frames == len(local) == 23 and ray == local
        assert re.fullmatch(rf"styleblit: warning: {re.escape(damaged)}: 1 damaged video "
                            r"packet\(s\) skipped \(the first at 0\.\d\d s: its timestamp jumps "
                            r"to 47722\.\d\d s\); the frames before and after them kept\n",
                            capsys.readouterr().err)
    else:
        assert job.frames == len(local) == 24 and np.allclose(ray, local, atol=0.001)
        assert capsys.readouterr().err == ""
    assert no_temporaries(tmp_path)


def test_a_range_stopped_by_damaged_data_says_why(ray_local, style, tmp_path, capsys):
    """Two damaged packets in the middle: the local engine skips them and
    keeps the frames after them (test_video); a range stops there, and the
    frames after it are dropped. The line said only "decoding stopped";
    now it gives the reason and the engine that keeps the rest."""
    from test_video import damaged_packets

    damaged = damaged_packets(write_clip(tmp_path / "in.mp4", n=24, audio=False),
                              tmp_path / "damaged.mp4", (12, 13))
    out = tmp_path / "ray.mp4"
    job, = stylize_videos(style, [(str(damaged), str(out))], chunk_frames=CHUNK, warmup=2,
                          quiet=True)
    assert job.status == "done" and 0 < job.frames < 24
    assert capsys.readouterr().err == (
        f"styleblit: warning: {damaged}: decoding stopped after {job.frames} frames (Invalid "
        "data found when processing input); kept the frames decoded (--engine local skips "
        "damaged packets and keeps the frames after them)\n")
    assert probe(out)["frames"] == job.frames


def test_the_spec_builds_its_stylizer_with_the_flow_engine_given(style):
    """`video --engine ray --flow-engine blit` reaches the workers' stylizers."""
    with StylizerSpec(flow_engine="blit")(style, 24.0) as stylizer:
        assert stylizer.flow_engine == "blit"
    with StylizerSpec()(style, 24.0) as stylizer:
        assert stylizer.flow_engine == "opencv"  # (auto, on the CPU)


def test_a_range_the_seek_misses_is_decoded_from_the_start(tmp_path):
    # a seek in a transport stream lands between key frames: nothing of the range
    # decoded, and the range came back empty (its job "done", frames missing)
    from fractions import Fraction

    from blit.video import open_source

    ts = write_timed_clip(tmp_path / "cam.ts", faceless_frames(12), [3000 * k for k in range(12)],
                          time_base=Fraction(1, 90000), format="mpegts")
    whole = [item for item in open_source(ts) if item[0] == "video"]
    for trust_the_seek in (False, True):
        source = open_source(ts)
        pts = source.index()
        source.trusts_seeks = trust_the_seek  # (False: it decodes from the start at once)
        got = list(source.read_range(5, 12, pts[5:12]))
        assert [item[2] for item in got] == [item[2] for item in whole[5:]]
        for a, b in zip(got, whole[5:]):
            np.testing.assert_array_equal(a[1], b[1])
        source.close()


def test_a_bad_input_fails_alone_and_outputs_are_kept(ray_local, style, tmp_path):
    good = write_frames(tmp_path / "good", faceless_frames(10))
    src = write_clip(tmp_path / "in.mp4", n=10)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(open(src, "rb").read()[:3000])
    kept = tmp_path / "kept.mp4"
    kept.write_bytes(b"precious")
    silent = write_clip(tmp_path / "silent.mp4", n=10, audio=False)
    jobs = stylize_videos(style, [(str(broken), str(tmp_path / "o1.mp4")),
                                  (silent, str(tmp_path / "o2.mp4")),
                                  (str(tmp_path / "nope.mp4"), str(tmp_path / "o3.mp4")),
                                  (good, str(kept))],
                          chunk_frames=4, warmup=1, fps=RATE, quiet=True)
    assert [j.status for j in jobs] == ["failed", "done", "failed", "exists"]
    assert "broken.mp4" in jobs[0].message and "no such file" in jobs[2].message
    assert probe(tmp_path / "o2.mp4")["frames"] == 10
    assert kept.read_bytes() == b"precious"
    assert not (tmp_path / "o1.mp4").exists() and no_temporaries(tmp_path)


def test_more_cpus_or_gpus_per_range_than_the_cluster_has_is_refused(ray_local, style, tmp_path):
    """(Ray waited for such a node for ever, saying so every half minute.)"""
    frames = write_frames(tmp_path / "in", faceless_frames(4))
    for kwargs, says in (({"cpus_per_chunk": 1000}, r"--cpus-per-chunk 1000: the Ray cluster "
                          r"has \d+ CPUs in all, so no range could start"),
                         ({"gpus_per_chunk": 1000}, r"--gpus-per-chunk 1000: the Ray cluster has "
                          r"\d+ GPUs in all")):
        with pytest.raises(InputError, match=says):
            stylize_videos(style, [(frames, str(tmp_path / "out"))], quiet=True, **kwargs)
    assert os.listdir(tmp_path) == ["in"]


def test_a_worker_that_dies_has_its_range_retried(ray_local, style, tmp_path):
    marker = tmp_path / "died-once"

    class DiesOnce(StylizerSpec):
        """The first range to start kills its worker process."""

        def __call__(self, style, fps):
            try:  # atomic: of two ranges starting at once, only one dies
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return super().__call__(style, fps)
            os._exit(1)

    frames = write_frames(tmp_path / "in", faceless_frames(12))
    job, = stylize_videos(style, [(frames, str(tmp_path / "out"))], spec=DiesOnce(),
                          chunk_frames=4, warmup=1, fps=RATE, max_retries=2, quiet=True)
    assert marker.exists() and (job.status, job.frames) == ("done", 12)
    stylize_video(style, frames, str(tmp_path / "local"), quiet=True, fps=RATE)
    assert all(np.array_equal(a, b) for a, b in zip(read_frames(tmp_path / "out"),
                                                     read_frames(tmp_path / "local")))
    # without retries the same death fails the job, and only it
    marker.unlink()
    jobs = stylize_videos(style, [(frames, str(tmp_path / "out2")),
                                  (frames, str(tmp_path / "out3"))],
                          spec=DiesOnce(), chunk_frames=12, fps=RATE, max_retries=0, quiet=True)
    assert sorted(j.status for j in jobs) == ["done", "failed"]
    failed = next(j for j in jobs if j.status == "failed")
    assert "died" in failed.message or "crash" in failed.message.lower(), failed.message
    assert failed.message.startswith(f"{frames}: "), failed.message  # (it said "its worker ...")
    assert not os.path.exists(failed.output) and no_temporaries(tmp_path)


def test_gan_ranges_are_bit_identical(ray_local, tmp_path):
    """The GAN has no state across frames: no warm-up, the same frames."""
    pytest.importorskip("torch")
    from test_gan import TINY_D, TINY_G, tiny_config
    from gan_distill.data import SHARD_PATTERN
    from gan_distill.train import train

    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)
    shard = tmp_path / SHARD_PATTERN.format(0)
    np.savez_compressed(shard, input=inputs, target=255 - inputs,
                        mask=np.full(inputs.shape[:3], 255, np.uint8))
    model = str(tmp_path / "m.pt")
    train([str(shard)], model, config=tiny_config(steps=2), generator_config=TINY_G,
          discriminator_config=TINY_D, device="cpu", quiet=True, log=[])
    frames = write_frames(tmp_path / "in", faceless_frames(10))
    stylize_video(None, frames, str(tmp_path / "local"), quiet=True, fps=RATE, method="gan",
                  model=model)
    job, = stylize_videos(None, [(frames, str(tmp_path / "ray"))], chunk_frames=4, fps=RATE,
                          spec=StylizerSpec(method="gan", model=model), quiet=True)
    assert job.status == "done", job.message
    local, ray = read_frames(tmp_path / "local"), read_frames(tmp_path / "ray")
    assert len(local) == len(ray) == 10
    differences = [int(np.abs(a - b).max()) for a, b in zip(local, ray)]
    assert differences == [0] * 10, differences


def test_batch_cli_runs_on_the_connected_cluster(ray_local, style, tmp_path, capsys):
    good = write_clip(tmp_path / "a.mp4", n=6)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    listing = tmp_path / "inputs.txt"
    listing.write_text("a.mp4\nbad.mp4\n")
    out = tmp_path / "out"
    code = main(["batch", str(listing), "-o", str(out), "--chunk-frames", "4",
                 "--warmup-frames", "2", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert "bad.mp4" in captured.err and "Traceback" not in captured.err
    rows = captured.out.strip().splitlines()
    assert len(rows) == 3 and "done" in rows[1] and "failed" in rows[2]
    info = probe(out / "a.mp4")
    assert info["frames"] == 6 and info["pts"] == probe(good)["pts"]
    assert sorted(os.listdir(out)) == [OUTPUTS_FILE, "a.mp4"]
    # again: the output exists and is kept; with --overwrite it is replaced
    assert main(["batch", str(good), "-o", str(out), "-q"]) == 0
    assert "exists" in capsys.readouterr().out
    assert main(["video", good, "-o", str(out / "a.mp4"), "--engine", "ray", "--overwrite",
                 "--chunk-frames", "3", "-q"]) == 0
    assert probe(out / "a.mp4")["frames"] == 6
    # an .mkv's frame rate (the segments' MP4 time scale, 15360, was written as it)
    assert main(["video", good, "-o", str(out / "a.mkv"), "--engine", "ray",
                 "--chunk-frames", "3", "-q"]) == 0
    with av.open(str(out / "a.mkv")) as c:
        assert c.streams.video[0].average_rate == RATE
    # a file cut short is said as the local engine says it (Ray said nothing)
    whole = open(write_clip(tmp_path / "whole.mp4", n=24, faststart=True), "rb").read()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) * 6 // 10])
    assert main(["video", str(tmp_path / "cut.mp4"), "-o", str(out / "cut.mp4"), "--engine",
                 "ray", "--chunk-frames", "4", "-q"]) == 0
    kept = probe(out / "cut.mp4")["frames"]
    err = capsys.readouterr().err
    held = re.search(r"cut\.mp4: holds (\d+) of the 24 frames its header lists \(is the file "
                     r"cut short\?\)", err)
    assert held and kept <= int(held.group(1)) < 24, err  # (the last packets held may not decode)


def test_ray_summary_counts_the_frames_written_with_a_face(ray_local, style_png, tmp_path,
                                                           capsys):
    """As the local engine's: three frames of a wall, then three of the face,
    in ranges of two whose warm-up frames (painted, not written) are not
    counted; a clip without a face is said."""
    wall = [np.full((160, 128, 3), 90 + 10 * i, np.uint8) for i in range(3)]
    src = write_frames(tmp_path / "in", wall + clip_frames(3))
    out = str(tmp_path / "out")
    assert main(["video", "--style", style_png, src, "-o", out, "--engine", "ray",
                 "--chunk-frames", "2", "--warmup-frames", "2"]) == 0
    assert re.search(r"\(6 frames, a face on 3, [\d.]+ fps\)$", capsys.readouterr().out.strip())
    walls = write_frames(tmp_path / "walls", wall)
    assert main(["video", "--style", style_png, walls, "-o", str(tmp_path / "w"),
                 "--engine", "ray", "--chunk-frames", "2"]) == 0
    captured = capsys.readouterr()
    assert "no face found in any of its 3 frames; they are written unchanged" in captured.err
    assert "(3 frames, a face on 0, " in captured.out


def test_ray_s_token_authentication_notice_is_not_shown_for_a_local_instance():
    """Ray's notice that it turned token authentication on (as it does by
    default for a local instance) came on every run; its other warnings
    still come through."""
    import logging

    from blit.distributed import _quiet_local_auth

    _quiet_local_auth(None)
    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage()[:30])
    logger.addHandler(handler)
    try:
        logger.warning("Token authentication is enabled for this Ray cluster. Set ...")
        logger.warning("Token authentication is disabled for this Ray cluster. Anyone ...")
    finally:
        logger.removeHandler(handler)
    assert seen == ["Token authentication is disabl"]
