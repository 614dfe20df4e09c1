"""Training objectives over the RAFT family's iterations, and distillation across families.

The sequence losses are checked against numpy: the weights decay^(T-1-k), RAFT's supervised loss
recomputed in numpy, and the unsupervised / distillation objectives of a model whose iterations
are fixed tensors against the numpy-weighted sum of the same objective on each iteration's flow.
The PWC path is checked bit for bit against the code before the sequence losses
(tests/scripts/pwc_loss_fingerprints.py).
"""
import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.checkpoints import save_model_description
from dflow_tf.data import schema
from dflow_tf.distillation.task import DistillationTask
from dflow_tf.distillation.teachers import TeacherEnsemble
from dflow_tf.losses.sequence import sequence_loss, sequence_weights
from dflow_tf.models import TwoFramePWC
from dflow_tf.models.raft import RAFTSmall
from dflow_tf.training import trainer
from dflow_tf.training.supervised import SupervisedTask
from dflow_tf.training.unsupervised import UnsupervisedTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SIZE = (24, 32)
T = 3


class FixedIterations:
    """A two-frame model whose forward and backward flows of every iteration are fixed tensors
    [B, T, H, W, 2]; with `iterations=None` it is a PWC-like model returning `flow` alone."""

    num_frames = 2

    def __init__(self, forward, backward, iterations=True):
        self.forward, self.backward = tf.constant(forward), tf.constant(backward)
        if iterations:
            self.iterations = int(forward.shape[1])

    def _output(self, flows):
        out = {"flow": flows[:, -1]}
        if hasattr(self, "iterations"):
            out["flow_iterations"] = flows
        return out

    def __call__(self, frames):
        return self._output(self.forward)

    def bidirectional(self, frames):
        return {"forward": self._output(self.forward), "backward": self._output(self.backward)}


def _iterations(seed, batch=2):
    return np.random.default_rng(seed).normal(scale=1.5, size=(batch, T, *SIZE, 2)).astype(np.float32)


def _frames(seed, batch=2):
    rng = np.random.default_rng(seed)
    first = rng.uniform(size=(batch, *SIZE, 3)).astype(np.float32)
    return tf.constant(np.stack([first, np.roll(first, 1, axis=2) * 0.9 + 0.05], axis=1))


def _per_iteration(task, forward, backward, batch):
    """The task's loss on each iteration's flow alone (a PWC-like model returning it as "flow")."""
    return np.array([float(task.compute_loss(FixedIterations(forward[:, k:k + 1], backward[:, k:k + 1], False),
                                             batch)[0]) for k in range(forward.shape[1])])


# ------------------------------------------------------------------------- sequence weighting
def test_sequence_weights_decay_towards_the_first_iteration():
    np.testing.assert_allclose(sequence_weights(4, 0.8), [0.512, 0.64, 0.8, 1.0])
    assert sequence_weights(3, 0) == sequence_weights(3, None) == [0.0, 0.0, 1.0]
    assert sequence_weights(1, 0.8) == [1.0]
    with pytest.raises(ValueError, match="at least 1"):
        sequence_weights(0, 0.8)


def test_sequence_loss_weights_each_iteration_and_skips_weight_zero():
    values = tf.constant([[1.0, 2.0, 4.0], [3.0, 6.0, 8.0]])  # [B=2, T=3]
    calls = []

    def mean(x):
        calls.append(1)
        return tf.reduce_mean(x), "extra"

    total, final = sequence_loss(mean, [values], decay=0.5)
    np.testing.assert_allclose(float(total), 0.25 * 2.0 + 0.5 * 4.0 + 1.0 * 6.0, rtol=1e-6)
    assert float(final[0]) == 6.0 and final[1] == "extra" and len(calls) == 3
    calls.clear()
    total, _ = sequence_loss(mean, [values], decay=0)
    assert float(total) == 6.0 and len(calls) == 1


# ------------------------------------------------------------------------------- supervised
def test_supervised_sequence_loss_equals_numpy_raft_loss_on_sparse_ground_truth():
    forward = _iterations(1)
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(2, *SIZE, 2)).astype(np.float32)
    valid = (rng.uniform(size=(2, *SIZE, 1)) > 0.4).astype(np.float32)
    gt[valid[..., 0] == 0] = 1e9  # garbage where invalid
    batch = {"frames": _frames(3), "flow": gt, "valid": valid}
    model = FixedIterations(forward, forward)
    # numpy: per image, mean |f_k - gt| over valid pixels and both components; batch mean
    per_k = [np.mean([np.abs(forward[b, k] - gt[b])[valid[b, ..., 0] > 0].sum() / (2 * valid[b].sum() + 1e-6)
                      for b in range(2)]) for k in range(T)]
    expected = sum(0.8 ** (T - 1 - k) * per_k[k] for k in range(T))
    loss, scalars, _ = SupervisedTask("sequence").compute_loss(model, batch)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert "loss/supervised_sequence" in scalars
    # decay 0: the final flow's L1 loss; a model without iterations: its one flow
    final_only, _, _ = SupervisedTask("sequence", sequence_decay=0).compute_loss(model, batch)
    np.testing.assert_allclose(float(final_only), per_k[-1], rtol=1e-5)
    pwc_like, _, _ = SupervisedTask("sequence").compute_loss(FixedIterations(forward, forward, False), batch)
    np.testing.assert_allclose(float(pwc_like), per_k[-1], rtol=1e-5)


def test_multiscale_loss_of_a_model_without_levels_is_a_clear_error():
    batch = {"frames": tf.zeros([1, 2, 32, 32, 3]), "flow": tf.zeros([1, 32, 32, 2]), "valid": tf.ones([1, 32, 32, 1])}
    with pytest.raises(ValueError, match="'multiscale' needs a model with pyramid levels.*RAFTSmall.*'sequence'"):
        SupervisedTask("multiscale").compute_loss(RAFTSmall(iterations=1), batch)


# ----------------------------------------------------------------------------- unsupervised
@pytest.mark.parametrize("task", [UnsupervisedTask("census", True, consistency_weight=0.5, smoothness_weight=0.1),
                                  UnsupervisedTask("photometric", False)], ids=["census", "photometric"])
def test_unsupervised_sequence_loss_is_the_decayed_sum_over_iterations(task):
    forward, backward = _iterations(4), _iterations(5)
    batch = {"frames": _frames(6)}
    per_k = _per_iteration(task, forward, backward, batch)
    assert np.ptp(per_k) > 1e-3  # the iterations differ, so a wrong weight shows
    loss, scalars, pictures = task.compute_loss(FixedIterations(forward, backward), batch)
    np.testing.assert_allclose(float(loss), np.dot([0.64, 0.8, 1.0], per_k), rtol=1e-5)
    # logged scalars and pictures are the final iteration's
    _, final_scalars, _ = task.compute_loss(FixedIterations(forward[:, -1:], backward[:, -1:], False), batch)
    assert set(scalars) == set(final_scalars)
    for name in final_scalars:
        np.testing.assert_allclose(float(scalars[name]), float(final_scalars[name]), rtol=1e-5, err_msg=name)
    np.testing.assert_array_equal(pictures["flow_forward"], forward[:, -1])
    # sequence_decay None: the final flow alone
    task.sequence_decay = None
    final, _, _ = task.compute_loss(FixedIterations(forward, backward), batch)
    task.sequence_decay = 0.8
    np.testing.assert_allclose(float(final), per_k[-1], rtol=1e-6)


# ----------------------------------------------------------------------------- distillation
def _distillation_batch(task, seed):
    rng = np.random.default_rng(seed)
    targets = {schema.TEACHER_FLOW_FW: rng.normal(size=(2, *SIZE, 2)),
               schema.TEACHER_FLOW_BW: rng.normal(size=(2, *SIZE, 2)),
               schema.TEACHER_OCCLUSION_FW: rng.uniform(size=(2, *SIZE, 1)) > 0.7,
               schema.TEACHER_OCCLUSION_BW: rng.uniform(size=(2, *SIZE, 1)) > 0.7}
    return task.prepare({"frames": _frames(seed), **{k: tf.constant(v, tf.float32) for k, v in targets.items()}})


def test_distillation_sequence_loss_is_the_decayed_sum_over_iterations():
    task = DistillationTask(teachers=None, transforms=None, sequence_decay=0.5)
    batch = _distillation_batch(task, 7)
    forward, backward = _iterations(8), _iterations(9)
    per_k = _per_iteration(task, forward, backward, batch)
    assert np.ptp(per_k) > 1e-3
    loss, scalars, pictures = task.compute_loss(FixedIterations(forward, backward), batch)
    np.testing.assert_allclose(float(loss), np.dot([0.25, 0.5, 1.0], per_k), rtol=1e-5)
    _, final_scalars, _ = task.compute_loss(FixedIterations(forward[:, -1:], backward[:, -1:], False), batch)
    for name in final_scalars:
        np.testing.assert_allclose(float(scalars[name]), float(final_scalars[name]), rtol=1e-5, err_msg=name)
    np.testing.assert_array_equal(pictures["flow_student"], forward[:, -1])
    task.sequence_decay = 0
    final, _, _ = task.compute_loss(FixedIterations(forward, backward), batch)
    np.testing.assert_allclose(float(final), per_k[-1], rtol=1e-6)


# -------------------------------------------------------------------------- PWC bit identity
#: pwc_loss_fingerprints.py run on commit f016300 (before the sequence losses), twice, equal.
PWC_BEFORE = {
    "census_two_frame": {"loss": "0x1.02c3a80000000p+2",
                         "gradients": "200810d80bcd2351c7569d8ef8c32591d52f80ddce56f13fbc5cd49060897d9c"},
    "distillation_three_frame": {"loss": "0x1.17ee0e0000000p+2",
                                 "gradients": "c8196bda03d588da05296b1a080eaa5039ba73b96b621559def0b7f17937ecee"},
    "distillation_two_frame": {"loss": "0x1.338e840000000p+2",
                               "gradients": "438a52ba18bd9e1c048f2fef427381f242efcfe6fd292fb6033faeed34445bd1"},
    "photometric_three_frame": {"loss": "0x1.aead980000000p+0",
                                "gradients": "dd0c6980d06fbab5caf6c572c616ad19c04ea792c1e8dd99eadbc6dac70fe0a8"},
    "supervised_multiscale": {"loss": "0x1.3623520000000p-5",
                              "gradients": "5ce5dae185e69589663257b31c9d66016c934badd41e8919c0f96c46e8a2dec8"},
    "supervised_robust": {"loss": "0x1.236bae0000000p+0",
                          "gradients": "dc808cc8e8bf94576ea7d3ee27e64661b7f3f98a10d9bb024f5fafeeb9bf81c8"},
}


def test_pwc_losses_and_gradients_are_bit_identical_to_before_the_sequence_losses():
    # its own process: the script turns on op determinism, which would stay on for other tests
    out = subprocess.run([sys.executable, os.path.join(REPO, "tests", "scripts", "pwc_loss_fingerprints.py")],
                         cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3"),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout) == PWC_BEFORE


# ------------------------------------------------------------------------ across families
def _save(model, directory):
    model(tf.zeros([1, 2, 32, 32, 3]))
    save_model_description(model, str(directory))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(directory / "checkpoints"), 1).save()


def _student_stage(tmp_path, teacher_model, student_fn):
    tf.keras.utils.set_random_seed(11)
    _save(teacher_model, tmp_path / "teacher")
    task = DistillationTask(teachers=TeacherEnsemble([str(tmp_path / "teacher")]), transforms=None)
    checkpoint, results, _ = trainer.train_stage(
        str(tmp_path / "student"), model_fn=student_fn, task=task, num_steps=2, batch_size=2,
        dataset="synthetic_flow/tiny", data_dir=str(tmp_path / "tfds"), crop_size=(64, 64), checkpoint_every=2,
        log_every=1, image_every=2, eval_split="validation", eval_batch_size=2, eval_batches=1, seed=5)
    assert checkpoint.endswith("ckpt-2")
    assert np.isfinite(results["epe_all/pixel_pooled"])
    return json.loads((tmp_path / "student" / "model.json").read_text())


@pytest.mark.slow
def test_pwc_teacher_distils_into_a_raft_student(tmp_path):
    description = _student_stage(tmp_path, TwoFramePWC(num_levels=4), lambda: RAFTSmall(iterations=2))
    assert "raft_small" in json.dumps(description)


@pytest.mark.slow
def test_raft_teacher_distils_into_a_pwc_student(tmp_path):
    description = _student_stage(tmp_path, RAFTSmall(iterations=2), lambda: TwoFramePWC(num_levels=4))
    assert "raft" not in json.dumps(description)


def test_gin_names_the_raft_models():
    import dflow_tf.configurables  # noqa: F401
    gin.clear_config()
    try:
        gin.parse_config("RAFTSmall.iterations = 4\nRAFT.iterations = 5")
        model = gin.get_configurable("dflow_tf.models.RAFTSmall")()
        assert isinstance(model, RAFTSmall) and model.iterations == 4
        assert gin.get_configurable("dflow_tf.models.RAFT")().iterations == 5
    finally:
        gin.clear_config()
