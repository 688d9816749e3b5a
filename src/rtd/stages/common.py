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
