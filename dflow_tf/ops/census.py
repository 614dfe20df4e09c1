"""Census transform and soft Hamming distance (UnFlow / DDFlow form)."""
import numpy as np
import tensorflow as tf

from dflow_tf.ops._checks import check_compatible, check_rank

#: Census neighbourhood size of DDFlow's census loss (docs/method.md §2.3).
CENSUS_PATCH_SIZE = 7


def census_transform(image, patch_size=CENSUS_PATCH_SIZE):
    """Soft census transform of an image.

    The image is converted to grey (if it has 3 channels) and scaled by 255; for each of the
    patch_size^2 neighbours p of a centre c (zero outside the image), t = (p - c) / sqrt(0.81 + (p - c)^2).

    Args:
      image: float [B, H, W, 3] RGB in [0, 1], or [B, H, W, 1] grey in [0, 1].
      patch_size: odd neighbourhood size (7 in DDFlow).

    Returns:
      float [B, H, W, patch_size^2]; channel k = row * patch_size + col of the neighbour.
    """
    image = tf.convert_to_tensor(image)
    check_rank("image", image, 4)
    if image.shape[-1] not in (1, 3):
        raise ValueError(f"`image` must have 1 or 3 channels, got shape {image.shape}")
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"`patch_size` must be a positive odd number, got {patch_size}")
    grey = tf.image.rgb_to_grayscale(image) if image.shape[-1] == 3 else image
    intensity = grey * 255.0
    # An identity kernel gathers each neighbour into its own output channel.
    kernel = np.eye(patch_size * patch_size, dtype=np.float32).reshape(patch_size, patch_size, 1, -1)
    neighbours = tf.nn.conv2d(intensity, tf.constant(kernel, dtype=image.dtype), strides=1, padding="SAME")
    diff = neighbours - intensity
    return diff * tf.math.rsqrt(0.81 + tf.square(diff))


def soft_hamming_distance(census1, census2):
    """Soft Hamming distance between two census transforms: sum_k d_k^2 / (0.1 + d_k^2).

    Args:
      census1, census2: float [B, H, W, K] from `census_transform`.

    Returns:
      float [B, H, W, 1].
    """
    census1 = tf.convert_to_tensor(census1)
    census2 = tf.convert_to_tensor(census2, dtype=census1.dtype)
    check_rank("census1", census1, 4)
    check_rank("census2", census2, 4)
    check_compatible("census1", census1, "census2", census2, axes=(0, 1, 2, 3))
    squared = tf.square(census1 - census2)
    return tf.reduce_sum(squared / (0.1 + squared), axis=-1, keepdims=True)
