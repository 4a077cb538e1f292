"""The distilled stylizer: a residual encoder-decoder generator and a PatchGAN critic.

Everything about the networks is in this one file; :class:`GeneratorConfig`
and :class:`DiscriminatorConfig` say how wide and deep they are, and a
checkpoint stores them (``dataclasses.asdict``) so that the networks can be
rebuilt from it.

Tensors are ``(B, 3, H, W)`` float in [-1, 1], channels in BGR order (the
frames' order, unchanged). H and W may be anything: the generator pads to a
multiple of ``2 ** n_down`` and crops back.

Notes
-----
Architecture after Texler et al., "Interactive Video Stylization Using
Few-Shot Patch-Based Training" (SIGGRAPH 2020), Section 3: a U-Net-like
encoder-decoder with residual blocks at the bottleneck, trained with a
reconstruction and an adversarial loss; discriminator after Isola et al.,
"Image-to-Image Translation with Conditional Adversarial Networks" (PatchGAN).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GeneratorConfig", "DiscriminatorConfig", "Generator", "Discriminator",
           "VGGFeatures"]


@dataclass
class GeneratorConfig:
    in_channels: int = 3  # 3: the frame (BGR); 6: frame + guide channels (gan_distill.data.guide_channels)
    out_channels: int = 3
    width: int = 16  # channels of the first level; doubled at every downsampling
    n_down: int = 3  # strided convolutions (the input is padded to a multiple of 2 ** n_down)
    n_res: int = 4  # residual blocks at the bottleneck
    max_width: int = 128
    residual: bool = True  # predict a change of the input (in tanh's pre-activation)
    # "none" or "instance". Instance norm sees a crop's statistics in training but
    # the whole frame's at inference, and then barely stylizes: keep "none".
    norm: str = "none"


@dataclass
class DiscriminatorConfig:
    in_channels: int = 6  # input frame and (teacher or student) stylized frame
    width: int = 32
    n_layers: int = 3  # strided 4x4 convolutions; receptive field 70 px for 3


def _norm(c, kind):
    if kind == "none":
        return nn.Identity()
    if kind == "instance":
        return nn.InstanceNorm2d(c, affine=True)
    raise ValueError(f"norm: expected 'none' or 'instance', got {kind!r}")


class ResBlock(nn.Module):
    def __init__(self, c, norm="none"):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect")
        self.norm1 = _norm(c, norm)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect")
        self.norm2 = _norm(c, norm)

    def forward(self, x):  # (B, C, h, w) -> (B, C, h, w)
        y = F.leaky_relu(self.norm1(self.conv1(x)), 0.2)
        return x + self.norm2(self.conv2(y))


class Generator(nn.Module):
    """Residual encoder-decoder with skip connections.

    ``x (B, in, H, W) -> y (B, out, H, W)`` in [-1, 1] (tanh).

    Encoder: a 7x7 stem, then ``n_down`` stride-2 3x3 convolutions doubling
    the width; ``n_res`` residual blocks; decoder: ``n_down`` steps of
    nearest 2x upsampling, concatenation with the encoder's features at that
    scale (skip connection) and a 3x3 convolution; a 3x3 head and tanh.
    With ``residual`` the head's output is added to ``atanh(x)`` before the
    tanh, so that an untrained network starts as the identity: the
    background, which the teacher leaves unchanged, costs nothing to learn.
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        c = config.width
        widths = [min(c * 2 ** i, config.max_width) for i in range(config.n_down + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_channels, widths[0], 7, padding=3, padding_mode="reflect"),
            _norm(widths[0], config.norm), nn.LeakyReLU(0.2))
        self.down = nn.ModuleList([
            nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1,
                                    padding_mode="reflect"),
                          _norm(widths[i + 1], config.norm), nn.LeakyReLU(0.2))
            for i in range(config.n_down)])
        self.res = nn.Sequential(*[ResBlock(widths[-1], config.norm) for _ in range(config.n_res)])
        self.up = nn.ModuleList([
            nn.Sequential(nn.Conv2d(widths[i + 1] + widths[i], widths[i], 3, padding=1,
                                    padding_mode="reflect"),
                          _norm(widths[i], config.norm), nn.LeakyReLU(0.2))
            for i in reversed(range(config.n_down))])
        self.head = nn.Conv2d(widths[0], config.out_channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        h, w = x.shape[-2:]
        m = 2 ** self.config.n_down
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")  # (B, in, H', W'), multiples of m
        f = self.stem(x)  # (B, c0, H', W')
        skips = [f]
        for down in self.down:
            f = down(f)  # (B, c_{i+1}, H'/2^(i+1), W'/2^(i+1))
            skips.append(f)
        f = self.res(f)  # (B, c_n, H'/m, W'/m)
        for up, skip in zip(self.up, reversed(skips[:-1])):
            f = F.interpolate(f, scale_factor=2, mode="nearest")  # (B, c_{i+1}, 2h, 2w)
            f = up(torch.cat([f, skip], dim=1))  # (B, c_i, 2h, 2w)
        y = self.head(f)  # (B, out, H', W')
        if self.config.residual:
            y = y + torch.atanh(x[:, : self.config.out_channels].clamp(-0.995, 0.995))
        y = torch.tanh(y)
        return y[..., :h, :w]


class Discriminator(nn.Module):
    """PatchGAN critic on (frame, stylized) pairs.

    ``forward(x, y)`` with ``x, y (B, 3, H, W)`` returns the list of
    intermediate feature maps (for feature matching) whose last entry is the
    ``(B, 1, H / 2^n, W / 2^n)`` map of real/fake scores (LSGAN: no sigmoid).
    """

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        layers = []
        c_in, c = config.in_channels, config.width
        for i in range(config.n_layers):
            layers.append(nn.Sequential(
                nn.Conv2d(c_in, c, 4, stride=2, padding=1),
                nn.Identity() if i == 0 else nn.InstanceNorm2d(c, affine=True),
                nn.LeakyReLU(0.2)))
            c_in, c = c, min(c * 2, 256)
        layers.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.layers = nn.ModuleList(layers)

    def forward(self, x, y):
        f = torch.cat([x, y], dim=1)  # (B, 6, H, W)
        feats = []
        for layer in self.layers:
            f = layer(f)
            feats.append(f)
        return feats


#: torchvision's VGG-19 ``features`` layout up to relu4_1: conv widths, "M" = max pool.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512)
#: Indices (in that ``features`` Sequential) of relu1_1, relu2_1, relu3_1, relu4_1.
_VGG19_TAPS = (1, 6, 11, 20)


class VGGFeatures(nn.Module):
    """VGG-19 activations relu1_1 ... relu4_1 for a perceptual loss, from a local file.

    ``forward(x)`` with ``x (B, 3, H, W)`` BGR in [-1, 1] returns the list of
    the four activations (ImageNet normalisation applied inside). The weights
    are never downloaded: ``load(path)`` reads a state dict saved with
    ``torch.save`` (torchvision's ``vgg19().state_dict()`` or just its
    ``features``), with ``weights_only=True``. Frozen (no gradients).
    """

    def __init__(self):
        super().__init__()
        layers, c_in = [], 3
        for v in _VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    @classmethod
    def load(cls, path):
        """The network with the weights of ``path``; ValueError names what does not fit."""
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(sd, dict):
            raise ValueError(f"{path}: expected a state dict of VGG-19 weights")
        sd = {k[len("features."):] if k.startswith("features.") else k: v for k, v in sd.items()
              if not k.startswith("classifier.")}
        net = cls()
        wanted = net.features.state_dict()
        missing = [k for k in wanted if k not in sd]
        if missing:
            raise ValueError(f"{path}: not VGG-19 weights (missing {missing[0]})")
        try:
            net.features.load_state_dict({k: sd[k] for k in wanted})
        except RuntimeError as exc:
            raise ValueError(f"{path}: not VGG-19 weights ({str(exc).splitlines()[-1].strip()})") \
                from None
        return net.eval()

    def forward(self, x):
        x = ((x.flip(1) + 1.0) * 0.5 - self.mean) / self.std  # BGR [-1, 1] -> normalised RGB
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG19_TAPS:
                out.append(x)
        return out
