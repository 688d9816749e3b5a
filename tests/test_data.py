"""The embedded vision benchmark: disjoint font families, deterministic renders, clear errors."""
import numpy as np
import pytest

from rtd.config import validate
from rtd.data.fonts import build_font_benchmark, discover_families, resolve_families
from rtd.errors import ParamError, RTDError
from tests.helpers import default_params, tiny_params


def test_default_params_use_disjoint_families_for_id_and_each_ood_split():
    data = default_params()["data"]
    groups = {g: set(data[g]) for g in ("printed", "handwriting_val", "handwriting_test", "decorative")}
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not groups[a] & groups[b], f"{a} and {b} share {groups[a] & groups[b]}"


def test_a_family_in_two_splits_is_rejected():
    p = default_params()
    p["data"]["handwriting_test"].append(p["data"]["handwriting_val"][0])
    with pytest.raises(ParamError, match="both"):
        validate(p)


@pytest.fixture(scope="module")
def tiny_benchmark():
    return build_font_benchmark(tiny_params()["data"])


def test_tiny_benchmark_splits_counts_and_manifest(tiny_benchmark):
    splits, manifest = tiny_benchmark
    assert set(splits) == {"train", "id_val", "id_test", "ood_val", "ood_test"}
    assert len(splits["train"]) == 3 * 10 * 2
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
    assert not (id_f & val_f) and not (id_f & test_f) and not (val_f & test_f)


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
    from rtd.ood.vision import generate_ood

    splits, _ = tiny_benchmark
    train = splits["train"]
    ood = generate_ood(train.images, train.labels, {**tiny_params()["ood"], "transforms": ["blur"]}, None)
    assert set(ood["transform"].tolist()) == {0}
    assert np.array_equal(ood["source"], np.arange(len(train)))
    assert np.array_equal(ood["labels"], train.labels)
    both = generate_ood(train.images, train.labels, {**tiny_params()["ood"], "transforms": ["blur", "noise"]}, None)
    assert set(both["transform"].tolist()) == {0, 1}
