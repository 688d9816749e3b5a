"""DVC's own time on this pipeline (issue 21's no-op goal and the per-stage cost of reading and rewriting dvc.lock).

    python -m benchmarks.dvc_overhead                          # this checkout, 3 repetitions
    python -m benchmarks.dvc_overhead before=/tmp/a after=.    # checkouts side by side (e.g. `git worktree add`)
    python -m benchmarks.dvc_overhead before=/tmp/a after=/tmp/b --train ft_newhead rtd --reps 2

Two timings per checkout, interleaved over repetitions so that machine noise hits all alike:
- `dvc status`: a no-op (DVC loads dvc.yaml and dvc.lock, reads each stage's params and hashes its deps);
- `dvc repro -f -s check`: one cheap stage forced, i.e. what DVC adds around every stage of a `dvc repro` (load the
  pipeline, check and run the stage, rewrite the whole dvc.lock) plus the params check itself (same in every tree).
No output need be present (a fresh clone works): both reads are of dvc.yaml, dvc.lock, params.yaml and the code.
With ``--train ARM ...``, a third timing per arm: `dvc repro -f -s` of every training stage of the arm (all seeds:
one stage per seed before, one per arm after), i.e. the training itself plus what the interpreter, torch and DVC
add per stage. That needs the arm's inputs (data, θ_T, D_OOD, the cache) in each checkout.
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


def _train_stages(tree: Path, arm: str) -> list[str]:
    """The stage instances that train ``arm`` in this checkout: `train_<arm>` or `train_<arm>@<seed>`."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"], cwd=tree, env=env,
                          capture_output=True, text=True, check=True)
    names = [n for n in proc.stdout.split() if n == f"train_{arm}" or n.startswith(f"train_{arm}@")]
    if not names:
        sys.exit(f"no training stage of arm {arm!r} in {tree}")
    return names


def _size(tree: Path, name: str) -> int:
    return sum(1 for _ in (tree / name).open())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="*", default=["this=."], help="label=path of a checkout (default: this=.)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", help="write the table as JSON here")
    parser.add_argument("--train", nargs="*", default=[], metavar="ARM", help="also time retraining these arms")
    opts = parser.parse_args(argv)
    trees = {label: Path(path).resolve() for label, _, path in (t.partition("=") for t in opts.trees)}
    commands = {label: {**COMMANDS, **{f"train_{arm}": ["repro", "-f", "-s", *_train_stages(tree, arm)]
                                       for arm in opts.train}} for label, tree in trees.items()}
    walls: dict = {label: {key: [] for key in commands[label]} for label in trees}
    for rep in range(opts.reps):
        for label, tree in trees.items():
            for key, args in commands[label].items():
                walls[label][key].append(_time(tree, args))
            print(f"rep {rep + 1}/{opts.reps} {label}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in walls[label].items()),
                  file=sys.stderr)
    first = next(iter(trees))
    rows = {label: {"dvc_yaml_lines": _size(tree, "dvc.yaml"), "dvc_lock_lines": _size(tree, "dvc.lock"),
                    **{f"{k}_s": round(statistics.median(v), 2) for k, v in walls[label].items()},
                    **{f"train_{arm}_stages": len(commands[label][f"train_{arm}"]) - 3 for arm in opts.train}}
            for label, tree in trees.items()}
    print(f"DVC's own time, median of {opts.reps} interleaved repetitions; cpu_count={os.cpu_count()}")
    keys = list(commands[first])
    heads = [f"retrain {k[6:]} (stages) s" for k in keys[len(COMMANDS):]]
    print("| checkout | dvc.yaml lines | dvc.lock lines | `dvc status` s | `dvc repro -f -s check` s | "
          + "".join(f"{h} | " for h in heads) + f"x ({first}) |")
    print("|---|---|---|---|---|" + "---|" * len(heads) + "---|")
    for label, row in rows.items():
        ratio = "/".join(f"{row[f'{k}_s'] / rows[first][f'{k}_s']:.2f}" for k in keys)
        trained = "".join(f"{row[f'{k}_s']} ({row[f'{k}_stages']}) | " for k in keys[len(COMMANDS):])
        print(f"| {label} | {row['dvc_yaml_lines']} | {row['dvc_lock_lines']} | {row['status_s']} | "
              f"{row['repro_one_stage_s']} | {trained}{ratio} |")
    if opts.out:
        Path(opts.out).write_text(json.dumps({"reps": opts.reps, "cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
