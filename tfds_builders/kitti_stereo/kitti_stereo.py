"""kitti_stereo: KITTI 2012 / 2015 stereo pairs with disparity, and the multi-view extension as
stereoscopic video (manual download; the same archives as kitti_flow).

Every example is a rectified stereo pair, frames = (left, right) of one time step, in the
canonical schema with `stereo` True: `flow` is the left -> right flow (-disparity, 0).

Configs:
  * `2012`, `2015`: the benchmark pairs, frame _10 of the left and right colour cameras. `train`
    carries the disparity of `disp_occ` (2012) / `disp_occ_0` (2015) as `flow` and `valid`, and
    its occluded part (`occlusion` = valid in disp_occ but not in disp_noc); `test` has none.
    Disparity files are KITTI 16-bit PNGs, d = value / 256, 0 = no ground truth.
  * `2012_multiview`, `2015_multiview`: the stereo pair of every frame of the multi-view
    extension outside frames 09-12 (the benchmark frames and their neighbours, as in kitti_flow):
    frames 00-08 and 13-20 of every sequence, ids "<sequence>_<frame>". `train` / `test` are the
    training / testing sequences; no ground truth.

Frame sizes differ between sequences (e.g. 1242x375, 1241x376, 1226x370), so H and W are None.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from dflow_tf.data import schema
from dflow_tf.io.flow_files import read_kitti_disparity
from tfds_builders import _common
from tfds_builders.kitti_flow.kitti_flow import SEGMENTS

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
The archives of kitti_flow (https://www.cvlibs.net/datasets/kitti/, free registration), each
extracted into a per-year folder of the manual directory; kitti_flow and kitti_stereo can share
one manual directory:

  unzip data_scene_flow.zip            -d <manual_dir>/kitti2015   # config 2015
  unzip data_scene_flow_multiview.zip  -d <manual_dir>/kitti2015   # config 2015_multiview
  unzip data_stereo_flow.zip           -d <manual_dir>/kitti2012   # config 2012
  unzip data_stereo_flow_multiview.zip -d <manual_dir>/kitti2012   # config 2012_multiview

Expected layout (only what the configs read; XXXXXX = 000000, 000001, ...):
  kitti2015/training/{image_2,image_3}/XXXXXX_10.png
  kitti2015/training/disp_occ_0/XXXXXX_10.png, kitti2015/training/disp_noc_0/XXXXXX_10.png
  kitti2015/testing/{image_2,image_3}/XXXXXX_10.png
  kitti2015/{training,testing}/{image_2,image_3}/XXXXXX_00.png ... XXXXXX_20.png   (multiview)
  kitti2012/training/{colored_0,colored_1}/XXXXXX_10.png
  kitti2012/training/disp_occ/XXXXXX_10.png, kitti2012/training/disp_noc/XXXXXX_10.png
  kitti2012/testing/{colored_0,colored_1}/XXXXXX_10.png
  kitti2012/{training,testing}/{colored_0,colored_1}/XXXXXX_00.png ... XXXXXX_20.png (multiview)
The manual directory defaults to <data_dir>/downloads/manual/ (or pass
tfds.download.DownloadConfig(manual_dir=...)).
"""

_HINT = "See kitti_stereo's MANUAL_DOWNLOAD_INSTRUCTIONS (docs/datasets.md)."
_YEARS = {
    2012: {"folder": "kitti2012", "cameras": ("colored_0", "colored_1"), "disparity": ("disp_occ", "disp_noc")},
    2015: {"folder": "kitti2015", "cameras": ("image_2", "image_3"), "disparity": ("disp_occ_0", "disp_noc_0")},
}


@dataclasses.dataclass
class KittiStereoConfig(tfds.core.BuilderConfig):
    """year: 2012 or 2015; multiview: the pairs of every multi-view frame instead of frame 10."""
    year: int = 2015
    multiview: bool = False


def multiview_frames():
    """Frame indices of the multi-view stereo video: SEGMENTS (frames 09-12 excluded)."""
    return [i for segment in SEGMENTS for i in segment]


def disparity_ground_truth(disp_occ, valid_occ, valid_noc):
    """The schema's ground truth of a stereo pair from its disparity maps.

    Args:
      disp_occ: float32 [H, W] disparity (px) of all pixels with ground truth; valid_occ: bool
        [H, W] where it is known; valid_noc: bool [H, W] the non-occluded part.

    Returns:
      {flow float32 [H, W, 2] = (-d, 0) where valid else 0, valid, occlusion bool [H, W, 1]
      (valid in disp_occ, not in disp_noc), has_flow, has_occlusion}.
    """
    u = np.where(valid_occ, -disp_occ, 0.0).astype(np.float32)
    return {
        schema.FLOW: np.stack([u, np.zeros_like(u)], axis=-1),
        schema.VALID: valid_occ[..., None],
        schema.OCCLUSION: (valid_occ & ~valid_noc)[..., None],
        schema.HAS_FLOW: True,
        schema.HAS_OCCLUSION: True,
    }


class KittiStereo(tfds.core.GeneratorBasedBuilder):
    """KITTI 2012 / 2015 rectified stereo pairs with sparse disparity, and multi-view stereo video."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        KittiStereoConfig(name="2012", year=2012, description="KITTI 2012 stereo pairs _10, disp_occ / disp_noc"),
        KittiStereoConfig(name="2015", year=2015, description="KITTI 2015 stereo pairs _10, disp_occ_0 / disp_noc_0"),
        KittiStereoConfig(name="2012_multiview", year=2012, multiview=True,
                          description="KITTI 2012 multi-view stereo pairs, frames 00-08 and 13-20"),
        KittiStereoConfig(name="2015_multiview", year=2015, multiview=True,
                          description="KITTI 2015 multi-view stereo pairs, frames 00-08 and 13-20"),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "2015"

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=schema.features(2, stereo=True),
            homepage="https://www.cvlibs.net/datasets/kitti/",
        )

    def _split_generators(self, dl_manager):
        manual = dl_manager.manual_dir
        root = _common.require(manual / _YEARS[self.builder_config.year]["folder"], manual, _HINT)
        return {"train": self._generate_examples(root / "training", manual, ground_truth=True),
                "test": self._generate_examples(root / "testing", manual, ground_truth=False)}

    def _generate_examples(self, split_dir, manual, ground_truth):
        """Stereo pairs of `split_dir` (training/ or testing/); `ground_truth`: read the disparity
        of frame 10 (benchmark configs only: the multi-view extension has none)."""
        c = self.builder_config
        left, right = (_common.require(split_dir / cam, manual, _HINT) for cam in _YEARS[c.year]["cameras"])
        suffix = "_00.png" if c.multiview else "_10.png"
        names = _common.sorted_names(left, f"*{suffix}")
        if not names:
            raise _common.ManualDirError(f"no frames *{suffix} in {left} (manual directory {manual}). {_HINT}")
        frames = multiview_frames() if c.multiview else [10]
        for seq in (name[:-len(suffix)] for name in names):
            for i in frames:
                paths = [_common.require(cam / f"{seq}_{i:02d}.png", manual, _HINT) for cam in (left, right)]
                encoded, (h, w) = _common.load_frames(paths)
                key = f"{seq}_{i:02d}"
                example = {schema.ID: key, schema.FRAMES: encoded, schema.STEREO: True}
                if ground_truth and not c.multiview:
                    example.update(self._ground_truth(split_dir, seq, (h, w), manual))
                else:
                    example.update(schema.no_ground_truth(h, w))
                yield key, example

    def _ground_truth(self, split_dir, seq, size, manual):
        read = []
        for kind in _YEARS[self.builder_config.year]["disparity"]:
            path = _common.require(split_dir / kind / f"{seq}_10.png", manual, _HINT)
            disparity, valid = read_kitti_disparity(str(path))
            read.append((_common.check_size(path, disparity, size), valid))
        (disp_occ, valid_occ), (_, valid_noc) = read
        return disparity_ground_truth(disp_occ, valid_occ, valid_noc)
