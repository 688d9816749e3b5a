"""Shared test helpers: a tiny configuration of the real pipeline."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params() -> dict:
    """The default params shrunk to a configuration that runs end to end in well under a minute."""
    p = copy.deepcopy(default_params())
    d = p["data"]
    d["image_size"] = 32
    d["printed"] = ["DejaVu Sans", "Liberation Serif", "Nimbus Mono PS"]
    d["handwriting_val"] = ["Kristi"]
    d["handwriting_test"] = ["Humor Sans"]
    d["decorative"] = ["Binary BRK", "Wager BRK"]
    d["renders_per_digit"] = {"train": 2, "id_val": 1, "id_test": 1, "handwriting_val": 1,
                              "handwriting_test": 1, "decorative": 1}
    d["sklearn_digits"] = True
    p["ood"]["pgd"]["steps"] = 1
    p["train"].update(epochs=2, patience=2, batch_size=16, warmup_steps=2, eval_batch_size=64)
    p["teacher"]["batch_size"] = 64
    p["eval"]["batch_size"] = 256
    return p
