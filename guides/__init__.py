"""styleblit's guides: face landmarks, the FaceBlit guides, the style exemplar, image I/O."""
import os as _os

# Numba's parallel kernels run on OpenMP threads (its "omp" threading layer, the
# one pip's numba picks on Linux), which by default spin between kernels. With
# one other busy process on a 2-core machine (a video call beside the webcam),
# the spinning threads starved the rest of a frame: `styleblit webcam` fell to
# 5.8-8.3 fps against 29.5-30.4 fps with sleeping threads, which cost nothing
# measurable on a quiet machine (docs/performance.md). A user's own setting
# wins; the setting is read when OpenMP loads, at the first parallel kernel.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
