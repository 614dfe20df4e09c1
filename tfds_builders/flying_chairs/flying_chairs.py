"""flying_chairs: FlyingChairs (Dosovitskiy et al. 2015), official train / validation split.

22,232 training and 640 validation pairs of 512x384 frames with dense ground truth (`valid` is
true everywhere, `occlusion` unknown: `has_occlusion` False). The split follows
FlyingChairs_train_val.txt: line i is 1 (train) or 2 (validation) for pair i (1-based).
"""
import numpy as np
import tensorflow_datasets as tfds

from dflow_tf import io as flow_io
from dflow_tf.data import schema
from tfds_builders import _common

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download FlyingChairs.zip and FlyingChairs_train_val.txt from
https://lmb.informatik.uni-freiburg.de/resources/datasets/FlyingChairs.en.html and place them so:

  unzip FlyingChairs.zip -d <manual_dir>          # creates <manual_dir>/FlyingChairs_release/
  cp FlyingChairs_train_val.txt <manual_dir>/

Expected layout (XXXXX = 00001 ... 22872):
  FlyingChairs_train_val.txt
  FlyingChairs_release/data/XXXXX_img1.ppm, XXXXX_img2.ppm, XXXXX_flow.flo
The manual directory defaults to <data_dir>/downloads/manual/ (or pass
tfds.download.DownloadConfig(manual_dir=...)).
"""

_HINT = "See flying_chairs' MANUAL_DOWNLOAD_INSTRUCTIONS (docs/datasets.md)."
_SPLIT_CODES = {"train": "1", "validation": "2"}


class FlyingChairs(tfds.core.GeneratorBasedBuilder):
    """FlyingChairs pairs with dense ground-truth flow."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=schema.features(2),
            homepage="https://lmb.informatik.uni-freiburg.de/resources/datasets/FlyingChairs.en.html",
        )

    def _split_generators(self, dl_manager):
        manual = dl_manager.manual_dir
        split_file = _common.require(manual / "FlyingChairs_train_val.txt", manual, _HINT)
        data = _common.require(manual / "FlyingChairs_release" / "data", manual, _HINT)
        codes = split_file.read_text().split()
        unknown = sorted(set(codes) - set(_SPLIT_CODES.values()))
        if unknown:
            raise ValueError(f"{split_file}: unexpected split codes {unknown} (expected 1 or 2)")
        return {split: self._generate_examples(data, codes, code, manual)
                for split, code in _SPLIT_CODES.items()}

    def _generate_examples(self, data, codes, code, manual):
        for index, line_code in enumerate(codes, start=1):
            if line_code != code:
                continue
            key = f"{index:05d}"
            paths = [_common.require(data / f"{key}_img{i}.ppm", manual, _HINT) for i in (1, 2)]
            frames, (h, w) = _common.load_frames(paths)
            flow_path = _common.require(data / f"{key}_flow.flo", manual, _HINT)
            flow = _common.check_size(flow_path, flow_io.read_flo(str(flow_path)), (h, w))
            yield key, {
                schema.ID: key,
                schema.FRAMES: frames,
                schema.FLOW: flow.astype(np.float32),
                schema.VALID: np.ones((h, w, 1), bool),
                schema.OCCLUSION: np.zeros((h, w, 1), bool),
                schema.HAS_FLOW: True,
                schema.HAS_OCCLUSION: False,
            }
