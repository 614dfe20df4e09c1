"""Stereo data: the synthetic stereo renderer against hand-computed answers, the synthetic_stereo
builder and the `stereo` flag through the input pipeline."""
import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_builders
from dflow_tf.data import render, schema
from dflow_tf.data.pipeline import make_dataset
from tfds_builders.synthetic_stereo import stereo_render

H, W = 40, 64
CENTRE, RADIUS = np.array([30.0, 20.0]), 9.5
D_BACK, D_FRONT = 2.0, 10.0


def _translation(tx, ty):
    return np.array([[1.0, 0, tx], [0, 1.0, ty], [0, 0, 1.0]])


def _disc_scene(num_frames=1):
    """A still background (identity map) and a disc of radius RADIUS centred at CENTRE."""
    spec = render.SceneSpec(height=H, width=W, num_frames=num_frames)
    rng = np.random.default_rng(0)
    background = render.Layer(rng.uniform(0, 1, (H + 8, W + 8, 3)).astype(np.float32), ("all",),
                              np.stack([_translation((W - 1) / 2, (H - 1) / 2)] * num_frames))
    disc = render.Layer(rng.uniform(0, 1, (24, 24, 3)).astype(np.float32), ("superellipse", RADIUS, RADIUS, 2.0),
                        np.stack([_translation(*CENTRE)] * num_frames))
    return render.Scene(spec, [background, disc])


def test_stereo_scene_flow_and_occlusion_known_answer():
    """Left pixel p on the background sees the right view at p - D_BACK, hidden there when that
    point lies in the disc's right-view position CENTRE - D_FRONT (or outside the frame); the
    disc (in front) is only hidden by the frame border."""
    both = stereo_render.stereo_scene(_disc_scene(), [D_BACK, D_FRONT])
    assert both.spec.num_frames == 2
    flow, occluded = render.flow_and_occlusion(both, 0, 1)
    ys, xs = np.mgrid[0:H, 0:W].astype(float)
    in_disc = (xs - CENTRE[0]) ** 2 + (ys - CENTRE[1]) ** 2 <= RADIUS ** 2
    d = np.where(in_disc, D_FRONT, D_BACK)
    np.testing.assert_allclose(flow[..., 0], -d, atol=1e-9)
    np.testing.assert_allclose(flow[..., 1], 0.0, atol=1e-9)
    target_in_disc = (xs - d - (CENTRE[0] - D_FRONT)) ** 2 + (ys - CENTRE[1]) ** 2 <= RADIUS ** 2
    expected = (xs - d < 0) | (~in_disc & target_in_disc)
    np.testing.assert_array_equal(occluded[..., 0], expected)
    assert expected[~in_disc].sum() > 20  # the disc hides a crescent of background on its left


def test_stereo_scene_right_view_is_the_left_view_shifted():
    """Rendered frames: right(x - d(x)) = left(x) on the non-occluded pixels, to quantisation."""
    both = stereo_render.stereo_scene(_disc_scene(), [D_BACK, D_FRONT])
    left, right = render.render_frame(both, 0).astype(float), render.render_frame(both, 1).astype(float)
    flow, occluded = render.flow_and_occlusion(both, 0, 1)
    ys, xs = np.mgrid[0:H, 0:W]
    visible = ~occluded[..., 0]
    target = np.round(xs + flow[..., 0]).astype(int)  # disparities are integers here: exact pixels
    matched = right[ys[visible], target[visible]]
    assert np.abs(matched - left[visible]).max() <= 1.0
    assert np.abs(right[visible] - left[visible]).mean() > 20 * max(np.abs(matched - left[visible]).mean(), 0.05)


def test_stereo_scene_keeps_per_frame_fields_and_rejects_bad_input():
    scene = _disc_scene(num_frames=3)
    both = stereo_render.stereo_scene(scene, [1.0, 3.0])
    for layer, original in zip(both.layers, scene.layers):
        assert layer.transforms.shape == (6, 3, 3)
        np.testing.assert_array_equal(layer.transforms[:3], original.transforms)
        np.testing.assert_allclose(layer.transforms[3:, 0, 2], original.transforms[:, 0, 2] - (1.0 if layer is
                                                                                              both.layers[0] else 3.0))
        assert layer.texture is original.texture and layer.shape == original.shape
    # a per-frame field other than the transforms (the illumination): the right views repeat it
    lit = dataclasses.replace(scene.layers[0], illumination=np.arange(18, dtype=np.float32).reshape(3, 2, 3))
    both = stereo_render.stereo_scene(render.Scene(scene.spec, [lit, scene.layers[1]]), [1.0, 3.0])
    assert both.layers[0].illumination.shape == (6, 2, 3)
    np.testing.assert_array_equal(both.layers[0].illumination[:3], lit.illumination)
    np.testing.assert_array_equal(both.layers[0].illumination[3:], lit.illumination)
    assert both.layers[1].illumination is None  # an unlit layer stays unlit
    with pytest.raises(ValueError, match="2 layers"):
        stereo_render.stereo_scene(scene, [1.0])
    with pytest.raises(ValueError, match="max_disparity"):
        stereo_render.StereoSpec(min_disparity=5.0, background_max_disparity=2.0)


def test_layer_disparities_increase_towards_the_camera():
    spec = stereo_render.StereoSpec(min_disparity=1.0, background_max_disparity=3.0, max_disparity=20.0)
    for seed in range(20):
        d = stereo_render.layer_disparities(np.random.default_rng(seed), 4, spec)
        assert d.shape == (4,) and 1.0 <= d[0] <= 3.0 and np.all(np.diff(d) >= 0) and d[-1] <= 20.0


def test_render_stereo_sample_is_a_stereo_video():
    spec = render.SceneSpec(height=32, width=48, num_frames=3, max_translation=2.0)
    sample = stereo_render.render_stereo_sample(spec, np.random.default_rng(3))
    assert sample["left"].shape == sample["right"].shape == (3, 32, 48, 3)
    assert sample["flow"].shape == (3, 32, 48, 2) and sample["occlusion"].shape == (3, 32, 48, 1)
    u = sample["flow"][..., 0]
    assert not sample["flow"][..., 1].any()
    # every pixel's disparity is one of the layers' (fronto-parallel layers)
    distance = np.abs(-u[..., None] - sample["disparities"][None, None, None]).min(axis=-1)
    assert distance.max() < 1e-4
    assert not np.array_equal(sample["left"][0], sample["left"][1])  # the scene moves in time


def test_synthetic_stereo_through_the_pipeline(tmp_path):
    builder = tfds_builders.SyntheticStereo(config="tiny", data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        compute_stats=tfds.download.ComputeStatsMode.SKIP))
    examples = list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))
    assert sorted(ex[schema.ID].decode() for ex in examples) == [
        "train/000000_t0", "train/000000_t1", "train/000001_t0", "train/000001_t1"]
    for ex in examples:
        assert ex[schema.STEREO] and ex[schema.FRAMES].shape == (2, 32, 48, 3)
        assert (ex[schema.FLOW][..., 0] < 0).all() and not ex[schema.FLOW][..., 1].any()
    ds = make_dataset(builder, "validation", batch_size=2, augmentation=None, shuffle=False, repeat=False)
    batch = next(iter(ds))
    np.testing.assert_array_equal(batch[schema.STEREO].numpy(), [True, True])
    assert batch["frames"].shape == (2, 2, 32, 48, 3)
    with pytest.raises(ValueError, match="stores windows of 2 frames"):
        next(iter(make_dataset(builder, "validation", batch_size=1, num_frames=3, augmentation=None)))


def test_stereo_features_need_pairs():
    with pytest.raises(ValueError, match="num_frames=3"):
        schema.features(3, stereo=True)
