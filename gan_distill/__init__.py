"""gan_distill: distil the patch-based stylizer into a small feed-forward GAN.

A residual encoder-decoder generator (:mod:`gan_distill.model`) is trained on
frames stylized by :class:`blit.stream.Stylizer` (:mod:`gan_distill.data`),
with L1 + LSGAN + discriminator feature matching (:mod:`gan_distill.train`),
and run like the patch stylizer by :class:`gan_distill.infer.GanStylizer`.

torch is an optional dependency (``pip install styleblit[gan]``); nothing here
imports it at package import time.
"""

__all__ = ["require_torch"]

INSTALL_HINT = "the GAN method needs PyTorch: pip install 'styleblit[gan]'"


def require_torch():
    """Import and return torch, or raise :class:`guides.io.InputError` saying what to install.

    Sets ``OMP_WAIT_POLICY=PASSIVE`` (unless the environment sets it) when
    torch is not imported yet: OpenMP threads that spin while waiting made a
    2-thread training step 8-10x slower whenever another process used a core
    (measured on the 2-core development machine); sleeping threads cost
    nothing measurable when the machine is quiet.
    """
    import os
    import sys

    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        from guides.io import InputError

        raise InputError(INSTALL_HINT) from None
    return torch
