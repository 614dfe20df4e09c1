"""Shipped models by name: "pretrained:NAME" in load_model, restore_weights (a stage's init_from) and
dflow_tf.load_pretrained, read from float16 portable states."""
import numpy as np
import pytest

import dflow_tf
from dflow_tf import checkpoints, pretrained
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import portable_state


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A package folder of pretrained models holding one model, "tiny", with random weights."""
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", str(tmp_path))
    model = TwoFramePWC(num_levels=3)
    rng = np.random.default_rng(1)
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    portable_state.save_state(str(tmp_path / "tiny"), model, step=40, num_steps=100, seconds=5.0, resumes=0)
    (tmp_path / "not_a_model").mkdir()
    return {v.path.split("/", 1)[1]: v.numpy().astype(np.float16).astype(np.float32) for v in model.weights}


def _weights(model):
    return {v.path.split("/", 1)[1]: v.numpy() for v in model.weights}


def test_load_pretrained_rebuilds_the_model_with_its_float16_weights(shipped):
    assert pretrained.names() == ["tiny"]
    model = dflow_tf.load_pretrained("tiny")
    assert isinstance(model, TwoFramePWC) and model.num_levels == 3
    loaded = _weights(model)
    assert loaded.keys() == shipped.keys()
    for key, value in shipped.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)


def test_every_checkpoint_argument_takes_a_pretrained_name(shipped):
    model, description = checkpoints.load_model("pretrained:tiny")
    assert "in training: step 40 of 100" in description
    np.testing.assert_array_equal(_weights(model)["feature_extractor/conv1_1/kernel"],
                                  shipped["feature_extractor/conv1_1/kernel"])
    fresh = TwoFramePWC(num_levels=3)
    checkpoints.restore_weights(fresh, "pretrained:tiny")  # what a stage's init_from calls
    for key, value in _weights(fresh).items():
        np.testing.assert_array_equal(value, shipped[key], err_msg=key)


def test_an_unknown_name_lists_the_known_ones(shipped):
    del shipped
    with pytest.raises(ValueError, match=r"unknown pretrained model 'nope'; known: tiny"):
        checkpoints.load_model("pretrained:nope")
