"""The custom training loop: one stage of training under a tf.distribute strategy.

    train_stage(stage_dir, model_fn=..., task=..., num_steps=...)

runs `task.compute_loss` with tf.GradientTape inside `strategy.run`, applies Adam, and keeps
resumable checkpoints (model, optimizer, step and the input iterator) in `stage_dir/checkpoints`.
A stage that finished leaves `stage_dir/done.json` and is not run again; a stage that was killed
resumes from its last checkpoint. Loss scaling across replicas: each replica's loss is the mean
over its share of the global batch, divided by the number of replicas, so the summed gradient is
the gradient of the mean over the global batch (the losses are means of per-image losses).
"""
import json
import os
import shutil

import gin
import tensorflow as tf
from tensorflow.python.trackable.base import Trackable

from dflow_tf.data.augment import Augmentation, Photometric
from dflow_tf.data.pipeline import make_dataset
from dflow_tf.evaluation import evaluate_model
from dflow_tf.training.optimizer import current_learning_rate, make_optimizer
from dflow_tf.training.progress import Progress
from dflow_tf.training.strategy import is_chief, make_strategy

gin.external_configurable(Augmentation, module="dflow_tf.data")
gin.external_configurable(Photometric, module="dflow_tf.data")

DONE_FILE = "done.json"


class TrainingDiverged(RuntimeError):
    """Raised after too many consecutive non-finite losses or gradients."""


def latest_checkpoint(path):
    """The newest checkpoint prefix under a stage directory, a checkpoints directory (with or
    without a `checkpoint` state file, e.g. an imported TF1 model) or a prefix; None if none."""
    for candidate in (os.path.join(path, "checkpoints"), path):
        if os.path.isdir(candidate):
            found = tf.train.latest_checkpoint(candidate)
            if found:
                return found
            indexes = sorted(tf.io.gfile.glob(os.path.join(candidate, "*.index")), key=os.path.getmtime)
            if indexes:
                return indexes[-1][:-len(".index")]
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def restore_weights(model, path):
    """Loads only the model weights from the latest checkpoint at `path` (stage dir or prefix)."""
    prefix = latest_checkpoint(path)
    if prefix is None:
        raise FileNotFoundError(f"no checkpoint found at {path!r} (looked for {path}/checkpoints/checkpoint, "
                                f"{path}/checkpoint and {path}.index)")
    # read, not restore: checkpoints written with Checkpoint.write (dflow_tf.import_tf1) have no
    # save_counter, which restore() would create and then report as unmatched.
    tf.train.Checkpoint(model=model).read(prefix).expect_partial().assert_existing_objects_matched()
    return prefix


MODEL_CONFIG_FILE = "model.json"


def save_model_config(model, directory):
    """Writes the model's class and constructor config to directory/model.json (read back by
    dflow_tf.loading.load_model)."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, MODEL_CONFIG_FILE), "w") as f:
        json.dump({"class": type(model).__name__, "config": model.get_config()}, f, indent=1)


def build_model(model):
    """Creates the model's variables by calling it once on a small zero input (their shapes do not
    depend on the image size)."""
    size = getattr(model, "size_multiple", 64)
    model(tf.zeros([1, model.num_frames, size, size, 3], tf.float32))


def _all_finite(loss, grads):
    checks = [tf.reduce_all(tf.math.is_finite(loss))]
    checks += [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
    return tf.reduce_all(tf.stack(checks))


@gin.configurable(denylist=["stage_dir", "experiment_dir"])
def train_stage(stage_dir, experiment_dir=None, *, model_fn=gin.REQUIRED, task=gin.REQUIRED,
                num_steps=gin.REQUIRED, batch_size=4, crop_size=None, dataset="synthetic_flow",
                split="train", augmentation=Augmentation(), seed=0, init_from=None,
                checkpoint_every=200, log_every=10, image_every=200, max_nonfinite=10,
                jit_compile=False, mixed_precision=False, deterministic=False, data_dir=None,
                manual_dir=None, strategy=None, eval_split="validation", eval_every=0,
                eval_batches=None, eval_batch_size=4):
    """Trains one stage and returns the path of its final checkpoint.

    Args:
      stage_dir: output folder of the stage (checkpoints/, tensorboard/, done.json).
      experiment_dir: folder that relative `init_from` names are resolved against.
      model_fn: callable returning a new (unbuilt) flow model, e.g. @TwoFramePWC.
      task: object with num_frames(model) and compute_loss(model, batch) -> (loss, scalars,
        pictures), e.g. @UnsupervisedTask(); optional setup(experiment_dir) (called once in the
        strategy scope) and prepare(batch) (called every step outside the gradient tape). Every
        batch carries "seed", an int64 [2] stateless seed distinct per step and replica.
      num_steps: total training steps of the stage (a resumed stage runs the remainder).
      batch_size: global batch size, split over replicas.
      crop_size: (height, width) training crop; None keeps the stored size.
      dataset, split, data_dir, manual_dir: the training data ("name[/config]" of tfds_builders).
      augmentation: dflow_tf.data.Augmentation (None: no augmentation).
      seed: seed of data order, augmentation and weight initialisation.
      init_from: stage name (relative to experiment_dir) or checkpoint path whose model weights
        start this stage (optimizer state is not taken).
      checkpoint_every, log_every, image_every: intervals in steps.
      max_nonfinite: consecutive non-finite steps (skipped, counted) before the run stops.
      jit_compile: compile the loss and gradient computation with XLA.
      mixed_precision: float16 compute with a dynamic loss scale (for GPUs).
      deterministic: seed everything and enable TF op determinism (reproducible, slower).
      strategy: a tf.distribute strategy; None = make_strategy() (gin-configurable).
      eval_split: split of `dataset` evaluated at the end (and every `eval_every` steps, on
        `eval_batches` batches of `eval_batch_size`); None = no evaluation.

    Returns:
      (final checkpoint path, final evaluation metrics dict or None).
    """
    done_path = os.path.join(stage_dir, DONE_FILE)
    if os.path.exists(done_path):
        with open(done_path) as f:
            done = json.load(f)
        print(f"[{os.path.basename(stage_dir)}] already finished at step {done['step']}: {done['checkpoint']}")
        return done["checkpoint"], done.get("evaluation")
    if deterministic:
        tf.keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
    else:
        tf.random.set_seed(seed)
    if mixed_precision:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = strategy or make_strategy()
    chief = is_chief(strategy)
    name = os.path.relpath(stage_dir, experiment_dir) if experiment_dir else os.path.basename(stage_dir)

    with strategy.scope():
        model = model_fn()
        optimizer = make_optimizer(mixed_precision=mixed_precision)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    with strategy.scope():
        build_model(model)
        optimizer.build(model.trainable_variables)
        if hasattr(task, "setup"):  # e.g. frozen teachers, created under the same strategy
            task.setup(experiment_dir=experiment_dir)

    if chief:
        save_model_config(model, stage_dir)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    checkpoint_dir = os.path.join(stage_dir, "checkpoints")
    if not chief:  # every worker must save (collectives); only the chief's copy is kept
        task_id = strategy.cluster_resolver.task_id
        checkpoint_dir = os.path.join(stage_dir, f"worker_tmp_{task_id}")
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=3)
    resume = tf.train.latest_checkpoint(os.path.join(stage_dir, "checkpoints"))
    restored = checkpoint.restore(resume) if resume else None
    if resume:
        print(f"[{name}] resuming from {resume} at step {int(step.numpy())}")
    elif init_from:
        source = init_from
        if experiment_dir and not os.path.isabs(init_from) and not os.path.exists(init_from):
            source = os.path.join(experiment_dir, init_from)
        print(f"[{name}] initialising the model from {restore_weights(model, source)}")

    # The input iterator is saved with the checkpoint where tf.distribute can (one device), so a
    # resumed run sees exactly the batches it would have seen. Iterators of several replicas are
    # not checkpointable; there the pipeline restarts with a seed derived from the resumed step,
    # so that it does not replay the batches already trained on (docs/training.md).
    multi_replica = strategy.num_replicas_in_sync > 1
    data_seed = seed + 7919 * int(step.numpy()) if multi_replica else seed
    ds = make_dataset(dataset, split, batch_size=batch_size, crop_size=crop_size,
                      num_frames=task.num_frames(model), augmentation=augmentation, seed=data_seed,
                      data_dir=data_dir, manual_dir=manual_dir)
    iterator = iter(strategy.experimental_distribute_dataset(ds))
    if isinstance(iterator, Trackable):
        checkpoint.iterator = iterator  # restored now if the checkpoint has it (deferred restore)
    if restored is not None:
        restored.assert_existing_objects_matched()

    train_step = _make_train_step(strategy, model, optimizer, task, step, jit_compile, mixed_precision, seed)
    progress = Progress(name, int(step.numpy()), num_steps,
                        log_dir=os.path.join(stage_dir, "tensorboard") if chief else None,
                        every=log_every, quiet=not chief)
    evaluate = None
    if eval_split:
        def evaluate(max_batches, target=model):
            eval_ds = make_dataset(dataset, eval_split, batch_size=eval_batch_size, augmentation=None,
                                   shuffle=False, repeat=False, drop_remainder=False, seed=seed,
                                   data_dir=data_dir, manual_dir=manual_dir)
            return evaluate_model(target, eval_ds, max_batches=max_batches)
    curve_path = os.path.join(stage_dir, "eval_curve.jsonl")
    nonfinite_in_row = 0
    skipped_total = 0
    while int(step.numpy()) < num_steps:
        loss, scalars, applied, pictures = train_step(iterator)
        current = int(step.numpy())
        if bool(applied):
            nonfinite_in_row = 0
        else:
            nonfinite_in_row += 1
            skipped_total += 1
            print(f"[{name}] step {current}: non-finite loss or gradient, update skipped "
                  f"({nonfinite_in_row} in a row, {skipped_total} in total)")
            if nonfinite_in_row >= max_nonfinite:
                saved = manager.save(checkpoint_number=current)
                _cleanup(chief, checkpoint_dir)
                raise TrainingDiverged(
                    f"[{name}] {nonfinite_in_row} consecutive steps had a non-finite loss or gradient "
                    f"(last loss {float(loss)}); stopped at step {current}. The last good weights are "
                    f"in {saved}. Lower the learning rate or check the input data.")
        host_scalars = {k: float(v) for k, v in scalars.items()}
        host_scalars["skipped_steps"] = float(skipped_total)
        progress.step(current, host_scalars, current_learning_rate(optimizer))
        if image_every and current % image_every == 0:
            progress.pictures(current, pictures)
        if current % checkpoint_every == 0 or current == num_steps:
            manager.save(checkpoint_number=current)
        if evaluate and eval_every and current % eval_every == 0 and current != num_steps:
            _record_evaluation(chief, progress, curve_path, current, evaluate(eval_batches))
    results, teacher_results = None, {}
    if evaluate:
        results = evaluate(None)
        _record_evaluation(chief, progress, curve_path, int(step.numpy()), results)
        # Teachers that this experiment did not train (given as checkpoints) are evaluated here,
        # on the same split, so that the experiment's table compares the student with every teacher.
        teachers = getattr(task, "teachers", None)
        for path, teacher in (teachers.members_outside(experiment_dir) if teachers is not None else []):
            teacher_results[path] = evaluate(None, teacher)
        if chief:
            for label, metrics in [*((f"teacher {path}", r) for path, r in teacher_results.items()),
                                   (name, results)]:
                print(f"[{label}] validation: " + ", ".join(
                    f"{k}={metrics[k]:.3f}" for k in SUMMARY_KEYS if k in metrics))
    progress.close()
    final = manager.save(checkpoint_number=int(step.numpy())) if manager.latest_checkpoint is None else \
        manager.latest_checkpoint
    _cleanup(chief, checkpoint_dir)
    if chief:
        with open(done_path, "w") as f:
            json.dump({"step": int(step.numpy()), "checkpoint": final, "skipped_steps": skipped_total,
                       "evaluation": results, "teacher_evaluations": teacher_results}, f, indent=1)
        with open(os.path.join(stage_dir, "config.gin"), "w") as f:
            f.write(gin.config_str())
    return final, results


SUMMARY_KEYS = ("epe_all/pixel_pooled", "epe_noc/pixel_pooled", "epe_occ/pixel_pooled", "fl_all/pixel_pooled")


def _record_evaluation(chief, progress, curve_path, step, results):
    """Logs validation metrics to TensorBoard and appends them to eval_curve.jsonl."""
    if not chief:
        return
    progress.scalars(step, {k: v for k, v in results.items() if isinstance(v, float)}, prefix="validation/")
    with open(curve_path, "a") as f:
        f.write(json.dumps({"step": step, **results}) + "\n")


def _cleanup(chief, checkpoint_dir):
    if not chief:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def _make_train_step(strategy, model, optimizer, task, step, jit_compile, mixed_precision, seed=0):
    """The distributed step: returns (mean loss, mean scalars, applied flag, first replica's pictures)."""
    variables = model.trainable_variables
    replicas = strategy.num_replicas_in_sync

    def loss_and_grads(batch):
        if hasattr(task, "prepare"):  # targets that need no gradient (e.g. teachers) off the tape
            batch = task.prepare(batch)
        with tf.GradientTape() as tape:
            loss, scalars, pictures = task.compute_loss(model, batch)
            scaled = tf.cast(loss, tf.float32) / replicas
            if mixed_precision:
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
        if mixed_precision:
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
        if not mixed_precision:
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
