"""Backward warping: bilinear sampling of an image at flow-displaced positions."""
import tensorflow as tf

from dflow_tf.ops._checks import check_channels, check_compatible, check_rank


def backward_warp(image, flow):
    """Samples `image` at (x + u, y + v) for every pixel (x, y), bilinearly.

    Border rule: the image is treated as zero outside [0, W-1] x [0, H-1]; each of the four
    bilinear neighbours that falls outside contributes zero. `inside` is 1 exactly where the
    sampling position lies in the closed rectangle [0, W-1] x [0, H-1] (there every neighbour with
    non-zero weight is inside, so the sample is an exact interpolation), 0 elsewhere. Losses should
    ignore pixels with inside == 0.

    Sampling positions and bilinear weights are computed in float32 when the image is float16 or
    bfloat16 (mixed precision): in bfloat16 the pixel grid itself would be rounded (8 significant
    bits: positions 64-128 to 0.5 px); the weights are cast to the image's dtype for the sum.

    Args:
      image: float [B, H, W, C], the frame (or features, or flow) to sample from.
      flow: float [B, H, W, 2] in pixels; channel 0 = u (x), channel 1 = v (y).

    Returns:
      warped: [B, H, W, C], `image` sampled at (x + u, y + v).
      inside: float [B, H, W, 1] in {0, 1}, no gradient.
    """
    image = tf.convert_to_tensor(image)
    coords = tf.float32 if image.dtype in (tf.float16, tf.bfloat16) else image.dtype
    flow = tf.cast(tf.convert_to_tensor(flow), coords)
    check_rank("image", image, 4)
    check_rank("flow", flow, 4)
    check_channels("flow", flow, 2)
    check_compatible("image", image, "flow", flow, axes=(0, 1, 2))
    shape = tf.shape(image)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]

    grid_x = tf.cast(tf.range(width), coords)[tf.newaxis, tf.newaxis, :]
    grid_y = tf.cast(tf.range(height), coords)[tf.newaxis, :, tf.newaxis]
    x = grid_x + flow[..., 0]
    y = grid_y + flow[..., 1]
    x0 = tf.floor(x)
    y0 = tf.floor(y)
    wx1 = x - x0
    wy1 = y - y0
    wx0 = 1.0 - wx1
    wy0 = 1.0 - wy1
    x0i = tf.cast(x0, tf.int32)
    y0i = tf.cast(y0, tf.int32)

    flat = tf.reshape(image, [-1, channels])
    batch_offset = (tf.range(batch) * height * width)[:, tf.newaxis, tf.newaxis]

    def corner(xi, yi, weight):
        within = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        index = batch_offset + tf.clip_by_value(yi, 0, height - 1) * width + tf.clip_by_value(xi, 0, width - 1)
        weight = tf.cast(weight * tf.cast(within, coords), image.dtype)
        return tf.gather(flat, index) * weight[..., tf.newaxis]

    warped = (corner(x0i, y0i, wx0 * wy0) + corner(x0i + 1, y0i, wx1 * wy0)
              + corner(x0i, y0i + 1, wx0 * wy1) + corner(x0i + 1, y0i + 1, wx1 * wy1))
    max_x = tf.cast(width - 1, coords)
    max_y = tf.cast(height - 1, coords)
    inside = (x >= 0.0) & (x <= max_x) & (y >= 0.0) & (y <= max_y)
    inside = tf.stop_gradient(tf.cast(inside, image.dtype)[..., tf.newaxis])
    return warped, inside
