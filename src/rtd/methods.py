"""Methods = an objective + an initialisation + which parameters train (as WILDS' algorithms).

Every method runs through the one loop in ``train.py``. A method sees a ``StepOutputs`` (the
student's outputs on B_ID and, if it asks for one, on B_OOD, plus the cached teacher outputs for
the same examples) and returns its loss terms; ``total`` is what is minimised.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import METHODS
from .errors import ParamError
from .losses import activation_loss, kd_loss, task_loss


@dataclass
class StepOutputs:
    logits_id: torch.Tensor                 # student logits on B_ID
    labels: torch.Tensor                    # labels of B_ID
    logits_ood: torch.Tensor | None = None  # student logits on B_OOD
    act: torch.Tensor | None = None         # student activations at layer l on B_ID ∪ B_OOD
    teacher_logits_ood: torch.Tensor | None = None
    teacher_act: torch.Tensor | None = None


class Method:
    """Base: standard fine-tuning semantics; subclasses override what differs."""

    name = "base"
    init = "pretrained"      # "pretrained": pretrained backbone + new random head; "teacher": theta_T
    uses_ood = False         # draws B_OOD from D_OOD each step (|B_OOD| = ceil(rho |B_ID|))
    uses_activation = False  # needs the activation at `ar_layer`

    def set_trainable(self, model: nn.Module) -> None:
        for p in model.parameters():
            p.requires_grad_(True)

    def objective(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class FineTune(Method):
    """FT: cross-entropy on ID data, from the pretrained backbone with a newly initialised head."""

    name = "ft"

    def objective(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        task = task_loss(out.logits_id, out.labels)
        return {"task": task, "total": task}


class RTD(Method):
    """Robustness Teacher Distillation (proposal, Sec. 2.2 and 2.4), starting from theta_T.

    L = CE(z_S(x), y) on B_ID + lambda_KD KL(q_T || q_S) at temperature T on B_OOD
        + lambda_AR 1/(|B| d_l) sum ||a_T - a_S||^2 over B = B_ID ∪ B_OOD.
    Teacher outputs come from the cache stage; the teacher is never run during training.
    """

    name = "rtd"
    init = "teacher"
    uses_ood = True
    uses_activation = True

    def __init__(self, lambda_kd: float, lambda_ar: float, temperature: float, kd_scale_t2: bool):
        self.lambda_kd, self.lambda_ar = lambda_kd, lambda_ar
        self.temperature, self.kd_scale_t2 = temperature, kd_scale_t2

    def objective(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        task = task_loss(out.logits_id, out.labels)
        kd = kd_loss(out.logits_ood, out.teacher_logits_ood, self.temperature, self.kd_scale_t2)
        ar = activation_loss(out.act, out.teacher_act)
        return {"task": task, "kd": kd, "ar": ar, "total": task + self.lambda_kd * kd + self.lambda_ar * ar}


def build_method(name: str, params: dict) -> Method:
    """The method named ``name``, configured from the params it reads."""
    if name == "ft":
        return FineTune()
    if name == "rtd":
        return RTD(params["lambda_kd"], params["lambda_ar"], params["temperature"], params["kd_scale_t2"])
    raise ParamError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
