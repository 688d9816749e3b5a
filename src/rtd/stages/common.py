"""What every stage entry point shares: environment, error handling, params."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def track_params(track: str) -> dict:
    """The validated params as the stages of ``track`` read them (``tracks.for_track``)."""
    from ..config import load_params
    from ..tracks import for_track, get_track

    get_track(track)   # an unknown track: one clear error before params are read
    return for_track(load_params(), track)


def check_declared(stage: str, paths: list[str]) -> None:
    """Stop with one line if ``stage`` reads a file that dvc.yaml does not declare among its deps (itself or a folder
    above it): a sweep was
    changed (`dvc exp run -S ...`) since dvc.yaml was generated from params.yaml. Nothing is checked without a
    dvc.yaml (the stage run by hand)."""
    import re
    from pathlib import Path

    import yaml

    from ..arms import param
    from ..config import load_params
    from ..errors import ParamError

    if not Path("dvc.yaml").is_file():
        return
    deps = yaml.safe_load(Path("dvc.yaml").read_text()).get("stages", {}).get(stage, {}).get("deps", [])
    params = load_params()

    def value(match: "re.Match") -> str:   # ${train.lr}, ${seeds[0]}: rendered as DVC renders them
        v = param(params, match.group(1))
        return str(v[int(match.group(2))] if match.group(2) else v)

    declared = {re.sub(r"\$\{([\w.]+)(?:\[(\d+)\])?\}", value, d) for d in deps}
    missing = [p for p in paths if not any(p == d or p.startswith(f"{d}/") for d in declared)]
    if missing:
        raise ParamError(f"stage {stage} reads {missing[0]}, which dvc.yaml does not declare (a sweep changed since "
                         f"it was generated): regenerate it (`PYTHONPATH=src python -m rtd.dvcgen`), then run `dvc repro`")


def track_arg(argv: list[str] | None, description: str, **extra) -> "argparse.Namespace":
    """Parse ``--track`` (default vision) and the stage's own options ``extra`` = {flag: argparse kwargs}."""
    import argparse

    from ..tracks import BASE

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--track", default=BASE, help=f"a track under rtd/tracks/ (default {BASE})")
    for flag, kwargs in extra.items():
        parser.add_argument(flag, **kwargs)
    return parser.parse_args(argv)


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage; an RTDError becomes one line on stderr and exit status 2, with no traceback."""
    from ..errors import RTDError

    start = time.perf_counter()
    try:
        main()
    except RTDError as exc:
        print(f"error [{name}]: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error [{name}]: interrupted; no output was written", file=sys.stderr)
        sys.exit(130)
    # wall time goes to stderr only: outputs must stay byte-identical across runs
    print(f"[{name}] done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
