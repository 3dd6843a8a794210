import os
from pathlib import Path

import pytest
from hypothesis import settings

# ../shared beside the checkout holds POP909; a fresh clone has none and those tests skip
SHARED = Path(os.environ.get("STRIPE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
POP909 = SHARED / "pop909"
POP909_STRUCTURE = SHARED / "pop909-structure"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

# property tests draw the same cases on every run, so CI is never red by chance; explore new cases with
# HYPOTHESIS_PROFILE=explore (random draws, the example database on)
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def pop909_dir() -> Path:
    if not (POP909 / "split.json").exists():
        pytest.skip("../shared/pop909 not present")
    return POP909


@pytest.fixture
def pop909_structure_dir() -> Path:
    if not POP909_STRUCTURE.exists():
        pytest.skip("../shared/pop909-structure not present")
    return POP909_STRUCTURE


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch thread for the whole run: the tiny test models gain nothing from more, and on a busy
    machine extra intra-op threads spin at barriers."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random harmonizer (both stages) for CLI and pipeline tests; one per test module."""
    from tiny_models import tiny_harmonizer

    return tiny_harmonizer(tmp_path_factory.mktemp("tiny") / "harmonizer")
