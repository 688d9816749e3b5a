"""The embedded vision benchmark: disjoint font families, deterministic renders, clear errors."""
import numpy as np
import pytest

from rtd.config import validate
from rtd.tracks.vision.fonts import build_font_benchmark, discover_families, resolve_families
from rtd.errors import ParamError, RTDError
from tests.helpers import default_params, tiny_params


def test_default_params_use_disjoint_families_for_pretraining_id_and_each_ood_split():
    from rtd.tracks.vision.fonts import family_groups

    groups = {g: set(v) for g, v in family_groups(default_params()["data"]).items()}
    assert {"pretrain.printed", "pretrain.handwriting", "pretrain.decorative"} <= set(groups)
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not groups[a] & groups[b], f"{a} and {b} share {groups[a] & groups[b]}"


def test_a_family_in_two_splits_is_rejected():
    p = default_params()
    p["data"]["handwriting_test"].append(p["data"]["handwriting_val"][0])
    with pytest.raises(ParamError, match="both"):
        validate(p)


@pytest.mark.parametrize("downstream", ["printed", "handwriting_test", "decorative"])
def test_a_pretraining_family_in_a_downstream_split_is_rejected(downstream):
    p = default_params()
    group = "decorative" if downstream == "decorative" else "printed"
    p["data"]["pretrain"][group].append(p["data"][downstream][0])
    with pytest.raises(ParamError, match=f"both `data.{downstream}` and `data.pretrain.{group}`"):
        validate(p)


def test_shortcut_marks_the_label_position_with_probability_p():
    from rtd.tracks.vision.fonts import add_shortcut

    images = np.full((200, 1, 32, 32), 255, dtype=np.uint8)
    labels = np.arange(200) % 10
    marked, cls = add_shortcut(images, labels, 1.0, 2, seed=0)
    assert np.array_equal(cls, labels)
    step = (32 - 2) // 10
    for i in (0, 7, 13):   # a dark 2 x 2 square at the label's slot on the top edge, nothing else changed
        left = 1 + step * labels[i]
        assert (marked[i, 0, 1:3, left:left + 2] == 0).all()
        assert (marked[i] == 0).sum() == 4
    again, _ = add_shortcut(images, labels, 1.0, 2, seed=0)
    assert np.array_equal(again, marked)
    _, cls = add_shortcut(images, labels, 0.5, 2, seed=1)
    assert 0.5 < (cls == labels).mean() < 0.65   # p + (1 - p) / 10 = 0.55 in expectation
    untouched, cls = add_shortcut(images, labels, 0.0, 2, seed=0)
    assert np.array_equal(untouched, images) and (cls == -1).all()
    with pytest.raises(RTDError, match="too large"):
        add_shortcut(images, labels, 1.0, 4, seed=0)


@pytest.fixture(scope="module")
def tiny_benchmark():
    return build_font_benchmark(tiny_params()["data"])


def test_tiny_benchmark_splits_counts_and_manifest(tiny_benchmark):
    splits, manifest = tiny_benchmark
    assert set(splits) == {"train", "train_clean", "id_val", "id_test", "ood_val", "ood_test", "pretrain", "pretrain_val"}
    assert len(splits["train"]) == 3 * 10 * 2
    assert splits["pretrain"].domain_names == ["printed", "handwriting", "decorative"]
    assert len(splits["pretrain"]) == 10 * (2 * 1 + 1 * 2 + 1 * 1)
    assert splits["ood_test"].domain_names == ["handwriting", "decorative", "sklearn_digits"]
    assert manifest["splits"]["ood_test"]["domains"]["sklearn_digits"]["n"] == 1797
    for name, split in splits.items():
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (1, 32, 32)
        assert manifest["splits"][name]["n"] == len(split)
        assert set(np.unique(split.labels)) == set(range(10))
    # the manifest's family groups are disjoint (no family in two of ID / ood_val / ood_test)
    fam = {g: set(v) for g, v in manifest["families"].items()}
    id_f, val_f = fam["printed"], fam["handwriting_val"]
    test_f = fam["handwriting_test"] | fam["decorative"]
    pre_f = fam["pretrain.printed"] | fam["pretrain.handwriting"] | fam["pretrain.decorative"]
    assert not (id_f & val_f) and not (id_f & test_f) and not (val_f & test_f)
    assert not pre_f & (id_f | val_f | test_f)


def test_the_shortcut_is_in_train_only(tiny_benchmark):
    """Train carries the mark (train_clean is the same renders without it); id_val, id_test and OOD never do."""
    from rtd.tracks.vision.fonts import add_shortcut

    splits, manifest = tiny_benchmark
    sc = tiny_params()["data"]["shortcut"]
    train, clean = splits["train"], splits["train_clean"]
    assert np.array_equal(train.labels, clean.labels) and not np.array_equal(train.images, clean.images)
    remarked, cls = add_shortcut(clean.images, clean.labels, sc["p"], sc["size"], tiny_params()["data"]["seed"])
    assert np.array_equal(remarked, train.images)   # the erosion study redraws exactly this from train_clean
    assert manifest["shortcut"]["marked"] == len(train) and manifest["shortcut"]["split"] == "train"
    step = (32 - 2) // 10

    def marked_share(split) -> float:
        """The share of images with a fully dark size x size square in one of the 10 slots of the top edge."""
        x = split.images[:, 0, 1:1 + sc["size"]]
        hit = np.zeros(len(split), dtype=bool)
        for c in range(10):
            hit |= (x[:, :, 1 + step * c:1 + step * c + sc["size"]] == 0).all(axis=(1, 2))
        return float(hit.mean())

    assert marked_share(train) == 1.0
    for name in ("train_clean", "id_val", "id_test", "ood_val", "ood_test"):   # ink may touch a slot by chance
        assert marked_share(splits[name]) < 0.1, name


def test_renders_are_deterministic_and_id_splits_are_independent(tiny_benchmark):
    splits, _ = tiny_benchmark
    again, _ = build_font_benchmark(tiny_params()["data"])
    for name in splits:
        assert np.array_equal(splits[name].images, again[name].images)
    # id_val / id_test are fresh renders, not copies of training images
    train = {img.tobytes() for img in splits["train"].images}
    assert not any(img.tobytes() in train for img in splits["id_test"].images)


def test_unknown_font_family_names_the_fix():
    families = discover_families(default_params()["data"]["font_dirs"])
    with pytest.raises(RTDError, match="unknown font family 'No Such Font'.*apt-get install"):
        resolve_families(["No Such Font"], families, "printed")


def test_one_transform_class_makes_d_ood_of_that_class_only(tiny_benchmark):
    """The per-transform ablation (`dvc exp run -S 'ood.transforms=[blur]'`) gets D_OOD of one class."""
    from rtd.tracks.vision.ood import generate_ood

    splits, _ = tiny_benchmark
    train = splits["train"]
    ood = generate_ood(train.images, train.labels, {**tiny_params()["ood"], "transforms": ["blur"]}, None)
    assert set(ood["transform"].tolist()) == {0}
    assert np.array_equal(ood["source"], np.arange(len(train)))
    assert np.array_equal(ood["labels"], train.labels)
    both = generate_ood(train.images, train.labels, {**tiny_params()["ood"], "transforms": ["blur", "noise"]}, None)
    assert set(both["transform"].tolist()) == {0, 1}


def test_texture_is_the_documented_grating():
    """add_texture: pixel v -> round(v * (1 - c * (1 + sin(f (x cos t + y sin t) + phase)) / 2)), per image."""
    from rtd.tracks.vision.fonts import add_texture

    white = np.full((3, 1, 16, 16), 255, dtype=np.uint8)
    out = add_texture(white, 0.5, (2.0, 2.0), seed=7)
    rng = np.random.default_rng(7)
    theta, phase = rng.uniform(0, np.pi, 3), rng.uniform(0, 2 * np.pi, 3)
    f = 2 * np.pi * 2.0 / 16
    for i, (y, x) in enumerate([(0, 0), (5, 3), (15, 9)]):   # one pixel of each image, by hand
        g = 0.5 + 0.5 * np.sin(f * (x * np.cos(theta[i]) + y * np.sin(theta[i])) + phase[i])
        assert out[i, 0, y, x] == round(255 * (1 - 0.5 * g))
    assert out.min() >= round(255 * 0.5) and out.max() <= 255 and out.min() < 140 and out.max() > 245
    assert np.array_equal(out, add_texture(white, 0.5, (2.0, 2.0), seed=7))   # pure
    assert not np.array_equal(out, add_texture(white, 0.5, (2.0, 2.0), seed=8))
    black = np.zeros_like(white)
    assert np.array_equal(add_texture(black, 0.5, (1.0, 3.0), seed=0), black)   # ink stays ink
    assert np.array_equal(add_texture(white, 0.0, (1.0, 3.0), seed=0), white)   # contrast 0: off


def test_the_texture_is_on_the_id_splits_only(tiny_benchmark):
    """train, train_clean, id_val and id_test carry the grating; OOD and pretraining renders keep a white background."""
    splits, manifest = tiny_benchmark
    assert manifest["id_texture"]["splits"] == ["train", "train_clean", "id_val", "id_test"]
    assert tiny_params()["data"]["id_texture"]["contrast"] > 0

    def white_share(split) -> float:
        return float((split.images == 255).mean())

    for name in ("train", "train_clean", "id_val", "id_test"):
        assert white_share(splits[name]) < 0.05, name
    for name in ("ood_val", "ood_test", "pretrain", "pretrain_val"):
        assert white_share(splits[name]) > 0.3, name
