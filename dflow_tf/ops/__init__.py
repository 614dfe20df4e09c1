"""Core flow ops in plain TensorFlow (no addons): correlation, warping, sampling, resizing, census, occlusion.

All ops take NHWC tensors; flow is in pixels, channel 0 = u (x), channel 1 = v (y). They run
eagerly, inside tf.function and under XLA, and convert to TFLite with builtin ops only.
"""
from dflow_tf.ops.census import census_transform, soft_hamming_distance
from dflow_tf.ops.correlation import cost_volume
from dflow_tf.ops.occlusion import forward_backward_occlusion, reject_implausible_occlusion
from dflow_tf.ops.resize import resize_flow, resize_sparse_flow
from dflow_tf.ops.sampling import bilinear_sample
from dflow_tf.ops.warp import backward_warp

__all__ = [
    "backward_warp",
    "bilinear_sample",
    "census_transform",
    "cost_volume",
    "forward_backward_occlusion",
    "reject_implausible_occlusion",
    "resize_flow",
    "resize_sparse_flow",
    "soft_hamming_distance",
]
