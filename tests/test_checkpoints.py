"""Checkpoints and model descriptions (dflow_tf.checkpoints) and the architecture registry."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import checkpoints, evaluate
from dflow_tf.models import ThreeFramePWC, TwoFramePWC, get_architecture, get_model


def test_registry_knows_architecture_tf1_and_class_names():
    assert get_architecture("two_frame") is get_architecture("ddflow") is get_architecture("TwoFramePWC") is TwoFramePWC
    assert get_architecture("three_frame") is get_architecture("selflow") is ThreeFramePWC
    assert get_model("selflow", num_levels=3).num_levels == 3


def test_registry_error_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown architecture 'flownet'") as error:
        get_architecture("flownet")
    for name in ("two_frame", "three_frame", "raft", "raft_small", "ddflow", "selflow", "TwoFramePWC",
                 "ThreeFramePWC", "RAFT", "RAFTSmall"):
        assert name in str(error.value)


def _stage(tmp_path, steps=(2, 4)):
    """A stage folder with model.json and checkpoints ckpt-2, ckpt-4 of a 3-level two-frame model."""
    model = TwoFramePWC(num_levels=3)
    stage = tmp_path / "stage"
    checkpoints.save_model_description(model, str(stage))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(stage / "checkpoints"), 3)
    for step in steps:
        manager.save(checkpoint_number=step)
    return model, stage


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def test_model_json_round_trip_and_newest_checkpoint(tmp_path):
    model, stage = _stage(tmp_path)
    assert checkpoints.latest_checkpoint(str(stage)).endswith("ckpt-4")
    assert [os.path.basename(p) for p in checkpoints.checkpoint_prefixes(str(stage))] == ["ckpt-4", "ckpt-2"]
    loaded, description = checkpoints.load_model(str(stage))
    assert isinstance(loaded, TwoFramePWC) and loaded.num_levels == 3 and "model.json" in description
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_truncated_data_file_is_reported_by_name(tmp_path, capsys):
    _, stage = _stage(tmp_path)
    data = glob.glob(str(stage / "checkpoints" / "ckpt-4.data-*"))[0]
    _truncate(data)
    with pytest.raises(checkpoints.CorruptCheckpointError, match="truncated or corrupt") as error:
        checkpoints.load_model(str(stage))
    assert data in str(error.value)
    # the command lines end with one line naming the file, no traceback
    assert evaluate.main(["--checkpoint", str(stage), "--pairs", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and data in err[0]


def test_corrupt_index_file_is_reported_by_name(tmp_path):
    _, stage = _stage(tmp_path, steps=(2,))
    index = str(stage / "checkpoints" / "ckpt-2.index")
    _truncate(index)
    with pytest.raises(checkpoints.CorruptCheckpointError, match="ckpt-2.index"):
        checkpoints.load_model(str(stage))


def test_resume_falls_back_to_the_newest_readable_checkpoint_and_says_so(tmp_path):
    _, stage = _stage(tmp_path, steps=(2, 4, 6))
    _truncate(glob.glob(str(stage / "checkpoints" / "ckpt-6.data-*"))[0])
    _truncate(str(stage / "checkpoints" / "ckpt-4.index"))
    messages = []
    resumed = checkpoints.resume_checkpoint(str(stage / "checkpoints"), log=messages.append)
    assert resumed.endswith("ckpt-2")
    assert len(messages) == 2 and "ckpt-6.data" in messages[0] and "ckpt-4.index" in messages[1]
    assert all("falling back" in m for m in messages)
    assert checkpoints.resume_checkpoint(str(tmp_path / "none")) is None
