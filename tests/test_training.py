"""The training loop: replica scaling, non-finite steps, kill-and-resume, multi-worker, CLI errors."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.checkpoints import latest_checkpoint
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import trainer
from dflow_tf.training.unsupervised import UnsupervisedTask

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _run(args, timeout=600, env=None, **kwargs):
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env or ENV, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def test_two_replica_gradient_equals_single_device_gradient():
    out = _run([os.path.join(REPO, "tests", "scripts", "replica_gradients.py")])
    assert out.returncode == 0, out.stderr[-3000:]
    values = dict(re.findall(r"(\w+)=([-\d.e+]+)", out.stdout.split("RESULT")[1]))
    assert float(values["max_grad"]) > 1e-6  # the step did something
    np.testing.assert_allclose(float(values["loss_single"]), float(values["loss_replicas"]), rtol=1e-5)
    # Float noise only: a wrong replica scaling is off by a factor (relative error >= 0.5). Eigen's
    # kernels at batch 2 vs 4 differ in summation order (relative 2e-4, the occlusion check's
    # threshold amplifies it); oneDNN's by 2e-6.
    assert float(values["max_diff"]) <= 1e-3 * float(values["max_grad"])


def test_occlusion_guard_removes_the_all_occluded_zero_loss_fixed_point(monkeypatch):
    """Flows that fail the forward-backward check everywhere: DDFlow's masked census loss is 0
    (nothing left to train on); with the guard the image is trained unmasked."""
    from dflow_tf import losses
    from dflow_tf.training import unsupervised
    rng = np.random.default_rng(3)
    image_a, image_b = (tf.constant(rng.uniform(size=(2, 24, 32, 3)), tf.float32) for _ in range(2))
    flow = tf.fill([2, 24, 32, 2], 2.0)  # fw == bw: never undone, every pixel inconsistent
    monkeypatch.setattr(unsupervised, "pair_flows", lambda model, frames: [(image_a, image_b, flow, flow)])
    batch = {"frames": tf.zeros([2, 2, 24, 32, 3])}
    unguarded, scalars, _ = UnsupervisedTask("census", True, max_occlusion_fraction=None).compute_loss(None, batch)
    assert float(unguarded) == 0.0 and float(scalars["occlusion_ratio"]) == 1.0
    guarded, scalars, _ = UnsupervisedTask("census", True, max_occlusion_fraction=0.5).compute_loss(None, batch)
    unmasked = losses.census_loss(image_a, image_b, flow, flow, None, None)
    assert float(unmasked) > 0.1
    np.testing.assert_allclose(float(guarded), float(unmasked), rtol=1e-6)
    assert float(scalars["occlusion_rejected"]) == 1.0 and float(scalars["occlusion_ratio"]) == 0.0
    # consistent flows (fw undone by bw): the guard leaves the masks alone
    zero = tf.zeros_like(flow)
    monkeypatch.setattr(unsupervised, "pair_flows", lambda model, frames: [(image_a, image_b, zero, zero)])
    _, scalars, _ = UnsupervisedTask("census", True, max_occlusion_fraction=0.5).compute_loss(None, batch)
    assert float(scalars["occlusion_rejected"]) == 0.0



def test_consistency_term_keeps_the_check_masks_where_the_guard_rejects_them(monkeypatch):
    """Flows inconsistent on the left three quarters (fw == bw = 2 px) and zero on the rest: the
    guard rejects the mask (75 % occluded) for the census loss, but the consistency term still
    skips the inconsistent pixels, so it costs its floor 2 * psi(0) (zero residual on the right
    quarter). Applied to every pixel it would pull these flows towards zero."""
    from dflow_tf.training import unsupervised
    rng = np.random.default_rng(4)
    image_a, image_b = (tf.constant(rng.uniform(size=(1, 16, 32, 3)), tf.float32) for _ in range(2))
    left = np.zeros([1, 16, 32, 2], np.float32)
    left[:, :, :24] = 2.0
    flow = tf.constant(left)
    monkeypatch.setattr(unsupervised, "pair_flows", lambda model, frames: [(image_a, image_b, flow, flow)])
    task = UnsupervisedTask("census", True, max_occlusion_fraction=0.5, consistency_weight=1.0)
    _, scalars, _ = task.compute_loss(None, {"frames": tf.zeros([1, 2, 16, 32, 3])})
    assert float(scalars["occlusion_rejected"]) == 1.0
    assert float(scalars["loss/consistency"]) == pytest.approx(2 * 0.01 ** 0.4, rel=1e-5)

class _NanTask(UnsupervisedTask):
    """The photometric task (no occlusion handling) whose loss is NaN on the steps listed in `bad`
    (counted by calls)."""

    def __init__(self, bad):
        super().__init__(loss="photometric", occlusion=False)
        self.calls = tf.Variable(0, trainable=False)
        self.bad = tf.constant(bad, tf.int32)

    def compute_loss(self, model, batch):
        loss, scalars, pictures = super().compute_loss(model, batch)
        self.calls.assign_add(1)
        is_bad = tf.reduce_any(tf.equal(self.bad, self.calls))
        return tf.where(is_bad, tf.constant(np.nan, tf.float32), loss), scalars, pictures


def _tiny_step(task):
    import keras
    model = TwoFramePWC(num_levels=4)
    model(tf.zeros([1, 2, 32, 48, 3]))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64)
    frames = np.random.default_rng(0).uniform(size=(2, 2, 32, 48, 3)).astype(np.float32)
    iterator = iter(tf.data.Dataset.from_tensors({"frames": frames}).repeat())
    fn = trainer._make_train_step(tf.distribute.get_strategy(), model, optimizer, task, step, False, False)
    return model, optimizer, fn, iterator


@pytest.mark.backend
def test_non_finite_loss_skips_the_update():
    model, optimizer, step_fn, iterator = _tiny_step(_NanTask(bad=[2]))
    assert bool(step_fn(iterator)[2])
    before = [v.numpy().copy() for v in model.trainable_variables]
    iterations = int(optimizer.iterations.numpy())
    loss, _, applied, _ = step_fn(iterator)
    assert not bool(applied) and np.isnan(float(loss))
    assert int(optimizer.iterations.numpy()) == iterations  # Adam state untouched
    for b, v in zip(before, model.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())
    assert bool(step_fn(iterator)[2])


def _stage_kwargs(tmp_path, **overrides):
    kwargs = dict(model_fn=lambda: TwoFramePWC(num_levels=4), task=UnsupervisedTask("census", True),
                  num_steps=6, batch_size=2, dataset="synthetic_flow/tiny", data_dir=str(tmp_path / "tfds"),
                  checkpoint_every=2, log_every=1, image_every=3, eval_split="validation", eval_batch_size=2,
                  deterministic=True, seed=5)
    kwargs.update(overrides)
    return kwargs


def test_too_many_non_finite_steps_stop_with_a_checkpoint(tmp_path):
    kwargs = _stage_kwargs(tmp_path, task=_NanTask(bad=[3, 4, 5, 6]), max_nonfinite=3, num_steps=10)
    with pytest.raises(trainer.TrainingDiverged, match="3 consecutive steps") as error:
        trainer.train_stage(str(tmp_path / "stage"), **kwargs)
    saved = re.search(r"weights are in (\S+)\.", str(error.value)).group(1)
    assert tf.io.gfile.exists(saved + ".index")
    reader = tf.train.load_checkpoint(saved)
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 5
    assert np.all([np.isfinite(reader.get_tensor(name)).all() for name, _ in tf.train.list_variables(saved)
                   if name.startswith("model/") and "VARIABLE_VALUE" in name])


@pytest.mark.backend
def test_stage_trains_evaluates_writes_summaries_and_is_not_rerun(tmp_path):
    import gin
    stage = tmp_path / "stage"
    # A binding the stage uses (the optimizer's default beta_1): the stage's config.gin must hold it.
    gin.parse_config("make_optimizer.beta_1 = 0.9")
    try:
        checkpoint, results, _ = trainer.train_stage(str(stage), **_stage_kwargs(tmp_path))
    finally:
        gin.clear_config()
    assert checkpoint.endswith("ckpt-6")
    assert {"epe_all/pixel_pooled", "epe_noc/pixel_pooled", "epe_occ/pixel_pooled"} <= set(results)
    assert json.loads((stage / "done.json").read_text())["step"] == 6
    assert os.listdir(stage / "tensorboard")
    assert re.search(r"^make_optimizer\.beta_1 = 0\.9$", (stage / "config.gin").read_text(), re.M)
    again, _, _ = trainer.train_stage(str(stage), **_stage_kwargs(tmp_path))
    assert again == checkpoint


def test_resumed_stage_skips_an_unreadable_checkpoint_and_says_so(tmp_path, capsys):
    stage = tmp_path / "stage"
    kwargs = _stage_kwargs(tmp_path, num_steps=4, checkpoint_every=2, image_every=0, eval_split=None)
    trainer.train_stage(str(stage), **kwargs)
    (stage / "done.json").unlink()  # as if killed after writing ckpt-4, which then got truncated
    data = [p for p in (stage / "checkpoints").iterdir() if p.name.startswith("ckpt-4.data")][0]
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    capsys.readouterr()
    final, _, _ = trainer.train_stage(str(stage), **kwargs)
    out = capsys.readouterr().out
    assert "skipping an unreadable checkpoint" in out and str(data) in out
    assert re.search(r"resuming from \S+ckpt-2 at step 2", out)
    assert final.endswith("ckpt-4") and json.loads((stage / "done.json").read_text())["step"] == 4
    assert tf.train.load_checkpoint(final).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 4


KILL_SCRIPT = """
import sys
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import trainer
from dflow_tf.training.unsupervised import UnsupervisedTask
trainer.train_stage(sys.argv[1], model_fn=lambda: TwoFramePWC(num_levels=4),
                    task=UnsupervisedTask("census", True), num_steps=int(sys.argv[3]), batch_size=2,
                    dataset="synthetic_flow/tiny", data_dir=sys.argv[2], checkpoint_every=3, log_every=1,
                    image_every=0, eval_split=None, deterministic=True, seed=5)
"""


def _final_weights(stage):
    prefix = latest_checkpoint(str(stage))
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(n for n, _ in tf.train.list_variables(prefix) if n.startswith("model/") and "OPTIMIZER" not in n)
    return reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"), {n: reader.get_tensor(n) for n in names}


def test_killed_run_resumes_from_last_checkpoint_and_matches_uninterrupted_run(tmp_path):
    data_dir = str(tmp_path / "tfds")
    steps = "9"
    reference = _run(["-c", KILL_SCRIPT, str(tmp_path / "reference"), data_dir, steps])
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(killed_dir), data_dir, steps], cwd=REPO,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and latest_checkpoint(str(killed_dir)) is None:
        time.sleep(0.2)
    assert latest_checkpoint(str(killed_dir)) is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "done.json").exists()
    resumed = _run(["-c", KILL_SCRIPT, str(killed_dir), data_dir, steps])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout

    step_ref, ref = _final_weights(tmp_path / "reference")
    step_res, res = _final_weights(killed_dir)
    assert step_ref == step_res == 9
    assert ref.keys() == res.keys()
    # Op determinism is on, so the resumed run is bitwise the uninterrupted one; allow 1e-6 slack.
    for name in ref:
        np.testing.assert_allclose(res[name], ref[name], atol=1e-6, err_msg=name)


MULTI_WORKER_SCRIPT = """
import json, os, sys
import numpy as np
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import trainer
from dflow_tf.training.strategy import make_strategy
from dflow_tf.training.unsupervised import UnsupervisedTask
strategy = make_strategy("auto")
assert strategy.num_replicas_in_sync == 2, strategy
models = []
def model_fn():
    models.append(TwoFramePWC(num_levels=4))
    return models[-1]
trainer.train_stage(sys.argv[1], model_fn=model_fn, task=UnsupervisedTask("census", True),
                    num_steps=3, batch_size=4, dataset="synthetic_flow/tiny", data_dir=sys.argv[2],
                    checkpoint_every=3, log_every=1, image_every=0, eval_split=None, seed=5, strategy=strategy)
np.savez(sys.argv[3], *[v.numpy() for v in models[0].trainable_variables])
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_end_with_identical_weights(tmp_path):
    data_dir = str(tmp_path / "tfds")
    prepare = _run(["-c", "import tfds_builders, tensorflow_datasets as tfds; "
                    f"tfds.builder('synthetic_flow/tiny', data_dir={data_dir!r}).download_and_prepare()"])
    assert prepare.returncode == 0, prepare.stderr[-2000:]
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable, "-c", MULTI_WORKER_SCRIPT, str(tmp_path / "stage"), data_dir,
                                       str(tmp_path / f"weights_{index}.npz")],
                                      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    step, _ = _final_weights(tmp_path / "stage")
    assert step == 3
    first, second = (np.load(tmp_path / f"weights_{i}.npz") for i in range(2))
    assert len(first.files) == len(second.files) > 0
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    initial = TwoFramePWC(num_levels=4)
    initial(tf.zeros([1, 2, 32, 48, 3]))
    assert any(not np.array_equal(w.numpy(), first[k]) for w, k in zip(initial.trainable_variables, first.files))


class _RecordingTask(UnsupervisedTask):
    """The census task with occlusion handling that keeps the frames of every batch it trains on."""

    def __init__(self):
        super().__init__("census", True)
        self.frames = []

    def compute_loss(self, model, batch):
        def keep(frames):
            self.frames.append(frames.copy())
            return np.int32(0)

        tf.numpy_function(keep, [batch["frames"]], tf.int32)  # stateful: runs in the traced step
        return super().compute_loss(model, batch)


@pytest.mark.backend
def test_mixed_precision_stage_computes_in_float16_and_steps_along_the_float32_gradient(tmp_path):
    """float16 compute with float32 variables and a dynamic loss scale, and the step applied.
    Adam's first step moves every weight by learning_rate * g / (|g| + epsilon), i.e. by about
    the learning rate along -sign(g): the float16 step must follow the signs of the float32
    gradient of the same loss on the same batch from the same weights (computed here in
    float32, outside the trainer), which it does only without underflow and with the loss
    scale undone."""
    import keras
    models, initial, task = [], [], _RecordingTask()

    def model_fn():
        model = TwoFramePWC(num_levels=4)
        trainer.build_model(model)
        initial.extend(v.numpy().copy() for v in model.trainable_variables)
        models.append(model)
        return model

    try:
        checkpoint, _, _ = trainer.train_stage(str(tmp_path / "stage"), **_stage_kwargs(
            tmp_path, model_fn=model_fn, task=task, num_steps=1, checkpoint_every=1, image_every=0,
            eval_split=None, mixed_precision=True))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    (mixed,), (frames,) = models, task.frames
    assert mixed.compute_dtype == "float16" and mixed.variable_dtype == "float32"
    assert {v.dtype for v in mixed.variables} == {"float32"}
    assert mixed(tf.zeros([1, 2, 64, 64, 3]))["flow"].dtype == tf.float16
    names = dict(tf.train.list_variables(checkpoint))
    assert "optimizer/dynamic_scale/.ATTRIBUTES/VARIABLE_VALUE" in names  # a LossScaleOptimizer
    reader = tf.train.load_checkpoint(checkpoint)
    # the step was applied (an overflow would have skipped it and halved the initial scale 2^15)
    assert reader.get_tensor("optimizer/inner_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 1
    assert reader.get_tensor("optimizer/dynamic_scale/.ATTRIBUTES/VARIABLE_VALUE") == 2.0 ** 15

    full = TwoFramePWC(num_levels=4)
    trainer.build_model(full)
    assert full.compute_dtype == "float32"
    for variable, value in zip(full.trainable_variables, initial):
        variable.assign(value)
    with tf.GradientTape() as tape:
        loss = UnsupervisedTask("census", True).compute_loss(full, {"frames": tf.constant(frames)})[0]
    gradient = np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, full.trainable_variables)])
    step = np.concatenate([(v.numpy() - w).ravel() for v, w in zip(mixed.trainable_variables, initial)])
    # Gradients above 1e-3 of the largest: float16 round-off does not flip their signs; above
    # 100 x Adam's epsilon (1e-8) each of these weights moves by the learning rate to within 1 %.
    clear = np.abs(gradient) > max(1e-3 * np.abs(gradient).max(), 100 * 1e-8)
    assert clear.mean() > 0.1
    assert np.mean(np.sign(step[clear]) == -np.sign(gradient[clear])) > 0.99
    # (all but a few: where float16 noise brings the mixed gradient of a weight near zero, it
    # moves less; 2-3 of 372,289 with oneDNN's AVX2 kernels)
    moved = np.abs(step[clear])
    assert np.mean(np.abs(moved - np.median(moved)) <= 0.02 * np.median(moved)) > 0.999
    # all weights: the small gradients' signs are float16 noise for some, not for most
    assert float(-step @ np.sign(gradient)) / (np.linalg.norm(step) * np.sqrt(gradient.size)) > 0.8
