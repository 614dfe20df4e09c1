"""RAFT's convex upsampling: each fine pixel is a learned convex combination of the 3 x 3 coarse
flow vectors around its coarse pixel."""
import tensorflow as tf

from dflow_tf.models.raft_layers import at_least_float32, shape_of
from dflow_tf.ops._checks import check_channels, check_compatible, check_rank

#: Coarse neighbours of a fine pixel: (dy, dx) in -1..1, row-major (k = (dy + 1) * 3 + (dx + 1)).
NEIGHBOURS = 9


def convex_upsample(flow, mask, factor=8):
    """Upsamples `flow` by `factor` with the convex weights of `mask`.

    Fine pixel (factor * i + a, factor * j + b) (a, b in 0..factor-1) of coarse pixel (i, j) is
    sum_k w_k * factor * flow[i + dy_k, j + dx_k], w = softmax over k of its 9 mask logits,
    neighbour k = (dy_k + 1) * 3 + (dx_k + 1); the flow is zero outside the coarse image.

    Args:
      flow: float [B, h, w, 2] in coarse pixels (channel 0 = u).
      mask: float [B, h, w, 9 * factor^2] logits; channel k * factor^2 + a * factor + b belongs to
        neighbour k and fine offset (a, b) (RAFT's layout).
      factor: the upsampling factor.

    Returns:
      [B, factor * h, factor * w, 2] in fine pixels, in the flow's dtype (float32 for float16 /
      bfloat16 flow); the mask is cast to it.
    """
    flow = at_least_float32(flow)
    mask = tf.cast(tf.convert_to_tensor(mask), flow.dtype)
    check_rank("flow", flow, 4)
    check_rank("mask", mask, 4)
    check_channels("flow", flow, 2)
    check_channels("mask", mask, NEIGHBOURS * factor * factor)
    check_compatible("flow", flow, "mask", mask, axes=(0, 1, 2))
    batch, height, width, _ = shape_of(flow)
    weights = tf.nn.softmax(tf.reshape(mask, [batch, height, width, NEIGHBOURS, factor * factor]), axis=3)
    padded = tf.pad(factor * flow, [[0, 0], [1, 1], [1, 1], [0, 0]])
    neighbours = tf.stack([padded[:, dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3)],
                          axis=3)                                              # [B, h, w, 9, 2]
    fine = tf.reduce_sum(weights[..., tf.newaxis] * neighbours[:, :, :, :, tf.newaxis], axis=3)  # [B, h, w, f*f, 2]
    fine = tf.transpose(tf.reshape(fine, [batch, height, width, factor, factor, 2]),
                        [0, 1, 3, 2, 4, 5])                                    # [B, h, f, w, f, 2]
    return tf.reshape(fine, [batch, height * factor, width * factor, 2])
