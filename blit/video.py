"""``styleblit video``: stylize a video file (or a folder of frames).

A thin loop over :class:`blit.stream.Stylizer` with PyAV for the file
formats:

* video out is H.264 (libx264, yuv420p; odd sizes padded by one edge pixel),
  with the input's frame rate, time base, timestamps and rotation metadata;
  frames are stylized upright and turned back, so a phone video keeps its
  display matrix;
* audio streams are copied packet for packet (no re-encoding), muxed in
  order with the video; one the output's container refuses as it is is
  re-encoded as AAC (:class:`_AacAudio`), with a warning;
* a folder of images (``*.png``, ``*.jpg``) can stand for the input and/or
  the output (``frame_000001.png``, ...);
* nothing is lost: the output is written beside its final name and renamed at
  the end; Ctrl-C finalises what was written, keeps it as
  ``NAME.partial.EXT`` (``NAME.partial-2.EXT`` if that exists) and exits
  with code 130;
* a file that cannot be read is one line on stderr and exit code 1; a file
  that breaks off keeps the frames decoded before the break, with a warning;
* a face much larger than the exemplar's (4K, a close-up) is painted at the
  exemplar's scale and enlarged back, with the scale chosen on the first
  frame with a face (``Stylizer(scale="auto")``; ``--native-scale`` paints
  at the video's own scale).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from fractions import Fraction

import numpy as np

from blit.cli import (MOST_FACES, _add_style_args, add_device_arg, add_stylize_args,
                      check_frames_folder, check_output, check_outputs_apart, device_from_args,
                      frames_only, load_style_from_args, number, options_from_args, register,
                      style_input_paths)
from guides.io import InputError, exists_meanwhile, publish, temp_prefix, usual_permissions

__all__ = ["stylize_video", "open_source", "make_stylizer", "stylize_items", "first_face_scale",
           "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS", "image_files", "partial_path", "free_partial_path",
           "earlier_partials", "PROBE_SECONDS",
           "check_video_output", "video_input_paths"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".m4v")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
METHODS = ("patch", "gan")  # gan: gan_distill.infer.GanStylizer (needs torch)

#: :func:`first_face_scale` looks for a face in this many seconds of a video.
PROBE_SECONDS = 10.0


def _warn(msg):
    print(f"styleblit: warning: {msg}", file=sys.stderr)


def _partial_parts(output):
    root, ext = os.path.splitext(output.rstrip("/\\"))
    if ext.lower() in VIDEO_EXTENSIONS:
        return root, ext
    return output.rstrip("/\\"), ""


def partial_path(output, n=1):
    """Where an interrupted run leaves its output: ``out.mp4`` -> ``out.partial.mp4``,
    a folder ``frames`` -> ``frames.partial``; the ``n``-th of them (``n`` > 1)
    ``out.partial-2.mp4``, ``frames.partial-2``."""
    root, ext = _partial_parts(output)
    return f"{root}.partial{ext}" if n == 1 else f"{root}.partial-{n}{ext}"


def free_partial_path(output):
    """The first :func:`partial_path` of ``output`` that names nothing yet: a
    second interrupted run of the same output keeps the first one's frames
    (it may hold more) and is saved beside them."""
    n = 1
    while os.path.lexists(partial_path(output, n)):
        n += 1
    return partial_path(output, n)


def earlier_partials(output):
    """The partial outputs of ``output`` that earlier interrupted runs left
    (:func:`partial_path` with any ``n``), sorted by ``n``."""
    root, ext = _partial_parts(output)
    folder, base = os.path.split(root)
    pattern = re.compile(re.escape(base) + r"\.partial(?:-([2-9]|[1-9]\d+))?" + re.escape(ext))
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    found = []
    for name in names:
        m = pattern.fullmatch(name)
        if m:
            found.append((int(m.group(1) or 1), os.path.join(folder, name)))
    return [path for _, path in sorted(found)]


def _is_video_path(path):
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _upright(image, rotation):
    """Turn a decoded frame as the display matrix says (``rotation`` degrees CCW)."""
    import cv2

    r = rotation % 360
    if r == 90:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if r == 180:
        return cv2.rotate(image, cv2.ROTATE_180)
    if r == 270:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    return image


def _stored(image, rotation):
    """Inverse of :func:`_upright`."""
    return _upright(image, -rotation)


# --------------------------------------------------------------------------
# Sources: ("video", bgr, pts, seconds) and ("audio", packet) items in order
# --------------------------------------------------------------------------

#: Containers whose timestamps run on from a clock that does not start at 0
#: (an MPEG transport or program stream: a camcorder's .mts, a DVD's .vob).
_CLOCK_FORMATS = {"mpegts", "mpeg"}


def _format_names(container):
    """The names of ``container``'s format (FFmpeg's demuxer names some
    formats together: ``mov,mp4,m4a,3gp,3g2,mj2``)."""
    return set((container.format.name or "").split(","))


def _on_a_clock(container):
    """Whether ``container`` is of one of the :data:`_CLOCK_FORMATS`."""
    return bool(_format_names(container) & _CLOCK_FORMATS)


def _start_seconds(container):
    """What is taken off every timestamp written (seconds, a Fraction): the
    start of a transport or program stream, whose clock does not begin at
    0 (an .mp4 of it would open with that long a blank: 600 s for a
    camcorder's clip that starts at 600 s); 0 for other containers, whose
    start is kept as it is (a video that starts after its audio)."""
    if not _on_a_clock(container) or not container.start_time or container.start_time < 0:
        return Fraction(0)
    return Fraction(int(container.start_time), 1_000_000)  # (AV_TIME_BASE units)


#: Undecodable video packets skipped before a file with no frame decoded yet
#: is refused as one that cannot be decoded.
MAX_BAD_PACKETS = 30

#: Frames in a row that go back in time held as frames the decoder gives late
#: (:meth:`_VideoFileSource._demux`; H.264 reorders at most 16).
MAX_LATE_FRAMES = 16

#: A forward jump between consecutive frames' timestamps of at least this
#: many frame intervals (at the stream's average rate) is said as a gap:
#: frames the demuxer skipped silently (damaged data in a Matroska cluster,
#: which it resynchronises past without an error), or a pause in a
#: variable-rate recording. One or two frames' time is neither (a frame
#: dropped by the camera, a packet skipped and said as damaged).
GAP_INTERVALS = 4


def jumped_ahead(before, t, after, interval):
    """Whether the timestamp ``t`` between ``before`` and ``after`` is
    damaged: it jumps :data:`GAP_INTERVALS` frame intervals (``interval``)
    or more past ``before``, and ``after`` comes back between the two (a transport
    stream's header of random bytes read as a timestamp, hours on). A jump
    that ``after`` goes on from is a gap in the video."""
    return t - before >= GAP_INTERVALS * interval and before < after < t


def frame_gaps(pts, interval, at_least=GAP_INTERVALS):
    """``(before, after, frames)`` for each jump of ``pts`` (timestamps in
    presentation order) of at least ``at_least`` × ``interval``: the
    timestamps on either side, and about how many frames' time is missing
    between them."""
    gaps = []
    for before, after in zip(pts, pts[1:]):
        if before is not None and after is not None and after - before >= at_least * interval:
            gaps.append((before, after, max(1, round((after - before) / interval) - 1)))
    return gaps


#: Seconds past the file's end (past the stream's previous audio packet,
#: where the file states no duration) beyond which an audio packet's
#: timestamp is taken as damaged, not as a gap in the sound.
AUDIO_JUMP_SECONDS = 60

#: Why the demuxer broke off on an IndexError (:meth:`_VideoFileSource._demux`).
_NEW_STREAM = "damaged data: a stream appeared in the middle of the file"


class _VideoFileSource:
    def __init__(self, path):
        import av

        self.path = path
        try:
            self.container = av.open(path, "r")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not a video file that can be read ({_reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"{path}: has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.audio = [s for s in self.container.streams.audio]
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(30)
        self.rate = Fraction(rate)
        self.time_base = self.stream.time_base or 1 / self.rate
        self.interval = 1 / (self.rate * self.time_base)  # one frame's time, in time_base units
        self.frames = self.stream.frames or None
        self.start = _start_seconds(self.container)
        self.trusts_seeks = not _on_a_clock(self.container)
        self.rotation = 0  # the display matrix's, read from each decoded frame
        self.decoded = 0
        self._given = None  # (the last frame's timestamp given by the file, its number)
        self.stopped = None  # why decoding stopped on an error (and said so)
        self._bad = []  # (timestamp, reason) of the video packets that could not be decoded
        # (seconds, reason) of the audio packets dropped as damaged: said by the sink,
        # which drops those the muxer refuses too (one line, once all are written)
        self._bad_audio = []
        self._ends = {}  # stream type -> where its last packet ends (seconds)
        # (where the file ends, seconds: an audio packet far past it is damaged)
        self._end = (Fraction(int(self.container.start_time or 0) + int(self.container.duration),
                              1_000_000) if self.container.duration else None)

    def __iter__(self):
        self._ends = {}
        self._bad_audio = []
        pts = []  # the video frames' (for the gaps between them)
        for item in self._demux(self.stream, *self.audio, skip_bad=True):
            if item[0] == "video":
                pts.append(item[2])
            yield item
        if self._bad:
            self._say_bad()
        elif self.decoded and not self.stopped:
            self._check_length(self.decoded, "decoded", "decoded")
        self._say_gaps(pts, "decoded")

    def _say_gaps(self, pts, verb):
        """Warn of the gaps in the video's timestamps ``pts`` (in order;
        :func:`frame_gaps`): time with no frame, which the output keeps
        (the frame before it stays on screen)."""
        gaps = frame_gaps(pts, self.interval)
        if not gaps:
            return
        before, after, _ = gaps[0]
        where = f"from {float(before * self.time_base):.2f} to {float(after * self.time_base):.2f} s"
        frames = sum(n for _, _, n in gaps)
        what = (f"has no frame {where}" if len(gaps) == 1 else
                f"has {len(gaps)} gaps with no frame, the first {where}")
        _warn(f"{self.path}: its video {what} (about {frames} frames' time at {float(self.rate):.4g} "
              "fps: damaged data skipped by the demuxer, or a pause in a variable-rate "
              f"recording); the frames {verb} keep their times, the frame before a gap held "
              "through it")

    def _say_bad(self):
        """Warn of the video packets skipped as undecodable (damaged data in
        the middle of a file, which ffmpeg also skips)."""
        times = [t for t, _ in self._bad if t is not None]
        reason, n = self._bad[0][1], len(self._bad)
        at = f"the first at {float(min(times)):.2f} s" if times else "the first"
        lost = (f", {self.frames - self.decoded} of the {self.frames} frames its header lists "
                "lost" if self.frames and self.frames > self.decoded else "")
        _warn(f"{self.path}: {n} damaged video packet(s) skipped ({at}: {reason}); "
              f"{self.decoded} frames decoded{lost}, the frames before and after them kept")
        self._bad = []

    def _check_length(self, count, verb, kept):
        """Warn when ``count`` frames (``verb``: decoded, or held by the
        packets) are fewer than the header lists, or, where it lists none,
        end before its duration (:meth:`_check_duration`)."""
        # (one frame short is not said: an AVI's header can count one more,
        # an empty index entry before its first frame)
        if self.frames and count < self.frames - 1:
            _warn(f"{self.path}: {verb} {count} of the {self.frames} frames its header lists "
                  f"(is the file cut short?); kept the frames {kept}")
        else:
            self._check_duration(count)

    def _damaged_audio(self, packet, last, record=False):
        """Why the timestamps of the audio ``packet`` are damaged (damaged
        data in a transport stream: a timestamp read from random bytes), or
        None: it does not come after the stream's previous packet kept
        (``last``: stream index -> its decoding time, updated with a packet
        kept), it lies more than :data:`AUDIO_JUMP_SECONDS` past the end of
        the file, or it is presented before it is decoded. A muxer refuses
        such a packet (the MP4 one, a timestamp that far, and then every
        packet after it): the output could not be written, for a damage of
        the input. With ``record``, a damaged packet is noted in
        ``_bad_audio`` (where the stream was, and why) for the sink's line."""
        reason = self._audio_damage(packet, last)
        if reason is not None and record:
            self._bad_audio.append((last.get(packet.stream.index, packet.dts)
                                    * packet.time_base, reason))
        return reason

    def _audio_damage(self, packet, last):
        index, dts = packet.stream.index, packet.dts
        before = last.get(index)
        at = dts * packet.time_base
        if before is not None and dts <= before:
            return f"its timestamp goes back to {float(at):.2f} s"
        # (past the previous packet where that is past the end: a header's duration short)
        ends = [t for t in (self._end, None if before is None else before * packet.time_base)
                if t is not None]
        if ends and at - max(ends) > AUDIO_JUMP_SECONDS:
            return f"its timestamp jumps to {float(at):.2f} s"
        if packet.pts is not None and packet.pts < dts:
            return (f"presented at {float(packet.pts * packet.time_base):.2f} s, before it is "
                    f"decoded at {float(at):.2f} s")
        last[index] = dts
        return None

    def _packet_end(self, packet):
        """Note where ``packet`` ends on its stream's type's timeline."""
        if packet.pts is None or not packet.size:
            return
        end = (packet.pts + (packet.duration or 0)) * packet.time_base
        kind = packet.stream.type
        self._ends[kind] = max(self._ends.get(kind, end), end)

    def _check_duration(self, frames):
        """A file that lists no frame count (Matroska, fragmented MP4: a
        recording that was cut off) but states its duration is cut short
        when its video and its audio both end more than a second before that
        duration: a warning. (Other containers' durations can be estimates
        from the bit rate.)"""
        if self.frames or not self._ends or not self.container.duration:
            return
        if not _format_names(self.container) & {"matroska", "mov"}:
            return
        duration = Fraction(int(self.container.duration), 1_000_000)
        start = Fraction(int(self.container.start_time or 0), 1_000_000)
        end = max(self._ends.values()) - start
        # (Matroska's duration counts from 0, not from the first timestamp: a
        # complete file from 3.0 to 5.54 s states 5.54; so short of it both ways)
        if end + start < duration - 1:
            what = f"its {frames} frames" + (" and its audio end" if self.audio else " end")
            _warn(f"{self.path}: {what} at {float(end + start):.2f} s of "
                  f"the {float(duration):.2f} s its header gives (is the file cut short?); "
                  "kept the frames decoded")

    def _demux(self, *streams, skip_bad=False):
        """Audio items and decoded video items of ``streams``; a damaged
        video packet (``skip_bad``) is skipped and noted in ``self._bad``,
        else decoding stops there with a warning."""
        import av

        last = None  # the last video frame's timestamp
        late = []  # the frames since that go back in time (skip_bad)
        held, before = [], None  # a frame that jumped ahead (_jumped), and `last` before it
        last_audio = {}  # each audio stream's last packet's decoding time (_damaged_audio)
        drained = False  # the video's empty packet at the end came
        try:
            # demux ends with an empty packet per stream, which drains its decoder
            for packet in self.container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is None:
                        continue
                    if self._damaged_audio(packet, last_audio, record=True):
                        continue  # (skipped, as ffmpeg skips a damaged video packet)
                    self._packet_end(packet)
                    yield ("audio", packet)
                    continue
                self._packet_end(packet)
                drained |= not packet.size
                try:
                    frames = packet.decode()
                except av.error.EOFError:
                    raise
                except av.error.FFmpegError as exc:  # damaged data: skipped, as ffmpeg does
                    if not skip_bad or (len(self._bad) >= MAX_BAD_PACKETS and not self.decoded):
                        raise
                    at = None if packet.pts is None else packet.pts * packet.time_base
                    self._bad.append((at, _reason(exc)))
                    continue
                for frame in frames:
                    if held:
                        if self._jumped(held[0], before, frame):
                            last = before  # (its timestamp damaged: the frame left out)
                        else:
                            yield self._video_item(held[0])
                        held = []
                    back = frame.pts is not None and last is not None and frame.pts <= last
                    if back and self._bad:
                        # a frame the decoder gives late after damaged packets skipped
                        # (B-frames): not in time order, so not kept
                        continue
                    if back and skip_bad:
                        # held: a frame given late where the demuxer lost packets of damaged
                        # data (no decoding error: nothing skipped) is one or a few, and
                        # the next frame is in order again; clips joined end to end go
                        # back for good, which the sink says
                        late.append(frame)
                        if len(late) <= MAX_LATE_FRAMES:
                            continue
                        last = late[-1].pts
                        yield from map(self._video_item, late)
                        late = []
                        continue
                    if late:
                        self._bad.extend((f.pts * self.time_base, "a frame out of time order")
                                         for f in late)
                        late = []
                    if self._jumps(last, frame):  # held until the next frame says why
                        held, before, last = [frame], last, frame.pts
                        continue
                    last = frame.pts if frame.pts is not None else last
                    yield self._video_item(frame)
            yield from map(self._video_item, held + late)
            if self._bad and not self.decoded:
                raise InputError(f"{self.path}: cannot be decoded ({self._bad[0][1]})")
        except av.error.EOFError:
            yield from map(self._video_item, held)
        except av.error.FFmpegError as exc:
            yield from map(self._video_item, held)
            self._stop(_reason(exc))
        except IndexError:
            # PyAV's demuxer, at a stream that damaged data made appear in the middle of
            # a transport stream (one PyAV's list of streams lacks): after the empty
            # packets that end the streams read, the file was read through
            yield from map(self._video_item, held)
            if not drained:
                self._stop(_NEW_STREAM)
                return
            yield from map(self._video_item, late)
            if self._bad and not self.decoded:
                raise InputError(f"{self.path}: cannot be decoded ({self._bad[0][1]})") from None

    def _jumps(self, last, frame):
        """Whether ``frame``'s timestamp jumps :data:`GAP_INTERVALS` frames
        or more past ``last``: a gap in the video, or a timestamp of damaged
        data (:meth:`_jumped`)."""
        return (frame.pts is not None and last is not None
                and frame.pts - last >= GAP_INTERVALS * self.interval)

    def _jumped(self, frame, before, after):
        """Whether ``frame``, held as it jumped ahead of ``before``, had its
        timestamp damaged (:func:`jumped_ahead`, with the frame ``after``
        it); noted in ``_bad``."""
        if after.pts is None or not jumped_ahead(before, frame.pts, after.pts, self.interval):
            return False
        self._bad.append((before * self.time_base, "its timestamp jumps to "
                          f"{float(frame.pts * self.time_base):.2f} s"))
        return True

    def _stop(self, reason):
        """Decoding broke off (``reason``): the frames decoded are kept, with a
        warning, as a file cut short keeps them; none decoded, an InputError."""
        if not self.decoded:
            raise InputError(f"{self.path}: cannot be decoded ({reason})") from None
        self.stopped = reason
        _warn(f"{self.path}: decoding stopped after {self.decoded} frames ({reason}); "
              "kept the frames decoded")

    def index(self):
        """Presentation timestamps of the video frames, in order, from the
        packets alone (nothing decoded); None when some packet has none, and
        frames can then be found only by decoding from the start.

        Reads the file through once; call before iterating."""
        import av

        pts, dts, complete, broke = [], [], True, False
        self._ends = {}
        last_audio, drained = {}, False
        try:
            for packet in self.container.demux(self.stream, *self.audio):
                if packet.stream.type == "audio":
                    if packet.dts is not None and not self._damaged_audio(packet, last_audio):
                        self._packet_end(packet)  # (the damaged ones: audio_packets() says them)
                    continue
                self._packet_end(packet)
                drained |= not packet.size
                if packet.size:
                    complete &= packet.pts is not None
                    pts.append(packet.pts)
                    dts.append(packet.dts)
        except av.error.FFmpegError as exc:
            if not pts:
                raise InputError(f"{self.path}: cannot be decoded ({_reason(exc)})") from None
            broke = not isinstance(exc, av.error.EOFError)
        except IndexError:  # (see _demux)
            if not pts:
                raise InputError(f"{self.path}: cannot be decoded ({_NEW_STREAM})") from None
            broke = not drained
        self._rewind()
        pts = self._without_jumps(pts, dts)
        if not pts:
            raise InputError(f"{self.path}: no video frame could be decoded")
        if not broke:  # (a break is said when the range decoding it stops)
            self._check_length(len(pts), "holds", "it holds")
        if not complete:
            return [None] * len(pts)
        pts.sort()
        self._say_gaps(pts, "it holds")
        return pts

    def _without_jumps(self, pts, dts):
        """``pts`` without the packets whose decoding times are damaged
        (:func:`jumped_ahead` of the packets on either side: the frames
        decoding leaves out, :meth:`_jumped`), with a warning."""
        bad = [k for k in range(1, len(dts) - 1)
               if None not in dts[k - 1:k + 2] and jumped_ahead(*dts[k - 1:k + 2], self.interval)]
        if not bad:
            return pts
        k = bad[0]
        # (said as decoding says it: after the latest frame before it, to its own timestamp)
        before = max((t for t in pts[:k] if t is not None), default=dts[k - 1])
        to = dts[k] if pts[k] is None else pts[k]
        _warn(f"{self.path}: {len(bad)} damaged video packet(s) skipped (the first at "
              f"{float(before * self.time_base):.2f} s: its timestamp jumps to "
              f"{float(to * self.time_base):.2f} s); the frames before and after them kept")
        bad = set(bad)
        return [t for k, t in enumerate(pts) if k not in bad]

    def _rewind(self):
        """Back to the start: a seek, or where the file cannot seek (a raw
        stream: no index), the file opened again."""
        import av

        try:
            self.container.seek(0)
        except (av.error.FFmpegError, OSError):
            self.container.close()
            self.container = av.open(self.path, "r")
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
            self.audio = [s for s in self.container.streams.audio]

    def read_range(self, start, stop, pts=None):
        """Video items of frames ``start`` to ``stop - 1`` (numbered as
        :meth:`__iter__` yields them).

        ``pts``: their timestamps, ``index()[start:stop]``. With them, seeks
        to the key frame before ``start`` and decodes from there (the frames
        are the same as decoded from the start: the decoder restarts at a key
        frame), checking each frame's timestamp; without, in a transport or
        program stream (a seek there lands between key frames, and the
        frames up to the next one do not decode), or when the seek finds
        none of the range's frames, decodes from the start. Unlike
        :meth:`__iter__`, stops at a damaged packet (its frames' timestamps
        would leave a gap that the joined segments cannot hold)."""
        first = pts[0] if start > 0 and pts and pts[0] is not None else None
        if first is not None and self.trusts_seeks:
            self.decoded, self._given = start, None
            self.container.seek(first, stream=self.stream, backward=True)
            expected = start
            for item in self._demux(self.stream):
                if item[2] is None or item[2] < first:  # decoded only to get to the range
                    continue
                if item[2] != pts[expected - start]:
                    if expected > start:
                        raise InputError(f"{self.path}: frame {expected} has timestamp "
                                         f"{item[2]}, expected {pts[expected - start]} (cannot "
                                         "seek in this file)")
                    break  # (the seek went past the range's first frame)
                yield item
                expected += 1
                if expected >= stop:
                    return
            if expected > start:
                return  # (the end of the video)
            self._rewind()  # the seek found none of the range's frames: from the start
        self.decoded, self._given = 0, None
        expected = start
        for item in self._demux(self.stream):
            if self.decoded <= start:
                continue
            yield item
            expected += 1
            if expected >= stop:
                return

    def audio_packets(self):
        """The audio packets alone, in file order from the start (nothing
        decoded), read through a container of their own: a seek in this one
        (:meth:`index` seeks back to the start) moves every stream to the
        video's first key frame, which drops the audio before a video that
        starts late."""
        import av

        if not self.audio:  # demux() of no stream would read them all
            return
        with av.open(self.path, "r") as container:
            streams = [container.streams[s.index] for s in self.audio]
            last, ended = {}, set()
            self._bad_audio = []
            try:
                for packet in container.demux(*streams):
                    if not packet.size:
                        ended.add(packet.stream.index)  # (the empty packet that ends it)
                    if packet.dts is None:
                        continue
                    if self._damaged_audio(packet, last, record=True):
                        continue
                    yield packet
            except av.error.EOFError:
                pass
            except av.error.FFmpegError as exc:
                _warn(f"{self.path}: reading the audio stopped ({_reason(exc)}); kept the "
                      "audio read")
            except IndexError:  # (see _demux)
                if len(ended) < len(streams):
                    _warn(f"{self.path}: reading the audio stopped ({_NEW_STREAM}); kept the "
                          "audio read")

    def _video_item(self, frame):
        self.decoded += 1
        rotation = int(round(frame.rotation or 0)) if hasattr(frame, "rotation") else 0
        self.rotation = rotation if rotation % 90 == 0 else 0
        bgr = _upright(frame.to_ndarray(format="bgr24"), self.rotation)
        pts = frame.pts
        if pts is not None:
            self._given = (pts, self.decoded)
        elif self._given is not None:
            # one frame's timestamp lost (its packet's header damaged), among frames with
            # them: the frame rate on from the last one given (the frames count: a raw
            # stream's, from its first frame, is far before a transport stream's clock)
            given, at = self._given
            pts = round(given + (self.decoded - at) * self.interval)
        else:  # a raw stream has no timestamps: the frame rate gives them
            pts = round((self.decoded - 1) * self.interval)
        return ("video", bgr, pts, float(pts * self.time_base))

    def close(self):
        self.container.close()


def image_files(folder, *, extensions=IMAGE_EXTENSIONS, what="images"):
    """The files of ``folder`` with one of ``extensions`` (any case), sorted by
    name, hidden ones left out; an InputError when there are none."""
    try:
        names = sorted(n for n in os.listdir(folder)
                       if n.lower().endswith(extensions) and not n.startswith("."))
    except OSError as exc:
        raise InputError(f"{folder}: folder cannot be read ({exc.strerror or exc})") from None
    if not names:
        raise InputError(f"{folder}: folder holds no {what} ({', '.join(extensions)})")
    return [os.path.join(folder, n) for n in names]


class _FolderSource:
    def __init__(self, path, fps):
        self.path = path
        self.files = image_files(path)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.time_base = 1 / self.rate
        self.frames = len(self.files)
        self.start = Fraction(0)
        self.rotation = 0
        self.audio = []
        self.decoded = 0
        self.stopped = None  # (a folder's frames are read through)
        self._resized = False

    def __iter__(self):
        return self.read_range(0, len(self.files))

    def index(self):
        """Frame numbers (the timestamps of a folder), as :meth:`_VideoFileSource.index`."""
        return list(range(len(self.files)))

    def read_range(self, start, stop, pts=None):
        """Video items of the images ``start`` to ``stop - 1``."""
        import cv2

        from guides.io import read_image

        # every frame takes the first's size, in whichever range it is read (a
        # Ray worker's too), as a video file's frames do (see _VideoFileSink.write)
        shape = None if start == 0 else read_image(self.files[0]).shape
        for i in range(start, min(stop, len(self.files))):
            name = self.files[i]
            image = read_image(name)
            if shape is None:
                shape = image.shape
            elif image.shape != shape:
                if not self._resized:  # (one line, at the first such frame)
                    self._resized = True
                    _warn(f"{name}: {image.shape[1]}x{image.shape[0]}, not {shape[1]}x"
                          f"{shape[0]} as the first frame: it and the frames of other sizes "
                          "are stretched to the first's (a video keeps one size)")
                image = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA
                                   if image.shape[0] > shape[0] else cv2.INTER_LINEAR)
            self.decoded += 1
            yield ("video", image, i, i / float(self.rate))

    def audio_packets(self):
        return iter(())

    def close(self):
        pass


def _reason(exc):
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:160]


# --------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------

#: Tags of a file or stream that describe its old encoding, not its content:
#: not copied to the output (compared in lower case, before any "-LANG").
_STALE_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration",
               "vendor_id", "rotate", "bps", "number_of_frames", "number_of_bytes",
               "_statistics_writing_app", "_statistics_writing_date_utc", "_statistics_tags"}


def _tags(metadata, stream=False):
    """``metadata`` without :data:`_STALE_TAGS`; a ``stream``'s MP4/MOV track
    name (read as "name") as the "title" that muxers write as one."""
    tags = {k: v for k, v in metadata.items() if k.lower().split("-")[0] not in _STALE_TAGS}
    if stream and "name" in tags and "title" not in tags:
        tags["title"] = tags.pop("name")
    return tags


def _refuses_audio(fmt, path, index):
    """Why a container of format ``fmt`` would refuse a copy of the audio
    stream ``index`` of the file ``path``, or None when it takes it. Some
    muxers say so only when their header is written (Opus or FLAC in a
    .mov) or their trailer (PCM of an AVI, which has no channel layout, in
    an .mp4), after every frame has been stylized: so a copy of the stream
    and its first packet are written into a container in memory first."""
    import io

    import av

    try:
        with av.open(path) as src:
            stream = src.streams[index]
            packet = next((p for p in src.demux(stream) if p.dts is not None), None)
            with av.open(io.BytesIO(), "w", format=fmt) as probe:
                copy = probe.add_stream_from_template(stream)
                if packet is None:
                    probe.start_encoding()
                else:
                    packet.stream = copy
                    probe.mux(packet)
    except (av.error.FFmpegError, ValueError) as exc:
        if getattr(exc, "errno", None) == errno.EINVAL:  # (FFmpeg's "Invalid argument": no reason)
            return ""
        return _reason(exc)
    return None


#: Output containers that may take an audio stream another one refuses, by
#: the ending that makes them.
_AUDIO_CONTAINERS = {"mov": ".mov", "matroska": ".mkv"}


#: Channel layouts of an AAC stream by channel count (others: stereo).
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class _AacAudio:
    """An audio stream the output's container refuses as it is (an AVI's
    PCM or ADPCM, a phone's AMR in an .mp4), decoded and encoded as AAC,
    at its own sample rate, on the same timeline."""

    def __init__(self, container, stream):
        self.stream = container.add_stream("aac", rate=stream.rate or 48000)
        self.stream.layout = _LAYOUTS.get(stream.channels, "stereo")
        self.time_base = Fraction(1, self.stream.rate)

    def encode(self, packet):
        """The AAC packets of a source packet (None: the encoder's last ones)."""
        if packet is None:
            return self.stream.encode(None)
        out = []
        for frame in packet.decode():
            if frame.pts is not None:
                frame.pts = round(frame.pts * frame.time_base / self.time_base)
            frame.time_base = self.time_base
            out.extend(self.stream.encode(frame))
        return out


def bgr_to_yuv420p(image):
    """A BGR image (even height and width) as the planes of a yuv420p frame,
    (3H/2, W) uint8: BT.601, limited range, as :func:`_tag_colours` tags it.

    OpenCV's conversion, not the one PyAV's ``from_ndarray(..., "bgr24")``
    leaves to swscale: that one darkens and tints (white comes back as
    (250, 253, 251) BGR, grey 128 as (123, 126, 124)) and takes 6.5x the
    time (7.7 against 1.2 ms at 768x1024); this one gives white, grey and
    black back exactly (tested).
    """
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


#: FFmpeg's codes of the colour description written into the output: the
#: matrix :func:`bgr_to_yuv420p` encodes with (SMPTE 170M, BT.601), limited range.
_MATRIX_BT601, _RANGE_LIMITED, _UNSPECIFIED = 6, 1, 2


def _tag_colours(context, source=None):
    """Describe the output's colours: the BT.601 matrix and limited range it
    is encoded with, and the primaries and transfer of the ``source`` video
    stream, if any (the RGB values painted are the source's, decoded with
    its own matrix). Without it an HD output is untagged, and players take
    BT.709 for it."""
    context.colorspace = _MATRIX_BT601
    context.color_range = _RANGE_LIMITED
    source = getattr(source, "codec_context", None)
    for name in ("color_primaries", "color_trc"):
        value = getattr(source, name, _UNSPECIFIED)
        if value not in (None, 0, _UNSPECIFIED):
            setattr(context, name, value)

class _VideoFileSink:
    """H.264 in an MP4/MOV/MKV, audio streams copied from the source (or
    re-encoded as AAC where the container refuses a copy).

    ``path`` may be a binary file object (then ``format`` names the
    container); ``audio=False`` writes the video alone (a segment of a longer
    video, see :class:`_SegmentConcatSink`)."""

    def __init__(self, path, source, *, crf=18, preset="veryfast", audio=True, format=None):
        import av

        self.path = path
        self.container = av.open(path, "w", format=format)
        self.rotation = 0
        self.stream = None
        self.crf, self.preset = crf, preset
        self.source = source
        self.audio = {}  # source stream index -> its copy
        self._aac = {}  # source stream index -> _AacAudio, where a copy is refused
        self._copy_audio = audio
        self._pending = []  # audio packets that arrive before the first video frame
        self._last_pts = None
        self._last_dts = {}  # each audio stream's last packet's
        self._bad_audio = []  # (seconds, reason) of the audio packets the muxer refused
        self._audio_muxed = 0
        self._size, self._resized = None, False  # the first frame's (height, width)
        self.frames = 0

    def _open_streams(self, height, width):
        """Video first, then the audio copies; the header is written at the first mux."""
        import av

        self._open_video(height, width)
        fmt = self.container.format.name
        container = getattr(self.source, "container", None)
        subtitles = container.streams.subtitles if container is not None and self._copy_audio \
            else ()
        if subtitles:
            _warn(f"{self.source.path}: its {len(subtitles)} subtitle stream(s) are not copied "
                  "(only the video, painted, and the audio are)")
        for s in self.source.audio if self._copy_audio else ():
            refused = _refuses_audio(fmt, self.source.path, s.index)
            if refused is None:
                try:
                    self.audio[s.index] = self.container.add_stream_from_template(s)
                except (av.error.FFmpegError, ValueError) as exc:
                    refused = _reason(exc)
            if refused is not None:
                try:
                    self._aac[s.index] = _AacAudio(self.container, s)
                except (av.error.FFmpegError, ValueError) as exc:
                    _warn(f"{self.source.path}: audio stream {s.index} ({s.codec_context.name}) "
                          f"not kept: the {fmt} container refuses it"
                          + (f" ({refused})" if refused else "") + ", and it cannot "
                          f"be made AAC ({_reason(exc)})")
                    continue
                kept = [ending for other, ending in _AUDIO_CONTAINERS.items()
                        if other != fmt and _refuses_audio(other, self.source.path,
                                                           s.index) is None]
                _warn(f"{self.source.path}: audio stream {s.index} ({s.codec_context.name}) "
                      f"re-encoded as AAC: the {fmt} container refuses it as it is"
                      + (f" ({refused})" if refused else "")
                      + (f"; an {' or '.join(kept)} output copies it unchanged" if kept else ""))
                continue
            codec = s.codec_context.name or ""
            if codec.startswith("pcm_") and str(self.path).lower().endswith((".mp4", ".m4v")):
                _warn(f"{self.source.path}: its audio ({codec}) is copied unchanged into the "
                      "MP4, where few players play uncompressed audio; a .mov or .mkv output "
                      "plays it everywhere")
            elif codec == "vorbis" and str(self.path).lower().endswith((".mp4", ".m4v", ".mov")):
                _warn(f"{self.source.path}: its audio (vorbis) is copied unchanged into the "
                      f"{fmt.split(',')[0].upper()}, where few players play it; an .mkv "
                      "output plays it everywhere")
        if container is not None and self._copy_audio:  # (not a segment of the Ray engine's)
            self._copy_tags(container)
            pix_fmt = getattr(getattr(self.source, "stream", None), "codec_context", None)
            pix_fmt = getattr(pix_fmt, "pix_fmt", None)
            try:
                bits = max(c.bits for c in av.VideoFormat(pix_fmt).components) if pix_fmt else 8
            except (ValueError, TypeError):
                bits = 8
            if bits > 8:  # (HDR, a camera's log profile: said, not tone-mapped)
                _warn(f"{self.source.path}: its {bits}-bit video ({pix_fmt}) is written as "
                      "8-bit H.264 (4:2:0)")

    def _copy_tags(self, container):
        """The source's tags (title, creation time, comment...), its video's and
        audio streams' (language, name, a QuickTime timecode), its chapters
        (moved as its timestamps are) and its pixels' aspect ratio, onto the
        output; those that describe the old encoding (encoder, brands,
        durations, statistics) are left out. Data streams are said dropped."""
        import av

        self.container.metadata.update(_tags(container.metadata))
        source_video = getattr(self.source, "stream", None)
        if source_video is not None:
            self.stream.metadata.update(_tags(source_video.metadata, stream=True))
            sar = source_video.sample_aspect_ratio
            if sar and sar != 1:  # (anamorphic: played squeezed without it)
                self.stream.sample_aspect_ratio = sar
        for index, out in self.audio.items():
            out.metadata.update(_tags(container.streams[index].metadata, stream=True))
        for index, aac in self._aac.items():
            aac.stream.metadata.update({k: v for k, v in _tags(
                container.streams[index].metadata, stream=True).items()
                if k.lower() != "handler_name"})
        shift = getattr(self.source, "start", 0)
        chapters = []
        for ch in container.chapters():
            tb = ch["time_base"]
            start, end = ch["start"] - round(shift / tb), ch["end"] - round(shift / tb)
            if end > 0:
                chapters.append(dict(ch, start=max(start, 0), end=end))
        if chapters:
            try:
                self.container.set_chapters(chapters)
            except (av.error.FFmpegError, ValueError, TypeError) as exc:
                _warn(f"{self.source.path}: its chapters are not kept ({_reason(exc)})")
        # (a QuickTime timecode track is made again from the video's tag; an MP4's
        # chapters come as a text track too)
        kept = {"TimeCodeHandler"} | ({"SubtitleHandler"} if chapters else set())
        data = [st for st in container.streams if st.type in ("data", "attachment")
                and st.metadata.get("handler_name") not in kept
                and "timecode" not in st.metadata]  # (a tmcd track named after the video)
        if data:
            _warn(f"{self.source.path}: its {len(data)} data stream(s) are not copied (only "
                  "the video, painted, and the audio are)")

    def _open_video(self, height, width):
        stream = self.container.add_stream("libx264", rate=self.source.rate)
        stream.width = width + width % 2
        stream.height = height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.source.time_base
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        _tag_colours(stream.codec_context, getattr(self.source, "stream", None))
        if self.rotation:
            stream.set_display_rotation(self.rotation)
        self.stream = stream

    def _backwards(self, what, before, after):
        return InputError(f"{self.source.path}: its timestamps go back in {what} ({before} "
                          f"then {after}; clips joined end to end?); a video's frames and "
                          "sound must come in time order")

    def write(self, image, pts):
        import av

        if pts is not None and self._last_pts is not None and pts <= self._last_pts:
            raise self._backwards(f"the video at frame {self.frames + 1}", self._last_pts, pts)
        self._last_pts = pts
        if self.stream is None:
            self.rotation = self.source.rotation  # known once a frame is decoded
        image = _stored(image, self.rotation)
        h, w = image.shape[:2]
        if self.stream is None:
            self._open_streams(h, w)
            self._size = (h, w)
            for packet in self._pending:
                self._mux_audio(packet)
            self._pending = []
        elif (h, w) != self._size and not self._resized:
            self._resized = True  # (one line, at the first such frame)
            _warn(f"{self.source.path}: frame {self.frames + 1} is {w}x{h}, not "
                  f"{self._size[1]}x{self._size[0]} as the first: it and the frames of its "
                  "size are stretched to the first's (a video keeps one size)")
        if h % 2 or w % 2:  # yuv420p needs even sizes: repeat the last row/column
            image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(bgr_to_yuv420p(image), format="yuv420p")
        frame.pts = pts - self._shift(self.source.time_base) if pts is not None else self.frames
        frame.time_base = self.source.time_base
        with _deferred_interrupts():  # (Ctrl-C between the two lost a frame's packets)
            self.container.mux(self.stream.encode(frame))
            self.frames += 1

    def write_audio(self, packet):
        if self.stream is None:
            self._pending.append(packet)
        elif packet.stream.index in self.audio or packet.stream.index in self._aac:
            self._mux_audio(packet)

    def _shift(self, time_base):
        """The source's :func:`_start_seconds` in ``time_base`` units."""
        start = getattr(self.source, "start", 0)
        return round(start / time_base) if start else 0

    def _mux_audio(self, packet):
        import av

        index = packet.stream.index
        if index in self.audio or index in self._aac:
            last = self._last_dts.get(index)
            if last is not None and packet.dts < last:
                raise self._backwards(f"audio stream {index}", last, packet.dts)
            self._last_dts[index] = packet.dts
            shift = self._shift(packet.time_base)
            if shift:
                packet.dts -= shift
                if packet.pts is not None:
                    packet.pts -= shift
            at = packet.dts * packet.time_base + getattr(self.source, "start", 0)
            try:
                if index in self._aac:
                    self.container.mux(self._aac[index].encode(packet))
                else:
                    packet.stream = self.audio[index]
                    self.container.mux(packet)
            except av.error.InvalidDataError as exc:
                # damaged data with sane timestamps (an ADTS header cut off, which the
                # MP4 muxer's filter refuses; a frame the AAC re-encoding cannot
                # decode): dropped, as a damaged video packet is skipped; every
                # packet refused is not damage
                if len(self._bad_audio) >= MAX_BAD_PACKETS and not self._audio_muxed:
                    raise
                self._bad_audio.append((at, _reason(exc)))
                return
            self._audio_muxed += 1

    def _flush_audio(self):
        for aac in self._aac.values():
            self.container.mux(aac.encode(None))

    def close(self):
        """Flush the encoders and write the container's index: a playable file."""
        try:
            if self.stream is not None:
                self.container.mux(self.stream.encode(None))
                self._flush_audio()
        finally:
            self.container.close()
        self._say_bad_audio()

    def _say_bad_audio(self):
        """Warn, in one line, of the audio packets dropped as damaged: by the
        source for their timestamps, here for what the muxer refused."""
        bad = sorted([*getattr(self.source, "_bad_audio", ()), *self._bad_audio],
                     key=lambda b: b[0])
        if not bad or not (self.audio or self._aac):
            return
        at, reason = bad[0]
        _warn(f"{self.source.path}: {len(bad)} damaged audio packet(s) dropped (the first "
              f"after {float(at):.2f} s: {reason}); the audio before and after them kept")


class _SegmentConcatSink(_VideoFileSink):
    """Encoded segments of one video, muxed in order into one file, with the
    audio streams of the source copied in time order between them.

    A segment is the bytes of an MP4 written by ``_VideoFileSink(...,
    audio=False, format="mp4")`` over a range of the source's frames, with the
    source's timestamps: its packets are copied unchanged (no re-encoding).
    Every segment must have been encoded with the same settings and frame
    size, so that they share one codec header (checked)."""

    def __init__(self, path, source):
        super().__init__(path, source)
        self._template = None
        self._template_extradata = None
        self._lead = None  # the first segment's decode times before its first frame's time
        self._times = []  # the times of the frames joined so far, in order (stream time base)
        self._audio_items = source.audio_packets()
        self._audio_next = None
        self._video_end = None  # (timestamp, time base) where the frames joined so far end

    def _open_video(self, height, width):
        self.stream = self.container.add_stream_from_template(self._template)
        # (a segment read back from its MP4 gives its time scale as the frame rate, 15360
        # for 1/15360, which an .mkv wrote as its default frame duration)
        self.stream.codec_context.framerate = self.source.rate
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)

    def write_segment(self, data, rotation=0, first_pts=None):
        """Append the segment ``data`` (bytes of an MP4); returns its frames.

        ``first_pts`` (source time base) is the timestamp of its first frame:
        the MP4 muxer moves a segment that does not start at 0 by an edit
        list, rounded to its movie time scale, so the packets' timestamps are
        shifted back by the difference (the same for all of them)."""
        import io

        import av

        with av.open(io.BytesIO(data), "r") as segment:
            video = segment.streams.video[0]
            if self.stream is None:
                self._template, self.rotation = video, rotation
                self._open_streams(video.height, video.width)
            elif video.codec_context.extradata != self._template_extradata:
                raise InputError(f"{self.path}: segments were encoded differently "
                                 "(codec headers differ); cannot join them")
            self._template_extradata = video.codec_context.extradata
            packets = [p for p in segment.demux(video) if p.size]  # not the end-of-stream marker
            shift = 0
            if first_pts is not None and packets:
                first_pts -= self._shift(self.source.time_base)  # (as the segment wrote it)
                wanted = round(first_pts * self.source.time_base / video.time_base)
                shift = wanted - min(p.pts for p in packets)
            for packet in packets:
                packet.pts += shift
            # decode times as one encode of the whole video gives them (x264's): the
            # k-th packet's is the time of the frame `depth` before it in time order
            # (`depth`: the first segment's encoder's reorder delay in frames, for all:
            # the same settings; a segment's own depends on its length, a short one
            # has no B-frames), the first segment's own before its first frame's time.
            # (A delay in time, not in frames, over a variable frame rate's gaps went
            # so far back before the first frame's time that the MP4 read back moved
            # every frame before its time and the audio's: 34 to 100 ms in clips
            # with a 1 s pause.)
            times = sorted(p.pts for p in packets)
            if self._lead is None and packets:
                self._lead = [p.dts + shift for p in packets if p.dts + shift < times[0]]
            self._times += times
            depth = len(self._lead or ())
            for k, packet in enumerate(packets, self.frames):
                packet.dts = self._lead[k] if k < depth else self._times[k - depth]
                if packet.dts > packet.pts:
                    raise InputError(f"{self.path}: a segment reorders its frames more than the "
                                     "first; cannot join them")
                self._audio_until(packet.dts, packet.time_base)
                packet.stream = self.stream
                self.container.mux(packet)
            if packets:
                last = max(packets, key=lambda p: p.pts)
                self._video_end = (last.pts + (last.duration or 0), video.time_base)
        self.frames += len(packets)
        return len(packets)

    def _audio_until(self, ts, time_base):
        """Mux the source's audio packets up to time ``ts * time_base`` (all with None)."""
        end = None if ts is None else ts * time_base
        while True:
            if self._audio_next is None:
                self._audio_next = next(self._audio_items, None)
                if self._audio_next is None:
                    return
            packet = self._audio_next
            if end is not None and packet.dts * packet.time_base - self.source.start > end:
                return
            self._audio_next = None
            self._mux_audio(packet)

    def close(self, complete=True):
        """Mux the rest of the audio (``complete=False``, an interrupted join:
        the audio up to the end of the frames joined), write the index: a
        playable file."""
        try:
            if self.stream is not None:
                self._audio_until(*(self._video_end if not complete and self._video_end
                                    else (None, None)))
                self._flush_audio()
        finally:
            self.container.close()
        self._say_bad_audio()


def _png(image):
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise InputError(f"a {image.shape} frame cannot be encoded as PNG")
    return data.tobytes()


class _FolderSink:
    def __init__(self, path, source):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.frames = 0

    def write(self, image, pts):
        self.write_png(_png(image))

    def write_png(self, data):
        """Write the next frame, already encoded (bytes of a PNG file)."""
        self.frames += 1
        name = os.path.join(self.path, f"frame_{self.frames:06d}.png")
        try:
            with open(name, "wb") as f:
                f.write(data)
        except OSError as exc:
            raise InputError(f"{name}: cannot be written ({_reason(exc)})") from None

    def write_audio(self, packet):
        pass

    def close(self, complete=True):
        pass


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------

def _no_sigint():
    """Ignore Ctrl-C (and the signals the command line takes as Ctrl-C,
    :data:`blit.cli.STOP_SIGNALS`) while the output is being finalised
    (main thread only)."""
    from blit.cli import STOP_SIGNALS, signal_handlers

    return signal_handlers({sig: signal.SIG_IGN for sig in (signal.SIGINT, *STOP_SIGNALS)})


@contextlib.contextmanager
def _deferred_interrupts():
    """Hold Ctrl-C (and :data:`blit.cli.STOP_SIGNALS`, where they raise it)
    during the block and raise KeyboardInterrupt when it ends: the block
    runs whole (main thread only; elsewhere it just runs)."""
    from blit.cli import STOP_SIGNALS, signal_handlers

    held = []
    raising = {sig for sig in (signal.SIGINT, *STOP_SIGNALS)
               if signal.getsignal(sig) not in (signal.SIG_IGN, signal.SIG_DFL, None)}
    with signal_handlers({sig: lambda signum, frame: held.append(signum) for sig in raising}):
        yield
    if held:
        raise KeyboardInterrupt


#: Seconds between the progress lines of a run whose stderr is not a terminal.
LOG_EVERY = 30.0


class _LogProgress:
    """Progress as a plain line every :data:`LOG_EVERY` seconds, for a run
    whose stderr is a file or a pipe (nohup, a job scheduler), where the
    progress bar is off: a long run said nothing until its summary."""

    def __init__(self, total):
        self.total, self.n = total, 0
        self.start = self.last = time.perf_counter()

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if now - self.last < LOG_EVERY:
            return
        self.last = now
        fps = self.n / max(now - self.start, 1e-9)
        of = ""
        if self.total:
            left = (self.total - self.n) / max(fps, 1e-9)
            of = (f" of {self.total} ({100 * self.n / self.total:.0f} %), about "
                  f"{left / 60:.1f} min left")
        print(f"styleblit: {self.n} frames{of}, {fps:.1f} fps", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(total, quiet):
    from tqdm import tqdm

    if quiet:
        return tqdm(disable=True)
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return _LogProgress(total)
    return tqdm(total=total, unit="frame", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)


def _temp_path(output, folder):
    parent = os.path.dirname(os.path.abspath(output)) or "."
    base = os.path.basename(output.rstrip("/\\"))
    try:
        if folder:
            path = tempfile.mkdtemp(prefix=temp_prefix(base), suffix=".tmp", dir=parent)
        else:
            ext = os.path.splitext(base)[1]
            fd, path = tempfile.mkstemp(prefix=temp_prefix(base), suffix=f".tmp{ext}", dir=parent)
            os.close(fd)
    except OSError as exc:
        raise InputError(f"{output}: cannot write in the folder {parent} "
                         f"({exc.strerror or exc})") from None
    usual_permissions(path)  # as open() or os.mkdir would have made it, not 0600 / 0700
    return path


class _NotMoved(InputError):
    """The complete output could not be renamed to its name (:func:`_move`):
    nothing of it is in place; the temporary output is the caller's to
    remove."""


def _cannot_write(dst, exc):
    folder = os.path.dirname(os.path.abspath(dst.rstrip("/\\")))
    if isinstance(exc, FileNotFoundError) and not os.path.isdir(folder):
        reason = f"its folder {folder} is gone"  # (removed while the run wrote)
    else:
        reason = _reason(exc)
    # (as `styleblit image` says a file that cannot be written)
    return _NotMoved(f"{dst}: cannot be written ({reason})")


def _move(src, dst, overwrite=True):
    """Rename the complete output ``src`` (a file or a folder) to ``dst``.

    A folder at ``dst`` is replaced (``overwrite``) without ever being lost:
    renamed aside first, removed only once ``src`` is in place, and put
    back if ``src`` cannot be (a removal that failed first would have left
    it half deleted). A rename the system refuses is a :class:`_NotMoved`
    naming ``dst`` (``src`` left for the caller to remove); without
    ``overwrite``, an output that appeared at ``dst`` meanwhile is
    :func:`~guides.io.exists_meanwhile`'s error."""
    if not overwrite and os.path.isdir(src) and os.path.lexists(dst):
        raise exists_meanwhile(dst)
    aside = None
    if os.path.isdir(dst) and not os.path.islink(dst):
        if not overwrite:
            raise exists_meanwhile(dst)
        aside = _put_aside(dst)
    try:
        if os.path.isdir(src):
            os.replace(src, dst)
        else:
            publish(src, dst, overwrite=overwrite)
    except OSError as exc:
        if aside is not None:
            _put_back(aside, dst)
        raise _cannot_write(dst, exc) from None
    except BaseException:
        if aside is not None:
            _put_back(aside, dst)
        raise
    if aside is not None:
        _remove_aside(aside, dst)


def _put_aside(folder):
    """Rename ``folder`` into a new hidden folder beside it (a name of its
    own, which no other run takes); that folder's path."""
    parent, base = os.path.split(folder.rstrip("/\\"))
    try:  # (named as the output is, relative or not: said if it cannot all be removed)
        aside = os.path.join(parent, os.path.basename(tempfile.mkdtemp(
            prefix=temp_prefix(base), suffix=".old", dir=parent or ".")))
    except OSError as exc:
        raise _cannot_write(folder, exc) from None
    try:
        os.rename(folder, os.path.join(aside, base))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.rmdir(aside)
        raise _cannot_write(folder, exc) from None
    return aside


def _put_back(aside, folder):
    """Undo :func:`_put_aside`; said where that fails too (the old folder
    is kept, under the other name)."""
    old = os.path.join(aside, os.path.basename(folder.rstrip("/\\")))
    try:
        os.rename(old, folder)
        os.rmdir(aside)
    except OSError as exc:
        _warn(f"{folder}: the folder it was could not be put back ({_reason(exc)}); it is "
              f"in {old}")


def _remove_aside(aside, folder):
    """Remove the old folder :func:`_put_aside` kept, now replaced; what of
    it cannot be removed is said and left (the new output is complete)."""
    failed = []

    def note(function, path, exc):  # (onexc's exception, or onerror's exc_info)
        failed.append((path, exc if isinstance(exc, BaseException) else exc[1]))

    shutil.rmtree(aside, **({"onexc": note} if sys.version_info >= (3, 12) else {"onerror": note}))
    if failed and os.path.lexists(aside):
        path, exc = failed[0]
        _warn(f"{folder}: written, but the folder it replaced could not all be removed "
              f"({path}: {_reason(exc)}); what is left of it is in {aside}")


def _finish_output(tmp, output, inputs=(), overwrite=True):
    """Put the complete output in place, and drop the partial outputs earlier
    interrupted runs left beside it (:func:`earlier_partials`), each with a
    line: this run's output supersedes them. A partial folder goes only if
    it holds nothing but frames; a file named as a partial output that is one
    of ``inputs`` (``clip.partial.mp4 -o clip.mp4``) stays. Without
    ``overwrite``, an output that appeared meanwhile (another run's) is not
    replaced: an InputError, ``tmp`` left for the caller to remove; so too
    where the system refuses the rename (:class:`_NotMoved`, one line that
    names ``output``: nothing of ``tmp`` is in place, any old ``output``
    is kept)."""
    _move(tmp, output, overwrite=overwrite)
    kept = {os.path.realpath(p) for p in inputs}
    for partial in earlier_partials(output):
        if os.path.islink(partial) or os.path.realpath(partial) in kept:
            continue
        if os.path.isdir(partial):
            if not frames_only(partial):
                continue
            shutil.rmtree(partial, ignore_errors=True)
        elif os.path.isfile(partial):
            try:
                os.remove(partial)
            except OSError as exc:  # (the output is in place: this run succeeded)
                _warn(f"{partial}: left by an interrupted run, cannot be removed "
                      f"({_reason(exc)}); {output} supersedes it")
                continue
        else:
            continue
        print(f"styleblit: removed {partial}, left by an interrupted run; {output} "
              "supersedes it", file=sys.stderr)


def _remove(path):
    """Remove the temporary output ``path``, quietly: it is removed after a
    failure, which is the line said."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        try:
            os.remove(path)
        except OSError:
            pass


def open_source(source_path, fps=30.0):
    """The frames (and audio packets) of a video file or a folder of images.

    Returns a source object: iterating it yields ``("video", bgr, pts,
    seconds)`` and ``("audio", packet)`` items in file order; ``index()``
    and ``read_range(start, stop, pts)`` give a range of frames alone (what a
    worker of :mod:`blit.distributed` reads); ``rate``, ``time_base``,
    ``rotation`` (known once a frame is decoded), ``frames`` (the count, or
    None when unknown), ``close()``.

    Raises
    ------
    InputError
        No such file, not a readable video, or a folder without images.
    """
    if os.path.isdir(source_path):
        return _FolderSource(source_path, fps)
    if not os.path.exists(source_path):
        raise InputError(f"{source_path}: no such file")
    return _VideoFileSource(source_path)


def make_stylizer(style, *, fps, method="patch", options=None, max_faces=1, boil_hz=None,
                  landmarker=None, model=None, device=None, landmark_every=1, scale=1.0,
                  flow_engine="auto"):
    """The per-frame stylizer of a video: a :class:`blit.stream.Stylizer`
    (``method="patch"``, its kernels on ``device``, default the CPU, faces
    found on every ``landmark_every``-th frame, painted at ``scale``, its
    optical flow made by ``flow_engine``) or a
    :class:`gan_distill.infer.GanStylizer` (``method="gan"``, ``model`` its
    checkpoint, on torch's ``device``, default CUDA when available;
    ``style``, the face options and ``scale`` unused)."""
    if method == "gan":
        from gan_distill.infer import GanStylizer

        return GanStylizer(model, device=device or "auto")
    if method != "patch":
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    from blit.stream import Stylizer
    from blit.stylize import StylizeOptions

    return Stylizer(style, options=options or StylizeOptions(), max_faces=max_faces,
                    boil_hz=boil_hz, landmarker=landmarker, fps=float(fps), device=device or "cpu",
                    landmark_every=landmark_every, scale=scale, flow_engine=flow_engine)


def first_face_scale(style, source_path, *, fps=30.0, max_faces=1, seconds=PROBE_SECONDS,
                     landmarker=None):
    """The scale ``Stylizer(scale="auto")`` chooses for a video, found ahead:
    :func:`blit.stylize.paint_scale` of the first frame in which a face is
    found, searched frame after frame as the stream searches them (a
    :class:`guides.landmarks.FaceLandmarker` in tracking mode, or
    ``landmarker``), for at most ``seconds`` of video; 1.0 when there is
    none by then. The Ray engine paints every range of a video at this one
    scale.

    Raises
    ------
    InputError
        The input cannot be read.
    """
    from blit.stylize import paint_scale

    own = landmarker is None
    if own:
        from guides.landmarks import FaceLandmarker

        landmarker = FaceLandmarker(static_image_mode=False, max_faces=max_faces, tiles=True)
    source = open_source(source_path, fps)
    try:
        for item in source:
            if item[0] != "video":
                continue
            if item[3] is not None and item[3] > seconds:
                break
            faces = landmarker(np.ascontiguousarray(item[1]))[:max_faces]
            if faces:
                return paint_scale(style, faces)
        return 1.0
    finally:
        source.close()
        if own:
            landmarker.close()


def stylize_items(stylizer, items, sink, *, skip=0, progress=None, faces=None):
    """The video loop: stylize the ``("video", ...)`` items into ``sink``, copy
    the ``("audio", packet)`` items, in order.

    The first ``skip`` frames are stylized but not written: they warm up the
    stylizer's state across frames (a range of a longer video starts a little
    early, see :mod:`blit.distributed`). ``progress`` (a tqdm bar) counts the
    frames written. A stylizer with a ``prefetch`` method
    (:meth:`blit.stream.Stylizer.prefetch`) is handed each frame and its
    timestamp one frame early, so that its landmarks and guides are made
    while the previous frame is painted; the output is the same. ``faces``
    (a list ``[0, 0]``) counts the frames written painted with a face (whose
    stylizer's ``last_landmarks`` are not empty), and in its second element
    keeps the most faces painted on one frame. Returns the number of frames
    read."""
    prefetch = getattr(stylizer, "prefetch", None)
    n = 0
    pending = None  # the video item read but not stylized yet
    held = []  # audio packets read after it, written after it as they came

    def write_pending():
        nonlocal n
        _, image, pts, seconds = pending
        out = stylizer(image, seconds)
        n += 1
        painted = getattr(stylizer, "last_landmarks", None)
        if faces is not None and painted and n > skip:
            faces[0] += 1
            faces[1] = max(faces[1], len(painted))
        if n > skip:
            sink.write(out, pts)
            if progress is not None:
                progress.update(1)
        for packet in held:
            sink.write_audio(packet)
        held.clear()

    for item in items:
        if item[0] == "audio":
            if pending is None:
                sink.write_audio(item[1])
            else:
                held.append(item[1])
            continue
        if prefetch is not None:
            prefetch(item[1], item[3])
        if pending is not None:
            write_pending()
        pending = item
    if pending is not None:
        write_pending()
    return n


def output_sink(path, source, folder):
    """Where the frames of ``source`` go: a folder of PNGs or a video file."""
    return (_FolderSink if folder else _VideoFileSink)(path, source)


def stylize_video(style, source_path, output, *, options=None, max_faces=1, boil_hz=None,
                  fps=30.0, quiet=False, landmarker=None, method="patch", model=None,
                  device=None, landmark_every=1, scale="auto", stats=None, overwrite=True,
                  flow_engine="auto"):
    """Stylize a video file or folder of frames into ``output``.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar
    source_path : str
        A video file PyAV reads, or a folder of images (in name order).
    output : str
        ``.mp4``/``.mov``/``.mkv``/``.m4v`` for H.264 video, anything else a
        folder of ``frame_000001.png``...
    options : blit.stylize.StylizeOptions
    max_faces, boil_hz, landmarker, device, landmark_every, scale, flow_engine
        As for :class:`blit.stream.Stylizer` (``device``: where the
        stylizer runs, ``"cpu"``, ``"cuda"`` or ``"auto"``; by default the
        CPU for the patch stylizer, CUDA when available for the GAN;
        ``scale``: by default ``"auto"``, a face much larger than the
        exemplar's painted at the exemplar's scale, as ``styleblit image``
        paints a photo; 1.0 paints at the video's own scale).
    fps : float
        Frame rate of a folder input.
    quiet : bool
        No progress bar.
    method : {"patch", "gan"}
        The patch-based :class:`blit.stream.Stylizer`, or the distilled
        :class:`gan_distill.infer.GanStylizer` (``style``, ``options`` and
        the face options unused; needs torch).
    model : str
        The GAN checkpoint, for ``method="gan"``.
    overwrite : bool
        Replace a file at ``output``. The command line checks before any
        work and passes its ``--overwrite``: False, an output another run
        wrote there meanwhile is not replaced, and this one's is put
        beside it as ``NAME-2.EXT`` (an InputError says so).
    stats : dict, optional
        Filled, when it completes, with ``with_face`` (the frames painted
        with a face; a face held a moment after it is lost counts) and
        ``most_faces`` (the most painted on one frame); left empty for a
        GAN without guides, which finds no faces.

    Returns
    -------
    int
        Frames written.

    Raises
    ------
    InputError
        Unreadable input (nothing written).
    KeyboardInterrupt
        After the partial output has been finalised and saved as
        :func:`partial_path` ``(output)``; its ``args`` hold that path and the
        number of frames (None and 0 when no frame was written: nothing is
        kept; None, the frames and why, a third item, when the partial output
        could not be saved: nothing is kept either). See
        :func:`interrupted_said`.

    See Also
    --------
    blit.distributed.stylize_videos : the same on a Ray cluster, many videos
        at once, each in ranges of frames.
    """
    output = os.fspath(output)
    check_outputs_apart([output], [os.fspath(source_path)])
    folder_out = not _is_video_path(output)
    source = open_source(source_path, fps)
    if folder_out and source.audio:
        _warn(f"{output}: a folder of frames holds no audio; the audio of {source_path} is dropped")
    tmp = _temp_path(output, folder_out)
    sink = None
    interrupted = False
    try:
        sink = output_sink(tmp, source, folder_out)
        stylizer = make_stylizer(style, fps=source.rate, method=method, options=options,
                                 max_faces=max_faces, boil_hz=boil_hz, landmarker=landmarker,
                                 model=model, device=device, landmark_every=landmark_every,
                                 scale=scale, flow_engine=flow_engine)
        faces = [0, 0]
        with stylizer, _progress(source.frames, quiet) as bar:
            try:
                stylize_items(stylizer, source, sink, progress=bar, faces=faces)
            except KeyboardInterrupt:
                interrupted = True
        if sink.frames == 0 and not interrupted:
            raise InputError(f"{source_path}: no video frame could be decoded")
        finds = finds_faces(stylizer, method)
        if faces[0] == 0 and finds and not interrupted:
            _warn(f"{source_path}: no face found in any of its {sink.frames} frames; they are "
                  "written unchanged")
        if stats is not None and finds:
            stats.update(with_face=faces[0], most_faces=faces[1])  # (a GAN without guides finds none)
    except BaseException as exc:
        if not interrupted:
            with _no_sigint():
                if sink is not None:
                    try:
                        sink.close()
                    except Exception:
                        pass
                source.close()
                _remove(tmp)
            import av

            if isinstance(exc, av.error.FFmpegError):  # (the encoder's or the muxer's)
                raise InputError(f"{output}: could not be written from {source_path} "
                                 f"({_reason(exc)}); nothing written") from None
            raise
    with _no_sigint():
        source.close()
        try:
            sink.close()
        except Exception as exc:  # (the muxer's trailer: nothing playable to keep)
            _remove(tmp)
            raise InputError(f"{output}: could not be finished ({_reason(exc)}); nothing "
                             "written") from None
        if interrupted:
            if sink.frames == 0:  # nothing to keep
                _remove(tmp)
                raise KeyboardInterrupt(None, 0)
            partial = free_partial_path(output)
            try:
                _move(tmp, partial, overwrite=False)
            except InputError as exc:  # (still an interrupt: a batch stops, exit code 130)
                _remove(tmp)
                raise KeyboardInterrupt(None, sink.frames, str(exc)) from None
            raise KeyboardInterrupt(partial, sink.frames)
        try:
            _finish_output(tmp, output, inputs=[source_path], overwrite=overwrite)
        except _NotMoved:  # (the system refused the rename: a complete-looking file, hidden)
            _remove(tmp)
            raise
        except InputError:  # (another run wrote it meanwhile: this one's is kept beside)
            other = _free_name(output)
            try:
                _move(tmp, other, overwrite=False)
            except InputError:
                _remove(tmp)
                raise
            raise InputError(f"{output}: exists already, written meanwhile by another run; "
                             f"this run's output is {other}") from None
    return sink.frames


def _free_name(output):
    """``NAME-2.EXT`` (``-3``...) beside ``output`` (a folder ``NAME-2``): the
    first name not taken."""
    root, ext = _partial_parts(output)
    k = 2
    while os.path.lexists(f"{root}-{k}{ext}"):
        k += 1
    return f"{root}-{k}{ext}"


def check_video_args(args, inputs=()):
    """Check the options shared by ``video`` and ``batch``; load what they name.
    ``--fps`` (``args.fps``, None: not given) becomes 30 when not given; given
    with a video file among ``inputs``, it is said to apply to folders only.

    Returns the style (None for the GAN)."""
    if args.fps is None:
        args.fps = 30.0
    elif any(os.path.isfile(p) for p in inputs):
        _warn(f"--fps {args.fps:g} is the frame rate of a folder of images; a video file "
              "keeps its own")
    check_method_args(args)
    from blit.distributed import check_engine_args

    check_engine_args(args)
    if args.method == "gan":
        from gan_distill import require_torch

        require_torch()
    return load_style_from_args(args) if args.method == "patch" else None


def check_video_output(output, inputs, overwrite):
    """Refuse, before any work, an output of ``video`` (``batch``,
    ``compare``) that cannot be written or would lose a file: an unknown
    video extension, an existing output without ``overwrite``, an output
    that is one of ``inputs``, and a folder of frames that would replace a
    folder holding an input or other files than frames
    (:func:`blit.cli.check_frames_folder`)."""
    name = output.rstrip("/\\") or output
    ext = os.path.splitext(name)[1].lower()
    if os.path.basename(name).lower() in VIDEO_EXTENSIONS:
        # (a name that is all extension: splitext calls it a hidden folder of frames)
        raise InputError(f"{output}: name the video before its extension (out"
                         f"{os.path.basename(name).lower()}, say)")
    if _is_video_path(output):
        if os.path.isdir(output):
            raise InputError(f"{output}: is a folder; name a video file, or a folder without "
                             f"a video's extension for PNG frames")
    elif ext and not os.path.isdir(output):
        if ext in VIDEO_EXTENSIONS:
            raise InputError(f"{output}: a video file's name cannot end with a separator")
        raise InputError(f"{output}: unknown video extension {ext!r} (use "
                         f"{', '.join(VIDEO_EXTENSIONS)}, or a folder for PNG frames)")
    check_outputs_apart([name], inputs)
    check_output(name, overwrite)
    if not _is_video_path(output):
        check_frames_folder(name, inputs, overwrite)


def video_input_paths(args, *inputs):
    """The files a video command reads (for :func:`check_video_output`):
    ``inputs``, the style's files and the GAN model."""
    return [*inputs, *style_input_paths(args), getattr(args, "model", None)]


def _video(args):
    import time

    check_video_output(args.output, video_input_paths(args, args.input), args.overwrite)
    if args.engine == "ray" and args.device == "cuda" and args.method == "patch":
        raise InputError("--device cuda: the Ray engine's workers stylize on the CPU; "
                         "use --engine local")
    device = "cpu" if args.engine == "ray" else device_from_args(args)
    style = check_video_args(args, [args.input])
    t0 = time.perf_counter()
    stats = {}
    if args.engine == "ray":
        from blit.distributed import run_jobs_from_args

        job, = run_jobs_from_args(args, style, [(args.input, args.output)])
        if job.status == "interrupted":
            print(f"styleblit: interrupted; {job.message}", file=sys.stderr)
            return 130
        if job.status != "done":
            raise InputError(job.message)
        n = job.frames
        if job.with_face is not None:
            stats.update(with_face=job.with_face, most_faces=job.most_faces)
    else:
        try:
            n = stylize_video(style, args.input, args.output, options=options_from_args(args),
                              max_faces=args.max_faces, boil_hz=args.boil, fps=args.fps,
                              quiet=args.quiet, method=args.method, model=args.model,
                              device=device, landmark_every=args.landmark_every,
                              scale=scale_from_args(args), stats=stats,
                              overwrite=args.overwrite, flow_engine=args.flow_engine)
        except KeyboardInterrupt as exc:
            said = interrupted_said(exc)
            if said is None:
                raise
            print(f"styleblit: interrupted {said}", file=sys.stderr)
            return 130
    if not args.quiet:
        dt = time.perf_counter() - t0
        name = style.name if style is not None else args.model
        print(f"{args.input} in the style of {name} -> {args.output} "
              f"({n} frames{_faces_said(stats, n, args.max_faces)}, "
              f"{n / max(dt, 1e-9):.1f} fps)")
    return 0


def interrupted_said(exc, what="video"):
    """What became of the output of the :func:`stylize_video` that
    ``exc`` (a KeyboardInterrupt) ended, as the end of a sentence after
    "interrupted": "after 12 frames; the partial video is in P" (``what``:
    the output's kind); None for a KeyboardInterrupt that does not come from
    there (or from :func:`gan_distill.compare.compare_video`, alike)."""
    if len(exc.args) not in (2, 3):
        return None
    partial, frames = exc.args[:2]
    if partial is not None:
        return f"after {frames} frames; the partial {what} is in {partial}"
    if len(exc.args) == 3:  # (frames written, but their partial output not saved)
        return f"after {frames} frames; nothing written: {exc.args[2]}"
    return "before the first frame was written; nothing written"


def finds_faces(stylizer, method):
    """Whether ``stylizer`` paints faces it finds (its ``last_landmarks``
    count them): the patch method's, and a GAN's with guide channels."""
    return method == "patch" or bool(getattr(stylizer, "guides", False))


def _faces_said(stats, frames, max_faces):
    """``, a face on 236`` (``, faces on 236, up to 2 on one``) for the summary
    line; nothing when there is no count (a GAN without guide channels)."""
    if "with_face" not in stats:
        return ""
    on = "all" if stats["with_face"] == frames else stats["with_face"]
    if max_faces == 1 or stats["most_faces"] <= 1:  # (", faces on all, up to 1 on one")
        return f", a face on {on}"
    return f", faces on {on}, up to {stats['most_faces']} on one"


def add_landmark_every_arg(p, *, auto=False):
    """``--landmark-every N``, for ``video``, ``batch`` and ``webcam``; with
    ``auto`` (the webcam) also ``auto``, the default."""
    help = ("find the faces on every N-th frame only, and carry them along the optical flow "
            "on the frames between (2 saves about half of the landmark stage, the costliest "
            "on the CPU)")
    if auto:
        p.add_argument("--landmark-every", type=parse_landmark_every, default="auto",
                       metavar="N|auto",
                       help=help + "; default auto: every frame while the stylizer keeps up "
                                   "with the camera, every second frame when it does not")
    else:
        p.add_argument("--landmark-every", type=number(int, least=1), default=1, metavar="N",
                       help=help + "; default 1: every frame")


def parse_landmark_every(text):
    """An argparse ``type`` for ``--landmark-every N|auto``: ``"auto"`` or a
    whole number >= 1 (the webcam's, and the webcam benchmark's)."""
    if text == "auto":
        return text
    if not text.strip().lstrip("+-").isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {text!r}")
    return number(int, least=1)(text)


def check_method_args(args):
    """An InputError for an option of the patch stream given with another
    method (the GAN does not carry landmarks, paints with one face's guides
    and has no jitter to re-draw): ``--landmark-every`` above 1,
    ``--max-faces`` above 1, ``--boil`` (their values were checked when
    parsed), ``--native-scale`` (the GAN paints at its own size) or
    ``--flow-engine`` (it carries nothing along a flow); or for
    ``--method gan`` without ``--model`` and the other way round; for
    ``video``, ``batch`` and ``webcam``. The patch stylizer's style and
    settings (``--style``, ``--voting``, ``--threshold``, ...) are refused
    with the GAN too: it paints the style it was trained on, as it learnt
    to, and would ignore them."""
    if args.method != "patch":
        for option, given in (("--landmark-every", args.landmark_every not in ("auto", 1)),
                              ("--max-faces", args.max_faces != 1),
                              ("--boil", args.boil is not None),
                              ("--native-scale", getattr(args, "native_scale", False)),
                              ("--style", bool(args.style)),
                              ("--style-landmarks", bool(getattr(args, "style_landmarks", None))),
                              ("--voting", args.voting != 1),
                              ("--background", args.background != "keep"),
                              ("--threshold", args.threshold != 50.0),
                              ("--denoise", args.denoise is not None),
                              ("--pipeline", getattr(args, "pipeline", False)),
                              ("--flow-engine", getattr(args, "flow_engine", "auto") != "auto")):
            if given:
                raise InputError(f"{option}: only for --method patch"
                                 + (" (the GAN paints the style it was trained on)"
                                    if option.startswith("--style") else ""))
    if (args.method == "gan") != (args.model is not None):
        raise InputError("--method gan needs --model MODEL.pt" if args.method == "gan"
                         else "--model needs --method gan")


def add_native_scale_arg(p, what):
    """``--native-scale``, for ``video``, ``batch`` and ``webcam``."""
    from blit.stylize import MAX_FACE_RATIO

    p.add_argument("--native-scale", action="store_true",
                   help=f"paint at the {what}'s own scale; by default, when the first face "
                        f"found is over {MAX_FACE_RATIO:g} times as wide as the exemplar's, "
                        f"every frame is painted at the scale that makes it as wide and "
                        f"enlarged back, so that the strokes keep their size against the face")


def scale_from_args(args):
    """The stream's ``scale`` from ``--native-scale``."""
    return 1.0 if getattr(args, "native_scale", False) else "auto"


def add_video_job_args(p, *, engine="local"):
    """Options of a video job, shared by ``video`` and ``batch`` (``engine``: the default)."""
    from blit.distributed import add_engine_args

    p.add_argument("--method", choices=METHODS, default="patch",
                   help="stylization method (default patch: StyleBlit lookup; gan: a model "
                        "from `styleblit distill`, needs --model and torch)")
    p.add_argument("--model", metavar="MODEL.pt",
                   help="the GAN checkpoint for --method gan (from `styleblit distill`)")
    add_stylize_args(p)
    p.add_argument("--max-faces", type=number(int, least=1, most=MOST_FACES), default=1,
                   metavar="N", help=f"stylize up to N faces per frame (default 1; at most "
                                     f"{MOST_FACES})")
    p.add_argument("--boil", type=number(positive=True), metavar="HZ",
                   help="re-draw the strokes HZ times a second for a hand-made 'boiling' look "
                        "(default: steady)")
    add_landmark_every_arg(p)
    add_native_scale_arg(p, "video")
    p.add_argument("--fps", type=number(least=0.01, most=1000),
                   help="frame rate of a folder of images (default 30; at most 1000: at "
                        "5000 the H.264 file written had no frame a player could decode)")
    add_engine_args(p, default=engine)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary")


@register
def add_video_parser(sub):
    p = sub.add_parser("video", help="stylize a video (or a folder of frames)",
                       description="Paint the face of INPUT (up to --max-faces faces) in the "
                                   "style of STYLE, stably from "
                                   "frame to frame. Video out is H.264 with the input's frame "
                                   "rate, timing, rotation and audio (copied unchanged, or as "
                                   "AAC where the container refuses it). Ctrl-C keeps what was "
                                   "done as OUTPUT.partial.EXT (OUTPUT.partial-2.EXT, ... beside "
                                   "an earlier one); a complete run removes them. With --engine "
                                   "ray, ranges of frames are stylized in parallel on a Ray "
                                   "cluster (see `styleblit batch` for many videos).")
    _add_style_args(p)
    p.add_argument("input", metavar="INPUT", help="video file, or a folder of images (name order)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help=f"video ({', '.join(VIDEO_EXTENSIONS)}) or a folder for "
                        "frame_000001.png...")
    add_video_job_args(p)
    add_device_arg(p)
    p.set_defaults(run=_video)
