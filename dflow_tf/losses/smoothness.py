"""Optional edge-aware first-order smoothness of the flow (not in DDFlow / SelFlow; off by default)."""
import tensorflow as tf

from dflow_tf.ops._checks import check_channels, check_compatible, check_rank


def smoothness_loss(flow, image, edge_constant=10.0):
    """Edge-aware first-order smoothness (ARFlow's form, a [choice]: docs/method.md §2.5).

    With forward differences along x and y, the image-edge weight
    w_x = exp(-edge_constant * mean_c |dI/dx|) (likewise w_y), and L1 flow gradients:
    loss = 0.5 * (mean(w_x * |dw/dx|) + mean(w_y * |dw/dy|)), each mean taken over batch, pixels
    (W - 1 or H - 1 differences per row / column) and the 2 flow channels. The image gets no
    gradient (it only sets the weights). The trainer decides whether and how much to use it.

    Args:
      flow: float [B, H, W, 2] in pixels (H, W >= 2).
      image: float [B, H, W, C] in [0, 1], the frame the flow lives on.
      edge_constant: sharpness of the edge weighting (ARFlow: 10 for images in [0, 1]).

    Returns:
      float scalar; 0 for a constant flow.
    """
    flow = tf.convert_to_tensor(flow)
    image = tf.stop_gradient(tf.cast(image, flow.dtype))
    check_rank("flow", flow, 4)
    check_channels("flow", flow, 2)
    check_rank("image", image, 4)
    check_compatible("flow", flow, "image", image, axes=(0, 1, 2))

    def along(axis):
        def diff(t):
            if axis == 2:
                return t[:, :, 1:] - t[:, :, :-1]
            return t[:, 1:] - t[:, :-1]

        weight = tf.exp(-edge_constant * tf.reduce_mean(tf.abs(diff(image)), axis=-1, keepdims=True))
        return tf.reduce_mean(weight * tf.abs(diff(flow)))

    return 0.5 * (along(2) + along(1))
