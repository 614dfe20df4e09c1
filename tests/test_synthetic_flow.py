"""The synthetic_flow ground truth against independent numpy / scipy references.

Scenes are 96x128 (3 samples x 4 pairs, fixed seeds). Tolerances, over non-occluded pixels:
  * photometric: warping frame t+1 by the forward ground truth (scipy bilinear) reproduces frame t
    with mean |error| < 0.01 (2.6 / 255) and |error| < 0.02 at >= 93% of pixels. The residual is
    uint8 rounding plus bilinear re-sampling of the (slightly blurred) textures, largest where the
    four bilinear neighbours straddle a layer edge; it is also < 1/2 of the zero-flow error.
  * forward-backward: |w_f(p) + w_b(p + w_f(p))| < 0.01 px at >= 93% of pixels (median < 1e-4);
    the exceptions are again bilinear look-ups of w_b across a layer edge.
  * occlusion: the stored masks agree with a numpy forward-backward check on the ground truth
    (alpha1 = 0.01, alpha2 = 0.5, out-of-image = occluded) at >= 97% of all pixels.
"""
import numpy as np
import pytest
from scipy import ndimage

from dflow_tf.data import frame_windows, schema
from tfds_builders.synthetic_flow import render, synthetic_flow

SPEC = render.SceneSpec(height=96, width=128, max_translation=4.0)
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


@pytest.fixture(scope="module")
def samples():
    return [render.render_sample(SPEC, np.random.default_rng(seed)) for seed in SEEDS]


def _pairs(samples):
    for s in samples:
        frames = s["frames"].astype(np.float64) / 255.0
        for k in range(SPEC.num_frames - 1):
            yield (frames[k], frames[k + 1], s["flow_fw"][k], s["flow_bw"][k],
                   s["occlusion_fw"][k][..., 0], s["occlusion_bw"][k][..., 0])


def test_shapes_and_motion(samples):
    n, h, w = SPEC.num_frames, SPEC.height, SPEC.width
    for s in samples:
        assert s["frames"].shape == (n, h, w, 3) and s["frames"].dtype == np.uint8
        assert s["flow_fw"].shape == s["flow_bw"].shape == (n - 1, h, w, 2)
        assert s["occlusion_fw"].shape == s["occlusion_bw"].shape == (n - 1, h, w, 1)
        assert np.abs(s["flow_fw"]).max() > 1.0
        assert 0.0 < s["occlusion_fw"].mean() < 0.3


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
    again = render.render_sample(SPEC, np.random.default_rng(SEEDS[0]))
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
