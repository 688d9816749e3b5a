"""The two tracks, vision and text, share every stage and every library function.

A track differs only by (1) where its files live and (2) the params sections it overrides: the text
track's ``text:`` section holds its own ``teacher``, ``ood``, ``train``, ``ft_lrs``, ``lora``, ``ar_layer``,
``analysis``, ``lambda_ar_sweep``, ``rho_sweep`` and ``wiseft``; every other key (``lambda_kd``, ``lambda_ar``,
``rho``, ``temperature``, ``sdft``, ``l2sp``, ``eval``, ``seeds``, ``methods``) is shared, so `dvc exp run -S lambda_kd=0.5`
reruns RTD in both tracks.
"""
from __future__ import annotations

import copy

TRACKS = ("vision", "text")
# top-level params keys the text track replaces with `text.<key>`
TEXT_OVERRIDES = ("teacher", "ood", "train", "ft_lrs", "lora", "ar_layer", "analysis", "lambda_ar_sweep", "rho_sweep",
                  "wiseft")


def for_track(params: dict, track: str) -> dict:
    """``params`` as the stages of ``track`` read them (the text track's overrides in place of the top-level keys)."""
    if track == "vision":
        return params
    merged = copy.deepcopy(params)
    for key in TEXT_OVERRIDES:
        merged[key] = copy.deepcopy(params["text"][key])
    return merged


def track_path(path: str, track: str) -> str:
    """Where ``track`` keeps the file the vision track keeps at ``path``.

    data/vision/x -> data/text/x; models/x -> models/text/x; reports/x -> reports/text/x.
    """
    if track == "vision":
        return path
    if path.startswith("data/vision/"):
        return f"data/{track}/{path.removeprefix('data/vision/')}"
    top, _, rest = path.partition("/")
    return f"{top}/{track}/{rest}"


def track_key(key: str, track: str) -> str:
    """The params key a stage of ``track`` declares for the (vision) key ``key`` (dvc.yaml's `params:`)."""
    if track == "vision":
        return key
    first = key.split(".")[0]
    if first in TEXT_OVERRIDES:
        return f"text.{key}"
    if key in ("vision", "vision.dataset", "data.seed"):
        return "text.data"
    if key == "clip":
        return "text.llm"
    return key
