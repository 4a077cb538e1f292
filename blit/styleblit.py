"""The StyleBlit hierarchical guided patch lookup (Sýkora et al. 2019).

For every target pixel ``p`` the lookup visits levels from coarse (seed
spacing 64 px) to fine (1 px). At each level the plane is cut into square
cells of that spacing, each holding one seed jittered inside it; ``p`` takes
the nearest seed ``q`` among its 9 neighbouring cells, looks up the exemplar
position ``u`` whose guides best match the target guides *at the seed*, and
proposes the candidate ``u + (p - q)``: the same offset from the seed in the
exemplar as in the target. The candidate is accepted at the first level at
which it lies inside the exemplar and its guide error against ``p``'s own
guides is below the threshold (a seed outside the region being computed has
no guides and is skipped). Pixels sharing an accepted seed therefore copy
one coherent patch of the exemplar; the finest level (spacing 1) is a
per-pixel lookup and always accepted.

A seed's ``u`` depends on the seed alone, and each is looked up by the first
pixel that needs it: most seeds of the fine levels are never needed, because
their pixels found a source at a coarser level. In a dense region (more than
half of it active), the coarsest level (seed spacing 64 px, where more than
half of a head's pixels find their source) goes first, for every pixel of a
row at once, by *runs*: the pixels of a row that share a seed share its
offset ``u - q``, so their candidates are one contiguous stretch of an
exemplar row and their guide errors one loop that the compiler vectorises.
The pixels left then go on one by one. The NNF is the same either way.

The output is a nearest-neighbour field (NNF): for each target pixel, the
exemplar pixel (x, y) it copies. :func:`blit.blending.blend` turns it into an
image.

Guide error (FaceBlit's, Texler et al. 2021, with positions in exemplar pixels
rather than 8-bit codes)::

    E(c; g, a) = lam_pos * (|c_x - g_x| + |c_y - g_y|) + lam_app * |A(c) - a|

where ``g`` is the target positional guide (an exemplar position), ``a`` the
target appearance guide, ``A`` the exemplar appearance guide and ``c`` an
exemplar pixel. ``lam_pos`` is per exemplar pixel; the defaults of
:class:`LookupParams` reproduce FaceBlit's weights (10 per 1/256 of the
exemplar size, 2 per appearance level, threshold 50).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numba
import numpy as np

from blit import precompile
from guides.buffers import take

__all__ = ["LookupParams", "make_jitter", "lookup", "argmin_lookup_table", "seed_labels",
           "DEFAULT_LEVELS"]

DEFAULT_LEVELS = 7  # seed spacings 64, 32, 16, 8, 4, 2, 1
_INACTIVE = -(1 << 24)  # NNF entry of a pixel outside ``active``
# A seed's exemplar pixel u = (u_x, u_y) is kept as one int64 word, u_x in the
# low half and u_y in the high half (seeds[k, 2:4] seen as int32), or:
_UNSEEN = -1  # not looked up yet (_seed_source): u = (-1, -1)
_NO_GUIDE = -4294967298  # the seed lies outside the region, it has no guides: u = (-2, -2)
_RUN_SHARE = 0.5  # above this share of active pixels, a region is dense: it goes
_RUN_SPACING = 64  # by runs (_run_row) at the levels of this seed spacing and coarser


@dataclass(frozen=True)
class LookupParams:
    """Weights and threshold of the guide error.

    Attributes
    ----------
    lam_pos : float
        Weight of the positional error per exemplar pixel (L1).
    lam_app : float
        Weight of the appearance error per level (appearance in [0, 255]).
    threshold : float
        Accept a candidate whose error is below this.
    levels : int
        Number of levels; the coarsest seed spacing is ``2**(levels-1)``.
    """

    lam_pos: float
    lam_app: float = 2.0
    threshold: float = 50.0
    levels: int = DEFAULT_LEVELS

    @classmethod
    def faceblit(cls, exemplar_shape, *, threshold=50.0, lam_app=2.0, levels=DEFAULT_LEVELS):
        """FaceBlit's weights for an exemplar of this (H, W): 10 per 1/256 of its size."""
        return cls(lam_pos=10.0 * 256.0 / max(exemplar_shape[:2]), lam_app=lam_app,
                   threshold=threshold, levels=levels)


def make_jitter(seed=0, *, levels=DEFAULT_LEVELS, size=64):
    """Seeded jitter table: the seed of cell ``(bx, by)`` at ``level`` lies at
    ``floor(2**level * ((bx, by) + jitter[level, by % size, bx % size]))``.

    Returns
    -------
    (levels, size, size, 2) float32 ndarray in [0, 1), (x, y) order.
    """
    rng = np.random.default_rng(seed)
    return rng.random((levels, size, size, 2), dtype=np.float32)


# ---------------------------------------------------------------------------
# Kernels (private): take arrays and scalars, write into ``out``.
# ---------------------------------------------------------------------------

@numba.njit(inline="always")
def _error_of(cx, cy, gx, gy, a, s, lam_pos, lam_app):
    """E for the exemplar pixel (cx, cy) (int64) whose appearance is ``s``
    (float32): the position term in float64 (int64 - float32), the
    appearance term in float32, their sum in float64."""
    return lam_pos * (abs(cx - gx) + abs(cy - gy)) + lam_app * abs(s - a)


@numba.njit(inline="always")
def _error(cx, cy, gx, gy, a, sapp, lam_pos, lam_app):
    # (the same arithmetic whether the exemplar's guide is float32 or uint8)
    return _error_of(cx, cy, gx, gy, a, np.float32(sapp[cy, cx]), lam_pos, lam_app)


@numba.njit(inline="always")
def _argmin_lookup(gx, gy, a, sapp, table, cell, app_bin, lam_pos, lam_app):
    """Exemplar pixel best matching the guide value (g, a).

    The per-style table answers for the cell and appearance bin of (g, a); the
    exemplar pixel nearest to g itself competes with it, so that a guide value
    that exists exactly in the exemplar finds itself.
    """
    hs, ws = sapp.shape
    hc, wc = table.shape[0], table.shape[1]
    ci = min(max(int(gx / cell), 0), wc - 1)
    cj = min(max(int(gy / cell), 0), hc - 1)
    ai = min(max(int(a), 0), 255)
    idx = table[cj, ci, app_bin[ai]]
    bx = idx % ws
    by = idx // ws
    rx = min(max(int(np.floor(gx + 0.5)), 0), ws - 1)
    ry = min(max(int(np.floor(gy + 0.5)), 0), hs - 1)
    if _error(rx, ry, gx, gy, a, sapp, lam_pos, lam_app) < _error(bx, by, gx, gy, a, sapp, lam_pos, lam_app):
        return rx, ry
    return bx, by


@numba.njit(inline="always")
def _seed_position(level, cx, cy, jitter):
    """The jittered seed q of cell (cx, cy) of a level (spacing 2^level)."""
    spacing = 1 << level
    size = jitter.shape[1]
    if size & (size - 1) == 0:
        # a power of two (make_jitter's 64): the modulo as a mask, which is
        # the same for negative cells (two's complement); the division of
        # the modulo took two thirds of the seed-position pass
        ix, iy = cx & (size - 1), cy & (size - 1)
    else:
        ix, iy = cx % size, cy % size
    qx = int(np.floor(spacing * (cx + jitter[level, iy, ix, 0])))
    qy = int(np.floor(spacing * (cy + jitter[level, iy, ix, 1])))
    return qx, qy


@numba.njit(parallel=True, cache=True, nogil=True)
def _seed_position_kernel(jitter, grid, seeds):
    """seeds[k, :2] = (q_x, q_y): the position of every seed of every level;
    ``grid[level] = (offset, bx0, by0, ncx, ncy)`` locates the level's cells
    in the flat array (row by row; the rows of a level in parallel)."""
    for level in range(1, grid.shape[0]):
        offset, bx0, by0, ncx, ncy = grid[level, 0], grid[level, 1], grid[level, 2], grid[level, 3], grid[level, 4]
        for jj in numba.prange(ncy):
            j = np.int64(jj)  # prange indices may be unsigned
            for i in range(ncx):
                qx, qy = _seed_position(level, bx0 + i, by0 + j, jitter)
                seeds[offset + j * ncx + i, 0] = qx
                seeds[offset + j * ncx + i, 1] = qy


@numba.njit(inline="always")
def _look_up_seed(k, qx, qy, tpos, tapp, sapp, table, cell, app_bin, ox, oy, lam_pos, lam_app,
                  memo):
    """The exemplar pixel u that seed k (at frame position q) looks up, packed
    as ``u_y << 32 | u_x``, or _NO_GUIDE for a seed outside the region;
    stored in ``memo[k, 1]`` (the int64 view of the seeds). Threads that
    meet an unseen seed at the same time compute the same value and store it
    whole (one aligned 8-byte word), so the race is benign and the NNF does
    not depend on it."""
    sx = qx - ox
    sy = qy - oy
    if 0 <= sx < tpos.shape[1] and 0 <= sy < tpos.shape[0]:
        ux, uy = _argmin_lookup(tpos[sy, sx, 0], tpos[sy, sx, 1], tapp[sy, sx],
                                sapp, table, cell, app_bin, lam_pos, lam_app)
        v = (np.int64(uy) << 32) | np.int64(ux)
    else:
        v = np.int64(_NO_GUIDE)
    memo[k, 1] = v
    return v


@numba.njit(inline="always")
def _seed_source(k, qx, qy, tpos, tapp, sapp, table, cell, app_bin, ox, oy, lam_pos, lam_app,
                 memo):
    """Seed k's exemplar pixel, packed as in :func:`_look_up_seed`: looked up
    the first time a pixel needs it, and kept."""
    v = memo[k, 1]
    if v == _UNSEEN:
        v = _look_up_seed(k, qx, qy, tpos, tapp, sapp, table, cell, app_bin, ox, oy,
                          lam_pos, lam_app, memo)
    return v


@numba.njit(parallel=True, cache=True, nogil=True)
def _run_seed_kernel(seeds, grid, first, tpos, tapp, sapp, table, cell, app_bin, ox, oy,
                     lam_pos, lam_app, memo):
    """:func:`_look_up_seed` for every seed of the levels ``first`` and
    coarser, which go by runs (:func:`_run_row`) and read them without a
    test (few: one per 64x64 cell at the default spacings); the cell rows
    of a level in parallel."""
    for level in range(first, grid.shape[0]):
        offset, ncx, ncy = grid[level, 0], grid[level, 3], grid[level, 4]
        for jj in numba.prange(ncy):
            j = np.int64(jj)  # prange indices may be unsigned
            for i in range(ncx):
                k = offset + j * ncx + i
                _look_up_seed(k, seeds[k, 0], seeds[k, 1], tpos, tapp, sapp, table, cell, app_bin,
                              ox, oy, lam_pos, lam_app, memo)


@numba.njit(parallel=True, cache=True, nogil=True)
def _label_kernel(jitter, labels):
    """labels[level, y, x]: which of the 9 cells around pixel (x, y)'s cell
    holds its nearest seed (3 * row + column, first minimum). The seeds of
    a level are placed once, in a table of its cells and a ring of one
    around them, which the pixels then read (11x faster at 768x1024 than
    placing the 9 seeds pixel by pixel)."""
    h, w = labels.shape[1], labels.shape[2]
    for level in range(1, labels.shape[0]):
        # seed of cell (i - 1, j - 1) at q[j, i]
        ncx = ((w - 1) >> level) + 3
        ncy = ((h - 1) >> level) + 3
        q = np.empty((ncy, ncx, 2), np.int64)
        for jj in numba.prange(ncy):
            j = np.int64(jj)  # prange indices may be unsigned
            for i in range(ncx):
                q[j, i, 0], q[j, i, 1] = _seed_position(level, i - 1, j - 1, jitter)
        for yy in numba.prange(h):
            y = np.int64(yy)
            by = y >> level
            for x in range(w):
                bx = x >> level
                best_d = 1 << 30
                best = 0
                for j in range(3):
                    for i in range(3):
                        dx = q[by + j, bx + i, 0] - x
                        dy = q[by + j, bx + i, 1] - y
                        d = dx * dx + dy * dy
                        if d < best_d:
                            best_d = d
                            best = 3 * j + i
                labels[level, y, x] = best


@numba.njit(inline="always")
def _nearest_label(seeds, k0, ncx, px, py):
    """NearestSeed: which of the 9 cells around p's (the first at seed
    ``k0``, the others ``ncx`` per row) holds the seed nearest to p
    (3 * row + column, first minimum), as :func:`seed_labels` says."""
    best_d = 1 << 30
    best = 0
    for j in range(3):
        for i in range(3):
            kk = k0 + j * ncx + i
            dx = seeds[kk, 0] - px
            dy = seeds[kk, 1] - py
            d = dx * dx + dy * dy
            if d < best_d:
                best_d = d
                best = 3 * j + i
    return best


@numba.njit(inline="always")
def _accept_run(y, xa, xb, dx, cy, ox, tp, ta, sflat, ws, lam_pos, lam_app, threshold,
                pending, n64):
    """The candidates ``(x + ox + dx, cy)`` of the pixels xa..xb-1 of row y,
    one seed's run, all inside the exemplar: a pending pixel whose guide
    error is below the threshold takes its candidate (packed as in the NNF's
    int64 view) and is no longer pending. The same arithmetic as
    :func:`_error`, flat arrays with unsigned indices and selects instead of
    branches, so that LLVM vectorises it."""
    w = pending.shape[0]
    cy = np.int64(cy)
    word = (cy << 32) | (xa + ox + dx)  # the packed candidate of pixel xa
    row = np.uint64(y * w + xa)
    at = np.uint64(cy * ws + xa + ox + dx)
    for jj in range(np.uint64(xb - xa)):
        j = np.uint64(jj)
        i = row + j
        e = _error_of(np.int64(xa + ox + dx) + np.int64(jj), cy, tp[np.uint64(2) * i],
                      tp[np.uint64(2) * i + np.uint64(1)], ta[i], np.float32(sflat[at + j]),
                      lam_pos, lam_app)
        p = np.uint64(xa) + j
        ok = (e < threshold) & (pending[p] != 0)
        n64[i] = (word + np.int64(jj)) if ok else n64[i]
        pending[p] = np.uint8(0) if ok else pending[p]


@numba.njit(inline="always")
def _run_row(level, y, ox, oy, tpos, tapp, sapp, lam_pos, lam_app, threshold, grid, seeds, memo,
             labels, lab, pending, nnf):
    """One level of the lookup for the pending pixels of row y, by runs of
    pixels that share a seed (and so a candidate offset ``u - q``): the
    same test as :func:`_lookup_row` makes pixel by pixel."""
    w = tpos.shape[1]
    hs, ws = sapp.shape
    offset, bx0, by0, ncx = grid[level, 0], grid[level, 1], grid[level, 2], grid[level, 3]
    py = y + oy
    # seed of the top-left cell around p, less p's cell column: + (px >> level)
    k_row = offset + ((py >> level) - by0 - 1) * ncx - bx0 - 1
    for x in range(w):
        px = x + ox
        if labels.shape[0] > 1:
            lab[x] = labels[level, py, px]
        else:
            lab[x] = _nearest_label(seeds, k_row + (px >> level), ncx, px, py)
    tp = tpos.reshape(tpos.size)
    ta = tapp.reshape(tapp.size)
    sflat = sapp.reshape(sapp.size)
    n64 = nnf.reshape(nnf.size).view(np.int64)
    x = 0
    while x < w:
        # a run: the pixels from x0 on with p's label, in p's cell
        x0 = x
        l = np.int64(lab[x0])
        end = min((((x0 + ox) >> level) + 1) << level, ox + w) - ox
        x += 1
        while x < end and lab[x] == l:
            x += 1
        k = k_row + ((x0 + ox) >> level) + (l // 3) * ncx + l % 3
        u = memo[k, 1]
        if u == _NO_GUIDE:
            continue  # a seed outside the region has no guides
        dx = (u & 0xFFFFFFFF) - seeds[k, 0]  # candidate: (px + dx, cy)
        cy = (u >> 32) + py - seeds[k, 1]
        if cy < 0 or cy >= hs:
            continue
        xa = max(x0, -dx - ox)
        xb = min(x, ws - dx - ox)
        if xa < xb:
            _accept_run(y, xa, xb, dx, cy, ox, tp, ta, sflat, ws, lam_pos, lam_app, threshold,
                        pending, n64)


@numba.njit(parallel=True, cache=True, nogil=True)
def _lookup_kernel(tpos, tapp, sapp, table, cell, app_bin, ox, oy, lam_pos, lam_app, threshold,
                   levels, run_from, grid, seeds, memo, labels, active, nnf):
    """The NNF, a row at a time: the levels ``run_from`` and coarser for the
    whole row by runs (:func:`_run_row`), the others pixel by pixel for
    the pixels still pending (:func:`_lookup_row`)."""
    h, w = tpos.shape[0], tpos.shape[1]
    for yy in numba.prange(h):
        y = np.int64(yy)  # prange indices may be unsigned
        pending = np.empty(w, np.uint8)
        lab = np.empty(w, np.uint8)
        for x in range(w):
            pending[x] = active[y, x]
            nnf[y, x, 0] = _INACTIVE
            nnf[y, x, 1] = _INACTIVE
        for level in range(levels - 1, run_from - 1, -1):
            _run_row(level, y, ox, oy, tpos, tapp, sapp, lam_pos, lam_app, threshold, grid, seeds,
                     memo, labels, lab, pending, nnf)
        _lookup_row(tpos, tapp, sapp, table, cell, app_bin, ox, oy, lam_pos, lam_app, threshold,
                    min(levels, run_from), grid, seeds, memo, labels, pending, nnf, y)


@numba.njit(inline="always")
def _lookup_row(tpos, tapp, sapp, table, cell, app_bin, ox, oy,
                lam_pos, lam_app, threshold, top, grid, seeds, memo, labels, pending, nnf, y):
    # A function per row, inlined into the prange loop (faster than a call):
    # its per-pixel locals belong to one iteration.
    w = tpos.shape[1]
    hs, ws = sapp.shape
    for x in range(w):
        if not pending[x]:
            continue
        px = x + ox
        py = y + oy
        gx = tpos[y, x, 0]
        gy = tpos[y, x, 1]
        a = tapp[y, x]
        done = False
        for level in range(top - 1, 0, -1):
            # NearestSeed: the closest of the seeds of the 9 cells around p's
            offset, bx0, by0, ncx = grid[level, 0], grid[level, 1], grid[level, 2], grid[level, 3]
            k0 = offset + ((py >> level) - by0 - 1) * ncx + (px >> level) - bx0 - 1
            if labels.shape[0] > 1:  # precomputed for this frame size and jitter
                lab = np.int64(labels[level, py, px])
            else:
                lab = _nearest_label(seeds, k0, ncx, px, py)
            k = k0 + (lab // 3) * ncx + lab % 3
            qx = seeds[k, 0]
            qy = seeds[k, 1]
            u = _seed_source(k, qx, qy, tpos, tapp, sapp, table, cell, app_bin, ox, oy,
                             lam_pos, lam_app, memo)
            if u == _NO_GUIDE:
                continue  # a seed outside the region has no guides: go finer
            # candidate: the seed's exemplar position plus p's offset from it
            cx = (u & 0xFFFFFFFF) + (px - qx)
            cy = (u >> 32) + (py - qy)
            if 0 <= cx < ws and 0 <= cy < hs:
                if _error(cx, cy, gx, gy, a, sapp, lam_pos, lam_app) < threshold:
                    nnf[y, x, 0] = cx
                    nnf[y, x, 1] = cy
                    done = True
                    break
        if not done:
            # finest level: the pixel is its own seed; always accepted
            ux, uy = _argmin_lookup(gx, gy, a, sapp, table, cell, app_bin, lam_pos, lam_app)
            nnf[y, x, 0] = ux
            nnf[y, x, 1] = uy


def _is_cupy(a):
    """A CuPy array, told without importing CuPy (CUDA is touched only then)."""
    return type(a).__module__.split(".", 1)[0] == "cupy"


def _seed_grid(h, w, ox, oy, levels):
    """Per level: (offset, bx0, by0, ncx, ncy) of the cells whose seeds any
    pixel of the region may use (its cells plus a ring of one)."""
    grid = np.zeros((max(levels, 2), 5), np.int64)
    offset = 0
    for level in range(1, levels):
        bx0, by0 = (ox >> level) - 1, (oy >> level) - 1
        ncx = ((ox + w - 1) >> level) + 2 - bx0
        ncy = ((oy + h - 1) >> level) + 2 - by0
        grid[level] = (offset, bx0, by0, ncx, ncy)
        offset += ncx * ncy
    return grid, offset


@numba.njit(parallel=True, cache=True, nogil=True)
def _table_kernel(sapp, cell, bin_values, lam_pos, lam_app, table):
    """table[j, i, b] = argmin_c lam_pos |c - centre(i, j)|_1 + lam_app |A(c) - v_b|.

    Exact, by a separable L1 distance transform (rows, then columns) of the
    appearance cost of each bin.
    """
    hs, ws = sapp.shape
    hc, wc, nbins = table.shape
    for b in numba.prange(nbins):
        v = bin_values[b]
        # row pass: best column for every (row, cell column)
        rowcost = np.empty((hs, wc), np.float32)
        rowarg = np.empty((hs, wc), np.int32)
        g = np.empty(ws, np.float32)
        arg = np.empty(ws, np.int32)
        for y in range(hs):
            for x in range(ws):
                g[x] = lam_app * abs(sapp[y, x] - v)
                arg[x] = x
            for x in range(1, ws):
                if g[x - 1] + lam_pos < g[x]:
                    g[x] = g[x - 1] + lam_pos
                    arg[x] = arg[x - 1]
            for x in range(ws - 2, -1, -1):
                if g[x + 1] + lam_pos < g[x]:
                    g[x] = g[x + 1] + lam_pos
                    arg[x] = arg[x + 1]
            for i in range(wc):
                xc = min(i * cell + cell // 2, ws - 1)
                rowcost[y, i] = g[xc]
                rowarg[y, i] = arg[xc]
        # column pass at the cell-centre columns
        gc = np.empty(hs, np.float32)
        argy = np.empty(hs, np.int32)
        for i in range(wc):
            for y in range(hs):
                gc[y] = rowcost[y, i]
                argy[y] = y
            for y in range(1, hs):
                if gc[y - 1] + lam_pos < gc[y]:
                    gc[y] = gc[y - 1] + lam_pos
                    argy[y] = argy[y - 1]
            for y in range(hs - 2, -1, -1):
                if gc[y + 1] + lam_pos < gc[y]:
                    gc[y] = gc[y + 1] + lam_pos
                    argy[y] = argy[y + 1]
            for j in range(hc):
                yc = min(j * cell + cell // 2, hs - 1)
                yy = argy[yc]
                table[j, i, b] = yy * ws + rowarg[yy, i]


# ---------------------------------------------------------------------------
# Public functions: validate, allocate, call a kernel.
# ---------------------------------------------------------------------------

#: The lookup tables whose entries were checked (id -> a weak reference to
#: the table, and the exemplar size they were checked for): a style's table
#: is checked once, not on every frame (0.6 ms for a 768x1024 exemplar's).
_checked_tables: dict = {}


def _check_table(style_app, table, app_bin, cell):
    """A ValueError unless the lookup's exemplar guide, table, bins and cell
    are of the types and ranges its kernels index by (what
    :func:`argmin_lookup_table` gives): out of range they would read and
    write outside their arrays."""
    if style_app.ndim != 2 or style_app.dtype not in (np.uint8, np.float32):
        raise ValueError(f"style_app: expected (Hs, Ws) uint8 or float32, got "
                         f"{style_app.shape} {style_app.dtype}")
    if not isinstance(table, np.ndarray) or table.ndim != 3 or table.dtype != np.int32 or 0 in table.shape:
        raise ValueError(f"table: expected argmin_lookup_table's (Hc, Wc, bins) int32, got "
                         f"{np.shape(table)} {getattr(table, 'dtype', type(table).__name__)}")
    if (not isinstance(app_bin, np.ndarray) or app_bin.shape != (256,) or app_bin.dtype != np.int32
            or app_bin.min() < 0 or app_bin.max() >= table.shape[2]):
        raise ValueError(f"app_bin: expected (256,) int32 bins of the table's {table.shape[2]}")
    if int(cell) != cell or cell < 1:
        raise ValueError(f"cell: expected a whole number >= 1, got {cell}")
    size = style_app.size
    seen = _checked_tables.get(id(table))
    if seen is not None and seen[0]() is table and seen[1] == size:
        return
    if table.min() < 0 or table.max() >= size:
        raise ValueError(f"table: entries must be exemplar pixel indices in [0, {size}) "
                         f"(y * Ws + x), got {table.min()}..{table.max()}")
    for key in [k for k, (ref, _) in _checked_tables.items() if ref() is None]:
        del _checked_tables[key]
    _checked_tables[id(table)] = (weakref.ref(table), size)


def _check_jitter(jitter, levels):
    """A ValueError unless ``jitter`` is a (>= levels, J, J, 2) table: the
    kernels index both of its table axes modulo J (NumPy or CuPy arrays)."""
    if (jitter.ndim != 4 or jitter.shape[0] < levels or jitter.shape[1] != jitter.shape[2]
            or jitter.shape[3] != 2):
        raise ValueError(f"jitter: expected (>= {levels}, J, J, 2), got shape {jitter.shape}")


def seed_labels(frame_shape, jitter, levels=DEFAULT_LEVELS):
    """Nearest-seed labels of every frame pixel at every level, for :func:`lookup`.

    They depend only on the frame size and the jitter table, so a video
    stream computes them once.

    Parameters
    ----------
    frame_shape : (int, int)
        (H, W) of the frame.
    jitter : (L, J, J, 2) float32 ndarray
    levels : int

    Returns
    -------
    (levels, H, W) uint8 ndarray
        Index ``3 * row + column`` of the cell, among the 3x3 around the
        pixel's, whose seed is nearest (level 0 unused).
    """
    _check_jitter(jitter, levels)
    labels = np.zeros((max(levels, 2), int(frame_shape[0]), int(frame_shape[1])), np.uint8)
    _label_kernel(np.ascontiguousarray(jitter, np.float32), labels)
    return labels


def appearance_bins(style_app, nbins):
    """Equal-population appearance bins of the exemplar.

    Parameters
    ----------
    style_app : (Hs, Ws) float32 or uint8 ndarray in [0, 255]
    nbins : int

    Returns
    -------
    app_bin : (256,) int32 ndarray
        Bin of each integer appearance level.
    bin_values : (nbins,) float32 ndarray
        Representative appearance of each bin (its median).
    """
    levels = np.clip(style_app, 0, 255).astype(np.int64)
    hist = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(hist) / hist.sum()
    centre = cdf - hist / (2 * hist.sum())  # mid-rank of each level
    app_bin = np.minimum((centre * nbins).astype(np.int32), nbins - 1)
    qs = (np.arange(nbins) + 0.5) / nbins
    bin_values = np.quantile(style_app, qs).astype(np.float32)
    return app_bin.astype(np.int32), bin_values


def argmin_lookup_table(style_app, params, *, cell=4, nbins=32):
    """Per-style lookup table from (position cell, appearance bin) to the
    exemplar pixel of least guide error.

    FaceBlit precomputes a 256^3 table (64 MiB) by brute-force search; this one
    indexes positions by ``cell``-pixel cells and appearance by ``nbins``
    equal-population bins, and is computed exactly (for each cell centre and
    bin value) by separable L1 distance transforms.

    Parameters
    ----------
    style_app : (Hs, Ws) float32 or uint8 ndarray
        Exemplar appearance guide in [0, 255].
    params : LookupParams
    cell : int
    nbins : int

    Returns
    -------
    table : (ceil(Hs/cell), ceil(Ws/cell), nbins) int32 ndarray
        Flat exemplar index ``y * Ws + x``.
    app_bin : (256,) int32 ndarray
    """
    style_app = np.ascontiguousarray(style_app, dtype=np.float32)
    if style_app.ndim != 2:
        raise ValueError(f"style_app: expected (H, W), got shape {style_app.shape}")
    hs, ws = style_app.shape
    app_bin, bin_values = appearance_bins(style_app, nbins)
    if params.lam_app == 0:
        bin_values[:] = 0.0
    table = np.empty((-(-hs // cell), -(-ws // cell), nbins), np.int32)
    _table_kernel(style_app, int(cell), bin_values, np.float32(params.lam_pos),
                  np.float32(params.lam_app), table)
    return table, app_bin


def lookup(target_pos, target_app, style_app, table, app_bin, cell, params, jitter,
           *, origin=(0, 0), active=None, labels=None, out=None, buffers=None):
    """Hierarchical StyleBlit lookup: the NNF from target guides to the exemplar.

    Parameters
    ----------
    target_pos : (H, W, 2) float32 ndarray
        Positional guide: the exemplar position (x, y) each target pixel
        corresponds to. Must be finite: NaN is not checked (a check would
        cost about 1 ms a 768x1024 frame), and where it is, the NNF has no
        meaning (give such pixels ``active=False`` instead).
    target_app : (H, W) float32 ndarray or None
        Appearance guide in [0, 255]; None uses position only (``lam_app``
        is then ignored).
    style_app : (Hs, Ws) float32 or uint8 ndarray
        Exemplar appearance guide (:attr:`guides.exemplar.StyleExemplar.appearance`
        is uint8; the CUDA path takes it as float32, same values, same NNF).
    table, app_bin, cell
        From :func:`argmin_lookup_table` for these ``params`` (their types
        and ranges are checked: the kernels index by them; a table's entries
        once per table).
    params : LookupParams
    jitter : (L, J, J, 2) float32 ndarray
        From :func:`make_jitter`; ``L >= params.levels``.
    origin : (int, int)
        Frame position (x, y) of ``target_pos[0, 0]``: the seed grid is
        anchored to the frame, not to the region computed.
    active : (H, W) bool ndarray, optional
        Compute only these pixels; the others get a large negative NNF entry
        that :func:`blit.blending.blend` skips. Default: all.
    labels : (L, Hf, Wf) uint8 ndarray, optional
        :func:`seed_labels` of the whole frame for this jitter; saves the
        nearest-seed search (same result). Streams compute it once.
    out : (H, W, 2) int32 ndarray, optional
    buffers : guides.buffers.Buffers, optional
        Where to take the work arrays from (names ``"lookup_*"``; a stream
        passes its own so that it allocates nothing per frame); default:
        new arrays.

    Returns
    -------
    nnf : (H, W, 2) int32 ndarray
        Exemplar pixel (x, y) copied to each (active) target pixel; always
        inside the exemplar.

    Notes
    -----
    CuPy arrays run the CUDA kernels instead (:func:`blit.gpu.lookup`, same
    NNF) and give a CuPy NNF; NumPy and CuPy arrays in one call are a
    ``TypeError`` naming the odd one.
    """
    if any(map(_is_cupy, (target_pos, target_app, style_app, table, app_bin, jitter, active, labels, out))):
        from blit import gpu

        return gpu.lookup(target_pos, target_app, style_app, table, app_bin, cell, params, jitter,
                          origin=origin, active=active, labels=labels, out=out)
    if precompile._child is not None:  # (a first run: its kernels are being compiled)
        precompile.wait()
    target_pos = np.ascontiguousarray(target_pos, dtype=np.float32)
    if target_pos.ndim != 3 or target_pos.shape[2] != 2:
        raise ValueError(f"target_pos: expected (H, W, 2), got shape {target_pos.shape}")
    h, w = target_pos.shape[:2]
    if out is None:
        out = np.empty((h, w, 2), np.int32)
    elif out.shape != (h, w, 2) or out.dtype != np.int32:
        raise ValueError(f"out: expected ({h}, {w}, 2) int32, got {out.shape} {out.dtype}")
    elif not out.flags.c_contiguous:  # the kernel writes C-contiguous rows
        out[...] = lookup(target_pos, target_app, style_app, table, app_bin, cell, params, jitter,
                          origin=origin, active=active, labels=labels, buffers=buffers)
        return out
    lam_app = params.lam_app
    if target_app is None:
        target_app = take(buffers, "lookup_no_app", (h, w), np.float32)
        target_app[...] = 0.0
        lam_app = 0.0
    target_app = np.ascontiguousarray(target_app, dtype=np.float32)
    if target_app.shape != (h, w):
        raise ValueError(f"target_app: expected shape {(h, w)}, got {target_app.shape}")
    _check_jitter(jitter, params.levels)
    if not 1 <= params.levels <= 12:
        raise ValueError(f"levels: expected 1..12, got {params.levels}")
    if active is None:
        active = take(buffers, "lookup_active", (h, w), np.bool_)
        active[...] = True
    elif active.shape != (h, w):
        raise ValueError(f"active: expected shape {(h, w)}, got {active.shape}")
    if h == 0 or w == 0:
        return out
    ox, oy = int(origin[0]), int(origin[1])
    if ox < 0 or oy < 0:
        raise ValueError(f"origin: expected non-negative frame coordinates, got {origin}")
    lam_pos, lam_app = np.float32(params.lam_pos), np.float32(lam_app)
    style_app = np.ascontiguousarray(style_app)
    _check_table(style_app, table, app_bin, cell)
    grid, nseeds = _seed_grid(h, w, ox, oy, params.levels)
    # per seed: q and u, 16 bytes; u (seeds[k, 2:4]) as one int64 in memo[k, 1]
    memo = take(buffers, "lookup_memo", (max(nseeds, 1), 2), np.int64)
    seeds = memo.view(np.int32)
    active = np.ascontiguousarray(active, dtype=np.bool_)
    jitter = np.ascontiguousarray(jitter, np.float32)
    run_from = params.levels  # no level by runs
    if nseeds:
        _seed_position_kernel(jitter, grid, seeds)
        memo[:, 1] = _UNSEEN
        if np.count_nonzero(active) > _RUN_SHARE * active.size:
            # a dense region: its coarse levels by runs, their seeds looked up first
            run_from = max(int(_RUN_SPACING).bit_length() - 1, 1)
            if run_from < params.levels:
                _run_seed_kernel(seeds, grid, run_from, target_pos, target_app, style_app, table,
                                 int(cell), app_bin, ox, oy, lam_pos, lam_app, memo)
    if labels is None:
        labels = np.zeros((1, 1, 1), np.uint8)
    elif (labels.dtype != np.uint8 or labels.ndim != 3 or labels.shape[0] < params.levels
          or labels.shape[1] < oy + h or labels.shape[2] < ox + w):
        raise ValueError(f"labels: expected (>= {params.levels}, >= {oy + h}, >= {ox + w}) uint8 "
                         f"for this region, got {labels.shape} {labels.dtype}")
    _lookup_kernel(target_pos, target_app, style_app, table, int(cell), app_bin, ox, oy,
                   lam_pos, lam_app, np.float32(params.threshold), int(params.levels),
                   int(run_from), grid, seeds, memo, labels, active, out)
    return out
