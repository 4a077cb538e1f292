"""`styleblit video` and `styleblit webcam`: files in and out, audio, Ctrl-C, bad input."""
import errno
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import av
import cv2
import matplotlib
import numpy as np
import pytest
import skimage

from blit.cli import main
from blit.video import open_source, partial_path, stylize_video
from blit.webcam import LatestFrame
from guides.io import InputError, read_image, write_image

HOPPER = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
ASTRONAUT = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
RATE = 24
SAMPLE_RATE = 22050


@pytest.fixture(scope="module")
def style_png(tmp_path_factory):
    """A small style image with its landmarks beside it (as FaceBlit's styles come)."""
    from guides.landmarks import detect_landmarks, write_lm68

    folder = tmp_path_factory.mktemp("style")
    image = cv2.resize(read_image(ASTRONAUT)[0:320, 110:410], (150, 160), interpolation=cv2.INTER_AREA)
    path = folder / "astro.png"
    write_image(path, image)
    write_lm68(folder / "astro.lm68.txt", detect_landmarks(image))
    return str(path)


def clip_frames(n, size=(128, 160), zoom=0.3):
    """The photo, moved and zoomed a little from frame to frame (at the
    default ``zoom`` the face is 1.2 times as wide as ``style_png``'s)."""
    image = read_image(HOPPER)
    w, h = size
    frames = []
    k = zoom / 0.3
    for i in range(n):
        s = zoom * (1 + 0.04 * np.sin(i / 4.0))
        m = np.float32([[s, 0, k * (-30 + 4 * np.sin(i / 5.0))], [0, s, -20 * k]])
        frames.append(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return frames


def write_frames(folder, frames):
    """The frames as a folder of PNGs (name order), a video input; its path."""
    folder.mkdir()
    for i, f in enumerate(frames):
        write_image(folder / f"f{i:03d}.png", f)
    return str(folder)


def write_clip(path, n=20, size=(128, 160), audio=True, rotation=0, zoom=0.3, faststart=False,
               movflags=None, tags=None, sar=None, chapters=None, start=0):
    """H.264 clip of ``n`` frames at 24 fps, with a 440 Hz AAC sine of the
    same length (``faststart``: the index at the start, as for streaming;
    ``movflags``: the .mp4 muxer's, e.g. fragmented; ``tags``: a dict of the
    file's, the video's and the audio's tags, keys ``""``, ``"video"``,
    ``"audio"``; ``sar``: the pixels' aspect ratio; ``chapters``: PyAV's;
    ``start``: the first frame's timestamp, in frames)."""
    movflags = movflags or ("faststart" if faststart else None)
    tags = tags or {}
    with av.open(str(path), "w", options={"movflags": movflags} if movflags else {}) as c:
        c.metadata.update(tags.get("", {}))
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        v.metadata.update(tags.get("video", {}))
        if sar:
            v.sample_aspect_ratio = sar
        if rotation:
            v.set_display_rotation(rotation)
        if chapters:
            c.set_chapters(chapters)
        a = None
        if audio:
            a = c.add_stream("aac", rate=SAMPLE_RATE)
            a.layout = "mono"
            a.metadata.update(tags.get("audio", {}))
        for i, f in enumerate(clip_frames(n, size, zoom)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i + start
            c.mux(v.encode(frame))
        if a is not None:
            total = SAMPLE_RATE * n // RATE
            t = np.arange(total) / SAMPLE_RATE
            pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for k in range(0, total, 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, k:k + 1024]),
                                                format="fltp", layout="mono")
                af.sample_rate, af.pts = SAMPLE_RATE, k + SAMPLE_RATE * start // RATE
                c.mux(a.encode(af))
            c.mux(a.encode(None))
        c.mux(v.encode(None))
    return str(path)


def probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f for f in c.decode(video=0)]
        info = {"frames": len(frames), "rate": v.average_rate, "size": (v.width, v.height),
                "rotation": frames[0].rotation if frames else None,
                "streams": [s.type for s in c.streams],
                "codec": v.codec_context.name, "pts": [f.pts for f in frames]}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            samples = sum(f.samples for f in c.decode(audio=0))
            info["audio_s"] = samples / a.rate
    return info


#: The command line in a child process (``python -m blit.cli`` would register the
#: subcommands on a second copy of the module).
CLI = [sys.executable, "-c", "import sys; from blit.cli import main; sys.exit(main())"]


def run_cli(*args, timeout=120):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------ round trip

def test_round_trip_keeps_frames_rate_timing_and_audio(tmp_path, style_png):
    src = write_clip(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    assert main(["video", "--style", style_png, src, "-o", str(out), "--quiet"]) == 0
    a, b = probe(src), probe(out)
    assert b["codec"] == "h264" and b["streams"] == ["video", "audio"]
    assert b["frames"] == a["frames"] == 20
    assert b["rate"] == a["rate"] == RATE
    assert b["pts"] == a["pts"]
    assert b["audio_s"] == pytest.approx(a["audio_s"], abs=1e-6)
    assert b["audio_s"] == pytest.approx(20 / RATE, abs=0.05)
    # the face is painted, the rest kept
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="bgr24")
    diff = np.abs(first.astype(int) - clip_frames(1)[0]).sum(-1) > 40
    assert 0.03 < diff.mean() < 0.6
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary left


def test_summary_says_on_how_many_frames_a_face_was_painted(tmp_path, style_png, capsys):
    # three frames of a wall, then three of the face: the summary line counts them
    wall = [np.full((160, 128, 3), 90 + 10 * i, np.uint8) for i in range(3)]
    src = write_frames(tmp_path / "in", wall + clip_frames(3))
    out = str(tmp_path / "out")
    assert main(["video", "--style", style_png, src, "-o", out]) == 0
    assert re.search(r"\(6 frames, a face on 3, [\d.]+ fps\)$", capsys.readouterr().out.strip())
    assert main(["video", "--style", style_png, src, "-o", out, "--overwrite",
                 "--max-faces", "2"]) == 0
    assert re.search(r"\(6 frames, a face on 3, [\d.]+ fps\)$",  # (one face at most)
                     capsys.readouterr().out.strip())
    pairs = [np.hstack([f, f]) for f in clip_frames(2)]  # (two faces a frame)
    assert main(["video", "--style", style_png, write_frames(tmp_path / "two", pairs),
                 "-o", out, "--overwrite", "--max-faces", "2"]) == 0
    assert "(2 frames, faces on all, up to 2 on one, " in capsys.readouterr().out
    assert main(["video", "--style", style_png, write_frames(tmp_path / "face", clip_frames(2)),
                 "-o", out, "--overwrite"]) == 0
    assert "(2 frames, a face on all, " in capsys.readouterr().out


def test_progress_is_a_line_now_and_then_when_stderr_is_not_a_terminal(tmp_path, style_png,
                                                                       capsys, monkeypatch):
    """Under nohup or a scheduler the progress bar is off; a long run said
    nothing until its summary. Now a line every LOG_EVERY seconds (here
    every frame); none with -q."""
    from blit import video

    monkeypatch.setattr(video, "LOG_EVERY", 0.0)
    src = write_frames(tmp_path / "in", clip_frames(3))
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o")]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("styleblit: 1 frames of 3 (33 %), about ")
    assert re.fullmatch(r"styleblit: 3 frames of 3 \(100 %\), about 0\.0 min left, [\d.]+ fps",
                        lines[2])
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o"), "-q",
                 "--overwrite"]) == 0
    assert capsys.readouterr().err == ""


def test_odd_size_and_rotation_are_kept(tmp_path, style_png):
    src = write_clip(tmp_path / "in.mp4", n=6, size=(130, 162), audio=False, rotation=90)
    out = tmp_path / "out.mkv"
    assert main(["video", "--style", style_png, src, "-o", str(out), "--quiet"]) == 0
    info = probe(out)
    assert info["frames"] == 6 and info["rotation"] == 90 and info["size"] == (130, 162)
    assert info["streams"] == ["video"]
    # odd frames from a folder are padded to even
    frames = tmp_path / "odd"
    frames.mkdir()
    for i, f in enumerate(clip_frames(3, (127, 161))):
        write_image(frames / f"f{i:02d}.png", f)
    out = tmp_path / "odd.mp4"
    assert main(["video", "--style", style_png, str(frames), "-o", str(out), "--fps", "12",
                 "--quiet"]) == 0
    info = probe(out)
    assert info["frames"] == 3 and info["size"] == (128, 162) and info["rate"] == 12


def test_folder_of_frames_in_and_out(tmp_path, style_png):
    src = write_clip(tmp_path / "in.mp4", n=5)
    out = tmp_path / "frames"
    assert main(["video", "--style", style_png, src, "-o", str(out), "--quiet"]) == 0
    names = sorted(os.listdir(out))
    assert names == [f"frame_{i:06d}.png" for i in range(1, 6)]
    assert read_image(out / names[0]).shape == (160, 128, 3)
    again = tmp_path / "again"
    assert main(["video", "--style", style_png, str(out), "-o", str(again), "--quiet"]) == 0
    assert len(os.listdir(again)) == 5


def test_a_frame_of_another_size_in_a_folder_is_stretched_to_the_first(tmp_path, style_png,
                                                                         capsys):
    # A folder whose fourth frame was exported at another size stopped there with an
    # error, the frames before it stylized for nothing. It takes the first's size, said
    # once, in a video output as in a folder of frames, as a video file's frames do
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(clip_frames(6, (120, 96))):
        if i in (3, 4):
            f = cv2.resize(f, (150, 100))
        write_image(frames / f"f{i:02d}.png", f)
    out = tmp_path / "out.mp4"
    assert main(["video", "--style", style_png, str(frames), "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("stretched to the first's") == 1 and "f03.png: 150x100, not 120x96" in err
    info = probe(out)
    assert info["frames"] == 6 and info["size"] == (120, 96)
    folder = tmp_path / "out_frames"
    assert main(["video", "--style", style_png, str(frames), "-o", str(folder), "--quiet"]) == 0
    assert "f03.png: 150x100" in capsys.readouterr().err
    assert [read_image(folder / n).shape for n in sorted(os.listdir(folder))] == [(96, 120, 3)] * 6


def test_existing_output_is_not_replaced_without_overwrite(tmp_path, style_png, capsys):
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    assert main(["video", "--style", style_png, src, "-o", str(out), "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["video", "--style", style_png, src, "-o", str(out), "--quiet", "--overwrite"]) == 0
    assert probe(out)["frames"] == 2
    # the input itself, however named, is never the output
    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    before = open(src, "rb").read()
    for same in (src, str(tmp_path / "." / "in.mp4"), str(link)):
        assert main(["video", "--style", style_png, src, "-o", same, "--quiet", "--overwrite"]) == 1
        assert "the output would replace the input" in capsys.readouterr().err
    assert open(src, "rb").read() == before


def test_an_output_named_only_by_its_extension_is_refused(tmp_path, style_png, capsys):
    """`-o .mp4` wrote a hidden folder of PNG frames named .mp4 (splitext
    calls the name all stem); it is refused before any work."""
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    for name in (".mp4", ".MOV"):
        out = tmp_path / name
        assert main(["video", "--style", style_png, src, "-o", str(out), "--quiet"]) == 1
        assert f"{out}: name the video before its extension (out{name.lower()}, say)" \
            in capsys.readouterr().err
        assert not os.path.lexists(out)


# --------------------------------------------------------------- bad input

def test_truncated_file_is_one_clear_line(tmp_path, style_png):
    src = write_clip(tmp_path / "in.mp4", n=10)
    data = open(src, "rb").read()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: lost
    out = tmp_path / "out.mp4"
    r = run_cli("video", "--style", style_png, str(broken), "-o", str(out), "--quiet")
    lines = [ln for ln in r.stderr.splitlines() if "iCCP" not in ln]
    assert r.returncode == 1, r.stderr
    assert len(lines) == 1 and "broken.mp4" in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_a_file_cut_short_keeps_its_frames_with_a_warning(tmp_path, style_png):
    """The index at the start still lists every frame when the end is cut
    off: the frames decoded are kept, and the run says how many are missing."""
    src = write_clip(tmp_path / "in.mp4", n=24, audio=False, faststart=True)
    data = open(src, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    out = tmp_path / "out.mp4"
    r = run_cli("video", "--style", style_png, str(cut), "-o", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    kept = probe(out)["frames"]
    assert 0 < kept < 24
    assert f"cut.mp4: decoded {kept} of the 24 frames its header lists" in r.stderr
    r = run_cli("video", "--style", style_png, src, "-o", str(tmp_path / "whole.mp4"), "--quiet")
    assert r.returncode == 0 and "warning" not in r.stderr


def damaged_packets(src, path, which):
    """The MP4 ``src`` with the data of its video packets ``which`` (their
    numbers in file order, or None: all) overwritten, written at ``path``."""
    with av.open(src) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(open(src, "rb").read())
    for k in range(len(packets)) if which is None else which:
        pos, size = packets[k]
        data[pos + 4:pos + size] = b"\xff" * (size - 4)  # (past the NAL's length)
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path


def test_damaged_packets_are_skipped_and_the_rest_kept(tmp_path, style_png, capsys):
    """Two frames' packets in the middle of a file overwritten: their frames
    are left out, the frames after them kept (decoding stopped at the first
    damaged packet and dropped the rest of the video, as a success), with a
    warning; a file of damaged packets only is one clear error."""
    src = write_clip(tmp_path / "in.mp4", n=30, audio=False)
    damaged = damaged_packets(src, tmp_path / "damaged.mp4", (12, 13))
    out = tmp_path / "out.mp4"
    assert main(["video", "--style", style_png, str(damaged), "-o", str(out), "-q"]) == 0
    assert probe(out)["frames"] == 28
    assert re.search(r"damaged.mp4: 2 damaged video packet\(s\) skipped \(the first at 0\.\d\d s: "
                     r"Invalid data found when processing input\); 28 frames decoded",
                     capsys.readouterr().err)
    damaged_packets(src, damaged, None)
    assert main(["video", "--style", style_png, str(damaged), "-o", str(out), "-q",
                 "--overwrite"]) == 1
    assert "damaged.mp4: cannot be decoded (Invalid data found" in capsys.readouterr().err


def remuxed(src, path, **container):
    """``src`` copied packet for packet into ``path`` (``container``: ``av.open``'s
    ``format`` and ``options``)."""
    with av.open(src) as i, av.open(str(path), "w", **container) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                o.mux(packet)
    return str(path)


def as_transport_stream(src, path):
    """``src`` copied packet for packet into an MPEG transport stream at
    ``path`` (its AAC as ADTS frames, a camcorder's or a broadcast's)."""
    return remuxed(src, path, format="mpegts")


class DemuxedAs:
    """A source's container whose ``demux()`` is ``demux(container,
    *streams)``, the rest its own."""

    def __init__(self, container, demux):
        self._container, self._demux = container, demux

    def __getattr__(self, name):
        return getattr(self._container, name)

    def demux(self, *streams):
        return self._demux(self._container, *streams)


def demux_as(monkeypatch, demux):
    """The files the video command opens read through ``demux`` (see
    :class:`DemuxedAs`): damaged data, packet by packet, as PyAV gives it."""
    import blit.video

    open_source = blit.video.open_source

    def opened(path, fps=30.0):
        source = open_source(path, fps)
        source.container = DemuxedAs(source.container, demux)
        return source

    monkeypatch.setattr(blit.video, "open_source", opened)


def test_damaged_audio_packets_are_dropped_with_a_line(tmp_path, style_png, capsys,
                                                       monkeypatch):
    """Random bytes in the middle of a transport stream: an audio packet's
    ADTS header gone, a timestamp read from them 13 hours on (the 33-bit
    clock's high bit flipped), the next one back before the packets kept.
    The MP4 muxer refused them (and, after that timestamp, every packet),
    and the run failed after painting every frame, the output blamed:
    `o.mp4: could not be written from in.ts (Invalid data found when
    processing input); nothing written`. Now they are dropped, as damaged
    video packets are skipped, and counted in one line."""
    src = as_transport_stream(write_clip(tmp_path / "in.mp4", n=24), tmp_path / "in.ts")
    with av.open(src) as c:
        total = sum(1 for p in c.demux(audio=0) if p.size)

    def damaged(container, *streams):
        k = 0
        for packet in container.demux(*streams):
            if packet.stream.type == "audio" and packet.size:
                k += 1
                if k == 5:  # its header overwritten
                    bad = av.Packet(bytes(7) + bytes(packet)[7:])
                    bad.pts, bad.dts, bad.duration = packet.pts, packet.dts, packet.duration
                    bad.time_base, bad.stream = packet.time_base, packet.stream
                    packet = bad
                elif k == 8:
                    packet.pts, packet.dts = packet.pts + 2 ** 32, packet.dts + 2 ** 32
                elif k == 9:
                    packet.pts = packet.dts = packet.dts - 3 * packet.duration
            yield packet

    demux_as(monkeypatch, damaged)
    out = tmp_path / "o.mp4"
    assert main(["video", "--style", style_png, src, "-o", str(out), "-q"]) == 0
    assert re.fullmatch(rf"styleblit: warning: {re.escape(src)}: 3 damaged audio packet\(s\) "
                        r"dropped \(the first after \d+\.\d\d s: Invalid data found when "
                        r"processing input\); the audio before and after them kept\n",
                        capsys.readouterr().err)
    assert probe(out)["frames"] == 24
    with av.open(str(out)) as c:
        assert sum(1 for p in c.demux(audio=0) if p.size) == total - 3


@pytest.mark.parametrize("where", ["end", "middle", "start"])
def test_a_stream_pyav_does_not_know_is_damage_of_the_input(tmp_path, style_png, capsys,
                                                            monkeypatch, where):
    """Damaged data in a transport stream can make a new stream appear,
    which PyAV's demuxer does not list: an IndexError of its own (after the
    streams' end packets, where PyAV 18 raises it), a traceback. Now, after
    the end packets, nothing is lost and nothing said; before them, the
    frames decoded are kept with a line, as for a file cut short; before
    any frame, one line names the input as damaged."""
    src = as_transport_stream(write_clip(tmp_path / "in.mp4", n=12, audio=False),
                              tmp_path / "in.ts")
    stop = {"end": None, "middle": 8, "start": 1}[where]

    def breaking(container, *streams):
        n = 0
        for packet in container.demux(*streams):
            n += packet.stream.type == "video" and packet.size > 0
            if n == stop:
                break
            yield packet
        raise IndexError("list index out of range")  # (av/container/streams.py's)

    demux_as(monkeypatch, breaking)
    out = tmp_path / "o.mp4"
    rc = main(["video", "--style", style_png, src, "-o", str(out), "-q"])
    err = capsys.readouterr().err
    reason = "damaged data: a stream appeared in the middle of the file"
    if where == "start":
        assert rc == 1 and err == f"styleblit: error: {src}: cannot be decoded ({reason})\n"
        assert sorted(os.listdir(tmp_path)) == ["in.mp4", "in.ts"]
        return
    assert rc == 0
    frames = probe(out)["frames"]
    if where == "end":
        assert frames == 12 and err == ""
    else:
        assert 0 < frames < 12
        assert err == (f"styleblit: warning: {src}: decoding stopped after {frames} frames "
                       f"({reason}); kept the frames decoded\n")


def test_a_frame_out_of_time_order_is_dropped_as_damaged(tmp_path, style_png, capsys,
                                                         monkeypatch):
    """Packets of damaged data the demuxer drops silently (no decoding
    error) can leave the decoder a frame to give late, its timestamp before
    the frame written last: the run failed as for clips joined end to end.
    Now a frame out of order followed by frames in order again is dropped,
    with a line; clips joined are still refused
    (test_clips_joined_end_to_end_are_one_line)."""
    src = write_clip(tmp_path / "in.mp4", n=12, audio=False)

    def late(container, *streams):
        for packet in container.demux(*streams):
            if packet.size and packet.pts == 6 * packet.duration:  # the 7th frame's
                packet.pts = 2 * packet.duration
            yield packet

    demux_as(monkeypatch, late)
    out = tmp_path / "o.mp4"
    assert main(["video", "--style", style_png, src, "-o", str(out), "-q"]) == 0
    pts = probe(out)["pts"]
    assert [t // pts[1] for t in pts] == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11]
    assert re.fullmatch(rf"styleblit: warning: {re.escape(src)}: 1 damaged video packet\(s\) "
                        r"skipped \(the first at 0\.08 s: a frame out of time order\); 11 frames "
                        r"decoded, 1 of the 12 frames its header lists lost, the frames before "
                        r"and after them kept\n", capsys.readouterr().err)


def damaged_pes_header(src, path, k, how):
    """The transport stream ``src`` with the header of its ``k``-th video
    packet damaged, written at ``path``: ``"jump"``, its timestamps' high bit
    flipped (13 hours on, random bytes read as a timestamp); ``"lost"``,
    its timestamps gone (the flags that say they are there cleared)."""
    with av.open(src) as c:
        pos = [p.pos for p in c.demux(video=0) if p.size][k]
    data = bytearray(open(src, "rb").read())
    at = data.index(b"\x00\x00\x01\xe0", pos)  # the PES header: start code, length, flags
    if how == "jump":
        for field in range(2 if data[at + 7] >> 6 == 3 else 1):  # PTS, and DTS if there
            data[at + 9 + 5 * field] ^= 0x08  # (bit 32 of the 33-bit clock)
    else:
        data[at + 7] &= 0x3F
    with open(path, "wb") as f:
        f.write(bytes(data))
    return str(path)


@pytest.mark.parametrize("how", ["jump", "lost"])
def test_a_video_packet_with_a_damaged_timestamp_in_a_transport_stream(tmp_path, style_png,
                                                                       capsys, how):
    """One video packet's header of damaged data in a transport stream.
    Its timestamp 13 hours on: the frames after it went back in time, and
    the run failed as for clips joined end to end; now that frame alone is
    left out, with a line. Its timestamp gone: the frame was timed by its
    number from 0, before the stream's clock, and the run failed the same
    way; now it is timed on from the frame before it, and nothing is lost.
    (Ray, from the same file: test_ray.)"""
    src = as_transport_stream(write_clip(tmp_path / "in.mp4", n=24), tmp_path / "in.ts")
    damaged = damaged_pes_header(src, tmp_path / f"{how}.ts", 10, how)
    out = tmp_path / "out.mp4"
    assert main(["video", "--style", style_png, damaged, "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    steps = np.diff(probe(out)["pts"])
    if how == "jump":
        assert re.fullmatch(rf"styleblit: warning: {re.escape(damaged)}: 1 damaged video "
                            r"packet\(s\) skipped \(the first at 0\.\d\d s: its timestamp jumps "
                            r"to 47722\.\d\d s\); 23 frames decoded, the frames before and after "
                            r"them kept\n", err)
        assert len(steps) == 22 and sorted(steps)[-1] == 2 * steps[0]  # (one frame's time)
    else:
        assert err == ""
        assert len(steps) == 23 and (steps == steps[0]).all()  # (every frame, evenly timed)
    whole = tmp_path / "whole.mp4"
    assert main(["video", "--style", style_png, src, "-o", str(whole), "-q"]) == 0
    assert probe(whole)["pts"][0] == probe(out)["pts"][0]


@pytest.mark.parametrize("name", ["in.mkv", "in.mp4"])
def test_a_file_without_a_frame_count_cut_short_is_said(tmp_path, style_png, capsys, name):
    """Matroska and fragmented MP4 (a recording, a stream) list no frame
    count; cut short, their frames and audio end well before the duration
    their header gives, which is said (locally, and by the index Ray's
    ranges are made from)."""
    from blit.video import open_source

    frag = {"movflags": "frag_keyframe+empty_moov"} if name.endswith(".mp4") else {}
    src = write_clip(tmp_path / name, n=120, **frag)
    data = open(src, "rb").read()
    cut = tmp_path / f"cut{name[2:]}"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    assert main(["video", "--style", style_png, str(cut), "-o", str(out), "-q"]) == 0
    kept = probe(out)["frames"]
    assert 0 < kept < 90
    err = capsys.readouterr().err
    assert f"{cut}: its {kept} frames and its audio end at " in err
    assert "of the 5.0" in err and "(is the file cut short?); kept the frames decoded" in err
    source = open_source(str(cut))
    assert len(source.index()) == kept
    source.close()
    assert f"{cut}: its {kept} frames and its audio end at " in capsys.readouterr().err
    # whole, with its audio 2 s longer than its frames (so the file is longer than its
    # video): nothing said
    whole = write_clip(tmp_path / f"whole{name[2:]}", n=72, **frag)
    with av.open(whole, "r") as c:
        packets = [p for p in c.demux(c.streams.audio[0]) if p.size]
    longer = tmp_path / f"longer{name[2:]}"
    with av.open(whole, "r") as c, av.open(str(longer), "w", options=frag) as o:
        vs, as_ = c.streams.video[0], c.streams.audio[0]
        ov, oa = o.add_stream_from_template(vs), o.add_stream_from_template(as_)
        shift = packets[-1].pts + packets[-1].duration - packets[0].pts
        for p in c.demux(vs, as_):
            if not p.size:
                continue
            p.stream = ov if p.stream.type == "video" else oa
            o.mux(p)
        for p in packets:  # the sine once more after the frames end: 6 s in all
            p.pts += shift
            p.dts += shift
            p.stream = oa
            o.mux(p)
    assert main(["video", "--style", style_png, str(longer), "-o", str(tmp_path / "o2.mp4"),
                 "-q"]) == 0
    assert probe(tmp_path / "o2.mp4")["frames"] == 72
    assert "warning" not in capsys.readouterr().err


def test_frames_a_damaged_matroska_file_loses_silently_are_said(tmp_path, style_png, capsys):
    """Damaged data in a Matroska cluster: the demuxer resynchronises at
    the next cluster with no error, and the decoder gives nothing for the
    frames that referred to the lost ones. The frames after the damage
    are kept at their times, as before, but the run said nothing of the
    second of video missing. Now one line says where and about how many
    frames' time, locally and from the index Ray's ranges are made from;
    an undamaged file says nothing."""
    from blit.video import open_source

    whole = tmp_path / "whole.mkv"  # (a cluster every 250 ms: damage loses a few frames)
    remuxed(write_clip(tmp_path / "in.mp4", n=72), whole, options={"cluster_time_limit": "250"})
    with av.open(str(whole)) as c:
        packets = sorted((p.pts, p.pos, p.size) for p in c.demux(video=0) if p.size)
    data = bytearray(whole.read_bytes())
    lo, hi = packets[40][1], packets[41][1] + packets[41][2]  # two frames' bytes zeroed
    data[lo:hi] = bytes(hi - lo)
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    assert main(["video", "--style", style_png, str(damaged), "-o", str(out), "-q"]) == 0
    kept = probe(out)["frames"]
    gap = re.search(rf"{re.escape(str(damaged))}: its video has no frame from (\d+\.\d\d) to "
                    r"(\d+\.\d\d) s \(about (\d+) frames' time at 24 fps: damaged data skipped by "
                    r"the demuxer, or a pause in a variable-rate recording\); the frames decoded "
                    r"keep their times, the frame before a gap held through it\n",
                    capsys.readouterr().err)
    assert gap and 1.5 <= float(gap[1]) < float(gap[2]) < 3.0
    assert kept + int(gap[3]) == 72  # (the frames after the gap kept: a gap, not a cut)
    source = open_source(str(damaged))
    pts = source.index()  # the packets': fewer lost than frames decoded
    source.close()
    lost = re.search(r"damaged.mkv: its video has no frame from 1\.\d\d to \d\.\d\d s \(about "
                     r"(\d+) frames' time at 24 fps.*the frames it holds keep their times",
                     capsys.readouterr().err)
    assert lost and len(pts) + int(lost[1]) == 72
    assert main(["video", "--style", style_png, str(whole), "-o", str(tmp_path / "w.mp4"),
                 "-q"]) == 0
    assert probe(tmp_path / "w.mp4")["frames"] == 72
    assert "warning" not in capsys.readouterr().err
    source = open_source(str(whole))
    assert len(source.index()) == 72
    source.close()
    assert capsys.readouterr().err == ""


def test_a_frames_folder_output_never_deletes_the_users_files(tmp_path, style_png, capsys):
    """A folder of frames replaces an existing one as a whole under
    --overwrite: refused when it holds the input, the current folder or any
    file that is not a frame styleblit wrote; a folder of frames alone is
    replaced."""
    frames = clip_frames(3)
    (tmp_path / "out").mkdir()
    src = write_frames(tmp_path / "out" / "in", frames)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    video = ["video", "--style", style_png, "--quiet", "--overwrite"]
    assert main(video + [src, "-o", str(tmp_path / "out")]) == 1
    assert "the output folder holds the input" in capsys.readouterr().err
    assert main(video + [src, "-o", str(tmp_path / "mine")]) == 1
    assert "not a folder of frames styleblit wrote (it holds 'notes.txt')" in capsys.readouterr().err
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path / "mine")
        assert main(video + [src, "-o", "."]) == 1
        assert "holds the current folder" in capsys.readouterr().err
    finally:
        os.chdir(cwd)
    assert sorted(os.listdir(src)) == ["f000.png", "f001.png", "f002.png"]
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert main(video + [src, "-o", str(tmp_path / "frames")]) == 0
    assert main(video + [src, "-o", str(tmp_path / "frames")]) == 0  # styleblit's own: replaced
    assert len(os.listdir(tmp_path / "frames")) == 3
    # batch: the same checks for each job, before any work
    assert main(["batch", "--engine", "local", "--style", style_png, "--quiet", "--overwrite",
                 src, "-o", str(tmp_path / "out"), "--format", "png"]) == 1
    assert f"would replace the input {src}" in capsys.readouterr().err
    assert sorted(os.listdir(src)) == ["f000.png", "f001.png", "f002.png"]


def test_uncompressed_audio_into_an_mp4_is_warned_of(tmp_path, style_png, capsys):
    src = str(tmp_path / "pcm.mov")
    with av.open(src, "w") as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 128, 160, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=SAMPLE_RATE)
        a.layout = "mono"
        for i, f in enumerate(clip_frames(3)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        af = av.AudioFrame.from_ndarray(np.zeros((1, 2048), np.int16), format="s16", layout="mono")
        af.sample_rate, af.pts = SAMPLE_RATE, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mp4"), "-q"]) == 0
    assert "its audio (pcm_s16le) is copied unchanged into the MP4" in capsys.readouterr().err
    assert probe(tmp_path / "o.mp4")["streams"] == ["video", "audio"]
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mov"), "-q"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_stylize_video_takes_paths_and_never_replaces_its_input(tmp_path, style_png):
    from pathlib import Path

    from blit.video import stylize_video
    from guides.exemplar import load_style
    from guides.io import InputError

    style = load_style(style_png)
    src = Path(write_clip(tmp_path / "in.mp4", n=2, audio=False))
    before = src.read_bytes()
    assert stylize_video(style, src, tmp_path / "out.mp4", quiet=True) == 2
    with pytest.raises(InputError, match="would replace the input"):
        stylize_video(style, src, str(src), quiet=True)
    assert src.read_bytes() == before


def test_virtual_cam_without_pyvirtualcam_or_window_is_refused(tmp_path, style_png, capsys,
                                                                monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyvirtualcam" else real(name, *a))
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    assert main(["webcam", "--style", style_png, "--source", src, "--no-window",
                 "--virtual-cam", "-q"]) == 1
    assert "--virtual-cam needs pyvirtualcam" in capsys.readouterr().err


def fake_pyvirtualcam(monkeypatch, error):
    """pyvirtualcam installed, its Camera failing to open with ``error`` (as
    on Linux with no v4l2loopback device); the sizes it was asked for."""
    import importlib.machinery
    import types

    module = types.ModuleType("pyvirtualcam")
    module.__spec__ = importlib.machinery.ModuleSpec("pyvirtualcam", None)
    module.PixelFormat = types.SimpleNamespace(BGR="BGR")
    asked = []

    def camera(width, height, fps, fmt):
        asked.append((width, height))
        raise RuntimeError(error)

    module.Camera = camera
    monkeypatch.setitem(sys.modules, "pyvirtualcam", module)
    return asked


NO_LOOPBACK = ("'v4l2loopback' backend: No v4l2 loopback device found at\n/dev/video[0-99]. "
               "Did you run 'modprobe v4l2loopback'? See also pyvirtualcam's documentation.")


def test_virtual_cam_without_a_device_or_window_is_refused(tmp_path, style_png, capsys,
                                                           monkeypatch):
    """pyvirtualcam installed but no virtual camera to open: without a window
    nothing would be shown, so it is one error line (exit 1, as without
    pyvirtualcam), with pyvirtualcam's whole reason on it; with a window the
    preview runs on, with a warning giving the whole reason."""
    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam

    asked = fake_pyvirtualcam(monkeypatch, NO_LOOPBACK)
    reason = " ".join(NO_LOOPBACK.split())
    src = write_clip(tmp_path / "in.mp4", n=30, audio=False)
    assert main(["webcam", "--style", style_png, "--source", src, "--no-window",
                 "--virtual-cam", "-q"]) == 1
    captured = capsys.readouterr()
    assert asked == [(128, 160)] and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("styleblit: error: --virtual-cam: ")
    assert f"({reason})" in lines[0] and "sudo modprobe v4l2loopback" in lines[0]
    assert "preview only" not in captured.err
    # with a window: the preview runs, the warning says the whole reason
    script_window(monkeypatch, iter("  q"), lambda image: None)
    summary = run_webcam([style_png], Camera(clip_frames(10)), options=StylizeOptions(),
                         window=True, virtual_cam=True, pace=30.0, log=lambda *a: None)
    assert summary["frames"] == 3
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"styleblit: virtual camera unavailable ({reason}); preview only"]


def test_a_video_without_a_face_says_so(tmp_path, style_png, capsys):
    src = write_frames(tmp_path / "in", [np.full((64, 48, 3), 90 + i, np.uint8) for i in range(3)])
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "out"), "-q"]) == 0
    assert "no face found in any of its 3 frames; they are written unchanged" in \
        capsys.readouterr().err
    src = write_clip(tmp_path / "face.mp4", n=3, audio=False)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mp4"), "-q"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_face_too_small_for_the_detector_is_painted(tmp_path, style_png, capsys):
    """A face 7 % of a wide video's width, which mediapipe's detector misses
    on every frame: found in tiles and tracked, it is painted on every
    frame; the rest of the frame is left as it was."""
    image = read_image(HOPPER)
    h, w = image.shape[:2]
    frames = []
    for i in range(4):
        frame = np.full((h + 200, 2600, 3), (90, 120, 90), np.uint8)
        frame[100:100 + h, 400 + 8 * i:400 + 8 * i + w] = image
        frames.append(frame)
    src = write_frames(tmp_path / "wide", frames)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "out"), "-q",
                 "--fps", str(RATE)]) == 0
    assert capsys.readouterr().err == ""
    for i, frame in enumerate(frames):
        out = read_image(tmp_path / "out" / f"frame_{i + 1:06d}.png")
        face = np.abs(out.astype(int) - frame)[250:500, 520 + 8 * i:760 + 8 * i]
        assert face.mean() > 10, i
        np.testing.assert_array_equal(out[:, 1400:], frame[:, 1400:])


def test_an_output_another_run_wrote_meanwhile_is_not_replaced(tmp_path, style_png):
    """Without --overwrite the command checks its output at the start; one
    that another run wrote there meanwhile was replaced when this run
    finished. Now it stays, and this run's output is put beside it; a name
    near the 255-byte limit is written (its temporary's was too long)."""
    from guides.exemplar import load_style

    src = write_clip(tmp_path / "in.mp4", n=3, audio=False)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the other run's video")
    style = load_style(style_png)
    with pytest.raises(InputError, match=r"out.mp4: exists already, written meanwhile by another "
                                         r"run; this run's output is .*out-2.mp4"):
        stylize_video(style, src, str(out), quiet=True, overwrite=False)
    assert out.read_bytes() == b"the other run's video"
    assert probe(tmp_path / "out-2.mp4")["frames"] == 3
    assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out-2.mp4", "out.mp4"]
    long = tmp_path / ("v" * 248 + ".mp4")
    assert main(["video", "--style", style_png, src, "-o", str(long), "-q"]) == 0
    assert probe(long)["frames"] == 3


def refuse_rename(monkeypatch, path, exc):
    """``os.replace`` and ``os.link`` (``publish``'s) raise ``exc`` for a rename
    or a link to ``path``, as the system refuses one (an immutable file or
    folder, ``chattr +i``); any other goes through."""
    replace, link = os.replace, os.link

    def refusing(real):
        def call(src, dst, *args, **kwargs):
            if os.path.abspath(dst) == os.path.abspath(path):
                raise exc
            return real(src, dst, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "replace", refusing(replace))
    monkeypatch.setattr(os, "link", refusing(link))


def test_an_output_the_system_refuses_to_rename_is_one_line(tmp_path, style_png, capsys,
                                                             monkeypatch):
    """The last step, the rename of the complete output to its name, refused
    (an immutable file, the output's folder removed meanwhile): a traceback,
    and a complete-looking hidden file left beside the output. Now one line
    as `styleblit image` says it, nothing left, the old output kept; `batch`
    fails the job alone."""
    import blit.video

    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the user's video")
    refuse_rename(monkeypatch, out, PermissionError(errno.EPERM, "Operation not permitted"))
    video = ["video", "--style", style_png, src, "-q", "--overwrite"]
    assert main(video + ["-o", str(out)]) == 1
    assert capsys.readouterr().err == \
        f"styleblit: error: {out}: cannot be written (Operation not permitted)\n"
    assert out.read_bytes() == b"the user's video"
    assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]
    job = tmp_path / "batch" / "in.mp4"
    job.parent.mkdir()
    job.write_bytes(b"the user's video")
    from blit.distributed import record_outputs

    # (a batch's own output, as recorded: --overwrite replaces it; the user's own is refused)
    record_outputs(str(job.parent), [(src, str(job))])
    refuse_rename(monkeypatch, job, PermissionError(errno.EPERM, "Operation not permitted"))
    assert main(["batch", "--engine", "local", "--style", style_png, src, "-o", str(job.parent),
                 "-q", "--overwrite"]) == 1
    assert f"styleblit: error: {job}: cannot be written (Operation not permitted)\n" in \
        capsys.readouterr().err
    assert job.read_bytes() == b"the user's video"
    assert sorted(os.listdir(job.parent)) == [".styleblit-batch.json", "in.mp4"]
    # the output's folder removed while the run wrote
    (tmp_path / "gone").mkdir()
    publish = blit.video.publish

    def folder_removed(tmp, path, **kwargs):
        shutil.rmtree(tmp_path / "gone")
        return publish(tmp, path, **kwargs)

    monkeypatch.setattr(blit.video, "publish", folder_removed)
    assert main(video + ["-o", str(tmp_path / "gone" / "o.mp4")]) == 1
    assert capsys.readouterr().err == (f"styleblit: error: {tmp_path / 'gone' / 'o.mp4'}: cannot "
                                       f"be written (its folder {tmp_path / 'gone'} is gone)\n")
    assert sorted(os.listdir(tmp_path)) == ["batch", "in.mp4", "out.mp4"]


def test_a_frames_folder_is_replaced_only_once_the_new_one_is_in_place(tmp_path, style_png,
                                                                       capsys, monkeypatch):
    """--overwrite of a folder of frames removed the old one first: where the
    new one could then not be put in place, or a frame of the old one could
    not be removed, the old one was half deleted, with a traceback, and the
    new frames were left in a hidden folder. Now the old folder is kept
    whole until the new one is in place, and put back where it cannot be."""
    src = write_clip(tmp_path / "in.mp4", n=3, audio=False)
    out = tmp_path / "frames"
    video = ["video", "--style", style_png, src, "-o", str(out), "-q", "--overwrite"]
    assert main(video) == 0
    old = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert sorted(old) == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    (out / "frame_000002.png").write_bytes(b"the old run's")  # (told apart from the new one's)
    old["frame_000002.png"] = b"the old run's"
    with monkeypatch.context() as m:
        refuse_rename(m, out, PermissionError(errno.EPERM, "Operation not permitted"))
        assert main(video) == 1
    assert capsys.readouterr().err == \
        f"styleblit: error: {out}: cannot be written (Operation not permitted)\n"
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == old
    assert sorted(os.listdir(tmp_path)) == ["frames", "in.mp4"]
    # a frame of the old folder that cannot be removed: the new one in place, the rest said
    unlink = os.unlink

    def refusing(path, *args, **kwargs):
        if os.path.basename(path) == "frame_000002.png":
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return unlink(path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "unlink", refusing)
        assert main(video) == 0
    assert (out / "frame_000002.png").read_bytes() != b"the old run's"
    left = [name for name in os.listdir(tmp_path) if name not in ("frames", "in.mp4")]
    assert len(left) == 1 and os.listdir(tmp_path / left[0] / "frames") == ["frame_000002.png"]
    assert (f"styleblit: warning: {out}: written, but the folder it replaced could not all be "
            f"removed ({tmp_path / left[0] / 'frames' / 'frame_000002.png'}: Operation not "
            f"permitted); what is left of it is in {tmp_path / left[0]}") in capsys.readouterr().err


def test_a_complete_run_drops_an_earlier_partial_output(tmp_path, style_png, capsys):
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    for name in ("out.partial.mp4", "out.partial-2.mp4", "out.partial-3.mp4",
                 "out.partial-02.mp4", "out.partial-x.mp4", "other.partial.mp4"):
        (tmp_path / name).write_bytes(b"an interrupted run's")
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "out.mp4"), "-q"]) == 0
    err = capsys.readouterr().err
    for name in ("out.partial.mp4", "out.partial-2.mp4", "out.partial-3.mp4"):
        assert not (tmp_path / name).exists()
        assert f"removed {tmp_path / name}, left by an interrupted run" in err
    # not ours to remove: not named as a partial output of out.mp4
    for name in ("out.partial-02.mp4", "out.partial-x.mp4", "other.partial.mp4"):
        assert (tmp_path / name).exists() and name not in err
    # a file named as a partial output that is the input stays
    src = write_clip(tmp_path / "clip.partial.mp4", n=2, audio=False)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "clip.mp4"), "-q"]) == 0
    assert (tmp_path / "clip.partial.mp4").exists() and "removed" not in capsys.readouterr().err
    for name, files in (("frames", ["frame_000001.png"]), ("mine", ["frame_000001.png", "x.txt"])):
        (tmp_path / f"{name}.partial").mkdir()
        for f in files:
            (tmp_path / f"{name}.partial" / f).write_bytes(b"")
        assert main(["video", "--style", style_png, src, "-o", str(tmp_path / name), "-q"]) == 0
    assert not (tmp_path / "frames.partial").exists()  # styleblit's frames only: superseded
    assert sorted(os.listdir(tmp_path / "mine.partial")) == ["frame_000001.png", "x.txt"]


def test_ctrl_c_before_the_first_frame_leaves_nothing(tmp_path, style_png, capsys, monkeypatch):
    import blit.video

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(blit.video, "stylize_items", interrupted)
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mp4")]) == 130
    assert "interrupted before the first frame was written; nothing written" in \
        capsys.readouterr().err
    assert os.listdir(tmp_path) == ["in.mp4"]


@pytest.mark.parametrize("ext", [".mp4", ""])
def test_a_second_interrupted_run_keeps_the_first_partial_output(tmp_path, style_png, capsys,
                                                                 monkeypatch, ext):
    """Two interrupted runs of one output: the second's partial output is saved
    beside the first's, not over it (the first may hold more frames; a folder
    may hold the user's own files)."""
    import blit.video

    stylize_items = blit.video.stylize_items
    stop_after = []

    def interrupted(stylizer, items, sink, **kwargs):
        def some():
            for item in items:
                if item[0] == "video" and sink.frames >= stop_after[-1]:
                    raise KeyboardInterrupt
                yield item
        return stylize_items(stylizer, some(), sink, **kwargs)

    monkeypatch.setattr(blit.video, "stylize_items", interrupted)
    src = write_clip(tmp_path / "in.mp4", n=6, audio=False)
    out = str(tmp_path / f"out{ext}")
    for run, frames in enumerate((3, 1, 2), start=1):
        stop_after.append(frames)
        assert main(["video", "--style", style_png, src, "-o", out, "-q"]) == 130
        partial = partial_path(out, run)
        assert partial == str(tmp_path / ("out.partial" + (f"-{run}" if run > 1 else "") + ext))
        assert f"interrupted after {frames} frames; the partial video is in {partial}" in \
            capsys.readouterr().err
    counts = [probe(partial_path(out, n))["frames"] if ext else
              len(os.listdir(partial_path(out, n))) for n in (1, 2, 3)]
    assert counts == [3, 1, 2]
    monkeypatch.setattr(blit.video, "stylize_items", stylize_items)
    assert main(["video", "--style", style_png, src, "-o", out, "-q"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["in.mp4", f"out{ext}"]
    assert capsys.readouterr().err.count("left by an interrupted run") == 3


def test_ctrl_c_whose_partial_output_cannot_be_kept_still_stops(tmp_path, style_png, capsys,
                                                                 monkeypatch):
    """Ctrl-C, and the system refuses the rename of the partial output: an
    error (exit code 1) as if the input were bad, and a local batch went on
    to its next video. Now it is an interrupt still (exit code 130), saying
    that nothing was kept and why; a batch stops there."""
    import blit.video

    stylize_items = blit.video.stylize_items

    def interrupted(stylizer, items, sink, **kwargs):
        def some():
            for item in items:
                if item[0] == "video" and sink.frames >= 2:
                    raise KeyboardInterrupt
                yield item
        return stylize_items(stylizer, some(), sink, **kwargs)

    monkeypatch.setattr(blit.video, "stylize_items", interrupted)
    src = write_clip(tmp_path / "in.mp4", n=4, audio=False)
    out = tmp_path / "out.mp4"
    partial = partial_path(str(out))
    refuse_rename(monkeypatch, partial, PermissionError(errno.EPERM, "Operation not permitted"))
    assert main(["video", "--style", style_png, src, "-o", str(out), "-q"]) == 130
    assert capsys.readouterr().err == (
        f"styleblit: interrupted after 2 frames; nothing written: {partial}: cannot be written "
        "(Operation not permitted)\n")
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
    # a local batch of two: the first interrupted, the second not started
    second = write_clip(tmp_path / "second.mp4", n=2, audio=False)
    folder = tmp_path / "b"
    refuse_rename(monkeypatch, partial_path(str(folder / "in.mp4")),
                  PermissionError(errno.EPERM, "Operation not permitted"))
    assert main(["batch", "--engine", "local", "--style", style_png, src, second, "-o",
                 str(folder), "-q"]) == 130
    captured = capsys.readouterr()
    assert "interrupted" in captured.out and "nothing written: " in captured.out
    assert not (folder / "second.mp4").exists()
    assert [name for name in os.listdir(folder) if not name.startswith(".styleblit")] == []


def test_missing_input_and_bad_extension(tmp_path, style_png, capsys):
    assert main(["video", "--style", style_png, str(tmp_path / "nope.mp4"), "-o",
                 str(tmp_path / "o.mp4")]) == 1
    assert "no such file" in capsys.readouterr().err
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.gif")]) == 1
    assert "extension" in capsys.readouterr().err


# ------------------------------------------------------------------ Ctrl-C

@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_leaves_a_playable_partial_file(tmp_path, style_png, sig):
    """Ctrl-C, and SIGTERM (kill, a job scheduler) taken as Ctrl-C."""
    src = write_clip(tmp_path / "long.mp4", n=1200, audio=True)
    out = tmp_path / "out.mp4"
    # SIGINT restored to its default in the child: a shell running the tests in
    # the background would otherwise pass it down ignored
    proc = subprocess.Popen([*CLI, "video", "--style", style_png, src,
                             "-o", str(out), "--quiet"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait until frames are being written (the temporary output has data), then
    # interrupt; the clip is long enough (several seconds of work) not to be done by then
    deadline = time.time() + 60
    while time.time() < deadline:
        temps = [n for n in os.listdir(tmp_path) if n.startswith(".out.mp4")]
        if temps and os.path.getsize(tmp_path / temps[0]) > 20000:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    partial = partial_path(str(out))
    assert partial.endswith("out.partial.mp4") and "out.partial.mp4" in err
    assert "Traceback" not in err
    assert not out.exists()
    info = probe(partial)
    assert 0 < info["frames"] < 1200 and info["streams"] == ["video", "audio"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_flow_engine_chooses_the_stream_s_optical_flow(tmp_path, style_png, capsys):
    """`--flow-engine blit` paints as ``stylize_video(flow_engine="blit")``,
    bit for bit (so a CPU run equals a CUDA run, whose default it is), not
    as OpenCV's flow, which `auto` is on the CPU; with the GAN it is refused,
    not ignored."""
    from guides.exemplar import load_style

    src = write_clip(tmp_path / "in.mp4", n=6, audio=False)
    frames = {}
    for engine in ("auto", "opencv", "blit"):
        out = tmp_path / engine
        assert main(["video", "--style", style_png, src, "-o", str(out), "-q",
                     "--flow-engine", engine]) == 0
        frames[engine] = [read_image(str(out / n)) for n in sorted(os.listdir(out))]
    stylize_video(load_style(style_png), src, str(tmp_path / "py"), quiet=True, flow_engine="blit")
    python = [read_image(str(tmp_path / "py" / n)) for n in sorted(os.listdir(tmp_path / "py"))]
    assert len(frames["blit"]) == len(python) == 6
    assert all((a == b).all() for a, b in zip(frames["blit"], python))
    assert all((a == b).all() for a, b in zip(frames["auto"], frames["opencv"]))
    assert any((a != b).any() for a, b in zip(frames["blit"], frames["opencv"]))
    assert main(["video", src, "-o", str(tmp_path / "g.mp4"), "--method", "gan", "--model",
                 "m.pt", "--flow-engine", "blit"]) == 1
    assert capsys.readouterr().err == "styleblit: error: --flow-engine: only for --method patch\n"


def test_landmarks_every_second_frame(tmp_path, style_png, capsys):
    src = write_clip(tmp_path / "in.mp4", n=6, audio=False)
    out = tmp_path / "out.mp4"
    assert main(["video", "--style", style_png, src, "-o", str(out), "--quiet",
                 "--landmark-every", "2"]) == 0
    assert probe(out)["frames"] == 6
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "x.mp4"),
                 "--landmark-every", "2", "--method", "gan"]) == 1
    err = capsys.readouterr().err
    assert "only for --method patch" in err and len(err.strip().splitlines()) == 1
    for option in (["--max-faces", "2"], ["--boil", "5"]):  # also stream-only: not ignored
        assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "x.mp4"),
                     "--method", "gan", "--model", "m.pt"] + option) == 1
        err = capsys.readouterr().err
        assert f"{option[0]}: only for --method patch" in err and len(err.strip().splitlines()) == 1
    # the patch stylizer's style and settings: the GAN would ignore them
    gan = [src, "-o", str(tmp_path / "x.mp4"), "--method", "gan", "--model", "m.pt"]
    for option, message in ((["--style", style_png], "--style: only for --method patch (the GAN "
                                                     "paints the style it was trained on)"),
                            (["--voting", "2"], "--voting: only for --method patch"),
                            (["--threshold", "80"], "--threshold: only for --method patch")):
        assert main(["video", *gan, *option]) == 1
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # checked when parsed: a usage error
        main(["video", "--style", style_png, src, "-o", str(tmp_path / "x.mp4"),
              "--landmark-every", "0"])
    assert exc.value.code == 2
    assert "argument --landmark-every: expected at least 1" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_a_large_face_is_painted_at_the_exemplars_scale(tmp_path, style_png, capsys):
    """A face 2.4 times as wide as the exemplar's: painted shrunk to the
    exemplar's scale (chosen on the first frame, the one
    first_face_scale finds ahead) and enlarged back, exactly as the stream
    object does it; --native-scale paints at the video's own scale. PNG
    frames out, so that the comparison is exact."""
    from blit.stream import Stylizer
    from blit.stylize import face_width
    from blit.video import first_face_scale, open_source
    from guides.exemplar import load_style
    from guides.landmarks import detect_faces

    frames = clip_frames(6, size=(256, 320), zoom=0.6)
    src = write_frames(tmp_path / "big", frames)
    style = load_style(style_png)
    ratio = face_width(detect_faces(frames[0])[0]) / face_width(style.landmarks)
    scale = first_face_scale(style, str(src), fps=RATE)
    assert ratio > 2 and scale == pytest.approx(1 / ratio, rel=0.02)
    outputs = {}
    for name, extra in (("auto", []), ("native", ["--native-scale"])):
        assert main(["video", "--style", style_png, str(src), "-o", str(tmp_path / name),
                     "--quiet", "--fps", str(RATE)] + extra) == 0
        outputs[name] = [read_image(tmp_path / name / f"frame_{i:06d}.png")
                         for i in range(1, len(frames) + 1)]
    for name, want_scale in (("auto", scale), ("native", 1.0)):
        with Stylizer(style, fps=RATE, scale=want_scale) as stylizer:
            source = open_source(str(src), RATE)
            for i, (_, frame, _, t) in enumerate(item for item in source if item[0] == "video"):
                np.testing.assert_array_equal(outputs[name][i], stylizer(frame, t),
                                              err_msg=f"{name}, frame {i}")
            source.close()
            assert stylizer.painting_scale == want_scale
    assert not np.array_equal(outputs["auto"][0], outputs["native"][0])
    # outside the heads both leave the frame as it was
    for a, b, f in zip(outputs["auto"], outputs["native"], frames):
        same = (a == f).all(-1) & (b == f).all(-1)
        assert same.mean() > 0.3
    assert first_face_scale(style, write_clip(tmp_path / "small.mp4", n=3, audio=False),
                            fps=RATE) == 1.0  # (1.2 times the exemplar's width)
    assert main(["video", "--style", style_png, str(src), "-o", str(tmp_path / "g.mp4"),
                 "--native-scale", "--method", "gan", "--model", "m.pt"]) == 1
    err = capsys.readouterr().err
    assert "--native-scale: only for --method patch" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ webcam

def test_webcam_runs_headless_on_a_file(tmp_path, style_png, capsys):
    # long enough (6 s at 24 fps) that start-up, while the "camera" runs on, cannot exhaust it
    src = write_clip(tmp_path / "cam.mp4", n=150, audio=False)
    for every, pipeline in (("1", []), ("2", ["--pipeline"]), ("auto", [])):
        assert main(["webcam", "--style", style_png, "--source", src, "--no-window",
                     "--frames", "6", "--landmark-every", every, *pipeline]) == 0
        out = capsys.readouterr().out
        assert out.startswith("6 frames") and "latency" in out
        # auto: too few frames measured to decide, so every frame is searched
        assert ("landmarks (auto) every frame on 100 %" in out) == (every == "auto")
    from blit.stream import Stylizer

    engines, init = [], Stylizer.__init__

    def spied(self, *args, **kwargs):
        init(self, *args, **kwargs)
        engines.append(self.flow_engine)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Stylizer, "__init__", spied)
        assert main(["webcam", "--style", style_png, "--source", src, "--no-window",
                     "--frames", "2", "--flow-engine", "blit", "-q"]) == 0
    assert engines and set(engines) == {"blit"}
    for bad, message in (("0", "expected at least 1"), ("x", "expected a whole number or auto")):
        with pytest.raises(SystemExit) as exc:
            main(["webcam", "--style", style_png, "--source", src, "--no-window",
                  "--frames", "1", "--landmark-every", bad])
        assert exc.value.code == 2
        assert f"argument --landmark-every: {message}" in capsys.readouterr().err


def test_webcam_stopped_by_ctrl_c_prints_its_summary(tmp_path, style_png, capsys, monkeypatch):
    """Ctrl-C is how a run without a window is stopped: the summary of the
    frames so far is printed, the exit code is 130."""
    import blit.stream

    class Stopped(blit.stream.Stylizer):
        calls = 0

        def __call__(self, frame, *args, **kw):
            Stopped.calls += 1
            if Stopped.calls == 4:
                raise KeyboardInterrupt
            return super().__call__(frame, *args, **kw)

    monkeypatch.setattr(blit.stream, "Stylizer", Stopped)
    src = write_clip(tmp_path / "cam.mp4", n=150, audio=False)
    assert main(["webcam", "--style", style_png, "--source", src, "--no-window"]) == 130
    captured = capsys.readouterr()
    assert captured.out.startswith("3 frames") and "styleblit: interrupted" in captured.err


class Camera:
    """A capture object that gives ``frames``, then nothing; with ``loop``,
    copies of them over and over (a camera left running: a loop paced by
    it never runs out of frames, however long its first frame takes)."""

    def __init__(self, frames, *, loop=False):
        self._frames = (f.copy() for f in itertools.cycle(frames)) if loop else iter(frames)
        self.released = False

    def read(self):
        frame = next(self._frames, None)
        return (frame is not None), frame

    def release(self):
        self.released = True


def script_window(monkeypatch, keys, show):
    """OpenCV's window calls, scripted: ``show(image)`` for each frame shown,
    the next of ``keys`` pressed after it, the window never closed."""
    monkeypatch.setattr(cv2, "imshow", lambda name, image: show(image))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: ord(next(keys)))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda name, prop: 1.0)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)


@pytest.mark.parametrize("pipeline", [False, True])
def test_webcam_loop_takes_a_capture_object(style_png, pipeline):
    """run_webcam on an injected capture (as benchmarks/bench_webcam.py's
    in-memory camera): the frames it shows and the summary; with
    ``pipeline`` each frame is handed to the stylizer's prefetch as it is
    captured."""
    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam

    cam = Camera(clip_frames(12), loop=True)
    summary = run_webcam([style_png], cam, options=StylizeOptions(), window=False, frames=4,
                         pace=30.0, log=lambda *a: None, pipeline=pipeline)
    assert summary["frames"] == 4 and summary["fps"] > 0 and summary["latency_ms"]["median"] > 0
    assert summary["landmark_every"] == {1: 4}  # auto, still measuring
    assert summary["latency_ms"]["n"] == 3  # (the first frame's left out)
    assert cam.released


def test_webcam_keeps_a_bounded_latency_window(style_png, monkeypatch):
    """A camera left running: the loop keeps the latencies of the last
    LATENCY_WINDOW frames only (it kept every frame's, 85 bytes each, 220 MB
    a day), and its fps still counts every frame. The camera does not run
    out: paced at 30 fps, it goes on while the first frame is painted, and
    the loop drops those (2-3 in a process's first run, whose kernels load
    meanwhile; all of a 40-frame clip with Numba's cache cold)."""
    from blit import webcam
    from blit.stylize import StylizeOptions

    monkeypatch.setattr(webcam, "LATENCY_WINDOW", 5)
    summary = webcam.run_webcam([style_png], Camera(clip_frames(12), loop=True),
                                options=StylizeOptions(),
                                window=False, frames=12, pace=30.0, log=lambda *a: None)
    assert summary["frames"] == 12 and not summary["ended"]
    assert summary["latency_ms"]["n"] == 5 and summary["fps"] > 0


@pytest.mark.parametrize("pipeline", [False, True])
def test_webcam_preview_keys(style_png, tmp_path, monkeypatch, pipeline):
    """The preview window's keys, with OpenCV's window calls scripted: n/p
    switch styles (skipping, with one line, a style that does not load), o
    shows the original beside, s saves a snapshot, v toggles voting, q quits."""
    import shutil

    import blit.stream
    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam

    other = tmp_path / "other.png"
    shutil.copy(style_png, other)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    made = []

    class Recording(blit.stream.Stylizer):
        def __init__(self, style, *, options, **kw):
            made.append((style.name, options.voting))
            self.handed, self.painted = [], []
            stylizers.append(self)
            super().__init__(style, options=options, **kw)

        def prefetch(self, frame, t=None):
            self.handed.append(id(frame))
            super().prefetch(frame, t)

        def __call__(self, frame, *args, **kw):
            self.painted.append(id(frame))
            return super().__call__(frame, *args, **kw)

    stylizers = []

    keys = iter("npos" + "v" + "q")
    shown = []
    monkeypatch.setattr(blit.stream, "Stylizer", Recording)
    script_window(monkeypatch, keys, lambda image: shown.append(image.shape))
    lines = []
    frames = clip_frames(40)
    summary = run_webcam([style_png, str(broken), str(other)], Camera(frames),
                         options=StylizeOptions(),
                         window=True, pace=30.0, snapshot_dir=str(tmp_path), log=lines.append,
                         pipeline=pipeline)
    assert summary["frames"] == 6  # q on the sixth
    first, second = os.path.splitext(os.path.basename(style_png))[0], "other"
    # n: past the broken style to "other"; p: back past it (skipped now, said once); v: voting 0
    assert made == [(first, 1), (second, 1), (first, 1), (first, 0)]
    if pipeline:
        # every frame each stylizer painted was handed to its prefetch first,
        # in order, the frame waiting when the style changed included
        for stylizer in stylizers:
            handed = iter(stylizer.handed)
            assert all(frame in handed for frame in stylizer.painted)
        assert sum(len(s.painted) for s in stylizers) == 6
    assert [line for line in lines if "style skipped" in line] == \
        [f"styleblit: style skipped: {broken}: not an image file OpenCV can decode"]
    h, w = frames[0].shape[:2]
    assert shown == [(h, w, 3)] * 3 + [(h, 2 * w, 3)] * 3  # o after the third frame
    snapshots = [n for n in os.listdir(tmp_path) if n.startswith("styleblit_")]
    assert len(snapshots) == 1 and cv2.imread(str(tmp_path / snapshots[0])).shape == (h, 2 * w, 3)


def test_webcam_starts_on_the_first_style_that_loads(style_png, tmp_path):
    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam
    from guides.io import InputError

    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    lines = []
    summary = run_webcam([str(broken), style_png], Camera(clip_frames(2)),
                         options=StylizeOptions(), window=False, pace=30.0, log=lines.append)
    assert summary["frames"] == 2
    assert lines[0] == f"styleblit: style skipped: {broken}: not an image file OpenCV can decode"
    cam = Camera(clip_frames(2))
    with pytest.raises(InputError, match="broken.png: not an image file"):
        run_webcam([str(broken), str(broken)], cam, options=StylizeOptions(), window=False,
                   pace=30.0, log=lines.append)
    assert len(list(cam._frames)) == 2  # refused before the camera was read


@pytest.mark.parametrize("pipeline", [False, True])
def test_webcam_paints_a_close_face_at_the_exemplars_scale(style_png, tmp_path, monkeypatch,
                                                           capsys, pipeline):
    """A face 2.4 times as wide as the exemplar's: painted at the exemplar's
    scale by default (as video does), at the camera's with scale=1
    (--native-scale); with --method gan the option is an error."""
    import blit.stream
    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam

    stylizers = []

    class Recording(blit.stream.Stylizer):
        def __call__(self, frame, *args, **kw):
            out = super().__call__(frame, *args, **kw)
            stylizers.append(self)
            assert out.shape == frame.shape
            return out

    monkeypatch.setattr(blit.stream, "Stylizer", Recording)
    frames = clip_frames(8, size=(256, 320), zoom=0.6)
    for scale, painted_at in (("auto", lambda s: 0.35 < s < 0.5), (1.0, lambda s: s == 1.0)):
        stylizers.clear()
        summary = run_webcam([style_png], Camera(frames), options=StylizeOptions(), window=False,
                             frames=3, pace=30.0, log=lambda *a: None, pipeline=pipeline,
                             scale=scale)
        assert summary["frames"] == 3 and len(stylizers) == 3
        assert painted_at(stylizers[-1].painting_scale) and stylizers[-1].last_landmarks
    clip = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    assert main(["webcam", "--source", clip, "--no-window", "--frames", "1", "--native-scale",
                 "--method", "gan", "--model", "m.pt"]) == 1
    assert "--native-scale: only for --method patch" in capsys.readouterr().err


def test_webcam_mirror_and_clean_snapshots(style_png, tmp_path, monkeypatch):
    """m mirrors the preview only (each half with o); the overlay is drawn
    on the preview only; s saves the picture as the camera sees it, and two
    snapshots in one second are both kept."""
    import blit.stream
    import blit.webcam
    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam

    outputs = []

    class Recording(blit.stream.Stylizer):
        def __call__(self, frame, *args, **kw):
            out = super().__call__(frame, *args, **kw)
            outputs.append((frame.copy(), out.copy()))
            return out

    def overlay(image, lines):  # a band the tests can find
        image[:4] = 255
        return image

    keys = iter("osmsq")
    shown = []
    monkeypatch.setattr(blit.stream, "Stylizer", Recording)
    monkeypatch.setattr(blit.webcam, "draw_overlay", overlay)
    monkeypatch.setattr(blit.webcam.time, "strftime", lambda fmt: "styleblit_same_second")
    script_window(monkeypatch, keys, lambda image: shown.append(image.copy()))
    lines = []
    summary = run_webcam([style_png], Camera(clip_frames(60)), options=StylizeOptions(),
                         window=True, pace=30.0,
                         snapshot_dir=str(tmp_path), log=lines.append, mirror=True)
    assert summary["frames"] == 5 and len(outputs) == 5
    def mirrored(*parts):
        return np.hstack([p[:, ::-1] for p in parts])

    (f0, o0), (f1, o1), (f2, o2), (f3, o3), (f4, o4) = outputs
    # o after frame 0 (side by side), m after frame 2 (mirror off)
    expected = [mirrored(o0), mirrored(f1, o1), mirrored(f2, o2), np.hstack([f3, o3]),
                np.hstack([f4, o4])]
    assert len(shown) == 5
    for view, want in zip(shown, expected):
        assert (view[:4] == 255).all()  # the overlay
        np.testing.assert_array_equal(view[4:], want[4:])
    snaps = sorted(n for n in os.listdir(tmp_path) if n.startswith("styleblit_"))
    assert snaps == ["styleblit_same_second-2.png", "styleblit_same_second.png"]
    # as the camera sees it: unmirrored, no overlay
    np.testing.assert_array_equal(read_image(tmp_path / snaps[1]), np.hstack([f1, o1]))
    np.testing.assert_array_equal(read_image(tmp_path / snaps[0]), np.hstack([f3, o3]))
    assert [line.startswith("saved ") for line in lines] == [True, True]


def test_auto_landmark_every_follows_the_cost_against_the_camera():
    from blit.webcam import AutoLandmarkEvery

    auto = AutoLandmarkEvery(window=5, low=0.85, min_samples=3)
    # keeping up with a 60 Hz camera: every frame searched
    assert [auto.update(searched=True, frame_ms=14.0, interval_ms=16.7) for _ in range(6)] == [1] * 6
    # slower than the camera: every second frame, once the median says so
    assert [auto.update(searched=True, frame_ms=20.0, interval_ms=16.7) for _ in range(4)] == \
        [1, 1, 2, 2]
    # carried frames are cheap but say nothing about a searched frame's cost
    assert auto.update(searched=False, frame_ms=9.0, interval_ms=16.7) == 2
    # within the band (85-100 % of the interval) it stays; below, back to 1
    assert [auto.update(searched=True, frame_ms=15.5, interval_ms=16.7) for _ in range(5)] == [2] * 5
    assert [auto.update(searched=True, frame_ms=12.0, interval_ms=16.7) for _ in range(3)] == \
        [2, 2, 1]
    # a slower camera (30 Hz) needs no carrying at that cost; no interval yet: no change
    assert auto.update(searched=True, frame_ms=20.0, interval_ms=33.3) == 1
    assert AutoLandmarkEvery().update(searched=True, frame_ms=99.0, interval_ms=None) == 1


def test_latest_frame_hands_the_waiting_frame_over_to_a_new_receiver():
    """hand_over (the webcam's style switch): the frame handed on but not
    read yet is handed to the new receiver too, before any newer frame, so
    that the new stylizer is given every frame it will paint, in order."""
    cam = FakeCamera(60, fps=400)
    handed = {"old": [], "new": []}
    to = ["old"]

    def start(frame, t):
        handed[to[0]].append(int(frame[0, 0, 0]))

    def swap():
        to[0] = "new"
        return "swapped"

    with LatestFrame(cam, start=start) as capture:
        first = int(capture.read()[0][0, 0, 0])
        deadline = time.perf_counter() + 5.0
        while len(handed["old"]) < 2 and time.perf_counter() < deadline:
            time.sleep(0.001)  # the next frame is handed on as it comes
        # one frame handed on and not read: no other is handed on meanwhile
        assert len(handed["old"]) == 2 and handed["old"][0] == first < handed["old"][1]
        waiting = handed["old"][1]
        assert capture.hand_over(swap) == "swapped"
        assert handed["new"] == [waiting]  # handed over at once, before any newer frame
        later = [int(capture.read()[0][0, 0, 0]) for _ in range(3)]
    assert later[0] == waiting and later == sorted(set(later))
    assert handed["new"][:3] == later  # each read was handed to the new receiver first


def test_webcam_reports_a_missing_camera(capsys):
    assert main(["webcam", "--camera", "57", "--no-window", "--frames", "1"]) == 1
    err = capsys.readouterr().err
    assert "camera 57" in err and len(err.strip().splitlines()) == 1


def test_webcam_camera_and_source_together_are_refused(tmp_path, style_png, capsys):
    """--camera 1 --source FILE read the file and left the camera unsaid; the
    file alone is read to its end, said."""
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    with pytest.raises(SystemExit) as exit_:
        main(["webcam", "--style", style_png, "--source", src, "--camera", "1", "--no-window",
              "--frames", "2", "-q"])
    assert exit_.value.code == 2
    assert "--camera and --source: give one" in capsys.readouterr().err
    # the summary says the file ended, and of its frames dropped (while a slow frame was
    # painted), those that came while the first was (it said "camera frames dropped")
    assert main(["webcam", "--style", style_png, "--source", src, "--no-window"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.search(rf"^2 frames, .* \d+ source frames dropped.*; {re.escape(src)} ended(;|$)",
                     summary), summary


def test_webcam_skips_a_style_file_that_is_missing(tmp_path, style_png, capsys):
    # (refused before the run, while one that does not load was skipped)
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    missing = str(tmp_path / "nope.png")
    assert main(["webcam", "--style", missing, "--style", style_png, "--source", src,
                 "--no-window", "--frames", "2"]) == 0
    out = capsys.readouterr()
    # (a diagnostic, on standard error as every command's; it was on standard output)
    assert f"styleblit: style skipped: {missing}: no such file\n" in out.err
    assert "style skipped" not in out.out
    assert main(["webcam", "--style", missing, "--source", src, "--no-window"]) == 1
    assert f"{missing}: no such file" in capsys.readouterr().err


def test_webcam_reads_a_source_upright_as_video_does(tmp_path):
    """A phone's video, stored on its side with a display matrix: `video`
    reads it upright; the webcam's --source read it as stored (sideways)."""
    from blit.webcam import open_capture

    src = write_clip(tmp_path / "in.mp4", n=3, size=(130, 162), audio=False, rotation=90)
    source = open_source(src)
    want = [item[1] for item in source if item[0] == "video"]
    source.close()
    cap = open_capture(src)
    got = [cap.read()[1] for _ in want]
    cap.release()
    assert want[0].shape == (130, 162, 3)  # (upright: stored as 130 wide, 162 high)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("command", ["image", "video", "webcam"])
def test_max_faces_and_threshold_beyond_their_limits_are_usage_errors(tmp_path, capsys,
                                                                      command):
    """--max-faces 2**31 went to mediapipe as a C int (a traceback), and
    --threshold 1e39 to the kernels as a float32 (an overflow warning): now
    both are refused as the command line is read (exit code 2)."""
    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    args = {"image": ["image", "-o", str(tmp_path / "o.png")],
            "video": ["video", src, "-o", str(tmp_path / "o.mp4")],
            "webcam": ["webcam", "--source", src, "--no-window"]}[command]
    for option, value, limit in (("--max-faces", "2147483648", "100"),
                                 ("--threshold", "1e39", "1e+30")):
        with pytest.raises(SystemExit) as info:
            main(args + [option, value])
        assert info.value.code == 2
        assert f"argument {option}: expected at most {limit}" in capsys.readouterr().err


def test_webcam_source_without_frames_is_an_error(tmp_path, style_png, capsys):
    notes = tmp_path / "notes.png"  # OpenCV opens it (an image sequence) but reads nothing
    notes.write_text("not a picture")
    assert main(["webcam", "--style", style_png, "--source", str(notes), "--no-window"]) == 1
    assert f"{notes}: no frame could be read" in capsys.readouterr().err


class FakeCamera:
    """Frames numbered 0, 1, 2, ... at ``fps``; the pixel value is the number."""

    def __init__(self, n, fps):
        self.n, self.fps, self.i = n, fps, 0
        self.released = threading.Event()

    def read(self):
        if self.i >= self.n:
            return False, None
        time.sleep(1.0 / self.fps)
        frame = np.full((4, 4, 3), self.i % 256, np.uint8)
        self.i += 1
        return True, frame

    def release(self):
        self.released.set()


def test_a_source_is_fitted_inside_the_size_asked_its_aspect_kept():
    """`webcam --source portrait.mp4 --size 640x480` squashed the portrait
    frames to 640x480; they are fitted inside it."""
    from blit.webcam import fit_inside

    assert fit_inside(480, 640, 640, 480) == (360, 480)
    assert fit_inside(1920, 1080, 640, 480) == (640, 360)
    assert fit_inside(640, 480, 640, 480) == (640, 480)
    portrait = [np.full((160, 128, 3), i, np.uint8) for i in range(3)]
    with LatestFrame(Camera(portrait), size=(640, 480)) as capture:
        frame, _ = capture.read()
    assert frame.shape == (480, 384, 3)


def test_latest_frame_never_waits_and_never_goes_back():
    cam = FakeCamera(60, fps=400)
    seen = []
    with LatestFrame(cam) as capture:
        while True:
            item = capture.read()
            if item is None:
                break
            seen.append(int(item[0][0, 0, 0]))
            time.sleep(0.01)  # a slow stylizer: the camera runs ahead
        dropped = capture.dropped
    assert cam.released.is_set()
    assert seen == sorted(set(seen))  # strictly newer every time
    assert dropped > 0 and len(seen) + dropped <= 60
    assert seen[-1] == 59 or len(seen) > 1


def test_latest_frame_hands_frames_to_start_before_they_are_read():
    """With ``start`` (the webcam's prefetch), a frame is handed on the
    moment it comes while none handed on waits to be read; every frame
    handed on is read, in order, with the timestamp it was handed on with,
    and frames still only go forwards."""
    cam = FakeCamera(60, fps=400)
    started, seen = {}, []

    def start(frame, t):
        started[int(frame[0, 0, 0])] = t

    with LatestFrame(cam, start=start) as capture:
        while True:
            item = capture.read()
            if item is None:
                break
            value = int(item[0][0, 0, 0])
            seen.append(value)
            if value in started:
                assert started[value] == item[1]
            time.sleep(0.01)  # a slow stylizer: the camera runs ahead
        dropped = capture.dropped
    assert seen == sorted(set(seen))
    assert set(started) <= set(seen) and 0 in started
    assert 1 < len(started) < len(seen) + 1 and dropped > 0 and len(seen) + dropped <= 60


@pytest.fixture
def umask_027():
    """Run under umask 027 (files 0640, folders 0750), restored afterwards."""
    from guides import io

    old = os.umask(0o027)
    io._umask.cache_clear()
    yield
    os.umask(old)
    io._umask.cache_clear()


def test_outputs_get_the_users_permissions_not_tempfiles(tmp_path, style_png, umask_027):
    # Outputs are made under a temporary name (tempfile: 0600 / 0700) and renamed; they
    # must end with the permissions a plain open() / mkdir gives, as a user expects of a
    # file to share.
    import stat

    from guides.landmarks import write_lm68

    def mode(p):
        return stat.S_IMODE(os.stat(p).st_mode)

    src = write_clip(tmp_path / "in.mp4", n=2, audio=False)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mp4"), "--quiet"]) == 0
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "frames"), "--quiet"]) == 0
    assert main(["prepare-style", style_png, "-o", str(tmp_path / "s.npz")]) == 0
    write_lm68(tmp_path / "p.lm68.txt", np.zeros((68, 2), np.float32))
    assert main(["image", "--style", style_png, HOPPER, "-o", str(tmp_path / "h.png"), "-q"]) == 0
    assert mode(tmp_path / "frames") == 0o750
    for name in ("o.mp4", "frames/frame_000001.png", "s.npz", "p.lm68.txt", "h.png"):
        assert mode(tmp_path / name) == 0o640, name


def test_colours_come_back_as_decoded_and_tagged(tmp_path):
    # PyAV's own BGR -> yuv420p (swscale) gave white back as (250, 253, 251) and
    # grey 128 as (123, 126, 124), and the output was untagged: an HD one is
    # shown as BT.709 by players, while it was encoded with BT.601
    path = str(tmp_path / "flat709.mp4")
    colours = [(255, 255, 255), (128, 128, 128), (16, 16, 16), (30, 60, 200)]
    with av.open(path, "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"qp": "0"}  # (lossless: the input is exactly its colours)
        ctx = s.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = 1, 1, 1, 1
        for i, bgr in enumerate(colours):
            rgb = np.full((48, 64, 3), bgr[::-1], np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=1)
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))

    def decoded(p):
        with av.open(p) as c:
            ctx = c.streams.video[0].codec_context
            tags = (ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc)
            return tags, [f.to_ndarray(format="bgr24").astype(int) for f in c.decode(video=0)]

    out = str(tmp_path / "out.mp4")
    assert main(["video", path, "-o", out, "-q"]) == 0  # (no face: the frames as they are)
    (_, before), (tags, after) = decoded(path), decoded(out)
    assert tags == (6, 1, 1, 1)  # BT.601 matrix, limited range; the input's primaries, transfer
    for a, b in zip(before, after):
        assert np.abs(a - b).max() <= 2, (a[0, 0], b[0, 0])
    assert np.abs(before[0] - 255).max() == 0 and np.abs(after[0] - 255).max() == 0  # white


def _clip_with_audio(path, codec, n=8, sample_rate=48000):
    """An MJPEG clip of ``n`` frames (24 fps) with a stereo ``codec`` sound."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("mjpeg", rate=RATE)
        v.width, v.height, v.pix_fmt = 128, 160, "yuvj420p"
        a = c.add_stream(codec, rate=sample_rate)
        a.layout = "stereo"
        for i, f in enumerate(clip_frames(n)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i
            c.mux(v.encode(frame))
        total = sample_rate * n // RATE
        step = a.codec_context.frame_size or 960
        for k in range(0, total - step + 1, step):
            t = (np.arange(k, k + step) / sample_rate)
            pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).repeat(2)[None]
            af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
            af.sample_rate, af.pts = sample_rate, k
            c.mux(a.encode(af))
        c.mux(a.encode(None))
        c.mux(v.encode(None))
    return str(path)


@pytest.mark.parametrize("codec, name, container, output, elsewhere", [
    ("libopus", "opus", "mkv", "o.mov", ".mkv"), ("flac", "flac", "mkv", "o.mov", ".mkv"),
    ("pcm_s16le", "pcm_s16le", "avi", "o.mp4", ".mov or .mkv")])
def test_audio_an_output_container_refuses_is_made_aac_with_a_line(codec, name, container,
                                                                   output, elsewhere, tmp_path,
                                                                   capsys):
    # The .mov muxer refused Opus and FLAC only when its header was written, and the .mp4
    # one an AVI's PCM (no channel layout) only at its trailer: tracebacks, the second
    # with a hidden temporary file left behind. Found first now, such a stream is
    # re-encoded as AAC, on the same timeline
    src = _clip_with_audio(tmp_path / f"in.{container}", codec)
    out = tmp_path / output
    assert main(["video", src, "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert f"audio stream 1 ({name}) re-encoded as AAC: the " in err
    # every container that would copy it is named; FFmpeg's bare "Invalid argument"
    # (the .mov muxer's answer to Opus and FLAC) is no reason to print
    assert f"; an {elsewhere} output copies it unchanged" in err and "Traceback" not in err
    assert "Invalid argument" not in err
    info = probe(out)
    assert info["frames"] == 8 and info["streams"] == ["video", "audio"]
    with av.open(src) as c, av.open(str(out)) as o:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
        aac = o.streams.audio[0]
        assert aac.codec_context.name == "aac" and aac.rate == 48000
        assert abs(float(aac.start_time * aac.time_base)) < 1e-3
        again = np.concatenate([f.to_ndarray()[0] for f in o.decode(audio=0)])
    sine = pcm.reshape(-1, 2)[:, 0] if codec != "libopus" else None  # (s16, interleaved)
    if sine is not None:  # the same sound at the same time, within AAC's error
        n = min(len(sine), len(again)) - 2048
        assert n > 10000 and np.abs(again[:n] * 32768 - sine[:n]).mean() < 400
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(src), output])
    mkv = tmp_path / "o.mkv"
    assert main(["video", src, "-o", str(mkv), "-q"]) == 0
    assert "not copied" not in capsys.readouterr().err
    assert probe(mkv)["streams"] == ["video", "audio"]


def test_clips_joined_end_to_end_are_one_line(tmp_path, capsys):
    # a camera's clips joined with `cat`: the timestamps start again at the join
    one = tmp_path / "one.ts"
    with av.open(str(one), "w", format="mpegts") as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 128, 160, "yuv420p"
        for i, f in enumerate(clip_frames(6)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    joined = tmp_path / "joined.ts"
    joined.write_bytes(one.read_bytes() * 2)
    out = tmp_path / "o.mp4"
    assert main(["video", str(joined), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"styleblit: error: {joined}: its timestamps go back in the video at "
                          "frame 7") and "\n" not in err
    assert sorted(os.listdir(tmp_path)) == ["joined.ts", "one.ts"]


def test_an_interrupt_while_a_frame_is_written_keeps_the_frame(tmp_path):
    # Ctrl-C landing after the encoder returned a frame's packets and before they were
    # muxed lost them: a frame missing inside the partial output (2 of 5 interrupts)
    from blit.video import open_source, output_sink

    src = write_clip(tmp_path / "in.mp4", n=12, audio=False)
    source = open_source(src)
    sink = output_sink(str(tmp_path / "out.mp4"), source, False)

    class Interrupting:  # the encoder's stream, with Ctrl-C as it returns at frame 8
        def __init__(self, stream):
            self.stream = stream

        def encode(self, frame):
            packets = self.stream.encode(frame)
            if frame is not None and sink.frames == 7:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # (delivered here, before mux)
            return packets

    items = iter(source)
    with pytest.raises(KeyboardInterrupt):
        for item in items:
            if item[0] == "video":
                sink.write(item[1], item[2])
                if sink.frames == 1:
                    sink.stream = Interrupting(sink.stream)
    assert sink.frames == 8
    sink.stream = sink.stream.stream
    sink.close()
    source.close()
    pts = probe(tmp_path / "out.mp4")["pts"]
    assert len(pts) == 8 and len(set(np.diff(pts))) == 1, pts  # every frame, none missing


def test_subtitles_and_a_change_of_size_are_said(tmp_path, capsys):
    # both went without a word: subtitles dropped, frames of another size stretched
    from fractions import Fraction
    from types import SimpleNamespace

    from blit.video import _VideoFileSink

    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,300\nhello\n\n")
    src = write_clip(tmp_path / "in.mp4", n=4, audio=False)
    mkv = tmp_path / "in.mkv"
    with av.open(src) as v, av.open(str(srt)) as s, av.open(str(mkv), "w") as c:
        streams = {v.streams.video[0]: c.add_stream_from_template(v.streams.video[0]),
                   s.streams[0]: c.add_stream_from_template(s.streams[0])}
        for packet in [*v.demux(), *s.demux()]:
            if packet.dts is not None:
                packet.stream = streams[packet.stream]
                c.mux(packet)
    assert main(["video", str(mkv), "-o", str(tmp_path / "out.mkv"), "-q"]) == 0
    assert "in.mkv: its 1 subtitle stream(s) are not copied" in capsys.readouterr().err
    source = SimpleNamespace(path="cam.ts", rate=Fraction(RATE), time_base=Fraction(1, RATE),
                             rotation=0, audio=[], start=0)
    sink = _VideoFileSink(str(tmp_path / "o.mp4"), source)
    for i, size in enumerate([(48, 64), (48, 64), (96, 128), (96, 128)]):
        sink.write(np.zeros(size + (3,), np.uint8), i)
    sink.close()
    err = capsys.readouterr().err.splitlines()
    assert err == ["styleblit: warning: cam.ts: frame 3 is 128x96, not 64x48 as the first: it and "
                   "the frames of its size are stretched to the first's (a video keeps one size)"]
    assert probe(tmp_path / "o.mp4")["size"] == (64, 48)


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_tags_chapters_and_the_pixels_aspect_are_kept(tmp_path, style_png, ext, capsys):
    """The file's title and creation time, the tracks' languages and names, a
    QuickTime timecode, the chapters and non-square pixels (anamorphic
    video) come through; the encoder's own tags are not copied."""
    from fractions import Fraction

    chapters = [{"id": 1, "start": 0, "end": 10, "time_base": Fraction(1, RATE),
                 "metadata": {"title": "Intro"}},
                {"id": 2, "start": 10, "end": 20, "time_base": Fraction(1, RATE),
                 "metadata": {"title": "Talk"}}]
    tags = {"": {"title": "My Clip", "creation_time": "2024-05-01T12:34:56.000000Z",
                 "comment": "shot on a phone"},
            "video": {"language": "eng"}, "audio": {"language": "spa", "title": "Spanish"}}
    if ext == ".mov":  # (its tmcd track takes the video's handler name: no data stream said)
        tags["video"].update(timecode="01:00:00:00", handler_name="Main video")
    src = write_clip(tmp_path / f"in{ext}", n=20, tags=tags, sar=Fraction(4, 3),
                     chapters=chapters if ext != ".mov" else None)
    out = tmp_path / f"out{ext}"
    assert main(["video", "--style", style_png, src, "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    with av.open(str(out)) as c:
        for key in ("title", "creation_time", "comment"):
            assert c.metadata.get(key, c.metadata.get(key.upper())) == tags[""][key], key
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.sample_aspect_ratio == Fraction(4, 3)
        assert a.metadata.get("language") == "spa"
        assert (a.metadata.get("title") or a.metadata.get("name")) == "Spanish"
        if ext == ".mov":
            assert v.metadata.get("timecode") == "01:00:00:00"
            assert [s.type for s in c.streams].count("data") == 1  # (its tmcd track)
        else:
            assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Intro", "Talk"]
            starts = [float(ch["start"] * ch["time_base"]) for ch in c.chapters()]
            assert starts == pytest.approx([0.0, 10 / RATE], abs=1e-3)


def test_a_matroska_file_that_starts_late_is_not_called_cut_short(tmp_path, style_png, capsys):
    """Matroska states its duration from 0, not from the first timestamp: a
    complete file from 3 s on was said to end at 0.8 s 'of the 3.8 s its
    header gives (is the file cut short?)'."""
    src = write_clip(tmp_path / "late.mkv", n=20, start=3 * RATE)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mkv"), "-q"]) == 0
    assert "cut short" not in capsys.readouterr().err
    # one that is cut short is said to end where it ends, counted from 0 as
    # the duration beside it (it was counted from its first frame)
    import re

    src = write_clip(tmp_path / "late2.mkv", n=120, start=3 * RATE)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(open(src, "rb").read()[: os.path.getsize(src) // 2])
    assert main(["video", "--style", style_png, str(cut), "-o", str(tmp_path / "c.mkv"),
                 "-q"]) == 0
    said = re.search(r"end at ([\d.]+) s of the ([\d.]+) s its header gives",
                     capsys.readouterr().err)
    assert said and 3.0 < float(said[1]) < float(said[2]) - 1 and abs(float(said[2]) - 8.0) < 0.1


def test_vorbis_copied_into_an_mp4_is_said_and_so_is_a_data_stream_dropped(tmp_path, style_png,
                                                                        capsys):
    """Few players play Vorbis in an MP4 (said, as for PCM); a data stream
    (not a timecode, not chapters) is not copied, and said so."""
    src = str(tmp_path / "v.mkv")
    with av.open(src, "w") as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 128, 160, "yuv420p"
        a = c.add_stream("vorbis", rate=SAMPLE_RATE)
        a.layout = "stereo"  # (FFmpeg's own encoder: stereo only, experimental)
        a.options = {"strict": "-2"}
        for i, f in enumerate(clip_frames(6)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i
            c.mux(v.encode(frame))
        pcm = np.zeros((2, SAMPLE_RATE // 4), np.float32)
        af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="stereo")
        af.sample_rate, af.pts = SAMPLE_RATE, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
        c.mux(v.encode(None))
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mp4"), "-q"]) == 0
    assert "its audio (vorbis) is copied unchanged into the MP4, where few players play it" in \
        capsys.readouterr().err
    # a transport stream with a KLV data stream
    from fractions import Fraction

    src = str(tmp_path / "klv.ts")
    with av.open(src, "w", format="mpegts") as c:
        v = c.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 128, 160, "yuv420p"
        data = c.add_data_stream("klv")
        for i, f in enumerate(clip_frames(6)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        for j in range(3):
            packet = av.Packet(b"DATA%d" % j)
            packet.stream, packet.time_base = data, Fraction(1, 1000)
            packet.pts = packet.dts = j * 50
            c.mux(packet)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "k.mp4"), "-q"]) == 0
    assert "klv.ts: its 1 data stream(s) are not copied" in capsys.readouterr().err


def test_a_10_bit_video_is_said_to_become_8_bit(tmp_path, style_png, capsys):
    src = str(tmp_path / "deep.mkv")
    with av.open(src, "w") as c:
        v = c.add_stream("ffv1", rate=RATE)
        v.width, v.height, v.pix_fmt = 128, 160, "yuv420p10le"
        for i, f in enumerate(clip_frames(3)):
            frame = av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format="yuv420p10le")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mp4"), "-q"]) == 0
    assert "deep.mkv: its 10-bit video (yuv420p10le) is written as 8-bit H.264 (4:2:0)" in \
        capsys.readouterr().err


def test_fps_given_for_a_video_file_is_said_to_apply_to_folders_only(tmp_path, style_png,
                                                                      capsys):
    src = write_clip(tmp_path / "a.mp4", n=4)
    assert main(["video", "--style", style_png, src, "-o", str(tmp_path / "o.mp4"), "-q",
                 "--fps", "10"]) == 0
    assert "--fps 10 is the frame rate of a folder of images; a video file keeps its own" in \
        capsys.readouterr().err
    assert probe(tmp_path / "o.mp4")["rate"] == RATE
    folder = write_frames(tmp_path / "in", clip_frames(3))
    assert main(["video", "--style", style_png, folder, "-o", str(tmp_path / "f.mp4"), "-q",
                 "--fps", "10"]) == 0
    assert capsys.readouterr().err == "" and probe(tmp_path / "f.mp4")["rate"] == 10
