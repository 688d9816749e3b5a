"""The vision track: EfficientNet-Lite0 pretrained on a broad corpus of digit renders (``pretrain``) as θ_T, a narrow
textured ID task of font renders and OOD handwriting, decorative fonts and real digits (``fonts.py``); the paper
configuration: CLIP RN50 on WILDS Camelyon17 / iWildCam (``clip.py``, ``wilds.py``). Its params are the top-level
keys (``data``, ``vision``, ``clip``, ``ood``, ``teacher``, ``pretrain``, ``erosion``, ...)."""
from __future__ import annotations

from .. import Track
from .pretrain import PRETRAINED

TEACHER = "models/teacher/model.safetensors"

OOD_TRANSFORMS = ("blur", "color", "jpeg", "motion", "noise", "pgd", "stain")
BACKBONES = ("efficientnet-lite0", "clip")
DATASETS = ("fonts", "camelyon17", "iwildcam")
CLIP_HEADS = ("zeroshot", "probe")
TEACHER_HEADS = ("pretrained", "probe")   # fonts: the `pretrain` model's own head, or a probe fit on ID train


class VisionTrack(Track):
    name = "vision"
    unit = "images"
    adversarial = "pgd"
    backbones = BACKBONES
    has_erosion_study = True
    erosion_knob = "data.shortcut.p"
    erosion_label = "p"
    erosion_doc = ("Candidates: the probability p of the\n"
                   "class-correlated shortcut in the ID training images (`erosion.candidates`), on top of the ID texture that every ID\n"
                   "split carries (`data.id_texture`).")
    trend_doc = "linear probes on the ImageNet backbone"

    def validate(self, params: dict) -> None:
        from ...config import (SEED_MAX, _choice, _get, _name_list, _number, _number_list, _range, check_schedule,
                               erosion_section, track_sections)
        from ...errors import ParamError
        from .fonts import DOWNSTREAM_GROUPS, PRETRAIN_GROUPS

        _number(params, "data.seed", lo=0, hi=SEED_MAX, integer=True)
        _number(params, "data.image_size", lo=16, integer=True)
        _name_list(params, "data.font_dirs")
        _range(params, "data.render.scale", lo=0.05, hi=1.0)
        _number(params, "data.render.shift", lo=0, hi=0.5)
        _number(params, "data.render.rotation", lo=0, hi=180)
        _range(params, "data.render.stroke", lo=0)
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
        # arm `rtd_online`: each value is `all` (ood.transforms) or one class (any family: `-S ood.transforms=[pgd]` must
        # not invalidate the per-class runs)
        online = _name_list(params, "online_transforms_sweep", allowed=("all", *OOD_TRANSFORMS), allow_empty=True)
        unmatched = [v for v in _name_list(params, "controls_online_sweep", allow_empty=True) if v not in online]
        if unmatched:
            raise ParamError(f"params.yaml: `controls_online_sweep` holds {unmatched!r}, not in `online_transforms_sweep` = "
                             f"{online!r}: the controls are matched to an `rtd_online` run")
        _choice(params, "ood_online.pgd_target", ("teacher", "student"))

        _choice(params, "teacher.backbone", BACKBONES)
        _choice(params, "teacher.head", TEACHER_HEADS)
        _number_list(params, "erosion.candidates", lo=0, hi=1)
        erosion_section(params)
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
        track_sections(params)
        if dataset == "fonts":   # the ID training set's size is known before it is rendered
            check_schedule(len(groups["printed"]) * 10 * _get(params, "data.renders_per_digit.train"), _get(params, "train"))

    def data_seed(self, params: dict) -> int:
        return params["data"]["seed"]

    def backbone_spec(self, params: dict) -> dict:
        from .wilds import num_classes

        spec = {"name": params["teacher"]["backbone"], "num_classes": num_classes(params["vision"]["dataset"]),
                "device": params["train"]["device"]}
        if spec["name"] == "clip":
            spec["clip"] = params["clip"]
        return spec

    def build_classifier(self, spec: dict, drop_connect: float = 0.0, from_file: bool = False):
        from .models import build_vision_classifier

        return build_vision_classifier(spec, drop_connect, from_file)

    def build_splits(self, params: dict) -> tuple[dict, dict, dict]:
        if params["vision"]["dataset"] == "fonts":
            from .fonts import build_font_benchmark

            splits, manifest = build_font_benchmark(params["data"])
        else:
            from .wilds import build_wilds_splits

            splits, manifest = build_wilds_splits(params["vision"], params["data"]["image_size"])
            splits.update(empty_pretrain_splits(splits["train"]))   # CLIP is the paper configuration's foundation model
        return splits, manifest, {}

    @staticmethod
    def _pretrained(params: dict) -> bool:
        return params["teacher"]["backbone"] == "efficientnet-lite0" and params["teacher"]["head"] == "pretrained"

    def initial_teacher(self, params: dict, spec: dict):
        from ...models import load_model

        return load_model(PRETRAINED, spec) if self._pretrained(params) else None

    def teacher_head(self, params: dict, model, id_val, batch_size: int, manifest: dict | None = None):
        if params["teacher"]["backbone"] == "clip" and params["clip"]["head"] == "zeroshot":
            from .clip import zero_shot_head

            weight, bias = zero_shot_head(params)
            return weight, bias, "zeroshot", {"templates": params["clip"]["templates"]}
        if self._pretrained(params):
            return model.head.weight.detach().clone(), model.head.bias.detach().clone(), "pretrained", {}
        return None

    def generate_ood(self, params: dict, train, teacher, spec: dict) -> tuple[dict, dict]:
        from .ood import generate_ood

        return generate_ood(train.images, train.labels, params["ood"], teacher), {}

    def online_ood(self, params: dict, teacher, classes: list[str]):
        from .ood import OnlineOOD

        return OnlineOOD(params["ood"], classes, teacher, params["ood_online"]["pgd_target"])

    def official_metrics(self, params: dict):
        vision = params["vision"]
        if vision["dataset"] == "fonts":
            return None
        from .wilds import official_metrics

        return "wilds", lambda logits, split: official_metrics(vision, logits, split.labels, split.metadata)

    def preflight(self, params: dict) -> None:
        vision, cp = params["vision"], params["clip"]
        if vision["dataset"] != "fonts" and not vision["download"]:
            from .wilds import load_wilds

            load_wilds(vision["dataset"], vision["wilds_root"], False)
        if params["teacher"]["backbone"] == "clip" and cp["pretrained"]:
            from .clip import load_clip

            load_clip(cp["model"], cp["pretrained"], cp["cache_dir"])

    def pretrain_run(self, params: dict):
        from .pretrain import pretrain_run

        return pretrain_run(params)

    def erosion_default(self, params: dict) -> float:
        return params["data"]["shortcut"]["p"]

    def erosion_shared(self, params: dict) -> dict:
        """θ_T, the data stage's evaluation splits and `train_clean` (the ID training images without the shortcut)."""
        from ...data.splits import load_split
        from ...evaluate import load_eval_splits

        clean, splits = "data/vision/train_clean.safetensors", load_eval_splits(self.name)
        return {"teacher": TEACHER, "splits": splits, "trend_train": load_split(clean),
                "inputs": [TEACHER, clean, "data/vision/id_val.safetensors", "data/vision/ood_val.safetensors"]}

    def erosion_candidate(self, params: dict, p: float, shared: dict | None) -> dict:
        """The shortcut drawn on `train_clean` with probability ``p`` exactly as the data stage draws `data.shortcut`."""
        from ...data.splits import Split
        from .fonts import add_shortcut

        clean, size, seed = shared["trend_train"], params["data"]["shortcut"]["size"], params["data"]["seed"]
        images, _ = add_shortcut(clean.images, clean.labels, p, size, seed)
        return {"train": Split(images, clean.labels, clean.domains, clean.domain_names),
                "key": {"p": p, "size": size, "data_seed": seed}}


def empty_pretrain_splits(train) -> dict:
    """The extra shards where the benchmark has no pretraining corpus and no shortcut (WILDS): `train_clean` is
    `train`, `pretrain` and `pretrain_val` are empty."""
    from ...data.splits import Split

    empty = Split(train.images[:0], train.labels[:0], train.domains[:0], [])
    return {"train_clean": train, "pretrain": empty, "pretrain_val": empty}


TRACK = VisionTrack()
