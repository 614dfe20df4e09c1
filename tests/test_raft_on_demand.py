"""RAFT's on-demand correlation (`correlation="on_demand"`, dflow_tf.models.raft_correlation
.lookup_on_demand): equal to the all-pairs lookup (values and gradients), to numpy loops, in the
full RAFT and RAFT-small forward passes, through get_config / model.json, and without
intermediates as large as the all-pairs volume or the [B, H, W, (2r+1)^2, C] windows."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import numpy_reference as ref
from dflow_tf import checkpoints
from dflow_tf.models import RAFT, RAFTSmall, raft as raft_module
from dflow_tf.models.raft_correlation import (
    all_pairs_correlation,
    correlation_pyramid,
    feature_pyramid,
    lookup_correlation,
    lookup_on_demand,
)

RNG = np.random.default_rng(7)


def _features(b, h, w, c, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(b, h, w, c)).astype(np.float32) for _ in range(2)]


def _targets(b, h, w, radius, levels, seed):
    """Targets spread over and beyond the map (down to -(r+1) 2^(L-1) and up to (size + r + 1)
    2^(L-1)), a few exactly on the border and on integer cells."""
    rng = np.random.default_rng(seed)
    reach = (radius + 1.5) * 2 ** (levels - 1)
    targets = np.stack([rng.uniform(-reach, w - 1 + reach, size=(b, h, w)),
                        rng.uniform(-reach, h - 1 + reach, size=(b, h, w))], axis=-1).astype(np.float32)
    targets[0, 0, 0] = (0.0, 0.0)
    targets[0, 0, 1] = (w - 1, h - 1)
    targets[0, 1, 0] = (-radius - 1, h - 1 + radius + 0.5)
    targets[-1, -1, -1] = (w - 0.5, -0.25)
    targets[-1, 0] = np.round(targets[-1, 0])  # integer targets
    return targets


def _all_pairs(f1, f2, targets, radius, levels):
    return lookup_correlation(correlation_pyramid(all_pairs_correlation(f1, f2), levels), targets, radius)


def _on_demand(f1, f2, targets, radius, levels):
    return lookup_on_demand(f1, feature_pyramid(f2, levels), targets, radius)


@pytest.mark.parametrize("b, h, w, c, radius, levels", [(2, 7, 9, 16, 3, 4), (1, 8, 12, 8, 4, 4),
                                                        (2, 5, 6, 4, 1, 3), (1, 3, 3, 5, 2, 4)])
def test_on_demand_lookup_equals_the_all_pairs_lookup(b, h, w, c, radius, levels):
    f1, f2 = _features(b, h, w, c, seed=h * w)
    targets = _targets(b, h, w, radius, levels, seed=c)
    want = _all_pairs(f1, f2, targets, radius, levels).numpy()
    got = _on_demand(f1, f2, targets, radius, levels).numpy()
    assert got.shape == want.shape == (b, h, w, levels * (2 * radius + 1) ** 2) and got.dtype == np.float32
    assert np.abs(want).max() > 0.5 and (want == 0).any()  # non-trivial values, and windows outside the map
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)


def test_on_demand_lookup_matches_numpy_loops():
    """The definition, looped: <f1, f2 pooled l times sampled at target / 2^l + (dx, dy)> / sqrt(C)."""
    b, h, w, c, radius, levels = 1, 5, 6, 3, 2, 3
    f1, f2 = _features(b, h, w, c, seed=11)
    targets = _targets(b, h, w, radius, levels, seed=12)
    got = _on_demand(f1, f2, targets, radius, levels).numpy()
    size = 2 * radius + 1
    pooled = [f2[0].astype(np.float64)]
    for _ in range(levels - 1):
        pooled.append(np.stack([ref.average_pool_2x2(pooled[-1][..., k]) for k in range(c)], axis=-1))
    want = np.zeros((b, h, w, levels * size * size))
    for i in range(h):
        for j in range(w):
            for level in range(levels):
                x, y = targets[0, i, j] / 2.0 ** level
                for dx in range(-radius, radius + 1):
                    for dy in range(-radius, radius + 1):
                        sample = ref.bilinear_sample(pooled[level], x + dx, y + dy)
                        channel = level * size * size + (dx + radius) * size + (dy + radius)
                        want[0, i, j, channel] = np.dot(f1[0, i, j], sample) / np.sqrt(c)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_on_demand_gradients_equal_the_all_pairs_gradients():
    b, h, w, c, radius, levels = 2, 6, 7, 8, 3, 4
    f1, f2 = (tf.constant(f) for f in _features(b, h, w, c, seed=3))
    targets = tf.constant(_targets(b, h, w, radius, levels, seed=4))
    weights = tf.constant(RNG.normal(size=(b, h, w, levels * (2 * radius + 1) ** 2)).astype(np.float32))
    grads = []
    for lookup in (_all_pairs, _on_demand):
        with tf.GradientTape() as tape:
            tape.watch([f1, f2, targets])
            loss = tf.reduce_sum(weights * lookup(f1, f2, targets, radius, levels))
        grads.append([tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, [f1, f2, targets])])
    for want, got in zip(*grads):
        assert np.abs(want).max() > 0.1
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


def test_on_demand_lookup_casts_half_precision_features_to_float32():
    f1, f2 = _features(1, 4, 4, 8, seed=5)
    targets = _targets(1, 4, 4, 1, 2, seed=6)
    got = _on_demand(tf.cast(f1, tf.bfloat16), tf.cast(f2, tf.bfloat16), targets, 1, 2)
    want = _all_pairs(tf.cast(f1, tf.bfloat16), tf.cast(f2, tf.bfloat16), targets, 1, 2)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_no_intermediate_holds_the_volume_or_all_windows():
    b, h, w, c, radius, levels = 1, 16, 24, 32, 3, 4
    lookup = tf.function(lambda f1, f2, t: _on_demand(f1, f2, t, radius, levels))
    graph = lookup.get_concrete_function(tf.TensorSpec([b, h, w, c]), tf.TensorSpec([b, h, w, c]),
                                         tf.TensorSpec([b, h, w, 2])).graph
    largest = max(int(np.prod(out.shape.as_list())) for op in graph.get_operations() for out in op.outputs
                  if out.shape.rank and out.shape.is_fully_defined())
    assert largest == b * h * w * (2 * radius + 2) * c  # one gathered column
    assert largest < b * h * w * (2 * radius + 1) ** 2 * c and largest < (h * w) ** 2 * c // 8


# ------------------------------------------------------------------ the models
def _frames(batch=1, height=64, width=96, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(size=(batch, height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    big = tf.image.resize(coarse, (height + 16, width + 16)).numpy()
    return tf.constant(np.stack([big[:, 8:height + 8, 8:width + 8], big[:, 5:height + 5, 10:width + 10]], axis=1))


@pytest.mark.parametrize("model_class, seed", [(RAFTSmall, 1), (RAFT, 2)])
def test_on_demand_model_equals_the_all_pairs_model(model_class, seed, monkeypatch):
    keras.utils.set_random_seed(seed)
    all_pairs = model_class(iterations=3)
    on_demand = model_class(iterations=3, correlation="on_demand")
    on_demand.set_weights(all_pairs.get_weights())
    frames = _frames(seed=seed)
    want = all_pairs(frames)
    monkeypatch.setattr(raft_module, "all_pairs_correlation", None)  # the on-demand model never builds the volume
    got = on_demand(frames)
    assert np.abs(want["flow"].numpy()).max() > 0.1
    np.testing.assert_allclose(got["flow_iterations"], want["flow_iterations"], atol=2e-4, rtol=1e-4)
    got = on_demand.bidirectional(frames)
    monkeypatch.undo()
    want = all_pairs.bidirectional(frames)
    np.testing.assert_allclose(got["backward"]["flow"], want["backward"]["flow"], atol=2e-4, rtol=1e-4)


def test_on_demand_weight_gradients_equal_the_all_pairs_gradients():
    keras.utils.set_random_seed(5)
    models = [RAFTSmall(iterations=2), RAFTSmall(iterations=2, correlation="on_demand")]
    models[1].set_weights(models[0].get_weights())
    frames = _frames(height=32, width=48, seed=3)
    grads = []
    for model in models:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(frames)["flow_iterations"]))
        grads.append(tape.gradient(loss, model.trainable_variables))
    for variable, want, got in zip(models[0].trainable_variables, *grads):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-3, err_msg=variable.path)


def test_config_and_model_json_round_trip(tmp_path):
    keras.utils.set_random_seed(6)
    model = RAFTSmall(iterations=2, correlation="on_demand")
    assert model.get_config()["correlation"] == "on_demand"
    assert RAFT(iterations=1).get_config()["correlation"] == "all_pairs"
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(clone, RAFTSmall) and clone.correlation == "on_demand"
    tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    checkpoints.save_model_description(model, str(tmp_path))
    assert json.loads((tmp_path / "model.json").read_text())["config"]["correlation"] == "on_demand"
    loaded, _ = checkpoints.load_model(str(tmp_path))
    assert isinstance(loaded, RAFTSmall) and loaded.correlation == "on_demand" and loaded.iterations == 2
    frames = _frames(height=32, width=48)
    np.testing.assert_array_equal(loaded(frames)["flow"], model(frames)["flow"])
    other, _ = checkpoints.load_model(str(tmp_path), model_params={"correlation": "all_pairs"})
    assert other.correlation == "all_pairs"
    np.testing.assert_allclose(other(frames)["flow"], model(frames)["flow"], atol=2e-4)
    with pytest.raises(ValueError, match="correlation must be one of"):
        RAFTSmall(correlation="alternate")
