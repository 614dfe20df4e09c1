"""A stage's portable state: what a long training must keep to continue on another machine.

    train_stage.state_dir = "pretrained_runs/chairs_like"   # a small folder you commit

The trainer writes the folder at every checkpoint, when the stage pauses and when it ends; a stage
that has no checkpoint of its own but finds a portable state there starts from it. It holds:

  weights.npz   the model's weights in float16 (about 8.5 MB for the 4.27 M parameters of
                TwoFramePWC), keyed by the variables' paths inside the model;
  state.json    the step (also the learning-rate schedule's position, dflow_tf.training.optimizer),
                the stage's `num_steps`, the model description (model.json's), the training time
                so far and the number of times the stage was resumed;
  curve.csv     the training curve, one row per logged step (step, elapsed seconds, learning rate,
                the task's scalars);
  eval_curve.jsonl  the periodic and final validation metrics (one JSON object per line).

Not kept: Adam's moments (two more float32 copies of the weights; in float16 the second moment
underflows) and the input iterator. A stage resumed from the portable state therefore starts Adam
afresh at the saved step, and draws its data with a seed derived from the step
(`data_seed`), so it does not replay the samples it has already seen.
"""
import csv
import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from dflow_tf.checkpoints import model_description

WEIGHTS_FILE = "weights.npz"
STATE_FILE = "state.json"
CURVE_FILE = "curve.csv"
EVAL_CURVE_FILE = "eval_curve.jsonl"


class PortableStateError(ValueError):
    """The portable state does not fit the model (the message names the folder and the variable)."""


def has_state(state_dir):
    """True if `state_dir` holds a portable state."""
    return bool(state_dir) and os.path.isfile(os.path.join(state_dir, STATE_FILE))


def read_state(state_dir):
    """The dict of state.json."""
    with open(os.path.join(state_dir, STATE_FILE), encoding="utf-8") as f:
        return json.load(f)


def save_state(state_dir, model, step, num_steps, seconds, resumes):
    """Writes weights.npz (float16) and state.json; each file is replaced atomically."""
    os.makedirs(state_dir, exist_ok=True)
    weights = {_key(v): v.numpy().astype(np.float16) for v in model.weights}
    _atomic_write(state_dir, WEIGHTS_FILE, lambda f: np.savez_compressed(f, **weights), binary=True)
    state = {"step": int(step), "num_steps": int(num_steps), "training_seconds": round(float(seconds), 1),
             "resumes": int(resumes), "model": model_description(model)}
    _atomic_write(state_dir, STATE_FILE, lambda f: json.dump(state, f, indent=1))


def restore_state(state_dir, model):
    """Assigns the float16 weights of `state_dir` to `model` (cast to each variable's dtype) and
    returns the state dict. Raises PortableStateError when a variable is missing or misshapen."""
    with np.load(os.path.join(state_dir, WEIGHTS_FILE)) as stored:
        for variable in model.weights:
            key = _key(variable)
            if key not in stored:
                raise PortableStateError(f"{state_dir}/{WEIGHTS_FILE} has no weights for {key}")
            value = stored[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise PortableStateError(f"{state_dir}/{WEIGHTS_FILE}: {key} is {value.shape}, the model's "
                                         f"is {tuple(variable.shape)}")
            variable.assign(value.astype(variable.dtype.name if hasattr(variable.dtype, "name") else variable.dtype))
    return read_state(state_dir)


def append_curve(state_dir, step, seconds, learning_rate, scalars):
    """Appends one row to curve.csv (the header is written with the first row)."""
    path = os.path.join(state_dir, CURVE_FILE)
    row = {"step": int(step), "seconds": round(float(seconds), 1), "learning_rate": float(learning_rate),
           **{k: float(v) for k, v in sorted(scalars.items())}}
    new = not os.path.exists(path)
    os.makedirs(state_dir, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def append_evaluation(state_dir, step, metrics):
    """Appends {"step": step, **metrics} to eval_curve.jsonl."""
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, EVAL_CURVE_FILE), "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": int(step), **metrics}) + "\n")


def data_seed(seed, step):
    """The input pipeline's seed for a stage (re)started at `step` without its iterator state: a
    non-negative int derived from (seed, step) by the project's seed splitter; `seed` at step 0."""
    if step == 0:
        return int(seed)
    from dflow_tf.data.seeds import split_seed  # pylint: disable=import-outside-toplevel
    return int(split_seed(tf.constant([seed, step], tf.int64), 1)[0, 0].numpy()) % (2 ** 31)


def _key(variable):
    """The variable's path inside its model ("feature_extractor/conv1_1/kernel"): without the
    model's own name, which Keras numbers per process."""
    path = getattr(variable, "path", None) or variable.name
    return path.split("/", 1)[1] if "/" in path else path


def _atomic_write(folder, name, write, binary=False):
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    with os.fdopen(fd, "wb" if binary else "w") as f:
        write(f)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the committed files private
    os.replace(tmp, os.path.join(folder, name))
