"""Argument handling shared by the two-frame image losses (photometric, census).

Both losses compare frame 1 with frame 2 warped by the forward flow, and (optionally) frame 2
with frame 1 warped by the backward flow, each on the pixels of the frame being explained,
weighted by (1 - occlusion) * mask. DDFlow adds the two directions (no 1/2).
"""
import tensorflow as tf

from dflow_tf.ops._checks import check_channels, check_compatible, check_rank
from dflow_tf.ops.warp import backward_warp


def _check_map(name, tensor, reference, channels):
    check_rank(name, tensor, 4)
    check_channels(name, tensor, channels)
    check_compatible(name, tensor, "image1", reference, axes=(0, 1, 2))


def _weight(occlusion, mask, image):
    """(1 - occlusion) * mask as [B, H, W, 1]; ones where neither is given."""
    weight = tf.ones_like(image[..., :1])
    if occlusion is not None:
        weight = weight * (1.0 - occlusion)
    if mask is not None:
        weight = weight * mask
    return weight


def sum_over_directions(term, image1, image2, flow_fw, flow_bw, occlusion_fw, occlusion_bw, mask_fw, mask_bw):
    """Validates the arguments and returns term_fw + term_bw (term_fw alone without `flow_bw`).

    Args:
      term: callable(image, warped_other, weight) -> scalar, with image and warped_other
        [B, H, W, C] and weight [B, H, W, 1].
      image1, image2: float [B, H, W, C].
      flow_fw: float [B, H, W, 2], frame 1 -> frame 2; flow_bw: the same for 2 -> 1, or None.
      occlusion_fw, mask_fw: optional float [B, H, W, 1] on frame-1 pixels (1 = occluded /
        1 = use the pixel); occlusion_bw, mask_bw: the same on frame-2 pixels, only with flow_bw.

    Returns:
      float scalar.
    """
    image1 = tf.convert_to_tensor(image1)
    dtype = image1.dtype
    check_rank("image1", image1, 4)
    image2 = tf.cast(image2, dtype)
    check_rank("image2", image2, 4)
    check_compatible("image1", image1, "image2", image2, axes=(0, 1, 2, 3))
    maps = {"flow_fw": flow_fw, "flow_bw": flow_bw, "occlusion_fw": occlusion_fw,
            "occlusion_bw": occlusion_bw, "mask_fw": mask_fw, "mask_bw": mask_bw}
    if flow_bw is None:
        for name in ("occlusion_bw", "mask_bw"):
            if maps[name] is not None:
                raise ValueError(f"`{name}` was given without `flow_bw`")
    for name, value in maps.items():
        if value is not None:
            maps[name] = tf.cast(value, dtype)
            _check_map(name, maps[name], image1, 2 if name.startswith("flow") else 1)

    warped2, _ = backward_warp(image2, maps["flow_fw"])
    total = term(image1, warped2, _weight(maps["occlusion_fw"], maps["mask_fw"], image1))
    if flow_bw is not None:
        warped1, _ = backward_warp(image1, maps["flow_bw"])
        total += term(image2, warped1, _weight(maps["occlusion_bw"], maps["mask_bw"], image2))
    return total
