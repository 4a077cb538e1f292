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


def dis_flow(i0, i1, *, patch=8, stride=4, iterations=12, rounds=3, finest=1):
    """:func:`blit.dis.dis_flow` one patch and one pixel at a time, each
    float32 operation in the kernels' order (so the same bits): a pyramid
    of 2x2 means, Sobel gradients, per level ``rounds`` rounds of the
    neighbours' flows tried and Gauss-Newton steps, the weighted
    densification, and the doubling enlargements."""
    from blit.dis import pyramid_levels

    f = np.float32
    i0, i1 = np.asarray(i0, np.uint8), np.asarray(i1, np.uint8)
    coarsest = pyramid_levels(i0.shape, patch)
    finest = min(finest, coarsest)

    def halve(a):
        h, w = a.shape[0] // 2, a.shape[1] // 2
        b = a[:2 * h, :2 * w].astype(np.int32)
        return ((b[0::2, 0::2] + b[0::2, 1::2] + b[1::2, 0::2] + b[1::2, 1::2] + 2) >> 2).astype(np.uint8)

    def sobel(a):
        p = np.pad(a.astype(np.int32), 1, mode="reflect")  # cv2's BORDER_REFLECT_101
        gx = (p[:-2, 2:] - p[:-2, :-2]) + 2 * (p[1:-1, 2:] - p[1:-1, :-2]) + (p[2:, 2:] - p[2:, :-2])
        gy = (p[2:, :-2] - p[:-2, :-2]) + 2 * (p[2:, 1:-1] - p[:-2, 1:-1]) + (p[2:, 2:] - p[:-2, 2:])
        return gx, gy

    def sample(img, y, x):  # bilinear at (y, x); reads past the edge replicated
        h, w = img.shape
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        return tap(img, y0, x0, y - f(y0), x - f(x0))

    def tap(img, y0, x0, fy, fx):  # bilinear from pixel (y0, x0), fractions (fy, fx)
        h, w = img.shape
        at = lambda r, c: f(img[min(max(r, 0), h - 1), min(max(c, 0), w - 1)])  # noqa: E731
        return (((f(1) - fy) * (f(1) - fx)) * at(y0, x0) + ((f(1) - fy) * fx) * at(y0, x0 + 1)
                + (fy * (f(1) - fx)) * at(y0 + 1, x0) + (fy * fx) * at(y0 + 1, x0 + 1))

    def cost(a, b, gx, gy, i, j, u, v, sx, sy):  # mean-normalised SSD and its gradient
        h, w = b.shape
        y = min(max(f(i) + v, f(1 - patch)), f(h - 1))
        x = min(max(f(j) + u, f(1 - patch)), f(w - 1))
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        sd = sdd = sgx = sgy = f(0)
        for r in range(patch):
            for c in range(patch):
                d = tap(b, y0 + r, x0 + c, y - f(y0), x - f(x0)) - f(a[i + r, j + c])
                sd, sdd = sd + d, sdd + d * d
                sgx, sgy = sgx + d * f(gx[i + r, j + c]), sgy + d * f(gy[i + r, j + c])
        n = f(patch * patch)
        return sdd - sd * sd / n, sgx - sd * sx / n, sgy - sd * sy / n

    def up(flow, h, w):  # doubled in size, centres aligned, values doubled
        out = np.empty((h, w, 2), np.float32)
        sh, sw = flow.shape[:2]

        def tap(i, n):
            first, wt = (i // 2 - 1, f(0.75)) if i % 2 == 0 else (i // 2, f(0.25))
            return (0, f(0)) if first < 0 else (n - 1, f(0)) if first >= n - 1 else (first, wt)
        for y in range(h):
            y0, wy = tap(y, sh)
            for x in range(w):
                x0, wx = tap(x, sw)
                for k in range(2):
                    row = [(f(1) - wx) * flow[yy, x0, k] + wx * flow[yy, min(x0 + 1, sw - 1), k]
                           for yy in (y0, min(y0 + 1, sh - 1))]
                    out[y, x, k] = f(2) * ((f(1) - wy) * row[0] + wy * row[1])
        return out

    p0, p1 = [i0], [i1]
    for _ in range(coarsest):
        p0.append(halve(p0[-1]))
        p1.append(halve(p1[-1]))
    flow = None
    for level in range(coarsest, finest - 1, -1):
        a, b = p0[level], p1[level]
        h, w = a.shape
        flow = np.zeros((h, w, 2), np.float32) if flow is None else up(flow, h, w)
        gx, gy = sobel(a)
        hs, ws = 1 + (h - patch) // stride, 1 + (w - patch) // stride
        if hs < 1 or ws < 1:
            continue
        s = np.empty((hs, ws, 2), np.float32)
        for rnd in range(rounds):
            new = np.empty_like(s)
            for pa in range(hs):
                for pb in range(ws):
                    i, j = pa * stride, pb * stride
                    tx = gx[i:i + patch, j:j + patch].astype(np.int64)
                    ty = gy[i:i + patch, j:j + patch].astype(np.int64)
                    sx, sy = f(tx.sum()), f(ty.sum())
                    n = f(patch * patch)
                    xx = f((tx * tx).sum()) - sx * sx / n
                    yy = f((ty * ty).sum()) - sy * sy / n
                    xy = f((tx * ty).sum()) - sx * sy / n
                    if rnd == 0:
                        u, v = flow[i + patch // 2, j + patch // 2]
                    else:
                        u, v = s[pa, pb]
                        best = cost(a, b, gx, gy, i, j, u, v, sx, sy)[0]
                        for na, nb in ((pa, pb - 1), (pa, pb + 1), (pa - 1, pb), (pa + 1, pb)):
                            if 0 <= na < hs and 0 <= nb < ws:
                                c = cost(a, b, gx, gy, i, j, s[na, nb, 0], s[na, nb, 1], sx, sy)[0]
                                if c < best:
                                    best, (u, v) = c, s[na, nb]
                    det = xx * yy - xy * xy
                    det = det if abs(det) >= f(0.001) else f(0.001)
                    h11, h12, h22 = yy / det, -xy / det, xx / det
                    cu, cv, prev = u, v, f(1e10)
                    for _ in range(iterations // rounds):
                        c, du, dv = cost(a, b, gx, gy, i, j, cu, cv, sx, sy)
                        cu, cv = cu - (h11 * du + h12 * dv), cv - (h12 * du + h22 * dv)
                        if c >= prev:
                            break
                        prev = c
                    keep = (cu - u) * (cu - u) + (cv - v) * (cv - v) <= f(patch * patch)
                    new[pa, pb] = (cu, cv) if keep else (u, v)
            s = new
        dense = np.empty((h, w, 2), np.float32)
        for y in range(h):
            rows = [pa for pa in range(hs) if pa * stride <= y < pa * stride + patch] or [hs - 1]
            for x in range(w):
                cols = [pb for pb in range(ws) if pb * stride <= x < pb * stride + patch] or [ws - 1]
                su = sv = sc = f(0)
                for pa in rows:
                    for pb in cols:
                        u, v = s[pa, pb]
                        val = sample(b, min(max(f(y) + v, f(0)), f(h - 1)),
                                     min(max(f(x) + u, f(0)), f(w - 1)))
                        c = f(1) / max(f(1), abs(val - f(a[y, x])))
                        su, sv, sc = su + c * u, sv + c * v, sc + c
                dense[y, x] = su / sc, sv / sc
        flow = dense
    for level in range(finest - 1, -1, -1):
        flow = up(flow, *p0[level].shape)
    return flow
