"""The robust penalty psi and DDFlow's masked normalisation, shared by every loss term."""
import tensorflow as tf

from dflow_tf.ops._checks import check_channels, check_compatible, check_rank

#: psi(x) = (|x| + PENALTY_EPSILON) ** PENALTY_EXPONENT, DDFlow's code (docs/method.md §2.1).
PENALTY_EPSILON = 0.01
PENALTY_EXPONENT = 0.4


def robust_penalty(x, epsilon=PENALTY_EPSILON, q=PENALTY_EXPONENT):
    """Elementwise robust penalty psi(x) = (|x| + epsilon)^q (DDFlow: epsilon 0.01, q 0.4).

    Note psi(0) = epsilon^q (about 0.158), not 0: a perfect match still costs this floor.

    Args:
      x: float tensor of any shape.

    Returns:
      float tensor of the same shape.
    """
    x = tf.convert_to_tensor(x)
    return tf.pow(tf.abs(x) + epsilon, q)


def masked_mean(values, mask):
    """DDFlow's normalisation per image, averaged over the batch.

    For each image b: sum(values_b * mask_b) / (2 * sum(mask_b) + 1e-6); the result is the mean of
    these over the batch. The numerator sums over pixels and channels; `mask` has one channel and
    is broadcast over the C channels of `values`, so sum(mask) counts masked pixels, not
    pixel-channels. The constant 2 is DDFlow's on purpose (docs/method.md §2.1): it keeps loss
    scales comparable to the released models.

    Decision (docs/training.md): DDFlow pools all pixels of the batch into one ratio; we normalise
    per image and then average. With batch 1 the two are identical; in general ours is the mean of
    per-example losses, which is what makes a global batch split over N replicas give exactly the
    single-device gradient (each replica's mean scaled by 1/N). The mask is a weight, not a
    learnable quantity: no gradient flows into it. An image with an all-zero mask contributes 0.

    Args:
      values: float [B, H, W, C], already penalised (e.g. `robust_penalty(diff)`).
      mask: float [B, H, W, 1], weights (usually 0/1).

    Returns:
      float scalar.
    """
    values = tf.convert_to_tensor(values)
    mask = tf.stop_gradient(tf.cast(mask, values.dtype))
    check_rank("values", values, 4)
    check_rank("mask", mask, 4)
    check_channels("mask", mask, 1)
    check_compatible("values", values, "mask", mask, axes=(0, 1, 2))
    per_image = tf.reduce_sum(values * mask, axis=[1, 2, 3]) / (2.0 * tf.reduce_sum(mask, axis=[1, 2, 3]) + 1e-6)
    return tf.reduce_mean(per_image)
