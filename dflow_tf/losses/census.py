"""Census loss (UnFlow / DDFlow): soft Hamming distance of census transforms, robustly penalised."""
import tensorflow as tf

from dflow_tf.losses._directions import sum_over_directions
from dflow_tf.losses.robust import masked_mean, robust_penalty
from dflow_tf.ops import census_transform, soft_hamming_distance
from dflow_tf.ops.census import CENSUS_PATCH_SIZE


def _border_mask(image, border):
    """[B, H, W, 1] float: 1 at least `border` pixels away from every image edge, 0 elsewhere.

    Args:
      image: [B, H, W, C] (only its shape and dtype are used).
      border: int >= 0.
    """
    shape = tf.shape(image)
    height, width = shape[1], shape[2]
    rows = tf.range(height)
    cols = tf.range(width)
    keep_rows = (rows >= border) & (rows < height - border)
    keep_cols = (cols >= border) & (cols < width - border)
    keep = keep_rows[:, tf.newaxis] & keep_cols[tf.newaxis, :]
    return tf.ones_like(image[..., :1]) * tf.cast(keep, image.dtype)[tf.newaxis, :, :, tf.newaxis]


def census_loss(image1, image2, flow_fw, flow_bw=None, occlusion_fw=None, occlusion_bw=None,
                mask_fw=None, mask_bw=None, patch_size=CENSUS_PATCH_SIZE):
    """masked_mean(psi(hamming(census(I1), census(warp(I2, w_fw)))), (1 - O_fw) * M_fw * border)
    [+ the same for I2, I1, w_bw].

    DDFlow's census term (docs/method.md §2.3): census of the grey image x 255 over a
    patch_size^2 neighbourhood (zero outside the image), soft Hamming distance, penalty psi, a
    border of (patch_size - 1) / 2 pixels masked (there the census sees the zero padding),
    normalised per image by 2 * (number of weighted pixels) and averaged over the batch; the backward term is
    added when `flow_bw` is given. As in `photometric_loss`, the warp's in-frame mask is not
    applied (occlusion masks cover out-of-frame targets); `mask_*` is an extra multiplier.

    Args:
      image1, image2: float [B, H, W, 3] RGB or [B, H, W, 1] grey, in [0, 1].
      flow_fw: float [B, H, W, 2], frame 1 -> frame 2. flow_bw: frame 2 -> 1, or None.
      occlusion_fw: float [B, H, W, 1] on frame-1 pixels, 1 = occluded (None: no occlusion).
      occlusion_bw: the same on frame-2 pixels; only with `flow_bw`.
      mask_fw, mask_bw: float [B, H, W, 1] multipliers on frame-1 / frame-2 pixels, 1 = use.
      patch_size: odd census neighbourhood size (7 in DDFlow).

    Returns:
      float scalar. A perfect match costs the floor psi(0) / 2 per direction.
    """
    border = (patch_size - 1) // 2

    def census_term(image, warped_other, weight):
        distance = soft_hamming_distance(census_transform(image, patch_size),
                                         census_transform(warped_other, patch_size))
        return masked_mean(robust_penalty(distance), weight * _border_mask(image, border))

    return sum_over_directions(census_term, image1, image2, flow_fw, flow_bw,
                               occlusion_fw, occlusion_bw, mask_fw, mask_bw)
