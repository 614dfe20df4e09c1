"""The TFDS builders on their dummy_data/ (real on-disk layouts, tiny frames).

Split sizes follow tfds_builders/make_dummy_data.py. Also: a missing or corrupt file stops the
build with a message naming it.
"""
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_builders
from dflow_tf.data import schema
from dflow_tf.io import FlowFileError, read_kitti_flow
from tfds_builders.kitti_flow import kitti_flow
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
