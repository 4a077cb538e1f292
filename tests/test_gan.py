"""gan_distill: the distilled GAN stylizer (model, training, checkpoints, inference, CLI,
``styleblit compare``).

Skipped without torch (``pip install '.[gan]'``; the ``test`` extra installs it too).
"""
import inspect
import json
import os
import re

import cv2
import matplotlib
import numpy as np
import pytest
import skimage

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as gan_distill.require_torch does
torch = pytest.importorskip("torch")

from blit.cli import main  # noqa: E402
from blit.stream import Stylizer  # noqa: E402
from gan_distill.data import (MANIFEST, SHARD_PATTERN, DataOptions, augment,  # noqa: E402
                              build_dataset, guide_channels, load_shards)
from gan_distill.infer import GAN_STAGES, GanStylizer  # noqa: E402
from gan_distill.model import (Discriminator, DiscriminatorConfig, Generator,  # noqa: E402
                               GeneratorConfig, VGGFeatures)
from gan_distill.train import TrainConfig, load_checkpoint, train  # noqa: E402
from guides.io import InputError, read_image, write_image  # noqa: E402

HOPPER = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
ASTRONAUT = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")

TINY_G = GeneratorConfig(width=8, n_down=2, n_res=1, max_width=16)
TINY_G6 = GeneratorConfig(in_channels=6, width=8, n_down=2, n_res=1, max_width=16)
TINY_D = DiscriminatorConfig(width=8, n_layers=2)


class FakeStyle:
    """What training with guides needs of a StyleExemplar."""

    image = np.zeros((64, 48, 3), np.uint8)
    landmarks = np.random.default_rng(3).uniform(5, 40, (68, 2)).astype(np.float32)
    quantiles = np.linspace(0, 255, 257).astype(np.float32)


@pytest.fixture(autouse=True)
def _two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory):
    """Two shards of smooth random 40x48 frames; the 'teacher' swaps and inverts channels."""
    folder = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(0)
    paths = []
    for s in range(2):
        small = rng.integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)
        inputs = np.stack([cv2.resize(f, (48, 40), interpolation=cv2.INTER_CUBIC) for f in small])
        targets = 255 - inputs[..., ::-1]
        masks = np.zeros(inputs.shape[:3], np.uint8)
        masks[:, 8:32, 10:38] = 255
        guides = rng.uniform(-1, 1, inputs.shape).astype(np.float16)
        path = folder / SHARD_PATTERN.format(s)
        np.savez_compressed(path, input=inputs, target=np.ascontiguousarray(targets), mask=masks,
                            guide=guides)
        paths.append(str(path))
    return paths


def tiny_config(**kw):
    base = dict(steps=30, batch=4, crop=32, lr=3e-3, adv_start=10, checkpoint_every=0,
                preview_every=0, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def run_tiny(shards, out, generator=TINY_G, **kw):
    log = []
    result = train(shards, str(out), config=tiny_config(**kw), generator_config=generator,
                   discriminator_config=TINY_D, device="cpu", quiet=True, log=log,
                   style=FakeStyle())
    return result, log


# ------------------------------------------------------------------ model

@pytest.mark.parametrize("shape", [(1, 3, 40, 48), (2, 3, 37, 53)])
def test_generator_keeps_the_size_and_range(shape):
    torch.manual_seed(0)
    g = Generator(TINY_G)
    y = g(torch.rand(shape) * 2 - 1)
    assert y.shape == shape
    assert float(y.detach().abs().max()) <= 1.0
    feats = Discriminator(TINY_D)(torch.zeros(shape), y)
    assert feats[-1].shape[:2] == (shape[0], 1)


# ------------------------------------------------------------------ training

def test_a_crop_larger_than_the_frames_is_said(tiny_shards, tmp_path, capsys):
    result, _ = run_tiny(tiny_shards, tmp_path / "m.pt", steps=2, adv_start=0, crop=64)
    assert result["step"] == 2
    assert ("--crop 64 is larger than the smallest training frame (48x40); crops of 40 px "
            "are used") in capsys.readouterr().err
    run_tiny(tiny_shards, tmp_path / "n.pt", steps=2, adv_start=0, crop=40)
    assert "warning" not in capsys.readouterr().err


def test_training_lowers_the_l1_loss(tiny_shards, tmp_path):
    result, log = run_tiny(tiny_shards, tmp_path / "m.pt")
    assert result["step"] == 30 and len(log) == 30
    first = np.mean([r["l1"] for r in log[:5]])
    last = np.mean([r["l1"] for r in log[-5:]])
    assert last < 0.8 * first, (first, last)
    assert any(r["adv"] > 0 for r in log[10:])  # the adversarial terms ran
    assert os.path.exists(tmp_path / "m.preview.png")


def test_seeded_training_is_deterministic_on_cpu(tiny_shards, tmp_path):
    run_tiny(tiny_shards, tmp_path / "a.pt", steps=12)
    run_tiny(tiny_shards, tmp_path / "b.pt", steps=12)
    a, b = load_checkpoint(str(tmp_path / "a.pt")), load_checkpoint(str(tmp_path / "b.pt"))
    for k, v in a["generator"].items():
        assert torch.equal(v, b["generator"][k]), k


def test_checkpoint_round_trip_with_weights_only(tiny_shards, tmp_path):
    path = tmp_path / "m.pt"
    run_tiny(tiny_shards, path, steps=3)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["format"] == "styleblit-gan" and ckpt["step"] == 3
    assert ckpt["generator_config"] == TINY_G.__dict__
    assert {"optimizer_g", "optimizer_d", "train_config", "discriminator"} <= set(ckpt)
    g = Generator(GeneratorConfig(**ckpt["generator_config"]))
    g.load_state_dict(ckpt["generator"])
    # resume goes on from the stored step
    result = train(tiny_shards, str(path), config=tiny_config(steps=5), device="cpu",
                   resume=True, quiet=True)
    assert result["step"] == 5 and load_checkpoint(str(path))["step"] == 5


def test_a_checkpoint_or_shard_cut_short_is_one_line_naming_it(tiny_shards, tmp_path):
    """A checkpoint cut at some points made torch's reader raise OSError
    ("Invalid argument"), said as the system's ("cannot be read"); a shard
    cut short was a zipfile traceback. Both are now said as damaged files."""
    import shutil

    path = tmp_path / "m.pt"
    run_tiny(tiny_shards, path, steps=1)
    data = path.read_bytes()
    for cut in (20000, 50000, len(data) // 3, len(data) // 2, len(data) - 100):
        if cut >= len(data):
            continue
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(InputError) as info:
            load_checkpoint(str(tmp_path / "cut.pt"))
        assert str(info.value).startswith(f"{tmp_path / 'cut.pt'}: not a styleblit GAN "
                                          "checkpoint ("), (cut, str(info.value))
    shard = tmp_path / "shard_000000.npz"
    shutil.copyfile(tiny_shards[0], shard)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"{re.escape(str(shard))}: not a gan_distill shard"):
        load_shards([str(shard)])


def test_ctrl_c_saves_the_model_as_it_is(tiny_shards, tmp_path):
    """Ctrl-C (a KeyboardInterrupt, here from the per-step log) ends the run
    with the model saved at that step, not at the last periodic save."""
    class Interrupt(list):
        def append(self, losses):
            super().append(losses)
            if losses["step"] == 7:
                raise KeyboardInterrupt

    path = tmp_path / "m.pt"
    result = train(tiny_shards, str(path), config=tiny_config(steps=30, checkpoint_every=5),
                   generator_config=TINY_G, discriminator_config=TINY_D, device="cpu",
                   quiet=True, log=Interrupt(), style=FakeStyle())
    assert result["interrupted"] and result["step"] == 7
    assert load_checkpoint(str(path))["step"] == 7
    assert not os.path.exists(f"{path}.tmp")
    result = train(tiny_shards, str(path), config=tiny_config(steps=9), device="cpu",
                   resume=True, quiet=True)
    assert result["step"] == 9 and not result["interrupted"]


def test_a_diverged_training_saves_nothing_and_its_model_is_refused(tiny_shards, tmp_path):
    """A learning rate that blows the weights up to NaN stops the training
    with a clear error, the checkpoint before it kept (a NaN model was saved
    as a success and painted black frames); a checkpoint holding such
    weights is refused when loaded."""
    path = tmp_path / "m.pt"
    run_tiny(tiny_shards, path, steps=2)
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"training diverged at step \d+ .*m.pt keeps step 2; "
                                         r"try a lower --lr \(it is 1e\+10\)"):
        train(tiny_shards, str(path), config=tiny_config(steps=30, lr=1e10), device="cpu",
              resume=True, quiet=True)
    assert path.read_bytes() == before and not os.path.exists(f"{path}.tmp")
    with pytest.raises(InputError, match="nothing written to .*new.pt"):
        run_tiny(tiny_shards, tmp_path / "new.pt", steps=30, lr=1e10)
    ckpt = load_checkpoint(str(path))
    ckpt["generator"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                         for k, v in ckpt["generator"].items()}
    torch.save(ckpt, tmp_path / "nan.pt")
    with pytest.raises(InputError, match="nan.pt: its weights are not finite numbers"):
        GanStylizer(str(tmp_path / "nan.pt"), device="cpu")


def test_a_checkpoint_that_cannot_be_written_leaves_no_temporary(tiny_shards, tmp_path,
                                                                 monkeypatch, capsys):
    """A full disk while the checkpoint is saved: one clear error, the
    checkpoint before it kept, no temporary file (a traceback left a
    12 MB ``.tmp`` that kept the disk full)."""
    import errno

    path = tmp_path / "m.pt"
    run_tiny(tiny_shards, path, steps=2)
    before = path.read_bytes()
    real_save = torch.save

    def full(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)  # (the file is there, cut short: as a disk filling up)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(InputError, match=r"m.pt: the checkpoint could not be written \(No space "
                                         r"left on device\); the one before it is kept"):
        train(tiny_shards, str(path), config=tiny_config(steps=3), device="cpu", resume=True,
              quiet=True)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.preview.png", "m.pt"]
    monkeypatch.setattr(torch, "save", real_save)
    # a legal name near the 255-byte limit: the checkpoint is written (its temporary's
    # name was too long, a traceback), the preview's longer name said in a warning
    long = tmp_path / ("m" * 245 + ".pt")
    run_tiny(tiny_shards, long, steps=1)
    assert load_checkpoint(str(long))["step"] == 1
    assert "the preview is not written" in capsys.readouterr().err


def test_augment_keeps_size_and_dtype():
    frame = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    out = augment(frame, np.random.default_rng(1))
    assert out.shape == frame.shape and out.dtype == np.uint8


# ------------------------------------------------------------------ inference

def test_gan_stylizer_float16_channels_last_path(tiny_shards, tmp_path):
    """The arithmetic GanStylizer runs on CUDA (float16 weights and input,
    channels-last), forced on the CPU, whose torch has float16 kernels: the
    same image as float32 within a level or two. (Its CUDA run itself is not
    tested: no GPU here.)"""
    import torch

    path = tmp_path / "m.pt"
    run_tiny(tiny_shards, path, steps=2)
    frame = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    with GanStylizer(str(path), device="cpu") as full, GanStylizer(str(path), device="cpu") as half:
        assert not full.half
        half.half = True  # (what the constructor sets for a CUDA device)
        half.generator = half._net = half.generator.half().to(memory_format=torch.channels_last)
        want, got = full(frame), half(frame)
    assert got.dtype == np.uint8 and got.shape == frame.shape
    assert np.abs(got.astype(int) - want).max() <= 2


def test_gan_stylizer_has_the_stylizers_signature(tiny_shards, tmp_path):
    path = tmp_path / "m.pt"
    run_tiny(tiny_shards, path, steps=2)
    assert (list(inspect.signature(GanStylizer.__call__).parameters)
            == list(inspect.signature(Stylizer.__call__).parameters))
    frame = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    with GanStylizer(str(path), device="cpu") as stylizer:
        out = stylizer(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8
        assert set(stylizer.last_times) == set(GAN_STAGES) - {"landmarks", "guides"}
        buf = np.empty_like(frame)
        assert stylizer(frame, 0.5, out=buf) is buf
        np.testing.assert_array_equal(buf, out)
        with pytest.raises(ValueError, match="frame"):
            stylizer(frame.astype(np.float32))
    # at the model's size (48 long side) the network sees the training resolution
    assert GanStylizer(str(path), device="cpu").long_side == 48
    # video and webcam hand their --device to it (default auto)
    from blit.video import make_stylizer

    assert make_stylizer(None, fps=30.0, method="gan", model=str(path), device="cpu").device.type \
        == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device 'cuda': this PyTorch has no CUDA device"):
            make_stylizer(None, fps=30.0, method="gan", model=str(path), device="cuda")


def test_gan_stylizer_long_side_is_checked(tiny_shards, tmp_path):
    """A long side of -5 shrank every frame to 1x1, where no face is found,
    and the frames passed through unpainted with no word; 'x' was a raw
    TypeError. Asked for: None or distill's 32-4096; recorded in a
    checkpoint: 0 (the frame's own size) or 32-4096."""
    path = tmp_path / "m.pt"
    run_tiny(tiny_shards, path, steps=2)
    for bad in (-5, 0, 31, 4097, "x", 1.5, True):
        with pytest.raises(ValueError, match=r"long_side: expected a whole number of pixels "
                           r"32 to 4096, 'model' or None"):
            GanStylizer(str(path), device="cpu", long_side=bad)
    assert GanStylizer(str(path), device="cpu", long_side=None).long_side == 0
    assert GanStylizer(str(path), device="cpu", long_side=np.int64(64)).long_side == 64
    ckpt = torch.load(path, weights_only=True)
    for recorded, name in ((-5, "minus.pt"), (8, "eight.pt")):
        torch.save(dict(ckpt, long_side=recorded), tmp_path / name)
        with pytest.raises(InputError, match=rf"{name}: not a styleblit GAN checkpoint "
                           rf"\(long_side {recorded}; expected 32 to 4096 px\)"):
            GanStylizer(str(tmp_path / name), device="cpu")
    torch.save(dict(ckpt, long_side=0), tmp_path / "own.pt")  # (trained at the frames' size)
    assert GanStylizer(str(tmp_path / "own.pt"), device="cpu").long_side == 0


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole module: refused by weights_only
    truncated = tmp_path / "truncated.pt"
    half = tmp_path / "half.pt"
    torch.save({"format": "styleblit-gan", "version": 1, "step": 1,
                "generator": {"w": torch.zeros(1)}, "generator_config": {"width": 4},
                "long_side": 8}, half)  # the right header, weights of another network
    truncated.write_bytes(half.read_bytes()[:100])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    import zipfile

    zipped = tmp_path / "zipped.pt"  # (any zip was called a file torch wrote)
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    # each with its reason in words (torch's exceptions name a class: KeyError, EOFError)
    for path, why in ((garbage, "not a file torch writes"),
                      (foreign, "a file torch reads, but not one `styleblit distill` wrote"),
                      (pickled, "a file torch wrote, but not one `styleblit distill` wrote"),
                      (truncated, "a torch file cut short or damaged"),
                      (empty, "an empty file"), (half, "weights do not fit"),
                      (zipped, "a zip archive, not a file torch writes")):
        with pytest.raises(InputError, match=f"{path.name}: not a styleblit GAN checkpoint") \
                as info:
            GanStylizer(str(path), device="cpu")
        assert why in str(info.value), (path.name, str(info.value))
    with pytest.raises(InputError, match="no such file"):
        GanStylizer(str(tmp_path / "missing.pt"))
    # resuming from a foreign checkpoint is the same clear error, not a traceback
    with pytest.raises(InputError, match="foreign.pt: not a styleblit GAN checkpoint"):
        train([], str(foreign), config=tiny_config(), device="cpu", resume=True, quiet=True)


def test_guide_channels_model_trains_and_stylizes(tiny_shards, tmp_path):
    path = tmp_path / "g.pt"
    result, log = run_tiny(tiny_shards, path, generator=TINY_G6, steps=4)
    ckpt = load_checkpoint(str(path))
    assert ckpt["generator_config"]["in_channels"] == 6
    assert ckpt["guide_style"]["shape"] == [64, 48]
    assert tuple(ckpt["guide_style"]["landmarks"].shape) == (68, 2)
    frame = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    face = [FakeStyle.landmarks * 0.8]
    seen = []

    def landmarker(image):
        seen.append(image.shape)
        return face

    with GanStylizer(str(path), device="cpu", landmarker=landmarker) as stylizer:
        assert stylizer.guides
        out = stylizer(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8
        assert set(stylizer.last_times) == set(GAN_STAGES)
        assert seen == [frame.shape]
        assert not np.array_equal(out, frame)
        # no face: the frame as it is, as the patch stylizer gives it (the guides of no
        # face had the network repaint the whole frame, 20-36 levels on a user's clips)
        face.clear()
        np.testing.assert_array_equal(stylizer(frame), frame)
        buf = np.zeros_like(frame)
        assert stylizer(frame, out=buf) is buf
        np.testing.assert_array_equal(buf, frame)
        assert stylizer.last_landmarks == [] and "network" not in stylizer.last_times


def test_guide_channels_are_the_patch_stylizers_guides():
    from guides.appearance import target_appearance
    from guides.mls import positional_guide

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    lm = FakeStyle.landmarks * 0.7
    mask = np.ones((40, 48), np.float32)
    g = guide_channels(frame, lm, FakeStyle.landmarks, FakeStyle.quantiles, (64, 48), mask)
    pos = positional_guide((40, 48), lm, FakeStyle.landmarks)
    np.testing.assert_allclose(g[..., 0], np.clip(pos[..., 0] / 24.0 - 1, -2, 2), atol=1e-5)
    np.testing.assert_allclose(g[..., 1], np.clip(pos[..., 1] / 32.0 - 1, -2, 2), atol=1e-5)
    app = target_appearance(frame, FakeStyle.quantiles, mask)
    np.testing.assert_allclose(g[..., 2], app / 127.5 - 1, atol=1e-5)
    assert not guide_channels(frame, None, FakeStyle.landmarks, FakeStyle.quantiles, (64, 48)).any()


def test_vgg_term_only_from_a_local_file(tiny_shards, tmp_path):
    weights = tmp_path / "vgg19.pth"
    torch.manual_seed(0)
    torch.save({f"features.{k}": v for k, v in VGGFeatures().features.state_dict().items()},
               weights)
    result, log = run_tiny(tiny_shards, tmp_path / "v.pt", steps=2, vgg_weights=str(weights))
    assert all(r["vgg"] > 0 for r in log)
    _, log = run_tiny(tiny_shards, tmp_path / "n.pt", steps=2)
    assert "vgg" not in log[0]  # no file, no perceptual term (and nothing downloaded)
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(InputError, match="bad.pth: not VGG-19 weights"):
        run_tiny(tiny_shards, tmp_path / "b.pt", steps=1, vgg_weights=str(bad))
    with pytest.raises(InputError, match="no such file"):
        run_tiny(tiny_shards, tmp_path / "b.pt", steps=1, vgg_weights=str(tmp_path / "none"))


def test_without_torch_the_error_says_what_to_install(monkeypatch):
    import sys

    from gan_distill import require_torch

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InputError, match=r"styleblit\[gan\]"):
        require_torch()


# ------------------------------------------------------------------ command line

@pytest.fixture(scope="module")
def style_and_clip(tmp_path_factory):
    """A small style with landmarks beside it, and a 6-frame clip of a face (folder of PNGs)."""
    from guides.landmarks import detect_landmarks, write_lm68

    folder = tmp_path_factory.mktemp("gan_cli")
    style = cv2.resize(read_image(ASTRONAUT)[0:320, 110:410], (150, 160), interpolation=cv2.INTER_AREA)
    write_image(folder / "astro.png", style)
    write_lm68(folder / "astro.lm68.txt", detect_landmarks(style))
    clip = folder / "clip"
    clip.mkdir()
    image = read_image(HOPPER)
    for i in range(6):
        s = 0.3 * (1 + 0.04 * np.sin(i / 4.0))
        m = np.float32([[s, 0, -30 + 4 * np.sin(i / 5.0)], [0, s, -20]])
        write_image(clip / f"f{i:03d}.png",
                    cv2.warpAffine(image, m, (128, 160), borderMode=cv2.BORDER_REFLECT))
    return str(folder / "astro.png"), str(clip)


def test_cli_distills_and_stylizes_end_to_end(style_and_clip, tmp_path, capsys):
    style, clip = style_and_clip
    model = str(tmp_path / "m.pt")
    args = ["distill", "--style", style, "--video", clip, "-o", model, "--steps", "2",
            "--long-side", "96", "--crop", "32", "--batch", "2", "--device", "cpu", "-q"]
    assert main(args) == 0
    assert load_checkpoint(model)["step"] == 2
    shards, = [os.path.join(tmp_path / "m.data", n) for n in os.listdir(tmp_path / "m.data")
               if n.startswith("shard_")]
    inputs, targets, masks, _ = load_shards([shards])
    assert len(inputs) == 12 and max(inputs[0].shape[:2]) == 96  # 6 frames + 6 augmented
    assert max(m.max() for m in masks) == 255  # a face was found
    assert main(args) == 1  # exists already
    assert "exists already" in capsys.readouterr().err
    stamp = os.path.getmtime(shards)
    assert main(args[:8] + ["4"] + args[9:] + ["--resume"]) == 0
    assert load_checkpoint(model)["step"] == 4
    assert os.path.getmtime(shards) == stamp  # the dataset was reused, not rebuilt
    # resuming keeps the checkpoint's settings: other ones are refused, not ignored
    resume = args[:8] + ["4"] + args[9:] + ["--resume"]
    assert main(resume) == 0  # at step 4 already
    assert "at step 4 already (--steps 4); nothing to train" in capsys.readouterr().err
    for extra, message in ((["--width", "8"], f"--width 8 ({model} records 16)"),
                           (["--no-guides"], f"--no-guides ({model} was trained with guide "
                                             "channels)"),
                           (["--long-side", "128"], f"--long-side 128 ({model} records 96)")):
        assert main(resume[:8] + ["6"] + resume[9:] + extra) == 1
        assert message in capsys.readouterr().err
    from guides.exemplar import load_style
    from guides.landmarks import write_lm68

    other = tmp_path / "other.png"  # the same picture, its landmarks elsewhere: another style
    other.write_bytes(open(style, "rb").read())
    write_lm68(tmp_path / "other.lm68.txt", load_style(style).landmarks + 3)
    assert main(resume[:2] + [str(other)] + resume[3:8] + ["6"] + resume[9:]) == 1
    assert f"({model} was trained on another style)" in capsys.readouterr().err
    assert load_checkpoint(model)["step"] == 4
    # compare says so when its two sides would not paint the same style
    _compare_warns_of_another_style(model, clip, other, style, tmp_path, capsys, "1")
    out = str(tmp_path / "out")
    assert main(["video", clip, "-o", out, "--method", "gan", "--model", model, "-q"]) == 0
    frames = sorted(os.listdir(out))
    assert len(frames) == 6 and read_image(os.path.join(out, frames[0])).shape == (160, 128, 3)
    assert main(["video", clip, "-o", str(tmp_path / "o2"), "--method", "gan", "-q"]) == 1
    assert "--method gan needs --model" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\0" * 10)
    assert main(["video", clip, "-o", str(tmp_path / "o3"), "--method", "gan", "--model",
                 str(bad), "-q"]) == 1
    assert "bad.pt: not a styleblit GAN checkpoint" in capsys.readouterr().err


def _compare_warns_of_another_style(model, clip, other, style, tmp_path, capsys, patch_frames):
    """``compare`` with ``other`` warns that ``model`` was trained on another
    style; with ``style``, its own, it does not."""
    for name, output, warned in ((other, "cmp", True), (style, "cmp2", False)):
        assert main(["compare", "--style", str(name), "--model", model, clip, "-o",
                     str(tmp_path / output), "--frames", "2", "--patch-frames", patch_frames,
                     "-q"]) == 0
        err = capsys.readouterr().err
        assert (f"{model} was trained on another style than other's" in err) == warned, err
        assert warned or "warning" not in err


def test_a_model_without_guides_knows_its_style(style_and_clip, tmp_path, capsys):
    """A --no-guides checkpoint recorded nothing of its exemplar: --resume
    with another style trained on it silently, and compare did not warn."""
    from guides.exemplar import load_style
    from guides.landmarks import write_lm68

    style, clip = style_and_clip
    model = str(tmp_path / "m.pt")
    args = ["distill", "--style", style, "--video", clip, "-o", model, "--steps", "1",
            "--long-side", "64", "--crop", "32", "--batch", "1", "--device", "cpu", "-q",
            "--no-guides", "--max-frames", "2"]
    assert main(args) == 0
    other = tmp_path / "other.png"  # the same landmarks, other pixels: another style
    image = read_image(style)
    image[:8] = 255 - image[:8]
    write_image(other, image)
    write_lm68(tmp_path / "other.lm68.txt", load_style(style).landmarks)
    resume = args[:2] + [str(other)] + args[3:8] + ["2"] + args[9:] + ["--resume"]
    assert main(resume) == 1
    assert f"--style {other} ({model} was trained on another style)" in capsys.readouterr().err
    _compare_warns_of_another_style(model, clip, other, style, tmp_path, capsys, "0")
    assert main(args[:8] + ["2"] + args[9:] + ["--resume"]) == 0


def test_resume_without_a_checkpoint_says_what_to_do(style_and_clip, tmp_path, capsys):
    style, clip = style_and_clip
    args = ["distill", "--style", style, "--video", clip, "-o", str(tmp_path / "m.pt"),
            "--resume", "-q"]
    assert main(args) == 1
    assert capsys.readouterr().err.strip().endswith("--resume needs an existing checkpoint")
    (tmp_path / "m.data").mkdir()  # Ctrl-C while the dataset was built: no checkpoint yet
    assert main(args) == 1
    assert ("none was saved yet (interrupted while the dataset was built?): run without "
            "--resume") in capsys.readouterr().err


def _distill_args(style, output, *extra):
    return ["distill", "--style", style, "-o", str(output), "--device", "cpu", "-q", *extra]


def test_resume_takes_the_recorded_settings(style_and_clip, tmp_path, capsys):
    """--resume of a run started with --long-side 256 failed without the option
    repeated ("--long-side 512 (it has 256)"), and so did every dataset option
    (--augment, --every, --max-frames, the patch options: "other settings").
    Left out, they are the recorded ones; given and different, refused by name
    with both values and the file that recorded them."""
    style, clip = style_and_clip
    model = tmp_path / "m.pt"
    first = ["--video", clip, "--steps", "1", "--long-side", "64", "--augment", "0",
             "--max-frames", "2", "--width", "8", "--voting", "0", "--threshold", "40",
             "--batch", "1", "--crop", "32", "--lr", "1e-3", "--seed", "3", "--max-mb", "100"]
    assert main(_distill_args(style, model, *first)) == 0
    shard = tmp_path / "m.data" / SHARD_PATTERN.format(0)
    stamp = os.path.getmtime(shard)
    # the options not repeated are the run's ("--long-side 512 (it has 64)" before)
    assert main(_distill_args(style, model, "--resume", "--video", clip, "--steps", "2")) == 0, \
        capsys.readouterr().err
    # nor the videos: the dataset's; nor the length: the checkpoint's (--steps 2 now)
    assert main(_distill_args(style, model, "--resume")) == 0
    assert "at step 2 already (--steps 2); nothing to train" in capsys.readouterr().err
    ckpt = load_checkpoint(str(model))
    assert ckpt["step"] == 2 and ckpt["long_side"] == 64
    assert ckpt["generator_config"]["width"] == 8
    assert {k: ckpt["train_config"][k] for k in ("batch", "crop", "lr", "seed")} == \
        {"batch": 1, "crop": 32, "lr": 1e-3, "seed": 3}
    assert os.path.getmtime(shard) == stamp  # the dataset reused, not rebuilt
    # the same values given again are fine; a training option may change
    assert main(_distill_args(style, model, "--resume", *first[2:8], "--steps", "3",
                              "--lr", "5e-4")) == 0, capsys.readouterr().err
    assert load_checkpoint(str(model))["train_config"]["lr"] == 5e-4
    manifest = os.path.join(str(tmp_path / "m.data"), MANIFEST)
    for extra, message in (
            (["--long-side", "256"], f"--long-side 256 ({model} records 64)"),
            (["--width", "16"], f"--width 16 ({model} records 8)"),
            (["--guides"], None),  # (as recorded)
            (["--no-guides"], f"--no-guides ({model} was trained with guide channels)"),
            (["--augment", "1"], f"--augment 1 ({manifest} records 0)"),
            (["--every", "2"], f"--every 2 ({manifest} records 1)"),
            (["--max-frames", "3"], f"--max-frames 3 ({manifest} records 2)"),
            (["--voting", "1"], f"--voting 1 ({manifest} records 0)"),
            (["--threshold", "50"], f"--threshold 50 ({manifest} records 40)"),
            (["--denoise"], f"--denoise ({manifest} records neither --denoise nor "
                            "--no-denoise)")):
        code = main(_distill_args(style, model, "--resume", "--steps", "3", *extra))
        err = capsys.readouterr().err
        if message is None:
            assert code == 0, err
            continue
        assert code == 1 and message in err, err
        assert f"{model}: --resume goes on with the settings its run recorded" in err
    assert load_checkpoint(str(model))["step"] == 3


def test_resume_after_the_run_folder_moved(style_and_clip, tmp_path, capsys):
    """dataset.json recorded absolute source paths: a run folder moved (its
    videos inside) refused its own dataset, saying only "other settings".
    Sources inside the folder are now recorded relative to it; a source is
    known by its fingerprint wherever it is given; one that cannot be found
    is named, with the field, the value, the file and what to do."""
    import shutil

    style, clip = style_and_clip
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(clip, run / "clip")
    outside = tmp_path / "outside"
    shutil.copytree(clip, outside)
    first = ["--video", str(run / "clip"), "--video", str(outside), "--steps", "1",
             "--long-side", "64", "--augment", "0", "--max-frames", "2", "--batch", "1",
             "--crop", "32"]
    assert main(_distill_args(style, run / "m.pt", *first)) == 0
    recorded = json.loads((run / "m.data" / MANIFEST).read_text())["sources"]
    assert recorded == ["clip", str(outside)]
    shard = run / "m.data" / SHARD_PATTERN.format(0)
    stamp = os.path.getmtime(shard)
    moved = tmp_path / "moved"
    os.rename(run, moved)
    model = moved / "m.pt"
    assert main(_distill_args(style, model, "--resume", "--steps", "2")) == 0, \
        capsys.readouterr().err
    # the videos outside moved as well: said, with what to do
    os.rename(outside, tmp_path / "elsewhere")
    manifest = moved / "m.data" / MANIFEST
    assert main(_distill_args(style, model, "--resume", "--steps", "3")) == 1
    err = capsys.readouterr().err
    assert (f"{manifest}: sources[1] is {outside}, which is not there (moved or deleted?); "
            "give the videos with --video, all 2 in the order they were built from") in err, err
    # given at their new place, they are known by their fingerprints (and recorded there)
    again = ["--video", str(moved / "clip"), "--video", str(tmp_path / "elsewhere")]
    assert main(_distill_args(style, model, "--resume", "--steps", "3", *again)) == 0, \
        capsys.readouterr().err
    assert json.loads(manifest.read_text())["sources"] == ["clip", str(tmp_path / "elsewhere")]
    assert main(_distill_args(style, model, "--resume", "--steps", "4")) == 0
    assert os.path.getmtime(moved / "m.data" / SHARD_PATTERN.format(0)) == stamp
    # a dataset.json of before (absolute paths) in a moved folder: read, and rewritten
    data = json.loads(manifest.read_text())
    data["sources"] = [str(run / "clip"), str(tmp_path / "elsewhere")]
    manifest.write_text(json.dumps(data))
    assert main(_distill_args(style, model, "--resume", "--steps", "5")) == 1
    assert f"{manifest}: sources[0] is {run / 'clip'}, which is not there" in \
        capsys.readouterr().err
    assert main(_distill_args(style, model, "--resume", "--steps", "5", *again)) == 0
    assert json.loads(manifest.read_text())["sources"][0] == "clip"
    # another video given than the one it was built from: which, and what to do
    other = tmp_path / "other"
    shutil.copytree(clip, other)
    write_image(other / "f000.png", read_image(str(other / "f000.png"))[:, ::-1])
    assert main(_distill_args(style, model, "--resume", "--steps", "6", "--video",
                              str(moved / "clip"), "--video", str(other))) == 1
    assert (f"{moved / 'm.data'}: holds a dataset built from other sources: sources[1] is "
            f"{tmp_path / 'elsewhere'} in {manifest}, not {other} (other frames); give the "
            "videos it was built from, or use another --data folder or delete it") in \
        capsys.readouterr().err


def test_resume_finds_its_data_folder_and_budget(style_and_clip, tmp_path, capsys):
    """A run with --data DIR resumed without it looked for MODEL.data (and,
    given the videos, built a second dataset there), and --max-mb went back
    to 2048; a dataset folder of another model is said as such."""
    style, clip = style_and_clip
    run = tmp_path / "run"
    run.mkdir()
    model = run / "m.pt"
    assert main(_distill_args(style, model, "--video", clip, "--data", str(run / "d"),
                              "--steps", "1", "--long-side", "64", "--augment", "0",
                              "--max-frames", "2", "--batch", "1", "--crop", "32",
                              "--max-mb", "100")) == 0
    assert load_checkpoint(str(model))["data"] == "d"
    os.rename(run, tmp_path / "moved")
    model = tmp_path / "moved" / "m.pt"
    assert main(_distill_args(style, model, "--resume", "--steps", "2")) == 0, \
        capsys.readouterr().err
    assert not (tmp_path / "moved" / "m.data").exists()
    manifest = tmp_path / "moved" / "d" / MANIFEST
    assert json.loads(manifest.read_text())["max_bytes"] == 100 * 2**20
    data = json.loads(manifest.read_text())
    data["options"]["long_side"] = 96
    manifest.write_text(json.dumps(data))
    assert main(_distill_args(style, model, "--resume", "--steps", "3")) == 1
    assert (f"{tmp_path / 'moved' / 'd'}: not the dataset {model} was trained on: {manifest} "
            f"records options.long_side 96, {model} long_side 64; give --data the folder it "
            f"was trained on, or delete {tmp_path / 'moved' / 'd'}") in capsys.readouterr().err


def test_distill_checks_the_vgg_weights_before_any_work(style_and_clip, tmp_path, capsys):
    style, clip = style_and_clip
    junk = tmp_path / "vgg.pth"
    junk.write_text("junk")
    model = tmp_path / "m.pt"
    assert main(["distill", "--style", style, "--video", clip, "-o", str(model), "--steps", "1",
                 "--vgg-weights", str(junk), "--device", "cpu", "-q"]) == 1
    assert f"{junk}: not a VGG-19 state dict that torch can load" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["vgg.pth"]  # no dataset built
    if not torch.cuda.is_available():  # nor for a CUDA device that is not there
        assert main(["distill", "--style", style, "--video", clip, "-o", str(model),
                     "--steps", "1", "--device", "cuda", "-q"]) == 1
        assert "device 'cuda': this PyTorch has no CUDA device" in capsys.readouterr().err
        assert sorted(os.listdir(tmp_path)) == ["vgg.pth"]


def test_dataset_build_resumes_and_keeps_to_its_settings(style_and_clip, tmp_path, capsys):
    from guides.exemplar import load_style

    style_path, clip = style_and_clip
    style = load_style(style_path)
    folder = tmp_path / "data"
    options = DataOptions(long_side=64, shard_size=4, augment=1, max_frames=4)
    shards = build_dataset(style, [clip], str(folder), options=options, quiet=True)
    assert [os.path.basename(p) for p in shards] == [SHARD_PATTERN.format(i) for i in range(2)]
    inputs, targets, masks, guides = load_shards(shards, guides=True)
    assert len(inputs) == 8 and guides[0].shape == inputs[0].shape and guides[0].dtype == np.float16
    assert max(m.max() for m in masks) == 255
    # an interrupted build: the missing shard is made again, the other is kept
    stamp = os.path.getmtime(shards[0])
    os.remove(shards[1])
    again = build_dataset(style, [clip], str(folder), options=options, quiet=True)
    assert again == shards and os.path.getmtime(shards[0]) == stamp
    np.testing.assert_array_equal(load_shards(again)[0][4], inputs[4])  # same augmentation
    # and the same teacher: its stream ran on through the kept shard's frames, as in one
    # build (restarted cold there, its output differed by up to 76 levels on a real clip)
    redone = load_shards(again)[1]
    for k in range(4, 8):
        assert np.abs(redone[k].astype(int) - targets[k]).max() <= 1, k
    with pytest.raises(InputError) as exc:  # (which setting, both values, the file)
        build_dataset(style, [clip], str(folder), options=DataOptions(long_side=80, max_frames=4),
                      quiet=True)
    assert str(exc.value) == (f"{folder}: holds a dataset built with other settings: "
                              f"{folder / MANIFEST} records options.long_side 64 (80 asked); "
                              "options.shard_size 4 (16 asked); use another folder or delete it")
    # the size budget stops after the first shard, said even when quiet: the frames and
    # sources left out (only 'size budget reached' was said, and not with -q)
    import shutil

    other = str(tmp_path / "other")
    shutil.copytree(clip, other)
    capsys.readouterr()
    small = build_dataset(style, [clip, other], str(tmp_path / "small"), quiet=True,
                          options=DataOptions(long_side=64, shard_size=4, max_frames=4, max_bytes=1))
    assert len(small) == 1
    assert capsys.readouterr().err == (
        f"styleblit: warning: {tmp_path / 'small'}: the size budget (--max-mb 9.53674e-07) was "
        f"reached after 2 of the 4 frames used of {clip}; {other} not used; a larger --max-mb, "
        "or --every N (every N-th frame), takes in more\n")
    assert json.loads((folder / MANIFEST).read_text())["options"]["long_side"] == 64


def test_a_whole_dataset_is_not_run_through_the_teacher_again(style_and_clip, tmp_path,
                                                              monkeypatch):
    """Each resume ran the teacher over every source frame again, its shards
    all there (to carry its state through them): a whole dataset's cost.
    A build that ran to its end is recorded so; built again it returns its
    shards at once, unless one is missing or its size budget is raised."""
    import blit.stream
    from guides.exemplar import load_style

    style_path, clip = style_and_clip
    style = load_style(style_path)
    made = []
    real = blit.stream.Stylizer
    monkeypatch.setattr(blit.stream, "Stylizer", lambda *a, **k: made.append(1) or real(*a, **k))
    folder = tmp_path / "data"
    options = DataOptions(long_side=64, shard_size=4, augment=1, max_frames=4)
    shards = build_dataset(style, [clip], str(folder), options=options, quiet=True)
    assert len(shards) == 2 and made
    assert json.loads((folder / MANIFEST).read_text())["complete"] == {
        "shards": 2, "over_budget": False, "max_bytes": options.max_bytes}
    made.clear()
    stamps = [os.path.getmtime(p) for p in shards]
    assert build_dataset(style, [clip], str(folder), options=options, quiet=True) == shards
    assert made == [] and [os.path.getmtime(p) for p in shards] == stamps
    os.remove(shards[1])  # (one missing: the teacher runs, the other shard kept)
    assert build_dataset(style, [clip], str(folder), options=options, quiet=True) == shards
    assert made and os.path.getmtime(shards[0]) == stamps[0]
    # stopped by the size budget: a larger one takes in more, the same one does not
    small = DataOptions(long_side=64, shard_size=4, augment=1, max_frames=4, max_bytes=1)
    first = build_dataset(style, [clip], str(tmp_path / "small"), options=small, quiet=True)
    assert len(first) == 1
    made.clear()
    assert build_dataset(style, [clip], str(tmp_path / "small"), options=small, quiet=True) == first
    assert made == []
    assert len(build_dataset(style, [clip], str(tmp_path / "small"), options=options,
                             quiet=True)) == 2 and made


def test_dataset_build_errors_leave_nothing_in_the_way(style_and_clip, tmp_path, monkeypatch):
    """An unreadable source is one clear error before the dataset folder is
    made; a folder whose build stopped before its first shard takes other
    settings (it blocked the corrected command); a shard that cannot be
    written (a full disk) is one clear error, no temporary left."""
    import errno

    import gan_distill.data as D
    from guides.exemplar import load_style

    style_path, clip = style_and_clip
    style = load_style(style_path)
    options = DataOptions(long_side=64, shard_size=4, augment=0, max_frames=2)
    real = D._file_fingerprint

    def unreadable(path, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(D, "_file_fingerprint", unreadable)
    with pytest.raises(InputError, match=r"f000.png: cannot be read \(Permission denied\)"):
        build_dataset(style, [clip], str(tmp_path / "d1"), options=options, quiet=True)
    assert not (tmp_path / "d1").exists()
    monkeypatch.setattr(D, "_file_fingerprint", real)
    stopped = tmp_path / "d2"
    stopped.mkdir()
    (stopped / MANIFEST).write_text(json.dumps({"options": {"long_side": 100000}}))
    assert len(build_dataset(style, [clip], str(stopped), options=options, quiet=True)) == 1
    assert json.loads((stopped / MANIFEST).read_text())["options"]["long_side"] == 64

    def full(path, **arrays):
        open(path, "wb").write(b"PK")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full)
    with pytest.raises(InputError, match=r"d3: a shard could not be written \(No space left"):
        build_dataset(style, [clip], str(tmp_path / "d3"), options=options, quiet=True)
    assert sorted(os.listdir(tmp_path / "d3")) == [MANIFEST]


def test_out_of_range_sizes_and_rates_are_usage_errors(style_and_clip, capsys):
    style, clip = style_and_clip
    for args, says in ((["distill", "--style", style, "--video", clip, "-o", "m.pt",
                         "--long-side", "100000"], "--long-side: expected at most 4096"),
                       (["video", clip, "-o", "o.mp4", "--fps", "5000"],
                        "--fps: expected at most 1000")):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2 and says in capsys.readouterr().err


def test_dataset_build_refuses_changed_repeated_and_faceless_sources(style_and_clip, tmp_path):
    import shutil

    from guides.exemplar import load_style

    style_path, clip = style_and_clip
    style = load_style(style_path)
    mine = tmp_path / "clip"
    shutil.copytree(clip, mine)
    options = DataOptions(long_side=64, shard_size=4, augment=0, max_frames=2)
    folder = str(tmp_path / "data")
    shards = build_dataset(style, [str(mine)], folder, options=options, quiet=True)
    assert build_dataset(style, [str(mine)], folder, options=options, quiet=True) == shards
    # the same path holding other frames is not the source the dataset was made from
    first = mine / sorted(os.listdir(mine))[0]
    write_image(first, read_image(first)[:, ::-1])
    with pytest.raises(InputError, match=f"built from {mine} as it was before it changed"):
        build_dataset(style, [str(mine)], folder, options=options, quiet=True)
    with pytest.raises(InputError, match="given twice"):
        build_dataset(style, [str(mine), str(mine) + "/"], str(tmp_path / "d2"), options=options,
                      quiet=True)
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(3):
        write_image(blank / f"f{i}.png", np.full((80, 64, 3), 90 + i, np.uint8))
    with pytest.raises(InputError, match="blank: no face found in any of the 2 frames used"):
        build_dataset(style, [str(mine), str(blank)], str(tmp_path / "d3"), options=options,
                      quiet=True)


def test_compare_and_webcam_end_to_end(style_and_clip, tiny_shards, tmp_path, capsys,
                                       monkeypatch):
    import av

    style, clip = style_and_clip
    model = tmp_path / "m.pt"
    run_tiny(tiny_shards, model, steps=2)
    video = str(tmp_path / "clip.mp4")  # the folder as a short H.264 clip
    with av.open(video, "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 128, 160, "yuv420p"
        for name in sorted(os.listdir(clip)):
            frame = av.VideoFrame.from_ndarray(read_image(os.path.join(clip, name)), format="bgr24")
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    # the webcam loop runs the GAN too (headless, the clip standing in for a camera)
    assert main(["webcam", "--source", video, "--no-window", "--frames", "3", "--method", "gan",
                 "--model", str(model), "-q"]) == 0
    assert main(["webcam", "--source", video, "--no-window", "--method", "gan", "-q"]) == 1
    assert "--method gan needs --model" in capsys.readouterr().err
    out, js = str(tmp_path / "cmp.mp4"), str(tmp_path / "cmp.json")
    args = ["compare", "--style", style, "--model", str(model), video, "-o", out, "--json", js,
            "--threads", "2", "-q"]
    assert main(args) == 0
    report = json.loads(open(js).read())
    assert report["frames"] == 6 and set(report["methods"]) == {"patch", "gan", "input"}
    for name in ("patch", "gan"):
        assert report["methods"][name]["speed"]["fps"] > 0
        assert report["methods"][name]["stability"]["ratio"] is not None
    assert report["agreement"]["psnr"] is not None and report["model"]["step"] == 2
    # a 2-step model agrees with the patch output at a few dB: the table says what that means
    # (a user's 3-minute model, an olive wash, looked better than the teacher on every row)
    from gan_distill.compare import TRAINED_PSNR, format_comparison

    assert report["agreement"]["psnr"] < TRAINED_PSNR
    # (the tiny shards' model was trained on another style, as warned: the note says that
    # is why the two differ, not that the model may be undertrained, which it said before)
    assert report["model"]["trained_on_another_style"] is True
    assert "was trained on another style than astro's" in capsys.readouterr().err
    text = format_comparison(report)
    assert "undertrained" not in text and "the GAN was trained on another style" in text
    report["model"]["trained_on_another_style"] = False
    assert "it may be undertrained" in format_comparison(report)
    report["agreement"]["psnr"] = TRAINED_PSNR + 1
    assert "undertrained" not in format_comparison(report)
    assert report["settings"]["painting_scale"] == 1.0  # (the face is 1.2x the exemplar's)
    assert os.path.getsize(tmp_path / "cmp.png") > 0
    with av.open(out) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape[1] > 3 * 128  # input | patch | GAN, labelled
    # bad model: one line, exit 1, nothing written
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    out2 = str(tmp_path / "c2.mp4")
    assert main(["compare", "--style", style, "--model", str(bad), video, "-o", out2, "-q"]) == 1
    assert "bad.pt: not a styleblit GAN checkpoint" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == sorted(["m.pt", "m.preview.png", "clip.mp4", "cmp.mp4",
                                                   "cmp.json", "cmp.png", "bad.pt"])
    # outputs that name an input, or each other: refused before any work, even with --overwrite
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    compare = ["compare", "--style", style, "--model", str(model), video, "-q", "--overwrite"]
    for argv, message in (
            (["-o", out, "--json", video], f"would replace the input {video}"),
            (["-o", out, "--json", str(model)], f"would replace the input {model}"),
            (["-o", out, "--json", str(tmp_path / "j.json"), "--plot", out],
             "extension '.mp4'"),
            (["-o", str(tmp_path / "x.json"), "--json", str(tmp_path / "x.json")],
             "unknown video extension '.json'"),
            (["-o", str(tmp_path / "s.mp4"), "--plot", str(tmp_path / "s.mp4.png"),
              "--json", str(tmp_path / "s.mp4.png")], "two of the outputs would be written there"),
            (["-o", str(tmp_path / "x.avi")], "unknown video extension '.avi'")):
        assert main(compare + argv) == 1, argv
        assert message in capsys.readouterr().err
    distill = ["distill", "--style", style, "--video", video, "--steps", "1", "-q", "--overwrite"]
    assert main(distill + ["-o", video]) == 1
    assert f"would replace the input {video}" in capsys.readouterr().err
    # the chart's default path (beside --json) replaces an earlier chart, never an input
    # or a file that is not a chart (the user's photo.png beside photo.json: replaced,
    # exit 0, before); --plot chooses another
    photo = tmp_path / "photo.png"
    write_image(photo, np.full((20, 30, 3), 90, np.uint8))
    photo_bytes = photo.read_bytes()
    (tmp_path / "photo.json").write_text("{}")
    for json_path, what in ((tmp_path / "photo.json", "a file that is not a chart"),
                            (tmp_path / "astro.json", None)):
        chart = os.path.splitext(str(json_path))[0] + ".png"
        if what is None:  # (the style's own name: astro.png is an input)
            chart, what = os.path.splitext(style)[0] + ".png", "an input of this run"
            json_path = os.path.splitext(style)[0] + ".json"
        assert main(compare + ["-o", out, "--json", str(json_path)]) == 1
        assert capsys.readouterr().err == (
            f"styleblit: error: {chart}: where the chart goes by default (beside --json "
            f"{json_path}) is {what}; give --plot to choose another\n")
    assert photo.read_bytes() == photo_bytes
    # outputs inside a folder of frames it reads: refused (the preview became a frame)
    assert main(["distill", "--style", style, "--video", clip, "--steps", "1", "-q",
                 "-o", os.path.join(clip, "m.pt")]) == 1
    assert f"inside {clip}, a folder of frames this run reads" in capsys.readouterr().err
    assert not any(n.startswith("m.") for n in os.listdir(clip))
    # a dataset folder that cannot be one: one line, before any work
    (tmp_path / "afile.txt").write_text("x")
    for data, message in ((tmp_path / "afile.txt", f"{tmp_path / 'afile.txt'}: is a file, not "
                           "a folder"),
                          (tmp_path / "afile.txt" / "d", f"{tmp_path / 'afile.txt'} is a file, "
                           "not a folder")):
        assert main(distill + ["-o", str(tmp_path / "d.pt"), "--data", str(data)]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    os.remove(tmp_path / "afile.txt")
    os.remove(tmp_path / "photo.json")
    os.remove(photo)
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before
    # --patch-frames 0 skips the (slow) patch distances of a still as of a video
    still = os.path.join(clip, sorted(os.listdir(clip))[0])
    js = str(tmp_path / "still.json")
    assert main(["compare", "--style", style, "--model", str(model), still, "-o",
                 str(tmp_path / "still"), "--json", js, "--patch-frames", "0", "-q"]) == 0
    report = json.loads(open(js).read())
    assert all(report["methods"][m]["patch_distance"]["frames"] == [] for m in ("patch", "gan"))
    # a video that cannot be read: one line, and no dataset folder left behind
    text = tmp_path / "sub" / "text.mp4"
    text.parent.mkdir()
    text.write_text("not a video")
    assert main(["distill", "--style", style, "--video", str(text), "--steps", "1", "-q",
                 "-o", str(text.parent / "d.pt")]) == 1
    assert "text.mp4" in capsys.readouterr().err
    assert os.listdir(text.parent) == ["text.mp4"]
    # the webcam's window with the GAN: its overlay names the model, and the
    # patch style (here one without a face) is never loaded
    import sys

    from blit.stylize import StylizeOptions
    from blit.webcam import run_webcam

    sys.path.insert(0, os.path.dirname(__file__))
    from test_video import script_window

    blank = text.parent / "blank.png"
    write_image(blank, np.full((64, 48, 3), 128, np.uint8))
    shown = []
    script_window(monkeypatch, iter("xxq"), shown.append)
    summary = run_webcam([str(blank)], video, options=StylizeOptions(), window=True,
                         method="gan", model=str(model), pace=30.0, log=lambda *a: None)
    assert summary["frames"] == 3 and len(shown) == 3


def test_compare_interrupted_keeps_its_frames_as_a_partial_video(style_and_clip, tiny_shards,
                                                                 tmp_path, capsys, monkeypatch):
    """Ctrl-C during compare: the side-by-side frames written so far are kept
    as OUT.partial.mp4, as `styleblit video` keeps its own (compare kept
    nothing), and it says so, naming the report it did not write; exit 130.
    Interrupted before a frame was written: nothing is kept."""
    import av

    import gan_distill.infer as infer

    style, clip = style_and_clip
    model = tmp_path / "m.pt"
    run_tiny(tiny_shards, model, steps=2)
    calls = []

    class Interrupted(GanStylizer):
        def __call__(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(infer, "GanStylizer", Interrupted)
    out, js = tmp_path / "cmp.mp4", tmp_path / "cmp.json"
    args = ["compare", "--style", style, "--model", str(model), str(clip), "-o", str(out),
            "--json", str(js), "-q"]
    stop_at = 4
    assert main(args) == 130
    partial = tmp_path / "cmp.partial.mp4"
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"styleblit: interrupted after 3 frames; the partial side-by-side video is in {partial}; "
        f"no report ({js}, {tmp_path / 'cmp.png'} not written)")
    with av.open(str(partial)) as c:
        assert len([f for f in c.decode(video=0)]) == 3
    assert sorted(os.listdir(tmp_path)) == ["cmp.partial.mp4", "m.preview.png", "m.pt"]
    calls.clear()
    stop_at = 1
    assert main(args) == 130
    assert ("styleblit: interrupted before the first frame was written; nothing written"
            in capsys.readouterr().err)
    assert sorted(os.listdir(tmp_path)) == ["cmp.partial.mp4", "m.preview.png", "m.pt"]
    # a complete run removes the partial outputs earlier runs left, as `video` does
    # (they stayed)
    calls.clear()
    stop_at = 0
    assert main(args) == 0
    assert (f"styleblit: removed {partial}, left by an interrupted run; {out} supersedes it"
            in capsys.readouterr().err)
    assert sorted(os.listdir(tmp_path)) == ["cmp.json", "cmp.mp4", "cmp.png", "m.preview.png",
                                            "m.pt"]


def test_compare_on_a_video_without_a_face_says_so(style_and_clip, tiny_shards, tmp_path,
                                                   capsys):
    """A clip with no face: compare said nothing of it; where both sides left
    it as it was, its agreement line ended "identical (4 frames) (4 frames)"."""
    from blit.evaluate import agreement_line

    style, _ = style_and_clip
    model = tmp_path / "m.pt"
    run_tiny(tiny_shards, model, steps=2)
    clip = tmp_path / "wall"
    clip.mkdir()
    for i in range(4):
        write_image(clip / f"f{i}.png", np.full((64, 48, 3), 90 + i, np.uint8))
    js = tmp_path / "c.json"
    assert main(["compare", "--style", style, "--model", str(model), str(clip), "-o",
                 str(tmp_path / "c.mp4"), "--json", str(js), "-q"]) == 0
    assert (f"styleblit: warning: {clip}: no face found in any of its 4 frames compared"
            in capsys.readouterr().err)
    assert json.loads(js.read_text())["methods"]["patch"]["landmarks"]["frames"] == 0
    same = {"frames": 4, "head_frames": 0, "mask": "head", "psnr": float("nan"),
            "psnr_identical": 0, "ssim": float("nan"), "psnr_frame": float("nan"),
            "psnr_frame_identical": 4}
    assert agreement_line("GAN vs patch", same).endswith("whole frame PSNR identical (4 frames)")
