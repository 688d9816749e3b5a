"""The paper configuration's backbone: a CLIP image encoder from open_clip, with a zero-shot teacher head.

open_clip (Ilharco et al.) is imported only here, so the embedded default never needs it. Weights come
from open_clip's cache (``clip.cache_dir``) or a local checkpoint file; nothing is downloaded unless
the user allows it, and a missing checkpoint stops with a message saying what to fetch and where to put it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import RTDError

# open_clip's RN50 (OpenAI) preprocessing statistics; other tags carry their own (read from the model)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise RTDError("open_clip is not installed: `pip install open_clip_torch==3.3.0` "
                       "(`make setup` installs it)") from exc
    return open_clip


def load_clip(model_name: str, pretrained: str | None, cache_dir: str | None = None) -> nn.Module:
    """An open_clip model: ``pretrained`` is an open_clip tag (e.g. 'openai'), a checkpoint file, or None (random).

    ``model_name`` is an open_clip model name or the path of a model config JSON (a custom architecture).

    Offline (HF_HUB_OFFLINE=1, the default of every stage) a tag whose weights are not in ``cache_dir``
    raises RTDError naming the command that fetches them on a machine with internet.
    """
    open_clip = _open_clip()
    if model_name.endswith(".json") and Path(model_name).is_file():
        open_clip.add_model_config(model_name)  # a custom architecture (the tests' tiny ResNet CLIP)
        model_name = Path(model_name).stem
    if model_name not in open_clip.list_models():
        raise RTDError(f"`clip.model` = {model_name!r} is not an open_clip model; choose one of "
                       f"open_clip.list_models(), e.g. RN50 or ViT-B-16")
    if pretrained and not Path(pretrained).is_file() and pretrained not in open_clip.list_pretrained_tags_by_model(model_name):
        raise RTDError(f"`clip.pretrained` = {pretrained!r} is neither a checkpoint file nor an open_clip tag of "
                       f"{model_name} ({', '.join(open_clip.list_pretrained_tags_by_model(model_name))})")
    import logging

    logging.disable(logging.ERROR)  # open_clip logs its failures (raised below) and "initialized randomly"
    try:
        model = open_clip.create_model(model_name, pretrained=pretrained or None, cache_dir=cache_dir)
    except RuntimeError as exc:
        if "Failed to download" not in str(exc):
            raise
        fetch = (f"python -c \"import open_clip; open_clip.create_model('{model_name}', pretrained='{pretrained}', "
                 f"cache_dir='{cache_dir}')\"")
        offline = " (HF_HUB_OFFLINE=1 is set)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise RTDError(f"the open_clip weights {model_name}/{pretrained} are not in {cache_dir}{offline}: on a machine "
                       f"with internet run `{fetch}` and copy {cache_dir}/ here, or set `clip.pretrained` to a "
                       "downloaded checkpoint file") from exc
    finally:
        logging.disable(logging.NOTSET)
    return model


def zero_shot_weights(model: nn.Module, classnames: list[str], templates: list[str], tokenizer) -> torch.Tensor:
    """CLIP's zero-shot classifier (Radford et al. 2021, as in WiSE-FT): one row per class.

    Each row is the mean over ``templates`` of the L2-normalised text embeddings of the prompts for that
    class, normalised again, times the model's logit scale; logits = this @ normalised image features.
    """
    rows = []
    with torch.no_grad():
        for name in classnames:
            tokens = tokenizer([t.format(name) for t in templates])
            emb = F.normalize(model.encode_text(tokens).float(), dim=-1)
            rows.append(F.normalize(emb.mean(dim=0), dim=-1))
        return torch.stack(rows) * model.logit_scale.exp().float()


class ClipImageBackbone(nn.Module):
    """CLIP's image tower with its input normalisation, mapping [0, 1] images to normalised embeddings.

    Inputs may be any size: they are resized (bicubic, as open_clip's preprocessing) to the tower's
    ``image_size`` inside, so the data shards can keep the dataset's native resolution.
    """

    def __init__(self, visual: nn.Module, mean=OPENAI_MEAN, std=OPENAI_STD):
        super().__init__()
        self.visual = visual
        size = getattr(visual, "image_size", 224)
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bicubic", align_corners=False).clamp(0, 1)
        return F.normalize(self.visual((x - self.mean) / self.std), dim=-1)


def build_clip_backbone(spec: dict) -> tuple[nn.Module, int, nn.Module]:
    """(image backbone, feature size, the full open_clip model) for a ``clip`` params section."""
    model = load_clip(spec["model"], spec.get("pretrained"), spec.get("cache_dir"))
    visual = model.visual
    mean = getattr(visual, "image_mean", None) or OPENAI_MEAN
    std = getattr(visual, "image_std", None) or OPENAI_STD
    return ClipImageBackbone(visual, mean, std), int(visual.output_dim), model


def tokenizer_for(model_name: str):
    return _open_clip().get_tokenizer(Path(model_name).stem if model_name.endswith(".json") else model_name)


def zero_shot_head(params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's zero-shot head for ``params``' dataset: (normalised prompt embeddings x logit scale, zero bias)."""
    from .wilds import class_names, num_classes

    cp, dataset = params["clip"], params["vision"]["dataset"]
    names = class_names(params["vision"], cp)
    if len(names) != num_classes(dataset):
        raise RTDError(f"{dataset} has {num_classes(dataset)} classes but {len(names)} class names were found "
                       f"for the zero-shot prompts: fix `clip.classnames.{dataset}`")
    model = load_clip(cp["model"], cp["pretrained"], cp["cache_dir"]).eval()
    weight = zero_shot_weights(model, names, cp["templates"], tokenizer_for(cp["model"]))
    return weight, torch.zeros(len(weight))
