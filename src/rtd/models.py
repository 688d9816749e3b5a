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
            return self.backbone(x)  # an embedding backbone (CLIP's image tower, src/rtd/tracks/vision/clip.py)
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


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over the positions where ``mask`` is 1 of token states (N, L, d): (N, d)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


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


Backbone = str | dict  # a backbone name, or the spec of ``backbone_spec`` (its track, name, classes, ...)


def backbone_spec(params: dict, track: str | None = None) -> dict:
    """What ``build_classifier`` needs to rebuild the model of this configuration (``params`` as
    ``tracks.for_track`` gives them to ``track``'s stages), with the track that builds it."""
    from .tracks import BASE, get_track

    track = track or BASE
    return {**get_track(track).backbone_spec(params), "track": track}


def _track_of(spec: dict):
    """The track that builds ``spec``: the one it names, else the one that lists its backbone name."""
    from .tracks import available_tracks, get_track

    if spec.get("track"):
        return get_track(spec["track"])
    for name in available_tracks():
        if spec["name"] in get_track(name).backbones:
            return get_track(name)
    raise RTDError(f"unknown backbone {spec['name']!r}; choose one of "
                   + ", ".join(b for name in available_tracks() for b in get_track(name).backbones))


def build_classifier(backbone: Backbone, drop_connect: float = 0.0, from_file: bool = False) -> nn.Module:
    """Backbone + a fresh linear head, built by its track, on the spec's device (`train.device`).

    ``backbone`` is a backbone name (e.g. ``efficientnet-lite0``: 10 classes, CPU) or a ``backbone_spec``.
    ``from_file``: every weight will be loaded from a file (a track need not fetch pretrained weights).
    """
    spec = backbone if isinstance(backbone, dict) else {"name": backbone}
    return _track_of(spec).build_classifier(spec, drop_connect, from_file)


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
    model = build_classifier(backbone, drop_connect, from_file=True)   # every weight comes from the file
    try:
        state = load_file(str(path), device=str(next(model.parameters()).device))
        model.load_state_dict(state)
    except Exception as exc:
        raise RTDError(f"model file {path} is corrupted or incompatible ({exc}): delete it and run `dvc repro`") from exc
    return model
