"""A zero-shot text teacher: classify by cosine similarity to class-prompt embeddings (issue 18).

As CLIP's zero-shot head (Radford et al. 2021) and its prompt ensembles: each class has several prompts; each
prompt is embedded by the sentence encoder and L2-normalised, the class embedding is the normalised mean of its
prompts' embeddings, and the logits are ``scale · cos(f(x), class embedding)`` with no bias. Nothing is fit on
downstream data except the scale (a temperature; it changes no prediction), chosen on ``id_val`` NLL.

For WordNet supersenses the prompts come offline from WordNet itself: the lexicographer file's description
(lexnames(5WN)), the gloss and lemmas of the supersense's root synset, and a few templates on its name.
The text track's θ_T when ``text.teacher.head: zeroshot`` (the `teacher` stage); with
``text.data.zeroshot_top_k`` the `data` stage keeps the k supersenses on which this head is most accurate on
``id_val`` (``select_classes``: no other split is read).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ...errors import RTDError

# WordNet lexnames(5WN): the description of each lexicographer file
SUPERSENSE_DESCRIPTIONS = {
    "noun.Tops": "unique beginner for nouns", "noun.act": "nouns denoting acts or actions",
    "noun.animal": "nouns denoting animals", "noun.artifact": "nouns denoting man-made objects",
    "noun.attribute": "nouns denoting attributes of people and objects", "noun.body": "nouns denoting body parts",
    "noun.cognition": "nouns denoting cognitive processes and contents",
    "noun.communication": "nouns denoting communicative processes and contents",
    "noun.event": "nouns denoting natural events", "noun.feeling": "nouns denoting feelings and emotions",
    "noun.food": "nouns denoting foods and drinks", "noun.group": "nouns denoting groupings of people or objects",
    "noun.location": "nouns denoting spatial position", "noun.motive": "nouns denoting goals",
    "noun.object": "nouns denoting natural objects (not man-made)", "noun.person": "nouns denoting people",
    "noun.phenomenon": "nouns denoting natural phenomena", "noun.plant": "nouns denoting plants",
    "noun.possession": "nouns denoting possession and transfer of possession",
    "noun.process": "nouns denoting natural processes",
    "noun.quantity": "nouns denoting quantities and units of measure",
    "noun.relation": "nouns denoting relations between people or things or ideas",
    "noun.shape": "nouns denoting two and three dimensional shapes",
    "noun.state": "nouns denoting stable states of affairs",
    "noun.substance": "nouns denoting substances", "noun.time": "nouns denoting time and temporal relations",
    "verb.body": "verbs of grooming, dressing and bodily care",
    "verb.change": "verbs of size, temperature change, intensifying, etc.",
    "verb.cognition": "verbs of thinking, judging, analyzing, doubting",
    "verb.communication": "verbs of telling, asking, ordering, singing",
    "verb.competition": "verbs of fighting, athletic activities", "verb.consumption": "verbs of eating and drinking",
    "verb.contact": "verbs of touching, hitting, tying, digging",
    "verb.creation": "verbs of sewing, baking, painting, performing",
    "verb.emotion": "verbs of feeling", "verb.motion": "verbs of walking, flying, swimming",
    "verb.perception": "verbs of seeing, hearing, feeling", "verb.possession": "verbs of buying, selling, owning",
    "verb.social": "verbs of political and social activities and events",
    "verb.stative": "verbs of being, having, spatial relations",
    "verb.weather": "verbs of raining, snowing, thawing, thundering",
}
# the root word of a supersense where it is not the file's own name (verb files are named by topic)
ROOT_WORDS = {"verb.change": "change", "verb.communication": "communicate", "verb.contact": "touch",
              "verb.motion": "move", "verb.body": "groom", "verb.cognition": "think", "verb.competition": "compete",
              "verb.consumption": "consume", "verb.creation": "create", "verb.emotion": "feel",
              "verb.perception": "perceive", "verb.possession": "own", "verb.social": "socialize",
              "verb.stative": "be", "verb.weather": "rain"}
TEMPLATES = ("a word about {}", "the meaning of {}", "something to do with {}")


def first_sense_offset(word: str, pos: str, root: str = "/usr/share/wordnet") -> str | None:
    """The synset offset of ``word``'s first (most frequent) sense in WordNet's index.<pos>, or None."""
    path = Path(root) / f"index.{pos}"
    if not path.is_file():
        raise RTDError(f"WordNet index {path} is missing: run `make text-data`")
    key = word.replace(" ", "_") + " "
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(key):
                f = line.split()   # lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offsets...
                return f[6 + int(f[3])]
    return None


def supersense_prompts(lexname: str, synsets: Sequence, root: str = "/usr/share/wordnet") -> list[str]:
    """The prompt ensemble of one WordNet supersense: its description, its root synset's lemmas and gloss, and
    the templates on its name. ``synsets``: ``wordnet.read_synsets()`` (to look the root synset up)."""
    if lexname not in SUPERSENSE_DESCRIPTIONS:
        raise RTDError(f"no prompts for supersense {lexname!r}: use a WordNet lexicographer name (e.g. noun.act)")
    kind, stem = lexname.split(".")
    word = ROOT_WORDS.get(lexname, stem)
    offset = first_sense_offset(word, kind, root)
    pos = "n" if kind == "noun" else "v"
    synset = next((s for s in synsets if s.pos == pos and s.offset == offset), None) if offset else None
    gloss = f"{', '.join(synset.words)}: {synset.definition}" if synset else word
    return [SUPERSENSE_DESCRIPTIONS[lexname], gloss, *(t.format(stem) for t in TEMPLATES)]


def class_embeddings(prompt_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """(C, d) unit class embeddings from each class's prompt features (k_c, d): normalise, average, normalise."""
    if not prompt_features or any(p.ndim != 2 or len(p) == 0 for p in prompt_features):
        raise RTDError("every class needs at least one prompt embedding (k_c, d)")
    return torch.stack([F.normalize(F.normalize(p.float(), dim=-1).mean(0), dim=0) for p in prompt_features])


def zeroshot_logits(features: torch.Tensor, class_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale · cos(features, class_emb)``: (N, d) x (C, d) -> (N, C)."""
    return scale * F.normalize(features.float(), dim=-1) @ class_emb.T


def fit_scale(features: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor,
              grid: Sequence[float] = tuple(float(s) for s in range(5, 101, 5))) -> float:
    """The scale in ``grid`` with the lowest mean NLL of ``labels`` (fit on ``id_val``; ties: the smaller)."""
    cos = zeroshot_logits(features, class_emb, 1.0)
    nll = [float(F.cross_entropy(s * cos, labels)) for s in grid]
    return float(grid[min(range(len(grid)), key=lambda i: (nll[i], grid[i]))])


def encode_prompts(prompts: Sequence[Sequence[str]], encode: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """Class embeddings for lists of prompt strings, ``encode`` mapping texts to (n, d) sentence features."""
    return class_embeddings([encode(list(p)) for p in prompts])


def supersense_pool(synsets: Sequence, need: int, margin: int = 20) -> list[str]:
    """The noun and verb supersenses (not ``noun.Tops``) with at least ``need + margin`` synsets that have a usage
    example: those the wordnet candidate can fill its evaluation splits from (``need`` = their sizes per class)."""
    counts: dict[str, int] = {}
    for s in synsets:
        if s.examples:
            counts[s.lexname] = counts.get(s.lexname, 0) + 1
    return [c for c in SUPERSENSE_DESCRIPTIONS if c != "noun.Tops" and counts.get(c, 0) >= need + margin]


def select_classes(val_features: torch.Tensor, val_labels: torch.Tensor, class_emb: torch.Tensor,
                   classes: Sequence[str], k: int) -> tuple[list[str], dict[str, float]]:
    """The ``k`` classes whose zero-shot recall on ``id_val`` is highest (ties: the earlier class), in the order of
    ``classes``, and every class's recall in %. Only ``id_val`` is read: the choice cannot see an OOD split."""
    if not 2 <= k <= len(classes):
        raise RTDError(f"cannot keep {k} of {len(classes)} classes: `text.data.zeroshot_top_k` must be in "
                       f"[2, {len(classes)}]")
    scale = fit_scale(val_features, val_labels, class_emb)
    pred = zeroshot_logits(val_features, class_emb, scale).argmax(1)
    recall = {}
    for i, c in enumerate(classes):
        rows = val_labels == i
        if not bool(rows.any()):
            raise RTDError(f"class {c} has no id_val example: the zero-shot selection needs every class in id_val")
        recall[c] = 100.0 * float((pred[rows] == i).float().mean())
    best = sorted(classes, key=lambda c: -recall[c])[:k]   # a stable sort: ties keep the class order
    return [c for c in classes if c in best], recall


def wordnet_zeroshot_head(classes: Sequence[str], encode: Callable[[list[str]], torch.Tensor],
                          val_features: torch.Tensor, val_labels: torch.Tensor,
                          root: str = "/usr/share/wordnet") -> tuple[torch.Tensor, torch.Tensor, float]:
    """θ_T's head for WordNet supersenses ``classes``: weight = s · class embeddings (prompt ensembles), bias 0,
    the scale s fit on ``id_val`` NLL (``val_features``: the encoder's features of ``id_val``)."""
    from .wordnet import read_synsets

    synsets = read_synsets(root)
    emb = encode_prompts([supersense_prompts(c, synsets, root) for c in classes], encode)
    scale = fit_scale(val_features, val_labels, emb)
    return scale * emb, torch.zeros(len(classes)), scale


def teacher_zeroshot_head(model, params: dict, id_val, batch_size: int, classes: list[str]):
    """The `teacher` stage's zero-shot head on ``classes`` (the data's WordNet supersenses): (weight, bias, scale)."""
    import torch

    from ...models import backbone_spec, predict
    from .candidates import candidate_config
    from .models import load_tokenizer, pad_token_id, tokenize

    data_cfg = params["text"]["data"]
    spec = backbone_spec(params, "text")
    tokenizer = load_tokenizer(spec)
    pad_id = pad_token_id(spec, tokenizer)

    def encode(texts: list[str]) -> torch.Tensor:
        return predict(model, tokenize(texts, tokenizer, data_cfg["max_len"], pad_id), batch_size, layer="pooled")[1]

    val_feats = predict(model, id_val.images, batch_size, layer="pooled")[1]
    root = candidate_config("wordnet", data_cfg.get("candidate") or {})["root"]
    return wordnet_zeroshot_head(classes, encode, val_feats, torch.as_tensor(id_val.labels), root)
