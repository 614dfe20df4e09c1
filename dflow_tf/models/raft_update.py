"""RAFT's recurrent update operator: motion encoder -> convolutional GRU -> flow head.

    RAFT:       MotionEncoder (correlation 256, 192; flow 128, 64; out 126 + flow) -> separable
                ConvGRU (hidden 128, 1x5 then 5x1) -> FlowHead (256) ; mask head (256 -> 8*8*9)
    RAFT-small: MotionEncoder (correlation 96; flow 64, 32; out 80 + flow) -> ConvGRU (hidden 96,
                3x3) -> FlowHead (128)

All tensors NHWC at 1/8 resolution; flow in pixels of that resolution, channel 0 = u.
"""
import tensorflow as tf

from dflow_tf.models.raft_layers import Block

#: The mask head's output is scaled by this ("to balance gradients", the reference says).
MASK_SCALE = 0.25
#: Hidden channels of the mask head.
MASK_HEAD_DIM = 256


class MotionEncoder(Block):
    """Features of the looked-up correlation and of the current flow.

    correlation -> convc1 (1x1), convc2.. (3x3), each + ReLU; flow -> convf1 (7x7), convf2.. (3x3),
    each + ReLU; conv (3x3 + ReLU) of both; the flow is appended to the output.

    Args:
      correlation_channels: channels of the looked-up correlation (levels * (2r+1)^2).
      correlation_widths, flow_widths: channels of the convc* and convf* convolutions.
      output_dim: channels of `conv`; the output has output_dim + 2.

    Call: (flow [B, H, W, 2], correlation [B, H, W, correlation_channels]) ->
      [B, H, W, output_dim + 2] = [conv features, flow].
    """

    def __init__(self, correlation_channels, correlation_widths, flow_widths, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim) + 2
        self.branches = []
        for prefix, widths, first_kernel, width in (("convc", correlation_widths, 1, correlation_channels),
                                                    ("convf", flow_widths, 7, 2)):
            names = []
            for index, filters in enumerate(widths, 1):
                names.append(self.add_conv(f"{prefix}{index}", filters, first_kernel if index == 1 else 3,
                                           width).name)
                width = filters
            self.branches.append(tuple(names))
        self.add_conv("conv", output_dim, 3, correlation_widths[-1] + flow_widths[-1])

    def call(self, flow, correlation):
        features = []
        for names, x in zip(self.branches, (correlation, flow)):
            for name in names:
                x = tf.nn.relu(getattr(self, name)(x))
            features.append(x)
        return tf.concat([tf.nn.relu(self.conv(tf.concat(features, axis=-1))), flow], axis=-1)


def gru_step(hidden, inputs, update_gate, reset_gate, candidate):
    """One convolutional GRU step. hidden [B, H, W, D], inputs [B, H, W, C]; the three convs map
    D + C channels to D. Returns the new hidden state [B, H, W, D]:
    z = sigmoid(update_gate([h, x])), r = sigmoid(reset_gate([h, x])),
    q = tanh(candidate([r * h, x])), h' = (1 - z) * h + z * q."""
    hx = tf.concat([hidden, inputs], axis=-1)
    z = tf.sigmoid(update_gate(hx))
    r = tf.sigmoid(reset_gate(hx))
    q = tf.tanh(candidate(tf.concat([r * hidden, inputs], axis=-1)))
    return (1.0 - z) * hidden + z * q


class ConvGRU(Block):
    """A convolutional GRU of one step per kernel size.

    One kernel size (RAFT-small: 3x3): convolutions convz, convr, convq. Several (RAFT's SepConvGRU:
    1x5, then 5x1): convz1, convr1, convq1, convz2, ... applied in turn, each step reading the
    previous step's hidden state and the same inputs.

    Call: (hidden [B, H, W, hidden_dim], inputs [B, H, W, input_dim]) -> hidden [B, H, W, hidden_dim].
    """

    def __init__(self, hidden_dim, input_dim, kernel_sizes=(3,), **kwargs):
        super().__init__(**kwargs)
        self.steps = []
        for index, kernel_size in enumerate(kernel_sizes, 1):
            suffix = str(index) if len(kernel_sizes) > 1 else ""
            self.steps.append(tuple(
                self.add_conv(f"conv{gate}{suffix}", hidden_dim, kernel_size, hidden_dim + input_dim).name
                for gate in "zrq"))

    def call(self, hidden, inputs):
        for names in self.steps:
            hidden = gru_step(hidden, inputs, *(getattr(self, name) for name in names))
        return hidden


class Head(Block):
    """conv1 (3x3) -> ReLU -> conv2: the flow head (3x3 to 2 channels, the flow update) and the
    mask head (1x1 to 8 * 8 * 9 upsampling weights).

    Call: hidden [B, H, W, input_dim] -> [B, H, W, output_dim].
    """

    def __init__(self, input_dim, hidden_dim, output_dim, output_kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        self.add_conv("conv1", hidden_dim, 3, input_dim)
        self.add_conv("conv2", output_dim, output_kernel_size, hidden_dim)

    def call(self, x):
        return self.conv2(tf.nn.relu(self.conv1(x)))


class UpdateBlock(Block):
    """One RAFT iteration's update: encoder (motion features), gru (new hidden state), flow_head
    (flow update), and for convex upsampling `mask` (the mask head).

    Args:
      hidden_dim, context_dim: channels of the GRU state and of the context features.
      correlation_channels: channels of the looked-up correlation.
      correlation_widths, flow_widths, motion_dim: the MotionEncoder.
      gru_kernel_sizes: (3,) for a ConvGRU, ((1, 5), (5, 1)) for RAFT's separable one.
      flow_head_dim: hidden channels of the flow head.
      mask_channels: outputs of the mask head (8 * 8 * 9), or 0 for none.

    Call: (hidden [B, h, w, hidden_dim], context [B, h, w, context_dim], correlation
      [B, h, w, correlation_channels], flow [B, h, w, 2]) -> (hidden [B, h, w, hidden_dim],
      delta_flow [B, h, w, 2]).
    """

    def __init__(self, hidden_dim, context_dim, correlation_channels, correlation_widths, flow_widths,
                 motion_dim, gru_kernel_sizes, flow_head_dim, mask_channels=0, **kwargs):
        super().__init__(**kwargs)
        encoder = MotionEncoder(correlation_channels, correlation_widths, flow_widths, motion_dim,
                                name="encoder")
        self.add_layer("encoder", encoder)
        self.add_layer("gru", ConvGRU(hidden_dim, context_dim + encoder.output_dim, gru_kernel_sizes,
                                      name="gru"))
        self.add_layer("flow_head", Head(hidden_dim, flow_head_dim, 2, name="flow_head"))
        self.mask = None
        if mask_channels:
            self.add_layer("mask", Head(hidden_dim, MASK_HEAD_DIM, mask_channels, output_kernel_size=1, name="mask"))

    def call(self, hidden, context, correlation, flow):
        motion = self.encoder(flow, correlation)
        hidden = self.gru(hidden, tf.concat([context, motion], axis=-1))
        return hidden, self.flow_head(hidden)

    def upsampling_mask(self, hidden):
        """hidden [B, h, w, hidden_dim] -> the convex-upsampling logits [B, h, w, mask_channels]
        (MASK_SCALE times the mask head's output)."""
        return MASK_SCALE * self.mask(hidden)
