"""Does this checkout agree with the committed `dvc.lock`? (`make lockcheck`; CI's last step, on a fresh clone)

    python -m rtd.lockcheck        # exit 0: agrees; 1: prints each stage that disagrees and why

A fresh clone has no DVC cache, so every cached output is missing: that is expected (`make pull` or `dvc repro`
brings them). What must agree is everything git holds: each stage's code and params dependencies, its command, and
the `cache: false` outputs committed to git (reports, the params check). A stage whose recorded dependency differs
from the clone's file would rerun for a reviewer who pulled the artifacts (issue 21), and a committed report that
differs from its recorded hash was not produced by the recorded run.

The lock must also agree with itself: a stage that records a dependency with another hash than the stage that makes
that file records for it was run on an older version of its input (or relocked instead of rerun), and would rerun
for a reviewer who pulled the artifacts (``stale_inputs``).
"""
from __future__ import annotations

import json
import subprocess
import sys

import yaml


def disagreements(status: dict, tracked: set[str]) -> dict[str, list[str]]:
    """The problems per stage in ``dvc status --json`` output that involve files git tracks (``tracked``).

    Missing untracked outputs and dependencies (the cache's files, absent from a fresh clone) are not problems.
    """
    found: dict[str, list[str]] = {}
    for stage, entries in status.items():
        problems = []
        for entry in entries:
            if isinstance(entry, str):   # "changed command", "always changed"
                problems.append(entry)
                continue
            for kind, changes in entry.items():
                what = kind.removeprefix("changed ").rstrip("s")   # dep, out
                for path, state in changes.items():
                    if isinstance(state, dict):   # params: {key: new | modified | deleted}
                        problems += [f"param {path}:{key} {s}" for key, s in sorted(state.items())]
                    elif path in tracked:
                        problems.append(f"{what} {path} {state}")
        if problems:
            found[stage] = problems
    return found


def stale_inputs(lock: dict) -> dict[str, list[str]]:
    """The stages of a parsed dvc.lock whose recorded input file differs from what its producing stage recorded."""
    made = {out["path"]: (stage, out.get("md5")) for stage, entry in lock.get("stages", {}).items()
            for out in entry.get("outs", [])}
    found: dict[str, list[str]] = {}
    for stage, entry in lock.get("stages", {}).items():
        for dep in entry.get("deps", []):
            producer = made.get(dep["path"])
            if producer is not None and producer[1] != dep.get("md5"):
                found.setdefault(stage, []).append(f"dep {dep['path']} is not what {producer[0]} made")
    return found


def main() -> int:
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"lockcheck: `dvc status` failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return 2
    tracked = set(subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.splitlines())
    found = disagreements(json.loads(proc.stdout or "{}"), tracked)
    with open("dvc.lock") as f:
        for stage, problems in stale_inputs(yaml.safe_load(f)).items():
            found.setdefault(stage, []).extend(problems)
    for stage, problems in found.items():
        shown = ", ".join(problems[:4]) + (f", … ({len(problems)} in all)" if len(problems) > 4 else "")
        print(f"{stage}: {shown}")
    if found:
        print(f"lockcheck: {len(found)} stage(s) of dvc.lock disagree with the files git holds; run `dvc repro` "
              "and commit dvc.lock with the code and params it was made from", file=sys.stderr)
        return 1
    print("lockcheck: dvc.lock agrees with every file git holds (code, params, committed reports) and with itself")
    return 0


if __name__ == "__main__":
    sys.exit(main())
