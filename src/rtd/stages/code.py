"""Stage `code`: fingerprint the code each stage runs.

It depends on the whole `src/rtd` folder and writes, for each stage entry module and each track package, the md5 of
every file in its import closure (``codedeps.fingerprint``). Every other stage depends on the fingerprints of the
modules it runs instead of listing those files one by one, so dvc.yaml stays short while a change to any file a
stage can execute (and only such a change) marks it stale: the fingerprints of the other modules come out the same
bytes, and DVC does not rerun the stages that depend on them.
"""
from __future__ import annotations

from .common import run_stage


def main(argv: list[str] | None = None) -> None:
    from ..codedeps import fingerprint, fingerprint_modules, fingerprint_path
    from ..io import write_text

    for module in fingerprint_modules():
        write_text(fingerprint_path(module), fingerprint(module))


if __name__ == "__main__":
    run_stage("code", main)
