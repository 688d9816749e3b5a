"""The paper configuration's data: WILDS Camelyon17 and iWildCam through the `wilds` package.

Each official split is read with the real `wilds` code (``get_dataset`` / ``get_subset``), resized and
centre-cropped like open_clip's preprocessing, and written to the same shards as the embedded benchmark
(``data/vision/<split>.safetensors``), with WILDS' metadata kept for the official metrics
(``dataset.eval``). Our split names map onto WILDS' as in ``DATASETS``; model selection uses only
id_val and ood_val (WILDS' ``val``), never ``test``.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch

from ...errors import RTDError
from ...data.splits import Split

DATASETS: dict[str, dict] = {
    "fonts": {"num_classes": 10},
    "camelyon17": {
        "dir": "camelyon17_v1.0", "release": "RELEASE_v1.0.txt", "num_classes": 2, "size": "10.7 GB",
        # Camelyon17 has no ID test split: ID accuracy is reported on id_val, as WILDS does
        "splits": {"train": "train", "id_val": "id_val", "id_test": "id_val", "ood_val": "val", "ood_test": "test"},
        "domain_field": "hospital", "metric": "acc_avg",
    },
    "iwildcam": {
        "dir": "iwildcam_v2.0", "release": "RELEASE_v2.0.txt", "num_classes": 182, "size": "11 GB",
        "splits": {"train": "train", "id_val": "id_val", "id_test": "id_test", "ood_val": "val", "ood_test": "test"},
        "domain_field": None, "metric": "F1-macro_all",
    },
}


def num_classes(dataset: str) -> int:
    if dataset not in DATASETS:
        raise RTDError(f"`vision.dataset` = {dataset!r} is unknown; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset]["num_classes"]


def install_scatter_fallback() -> None:
    """Make ``import torch_scatter`` work without compiling it (wilds' ``dataset.eval`` imports it).

    wilds uses one 1-D call, ``torch_scatter.scatter(src, index, dim_size=n, reduce='mean')`` in
    ``wilds.common.utils.avg_over_groups``; ``Tensor.scatter_reduce`` computes the same (empty groups 0).
    A real torch_scatter, when installed, is used instead.
    """
    try:
        import torch_scatter  # noqa: F401
        return
    except ImportError:
        pass

    def scatter(src: torch.Tensor, index: torch.Tensor, dim: int = -1, out=None, dim_size: int | None = None,
                reduce: str = "sum") -> torch.Tensor:
        if src.dim() != 1 or out is not None:
            raise NotImplementedError("the torch_scatter fallback handles 1-D scatter only (all wilds needs)")
        size = int(index.max()) + 1 if dim_size is None else dim_size
        how = {"sum": "sum", "add": "sum", "mean": "mean", "max": "amax", "min": "amin", "mul": "prod"}[reduce]
        return torch.zeros(size, dtype=src.dtype, device=src.device).scatter_reduce(0, index, src, how,
                                                                                    include_self=False)

    module = types.ModuleType("torch_scatter")
    module.scatter = scatter
    module.__doc__ = "rtd's 1-D stand-in for torch_scatter (src/rtd/tracks/vision/wilds.py)"
    sys.modules["torch_scatter"] = module


def load_wilds(name: str, root: str | Path, download: bool = False):
    """The WILDS dataset object; a missing or incomplete root stops with where to get the data."""
    if name not in DATASETS or name == "fonts":
        raise RTDError(f"`vision.dataset` = {name!r} is not a WILDS dataset; choose camelyon17 or iwildcam")
    info = DATASETS[name]
    data_dir = Path(root) / info["dir"]
    missing = [f for f in (info["release"], "metadata.csv") if not (data_dir / f).is_file()]
    if missing and not download:
        raise RTDError(
            f"WILDS {name} not found: {data_dir}/ lacks {', '.join(missing)}. Download it ({info['size']}) on a "
            f"machine with internet: `python -c \"import wilds; wilds.get_dataset('{name}', root_dir='{root}', "
            f"download=True)\"`, or run with `-S vision.download=true`; then set `vision.wilds_root` to the folder "
            f"that holds {info['dir']}/")
    try:
        import wilds
    except ImportError as exc:
        raise RTDError("wilds is not installed: `pip install wilds==2.0.0` (`make setup` installs it)") from exc
    try:
        return wilds.get_dataset(dataset=name, root_dir=str(root), download=download)
    except (FileNotFoundError, KeyError, ValueError, OSError, AssertionError) as exc:
        raise RTDError(f"WILDS {name} at {data_dir} could not be read ({exc}): re-download it with "
                       f"`-S vision.download=true` or check the folder against the WILDS release") from exc


def _prepare(image, size: int) -> np.ndarray:
    """open_clip's preprocessing without normalisation: shorter side to ``size`` (bicubic), centre crop."""
    from PIL import Image

    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    if (w, h) != (size, size):
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = image.size
        left, top = (w - size) // 2, (h - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def build_wilds_splits(vision: dict, image_size: int) -> tuple[dict[str, Split], dict]:
    """Our five splits from WILDS' official ones, at ``image_size`` pixels, with WILDS metadata kept."""
    from tqdm import tqdm

    name = vision["dataset"]
    info = DATASETS[name]
    dataset = load_wilds(name, vision["wilds_root"], vision["download"])
    fields = list(dataset.metadata_fields)
    splits, manifest = {}, {"dataset": name, "version": dataset.version, "image_size": image_size,
                            "wilds_splits": info["splits"], "metadata_fields": fields, "sizes": {}}
    for ours, theirs in info["splits"].items():
        subset = dataset.get_subset(theirs)
        idx = np.asarray(subset.indices)
        images = np.stack([_prepare(dataset.get_input(int(i)), image_size)
                           for i in tqdm(idx, desc=f"{name} {theirs}", unit="img")])
        metadata = dataset.metadata_array[idx].numpy().astype(np.int64)
        if info["domain_field"] is None:
            domains, names = np.zeros(len(idx), dtype=np.int64), [theirs]
        else:
            values = metadata[:, fields.index(info["domain_field"])]
            uniq = sorted(set(values.tolist()))
            domains = np.searchsorted(uniq, values).astype(np.int64)
            names = [f"{info['domain_field']}{v}" for v in uniq]
        splits[ours] = Split(images, dataset.y_array[idx].numpy().astype(np.int64), domains, names, metadata=metadata)
        manifest["sizes"][ours] = int(len(idx))
    return splits, manifest


def class_names(vision: dict, clip: dict) -> list[str]:
    """Class names for CLIP's zero-shot prompts: from params, or iWildCam's ``categories.csv``."""
    name = vision["dataset"]
    given = (clip.get("classnames") or {}).get(name)
    if given:
        return list(given)
    if name == "iwildcam":
        import pandas as pd

        path = Path(vision["wilds_root"]) / DATASETS[name]["dir"] / "categories.csv"
        if not path.is_file():
            raise RTDError(f"{path} is missing: it ships with WILDS iWildCam and names the classes for the prompts")
        table = pd.read_csv(path)
        return [str(n) for n in table.sort_values("y")["name"]][: DATASETS[name]["num_classes"]]
    raise RTDError(f"`clip.classnames.{name}` must list the class names for the zero-shot prompts")


def official_metrics(vision: dict, logits: torch.Tensor, labels: torch.Tensor, metadata: torch.Tensor) -> dict:
    """WILDS' own ``dataset.eval`` on predicted labels (Camelyon17 ``acc_avg``; iWildCam ``F1-macro_all``)."""
    install_scatter_fallback()
    dataset = load_wilds(vision["dataset"], vision["wilds_root"], False)
    results, _ = dataset.eval(logits.argmax(dim=1), torch.as_tensor(labels), torch.as_tensor(metadata))
    # the aggregates (acc_avg, acc_wg, F1-macro_all, ...); per-group entries ("acc_slide:3") are left out
    return {k: float(v) for k, v in results.items() if ":" not in k}
