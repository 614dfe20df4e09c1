"""Supervised losses against (possibly sparse) ground truth: on the full-resolution flow
(`supervised_loss`, fine-tuning) and on every pyramid level (`multiscale_loss`, training from
scratch)."""
import tensorflow as tf

from dflow_tf.losses.robust import masked_mean, robust_penalty
from dflow_tf.ops._checks import check_channels, check_compatible, check_rank
from dflow_tf.ops.resize import resize_sparse_flow

KINDS = ("robust", "epe", "l1")
#: PWC-Net's level weights (Sun et al., CVPR 2018, §4), level 6 (1/64 resolution) to level 2 (1/4).
PWC_LEVEL_WEIGHTS = {6: 0.32, 5: 0.08, 4: 0.02, 3: 0.01, 2: 0.005}
#: PWC-Net's flow scale: the loss compares flows divided by this (in full-resolution pixels).
PWC_FLOW_SCALE = 20.0


def supervised_loss(flow, gt, valid, kind="robust"):
    """Loss of a predicted flow against ground truth on the valid pixels (docs/method.md §4.1).

    kind="robust": masked_mean(psi(flow - gt), valid), i.e. sum of psi over valid pixels and both
      components / (2 * number of valid pixels + 1e-6) per image, averaged over the batch.
    kind="epe": per image, sum over valid pixels of |flow - gt|_2 / (number of valid pixels + 1e-6),
      averaged over the batch (the per-image mean EPE; see `masked_mean` for why per image).
    kind="l1": masked_mean(|flow - gt|, valid), the mean absolute error per valid pixel and
      component (RAFT's per-iteration loss; on dense ground truth equal to its mean over all
      pixels and components).

    Invalid pixels are excluded by selection, not multiplication, so any garbage ground truth
    there (NaN, inf, 1e9 placeholders) changes neither the value nor the gradient. The EPE has a
    finite gradient where flow == gt.

    Args:
      flow: float [B, H, W, 2], predicted flow at ground-truth resolution.
      gt: float [B, H, W, 2], ground truth.
      valid: [B, H, W, 1] bool or float, non-zero = ground truth known (ones for dense data).
      kind: "robust", "epe" or "l1".

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
    if kind == "l1":
        return masked_mean(tf.abs(diff), mask)
    norm = endpoint_error(diff)
    per_image = tf.reduce_sum(norm * mask, axis=[1, 2, 3]) / (tf.reduce_sum(mask, axis=[1, 2, 3]) + 1e-6)
    return tf.reduce_mean(per_image)


def endpoint_error(diff):
    """|diff|_2 over the last axis, keepdims ([..., 2] -> [..., 1]), with a finite (zero)
    gradient where diff == 0."""
    squared = tf.reduce_sum(tf.square(diff), axis=-1, keepdims=True)
    positive = squared > 0.0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))), tf.zeros_like(squared))


def multiscale_loss(level_flows, gt, valid, weights=None, flow_scale=PWC_FLOW_SCALE):
    """PWC-Net's multi-scale training loss: sum over levels l of
    weights[l] * sum over valid pixels of |f_l - g_l|_2, per image, averaged over the batch.

    f_l is the predicted flow of level l, g_l the ground truth resized to its resolution by
    `resize_sparse_flow` (the mean of the valid full-resolution vectors in each level pixel; a
    level pixel without any is left out), both converted to full-resolution pixels and divided
    by `flow_scale`. The sum over pixels (not the mean) weighs the levels as PWC-Net does: with
    its weights every level of a 2^-l resolution contributes in proportion to weights[l] * 4^-l.

    Args:
      level_flows: {level: float [B, H / 2^level, W / 2^level, 2]} predicted flows in pixels of
        their own resolution (e.g. a model's "flow_level6" .. "flow_level3" and its refined
        level-2 flow).
      gt: float [B, H, W, 2] ground truth in full-resolution pixels.
      valid: [B, H, W, 1] bool or float, non-zero = ground truth known.
      weights: {level: weight}; None = PWC_LEVEL_WEIGHTS for the levels given.
      flow_scale: divisor of the flows (PWC-Net: 20).

    Returns:
      float scalar.
    """
    gt = tf.convert_to_tensor(gt, tf.float32)
    check_rank("gt", gt, 4)
    check_channels("gt", gt, 2)
    full_size = tf.shape(gt)[1:3]
    total = tf.constant(0.0, tf.float32)
    for level, flow in sorted(level_flows.items(), reverse=True):
        weight = PWC_LEVEL_WEIGHTS[level] if weights is None else weights[level]
        flow = tf.cast(flow, tf.float32)
        check_rank(f"flow of level {level}", flow, 4)
        size = tf.shape(flow)[1:3]
        gt_level, valid_level = resize_sparse_flow(gt, valid, size)
        # level pixels -> full-resolution pixels, per axis (u by the width ratio, v by the height's)
        ratio = tf.cast(full_size, tf.float32) / tf.cast(size, tf.float32)
        to_full = tf.stack([ratio[1], ratio[0]]) / flow_scale
        norm = endpoint_error((flow - gt_level) * to_full)
        total += weight * tf.reduce_mean(tf.reduce_sum(norm * valid_level, axis=[1, 2, 3]))
    return total
