"""Local correlation (cost volume) between two feature maps, written with core TF ops."""
import tensorflow as tf

from dflow_tf.ops._checks import check_compatible, check_rank


def cost_volume(features1, features2, max_displacement=4, normalize=True):
    """Correlates each pixel of `features1` with a window of `features2` around the same position.

    Args:
      features1: float [B, H, W, C] features of frame 1.
      features2: float [B, H, W, C] features of frame 2 (usually already warped towards frame 1).
      max_displacement: d; displacements -d..d in x and y, (2d + 1)^2 output channels.
      normalize: L2-normalise both inputs along channels first (the DDFlow / SelFlow cost volume,
        which is then a cosine similarity). The sum over channels is not divided by C.

    Returns:
      float [B, H, W, (2d + 1)^2]. Channel k = (dy + d) * (2d + 1) + (dx + d) holds
      sum_c f1[b, y, x, c] * f2[b, y + dy, x + dx, c]; positions outside frame 2 contribute zero.
    """
    features1 = tf.convert_to_tensor(features1)
    features2 = tf.convert_to_tensor(features2, dtype=features1.dtype)
    check_rank("features1", features1, 4)
    check_rank("features2", features2, 4)
    check_compatible("features1", features1, "features2", features2, axes=(0, 1, 2, 3))
    if int(max_displacement) < 0:
        raise ValueError(f"`max_displacement` must be >= 0, got {max_displacement}")
    d = int(max_displacement)
    if normalize:
        features1 = tf.math.l2_normalize(features1, axis=-1, epsilon=1e-12)
        features2 = tf.math.l2_normalize(features2, axis=-1, epsilon=1e-12)
    height, width = tf.shape(features1)[1], tf.shape(features1)[2]
    padded = tf.pad(features2, [[0, 0], [d, d], [d, d], [0, 0]])
    costs = []
    for dy in range(2 * d + 1):
        # One row band per vertical displacement; horizontal shifts slice the band.
        band = padded[:, dy:dy + height]
        for dx in range(2 * d + 1):
            shifted = band[:, :, dx:dx + width]
            costs.append(tf.reduce_sum(features1 * shifted, axis=-1))
    return tf.stack(costs, axis=-1)
