"""styleblit's patch-based engine: the StyleBlit lookup, blending and pipeline.

Conventions (shared by the whole project):

================  =================  ===========================================
data              shape              type
================  =================  ===========================================
image             (H, W, 3)          uint8, BGR (OpenCV order)
positional guide  (H, W, 2)          float32 exemplar (x, y) pixels
appearance guide  (H, W)             float32 in [0, 255], 128 = no detail
NNF               (H, W, 2)          int32 exemplar (x, y); negative = not computed
landmarks         (68, 2)            float32 (x, y) pixels, dlib 68-point order
jitter table      (levels, J, J, 2)  float32 in [0, 1), seeded, passed in
================  =================  ===========================================

The whole-image entry points are :func:`blit.stylize.stylize_image` (a
photo), :class:`blit.stream.Stylizer` (frames of a video or a camera) and
:func:`guides.exemplar.load_style` (the exemplar they take).
"""
import guides  # noqa: F401  (first: it sets OMP_WAIT_POLICY before OpenMP loads)

__all__ = ["blend", "lookup", "make_jitter", "argmin_lookup_table", "LookupParams"]


def __getattr__(name):
    # the kernels are imported on first use (PEP 562): `styleblit` imports this
    # package before its main() runs, and Numba's import there took a second in
    # which Ctrl-C was a traceback
    if name == "blend":
        from blit.blending import blend

        return blend
    if name in ("LookupParams", "argmin_lookup_table", "lookup", "make_jitter"):
        from blit import styleblit

        return getattr(styleblit, name)
    raise AttributeError(f"module 'blit' has no attribute {name!r}")
