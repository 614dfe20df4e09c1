"""The Task protocol: what `train_stage` asks of an objective (UnsupervisedTask, SupervisedTask,
DistillationTask).

`train_stage` calls, in this order:

  1. `setup(experiment_dir)` once, inside the distribution strategy's scope, after the model is
     built (e.g. load frozen teachers under the same strategy);
  2. `num_frames(model)`: the frames per training window the data pipeline must deliver;
  3. every step, on each replica: `prepare(batch)` outside the gradient tape (targets that need
     no gradient, e.g. teacher annotations), then `compute_loss(model, batch)` on the tape.
     Every batch carries "seed", an int64 [2] stateless seed distinct per step and replica;
  4. at the end, after the stage's own evaluation: `extra_evaluations(evaluate, experiment_dir)`,
     other models that the stage's results table should show (e.g. teachers given from outside).

`setup`, `prepare` and `extra_evaluations` are optional; `optional_hook` returns a task's hook or
the no-op default.
"""
from collections.abc import Callable
from typing import Protocol

import tensorflow as tf


class Task(Protocol):
    """An objective of train_stage; see the module docstring for when each method runs."""

    def num_frames(self, model) -> int:
        """Frames per training window for `model` (e.g. frame_windows.training_window)."""

    def compute_loss(self, model, batch) -> tuple[tf.Tensor, dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """(loss scalar, {name: scalar} for the logs, {name: [B, H, W, C] tensor} for pictures)."""

    def setup(self, experiment_dir: str | None = None) -> None:
        """Optional: one-time preparation inside the strategy scope."""

    def prepare(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Optional: the batch with gradient-free targets added, computed outside the tape."""

    def extra_evaluations(self, evaluate: Callable, experiment_dir: str | None = None) -> dict[str, dict]:
        """Optional: {label: metrics} of other models, `evaluate(model) -> metrics` on the stage's
        validation split."""


def _no_setup(experiment_dir=None):
    return None


def _no_prepare(batch):
    return batch


def _no_extra_evaluations(evaluate, experiment_dir=None):
    return {}


_DEFAULTS = {"setup": _no_setup, "prepare": _no_prepare, "extra_evaluations": _no_extra_evaluations}


def optional_hook(task, name):
    """`task.<name>` for an optional hook of the protocol ("setup", "prepare",
    "extra_evaluations"), or its no-op default when the task does not define it."""
    return getattr(task, name, None) or _DEFAULTS[name]
