"""Resizing flow fields: dense (bilinear, vectors rescaled) and sparse (validity-aware)."""
import tensorflow as tf

from dflow_tf.ops._checks import check_channels, check_compatible, check_rank


def _target_size(size):
    if isinstance(size, (tuple, list)) and len(size) != 2:
        raise ValueError(f"`size` must be (height, width), got {size}")
    size = tf.convert_to_tensor(size, dtype=tf.int32)
    if size.shape.rank != 1 or (size.shape[0] is not None and size.shape[0] != 2):
        raise ValueError(f"`size` must be (height, width), got shape {size.shape}")
    return size


def _axis_scales(flow, size):
    """[2] factors (new_w / old_w, new_h / old_h) that rescale (u, v) to the new resolution."""
    old = tf.cast(tf.shape(flow)[1:3], flow.dtype)
    new = tf.cast(size, flow.dtype)
    ratio = new / old  # (sy, sx)
    return tf.stack([ratio[1], ratio[0]])


def resize_flow(flow, size):
    """Bilinearly resizes a dense flow field and rescales its vectors to the new resolution.

    Uses `tf.image.resize` (half-pixel centres, i.e. align_corners=False); u is multiplied by
    new_width / old_width and v by new_height / old_height.

    Args:
      flow: float [B, H, W, 2] in pixels.
      size: (new_height, new_width), ints or an int32 tensor.

    Returns:
      float [B, new_height, new_width, 2] in pixels of the new resolution.
    """
    flow = tf.convert_to_tensor(flow)
    check_rank("flow", flow, 4)
    check_channels("flow", flow, 2)
    size = _target_size(size)
    resized = tf.cast(tf.image.resize(flow, size, method="bilinear"), flow.dtype)  # resize returns float32
    return resized * _axis_scales(flow, size)


def resize_sparse_flow(flow, valid, size):
    """Resizes sparse ground truth without ever spreading invalid pixels into valid ones.

    Every valid source pixel (x, y) is sent to the target pixel that contains its centre,
    floor((x + 0.5) * new_w / old_w), floor((y + 0.5) * new_h / old_h), with its vector rescaled
    per axis; a target pixel is valid iff at least one valid source pixel lands in it, and its flow
    is the mean of those. Upsampling therefore leaves holes (as sparse data should), and no value
    is ever interpolated from an invalid pixel.

    Args:
      flow: float [B, H, W, 2] in pixels.
      valid: [B, H, W, 1] (bool or float, non-zero = valid).
      size: (new_height, new_width).

    Returns:
      flow: float [B, new_height, new_width, 2]; zero where invalid.
      valid: float [B, new_height, new_width, 1] in {0, 1}.
    """
    flow = tf.convert_to_tensor(flow)
    valid = tf.convert_to_tensor(valid)
    check_rank("flow", flow, 4)
    check_channels("flow", flow, 2)
    check_rank("valid", valid, 4)
    check_channels("valid", valid, 1)
    check_compatible("flow", flow, "valid", valid, axes=(0, 1, 2))
    size = _target_size(size)
    valid = tf.cast(tf.not_equal(tf.cast(valid, flow.dtype), 0.0), flow.dtype)
    shape = tf.shape(flow)
    batch, height, width = shape[0], shape[1], shape[2]
    new_h, new_w = size[0], size[1]

    ys = tf.cast(tf.range(height), flow.dtype)
    xs = tf.cast(tf.range(width), flow.dtype)
    ty = tf.cast(tf.floor((ys + 0.5) * tf.cast(new_h, flow.dtype) / tf.cast(height, flow.dtype)), tf.int32)
    tx = tf.cast(tf.floor((xs + 0.5) * tf.cast(new_w, flow.dtype) / tf.cast(width, flow.dtype)), tf.int32)
    ty = tf.minimum(ty, new_h - 1)
    tx = tf.minimum(tx, new_w - 1)
    target = (tf.range(batch)[:, tf.newaxis, tf.newaxis] * new_h * new_w
              + ty[tf.newaxis, :, tf.newaxis] * new_w + tx[tf.newaxis, tf.newaxis, :])
    target = tf.reshape(target, [-1])
    num = batch * new_h * new_w
    weighted = tf.reshape(flow * valid, [-1, 2])
    counts = tf.math.unsorted_segment_sum(tf.reshape(valid, [-1]), target, num)
    sums = tf.math.unsorted_segment_sum(weighted, target, num)
    mean = tf.math.divide_no_nan(sums, counts[:, tf.newaxis])
    out_shape = tf.stack([batch, new_h, new_w])
    new_flow = tf.reshape(mean, tf.concat([out_shape, [2]], 0)) * _axis_scales(flow, size)
    new_valid = tf.reshape(tf.cast(counts > 0, flow.dtype), tf.concat([out_shape, [1]], 0))
    return new_flow, new_valid
