"""Prints the max difference between the update of one SGD step on one device and on 2 replicas.

Run in its own process: the 2 logical CPU devices must be configured before TensorFlow starts.
"""
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from dflow_tf.models import TwoFramePWC  # noqa: E402
from dflow_tf.training.trainer import _make_train_step  # noqa: E402
from dflow_tf.training.unsupervised import UnsupervisedTask  # noqa: E402

rng = np.random.default_rng(0)
base = rng.uniform(size=(4, 1, 32, 48, 3)).astype(np.float32)
# Frame 2 is frame 1 shifted, plus noise, so the census / occlusion terms are non-trivial.
frames = np.concatenate([base, np.roll(base, 2, axis=3) * 0.9 + 0.05], axis=1)
batch = {"frames": tf.constant(frames)}
task = UnsupervisedTask(loss="census", occlusion=True)


def one_step(strategy):
    tf.keras.utils.set_random_seed(3)
    with strategy.scope():
        model = TwoFramePWC(num_levels=4)
        model(tf.zeros([1, 2, 32, 48, 3]))
        optimizer = keras.optimizers.SGD(learning_rate=1.0)
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64)
    before = [v.numpy().copy() for v in model.trainable_variables]
    dataset = tf.data.Dataset.from_tensors(batch).unbatch().batch(4).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    train_step = _make_train_step(strategy, model, optimizer, task, step, jit_compile=False, mixed_precision=False)
    loss, _, applied, _ = train_step(iterator)
    assert bool(applied)
    return float(loss), [b - v.numpy() for b, v in zip(before, model.trainable_variables)]


single_loss, single = one_step(tf.distribute.get_strategy())
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
double_loss, double = one_step(mirrored)
scale = max(np.abs(g).max() for g in single)
diff = max(np.abs(a - b).max() for a, b in zip(single, double))
print(f"RESULT loss_single={single_loss:.8f} loss_replicas={double_loss:.8f} max_grad={scale:.6g} max_diff={diff:.6g}")
sys.exit(0)
