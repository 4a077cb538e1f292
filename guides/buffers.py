"""Reusable work arrays, so that a stream allocates nothing per frame.

The per-frame functions of :mod:`guides` and :func:`blit.styleblit.lookup`
take an optional ``buffers``: where they would allocate an array, they ask
it for one by name instead (:func:`take`). A :class:`Buffers` keeps one flat
array per name and hands out contiguous views of it, growing it when a
larger one is asked for, so a stream whose head box changes size every frame
reuses the same memory. Without ``buffers`` the functions allocate as usual.
An array taken from ``buffers`` is overwritten the next time its name is
asked for: a caller that keeps a result across calls passes its own names
or its own ``out``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Buffers", "take"]


class Buffers:
    """Named flat arrays that grow as needed; :meth:`get` hands out views.

    ``empty(n, dtype)`` allocates a flat array: :func:`numpy.empty` by
    default, ``cupy.empty`` for device memory (:class:`blit.gpu.DeviceBuffers`).
    """

    def __init__(self, empty=np.empty):
        self._flat = {}
        self._empty = empty

    def get(self, name, shape, dtype):
        """A C-contiguous ``(shape, dtype)`` view of the array called ``name``
        (its contents are whatever was last written there)."""
        dtype = np.dtype(dtype)
        n = math.prod(int(s) for s in shape)  # (np.prod of a tuple: 40x slower)
        buf = self._flat.get(name)
        if buf is None or buf.size < n or buf.dtype != dtype:
            buf = self._empty(n + n // 4 + 64, dtype)  # headroom: boxes grow a little at a time
            self._flat[name] = buf
        return buf[:n].reshape(shape)

    @property
    def nbytes(self):
        return sum(b.nbytes for b in self._flat.values())

    def clear(self):
        self._flat.clear()


def take(buffers, name, shape, dtype):
    """``buffers.get(name, shape, dtype)``, or a new array without buffers."""
    if buffers is None:
        return np.empty(shape, dtype)
    return buffers.get(name, shape, dtype)
