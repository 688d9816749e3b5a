"""Vision transform families for D_OOD: kornia corruptions and low-budget l_inf PGD against the teacher.

Each family is a registry entry built from its params section (its severity). D_OOD is generated once
from the ID training images; it is never an evaluation set, and no evaluation domain is made from it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Transform = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (images in [0,1], labels) -> images


def _kornia(aug: nn.Module) -> Transform:
    def apply(x: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return aug(x).clamp(0.0, 1.0)  # GaussianNoise does not clamp; nothing may leave [0, 1]
    return apply


def build_transforms(ood: dict, teacher: nn.Module | None) -> dict[str, Transform]:
    """The enabled transform families, each configured by its severity params."""
    import kornia.augmentation as K

    makers: dict[str, Callable[[dict], Transform]] = {
        "blur": lambda p: _kornia(K.RandomGaussianBlur((p["kernel_size"],) * 2, tuple(p["sigma"]), p=1.0)),
        "color": lambda p: _kornia(K.ColorJitter(p["brightness"], p["contrast"], p["saturation"], p["hue"], p=1.0)),
        "jpeg": lambda p: _kornia(K.RandomJPEG(jpeg_quality=tuple(float(q) for q in p["quality"]), p=1.0)),
        "motion": lambda p: _kornia(K.RandomMotionBlur(p["kernel_size"], p["angle"], p["direction"], p=1.0)),
        "noise": lambda p: _kornia(K.RandomGaussianNoise(mean=0.0, std=p["std"], p=1.0)),
        "pgd": lambda p: _pgd_transform(teacher, p["epsilon"], p["steps"], p["step_size"]),
        "stain": lambda p: lambda x, _y: stain_jitter(x, p["sigma"], p["bias"]),
    }
    return {name: makers[name](ood[name]) for name in ood["transforms"]}


# Ruifrok & Johnston's H&E-DAB stain vectors (rows: haematoxylin, eosin, DAB), as in scikit-image
_RGB_FROM_HED = torch.nn.functional.normalize(torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11],
                                                            [0.27, 0.57, 0.78]]), dim=1)


def stain_jitter(x: torch.Tensor, sigma: float, bias: float) -> torch.Tensor:
    """H&E stain augmentation (Tellez et al. 2018): per image and stain, hed <- hed * U(1±sigma) + U(±bias).

    Works in optical density (-log intensity), where stains mix linearly; models scanner and staining
    differences between hospitals. With sigma = bias = 0 it returns its input.
    """
    rgb_from_hed = _RGB_FROM_HED.to(x.device)
    od = -torch.log(x.clamp_min(1e-6))
    hed = torch.einsum("nchw,cd->ndhw", od, torch.linalg.inv(rgb_from_hed))
    n = x.shape[0]
    alpha = (1.0 + (torch.rand(n, 3, 1, 1) * 2 - 1) * sigma).to(x.device)   # drawn on the CPU: same on any device
    beta = ((torch.rand(n, 3, 1, 1) * 2 - 1) * bias).to(x.device)
    od = torch.einsum("ndhw,dc->nchw", hed * alpha + beta, rgb_from_hed)
    return torch.exp(-od).clamp(0.0, 1.0).contiguous(memory_format=torch.channels_last)


def pgd_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int,
             step_size: float) -> torch.Tensor:
    """Untargeted l_inf PGD (Madry et al. 2018) with a random start, on [0, 1] images; model in eval mode."""
    model.eval()
    delta = (torch.rand_like(x) * 2 - 1) * epsilon
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            x_adv = x_adv + step_size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon).clamp(0, 1)
    return x_adv.detach()


def _pgd_transform(teacher: nn.Module | None, epsilon: float, steps: int, step_size: float) -> Transform:
    if teacher is None:
        raise ValueError("the pgd transform needs the teacher model")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return lambda x, y: pgd_linf(teacher, x, y, epsilon, steps, step_size)


class OnlineOOD:
    """B_OOD drawn fresh at every training step, as the proposal's pseudocode has it (arm `rtd_online`).

    Each image gets a class drawn uniformly from ``classes`` (with the step's generator) and a fresh random transform
    of that class (kornia draws from torch's global generator, which checkpoints save). PGD attacks the frozen
    teacher, as D_OOD's copies do, or the student being trained (``pgd_target``). Images stay float: D_OOD's copies
    are stored as uint8, these are not rounded.
    """

    def __init__(self, ood: dict, classes: list[str], teacher: nn.Module, pgd_target: str):
        self.classes, self.teacher, self.pgd_target, self.pgd = list(classes), teacher, pgd_target, ood["pgd"]
        self.teacher.eval()
        self.transforms = build_transforms({**ood, "transforms": self.classes}, teacher)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, student: nn.Module) -> torch.Tensor:
        family = torch.randint(len(self.classes), (len(x),), generator=generator)
        out = torch.empty_like(x)
        for f, name in enumerate(self.classes):
            sel = torch.nonzero(family == f).flatten().to(x.device)
            if len(sel) == 0:
                continue
            if name == "pgd" and self.pgd_target == "student":   # pgd_linf leaves the student in eval mode
                out[sel] = pgd_linf(student, x[sel], y[sel], self.pgd["epsilon"], self.pgd["steps"], self.pgd["step_size"])
            else:
                out[sel] = self.transforms[name](x[sel], y[sel])
        return out


def generate_ood(images: np.ndarray, labels: np.ndarray, ood: dict, teacher: nn.Module | None) -> dict[str, np.ndarray]:
    """D_OOD: ``copies_per_image`` transformed copies of every ID training image.

    Each copy gets one family drawn uniformly from ``ood['transforms']``. Returns uint8 images
    (M, 3, H, W), the source index of each copy into the ID training set, its family index and label.
    """
    from tqdm import tqdm

    from ...data.splits import to_float, to_uint8

    names = list(ood["transforms"])
    transforms = build_transforms(ood, teacher)
    rng = np.random.default_rng(ood["seed"])
    torch.manual_seed(ood["seed"])
    device = next(teacher.parameters()).device if teacher is not None else torch.device("cpu")
    source = np.repeat(np.arange(len(labels)), ood["copies_per_image"])
    family = rng.integers(len(names), size=len(source))
    out = np.zeros((len(source), 3, *images.shape[2:]), dtype=np.uint8)
    batch = ood["batch_size"]
    jobs = [(f, np.flatnonzero(family == f)) for f in range(len(names))]
    with tqdm(total=len(source), desc="D_OOD", unit="img") as bar:
        for f, idx in jobs:
            for start in range(0, len(idx), batch):
                chunk = idx[start:start + batch]
                x = to_float(images[source[chunk]]).to(device)
                y = torch.as_tensor(labels[source[chunk]]).to(device)
                out[chunk] = to_uint8(transforms[names[f]](x, y))
                bar.update(len(chunk))
    return {"images": out, "source": source.astype(np.int64), "transform": family.astype(np.int64),
            "labels": labels[source].astype(np.int64)}
