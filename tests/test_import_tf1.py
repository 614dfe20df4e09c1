"""Importer of the released DDFlow / SelFlow TF1 checkpoints (dflow_tf.import_tf1).

The real weight shards are not available, so the tests write TF1-format checkpoints (SaveV2,
the op behind tf.compat.v1 Saver) with exactly the released names and shapes and random values.
A reference forward pass transcribed from the TF1 network.py files (reading the weights by their
TF1 names) checks that the imported Keras model wires the inputs in the TF1 order.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import import_tf1, tf1_checkpoints
from dflow_tf.checkpoints import load_model
from dflow_tf.models import get_model
from dflow_tf.ops import backward_warp, resize_flow

RELEASED = [("ddflow_kitti_census_occlusion", "ddflow", 4_273_628),
            ("ddflow_chairs_data_distillation", "ddflow", 4_273_628),
            ("selflow_three_frame", "selflow", 4_790_876)]
PARAMS = {"ddflow": 4_273_628, "selflow": 4_790_876}


def _write_tf1_checkpoint(prefix, shapes, seed=0):
    """Writes {name: shape} as a TF1 checkpoint; returns {name: value}. `Variable` = global step."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in sorted(shapes.items()):
        if name == "Variable":
            values[name] = np.int64(1234)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            values[name] = (rng.normal(size=shape) / np.sqrt(fan_in)).astype(np.float32)
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return values


def _own_names(arch):
    model = get_model(arch)
    shapes = {name: tuple(v.shape) for name, v in tf1_checkpoints.tf1_variable_map(model).items()}
    shapes["Variable"] = ()
    return shapes


def _released_names(root, folder):
    return {name: tuple(shape) for name, shape in tf.train.list_variables(str(root / folder / "model"))}


def _check_import(tmp_path, shapes, arch, params):
    prefix = str(tmp_path / "tf1" / "model")
    os.makedirs(os.path.dirname(prefix))
    values = _write_tf1_checkpoint(prefix, shapes)
    out = tmp_path / "out"
    assert import_tf1.main(["--checkpoint", prefix, "--arch", arch, "--out", str(out)]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["arch"] == arch and meta["source"] == prefix
    model, _ = load_model(str(out))
    assert model.count_params() == params
    # Every TF1 variable except the global step lands somewhere, and nothing is left over.
    mapping = tf1_checkpoints.tf1_variable_map(model)
    assert set(mapping) == set(shapes) - {"Variable"}
    for name, variable in mapping.items():
        np.testing.assert_array_equal(variable.numpy(), values[name], err_msg=name)
    # Spot checks through the layer attributes (independent of tf1_variable_map).
    np.testing.assert_array_equal(model.estimator_level_4.conv1.kernel.numpy(),
                                  values["estimator_level_4/conv1/weights"])
    np.testing.assert_array_equal(model.estimator_level_4.conv1.bias.numpy(),
                                  values["estimator_level_4/conv1/biases"])
    np.testing.assert_array_equal(model.context_network.dilated_conv3.kernel.numpy(),
                                  values["context_network/dilated_conv3/weights"])
    np.testing.assert_array_equal(model.feature_pyramid.conv3_1.kernel.numpy(),
                                  values["feature_extractor/conv3_1/weights"])
    return model, values


@pytest.mark.parametrize("arch", ["ddflow", "selflow"])
def test_import_with_own_names(tmp_path, arch):
    _check_import(tmp_path, _own_names(arch), arch, PARAMS[arch])


@pytest.mark.parametrize("folder,arch,params", RELEASED)
def test_import_with_released_names(tmp_path, tf1_checkpoints, folder, arch, params):
    shapes = _released_names(tf1_checkpoints, folder)
    assert len(shapes) == 99 and "Variable" in shapes
    _check_import(tmp_path, shapes, arch, params)


def test_mismatches_are_named(tmp_path):
    shapes = _own_names("ddflow")
    shapes["extra_scope/conv1/weights"] = (3, 3, 1, 1)
    del shapes["estimator_level_3/conv5/biases"]
    shapes["context_network/dilated_conv2/weights"] = (3, 3, 128, 64)
    prefix = str(tmp_path / "model")
    _write_tf1_checkpoint(prefix, shapes)
    with pytest.raises(tf1_checkpoints.CheckpointMismatchError) as info:
        tf1_checkpoints.import_checkpoint(prefix, "ddflow")
    message = str(info.value)
    assert "extra_scope/conv1/weights" in message
    assert "estimator_level_3/conv5/biases" in message
    assert "context_network/dilated_conv2/weights: checkpoint (3, 3, 128, 64) vs model (3, 3, 128, 128)" in message
    assert "Variable" not in message.replace("variables", "")
    # The wrong architecture fails on the first-conv widths, naming them.
    selflow = str(tmp_path / "selflow")
    _write_tf1_checkpoint(selflow, _own_names("selflow"))
    assert import_tf1.main(["--checkpoint", selflow, "--arch", "ddflow", "--out", str(tmp_path / "o")]) == 1
    with pytest.raises(tf1_checkpoints.CheckpointMismatchError, match="estimator_level_6/conv1/weights"):
        tf1_checkpoints.import_checkpoint(selflow, "ddflow")


# ----------------------------------------------------------------------- TF1 reference forward
def _lrelu(x):
    return tf.maximum(x, 0.2 * x)  # utils.lrelu


def _conv(w, scope, x, stride=1, rate=1, linear=False):
    y = tf.nn.conv2d(x, w[f"{scope}/weights"], stride, "SAME", dilations=rate) + w[f"{scope}/biases"]
    return y if linear else _lrelu(y)


def _features(w, image):
    feats, x = {}, image
    for level in range(1, 7):
        x = _conv(w, f"feature_extractor/conv{level}_1", x, stride=2)
        x = _conv(w, f"feature_extractor/conv{level}_2", x)
        feats[level] = x
    return feats


def _corr(x1, x2, d=9):
    """network.py compute_cost_volume: extract_image_patches on L2-normalised features."""
    x1 = tf.nn.l2_normalize(x1, axis=3)
    x2 = tf.nn.l2_normalize(x2, axis=3)
    b, h, wd, c = x1.shape
    patches = tf.image.extract_patches(x2, [1, d, d, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
    patches = tf.reshape(patches, [b, h, wd, d, d, c])
    return tf.reshape(tf.reduce_sum(x1[:, :, :, None, None, :] * patches, -1), [b, h, wd, d * d])


def _estimator(w, level, net_input):
    scope = f"estimator_level_{level}"
    x = net_input
    for i in range(1, 6):
        x = _conv(w, f"{scope}/conv{i}", x)
    return x, _conv(w, f"{scope}/conv6", x, linear=True)


def _context(w, x):
    for i, rate in enumerate((1, 2, 4, 8, 16, 1), start=1):
        x = _conv(w, f"context_network/dilated_conv{i}", x, rate=rate)
    return _conv(w, "context_network/dilated_conv7", x, linear=True)


def _ddflow_reference(w, img1, img2):
    f1, f2 = _features(w, img1), _features(w, img2)
    flow = tf.zeros_like(f1[6][..., :2])
    for level in range(6, 1, -1):
        if level < 6:
            flow = resize_flow(flow, f1[level].shape[1:3])
        x2_warp = backward_warp(f2[level], flow)[0]
        cost = _corr(f1[level], x2_warp)
        x1 = tf.nn.l2_normalize(f1[level], axis=3)  # DDFlow feeds the normalised features
        conv5, flow = _estimator(w, level, tf.concat([cost, x1, flow], -1))
    refined = _context(w, tf.concat([conv5, flow], -1)) + flow
    return resize_flow(refined, img1.shape[1:3])


def _selflow_reference(w, img0, img1, img2):
    f0, f1, f2 = _features(w, img0), _features(w, img1), _features(w, img2)
    fw = tf.zeros_like(f1[6][..., :2])
    bw = tf.zeros_like(fw)
    for level in range(6, 1, -1):
        if level < 6:
            fw = resize_flow(fw, f1[level].shape[1:3])
            bw = resize_flow(bw, f1[level].shape[1:3])
        cv_fw = _corr(f1[level], backward_warp(f2[level], fw)[0])
        cv_bw = _corr(f1[level], backward_warp(f0[level], bw)[0])
        net_fw, new_fw = _estimator(w, level, tf.concat([cv_fw, cv_bw, f1[level], fw, -bw], -1))
        net_bw, new_bw = _estimator(w, level, tf.concat([cv_bw, cv_fw, f1[level], bw, -fw], -1))
        fw, bw = new_fw, new_bw
    ref_fw = _context(w, tf.concat([net_fw, net_bw, fw, -bw], -1))
    ref_bw = _context(w, tf.concat([net_bw, net_fw, bw, -fw], -1))
    return resize_flow(ref_fw, img1.shape[1:3]), resize_flow(ref_bw, img1.shape[1:3])


def _images(count, seed):
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(count, 8, 8, 3)).astype(np.float32)
    return tf.image.resize(coarse, (64, 64))[:, tf.newaxis]  # [count, 1, 64, 64, 3]


@pytest.mark.parametrize("arch", ["ddflow", "selflow"])
def test_imported_model_matches_tf1_reference(tmp_path, arch):
    prefix = str(tmp_path / "model")
    weights = _write_tf1_checkpoint(prefix, _own_names(arch), seed=5)
    weights = {k: tf.constant(v) for k, v in weights.items() if k != "Variable"}
    model = tf1_checkpoints.import_checkpoint(prefix, arch)
    images = _images(model.num_frames, seed=6)
    out = model.bidirectional(tf.transpose(images, [1, 0, 2, 3, 4]))  # [1, frames, 64, 64, 3]
    if arch == "ddflow":
        expected = {"forward": _ddflow_reference(weights, images[0], images[1])}
        out = {"forward": out["forward"]["flow"]}
    else:
        fw, bw = _selflow_reference(weights, images[0], images[1], images[2])
        expected = {"forward": fw, "backward": bw}
        out = {key: out[key]["flow"] for key in ("forward", "backward")}
    for key, value in expected.items():
        scale = float(tf.reduce_max(tf.abs(value)))
        assert scale > 0.05, "reference flow too small to be a meaningful check"
        np.testing.assert_allclose(out[key], value, atol=1e-4 * max(1.0, scale), err_msg=key)
