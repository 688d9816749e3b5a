"""Tiny WILDS datasets in the official on-disk layouts, and a tiny open_clip model, for CPU tests.

The images carry their label in their colour (tumour patches redder, animals brighter), so a few steps
of training move accuracy; hospitals / camera locations shift the colour, as the real shifts do.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

TINY_CLIP = "rtd-tiny-rn"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def register_tiny_clip(folder: Path) -> str:
    """Register a randomly initialised ResNet CLIP small enough to train on a CPU; return its name."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{TINY_CLIP}.json"
    path.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(path)
    return TINY_CLIP


def _image(rng: np.random.Generator, label: int, shift: float, size: int) -> Image.Image:
    base = np.array([0.75, 0.45, 0.6]) if label else np.array([0.55, 0.45, 0.75])
    pixels = base + shift + rng.normal(0, 0.08, (size, size, 3))
    return Image.fromarray((pixels.clip(0, 1) * 255).astype(np.uint8))


def make_camelyon17(root: Path, per_center_split: int = 6, seed: int = 0) -> Path:
    """``<root>/camelyon17_v1.0``: 5 hospitals (1 = OOD val, 2 = OOD test), 96x96 PNG patches."""
    rng = np.random.default_rng(seed)
    data = root / "camelyon17_v1.0"
    data.mkdir(parents=True, exist_ok=True)
    (data / "RELEASE_v1.0.txt").write_text("v1.0\n")
    rows = []
    for center in range(5):
        for split in (0, 1):  # train / id_val for centers 0, 3, 4 (wilds reassigns 1 and 2)
            for i in range(per_center_split):
                patient, node, tumor = f"{center:03d}", split, i % 2
                x, y = 100 * i, 100 * center
                folder = data / "patches" / f"patient_{patient}_node_{node}"
                folder.mkdir(parents=True, exist_ok=True)
                _image(rng, tumor, 0.06 * (center - 2), 96).save(
                    folder / f"patch_patient_{patient}_node_{node}_x_{x}_y_{y}.png")
                rows.append((patient, node, x, y, tumor, 10 * center + split, center, split))
    lines = [",patient,node,x_coord,y_coord,tumor,slide,center,split"]
    lines += [f"{k}," + ",".join(str(v) for v in row) for k, row in enumerate(rows)]
    (data / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def make_iwildcam(root: Path, n_classes: int = 3, per_split: int = 6, seed: int = 0, n_categories: int | None = None) -> Path:
    """``<root>/iwildcam_v2.0``: five official splits, camera locations, JPEGs under train/; labels from the
    first ``n_classes`` classes, ``categories.csv`` naming ``n_categories`` (default ``n_classes``; the real
    file has WILDS' 182)."""
    rng = np.random.default_rng(seed)
    data = root / "iwildcam_v2.0"
    (data / "train").mkdir(parents=True, exist_ok=True)
    (data / "RELEASE_v2.0.txt").write_text("v2.0\n")
    lines = ["split,filename,y,location_remapped,sequence_remapped,datetime"]
    k = 0
    for s, split in enumerate(("train", "val", "test", "id_val", "id_test")):
        for i in range(per_split):
            y, location = i % n_classes, {"val": 2, "test": 3}.get(split, i % 2)
            name = f"img{k:04d}.jpg"
            img = _image(rng, int(y > 0), 0.1 * y - 0.05 * (split in ("val", "test")), 48)
            img.save(data / "train" / name, quality=95)
            lines.append(f"{split},{name},{y},{location},{k},2013-0{1 + s}-1{i % 9} 0{i % 9}:00:00.000")
            k += 1
    (data / "metadata.csv").write_text("\n".join(lines) + "\n")
    names = ["empty", "deer", "zebra"][:n_classes]
    names += [f"species {y}" for y in range(len(names), n_categories or n_classes)]
    (data / "categories.csv").write_text("y,category_id,name\n" + "\n".join(
        f"{y},{100 + y},{name}" for y, name in enumerate(names)) + "\n")
    return root
