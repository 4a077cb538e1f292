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

from blit.blending import blend
from blit.styleblit import LookupParams, argmin_lookup_table, lookup, make_jitter

__all__ = ["blend", "lookup", "make_jitter", "argmin_lookup_table", "LookupParams"]
