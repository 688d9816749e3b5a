"""Linear CKA's properties and the Clopper–Pearson interval against published values."""
import numpy as np
import pytest
import torch

from rtd.analysis import clopper_pearson, linear_cka
from rtd.metrics import reliability_bins
from rtd.metrics import expected_calibration_error


def _reps(n=60, p=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p)), rng.normal(size=(n, p + 3))


def test_cka_is_one_for_identical_representations():
    x, _ = _reps()
    assert linear_cka(x, x) == pytest.approx(1.0)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    x, y = _reps()
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(x.shape[1], x.shape[1])))
    base = linear_cka(x, y)
    assert 0.0 < base < 1.0
    assert linear_cka(x @ q, y) == pytest.approx(base)
    assert linear_cka(3.7 * x, 0.2 * y) == pytest.approx(base)
    assert linear_cka(x @ q * 5.0, x) == pytest.approx(1.0)


def test_cka_is_not_invariant_to_anisotropic_scaling_and_is_symmetric():
    x, y = _reps()
    scale = np.linspace(0.1, 10, x.shape[1])
    assert linear_cka(x * scale, y) != pytest.approx(linear_cka(x, y))
    assert linear_cka(x, y) == pytest.approx(linear_cka(y, x))


def test_cka_by_hand_on_two_dimensions():
    # x = (a, 0) and y = (a, b) with orthogonal, centred a and b: CKA = |a|^4 / (|a|^2 sqrt(|a|^4 + |b|^4))
    a = np.array([1.0, -1.0, 2.0, -2.0])
    b = np.array([1.0, 1.0, -1.0, -1.0])
    x, y = np.stack([a, 0 * a], 1), np.stack([a, b], 1)
    na, nb = (a ** 2).sum(), (b ** 2).sum()
    assert linear_cka(x, y) == pytest.approx(na ** 2 / (na * np.sqrt(na ** 2 + nb ** 2)))


@pytest.mark.parametrize("k,n,lo,hi", [
    (5, 10, 0.187086, 0.812914),   # the classic exact interval for 5/10
    (0, 10, 0.0, 0.308497),        # one-sided at the boundary: 1 - 0.025^(1/10)
    (10, 10, 0.691503, 1.0),
    (1, 4, 1 - 0.975 ** 0.25, 0.805880),   # lower bound in closed form: 1 - (1 - a/2)^(1/n) for k = 1
    (3, 4, 0.194120, 0.975 ** 0.25),       # and its mirror image for k = n - 1
])
def test_clopper_pearson_known_values(k, n, lo, hi):
    got = clopper_pearson(k, n)
    assert got[0] == pytest.approx(lo, abs=2e-6) and got[1] == pytest.approx(hi, abs=2e-6)


def test_reliability_bins_reproduce_ece():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(200, 10, generator=g) * 3, torch.randint(0, 10, (200,), generator=g)
    bins = reliability_bins(logits, labels, 15)
    assert sum(b["count"] for b in bins) == 200
    ece = sum(b["count"] / 200 * abs(b["acc"] - b["conf"]) for b in bins if b["count"])
    assert ece == pytest.approx(expected_calibration_error(logits, labels, 15))
