"""Photometric loss: robust penalty on the colour difference to the warped other frame."""
from dflow_tf.losses._directions import sum_over_directions
from dflow_tf.losses.robust import masked_mean, robust_penalty


def _photometric_term(image, warped_other, weight):
    return masked_mean(robust_penalty(image - warped_other), weight)


def photometric_loss(image1, image2, flow_fw, flow_bw=None, occlusion_fw=None, occlusion_bw=None,
                     mask_fw=None, mask_bw=None):
    """masked_mean(psi(I1 - warp(I2, w_fw)), (1 - O_fw) * M_fw) [+ the same for I2, I1, w_bw].

    DDFlow's photometric term (docs/method.md §2.2): psi summed over the colour channels,
    normalised per image by 2 * (number of weighted pixels), averaged over the batch; the backward term is
    added (not averaged) when `flow_bw` is given. Pixels are masked only by occlusion and `mask_*`,
    not by the warp's in-frame mask, as in DDFlow: `forward_backward_occlusion` already marks
    targets outside frame 2 as occluded, and without occlusion handling (DDFlow's stage 1) an
    in-frame mask would let the network escape the loss by pointing flow out of the frame. Pass
    the warp's `inside` as `mask_fw` if that is wanted. `mask_*` is the extra multiplier for pixels
    that must leave the photometric mask (e.g. superpixel-noised pixels of the student's input).

    Args:
      image1, image2: float [B, H, W, C] (RGB in [0, 1]).
      flow_fw: float [B, H, W, 2], frame 1 -> frame 2 (pixels). flow_bw: frame 2 -> 1, or None.
      occlusion_fw: float [B, H, W, 1] on frame-1 pixels, 1 = occluded (None: no occlusion).
      occlusion_bw: the same on frame-2 pixels; only with `flow_bw`.
      mask_fw, mask_bw: float [B, H, W, 1] multipliers on frame-1 / frame-2 pixels, 1 = use.

    Returns:
      float scalar. A perfect match costs the floor psi(0) * C / 2 per direction.
    """
    return sum_over_directions(_photometric_term, image1, image2, flow_fw, flow_bw,
                               occlusion_fw, occlusion_bw, mask_fw, mask_bw)
