"""dflow_tf: DistillFlow (self-supervised optical flow by distillation) in TensorFlow 2 / Keras 3.

Conventions used throughout the package:
  * images and feature maps are NHWC;
  * flow is in pixels of the resolution it lives at, channel 0 = horizontal u (x, to the right),
    channel 1 = vertical v (y, downwards); a pixel (x, y) of frame 1 corresponds to (x + u, y + v)
    of frame 2;
  * masks are float32 [B, H, W, 1] with 1 = true (valid / occluded, as named).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy so that `import dflow_tf` stays cheap and free of import cycles.
    if name == "predict_flow":
        from dflow_tf.inference import predict_flow
        return predict_flow
    raise AttributeError(f"module 'dflow_tf' has no attribute {name!r}")
