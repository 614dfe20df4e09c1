"""Own footage as a dataset (dflow_tf.data.footage): windows, stride, order, resizing, split by clip,
determinism, bad clips named, the cache, iterator resume, a training stage, the real clips."""
import json
import os
import pathlib
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.data import footage, pipeline, schema
from dflow_tf.data.footage import FootageError, FootageSource
from dflow_tf.models import TwoFramePWC
from dflow_tf.training import trainer
from dflow_tf.training.unsupervised import UnsupervisedTask
from numpy_reference import resize_area, resize_bilinear

REPO = pathlib.Path(__file__).resolve().parents[1]
REALVIDEO = pathlib.Path(os.environ.get("DFLOW_REALVIDEO", REPO.parent / "shared" / "realvideo"))
H, W = 32, 48


@pytest.fixture(scope="module")
def realvideo():
    """Path to ../shared/realvideo (real unlabeled clips); skips when absent."""
    if not REALVIDEO.is_dir():
        pytest.skip(f"real clips not found at {REALVIDEO}")
    return REALVIDEO


def _frame(index, size=(H, W)):
    """A frame that says its index: a random texture seeded by it (exact through PNG)."""
    return np.random.default_rng(index).integers(0, 256, size + (3,), dtype=np.uint8)


def _write_folder(folder, indices, size=(H, W), ext=".png"):
    folder.mkdir(parents=True)
    for i in indices:
        cv2.imwrite(str(folder / f"{i:05d}{ext}"), _frame(i, size)[..., ::-1])


def _level(index):
    return 10 + 20 * index


def _write_video(path, count, fourcc, size=(48, 64)):
    """A video whose frame i is uniform grey `_level(i)` (recognisable through lossy codecs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (size[1], size[0]))
    assert writer.isOpened(), path
    for i in range(count):
        writer.write(np.full(size + (3,), _level(i), np.uint8))
    writer.release()


def _source(folder, tmp_path, **options):
    options.setdefault("frame_size", (H, W))
    return FootageSource(str(folder), data_dir=str(tmp_path / "cache"), **options)


def _windows(source, split="train"):
    """{id: uint8 frames [N, H, W, 3]} of a prepared split, plus the ground-truth flags."""
    source.download_and_prepare()
    out = {}
    for example in source.as_dataset(split):
        assert not bool(example[schema.HAS_FLOW]) and not bool(example[schema.HAS_OCCLUSION])
        assert not np.any(example[schema.FLOW].numpy())
        out[example[schema.ID].numpy().decode()] = example[schema.FRAMES].numpy()
    return out


def test_frame_folder_windows_with_a_stride_are_exact_and_in_order(tmp_path):
    _write_folder(tmp_path / "clips" / "walk", range(9))
    (tmp_path / "clips" / "walk" / "loop").symlink_to(tmp_path / "clips")  # links are followed, loops once
    windows = _windows(_source(tmp_path / "clips", tmp_path, num_frames=3, stride=2, validation_fraction=0))
    # 9 frames, windows (t, t + 2, t + 4) for t = 0..4
    assert sorted(windows) == [f"walk/{t:05d}" for t in range(5)]
    for t in range(5):
        expected = np.stack([_frame(t + 2 * k) for k in range(3)])
        np.testing.assert_array_equal(windows[f"walk/{t:05d}"], expected)


@pytest.mark.parametrize("name,fourcc", [("clip.avi", "MJPG"), ("clip.mp4", "mp4v")])
def test_video_windows_are_consecutive_frames_resized_to_cover(tmp_path, name, fourcc):
    _write_video(tmp_path / "clips" / name, 7, fourcc, size=(48, 64))
    windows = _windows(_source(tmp_path / "clips", tmp_path, num_frames=5, validation_fraction=0))
    assert sorted(windows) == [f"{name}/frame_{t:06d}" for t in range(3)]
    for key, frames in windows.items():
        t = int(key.rsplit("_", 1)[1])
        assert frames.shape == (5, H, W, 3)
        levels = frames.reshape(5, -1).mean(axis=1)
        np.testing.assert_allclose(levels, [_level(t + k) for k in range(5)], atol=4)


def test_cover_and_crop_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    # (32, 32): scale max(32/64, 32/96) = 1/2 -> 32x48 (2x2 block means), centre columns 8..40
    reference = image.reshape(32, 2, 48, 2, 3).astype(np.float64).mean(axis=(1, 3))[:, 8:40]
    out = footage.cover_and_crop(image, (32, 32))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert np.abs(out - reference).max() <= 0.5 + 1e-9
    # enlarging 4:3 -> 16:9-ish: scale max(18/12, 32/16) = 2 covers the width -> 24x32 (bilinear,
    # half-pixel centres), centre rows 3..21; OpenCV's fixed-point weights round to within 1
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    big = footage.cover_and_crop(small, (18, 32))
    assert big.shape == (18, 32, 3) and big.dtype == np.uint8
    np.testing.assert_allclose(big, resize_bilinear(small, (24, 32))[3:21], rtol=0, atol=1)
    np.testing.assert_array_equal(footage.cover_and_crop(image, (64, 96)), image)  # same size: unchanged


def test_split_is_by_clip_and_deterministic_for_a_seed(tmp_path):
    clips = tmp_path / "clips"
    for c in range(5):
        _write_folder(clips / f"clip{c}", range(10 * c, 10 * c + 4))
    source = _source(clips, tmp_path, validation_fraction=0.4, split_seed=3)
    train, validation = _windows(source, "train"), _windows(source, "validation")
    clip_of = lambda ids: {i.split("/")[0] for i in ids}  # noqa: E731
    assert len(clip_of(validation)) == 2 and len(clip_of(train)) == 3
    assert clip_of(train) | clip_of(validation) == {f"clip{c}" for c in range(5)}
    assert len(train) == 3 * 3 and len(validation) == 2 * 3  # 3 windows of 2 per 4-frame clip
    again = _source(clips, tmp_path / "other", validation_fraction=0.4, split_seed=3)
    assert sorted(_windows(again, "validation")) == sorted(validation)
    partitions = {tuple(footage.split_clips([f"clip{c}" for c in range(5)], 0.4, s)["validation"])
                  for s in range(8)}
    assert len(partitions) > 1  # the seed chooses
    # the training stream is the same for the same seed, another for another seed
    ids = lambda seed: [b[schema.ID].numpy().tolist() for b in pipeline.make_dataset(  # noqa: E731
        source, "train", batch_size=3, num_frames=2, seed=seed).take(3)]
    assert ids(1) == ids(1)
    assert ids(1) != ids(2)


def test_bad_clips_are_named_in_one_summary_line_and_the_rest_is_used(tmp_path, capsys):
    clips = tmp_path / "clips"
    _write_folder(clips / "good", range(5))
    _write_folder(clips / "short", [0])
    (clips / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    _write_video(clips / "cut.avi", 12, "MJPG")
    data = (clips / "cut.avi").read_bytes()
    (clips / "cut.avi").write_bytes(data[:int(0.8 * len(data))])
    _write_folder(clips / "mixed", [0, 1, 2, 3, 5, 6, 7, 8])
    cv2.imwrite(str(clips / "mixed" / "00004.png"), _frame(4, (16, 24)))
    _write_folder(clips / "broken", [0, 1, 3, 4, 5])
    (clips / "broken" / "00002.png").write_bytes(b"not a png")
    _write_folder(clips / "twins", range(4))
    _write_folder(clips / "twins" / "jpeg", [2], ext=".jpg")
    (clips / "twins" / "jpeg" / "00002.jpg").rename(clips / "twins" / "00002.jpg")
    windows = _windows(_source(clips, tmp_path, validation_fraction=0))
    lines = [line for line in capsys.readouterr().out.splitlines() if "clips," in line]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "7 clips, 4 used" in line and "skipped 3" in line
    assert "twins (frames with the same name: 00002.jpg, 00002.png)" in line
    assert re.search(r"garbage\.mp4 \(OpenCV cannot open it\)", line)
    assert re.search(r"short \(too short: 1 frame, a window of 2 at stride 1 spans 2\)", line)
    assert re.search(r"cut\.avi \(truncated: \d+ of the 12 frames", line)
    assert "mixed (sequence cut at 00004.png is 24x16 after 48x32, 00005.png is 48x32 after 24x16)" in line
    assert "broken (sequence cut at 00002.png unreadable)" in line
    by_clip = {}
    for key in windows:
        by_clip.setdefault(key.split("/")[0], []).append(key.split("/")[1])
    assert sorted(by_clip["good"]) == [f"{t:05d}" for t in range(4)]
    assert sorted(by_clip["mixed"]) == ["00000", "00001", "00002", "00005", "00006", "00007"]  # never across a cut
    assert sorted(by_clip["broken"]) == ["00000", "00003", "00004"]
    np.testing.assert_array_equal(windows["mixed/00005"], np.stack([_frame(5), _frame(6)]))
    decoded = len(by_clip["cut.avi"]) + 1
    assert f"truncated: {decoded} of the 12" in line
    for key in by_clip["cut.avi"]:
        t = int(key.rsplit("_", 1)[1])
        np.testing.assert_allclose(windows[f"cut.avi/{key}"].reshape(2, -1).mean(axis=1),
                                   [_level(t), _level(t + 1)], atol=4)
    assert f"{len(windows)} train / 0 validation windows" in line


def test_nothing_usable_missing_or_unset_folder_and_bad_options_are_one_clear_error(tmp_path):
    clips = tmp_path / "clips"
    _write_folder(clips / "short", [0, 1])
    (clips / "broken.mkv").write_bytes(b"\x00" * 100)
    with pytest.raises(FootageError, match=r"clips: no usable window of 3 frames at stride 1 in 2 clips"):
        _source(clips, tmp_path, num_frames=3).download_and_prepare()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FootageError, match="no video files .* and no folders of frames"):
        _source(tmp_path / "empty", tmp_path).download_and_prepare()
    with pytest.raises(FileNotFoundError, match="footage folder .*missing not found"):
        _source(tmp_path / "missing", tmp_path)
    with pytest.raises(FootageError, match="FOOTAGE_DIR="):
        FootageSource(None)
    with pytest.raises(FootageError, match="num_frames must be one of"):
        _source(clips, tmp_path, num_frames=4)
    with pytest.raises(FootageError, match="stride must be a positive integer"):
        _source(clips, tmp_path, stride=0)
    source = _source(clips, tmp_path, validation_fraction=0)
    source.download_and_prepare()
    with pytest.raises(FootageError, match="has no 'validation' split"):
        source.as_dataset("validation")


def test_the_train_command_reports_unusable_footage_in_one_error_line(tmp_path):
    clips = tmp_path / "clips"
    _write_folder(clips / "short", [0])
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               TFDS_DATA_DIR=str(tmp_path / "tfds"))
    result = subprocess.run([sys.executable, "-m", "dflow_tf.train", "--gin_file=gin/footage.gin",
                             f"--gin_param=FOOTAGE_DIR='{clips}'", f"--output_dir={tmp_path / 'run'}"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert f"error: {clips}: no usable window of 2 frames" in result.stderr
    assert "short (too short: 1 frame, a window of 2" in result.stdout


def test_the_cache_is_reused_and_keyed_by_the_folder_contents_and_options(tmp_path, capsys):
    clips = tmp_path / "clips"
    _write_folder(clips / "a", range(4))
    first = _source(clips, tmp_path)
    first.download_and_prepare()
    assert "clips, 1 used" in capsys.readouterr().out
    name = first.config_name()
    again = _source(clips, tmp_path)
    assert again.config_name() == name
    again.download_and_prepare()
    assert "clips," not in capsys.readouterr().out  # read back, not rebuilt
    assert again.num_examples("train") == 3
    assert _source(clips, tmp_path, stride=2).config_name() != name
    cv2.imwrite(str(clips / "a" / "00004.png"), _frame(4)[..., ::-1])
    grown = _source(clips, tmp_path)
    assert grown.config_name() != name
    grown.download_and_prepare()
    assert grown.num_examples("train") == 4


def test_the_training_iterator_resumes_at_the_same_batch(tmp_path):
    _write_folder(tmp_path / "clips" / "a", range(8))
    _write_folder(tmp_path / "clips" / "b", range(20, 28))
    source = _source(tmp_path / "clips", tmp_path, validation_fraction=0)
    ds = pipeline.make_dataset(source, "train", batch_size=2, crop_size=(24, 32), num_frames=2, seed=4)
    iterator = iter(ds)
    next(iterator)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    expected = [next(iterator) for _ in range(3)]
    checkpoint.restore(path)
    for batch in expected:
        resumed = next(iterator)
        np.testing.assert_array_equal(resumed[schema.ID].numpy(), batch[schema.ID].numpy())
        np.testing.assert_array_equal(resumed[schema.FRAMES].numpy(), batch[schema.FRAMES].numpy())


class _RecordingTask(UnsupervisedTask):
    """The photometric task that keeps the ids and frames of every batch it trains on."""

    def __init__(self):
        super().__init__("photometric", False)
        self.seen = []

    def compute_loss(self, model, batch):
        def keep(ids, frames):
            self.seen.append((ids.copy(), frames.copy()))
            return np.int32(0)

        tf.numpy_function(keep, [batch[schema.ID], batch[schema.FRAMES]], tf.int32)  # runs in the traced step
        return super().compute_loss(model, batch)


def test_a_two_step_training_stage_trains_on_every_footage_window_once(tmp_path):
    """Two steps of 4 on the 8 windows of two clips (one epoch, shuffled): the task sees each
    window once, as it is in the footage (no augmentation): the video's grey levels, and the
    frames of the folder shrunk by area averaging (80x80 -> 32x32)."""
    _write_video(tmp_path / "clips" / "a.avi", 6, "MJPG", size=(64, 96))
    _write_folder(tmp_path / "clips" / "b", range(4), size=(80, 80))
    source = FootageSource(str(tmp_path / "clips"), frame_size=(32, 32), data_dir=str(tmp_path / "cache"),
                           validation_fraction=0)
    stage, task = tmp_path / "stage", _RecordingTask()
    result = trainer.train_stage(str(stage), model_fn=lambda: TwoFramePWC(num_levels=3), task=task,
                                 num_steps=2, batch_size=4, dataset=source, augmentation=None, eval_split=None,
                                 log_every=1, checkpoint_every=2)
    assert result.checkpoint.endswith("ckpt-2") and result.evaluation is None
    assert json.loads((stage / "done.json").read_text())["step"] == 2
    assert len(task.seen) == 2
    windows = {i.decode(): f for ids, frames in task.seen for i, f in zip(ids, frames)}
    assert sum(len(ids) for ids, _ in task.seen) == len(windows) == 8
    assert sorted(windows) == [f"a.avi/frame_{t:06d}" for t in range(5)] + [f"b/{t:05d}" for t in range(3)]
    for key, frames in windows.items():
        assert frames.shape == (2, 32, 32, 3) and frames.dtype == np.float32
        t = int(key.rsplit("_", 1)[1] if key.startswith("a.avi") else key.split("/")[1])
        if key.startswith("a.avi"):
            np.testing.assert_allclose(255 * frames.reshape(2, -1).mean(axis=1), [_level(t), _level(t + 1)], atol=4)
        else:
            expected = np.stack([resize_area(_frame(t + k, (80, 80)), (32, 32)) for k in range(2)])
            np.testing.assert_allclose(255 * frames, expected, rtol=0, atol=0.5 + 1e-3)


def test_real_clips(realvideo, tmp_path, capsys):
    """Two of the real clips (a H.264 video and a folder of JPEG frames), linked, not copied."""
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "cup.mp4").symlink_to(realvideo / "cup.mp4")
    (clips / "sam2_bedroom").symlink_to(realvideo / "sam2_bedroom")
    source = FootageSource(str(clips), frame_size=(64, 128), num_frames=3, stride=2, validation_fraction=0.5,
                           data_dir=str(tmp_path / "cache"))
    source.download_and_prepare()
    line = next(line for line in capsys.readouterr().out.splitlines() if "clips," in line)
    # README: cup 217 frames, sam2_bedroom 200; a window of 3 at stride 2 spans 5 frames
    assert "2 clips, 2 used (1 train / 1 validation)" in line and "skipped" not in line
    assert source.num_examples("train") + source.num_examples("validation") == (217 - 4) + (200 - 4)
    batch = next(iter(pipeline.make_dataset(source, "train", batch_size=2, num_frames=3, seed=0)))
    frames = batch[schema.FRAMES].numpy()
    assert frames.shape == (2, 3, 64, 128, 3) and frames.std() > 0.05
    # window cup.mp4/frame_000010 = frames 10, 12, 14; 640x480 -> scale 0.2 -> 96x128 -> rows 16..80
    capture = cv2.VideoCapture(str(realvideo / "cup.mp4"))
    decoded = [capture.read()[1][..., ::-1] for _ in range(15)]
    capture.release()
    expected = np.stack([cv2.resize(decoded[i], (128, 96), interpolation=cv2.INTER_AREA)[16:80] for i in (10, 12, 14)])
    stored = {}
    for split in ("train", "validation"):
        stored.update(_windows(source, split))
    np.testing.assert_array_equal(stored["cup.mp4/frame_000010"], expected)
    assert "sam2_bedroom/00000" in stored and "sam2_bedroom/00195" in stored and "sam2_bedroom/00196" not in stored


@pytest.mark.slow
def test_footage_gin_runs_teachers_and_student_on_clips(tmp_path):
    """gin/footage.gin end to end (--dry_run: 2 steps per stage) on tiny clips and 3-level models."""
    _write_video(tmp_path / "clips" / "a.avi", 8, "MJPG", size=(72, 96))
    _write_folder(tmp_path / "clips" / "b", range(6), size=(64, 80))
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               TFDS_DATA_DIR=str(tmp_path / "tfds"))
    result = subprocess.run(
        [sys.executable, "-m", "dflow_tf.train", "--gin_file=gin/footage.gin", "--dry_run",
         f"--gin_param=FOOTAGE_DIR='{tmp_path / 'clips'}'", "--gin_param=FRAME_SIZE=(64, 64)",
         "--gin_param=TEACHER_CROP=(32, 32)", "--gin_param=STUDENT_CROP=(32, 32)",
         "--gin_param=TwoFramePWC.num_levels=3", "--gin_param=train_stage.batch_size=2",
         f"--output_dir={tmp_path / 'run'}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 clips, 2 used (1 train / 1 validation)" in result.stdout
    for stage in ("teacher_a/census", "teacher_b/census", "student"):
        assert (tmp_path / "run" / stage / "done.json").exists(), stage


@pytest.mark.slow
def test_all_real_clips(realvideo, tmp_path):
    source = FootageSource(str(realvideo), frame_size=(64, 96), data_dir=str(tmp_path / "cache"))
    source.download_and_prepare()
    # README: 795 + 455 + 217 + 200 decoded frames, windows of 2
    assert source.num_examples("train") + source.num_examples("validation") == 794 + 454 + 216 + 199
