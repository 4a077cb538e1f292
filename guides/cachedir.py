"""Where styleblit keeps what it caches: prepared styles, the default
exemplar, and (only where Numba has nowhere of its own) Numba's compiled
kernels.

Standard library only: :mod:`guides` uses it before Numba is imported.
"""
from __future__ import annotations

import os
import stat
import sys
import tempfile

__all__ = ["cache_dir", "cache_dirs", "usable_cache_dir", "fallback_cache_dir",
           "numba_cache_fallback", "numba_cache_note", "matplotlib_config_fallback"]


def cache_dir():
    """Folder of styleblit's caches (created on demand): ``$STYLEBLIT_CACHE``,
    else ``$XDG_CACHE_HOME/styleblit``, else ``~/.cache/styleblit`` (a
    leading ``~`` in either variable is the home folder)."""
    root = os.environ.get("STYLEBLIT_CACHE")
    if root:
        return os.path.expanduser(root)
    base = os.environ.get("XDG_CACHE_HOME")
    base = os.path.expanduser(base) if base else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "styleblit")


def cache_dirs():
    """The folders to look in for a cached file: :func:`cache_dir`, or
    where it cannot be made or written in, also :func:`fallback_cache_dir`
    (where such files are written instead)."""
    folder = cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        if os.access(folder, os.W_OK | os.X_OK):
            return [folder]
    except OSError:
        pass
    fallback = fallback_cache_dir(create=False)
    return [folder] + ([fallback] if fallback else [])


def usable_cache_dir():
    """:func:`cache_dir` where it is (or could be made) a folder that can
    be written in, else :func:`fallback_cache_dir` (its path, or
    :func:`cache_dir` where that is taken too); makes nothing."""
    folder = probe = cache_dir()
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK):
        return folder
    return fallback_cache_dir(create=False) or folder


#: How many names :func:`fallback_cache_dir` tries (``styleblit-UID``, then
#: ``styleblit-UID-1`` ...) before it makes a new folder of a random name.
_FALLBACK_NAMES = 8


def _fallback_names():
    uid = os.getuid() if hasattr(os, "getuid") else None
    base = os.path.join(tempfile.gettempdir(), f"styleblit-{uid if uid is not None else 'cache'}")
    return uid, [base] + [f"{base}-{i}" for i in range(1, _FALLBACK_NAMES)]


def fallback_cache_dir(create=True):
    """A folder of this user's in the temporary folder, for what cannot be
    cached in :func:`cache_dir` (read-only, or a file): ``styleblit-UID``,
    or where that name is taken (another user's folder, a link, a file, a
    folder others can write in: made there before, on purpose or not; it
    holds Numba's cache, whose index files are pickles),
    ``styleblit-UID-1`` and so on, so that every run finds the same one
    again. With ``create``, made if need be (a new folder of a random name
    where all of them are taken); without, its path, or None where all are
    taken."""
    uid, names = _fallback_names()
    for folder in names:
        try:
            if create:
                try:
                    os.mkdir(folder, 0o700)
                except FileExistsError:
                    pass
            st = os.lstat(folder)  # (a link is not followed: taken)
        except FileNotFoundError:
            if create:
                continue  # (its parent is gone: mkdtemp below says why)
            return folder  # (not create: free, and where it would be made)
        except OSError:
            continue
        if (stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o022
                and (uid is None or st.st_uid == uid)):
            return folder
    return tempfile.mkdtemp(prefix="styleblit-") if create else None


def _writable(folder):
    """Whether ``folder`` can be made and written in (Numba's own test of a
    cache folder)."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def numba_cache_fallback(packages=("blit", "guides")):
    """Where Numba would find no folder to cache the kernels of
    ``packages`` in, name one (``NUMBA_CACHE_DIR``) before it is imported,
    and return it (None where none is needed; :func:`numba_cache_note`
    says what to tell the user).

    Numba caches a module's kernels in the ``__pycache__`` beside it, else
    in ``$XDG_CACHE_HOME/numba`` (``~/.cache/numba``). With the package
    installed read-only and no home folder to write in (a service account,
    a locked-down container), it found neither, and importing any kernel
    failed ("cannot cache function ...: no locator available"): every
    command, ``--version`` included, ended in that traceback. The kernels
    are then cached in ``numba`` in :func:`fallback_cache_dir`. A
    ``NUMBA_CACHE_DIR`` of the user's own always wins.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if all(_writable(os.path.join(root, name, "__pycache__")) for name in packages):
        return None
    if sys.platform.startswith("linux"):  # (Numba's own user-wide folder: its appdirs)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        if _writable(os.path.join(base, "numba")):
            return None
    elif sys.platform != "darwin" or _writable(os.path.expanduser("~/Library/Caches/numba")):
        return None  # (Windows: left to Numba)
    folder = os.path.join(fallback_cache_dir(), "numba")
    os.environ["NUMBA_CACHE_DIR"] = folder
    config = sys.modules.get("numba.core.config")
    if config is not None:  # (Numba imported already: its setting is read when a kernel is made)
        config.CACHE_DIR = folder
    return folder


def numba_cache_note(folder):
    """What to say, once, of :func:`numba_cache_fallback`'s ``folder``: a
    sentence the first time it is asked for (a file beside the folder then
    remembers it), else None."""
    told = folder.rstrip(os.sep) + "-told"
    if os.path.exists(told):
        return None
    try:
        open(told, "w").close()
    except OSError:
        pass
    return (f"Numba cannot cache the compiled kernels beside the installed package nor in the "
            f"home folder (neither can be written); they are cached in {folder}")


def matplotlib_config_fallback():
    """Where matplotlib's folder (its font cache; mediapipe imports pyplot)
    cannot be made in the home folder, name ``matplotlib`` in
    :func:`fallback_cache_dir` (``MPLCONFIGDIR``) before it is imported:
    it made a new temporary folder on every run and printed two lines of
    advice about it. A ``MPLCONFIGDIR`` of the user's own wins."""
    if os.environ.get("MPLCONFIGDIR") or not sys.platform.startswith("linux"):
        return
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    if not _writable(os.path.join(base, "matplotlib")):
        os.environ["MPLCONFIGDIR"] = os.path.join(fallback_cache_dir(), "matplotlib")
