"""The TFDS builders on their dummy_data/ (real on-disk layouts, tiny frames).

Split sizes follow tfds_builders/make_dummy_data.py. Also: a missing or corrupt file stops the
build with a message naming it.
"""
import shutil

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_builders
from dflow_tf.data import schema
from dflow_tf.io import FlowFileError, read_kitti_flow
from tfds_builders import make_dummy_data
from tfds_builders.kitti_flow import kitti_flow
from tfds_builders.kitti_stereo import kitti_stereo
from tfds_builders.synthetic_flow import synthetic_flow


class KittiFlow2015Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.KittiFlow
    BUILDER_CONFIG_NAMES_TO_TEST = ["2015"]
    SPLITS = {"train": 2, "test": 1}


class KittiFlow2012Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.KittiFlow
    BUILDER_CONFIG_NAMES_TO_TEST = ["2012"]
    SPLITS = {"train": 1, "test": 1}


class KittiFlow2015MultiviewTest(tfds.testing.DatasetBuilderTestCase):
    """Default 5-frame windows: 5 in frames 00-08 + 4 in 13-20, per camera, 2 cameras."""
    DATASET_CLASS = tfds_builders.KittiFlow
    BUILDER_CONFIG_NAMES_TO_TEST = ["2015_multiview"]
    SPLITS = {"train": 2 * 2 * 9, "test": 1 * 2 * 9}


class KittiFlow2012MultiviewCustomTest(tfds.testing.DatasetBuilderTestCase):
    """3-frame windows every 2 frames: starts 0, 2, 4, 6 and 13, 15, 17 -> 7 per camera."""
    DATASET_CLASS = tfds_builders.KittiFlow
    BUILDER_CONFIG_NAMES_TO_TEST = [kitti_flow.multiview_config(2012, num_frames=3, stride=2)]
    SPLITS = {"train": 2 * 7, "test": 2 * 7}


class SintelPairsTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.Sintel
    BUILDER_CONFIG_NAMES_TO_TEST = ["clean", "final"]
    SPLITS = {"train": 5 + 4, "test": 4}


class SintelThreeFrameTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.Sintel
    BUILDER_CONFIG_NAMES_TO_TEST = ["final_3"]
    SPLITS = {"train": 4 + 3, "test": 3}


class SintelFiveFrameTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.Sintel
    BUILDER_CONFIG_NAMES_TO_TEST = ["clean_5"]
    SPLITS = {"train": 2 + 1, "test": 1}


class FlyingChairsTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.FlyingChairs
    SPLITS = {"train": 3, "validation": 2}


class SyntheticFlowTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.SyntheticFlow
    BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
    SPLITS = {"train": 4, "validation": 2}


class KittiStereo2015Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.KittiStereo
    BUILDER_CONFIG_NAMES_TO_TEST = ["2015"]
    SPLITS = {"train": 2, "test": 1}


class KittiStereo2012Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = tfds_builders.KittiStereo
    BUILDER_CONFIG_NAMES_TO_TEST = ["2012"]
    SPLITS = {"train": 1, "test": 1}


class KittiStereo2015MultiviewTest(tfds.testing.DatasetBuilderTestCase):
    """One stereo pair per frame 00-08 and 13-20: 17 per sequence."""
    DATASET_CLASS = tfds_builders.KittiStereo
    BUILDER_CONFIG_NAMES_TO_TEST = ["2015_multiview"]
    SPLITS = {"train": 2 * 17, "test": 1 * 17}


class SyntheticStereoTest(tfds.testing.DatasetBuilderTestCase):
    """2 / 1 scenes of 2 time steps."""
    DATASET_CLASS = tfds_builders.SyntheticStereo
    BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
    SPLITS = {"train": 4, "validation": 2}


# ------------------------------------------------------------------ contents and error messages

def _build(builder_cls, config, manual_dir, data_dir):
    builder = builder_cls(config=config, data_dir=str(data_dir))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(manual_dir), compute_stats=tfds.download.ComputeStatsMode.SKIP))
    return builder


@pytest.fixture()
def kitti_manual(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(tfds_builders.KittiFlow.code_path.parent / "dummy_data", manual)
    return manual


def test_kitti_pairs_contents(tmp_path):
    manual = tfds_builders.KittiFlow.code_path.parent / "dummy_data"
    builder = _build(tfds_builders.KittiFlow, "2015", manual, tmp_path)
    examples = {ex[schema.ID].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split="train"))}
    ex = examples["000001_10"]
    assert ex[schema.FRAMES].shape == (2, 16, 28, 3)
    flow_dir = manual / "kitti2015" / "training"
    flow, valid = read_kitti_flow(str(flow_dir / "flow_occ" / "000001_10.png"))
    _, valid_noc = read_kitti_flow(str(flow_dir / "flow_noc" / "000001_10.png"))
    np.testing.assert_array_equal(ex[schema.VALID][..., 0], valid)
    np.testing.assert_allclose(ex[schema.FLOW][valid], flow[valid])
    np.testing.assert_array_equal(ex[schema.OCCLUSION][..., 0], valid & ~valid_noc)
    assert ex[schema.HAS_FLOW] and ex[schema.HAS_OCCLUSION]
    test_ex = next(iter(tfds.as_numpy(builder.as_dataset(split="test"))))
    assert not test_ex[schema.HAS_FLOW] and not test_ex[schema.VALID].any()


def _raw_kitti_disparity(path):
    """KITTI disparity read without dflow_tf: uint16 / 256, 0 = invalid."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    return raw / 256.0, raw > 0


@pytest.mark.parametrize("year, folders", [(2015, ("image_2", "image_3", "disp_occ_0", "disp_noc_0")),
                                           (2012, ("colored_0", "colored_1", "disp_occ", "disp_noc"))])
def test_kitti_stereo_contents(tmp_path, year, folders):
    manual = tfds_builders.KittiStereo.code_path.parent / "dummy_data"
    builder = _build(tfds_builders.KittiStereo, str(year), manual, tmp_path)
    ex = next(ex for ex in tfds.as_numpy(builder.as_dataset(split="train")) if ex[schema.ID] == b"000000_10")
    training = manual / f"kitti{year}" / "training"
    left, right = (cv2.imread(str(training / cam / "000000_10.png"))[..., ::-1] for cam in folders[:2])
    np.testing.assert_array_equal(ex[schema.FRAMES][0], left)
    np.testing.assert_array_equal(ex[schema.FRAMES][1], right)
    disparity, valid = _raw_kitti_disparity(training / folders[2] / "000000_10.png")
    _, valid_noc = _raw_kitti_disparity(training / folders[3] / "000000_10.png")
    assert ex[schema.STEREO] and ex[schema.HAS_FLOW] and ex[schema.HAS_OCCLUSION]
    np.testing.assert_array_equal(ex[schema.VALID][..., 0], valid)
    np.testing.assert_allclose(ex[schema.FLOW][..., 0][valid], -disparity[valid])
    assert not ex[schema.FLOW][..., 1].any() and not ex[schema.FLOW][~valid].any()
    np.testing.assert_array_equal(ex[schema.OCCLUSION][..., 0], valid & ~valid_noc)
    test_ex = next(iter(tfds.as_numpy(builder.as_dataset(split="test"))))
    assert test_ex[schema.STEREO] and not test_ex[schema.HAS_FLOW] and not test_ex[schema.VALID].any()


def test_kitti_stereo_dummy_right_view_is_shifted_left_view():
    """The dummy pairs are true stereo pairs: right(x - d) = left(x) with d = STEREO_DISPARITY."""
    training = tfds_builders.KittiStereo.code_path.parent / "dummy_data" / "kitti2015" / "training"
    left = cv2.imread(str(training / "image_2" / "000001_10.png")).astype(float)
    right = cv2.imread(str(training / "image_3" / "000001_10.png")).astype(float)
    d = make_dummy_data.STEREO_DISPARITY
    xs = np.arange(left.shape[1], dtype=float)
    warped = np.stack([[np.interp(xs - d, xs, right[y, :, c]) for c in range(3)] for y in range(left.shape[0])])
    inner = slice(int(np.ceil(d)), None)
    assert np.abs(warped.transpose(0, 2, 1)[:, inner] - left[:, inner]).mean() < 3.0
    assert np.abs(right[:, inner] - left[:, inner]).mean() > 3 * np.abs(
        warped.transpose(0, 2, 1)[:, inner] - left[:, inner]).mean()


def test_kitti_stereo_corrupt_disparity_is_named(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(tfds_builders.KittiStereo.code_path.parent / "dummy_data", manual)
    corrupt = manual / "kitti2015" / "training" / "disp_noc_0" / "000001_10.png"
    cv2.imwrite(str(corrupt), np.zeros((16, 28, 3), np.uint8))  # an 8-bit colour PNG, not a disparity
    with pytest.raises(FlowFileError, match=str(corrupt)):
        _build(tfds_builders.KittiStereo, "2015", manual, tmp_path / "data")
    missing = manual / "kitti2012" / "training" / "disp_occ" / "000000_10.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError) as err:
        _build(tfds_builders.KittiStereo, "2012", manual, tmp_path / "data2012")
    assert str(missing) in str(err.value) and str(manual) in str(err.value)


def test_kitti_stereo_multiview_skips_benchmark_frames():
    frames = kitti_stereo.multiview_frames()
    assert frames == list(range(0, 9)) + list(range(13, 21))


def test_multiview_windows_skip_benchmark_frames():
    for n in (2, 3, 5):
        for window in kitti_flow.windows(n):
            assert len(window) == n and not set(window) & {9, 10, 11, 12}
            assert window == list(range(window[0], window[0] + n))
            assert 0 <= window[0] and window[-1] <= 20
    assert len(kitti_flow.windows(3)) == 7 + 6


def test_missing_file_is_named(kitti_manual, tmp_path):
    missing = kitti_manual / "kitti2015" / "training" / "flow_noc" / "000001_10.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError) as err:
        _build(tfds_builders.KittiFlow, "2015", kitti_manual, tmp_path / "data")
    assert str(missing) in str(err.value) and str(kitti_manual) in str(err.value)


def test_missing_folder_is_named(kitti_manual, tmp_path):
    shutil.rmtree(kitti_manual / "kitti2012")
    with pytest.raises(FileNotFoundError, match="kitti2012"):
        _build(tfds_builders.KittiFlow, "2012", kitti_manual, tmp_path / "data")


def test_corrupt_frame_is_named(kitti_manual, tmp_path):
    corrupt = kitti_manual / "kitti2015" / "testing" / "image_2" / "000000_11.png"
    corrupt.write_bytes(b"not a png")
    with pytest.raises(FlowFileError, match=str(corrupt)):
        _build(tfds_builders.KittiFlow, "2015", kitti_manual, tmp_path / "data")


def test_corrupt_flow_is_named(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(tfds_builders.FlyingChairs.code_path.parent / "dummy_data", manual)
    corrupt = manual / "FlyingChairs_release" / "data" / "00002_flow.flo"
    corrupt.write_bytes(corrupt.read_bytes()[:40])
    with pytest.raises(FlowFileError, match=str(corrupt)):
        _build(tfds_builders.FlyingChairs, None, manual, tmp_path / "data")


def test_synthetic_config_sizes():
    config = synthetic_flow.SyntheticFlowConfig(name="t", height=24, width=40, num_frames=3,
                                                train_size=2, validation_size=1)
    info = tfds_builders.SyntheticFlow(config=config, data_dir="/nonexistent").info
    assert info.features[schema.FRAMES].shape == (3, 24, 40, 3)
    assert info.features[schema.FLOW_FW].shape == (2, 24, 40, 2)
