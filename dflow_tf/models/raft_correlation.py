"""RAFT's correlation: the all-pairs volume, its pooled pyramid and the windowed lookup.

The volume correlates every pixel of frame 1 with every pixel of frame 2 (one matrix product of
the two feature maps); the pyramid average-pools its frame-2 dimensions; each update iteration
reads a (2r+1) x (2r+1) window of every pyramid level around the current flow target, sampled
bilinearly (`dflow_tf.ops.sampling.bilinear_sample`, zero outside).

The on-demand path (`feature_pyramid`, `lookup_on_demand`; the models' `correlation="on_demand"`)
computes the same windows from frame 2's average-pooled features at every lookup, without the
volume.
"""
import tensorflow as tf

from dflow_tf.models.raft_layers import at_least_float32, shape_of
from dflow_tf.ops._checks import check_channels, check_compatible, check_rank
from dflow_tf.ops.sampling import bilinear_sample

#: Pyramid levels of both RAFT sizes.
CORRELATION_LEVELS = 4


def all_pairs_correlation(features1, features2):
    """The all-pairs correlation volume of two feature maps.

    Args:
      features1, features2: float [B, H, W, C] features of frame 1 and frame 2.

    Returns:
      [B, H, W, H, W]: volume[b, y1, x1, y2, x2] = <f1[b, y1, x1], f2[b, y2, x2]> / sqrt(C), in
      float32 for float16 / bfloat16 features (the reference's `fmap.float()`), else in their dtype.
    """
    features1 = at_least_float32(features1)
    features2 = tf.cast(tf.convert_to_tensor(features2), features1.dtype)
    check_rank("features1", features1, 4)
    check_rank("features2", features2, 4)
    check_compatible("features1", features1, "features2", features2, axes=(0, 1, 2, 3))
    batch, height, width, channels = shape_of(features1)
    flat = [tf.reshape(f, [batch, height * width, channels]) for f in (features1, features2)]
    volume = tf.matmul(*flat, transpose_b=True) / tf.sqrt(tf.cast(channels, features1.dtype))
    return tf.reshape(volume, [batch, height, width, height, width])


def correlation_pyramid(volume, num_levels=CORRELATION_LEVELS):
    """The volume as one frame-2 map per frame-1 pixel, average-pooled into `num_levels` levels.

    Args:
      volume: [B, H, W, H, W] (`all_pairs_correlation`).
      num_levels: number of levels (>= 1).

    Returns:
      list of `num_levels` tensors [B*H*W, H_l, W_l, 1], row b*H*W + y1*W + x1 holding the map of
      frame-1 pixel (y1, x1) of batch element b. Level 0 is the volume; level l averages 2 x 2
      cells of level l-1 (stride 2). An odd size keeps its last row / column as a cell of its own
      (H_l = ceil(H_{l-1} / 2), the mean of the cells it covers), so no level is empty.
    """
    volume = tf.convert_to_tensor(volume)
    check_rank("volume", volume, 5)
    if int(num_levels) < 1:
        raise ValueError(f"`num_levels` must be >= 1, got {num_levels}")
    _, _, _, height, width = shape_of(volume)
    level = tf.reshape(volume, [-1, height, width, 1])
    pyramid = [level]
    for _ in range(int(num_levels) - 1):
        level = tf.nn.avg_pool2d(level, ksize=2, strides=2, padding="SAME")
        pyramid.append(level)
    return pyramid


def window_offsets(radius):
    """float32 [2r+1, 2r+1, 2]: entry (i, j) is the offset (dx, dy) = (i - r, j - r), x-major."""
    steps = tf.range(-radius, radius + 1, dtype=tf.float32)
    dx, dy = tf.meshgrid(steps, steps, indexing="ij")
    return tf.stack([dx, dy], axis=-1)


def lookup_correlation(pyramid, targets, radius):
    """The correlation around each pixel's flow target, from every pyramid level.

    Args:
      pyramid: `correlation_pyramid` of a frame-1 size H x W.
      targets: float [B, H, W, 2], position (x, y) in frame 2 (level-0 pixels) of every frame-1
        pixel: its own position plus its flow; cast to the pyramid's dtype.
      radius: window radius r; (2r+1)^2 channels per level.

    Returns:
      [B, H, W, L * (2r+1)^2] in the pyramid's dtype. Channel l * (2r+1)^2 + (dx + r) * (2r+1) + (dy + r) is the
      level-l map of the pixel sampled bilinearly at targets / 2^l + (dx, dy), dx, dy in -r..r
      (zero outside the map). The offset order is x-major, RAFT's (the transpose of
      `dflow_tf.ops.cost_volume`'s), so that the reference's motion-encoder weights apply as
      they are.
    """
    targets = tf.cast(tf.convert_to_tensor(targets), pyramid[0].dtype)
    check_rank("targets", targets, 4)
    check_channels("targets", targets, 2)
    batch, height, width, _ = shape_of(targets)
    centres = tf.reshape(targets, [-1, 1, 1, 2])                       # [B*H*W, 1, 1, 2]
    radius = int(radius)
    offsets = tf.cast(window_offsets(radius), targets.dtype)[tf.newaxis]  # [1, 2r+1, 2r+1, 2]
    windows = []
    for index, level in enumerate(pyramid):
        samples = bilinear_sample(level, centres / 2.0 ** index + offsets)  # [B*H*W, 2r+1, 2r+1, 1]
        windows.append(tf.reshape(samples, [batch, height, width, (2 * radius + 1) ** 2]))
    return tf.concat(windows, axis=-1)


def feature_pyramid(features2, num_levels=CORRELATION_LEVELS):
    """Frame 2's features average-pooled into `num_levels` levels, for `lookup_on_demand`.

    Args:
      features2: float [B, H, W, C] features of frame 2 (float32 for float16 / bfloat16, as in
        `all_pairs_correlation`).
      num_levels: number of levels (>= 1).

    Returns:
      list of `num_levels` tensors [B, H_l, W_l, C]: level 0 is `features2`, level l averages 2 x 2
      cells of level l-1 with the pooling of `correlation_pyramid` (stride 2, an odd last row /
      column a cell of its own). Average pooling is linear, so <f1, level l of f2> / sqrt(C) is
      level l of the all-pairs pyramid.
    """
    level = at_least_float32(features2)
    check_rank("features2", level, 4)
    if int(num_levels) < 1:
        raise ValueError(f"`num_levels` must be >= 1, got {num_levels}")
    pyramid = [level]
    for _ in range(int(num_levels) - 1):
        level = tf.nn.avg_pool2d(level, ksize=2, strides=2, padding="SAME")
        pyramid.append(level)
    return pyramid


def lookup_on_demand(features1, pyramid2, targets, radius):
    """`lookup_correlation` without the all-pairs volume: the windows computed from the features.

    For every frame-1 pixel, level l and offset (dx, dy) the value is <f1, s> / sqrt(C), s the
    level-l features of frame 2 sampled bilinearly (zero outside) at targets / 2^l + (dx, dy):
    equal to `lookup_correlation(correlation_pyramid(all_pairs_correlation(f1, f2)), ...)`, since
    pooling and bilinear sampling are linear in the frame-2 map. The offsets are integers, so all
    windows of a pixel share the bilinear weights of the fraction of targets / 2^l: the
    (2r+2) x (2r+2) dot products with the features at the integer cells floor(targets / 2^l) + (i,
    j), i, j in -r..r+1 (zero outside the map), are combined with those weights into the
    (2r+1)^2 values. Memory: one column of 2r+2 cells, [B, H, W, 2r+2, C], is gathered at a time,
    never the [N, N] volume.

    Args:
      features1: float [B, H, W, C] features of frame 1.
      pyramid2: `feature_pyramid` of frame 2's features [B, H, W, C].
      targets: float [B, H, W, 2], position (x, y) in frame 2 (level-0 pixels) of every frame-1
        pixel.
      radius: window radius r; (2r+1)^2 channels per level.

    Returns:
      [B, H, W, L * (2r+1)^2] in float32 for float16 / bfloat16 features (else their dtype), the
      channel order of `lookup_correlation` (level-major, then x-major offsets).
    """
    features1 = at_least_float32(features1)
    dtype = features1.dtype
    check_rank("features1", features1, 4)
    targets = tf.cast(tf.convert_to_tensor(targets), dtype)
    check_rank("targets", targets, 4)
    check_channels("targets", targets, 2)
    check_compatible("features1", features1, "targets", targets, axes=(0, 1, 2))
    batch, height, width, channels = shape_of(features1)
    radius = int(radius)
    size = 2 * radius + 1
    scale = 1.0 / tf.sqrt(tf.cast(channels, dtype))
    query = features1[:, :, :, tf.newaxis, :]                              # [B, H, W, 1, C]
    cells = tf.range(-radius, radius + 2)                                  # i, j in -r..r+1
    windows = []
    for index, level in enumerate(pyramid2):
        level = tf.cast(level, dtype)
        check_compatible("features1", features1, f"pyramid2[{index}]", level, axes=(0, 3))
        level_height, level_width = shape_of(level)[1:3]
        centres = targets / 2.0 ** index
        floor = tf.floor(centres)
        fx, fy = tf.unstack((centres - floor)[..., tf.newaxis], axis=-2)   # [B, H, W, 1] each
        base = tf.cast(floor, tf.int32)
        y = base[..., 1:2] + cells                                         # [B, H, W, 2r+2]
        y_inside = (y >= 0) & (y < level_height)
        rows = (tf.clip_by_value(y, 0, level_height - 1)
                + (tf.range(batch) * level_height)[:, tf.newaxis, tf.newaxis, tf.newaxis]) * level_width
        flat = tf.reshape(level, [-1, channels])
        dots = []                                                          # per i: [B, H, W, 2r+2] over j
        for i in range(-radius, radius + 2):
            x = base[..., 0:1] + i                                         # [B, H, W, 1]
            inside = y_inside & (x >= 0) & (x < level_width)
            column = tf.gather(flat, rows + tf.clip_by_value(x, 0, level_width - 1))  # [B, H, W, 2r+2, C]
            dot = tf.reduce_sum(query * column, axis=-1) * scale
            dots.append(tf.where(inside, dot, tf.zeros_like(dot)))
        # value(dx, dy) = sum over the 4 corners of weight * dot at cell (dx + a, dy + b), a, b in {0, 1}
        for dx in range(size):
            left, right = dots[dx], dots[dx + 1]
            top = (1.0 - fx) * left[..., :size] + fx * right[..., :size]  # cells (dx, dy) and (dx + 1, dy)
            bottom = (1.0 - fx) * left[..., 1:] + fx * right[..., 1:]     # cells (dx, dy + 1), (dx + 1, dy + 1)
            windows.append((1.0 - fy) * top + fy * bottom)                 # [B, H, W, 2r+1] over dy
    return tf.concat(windows, axis=-1)
