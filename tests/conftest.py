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
