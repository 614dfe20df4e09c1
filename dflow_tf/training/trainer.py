"""The custom training loop: one stage of training under a tf.distribute strategy.

    result = train_stage(stage_dir, model_fn=..., task=..., num_steps=...)   # a StageResult

runs the task's loss (dflow_tf.training.task.Task) with tf.GradientTape inside `strategy.run`,
applies Adam, and keeps resumable checkpoints (model, optimizer, step and the input iterator) in
`stage_dir/checkpoints`. In steps: restore or initialise the model, the training data, the loop,
finish (evaluations, final checkpoint, done.json). A stage that finished leaves
`stage_dir/done.json` and is not run again (its result is read back from there); a stage that
was killed resumes from its newest readable checkpoint. Long stages run in segments: with
`max_minutes` a stage pauses by itself (checkpoint, then StagePaused), and SIGINT or SIGTERM make it
pause after the current step; the same command continues it. A stage whose predicted flow collapses
towards zero while its data term does not improve says so in one line and stops
(dflow_tf.training.collapse, `on_collapse`); a loss that jumps far above its recent median is
reported in one line (dflow_tf.training.loss_spike). With `state_dir` the stage also keeps
a small portable state (float16 weights, step, curve; dflow_tf.training.portable_state) that a
stage without checkpoints of its own, e.g. on another machine, starts from. Loss scaling across replicas: each
replica's loss is the mean over its share of the global batch, divided by the number of
replicas, so the summed gradient is the gradient of the mean over the global batch (the losses
are means of per-image losses).
"""
import dataclasses
import json
import os
import shutil
import signal
import time
from typing import NamedTuple

import gin
import tensorflow as tf
from tensorflow.python.trackable.base import Trackable

from dflow_tf import pretrained
from dflow_tf.checkpoints import restore_weights, resume_checkpoint, save_model_description
from dflow_tf.console import InputError
from dflow_tf.data.augment import Augmentation
from dflow_tf.data.pipeline import make_dataset
from dflow_tf.evaluation import PAIR_KEYS, evaluate_model, summary_line
from dflow_tf.evaluation.pair_groups import evaluate_pair_groups
from dflow_tf.training import portable_state
from dflow_tf.training.collapse import ON_COLLAPSE, CollapseMonitor, TrainingCollapsed, likely_bindings
from dflow_tf.training.loss_spike import LossSpikeMonitor
from dflow_tf.training.optimizer import current_learning_rate, make_optimizer
from dflow_tf.training.progress import Progress
from dflow_tf.training.strategy import is_chief, make_strategy
from dflow_tf.training.task import optional_hook

DONE_FILE = "done.json"
DRY_RUN_STEPS = 2


class TrainingDiverged(RuntimeError):
    """Raised after too many consecutive non-finite losses or gradients."""


class StagePaused(Exception):
    """Raised when a stage stops before `num_steps` with its state saved (its `max_minutes` budget,
    SIGINT or SIGTERM): running the same command again continues it."""

    def __init__(self, stage, step, num_steps, reason):
        self.message = (f"[{stage}] paused at step {step} of {num_steps} ({reason}); its checkpoint is "
                        "saved: run the same command again to continue")
        super().__init__(self.message)  # gin appends its call stack to str(self), not to .message
        self.stage, self.step, self.num_steps, self.reason = stage, step, num_steps, reason


PRECISIONS = (False, True, "float16", "bfloat16")


class StageResult(NamedTuple):
    """What a training stage returns (and records in done.json)."""
    checkpoint: str                 # prefix of the final checkpoint
    evaluation: dict | None      # metrics on the stage's eval_split, or None
    extra_evaluations: dict         # {label: metrics} of the task's extra evaluations (Task)


def build_model(model):
    """Creates the model's variables by calling it once on a small zero input (their shapes do not
    depend on the image size)."""
    size = getattr(model, "size_multiple", 64)
    model(tf.zeros([1, model.num_frames, size, size, 3], tf.float32))


def _all_finite(loss, grads):
    checks = [tf.reduce_all(tf.math.is_finite(loss))]
    checks += [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
    return tf.reduce_all(tf.stack(checks))


@gin.configurable(denylist=["stage_dir", "experiment_dir", "dry_run"])
def train_stage(stage_dir, experiment_dir=None, *, dry_run=False, model_fn=gin.REQUIRED, task=gin.REQUIRED,
                num_steps=gin.REQUIRED, batch_size=4, crop_size=None, dataset="synthetic_flow",
                split="train", augmentation=Augmentation(), seed=0, init_from=None,
                checkpoint_every=200, log_every=10, image_every=200, max_nonfinite=10,
                jit_compile=False, mixed_precision=False, deterministic=False, data_dir=None,
                manual_dir=None, strategy=None, eval_split="validation", eval_every=0,
                eval_batches=None, eval_batch_size=4, eval_pairs=None, max_minutes=None, state_dir=None,
                on_collapse="stop"):
    """Trains one stage and returns its StageResult (final checkpoint, evaluations).

    Args:
      stage_dir: output folder of the stage (checkpoints/, tensorboard/, model.json, done.json).
      experiment_dir: folder that relative `init_from` names are resolved against.
      dry_run: check the configuration: at most DRY_RUN_STEPS steps, and every evaluation on
        one batch (one pair per group of `eval_pairs`); a `state_dir` becomes
        stage_dir/portable_state. An experiment's dry run passes its experiment.DryRun, through
        which its stages share traced graphs and seed once.
      model_fn: callable returning a new (unbuilt) flow model, e.g. @TwoFramePWC.
      task: the objective, a dflow_tf.training.task.Task, e.g. @UnsupervisedTask().
      num_steps: total training steps of the stage (a resumed stage runs the remainder).
      batch_size: global batch size, split over replicas.
      crop_size: (height, width) training crop; None keeps the stored size.
      dataset, split, data_dir, manual_dir: the training data ("name[/config]" of tfds_builders).
      augmentation: dflow_tf.data.Augmentation (None: no augmentation).
      seed: seed of data order, augmentation and weight initialisation.
      init_from: stage name (relative to experiment_dir), checkpoint path or shipped model
        ("pretrained:NAME", dflow_tf.pretrained) whose model weights
        start this stage (optimizer state is not taken).
      checkpoint_every, log_every, image_every: intervals in steps.
      max_nonfinite: consecutive non-finite steps (skipped, counted) before the run stops.
      jit_compile: compile the loss and gradient computation with XLA.
      mixed_precision: False (float32), "float16" (or True: float16 compute with a dynamic loss
        scale, for GPUs) or "bfloat16" (bfloat16 compute, float32 weights, no loss scale; fast on
        CPUs with AMX or AVX512-BF16, slow on others). Flows, warps and losses stay float32.
      deterministic: seed everything and enable TF op determinism (reproducible, slower).
      strategy: a tf.distribute strategy; None = make_strategy() (gin-configurable).
      eval_split: split of `dataset` evaluated at the end (and every `eval_every` steps, on
        `eval_batches` batches of `eval_batch_size`); None = no evaluation.
      eval_pairs: a folder of real pairs with ground truth in the `--pairs` layout, grouped by
        its first folder level (dflow_tf.evaluation.pair_groups), evaluated at the end; the
        per-group metrics go to the evaluation under "pairs". None = none.
      max_minutes: wall-clock budget of this run of the stage; when it is spent the stage saves a
        checkpoint and raises StagePaused (None: no budget).
      state_dir: folder of the stage's portable state (dflow_tf.training.portable_state), written
        at every checkpoint and at the end, and started from when the stage has no checkpoint of
        its own (None: none).
      on_collapse: what a collapse of the predicted flow towards zero (CollapseMonitor, bindings
        `CollapseMonitor.*`) does: "stop" (TrainingCollapsed), "warn" (one line, training goes
        on) or "off" (not checked). Only stages whose model does not start from random weights
        (init_from, a checkpoint or a portable state) are checked.

    Returns:
      StageResult(final checkpoint path, final evaluation metrics or None, the task's extra
      evaluations).

    Raises:
      StagePaused: the stage stopped before `num_steps` (budget or signal), state saved.
      TrainingDiverged: too many non-finite steps in a row.
      TrainingCollapsed: the flow collapsed and `on_collapse` is "stop".
    """
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"train_stage.mixed_precision must be one of {PRECISIONS}, got {mixed_precision!r}")
    if on_collapse not in ON_COLLAPSE:
        raise ValueError(f"train_stage.on_collapse must be one of {ON_COLLAPSE}, got {on_collapse!r}")
    if dry_run:  # a portable state is written into the dry run's own folder, not over the real one
        num_steps, eval_every = min(num_steps, DRY_RUN_STEPS), 0
        state_dir = state_dir and os.path.join(stage_dir, "portable_state")
    finished = finished_stage(stage_dir)
    if finished is not None:
        print(f"[{os.path.basename(stage_dir)}] already finished: {finished.checkpoint}")
        return finished
    # The stages of an experiment's dry run seed once: tf.random.set_seed drops the instantiated
    # graphs that they share (experiment.DryRun).
    _seed_and_precision(seed, deterministic, mixed_precision, reseed=not getattr(dry_run, "seeded", False))
    strategy = strategy or make_strategy()
    name = os.path.relpath(stage_dir, experiment_dir) if experiment_dir else os.path.basename(stage_dir)
    stage = _Stage(name, stage_dir, experiment_dir, strategy, is_chief(strategy), state_dir, time.monotonic(),
                   max_minutes)

    # 1. restore or initialise; 2. data; 3. the loop; 4. finish.
    state, restored, portable = _restore_or_initialise(stage, model_fn, task, mixed_precision, init_from)
    iterator = _training_data(stage, state, restored, portable, task, dataset, split, batch_size, crop_size,
                              augmentation, seed, data_dir, manual_dir)
    evaluate = _evaluator(state.model, dataset, eval_split, eval_batch_size, seed, data_dir, manual_dir)
    progress = Progress(name, int(state.step.numpy()), num_steps,
                        log_dir=os.path.join(stage_dir, "tensorboard") if stage.chief else None,
                        every=log_every, quiet=not stage.chief)
    train_step = _make_train_step(strategy, state.model, state.optimizer, task, state.step, jit_compile,
                                  mixed_precision, seed)
    if getattr(dry_run, "share", None):  # a dry run of an experiment: its stages share traced graphs
        state, train_step = dry_run.share(stage, state, train_step, task, iterator, dataset, {
            "jit_compile": jit_compile, "mixed_precision": mixed_precision, "deterministic": deterministic,
            "replicas": strategy.num_replicas_in_sync})
        evaluate = _evaluator(state.model, dataset, eval_split, eval_batch_size, seed, data_dir, manual_dir,
                              dry_run.predictions)
    periodic = (lambda: evaluate(eval_batches)) if evaluate and eval_every else None
    trained_start = restored is not None or portable or bool(init_from)
    collapse = _collapse_check(stage, task, on_collapse if trained_start else "off")
    skipped = _run_steps(stage, state, train_step, iterator, progress, num_steps, checkpoint_every,
                         image_every, max_nonfinite, periodic, eval_every, log_every, collapse)
    final_batches = 1 if dry_run else None
    shared = getattr(dry_run, "predictions", None)  # a dry run's traced predictions (experiment.DryRun)
    pairs = (lambda: evaluate_pair_groups(state.model, eval_pairs, final_batches,
                                          shared.predictor(state.model) if shared else None)) if eval_pairs else None
    return _finish(stage, state, task, progress, evaluate, pairs, final_batches, skipped)


def finished_stage(stage_dir):
    """The StageResult recorded in stage_dir/done.json by a finished stage, or None."""
    done_path = os.path.join(stage_dir, DONE_FILE)
    if not os.path.exists(done_path):
        return None
    with open(done_path) as f:
        done = json.load(f)
    return StageResult(done["checkpoint"], done.get("evaluation"), done.get("extra_evaluations", {}))


@dataclasses.dataclass
class _Stage:
    """Where and how a stage runs."""
    name: str             # for the log lines: the stage folder relative to the experiment
    stage_dir: str
    experiment_dir: str | None
    strategy: tf.distribute.Strategy
    chief: bool           # writes summaries, model.json, done.json; keeps its checkpoints
    state_dir: str | None  # the portable state (train_stage.state_dir)
    started: float        # time.monotonic() when this run of the stage began
    max_minutes: float | None
    previous_seconds: float = 0.0  # training time of earlier runs (from the portable state)
    resumes: int = 0               # earlier runs of the stage (from the portable state)

    def log(self, message):
        print(f"[{self.name}] {message}")

    def seconds(self):
        """Training time of the stage so far, this run and earlier ones."""
        return self.previous_seconds + time.monotonic() - self.started

    def over_budget(self):
        return self.max_minutes is not None and time.monotonic() - self.started >= 60.0 * self.max_minutes


@dataclasses.dataclass
class _TrainingState:
    """The trained objects and their checkpointing."""
    model: object
    optimizer: object
    step: tf.Variable
    checkpoint: tf.train.Checkpoint
    manager: tf.train.CheckpointManager
    checkpoint_dir: str   # where this worker saves (non-chief workers: a temporary folder)


def _seed_and_precision(seed, deterministic, mixed_precision, reseed=True):
    if deterministic:
        if reseed:
            tf.keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    elif reseed:
        tf.random.set_seed(seed)
    if mixed_precision:
        tf.keras.mixed_precision.set_global_policy(
            "mixed_bfloat16" if mixed_precision == "bfloat16" else "mixed_float16")


def _restore_or_initialise(stage, model_fn, task, mixed_precision, init_from):
    """Step 1: model, optimizer and step under the strategy, restored from the stage's newest
    readable checkpoint (a resumed stage) or initialised (from `init_from` or at random).

    Without a checkpoint, a portable state in `stage.state_dir` starts the stage at its step
    (float16 weights; Adam's moments and the input iterator afresh).

    Returns (_TrainingState, the checkpoint's restore status or None, whether the stage starts
    from a portable state)."""
    strategy = stage.strategy
    with strategy.scope():
        model = model_fn()
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        optimizer = make_optimizer(mixed_precision=mixed_precision, step=step)
    with strategy.scope():
        build_model(model)
        optimizer.build(model.trainable_variables)
        optional_hook(task, "setup")(experiment_dir=stage.experiment_dir)  # e.g. frozen teachers
    if stage.chief:
        save_model_description(model, stage.stage_dir)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    checkpoint_dir = os.path.join(stage.stage_dir, "checkpoints")
    if not stage.chief:  # every worker must save (collectives); only the chief's copy is kept
        checkpoint_dir = os.path.join(stage.stage_dir, f"worker_tmp_{strategy.cluster_resolver.task_id}")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=3)
    state = _TrainingState(model, optimizer, step, checkpoint, manager, checkpoint_dir)
    if portable_state.has_state(stage.state_dir):
        saved = portable_state.read_state(stage.state_dir)
        stage.previous_seconds, stage.resumes = saved["training_seconds"], saved["resumes"] + 1
    resume = resume_checkpoint(os.path.join(stage.stage_dir, "checkpoints"), log=stage.log)
    if resume:
        restored = checkpoint.restore(resume)
        stage.log(f"resuming from {resume} at step {int(step.numpy())}")
        return state, restored, False
    if portable_state.has_state(stage.state_dir):
        saved = portable_state.restore_state(stage.state_dir, model)
        step.assign(saved["step"])
        stage.log(f"resuming from the portable state {stage.state_dir} at step {saved['step']} "
                  "(float16 weights; Adam's moments and the data order start afresh)")
        return state, None, True
    if init_from:
        source = init_from
        if (stage.experiment_dir and not os.path.isabs(init_from) and not os.path.exists(init_from)
                and not pretrained.is_pretrained(init_from)):
            source = os.path.join(stage.experiment_dir, init_from)
        stage.log(f"initialising the model from {restore_weights(model, source)}")
    return state, None, False


def _training_data(stage, state, restored, portable, task, dataset, split, batch_size, crop_size, augmentation,
                   seed, data_dir, manual_dir):
    """Step 2: the distributed iterator of training batches, at the resumed position.

    The input iterator is saved with the checkpoint where tf.distribute can (one device), so a
    resumed run sees exactly the batches it would have seen. Iterators of several replicas are
    not checkpointable, and a portable state keeps none; there the pipeline restarts with a seed
    derived from the resumed step (`portable_state.data_seed`), so that it does not replay the
    batches already trained on (docs/training.md).
    """
    multi_replica = stage.strategy.num_replicas_in_sync > 1
    data_seed = portable_state.data_seed(seed, int(state.step.numpy())) if multi_replica or portable else seed
    ds = make_dataset(dataset, split, batch_size=batch_size, crop_size=crop_size,
                      num_frames=task.num_frames(state.model), augmentation=augmentation, seed=data_seed,
                      data_dir=data_dir, manual_dir=manual_dir)
    iterator = iter(stage.strategy.experimental_distribute_dataset(ds))
    if isinstance(iterator, Trackable):
        state.checkpoint.iterator = iterator  # restored now if the checkpoint has it (deferred restore)
    if restored is not None:
        restored.assert_existing_objects_matched()
    return iterator


def _evaluator(model, dataset, eval_split, batch_size, seed, data_dir, manual_dir, predictions=None):
    """fn(max_batches, target=model) -> metrics of `target` on `eval_split` (None: no evaluation);
    `predictions` (evaluation.validation.SharedPredictions): the traced graphs it runs (None: one
    per evaluation)."""
    if not eval_split:
        return None

    def evaluate(max_batches, target=model):
        eval_ds = make_dataset(dataset, eval_split, batch_size=batch_size, augmentation=None, shuffle=False,
                               repeat=False, drop_remainder=False, seed=seed, data_dir=data_dir,
                               manual_dir=manual_dir)
        return evaluate_model(target, eval_ds, max_batches=max_batches,
                              predict=predictions(target) if predictions else None)

    return evaluate


def _run_steps(stage, state, train_step, iterator, progress, num_steps, checkpoint_every, image_every,
               max_nonfinite, evaluate_partial, eval_every, log_every, collapse=None):
    """Step 3: the loop up to `num_steps`: logs, pictures, checkpoints, periodic evaluations;
    non-finite steps are skipped and counted; `collapse(step, scalars, learning_rate)` (from
    _collapse_check) sees every step's scalars. Returns the number of skipped steps.

    Raises StagePaused after saving a checkpoint (and the portable state) when the stage's budget
    is spent or SIGINT / SIGTERM arrived (a second SIGINT interrupts at once)."""
    with _pause_on_signals() as signalled:
        return _loop(stage, state, train_step, iterator, progress, num_steps, checkpoint_every, image_every,
                     max_nonfinite, evaluate_partial, eval_every, log_every, signalled, collapse)


def _collapse_check(stage, task, on_collapse):
    """fn(step, scalars, learning_rate) that feeds a CollapseMonitor (its gin bindings apply) and,
    on a collapse, prints the monitor's line ("warn") or raises TrainingCollapsed with it ("stop");
    None when `on_collapse` is "off". train_stage passes "off" for a stage whose model starts from
    random weights: its first flows are noise that the first steps shrink, not motion it can lose
    (dflow_tf.training.collapse)."""
    if on_collapse == "off":
        return None
    monitor = CollapseMonitor(stage=stage.name, suspects=likely_bindings(task))

    def check(step, scalars, learning_rate):
        message = monitor.update(step, scalars, learning_rate)
        if message is None:
            return
        if on_collapse == "warn":
            print(f"{message}; training on (train_stage.on_collapse=\"warn\")", flush=True)
            return
        raise TrainingCollapsed(f"{message}; stopped (train_stage.on_collapse=\"warn\" trains on; its checkpoints may "
                                f"hold the collapsed flow: delete {stage.stage_dir} to train the stage from its start)")

    return check


def _loop(stage, state, train_step, iterator, progress, num_steps, checkpoint_every, image_every,
          max_nonfinite, evaluate_partial, eval_every, log_every, signalled, collapse=None):
    curve_path = os.path.join(stage.stage_dir, "eval_curve.jsonl")
    nonfinite_in_row = 0
    skipped_total = 0
    spikes = LossSpikeMonitor(stage=stage.name)
    clip_global_norm = getattr(getattr(state.optimizer, "inner_optimizer", state.optimizer), "global_clipnorm", None)
    first = True
    while int(state.step.numpy()) < num_steps:
        loss, scalars, applied, pictures = _first_step(stage, state, train_step, iterator) if first \
            else train_step(iterator)
        first = False
        current = int(state.step.numpy())
        if bool(applied):
            nonfinite_in_row = 0
        else:
            nonfinite_in_row += 1
            skipped_total += 1
            stage.log(f"step {current}: non-finite loss or gradient, update skipped "
                      f"({nonfinite_in_row} in a row, {skipped_total} in total)")
            if nonfinite_in_row >= max_nonfinite:
                saved = state.manager.save(checkpoint_number=current)
                _cleanup(stage.chief, state.checkpoint_dir)
                raise TrainingDiverged(
                    f"[{stage.name}] {nonfinite_in_row} consecutive steps had a non-finite loss or gradient "
                    f"(last loss {float(loss)}); stopped at step {current}. The last good weights are "
                    f"in {saved}. Lower the learning rate or check the input data.")
        host_scalars = {k: float(v) for k, v in scalars.items()}
        learning_rate = current_learning_rate(state.optimizer)
        progress.step(current, host_scalars, learning_rate, totals={"skipped_steps": float(skipped_total)})
        spike = spikes.update(current, float(loss), learning_rate, clip_global_norm)
        if spike:
            print(f"{spike}; training on", flush=True)
        if collapse is not None:
            try:
                collapse(current, host_scalars, learning_rate)
            except TrainingCollapsed:
                progress.close()
                _cleanup(stage.chief, state.checkpoint_dir)
                raise
        if stage.chief and stage.state_dir and log_every and current % log_every == 0:
            portable_state.append_curve(stage.state_dir, current, stage.seconds(), learning_rate, host_scalars)
        if image_every and current % image_every == 0:
            progress.pictures(current, pictures)
        if current % checkpoint_every == 0 or current == num_steps:
            _save(stage, state, num_steps)
        if evaluate_partial and current % eval_every == 0 and current != num_steps:
            _record_evaluation(stage, progress, curve_path, current, evaluate_partial())
        if current < num_steps and (signalled or stage.over_budget()):
            reason = f"signal {signalled[0]}" if signalled else f"train_stage.max_minutes={stage.max_minutes} spent"
            if current % checkpoint_every:
                _save(stage, state, num_steps)
            progress.close()
            raise StagePaused(stage.name, current, num_steps, reason)
    return skipped_total


def _first_step(stage, state, train_step, iterator):
    """The first step of this run, where a restored input pipeline meets this configuration's
    batches: a checkpoint written by a run with other data shapes (another crop size, frame size
    or batch size in the same output folder) fails there with one line naming the folder."""
    try:
        return train_step(iterator)
    except tf.errors.InvalidArgumentError as error:
        if "Incompatible shapes" not in str(error) or int(state.step.numpy()) == 0:
            raise
        detail = next((line.strip() for line in str(error).splitlines() if "Incompatible shapes" in line), "")
        raise InputError(f"[{stage.name}] the checkpoint in {state.checkpoint_dir} was written by a run whose "
                         f"batches had other shapes than this configuration's ({detail}): continue it with its own "
                         f"settings, or train into another output folder (or delete {stage.stage_dir})") from None


def _save(stage, state, num_steps):
    """A checkpoint of the current step, and the portable state when the stage keeps one."""
    current = int(state.step.numpy())
    saved = state.manager.save(checkpoint_number=current)
    if stage.chief and stage.state_dir:
        portable_state.save_state(stage.state_dir, state.model, current, num_steps, stage.seconds(), stage.resumes)
    return saved


class _pause_on_signals:
    """Context: SIGINT and SIGTERM append their name to the yielded list instead of stopping the
    process (a second SIGINT raises KeyboardInterrupt); the previous handlers come back on exit.
    Only in the main thread (signal handlers cannot be set elsewhere)."""

    def __enter__(self):
        self.signalled, self.previous = [], {}
        import threading  # pylint: disable=import-outside-toplevel
        if threading.current_thread() is not threading.main_thread():
            return self.signalled

        def handler(number, frame):
            if self.signalled and number == signal.SIGINT:
                raise KeyboardInterrupt
            self.signalled.append(signal.Signals(number).name)
            print(f"{signal.Signals(number).name}: pausing after this step (checkpoint, then stop)", flush=True)

        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, handler)
        return self.signalled

    def __exit__(self, *exc):
        for number, previous in self.previous.items():
            signal.signal(number, previous)
        return False


def _finish(stage, state, task, progress, evaluate, evaluate_pairs, max_batches, skipped_total):
    """Step 4: the final evaluation (validation split on `max_batches` batches, None = all; real
    pairs) and the task's extra evaluations, the final checkpoint, done.json and the stage's
    config.gin. Returns the StageResult."""
    results, extra = None, {}
    if evaluate:
        results = evaluate(max_batches)
        _record_evaluation(stage, progress, os.path.join(stage.stage_dir, "eval_curve.jsonl"),
                           int(state.step.numpy()), results)
        extra = optional_hook(task, "extra_evaluations")(lambda model: evaluate(max_batches, model),
                                                         experiment_dir=stage.experiment_dir)
        if stage.chief:
            for label, metrics in [*extra.items(), (stage.name, results)]:
                print(f"[{label}] validation: {summary_line(metrics)}")
    if evaluate_pairs:
        groups = evaluate_pairs()
        results = {**(results or {}), "pairs": groups}
        if stage.chief:
            for group, metrics in groups.items():
                print(f"[{stage.name}] real pairs {group}: {summary_line(metrics, PAIR_KEYS)}")
    progress.close()
    manager = state.manager
    final = manager.latest_checkpoint or manager.save(checkpoint_number=int(state.step.numpy()))
    if stage.chief and stage.state_dir:
        portable_state.save_state(stage.state_dir, state.model, int(state.step.numpy()),
                                  int(state.step.numpy()), stage.seconds(), stage.resumes)
    _cleanup(stage.chief, state.checkpoint_dir)
    if stage.chief:
        with open(os.path.join(stage.stage_dir, DONE_FILE), "w") as f:
            json.dump({"step": int(state.step.numpy()), "checkpoint": final, "skipped_steps": skipped_total,
                       "evaluation": results, "extra_evaluations": extra}, f, indent=1)
        with open(os.path.join(stage.stage_dir, "config.gin"), "w") as f:
            f.write(gin.config_str())
    return StageResult(final, results, extra)


def _record_evaluation(stage, progress, curve_path, step, results):
    """Logs validation metrics to TensorBoard and appends them to eval_curve.jsonl (and to the
    portable state's)."""
    if not stage.chief:
        return
    progress.scalars(step, {k: v for k, v in results.items() if isinstance(v, float)}, prefix="validation/")
    with open(curve_path, "a") as f:
        f.write(json.dumps({"step": step, **results}) + "\n")
    if stage.state_dir:
        portable_state.append_evaluation(stage.state_dir, step, results)


def _cleanup(chief, checkpoint_dir):
    if not chief:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def _make_train_step(strategy, model, optimizer, task, step, jit_compile, mixed_precision, seed=0):
    """The distributed step: returns (mean loss, mean scalars, applied flag, first replica's pictures)."""
    variables = model.trainable_variables
    replicas = strategy.num_replicas_in_sync
    loss_scaled = mixed_precision in (True, "float16")  # a LossScaleOptimizer (make_optimizer)

    prepare = optional_hook(task, "prepare")

    def loss_and_grads(batch):
        batch = prepare(batch)  # targets that need no gradient (e.g. teachers) off the tape
        with tf.GradientTape() as tape:
            loss, scalars, pictures = task.compute_loss(model, batch)
            scaled = tf.cast(loss, tf.float32) / replicas
            if loss_scaled:
                scaled = optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, variables)
        return loss, scalars, pictures, grads

    compute = tf.function(loss_and_grads, jit_compile=True) if jit_compile else loss_and_grads

    def replica_step(batch):
        context = tf.distribute.get_replica_context()
        # A stateless seed for the task's random transforms: distinct per step and replica.
        batch = dict(batch, seed=tf.stack([
            tf.cast(step, tf.int64) * replicas + tf.cast(context.replica_id_in_sync_group, tf.int64),
            tf.constant(seed, tf.int64)]))
        loss, scalars, pictures, grads = compute(batch)
        if loss_scaled:
            # LossScaleOptimizer skips non-finite gradients itself (and lowers the loss scale);
            # only a non-finite loss counts as a bad step here.
            optimizer.apply_gradients(zip(grads, variables))
            finite = tf.reduce_all(tf.math.is_finite(loss))
        else:
            finite = _all_finite(loss, grads)
        bad = context.all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(finite, tf.float32))
        return loss, scalars, tf.equal(bad, 0.0), pictures, grads

    def apply_in_replica(grads):
        optimizer.apply_gradients(zip(grads, variables))  # sums the replicas' gradients

    @tf.function
    def train_step(iterator):
        batch = next(iterator)
        loss, scalars, finite, pictures, grads = strategy.run(replica_step, args=(batch,))
        first = lambda t: strategy.experimental_local_results(t)[0]  # noqa: E731
        mean = lambda t: strategy.reduce(tf.distribute.ReduceOp.MEAN, t, axis=None)  # noqa: E731
        applied = first(finite)  # the same on every replica (all-reduced)
        if not loss_scaled:
            # The skip decision is a cond in cross-replica context whose branch enters the replicas
            # again: tf.distribute does not allow a cond around the optimizer's all-reduce inside
            # a replica (the pattern of Keras' LossScaleOptimizer).
            def apply():
                strategy.extended.call_for_each_replica(apply_in_replica, args=(grads,))
                return tf.constant(True)

            with strategy.scope():
                applied = tf.cond(applied, apply, lambda: tf.constant(False))
        step.assign_add(1)
        return (mean(loss), {k: mean(v) for k, v in scalars.items()}, applied,
                {k: first(v) for k, v in pictures.items()})

    return train_step
