"""Bilinear sampling of an image at arbitrary pixel positions (a gather-based sampler)."""
import tensorflow as tf

from dflow_tf.ops._checks import check_channels, check_compatible, check_rank

# (dx, dy) of the four bilinear neighbours of a position, relative to its floor.
_NEIGHBOURS = ((0, 0), (1, 0), (0, 1), (1, 1))


def bilinear_sample(image, positions):
    """Samples `image[n]` bilinearly at every position of `positions[n]`.

    Border rule (that of `backward_warp`): the image is zero outside [0, W-1] x [0, H-1]; each of
    the four bilinear neighbours that falls outside contributes zero. Unlike `backward_warp`, the
    positions are absolute and need not form an image of the same size as `image`: any number of
    them, in any layout, per batch element.

    Positions and weights are computed in float32 when the image is float16 or bfloat16.

    Args:
      image: float [N, H, W, C].
      positions: float [N, ..., 2], pixel coordinates (x, y) in `image[n]` (pixel centres at
        integers; channel 0 = x to the right, channel 1 = y downwards).

    Returns:
      [N, ..., C] in the dtype of `image`: the samples, laid out as `positions`.
    """
    image = tf.convert_to_tensor(image)
    coords = tf.float32 if image.dtype in (tf.float16, tf.bfloat16) else image.dtype
    positions = tf.cast(tf.convert_to_tensor(positions), coords)
    check_rank("image", image, 4)
    if positions.shape.rank is None or positions.shape.rank < 2:
        raise ValueError(f"`positions` must have rank >= 2 ([N, ..., 2]), got shape {positions.shape}")
    check_channels("positions", positions, 2)
    check_compatible("image", image, "positions", positions, axes=(0,))
    image_shape, layout = tf.shape(image), tf.shape(positions)[:-1]
    batch, height, width, channels = image_shape[0], image_shape[1], image_shape[2], image_shape[3]

    points = tf.reshape(positions, tf.stack([batch, -1, 1, 2]))            # [N, P, 1, 2]
    floor = tf.floor(points)
    fraction = points - floor
    offsets = tf.constant(_NEIGHBOURS, coords)                           # [4, 2]
    neighbour = tf.cast(floor + offsets, tf.int32)                       # [N, P, 4, 2]
    # Weight of a neighbour: prod over x, y of (fraction if its offset is 1 else 1 - fraction).
    weights = tf.reduce_prod(tf.where(offsets > 0, fraction, 1.0 - fraction), axis=-1)  # [N, P, 4]
    x, y = neighbour[..., 0], neighbour[..., 1]
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    weights = tf.cast(weights * tf.cast(inside, coords), image.dtype)
    rows = tf.clip_by_value(y, 0, height - 1) + (tf.range(batch) * height)[:, tf.newaxis, tf.newaxis]
    index = rows * width + tf.clip_by_value(x, 0, width - 1)            # [N, P, 4] into [N*H*W]
    values = tf.gather(tf.reshape(image, tf.stack([-1, channels])), index)  # [N, P, 4, C]
    samples = tf.reduce_sum(values * weights[..., tf.newaxis], axis=2)  # [N, P, C]
    samples = tf.reshape(samples, tf.concat([layout, [channels]], axis=0))
    samples.set_shape(positions.shape[:-1].concatenate(image.shape[-1:]))
    return samples
