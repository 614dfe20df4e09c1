"""Long runs in segments: a budget pauses a stage and the same call continues it; the portable
float16 state restarts a stage on another machine; the learning-rate schedules."""
import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import pretrained
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import optimizer, portable_state, trainer
from dflow_tf.training.supervised import SupervisedTask


def _kwargs(tmp_path, **overrides):
    kwargs = dict(model_fn=lambda: TwoFramePWC(num_levels=4), task=SupervisedTask("multiscale"), num_steps=5,
                  batch_size=2, dataset="synthetic_flow/tiny", data_dir=str(tmp_path / "tfds"),
                  checkpoint_every=100, log_every=1, image_every=0, eval_split=None, seed=3)
    kwargs.update(overrides)
    return kwargs


def test_a_stage_paused_by_its_budget_continues_to_the_same_step_count(tmp_path):
    stage = str(tmp_path / "stage")
    with pytest.raises(trainer.StagePaused) as paused:
        trainer.train_stage(stage, **_kwargs(tmp_path, max_minutes=1e-6))
    assert paused.value.step == 1 and paused.value.num_steps == 5
    assert "max_minutes" in str(paused.value)
    assert tf.train.latest_checkpoint(f"{stage}/checkpoints").endswith("ckpt-1")  # saved off the schedule
    result = trainer.train_stage(stage, **_kwargs(tmp_path))
    with open(f"{stage}/{trainer.DONE_FILE}") as f:
        assert json.load(f)["step"] == 5
    assert result.checkpoint.endswith("ckpt-5")


def test_a_checkpoint_of_other_batch_shapes_is_named_in_one_line(tmp_path):
    """A paused stage continued with another crop size: its restored input pipeline yields the
    old shapes; the first step names the checkpoint folder instead of a graph error."""
    from dflow_tf.console import InputError
    stage = str(tmp_path / "stage")
    with pytest.raises(trainer.StagePaused):
        trainer.train_stage(stage, **_kwargs(tmp_path, max_minutes=1e-6, crop_size=(64, 64)))
    with pytest.raises(InputError, match=r"\[stage\] the checkpoint in .*stage/checkpoints was written by a run "
                       r"whose batches had other shapes .*Incompatible shapes"):
        trainer.train_stage(stage, **_kwargs(tmp_path, crop_size=(64, 128)))


def test_a_stage_restarts_from_its_portable_float16_state(tmp_path):
    state_dir = tmp_path / "state"
    trainer.train_stage(str(tmp_path / "first"), **_kwargs(tmp_path, num_steps=3, state_dir=str(state_dir)))
    saved = json.loads((state_dir / portable_state.STATE_FILE).read_text())
    assert saved["step"] == 3 and saved["model"]["class"] == "TwoFramePWC" and saved["resumes"] == 0
    with np.load(state_dir / portable_state.WEIGHTS_FILE) as stored:
        weights = {key: stored[key] for key in stored}
    assert all(w.dtype == np.float16 for w in weights.values())
    assert sum(w.size for w in weights.values()) == TwoFramePWC(num_levels=4).count_params()
    with open(state_dir / portable_state.CURVE_FILE) as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2, 3]

    # A new stage folder (another machine): no checkpoint, so it starts from the portable state
    # and pauses right after its first new step.
    with pytest.raises(trainer.StagePaused) as paused:
        trainer.train_stage(str(tmp_path / "second"), **_kwargs(
            tmp_path, num_steps=6, state_dir=str(state_dir), max_minutes=1e-6))
    assert paused.value.step == 4
    resumed = json.loads((state_dir / portable_state.STATE_FILE).read_text())
    assert resumed["step"] == 4 and resumed["resumes"] == 1  # 3 restored + 1 trained
    with open(state_dir / portable_state.CURVE_FILE) as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [1, 2, 3, 4]


def test_restore_state_assigns_the_float16_values_and_names_a_mismatch(tmp_path):
    model = TwoFramePWC(num_levels=4)
    rng = np.random.default_rng(0)
    for v in model.weights:
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    portable_state.save_state(str(tmp_path), model, step=7, num_steps=9, seconds=1.0, resumes=0)
    other = TwoFramePWC(num_levels=4)
    assert portable_state.restore_state(str(tmp_path), other)["step"] == 7
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(b.numpy(), a.numpy().astype(np.float16).astype(np.float32))
    with pytest.raises(portable_state.PortableStateError, match="weights.npz"):
        portable_state.restore_state(str(tmp_path), TwoFramePWC(num_levels=5))


def test_the_data_seed_of_a_restart_depends_on_the_step():
    assert portable_state.data_seed(4, 0) == 4
    seeds = {portable_state.data_seed(4, step) for step in (1, 2, 1000)}
    assert len(seeds) == 3 and all(0 <= s < 2 ** 31 for s in seeds)
    assert portable_state.data_seed(4, 1000) == portable_state.data_seed(4, 1000)


@pytest.mark.parametrize("t, expected", [
    (0, 0.04 * 3e-4),                 # the warm-up starts at 4 %
    (50, (0.04 + 0.96 * 0.5) * 3e-4),  # half-way up
    (100, 3e-4),                       # the peak
    (550, 1e-5 + (3e-4 - 1e-5) * 0.5),  # the cosine's mid-point
    (1000, 1e-5), (5000, 1e-5),        # the floor, then constant
])
def test_one_cycle_schedule_known_values(t, expected):
    rate = optimizer.StageSchedule(3e-4, "one_cycle", warmup_steps=100, total_steps=1000,
                                   final_learning_rate=1e-5)
    np.testing.assert_allclose(float(rate(tf.constant(t))), expected, rtol=1e-5)


def test_halving_schedule_reads_the_stage_step_not_the_update_count():
    step = tf.Variable(2500, dtype=tf.int64)
    rate = optimizer.StageSchedule(1e-4, "halving", halve_every=1000, step=step)
    np.testing.assert_allclose(float(rate(tf.constant(0))), 1e-4 / 4, rtol=1e-6)
    with pytest.raises(ValueError, match="total_steps"):
        optimizer.StageSchedule(1e-4, "one_cycle")


def test_clip_global_norm_scales_the_gradients_before_adam():
    """Two Adam updates against a numpy Adam on the clipped gradients: a gradient of global norm
    50 enters Adam's moments at norm 1, one of norm 0.5 unchanged (Adam alone is invariant to
    the scale of its first gradient, not to the ratio between two)."""
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    grads = [np.array([30.0, -40.0]), np.array([0.3, 0.4])]
    weights = tf.Variable([1.0, 2.0], dtype=tf.float64)
    adam = optimizer.make_optimizer(lr, clip_global_norm=1.0)
    expected, m, v = np.array([1.0, 2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(grads, 1):
        adam.apply_gradients([(tf.constant(g), weights)])
        g = g * min(1.0, 1.0 / np.linalg.norm(g))
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        expected = expected - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("name", pretrained.names())
def test_every_shipped_model_loads_from_its_float16_state(name):
    model = pretrained.load_pretrained(name)
    saved = portable_state.read_state(pretrained.model_folder(name))
    assert type(model).__name__ == saved["model"]["class"]
    assert all(np.isfinite(v.numpy()).all() for v in model.weights)
