"""Stage `check`: validate params.yaml before any other stage runs.

Every stage depends on this stage's output, so DVC runs it first, and a bad value (a wrong type from
`dvc exp run -S`, a misspelt key, an unknown track) stops the pipeline here with one line, before DVC removes any
other stage's outputs to rerun it. The output is the same bytes whenever the params are valid, so a params
change reruns only this check and the stages that read the changed keys.
"""
from __future__ import annotations

from .common import run_stage

OUTPUT = "reports/params_check.txt"


def main(argv: list[str] | None = None) -> None:
    from ..config import load_params
    from ..io import write_text

    load_params()
    write_text(OUTPUT, "params.yaml is valid\n")


if __name__ == "__main__":
    run_stage("check", main)
