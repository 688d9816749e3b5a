import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory):
    """A temporary copy of the repository with the tiny params, after one full `dvc repro`."""
    from tests.helpers import make_tiny_repo

    return make_tiny_repo(tmp_path_factory.mktemp("rtd") / "repo")


# tests that use the tiny pipeline (the session fixture `tiny_repo`): one xdist worker runs them all
PIPELINE_MODULES = {"test_pipeline.py", "test_sharing.py"}


def pytest_xdist_make_scheduler(config, log):
    """`make test` runs `pytest -n 2`: the modules in PIPELINE_MODULES form one unit of work, so one worker
    builds the tiny pipeline once and runs them while the other worker runs every other module.
    (xdist's own `--dist loadgroup` marks do not take effect under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class PipelineTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "tiny_pipeline" if module.rsplit("/", 1)[-1] in PIPELINE_MODULES else module

    return PipelineTogether(config, log)


def pytest_itemcollected(item):
    """Tests marked `gpu` are skipped where CUDA is absent (CI, the 2-core machines)."""
    import torch

    if "gpu" in item.keywords and not torch.cuda.is_available():
        item.add_marker(pytest.mark.skip(reason="needs CUDA (marked gpu)"))
