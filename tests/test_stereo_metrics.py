"""Disparity EPE / D1 / rectification-check metrics against hand-computed answers."""
import numpy as np
import pytest

from dflow_tf.metrics import DisparityMetrics, FlowMetrics, d1_outliers


def test_d1_outlier_definition_edge_cases():
    gt = np.array([[100, 100, 100, 100, 0, 60, 60, 20, 40]], np.float32)
    pred = np.array([[103, 104, 105, 106, 3.5, 63, 63.5, 17, 44]], np.float32)
    # errors:        3    4    5    6    3.5  3   3.5   3   4
    # 5% of |gt|:    5    5    5    5    0    3   3     1   2
    expected = [False, False, False, True, True, False, True, False, True]
    np.testing.assert_array_equal(d1_outliers(pred, gt)[0], expected)
    np.testing.assert_array_equal(d1_outliers(pred[None], gt[None])[0, 0], expected)  # [B, H, W] as well
    with pytest.raises(ValueError, match="differ"):
        d1_outliers(pred, gt[:, :3])


def test_disparity_metrics_regions_and_averaging_by_hand():
    # Image A (2 x 2): errors 1, 10, 0, 4; pixel (1, 1) invalid; (0, 1) occluded.
    gt_a = np.array([[10, 20], [30, 40]], np.float32)
    pred_a = gt_a + np.array([[1, -10], [0, 4]], np.float32)
    valid_a = np.array([[1, 1], [1, 0]], bool)
    occ_a = np.array([[0, 1], [0, 0]], bool)
    # Image B (2 x 2): every pixel valid, errors 0, 0, 0, 6 (gt 100: 6 > 3 and 6 > 5: an outlier).
    gt_b = np.full((2, 2), 100, np.float32)
    pred_b = gt_b + np.array([[0, 0], [0, 6]], np.float32)
    m = DisparityMetrics()
    m.update(pred_a, gt_a, valid=valid_a, occluded=occ_a, v=np.array([[0.5, -0.5], [1.0, 9.0]]))
    m.update(pred_b[None], gt_b[None], occluded=np.zeros((1, 2, 2, 1)), v=np.zeros((1, 2, 2)))
    r = m.result()
    assert r["num_images"] == 2
    # all: A = {1, 10, 0} (mean 11/3, outlier 10 > 3 and > 1: 1 of 3), B = {0, 0, 0, 6}
    assert r["epe_all/per_image_mean"] == pytest.approx((11 / 3 + 6 / 4) / 2)
    assert r["epe_all/pixel_pooled"] == pytest.approx(17 / 7)
    assert r["d1_all/per_image_mean"] == pytest.approx((100 / 3 + 100 / 4) / 2)
    assert r["d1_all/pixel_pooled"] == pytest.approx(100 * 2 / 7)
    # noc: A = {1, 0}, B = {0, 0, 0, 6}; occ: A = {10}, B has none
    assert r["epe_noc/pixel_pooled"] == pytest.approx(7 / 6)
    assert r["epe_noc/per_image_mean"] == pytest.approx((0.5 + 1.5) / 2)
    assert r["d1_noc/pixel_pooled"] == pytest.approx(100 / 6)
    assert r["epe_occ/per_image_mean"] == r["epe_occ/pixel_pooled"] == pytest.approx(10)
    assert r["d1_occ/pixel_pooled"] == pytest.approx(100)
    assert (r["pixels_all"], r["pixels_noc"], r["pixels_occ"]) == (7, 6, 1)
    assert (r["images_all"], r["images_noc"], r["images_occ"]) == (2, 2, 1)
    # |v| over the valid pixels: A = {0.5, 0.5, 1} (the invalid 9 is left out), B = 4 zeros
    assert r["v_abs_mean/per_image_mean"] == pytest.approx((2 / 3 + 0) / 2)
    assert r["v_abs_mean/pixel_pooled"] == pytest.approx(2 / 7)
    assert not any(k.startswith(("fl_", "epe_s")) for k in r)


def test_disparity_metrics_optional_keys_merge_and_bad_shapes():
    gt = np.full((3, 4), 5.0)
    r = DisparityMetrics().update(gt + 1, gt).result()
    assert r["epe_all/pixel_pooled"] == pytest.approx(1.0) and r["d1_all/pixel_pooled"] == 0.0
    assert not any(k.startswith(("epe_noc", "epe_occ", "v_abs")) for k in r)
    # merging two halves equals one accumulator over both
    rng = np.random.default_rng(0)
    pred, truth = rng.uniform(0, 50, (2, 4, 3, 5))
    occ, v = rng.uniform(size=(4, 3, 5)) < 0.3, rng.normal(size=(4, 3, 5))
    whole = DisparityMetrics().update(pred, truth, occluded=occ, v=v).result()
    half = DisparityMetrics().update(pred[:2], truth[:2], occluded=occ[:2], v=v[:2])
    half.merge(DisparityMetrics().update(pred[2:], truth[2:], occluded=occ[2:]))
    merged = half.result()
    assert merged.keys() == whole.keys()
    for key in ("epe_all/pixel_pooled", "d1_occ/per_image_mean", "epe_noc/per_image_mean"):
        assert merged[key] == pytest.approx(whole[key])
    assert merged["v_abs_mean/pixel_pooled"] == pytest.approx(np.abs(v[:2]).mean())
    with pytest.raises(TypeError):
        half.merge(FlowMetrics())
    with pytest.raises(ValueError, match="disparity must be"):
        DisparityMetrics().update(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="valid must have shape"):
        DisparityMetrics().update(gt, gt, valid=np.ones((4, 3)))
    with pytest.raises(ValueError, match="v must have"):
        DisparityMetrics().update(gt, gt, v=np.zeros((3, 5)))


def test_disparity_epe_equals_the_flow_epe_of_minus_d():
    rng = np.random.default_rng(1)
    gt, pred = rng.uniform(0, 80, (2, 6, 7)), rng.uniform(0, 80, (2, 6, 7))
    occ = rng.uniform(size=(2, 6, 7)) < 0.4

    def as_flow(d):
        return np.stack([-d, np.zeros_like(d)], axis=-1)

    stereo = DisparityMetrics().update(pred, gt, occluded=occ).result()
    flow = FlowMetrics().update(as_flow(pred), as_flow(gt), occluded=occ).result()
    for region in ("all", "noc", "occ"):
        for avg in ("per_image_mean", "pixel_pooled"):
            assert stereo[f"epe_{region}/{avg}"] == pytest.approx(flow[f"epe_{region}/{avg}"])
            assert stereo[f"d1_{region}/{avg}"] == pytest.approx(flow[f"fl_{region}/{avg}"])
