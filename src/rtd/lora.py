"""LoRA (Hu et al. 2022) through peft: low-rank adapters on chosen backbone layers, the head trained.

For a convolution W (out, in, k, k), peft's LoRA adds (alpha / r) * B A with A: (r, in, k, k) and
B: (out, r, 1, 1), B initialised to zero, so training starts exactly at the pretrained function.
After training the adapters are merged into W (``merge_and_unload``), so evaluation runs the same
Classifier as every other method; the adapters (and head) are also saved on their own.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from .errors import ParamError, RTDError
from .methods import FineTune


def _plain_convs(model: nn.Module, pattern: str) -> list[str]:
    """Swap the targeted convolutions for plain nn.Conv2d with the same weights; return their names.

    EfficientNet-Lite's convolutions are a Conv2d subclass with "same" padding applied in forward,
    which peft cannot clone. The 1x1 convolutions LoRA targets have no padding (their static padding
    is the identity), so a plain nn.Conv2d computes exactly the same function.
    """
    names = [n for n, m in model.named_modules() if n and re.fullmatch(pattern, n)]
    if not names:
        raise ParamError(f"params.yaml: `lora.target_modules` = {pattern!r} matches no module of the model; "
                         "e.g. '.*\\._(expand|project)_conv' or 'backbone\\._conv_head'")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, child)
        if isinstance(old, nn.Linear) or type(old) is nn.Conv2d:
            continue
        if not isinstance(old, nn.Conv2d):
            raise ParamError(f"params.yaml: `lora.target_modules` matches {name} ({type(old).__name__}); "
                             "LoRA here adapts convolutions and linear layers only")
        padding = getattr(old, "static_padding", None)
        if padding is not None and type(padding).__name__ != "Identity":  # the package has its own Identity
            raise ParamError(f"params.yaml: `lora.target_modules` matches {name}, a padded {old.kernel_size} "
                             "convolution; target the 1x1 convolutions (`_expand_conv`, `_project_conv`, `_conv_head`)")
        new = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride, 0, old.dilation,
                        old.groups, bias=old.bias is not None)
        new.load_state_dict(old.state_dict())
        setattr(parent, child, new)
    return names


class LoRA(FineTune):
    """FT restricted to low-rank adapters on ``target_modules`` plus the (new) head."""

    name = "lora"

    def __init__(self, rank: int, alpha: float, dropout: float, target_modules: str, lr: float):
        self.rank, self.alpha, self.dropout, self.target_modules, self.lr = rank, alpha, dropout, target_modules, lr
        self.tuner = None
        self.adapters: dict[str, torch.Tensor] = {}   # filled by finalize: the trained adapters and head

    def config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, bias="none")

    def prepare(self, model: nn.Module) -> nn.Module:
        try:
            from peft.tuners.lora import LoraModel
        except ImportError as exc:
            raise RTDError("peft is not installed: run `make setup` (pip install peft==0.21.2)") from exc
        _plain_convs(model, self.target_modules)
        self.tuner = LoraModel(model, self.config(), "default")  # injects adapters into `model` in place
        # a bf16 base (an LLM on GPUs) would get bf16 adapters, whose small updates round away: keep them fp32
        self.tuner._cast_adapter_dtype("default", autocast_adapter_dtype=True)
        for name, p in model.named_parameters():
            p.requires_grad_("lora_" in name or name.startswith("head."))
        return model.to(memory_format=torch.channels_last)

    def adapter_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The trained part alone: adapter matrices and head (what `models/lora/.../adapter.safetensors` holds)."""
        return {k: v.detach().contiguous() for k, v in model.state_dict().items() if "lora_" in k or k.startswith("head.")}

    def finalize(self, model: nn.Module) -> nn.Module:
        if self.tuner is None:
            raise RTDError("LoRA.finalize called before prepare")
        self.adapters = self.adapter_state(model)
        return self.tuner.merge_and_unload().to(memory_format=torch.channels_last)
