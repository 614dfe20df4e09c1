"""Supervised fine-tuning: SupervisedTask, id-selected and combined sources, the gin files."""
import inspect
import os

import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.data import sources
from dflow_tf.data.pipeline import make_dataset
from dflow_tf.losses import supervised_loss
from dflow_tf.training import trainer
from dflow_tf.training.optimizer import make_optimizer
from dflow_tf.training.supervised import SupervisedTask

# Run again by CI with oneDNN off and with its AVX2 kernels (pytest.ini).
pytestmark = pytest.mark.backend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _FixedFlowModel:
    """Returns a fixed flow and records the frames it was given."""

    def __init__(self, flow, num_frames):
        self.flow, self.num_frames, self.seen = flow, num_frames, None

    def __call__(self, frames):
        self.seen = frames.numpy()
        return {"flow": tf.constant(self.flow)}  # the output contract: the forward flow's dict


def _batch(num_frames, rng):
    frames = rng.uniform(size=(2, num_frames, 8, 12, 3)).astype(np.float32)
    gt = rng.normal(scale=3.0, size=(2, 8, 12, 2)).astype(np.float32)
    valid = (rng.uniform(size=(2, 8, 12, 1)) > 0.4).astype(np.float32)
    gt[..., :1][valid == 0] = 1e9  # garbage where invalid (as in sparse / unknown ground truth)
    return {"frames": frames, "flow": gt, "valid": valid}


def _numpy_robust(flow, gt, valid):
    per_image = []
    for f, g, v in zip(flow, gt, valid[..., 0] > 0):
        psi = (np.abs(f[v] - g[v]) + 0.01) ** 0.4
        per_image.append(psi.sum() / (2 * v.sum() + 1e-6))
    return np.mean(per_image)


@pytest.mark.parametrize("kind", ["robust", "epe"])
def test_two_frame_loss_equals_supervised_loss(kind):
    rng = np.random.default_rng(0)
    batch = _batch(2, rng)
    flow = rng.normal(size=(2, 8, 12, 2)).astype(np.float32)
    model = _FixedFlowModel(flow, 2)
    loss, scalars, pictures = SupervisedTask(kind).compute_loss(model, batch)
    np.testing.assert_allclose(float(loss), float(supervised_loss(flow, batch["flow"], batch["valid"], kind)),
                               rtol=1e-6)
    if kind == "robust":
        np.testing.assert_allclose(float(loss), _numpy_robust(flow, batch["flow"], batch["valid"]), rtol=1e-5)
    valid = batch["valid"][..., 0] > 0
    epe = np.sqrt(((flow - batch["flow"]) ** 2).sum(-1))[valid].mean()  # pixel-pooled, numpy
    np.testing.assert_allclose(float(scalars["train_epe"]), epe, rtol=1e-5)
    np.testing.assert_array_equal(model.seen, batch["frames"])
    assert set(pictures) == {"frame", "flow_forward", "flow_gt"}
    np.testing.assert_array_equal(pictures["flow_gt"][valid], batch["flow"][valid])


def test_three_frame_uses_centre_forward_flow_and_the_first_frame_fallback():
    rng = np.random.default_rng(1)
    flow = rng.normal(size=(2, 8, 12, 2)).astype(np.float32)
    batch3 = _batch(3, rng)
    model = _FixedFlowModel(flow, 3)
    task = SupervisedTask("epe")
    assert task.num_frames(model) == 3
    loss, _, pictures = task.compute_loss(model, batch3)
    np.testing.assert_array_equal(model.seen, batch3["frames"])  # (t-1, t, t+1): pair 1 -> 2
    np.testing.assert_array_equal(pictures["frame"], batch3["frames"][:, 1])
    np.testing.assert_allclose(float(loss), float(supervised_loss(flow, batch3["flow"], batch3["valid"], "epe")),
                               rtol=1e-6)
    # Pairs only (KITTI benchmark pairs): the centre frame is repeated as the previous frame.
    batch2 = _batch(2, rng)
    task2 = SupervisedTask("robust", input_frames=2)
    assert task2.num_frames(model) == 2
    task2.compute_loss(model, batch2)
    f = batch2["frames"]
    np.testing.assert_array_equal(model.seen, np.stack([f[:, 0], f[:, 0], f[:, 1]], axis=1))


def test_bad_arguments():
    with pytest.raises(ValueError, match="loss"):
        SupervisedTask("l2")
    with pytest.raises(ValueError, match="input_frames"):
        SupervisedTask(input_frames=5)


class _ConstantFlow(keras.Model):
    """A two-frame model whose flow is one trainable vector (u, v) everywhere, starting at zero."""
    num_frames = 2
    size_multiple = 1

    def __init__(self, name="constant_flow", **kwargs):
        super().__init__(name=name, **kwargs)
        self.vector = self.add_weight(shape=(2,), initializer="zeros", name="vector")

    def call(self, frames):
        shape = tf.shape(frames)
        return {"flow": tf.zeros(tf.stack([shape[0], shape[2], shape[3], 2])) + self.vector}


class _RecordingSupervisedTask(SupervisedTask):
    """The robust supervised task that keeps every batch's ground truth and the model's vector."""

    def __init__(self):
        super().__init__("robust")
        self.seen = []

    def compute_loss(self, model, batch):
        def keep(gt, valid, vector):
            self.seen.append((gt.copy(), valid.copy(), vector.copy()))
            return np.int32(0)

        tf.numpy_function(keep, [batch["flow"], batch["valid"], model.vector], tf.int32)
        return super().compute_loss(model, batch)


def _numpy_robust_gradient(vector, gt, valid):
    """d/d(u, v) of _numpy_robust for the flow `vector` everywhere."""
    per_image = []
    for g, v in zip(gt, valid[..., 0] > 0):
        diff = vector - g[v]
        per_image.append((0.4 * (np.abs(diff) + 0.01) ** -0.6 * np.sign(diff)).sum(axis=0) / (2 * v.sum() + 1e-6))
    return np.mean(per_image, axis=0)


def test_train_stage_logs_the_robust_loss_of_each_step_and_takes_adams_first_step(tmp_path):
    """Three supervised steps of a constant-flow model from zero: each logged loss is the numpy
    robust loss of the vector it had on the batch it saw; Adam's first step moves it by the
    learning rate against the sign of the numpy gradient."""
    task = _RecordingSupervisedTask()
    path, results, _ = trainer.train_stage(
        str(tmp_path / "stage"), model_fn=_ConstantFlow, task=task,
        num_steps=3, batch_size=2, dataset="synthetic_flow/tiny", data_dir=str(tmp_path / "tfds"),
        crop_size=None, checkpoint_every=100, log_every=1, image_every=0, eval_split=None)
    assert path.endswith("ckpt-3") and results is None
    events = tf.compat.v1.train.summary_iterator
    logged = sorted((e.step, float(tf.make_ndarray(v.tensor))) for f in (tmp_path / "stage" / "tensorboard").iterdir()
                    for e in events(str(f)) for v in e.summary.value if v.tag == "loss/supervised_robust")
    assert len(logged) == len(task.seen) == 3
    for (_, loss), (gt, valid, vector) in zip(logged, task.seen):
        assert np.abs(gt).max() > 0.1 and valid.sum() > 0
        np.testing.assert_allclose(loss, _numpy_robust(np.broadcast_to(vector, gt.shape), gt, valid), rtol=1e-5)
    gt, valid, start = task.seen[0]
    np.testing.assert_array_equal(start, [0.0, 0.0])
    learning_rate = inspect.signature(make_optimizer).parameters["learning_rate"].default
    np.testing.assert_allclose(task.seen[1][2], -learning_rate * np.sign(_numpy_robust_gradient(start, gt, valid)),
                               rtol=1e-3)


def test_kitti2015_split_lists_are_selflows_170_30_partition():
    train = sources.read_id_list("kitti2015_train")
    val = sources.read_id_list("kitti2015_val")
    assert len(train) == 170 and len(val) == 30 and not set(train) & set(val)
    assert set(train) | set(val) == {f"{i:06d}" for i in range(200)}
    assert train[:3] == ["000186", "000163", "000072"] and val[:3] == ["000109", "000107", "000105"]


def test_id_pattern_matches_ids_and_their_children_only():
    import re
    pattern = sources.id_pattern(["000042", "alley_1"])
    for good in ("000042", "000042_10", "alley_1/frame_0001"):
        assert re.fullmatch(pattern, good)
    for bad in ("0000420_10", "000043_10", "alley_10/frame_0001", "x000042"):
        assert not re.fullmatch(pattern, bad)


def test_combined_source_selects_ids_and_combines_builders(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# two of the four training examples\ntrain/000001\n\ntrain/000003\n")
    source = sources.CombinedSource(["synthetic_flow/tiny", "synthetic_flow/tiny"],
                                    id_splits={"sub": ("train", str(ids))}, data_dir=str(tmp_path / "tfds"))
    source.download_and_prepare()
    assert source.name == "synthetic_flow"
    assert source.num_examples("train") == 8 and source.num_examples("validation") == 4
    ds = make_dataset(source, "sub", batch_size=2, num_frames=2, seed=3, repeat=False, prepare=False)
    seen = sorted(i.decode() for batch in ds for i in batch["id"].numpy())
    assert seen == ["train/000001", "train/000001", "train/000003", "train/000003"]
    with pytest.raises(FileNotFoundError, match="kitti2015_train"):
        sources.read_id_list("no_such_list")


@pytest.mark.parametrize("path", ["gin/finetune.gin", "gin/kitti/finetune.gin", "gin/sintel/finetune.gin"])
def test_gin_files_parse(path):
    from dflow_tf import configurables  # noqa: F401  (every gin name)
    gin.clear_config()
    gin.add_config_file_search_path(REPO)
    try:
        gin.parse_config_file(os.path.join(REPO, path), skip_unknown=["run_experiment"])
        assert gin.query_parameter("train_stage.init_from") == "runs/distill/student"
        if "kitti" in path:
            with gin.config_scope("finetune"):
                source = gin.query_parameter("train_stage.dataset").scoped_configurable_fn()
            assert source.id_splits["validation"][0] == "train" and len(source.id_splits["validation"][1]) == 30
        if "sintel" in path:
            assert gin.query_parameter("TwoFramePWC.normalize_input") is True
    finally:
        gin.clear_config()
