"""Tracks are plug-ins: the core (training loop, methods, losses, evaluation, WiSE-FT, analysis, report, stages)
imports no track module by name and holds no branch on a track's name.

A track is a folder ``rtd/tracks/<name>/`` whose ``__init__`` defines ``TRACK``, an instance of ``Track``: its
splits, its teacher θ_T (backbone and head), its D_OOD transforms, its classifier, its official metrics and its
params. ``get_track(name)`` imports it on first use (``importlib``), so a stage's import closure holds the core
and its own track only (``dvcgen`` adds ``rtd.tracks.<name>``'s closure to the stage's code deps); a test
registers a track of its own with ``register``.

The base track (``BASE``, vision) keeps its files and params at the top level; any other track has a params
section (``text:``) holding its own copy of the keys in ``overrides`` (``teacher``, ``ood``, ``train``, ...);
every other key (``lambda_kd``, ``lambda_ar``, ``rho``, ``temperature``, ``sdft``, ``l2sp``, ``eval``, ``seeds``,
``methods``) is shared, so `dvc exp run -S lambda_kd=0.5` reruns RTD in every track.
"""
from __future__ import annotations

import copy
import importlib
import pkgutil
from pathlib import Path
from typing import Any, Callable

BASE = "vision"   # the track whose params and files keep their top-level names (data/vision/, models/, reports/)
_REGISTERED: dict[str, "Track"] = {}


class Track:
    """What a track provides. Defaults are those of a track with no optional part (no pretraining stage,
    no erosion study, no official metrics)."""

    name: str = ""
    section: str | None = None        # its params section (None: the top level, for BASE)
    overrides: tuple[str, ...] = ()   # top-level keys its section replaces
    key_map: dict[str, str] = {}      # a base key the track declares under another name (dvc.yaml `params:`)
    unit: str = "inputs"              # what the report calls one example (images, texts)
    adversarial: str | None = None    # the D_OOD transform that attacks θ_T (so needs it): pgd, hotflip
    backbones: tuple[str, ...] = ()   # `teacher.backbone` values it builds
    has_erosion_study: bool = False   # the `erosion` stage runs on it (``erosion_candidate``)
    erosion_knob: str = ""            # the params key (as written in params.yaml) whose values are the study's candidates
    erosion_label: str = "p"          # a candidate's name in the study's tables: "<label> = <value>"
    erosion_doc: str = ""             # erosion.md's sentence on what a candidate is
    trend_doc: str = "linear probes on the pretrained backbone"   # the study's ID-only models (erosion.md)

    def validate(self, params: dict) -> None:
        """Check the track's own keys (``rtd.config``'s checkers); the first problem raises ParamError."""

    def data_seed(self, params: dict) -> int:
        raise NotImplementedError

    def backbone_spec(self, params: dict) -> dict:
        """What ``build_classifier`` needs to rebuild this configuration's model (``params`` as ``for_track``)."""
        raise NotImplementedError

    def build_classifier(self, spec: dict, drop_connect: float = 0.0):
        """The backbone with a fresh linear head, on the spec's device."""
        raise NotImplementedError

    def build_splits(self, params: dict) -> tuple[dict, dict, dict[str, Any]]:
        """(splits by name, manifest, extra JSON files by name under the track's data folder)."""
        raise NotImplementedError

    def initial_teacher(self, params: dict, spec: dict):
        """The model the `teacher` stage starts from (its head is then replaced by ``teacher_head`` or the probe);
        None: the backbone with a fresh head (``models.build_classifier``)."""
        return None

    def teacher_head(self, params: dict, model, id_val, batch_size: int,
                     manifest: dict | None = None) -> tuple[Any, Any, str, dict] | None:
        """θ_T's head as (weight, bias, kind, extra facts for probe.json), or None for the linear probe; ``manifest``:
        the data's (None: the data stage's file)."""
        return None

    def generate_ood(self, params: dict, train, teacher, spec: dict) -> tuple[dict, dict[str, Any]]:
        """D_OOD's arrays (``images``, ``labels``, ``source``, ``transform``) and extra JSON files by name."""
        raise NotImplementedError

    def online_ood(self, params: dict, teacher, classes: list[str]):
        """B_OOD drawn fresh at every training step (arm `rtd_online`): a callable ``(x, y, generator, student) -> x'``
        with the frozen teacher as ``.teacher`` (``rtd.train.OnlineOOD``); ``classes`` are transform names."""
        from ..errors import ParamError

        raise ParamError(f"the {self.name} track has no online B_OOD: switch arm `rtd_online` off "
                         f"(`{self.section or ''}{'.' if self.section else ''}online_transforms_sweep: []`)")

    def official_metrics(self, params: dict) -> tuple[str, Callable] | None:
        """(name, f): f(logits, split) -> the dataset's official metrics, stored under name; or None."""
        return None

    def tsne_extra(self, params: dict) -> dict:
        """Extra keys for the t-SNE file (e.g. class names for the legend)."""
        return {}

    def preflight(self, params: dict) -> None:
        """Raise an RTDError naming what to download and where if the data or weights are missing (paper configs)."""

    def pretrain_run(self, params: dict) -> tuple | str:
        """The `pretrain` stage's run: (corpus, validation split, loop settings, seed), or why there is none."""
        from ..errors import ParamError

        raise ParamError(f"the `pretrain` stage has nothing to do on the {self.name} track")

    def erosion_default(self, params: dict) -> Any:
        """The value of ``erosion_knob`` in ``params``: the default configuration, which the study's choice gates."""
        raise NotImplementedError

    def erosion_shared(self, params: dict) -> dict | None:
        """What every candidate of the erosion study shares, or None where each brings its own (``erosion_candidate``):
        {"teacher": θ_T's file, "splits": id_val / id_test / ood_val / ood_test, "trend_train": the split the
        trend's ID-only probes are fit on, "inputs": the files whose bytes identify them}."""
        return None

    def erosion_candidate(self, params: dict, value: Any, shared: dict | None) -> dict:
        """One candidate (``value`` of ``erosion_knob``): {"train": the split FT trains on, "key": JSON facts that
        identify its data} and, without ``shared``, its own "teacher" (a model), "splits" and "trend_train"."""
        from ..errors import ParamError

        raise ParamError(f"the {self.name} track has no erosion study (no candidate configurations to compare)")


def register(track: Track) -> None:
    """Make ``track`` known under ``track.name`` (tracks under ``rtd/tracks/`` are found without this)."""
    _REGISTERED[track.name] = track


def available_tracks() -> tuple[str, ...]:
    """Every track: the folders under ``rtd/tracks/`` (BASE first) and those registered."""
    found = [m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.ispkg]
    names = sorted(set(found) | set(_REGISTERED), key=lambda n: (n != BASE, n))
    return tuple(names)


def get_track(name: str) -> Track:
    """The track called ``name``; an unknown name raises ParamError naming the known ones."""
    if name not in _REGISTERED:
        if name not in available_tracks():
            from ..errors import ParamError

            raise ParamError(f"unknown track {name!r}; choose one of {', '.join(available_tracks())}")
        _REGISTERED[name] = importlib.import_module(f"{__name__}.{name}").TRACK
    return _REGISTERED[name]


def stage_name(stage: str, track: str) -> str:
    """The DVC stage that runs ``stage`` for ``track`` (``cache``, ``text_cache``)."""
    return stage if track == BASE else f"{track}_{stage}"


def for_track(params: dict, track: str) -> dict:
    """``params`` as the stages of ``track`` read them (its section's overrides in place of the top-level keys)."""
    t = get_track(track)
    if t.section is None:
        return params
    merged = copy.deepcopy(params)
    for key in t.overrides:
        merged[key] = copy.deepcopy(params[t.section][key])
    return merged


def track_path(path: str, track: str) -> str:
    """Where ``track`` keeps the file the base track keeps at ``path``.

    data/vision/x -> data/text/x; models/x -> models/text/x; reports/x -> reports/text/x.
    """
    if track == BASE:
        return path
    if path.startswith(f"data/{BASE}/"):
        return f"data/{track}/{path.removeprefix(f'data/{BASE}/')}"
    top, _, rest = path.partition("/")
    return f"{top}/{track}/{rest}"


def track_key(key: str, track: str) -> str:
    """The params key a stage of ``track`` declares for the base track's key ``key`` (dvc.yaml's `params:`)."""
    t = get_track(track)
    if t.section is None:
        return key
    if key.split(".")[0] in t.overrides:
        return f"{t.section}.{key}"
    return t.key_map.get(key, key)
