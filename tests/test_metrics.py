"""EPE / Fl / speed-bin metrics against hand-computed answers and real zero-flow known answers."""
import numpy as np
import pytest

from dflow_tf.io import read_flo, read_mask
from dflow_tf.metrics import FlowMetrics, endpoint_error, epe, fl, fl_outliers, speed_bin_masks


def _pixels(pred, gt):
    """Flow pairs [1, N, 2] from lists of (u, v) vectors."""
    return np.array([pred], np.float32), np.array([gt], np.float32)


def test_endpoint_error_and_epe_by_hand():
    pred, gt = _pixels([(3, 4), (0, 0), (1, 1), (-2, 0)], [(0, 0), (0, 0), (1, 0), (0, 0)])
    np.testing.assert_allclose(endpoint_error(pred, gt), [[5, 0, 1, 2]])
    assert epe(pred, gt) == pytest.approx(2.0)
    assert epe(pred, gt, np.array([[True, False, True, False]])) == pytest.approx(3.0)
    assert epe(pred, gt, np.array([[[1.0], [0.0], [0.0], [1.0]]])) == pytest.approx(3.5)
    assert np.isnan(epe(pred, gt, np.zeros((1, 4), bool)))


def test_fl_outlier_definition_edge_cases():
    pred, gt = _pixels(
        [(103, 0), (103.5, 0), (104, 0), (105, 0), (106, 0), (3.5, 0), (63, 0), (63.5, 0), (1, 0)],
        [(100, 0), (100, 0), (100, 0), (100, 0), (100, 0), (0, 0), (60, 0), (60, 0), (0, 0)])
    # errors:    3      3.5      4      5      6      3.5    3      3.5    1
    # 5% of gt:  5      5        5      5      5      0      3      3      0
    expected = [False, False, False, False, True, True, False, True, False]
    np.testing.assert_array_equal(fl_outliers(pred, gt)[0], expected)
    assert fl(pred, gt) == pytest.approx(100 * 3 / 9)


def test_speed_bins_boundaries():
    gt = np.array([[(0, 0), (9.99, 0), (6, 8), (0, 39.9), (24, 32), (100, 0)]], np.float32)
    bins = speed_bin_masks(gt)
    assert list(bins) == ["s0-10", "s10-40", "s40+"]
    np.testing.assert_array_equal(bins["s0-10"][0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(bins["s10-40"][0], [0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(bins["s40+"][0], [0, 0, 0, 0, 1, 1])


def test_per_image_mean_differs_from_pixel_pooled():
    # Image A: one valid pixel, error 10 (an outlier). Image B: four pixels, error 0.
    gt = np.zeros((2, 2, 2), np.float32)
    pred_a = gt.copy()
    pred_a[0, 0] = (6, 8)
    valid_a = np.zeros((2, 2), bool)
    valid_a[0, 0] = True
    m = FlowMetrics()
    m.update(pred_a, gt, valid_a)
    m.update(gt, gt)
    r = m.result()
    assert r["num_images"] == 2
    assert r["epe_all/per_image_mean"] == pytest.approx((10 + 0) / 2)
    assert r["epe_all/pixel_pooled"] == pytest.approx(10 / 5)
    assert r["fl_all/per_image_mean"] == pytest.approx((100 + 0) / 2)
    assert r["fl_all/pixel_pooled"] == pytest.approx(100 / 5)
    assert r["pixels_all"] == 5 and r["images_all"] == 2
    assert not any(k.startswith(("epe_noc", "epe_occ", "fl_noc")) for k in r)  # no occlusion given


def test_regions_and_empty_region_skipped():
    gt = np.zeros((1, 3, 2), np.float32)
    gt[0, 2] = (50, 0)
    pred = gt + np.array([1, 0], np.float32)
    pred[0, 1] = (4, 0)                          # errors 1, 4, 1 ; gt speeds 0, 0, 50
    occ = np.array([[False, True, False]])
    m = FlowMetrics()
    m.update(pred, gt, occluded=occ)
    m.update(pred, gt, valid=~occ, occluded=occ[..., None].astype(np.float32))  # no occluded pixel left
    r = m.result()
    assert r["epe_all/pixel_pooled"] == pytest.approx((1 + 4 + 1 + 1 + 1) / 5)
    assert r["epe_all/per_image_mean"] == pytest.approx((2 + 1) / 2)
    assert r["epe_noc/pixel_pooled"] == pytest.approx(1.0)
    assert r["epe_occ/per_image_mean"] == pytest.approx(4.0)   # second image skipped
    assert r["images_occ"] == 1 and r["images_noc"] == 2
    assert r["fl_occ/pixel_pooled"] == pytest.approx(100.0)  # error 4 > 3 and > 5% of 0
    assert r["fl_noc/pixel_pooled"] == pytest.approx(0.0)
    assert r["epe_s0-10/pixel_pooled"] == pytest.approx((1 + 4 + 1) / 3)
    assert r["epe_s40+/pixel_pooled"] == pytest.approx(1.0)
    assert np.isnan(r["epe_s10-40/pixel_pooled"]) and np.isnan(r["epe_s10-40/per_image_mean"])
    assert r["pixels_s10-40"] == 0 and r["images_s10-40"] == 0


def _reference(preds, gts, valids, occs):
    """Straight numpy: per image and pooled EPE / Fl for all / noc / occ."""
    out = {}
    for region in ("all", "noc", "occ"):
        errs, outs, img_epe, img_fl = [], [], [], []
        for p, g, v, o in zip(preds, gts, valids, occs):
            sel = {"all": v, "noc": v & ~o, "occ": v & o}[region]
            e = np.linalg.norm(p - g, axis=-1)[sel]
            mag = np.linalg.norm(g, axis=-1)[sel]
            bad = (e > 3) & (e > 0.05 * mag)
            errs.append(e)
            outs.append(bad)
            if sel.any():
                img_epe.append(e.mean())
                img_fl.append(100 * bad.mean())
        out[f"epe_{region}/pixel_pooled"] = np.concatenate(errs).mean()
        out[f"fl_{region}/pixel_pooled"] = 100 * np.concatenate(outs).mean()
        out[f"epe_{region}/per_image_mean"] = np.mean(img_epe)
        out[f"fl_{region}/per_image_mean"] = np.mean(img_fl)
    return out


def test_streaming_batches_and_merge_equal_one_shot():
    rng = np.random.default_rng(1)
    b, h, w = 6, 8, 10
    gts = (rng.standard_normal((b, h, w, 2)) * 30).astype(np.float32)
    preds = gts + (rng.standard_normal((b, h, w, 2)) * 4).astype(np.float32)
    valids = rng.random((b, h, w)) > 0.2
    valids[3] = False                              # an image with no valid pixel
    occs = rng.random((b, h, w)) > 0.7
    one_shot = FlowMetrics().update(preds, gts, valids, occs).result()
    streamed = FlowMetrics()
    for i in range(b):
        streamed.update(preds[i], gts[i], valids[i, ..., None].astype(np.float32), occs[i])
    first = FlowMetrics().update(preds[:2], gts[:2], valids[:2, ..., None], occs[:2, ..., None])
    merged = first.merge(FlowMetrics().update(preds[2:], gts[2:], valids[2:], occs[2:]))
    expected = _reference(preds.astype(np.float64), gts.astype(np.float64), valids, occs)
    for res in (one_shot, streamed.result(), merged.result()):
        assert res["num_images"] == b and res["images_all"] == b - 1
        assert set(res) == set(one_shot)
        for key, value in expected.items():
            assert res[key] == pytest.approx(value, rel=1e-9), key
        for key, value in one_shot.items():
            assert res[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key


def test_shape_errors():
    m = FlowMetrics()
    with pytest.raises(ValueError, match="gt shape"):
        m.update(np.zeros((4, 4, 2)), np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match="valid"):
        m.update(np.zeros((4, 4, 2)), np.zeros((4, 4, 2)), valid=np.ones((4, 5)))
    with pytest.raises(ValueError, match="occluded"):
        m.update(np.zeros((2, 4, 4, 2)), np.zeros((2, 4, 4, 2)), occluded=np.ones((4, 4)))
    with pytest.raises(ValueError, match="H, W, 2"):
        m.update(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    assert m.result()["num_images"] == 0


@pytest.mark.parametrize("case, expected", [
    ("sintel", 2.982), ("middlebury", 1.256), ("chairs", 25.556)])
def test_zero_flow_known_answers(flowdata, case, expected):
    if case == "sintel":
        d = flowdata / "sintel" / "alley_1-clean_0002"
        gt = read_flo(d / "flow.flo")
        valid = ~read_mask(d / "invalid.png")
    elif case == "middlebury":
        gt = read_flo(flowdata / "middlebury" / "RubberWhale" / "flow10.flo")
        valid = np.all(np.abs(gt) < 1e9, axis=-1)
    else:
        gt = read_flo(flowdata / "chairs" / "0000004" / "flow.flo")
        valid = None
    zero = np.zeros_like(gt)
    assert epe(zero, gt, valid) == pytest.approx(expected, abs=1e-3)
    r = FlowMetrics().update(zero, gt, valid).result()
    assert r["epe_all/pixel_pooled"] == pytest.approx(expected, abs=1e-3)
    assert r["epe_all/per_image_mean"] == pytest.approx(expected, abs=1e-3)
