"""The language track's glue: token-id shards, the text classifier's interface, the paper datasets' OOD files."""
import numpy as np
import pytest
import torch

from rtd.data.splits import to_float
from rtd.errors import RTDError
from rtd.tracks.text.models import TextClassifier, split_by_length


@pytest.fixture(scope="module")
def tiny_text_model():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=32)
    return TextClassifier(BertModel(config, add_pooling_layer=False), 16, 3, pad_id=0).eval()


def test_token_ids_pass_through_to_float_unchanged():
    ids = np.array([[101, 7, 102, 0]], dtype=np.int64)
    out = to_float(ids)
    assert out.dtype == torch.int64 and torch.equal(out, torch.as_tensor(ids))
    assert to_float(np.zeros((1, 3, 4, 4), dtype=np.uint8)).dtype == torch.float32   # images unchanged


def test_padding_does_not_change_logits_or_activations(tiny_text_model):
    short = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    long = torch.cat([short, torch.zeros(2, 6, dtype=torch.long)], dim=1)
    with torch.no_grad():
        for layer in ("pooled", "encoder.layer.0"):
            a, b = tiny_text_model.forward_with_activation(short, layer), tiny_text_model.forward_with_activation(long, layer)
            assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)
            assert a[1].shape == (2, 16)


def test_layer_activations_of_a_text_model_are_mean_pooled(tiny_text_model):
    from rtd.analysis import layer_activations

    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0], [10, 11, 12, 13]], dtype=np.int64)
    one = layer_activations(tiny_text_model, ids, ["encoder.layer.1", "pooled"], batch_size=1)
    all_ = layer_activations(tiny_text_model, ids, ["encoder.layer.1", "pooled"], batch_size=3)
    for name in one:
        assert one[name].shape == (3, 16) and np.allclose(one[name], all_[name], atol=1e-5)
    with torch.no_grad():   # the hooked last layer, mean-pooled, is the pooled feature for mean pooling
        assert np.allclose(one["encoder.layer.1"], one["pooled"], atol=1e-5)


def _partition_cost(runs, lengths, chunk_cost):
    return sum((end - start) * lengths[end - 1] + chunk_cost for start, end in runs)


@pytest.mark.parametrize("lengths, chunk_cost", [([3, 3, 4, 9, 9, 30], 10), ([2, 2, 2, 2], 96), ([1, 5, 6, 20, 40, 41, 48], 20),
                                                 ([7], 5)])
def test_split_by_length_is_the_cheapest_contiguous_partition(lengths, chunk_cost):
    import itertools

    n = len(lengths)
    runs = split_by_length(lengths, chunk_cost)
    assert runs[0][0] == 0 and runs[-1][1] == n and all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
    brute = min(_partition_cost(list(zip((0, *cuts), (*cuts, n))), lengths, chunk_cost)
                for k in range(n) for cuts in itertools.combinations(range(1, n), k))
    assert _partition_cost(runs, lengths, chunk_cost) == brute
    assert split_by_length([3, 3, 4, 9, 9, 30], 10) == [(0, 3), (3, 5), (5, 6)]   # by hand: 12+10, 18+10, 30+10


def test_length_sorted_runs_give_the_padded_batch_outputs_and_gradients(tiny_text_model):
    ids = torch.zeros(16, 30, dtype=torch.long)
    ids[0] = torch.arange(30) % 45 + 5
    ids[1:, :2] = torch.tensor([[5 + i, 6] for i in range(15)])
    assert len(split_by_length((ids != 0).sum(1).sort().values.tolist())) > 1   # the batch really is cut
    model = tiny_text_model   # eval mode: no dropout, whose random masks depend on the batch shape

    def logits_and_grads(hooked: bool):
        handle = model.backbone.embeddings.register_forward_hook(lambda *_: None) if hooked else None
        model.zero_grad()
        logits = model(ids)
        (logits * torch.arange(3.0)).sum().backward()
        if handle:
            handle.remove()
        return logits.detach(), [p.grad.clone() for p in model.parameters()]

    try:
        (a, ga), (b, gb) = logits_and_grads(False), logits_and_grads(True)   # runs vs the whole padded batch
    finally:
        model.zero_grad()
    assert torch.allclose(a, b, atol=1e-5)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(ga, gb))


def test_text_rtd_runs_id_and_ood_as_one_batch_with_the_same_logits(tiny_text_model):
    from rtd.models import Classifier
    from rtd.train import _forward, two_passes_allowed

    frozen, train_bn = {"bn_policy": "frozen"}, {"bn_policy": "train"}
    assert not two_passes_allowed(tiny_text_model, frozen)   # length-sorted runs pack ID and OOD texts together
    vision = Classifier(torch.nn.Flatten(), 12)
    assert two_passes_allowed(vision, frozen) and not two_passes_allowed(vision, train_bn)

    ids = torch.zeros(12, 20, dtype=torch.long)   # 8 ID + 4 OOD texts of different lengths
    for i in range(12):
        ids[i, : 2 + (7 * i) % 17] = 5 + (torch.arange(2 + (7 * i) % 17) * (i + 3)) % 40
    calls, features = [], tiny_text_model.features
    tiny_text_model.features = lambda x: calls.append(len(x)) or features(x)   # count the encoder passes
    try:
        with torch.no_grad():
            one, act_one = _forward(tiny_text_model, ids, 8, "pooled", split=False)
            two, act_two = _forward(tiny_text_model, ids, 8, "pooled", split=True)
    finally:
        del tiny_text_model.features
    assert calls == [12, 8, 4]
    assert torch.allclose(one, two, atol=1e-5) and torch.allclose(act_one, act_two, atol=1e-5)


def test_causal_activation_mask_drops_the_first_position(tiny_text_model):
    ids = torch.tensor([[5, 6, 0], [8, 9, 10]])
    assert tiny_text_model.activation_mask(ids).tolist() == [[True, True, False], [True, True, True]]
    tiny_text_model.pooling = "last"
    try:
        assert tiny_text_model.activation_mask(ids).tolist() == [[False, True, False], [False, True, True]]
    finally:
        tiny_text_model.pooling = "mean"


@pytest.mark.parametrize("name, ext", [("mednli", "jsonl"), ("pubmedqa", "json")])
def test_paper_datasets_need_their_ood_files(tmp_path, name, ext):
    from rtd.tracks.text.data import _paper_ood

    with pytest.raises(RTDError, match=f"{name} has no OOD split of its own: put .*ood_val.{ext}"):
        _paper_ood(name, str(tmp_path))


def test_mednli_ood_files_are_read_like_the_id_files(tmp_path):
    import json

    from rtd.tracks.text.data import _paper_ood

    rows = [{"sentence1": "BP 120/80.", "sentence2": "Normotensive.", "gold_label": "entailment", "pairID": "a"},
            {"sentence1": "No fever.", "sentence2": "Febrile.", "gold_label": "contradiction", "pairID": "b"}]
    (tmp_path / "mednli").mkdir()
    for split in ("ood_val", "ood_test"):
        (tmp_path / "mednli" / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ood = _paper_ood("mednli", str(tmp_path))
    assert ood["ood_test"].labels.tolist() == [0, 2] and "Normotensive." in ood["ood_test"].texts[0]


def test_text_shards_from_a_candidate(tmp_path):
    from tests.helpers import tiny_params, write_tiny_bert

    from rtd.tracks.text.data import build_text_splits

    write_tiny_bert(tmp_path / "bert")
    cfg = tiny_params()["text"]["data"]
    splits, texts, manifest = build_text_splits(cfg, {"name": "minilm", "num_classes": 8, "path": str(tmp_path / "bert")})
    assert set(splits) == {"train", "id_val", "id_test", "ood_val", "ood_test"}
    for name, split in splits.items():
        assert split.images.dtype == np.int64 and split.images.shape == (len(texts[name]), cfg["max_len"])
        assert (split.images[:, 0] == 101).all()   # [CLS]
        assert manifest["splits"][name]["n"] == len(split)
    assert splits["ood_test"].domain_names == ["example"] and (splits["ood_test"].domains == 0).all()
    assert splits["id_test"].domain_names == ["definition"]
