"""Slow, obviously correct references of the fast kernels, for the tests.

Each function here computes what its Numba twin computes, written for
clarity: brute force, whole-array NumPy, one pixel at a time where that
reads like the paper. They are meant for inputs of a few thousand pixels.
"""
from __future__ import annotations

import numpy as np

from blit.styleblit import appearance_bins


def guide_error(c, g, a, style_app, params_lam_pos, params_lam_app):
    """E(c; g, a) for exemplar pixels c (..., 2) int against guide (g, a)."""
    cx, cy = c[..., 0], c[..., 1]
    return (params_lam_pos * (np.abs(cx - g[0]) + np.abs(cy - g[1]))
            + params_lam_app * np.abs(style_app[cy, cx] - a))


def argmin_lookup_table(style_app, params, *, cell=4, nbins=32):
    """Brute force: every exemplar pixel tried for every cell centre and bin."""
    hs, ws = style_app.shape
    app_bin, values = appearance_bins(style_app, nbins)
    if params.lam_app == 0:
        values[:] = 0.0
    ys, xs = np.mgrid[0:hs, 0:ws]
    table = np.empty((-(-hs // cell), -(-ws // cell), nbins), np.int32)
    for j in range(table.shape[0]):
        for i in range(table.shape[1]):
            yc = min(j * cell + cell // 2, hs - 1)
            xc = min(i * cell + cell // 2, ws - 1)
            for b in range(nbins):
                cost = (np.float32(params.lam_pos) * (np.abs(xs - xc) + np.abs(ys - yc)).astype(np.float32)
                        + np.float32(params.lam_app) * np.abs(style_app - values[b]))
                table[j, i, b] = int(np.argmin(cost))  # first minimum, row-major
    return table, app_bin


def _argmin_lookup(g, a, style_app, table, cell, app_bin, lam_pos, lam_app):
    """The table's answer for g's cell and a's bin, unless the exemplar pixel
    nearest to g matches strictly better."""
    hs, ws = style_app.shape
    ci = min(max(int(g[0] / cell), 0), table.shape[1] - 1)
    cj = min(max(int(g[1] / cell), 0), table.shape[0] - 1)
    idx = table[cj, ci, app_bin[min(max(int(a), 0), 255)]]
    from_table = (idx % ws, idx // ws)
    nearest = (min(max(int(np.floor(g[0] + 0.5)), 0), ws - 1), min(max(int(np.floor(g[1] + 0.5)), 0), hs - 1))
    e_table = guide_error(np.array(from_table), g, a, style_app, lam_pos, lam_app)
    e_nearest = guide_error(np.array(nearest), g, a, style_app, lam_pos, lam_app)
    return nearest if e_nearest < e_table else from_table


def nearest_seed(p, spacing, jit):
    """The jittered seed nearest to p among the 9 cells around p's cell."""
    size = jit.shape[0]
    b = (p[0] // spacing, p[1] // spacing)
    seeds = []
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            cx, cy = b[0] + ox, b[1] + oy
            j = jit[cy % size, cx % size]
            seeds.append((int(np.floor(spacing * (cx + j[0]))), int(np.floor(spacing * (cy + j[1])))))
    d = [(s[0] - p[0]) ** 2 + (s[1] - p[1]) ** 2 for s in seeds]
    return seeds[int(np.argmin(d))]


def lookup(target_pos, target_app, style_app, table, app_bin, cell, params, jitter, *, origin=(0, 0)):
    """The StyleBlit lookup one pixel at a time, as in the paper's pseudo-code."""
    h, w = target_pos.shape[:2]
    hs, ws = style_app.shape
    lam_app = params.lam_app
    if target_app is None:
        target_app, lam_app = np.zeros((h, w), np.float32), 0.0
    lam_pos = np.float32(params.lam_pos)
    lam_app = np.float32(lam_app)
    nnf = np.empty((h, w, 2), np.int32)
    for y in range(h):
        for x in range(w):
            p = (x + origin[0], y + origin[1])
            g, a = target_pos[y, x], target_app[y, x]
            nnf[y, x] = _argmin_lookup(g, a, style_app, table, cell, app_bin, lam_pos, lam_app)
            for level in reversed(range(1, params.levels)):
                q = nearest_seed(p, 2 ** level, jitter[level])
                sx, sy = q[0] - origin[0], q[1] - origin[1]
                if not (0 <= sx < w and 0 <= sy < h):
                    continue  # no guides outside the region: go finer
                u = _argmin_lookup(target_pos[sy, sx], target_app[sy, sx], style_app, table, cell,
                                   app_bin, lam_pos, lam_app)
                c = (u[0] + p[0] - q[0], u[1] + p[1] - q[1])
                inside = 0 <= c[0] < ws and 0 <= c[1] < hs
                if inside and guide_error(np.array(c), g, a, style_app, lam_pos, lam_app) < params.threshold:
                    nnf[y, x] = c
                    break
    return nnf


def blend(style, nnf, radius=1):
    """Voting: mean over offsets o of Style(NNF(p + o) - o), whole-array NumPy."""
    h, w = nnf.shape[:2]
    hs, ws = style.shape[:2]
    acc = np.zeros((h, w, style.shape[2]), np.int64)
    count = np.zeros((h, w), np.int64)
    for oy in range(-radius, radius + 1):
        for ox in range(-radius, radius + 1):
            # neighbour q = p + o, valid where inside the target
            ys, xs = np.mgrid[0:h, 0:w]
            qy, qx = ys + oy, xs + ox
            valid = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
            sx = np.where(valid, nnf[np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1), 0] - ox, -1)
            sy = np.where(valid, nnf[np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1), 1] - oy, -1)
            valid &= (sx >= 0) & (sx < ws) & (sy >= 0) & (sy < hs)
            acc += np.where(valid[..., None], style[np.clip(sy, 0, hs - 1), np.clip(sx, 0, ws - 1)], 0)
            count += valid
    return ((acc + count[..., None] // 2) // count[..., None]).astype(np.uint8)


def denoise_nnf(nnf, radius, style_shape):
    """Mode filter of the NNF's offsets, one pixel at a time with a Counter."""
    from collections import Counter

    h, w = nnf.shape[:2]
    out = nnf.copy()
    for y in range(h):
        for x in range(w):
            if nnf[y, x, 0] < 0:
                continue
            offsets = [(int(nnf[qy, qx, 0]) - qx, int(nnf[qy, qx, 1]) - qy)
                       for qy in range(max(y - radius, 0), min(y + radius + 1, h))
                       for qx in range(max(x - radius, 0), min(x + radius + 1, w))
                       if nnf[qy, qx, 0] >= 0]  # raster order
            counts = Counter(offsets)
            top = max(counts.values())
            own = (int(nnf[y, x, 0]) - x, int(nnf[y, x, 1]) - y)
            mode = own if counts[own] == top else next(o for o in offsets if counts[o] == top)
            sx, sy = x + mode[0], y + mode[1]
            if 0 <= sx < style_shape[1] and 0 <= sy < style_shape[0]:
                out[y, x] = (sx, sy)
    return out


def temporal_filter(current, prev_history, flow, alpha, *, active=None, clamp=True,
                    origin=(0, 0), prev_origin=(0, 0), flow_origin=None):
    """H = (1 - alpha) S + alpha clamp(H_prev(p + b(p))), one pixel at a time,
    as the module docstring of :mod:`blit.temporal` says. Returns
    ``(filtered uint8 image, history)``."""
    h, w = current.shape[:2]
    active = np.ones((h, w), bool) if active is None else active
    fo = origin if flow_origin is None else flow_origin
    ph, pw = prev_history.shape[:2]
    s = current.astype(np.float32)
    hist = np.full((h, w, 3), -1.0, np.float32)
    for y in range(h):
        for x in range(w):
            if not active[y, x]:
                continue
            b = flow[y + origin[1] - fo[1], x + origin[0] - fo[0]]
            qx = np.float32(x + origin[0] - prev_origin[0]) + b[0]
            qy = np.float32(y + origin[1] - prev_origin[1]) + b[1]
            if not (0 <= qx <= pw - 1 and 0 <= qy <= ph - 1):
                hist[y, x] = s[y, x]
                continue
            ix, iy = int(np.floor(qx)), int(np.floor(qy))
            jx, jy = min(ix + 1, pw - 1), min(iy + 1, ph - 1)  # weight 0 past the edge
            if not all(prev_history[ty, tx, 0] >= 0 for ty, tx in ((iy, ix), (iy, jx), (jy, ix), (jy, jx))):
                hist[y, x] = s[y, x]
                continue
            fx, fy = qx - np.float32(ix), qy - np.float32(iy)
            old = ((prev_history[iy, ix] * (1 - fx) + prev_history[iy, jx] * fx) * (1 - fy)
                   + (prev_history[jy, ix] * (1 - fx) + prev_history[jy, jx] * fx) * fy)
            if clamp:
                ys, xs = slice(max(y - 1, 0), y + 2), slice(max(x - 1, 0), x + 2)
                near = s[ys, xs][active[ys, xs]]
                old = np.clip(old, near.min(axis=0), near.max(axis=0))
            hist[y, x] = (1 - np.float32(alpha)) * s[y, x] + np.float32(alpha) * old
    out = current.copy()
    out[active] = np.floor(hist[active] + np.float32(0.5)).astype(np.uint8)
    return out, hist
