"""Shared test fixtures: quiet TensorFlow, locate the optional real data."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
FLOWDATA = pathlib.Path(os.environ.get("DFLOW_FLOWDATA", REPO_ROOT.parent / "shared" / "flowdata"))
TF1_CHECKPOINTS = pathlib.Path(os.environ.get("DFLOW_TF1_CHECKPOINTS", REPO_ROOT.parent / "shared" / "tf1_checkpoints"))


@pytest.fixture(scope="session")
def flowdata():
    """Path to ../shared/flowdata (real pairs with ground truth); skips when absent."""
    if not FLOWDATA.is_dir():
        pytest.skip(f"real flow data not found at {FLOWDATA}")
    return FLOWDATA


@pytest.fixture(scope="session")
def tf1_checkpoints():
    """Path to ../shared/tf1_checkpoints (released variable indexes); skips when absent."""
    if not TF1_CHECKPOINTS.is_dir():
        pytest.skip(f"TF1 checkpoint indexes not found at {TF1_CHECKPOINTS}")
    return TF1_CHECKPOINTS
