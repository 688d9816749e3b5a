"""The vision backbone's speed-ups change no number: in-conv padding computes the explicit pad's forward pass bit for bit
(and its training to float rounding), and
training without deterministic mode's NaN fill of new tensors is bit-identical to training with it."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from rtd.io import set_fill_uninitialized
from rtd.models import build_classifier, set_train_mode
from rtd.tracks.vision.models import explicit_same_padding


def test_padding_inside_the_convolutions_trains_bit_identically():
    torch.manual_seed(0)
    fast = build_classifier("efficientnet-lite0")
    reference = copy.deepcopy(fast)
    assert explicit_same_padding(reference) == 7  # EfficientNet-Lite0's seven 5 x 5 depthwise convolutions
    kept = [m for m in fast.modules() if isinstance(getattr(m, "static_padding", None), nn.ZeroPad2d)]
    assert kept and all(m.kernel_size == (3, 3) or m.stride != (1, 1) for m in kept)

    # plain SGD: Adam's g / sqrt(v) would turn a last-bit difference of a near-zero gradient into a step of size lr
    optimisers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (fast, reference)]
    for step in range(3):  # the pipeline's batch of 64 at 64 px, BatchNorm frozen as in every arm
        g = torch.Generator().manual_seed(step)
        x = torch.rand(64, 3, 64, 64, generator=g).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (64,), generator=g)
        logits = []
        for model, opt in zip((fast, reference), optimisers):
            set_train_mode(model, "frozen")
            opt.zero_grad()
            out = model(x)
            nn.functional.cross_entropy(out, y).backward()
            opt.step()
            logits.append(out.detach())
        # bit-identical on the CPU the speed-up was measured on; on others (an AMD EPYC here) oneDNN's weight-gradient
        # kernels for the two layouts differ in the last bits, so training agrees to float rounding, not bit for bit
        assert torch.allclose(logits[0], logits[1], rtol=1e-5, atol=1e-6)
        for p, q in zip(fast.parameters(), reference.parameters()):
            assert torch.allclose(p, q, rtol=1e-5, atol=1e-6)
    fast.eval(), reference.eval()
    with torch.no_grad():
        x = torch.rand(50, 3, 64, 64).contiguous(memory_format=torch.channels_last)
        assert torch.allclose(fast(x), reference(x), rtol=1e-5, atol=1e-6)
    # the forward pass itself is bit-identical in both layouts (same weights)
    with torch.no_grad():
        twin = copy.deepcopy(fast)
        explicit_same_padding(twin)
        assert torch.equal(fast(x), twin(x))


def test_seed_everything_makes_torch_deterministic_without_importing_inductor():
    code = ("import sys, torch; from rtd.io import seed_everything; seed_everything(0, 1); "
            "print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(), "
            "'torch._inductor.config' in sys.modules, torch.get_num_threads(), "
            "torch.utils.deterministic.fill_uninitialized_memory)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout.split()
    assert out == ["True", "True", "False", "1", "False"]   # deterministic, without the NaN fill


def test_training_without_the_nan_fill_is_bit_identical():
    """No op reads uninitialised memory: what torch.empty holds (NaN when filled) never reaches a result."""
    was = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        runs = []
        for fill in (True, False):
            set_fill_uninitialized(fill)
            torch.manual_seed(0)
            model = build_classifier("efficientnet-lite0")
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            set_train_mode(model, "frozen")
            for step in range(2):
                g = torch.Generator().manual_seed(step)
                x = torch.rand(24, 3, 64, 64, generator=g).contiguous(memory_format=torch.channels_last)
                opt.zero_grad()
                logits, feats = model.forward_with_activation(x, "pooled")
                (nn.functional.cross_entropy(logits, torch.arange(24) % 10) + feats.square().mean()).backward()
                opt.step()
            runs.append([p.detach().clone() for p in model.parameters()])
        assert all(torch.equal(p, q) for p, q in zip(*runs))
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=True)
        set_fill_uninitialized(was[1])
