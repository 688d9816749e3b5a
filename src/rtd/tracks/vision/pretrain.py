"""The embedded "foundation model": EfficientNet-Lite0 (ImageNet) trained on a broad corpus of digit renders
(`data.pretrain`: printed, handwriting-like and decorative families disjoint from every downstream split), with its
own 10-way head. The teacher θ_T is this model, head included: its OOD accuracy comes from knowledge that the
downstream ID data did not give it (as CLIP's zero-shot head).

The one training loop (``train.train``) runs it, with the checkpoint selected on `pretrain_val` (held-out
renders of the pretraining families): no downstream split is read.
"""
from __future__ import annotations

PRETRAINED = "models/pretrain/model.safetensors"


def pretrain_config(params: dict) -> dict:
    """`train` with the `pretrain` section's overrides: the loop settings of the pretraining run."""
    pp = params["pretrain"]
    return {**params["train"], **{k: pp[k] for k in ("epochs", "lr", "batch_size", "warmup_steps")},
            "patience": pp["epochs"], "checkpoint_every": 10**9}


def pretrain(params: dict) -> None:
    """Train and write models/pretrain/{model.safetensors, stats.json} (a placeholder where nothing is pretrained)."""
    from ...data.splits import load_split
    from ...io import save_arrays, seed_everything, write_json
    from ...methods import FineTune
    from ...models import backbone_spec, build_classifier, save_model
    from ...train import train

    if params["teacher"]["backbone"] != "efficientnet-lite0" or params["teacher"]["head"] != "pretrained":
        # the paper configuration starts from CLIP, and a probe teacher from ImageNet: nothing to pretrain
        save_arrays(PRETRAINED, {})
        write_json("models/pretrain/stats.json", {"skipped": "teacher.backbone is not efficientnet-lite0 or "
                                                             "teacher.head is not pretrained"})
        return
    seed = params["pretrain"]["seed"]
    seed_everything(seed, params["num_threads"])
    corpus = load_split("data/vision/pretrain.safetensors")
    val = load_split("data/vision/pretrain_val.safetensors")
    model = build_classifier(backbone_spec(params, "vision"))   # ImageNet backbone, fresh head
    result = train(model, FineTune(), corpus, val, val, pretrain_config(params), seed, section="pretrain")
    save_model(PRETRAINED, result.model)
    write_json("models/pretrain/stats.json", {
        "n_images": len(corpus), "domains": corpus.domain_names, "best_epoch": result.best_epoch,
        "pretrain_val_acc": [round(row["id_val_acc"], 6) for row in result.log],
        "train_loss": [round(row["task"], 6) for row in result.log],
    })
