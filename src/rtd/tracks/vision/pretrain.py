"""The embedded "foundation model": EfficientNet-Lite0 (ImageNet) trained on a broad corpus of digit renders
(`data.pretrain`: printed, handwriting-like and decorative families disjoint from every downstream split), with its
own 10-way head. The teacher θ_T is this model, head included: its OOD accuracy comes from knowledge that the
downstream ID data did not give it (as CLIP's zero-shot head).

The `pretrain` stage runs it with the one training loop (``train.train``), the checkpoint selected on `pretrain_val`
(held-out renders of the pretraining families): no downstream split is read.
"""
from __future__ import annotations

PRETRAINED = "models/pretrain/model.safetensors"


def pretrain_config(params: dict) -> dict:
    """`train` with the `pretrain` section's overrides: the loop settings of the pretraining run."""
    pp = params["pretrain"]
    return {**params["train"], **{k: pp[k] for k in ("epochs", "lr", "batch_size", "warmup_steps")},
            "patience": pp["epochs"], "checkpoint_every": 10**9}


def pretrain_run(params: dict) -> tuple | str:
    """(corpus, validation split, loop settings, seed) of the pretraining run, or why there is none."""
    from ...data.splits import load_split

    if params["teacher"]["backbone"] != "efficientnet-lite0" or params["teacher"]["head"] != "pretrained":
        # the paper configuration starts from CLIP, and a probe teacher from ImageNet: nothing to pretrain
        return "teacher.backbone is not efficientnet-lite0 or teacher.head is not pretrained"
    return (load_split("data/vision/pretrain.safetensors"), load_split("data/vision/pretrain_val.safetensors"),
            pretrain_config(params), params["pretrain"]["seed"])
