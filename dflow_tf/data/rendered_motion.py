"""Rendered motion on the fly: FlyingChairs-like training pairs with exact flow, made inside tf.data.

    train_stage.dataset = @RenderedMotion()
    RenderedMotion.texture_dirs = ["/path/to/your/videos"]   # optional: your footage as texture

Every sample is a new scene of `dflow_tf.data.render` (a moving background and several moving
foreground layers, each with its own random affine motion; speeds log-uniform in
[`min_translation`, `max_translation`] px per frame with a uniform direction, the background at
`background_motion` times that), rendered at `frame_size` when the pipeline asks for it: nothing
is written to disk. Textures are crops of the frames of `texture_dirs` (any folders of images or
videos, `dflow_tf.data.textures.TextureLibrary`), skimage's bundled photographs and procedural
patterns. Options: illumination change between the frames, motion blur, Gaussian sensor noise.
Ground truth is exact: flow of the reference pair (`dflow_tf.data.frame_windows`), its occlusion
(pixels whose layer is hidden or out of the frame in the next frame), valid everywhere.

Sample i of split s is a pure function of (seed, s, i) (`render.example_seed`), so a resumed
iterator renders the same samples again, the `validation` split is the same `validation_size`
scenes on every run, and `train` is an endless stream (`repeat` and `shuffle` have nothing to
do). Rendering runs in `num_parallel_calls` threads (numpy releases the GIL in most of it).
"""
import gin
import numpy as np
import tensorflow as tf

from dflow_tf.data import augment as aug, frame_windows, render, schema
from dflow_tf.data.pipeline import prepare_sample

SPLITS = ("train", "validation")


@gin.configurable
class RenderedMotion:
    """A source for `make_dataset` / `train_stage.dataset` that renders its samples (module doc).

    Args:
      frame_size: (height, width) of the rendered frames.
      num_frames: frames rendered per sample (2 for two-frame models, 3 for three-frame ones);
        the pipeline's `num_frames` may ask for fewer (a centred window).
      texture_dirs: folders of images and videos whose frames texture the layers (None: photos
        and patterns only).
      min_layers, max_layers: foreground layers per scene (inclusive).
      min_translation, max_translation: speed range of the log-uniform speeds, px per frame.
      max_rotation, max_zoom: per-frame rotation (rad) and log-scale change ranges.
      background_motion: the background's motion ranges as a fraction of the foreground's.
      max_illumination: per-frame log-gain and offset change (0: constant illumination).
      motion_blur: exposure as a fraction of the frame interval (0: sharp frames).
      noise: standard deviation of Gaussian noise added to each frame, in [0, 1] intensity.
      validation_size: scenes in the `validation` split.
      num_parallel_calls: rendering threads.
    """

    def __init__(self, frame_size=(256, 384), num_frames=2, texture_dirs=None, min_layers=3,
                 max_layers=7, min_translation=0.5, max_translation=64.0, max_rotation=0.05,
                 max_zoom=0.05, background_motion=0.5, max_illumination=0.05, motion_blur=0.0,
                 noise=0.0, validation_size=64, num_parallel_calls=2):
        height, width = (int(s) for s in frame_size)
        if num_frames not in (2, 3, 5):
            raise ValueError(f"RenderedMotion.num_frames must be 2, 3 or 5, got {num_frames!r}")
        if not 0.0 <= noise < 0.5:
            raise ValueError(f"RenderedMotion.noise must be in [0, 0.5), got {noise!r}")
        self.spec = render.SceneSpec(
            height=height, width=width, num_frames=int(num_frames), min_layers=int(min_layers),
            max_layers=int(max_layers), max_translation=float(max_translation),
            min_translation=float(min_translation), translation_distribution="log_uniform",
            max_acceleration=0.0, max_rotation=float(max_rotation), max_zoom=float(max_zoom),
            background_motion=float(background_motion), max_illumination=float(max_illumination),
            motion_blur=float(motion_blur))
        self.texture_dirs = [texture_dirs] if isinstance(texture_dirs, str) else list(texture_dirs or [])
        self.noise = float(noise)
        self.validation_size = int(validation_size)
        self.num_parallel_calls = int(num_parallel_calls)
        self._textures = None

    name = "rendered_motion"

    @property
    def textures(self):
        """The TextureLibrary of `texture_dirs` (read on first use), or None."""
        if self._textures is None and self.texture_dirs:
            from dflow_tf.data.textures import TextureLibrary  # pylint: disable=import-outside-toplevel
            self._textures = TextureLibrary(self.texture_dirs)
        return self._textures

    def render(self, split, index, seed):
        """Sample `index` of `split` as numpy: frames uint8 [N, H, W, 3], flow float32 [H, W, 2],
        occlusion float32 [H, W, 1] (of the reference pair)."""
        rng = np.random.default_rng(render.example_seed(seed, split, index))
        sample = render.render_sample(self.spec, rng, self.textures)
        frames = sample["frames"]
        if self.noise > 0:
            noisy = frames.astype(np.float32) + rng.normal(0.0, 255.0 * self.noise, frames.shape)
            frames = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
        r = frame_windows.reference_index(self.spec.num_frames)
        return frames, sample["flow_fw"][r], sample["occlusion_fw"][r].astype(np.float32)

    def make_dataset(self, split, *, batch_size, seed=0, shuffle=True, shuffle_buffer=64, repeat=True,
                     drop_remainder=True, data_dir=None, manual_dir=None, prepare=True, sparse=None,
                     num_frames=None, crop_size=None, resize_to=None, augmentation=aug.Augmentation()):
        """Batches of rendered samples (the `make_dataset` duck type; data_dir, manual_dir,
        prepare, sparse, shuffle and shuffle_buffer do not apply)."""
        del data_dir, manual_dir, prepare, sparse, shuffle, shuffle_buffer
        if split not in SPLITS:
            raise ValueError(f"RenderedMotion has the splits {SPLITS}, not {split!r}")
        h, w, n = self.spec.height, self.spec.width, self.spec.num_frames
        if split == "train":
            indices = tf.data.Dataset.counter()
        else:
            indices = tf.data.Dataset.range(self.validation_size)
            indices = indices.repeat() if repeat else indices

        def render_one(index):
            frames, flow, occlusion = tf.numpy_function(
                lambda i: self.render(split, int(i), seed), [index], (tf.uint8, tf.float32, tf.float32),
                stateful=False)
            sample = {
                schema.ID: tf.strings.join([split, tf.strings.as_string(index)], "_"),
                schema.FRAMES: tf.ensure_shape(frames, [n, h, w, 3]),
                schema.FLOW: tf.ensure_shape(flow, [h, w, 2]),
                schema.VALID: tf.ones([h, w, 1], tf.float32),
                schema.OCCLUSION: tf.ensure_shape(occlusion, [h, w, 1]),
                schema.HAS_FLOW: tf.constant(True),
                schema.HAS_OCCLUSION: tf.constant(True),
            }
            if num_frames is not None and num_frames != n:
                start = frame_windows.reference_index(n) - frame_windows.reference_index(num_frames)
                sample[schema.FRAMES] = sample[schema.FRAMES][start:start + num_frames]
            return prepare_sample(sample, tf.stack([tf.constant(seed, tf.int64), index]), None,
                                  crop_size=crop_size, resize_to=resize_to, augmentation=augmentation)

        ds = indices.map(render_one, num_parallel_calls=self.num_parallel_calls, deterministic=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        return ds.prefetch(2)

    def describe(self):
        """One line: what the scenes look like."""
        s = self.spec
        return (f"rendered motion {s.height}x{s.width}, {s.num_frames} frames, "
                f"{s.min_layers}-{s.max_layers} layers, speeds {s.min_translation}-{s.max_translation} px, "
                f"textures from {', '.join(self.texture_dirs) or 'photos and patterns'}")
