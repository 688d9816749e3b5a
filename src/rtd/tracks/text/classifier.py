"""The text classifier: a pretrained transformers encoder (or causal LM) + a linear head on pooled features.

The same interface as the vision ``Classifier`` (``features``, ``forward``, ``forward_with_activation``,
``head``), so the one training loop, the teacher cache, WiSE-FT, LoRA and the analyses run unchanged.
Inputs are token ids (N, L) int64, right-padded with ``pad_id``; the attention mask is ``ids != pad_id``.
Each batch is trimmed to its longest sequence and, for the encoder, cut into runs of similar length (see
``split_by_length``): the same outputs as one padded batch (padding is masked), at a fraction of the cost.
"""
from __future__ import annotations

import torch
from torch import nn

from ...errors import RTDError
from ...models import capture, masked_mean


def _last_token(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    last = mask.long().sum(dim=1).clamp_min(1) - 1
    return hidden[torch.arange(len(hidden), device=hidden.device), last]


CHUNK_COST_TOKENS = 96   # the cost of one more encoder call, in padded tokens (measured on MiniLM, 2 CPU cores)


def split_by_length(lengths: list[int], chunk_cost: int = CHUNK_COST_TOKENS) -> list[tuple[int, int]]:
    """Cut ascending ``lengths`` into contiguous runs [(start, end)) minimising the padded tokens
    sum(run size x longest in run) + ``chunk_cost`` per run (exact dynamic programme, O(n^2))."""
    n = len(lengths)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end):
            cost = best[start] + (end - start) * lengths[end - 1] + chunk_cost
            if cost < best[end]:
                best[end], cut[end] = cost, start
    runs, end = [], n
    while end:
        runs.append((cut[end], end))
        end = cut[end]
    return runs[::-1]


class TextClassifier(nn.Module):
    """``backbone`` (a transformers base model returning ``last_hidden_state``) + a linear head.

    ``pooling``: ``mean`` over the non-pad tokens (sentence encoders such as MiniLM) or ``last``, the
    last non-pad token (causal LMs, as transformers' ``*ForSequenceClassification`` do). ``normalize``: the
    pooled features are L2-normalised (the head's input, ``pooled``), as a cosine zero-shot head needs
    (``text.teacher.head: zeroshot``; CLIP's image features are normalised the same way in ``rtd.tracks.vision.clip``).
    """

    # B_ID and B_OOD in one forward: the length-sorted runs then pack ID and OOD texts together (an RTD epoch at
    # rho = 0.5 took 14 % less time than with two passes, measured side by side; see train._forward)
    split_id_ood = False

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int, pad_id: int, pooling: str = "mean",
                 normalize: bool = False):
        super().__init__()
        if pooling not in ("mean", "last"):
            raise RTDError(f"unknown pooling {pooling!r}; choose mean or last")
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)
        self.pad_id, self.pooling, self.normalize = pad_id, pooling, normalize

    def _trim(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = ids != self.pad_id
        length = max(1, int(mask.sum(dim=1).max()))
        return ids[:, :length], mask[:, :length]

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooled = (masked_mean if self.pooling == "mean" else _last_token)(hidden, mask).float()
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def activation_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """The tokens a layer's activation is averaged over (trimmed like the forward pass): the non-pad ones,
        without a causal LM's first position (BOS: input-independent, with norms ~100x the others)."""
        mask = self._trim(ids)[1]
        if self.pooling == "last":
            mask = mask.clone()
            mask[:, 0] = False
        return mask

    def input_embeddings(self) -> nn.Embedding:
        """The token embedding matrix (what HotFlip differentiates against)."""
        return self.backbone.get_input_embeddings()

    def features_from_embeds(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pooled features from input embeddings (N, L, d) and the attention mask (N, L)."""
        out = self.backbone(inputs_embeds=embeds, attention_mask=mask.long())
        return self._pool(out.last_hidden_state, mask)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """Pooled features. The batch's token embeddings are looked up once, then the length-sorted batch goes
        through the encoder in runs of similar length (``split_by_length``), unless a hook on the backbone
        expects to see the whole batch at once (``capture``, the analyses)."""
        ids, mask = self._trim(ids)
        lengths = mask.sum(dim=1)
        if len(ids) < 2 or self._hooked():
            out = self.backbone(input_ids=ids, attention_mask=mask.long())
            return self._pool(out.last_hidden_state, mask)
        embeds = self.input_embeddings()(ids)
        order = torch.argsort(lengths, stable=True)
        sorted_len = lengths[order].clamp_min(1).tolist()
        parts = []
        for start, end in split_by_length(sorted_len):
            rows, width = order[start:end], sorted_len[end - 1]
            parts.append(self.features_from_embeds(embeds[rows, :width], mask[rows, :width]))
        return torch.cat(parts)[torch.argsort(order)]

    def _hooked(self) -> bool:
        return any(m._forward_hooks or m._forward_pre_hooks for m in self.backbone.modules())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ids))

    def forward_with_activation(self, ids: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, activation at ``layer``): ``pooled`` = the head's input; a backbone module (e.g.
        ``encoder.layer.3`` or ``layers.5``) is mean-pooled over the non-pad tokens to (N, d), so it does not
        depend on how a batch was padded."""
        if layer == "pooled":
            feats = self.features(ids)
            return self.head(feats), feats

        with capture(self.backbone, layer) as store:
            logits = self(ids)
        act = store["out"][0] if isinstance(store["out"], tuple) else store["out"]
        if act.dim() == 3:
            act = masked_mean(act, self.activation_mask(ids))
        return logits, act.float().flatten(1)
