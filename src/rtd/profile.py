"""Params profiles: the paper configuration as one named set of `-S` overrides (``profiles/<name>.yaml``).

    python -m rtd.profile camelyon17            # print the `dvc exp run` command the profile stands for
    python -m rtd.profile camelyon17 --check    # validate, and check that the data and weights are present
    python -m rtd.profile camelyon17 --run      # check, then `dvc exp run -n paper-camelyon17 -S ...`
    python -m rtd.profile camelyon17 --run --queue   # queue it instead (`dvc queue start`)
    python -m rtd.profile camelyon17 --run --set vision.wilds_root=/data/wilds --set train.grad_accum=4

The check runs before DVC starts, so a missing WILDS root or missing CLIP weights stop within seconds,
before the data stage spends an hour reading images.
"""
from __future__ import annotations

import argparse
import copy
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .config import load_yaml
from .errors import RTDError

PROFILES = Path("profiles")


def available() -> list[str]:
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))


def load_profile(name: str) -> dict[str, Any]:
    """The profile's overrides: dotted params keys -> values."""
    path = PROFILES / f"{name}.yaml"
    if not path.is_file():
        raise RTDError(f"unknown profile {name!r}; choose one of {', '.join(available()) or '(none in profiles/)'}")
    overrides = load_yaml(path.read_text()) or {}
    if not isinstance(overrides, dict):
        raise RTDError(f"{path} must map dotted params keys to values")
    return overrides


def apply(params: dict, overrides: dict[str, Any]) -> dict:
    """``params`` with the overrides set (a copy); an override of a key params.yaml lacks is an error."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        node = out
        *parents, last = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise RTDError(f"profile key `{dotted}` is not in params.yaml")
            node = node[key]
        if last not in node:
            raise RTDError(f"profile key `{dotted}` is not in params.yaml")
        node[last] = value
    return out


def set_args(overrides: dict[str, Any]) -> list[str]:
    """The `-S key=value` arguments (values in YAML flow style, as `dvc exp run -S` parses them)."""
    args = []
    for key, value in overrides.items():
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
        args += ["-S", f"{key}={text.removesuffix('...').strip()}"]
    return args


def preflight(params: dict) -> None:
    """Stop with one clear message if the params are invalid or the data or weights are missing."""
    from .config import validate

    validate(params)
    from .tracks import for_track, get_track

    for track in params["tracks"]:
        get_track(track).preflight(for_track(params, track))


def command(name: str, overrides: dict[str, Any], queue: bool = False) -> list[str]:
    return ["dvc", "exp", "run", "-n", f"paper-{name}", *(["--queue"] if queue else []), *set_args(overrides)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="select a params profile (the paper configuration)")
    parser.add_argument("name", help=f"one of profiles/*.yaml ({', '.join(available())})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="validate and check data and weights, then stop")
    group.add_argument("--run", action="store_true", help="check, then run the profile as a DVC experiment")
    parser.add_argument("--queue", action="store_true", help="with --run: queue the experiment instead")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="one more override on top of the profile (repeatable), e.g. vision.wilds_root=/data")
    opts = parser.parse_args(argv)

    from .config import load_params

    overrides = load_profile(opts.name)
    for item in opts.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise RTDError(f"--set {item!r} must be KEY=VALUE")
        overrides[key] = load_yaml(value)
    cmd = command(opts.name, overrides, opts.queue)
    if not (opts.check or opts.run):
        print(shlex.join(cmd))
        return
    preflight(apply(load_params(), overrides))
    if opts.check:
        print(f"profile {opts.name}: params valid, data and weights found", file=sys.stderr)
        return
    sys.exit(subprocess.call(cmd))


if __name__ == "__main__":
    from .stages.common import run_stage

    run_stage("profile", main)
