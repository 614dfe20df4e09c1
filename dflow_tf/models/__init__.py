"""Flow networks: DDFlow's two-frame and SelFlow's three-frame PWC-Net variants.

See docs/models.md for the architecture, the call conventions and parity with the TF1 code.
"""
from dflow_tf.models.context import ContextNetwork
from dflow_tf.models.estimator import FlowEstimator
from dflow_tf.models.layers import Conv
from dflow_tf.models.pwc import ThreeFramePWC, TwoFramePWC
from dflow_tf.models.pyramid import FeaturePyramid

__all__ = ["Conv", "ContextNetwork", "FeaturePyramid", "FlowEstimator", "ThreeFramePWC",
           "TwoFramePWC"]
