"""Methods = an objective + an initialisation + which parameters train (as WILDS' algorithms).

Every method runs through the one loop in ``train.py``. A method sees a ``StepOutputs`` (the
student's outputs on B_ID and, if it asks for one, on B_OOD, plus the cached teacher outputs for
the same examples) and returns its loss terms; ``total`` is what is minimised. Terms a method does
not use are absent (logged as NaN).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .losses import activation_loss, kd_loss, l2sp_penalty, sdft_targets, soft_cross_entropy, task_loss


@dataclass
class StepOutputs:
    logits_id: torch.Tensor                  # student logits on B_ID
    labels: torch.Tensor                     # labels of B_ID
    logits_ood: torch.Tensor | None = None   # student logits on B_OOD
    labels_ood: torch.Tensor | None = None   # labels of the ID images B_OOD was made from
    act: torch.Tensor | None = None          # student activations at layer l on B_ID ∪ B_OOD
    teacher_logits_id: torch.Tensor | None = None
    teacher_logits_ood: torch.Tensor | None = None
    teacher_act: torch.Tensor | None = None


class Method:
    """Base: standard fine-tuning semantics; subclasses override what differs."""

    name = "base"
    # where training starts (``models.init_head``): "teacher" = theta_T, head included (the WiSE-FT protocol: both ends of
    # the weight interpolation lie in one basin); "new_head" = theta_T's backbone + a new random head;
    # "probe" = theta_T's backbone + the linear probe fit on its ID train features (LP-FT)
    init = "teacher"
    uses_ood = False         # draws B_OOD = OOD-style copies of ceil(rho |B_ID|) images of B_ID
    uses_activation = False  # needs the student's activation at `ar_layer`
    teacher_outputs: tuple[str, ...] = ()   # cached teacher outputs read: id_logits, ood_logits, id_act, ood_act
    decoupled_weight_decay = True           # AdamW's weight decay towards 0 (off where the objective regularises)
    lr: float | None = None                 # learning rate; None: `train.lr`

    def prepare(self, model: nn.Module) -> nn.Module:
        """Called once before training: set which parameters train (all, by default)."""
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def finalize(self, model: nn.Module) -> nn.Module:
        """Called after training: the plain Classifier to save and evaluate."""
        return model

    def objective(self, out: StepOutputs, model: nn.Module) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class FineTune(Method):
    """FT: cross-entropy on ID data, from theta_T including its head (Wortsman et al. 2022 initialise the
    final layer with the zero-shot head; here θ_T's head is the pretraining head, never fit on ID data)."""

    name = "ft"

    def objective(self, out: StepOutputs, model: nn.Module) -> dict[str, torch.Tensor]:
        task = task_loss(out.logits_id, out.labels)
        return {"task": task, "total": task}


class FineTuneNewHead(FineTune):
    """FT from theta_T's backbone with a newly initialised head: the usual "new head" fine-tuning reference."""

    name = "ft_newhead"
    init = "new_head"


class LPFT(FineTune):
    """LP-FT (Kumar et al. 2022): a linear probe on theta_T's frozen ID train features first (the teacher
    stage fits it), then full fine-tuning from theta_T's backbone with that head.

    Where theta_T's head is itself the ID probe (the text track), LP-FT and FT start from the same weights.
    """

    name = "lpft"
    init = "probe"


class SDFT(Method):
    """SDFT (Yang et al. 2024) adapted to classification (see ``losses.sdft_targets``).

    SDFT has the model rewrite its own targets and keeps a rewrite when it agrees with the gold label.
    For a classifier the "rewrite" is the pre-fine-tuning model's (theta_T's) distribution, used where its
    top-1 equals the label, and the one-hot label elsewhere; targets come from the teacher cache, computed
    once. The temperature T acts on both sides, target softmax(z_T / T) and student softmax(z_S / T) (with
    the T^2 factor of Hinton et al., so the gradient's scale does not depend on T); T = 1 (the default)
    is the paper's plain SFT on the rewritten targets. A temperature on the target alone would train the
    student towards T-softened probabilities at T = 1: an under-confident model.
    """

    name = "sdft"
    teacher_outputs = ("id_logits",)

    def __init__(self, temperature: float):
        self.temperature = temperature

    def objective(self, out: StepOutputs, model: nn.Module) -> dict[str, torch.Tensor]:
        t = self.temperature
        targets = sdft_targets(out.teacher_logits_id, out.labels, t)
        task = soft_cross_entropy(out.logits_id / t, targets) * t**2
        return {"task": task, "total": task}


class L2SP(FineTune):
    """L2-SP (Li et al. 2018): CE + alpha/2 ||theta - theta_0||^2 with theta_0 = theta_T.

    Initialised from theta_T like RTD, so it controls for "stay close to the teacher in weight space"
    against RTD's "stay close in function space". The paper's penalty replaces weight decay, so
    AdamW's decoupled decay is off; theta_0 includes the probe head (the paper's separate L2 on a new
    head does not apply: the head is not new here).
    """

    name = "l2sp"
    decoupled_weight_decay = False

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.reference: list[torch.Tensor] = []

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        self.reference = [p.detach().clone() for p in model.parameters()]
        return model

    def objective(self, out: StepOutputs, model: nn.Module) -> dict[str, torch.Tensor]:
        task = task_loss(out.logits_id, out.labels)
        penalty = l2sp_penalty(list(model.parameters()), self.reference)
        return {"task": task, "l2sp": penalty, "total": task + 0.5 * self.alpha * penalty}


class AugOnly(Method):
    """Control: RTD's OOD-style inputs as plain augmented data with their true labels, no teacher.

    Same initialisation (theta_T), same B_OOD (copies of ceil(rho |B_ID|) images of B_ID):
    L = CE over B_ID ∪ B_OOD. Without it, a gain of RTD cannot be credited to the teacher.
    """

    name = "aug_only"
    uses_ood = True

    def objective(self, out: StepOutputs, model: nn.Module) -> dict[str, torch.Tensor]:
        task = task_loss(torch.cat([out.logits_id, out.logits_ood]), torch.cat([out.labels, out.labels_ood]))
        return {"task": task, "total": task}


class RTD(Method):
    """Robustness Teacher Distillation (proposal, Sec. 2.2 and 2.4), starting from theta_T.

    L = CE(z_S(x), y) on B_ID + lambda_KD KL(q_T || q_S) at temperature T on B_OOD
        + lambda_AR 1/(|B| d_l) sum ||a_T - a_S||^2 over B = B_ID ∪ B_OOD.
    Teacher outputs come from the cache stage; the teacher is never run during training.
    A term whose weight is 0 is not computed (``kd_only``: lambda_AR = 0; ``ar_only``: lambda_KD = 0).
    """

    name = "rtd"
    uses_ood = True

    def __init__(self, lambda_kd: float, lambda_ar: float, temperature: float, kd_scale_t2: bool, name: str = "rtd"):
        self.lambda_kd, self.lambda_ar = lambda_kd, lambda_ar
        self.temperature, self.kd_scale_t2 = temperature, kd_scale_t2
        self.name = name
        self.uses_activation = lambda_ar > 0
        self.teacher_outputs = ("id_logits",) + (("ood_logits",) if lambda_kd > 0 else ()) + \
            (("id_act", "ood_act") if lambda_ar > 0 else ())

    def objective(self, out: StepOutputs, model: nn.Module) -> dict[str, torch.Tensor]:
        task = task_loss(out.logits_id, out.labels)
        terms = {"task": task}
        total = task
        if self.lambda_kd > 0:
            terms["kd"] = kd_loss(out.logits_ood, out.teacher_logits_ood, self.temperature, self.kd_scale_t2)
            total = total + self.lambda_kd * terms["kd"]
        if self.lambda_ar > 0:
            terms["ar"] = activation_loss(out.act, out.teacher_act)
            total = total + self.lambda_ar * terms["ar"]
        terms["total"] = total
        return terms

