"""synthetic_stereo: rectified stereo pairs of the embedded synthetic scenes, exact disparity.

No download: every scene is rendered by `dflow_tf/data/render.py` (the layered
scenes of synthetic_flow) and seen by a stereo camera with a horizontal baseline
(`stereo_render.py`: every layer at its own depth, disparity increasing towards the camera).
A scene is a stereoscopic video of `time_steps` steps; every step is one example, the pair
(left_t, right_t) with the exact left -> right flow (-disparity, 0) and its occlusion (left pixels
hidden in, or outside, the right view). Ids are "<split>/<scene>_t<step>", so the steps of one
scene stay together in a split.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from dflow_tf.data import render, schema
from tfds_builders.synthetic_stereo import stereo_render


@dataclasses.dataclass
class SyntheticStereoConfig(tfds.core.BuilderConfig):
    """Frame size, scenes per split, time steps per scene and the layers' disparity range."""
    height: int = 192
    width: int = 256
    time_steps: int = 2
    train_scenes: int = 150
    validation_scenes: int = 20
    seed: int = 0
    min_layers: int = 2
    max_layers: int = 4
    max_translation: float = 6.0     # temporal motion, px / time step (render.SceneSpec)
    min_disparity: float = 0.5
    background_max_disparity: float = 4.0
    max_disparity: float = 24.0

    def scene_spec(self):
        return render.SceneSpec(height=self.height, width=self.width, num_frames=self.time_steps,
                                min_layers=self.min_layers, max_layers=self.max_layers,
                                max_translation=self.max_translation)

    def stereo_spec(self):
        return stereo_render.StereoSpec(min_disparity=self.min_disparity,
                                        background_max_disparity=self.background_max_disparity,
                                        max_disparity=self.max_disparity)


class SyntheticStereo(tfds.core.GeneratorBasedBuilder):
    """Rectified stereo pairs (left, right) with exact disparity and occlusion (no download)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        SyntheticStereoConfig(name="default", description="192x256, 150 / 20 scenes of 2 time steps "
                              "(300 train / 40 validation pairs), disparity 0.5-24 px, about 40 s"),
        SyntheticStereoConfig(name="tiny", height=32, width=48, train_scenes=2, validation_scenes=1,
                              max_translation=2.0, min_layers=1, max_layers=2, max_disparity=6.0,
                              description="32x48, 2 / 1 scenes of 2 time steps, for tests"),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"

    def _info(self):
        c = self.builder_config
        return self.dataset_info_from_configs(
            description=__doc__,
            features=schema.features(2, c.height, c.width, compress_flow=False, stereo=True),
            homepage="https://arxiv.org/abs/2004.02138",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        c = self.builder_config
        return {
            "train": self._generate_examples("train", c.train_scenes),
            "validation": self._generate_examples("validation", c.validation_scenes),
        }

    def _generate_examples(self, split, scenes):
        c = self.builder_config
        spec, stereo = c.scene_spec(), c.stereo_spec()
        valid = np.ones((c.height, c.width, 1), bool)
        for index in range(scenes):
            rng = np.random.default_rng(render.example_seed(c.seed, "stereo/" + split, index))
            sample = stereo_render.render_stereo_sample(spec, rng, stereo)
            for t in range(c.time_steps):
                key = f"{split}/{index:06d}_t{t}"
                yield key, {
                    schema.ID: key,
                    schema.FRAMES: [schema.encode_png(sample["left"][t]), schema.encode_png(sample["right"][t])],
                    schema.FLOW: sample["flow"][t],
                    schema.VALID: valid,
                    schema.OCCLUSION: sample["occlusion"][t],
                    schema.HAS_FLOW: True,
                    schema.HAS_OCCLUSION: True,
                    schema.STEREO: True,
                }
