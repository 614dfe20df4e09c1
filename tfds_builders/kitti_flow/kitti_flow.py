"""kitti_flow: KITTI 2012 / 2015 optical flow and their multi-view extensions (manual download).

Configs:
  * `2012`, `2015`: benchmark pairs frame _10 -> _11 of the left colour camera. `train` carries
    `flow_occ` ground truth (`flow`, `valid`) and its occluded part (`occlusion` = valid in
    flow_occ but not in flow_noc; non-occluded ground truth = valid & ~occlusion); `test` has none.
  * `2012_multiview`, `2015_multiview`: windows of `num_frames` (default 5) consecutive frames of
    the multi-view extension, from both colour cameras, never containing frames 09-12 (the
    benchmark frames and their neighbours): windows lie inside frames 00-08 or 13-20. `train` /
    `test` are the training / testing sequences; neither has ground truth (unsupervised training
    usually reads `train+test`). `multiview_config(year, num_frames, stride)` makes other N.

Frame sizes differ between sequences (e.g. 1242x375, 1241x376, 1226x370), so H and W are None.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from dflow_tf import io as flow_io
from dflow_tf.data import schema
from tfds_builders import _common

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download the archives from https://www.cvlibs.net/datasets/kitti/ (free registration) and extract
each into a per-year folder of the manual directory (both archives of a year unpack into the
same `training/` and `testing/` folders; overlapping files are identical):

  unzip data_scene_flow.zip            -d <manual_dir>/kitti2015   # configs 2015
  unzip data_scene_flow_multiview.zip  -d <manual_dir>/kitti2015   # config 2015_multiview
  unzip data_stereo_flow.zip           -d <manual_dir>/kitti2012   # configs 2012
  unzip data_stereo_flow_multiview.zip -d <manual_dir>/kitti2012   # config 2012_multiview

Expected layout (only what the configs read; XXXXXX = 000000, 000001, ...):
  kitti2015/training/image_2/XXXXXX_10.png, XXXXXX_11.png
  kitti2015/training/flow_occ/XXXXXX_10.png, kitti2015/training/flow_noc/XXXXXX_10.png
  kitti2015/testing/image_2/XXXXXX_10.png, XXXXXX_11.png
  kitti2015/{training,testing}/{image_2,image_3}/XXXXXX_00.png ... XXXXXX_20.png   (multiview)
  kitti2012/training/colored_0/XXXXXX_10.png, XXXXXX_11.png
  kitti2012/training/flow_occ/XXXXXX_10.png, kitti2012/training/flow_noc/XXXXXX_10.png
  kitti2012/testing/colored_0/XXXXXX_10.png, XXXXXX_11.png
  kitti2012/{training,testing}/{colored_0,colored_1}/XXXXXX_00.png ... XXXXXX_20.png (multiview)
The manual directory defaults to <data_dir>/downloads/manual/ (or pass
tfds.download.DownloadConfig(manual_dir=...)).
"""

_HINT = "See kitti_flow's MANUAL_DOWNLOAD_INSTRUCTIONS (docs/datasets.md)."
_YEARS = {
    2012: {"folder": "kitti2012", "cameras": ("colored_0", "colored_1")},
    2015: {"folder": "kitti2015", "cameras": ("image_2", "image_3")},
}
#: Multi-view frame indices usable for training: 09-12 are the benchmark frames and neighbours.
SEGMENTS = (range(0, 9), range(13, 21))


@dataclasses.dataclass
class KittiFlowConfig(tfds.core.BuilderConfig):
    """year: 2012 or 2015; multiview: windows of the multi-view extension instead of the pairs."""
    year: int = 2015
    multiview: bool = False
    num_frames: int = 2
    stride: int = 1


def multiview_config(year, num_frames=5, stride=1):
    """A multi-view config with `num_frames`-frame windows starting every `stride` frames."""
    suffix = "" if (num_frames, stride) == (5, 1) else f"_{num_frames}f_s{stride}"
    return KittiFlowConfig(
        name=f"{year}_multiview{suffix}", year=year, multiview=True, num_frames=num_frames,
        stride=stride, description=f"KITTI {year} multi-view, {num_frames}-frame windows, "
        f"stride {stride}, both cameras, frames 09-12 excluded")


def windows(num_frames, stride=1):
    """Frame-index lists of the multi-view windows of `num_frames` frames, all inside SEGMENTS."""
    out = []
    for segment in SEGMENTS:
        for start in range(segment.start, segment.stop - num_frames + 1, stride):
            out.append(list(range(start, start + num_frames)))
    return out


class KittiFlow(tfds.core.GeneratorBasedBuilder):
    """KITTI 2012 / 2015 flow pairs with sparse ground truth, and multi-view windows."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        KittiFlowConfig(name="2012", year=2012,
                        description="KITTI 2012 flow pairs _10 -> _11, flow_occ / flow_noc"),
        KittiFlowConfig(name="2015", year=2015,
                        description="KITTI 2015 flow pairs _10 -> _11, flow_occ / flow_noc"),
        multiview_config(2012),
        multiview_config(2015),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "2015"

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=schema.features(self.builder_config.num_frames),
            homepage="https://www.cvlibs.net/datasets/kitti/",
        )

    def _split_generators(self, dl_manager):
        c = self.builder_config
        if c.num_frames < 2 or (not c.multiview and c.num_frames != 2):
            raise ValueError(f"kitti_flow/{c.name}: num_frames={c.num_frames}; the flow configs "
                             "are pairs and multi-view windows need at least 2 frames")
        manual = dl_manager.manual_dir
        root = _common.require(manual / _YEARS[c.year]["folder"], manual, _HINT)
        return {"train": self._generate_examples(root / "training", manual, ground_truth=True),
                "test": self._generate_examples(root / "testing", manual, ground_truth=False)}

    def _generate_examples(self, split_dir, manual, ground_truth):
        """Examples of `split_dir` (training/ or testing/); `ground_truth`: read flow_occ /
        flow_noc (pair configs only: the multi-view extension has no ground truth)."""
        if self.builder_config.multiview:
            return self._multiview_examples(split_dir, manual)
        return self._pair_examples(split_dir, manual, ground_truth)

    def _sequences(self, folder, suffix, manual):
        names = _common.sorted_names(_common.require(folder, manual, _HINT), f"*{suffix}")
        if not names:
            raise _common.ManualDirError(
                f"no frames *{suffix} in {folder} (manual directory {manual}). {_HINT}")
        return [name[:-len(suffix)] for name in names]

    def _pair_examples(self, split_dir, manual, ground_truth):
        camera = split_dir / _YEARS[self.builder_config.year]["cameras"][0]
        for seq in self._sequences(camera, "_10.png", manual):
            paths = [_common.require(camera / f"{seq}_{i}.png", manual, _HINT) for i in (10, 11)]
            frames, (h, w) = _common.load_frames(paths)
            example = {schema.ID: f"{seq}_10", schema.FRAMES: frames}
            if ground_truth:
                example.update(self._ground_truth(split_dir, seq, (h, w), manual))
            else:
                example.update(schema.no_ground_truth(h, w))
            yield f"{seq}_10", example

    def _ground_truth(self, split_dir, seq, size, manual):
        read = {}
        for kind in ("flow_occ", "flow_noc"):
            path = _common.require(split_dir / kind / f"{seq}_10.png", manual, _HINT)
            flow, valid = flow_io.read_kitti_flow(str(path))
            read[kind] = (_common.check_size(path, flow, size), valid)
        flow, valid = read["flow_occ"]
        valid_noc = read["flow_noc"][1]
        return {
            schema.FLOW: np.where(valid[..., None], flow, 0.0).astype(np.float32),
            schema.VALID: valid[..., None],
            schema.OCCLUSION: (valid & ~valid_noc)[..., None],
            schema.HAS_FLOW: True,
            schema.HAS_OCCLUSION: True,
        }

    def _multiview_examples(self, split_dir, manual):
        c = self.builder_config
        cameras = [split_dir / cam for cam in _YEARS[c.year]["cameras"]]
        for camera in cameras:
            _common.require(camera, manual, _HINT)
        for seq in self._sequences(cameras[0], "_00.png", manual):
            for camera in cameras:
                for window in windows(c.num_frames, c.stride):
                    paths = [_common.require(camera / f"{seq}_{i:02d}.png", manual, _HINT)
                             for i in window]
                    frames, (h, w) = _common.load_frames(paths)
                    key = f"{seq}_{camera.name}_{window[0]:02d}"
                    yield key, {schema.ID: key, schema.FRAMES: frames, **schema.no_ground_truth(h, w)}
