"""The prediction command: image pairs, folders, videos, output formats, three-frame windows."""
import json
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf import io as flow_io, predict
from dflow_tf.evaluation.prediction import predict_sequence
from dflow_tf.io.flow_files import read_disparity
from dflow_tf.models import ThreeFramePWC, TwoFramePWC

H, W = 20, 30  # not multiples of the model's size: predict resizes and maps the flow back


def _frames(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(count)]


def _write_frames(folder, names, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    frames = _frames(len(names), seed)
    for name, frame in zip(names, frames):
        flow_io.write_image(str(folder / name), frame)
    return frames


def _write_video(folder, frames):
    for name, codec in (("clip.mp4", "mp4v"), ("clip.avi", "MJPG")):
        path = str(folder / name)
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*codec), 10, (W, H))
        if writer.isOpened():
            for frame in frames:
                writer.write(np.ascontiguousarray(frame[..., ::-1]))
            writer.release()
            return path
    pytest.skip("OpenCV can write neither mp4v nor MJPG video here")


def _save_model(model, folder):
    os.makedirs(folder, exist_ok=True)
    tf.train.Checkpoint(model=model).write(os.path.join(folder, "ckpt"))
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump({"class": type(model).__name__, "config": model.get_config()}, f)
    return str(folder)


@pytest.mark.parametrize("num_frames, windows", [(2, [[0, 1], [1, 2], [2, 3]]),
                                                 (3, [[0, 0, 1], [0, 1, 2], [1, 2, 3]])])
def test_sequence_windows_and_first_frame_fallback(num_frames, windows):
    frames = [np.full((2, 3, 3), i, np.uint8) for i in range(4)]
    seen = []

    def record(stack):
        seen.append([int(f[0, 0, 0]) for f in stack])
        return np.zeros((2, 3, 2), np.float32)

    stream = ((f"f{i}", f) for i, f in enumerate(frames))
    names = [name for name, _ in predict_sequence(record, num_frames, stream)]
    assert names == ["f0", "f1", "f2"] and seen == windows


def test_pair_of_files_and_folder_with_zero_flow(tmp_path, capsys):
    _write_frames(tmp_path / "in", ["frame_2.png", "frame_10.png", "frame_1.png"])
    out = tmp_path / "pair"
    assert predict.main(["--checkpoint", "zero", "--input", str(tmp_path / "in" / "frame_1.png"),
                         str(tmp_path / "in" / "frame_2.png"), "--out", str(out), "--color", "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["frame_1.flo", "frame_1_color.png"]
    np.testing.assert_array_equal(flow_io.read_flo(str(out / "frame_1.flo")), np.zeros((H, W, 2), np.float32))
    assert flow_io.read_image(str(out / "frame_1_color.png")).shape == (H, W, 3)
    # a folder: natural order frame_1, frame_2, frame_10 -> 2 flows named after their first frame
    out = tmp_path / "folder"
    assert predict.main(["--checkpoint", "zero", "--input", str(tmp_path / "in"), "--out", str(out),
                         "--format", "kitti_png", "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["frame_1.png", "frame_2.png"]
    flow, valid = flow_io.read_kitti_flow(str(out / "frame_2.png"))
    assert flow.shape == (H, W, 2) and valid.all() and not flow.any()
    assert "wrote 2 flows" in capsys.readouterr().out


def test_video_with_a_three_frame_model(tmp_path):
    frames = _frames(5, seed=3)
    video = _write_video(tmp_path, frames)
    model = ThreeFramePWC(num_levels=3)
    checkpoint = _save_model(model, tmp_path / "model")
    out = tmp_path / "flows"
    assert predict.main(["--checkpoint", checkpoint, "--input", video, "--out", str(out), "--color",
                         "--quiet"]) == 0
    names = sorted(os.listdir(out))
    assert names == sorted([f"frame_{i:06d}.flo" for i in range(4)] + [f"frame_{i:06d}_color.png" for i in range(4)])
    # the first flow used the fallback window (frame 0, frame 0, frame 1) of the decoded video
    capture = cv2.VideoCapture(video)
    decoded = [capture.read()[1][..., ::-1] for _ in range(2)]
    capture.release()
    from dflow_tf.inference import predict_flow
    expected = predict_flow(model, [decoded[0], decoded[0], decoded[1]])
    np.testing.assert_allclose(flow_io.read_flo(str(out / "frame_000000.flo")), expected, atol=1e-4)


def test_folder_with_a_two_frame_model(tmp_path):
    frames = _write_frames(tmp_path / "in", [f"{i:03d}.png" for i in range(3)], seed=4)
    model = TwoFramePWC(num_levels=3)
    checkpoint = _save_model(model, tmp_path / "model")
    out = tmp_path / "flows"
    assert predict.main(["--checkpoint", checkpoint, "--input", str(tmp_path / "in"), "--out", str(out),
                         "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["000.flo", "001.flo"]
    from dflow_tf.inference import predict_flow
    np.testing.assert_allclose(flow_io.read_flo(str(out / "001.flo")), predict_flow(model, frames[1:3]), atol=1e-4)


def test_bad_inputs(tmp_path, capsys):
    _write_frames(tmp_path / "one", ["a.png"])
    assert predict.main(["--checkpoint", "zero", "--input", str(tmp_path / "one"), "--out", str(tmp_path / "o")]) == 1
    assert "at least 2 images" in capsys.readouterr().err
    flow_io.write_image(str(tmp_path / "small.png"), np.zeros((H // 2, W, 3), np.uint8))
    assert predict.main(["--checkpoint", "zero", "--input", str(tmp_path / "one" / "a.png"),
                         str(tmp_path / "small.png"), "--out", str(tmp_path / "o")]) == 1
    assert "one size" in capsys.readouterr().err
    assert predict.main(["--checkpoint", "zero", "--input", str(tmp_path / "missing.mp4"),
                         "--out", str(tmp_path / "o")]) == 1


# ------------------------------------------------------------------------------- stereo
def _expected_kitti_png(disparity):
    """KITTI 16-bit disparity as written for valid pixels: round(d * 256) clipped to [1, 65535], / 256."""
    return np.clip(np.round(disparity.astype(np.float64) * 256), 1, 65535) / 256


def test_stereo_pair_of_files_writes_png_pfm_and_picture(tmp_path, capsys):
    left, right = _write_frames(tmp_path / "in", ["left.png", "right.png"], seed=5)
    model = TwoFramePWC(num_levels=3, search_range=1)
    checkpoint = _save_model(model, tmp_path / "model")
    out = tmp_path / "disp"
    assert predict.main(["--checkpoint", checkpoint, "--stereo", "--input", str(tmp_path / "in" / "left.png"),
                         str(tmp_path / "in" / "right.png"), "--out", str(out), "--color", "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["left.pfm", "left.png", "left_color.png"]
    from dflow_tf.inference import predict_flow
    flow = predict_flow(model, [left, right])
    disparity, valid = read_disparity(str(out / "left.pfm"))
    assert valid.all()
    np.testing.assert_allclose(disparity, -flow[..., 0], atol=1e-4)
    png, png_valid = read_disparity(str(out / "left.png"))
    assert png_valid.all()
    np.testing.assert_allclose(png, _expected_kitti_png(disparity), atol=1e-6)
    assert flow_io.read_image(str(out / "left_color.png")).shape == (H, W, 3)
    printed = capsys.readouterr().out
    v_abs = float(np.abs(flow[..., 1]).mean())
    assert f"left: mean |v| {v_abs:.3f} px" in printed and "wrote 1 disparities" in printed


def test_stereo_folders_are_recognised_without_the_flag(tmp_path):
    rng = np.random.default_rng(6)
    kitti = tmp_path / "data" / "kitti"
    for sub in ("image_2", "image_3"):
        (kitti / sub).mkdir(parents=True)
        for name in ("000000_10.png", "000001_10.png"):
            flow_io.write_image(str(kitti / sub / name), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    mb = tmp_path / "data" / "mb"
    mb.mkdir()
    left = np.tile(np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], (H, 1, 3))
    flow_io.write_image(str(mb / "im0.png"), left)
    flow_io.write_image(str(mb / "im1.png"), left)
    out = tmp_path / "out"
    assert predict.main(["--checkpoint", "zero", "--input", str(tmp_path / "data"), "--out", str(out),
                         "--quiet"]) == 0  # a folder holding stereo folders and no images
    written = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, files in os.walk(out) for f in files)
    assert written == sorted(os.path.join(*p) for p in [("kitti", "000000_10.pfm"), ("kitti", "000000_10.png"),
                                                         ("kitti", "000001_10.pfm"), ("kitti", "000001_10.png"),
                                                         ("mb.pfm",), ("mb.png",)])
    # zero flow: disparity 0, stored as KITTI's smallest valid value 1/256 and as 0.0 in the PFM
    raw = cv2.imread(str(out / "mb.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and (raw == 1).all()
    np.testing.assert_array_equal(flow_io.read_pfm(str(out / "mb.pfm")), np.zeros((H, W), np.float32))
    out = tmp_path / "one"
    assert predict.main(["--checkpoint", "zero", "--input", str(mb), "--out", str(out), "--quiet"]) == 0
    assert sorted(os.listdir(out)) == ["mb.pfm", "mb.png"]  # one stereo folder: named after itself


def test_stereo_bad_inputs(tmp_path, capsys):
    _write_frames(tmp_path / "in", ["a.png", "b.png", "c.png"])
    flow_io.write_image(str(tmp_path / "small.png"), np.zeros((H // 2, W, 3), np.uint8))
    cases = [
        (["--stereo", "--input", str(tmp_path / "in" / "a.png"), str(tmp_path / "small.png")],
         "small.png: right frame size"),
        (["--stereo", "--input", *(str(tmp_path / "in" / n) for n in ("a.png", "b.png", "c.png"))],
         "--stereo takes two images (left, right)"),
        (["--stereo", "--input", str(tmp_path / "in")], "no stereo pairs"),
        (["--input", "skimage:motorcycle", "--format", "kitti_png"], "--format is for flow files"),
        (["--stereo", "--input", str(tmp_path / "in" / "a.png"), str(tmp_path / "missing.png")],
         "missing.png: file not found"),
    ]
    for args, message in cases:
        assert predict.main(["--checkpoint", "zero", "--out", str(tmp_path / "o"), *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (args, err)
    assert not (tmp_path / "o").exists()
