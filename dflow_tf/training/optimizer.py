"""The optimiser of docs/method.md §2.6: Adam, with the learning rate a function of the stage's step.

Two schedules, both with an optional linear warm-up (from 4 % of `learning_rate` to all of it over
`warmup_steps`):
  "halving"   lr(t) = learning_rate * 0.5 ** floor(t / halve_every) (DDFlow's);
  "one_cycle" after the warm-up, a cosine from `learning_rate` down to `final_learning_rate` at
              `total_steps`, constant after it (for training from scratch; PWC-Net's training
              logs show a cyclic rate learning faster than a constant one).
t is the stage's step (`StageSchedule.step`, the trainer's step variable), not the optimiser's
update count: a stage resumed from its portable state (dflow_tf.training.portable_state) starts
Adam's moments afresh (update count 0, so Adam's bias correction is right for them) at the
schedule position of the saved step.
"""
import math

import gin
import keras
import tensorflow as tf

SCHEDULES = ("halving", "one_cycle")
WARMUP_START = 0.04  # the warm-up starts at this fraction of the learning rate


@keras.saving.register_keras_serializable(package="dflow_tf")
class StageSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate of the stage's step (module docstring). `step`: a scalar integer variable
    read at every update; None = the optimiser's update count that Keras passes in."""

    def __init__(self, learning_rate=1e-4, schedule="halving", halve_every=80_000, warmup_steps=0,
                 total_steps=None, final_learning_rate=None, step=None):
        if schedule not in SCHEDULES:
            raise ValueError(f"make_optimizer.schedule must be one of {SCHEDULES}, got {schedule!r}")
        if schedule == "one_cycle" and not total_steps:
            raise ValueError("make_optimizer.schedule='one_cycle' needs make_optimizer.total_steps")
        self.learning_rate = float(learning_rate)
        self.schedule = schedule
        self.halve_every = int(halve_every)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps) if total_steps else None
        self.final_learning_rate = (self.learning_rate / 100.0 if final_learning_rate is None
                                    else float(final_learning_rate))
        self.step = step

    def __call__(self, iterations):
        t = tf.cast(self.step if self.step is not None else iterations, tf.float32)
        return learning_rate_at(t, self.learning_rate, self.schedule, self.halve_every, self.warmup_steps,
                                self.total_steps, self.final_learning_rate)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "schedule": self.schedule, "halve_every": self.halve_every,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "final_learning_rate": self.final_learning_rate}


def learning_rate_at(t, learning_rate, schedule, halve_every, warmup_steps, total_steps, final_learning_rate):
    """float32 learning rate at step t (a float32 tensor); see the module docstring."""
    if schedule == "halving":
        rate = learning_rate * tf.pow(0.5, tf.floor(t / float(halve_every)))
    else:
        progress = tf.clip_by_value((t - warmup_steps) / float(max(total_steps - warmup_steps, 1)), 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
        rate = final_learning_rate + (learning_rate - final_learning_rate) * cosine
    if warmup_steps > 0:
        ramp = tf.minimum(t / float(warmup_steps), 1.0)
        rate = rate * (WARMUP_START + (1.0 - WARMUP_START) * ramp)
    return rate


@gin.configurable
def make_optimizer(learning_rate=1e-4, halve_every=80_000, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                   schedule="halving", warmup_steps=0, total_steps=None, final_learning_rate=None,
                   mixed_precision=False, step=None, clip_global_norm=None):
    """Adam with the StageSchedule of these arguments (`step`: the stage's step variable).

    `clip_global_norm`: when set, each update's gradients are scaled down to this global norm
    first (RAFT clips at 1.0): a rare huge gradient then cannot throw Adam's moments, and the
    weights, far off in one step.

    DDFlow's release halves every 80k steps (the papers say 50k [unverified]); both are a binding.
    With `mixed_precision` "float16" (or True) the optimiser is wrapped in a dynamic
    LossScaleOptimizer; "bfloat16" needs no loss scaling.
    """
    rate = StageSchedule(learning_rate, schedule, halve_every, warmup_steps, total_steps, final_learning_rate, step)
    optimizer = keras.optimizers.Adam(rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                                      global_clipnorm=clip_global_norm)
    if mixed_precision in (True, "float16"):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def current_learning_rate(optimizer):
    """The learning rate the next update will use (works through a LossScaleOptimizer)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(inner.learning_rate)
