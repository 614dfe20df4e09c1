"""The evaluation command: pair folders, datasets, metrics, JSON, error pictures, model loading."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import checkpoints, evaluate, io as flow_io
from dflow_tf.evaluation.report import format_table
from dflow_tf.evaluation.samples import evaluate_samples, pair_samples
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

    total, samples = pair_samples(str(tmp_path), 2)
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
    _, samples = pair_samples(str(tmp_path), 3)
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
    total, samples = pair_samples(str(flowdata), 2)
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
