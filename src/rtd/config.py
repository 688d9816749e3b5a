"""Load ``params.yaml`` and validate it once, before any work, with one clear message per error."""
from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Callable

import yaml

from .errors import ParamError

BN_POLICIES = ("frozen", "train")
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
    from .tracks import available_tracks

    _READ.clear()
    track = _choice(params, "track", available_tracks())
    if track not in _name_list(params, "tracks", allowed=available_tracks()):
        raise ParamError(f"params.yaml: `track` = {track!r} (the track results.md leads with) is not in `tracks` = "
                         f"{_get(params, 'tracks')!r}: add it there, or choose one of them")
    from .arms import REPORT_ROWS

    _name_list(params, "methods", allowed=REPORT_ROWS)
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

    _number(params, "eval.ece_bins", lo=1, integer=True)
    _number(params, "eval.batch_size", lo=1, integer=True)
    from .tracks import available_tracks, get_track

    for name in available_tracks():   # each track checks its own keys (rtd/tracks/<name>/__init__.py)
        get_track(name).validate(params)


def track_sections(params: dict, section: str | None = None, extra: Callable[[dict], None] | None = None) -> None:
    """Check a track's copy of the per-track sections (``params`` as ``tracks.for_track`` gives them), then ``extra``
    (the track's own checks of that copy); errors name the keys as written in params.yaml, under ``section`` (None:
    the top level)."""
    def check() -> None:
        _track_sections(params)
        if extra is not None:
            extra(params)

    if section is None:
        check()
        return
    _READ_PREFIX[0] = f"{section}."
    try:
        check()
    except ParamError as exc:   # name the key as the user writes it: <section>.<key>
        raise ParamError(str(exc).replace(f"params.yaml: `{section}.", "params.yaml: `", 1)
                         .replace("params.yaml: `", f"params.yaml: `{section}.", 1)) from exc
    finally:
        _READ_PREFIX[0] = ""


def erosion_section(params: dict) -> None:
    """The erosion study's settings (`erosion`, or a track's copy) but its candidates, which are the track's to check."""
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


def _tuning_grids(params: dict) -> None:
    """The rest of each tuning grid (arms `lora_lr`, `lora_rank`, `l2sp_alpha`, `rtd_lr`; [] switches one off): values
    other than the default the arm's own row runs at; RTD's lrs come from FT's grid (the same tuning budget)."""
    for sweep, default, bounds in (("lora_lrs", "lora.lr", {"lo": 0, "lo_open": True}),
                                   ("lora_ranks", "lora.rank", {"lo": 1, "integer": True}),
                                   ("l2sp_alphas", "l2sp.alpha", {"lo": 0}),
                                   ("rtd_lrs", "train.lr", {"lo": 0, "lo_open": True})):
        _number_list(params, sweep, allow_empty=True, **bounds)
        if _get(params, default) in _get(params, sweep):
            raise ParamError(f"params.yaml: `{sweep}` = {_get(params, sweep)!r} holds `{default}` = {_get(params, default)}, "
                             f"which the arm's own row already runs: list only the other values of the grid")
    extra = [v for v in _get(params, "rtd_lrs") if v not in _get(params, "ft_lrs")]
    if extra:
        raise ParamError(f"params.yaml: `rtd_lrs` holds {extra!r}, not in `ft_lrs` = {_get(params, 'ft_lrs')!r}: RTD is tuned "
                         "over FT's lr grid (the same budget)")


def _track_sections(params: dict) -> None:
    """The sections each track has its own copy of (``Track.overrides``), checked the same way."""
    _number_list(params, "wiseft.alphas", lo=0, hi=1)
    for end in (0.0, 1.0):
        if end not in _get(params, "wiseft.alphas"):
            raise ParamError(f"params.yaml: `wiseft.alphas` must include {end:g} (the endpoints θ_T and the fine-tuned model)")
    from .arms import WISEFT_FIXED_ALPHA

    if WISEFT_FIXED_ALPHA not in _get(params, "wiseft.alphas"):
        raise ParamError(f"params.yaml: `wiseft.alphas` must include {WISEFT_FIXED_ALPHA} (WiSE-FT's fixed mix, reported "
                         "as its own row as in Wortsman et al. 2022), e.g. [0.0, 0.1, ..., 1.0]")
    layer = _get(params, "ar_layer")
    if not isinstance(layer, str) or not layer:
        raise ParamError("params.yaml: `ar_layer` must be `pooled` or a backbone module name such as `_blocks.10`")

    # an empty sweep turns its arm off (no stages in dvc.yaml, no rows in the report)
    _number_list(params, "lambda_ar_sweep", allow_empty=True, lo=0)
    _number_list(params, "lambda_kd_sweep", allow_empty=True, lo=0)
    _number_list(params, "temperature_sweep", allow_empty=True, lo=0, lo_open=True)
    _number_list(params, "rho_sweep", allow_empty=True, lo=0, lo_open=True, hi=1)
    _number_list(params, "controls_rho_sweep", allow_empty=True, lo=0, lo_open=True, hi=1)
    unmatched = [v for v in _get(params, "controls_rho_sweep") if v not in _get(params, "rho_sweep")]
    if unmatched:
        raise ParamError(f"params.yaml: `controls_rho_sweep` = {_get(params, 'controls_rho_sweep')!r} holds {unmatched!r}, "
                         f"not in `rho_sweep` = {_get(params, 'rho_sweep')!r}: the controls are matched to an RTD run")
    from .arms import TRAINED

    for arm in (a for a in TRAINED.values() if a.default):   # a tuning sweep holds the value the arm's row reports
        _number_list(params, arm.sweep, lo=0, lo_open=True)
        if _number(params, arm.default, lo=0, lo_open=True) not in _get(params, arm.sweep):
            raise ParamError(f"params.yaml: `{arm.default}` = {_get(params, arm.default)} must be one of `{arm.sweep}` = "
                             f"{_get(params, arm.sweep)!r} (the `{arm.name}` row is {arm.name} at {arm.default}; "
                             f"`{arm.name}_tuned` picks among {arm.sweep})")
    _tuning_grids(params)
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
