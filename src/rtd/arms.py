"""The arms of the experiment: each training arm is a method configured from the params it reads.

``TRAINED`` lists every arm with a DVC training stage (`train_<arm>` in dvc.yaml), the params keys
it reads besides the shared ones (``COMMON``), and its variant (a swept value passed on the command
line: a learning rate, L2-SP's alpha, RTD's lambda_AR or rho). ``DERIVED`` arms train nothing: a ``TUNED`` row
picks, per arm family, the configuration with the best mean id_val accuracy; WiSE-FT interpolates weights. A test
checks dvc.yaml declares exactly these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ParamError
from .tracks import BASE

if TYPE_CHECKING:
    from .methods import Method

MODEL_PARAMS = ("teacher.backbone", "vision.dataset", "clip", "train.device")   # what ``models.backbone_spec`` reads
COMMON = ("num_threads", "train", *(p for p in MODEL_PARAMS if not p.startswith("train.")))
RTD_KEYS = ("lambda_kd", "temperature", "kd_scale_t2", "rho", "ar_layer")


@dataclass(frozen=True)
class Arm:
    name: str
    reads: tuple[str, ...] = ()       # params keys read besides COMMON
    variant: str | None = None        # "lr", "rank", "alpha", "lambda_ar", "lambda_kd", "temperature", "rho",
    #                                   "transforms": one run per value of `sweep`
    sweep: str | None = None          # the params key listing the variant's values
    default: str | None = None        # a tuning sweep: the params key of the value that the arm's own row reports
    label: str = ""
    init: str = "teacher"             # the method's ``init``: teacher (theta_T), new_head, probe (reads the LP head)
    ood: bool = False                 # trains on B_OOD (read from D_OOD, or drawn online)
    online: bool = False              # B_OOD drawn fresh at every step (``Track.online_ood``) instead of read from D_OOD
    cache: tuple[str, ...] = ()       # cached teacher outputs read (files data/vision/cache/<part>.safetensors)
    method: str = ""                  # the method class (``build_method``'s ``classes``; default: the arm's name)
    fixed: tuple[tuple[str, object], ...] = ()   # method arguments held at a value instead of read from params

    @property
    def kind(self) -> str:
        """The method class's key in ``METHOD_ARGS`` (``method``, or the arm's own name)."""
        return self.method or self.name


# each method's constructor arguments and the params key each one reads
METHOD_ARGS: dict[str, dict[str, str]] = {
    "ft": {}, "ft_newhead": {}, "lpft": {}, "aug_only": {},
    "sdft": {"temperature": "sdft.temperature"},
    "l2sp": {"alpha": "l2sp.alpha"},
    "lora": {k: f"lora.{k}" for k in ("rank", "alpha", "dropout", "target_modules", "lr")},
    "rtd": {k: k for k in ("lambda_kd", "lambda_ar", "temperature", "kd_scale_t2")},
}


TRAINED: dict[str, Arm] = {a.name: a for a in (
    Arm("ft", variant="lr", sweep="ft_lrs", default="train.lr", label="FT from θ_T, head included (lr = train.lr)"),
    Arm("ft_newhead", label="FT, new head (θ_T's backbone)", init="new_head"),
    Arm("lpft", label="LP-FT", init="probe"),
    Arm("lora", reads=("lora",), label="LoRA (lr = lora.lr)"),
    Arm("sdft", reads=("sdft",), label="SDFT (adapted)", cache=("id_logits",)),
    Arm("l2sp", reads=("l2sp",), label="L2-SP towards θ_T (α = l2sp.alpha)"),
    Arm("aug_only", reads=("rho",), label="control: aug only", ood=True),
    Arm("kd_only", reads=("lambda_kd", "temperature", "kd_scale_t2", "rho"), label="control: KD only (λ_AR = 0)",
        ood=True, cache=("id_logits", "ood_logits"), method="rtd", fixed=(("lambda_ar", 0.0),)),
    Arm("ar_only", reads=("lambda_ar", "rho", "ar_layer"), label="control: AR only (λ_KD = 0)",
        ood=True, cache=("id_logits", "id_act", "ood_act"), method="rtd",
        fixed=(("lambda_kd", 0.0), ("temperature", 1.0), ("kd_scale_t2", False))),
    Arm("rtd", reads=("lambda_ar", *RTD_KEYS), label="RTD", ood=True,
        cache=("id_logits", "ood_logits", "id_act", "ood_act")),
    Arm("rtd_ar", reads=RTD_KEYS, variant="lambda_ar", sweep="lambda_ar_sweep", label="RTD, λ_AR sweep",
        ood=True, cache=("id_logits", "ood_logits", "id_act", "ood_act"), method="rtd"),
    Arm("rtd_kd", reads=("lambda_ar", "temperature", "kd_scale_t2", "rho", "ar_layer"), variant="lambda_kd",
        sweep="lambda_kd_sweep", label="RTD, λ_KD sweep", ood=True, cache=("id_logits", "ood_logits", "id_act", "ood_act"),
        method="rtd"),
    Arm("rtd_t", reads=("lambda_ar", "lambda_kd", "kd_scale_t2", "rho", "ar_layer"), variant="temperature",
        sweep="temperature_sweep", label="RTD, T sweep", ood=True, cache=("id_logits", "ood_logits", "id_act", "ood_act"),
        method="rtd"),
    Arm("rtd_rho", reads=("lambda_ar", "lambda_kd", "temperature", "kd_scale_t2", "ar_layer"), variant="rho",
        sweep="rho_sweep", label="RTD, ρ sweep (cost vs robustness)", ood=True,
        cache=("id_logits", "ood_logits", "id_act", "ood_act"), method="rtd"),
    # the rest of a tuning grid whose default value the arm above runs (`*_tuned` rows choose among both on id_val)
    Arm("lora_lr", reads=("lora",), variant="lr", sweep="lora_lrs", label="LoRA at another lr", method="lora"),
    Arm("lora_rank", reads=("lora",), variant="rank", sweep="lora_ranks", label="LoRA at another rank", method="lora"),
    Arm("l2sp_alpha", variant="alpha", sweep="l2sp_alphas", label="L2-SP at another α", method="l2sp"),
    Arm("rtd_lr", reads=("lambda_ar", *RTD_KEYS), variant="lr", sweep="rtd_lrs", label="RTD at another lr of FT's grid",
        ood=True, cache=("id_logits", "ood_logits", "id_act", "ood_act"), method="rtd"),
    # the proposal's pseudocode: B_OOD drawn fresh at every step (the teacher's B_OOD outputs computed then); one run per
    # class set, `all` (ood.transforms) or one class (the per-transform ablation)
    Arm("rtd_online", reads=("lambda_ar", *RTD_KEYS, "ood", "ood_online"), variant="transforms",
        sweep="online_transforms_sweep", label="RTD, B_OOD drawn online", ood=True, online=True,
        cache=("id_logits", "id_act"), method="rtd"),
    # the three controls at RTD's swept rho (same rho, same D_OOD copies): what an RTD setting's gain is made of
    Arm("aug_only_rho", variant="rho", sweep="controls_rho_sweep", label="control: aug only, at RTD's ρ", ood=True,
        method="aug_only"),
    Arm("kd_only_rho", reads=("lambda_kd", "temperature", "kd_scale_t2"), variant="rho", sweep="controls_rho_sweep",
        label="control: KD only, at RTD's ρ", ood=True, cache=("id_logits", "ood_logits"), method="rtd",
        fixed=(("lambda_ar", 0.0),)),
    Arm("ar_only_rho", reads=("lambda_ar", "ar_layer"), variant="rho", sweep="controls_rho_sweep",
        label="control: AR only, at RTD's ρ", ood=True, cache=("id_logits", "id_act", "ood_act"), method="rtd",
        fixed=(("lambda_kd", 0.0), ("temperature", 1.0), ("kd_scale_t2", False))),
    # ... and at online B_OOD (same class set, same draws): what drawing B_OOD at every step buys RTD beyond augmentation
    Arm("aug_only_online", reads=("rho", "ood", "ood_online"), variant="transforms", sweep="controls_online_sweep",
        label="control: aug only, online B_OOD", ood=True, online=True, method="aug_only"),
    Arm("kd_only_online", reads=("lambda_kd", "temperature", "kd_scale_t2", "rho", "ood", "ood_online"), variant="transforms",
        sweep="controls_online_sweep", label="control: KD only, online B_OOD", ood=True, online=True, cache=("id_logits",),
        method="rtd", fixed=(("lambda_ar", 0.0),)),
    Arm("ar_only_online", reads=("lambda_ar", "rho", "ar_layer", "ood", "ood_online"), variant="transforms",
        sweep="controls_online_sweep", label="control: AR only, online B_OOD", ood=True, online=True,
        cache=("id_logits", "id_act"), method="rtd", fixed=(("lambda_kd", 0.0), ("temperature", 1.0), ("kd_scale_t2", False))),
)}
CONTROL_OF = {"aug_only_rho": "aug_only", "kd_only_rho": "kd_only", "ar_only_rho": "ar_only"}   # the same objective
ONLINE_CONTROLS = ("aug_only_online", "kd_only_online", "ar_only_online")   # matched to `rtd_online@<classes>`
WISEFT_ENDS = ("ft", "rtd")   # WiSE-FT theta_T -> the run that `<end>_tuned` chooses (stages wiseft_<end>)
WISEFT_ROWS = tuple(f"wiseft_{end}" for end in WISEFT_ENDS)
WISEFT_FIXED_ALPHA = 0.5   # Wortsman et al. 2022 report the fixed mix α = 0.5 beside the α chosen on held-out data

# The study's design, as data: the report, the analysis, the figures and the headline read these and name no arm.
BASELINE = "ft"         # FT from θ_T: FLOPs are relative to it; the ρ = 0 point; the reference of the claims (with its tuned row)
METHOD = "rtd"          # RTD at the params' defaults: the proposal's claims, the ρ table, the cached row of the online table
RHO_SWEEP = "rtd_rho"   # RTD at each ρ of `rho_sweep`: tested against FT and against its matched controls (CONTROL_OF)
ONLINE = "rtd_online"   # B_OOD drawn at every step, one row per class set; `<ONLINE>@all` is its table's reference
COMPARISONS = (("rtd", "ft"), ("rtd", "ft_tuned"), ("rtd", "lpft"), ("rtd", "aug_only"), ("rtd", "kd_only"),
               ("rtd", "ar_only"), ("rtd", "wiseft_ft"),
               ("rtd", f"wiseft_ft@{WISEFT_FIXED_ALPHA:g}"), ("wiseft_rtd", "wiseft_ft"),
               # equal tuning budget: each tuned on id_val over its own grid of 3 values
               ("rtd_tuned", "ft_tuned"), ("rtd_tuned", "lora_tuned"), ("rtd_tuned", "l2sp_tuned"),
               ("rtd_ar_tuned", "ft_tuned"), ("rtd_kd_tuned", "ft_tuned"), ("rtd_t_tuned", "ft_tuned"),
               # the proposal's B_OOD, drawn at every step, against the pre-generated D_OOD approximation
               ("rtd_online@all", "rtd"))   # the report's paired tests (with the ρ-swept and online controls' own)


@dataclass(frozen=True)
class Tuned:
    """A row that picks, among every run configuration of ``arms``, the one with the best mean id_val accuracy."""
    label: str
    arms: tuple[str, ...]
    key: str      # what is chosen: a variant name ("lr", "alpha", "lambda_ar")
    value: str    # the params key of that value for an arm of ``arms`` that does not sweep it


# the same tuning budget, chosen on id_val: RTD gets FT's lr grid (train.lr and rtd_lrs = ft_lrs), LoRA an lr grid and a
# rank grid (one at a time around lora.lr and lora.rank), L2-SP an alpha grid (3 values each on the vision track); RTD's
# lambda_AR, lambda_KD and T (the proposal's grids, one at a time around the defaults) are rows of their own
TUNED = {
    "ft_tuned": Tuned("FT, lr tuned on id_val", ("ft",), "lr", "train.lr"),
    "lora_tuned": Tuned("LoRA, lr tuned on id_val", ("lora", "lora_lr"), "lr", "lora.lr"),
    "lora_rank_tuned": Tuned("LoRA, rank tuned on id_val", ("lora", "lora_rank"), "rank", "lora.rank"),
    "l2sp_tuned": Tuned("L2-SP, α tuned on id_val", ("l2sp", "l2sp_alpha"), "alpha", "l2sp.alpha"),
    "rtd_tuned": Tuned("RTD, lr tuned on id_val", ("rtd", "rtd_lr"), "lr", "train.lr"),
    "rtd_ar_tuned": Tuned("RTD, λ_AR tuned on id_val", ("rtd", "rtd_ar"), "lambda_ar", "lambda_ar"),
    "rtd_kd_tuned": Tuned("RTD, λ_KD tuned on id_val", ("rtd", "rtd_kd"), "lambda_kd", "lambda_kd"),
    "rtd_t_tuned": Tuned("RTD, T tuned on id_val", ("rtd", "rtd_t"), "temperature", "temperature"),
}
# the rows of the summary table (results.md's first table, the README's): the arms compared at their tuned setting
SUMMARY = ("teacher", "ft", "ft_tuned", "ft_newhead", "lpft", "lora_tuned", "lora_rank_tuned", "sdft", "l2sp_tuned",
           "wiseft_ft", "wiseft_ft@0.5", "aug_only", "kd_only", "ar_only", "rtd", "rtd_tuned", "rtd_ar_tuned", "rtd_kd_tuned", "rtd_t_tuned",
           "rtd_online@all", "wiseft_rtd@0.5")
DERIVED = {
    **{name: t.label for name, t in TUNED.items()},
    "wiseft_ft": "WiSE-FT (θ_T → FT tuned)",
    "wiseft_rtd": "WiSE-FT (θ_T → RTD tuned)",
}
REPORT_ROWS = (*TRAINED, *DERIVED)   # what params.yaml's `methods` may list


def loss_weights(arm: Arm, params: dict, variant=None) -> tuple[float, float]:
    """The (λ_KD, λ_AR) that weight an arm's KD and AR terms, from what it reads: its swept value where it sweeps one,
    the params value where it reads the key, else 0 (the term is off)."""
    def weight(key: str) -> float:
        return variant if arm.variant == key else params[key] if key in arm.reads else 0.0

    return weight("lambda_kd"), weight("lambda_ar")


def param(params: dict, dotted: str):
    """The value at a dotted params key (``train.lr``)."""
    for part in dotted.split("."):
        params = params[part]
    return params


def default_variant(arm: Arm, params: dict):
    """The swept value an arm's own row reports (``arm.default``'s params value), or None."""
    return None if arm.default is None else param(params, arm.default)


def variant_values(arm: Arm, params: dict) -> list:
    """The swept values of an arm (``[None]`` for an arm without a variant)."""
    return list(params[arm.sweep]) if arm.sweep else [None]


def online_classes(variant: str, params: dict) -> list[str]:
    """The transform classes a run of an online arm draws B_OOD from: `all` = ``ood.transforms``, else the one named."""
    return list(params["ood"]["transforms"]) if variant == "all" else [variant]


def cache_parts(arm: Arm, method: Method) -> tuple[str, ...]:
    """The teacher outputs a run reads from the cache: the method's, less B_OOD's where the arm draws B_OOD online
    (θ_T's outputs on it are computed at each step)."""
    return tuple(p for p in method.teacher_outputs if not (arm.online and p.startswith("ood_")))


def run_dir(arm: str, seed: int, variant=None, track: str = BASE) -> str:
    """Where one training run's model and stats live (`models/[text/]<arm>[/<variant>]/seed<k>`)."""
    from .tracks import track_path

    # str(value) is how DVC renders ${item.lr} in dvc.yaml: 3e-05, 0.0001, 1.0
    sub = f"/{TRAINED[arm].variant}{variant}" if variant is not None else ""
    return track_path(f"models/{arm}{sub}/seed{seed}", track)


def log_path(arm: str, seed: int, variant=None, track: str = BASE) -> str:
    """The run's training log (`reports/[text/]train/<arm>[/<variant>]/seed<k>.tsv`)."""
    from .tracks import track_path

    return track_path(run_dir(arm, seed, variant).replace("models/", "reports/train/", 1) + ".tsv", track)


def parse_variant(arm: str, text: str | None, params: dict):
    """The params value of the variant named on the command line (it must be one of the sweep's values)."""
    if arm not in TRAINED:
        raise ParamError(f"unknown training arm {arm!r}; choose one of {', '.join(TRAINED)}")
    spec = TRAINED[arm]
    if text is None or spec.sweep is None:
        return None
    for value in params[spec.sweep]:
        if str(value) == text:
            return value
    raise ParamError(f"{spec.variant} = {text} is not in `{spec.sweep}` = {params[spec.sweep]!r}")


def build_method(arm: str, params: dict, variant=None) -> Method:
    """The method of training arm ``arm``: its class (``Arm.method``) built from the params its arguments read
    (``METHOD_ARGS``), with the arm's fixed values and its swept value (a variant named like an argument replaces
    it; a swept lr that is no argument sets the method's lr; rho is the loop's, not the objective's)."""
    from .methods import LPFT, L2SP, SDFT, AugOnly, FineTune, FineTuneNewHead, RTD

    def lora(**kwargs) -> Method:
        from .lora import LoRA   # imports peft: only for a LoRA arm

        return LoRA(**kwargs)

    classes = {"ft": FineTune, "ft_newhead": FineTuneNewHead, "lpft": LPFT, "sdft": SDFT, "l2sp": L2SP,
               "aug_only": AugOnly, "rtd": RTD, "lora": lora}
    if arm not in TRAINED:
        raise ParamError(f"unknown training arm {arm!r}; choose one of {', '.join(TRAINED)}")
    spec = TRAINED[arm]
    if (variant is None) != (spec.variant is None):
        raise ParamError(f"arm {arm!r} " + (f"needs --{spec.variant.replace('_', '-')}" if spec.variant else "takes no variant"))
    kind = spec.kind
    args = {name: param(params, key) for name, key in METHOD_ARGS[kind].items()}
    args.update(spec.fixed)
    if spec.variant in args:   # LoRA's rank is a count; every other swept argument a real number
        args[spec.variant] = int(variant) if spec.variant == "rank" else float(variant)
    method = classes[kind](**args)
    if spec.variant == "lr" and "lr" not in args:
        method.lr = float(variant)
    method.name = arm
    return method


def best_variant(scores: dict) -> object:
    """The variant with the highest mean validation score over seeds; ties go to the first listed."""
    return max(scores, key=lambda v: (sum(scores[v]) / len(scores[v]), -list(scores).index(v)))


def switched_off(method: str, params: dict) -> bool:
    """A swept arm whose sweep is empty (e.g. the text track's `text.rho_sweep: []`): it has no stages in
    dvc.yaml and no row in the report."""
    arm = TRAINED.get(method)
    return arm is not None and arm.sweep is not None and not params[arm.sweep]


def tuned_candidates(tuned: Tuned, params: dict) -> list[tuple[str, object]]:
    """The ``(arm, variant)`` runs a tuned row chooses among: each value of an arm that sweeps ``tuned.key``, the
    other arms at their own row's setting; switched-off arms take no part."""
    return [(arm, v) for arm in tuned.arms if not switched_off(arm, params)
            for v in (params[TRAINED[arm].sweep] if TRAINED[arm].variant == tuned.key
                      else [default_variant(TRAINED[arm], params)])]


def tuned_choice(tuned: Tuned, params: dict, track: str = BASE) -> tuple[str, object]:
    """The ``(arm, variant)`` a tuned row reports, read from the training runs: the best mean over seeds of each
    run's best-epoch id_val accuracy (the report's ``tuned_row`` makes the same choice from the evaluations)."""
    from .io import read_json

    scores = {(a, v): [read_json(f"{run_dir(a, s, v, track)}/train_stats.json")["best_id_val_acc"]
                       for s in params["seeds"]] for a, v in tuned_candidates(tuned, params)}
    return best_variant(scores)
