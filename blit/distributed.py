"""Batch stylization on Ray: many videos, long videos, many machines.

``styleblit video ... --engine ray`` and ``styleblit batch`` run the job of
:func:`blit.video.stylize_video` on a Ray cluster (a local one by default):

* each video is split into ranges of frames (``chunk_frames``); every range
  is one Ray task that decodes its frames, stylizes them and encodes them
  (an H.264 segment, or PNG files), with the same code as the local engine
  (:func:`blit.video.open_source`, :func:`blit.video.stylize_items`);
* the style exemplar is put in the object store once and shared by all tasks;
  a worker process is reused from task to task, so its Numba kernels are
  compiled (or loaded from the on-disk cache) once;
* the driver joins the segments in order as they arrive, without re-encoding,
  copies the source's audio between them in time order, and keeps the frame
  rate, time base, timestamps and rotation (:class:`blit.video._SegmentConcatSink`);
* temporal state across a range boundary: each range starts ``warmup``
  frames early and throws their output away, so landmark tracking, One-Euro
  smoothing and the coherence of the patches have run in before its first
  frame. The patch stylizer's state has a long memory (a patch keeps its
  exemplar source while it fits), so the frames after a boundary are not
  bit-identical to a single-process run: measured, and bounded in the tests
  (see README, "Batch on Ray"). Without a face, and with the GAN (no state
  across frames), they are;
* failures: a worker process that dies has its range retried (``max_retries``);
  an input that cannot be read fails its own job with one clear line, and the
  other jobs complete; a summary table ends the run;
* nothing half-written: every output is written beside its final name and
  renamed when complete; an existing output is kept unless ``overwrite``.

Input files must be readable by the workers under the same path (one
machine, or a shared file system); the results come back through the object
store, so only the driver writes outputs. GAN inference runs on Ray with
``num_gpus`` per task where the cluster has GPUs; training
(``styleblit distill``) stays single-process.
"""
from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace

from blit.cli import STOP_SIGNALS, number, register, signal_handlers
from guides.io import InputError, write_atomic

__all__ = ["stylize_videos", "stylize_range", "plan_ranges", "StylizerSpec", "Job",
           "require_ray", "connect", "summary_table", "DEFAULT_CHUNK_FRAMES", "DEFAULT_WARMUP"]

#: Frames per task: 10 s at 30 fps, long enough that the warm-up costs 10%.
DEFAULT_CHUNK_FRAMES = 300
#: Frames run before each range, output discarded (patch method; the GAN
#: needs none). 1 s at 30 fps: landmarks converge to within 0.1 px and the
#: difference to a single-process run stops shrinking (README, "Batch on Ray").
DEFAULT_WARMUP = 30

_INSTALL = "pip install 'styleblit[dist]'"


def require_ray():
    """Import Ray, or raise :class:`InputError` saying what to install."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--engine ray needs Ray, which is not installed: {_INSTALL}") from None
    return ray


def _quiet_local_auth(address):
    """For a local instance (``address`` None): Ray's notice that it turned on
    token authentication, as it does by default there, is not shown; it
    came on every run ("Token authentication is enabled ... to opt out").
    (Setting ``RAY_AUTH_MODE`` here instead is too late: Ray read its
    configuration when imported, and its local cluster then failed to start.)"""
    import logging

    if address is None:
        logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
        if not any(isinstance(f, _AuthNotice) for f in logger.filters):
            logger.addFilter(_AuthNotice())


class _AuthNotice:
    """A logging filter: drops Ray's notice that token authentication is on."""

    def filter(self, record):
        return not record.getMessage().startswith("Token authentication is enabled")


def connect(address=None, *, num_cpus=None):
    """Start or join a Ray cluster unless this process is already connected.

    Parameters
    ----------
    address : str, optional
        None: a local Ray instance in this process's lifetime; ``"auto"``: the
        cluster started on this machine (``ray start --head``);
        ``"ray://host:port"``: a remote cluster through Ray Client.
    num_cpus : int, optional
        CPUs of a local instance (default: all).
    """
    ray = require_ray()
    if not ray.is_initialized():
        _quiet_local_auth(address)
        kwargs = {"include_dashboard": False, "log_to_driver": True}
        if address is None and num_cpus is not None:
            kwargs["num_cpus"] = int(num_cpus)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = address or "a local instance"
            raise InputError(f"--address {where}: cannot connect to Ray ({exc})") from None
    return ray


# --------------------------------------------------------------------------
# Planning and the worker's side (plain functions: testable without Ray)
# --------------------------------------------------------------------------

def plan_ranges(n_frames, chunk_frames=DEFAULT_CHUNK_FRAMES, warmup=DEFAULT_WARMUP):
    """Split ``n_frames`` frames into ranges.

    Returns
    -------
    list of (int, int, int)
        ``(start, first, stop)`` per range: frames ``start .. first - 1`` are
        warm-up (stylized, not written), ``first .. stop - 1`` are written.
        The written parts tile ``0 .. n_frames - 1`` in order.

    Examples
    --------
    >>> plan_ranges(10, 4, 2)
    [(0, 0, 4), (2, 4, 8), (6, 8, 10)]
    """
    if int(chunk_frames) < 1:
        raise ValueError(f"chunk_frames: expected at least 1, got {chunk_frames}")
    if int(warmup) < 0:
        raise ValueError(f"warmup: expected >= 0 frames, got {warmup}")
    chunk, warmup = int(chunk_frames), int(warmup)
    return [(max(first - warmup, 0), first, min(first + chunk, n_frames))
            for first in range(0, n_frames, chunk)]


@dataclass(frozen=True)
class StylizerSpec:
    """How each range builds its stylizer (:func:`blit.video.make_stylizer`);
    picklable, sent with every task. Called as ``spec(style, fps)``.

    ``scale`` is the painting scale of :class:`blit.stream.Stylizer`; with
    ``"auto"`` (the default), :func:`stylize_videos` chooses one per video
    before its ranges start (:func:`blit.video.first_face_scale`), so that
    they all paint at the same scale."""

    method: str = "patch"
    options: object = None  # blit.stylize.StylizeOptions
    max_faces: int = 1
    boil_hz: float | None = None
    model: str | None = None
    landmark_every: int = 1
    scale: object = "auto"  # float or "auto"
    flow_engine: str = "auto"  # blit.stream.Stylizer's (the workers' stylizers are the CPU's)

    def __call__(self, style, fps):
        from blit.video import make_stylizer

        return make_stylizer(style, fps=fps, method=self.method, options=self.options,
                             max_faces=self.max_faces, boil_hz=self.boil_hz, model=self.model,
                             landmark_every=self.landmark_every, scale=self.scale,
                             flow_engine=self.flow_engine)

    def for_video(self, style, source_path, fps):
        """This spec with the scale of the video ``source_path`` chosen, when
        ``scale="auto"`` for the patch method (else itself)."""
        if self.method != "patch" or self.scale != "auto" or style is None:
            return self
        from blit.video import first_face_scale

        return replace(self, scale=first_face_scale(
            style, source_path, fps=fps, max_faces=self.max_faces))

    @property
    def warmup(self):
        """Default warm-up frames: none for the GAN (no state across frames)."""
        return 0 if self.method == "gan" else DEFAULT_WARMUP


class _PngSink:
    """Frames of a range, kept as PNG bytes (a folder output's segment)."""

    def __init__(self):
        self.pngs = []
        self.frames = 0

    def write(self, image, pts):
        from blit.video import _png

        self.pngs.append(_png(image))
        self.frames += 1

    def write_audio(self, packet):
        pass

    def close(self):
        pass


def stylize_range(style, source_path, start, first, stop, pts, *, folder, spec=StylizerSpec(),
                  fps=30.0):
    """Stylize frames ``start .. stop - 1`` of one input, keep ``first ..``.

    What one Ray task does; the frames are decoded, stylized and encoded
    exactly as :func:`blit.video.stylize_video` does them.

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar or None
    source_path : str
    start, first, stop : int
        As :func:`plan_ranges` gives them.
    pts : list
        Timestamps of frames ``start .. stop - 1`` (the source's
        ``index()[start:stop]``), to seek.
    folder : bool
        PNG frames (True) or an H.264 MP4 segment, video only (False).
    spec : callable
        ``spec(style, fps)`` -> a stylizer (a context manager called
        ``stylizer(frame, seconds)``).
    fps : float
        Frame rate of a folder input.

    Returns
    -------
    dict
        ``data``: the MP4's bytes, or a list of PNG bytes; ``frames``: frames
        written; ``rotation``: the display rotation of the source;
        ``faces``: ``[frames written with a face painted, most faces on one]``,
        or None for a stylizer that finds none (a GAN without guides);
        ``stopped``: why decoding broke off before the range's end (damaged
        data), or None.
    """
    from blit.video import _VideoFileSink, finds_faces, open_source, stylize_items

    source = open_source(source_path, fps)
    buffer = io.BytesIO()
    try:
        sink = _PngSink() if folder else _VideoFileSink(buffer, source, audio=False, format="mp4")
        try:
            faces = [0, 0]
            with spec(style, source.rate) as stylizer:
                stylize_items(stylizer, source.read_range(start, stop, pts), sink,
                              skip=first - start, faces=faces)
            if not finds_faces(stylizer, spec.method):
                faces = None
        finally:
            sink.close()
    finally:
        source.close()
    return {"data": sink.pngs if folder else buffer.getvalue(), "frames": sink.frames,
            "rotation": source.rotation, "faces": faces,
            "stopped": source.stopped}


def _task(style, source_path, start, first, stop, pts, folder, spec, fps):
    """The Ray task: :func:`stylize_range` with as many threads as CPUs reserved."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    if cpus:
        import cv2
        import numba

        threads = max(1, min(int(cpus), numba.config.NUMBA_NUM_THREADS))
        numba.set_num_threads(threads)
        cv2.setNumThreads(threads)
    return stylize_range(style, source_path, start, first, stop, pts, folder=folder, spec=spec,
                         fps=fps)


# --------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------

@dataclass
class Job:
    """One input and its output, and how it went.

    ``status``: ``"done"``, ``"failed"`` (``message`` says why), ``"exists"``
    (the output was there and ``overwrite`` was not given), ``"interrupted"``
    (``message`` names the partial output) or ``"queued"``. ``with_face``:
    of the frames written, those painted with a face (None for a stylizer
    that finds none: a GAN without guides); ``most_faces``: the most on one
    frame."""

    input: str
    output: str
    status: str = "queued"
    frames: int = 0
    seconds: float = 0.0
    message: str = ""
    with_face: int | None = None
    most_faces: int = 0
    # driver state
    _refs: list = field(default_factory=list, repr=False)
    _results: dict = field(default_factory=dict, repr=False)
    _next: int = field(default=0, repr=False)
    _ranges: list = field(default_factory=list, repr=False)  # (start, first, stop) per task
    _index: list = field(default_factory=list, repr=False)
    _sink: object = field(default=None, repr=False)
    _source: object = field(default=None, repr=False)
    _tmp: str | None = field(default=None, repr=False)
    _t0: float = field(default=0.0, repr=False)
    _short: bool = field(default=False, repr=False)

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def summary_table(jobs):
    """The jobs as a plain-text table: input, output (its path inside the
    folder the outputs share: ``day1/clip.mp4`` for an input found in a
    subfolder), frames, seconds, fps, status (with its message)."""
    rows = [("input", "output", "frames", "seconds", "fps", "status")]
    outputs = [os.path.abspath(j.output.rstrip("/\\") or j.output) for j in jobs]
    try:
        shared = os.path.commonpath([os.path.dirname(o) for o in outputs]) if outputs else ""
    except ValueError:  # (outputs on different drives)
        shared = None
    for j, output in zip(jobs, outputs):
        message = j.message
        if message.startswith(f"{j.input}: "):  # the input is in its own column
            message = message[len(j.input) + 2:]
        status = f"{j.status}: {message}" if message else j.status
        name = os.path.basename(output) if shared is None else os.path.relpath(output, shared)
        rows.append((j.input, name, str(j.frames),
                     f"{j.seconds:.1f}", f"{j.fps:.1f}" if j.frames else "-", status))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for r in rows:
        lines.append("  ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                                r[2].rjust(widths[2]), r[3].rjust(widths[3]),
                                r[4].rjust(max(widths[4], 5)), r[5]]))
    return "\n".join(line.rstrip() for line in lines)


def _cause(exc, name):
    """One line for a failed task of the input ``name``: the worker's own
    error where there is one (an InputError names its file itself)."""
    import ray

    cause = getattr(exc, "cause", None)
    if isinstance(cause, InputError):
        return str(cause)
    if cause is not None:
        return f"{name}: {type(cause).__name__}: {cause}"
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return f"{name}: a worker process died stylizing it (and so did every retry)"
    return f"{name}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def stylize_videos(style, jobs, *, spec=None, fps=30.0, chunk_frames=DEFAULT_CHUNK_FRAMES,
                   warmup=None, cpus_per_chunk=1, gpus_per_chunk=None, max_retries=3,
                   overwrite=False, quiet=False):
    """Stylize many videos on the connected Ray cluster (see :func:`connect`).

    Parameters
    ----------
    style : guides.exemplar.StyleExemplar or None
        Put in the object store once (None for the GAN).
    jobs : list of (str, str)
        ``(input, output)`` pairs, as for :func:`blit.video.stylize_video`.
    spec : callable, optional
        ``spec(style, fps)`` -> stylizer, picklable; default
        :class:`StylizerSpec` ``()`` (the patch method, default options).
    fps : float
        Frame rate of folder inputs.
    chunk_frames : int
        Frames written per task.
    warmup : int, optional
        Frames each task runs before its range, output discarded; default
        ``spec.warmup`` (:data:`DEFAULT_WARMUP` for the patch method, 0 for the GAN).
    cpus_per_chunk : float
        CPUs reserved per task (and the threads it uses).
    gpus_per_chunk : float, optional
        GPUs per task; default 1 for ``method="gan"`` on a cluster with GPUs,
        else 0.
    max_retries : int
        Retries of a task whose worker process died.
    overwrite : bool
        Replace existing outputs (else such a job is skipped, status ``"exists"``).
    quiet : bool
        No progress bar.

    Returns
    -------
    list of Job
        In the order given; each job's ``status`` says how it went.

    Raises
    ------
    KeyboardInterrupt
        After saving what each started output had in order as its
        :func:`blit.video.partial_path` and cancelling the tasks; ``args[0]``
        is the job list.
    """
    ray = require_ray()
    from blit.video import _progress

    spec = spec if spec is not None else StylizerSpec()
    warmup = getattr(spec, "warmup", DEFAULT_WARMUP) if warmup is None else int(warmup)
    plan_ranges(1, chunk_frames, warmup)  # validates both
    cluster = ray.cluster_resources()
    if gpus_per_chunk is None:
        has_gpu = cluster.get("GPU", 0) > 0
        gpus_per_chunk = 1 if has_gpu and getattr(spec, "method", None) == "gan" else 0
    for name, flag, want in (("CPU", "--cpus-per-chunk", cpus_per_chunk),
                             ("GPU", "--gpus-per-chunk", gpus_per_chunk)):
        have = cluster.get(name, 0)
        if want > have:  # (Ray would wait for such a node for ever)
            raise InputError(f"{flag} {want:g}: the Ray cluster has {have:g} {name}s in all, so "
                             "no range could start")
    remote = ray.remote(_task).options(num_cpus=cpus_per_chunk, num_gpus=gpus_per_chunk,
                                       max_retries=int(max_retries), retry_exceptions=False)
    style_ref = ray.put(style)
    jobs = [j if isinstance(j, Job) else Job(*j) for j in jobs]
    pending = {}
    total = 0
    for i, job in enumerate(jobs):
        job._t0 = time.perf_counter()
        try:
            total += _submit(job, i, remote, style, style_ref, spec, fps, chunk_frames, warmup,
                             overwrite, pending)
        except (InputError, OSError) as exc:
            _discard(job)
            job.status, job.message = "failed", str(exc)
    try:
        with _progress(total or None, quiet) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    i, k = pending.pop(ref)
                    job = jobs[i]
                    if job.status != "running":
                        continue
                    try:
                        job._results[k] = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        _fail(job, _cause(exc, job.input), pending, ray)
                        continue
                    try:
                        _assemble(job, bar)
                    except InputError as exc:  # (named after the temporary file: renamed)
                        _fail(job, str(exc).replace(job._tmp, job.output), pending, ray)
                    except Exception as exc:  # joining this job's output: fails it alone
                        _fail(job, f"{job.output}: cannot be written ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())[:160]})", pending, ray)
    except KeyboardInterrupt:
        from blit.video import _no_sigint

        with _no_sigint():  # (a second Ctrl-C here lost the job list, its table, its partials)
            for job in jobs:  # first: Ray's own cancelling can abort this process (a bug of
                if job.status == "running":  # its task manager, seen 1 in 4 times), and
                    _save_partial(job)  # then the joined frames would be lost in a hidden file
            for ref in pending:
                ray.cancel(ref)
        raise KeyboardInterrupt(jobs) from None
    return jobs


def _submit(job, i, remote, style, style_ref, spec, fps, chunk_frames, warmup, overwrite,
            pending):
    """Index the input, choose its painting scale (``spec.for_video``),
    plan its ranges, submit them; returns its frame count."""
    from blit.video import _is_video_path, _temp_path, open_source

    if os.path.exists(job.output) and not overwrite:
        job.status, job.message = "exists", "pass --overwrite to replace it"
        return 0
    folder = not _is_video_path(job.output)
    source = open_source(job.input, fps)
    try:
        index = source.index()
    except BaseException:
        source.close()
        raise
    if folder and source.audio:
        from blit.video import _warn

        _warn(f"{job.output}: a folder of frames holds no audio; the audio of {job.input} is "
              "dropped")
    job._source, job._index = source, index
    if hasattr(spec, "for_video"):
        try:
            spec = spec.for_video(style, job.input, fps)
        except BaseException:
            source.close()
            raise
    job._tmp = _temp_path(job.output, folder)
    job.status = "running"
    path = os.path.abspath(job.input)
    for k, (start, first, stop) in enumerate(plan_ranges(len(index), chunk_frames, warmup)):
        ref = remote.remote(style_ref, path, start, first, stop, index[start:stop], folder, spec,
                            fps)
        job._refs.append(ref)
        job._ranges.append((start, first, stop))
        pending[ref] = (i, k)
    return len(index)


def _assemble(job, bar):
    """Append the ranges that are ready in order; finish the job after the last."""
    from blit.video import _FolderSink, _SegmentConcatSink, _is_video_path, _warn

    folder = not _is_video_path(job.output)
    while job._next in job._results:
        k = job._next
        result = job._results.pop(k)
        job._refs[k] = None  # the object store may free it
        job._next += 1
        if job._short:  # decoding broke off in an earlier range: the rest is dropped
            continue
        if job._sink is None:
            job._sink = (_FolderSink(job._tmp, job._source) if folder else
                         _SegmentConcatSink(job._tmp, job._source))
        if folder:
            for data in result["data"]:
                job._sink.write_png(data)
        elif result["frames"]:
            first = job._index[job._ranges[k][1]]
            job._sink.write_segment(result["data"], result["rotation"], first_pts=first)
        job.frames += result["frames"]
        if result.get("faces") is not None:
            job.with_face = (job.with_face or 0) + result["faces"][0]
            job.most_faces = max(job.most_faces, result["faces"][1])
        bar.update(result["frames"])
        if result["frames"] < job._ranges[k][2] - job._ranges[k][1]:
            job._short = True
            why = result.get("stopped")
            # (a range stops at damaged data, which the local engine skips: its frames
            # after it cannot be joined at their places; a file cut short ends there too)
            _warn(f"{job.input}: decoding stopped after {job.frames} frames"
                  + (f" ({why}); kept the frames decoded (--engine local skips damaged "
                     "packets and keeps the frames after them)" if why else
                     "; kept the frames decoded"))
    if job._next == len(job._refs):
        _finish(job)


def _finish(job):
    from blit.video import _finish_output, _no_sigint, _warn

    with _no_sigint():
        sink, job._sink = job._sink, None
        if sink is not None:
            sink.close()
        job._source.close()
        job.seconds = time.perf_counter() - job._t0
        if job.frames == 0:
            _discard(job)
            job.status, job.message = "failed", f"{job.input}: no video frame could be decoded"
            return
        _finish_output(job._tmp, job.output, inputs=[job.input])
        job.status = "done"
    if job.with_face == 0:  # (as the local engine says it)
        _warn(f"{job.input}: no face found in any of its {job.frames} frames; they are written "
              "unchanged")


def _discard(job):
    from blit.video import _remove

    if job._sink is not None:
        try:
            job._sink.close()
        except Exception:
            pass
        job._sink = None
    if job._source is not None:
        job._source.close()
    if job._tmp is not None:
        _remove(job._tmp)


def _fail(job, message, pending, ray):
    """A range failed for good: cancel the job's other ranges, remove its output."""
    for ref in job._refs:
        if ref is not None and ref in pending:
            pending.pop(ref)
            ray.cancel(ref)
    _discard(job)
    job.status, job.message = "failed", message
    job.seconds = time.perf_counter() - job._t0


def _save_partial(job):
    """Ctrl-C: keep what was joined so far as the partial output."""
    from blit.video import _move, _no_sigint, free_partial_path

    with _no_sigint():
        job.seconds = time.perf_counter() - job._t0
        if job._sink is None or job.frames == 0:
            _discard(job)
            job.status, job.message = "interrupted", "nothing written"
            return
        job._sink.close(complete=False)  # (its audio cut where its frames end)
        job._sink = None
        job._source.close()
        partial = free_partial_path(job.output)
        _move(job._tmp, partial, overwrite=False)
        job.status, job.message = "interrupted", f"partial output in {partial}"


# --------------------------------------------------------------------------
# Command line: `video --engine ray` and `batch`
# --------------------------------------------------------------------------

#: Options that only the Ray engine reads: (flag, dest).
_RAY_OPTIONS = (("--address", "address"), ("--chunk-frames", "chunk_frames"),
                ("--warmup-frames", "warmup_frames"), ("--cpus-per-chunk", "cpus_per_chunk"),
                ("--gpus-per-chunk", "gpus_per_chunk"), ("--max-retries", "max_retries"))


def add_engine_args(p, *, default="local"):
    """``--engine`` and the options of the Ray engine."""
    p.add_argument("--engine", choices=("local", "ray"), default=default,
                   help=f"local: one process, frame after frame; ray: ranges of frames in "
                        f"parallel on a Ray cluster (needs {_INSTALL}) (default {default})")
    p.add_argument("--address", metavar="ADDR",
                   help="Ray cluster: auto (the one started on this machine with `ray start "
                        "--head`), HOST:PORT (its head node) or ray://HOST:PORT (Ray Client); "
                        "default: a local instance for this run")
    p.add_argument("--chunk-frames", type=number(int, least=1), metavar="N",
                   help=f"frames per Ray task (default {DEFAULT_CHUNK_FRAMES})")
    p.add_argument("--warmup-frames", type=number(int, least=0), metavar="W",
                   help=f"frames each task runs before its range, output discarded, so that "
                        f"face tracking, smoothing and patch coherence are warmed up (default "
                        f"{DEFAULT_WARMUP}; 0 with --method gan, which has no state across "
                        f"frames)")
    p.add_argument("--cpus-per-chunk", type=number(positive=True), metavar="C",
                   help="CPUs (and threads) per Ray task (default 1)")
    p.add_argument("--gpus-per-chunk", type=number(least=0), metavar="G",
                   help="GPUs per Ray task (default 1 with --method gan on a cluster with GPUs, "
                        "else 0; a fraction shares a GPU); GAN training stays single-process")
    p.add_argument("--max-retries", type=number(int, least=0), metavar="N",
                   help="retries of a task whose worker died (default 3)")


def check_engine_args(args):
    """Validate the Ray options (Ray installed; their numbers were checked when parsed)."""
    if args.engine != "ray":
        for flag, dest in _RAY_OPTIONS:
            if getattr(args, dest, None) is not None:
                raise InputError(f"{flag} needs --engine ray")
        return
    require_ray()


def _check_reachable(address, timeout=5.0):
    """A cluster's ``HOST:PORT`` (its GCS, as ``ray start`` prints it) that
    takes no connection is an InputError: Ray itself retried for ever. Other
    forms (``auto``, ``ray://``) fail on their own."""
    import socket

    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except ValueError:
        raise InputError(f"Ray: cannot connect to {address} (not HOST:PORT)") from None
    except OSError as exc:
        raise InputError(f"Ray: cannot connect to {address} "
                         f"({exc.strerror or type(exc).__name__})") from None


def run_jobs_from_args(args, style, jobs):
    """Run ``(input, output)`` jobs with the command line's options; returns the
    :class:`Job` list (interrupted jobs included)."""
    import logging

    from blit.cli import options_from_args
    from blit.video import scale_from_args

    spec = StylizerSpec(method=args.method, options=options_from_args(args),
                        max_faces=args.max_faces, boil_hz=args.boil, model=args.model,
                        landmark_every=args.landmark_every, scale=scale_from_args(args),
                        flow_engine=getattr(args, "flow_engine", "auto"))
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        _check_reachable(args.address)
        # ray.init sets its own SIGTERM handler (sys.exit): `kill` then left
        # a hidden temporary file and no partial output; ours come back
        ours = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *STOP_SIGNALS)}
        try:
            _quiet_local_auth(args.address)
            with signal_handlers({sig: h for sig, h in ours.items() if h is not None}):
                ray.init(address=args.address, include_dashboard=False,
                         log_to_driver=not args.quiet, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = args.address or "a local instance"
            raise InputError(f"Ray: cannot connect to {where} "
                             f"({' '.join(str(exc).split())[:200]})") from None
    try:
        return stylize_videos(
            style, jobs, spec=spec, fps=args.fps,
            chunk_frames=args.chunk_frames or DEFAULT_CHUNK_FRAMES, warmup=args.warmup_frames,
            cpus_per_chunk=args.cpus_per_chunk or 1, gpus_per_chunk=args.gpus_per_chunk,
            max_retries=3 if args.max_retries is None else args.max_retries,
            overwrite=args.overwrite, quiet=args.quiet)
    except KeyboardInterrupt as exc:
        # The run ends: more Ctrl-C (users press it again) while Ray shuts down crashed the
        # process (a segfault in Ray's shutdown, no table); from here on they are ignored.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, *STOP_SIGNALS):
                signal.signal(sig, signal.SIG_IGN)
        if exc.args and isinstance(exc.args[0], list):
            return exc.args[0]
        raise
    finally:
        if started:  # disconnect before exit, cancelled tasks included
            ray.shutdown()


def expand_inputs(inputs, *, skip=()):
    """Batch inputs: video files; folders, searched with their subfolders
    (the videos in them; a folder that holds images and no videos is one
    frame sequence, its subfolders not searched); list files (one path a
    line, relative to the list's folder; ``#`` starts a comment; each line
    taken as an input named on the command line, but a list). A file is a
    video by its ending (:data:`guides.io.VIDEO_FILE_EXTENSIONS`) or, with
    another ending, when it is not text: its job then opens it with PyAV,
    which reads or refuses it. Paths that do not exist are kept: their jobs
    fail on their own. An input named twice (``clips/`` and ``clips/a.mp4``)
    is kept once, and the images beside the videos of a folder are left out;
    each with a warning. Folders in ``skip`` (the output folder) found in a
    named folder's tree and hidden ones are not searched."""
    return [path for path, _ in named_inputs(inputs, skip=skip)]


def named_inputs(inputs, *, skip=()):
    """:func:`expand_inputs` with each input's output name: its file or
    folder name without extension, and for one found in a named folder's
    subfolder, the subfolders' path before it (``day1/clip``), so that the
    outputs keep the folders' tree."""
    skip = {os.path.realpath(s) for s in skip}
    seen, kept, left = set(), [], {}
    for path, name in _named(inputs, skip, None, left):
        key = os.path.realpath(path)
        if key in seen:
            print(f"styleblit: warning: {path}: named more than once; stylized once",
                  file=sys.stderr)
        else:
            seen.add(key)
            kept.append((path, name))
    for folder, paths in left.values():  # (the output folder found in a named folder's tree)
        paths = list({os.path.realpath(p): p for p in paths
                      if os.path.realpath(p) not in seen}.values())
        if paths:
            shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3
                                            else "")
            print(f"styleblit: warning: {folder}: the output folder is not searched: "
                  f"{len(paths)} input(s) in it are left out ({shown}); name them to "
                  "stylize them", file=sys.stderr)
    return kept


def _stem(path):
    return os.path.splitext(os.path.basename(os.path.normpath(path)))[0]


def _named(inputs, skip, _list, left=None):
    from blit.video import IMAGE_EXTENSIONS
    from guides.io import VIDEO_FILE_EXTENSIONS

    named = f" (named in {_list})" if _list else ""
    out = []
    for path in inputs:
        if os.path.isdir(path):
            found = _folder_inputs(path, "", skip, set(), left)
            if not found:
                raise InputError(f"{path}: folder holds no videos "
                                 f"({', '.join(VIDEO_FILE_EXTENSIONS)}) and no images, nor "
                                 "do its subfolders")
            out.extend(found)
        elif path.lower().endswith(IMAGE_EXTENSIONS):
            raise InputError(f"{path}{named}: a still image; batch takes videos, folders of "
                             "frames and lists of them (`styleblit image A.jpg B.jpg -o DIR` "
                             "stylizes photos)")
        elif os.path.isfile(path) and not path.lower().endswith(VIDEO_FILE_EXTENSIONS):
            lines = _list_file_lines(path)
            if lines is None:  # not text: a video of another name
                out.append((path, _stem(path)))
            elif _list:
                raise InputError(f"{path}{named}: a text file, not a video (a list names "
                                 "videos and folders of frames)")
            else:
                folder = os.path.dirname(os.path.abspath(path))
                out.extend(_named([os.path.join(folder, ln) for ln in lines], skip, path, left))
        else:
            out.append((path, _stem(path)))
    return out


def _folder_inputs(path, prefix, skip, visited, left=None, quiet=False):
    """(path, name) of the inputs in folder ``path`` and its subfolders, in
    name order; ``prefix`` is the subfolders' path from the named folder.
    The inputs a folder in ``skip`` (the output folder) holds, but the
    outputs recorded there (:data:`OUTPUTS_FILE`) and their partial ones, go
    to ``left`` (its real path -> (path, [inputs])) for a warning. ``quiet``:
    no warnings."""
    from blit.video import IMAGE_EXTENSIONS
    from guides.io import VIDEO_FILE_EXTENSIONS

    real = os.path.realpath(path)
    if real in visited:  # (a link back up the tree)
        return []
    if prefix and real in skip:  # (the output folder inside the named one)
        if left is not None and real not in left:
            left[real] = (path, _left_in_output_folder(path, prefix, skip - {real}, visited))
        return []
    visited.add(real)
    try:
        names = sorted(n for n in os.listdir(path) if not n.startswith("."))
    except OSError as exc:
        if not prefix:  # (the named folder; one found in it is left out with a warning)
            raise InputError(f"{path}: folder cannot be read ({exc.strerror or exc})") from None
        if not quiet:
            print(f"styleblit: warning: {path}: folder cannot be read ({exc.strerror or exc}); "
                  "left out", file=sys.stderr)
        return []
    videos = [n for n in names if n.lower().endswith(VIDEO_FILE_EXTENSIONS)
              and not os.path.isdir(os.path.join(path, n))]
    images = sum(n.lower().endswith(IMAGE_EXTENSIONS) for n in names)
    found = []
    for n in names:
        sub = os.path.join(path, n)
        if os.path.isdir(sub):
            found.extend(_folder_inputs(sub, f"{prefix}{n}/", skip, visited, left, quiet))
    if images and not videos and not any(os.path.isfile(p) for p, _ in found):
        return [(path, prefix.rstrip("/") or _stem(path))]  # a sequence of frames
    if images and not quiet:  # (a poster beside the videos, or beside the folders of a shoot)
        print(f"styleblit: warning: {path}: its {images} image(s) are left out: a folder "
              f"of {'videos' if videos else 'folders'} (a sequence of frames is a folder of "
              "its own)", file=sys.stderr)
    return [(os.path.join(path, n), prefix + _stem(n)) for n in videos] + found


def _left_in_output_folder(path, prefix, skip, visited):
    """The inputs that the search would have found in the output folder
    ``path`` (videos, sequences of frames) but for the outputs an earlier
    batch recorded there and the partial outputs of its interrupted runs."""
    from blit.video import earlier_partials

    ours = set()
    for out in _read_outputs_file(path, quiet=True):
        made = os.path.join(path, *out.split("/"))
        ours.add(os.path.realpath(made))
        ours.update(os.path.realpath(p) for p in earlier_partials(made))
    return [p for p, _ in _folder_inputs(path, prefix, skip, set(visited), quiet=True)
            if os.path.realpath(p) not in ours]


def _list_file_lines(path, limit=1 << 20):
    """The paths a list file names (comments and blank lines dropped), or
    None when the file is not such a list: not UTF-8 text, holds a NUL byte,
    or is larger than ``limit`` bytes (no list of paths is that long)."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit or b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = (ln.split("#", 1)[0].strip() for ln in text.splitlines())
    return [ln for ln in lines if ln]


#: In a batch's output folder: which input each output was made from, so
#: that a later batch into the same folder gives each input the output it
#: had (its name made unique with -2, -3 ... in the order found, a new input
#: in a name's way took its output: ``clip.mkv`` added beside ``clip.mp4``
#: was "done" and ``clip.mp4`` stylized again as ``clip-2.mp4``).
OUTPUTS_FILE = ".styleblit-batch.json"


def output_names(inputs, outdir, fmt, names=None, made=None):
    """``OUTDIR/NAME.FMT`` per input (a folder ``OUTDIR/NAME`` for png), NAME the
    input's file or folder name without extension (or ``names``, from
    :func:`named_inputs`: ``day1/clip`` for a video found in a subfolder),
    made unique with -2, -3..., whatever the case. An input that a batch
    made an output of in ``outdir`` before (:data:`OUTPUTS_FILE`, where the
    output is still there) keeps that output, and a new input is given no
    output that another input's is. An input is known by its real path or,
    moved (its recorded path gone), by its name and size. ``made``:
    :func:`made_outputs` of ``outdir``, read when not given."""
    names = [_stem(path) for path in inputs] if names is None else list(names)
    ending = "" if fmt == "png" else f".{fmt}"

    def fits(out):  # (an output of this format: a folder of frames for png)
        if ending:
            return out.lower().endswith(ending)
        return os.path.isdir(os.path.join(outdir, *out.split("/")))

    made = made_outputs(outdir) if made is None else made
    taken = {out.lower() for out in made}
    kept = {}
    for i, path in enumerate(inputs):
        key = _source_key(path)
        for out, src in made.items():
            if fits(out) and out not in kept.values() and _same_source(src, key):
                kept[i] = out
                break
    found = []
    for i, name in enumerate(names):
        if i in kept:
            found.append(kept[i])
            continue
        stem = name = name or "video"
        k = 1
        while f"{name}{ending}".lower() in taken:
            k += 1
            name = f"{stem}-{k}"
        taken.add(f"{name}{ending}".lower())
        found.append(f"{name}{ending}")
    return [os.path.join(outdir, *out.split("/")) for out in found]


def _source_key(path):
    """What the outputs file records of an input: its real path, name and
    size (a folder of frames: its number of entries)."""
    real = os.path.realpath(path)
    try:
        size = len(os.listdir(real)) if os.path.isdir(real) else os.path.getsize(real)
    except OSError:
        size = None
    return {"path": real, "name": os.path.basename(real), "size": size}


def _same_source(recorded, key):
    if not isinstance(recorded, dict):
        return False
    if recorded.get("path") == key["path"]:
        return True
    return (not os.path.lexists(str(recorded.get("path")))  # (moved)
            and recorded.get("name") == key["name"] and key["size"] is not None
            and recorded.get("size") == key["size"])


def made_outputs(outdir):
    """:data:`OUTPUTS_FILE`'s records (output path in ``outdir`` -> its
    input) of the outputs still there."""
    return {out: src for out, src in _read_outputs_file(outdir).items()
            if os.path.lexists(os.path.join(outdir, *out.split("/")))}


def _read_outputs_file(outdir, quiet=False):
    path = os.path.join(outdir, OUTPUTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        outputs = data["outputs"]
        if data.get("version") != 1 or not isinstance(outputs, dict):
            raise ValueError("not a version 1 file")
        return outputs
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if not quiet:
            print(f"styleblit: warning: {path}: cannot be read ({exc}); outputs are named as "
                  "if none were made before", file=sys.stderr)
        return {}


def record_outputs(outdir, pairs, made=None):
    """Add ``pairs`` (input, output in ``outdir``) to :data:`OUTPUTS_FILE`
    (``made``: its :func:`made_outputs`, read when not given; the records of
    outputs no longer there are dropped); written whole or not at all (a
    warning, the batch goes on)."""
    path = os.path.join(outdir, OUTPUTS_FILE)
    outputs = dict(made_outputs(outdir) if made is None else made)
    for src, out in pairs:
        outputs[os.path.relpath(out, outdir).replace(os.sep, "/")] = _source_key(src)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "outputs": outputs}, f, indent=1)

    try:
        write_atomic(path, write)
    except InputError as exc:
        print(f"styleblit: warning: {exc}; a later batch into this folder may name its "
              "outputs otherwise", file=sys.stderr)


def _batch(args):
    from blit.cli import check_frames_folder, check_outputs_apart
    from blit.video import check_video_args, stylize_video, video_input_paths

    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise InputError(f"{args.output}: not a folder")
    found = named_inputs(args.inputs, skip=[args.output])
    if not found:
        raise InputError("no inputs")
    inputs, names = [p for p, _ in found], [n for _, n in found]
    made = made_outputs(args.output)
    pairs = list(zip(inputs, output_names(inputs, args.output, args.format, names, made)))
    read = video_input_paths(args, *inputs)
    check_outputs_apart([out for _, out in pairs], read)
    if args.format == "png":
        for _, out in pairs:
            check_frames_folder(out, read, args.overwrite)
    # A file (or folder) in OUTDIR at an output's name that no batch recorded making is
    # the user's own: never replaced, even with --overwrite (nor recorded, which would let
    # a later --overwrite replace it); without --overwrite its job says "exists" as kept.
    mine = {os.path.realpath(os.path.join(args.output, *out.split("/"))) for out in made}
    foreign = {out for _, out in pairs
               if os.path.lexists(out) and os.path.realpath(out) not in mine}
    if foreign and args.overwrite:
        first = next(out for _, out in pairs if out in foreign)
        more = f" (and {len(foreign) - 1} more output(s))" if len(foreign) > 1 else ""
        raise InputError(f"{first}: not an output styleblit wrote ("
                         f"{os.path.join(args.output, OUTPUTS_FILE)} does not record it){more}; "
                         "the user's own files are never replaced, even with --overwrite, so "
                         "move it or name another OUTDIR")
    style = check_video_args(args, inputs)
    for folder in dict.fromkeys(os.path.dirname(out) for _, out in pairs):
        try:  # OUTDIR, and its subfolders for inputs found in subfolders
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{folder}: cannot make the output folder "
                             f"({exc.strerror or exc})") from None
    record_outputs(args.output, [(src, out) for src, out in pairs if out not in foreign], made)
    if args.engine == "ray":
        jobs = run_jobs_from_args(args, style, pairs)
    else:
        jobs = _run_local(args, style, pairs, stylize_video)
    for job in jobs:
        if job.status == "exists" and job.output in foreign:
            job.message = "not an output styleblit wrote; kept, even with --overwrite"
        if job.status == "failed":
            print(f"styleblit: error: {job.message}", file=sys.stderr)
    if not args.quiet or any(j.status != "done" for j in jobs):
        print(summary_table(jobs))
    if any(j.status == "interrupted" for j in jobs):
        return 130
    return 1 if any(j.status == "failed" for j in jobs) else 0


def _run_local(args, style, pairs, stylize_video):
    """The batch one job after the other in this process."""
    from blit.cli import options_from_args
    from blit.video import interrupted_said, scale_from_args

    jobs = [Job(i, o) for i, o in pairs]
    for job in jobs:
        if os.path.exists(job.output) and not args.overwrite:
            job.status, job.message = "exists", "pass --overwrite to replace it"
            continue
        t0 = time.perf_counter()
        try:
            job.frames = stylize_video(style, job.input, job.output,
                                       options=options_from_args(args), max_faces=args.max_faces,
                                       boil_hz=args.boil, fps=args.fps, quiet=args.quiet,
                                       method=args.method, model=args.model,
                                       landmark_every=args.landmark_every,
                                       scale=scale_from_args(args), overwrite=args.overwrite)
            job.status = "done"
        except InputError as exc:
            job.status, job.message = "failed", str(exc)
        except KeyboardInterrupt as exc:
            job.status = "interrupted"
            if interrupted_said(exc) is not None:  # (stylize_video's: what became of it)
                partial, job.frames = exc.args[:2]
                job.message = (f"partial output in {partial}" if partial is not None else
                               "nothing written" + (f": {exc.args[2]}" if len(exc.args) == 3
                                                    else ""))
            else:
                job.message = ""
            job.seconds = time.perf_counter() - t0
            break
        job.seconds = time.perf_counter() - t0
    return jobs


@register
def add_batch_parser(sub):
    from blit.cli import _add_style_args
    from blit.video import add_video_job_args

    p = sub.add_parser("batch", help="stylize many videos (on Ray by default)",
                       description="Stylize every INPUT in the style of STYLE into OUTDIR, on a "
                                   "Ray cluster: each video in ranges of frames in parallel, "
                                   "joined in order with its audio. An input that cannot be "
                                   "read fails alone; a table of all jobs ends the run (with "
                                   "-q, only when a job did not complete; exit code 1 if any "
                                   "failed). Existing outputs are kept unless "
                                   "--overwrite; a file in OUTDIR that no batch recorded "
                                   "making is never replaced. Videos inside OUTDIR are not "
                                   "searched; a warning names them.")
    _add_style_args(p)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, folders of videos (searched with their subfolders; a "
                        "folder of images is one frame sequence), or list files (one path a "
                        "line, relative to the list's folder; # starts a comment)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="folder of the outputs, one per input, named after it (in the "
                        "subfolders it was found in: day1/clip.mp4; a second clip: "
                        "clip-2.mp4); an input batched into OUTDIR before keeps its output "
                        "there (OUTDIR/.styleblit-batch.json records them)")
    p.add_argument("--format", choices=("mp4", "mov", "mkv", "png"), default="mp4",
                   help="output container (default mp4), or png for a folder of frames each")
    add_video_job_args(p, engine="ray")
    p.set_defaults(run=_batch)
