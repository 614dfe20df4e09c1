"""Stereo disparity from an optical-flow model (Flow2Stereo: stereo matching as a special case of flow).

On a rectified pair the optical flow from the left to the right image is (-d, 0): the left pixel x
matches the right image's x - d. So any flow checkpoint gives disparity d = -u of its left -> right
flow, and the vertical flow v should be 0 (|v| is the rectification check). No new weights: the
flow model sees (left, right), a three-frame model (left, left, right), the first-frame fallback
of dflow_tf.data.frame_windows.
"""
import keras
import tensorflow as tf

from dflow_tf.data.frame_windows import pair_window
from dflow_tf.inference import predict_tensor


def disparity_from_flow(flow):
    """Left -> right flow [..., H, W, 2] (numpy array or tensor) -> (disparity [..., H, W] = -u,
    v [..., H, W]), both in px."""
    return -flow[..., 0], flow[..., 1]


def stereo_window(left, right, num_frames):
    """The frames a flow model of `num_frames` (2 or 3) sees for the pair left -> right:
    [left, right] or [left, left, right]."""
    return pair_window([left, right], num_frames)


class StereoFromFlow(keras.Model):
    """A flow model as a stereo model: (left, right) uint8 [B, H, W, 3] -> disparity [B, H, W, 1].

    Holds the flow model (its variables are this model's, nothing is added); `disparity` runs
    dflow_tf.inference.predict_tensor on stereo_window(left, right) (uint8 / 255, the resize to a
    multiple of the flow model's size_multiple and back) and returns -u. Any H, W.
    """

    def __init__(self, flow_model, **kwargs):
        super().__init__(**kwargs)
        if getattr(flow_model, "num_frames", None) not in (2, 3):
            raise ValueError(f"StereoFromFlow needs a two- or three-frame flow model, got {type(flow_model).__name__}")
        self.flow_model = flow_model

    @property
    def size_multiple(self):
        return getattr(self.flow_model, "size_multiple", 64)

    def flow(self, left, right):
        """left, right: [B, H, W, 3] uint8 0..255 or float 0..1 -> left -> right flow float32 [B, H, W, 2]."""
        frames = tf.stack(stereo_window(left, right, self.flow_model.num_frames), axis=1)
        return predict_tensor(self.flow_model, frames)

    def disparity(self, left, right):
        """left, right: [B, H, W, 3] uint8 0..255 or float 0..1 -> disparity float32 [B, H, W, 1] (px, = -u)."""
        disparity, _ = disparity_from_flow(self.flow(left, right))
        return disparity[..., None]

    def call(self, inputs):
        """inputs (left, right) -> {"disparity": [B, H, W, 1], "v": [B, H, W, 1]} (px)."""
        left, right = inputs
        disparity, v = disparity_from_flow(self.flow(left, right))
        return {"disparity": disparity[..., None], "v": v[..., None]}

