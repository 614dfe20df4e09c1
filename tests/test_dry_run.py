"""The dry run of an experiment (experiment.DryRun): stages whose training step is the same graph
share one trace and the evaluations one traced prediction per architecture, while every stage
still builds its model, data and checkpoint, and a stage that differs (a scoped binding read while
tracing, a crop, a loss with a shape error) traces its own and fails where a real run would."""
import json

import gin
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.evaluation.validation import SharedPredictions
from dflow_tf.inference import make_predictor, predict_tensor
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import trainer
from dflow_tf.training.experiment import run_experiment
from dflow_tf.training.unsupervised import UnsupervisedTask


@gin.configurable
def extra_channels(flow, channels=2):
    """A term of DryRunTask's loss that gin configures: flow [B, H, W, 2] + zeros [B, H, W,
    `channels`], a shape error unless `channels` is 1 or 2."""
    return tf.reduce_mean(flow + tf.zeros(tf.concat([tf.shape(flow)[:3], [channels]], 0)))


@gin.configurable
class DryRunTask(UnsupervisedTask):
    """The photometric task plus 0 * extra_channels(forward flow): its graph depends on a gin
    binding that is read while the step is traced, in the scope of the stage."""

    def compute_loss(self, model, batch):
        loss, scalars, pictures = super().compute_loss(model, batch)
        flow = model(batch["frames"][:, :2])["flow"]
        return loss + 0.0 * extra_channels(tf.cast(flow, tf.float32)), scalars, pictures


@gin.configurable
class ShapeErrorTask(UnsupervisedTask):
    """A loss with a shape error: flow [B, H, W, 2] + frames [B, H, W, 3]."""

    def compute_loss(self, model, batch):
        loss, scalars, pictures = super().compute_loss(model, batch)
        flow = model(batch["frames"][:, :2])["flow"]
        return loss + tf.reduce_mean(flow + batch["frames"][:, 0]), scalars, pictures


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """Stages "a" and "b" of 4-level models on synthetic_flow/tiny that differ by seed (and "b"
    starts from "a"); the traced training steps are recorded."""
    from dflow_tf import configurables  # noqa: F401  (every gin name)
    gin.clear_config()
    gin.parse_config(f"""
        train_stage.model_fn = @TwoFramePWC
        TwoFramePWC.num_levels = 4
        train_stage.dataset = "synthetic_flow/tiny"
        train_stage.data_dir = "{tmp_path / 'tfds'}"
        train_stage.batch_size = 2
        train_stage.num_steps = 50
        train_stage.eval_batch_size = 1
        train_stage.task = @DryRunTask()
        DryRunTask.loss = "photometric"
        DryRunTask.occlusion = False
        a/train_stage.seed = 1
        b/train_stage.seed = 2
        b/train_stage.init_from = "a"
    """)
    steps = []
    make = trainer._make_train_step
    monkeypatch.setattr(trainer, "_make_train_step", lambda *args, **kwargs: steps.append(make(*args, **kwargs))
                        or steps[-1])
    yield tmp_path, steps
    gin.clear_config()


def _traces(steps):
    return sum(step.experimental_get_tracing_count() for step in steps)


def _weights(prefix):
    """The model weights of a stage checkpoint (saved under the optimizer's path)."""
    return {name: tf.train.load_variable(prefix, name) for name, _ in tf.train.list_variables(prefix)
            if name.startswith("optimizer/_trainable_variables/")}


def test_a_stage_with_the_same_graph_trains_its_own_weights_with_the_earlier_trace(experiment, capsys):
    tmp_path, steps = experiment
    out = tmp_path / "run"
    results = run_experiment(output_dir=str(out), stages=["a", "b"], dry_run=True)
    assert _traces(steps) == 1  # one training step traced for both stages
    assert "[b] dry run: trains with the step traced for a" in capsys.readouterr().out
    done = {stage: json.loads((out / stage / "done.json").read_text()) for stage in "ab"}
    assert done["a"]["step"] == done["b"]["step"] == 2
    assert results["a"]["num_images"] == results["b"]["num_images"] == 1
    # b started from a's final weights and trained two steps of its own: its checkpoint differs
    a_weights, b_weights = _weights(done["a"]["checkpoint"]), _weights(done["b"]["checkpoint"])
    assert a_weights.keys() == b_weights.keys() and len(a_weights) > 10
    assert any(not np.array_equal(a_weights[name], b_weights[name]) for name in a_weights)
    assert tf.train.load_variable(done["b"]["checkpoint"], "step/.ATTRIBUTES/VARIABLE_VALUE") == 2
    # the input iterator is saved once per data source: in a's checkpoint, not in b's
    variables = {stage: [name for name, _ in tf.train.list_variables(done[stage]["checkpoint"])] for stage in "ab"}
    assert any(name.startswith("iterator") for name in variables["a"])
    assert not any(name.startswith("iterator") for name in variables["b"])
    # b's checkpoint starts a later stage like any other (init_from reads its model)
    gin.bind_parameter("c/train_stage.init_from", "b")
    assert run_experiment(output_dir=str(out), stages=["a", "b", "c"], dry_run=True)["c"]["num_images"] == 1


def test_a_binding_read_while_tracing_in_a_later_stage_is_traced_and_fails_there(experiment):
    tmp_path, steps = experiment
    gin.bind_parameter("b/extra_channels.channels", 3)  # b's graph: [.., 2] + [.., 3]
    with pytest.raises(Exception, match="Dimensions must be equal"):  # autograph's StagingError
        run_experiment(output_dir=str(tmp_path / "run"), stages=["a", "b"], dry_run=True)
    assert (tmp_path / "run" / "a" / "done.json").exists() and not (tmp_path / "run" / "b" / "done.json").exists()
    assert len(steps) == 2  # b traced a step of its own


def test_a_later_stage_with_a_shape_error_in_its_loss_fails_the_dry_run(experiment):
    tmp_path, _ = experiment
    gin.bind_parameter("b/train_stage.task", ShapeErrorTask(loss="photometric", occlusion=False))
    with pytest.raises(Exception, match="Dimensions must be equal"):
        run_experiment(output_dir=str(tmp_path / "run"), stages=["a", "b"], dry_run=True)


def test_a_later_stage_with_a_crop_its_model_cannot_take_fails_the_dry_run(experiment):
    tmp_path, steps = experiment
    gin.bind_parameter("b/train_stage.crop_size", (24, 48))  # 4 levels: multiples of 16
    with pytest.raises(ValueError, match="multiple of 16"):
        run_experiment(output_dir=str(tmp_path / "run"), stages=["a", "b"], dry_run=True)
    assert len(steps) == 2


def test_shared_predictions_run_one_graph_with_each_models_own_weights():
    frames = tf.random.stateless_uniform([2, 2, 64, 96, 3], seed=[1, 2])
    models = [TwoFramePWC(num_levels=4) for _ in range(2)]
    for model in models:
        trainer.build_model(model)
    shared = SharedPredictions()
    predictions = []
    for model in models:
        predict = shared(model)
        predictions.append(predict(frames).numpy())
        assert np.array_equal(predictions[-1], tf.function(lambda f, m=model: predict_tensor(m, f))(frames).numpy())
    assert not np.array_equal(predictions[0], predictions[1])
    assert shared(models[0]).experimental_get_tracing_count() == 1
    pair = np.random.default_rng(0).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)  # real-pair predictors
    for model in models:
        assert np.array_equal(shared.predictor(model)(pair), make_predictor(model)(pair))
    assert shared.predictor(models[0]) is shared.predictor(models[1])
    other = TwoFramePWC(num_levels=3)
    trainer.build_model(other)
    assert shared(other) is not shared(models[0])  # another architecture, another graph


def test_a_dry_run_keeps_the_portable_state_in_its_own_folder(experiment):
    tmp_path, _ = experiment
    gin.bind_parameter("train_stage.state_dir", str(tmp_path / "state"))  # e.g. a state shipped in the package
    run_experiment(output_dir=str(tmp_path / "run"), stages=["a"], dry_run=True)
    assert not (tmp_path / "state").exists()
    state = tmp_path / "run" / "a" / "portable_state"
    assert state.is_dir() and any(state.iterdir())
