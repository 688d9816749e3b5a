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


@pytest.fixture(scope="session")
def tiny_text_repo(tmp_path_factory):
    """The same for the language track alone (tiny BERT, one seed)."""
    from tests.helpers import make_tiny_repo, tiny_text_params

    return make_tiny_repo(tmp_path_factory.mktemp("rtd-text") / "repo", tiny_text_params())


# tests that use the tiny pipeline (the session fixture `tiny_repo`): one xdist worker runs them all
PIPELINE_MODULES = {"test_pipeline.py", "test_sharing.py"}


def pytest_xdist_make_scheduler(config, log):
    """`make test` runs `pytest -n 2`: the modules in PIPELINE_MODULES form one unit of work, which the first
    worker takes alone (it builds the tiny vision pipeline once and runs them); the second worker starts with
    the tiny text pipeline (test_text_pipeline.py) and then runs every other module.
    (xdist's own `--dist loadgroup` marks do not take effect under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    first = ("tiny_pipeline", "tests/test_text_pipeline.py")

    class PipelineTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return "tiny_pipeline" if module.rsplit("/", 1)[-1] in PIPELINE_MODULES else module

        def _assign_work_unit(self, node) -> None:
            for scope in first:   # the long units start first, one per worker
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
                    break
            super()._assign_work_unit(node)

        def _reschedule(self, node) -> None:
            pipeline = self.assigned_work.get(node, {}).get("tiny_pipeline")
            if pipeline is not None and not all(pipeline.values()):
                return   # the worker with the vision pipeline takes nothing else until it is done
            super()._reschedule(node)

    return PipelineTogether(config, log)


def pytest_itemcollected(item):
    """Tests marked `gpu` are skipped where CUDA is absent (CI, the 2-core machines)."""
    import torch

    if "gpu" in item.keywords and not torch.cuda.is_available():
        item.add_marker(pytest.mark.skip(reason="needs CUDA (marked gpu)"))
