"""Each loss term against values computed by hand."""
import math

import pytest
import torch

from rtd.losses import activation_loss, kd_loss, task_loss


def test_task_loss_is_mean_negative_log_likelihood():
    logits = torch.tensor([[math.log(0.7), math.log(0.2), math.log(0.1)],
                           [math.log(0.25), math.log(0.25), math.log(0.5)]])
    labels = torch.tensor([0, 2])
    expected = -(math.log(0.7) + math.log(0.5)) / 2
    assert task_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_kd_loss_with_temperature_by_hand():
    # teacher logits [2, 0] at T=2 -> q_T = softmax([1, 0]); student logits [0, 0] -> q_S = [0.5, 0.5]
    teacher = torch.tensor([[2.0, 0.0]])
    student = torch.tensor([[0.0, 0.0]])
    qt1 = math.e / (math.e + 1)
    qt2 = 1 / (math.e + 1)
    expected = qt1 * math.log(qt1 / 0.5) + qt2 * math.log(qt2 / 0.5)
    assert kd_loss(student, teacher, temperature=2.0).item() == pytest.approx(expected, rel=1e-6)
    assert kd_loss(student, teacher, temperature=2.0, scale_t2=True).item() == pytest.approx(4 * expected, rel=1e-6)


def test_kd_loss_direction_is_teacher_to_student():
    # KL(q_T || q_S) != KL(q_S || q_T): check the teacher's distribution weights the log-ratio
    teacher = torch.tensor([[math.log(0.9), math.log(0.1)]])
    student = torch.tensor([[math.log(0.5), math.log(0.5)]])
    forward = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    reverse = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    got = kd_loss(student, teacher, temperature=1.0).item()
    assert got == pytest.approx(forward, rel=1e-6)
    assert got != pytest.approx(reverse, rel=1e-3)


def test_kd_loss_averages_over_examples_and_is_zero_for_equal_logits():
    z = torch.randn(5, 10)
    assert kd_loss(z, z, temperature=4.0).item() == pytest.approx(0.0, abs=1e-7)
    a = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    one = kd_loss(b[:1], a[:1], 2.0).item()
    assert kd_loss(b, a, 2.0).item() == pytest.approx(one / 2, rel=1e-6)


def test_activation_loss_normalised_by_batch_and_dimension():
    student = torch.zeros(2, 3)
    teacher = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    # sum of squares = 2 * (1 + 4 + 9) = 28; / (|B| = 2 * d = 3)
    assert activation_loss(student, teacher).item() == pytest.approx(28 / 6, rel=1e-6)


def test_activation_loss_on_feature_maps_uses_all_elements():
    student = torch.zeros(2, 4, 2, 2)
    teacher = torch.full((2, 4, 2, 2), 3.0)
    assert activation_loss(student, teacher).item() == pytest.approx(9.0, rel=1e-6)
    with pytest.raises(ValueError):
        activation_loss(torch.zeros(2, 3), torch.zeros(2, 4))
