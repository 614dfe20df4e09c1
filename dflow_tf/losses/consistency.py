"""Forward-backward consistency loss (UnFlow, Meister et al. 2018): the forward flow and the
backward flow sampled where it points should cancel on pixels that are not occluded."""
from dflow_tf.losses._directions import sum_over_directions
from dflow_tf.losses.robust import masked_mean, robust_penalty


def _consistency_term(flow, warped_other_flow, weight):
    return masked_mean(robust_penalty(flow + warped_other_flow), weight)


def consistency_loss(flow_fw, flow_bw, occlusion_fw=None, occlusion_bw=None):
    """masked_mean(psi(w_fw + warp(w_bw, w_fw)), 1 - O_fw) + the same for w_bw, w_fw.

    The residual is the one the forward-backward occlusion check thresholds
    (ops.forward_backward_occlusion); this term trains it down where the check says "visible"
    (docs/method.md §2.5). Normalised like the photometric term (psi summed over u and v, per
    image by 2 * the number of weighted pixels, averaged over the batch); no gradient flows into
    the masks, both flows get gradients.

    Args:
      flow_fw: float [B, H, W, 2], frame 1 -> frame 2 (pixels); flow_bw: frame 2 -> frame 1.
      occlusion_fw, occlusion_bw: optional float [B, H, W, 1] on frame-1 / frame-2 pixels,
        1 = occluded (left out).

    Returns:
      float scalar; consistent flows cost the floor 2 * psi(0) (= 2 * 0.01 ** 0.4).
    """
    return sum_over_directions(_consistency_term, flow_fw, flow_bw, flow_fw, flow_bw,
                               occlusion_fw, occlusion_bw, None, None)
