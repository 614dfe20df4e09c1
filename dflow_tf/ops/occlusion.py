"""Occlusion estimation by the forward-backward consistency check."""
import tensorflow as tf

from dflow_tf.ops._checks import check_channels, check_compatible, check_rank
from dflow_tf.ops.warp import backward_warp

#: Constants of the forward-backward check, DDFlow's and SelFlow's code (docs/method.md §2.4).
OCCLUSION_ALPHA1 = 0.01
OCCLUSION_ALPHA2 = 0.5  # the DDFlow paper text says 0.05 [unverified]


def forward_backward_occlusion(flow_fw, flow_bw, alpha1=OCCLUSION_ALPHA1, alpha2=OCCLUSION_ALPHA2):
    """Marks pixels of frame 1 whose forward flow is not undone by the backward flow.

    With w_hat(p) = w_bw(p + w_fw(p)) (bilinear), p is occluded when
    |w_fw + w_hat|^2 > alpha1 * (|w_fw|^2 + |w_hat|^2) + alpha2.
    DDFlow's code uses alpha1 = 0.01, alpha2 = 0.5 (its paper text says 0.05).
    A pixel whose target p + w_fw(p) falls outside frame 2 has no correspondence and is marked
    occluded as well (where the bilinear sample is attenuated by the zero border, the check alone
    would let small out-of-frame motions through).

    Args:
      flow_fw: float [B, H, W, 2], frame 1 -> frame 2.
      flow_bw: float [B, H, W, 2], frame 2 -> frame 1.

    Returns:
      float [B, H, W, 1], 1 = occluded (inconsistent), 0 = consistent; no gradient flows.
    """
    flow_fw = tf.convert_to_tensor(flow_fw)
    flow_bw = tf.convert_to_tensor(flow_bw, dtype=flow_fw.dtype)
    check_rank("flow_fw", flow_fw, 4)
    check_rank("flow_bw", flow_bw, 4)
    check_channels("flow_fw", flow_fw, 2)
    check_compatible("flow_fw", flow_fw, "flow_bw", flow_bw, axes=(0, 1, 2, 3))
    flow_fw = tf.stop_gradient(flow_fw)
    flow_bw = tf.stop_gradient(flow_bw)
    flow_bw_at_target, inside = backward_warp(flow_bw, flow_fw)
    mismatch = tf.reduce_sum(tf.square(flow_fw + flow_bw_at_target), axis=-1, keepdims=True)
    magnitude = tf.reduce_sum(tf.square(flow_fw) + tf.square(flow_bw_at_target), axis=-1, keepdims=True)
    inconsistent = tf.cast(mismatch > alpha1 * magnitude + alpha2, flow_fw.dtype)
    return tf.maximum(inconsistent, 1.0 - inside)


def reject_implausible_occlusion(occlusion, max_fraction):
    """Clears the occlusion mask of every image whose occluded fraction exceeds `max_fraction`.

    The forward-backward check is only as good as the flows it checks: early in training, or when
    a run diverges, most pixels fail it. A loss normalised over the unoccluded pixels (DDFlow)
    then rests on a few pixels, and an all-occluded mask is a zero-loss fixed point from which
    training never returns. Treating such an image's check as unreliable (no occlusion handling
    for it, as in the photometric phase) removes that fixed point.

    Args:
      occlusion: float [B, H, W, 1], 1 = occluded.
      max_fraction: float in (0, 1]; images with mean(occlusion) > max_fraction are rejected.

    Returns:
      (occlusion with rejected images set to 0 [B, H, W, 1], rejected float [B] in {0, 1}).
    """
    occlusion = tf.convert_to_tensor(occlusion)
    check_rank("occlusion", occlusion, 4)
    check_channels("occlusion", occlusion, 1)
    if not 0.0 < max_fraction <= 1.0:
        raise ValueError(f"max_fraction must lie in (0, 1], got {max_fraction!r}")
    fraction = tf.reduce_mean(occlusion, axis=[1, 2, 3])
    rejected = tf.cast(fraction > max_fraction, occlusion.dtype)
    return occlusion * (1.0 - rejected)[:, None, None, None], rejected
