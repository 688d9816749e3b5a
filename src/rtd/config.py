"""Load ``params.yaml`` and validate it once, before any work, with one clear message per error."""
from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ParamError

TRACKS = ("vision", "text")   # both run in `dvc repro`; `track` names the one results.md leads with
# report rows; src/rtd/arms.py defines them (a test keeps the two in step)
METHODS = ("ft", "ft_tuned", "ft_newhead", "lpft", "lora", "sdft", "l2sp", "wiseft_ft", "aug_only", "kd_only", "ar_only",
           "rtd", "rtd_ar", "rtd_rho", "wiseft_rtd")
OOD_TRANSFORMS = ("blur", "color", "jpeg", "motion", "noise", "pgd", "stain")
BN_POLICIES = ("frozen", "train")
BACKBONES = ("efficientnet-lite0", "clip")
DATASETS = ("fonts", "camelyon17", "iwildcam")
CLIP_HEADS = ("zeroshot", "probe")
TEACHER_HEADS = ("pretrained", "probe")   # fonts: the `pretrain` model's own head, or a probe fit on ID train
SEED_MAX = 2**32 - 1          # numpy's seed range


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's core-schema scalars, as DVC (ruamel.yaml) reads params.yaml:
    ``1e-5`` is a float (YAML 1.1 reads it as a string; DVC writes it so for ``-S train.lr=1e-5``), and only
    true/false are booleans (``on``, ``yes`` stay strings)."""


Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))
# an int wins over a float when both match: PyYAML tries the resolvers in order, the int one comes first


def load_yaml(text: str) -> Any:
    """Parse YAML as DVC does (YAML 1.2 core schema)."""
    return yaml.load(text, Loader=Yaml12Loader)   # noqa: S506 -- a SafeLoader subclass


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read and fully validate the params file; raise ParamError naming the key and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ParamError(f"{path} not found: run the stage from the repository root")
    try:
        params = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamError(f"{path} is not valid YAML{where}: {problem}") from exc
    validate(params)
    check_unknown_keys(params)
    return params


_READ: set[str] = set()      # every key `validate` reads: the known keys; anything else in params.yaml is a typo
_READ_PREFIX = [""]          # "text." while the text track's merged copy is checked


def _get(params: dict, dotted: str, whole: bool = False) -> Any:
    """The value at ``dotted``; a read of a leaf (or of a mapping read ``whole``) makes the key known."""
    node: Any = params
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            close = difflib.get_close_matches(part, list(node) if isinstance(node, dict) else [], n=1, cutoff=0.75)
            hint = f" (params.yaml has `{'.'.join([*parts[:i], close[0]])}`: misspelt?)" if close else ""
            raise ParamError(f"params.yaml: missing key `{_READ_PREFIX[0]}{dotted}`{hint}")
        node = node[part]
    if whole or not isinstance(node, dict):
        _READ.add(_READ_PREFIX[0] + dotted)
        if _READ_PREFIX[0]:
            _READ.add(dotted)
    return node


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict) or not node:
        return [prefix[:-1]] if prefix else []
    return [leaf for k, v in node.items() for leaf in _leaves(v, f"{prefix}{k}.")]


def check_unknown_keys(params: dict) -> None:
    """Raise ParamError for a key that no check reads (a misspelling would be ignored), naming the closest known key.

    Call after ``validate``, which records the keys it reads."""
    for leaf in _leaves(params):
        parts = leaf.split(".")
        if any(".".join(parts[:i]) in _READ for i in range(1, len(parts) + 1)):
            continue
        known = sorted(_READ)
        close = difflib.get_close_matches(leaf, known, n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else "; no stage reads it (remove it)"
        raise ParamError(f"params.yaml: unknown key `{leaf}`{hint}")


def _number(params: dict, key: str, **bounds) -> float:
    return _check_number(key, _get(params, key), **bounds)


def _check_number(key: str, value: Any, *, lo: float | None = None, hi: float | None = None,
                  lo_open: bool = False, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise ParamError(f"params.yaml: `{key}` must be {kind}, got {value!r}")
    if value != value:  # NaN
        raise ParamError(f"params.yaml: `{key}` is NaN")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ParamError(f"params.yaml: `{key}` must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        raise ParamError(f"params.yaml: `{key}` must be <= {hi}, got {value}")
    return value


def _choice(params: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = _get(params, key)
    if value not in allowed:
        raise ParamError(f"params.yaml: `{key}` = {value!r} is unknown; choose one of {', '.join(allowed)}")
    return value


def _range(params: dict, key: str, *, lo: float, hi: float | None = None) -> None:
    value = _get(params, key)
    if not (isinstance(value, list) and len(value) == 2):
        raise ParamError(f"params.yaml: `{key}` must be a [low, high] pair, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo or (hi is not None and v > hi):
            raise ParamError(f"params.yaml: `{key}` values must lie in [{lo}, {hi if hi is not None else 'inf'}], got {value!r}")
    if value[0] > value[1]:
        raise ParamError(f"params.yaml: `{key}` must be [low, high] with low <= high, got {value!r}")


def _name_list(params: dict, key: str, *, allowed: tuple[str, ...] | None = None, allow_empty: bool = False) -> list[str]:
    value = _get(params, key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParamError(f"params.yaml: `{key}` must be a list of names, got {value!r}")
    if not value and not allow_empty:
        raise ParamError(f"params.yaml: `{key}` must not be empty")
    if len(set(value)) != len(value):
        raise ParamError(f"params.yaml: `{key}` lists a name twice: {value!r}")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise ParamError(f"params.yaml: `{key}` has unknown entry {v!r}; choose from {', '.join(allowed)}")
    return value


def _number_list(params: dict, key: str, allow_empty: bool = False, **bounds) -> list:
    """A list of distinct numbers, each within ``bounds`` (as for ``_number``); non-empty unless ``allow_empty``."""
    value = _get(params, key)
    if not isinstance(value, list) or not (value or allow_empty):
        raise ParamError(f"params.yaml: `{key}` must be a non-empty list of numbers, got {value!r}")
    if len(set(value)) != len(value):
        raise ParamError(f"params.yaml: `{key}` lists a value twice: {value!r}")
    for v in value:
        _check_number(f"{key}` entry `{v!r}", v, **bounds)
    return value


def check_schedule(n: int, tp: dict, section: str = "train") -> None:
    """Refuse a batch larger than the training set and a warm-up that does not end before training does.

    ``n`` training examples; ``tp`` the loop's settings (``batch_size``, ``epochs``, ``warmup_steps``), found
    under ``section`` in params.yaml (for the message).
    """
    bsz, warmup, epochs = tp["batch_size"], tp["warmup_steps"], tp["epochs"]
    if bsz > n:
        raise ParamError(f"params.yaml: `{section}.batch_size` = {bsz} is larger than the training set ({n} examples): "
                         f"every epoch would be one smaller batch; set `{section}.batch_size` <= {n}")
    steps = math.ceil(n / bsz)
    if warmup >= epochs * steps:
        raise ParamError(f"params.yaml: `{section}.warmup_steps` = {warmup} is not shorter than training ({epochs} "
                         f"epoch(s) x {steps} step(s) of {bsz} = {epochs * steps} steps): the learning rate would never "
                         f"reach `{section}.lr` nor decay; set `{section}.warmup_steps` < {epochs * steps} "
                         "(a tenth to a fifth of training is usual)")


def validate(params: Any) -> None:
    """Check every key the pipeline reads; the first problem raises ParamError."""
    if not isinstance(params, dict):
        raise ParamError("params.yaml must be a mapping of keys to values")
    _READ.clear()
    track = _choice(params, "track", TRACKS)
    if track not in _name_list(params, "tracks", allowed=TRACKS):
        raise ParamError(f"params.yaml: `track` = {track!r} (the track results.md leads with) is not in `tracks` = "
                         f"{_get(params, 'tracks')!r}: add it there, or choose one of them")
    _name_list(params, "methods", allowed=METHODS)
    _number(params, "num_threads", lo=1, integer=True)
    seeds = _get(params, "seeds")
    if not isinstance(seeds, list) or not seeds:
        raise ParamError(f"params.yaml: `seeds` must be a non-empty list of seeds, e.g. [0, 1, 2]; got {seeds!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= SEED_MAX for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ParamError(f"params.yaml: `seeds` must be distinct integers in [0, 2**32 - 1] (numpy's seed range), "
                         f"got {seeds!r}")
    _number(params, "lambda_kd", lo=0)
    _number(params, "lambda_ar", lo=0)
    _number(params, "temperature", lo=0, lo_open=True)
    if not isinstance(_get(params, "kd_scale_t2"), bool):
        raise ParamError("params.yaml: `kd_scale_t2` must be true or false")
    _number(params, "rho", lo=0, lo_open=True, hi=1)

    _number(params, "sdft.temperature", lo=0, lo_open=True)
    _number(params, "l2sp.alpha", lo=0)

    _number(params, "data.seed", lo=0, hi=SEED_MAX, integer=True)
    _number(params, "data.image_size", lo=16, integer=True)
    _name_list(params, "data.font_dirs")
    _range(params, "data.render.scale", lo=0.05, hi=1.0)
    _number(params, "data.render.shift", lo=0, hi=0.5)
    _number(params, "data.render.rotation", lo=0, hi=180)
    _range(params, "data.render.stroke", lo=0)
    from .data.fonts import DOWNSTREAM_GROUPS, PRETRAIN_GROUPS

    groups = {g: _name_list(params, f"data.{g}") for g in DOWNSTREAM_GROUPS}
    groups.update({f"pretrain.{g}": _name_list(params, f"data.pretrain.{g}") for g in PRETRAIN_GROUPS})
    seen: dict[str, str] = {}
    for group, names in groups.items():
        for name in names:
            if name in seen:
                raise ParamError(f"params.yaml: font family {name!r} is in both `data.{seen[name]}` and `data.{group}`; "
                                 "pretraining, ID and each OOD split must use disjoint families")
            seen[name] = group
    for split in ("train", "id_val", "id_test", "handwriting_val", "handwriting_test", "decorative"):
        _number(params, f"data.renders_per_digit.{split}", lo=1, integer=True)
    for group in (*PRETRAIN_GROUPS, "val"):
        _number(params, f"data.pretrain.renders_per_digit.{group}", lo=1, integer=True)
    _number(params, "data.id_texture.contrast", lo=0, hi=1)
    _range(params, "data.id_texture.cycles", lo=0.01)
    _number(params, "data.shortcut.p", lo=0, hi=1)
    _number(params, "data.shortcut.size", lo=1, integer=True)
    if not isinstance(_get(params, "data.sklearn_digits"), bool):
        raise ParamError("params.yaml: `data.sklearn_digits` must be true or false")

    _number(params, "ood.seed", lo=0, hi=SEED_MAX, integer=True)
    _number(params, "ood.copies_per_image", lo=1, integer=True)
    _name_list(params, "ood.transforms", allowed=OOD_TRANSFORMS)
    _number(params, "ood.blur.kernel_size", lo=3, integer=True)
    if _get(params, "ood.blur.kernel_size") % 2 == 0:
        raise ParamError("params.yaml: `ood.blur.kernel_size` must be odd")
    _range(params, "ood.blur.sigma", lo=0.01)
    for k in ("brightness", "contrast", "saturation"):
        _number(params, f"ood.color.{k}", lo=0)
    _number(params, "ood.color.hue", lo=0, hi=0.5)
    _range(params, "ood.jpeg.quality", lo=1, hi=100)
    _number(params, "ood.motion.kernel_size", lo=3, integer=True)
    if _get(params, "ood.motion.kernel_size") % 2 == 0:
        raise ParamError("params.yaml: `ood.motion.kernel_size` must be odd")
    _number(params, "ood.motion.angle", lo=0, hi=180)
    _number(params, "ood.motion.direction", lo=0, hi=1)
    _number(params, "ood.noise.std", lo=0)
    _number(params, "ood.stain.sigma", lo=0, hi=1)
    _number(params, "ood.stain.bias", lo=0, hi=1)
    _number(params, "ood.pgd.epsilon", lo=0, hi=1)
    _number(params, "ood.pgd.steps", lo=1, integer=True)
    _number(params, "ood.pgd.step_size", lo=0, lo_open=True)
    _number(params, "ood.batch_size", lo=1, integer=True)

    _choice(params, "teacher.backbone", BACKBONES)
    _choice(params, "teacher.head", TEACHER_HEADS)
    _number_list(params, "erosion.candidates", lo=0, hi=1)
    inits = _name_list(params, "erosion.inits", allowed=("teacher", "new_head"))
    if "teacher" not in inits:
        raise ParamError("params.yaml: `erosion.inits` must include teacher (the default is chosen on FT from θ_T)")
    _number_list(params, "erosion.lrs", lo=0, lo_open=True)
    seeds = _get(params, "erosion.seeds")
    if not isinstance(seeds, list) or len(seeds) < 2 or any(isinstance(s, bool) or not isinstance(s, int)
                                                            or not 0 <= s <= SEED_MAX for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ParamError("params.yaml: `erosion.seeds` must be two or more distinct integers in [0, 2**32 - 1], "
                         f"got {seeds!r}")
    alphas = _number_list(params, "erosion.alphas", lo=0, hi=1)
    if 0.0 not in alphas or 1.0 not in alphas:
        raise ParamError("params.yaml: `erosion.alphas` must include 0 and 1 (θ_T and the fine-tuned model)")
    if len(_number_list(params, "erosion.trend_fractions", lo=0, lo_open=True, hi=1)) < 2:
        raise ParamError("params.yaml: `erosion.trend_fractions` needs two or more shares (a trend is a line)")
    _number(params, "erosion.min_drop", lo=0, hi=1)
    _number(params, "erosion.seed", lo=0, hi=SEED_MAX, integer=True)
    _number(params, "pretrain.seed", lo=0, hi=SEED_MAX, integer=True)
    _number(params, "pretrain.epochs", lo=1, integer=True)
    _number(params, "pretrain.lr", lo=0, lo_open=True)
    _number(params, "pretrain.batch_size", lo=1, integer=True)
    _number(params, "pretrain.warmup_steps", lo=0, integer=True)
    dataset = _choice(params, "vision.dataset", DATASETS)
    if not isinstance(_get(params, "vision.wilds_root"), str) or not isinstance(_get(params, "vision.download"), bool):
        raise ParamError("params.yaml: `vision.wilds_root` must be a folder and `vision.download` true or false")
    if (dataset == "fonts") != (_get(params, "teacher.backbone") == "efficientnet-lite0"):
        raise ParamError(f"params.yaml: `vision.dataset` = {dataset!r} needs `teacher.backbone` = "
                         f"{'efficientnet-lite0' if dataset == 'fonts' else 'clip'} (the embedded benchmark runs on "
                         "EfficientNet-Lite0; WILDS on CLIP). Select the paper configuration with its profile: "
                         "see README, Paper configuration")
    for key in ("clip.model", "clip.cache_dir"):
        if not isinstance(_get(params, key), str) or not _get(params, key):
            raise ParamError(f"params.yaml: `{key}` must be a non-empty string")
    if _get(params, "clip.pretrained") is not None and not isinstance(_get(params, "clip.pretrained"), str):
        raise ParamError("params.yaml: `clip.pretrained` must be an open_clip tag, a checkpoint path or null")
    _choice(params, "clip.head", CLIP_HEADS)
    classnames = _get(params, "clip.classnames", whole=True)
    if not isinstance(classnames, dict) or any(k not in DATASETS or not isinstance(v, list) or not v
                                               or not all(isinstance(n, str) for n in v) for k, v in classnames.items()):
        raise ParamError("params.yaml: `clip.classnames` must map a WILDS dataset (camelyon17, iwildcam) to its list of "
                         f"class names for the zero-shot prompts, got {classnames!r}")
    templates = _name_list(params, "clip.templates")
    if not all("{}" in t for t in templates):
        raise ParamError("params.yaml: every `clip.templates` entry must contain {} for the class name")


    _number(params, "eval.ece_bins", lo=1, integer=True)
    _number(params, "eval.batch_size", lo=1, integer=True)
    _track_sections(params)
    if dataset == "fonts":   # the ID training set's size is known before it is rendered
        check_schedule(len(groups["printed"]) * 10 * _get(params, "data.renders_per_digit.train"), _get(params, "train"))
    _validate_text(params)

def _track_sections(params: dict) -> None:
    """The sections each track has its own copy of (``tracks.TEXT_OVERRIDES``), checked the same way."""
    _number_list(params, "wiseft.alphas", lo=0, hi=1)
    for end in (0.0, 1.0):
        if end not in _get(params, "wiseft.alphas"):
            raise ParamError(f"params.yaml: `wiseft.alphas` must include {end:g} (the endpoints θ_T and the fine-tuned model)")
    layer = _get(params, "ar_layer")
    if not isinstance(layer, str) or not layer:
        raise ParamError("params.yaml: `ar_layer` must be `pooled` or a backbone module name such as `_blocks.10`")

    # an empty sweep turns its arm off (no stages in dvc.yaml, no rows in the report)
    _number_list(params, "lambda_ar_sweep", allow_empty=True, lo=0)
    _number_list(params, "rho_sweep", allow_empty=True, lo=0, lo_open=True, hi=1)
    _number_list(params, "ft_lrs", lo=0, lo_open=True)
    if _number(params, "train.lr", lo=0, lo_open=True) not in _get(params, "ft_lrs"):
        raise ParamError(f"params.yaml: `train.lr` = {_get(params, 'train.lr')} must be one of `ft_lrs` = "
                         f"{_get(params, 'ft_lrs')!r} (the `ft` row is FT at train.lr; `ft_tuned` picks among ft_lrs)")
    _number(params, "lora.rank", lo=1, integer=True)
    _number(params, "lora.alpha", lo=0, lo_open=True)
    _number(params, "lora.dropout", lo=0, hi=0.99)
    _number(params, "lora.lr", lo=0, lo_open=True)
    target = _get(params, "lora.target_modules")
    if not isinstance(target, str) or not target:
        raise ParamError("params.yaml: `lora.target_modules` must be a regular expression over module names")
    try:
        re.compile(target)
    except re.error as exc:
        raise ParamError(f"params.yaml: `lora.target_modules` is not a valid regular expression ({exc})") from exc
    _number(params, "teacher.probe_c", lo=0, lo_open=True)
    _number(params, "teacher.probe_max_iter", lo=1, integer=True)
    _number(params, "teacher.batch_size", lo=1, integer=True)

    _number(params, "train.epochs", lo=1, integer=True)
    _number(params, "train.patience", lo=1, integer=True)
    _number(params, "train.batch_size", lo=1, integer=True)
    _number(params, "train.lr", lo=0, lo_open=True)
    _number(params, "train.weight_decay", lo=0)
    _number(params, "train.warmup_steps", lo=0, integer=True)
    _number(params, "train.grad_clip", lo=0)
    _choice(params, "train.bn_policy", BN_POLICIES)
    _number(params, "train.drop_connect", lo=0, hi=0.9)
    _number(params, "train.eval_batch_size", lo=1, integer=True)
    _number(params, "train.checkpoint_every", lo=1, integer=True)
    _choice(params, "train.device", ("cpu", "cuda", "auto"))
    _choice(params, "train.precision", ("fp32", "bf16"))
    if not isinstance(_get(params, "train.fused_optimizer"), bool):
        raise ParamError("params.yaml: `train.fused_optimizer` must be true or false")
    accum = _number(params, "train.grad_accum", lo=1, integer=True)
    if _get(params, "train.batch_size") % accum:
        raise ParamError(f"params.yaml: `train.batch_size` = {_get(params, 'train.batch_size')} must be a multiple of "
                         f"`train.grad_accum` = {accum} (micro-batches of equal size)")

    _number(params, "analysis.seed", lo=0, hi=SEED_MAX, integer=True)
    _number(params, "analysis.n_id", lo=10, integer=True)
    _number(params, "analysis.n_ood", lo=10, integer=True)
    _name_list(params, "analysis.layers")
    perplexity = _number(params, "analysis.tsne_perplexity", lo=1)
    sample = _get(params, "analysis.n_id") + _get(params, "analysis.n_ood")
    if perplexity >= sample:
        raise ParamError(f"params.yaml: `analysis.tsne_perplexity` = {perplexity} must be smaller than the t-SNE sample "
                         f"(analysis.n_id + analysis.n_ood = {sample}); t-SNE perplexities are usually 5-50")


TEXT_TRANSFORMS = ("synonym", "backtranslate", "jargon", "hotflip")


def _validate_text(params: dict) -> None:
    """The language track's section `text`: its data and LLM settings, then its copies of the shared sections."""
    from .text.data import DATASETS
    from .tracks import for_track

    if not isinstance(_get(params, "text"), dict):
        raise ParamError("params.yaml: `text` must be a mapping (the language track's settings)")
    _choice(params, "text.data.dataset", DATASETS)
    _number(params, "text.data.seed", lo=0, hi=SEED_MAX, integer=True)
    _number(params, "text.data.max_len", lo=8, hi=4096, integer=True)
    if not isinstance(_get(params, "text.data.root"), str) or not isinstance(_get(params, "text.data.candidate", whole=True), dict):
        raise ParamError("params.yaml: `text.data.root` must be a folder and `text.data.candidate` a mapping ({} for defaults)")
    for key in ("text.llm.model", "text.llm.cache_dir"):
        if not isinstance(_get(params, key), str) or not _get(params, key):
            raise ParamError(f"params.yaml: `{key}` must be a non-empty string")
    if _get(params, "text.llm.gguf_file") is not None and not isinstance(_get(params, "text.llm.gguf_file"), str):
        raise ParamError("params.yaml: `text.llm.gguf_file` must be a file name or null")
    _choice(params, "text.llm.dtype", ("fp32", "bf16"))
    if not isinstance(_get(params, "text.llm.gradient_checkpointing"), bool):
        raise ParamError("params.yaml: `text.llm.gradient_checkpointing` must be true or false")
    _choice(params, "text.teacher.backbone", ("minilm", "llm"))
    _choice(params, "text.teacher.head", ("probe", "zeroshot"))
    from .text.data import NUISANCES

    _choice(params, "text.data.nuisance", NUISANCES)
    top_k = _number(params, "text.data.zeroshot_top_k", lo=0, integer=True)
    wordnet = _get(params, "text.data.dataset") == "wordnet"
    if top_k and (top_k < 2 or not wordnet):
        raise ParamError(f"params.yaml: `text.data.zeroshot_top_k` = {top_k} keeps the k WordNet supersenses the "
                         "zero-shot teacher handles best: it needs `text.data.dataset: wordnet` and k >= 2 (0: off)")
    if _get(params, "text.teacher.head") == "zeroshot" and not (wordnet and _get(params, "text.teacher.backbone") == "minilm"):
        raise ParamError("params.yaml: `text.teacher.head: zeroshot` builds its prompts from WordNet supersenses with "
                         "the MiniLM sentence encoder: it needs `text.data.dataset: wordnet` and "
                         "`text.teacher.backbone: minilm` (else use `text.teacher.head: probe`)")
    if _get(params, "text.teacher.path") is not None and not isinstance(_get(params, "text.teacher.path"), str):
        raise ParamError("params.yaml: `text.teacher.path` must be a folder (a BERT-style encoder and its tokenizer) or null")
    _number(params, "text.ood.seed", lo=0, hi=SEED_MAX, integer=True)
    _number(params, "text.ood.copies_per_example", lo=1, integer=True)
    _name_list(params, "text.ood.transforms", allowed=TEXT_TRANSFORMS)
    _number(params, "text.ood.synonym.fraction", lo=0, lo_open=True, hi=1)
    _choice(params, "text.ood.backtranslate.engine", ("apertium", "marian"))
    _number(params, "text.ood.jargon.rate", lo=0, lo_open=True, hi=1)
    vocab = _get(params, "text.ood.jargon.vocabulary", whole=True)
    if not vocab or not isinstance(vocab, (list, dict)):
        raise ParamError("params.yaml: `text.ood.jargon.vocabulary` must be a non-empty list of terms or a mapping "
                         "word -> list of jargon synonyms")
    _number(params, "text.ood.hotflip.swaps", lo=1, integer=True)
    _number(params, "text.ood.hotflip.batch_size", lo=1, integer=True)
    _READ_PREFIX[0] = "text."
    try:
        _track_sections(for_track(params, "text"))
    except ParamError as exc:   # name the key as the user writes it: text.<key>
        raise ParamError(str(exc).replace("params.yaml: `text.", "params.yaml: `", 1)
                         .replace("params.yaml: `", "params.yaml: `text.", 1)) from exc
    finally:
        _READ_PREFIX[0] = ""
