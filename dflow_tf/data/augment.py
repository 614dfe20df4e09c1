"""Pure TensorFlow transforms of one decoded sample, applied alike to every frame and to the ground truth.

A *sample* is a dict with the keys of `dflow_tf.data.schema`, decoded for training:
  frames                      float32 [N, H, W, 3] in [0, 1]
  flow                        float32 [H, W, 2]      (u right, v down, pixels)
  valid, occlusion            float32 [H, W, 1]      in {0, 1}
  flow_fw, flow_bw            float32 [N-1, H, W, 2] (optional: synthetic_flow)
  occlusion_fw, occlusion_bw  float32 [N-1, H, W, 1] (optional)
  id, has_flow, has_occlusion (passed through)
Spatial tensors have H, W on axes -3, -2, whatever their rank. Random transforms are stateless:
they take a `seed` int32/int64 [2] (see `tf.random.stateless_uniform`), so the same seed gives the
same result. docs/method.md §2.7: crop, the same flips and channel permutation for all frames;
photometric jitter (§3.6, a choice) is off by default.
"""
import dataclasses

import tensorflow as tf

from dflow_tf import ops
from dflow_tf.data import schema
from dflow_tf.data.seeds import split_seed

IMAGE_KEYS = (schema.FRAMES,)


def _spatial_keys(sample):
    return [k for k in (*IMAGE_KEYS, *schema.FLOW_KEYS, *schema.MASK_KEYS) if k in sample]


def _map_spatial(sample, fn):
    """Applies fn(key, tensor) to every spatial tensor of `sample`; returns a new dict."""
    out = dict(sample)
    for key in _spatial_keys(sample):
        out[key] = fn(key, sample[key])
    return out


def image_size(sample):
    """int32 [2] (H, W) of the sample's frames."""
    return tf.shape(sample[schema.FRAMES])[-3:-1]


# ---------------------------------------------------------------------------- geometry

def crop(sample, offset_y, offset_x, height, width):
    """Crops every spatial tensor to [offset_y : offset_y + height, offset_x : offset_x + width].

    Flow values are unchanged (a crop does not move pixels relative to each other), so flow that
    points outside the crop stays as it is: it simply points outside the new image.
    """
    def fn(_, t):
        rank = t.shape.rank
        begin = tf.stack([0] * (rank - 3) + [offset_y, offset_x, 0])
        size = tf.constant([-1] * (rank - 3) + [height, width, -1])
        out = tf.slice(t, begin, size)
        return tf.ensure_shape(out, t.shape[:-3].concatenate([height, width, t.shape[-1]]))
    return _map_spatial(sample, fn)


def pad_to_at_least(sample, height, width):
    """Zero-pads at the bottom / right up to (height, width) where the sample is smaller.

    Padded pixels have zero frames, zero flow and `valid` = 0 (and occlusion 0).
    """
    size = image_size(sample)
    pad_h = tf.maximum(height - size[0], 0)
    pad_w = tf.maximum(width - size[1], 0)

    def fn(_, t):
        rank = t.shape.rank
        paddings = [[0, 0]] * (rank - 3) + [[0, pad_h], [0, pad_w], [0, 0]]
        return tf.pad(t, paddings)
    return _map_spatial(sample, fn)


def pad_or_crop(sample, size, seed=None):
    """Brings a variable-size sample (KITTI) to exactly `size` = (height, width).

    Where it is smaller it is zero-padded at the bottom / right (`valid` = 0 there); where it is
    larger it is cropped, at a random offset when `seed` is given, else centred.
    """
    height, width = size
    sample = pad_to_at_least(sample, height, width)
    hw = image_size(sample)
    range_y, range_x = hw[0] - height + 1, hw[1] - width + 1
    if seed is None:
        offset_y, offset_x = (range_y - 1) // 2, (range_x - 1) // 2
    else:
        seed_y, seed_x = tf.unstack(split_seed(seed, 2))
        offset_y = tf.random.stateless_uniform([], seed_y, 0, range_y, dtype=tf.int32)
        offset_x = tf.random.stateless_uniform([], seed_x, 0, range_x, dtype=tf.int32)
    return crop(sample, offset_y, offset_x, height, width)


def _flip(sample, axis, flow_sign):
    def fn(key, t):
        flipped = tf.reverse(t, [axis])
        return flipped * tf.constant(flow_sign) if key in schema.FLOW_KEYS else flipped
    return _map_spatial(sample, fn)


def flip_left_right(sample):
    """Mirrors x for every spatial tensor and negates u: frame-1 pixel x -> W-1-x, and its match
    x + u -> W-1-x-u, so the mirrored flow is -u."""
    return _flip(sample, -2, [-1.0, 1.0])


def flip_up_down(sample):
    """Mirrors y for every spatial tensor and negates v."""
    return _flip(sample, -3, [1.0, -1.0])


def _maybe(seed, probability, fn, sample):
    apply = tf.random.stateless_uniform([], seed) < probability
    return tf.cond(apply, lambda: fn(sample), lambda: dict(sample))


def random_flips(sample, seed, horizontal=True, vertical=True):
    """Each enabled flip with probability 1/2, the same for all frames and the ground truth."""
    seed_h, seed_v = tf.unstack(split_seed(seed, 2))
    if horizontal:
        sample = _maybe(seed_h, 0.5, flip_left_right, sample)
    if vertical:
        sample = _maybe(seed_v, 0.5, flip_up_down, sample)
    return sample


def resize(sample, size, sparse):
    """Resizes the sample to `size` = (height, width), flow vectors rescaled per axis.

    Frames: bilinear. Dense ground truth: `ops.resize_flow`, masks nearest. Sparse ground truth
    (`sparse` True, KITTI): `ops.resize_sparse_flow`, which never spreads invalid pixels into
    valid ones; `occlusion` is recomputed as valid & not valid-non-occluded after resizing the
    non-occluded subset the same way.
    """
    size = tf.convert_to_tensor(size, tf.int32)
    out = dict(sample)
    out[schema.FRAMES] = tf.image.resize(sample[schema.FRAMES], size, method="bilinear")
    if sparse:
        flow, valid = sample[schema.FLOW][None], sample[schema.VALID][None]
        noc = valid * (1.0 - sample[schema.OCCLUSION][None])
        new_flow, new_valid = ops.resize_sparse_flow(flow, valid, size)
        _, new_noc = ops.resize_sparse_flow(flow, noc, size)
        out[schema.FLOW], out[schema.VALID] = new_flow[0], new_valid[0]
        out[schema.OCCLUSION] = (new_valid * (1.0 - new_noc))[0]
    for key in schema.FLOW_KEYS:
        if key in sample and not (sparse and key == schema.FLOW):
            t = sample[key]
            batched = t if t.shape.rank == 4 else t[None]
            resized = ops.resize_flow(batched, size)
            out[key] = resized if t.shape.rank == 4 else resized[0]
    for key in schema.MASK_KEYS:
        if key in sample and not (sparse and key in (schema.VALID, schema.OCCLUSION)):
            out[key] = tf.image.resize(sample[key], size, method="nearest")
    return out


# --------------------------------------------------------------------------- appearance

def permute_channels(sample, permutation):
    """Reorders the RGB channels of every frame by `permutation` (int32 [3])."""
    out = dict(sample)
    out[schema.FRAMES] = tf.gather(sample[schema.FRAMES], permutation, axis=-1)
    return out


def random_channel_permutation(sample, seed):
    """One of the 6 channel orders, uniformly, the same for all frames."""
    return permute_channels(sample, tf.argsort(tf.random.stateless_uniform([3], seed)))


@dataclasses.dataclass(frozen=True)
class Photometric:
    """Ranges of the photometric jitter; each parameter is drawn once per sample (all frames alike).

    brightness: added delta in [-b, b]; contrast: factor in [1-c, 1+c] about the window's mean
    colour; saturation: factor in [1-s, 1+s]; hue: shift in [-h, h] of the colour circle (1 = full
    turn); gamma: exponent, log-uniform in [gamma[0], gamma[1]]. Applied in the order gamma,
    brightness, contrast, saturation, hue, then clipped to [0, 1].
    """
    brightness: float = 0.1
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.04
    gamma: tuple = (0.8, 1.25)


def photometric_jitter(sample, seed, params=Photometric()):
    """Jitters the frames' appearance identically for every frame (brightness constancy holds
    between the jittered frames); the ground truth is untouched."""
    seeds = tf.unstack(split_seed(seed, 5))
    u = lambda s, lo, hi: tf.random.stateless_uniform([], s, lo, hi)  # noqa: E731
    log_gamma = u(seeds[0], tf.math.log(params.gamma[0]), tf.math.log(params.gamma[1]))
    frames = tf.clip_by_value(sample[schema.FRAMES], 0.0, 1.0) ** tf.exp(log_gamma)
    frames = frames + u(seeds[1], -params.brightness, params.brightness)
    mean = tf.reduce_mean(frames, axis=[0, 1, 2], keepdims=True)
    frames = (frames - mean) * u(seeds[2], 1.0 - params.contrast, 1.0 + params.contrast) + mean
    frames = tf.clip_by_value(frames, 0.0, 1.0)
    frames = tf.image.adjust_saturation(frames, u(seeds[3], 1.0 - params.saturation, 1.0 + params.saturation))
    frames = tf.image.adjust_hue(frames, u(seeds[4], -params.hue, params.hue))
    out = dict(sample)
    out[schema.FRAMES] = tf.clip_by_value(frames, 0.0, 1.0)
    return out


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Which random transforms the pipeline applies (defaults: docs/method.md §2.7)."""
    random_crop: bool = True          # else the crop is centred
    flip_horizontal: bool = True
    flip_vertical: bool = True
    permute_channels: bool = True
    photometric: "Photometric | None" = None  # e.g. Photometric() to enable the jitter


def augment(sample, seed, config=Augmentation()):
    """Flips, channel permutation and (optionally) photometric jitter, all from `seed` [2]."""
    seed_flip, seed_perm, seed_photo = tf.unstack(split_seed(seed, 3))
    sample = random_flips(sample, seed_flip, config.flip_horizontal, config.flip_vertical)
    if config.permute_channels:
        sample = random_channel_permutation(sample, seed_perm)
    if config.photometric is not None:
        sample = photometric_jitter(sample, seed_photo, config.photometric)
    return sample
