"""The synthetic_flow ground truth against independent numpy / scipy references.

Scenes are 96x128 (3 samples x 4 pairs, fixed seeds) with the default motion, and 128x160
(3 samples x 2 pairs) with the large-motion statistics of the `large_motion` config (log-uniform
speeds to 40 px here, 4-6 layers). Tolerances, over non-occluded pixels:
  * photometric: warping frame t+1 by the forward ground truth (scipy bilinear) reproduces frame t
    with mean |error| < 0.01 (2.6 / 255) and |error| < 0.02 at >= 93% of pixels. The residual is
    uint8 rounding plus bilinear re-sampling of the (slightly blurred) textures, largest where the
    four bilinear neighbours straddle a layer edge; it is also < 1/2 of the zero-flow error.
  * forward-backward: |w_f(p) + w_b(p + w_f(p))| < 0.01 px at >= 93% of pixels (median < 1e-4);
    the exceptions are again bilinear look-ups of w_b across a layer edge.
  * occlusion: the stored masks agree with a numpy forward-backward check on the ground truth
    (alpha1 = 0.01, alpha2 = 0.5, out-of-image = occluded) at >= 97% of all pixels.
"""
import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from dflow_tf.data import frame_windows, render, schema
from tfds_builders.synthetic_flow import synthetic_flow

SPEC = render.SceneSpec(height=96, width=128, max_translation=4.0)
LARGE_MOTION = render.SceneSpec(height=128, width=160, num_frames=3, min_layers=4, max_layers=6,
                                max_translation=40.0, max_acceleration=2.0, translation_distribution="log_uniform")
SEEDS = [render.example_seed(7, "test", i) for i in range(3)]


def _warp(image, flow):
    """Independent bilinear backward warp: image sampled at (x + u, y + v), edge-clamped."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = [ys + flow[..., 1], xs + flow[..., 0]]
    return np.stack([ndimage.map_coordinates(image[..., c].astype(np.float64), coords, order=1,
                                             mode="nearest") for c in range(image.shape[-1])], -1)


def _fb_occlusion(flow_fw, flow_bw, alpha1=0.01, alpha2=0.5):
    h, w = flow_fw.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx, ty = xs + flow_fw[..., 0], ys + flow_fw[..., 1]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    back = _warp(flow_bw, flow_fw)
    mismatch = np.sum((flow_fw + back) ** 2, -1)
    magnitude = np.sum(flow_fw ** 2, -1) + np.sum(back ** 2, -1)
    return outside | (mismatch > alpha1 * magnitude + alpha2)


@pytest.fixture(scope="module", params=[SPEC, LARGE_MOTION], ids=["default", "large_motion"])
def samples(request):
    return [render.render_sample(request.param, np.random.default_rng(seed)) for seed in SEEDS]


def _pairs(samples):
    for s in samples:
        frames = s["frames"].astype(np.float64) / 255.0
        for k in range(len(frames) - 1):
            yield (frames[k], frames[k + 1], s["flow_fw"][k], s["flow_bw"][k],
                   s["occlusion_fw"][k][..., 0], s["occlusion_bw"][k][..., 0])


def test_shapes_and_motion(samples):
    n, h, w = samples[0]["frames"].shape[:3]
    assert (n, h, w) in ((SPEC.num_frames, SPEC.height, SPEC.width),
                         (LARGE_MOTION.num_frames, LARGE_MOTION.height, LARGE_MOTION.width))
    for s in samples:
        assert s["frames"].shape == (n, h, w, 3) and s["frames"].dtype == np.uint8
        assert s["flow_fw"].shape == s["flow_bw"].shape == (n - 1, h, w, 2)
        assert s["occlusion_fw"].shape == s["occlusion_bw"].shape == (n - 1, h, w, 1)
        assert np.abs(s["flow_fw"]).max() > 1.0
        assert 0.0 < s["occlusion_fw"].mean() < 0.4


def test_forward_flow_warps_frame2_onto_frame1(samples):
    for frame1, frame2, flow_fw, _, occ_fw, _ in _pairs(samples):
        keep = ~occ_fw
        error = np.abs(_warp(frame2, flow_fw) - frame1).mean(-1)[keep]
        zero_flow_error = np.abs(frame2 - frame1).mean(-1)[keep]
        assert error.mean() < 0.01
        assert np.mean(error < 0.02) >= 0.93
        assert error.mean() < 0.5 * zero_flow_error.mean()


def test_backward_flow_warps_frame1_onto_frame2(samples):
    for frame1, frame2, _, flow_bw, _, occ_bw in _pairs(samples):
        error = np.abs(_warp(frame1, flow_bw) - frame2).mean(-1)[~occ_bw]
        assert error.mean() < 0.01


def test_forward_and_backward_flows_cancel(samples):
    for _, _, flow_fw, flow_bw, occ_fw, occ_bw in _pairs(samples):
        for fw, bw, occ in ((flow_fw, flow_bw, occ_fw), (flow_bw, flow_fw, occ_bw)):
            residual = np.linalg.norm(fw + _warp(bw, fw), axis=-1)[~occ]
            assert np.median(residual) < 1e-4
            assert np.mean(residual < 0.01) >= 0.93


def test_occlusion_matches_forward_backward_check(samples):
    for _, _, flow_fw, flow_bw, occ_fw, occ_bw in _pairs(samples):
        assert np.mean(_fb_occlusion(flow_fw, flow_bw) == occ_fw) >= 0.97
        assert np.mean(_fb_occlusion(flow_bw, flow_fw) == occ_bw) >= 0.97


def test_deterministic_for_a_seed(samples):
    spec = SPEC if samples[0]["frames"].shape[1] == SPEC.height else LARGE_MOTION
    again = render.render_sample(spec, np.random.default_rng(SEEDS[0]))
    for key, value in samples[0].items():
        np.testing.assert_array_equal(again[key], value)
    assert not np.array_equal(samples[0]["frames"], samples[1]["frames"])


def test_builder_examples_are_reproducible_and_consistent():
    config = synthetic_flow.SyntheticFlowConfig(name="t", height=24, width=40, train_size=2,
                                                validation_size=1, max_translation=2.0)
    builder = synthetic_flow.SyntheticFlow(config=config, data_dir="/nonexistent")
    first = list(builder._generate_examples("train", 2))  # pylint: disable=protected-access
    second = list(builder._generate_examples("train", 2))  # pylint: disable=protected-access
    other = list(builder._generate_examples("validation", 1))  # pylint: disable=protected-access
    ref = frame_windows.reference_index(config.num_frames)
    for (key1, ex1), (key2, ex2) in zip(first, second):
        assert key1 == key2 and ex1[schema.FRAMES] == ex2[schema.FRAMES]
        np.testing.assert_array_equal(ex1[schema.FLOW_BW], ex2[schema.FLOW_BW])
        np.testing.assert_array_equal(ex1[schema.FLOW], ex1[schema.FLOW_FW][ref])
        np.testing.assert_array_equal(ex1[schema.OCCLUSION], ex1[schema.OCCLUSION_FW][ref])
    assert first[0][1][schema.FRAMES] != other[0][1][schema.FRAMES]


def test_log_uniform_speeds_have_the_heavy_tail_asked_for():
    spec = render.SceneSpec(max_translation=100.0, min_translation=0.5, translation_distribution="log_uniform")
    rng = np.random.default_rng(0)
    speeds = np.array([np.hypot(*render._velocity(rng, spec, 1.0)) for _ in range(4000)])  # pylint: disable=protected-access
    assert 0.5 <= speeds.min() and speeds.max() <= 100.0
    # log-uniform on [0.5, 100]: P(speed < s) = log(s / 0.5) / log(200)
    for s in (2.0, 10.0, 40.0):
        assert abs(np.mean(speeds < s) - np.log(s / 0.5) / np.log(200.0)) < 0.03
    half = np.array([np.hypot(*render._velocity(rng, spec, 0.5)) for _ in range(500)])  # pylint: disable=protected-access
    assert half.max() <= 50.0  # the background's motion scale


def test_large_motion_config_moves_like_the_benchmarks():
    config = next(c for c in synthetic_flow.SyntheticFlow.BUILDER_CONFIGS if c.name == "large_motion")
    assert (config.height, config.width) == (384, 512) and not config.sequence_ground_truth
    spec = config.scene_spec()
    speeds = np.concatenate([np.hypot(*np.moveaxis(render.render_sample(spec, np.random.default_rng(
        render.example_seed(0, "train", i)))["flow_fw"][0], -1, 0)).ravel() for i in range(3)])
    assert np.median(speeds) < 20.0 and np.percentile(speeds, 99) > 40.0 and speeds.max() < 150.0


def test_illumination_is_a_gain_and_offset_per_layer_and_frame():
    spec = render.SceneSpec(height=40, width=56, num_frames=3, max_translation=2.0)
    scene = render.sample_scene(spec, np.random.default_rng(3))
    plain = [render.render_frame(scene, t).astype(np.float64) for t in range(3)]
    gain, offset = np.array([1.2, 0.9, 1.0]), np.array([0.05, -0.02, 0.0])
    for layer in scene.layers:
        layer.illumination = np.stack([np.stack([gain ** (t - 1), offset * (t - 1)]) for t in range(3)])
    lit = [render.render_frame(scene, t).astype(np.float64) for t in range(3)]
    np.testing.assert_array_equal(lit[1], plain[1])  # identity in the middle frame
    for t in (0, 2):
        expected = np.clip(plain[t] / 255.0 * gain ** (t - 1) + offset * (t - 1), 0, 1) * 255.0
        assert np.abs(lit[t] - expected).max() <= 0.5 * 1.2 + 0.5  # rounding of both uint8 frames
    drawn = render.render_sample(dataclasses.replace(spec, max_illumination=0.1), np.random.default_rng(3))
    assert drawn["frames"].shape == (3, 40, 56, 3)


def test_motion_blur_averages_the_frame_over_its_exposure():
    # One background layer moving 8 px / frame to the right, no rotation, zoom or shear: the
    # blurred frame is the mean of the sharp frame shifted along the motion over the exposure.
    spec = render.SceneSpec(height=32, width=48, num_frames=3, min_layers=0, max_layers=0, max_translation=0.0,
                            max_acceleration=0.0, max_rotation=0.0, max_zoom=0.0, max_shear=0.0,
                            motion_blur=0.5, motion_blur_samples=5)
    scene = render.sample_scene(spec, np.random.default_rng(1))
    base = scene.layers[0].transforms[1].copy()
    base[:2, :2] = np.eye(2)
    scene.layers[0].transforms = np.stack([base @ np.array([[1, 0, 8.0 * (t - 1)], [0, 1, 0], [0, 0, 1]])
                                           for t in range(3)])
    blurred = render.render_frame(scene, 1).astype(np.float64)
    sharp = dataclasses.replace(scene, spec=dataclasses.replace(spec, motion_blur=0.0))
    expected = np.mean([render.render_frame(dataclasses.replace(sharp, layers=[dataclasses.replace(
        scene.layers[0], transforms=scene.layers[0].transforms @ np.array([[1, 0, 8.0 * o], [0, 1, 0], [0, 0, 1]]))]),
        1).astype(np.float64) for o in np.linspace(-0.25, 0.25, 5)], axis=0)
    assert np.abs(blurred - expected).max() <= 1.0
    assert np.abs(blurred - render.render_frame(sharp, 1).astype(np.float64)).mean() > 1.0


def test_builder_without_sequence_ground_truth_stores_the_reference_pair_only():
    config = synthetic_flow.SyntheticFlowConfig(name="t", height=24, width=40, num_frames=3, train_size=1,
                                                validation_size=1, sequence_ground_truth=False)
    builder = synthetic_flow.SyntheticFlow(config=config, data_dir="/nonexistent")
    (_, example), = builder._generate_examples("train", 1)  # pylint: disable=protected-access
    assert schema.FLOW in example and schema.FLOW_FW not in example
    assert schema.FLOW_FW not in builder.info.features
