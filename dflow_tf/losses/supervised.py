"""Supervised loss against (possibly sparse) ground truth, on the full-resolution flow."""
import tensorflow as tf

from dflow_tf.losses.robust import masked_mean, robust_penalty
from dflow_tf.ops._checks import check_channels, check_compatible, check_rank

KINDS = ("robust", "epe")


def supervised_loss(flow, gt, valid, kind="robust"):
    """Loss of a predicted flow against ground truth on the valid pixels (docs/method.md §4.1).

    kind="robust": masked_mean(psi(flow - gt), valid), i.e. sum of psi over valid pixels and both
      components / (2 * number of valid pixels + 1e-6) per image, averaged over the batch.
    kind="epe": per image, sum over valid pixels of |flow - gt|_2 / (number of valid pixels + 1e-6),
      averaged over the batch (the per-image mean EPE; see `masked_mean` for why per image).

    Invalid pixels are excluded by selection, not multiplication, so any garbage ground truth
    there (NaN, inf, 1e9 placeholders) changes neither the value nor the gradient. The EPE has a
    finite gradient where flow == gt.

    Args:
      flow: float [B, H, W, 2], predicted flow at ground-truth resolution.
      gt: float [B, H, W, 2], ground truth.
      valid: [B, H, W, 1] bool or float, non-zero = ground truth known (ones for dense data).
      kind: "robust" or "epe".

    Returns:
      float scalar (0 when no pixel is valid).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown supervised loss kind {kind!r}; expected one of {KINDS}")
    flow = tf.convert_to_tensor(flow)
    gt = tf.cast(gt, flow.dtype)
    valid = tf.convert_to_tensor(valid)
    check_rank("flow", flow, 4)
    check_channels("flow", flow, 2)
    check_rank("gt", gt, 4)
    check_compatible("flow", flow, "gt", gt, axes=(0, 1, 2, 3))
    check_rank("valid", valid, 4)
    check_channels("valid", valid, 1)
    check_compatible("flow", flow, "valid", valid, axes=(0, 1, 2))
    selected = tf.not_equal(tf.cast(valid, flow.dtype), 0.0)
    mask = tf.cast(selected, flow.dtype)
    diff = tf.where(selected, flow - gt, tf.zeros_like(flow))
    if kind == "robust":
        return masked_mean(robust_penalty(diff), mask)
    squared = tf.reduce_sum(tf.square(diff), axis=-1, keepdims=True)
    positive = squared > 0.0
    norm = tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))), tf.zeros_like(squared))
    per_image = tf.reduce_sum(norm * mask, axis=[1, 2, 3]) / (tf.reduce_sum(mask, axis=[1, 2, 3]) + 1e-6)
    return tf.reduce_mean(per_image)
