"""DistributedDataParallel (gloo, 2 CPU processes) and gradient accumulation match one process on the same
global batch: the same logged loss terms and the same weights after the step."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ddp_worker import run
from tests.helpers import subprocess_env
from rtd.distributed import World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(a: dict, b: dict) -> None:
    for k in a["terms"]:
        assert b["terms"][k] == pytest.approx(a["terms"][k], rel=1e-5, abs=1e-7), k
    assert b["weights"] == pytest.approx(a["weights"], rel=1e-4, abs=1e-6)


def test_two_gloo_processes_match_one_process(tmp_path):
    single = run(World())
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path / "out")],
                              env={**subprocess_env(), "WORLD_SIZE": "2", "RANK": str(r), "LOCAL_RANK": str(r),
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    ranks = [json.loads((tmp_path / f"out.rank{r}.json").read_text()) for r in range(2)]
    _close(single, ranks[0])
    assert ranks[0]["weights"] == ranks[1]["weights"], "DDP ranks must hold identical weights"


def test_gradient_accumulation_matches_one_batch():
    _close(run(World()), run(World(), grad_accum=2))
