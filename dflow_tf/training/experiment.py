"""An experiment: training stages in order, their results and the results table.

    run_experiment(output_dir="runs/teacher", stages=["photometric", "census"])

Every stage is a gin scope: bindings under "<stage>/..." apply to that stage's `train_stage`
only. Stages run in order, each into <output_dir>/<stage>/; a finished stage is skipped (its
recorded result is used), a killed one resumes from its newest readable checkpoint. The gin
config is written to <output_dir>/config.gin, the validation metrics of every stage (and the
extra evaluations of its task, e.g. teachers given from outside the experiment) to
<output_dir>/results.json, and the table to stdout (with a second table of the real-pair groups
when stages evaluate `train_stage.eval_pairs`). A dry run (`dry_run=True`) runs every stage for
two steps and evaluates one batch, to check a configuration before a long run; its stages share
the graphs that cannot fail differently (DryRun). The command line is dflow_tf.train.
"""
import json
import os

import gin
import tensorflow as tf

from dflow_tf.checkpoints import model_description
from dflow_tf.evaluation import DISPARITY_KEYS, PAIR_KEYS, SUMMARY_KEYS
from dflow_tf.evaluation.report import format_columns, format_number
from dflow_tf.evaluation.validation import SharedPredictions
from dflow_tf.training.trainer import StagePaused, _TrainingState, train_stage

RESULTS_FILE = "results.json"
CONFIG_FILE = "config.gin"


@gin.configurable(denylist=["dry_run"])
def run_experiment(output_dir=gin.REQUIRED, stages=gin.REQUIRED, dry_run=False):
    """Trains `stages` (gin scope names) in order under `output_dir` (`dry_run`: see train_stage).

    Returns:
      {label: metrics}: per stage its validation metrics (None without evaluation), preceded by
      the extra evaluations its task returned (e.g. "teacher <path>"); None when a stage paused
      (trainer.StagePaused: its budget or a signal; the message is printed, later stages wait).
    """
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, CONFIG_FILE), "w") as f:
        f.write(gin.config_str())
    results = {}
    dry_run = DryRun() if dry_run else False
    for stage in stages:
        with gin.config_scope(stage):
            try:
                result = train_stage(os.path.join(output_dir, stage), experiment_dir=output_dir, dry_run=dry_run)
            except StagePaused as paused:  # a segment of a long run ended; the same command continues
                print(paused.message)  # str(paused) carries gin's "In call to configurable" lines
                return None
        results.update(result.extra_evaluations)
        results[stage] = result.evaluation
    with open(os.path.join(output_dir, RESULTS_FILE), "w") as f:
        json.dump(results, f, indent=1)
    print(results_table(results))
    return results


def results_table(results):
    """{label: metrics or None} -> the text table of the SUMMARY_KEYS (and of the DISPARITY_KEYS
    that some stage reports: D1 of stereo stages), one row per label, followed by the table of the
    real-pair groups when there are any."""
    keys = list(SUMMARY_KEYS) + [k for k in DISPARITY_KEYS if any(r and k in r for r in results.values())]
    header = ["stage"] + [k.split("/")[0].replace("_", " ") for k in keys]
    rows = [[stage] + [format_number((r or {}).get(k)) for k in keys] for stage, r in results.items()]
    text = format_columns(header, rows) + "\n(EPE in px, Fl and D1 in %; pixel-pooled over the validation split)"
    groups = sorted({g for r in results.values() if r for g in r.get("pairs", {})})
    if groups:
        columns = [(g, k) for g in groups for k in PAIR_KEYS
                   if any(r and k in r.get("pairs", {}).get(g, {}) for r in results.values())]
        header = ["stage"] + [f"{g} {k.split('/')[0].replace('_', ' ')}" for g, k in columns]
        rows = [[stage] + [format_number(r["pairs"].get(g, {}).get(k)) for g, k in columns]
                for stage, r in results.items() if r and "pairs" in r]
        text += "\n\nreal pairs\n" + format_columns(header, rows) + "\n(EPE in px, mean over the pairs of each group)"
    return text



class DryRun:
    """The graphs that the stages of one dry run share (train_stage's `dry_run`).

    A dry run must build every stage's model, data, loss and evaluation, but tracing and optimising
    the training step is most of its time. A stage whose training step is the same graph as an
    earlier stage's (`step_signature`: the same model architecture, task settings, optimizer
    settings, precision, batch shapes and types, and scoped gin bindings) trains with that traced
    step instead of tracing its own: its model, optimizer and step, built and initialised as in a
    real run (init_from, resume), are copied into the earlier stage's objects, which it then trains
    for its steps on its own data and saves into its own checkpoints. Every evaluation (validation,
    eval_pairs, teachers) runs through one traced prediction per model architecture
    (SharedPredictions). Only the first stage sets the global seed (`seeded`): tf.random.set_seed
    drops every instantiated graph. A checkpoint holds the input iterator only in the first stage
    of each training data source (the iterator of synthetic_flow is 0.4 GB; the same pipeline
    saves the same way in every stage).
    """

    def __init__(self):
        self.predictions = SharedPredictions()
        self._steps = {}      # step signature -> (stage name, _TrainingState, traced step)
        self._sources = set()  # training data sources whose iterator a checkpoint holds
        self.seeded = False    # a stage has set the global seed (the later ones keep it)

    def share(self, stage, state, train_step, task, iterator, dataset, settings):
        """(state, train_step) for a stage: the stage's own (the first of its signature) or the
        earlier stage's objects holding this stage's values, with this stage's checkpoints."""
        self.seeded = True
        signature = step_signature(state, task, iterator, settings)
        first = self._steps.get(signature) if signature else None
        if first is not None and _copy_into(first[1], state):
            first_name, trained, train_step = first
            stage.log(f"dry run: trains with the step traced for {first_name} (the same graph)")
        else:
            trained = state
            if signature:
                self._steps[signature] = (stage.name, state, train_step)
        checkpoint = tf.train.Checkpoint(model=trained.model, optimizer=trained.optimizer, step=trained.step)
        source = (dataset if isinstance(dataset, str) else f"{type(dataset).__module__}.{type(dataset).__qualname__}")
        if source not in self._sources and getattr(state.checkpoint, "iterator", None) is not None:
            self._sources.add(source)
            checkpoint.iterator = iterator
        manager = tf.train.CheckpointManager(checkpoint, state.checkpoint_dir, max_to_keep=3)
        return _TrainingState(trained.model, trained.optimizer, trained.step, checkpoint, manager,
                              state.checkpoint_dir), train_step


def step_signature(state, task, iterator, settings):
    """A JSON text that is equal for two stages whose training steps are the same graph: model
    class and configuration (without its name), optimizer configuration, the task's class and
    settings, the batch's shapes and types, `settings` (jit_compile, mixed_precision,
    deterministic, replicas) and every gin binding scoped to the stage apart from train_stage's own (those
    are compared through what they build). None when the stage cannot share: several replicas, or
    a task holding more than plain settings (e.g. teacher models)."""
    if settings.get("replicas") != 1:
        return None
    try:
        description = model_description(state.model)
        description["config"] = {k: v for k, v in description["config"].items() if k != "name"}
        optimizer = {k: v for k, v in state.optimizer.get_config().items() if k != "name"}
        return json.dumps({"model": description, "optimizer": optimizer, "task": _plain(task),
                           "batch": repr(iterator.element_spec), "settings": settings,
                           "gin": _scoped_bindings(gin.current_scope())}, sort_keys=True)
    except (AttributeError, TypeError, ValueError, NotImplementedError):
        return None


def _plain(value, depth=0):
    """`value` as JSON-able plain values (an object as its class and attributes); TypeError for
    anything else (models, variables, tensors, arrays, functions, deeper nesting)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [_plain(v, depth) for v in value]]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _plain(v, depth) for k, v in value.items()}
    if (depth < 3 and hasattr(value, "__dict__") and not callable(value)
            and not isinstance(value, (type, tf.Module, tf.keras.layers.Layer))):
        return [type(value).__module__, type(value).__qualname__, _plain(vars(value), depth + 1)]
    raise TypeError(f"not plain: {type(value)}")


def _scoped_bindings(scope):
    """{selector: {parameter: value as written}} of the gin bindings whose scope is `scope` or one
    of its parents (not the unscoped ones, which every stage shares), train_stage's excepted."""
    config = getattr(gin.config, "_CONFIG", None)  # gin 0.5 lists its bindings nowhere else
    if not isinstance(config, dict):
        raise TypeError("gin's bindings cannot be listed")
    prefixes = {"/".join(scope[:i]) for i in range(1, len(scope) + 1)}
    bindings = {}
    for (where, selector), values in sorted(config.items()):
        if where in prefixes and selector != "dflow_tf.training.trainer.train_stage":
            bindings.setdefault(selector, {}).update({k: repr(v) for k, v in values.items()})
    return bindings


def _copy_into(target, state):
    """Copies the model and optimizer variables and the step of `state` into `target`'s objects;
    False (nothing copied) when they do not correspond one to one."""
    pairs = list(zip(target.model.weights, state.model.weights)) + list(zip(target.optimizer.variables,
                                                                          state.optimizer.variables))
    if (len(target.model.weights) != len(state.model.weights)
            or len(target.optimizer.variables) != len(state.optimizer.variables)
            or any(tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype for a, b in pairs)):
        return False
    for a, b in pairs:
        a.assign(b)
    target.step.assign(state.step)
    return True
