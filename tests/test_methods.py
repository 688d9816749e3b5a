"""Methods' objectives by hand, and the one training loop on a tiny benchmark."""
import math

import numpy as np
import pytest
import torch

from rtd.tracks.vision.fonts import build_font_benchmark
from rtd.data.splits import to_float
from rtd.errors import ParamError, RTDError
from rtd.arms import TRAINED, build_method, cache_parts, parse_variant
from rtd.losses import activation_loss, kd_loss
from rtd.methods import L2SP, LPFT, RTD, SDFT, AugOnly, FineTune, StepOutputs
from rtd.models import build_classifier, predict
from rtd.tracks.vision.ood import generate_ood
from rtd.train import OODSet, TeacherCache, train
from tests.helpers import tiny_params


def _outputs():
    g = torch.Generator().manual_seed(0)
    return StepOutputs(
        logits_id=torch.randn(4, 10, generator=g), labels=torch.tensor([1, 2, 3, 4]),
        logits_ood=torch.randn(2, 10, generator=g), labels_ood=torch.tensor([1, 2]), act=torch.randn(6, 8, generator=g),
        teacher_logits_ood=torch.randn(2, 10, generator=g), teacher_act=torch.randn(6, 8, generator=g),
        teacher_logits_id=torch.randn(4, 10, generator=g))


def test_ft_objective_is_cross_entropy_only():
    out = _outputs()
    terms = FineTune().objective(out, None)
    assert set(terms) == {"task", "total"}
    assert terms["total"].item() == pytest.approx(torch.nn.functional.cross_entropy(out.logits_id, out.labels).item())


def test_rtd_objective_combines_the_three_terms():
    out = _outputs()
    terms = RTD(lambda_kd=0.5, lambda_ar=3.0, temperature=4.0, kd_scale_t2=False).objective(out, None)
    kd = kd_loss(out.logits_ood, out.teacher_logits_ood, 4.0)
    ar = activation_loss(out.act, out.teacher_act)
    assert terms["kd"].item() == pytest.approx(kd.item())
    assert terms["ar"].item() == pytest.approx(ar.item())
    assert terms["total"].item() == pytest.approx(terms["task"].item() + 0.5 * kd.item() + 3.0 * ar.item(), rel=1e-6)
    zero = RTD(0.0, 0.0, 4.0, False).objective(out, None)
    assert set(zero) == {"task", "total"}  # a term with weight 0 is not computed
    assert zero["total"].item() == pytest.approx(FineTune().objective(out, None)["total"].item())


def test_kd_only_and_ar_only_drop_one_term():
    out = _outputs()
    kd_only = build_method("kd_only", {**tiny_params(), "lambda_kd": 0.5, "temperature": 4.0}).objective(out, None)
    assert set(kd_only) == {"task", "kd", "total"}
    assert kd_only["total"].item() == pytest.approx(kd_only["task"].item() + 0.5 * kd_loss(out.logits_ood, out.teacher_logits_ood, 4.0).item())
    ar_only = build_method("ar_only", {**tiny_params(), "lambda_ar": 3.0}).objective(out, None)
    assert set(ar_only) == {"task", "ar", "total"}
    assert ar_only["total"].item() == pytest.approx(ar_only["task"].item() + 3.0 * activation_loss(out.act, out.teacher_act).item())


def test_the_swept_lambda_kd_and_temperature_reach_the_objective():
    """Arms `rtd_kd` and `rtd_t`: RTD with one of the proposal's grids swept, the other weights from params."""
    out = _outputs()
    params = {**tiny_params(), "lambda_kd": 1.0, "lambda_ar": 3.0, "temperature": 2.0}
    kd = build_method("rtd_kd", params, 0.1).objective(out, None)
    assert kd["total"].item() == pytest.approx(kd["task"].item() + 0.1 * kd_loss(out.logits_ood, out.teacher_logits_ood, 2.0).item()
                                               + 3.0 * activation_loss(out.act, out.teacher_act).item(), rel=1e-6)
    assert parse_variant("rtd_t", "8.0", {**params, "temperature_sweep": [4.0, 8.0]}) == 8.0   # `--temperature 8.0`
    t = build_method("rtd_t", params, 8.0).objective(out, None)
    assert t["kd"].item() == pytest.approx(kd_loss(out.logits_ood, out.teacher_logits_ood, 8.0).item())
    assert t["total"].item() == pytest.approx(t["task"].item() + t["kd"].item() + 3.0 * t["ar"].item(), rel=1e-6)


def test_aug_only_is_cross_entropy_over_id_and_ood_with_true_labels():
    # 2 ID examples + 1 OOD copy, logits chosen so each CE is a known log: CE = log(1 + 9 e^{-m}) for margin m
    logits_id = torch.zeros(2, 10)
    logits_id[0, 1] = math.log(9.0)          # p(label) = 9 / 18 = 1/2
    logits_ood = torch.zeros(1, 10)          # uniform: p = 1/10
    out = StepOutputs(logits_id=logits_id, labels=torch.tensor([1, 4]), logits_ood=logits_ood, labels_ood=torch.tensor([1]))
    terms = AugOnly().objective(out, None)
    expected = (math.log(2.0) + math.log(10.0) + math.log(10.0)) / 3   # mean over B_ID ∪ B_OOD
    assert terms["total"].item() == pytest.approx(expected, rel=1e-6)


def test_sdft_targets_soft_where_teacher_right_one_hot_elsewhere():
    # teacher right on example 0 (label 0), wrong on example 1 (label 1, teacher says 0)
    t = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    y = torch.tensor([0, 1])
    T = 2.0
    p0 = math.e / (math.e + 2.0)  # softmax([1, 0, 0])[0]
    from rtd.losses import sdft_targets

    targets = sdft_targets(t, y, T)
    assert targets[0].tolist() == pytest.approx([p0, (1 - p0) / 2, (1 - p0) / 2])
    assert targets[1].tolist() == [0.0, 1.0, 0.0]
    # the objective: T^2 x cross-entropy of the student at the same T (uniform logits: log p = -log 3 everywhere)
    out = StepOutputs(logits_id=torch.zeros(2, 3), labels=y, teacher_logits_id=t)
    assert SDFT(T).objective(out, None)["total"].item() == pytest.approx(T**2 * math.log(3.0), rel=1e-6)
    # student logits / T = [0, log(2)/2, 0] on x_1: p(1 | x_1) = sqrt(2) / (2 + sqrt(2)), CE = log(1 + sqrt(2))
    student = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(2.0), 0.0]])
    out = StepOutputs(logits_id=student, labels=y, teacher_logits_id=t)
    expected = T**2 * (math.log(3.0) + math.log(1.0 + math.sqrt(2.0))) / 2
    assert SDFT(T).objective(out, None)["total"].item() == pytest.approx(expected, rel=1e-6)


def test_sdft_at_t1_is_satisfied_by_the_teacher_where_it_is_right():
    """At T = 1 a student equal to the teacher minimises the loss on the examples the teacher gets right: the
    target there is its own distribution (no pull towards a softened, under-confident one)."""
    t = torch.tensor([[3.0, 0.5, -1.0]], requires_grad=False)
    student = t.clone().requires_grad_(True)
    out = StepOutputs(logits_id=student, labels=torch.tensor([0]), teacher_logits_id=t)
    SDFT(1.0).objective(out, None)["total"].backward()
    assert student.grad.abs().max().item() < 1e-7


def test_l2sp_penalises_the_distance_to_the_starting_weights():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(0.5)
    method = L2SP(alpha=0.1)
    method.prepare(model)
    with torch.no_grad():
        model.weight.add_(torch.tensor([[3.0, 0.0]]))   # distance^2 = 9 + 16 = 25
        model.bias.add_(-4.0)
    out = StepOutputs(logits_id=torch.zeros(1, 10), labels=torch.tensor([0]))
    terms = method.objective(out, model)
    assert terms["l2sp"].item() == pytest.approx(25.0)
    assert terms["total"].item() == pytest.approx(math.log(10.0) + 0.05 * 25.0, rel=1e-6)
    assert not L2SP.decoupled_weight_decay  # the penalty replaces weight decay, as in the paper


def test_build_method_matches_the_arm_registry():
    params = tiny_params()
    for name, arm in TRAINED.items():
        variant = (params[arm.sweep] or [1.0e-3])[0] if arm.sweep else None   # an empty sweep: any value builds it
        method = build_method(name, params, variant)
        assert method.name == name
        assert method.init == arm.init, name
        assert method.uses_ood == arm.ood, name
        assert set(cache_parts(arm, method)) <= set(arm.cache), name   # dvc.yaml declares what the run reads
    assert isinstance(build_method("lpft", params), LPFT) and build_method("ft", params, 3e-4).lr == 3e-4
    kd_only, ar_only = build_method("kd_only", params), build_method("ar_only_rho", params, 0.5)
    assert (kd_only.lambda_kd, kd_only.lambda_ar) == (params["lambda_kd"], 0.0) and not kd_only.uses_activation
    assert (ar_only.lambda_kd, ar_only.lambda_ar, ar_only.temperature) == (0.0, params["lambda_ar"], 1.0)
    assert build_method("l2sp_alpha", params, 100.0).alpha == 100.0 and build_method("l2sp", params).alpha == params["l2sp"]["alpha"]
    lora = build_method("lora_rank", params, 32)   # the rank is a count (peft's `r`); the rest is LoRA's own row's
    assert (lora.rank, type(lora.rank), lora.alpha, lora.lr) == (32, int, params["lora"]["alpha"], params["lora"]["lr"])
    # an arm reads (dvc.yaml's params) every key its method's arguments read, except its swept and fixed ones
    from rtd.arms import METHOD_ARGS

    for name, arm in TRAINED.items():
        needed = {key for a, key in METHOD_ARGS[arm.method or name].items() if a != arm.variant and a not in dict(arm.fixed)}
        assert all(any(key == r or key.startswith(f"{r}.") for r in arm.reads) for key in needed), name
    with pytest.raises(ParamError, match="unknown training arm 'nope'"):
        build_method("nope", params)
    with pytest.raises(ParamError, match="needs --lr"):
        build_method("ft", params)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    params = tiny_params()
    splits, _ = build_font_benchmark(params["data"])
    teacher = build_classifier("efficientnet-lite0")
    teacher.eval()
    ood = generate_ood(splits["train"].images, splits["train"].labels, {**params["ood"], "transforms": ["blur", "noise"]}, None)
    id_logits, id_act = predict(teacher, splits["train"].images, 64, layer="pooled")
    ood_logits, ood_act = predict(teacher, ood["images"], 64, layer="pooled")
    cache = TeacherCache(id_logits=id_logits, id_act=id_act, ood_logits=ood_logits, ood_act=ood_act)
    return params, splits, teacher, OODSet(ood["images"], ood["source"]), cache


def _train(tiny, method, lr, **kw):
    params, splits, teacher, ood, cache = tiny
    model = build_classifier("efficientnet-lite0")
    model.load_state_dict(teacher.state_dict())
    tp = {**params["train"], "epochs": 1, "lr": lr, "warmup_steps": 0, "grad_clip": 0.0}
    return train(model, method, splits["train"], splits["id_val"], splits["ood_val"], tp, seed=0, rho=0.5,
                 ood=ood, cache=cache, progress=False, **kw)


def test_student_equal_to_teacher_has_zero_kd_and_ar(tiny):
    # with a vanishing learning rate the student stays the teacher: both distillation terms must be ~0,
    # which holds only if B_OOD's cached teacher outputs are aligned with the student's inputs
    result = _train(tiny, RTD(1.0, 1.0, 2.0, False), lr=1e-12)
    row = result.log[0]
    assert row["kd"] == pytest.approx(0.0, abs=1e-6)
    assert row["ar"] == pytest.approx(0.0, abs=1e-8)
    assert math.isfinite(row["task"]) and result.flops_per_step > 0


def test_rtd_training_moves_the_student(tiny):
    result = _train(tiny, RTD(1.0, 1.0, 2.0, False), lr=1e-3)
    row = result.log[0]
    assert row["kd"] > 0 and row["ar"] > 0
    assert result.trainable_params == sum(p.numel() for p in result.model.parameters())


def test_non_finite_loss_stops_with_step_and_terms(tiny):
    class Broken(FineTune):
        def objective(self, out, model):
            nan = torch.tensor(float("nan"), requires_grad=True)
            return {"task": nan, "total": nan}

    with pytest.raises(RTDError, match=r"non-finite loss at epoch 1, step 0: task=nan, total=nan; hyperparameters: lr="):
        _train(tiny, Broken(), lr=1e-4)


def test_stale_teacher_cache_is_detected(tiny):
    params, splits, teacher, ood, cache = tiny
    bad = TeacherCache(id_logits=cache.id_logits + 1.0, id_act=cache.id_act, ood_logits=cache.ood_logits, ood_act=cache.ood_act)
    with pytest.raises(RTDError, match="dvc repro cache"):
        _train((params, splits, teacher, ood, bad), RTD(1.0, 1.0, 2.0, False), lr=1e-4)


def test_ood_copies_stay_in_range_and_keep_their_source(tiny):
    params, splits, _, ood, _ = tiny
    assert ood.images.dtype == np.uint8 and ood.images.shape[1] == 3
    assert np.array_equal(ood.source, np.arange(len(splits["train"])))
    # blur/noise copies differ from their sources but stay close
    src = to_float(splits["train"].images[ood.source]).numpy()
    diff = np.abs(ood.images.astype(np.float32) / 255 - src).mean()
    assert 0.0 < diff < 0.2


def test_pgd_stays_in_the_linf_ball_and_raises_the_loss(tiny):
    from rtd.tracks.vision.ood import pgd_linf

    _, splits, teacher, _, _ = tiny
    x = to_float(splits["train"].images[:16])
    y = torch.as_tensor(splits["train"].labels[:16])
    torch.manual_seed(0)
    adv = pgd_linf(teacher, x, y, epsilon=4 / 255, steps=3, step_size=2 / 255)
    assert (adv - x).abs().max().item() <= 4 / 255 + 1e-6
    assert adv.min().item() >= 0.0 and adv.max().item() <= 1.0
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy
        assert ce(teacher(adv), y).item() > ce(teacher(x), y).item()


class _CachedCopies:
    """An online B_OOD that hands back D_OOD's copy of each image it gets (one copy per image, row = source index)."""

    def __init__(self, ood: OODSet, train_images: np.ndarray, teacher):
        self.copies, self.train, self.teacher, self.calls = ood.images, train_images, teacher, 0

    def __call__(self, x, y, generator, student):
        torch.randint(1, (len(x),), generator=generator)   # as many draws as the cached mode's copy pick
        self.calls += 1
        pixels = (x * 255).round().to(torch.uint8).numpy()   # the training images x holds, found by their pixels
        rows = [int(np.flatnonzero((self.train == img).all(axis=(1, 2, 3)))[0]) for img in pixels]
        return to_float(self.copies[rows])


def test_online_b_ood_of_the_cached_copies_trains_as_the_cached_mode(tiny):
    """The online path (B_OOD handed in each step, θ_T's outputs on it computed then) gives the cached mode's run
    when it is handed D_OOD's copies: same loss terms each epoch, same weights."""
    params, splits, teacher, ood, cache = tiny
    stub = _CachedCopies(ood, splits["train"].images, teacher)
    cached = _train(tiny, RTD(1.0, 1.0, 2.0, False), lr=1e-3)
    id_only = TeacherCache(id_logits=cache.id_logits, id_act=cache.id_act)
    online = _train((params, splits, teacher, None, id_only), RTD(1.0, 1.0, 2.0, False), lr=1e-3, online_ood=stub)
    assert stub.calls == math.ceil(len(splits["train"]) / params["train"]["batch_size"])   # once per step
    for a, b in zip(cached.log, online.log):
        for term in ("task", "kd", "ar", "total", "id_val_acc"):
            assert b[term] == pytest.approx(a[term], rel=1e-4, abs=1e-7), term
    # the weights agree up to float noise (θ_T's outputs computed in other batches differ in the last bits; Adam turns a
    # near-zero gradient's noise into a full step): far closer to each other than either is to θ_T
    flat = lambda m: torch.cat([p.flatten() for p in m.parameters()])  # noqa: E731
    apart = (flat(cached.model) - flat(online.model)).norm()
    moved = (flat(cached.model) - flat(teacher)).norm()
    assert apart < 0.05 * moved


def test_online_b_ood_runs_the_teacher_only_for_a_method_that_reads_its_outputs(tiny):
    params, splits, teacher, ood, cache = tiny
    calls = []
    hook = teacher.head.register_forward_hook(lambda *_: calls.append(1))   # every forward path ends in the head
    try:
        _train((params, splits, teacher, None, None), AugOnly(), lr=1e-3, online_ood=_CachedCopies(ood, splits["train"].images, teacher))
        assert not calls   # aug only: labels, no teacher
        _train((params, splits, teacher, None, TeacherCache(id_logits=cache.id_logits)), RTD(1.0, 0.0, 2.0, False), lr=1e-3,
               online_ood=_CachedCopies(ood, splits["train"].images, teacher))
        assert calls   # KD only: θ_T's logits on each step's B_OOD
    finally:
        hook.remove()


def test_online_ood_draws_fresh_copies_of_its_classes_only(tiny):
    from rtd.tracks.vision.ood import OnlineOOD

    params, splits, teacher, _, _ = tiny
    x = to_float(splits["train"].images[:12])
    y = torch.as_tensor(splits["train"].labels[:12])
    eps = params["ood"]["pgd"]["epsilon"]
    pgd = OnlineOOD(params["ood"], ["pgd"], teacher, "teacher")
    g = torch.Generator().manual_seed(0)
    adv = pgd(x, y, g, None)
    assert 0 < (adv - x).abs().max().item() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    noise = OnlineOOD(params["ood"], ["noise"], teacher, "teacher")
    first, second = noise(x, y, g, None), noise(x, y, g, None)
    assert not torch.equal(first, second)   # fresh at every step
    assert (first - x).abs().max().item() > 2 * eps   # noise, not the PGD ball
    torch.manual_seed(1)
    again = noise(x, y, torch.Generator().manual_seed(5), None)
    torch.manual_seed(1)
    assert torch.equal(again, noise(x, y, torch.Generator().manual_seed(5), None))   # seeded: reproducible
    # against the student: the attacked model is the one handed in, and its own loss rises
    student = build_classifier("efficientnet-lite0")
    student.load_state_dict(teacher.state_dict())
    with torch.no_grad():
        student.head.weight.mul_(-1.0)
    on_student = OnlineOOD(params["ood"], ["pgd"], teacher, "student")(x, y, g, student)
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(student(on_student), y) > ce(student(x), y)
        assert (on_student - x).abs().max().item() <= eps + 1e-6


def test_online_ood_is_refused_where_a_track_has_none():
    from rtd.tracks import get_track

    with pytest.raises(ParamError, match="the text track has no online B_OOD"):
        get_track("text").online_ood({}, None, ["all"])


def test_init_head_keeps_resets_or_loads_the_probe(tmp_path):
    """FT keeps θ_T's head; FT with a new head gets a fresh one; LP-FT gets the probe the teacher stage fit."""
    import numpy as np

    from rtd.io import save_arrays
    from rtd.models import Classifier, init_head

    def teacher():
        torch.manual_seed(0)
        return Classifier(torch.nn.Flatten(), 4, 3)

    kept = teacher()
    init_head(kept, "teacher")
    assert torch.equal(kept.head.weight, teacher().head.weight)
    fresh = teacher()
    init_head(fresh, "new_head")
    assert not torch.equal(fresh.head.weight, teacher().head.weight)
    w, b = np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1.0, -1.0, 0.5], dtype=np.float32)
    save_arrays(tmp_path / "probe.safetensors", {"weight": w, "bias": b})
    probed = teacher()
    init_head(probed, "probe", tmp_path / "probe.safetensors")
    assert probed.head.weight.tolist() == w.tolist() and probed.head.bias.tolist() == b.tolist()
    x = torch.ones(1, 4)
    assert probed(x).tolist() == [[6.0 + 1.0, 22.0 - 1.0, 38.0 + 0.5]]

