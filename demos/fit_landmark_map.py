"""Fit the mediapipe FaceMesh -> dlib 68-point table ``guides.landmarks.MESH_TO_68``.

Runs FaceMesh (static_image_mode=True, refine_landmarks=True, one face) on the
FaceBlit style portraits ``NAME.png`` and, unless ``--no-flip``, on their
mirror images (with the hand landmarks mirrored and re-ordered to match), and
for each of the 68 dlib points picks the pair of mesh vertices (i, j), i == j
allowed, whose mean is closest to the hand-corrected ``NAME.lm68.txt`` point,
averaged over the exemplars, the error of each exemplar divided by its
inter-ocular distance. Candidates are the ``--candidates`` vertices nearest to
the point on average, so the search is a few hundred pairs per point.

Prints the per-point and per-region errors of the fit, a leave-one-style-out
estimate (the table fitted without a style, measured on it), the error of the
table currently in guides/landmarks.py, and the fitted table as Python code.

Usage::

    python demos/fit_landmark_map.py [--data ../shared/data/faceblit] [--candidates 40] [--no-flip]

The FaceBlit images stay where they are; nothing is copied into the project.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from guides import landmarks as lm  # noqa: E402
from guides.io import read_image  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "faceblit"

# Index of each dlib point's mirror image (left <-> right of the face).
FLIP_68 = np.array(
    list(range(16, -1, -1))                      # jaw 0..16
    + list(range(26, 16, -1))                    # brows 17..26
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]       # nose bridge, nostrils
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]           # inner lips
)
assert sorted(FLIP_68) == list(range(68)) and (FLIP_68[FLIP_68] == np.arange(68)).all()

REGIONS = {
    "jaw 0-16": slice(0, 17),
    "brows 17-26": slice(17, 27),
    "nose 27-35": slice(27, 36),
    "eyes 36-47": slice(36, 48),
    "lips 48-67": slice(48, 68),
}


def collect(data: Path, flip: bool):
    """Run FaceMesh on every style (and its mirror image).

    Returns names, meshes (E, 468, 2), hand landmarks (E, 68, 2), IODs (E,),
    style ids (E,), and (original, mirrored, width) exemplar index triples.
    """
    styles = sorted(p.name[: -len(".lm68.txt")] for p in (data / "styles").glob("*.lm68.txt"))
    if not styles:
        raise SystemExit(f"no NAME.lm68.txt files under {data / 'styles'}")
    names, meshes, truths, groups, pairs = [], [], [], [], []
    with lm.FaceLandmarker(static_image_mode=True, max_faces=1) as landmarker:
        for s, name in enumerate(styles):
            image = read_image(data / "styles" / f"{name}.png")
            truth = lm.read_lm68(data / "styles" / f"{name}.lm68.txt").astype(np.float64)
            variants = [("", image, truth)]
            if flip:
                w = image.shape[1]
                mirrored = truth[FLIP_68].copy()
                mirrored[:, 0] = (w - 1) - mirrored[:, 0]
                variants.append((" (mirrored)", np.ascontiguousarray(image[:, ::-1]), mirrored))
            found = []
            for suffix, img, pts in variants:
                if not landmarker(img):
                    print(f"warning: no face found in {name}{suffix}, skipped", file=sys.stderr)
                    continue
                found.append(len(names))
                names.append(name + suffix)
                meshes.append(landmarker.last_mesh[0][: lm.MESH_VERTICES].astype(np.float64))
                truths.append(pts)
                groups.append(s)
            if len(found) == 2:
                pairs.append((found[0], found[1], image.shape[1]))
    meshes, truths = np.stack(meshes), np.stack(truths)
    iod = np.array([lm.interocular_distance(t) for t in truths])
    return names, meshes, truths, iod, np.array(groups), pairs


def mesh_mirror_map(meshes, iod, pairs):
    """FaceMesh vertex mirror permutation, measured on original/mirrored exemplar pairs.

    mirror[v] is the vertex of the mirrored image's mesh that lies where vertex
    v of the original mesh lands after mirroring, averaged over the pairs.
    Returns the map (V,) int and its residual (V,) in IOD.
    """
    cost = 0.0
    for a, b, w in pairs:
        reflected = meshes[a].copy()
        reflected[:, 0] = (w - 1) - reflected[:, 0]
        cost = cost + np.linalg.norm(reflected[:, None] - meshes[b][None], axis=2) / iod[a]
    cost = cost / len(pairs)
    mirror = np.argmin(cost, axis=1)
    return mirror, cost[np.arange(len(mirror)), mirror]


def fit(meshes, truths, iod, n_candidates):
    """Best vertex pair per point. Returns table (68, 2) int and errors (68,) on the fitted data."""
    table = np.zeros((68, 2), dtype=np.int64)
    errors = np.zeros(68)
    for k in range(68):
        # (E, V) normalised distance of every vertex to the point.
        d = np.linalg.norm(meshes - truths[:, k : k + 1], axis=2) / iod[:, None]
        cand = np.argsort(d.mean(axis=0))[:n_candidates]
        i, j = np.triu_indices(len(cand))
        mid = 0.5 * (meshes[:, cand[i]] + meshes[:, cand[j]])          # (E, P, 2)
        err = (np.linalg.norm(mid - truths[:, k : k + 1], axis=2) / iod[:, None]).mean(axis=0)
        best = int(np.argmin(err))
        table[k] = sorted((int(cand[i[best]]), int(cand[j[best]])))
        errors[k] = err[best]
    return table, errors


def fit_symmetric(meshes, truths, iod, n_candidates, mirror):
    """Like :func:`fit`, but point FLIP_68[k] uses the mirror vertices of point k.

    Needs mirrored exemplars in the data: the pair for k is scored on k and,
    mirrored, on FLIP_68[k], so each side of the face counts once per image.
    A midline point (its own mirror) uses a vertex and its mirror.
    """
    table = np.zeros((68, 2), dtype=np.int64)
    errors = np.zeros(68)

    def point_error(k, a, b):  # (P,) mean normalised error of pairs a, b for point k
        mid = 0.5 * (meshes[:, a] + meshes[:, b])
        return (np.linalg.norm(mid - truths[:, k : k + 1], axis=2) / iod[:, None]).mean(axis=0)

    for k in range(68):
        f = int(FLIP_68[k])
        if f < k:
            continue
        d = np.linalg.norm(meshes - truths[:, k : k + 1], axis=2) / iod[:, None]
        cand = np.argsort(d.mean(axis=0))[:n_candidates]
        if f == k:
            a, b = cand, mirror[cand]
            err = point_error(k, a, b)
        else:
            i, j = np.triu_indices(len(cand))
            a, b = cand[i], cand[j]
            err = 0.5 * (point_error(k, a, b) + point_error(f, mirror[a], mirror[b]))
        best = int(np.argmin(err))
        table[k] = sorted((int(a[best]), int(b[best])))
        table[f] = sorted((int(mirror[a[best]]), int(mirror[b[best]])))
        errors[k] = errors[f] = err[best]
    return table, errors


def evaluate(table, meshes, truths, iod):
    """Normalised error (E, 68) of a table."""
    pred = 0.5 * (meshes[:, table[:, 0]] + meshes[:, table[:, 1]])
    return np.linalg.norm(pred - truths, axis=2) / iod[:, None]


def format_table(table) -> str:
    rows = []
    for start in range(0, 68, 6):
        chunk = ", ".join(f"({a}, {b})" for a, b in table[start : start + 6])
        rows.append(f"    {chunk},  # {start}-{min(start + 5, 67)}")
    return "MESH_TO_68 = np.array([\n" + "\n".join(rows) + "\n], dtype=np.int64)"


def report(title, err):
    print(f"{title}: mean {err.mean():.4f} IOD; " + "; ".join(
        f"{r} {err[:, s].mean():.4f}" for r, s in REGIONS.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the faceblit data folder (default: %(default)s)")
    parser.add_argument("--candidates", type=int, default=40, help="vertices considered per point (default: %(default)s)")
    parser.add_argument("--no-flip", action="store_true", help="do not add mirrored exemplars")
    args = parser.parse_args(argv)

    names, meshes, truths, iod, groups, pairs = collect(args.data, flip=not args.no_flip)
    print(f"{len(names)} exemplars from {len(set(groups))} styles, {meshes.shape[1]} mesh vertices")

    fitters = {"free": lambda m, t, i: fit(m, t, i, args.candidates)[0]}
    if pairs:
        mirror, residual = mesh_mirror_map(meshes, iod, pairs)
        involution = int((mirror[mirror] == np.arange(len(mirror))).sum())
        print(f"mesh mirror map: residual mean {residual.mean():.4f} max {residual.max():.4f} IOD; "
              f"{involution} of {len(mirror)} vertices map back to themselves; "
              f"{int((mirror == np.arange(len(mirror))).sum())} on the midline")
        fitters["symmetric"] = lambda m, t, i: fit_symmetric(m, t, i, args.candidates, mirror)[0]

    # Leave one style out (its mirrored copy too): fit on the rest, measure on it.
    results = {}
    for kind, fitter in fitters.items():
        table = fitter(meshes, truths, iod)
        err = evaluate(table, meshes, truths, iod)
        cv = np.zeros_like(err)
        for g in np.unique(groups):
            held = groups == g
            cv[held] = evaluate(fitter(meshes[~held], truths[~held], iod[~held]), meshes[held], truths[held], iod[held])
        results[kind] = table, err, cv
        print()
        report(f"{kind} fit, in-sample", err)
        report(f"{kind} fit, leave-one-style-out", cv)

    kind = "symmetric" if "symmetric" in results else "free"
    table, err, cv = results[kind]
    print(f"\nchosen: {kind} fit")
    print("per-point normalised error (in-sample mean / max over exemplars, leave-one-style-out mean):")
    for k in range(68):
        a, b = table[k]
        print(f"  {k:2d}: ({a:3d}, {b:3d})  mean {err[:, k].mean():.4f}  max {err[:, k].max():.4f}  "
              f"held-out {cv[:, k].mean():.4f}")
    print("per-exemplar mean normalised error (in-sample, held-out):")
    for n, e, c in zip(names, err.mean(axis=1), cv.mean(axis=1)):
        print(f"  {n:28s} {e:.4f}  {c:.4f}")
    print()
    report(f"{kind} fit, in-sample", err)

    current = np.asarray(lm.MESH_TO_68)
    if current.any():
        report("table in guides/landmarks.py", evaluate(current, meshes, truths, iod))
        changed = int((np.sort(current, axis=1) != table).any(axis=1).sum())
        print(f"  ({changed} of 68 rows differ from this fit)")

    print("\n" + format_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
