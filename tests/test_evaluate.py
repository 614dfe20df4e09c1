"""The evaluation command: pair folders, datasets, metrics, JSON, error pictures, model loading."""
import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import checkpoints, evaluate, io as flow_io
from dflow_tf.evaluation.report import format_table
from dflow_tf.evaluation.samples import evaluate_groups, evaluate_samples, folder_sample_sets
from dflow_tf.inference import predict_flow
from dflow_tf.io.pair_folders import read_pair_folder
from dflow_tf.metrics import FlowMetrics
from dflow_tf.models import ThreeFramePWC, TwoFramePWC


def _make_pairs(root, rng):
    """Three pair folders: Sintel-like (.flo, occ, invalid), Middlebury-like (unknown > 1e9,
    previous frame), KITTI-like (sparse 16-bit PNG). Returns {id: (flow, valid, occluded)}."""
    truth = {}
    h, w = 12, 16
    a = root / "sintel_like"
    a.mkdir(parents=True)
    flow = rng.normal(scale=4.0, size=(h, w, 2)).astype(np.float32)
    occ = rng.uniform(size=(h, w)) < 0.3
    invalid = rng.uniform(size=(h, w)) < 0.1
    flow_io.write_flo(str(a / "flow.flo"), flow)
    flow_io.write_image(str(a / "occ.png"), np.where(occ, 255, 0).astype(np.uint8))
    flow_io.write_image(str(a / "invalid.png"), np.where(invalid, 255, 0).astype(np.uint8))
    truth["sintel_like"] = (flow, ~invalid, occ)
    b = root / "nested" / "middlebury_like"
    b.mkdir(parents=True)
    flow = rng.normal(scale=2.0, size=(h, w, 2)).astype(np.float32)
    unknown = rng.uniform(size=(h, w)) < 0.2
    flow[unknown] = 1.7e9
    flow_io.write_flo(str(b / "flow10.flo"), flow)
    truth[os.path.join("nested", "middlebury_like")] = (flow, ~unknown, None)
    c = root / "kitti_like"
    c.mkdir()
    flow = np.round(rng.normal(scale=8.0, size=(h, w, 2)) * 64) / 64
    valid = rng.uniform(size=(h, w)) < 0.5
    flow_io.write_kitti_flow(str(c / "flow.png"), flow, valid)
    truth["kitti_like"] = (flow.astype(np.float32), valid, None)
    for folder, names in ((a, ("img1.png", "img2.png")), (b, ("frame09.png", "frame10.png", "frame11.png")),
                          (c, ("img1.ppm", "img2.ppm"))):
        for name in names:
            flow_io.write_image(str(folder / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return truth


def _numpy_epe(flow, gt, mask):
    return np.sqrt(((flow.astype(np.float64) - gt) ** 2).sum(-1))[mask]


def test_metrics_equal_flowmetrics_and_numpy_on_the_same_arrays(tmp_path):
    rng = np.random.default_rng(0)
    truth = _make_pairs(tmp_path, rng)
    predictions = {}

    def predict(frames):  # a known, different prediction per pair (keyed by its frames)
        key = frames.tobytes()
        predictions.setdefault(key, rng.normal(scale=3.0, size=frames.shape[1:3] + (2,)).astype(np.float32))
        return predictions[key]

    (_, total, samples, _), = folder_sample_sets(str(tmp_path), 2, kinds=("flow",))
    assert total == 3
    samples = list(samples)
    results, per_image = evaluate_samples(predict, iter(samples), total, progress=False)
    assert sorted(r["id"] for r in per_image) == sorted(truth)
    expected = FlowMetrics()
    pooled_err, per_image_epe = [], []
    for sample_id, frames, gt, valid, occluded in samples:
        flow_true, valid_true, occ_true = truth[sample_id]
        np.testing.assert_array_equal(valid, valid_true)
        np.testing.assert_allclose(gt[valid], flow_true[valid])
        assert (occluded is None) == (occ_true is None)
        flow = predictions[frames.tobytes()]
        expected.update(flow, gt, valid=valid, occluded=occluded)
        err = _numpy_epe(flow, flow_true, valid_true)
        pooled_err.append(err)
        per_image_epe.append(err.mean())
        record = next(r for r in per_image if r["id"] == sample_id)
        np.testing.assert_allclose(record["epe_all"], err.mean(), rtol=1e-6)
    assert results == pytest.approx(expected.result(), nan_ok=True)
    np.testing.assert_allclose(results["epe_all/pixel_pooled"], np.concatenate(pooled_err).mean(), rtol=1e-6)
    np.testing.assert_allclose(results["epe_all/per_image_mean"], np.mean(per_image_epe), rtol=1e-6)
    # noc / occ come from the one folder with an occlusion mask
    flow_true, valid_true, occ_true = truth["sintel_like"]
    sintel = next(s for s in samples if s[0] == "sintel_like")
    err = _numpy_epe(predictions[sintel[1].tobytes()], flow_true, valid_true & occ_true)
    np.testing.assert_allclose(results["epe_occ/pixel_pooled"], err.mean(), rtol=1e-6)
    table = format_table(results)
    for label in ("EPE mean/img", "EPE pooled", "Fl% pooled", "noc", "occ", "s0-10", "s40+"):
        assert label in table


def test_three_frame_models_get_the_previous_frame_or_the_fallback(tmp_path):
    _make_pairs(tmp_path, np.random.default_rng(1))
    (_, _, samples, _), = folder_sample_sets(str(tmp_path), 3, kinds=("flow",))
    for sample_id, frames, *_ in samples:
        names = {"sintel_like": ("img1.png", "img1.png", "img2.png"),  # the fallback repeats frame 1
                 "kitti_like": ("img1.ppm", "img1.ppm", "img2.ppm"),
                 os.path.join("nested", "middlebury_like"): ("frame09.png", "frame10.png", "frame11.png")}
        folder = tmp_path / sample_id
        for got, name in zip(frames, names[sample_id], strict=True):
            np.testing.assert_array_equal(got, flow_io.read_image(str(folder / name)))


def test_cli_zero_flow_writes_json_and_error_pictures(tmp_path, capsys):
    truth = _make_pairs(tmp_path / "pairs", np.random.default_rng(2))
    out = tmp_path / "out" / "results.json"
    code = evaluate.main(["--checkpoint", "zero", "--pairs", str(tmp_path / "pairs"), "--out", str(out),
                          "--error_images", str(tmp_path / "errors"), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "zero-flow baseline" in printed and "EPE pooled" in printed
    saved = json.loads(out.read_text())
    speeds = np.concatenate([np.sqrt((f[v].astype(np.float64) ** 2).sum(-1)) for f, v, _ in truth.values()])
    np.testing.assert_allclose(saved["metrics"]["epe_all/pixel_pooled"], speeds.mean(), rtol=1e-6)
    assert len(saved["per_image"]) == 3
    pictures = sorted(os.path.relpath(os.path.join(d, f), tmp_path / "errors")
                      for d, _, files in os.walk(tmp_path / "errors") for f in files)
    assert len(pictures) == 9 and os.path.join("nested", "middlebury_like_error.png") in pictures
    error = flow_io.read_image(str(tmp_path / "errors" / "kitti_like_error.png"))
    assert error.shape == (12, 16, 3)
    assert (error[~truth["kitti_like"][1]] == 0).all()  # black where there is no ground truth


@pytest.mark.parametrize("folder, expected", [("sintel/alley_1-clean_0002", 2.982),
                                              ("middlebury/RubberWhale", 1.256),
                                              ("chairs/0000004", 25.556)])
def test_zero_flow_known_answers_on_real_pairs(flowdata, tmp_path, folder, expected):
    out = tmp_path / "r.json"
    assert evaluate.main(["--checkpoint", "zero", "--pairs", str(flowdata / folder), "--out", str(out),
                          "--quiet"]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["num_images"] == 1
    assert metrics["epe_all/pixel_pooled"] == pytest.approx(expected, abs=5e-4)
    assert metrics["epe_all/per_image_mean"] == pytest.approx(expected, abs=5e-4)


def test_real_pairs_folder_reads_every_layout(flowdata):
    (_, total, samples, _), = folder_sample_sets(str(flowdata), 2, kinds=("flow",))
    ids = [s[0] for s in samples]
    assert total == len(ids) == 11 and "kitti2015/000000" in ids  # 5 chairs, 4 sintel, 1 each
    kitti = read_pair_folder(str(flowdata / "kitti2015" / "000000"))
    assert kitti["frames"][0].shape == (375, 1242, 3) and 0 < kitti["valid"].mean() < 1


def _save_model(model, folder):
    os.makedirs(folder, exist_ok=True)
    tf.train.Checkpoint(model=model).write(os.path.join(folder, "ckpt"))
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump({"class": type(model).__name__, "config": model.get_config()}, f)


def test_dataset_split_with_a_tiny_model_matches_metrics_of_predict_flow(tmp_path):
    from dflow_tf.data.pipeline import make_dataset
    model = TwoFramePWC(num_levels=4)
    _save_model(model, tmp_path / "model")
    out = tmp_path / "r.json"
    data_dir = str(tmp_path / "tfds")
    assert evaluate.main(["--checkpoint", str(tmp_path / "model"), "--dataset", "synthetic_flow/tiny",
                          "--split", "validation", "--data_dir", data_dir, "--out", str(out), "--quiet"]) == 0
    saved = json.loads(out.read_text())
    expected = FlowMetrics()
    ds = make_dataset("synthetic_flow/tiny", "validation", batch_size=1, num_frames=2, augmentation=None,
                      shuffle=False, repeat=False, data_dir=data_dir)
    for batch in ds:
        flow = predict_flow(model, batch["frames"][0].numpy())
        expected.update(flow, batch["flow"][0].numpy(), valid=batch["valid"][0].numpy(),
                        occluded=batch["occlusion"][0].numpy())
    expected = expected.result()
    assert saved["metrics"]["num_images"] == 2
    for key in ("epe_all/pixel_pooled", "epe_noc/per_image_mean", "fl_all/pixel_pooled", "epe_s0-10/pixel_pooled"):
        assert saved["metrics"][key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5)


def test_model_architecture_from_model_json_and_arch(tmp_path):
    model = ThreeFramePWC(num_levels=3, normalize_input=True)
    stage = tmp_path / "exp" / "stage_b"
    (stage / "checkpoints").mkdir(parents=True)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(stage / "checkpoints"), 2)
    manager.save(checkpoint_number=7)
    checkpoints.save_model_description(model, str(stage))  # as every training stage does
    loaded, description = checkpoints.load_model(str(stage / "checkpoints" / "ckpt-7"))
    assert isinstance(loaded, ThreeFramePWC) and loaded.num_levels == 3 and loaded.normalize_input
    assert loaded.search_range == 4 and "model.json" in description
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # --model_param overrides an option; --arch alone works without any stored description
    loaded, _ = checkpoints.load_model(str(stage), model_params=checkpoints.parse_model_params(
        ["normalize_input=False"]))
    assert not loaded.normalize_input
    (stage / "model.json").unlink()
    with pytest.raises(ValueError, match="--arch"):
        checkpoints.load_model(str(stage))
    loaded, _ = checkpoints.load_model(str(stage), arch="three_frame", model_params={"num_levels": 3})
    assert loaded.num_levels == 3
    with pytest.raises(FileNotFoundError):
        checkpoints.load_model(str(tmp_path / "nothing"), arch="two_frame")
    assert evaluate.main(["--checkpoint", str(tmp_path / "nothing"), "--pairs", str(tmp_path), "--arch",
                          "two_frame"]) == 1


# ------------------------------------------------------------------------------- stereo
def _make_stereo(root, rng, h=12, w=16):
    """A Middlebury-layout folder (PFM with +inf, occlusion mask) and a KITTI-layout folder (one
    pair with disp_occ_0 / disp_noc_0, one without ground truth). Returns {id: (d, valid, occ)}."""
    truth = {}
    mb = root / "stereo_mb" / "scene"
    mb.mkdir(parents=True)
    d = rng.uniform(2, 30, (h, w)).astype(np.float32)
    invalid = rng.uniform(size=(h, w)) < 0.15
    occ = ~invalid & (rng.uniform(size=(h, w)) < 0.3)
    flow_io.write_pfm(str(mb / "disp0GT.pfm"), np.where(invalid, np.inf, d).astype(np.float32))
    flow_io.write_image(str(mb / "mask0nocc.png"), np.where(invalid, 0, np.where(occ, 128, 255)).astype(np.uint8))
    truth["stereo_mb/scene"] = (d, ~invalid, occ)
    kitti = root / "kitti_stereo"
    for sub in ("image_2", "image_3", "disp_occ_0", "disp_noc_0"):
        (kitti / sub).mkdir(parents=True)
    d = np.round(rng.uniform(1, 60, (h, w)) * 256) / 256
    valid = rng.uniform(size=(h, w)) < 0.6
    noc = valid & (rng.uniform(size=(h, w)) < 0.7)
    for sub, mask in (("disp_occ_0", valid), ("disp_noc_0", noc)):
        cv2.imwrite(str(kitti / sub / "000000_10.png"), np.where(mask, d * 256, 0).astype(np.uint16))
    truth["kitti_stereo/000000_10"] = (d, valid, valid & ~noc)
    for folder, names in ((mb, ("im0.png", "im1.png")),
                          (kitti, ("image_2/000000_10.png", "image_3/000000_10.png", "image_2/000000_11.png",
                                   "image_3/000000_11.png"))):
        for name in names:
            flow_io.write_image(str(folder / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return truth


def _numpy_d1(err, gt):
    return 100.0 * np.mean((err > 3) & (err > 0.05 * np.abs(gt)))


def test_stereo_metrics_against_numpy_per_group(tmp_path):
    rng = np.random.default_rng(5)
    truth = _make_stereo(tmp_path, rng)
    flows = {}

    def predict(frames):  # a known flow per pair: u = -(gt + noise), some v
        key = frames.tobytes()
        flows.setdefault(key, rng.normal(scale=[6.0, 0.5], size=frames.shape[1:3] + (2,)).astype(np.float32))
        return flows[key]

    (sample_set,) = folder_sample_sets(str(tmp_path), 2, kinds=("stereo",))
    assert sample_set.kind == "stereo" and sample_set.total == 2  # the KITTI _11 pair has no ground truth
    samples = list(sample_set.samples)
    overall, groups, per_image = evaluate_groups(predict, sample_set._replace(samples=iter(samples)), progress=False)
    assert list(groups) == ["kitti_stereo", "stereo_mb"]
    errs, v_abs = [], []
    for sample_id, frames, *_ in samples:
        d_true, valid, occ = truth[sample_id]
        flow = flows[frames.tobytes()].astype(np.float64)
        err = np.abs(-flow[..., 0] - d_true)
        group = groups[sample_id.split("/")[0]]
        np.testing.assert_allclose(group["epe_all/pixel_pooled"], err[valid].mean(), rtol=1e-6)
        np.testing.assert_allclose(group["d1_all/pixel_pooled"], _numpy_d1(err[valid], d_true[valid]), rtol=1e-6)
        np.testing.assert_allclose(group["epe_occ/pixel_pooled"], err[valid & occ].mean(), rtol=1e-6)
        np.testing.assert_allclose(group["epe_noc/pixel_pooled"], err[valid & ~occ].mean(), rtol=1e-6)
        np.testing.assert_allclose(group["v_abs_mean/pixel_pooled"], np.abs(flow[valid, 1]).mean(), rtol=1e-6)
        record = next(r for r in per_image if r["id"] == sample_id)
        np.testing.assert_allclose(record["d1_occ"], _numpy_d1(err[valid & occ], d_true[valid & occ]), rtol=1e-6)
        errs.append(err[valid])
        v_abs.append(np.abs(flow[valid, 1]).mean())
    np.testing.assert_allclose(overall["epe_all/pixel_pooled"], np.concatenate(errs).mean(), rtol=1e-6)
    np.testing.assert_allclose(overall["epe_all/per_image_mean"], np.mean([e.mean() for e in errs]), rtol=1e-6)
    np.testing.assert_allclose(overall["v_abs_mean/per_image_mean"], np.mean(v_abs), rtol=1e-6)
    table = format_table(overall)
    for label in ("D1% pooled", "noc", "occ", "Rectification check"):
        assert label in table
    assert "s0-10" not in table and "Fl%" not in table


def test_cli_pairs_root_with_flow_and_stereo_folders(tmp_path, capsys):
    rng = np.random.default_rng(6)
    flow_truth = _make_pairs(tmp_path / "root" / "flow", rng)
    stereo_truth = _make_stereo(tmp_path / "root", rng)
    out = tmp_path / "r.json"
    assert evaluate.main(["--checkpoint", "zero", "--pairs", str(tmp_path / "root"), "--out", str(out),
                          "--error_images", str(tmp_path / "errors"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    for title in ("flow pairs: flow", "stereo pairs: kitti_stereo", "stereo pairs: stereo_mb",
                  "stereo pairs: all (2 groups)", "D1% pooled"):
        assert title in printed, printed
    assert "flow pairs: all" not in printed  # one flow group: no second table
    saved = json.loads(out.read_text())
    speeds = np.concatenate([np.sqrt((f[v].astype(np.float64) ** 2).sum(-1)) for f, v, _ in flow_truth.values()])
    np.testing.assert_allclose(saved["metrics"]["epe_all/pixel_pooled"], speeds.mean(), rtol=1e-6)
    assert list(saved["groups"]) == ["flow"] and len(saved["per_image"]) == 3
    # zero flow: disparity 0, so the error is the ground-truth disparity and every pixel above 3 px is a D1 outlier
    disparities = np.concatenate([d[v] for d, v, _ in stereo_truth.values()])
    np.testing.assert_allclose(saved["stereo_metrics"]["epe_all/pixel_pooled"], disparities.mean(), rtol=1e-6)
    np.testing.assert_allclose(saved["stereo_metrics"]["d1_all/pixel_pooled"], 100 * np.mean(disparities > 3),
                               rtol=1e-6)
    assert saved["stereo_metrics"]["v_abs_mean/pixel_pooled"] == 0.0
    assert sorted(saved["stereo_groups"]) == ["kitti_stereo", "stereo_mb"]
    assert sorted(r["id"] for r in saved["stereo_per_image"]) == sorted(stereo_truth)
    error = flow_io.read_image(str(tmp_path / "errors" / "kitti_stereo" / "000000_10_error.png"))
    assert (error[~stereo_truth["kitti_stereo/000000_10"][1]] == 0).all()
    for name in ("scene_disparity.png", "scene_gt.png", "scene_error.png"):
        assert (tmp_path / "errors" / "stereo_mb" / name).is_file()


def test_three_frame_model_on_a_stereo_folder_sees_left_left_right(tmp_path):
    from dflow_tf.metrics import DisparityMetrics
    truth = _make_stereo(tmp_path, np.random.default_rng(7))
    model = ThreeFramePWC(num_levels=3, search_range=1)
    _save_model(model, tmp_path / "model")
    out = tmp_path / "r.json"
    folder = tmp_path / "stereo_mb" / "scene"
    assert evaluate.main(["--checkpoint", str(tmp_path / "model"), "--stereo", str(folder), "--out", str(out),
                          "--quiet"]) == 0
    saved = json.loads(out.read_text())
    assert "metrics" not in saved and saved["stereo_metrics"]["num_images"] == 1
    left, right = (flow_io.read_image(str(folder / n)) for n in ("im0.png", "im1.png"))
    flow = predict_flow(model, [left, left, right])
    d, valid, occ = truth["stereo_mb/scene"]
    expected = DisparityMetrics().update(-flow[..., 0], d, valid=valid, occluded=occ, v=flow[..., 1]).result()
    for key in ("epe_all/pixel_pooled", "d1_noc/per_image_mean", "epe_occ/pixel_pooled", "v_abs_mean/pixel_pooled"):
        assert saved["stereo_metrics"][key] == pytest.approx(expected[key], rel=1e-4, abs=1e-5)


def test_stereo_input_errors_are_one_line(tmp_path, capsys):
    assert evaluate.main(["--checkpoint", "zero", "--stereo", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing: not a folder" in err[0]
    (tmp_path / "nogt").mkdir()
    for name in ("im0.png", "im1.png"):
        flow_io.write_image(str(tmp_path / "nogt" / name), np.zeros((4, 4, 3), np.uint8))
    assert evaluate.main(["--checkpoint", "zero", "--stereo", str(tmp_path / "nogt")]) == 1
    assert "no stereo pairs with ground truth" in capsys.readouterr().err
    assert evaluate.main(["--checkpoint", "zero", "--pairs", str(tmp_path / "nogt")]) == 1
    assert "no flow pairs or stereo pairs with ground truth" in capsys.readouterr().err
    (tmp_path / "nogt" / "disp0GT.pfm").write_bytes(b"Pf\n4 4\n-1.0\n" + b"\0" * 10)
    assert evaluate.main(["--checkpoint", "zero", "--stereo", str(tmp_path / "nogt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "disp0GT.pfm: PFM data size mismatch" in err[0]


def test_zero_disparity_known_answers_on_real_stereo_pairs(flowdata, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert evaluate.main(["--checkpoint", "zero", "--pairs", str(flowdata), "--out", str(out), "--quiet"]) == 0
    saved = json.loads(out.read_text())
    assert len(saved["per_image"]) == 11 and list(saved["groups"]) == ["chairs", "kitti2015", "middlebury", "sintel"]
    stereo = saved["stereo_metrics"]
    # zero disparity: the error is the ground truth; numpy over the finite values of the PFM
    folder = flowdata / "stereo" / "mb2014Q_Motorcycle"
    gt = flow_io.read_pfm(str(folder / "disp0GT.pfm"))
    mask = cv2.imread(str(folder / "mask0nocc.png"), cv2.IMREAD_UNCHANGED)
    assert stereo["epe_all/pixel_pooled"] == pytest.approx(gt[np.isfinite(gt)].mean(), rel=1e-6)
    assert stereo["epe_all/pixel_pooled"] == pytest.approx(36.432, abs=5e-4)
    assert stereo["epe_occ/pixel_pooled"] == pytest.approx(gt[mask == 128].mean(), rel=1e-6)
    assert stereo["d1_all/pixel_pooled"] == 100.0 and stereo["pixels_noc"] == int((mask == 255).sum())
    assert "stereo pairs: stereo" in capsys.readouterr().out


def test_skimage_motorcycle_evaluates_offline(tmp_path):
    import skimage.data
    out = tmp_path / "r.json"
    assert evaluate.main(["--checkpoint", "zero", "--stereo", "skimage:motorcycle", "--out", str(out), "--quiet"]) == 0
    saved = json.loads(out.read_text())
    _, _, disparity = skimage.data.stereo_motorcycle()
    assert saved["data"] == "skimage:motorcycle" and saved["stereo_per_image"][0]["id"] == "motorcycle"
    expected = disparity[np.isfinite(disparity)].astype(np.float64).mean()
    assert saved["stereo_metrics"]["epe_all/pixel_pooled"] == pytest.approx(expected, rel=1e-6)
    assert "epe_noc/pixel_pooled" not in saved["stereo_metrics"]  # no occlusion mask in scikit-image's pair


def test_stereo_dataset_is_scored_as_disparity(tmp_path):
    import tensorflow_datasets as tfds
    data_dir = str(tmp_path / "tfds")
    out = tmp_path / "r.json"
    assert evaluate.main(["--checkpoint", "zero", "--dataset", "synthetic_stereo/tiny", "--split", "validation",
                          "--data_dir", data_dir, "--out", str(out), "--quiet"]) == 0
    saved = json.loads(out.read_text())
    assert "metrics" not in saved and saved["stereo_groups"] == {}
    examples = list(tfds.as_numpy(tfds.builder("synthetic_stereo/tiny", data_dir=data_dir).as_dataset(
        split="validation", shuffle_files=False)))
    disparities = np.concatenate([-ex["flow"][..., 0][ex["valid"][..., 0]] for ex in examples])
    assert saved["stereo_metrics"]["num_images"] == len(examples) == 2
    assert saved["stereo_metrics"]["epe_all/pixel_pooled"] == pytest.approx(disparities.mean(), rel=1e-5)
    assert "epe_occ/pixel_pooled" in saved["stereo_metrics"]


def test_a_smaller_last_batch_scores_like_single_images(tmp_path):
    """4 examples in batches of 3: the last batch (1 example) is padded to the traced size; its
    padding must not enter the metrics (same result as batches of 1, which need no padding)."""
    from dflow_tf.data.pipeline import make_dataset
    from dflow_tf.evaluation import evaluate_model
    model = TwoFramePWC(num_levels=4)
    results = {}
    for batch_size in (3, 1):
        ds = make_dataset("synthetic_flow/tiny", "train", batch_size=batch_size, num_frames=2, augmentation=None,
                          shuffle=False, repeat=False, drop_remainder=False, data_dir=str(tmp_path / "tfds"))
        results[batch_size] = evaluate_model(model, ds)
    assert results[3]["num_images"] == results[1]["num_images"] == 4
    for key in ("epe_all/pixel_pooled", "epe_all/per_image_mean", "fl_all/pixel_pooled"):
        assert results[3][key] == pytest.approx(results[1][key], rel=1e-5)
