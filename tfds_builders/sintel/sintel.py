"""sintel: MPI-Sintel optical flow, clean and final passes (manual download).

Each example is a window of `num_frames` consecutive frames of one scene (N = 2, 3 or 5; configs
`clean`, `final` are pairs, `clean_3` / `final_3` and `clean_5` / `final_5` longer windows). The
ground truth belongs to the reference frame r = (N - 1) // 2: it is the flow frame r -> r + 1 of
the window (Sintel's `flow/<scene>/frame_XXXX.flo` of that frame), with its `occlusions` mask and
`valid` = not `invalid`. Windows lie inside a scene, so with N > 2 the first and last pairs of a
scene are not reference pairs. `train` has ground truth (1041 pairs per pass for N = 2); `test`
(552 pairs per pass for N = 2) has none.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from dflow_tf import io as flow_io
from dflow_tf.data import frame_windows, schema
from tfds_builders import _common

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download MPI-Sintel-complete.zip from http://sintel.is.tue.mpg.de/ and extract it into the
manual directory:

  unzip MPI-Sintel-complete.zip -d <manual_dir>/MPI-Sintel-complete

Expected layout (<scene> = alley_1, ...; frames frame_0001.png ... of each scene):
  MPI-Sintel-complete/training/{clean,final}/<scene>/frame_XXXX.png
  MPI-Sintel-complete/training/flow/<scene>/frame_XXXX.flo        (frame XXXX -> XXXX + 1)
  MPI-Sintel-complete/training/occlusions/<scene>/frame_XXXX.png  (255 = occluded)
  MPI-Sintel-complete/training/invalid/<scene>/frame_XXXX.png     (255 = invalid)
  MPI-Sintel-complete/test/{clean,final}/<scene>/frame_XXXX.png
The manual directory defaults to <data_dir>/downloads/manual/ (or pass
tfds.download.DownloadConfig(manual_dir=...)).
"""

_HINT = "See sintel's MANUAL_DOWNLOAD_INSTRUCTIONS (docs/datasets.md)."
_ROOT = "MPI-Sintel-complete"


@dataclasses.dataclass
class SintelConfig(tfds.core.BuilderConfig):
    """pass_name: "clean" or "final"; num_frames: 2, 3 or 5."""
    pass_name: str = "clean"
    num_frames: int = 2


def _config(pass_name, num_frames):
    name = pass_name if num_frames == 2 else f"{pass_name}_{num_frames}"
    ref = frame_windows.reference_index(num_frames)
    return SintelConfig(name=name, pass_name=pass_name, num_frames=num_frames,
                        description=f"{pass_name} pass, {num_frames}-frame windows, ground truth of "
                        f"window frame {ref} -> {ref + 1}")


class Sintel(tfds.core.GeneratorBasedBuilder):
    """MPI-Sintel windows with dense flow, occlusion and invalid masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [_config(p, n) for n in (2, 3, 5) for p in ("clean", "final")]
    DEFAULT_BUILDER_CONFIG_NAME = "clean"

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=schema.features(self.builder_config.num_frames),
            homepage="http://sintel.is.tue.mpg.de/",
        )

    def _split_generators(self, dl_manager):
        manual = dl_manager.manual_dir
        root = _common.require(manual / _ROOT, manual, _HINT)
        return {"train": self._generate_examples(root / "training", manual, ground_truth=True),
                "test": self._generate_examples(root / "test", manual, ground_truth=False)}

    def _generate_examples(self, split_dir, manual, ground_truth):
        c = self.builder_config
        pass_dir = _common.require(split_dir / c.pass_name, manual, _HINT)
        if ground_truth:
            for kind in ("flow", "occlusions", "invalid"):
                _common.require(split_dir / kind, manual, _HINT)
        scenes = _common.sorted_names(pass_dir, "*")
        if not scenes:
            raise _common.ManualDirError(f"no scene folders in {pass_dir} (manual directory "
                                         f"{manual}). {_HINT}")
        ref = frame_windows.reference_index(c.num_frames)
        for scene in scenes:
            names = _common.sorted_names(pass_dir / scene, "frame_*.png")
            for start in range(len(names) - c.num_frames + 1):
                window = names[start:start + c.num_frames]
                frames, (h, w) = _common.load_frames([pass_dir / scene / n for n in window])
                stem = window[ref][:-len(".png")]
                key = f"{scene}/{stem}"
                example = {schema.ID: key, schema.FRAMES: frames}
                if ground_truth:
                    example.update(self._ground_truth(split_dir, scene, stem, (h, w), manual))
                else:
                    example.update(schema.no_ground_truth(h, w))
                yield key, example

    def _ground_truth(self, split_dir, scene, stem, size, manual):
        flow_path = _common.require(split_dir / "flow" / scene / f"{stem}.flo", manual, _HINT)
        occ_path = _common.require(split_dir / "occlusions" / scene / f"{stem}.png", manual, _HINT)
        inv_path = _common.require(split_dir / "invalid" / scene / f"{stem}.png", manual, _HINT)
        flow = _common.check_size(flow_path, flow_io.read_flo(str(flow_path)), size)
        occluded = _common.check_size(occ_path, flow_io.read_mask(str(occ_path)), size)
        invalid = _common.check_size(inv_path, flow_io.read_mask(str(inv_path)), size)
        valid = ~invalid
        return {
            schema.FLOW: np.where(valid[..., None], flow, 0.0).astype(np.float32),
            schema.VALID: valid[..., None],
            schema.OCCLUSION: occluded[..., None],
            schema.HAS_FLOW: True,
            schema.HAS_OCCLUSION: True,
        }
