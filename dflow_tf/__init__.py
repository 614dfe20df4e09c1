"""dflow_tf: DistillFlow (self-supervised optical flow by distillation) in TensorFlow 2 / Keras 3.

Conventions used throughout the package:
  * images and feature maps are NHWC;
  * flow is in pixels of the resolution it lives at, channel 0 = horizontal u (x, to the right),
    channel 1 = vertical v (y, downwards); a pixel (x, y) of frame 1 corresponds to (x + u, y + v)
    of frame 2;
  * masks are float32 [B, H, W, 1] with 1 = true (valid / occluded, as named).
"""

import os as _os
import platform as _platform

__version__ = "0.1.0"

# oneDNN on every x86 CPU, not only on those with AVX-512 where TensorFlow turns it on by itself:
# with dflow_tf.ops.conv2d_same's formulations it is the faster backend on AVX2 CPUs too (forward
# 448x1024: 0.41 s against Eigen's 0.52 s; docs/models.md). Takes effect when dflow_tf is imported
# before TensorFlow (every command line); TF_ENABLE_ONEDNN_OPTS=0 set by the user is kept.
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def __getattr__(name):
    # Lazy so that `import dflow_tf` stays cheap and free of import cycles.
    if name == "predict_flow":
        from dflow_tf.inference import predict_flow
        return predict_flow
    if name == "load_pretrained":
        from dflow_tf.pretrained import load_pretrained
        return load_pretrained
    raise AttributeError(f"module 'dflow_tf' has no attribute {name!r}")
