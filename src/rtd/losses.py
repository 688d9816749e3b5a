"""The terms of the RTD objective, as pure tensor functions (proposal, Sec. 2.2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_task: mean cross-entropy of the student on labelled ID examples."""
    return F.cross_entropy(logits, labels)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
            scale_t2: bool = False) -> torch.Tensor:
    """L_KD = mean_j KL(q_T(.|x_j) || q_S(.|x_j)), q = softmax(z / T).

    The proposal's equation has no T^2 factor, so by default none is applied. Hinton et al. (2015)
    multiply by T^2 to keep the gradient's scale independent of T (the softened gradients shrink as
    1/T^2); ``scale_t2=True`` does that, which makes lambda_KD comparable across temperatures.
    """
    log_q_s = F.log_softmax(student_logits / temperature, dim=1)
    log_q_t = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_q_t.exp() * (log_q_t - log_q_s)).sum(dim=1).mean()
    return kl * temperature**2 if scale_t2 else kl


def activation_loss(student_act: torch.Tensor, teacher_act: torch.Tensor) -> torch.Tensor:
    """L_AR = 1/(|B| d_l) sum_x ||a_T(x) - a_S(x)||^2: the mean squared difference per element."""
    if student_act.shape != teacher_act.shape:
        raise ValueError(f"activation shapes differ: student {tuple(student_act.shape)}, teacher {tuple(teacher_act.shape)}")
    batch, dim = student_act.shape[0], student_act[0].numel()
    return (student_act - teacher_act).pow(2).sum() / (batch * dim)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c p_c log softmax(z)_c for target distributions ``targets``."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def sdft_targets(teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """SDFT targets for classification: softmax(z_T / T) where the teacher's top-1 equals the label,
    the one-hot label elsewhere (the classifier analogue of keeping only correct self-rewrites)."""
    soft = F.softmax(teacher_logits / temperature, dim=1)
    hard = F.one_hot(labels, teacher_logits.shape[1]).to(soft.dtype)
    keep = (teacher_logits.argmax(dim=1) == labels).unsqueeze(1)
    return torch.where(keep, soft, hard)


def l2sp_penalty(params: list[torch.Tensor], reference: list[torch.Tensor]) -> torch.Tensor:
    """||theta - theta_0||^2 summed over every parameter tensor (L2-SP, Li et al. 2018)."""
    if len(params) != len(reference):
        raise ValueError(f"{len(params)} parameters but {len(reference)} reference tensors")
    return sum(((p - r) ** 2).sum() for p, r in zip(params, reference))
