"""Loss values and gradient fingerprints of every training objective on fixed PWC batches.

tests/test_raft_training.py compares `fingerprints()` of the current code with the values this
script printed for the code before the sequence losses (commit f016300):

    git archive f016300 | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/scripts/pwc_loss_fingerprints.py

Each case is {"loss": float.hex(loss), "gradients": sha256 of every gradient's float32 bytes in
variable order}: equal fingerprints mean bit-identical losses and gradients. Op determinism is
on, so the fingerprints repeat from run to run on the same machine and TensorFlow build.
"""
import hashlib
import json

import numpy as np
import tensorflow as tf

from dflow_tf.data import schema
from dflow_tf.distillation.task import DistillationTask
from dflow_tf.models import ThreeFramePWC, TwoFramePWC
from dflow_tf.training.supervised import SupervisedTask
from dflow_tf.training.unsupervised import UnsupervisedTask

SIZE = (32, 48)


def _model(model_class, seed):
    tf.keras.utils.set_random_seed(seed)
    model = model_class(num_levels=4)
    model(tf.zeros([1, model.num_frames, *SIZE, 3]))
    return model


def _frames(count, seed):
    """[2, count, H, W, 3]: a random first frame, each next one shifted by 2 px and dimmed."""
    rng = np.random.default_rng(seed)
    frames = [rng.uniform(size=(2, *SIZE, 3)).astype(np.float32)]
    for _ in range(count - 1):
        frames.append(np.roll(frames[-1], 2, axis=2) * 0.9 + 0.05)
    return np.stack(frames, axis=1)


def _fingerprint(model, task, batch):
    with tf.GradientTape() as tape:
        loss, _, _ = task.compute_loss(model, batch)
    grads = tape.gradient(loss, model.trainable_variables)
    digest = hashlib.sha256()
    for grad in grads:
        digest.update(np.asarray(tf.convert_to_tensor(grad), np.float32).tobytes())
    return {"loss": float(loss).hex(), "gradients": digest.hexdigest()}


def fingerprints():
    """{case: {"loss", "gradients"}} of the unsupervised, supervised and distillation objectives."""
    tf.config.experimental.enable_op_determinism()
    two, three = _model(TwoFramePWC, 1), _model(ThreeFramePWC, 2)
    rng = np.random.default_rng(7)
    gt = rng.normal(scale=2.0, size=(2, *SIZE, 2)).astype(np.float32)
    valid = (rng.uniform(size=(2, *SIZE, 1)) > 0.3).astype(np.float32)
    supervised = {"frames": _frames(2, 3), "flow": gt, "valid": valid}
    teacher_fw = rng.normal(size=(2, *SIZE, 2)).astype(np.float32)
    teacher_bw = rng.normal(size=(2, *SIZE, 2)).astype(np.float32)
    targets = {schema.TEACHER_FLOW_FW: teacher_fw, schema.TEACHER_FLOW_BW: teacher_bw,
               schema.TEACHER_OCCLUSION_FW: (rng.uniform(size=(2, *SIZE, 1)) > 0.8).astype(np.float32),
               schema.TEACHER_OCCLUSION_BW: (rng.uniform(size=(2, *SIZE, 1)) > 0.8).astype(np.float32)}
    distill = DistillationTask(teachers=None, transforms=None)
    cases = {
        "census_two_frame": (two, UnsupervisedTask("census", True, consistency_weight=0.5, smoothness_weight=0.1),
                             {"frames": _frames(2, 1)}),
        "photometric_three_frame": (three, UnsupervisedTask("photometric", False), {"frames": _frames(5, 2)}),
        "supervised_robust": (two, SupervisedTask("robust"), supervised),
        "supervised_multiscale": (two, SupervisedTask("multiscale"), supervised),
        "distillation_two_frame": (two, distill, distill.prepare({"frames": _frames(2, 4), **targets})),
        "distillation_three_frame": (three, distill, distill.prepare({"frames": _frames(5, 5), **targets})),
    }
    return {name: _fingerprint(model, task, {key: tf.constant(value) for key, value in batch.items()})
            for name, (model, task, batch) in cases.items()}


if __name__ == "__main__":
    print(json.dumps(fingerprints(), indent=1, sort_keys=True))
