"""The language track: MiniLM (a sentence encoder) with a zero-shot head on WordNet supersenses as θ_T (embedded
default), ID texts with a nuisance (leetspeak), OOD usage examples; the paper configuration: a Llama-class LM on
MedNLI / PubMedQA. Its params are the `text:` section, which holds its own copy of the keys in ``OVERRIDES``."""
from __future__ import annotations

from .. import Track

# top-level params keys the text track replaces with `text.<key>`
OVERRIDES = ("teacher", "ood", "train", "erosion", "ft_lrs", "lora_lrs", "lora_ranks", "l2sp_alphas", "rtd_lrs", "lora", "ar_layer", "analysis", "lambda_ar_sweep", "lambda_kd_sweep",
             "temperature_sweep", "rho_sweep", "controls_rho_sweep", "online_transforms_sweep",
             "controls_online_sweep", "wiseft")
MANIFEST = "data/text/manifest.json"


class TextTrack(Track):
    name = "text"
    section = "text"
    overrides = OVERRIDES
    key_map = {"vision": "text.data", "vision.dataset": "text.data", "data.seed": "text.data", "clip": "text.llm"}
    unit = "texts"
    adversarial = "hotflip"
    backbones = ("minilm", "llm")
    has_erosion_study = True
    erosion_knob = "text.data.nuisance"
    erosion_label = "nuisance"
    erosion_doc = ("Candidates: the nuisance written into every ID text (train, id_val,\n"
                   "id_test; `text.erosion.candidates`, values of `text.data.nuisance`), the OOD usage examples staying clean. Each\n"
                   "candidate has its own ID splits, so its own θ_T (the zero-shot head's scale is fit on its id_val) and trend.")
    trend_doc = "linear probes on MiniLM's pretrained features"

    def validate(self, params: dict) -> None:
        """The section `text`: its data and LLM settings, then its copies of the shared sections."""
        from ...config import SEED_MAX, _choice, _get, _name_list, _number, erosion_section, track_sections
        from ...errors import ParamError
        from .. import for_track
        from .data import DATASETS, NUISANCES
        from .ood import TEXT_TRANSFORMS

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
        for key in ("online_transforms_sweep", "controls_online_sweep"):
            if _get(params, f"text.{key}"):
                raise ParamError(f"params.yaml: `text.{key}` must be []: online B_OOD (arm `rtd_online` and its controls) "
                                 "is built for the vision track only; the text track's RTD reads the pre-generated D_OOD")
        track_sections(for_track(params, "text"), "text", extra=lambda p: (
            _name_list(p, "erosion.candidates", allowed=NUISANCES), erosion_section(p)))

    def data_seed(self, params: dict) -> int:
        return params["text"]["data"]["seed"]

    def backbone_spec(self, params: dict) -> dict:
        from .data import num_text_classes

        return {"name": params["teacher"]["backbone"], "num_classes": num_text_classes(params["text"]["data"]),
                "device": params["train"]["device"], "llm": params["text"]["llm"], "path": params["teacher"].get("path"),
                "normalize": params["teacher"].get("head") == "zeroshot"}

    def build_classifier(self, spec: dict, drop_connect: float = 0.0, from_file: bool = False):
        from ...distributed import resolve_device
        from .models import build_text_classifier

        return build_text_classifier(spec).to(resolve_device(spec.get("device", "cpu")))

    def build_splits(self, params: dict) -> tuple[dict, dict, dict]:
        from ...models import backbone_spec
        from .data import build_text_splits

        splits, texts, manifest = build_text_splits(params["text"]["data"], backbone_spec(params, self.name))
        return splits, manifest, {"texts.json": texts}

    def teacher_head(self, params: dict, model, id_val, batch_size: int, manifest: dict | None = None):
        if params["teacher"]["head"] != "zeroshot":
            return None
        from ...io import read_json
        from .zeroshot import teacher_zeroshot_head

        classes = (manifest or read_json(MANIFEST))["classes"]
        weight, bias, scale = teacher_zeroshot_head(model, params, id_val, batch_size, classes)
        return weight, bias, "zeroshot", {"scale": scale}

    def erosion_default(self, params: dict) -> str:
        return params["text"]["data"]["nuisance"]

    def erosion_candidate(self, params: dict, nuisance: str, shared: dict | None) -> dict:
        """The benchmark with ``nuisance`` in its ID texts, built as the data stage builds it, and its θ_T built as the
        teacher stage builds it (on this candidate's splits)."""
        from ...io import seed_everything
        from ...models import backbone_spec
        from ...teacher import build_teacher
        from .data import build_text_splits

        data_cfg = {**params["text"]["data"], "nuisance": nuisance}
        splits, _, manifest = build_text_splits(data_cfg, backbone_spec(params, self.name))
        seed_everything(self.data_seed(params), params["num_threads"])   # as the teacher stage
        teacher = build_teacher(params, self.name, splits["train"], splits["id_val"], manifest)["model"]
        return {"train": splits["train"], "teacher": teacher, "trend_train": splits["train"],
                "splits": {k: splits[k] for k in ("id_val", "id_test", "ood_val", "ood_test")},
                "key": {"nuisance": nuisance, "data": {k: v for k, v in data_cfg.items() if k != "nuisance"},
                        "teacher": params["teacher"]}}

    def generate_ood(self, params: dict, train, teacher, spec: dict) -> tuple[dict, dict]:
        from ...io import read_json
        from .models import load_tokenizer, pad_token_id
        from .ood import generate_text_ood

        tokenizer, max_len = load_tokenizer(spec), params["text"]["data"]["max_len"]
        pad_id = pad_token_id(spec, tokenizer)
        texts = read_json("data/text/texts.json")["train"]
        arrays = generate_text_ood(texts, train.images, train.labels, params["ood"], tokenizer, max_len, pad_id, teacher)
        arrays["images"] = arrays.pop("ids")   # the training loop reads D_OOD's inputs as `images`
        # the texts go to their own file: safetensors writes two or more metadata keys in a random order
        return arrays, {"ood/texts.json": arrays.pop("texts")}

    def tsne_extra(self, params: dict) -> dict:
        from ...io import read_json

        return {"class_names": read_json(MANIFEST)["classes"]}


TRACK = TextTrack()
