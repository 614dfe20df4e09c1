"""Flow networks: DDFlow's two-frame and SelFlow's three-frame PWC-Net variants, RAFT and RAFT-small.

See docs/models.md for the architectures, the output contract and parity with the reference code;
`registry` names the architectures (get_model), `zero_flow` is the zero-flow baseline.
"""
from dflow_tf.models.context import ContextNetwork
from dflow_tf.models.estimator import FlowEstimator
from dflow_tf.models.layers import Conv
from dflow_tf.models.pwc import ThreeFramePWC, TwoFramePWC
from dflow_tf.models.pyramid import FeaturePyramid
from dflow_tf.models.raft import RAFT, RAFTSmall
from dflow_tf.models.registry import get_architecture, get_model
from dflow_tf.models.zero_flow import ZeroFlowModel

__all__ = ["Conv", "ContextNetwork", "FeaturePyramid", "FlowEstimator", "RAFT", "RAFTSmall", "ThreeFramePWC",
           "TwoFramePWC", "ZeroFlowModel", "get_architecture", "get_model"]
