"""styleblit's patch-based engine: the StyleBlit lookup, blending and pipeline.

Conventions (shared by the whole project):

=========  ============  ==========================================
data       shape         type
=========  ============  ==========================================
image      (H, W, 3)     uint8, BGR (OpenCV order)
guide      (H, W, K)     float32 (positional: exemplar x, y pixels)
NNF        (H, W, 2)     int32 exemplar (x, y)
landmarks  (N, 2)        float32 (x, y) pixels, dlib 68-point order
=========  ============  ==========================================
"""
import guides  # noqa: F401  (first: it sets OMP_WAIT_POLICY before OpenMP loads)

from blit.blending import blend
from blit.styleblit import LookupParams, argmin_lookup_table, lookup, make_jitter

__all__ = ["blend", "lookup", "make_jitter", "argmin_lookup_table", "LookupParams"]
