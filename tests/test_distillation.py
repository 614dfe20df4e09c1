"""Teacher ensemble, precomputed vs online targets, the student objective and the distillation stage."""
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import ops
from dflow_tf.checkpoints import save_model_description
from dflow_tf.data.pipeline import make_dataset
from dflow_tf.distillation.precompute import precompute_teacher_targets
from dflow_tf.distillation.task import DistillationTask
from dflow_tf.distillation.teachers import TeacherEnsemble
from dflow_tf.models import ThreeFramePWC, TwoFramePWC
from dflow_tf.training.trainer import build_model
from dflow_tf.training.unsupervised import UnsupervisedTask


def _save_teacher(directory, model_class, seed):
    tf.keras.utils.set_random_seed(seed)
    model = model_class(num_levels=4)
    build_model(model)
    # Random small last layers so that teachers predict distinct, non-zero flows.
    save_model_description(model, str(directory))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(directory / "checkpoints"), 1).save()
    return model


@pytest.fixture(scope="module")
def teacher_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    models = {name: _save_teacher(root / name, cls, seed)
              for name, cls, seed in [("a", TwoFramePWC, 1), ("b", TwoFramePWC, 2), ("c", ThreeFramePWC, 3)]}
    return root, models


def test_ensemble_averages_teachers_and_checks_confidence_on_the_average(teacher_dirs):
    root, models = teacher_dirs
    ensemble = TeacherEnsemble([str(root / "a"), str(root / "b")]).load()
    assert ensemble.num_frames == 2
    frames = tf.random.stateless_uniform([2, 2, 32, 48, 3], seed=[1, 2])
    targets = ensemble.annotate(frames)
    a = models["a"].bidirectional(frames)
    b = models["b"].bidirectional(frames)
    mean_fw = (a["forward"]["flow"] + b["forward"]["flow"]) / 2
    mean_bw = (a["backward"]["flow"] + b["backward"]["flow"]) / 2
    np.testing.assert_allclose(targets["teacher_flow_fw"], mean_fw, atol=1e-5)
    np.testing.assert_allclose(targets["teacher_flow_bw"], mean_bw, atol=1e-5)
    np.testing.assert_array_equal(targets["teacher_occlusion_fw"], ops.forward_backward_occlusion(mean_fw, mean_bw))
    np.testing.assert_array_equal(targets["teacher_occlusion_bw"], ops.forward_backward_occlusion(mean_bw, mean_fw))


def test_mixed_ensemble_uses_five_frame_windows_and_the_centre_pair(teacher_dirs):
    root, models = teacher_dirs
    ensemble = TeacherEnsemble([str(root / "a"), str(root / "c")]).load()
    assert ensemble.num_frames == 5
    frames = tf.random.stateless_uniform([1, 5, 32, 48, 3], seed=[3, 4])
    targets = ensemble.annotate(frames)
    two = models["a"].bidirectional(frames[:, 2:4])
    three_fw = models["c"].bidirectional(frames[:, 1:4])["forward"]["flow"]    # centre 2 -> 3
    three_bw = models["c"].bidirectional(frames[:, 2:5])["backward"]["flow"]   # centre 3 -> 2
    np.testing.assert_allclose(targets["teacher_flow_fw"], (two["forward"]["flow"] + three_fw) / 2, atol=1e-5)
    np.testing.assert_allclose(targets["teacher_flow_bw"], (two["backward"]["flow"] + three_bw) / 2, atol=1e-5)


def test_missing_teacher_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        TeacherEnsemble([str(tmp_path / "nowhere")]).load()


def test_precomputed_targets_equal_online_targets(teacher_dirs, tmp_path):
    root, _ = teacher_dirs
    ensemble = TeacherEnsemble([str(root / "a"), str(root / "b")]).load()
    data_dir = str(tmp_path / "tfds")
    out = str(tmp_path / "targets")
    count = precompute_teacher_targets(ensemble, "synthetic_flow/tiny", "train", out, data_dir=data_dir,
                                       batch_size=3, progress=False)
    assert count == 4
    stored = make_dataset(out, "train", batch_size=1, augmentation=None, shuffle=False, repeat=False)
    online = make_dataset("synthetic_flow/tiny", "train", batch_size=1, num_frames=2, augmentation=None,
                          shuffle=False, repeat=False, data_dir=data_dir)
    task = DistillationTask(teachers=ensemble)
    seen = 0
    for saved, fresh in zip(stored, online):
        assert saved["id"].numpy()[0] == fresh["id"].numpy()[0]
        np.testing.assert_array_equal(saved["frames"], fresh["frames"])
        from_batch = task.targets(saved)
        from_teachers = task.targets({"frames": fresh["frames"]})
        for key in from_batch:
            np.testing.assert_allclose(from_batch[key], from_teachers[key], atol=1e-5, err_msg=key)
        seen += 1
    assert seen == 4


def test_student_identical_to_a_single_teacher_gets_zero_distillation_and_the_teacher_census(teacher_dirs):
    root, models = teacher_dirs
    ensemble = TeacherEnsemble([str(root / "a")]).load()
    student = models["a"]
    task = DistillationTask(teachers=ensemble, transforms=None)
    frames = tf.random.stateless_uniform([2, 2, 32, 48, 3], seed=[5, 6])
    prepared = task.prepare({"frames": frames, "seed": tf.constant([0, 0], tf.int64)})
    loss, scalars, _ = task.compute_loss(student, prepared)
    # Same flows -> O_s == O_t -> the mask clip(O_s - O_t) is empty.
    assert float(scalars["loss/distillation"]) == 0.0
    # the student's own census term is DDFlow's, without the teachers' all-occluded guard
    census, _, _ = UnsupervisedTask("census", occlusion=True, max_occlusion_fraction=None).compute_loss(
        student, {"frames": frames})
    np.testing.assert_allclose(float(loss), float(census), rtol=1e-5)


@pytest.mark.parametrize("pixels", ["student_occluded", "teacher_confident"])
def test_distilled_pixels(pixels):
    # A student with zero flow both ways (consistent: O_s = 0 everywhere) that differs from the
    # teachers' flows by d: "student_occluded" learns nowhere, "teacher_confident" everywhere the
    # teacher is confident (numpy: psi summed over both components and the mask, / (2 sum M)).
    rng = np.random.default_rng(0)
    b, h, w = 2, 24, 32
    d = np.array([1.5, -0.5], np.float32)
    occ_t = [(rng.random((b, h, w, 1)) < p).astype(np.float32) for p in (0.3, 0.6)]
    student_fw = student_bw = np.zeros((b, h, w, 2), np.float32)
    teacher_fw = student_fw - d
    teacher_bw = student_bw - d
    zeros = np.zeros((b, h, w, 1), np.float32)
    batch = {"frames": tf.random.stateless_uniform([b, 2, h, w, 3], seed=[1, 2]),
             "teacher_flow_fw": teacher_fw, "teacher_flow_bw": teacher_bw,
             "teacher_occlusion_fw": occ_t[0], "teacher_occlusion_bw": occ_t[1],
             "noise_mask_fw": zeros, "noise_mask_bw": zeros, "inside": 1.0 - zeros}
    task = DistillationTask(pixels=pixels)
    _, scalars, pictures = task.flows_loss(batch, tf.constant(student_fw), tf.constant(student_bw))
    assert float(scalars["occlusion_ratio/student"]) == 0.0
    if pixels == "student_occluded":
        assert float(scalars["loss/distillation"]) == 0.0
        return
    psi = (np.abs(d) + 0.01) ** 0.4
    want = 0.5 * sum(np.sum((1 - o) * psi) / (2 * np.sum(1 - o) + 1e-6) for o in occ_t)
    np.testing.assert_allclose(float(scalars["loss/distillation"]), want, rtol=1e-5)
    np.testing.assert_array_equal(pictures["distillation_mask"].numpy(), 1 - occ_t[0])


def test_unknown_distilled_pixels_are_named():
    with pytest.raises(ValueError, match="DistillationTask.pixels.*'everywhere'"):
        DistillationTask(pixels="everywhere")
