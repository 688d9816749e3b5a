"""DVC's own time on this pipeline (issue 21's no-op goal and the per-stage cost of reading and rewriting dvc.lock).

    python -m benchmarks.dvc_overhead                          # this checkout, 3 repetitions
    python -m benchmarks.dvc_overhead before=/tmp/a after=.    # checkouts side by side (e.g. `git worktree add`)

Two timings per checkout, interleaved over repetitions so that machine noise hits all alike:
- `dvc status`: a no-op (DVC loads dvc.yaml and dvc.lock, reads each stage's params and hashes its deps);
- `dvc repro -f -s check`: one cheap stage forced, i.e. what DVC adds around every stage of a `dvc repro` (load the
  pipeline, check and run the stage, rewrite the whole dvc.lock) plus the params check itself (same in every tree).
No output need be present (a fresh clone works): both reads are of dvc.yaml, dvc.lock, params.yaml and the code.
Prints a table of medians and the ratio to the first checkout; ``--out`` writes it as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"status": ["status", "--json"], "repro_one_stage": ["repro", "-f", "-s", "check"]}


def _time(tree: Path, args: list[str]) -> float:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):   # `dvc status` exits 1 when something is stale (a clone without outputs)
        sys.exit(f"dvc {' '.join(args)} failed in {tree}: {proc.stderr.strip()[-300:]}")
    return wall


def _size(tree: Path, name: str) -> int:
    return sum(1 for _ in (tree / name).open())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="*", default=["this=."], help="label=path of a checkout (default: this=.)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", help="write the table as JSON here")
    opts = parser.parse_args(argv)
    trees = {label: Path(path).resolve() for label, _, path in (t.partition("=") for t in opts.trees)}
    walls: dict = {label: {key: [] for key in COMMANDS} for label in trees}
    for rep in range(opts.reps):
        for label, tree in trees.items():
            for key, args in COMMANDS.items():
                walls[label][key].append(_time(tree, args))
            print(f"rep {rep + 1}/{opts.reps} {label}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in walls[label].items()),
                  file=sys.stderr)
    first = next(iter(trees))
    rows = {label: {"dvc_yaml_lines": _size(tree, "dvc.yaml"), "dvc_lock_lines": _size(tree, "dvc.lock"),
                    **{f"{k}_s": round(statistics.median(v), 2) for k, v in walls[label].items()}}
            for label, tree in trees.items()}
    print(f"DVC's own time, median of {opts.reps} interleaved repetitions; cpu_count={os.cpu_count()}")
    print(f"| checkout | dvc.yaml lines | dvc.lock lines | `dvc status` s | `dvc repro -f -s check` s | x ({first}) |")
    print("|---|---|---|---|---|---|")
    for label, row in rows.items():
        ratio = "/".join(f"{row[f'{k}_s'] / rows[first][f'{k}_s']:.2f}" for k in COMMANDS)
        print(f"| {label} | {row['dvc_yaml_lines']} | {row['dvc_lock_lines']} | {row['status_s']} | "
              f"{row['repro_one_stage_s']} | {ratio} |")
    if opts.out:
        Path(opts.out).write_text(json.dumps({"reps": opts.reps, "cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
