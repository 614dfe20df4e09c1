"""Superpixel noise (docs/method.md §3.4): hallucinated occlusions in the student's target frame.

SLIC superpixels (`skimage.segmentation.slic`, ~200 segments, compactness 10) of the target frame;
a random subset of 8 to 15 of them is replaced by uniform noise in [0, 1]. The noised pixels of
the target frame leave the student's photometric mask (backward direction), and so do the pixels
of the source frame whose teacher correspondence lands in the noise (`noised_correspondences`,
forward direction); where the teacher is confident, both join the distillation mask.

SLIC is numpy code: it runs through `tf.numpy_function` (on the CPU, one call per batch, a loop
over its elements), so these functions work inside a tf.function but not under XLA, and no
gradient flows through the noised frame. Randomness is stateless: the [2] seed is split into one
seed per batch element, from which a numpy Generator is built, so a seed gives the same result
in eager mode, in graph mode and on any device.
"""
import numpy as np
import tensorflow as tf
from skimage.segmentation import slic

from dflow_tf import ops
from dflow_tf.data.seeds import split_seed
from dflow_tf.ops._checks import check_channels, check_compatible, check_rank

#: SLIC parameters and the number of noised superpixels (min, max), docs/method.md §3.4 [choice].
SLIC_SEGMENTS = 200
SLIC_COMPACTNESS = 10.0
NUM_NOISED = (8, 15)


def _noise_numpy(images, seeds, num_segments, compactness, num_noised):
    """numpy body of `superpixel_noise` for the target frames [B, H, W, 3] and seeds [B, 2]."""
    noised = np.array(images, dtype=np.float32, copy=True)
    mask = np.zeros(images.shape[:3] + (1,), np.float32)
    for b, (image, seed) in enumerate(zip(images, seeds)):
        rng = np.random.default_rng(np.asarray(seed, np.int64).view(np.uint64))
        labels = slic(np.clip(image, 0.0, 1.0), n_segments=num_segments, compactness=compactness,
                      start_label=0, channel_axis=-1)
        segments = np.unique(labels)
        count = min(int(rng.integers(num_noised[0], num_noised[1], endpoint=True)), segments.size)
        chosen = np.isin(labels, rng.choice(segments, size=count, replace=False))
        noised[b][chosen] = rng.random((int(chosen.sum()), image.shape[-1]), dtype=np.float32)
        mask[b, chosen, 0] = 1.0
    return noised, mask


def superpixel_noise(frames, target_index, seed, num_segments=SLIC_SEGMENTS, compactness=SLIC_COMPACTNESS,
                     num_noised=NUM_NOISED):
    """Replaces random SLIC superpixels of frame `target_index` of each window by uniform noise.

    Per batch element: SLIC (`skimage.segmentation.slic(image, n_segments=num_segments,
    compactness=compactness, start_label=0, channel_axis=-1)`) of the target frame, then
    k ~ uniform{num_noised[0], ..., num_noised[1]} distinct superpixels (all of them if SLIC made
    fewer) get i.i.d. uniform [0, 1) values in every channel. Other frames are unchanged.

    Args:
      frames: float32 [B, N, H, W, 3] in [0, 1].
      target_index: int (or int32 scalar tensor) in [0, N), the frame to noise (the student's
        frame a + 1).
      seed: int32/int64 [2] stateless seed.
      num_segments, compactness: SLIC parameters.
      num_noised: (min, max) number of noised superpixels, inclusive.

    Returns:
      frames: float32 [B, N, H, W, 3], frame `target_index` noised.
      noise_mask: float32 [B, H, W, 1], 1 on the noised pixels of frame `target_index`.
    """
    frames = tf.convert_to_tensor(frames, tf.float32)
    check_rank("frames", frames, 5)
    check_channels("frames", frames, 3)
    batch_size, num_frames = tf.shape(frames)[0], tf.shape(frames)[1]
    target = tf.gather(frames, target_index, axis=1)
    noised, mask = tf.numpy_function(
        lambda images, seeds: _noise_numpy(images, seeds, int(num_segments), float(compactness),
                                           (int(num_noised[0]), int(num_noised[1]))),
        [target, split_seed(seed, batch_size)], [tf.float32, tf.float32], stateful=False)
    noised = tf.ensure_shape(noised, target.shape)
    mask = tf.ensure_shape(mask, target.shape[:-1].concatenate([1]))
    select = tf.reshape(tf.one_hot(target_index, num_frames, dtype=tf.float32), [1, -1, 1, 1, 1])
    frames = frames * (1.0 - select) + noised[:, tf.newaxis] * select
    return frames, mask


def noised_correspondences(noise_mask, flow_to_target):
    """Pixels of the source frame whose correspondence lands in the noise of the target frame.

    A source pixel p is marked when the bilinear sample of `noise_mask` at p + w(p) is > 0, i.e.
    when any of its (non-zero-weight) bilinear neighbours is noised; targets outside the frame are
    not marked (the student's forward-backward check treats them as occluded anyway).

    Args:
      noise_mask: float [B, H, W, 1], 1 on the noised pixels of the target frame.
      flow_to_target: float [B, H, W, 2], source -> target flow (e.g. the teacher's forward flow).

    Returns:
      float32 [B, H, W, 1] in {0, 1}, no gradient.
    """
    noise_mask = tf.convert_to_tensor(noise_mask, tf.float32)
    flow_to_target = tf.convert_to_tensor(flow_to_target, tf.float32)
    check_rank("noise_mask", noise_mask, 4)
    check_channels("noise_mask", noise_mask, 1)
    check_compatible("noise_mask", noise_mask, "flow_to_target", flow_to_target, axes=(0, 1, 2))
    warped, _ = ops.backward_warp(noise_mask, flow_to_target)
    return tf.stop_gradient(tf.cast(warped > 0.0, tf.float32))
