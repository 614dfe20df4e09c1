"""Local correlation (cost volume) between two feature maps, written with core TF ops."""
import tensorflow as tf

from dflow_tf.ops._checks import check_compatible, check_rank

#: Cost-volume search range of the flow models: displacements -4..4, 81 channels (docs/method.md §1.2).
SEARCH_RANGE = 4


def cost_volume(features1, features2, max_displacement=SEARCH_RANGE, normalize=True):
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
    return _correlate(features1, features2, d)


def _shifted_products(padded, d, height, width):
    """Yields (dy, dx, f1 * f2 shifted by (dy - d, dx - d)) over the (2d+1)^2 window, row by row."""
    for dy in range(2 * d + 1):
        band = padded[:, dy:dy + height]  # one row band per vertical displacement
        for dx in range(2 * d + 1):
            yield dy, dx, band[:, :, dx:dx + width]


def _correlate(features1, features2, d):
    """Un-normalised correlation with a hand-written gradient.

    Autodiff of the (2d+1)^2 slices would pad every slice's gradient to full size and add them all
    at once (slow and memory-hungry on CPU); the gradient below accumulates the same sums band by band.
    """

    @tf.custom_gradient
    def correlate(f1, f2):
        height, width = tf.shape(f1)[1], tf.shape(f1)[2]
        padded = tf.pad(f2, [[0, 0], [d, d], [d, d], [0, 0]])
        costs = [tf.reduce_sum(f1 * shifted, axis=-1)
                 for _, _, shifted in _shifted_products(padded, d, height, width)]

        def grad(upstream):
            # d cost_k / d f1 = shifted_k(f2); d cost_k / d f2 = f1 moved back by the displacement.
            grad_f1 = tf.zeros_like(f1)
            grad_padded = None
            band_grad = None
            k = 0
            for dy, dx, shifted in _shifted_products(padded, d, height, width):
                g = upstream[..., k:k + 1]
                k += 1
                grad_f1 += g * shifted
                term = tf.pad(g * f1, [[0, 0], [0, 0], [dx, 2 * d - dx], [0, 0]])
                band_grad = term if dx == 0 else band_grad + term
                if dx == 2 * d:
                    term = tf.pad(band_grad, [[0, 0], [dy, 2 * d - dy], [0, 0], [0, 0]])
                    grad_padded = term if grad_padded is None else grad_padded + term
            return grad_f1, grad_padded[:, d:d + height, d:d + width]

        return tf.stack(costs, axis=-1), grad

    return correlate(features1, features2)
