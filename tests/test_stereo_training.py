"""Stereo pairs in training: the teacher objective and the student's crop on rectified pairs, stages
mixing temporal flow and stereo pairs, and the disparity evaluation of stereo batches."""
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import losses, ops
from dflow_tf.data import render, schema
from dflow_tf.data.mixture import MixedSource
from dflow_tf.data.pipeline import make_dataset
from dflow_tf.distillation.transforms import StudentTransforms
from dflow_tf.evaluation import evaluate_model
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import trainer, unsupervised
from dflow_tf.training.unsupervised import UnsupervisedTask
from tfds_builders.synthetic_stereo import stereo_render

H, W = 48, 64
D_BACK, D_FRONT = 2.0, 10.0


def _translation(tx, ty):
    return np.array([[1.0, 0, tx], [0, 1.0, ty], [0, 0, 1.0]])


@pytest.fixture(scope="module")
def disc_pair():
    """A textured background at disparity 2 and a disc at disparity 10 (integer disparities: every
    correspondence lands on a pixel): frames [1, 2, H, W, 3] in [0, 1], the exact left -> right
    and right -> left flows [1, H, W, 2] and the left view's occlusion [1, H, W, 1]."""
    spec = render.SceneSpec(height=H, width=W, num_frames=1)
    rng = np.random.default_rng(1)
    texture = lambda n: render._texture(rng, n, n, 0.8)  # noqa: E731  (the renderer's textures)
    background = render.Layer(texture(96), ("all",), _translation((W - 1) / 2, (H - 1) / 2)[None])
    disc = render.Layer(texture(32), ("superellipse", 11.5, 11.5, 2.0), _translation(34.0, 24.0)[None])
    both = stereo_render.stereo_scene(render.Scene(spec, [background, disc]), [D_BACK, D_FRONT])
    frames = np.stack([render.render_frame(both, 0), render.render_frame(both, 1)])[None] / 255.0
    fw, occluded = render.flow_and_occlusion(both, 0, 1)
    bw, _ = render.flow_and_occlusion(both, 1, 0)
    as_tensor = lambda a: tf.constant(a[None] if a.ndim == 3 else a, tf.float32)  # noqa: E731
    return as_tensor(frames), as_tensor(fw), as_tensor(bw), as_tensor(occluded.astype(np.float32))


class _FixedFlows:
    """A two-frame 'model' whose bidirectional flows are given (the objective under test only)."""
    num_frames = 2

    def __init__(self, fw, bw):
        self.fw, self.bw = fw, bw

    def bidirectional(self, frames):
        return {"forward": {"flow": self.fw}, "backward": {"flow": self.bw}}


def test_teacher_objective_on_a_stereo_pair(disc_pair):
    """Census + left-right check, unchanged: the check finds the true occlusion of the pair and
    the masked census loss is lowest at the true disparity."""
    frames, fw, bw, occluded = disc_pair
    task = UnsupervisedTask("census", occlusion=True)
    (occ_left, _), _, rejected = task.occlusions(fw, bw)
    assert float(rejected) == 0.0
    truth, found = occluded.numpy() > 0.5, occ_left.numpy() > 0.5
    assert truth.sum() > 50 and (truth & found).sum() / (truth | found).sum() > 0.9
    loss_true = float(task.compute_loss(_FixedFlows(fw, bw), {"frames": frames})[0])
    for du in (-1.0, 1.0):
        shift = tf.constant([du, 0.0])
        worse = float(task.compute_loss(_FixedFlows(fw + shift, bw - shift), {"frames": frames})[0])
        assert loss_true < 0.8 * worse
    zero = tf.zeros_like(fw)
    assert loss_true < 0.5 * float(losses.census_loss(frames[:, 0], frames[:, 1], zero, zero, None, None))


def test_student_crop_hallucinates_occlusions_at_the_left_border_of_stereo_patches(disc_pair):
    """Flow (-d, 0) leaves a patch only through its left border: the distillation mask
    clip(O_s - O_t, 0, 1) of a student that reproduced the teacher is exactly the band
    x + u < 0 of the patch where the teacher (on the full pair) is confident."""
    frames, fw, bw, _ = disc_pair
    batch = 6
    frames, fw, bw = (tf.repeat(t, batch, axis=0) for t in (frames, fw, bw))
    targets = {schema.TEACHER_FLOW_FW: fw, schema.TEACHER_FLOW_BW: bw,
               schema.TEACHER_OCCLUSION_FW: ops.forward_backward_occlusion(fw, bw),
               schema.TEACHER_OCCLUSION_BW: ops.forward_backward_occlusion(bw, fw)}
    out = StudentTransforms(crop_size=(32, 40), superpixel=False).apply(
        frames, targets, tf.constant([4, 2], tf.int64), pair_index=0)
    student_fw = ops.forward_backward_occlusion(out[schema.TEACHER_FLOW_FW], out[schema.TEACHER_FLOW_BW])
    mask = losses.distillation_mask(student_fw, out[schema.TEACHER_OCCLUSION_FW]).numpy()[..., 0]
    xs = np.arange(40)[None, None, :]
    leaves = xs + out[schema.TEACHER_FLOW_FW].numpy()[..., 0] < 0
    expected = leaves & (out[schema.TEACHER_OCCLUSION_FW].numpy()[..., 0] < 0.5)
    np.testing.assert_array_equal(mask > 0.5, expected)
    assert expected.sum() > 0 and not mask[..., int(D_FRONT):].any()


class _ConstantFlow:
    """A model predicting the same flow everywhere."""
    num_frames = 2
    size_multiple = 1

    def __init__(self, u, v):
        self.flow = (u, v)

    def __call__(self, frames):
        shape = tf.shape(frames)
        return {"flow": tf.ones([shape[0], shape[2], shape[3], 2]) * tf.constant(self.flow)}


def _tiny(name, tmp_path):
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401
    builder = tfds.builder(name, data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        compute_stats=tfds.download.ComputeStatsMode.SKIP))
    return builder


def test_evaluate_model_scores_stereo_pairs_with_disparity_metrics(tmp_path):
    _tiny("synthetic_stereo/tiny", tmp_path)
    ds = make_dataset("synthetic_stereo/tiny", "train", batch_size=3, augmentation=None, shuffle=False,
                      repeat=False, drop_remainder=False, data_dir=str(tmp_path / "tfds"))
    result = evaluate_model(_ConstantFlow(-3.0, 0.5), ds)
    gt = np.concatenate([-b["flow"].numpy()[..., 0] for b in ds])
    occ = np.concatenate([b["occlusion"].numpy()[..., 0] for b in ds]) > 0.5
    err = np.abs(3.0 - gt)
    outlier = (err > 3.0) & (err > 0.05 * gt)
    assert result["num_images"] == 4
    np.testing.assert_allclose(result["epe_all/pixel_pooled"], err.mean(), rtol=1e-6)
    np.testing.assert_allclose(result["epe_occ/pixel_pooled"], err[occ].mean(), rtol=1e-6)
    np.testing.assert_allclose(result["d1_noc/pixel_pooled"], 100 * outlier[~occ].mean(), rtol=1e-6)
    np.testing.assert_allclose(result["v_abs_mean/pixel_pooled"], 0.5, rtol=1e-6)
    assert "fl_all/pixel_pooled" not in result


def _mixed(tmp_path, **kwargs):
    _tiny("synthetic_flow/tiny", tmp_path)
    _tiny("synthetic_stereo/tiny", tmp_path)
    return MixedSource(["synthetic_flow/tiny", "synthetic_stereo/tiny"], **kwargs)


def test_mixed_source_mixes_flow_and_stereo_samples(tmp_path):
    source = _mixed(tmp_path, weights=[1.0, 1.0])
    ds = make_dataset(source, "train", batch_size=4, num_frames=2, crop_size=(32, 48), augmentation=None, seed=3,
                      data_dir=str(tmp_path / "tfds"))
    kinds = {True: 0, False: 0}
    for batch in ds.take(6):
        assert batch["frames"].shape == (4, 2, 32, 48, 3) and schema.FLOW_FW not in batch
        for i, stereo in enumerate(batch[schema.STEREO].numpy()):
            kinds[bool(stereo)] += 1
            sample_id = batch[schema.ID][i].numpy().decode()
            assert sample_id.endswith(("_t0", "_t1")) == bool(stereo)  # stereo ids carry the time step
            if stereo:
                assert (batch["flow"][i, ..., 0].numpy() < 0).all() and not batch["flow"][i, ..., 1].numpy().any()
    assert kinds[True] >= 4 and kinds[False] >= 4
    # evaluation: unshuffled, in source order; with both kinds, the disparity metrics under "stereo/"
    ds = make_dataset(source, "validation", batch_size=2, augmentation=None, shuffle=False, repeat=False,
                      drop_remainder=False, data_dir=str(tmp_path / "tfds"))
    result = evaluate_model(_ConstantFlow(-1.0, 0.0), ds)
    assert result["num_images"] == 2 and result["stereo/num_images"] == 2
    assert "fl_all/pixel_pooled" in result and "stereo/d1_all/pixel_pooled" in result
    with pytest.raises(ValueError, match="one of the sources"):
        MixedSource(["synthetic_flow/tiny"], split_sources={"validation": ["synthetic_stereo/tiny"]})
    with pytest.raises(ValueError, match="weights"):
        MixedSource(["synthetic_flow/tiny", "synthetic_stereo/tiny"], weights=[1.0])


def test_stage_on_mixed_flow_and_stereo_pairs_reports_disparity(tmp_path, monkeypatch):
    source = _mixed(tmp_path, split_sources={"validation": ["synthetic_stereo/tiny"]})
    seen = []  # (ids, stereo flags) of every training batch, recorded when the traced step runs
    compute = unsupervised.UnsupervisedTask.compute_loss

    def spy(self, model, batch):
        def keep(ids, stereo):
            seen.append(([i.decode() for i in ids], stereo.tolist()))
            return np.int32(0)

        tf.numpy_function(keep, [batch[schema.ID], batch[schema.STEREO]], tf.int32)
        return compute(self, model, batch)

    monkeypatch.setattr(unsupervised.UnsupervisedTask, "compute_loss", spy)
    _, results, _ = trainer.train_stage(
        str(tmp_path / "stage"), model_fn=lambda: TwoFramePWC(num_levels=4), task=UnsupervisedTask("census", True),
        num_steps=2, batch_size=2, crop_size=(32, 48), dataset=source, data_dir=str(tmp_path / "tfds"),
        checkpoint_every=2, log_every=1, image_every=0, eval_batch_size=2, seed=1)
    # every sample's flag says which builder it came from: stereo ids carry the time step
    assert len(seen) == 2 and all(len(ids) == len(flags) == 2 for ids, flags in seen)
    for ids, flags in seen:
        assert flags == [i.endswith(("_t0", "_t1")) for i in ids], (ids, flags)
    assert {"epe_all/pixel_pooled", "d1_all/pixel_pooled", "d1_noc/pixel_pooled", "d1_occ/pixel_pooled"} <= set(results)
    assert results["num_images"] == 2 and np.isfinite(results["d1_all/pixel_pooled"])


def _write_middlebury(folder, left, right, disparity, mask):
    from dflow_tf.io import write_image
    from dflow_tf.io.flow_files import write_pfm_disparity
    folder.mkdir(parents=True)
    write_image(folder / "im0.png", left)
    write_image(folder / "im1.png", right)
    write_pfm_disparity(folder / "disp0GT.pfm", disparity)
    write_image(folder / "mask0nocc.png", mask)


def test_eval_pairs_scores_stereo_folders_with_disparity_metrics(tmp_path):
    """A root with a flow-less stereo group: D1 and EPE of a constant prediction, by hand."""
    from dflow_tf.evaluation.pair_groups import evaluate_pair_groups
    rng = np.random.default_rng(0)
    expected = {}
    for name, d0 in (("a", 1.0), ("b", 8.0)):
        disparity = (d0 + rng.uniform(0, 6, (24, 40))).astype(np.float32)
        mask = np.where(rng.random((24, 40)) < 0.3, 128, 255).astype(np.uint8)
        frames = rng.integers(0, 255, (2, 24, 40, 3), dtype=np.uint8)
        _write_middlebury(tmp_path / "stereo" / name, frames[0], frames[1], disparity, mask)
        err = np.abs(4.0 - disparity)
        outlier = (err > 3.0) & (err > 0.05 * disparity)
        expected[name] = (err.mean(), 100 * outlier[mask == 128].mean())
    results = evaluate_pair_groups(_ConstantFlow(-4.0, 0.0), str(tmp_path))
    assert list(results) == ["stereo"]
    np.testing.assert_allclose(results["stereo"]["epe_all/per_image_mean"],
                               np.mean([e for e, _ in expected.values()]), rtol=1e-5)
    np.testing.assert_allclose(results["stereo"]["d1_occ/per_image_mean"],
                               np.mean([d for _, d in expected.values()]), rtol=1e-5)
    assert evaluate_pair_groups(_ConstantFlow(-4.0, 0.0), str(tmp_path), max_per_group=1)["stereo"]["num_images"] == 1
    with pytest.raises(FileNotFoundError, match="empty"):
        (tmp_path / "empty").mkdir()
        evaluate_pair_groups(_ConstantFlow(-4.0, 0.0), str(tmp_path / "empty"))


def test_eval_pairs_on_the_real_stereo_pair(flowdata):
    """The real Middlebury pair: a constant disparity's EPE is the mean |d - gt| over the valid pixels."""
    from dflow_tf.evaluation.pair_groups import evaluate_pair_groups
    from dflow_tf.io.flow_files import read_pfm
    gt = read_pfm(str(flowdata / "stereo" / "mb2014Q_Motorcycle" / "disp0GT.pfm"))
    valid = np.isfinite(gt)
    results = evaluate_pair_groups(_ConstantFlow(-30.0, 0.0), str(flowdata / "stereo"))
    np.testing.assert_allclose(results["stereo"]["epe_all/pixel_pooled"], np.abs(30.0 - gt[valid]).mean(), rtol=1e-5)
    assert 0 < results["stereo"]["d1_all/pixel_pooled"] <= 100


@pytest.mark.parametrize("gin_file", ["gin/stereo.gin", "gin/kitti/stereo.gin"])
def test_stereo_gin_files_parse_and_bind_stereo_data(gin_file):
    import os

    import gin

    import dflow_tf.configurables  # noqa: F401
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gin.clear_config()
    try:
        cwd = os.getcwd()
        os.chdir(repo)
        gin.parse_config_file(gin_file)
        dataset = gin.query_parameter("train_stage.dataset")
        crop = gin.query_parameter("TEACHER_CROP/macro.value")
        assert not gin.query_parameter("Augmentation.flip_horizontal")
        if gin_file == "gin/stereo.gin":
            assert dataset == "synthetic_stereo" and crop == (128, 192)
            assert gin.query_parameter("train_stage.eval_pairs") == "skimage:motorcycle"
        else:  # the macro rebound after the include, the KITTI sources mixed
            assert crop == (320, 896) and gin.query_parameter("MixedSource.sources")[1] == "kitti_stereo/2015_multiview"
            assert gin.query_parameter("MixedSource.split_sources")["train"] == ["kitti_stereo/2015"]
    finally:
        os.chdir(cwd)
        gin.clear_config()
