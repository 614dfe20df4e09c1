"""RAFT's feature and context encoders: images -> feature maps at 1/8 resolution.

    BasicEncoder (RAFT):       conv1 7x7/2 (64) -> 2 residual blocks (64) -> 2 (96, /2) -> 2 (128, /2)
                               -> conv2 1x1 (output_dim)
    SmallEncoder (RAFT-small): conv1 7x7/2 (32) -> 2 bottleneck blocks (32) -> 2 (64, /2) -> 2 (96, /2)
                               -> conv2 1x1 (output_dim)

Every convolution but the last is followed by the encoder's normalisation ("instance", "batch" or
"none") and a ReLU; a block adds its input (through a strided 1x1 convolution and the
normalisation where it downsamples) and applies a ReLU.
"""
import tensorflow as tf

from dflow_tf.models.raft_layers import Block, encoder_initializer


class ShortcutBlock(Block):
    """relu(shortcut(x) + branch(x)), branch = a chain of conv -> norm -> relu.

    Attributes conv1..convN and norm1..normN (the branch), and where the block downsamples
    `downsample` (1x1 convolution of the stride) with norm{N+1}; the identity shortcut otherwise.

    Args:
      in_planes, planes: input and output channels.
      norm: "instance", "batch" or "none".
      stride: 1, or 2 (the stride of the branch's `strided` convolution and of the shortcut).
      branch: ((filters, kernel_size), ...) of the branch's convolutions.
      strided: index (0-based) of the branch convolution that carries the stride.

    Call: x [B, H, W, in_planes] -> [B, H / stride, W / stride, planes].
    """

    def __init__(self, in_planes, planes, norm, stride, branch, strided, **kwargs):
        super().__init__(**kwargs)
        self.num_convs = len(branch)
        width = in_planes
        for index, (filters, kernel_size) in enumerate(branch, 1):
            self.add_conv(f"conv{index}", filters, kernel_size, width,
                          stride=stride if index - 1 == strided else 1, initializer=encoder_initializer)
            self.add_normalization(f"norm{index}", norm, filters)
            width = filters
        self.downsample = None
        if stride != 1:
            self.add_conv("downsample", planes, 1, in_planes, stride=stride, initializer=encoder_initializer)
            self.add_normalization(f"norm{self.num_convs + 1}", norm, planes)

    def call(self, x):
        y = x
        for index in range(1, self.num_convs + 1):
            y = tf.nn.relu(getattr(self, f"norm{index}")(getattr(self, f"conv{index}")(y)))
        if self.downsample is not None:
            x = getattr(self, f"norm{self.num_convs + 1}")(self.downsample(x))
        return tf.nn.relu(x + y)


def residual_block(in_planes, planes, norm, stride, name):
    """RAFT's ResidualBlock: two 3x3 convolutions (the first strided), shortcut norm `norm3`."""
    return ShortcutBlock(in_planes, planes, norm, stride, ((planes, 3), (planes, 3)), strided=0, name=name)


def bottleneck_block(in_planes, planes, norm, stride, name):
    """RAFT's BottleneckBlock: 1x1 (planes / 4), 3x3 (planes / 4, strided), 1x1 (planes);
    shortcut norm `norm4`."""
    quarter = planes // 4
    return ShortcutBlock(in_planes, planes, norm, stride, ((quarter, 1), (quarter, 3), (planes, 1)),
                         strided=1, name=name)


class _Encoder(Block):
    """conv1 (7x7, stride 2) -> norm1 -> relu -> layer1 (stride 1) -> layer2 (stride 2) -> layer3
    (stride 2), two blocks each (attributes layer{k}_0, layer{k}_1) -> conv2 (1x1).

    Args:
      output_dim: output channels.
      norm: "instance", "batch" or "none" (RAFT's `norm_fn`).

    Call: images [B, H, W, 3] (in [-1, 1]) -> [B, ceil(H / 8), ceil(W / 8), output_dim].
    """

    widths = None  # channels of conv1 and of layer1..layer3
    make_block = None  # residual_block or bottleneck_block

    def __init__(self, output_dim, norm, **kwargs):
        super().__init__(**kwargs)
        self.output_dim, self.norm = int(output_dim), norm
        stem, *stages = self.widths
        self.add_conv("conv1", stem, 7, 3, stride=2, initializer=encoder_initializer)
        self.add_normalization("norm1", norm, stem)
        width = stem
        for stage, (planes, stride) in enumerate(zip(stages, (1, 2, 2)), 1):
            for index in range(2):
                name = f"layer{stage}_{index}"
                self.add_layer(name, self.make_block(width, planes, norm, stride if index == 0 else 1,
                                                      name=name), width)
                width = planes
        self.add_conv("conv2", self.output_dim, 1, width, initializer=encoder_initializer)

    def call(self, images):
        x = tf.nn.relu(self.norm1(self.conv1(images)))
        for stage in (1, 2, 3):
            for index in range(2):
                x = getattr(self, f"layer{stage}_{index}")(x)
        return self.conv2(x)


class BasicEncoder(_Encoder):
    """RAFT's encoder: residual blocks of 64, 96, 128 channels (see _Encoder)."""

    widths = (64, 64, 96, 128)
    make_block = staticmethod(residual_block)


class SmallEncoder(_Encoder):
    """RAFT-small's encoder: bottleneck blocks of 32, 64, 96 channels (see _Encoder)."""

    widths = (32, 32, 64, 96)
    make_block = staticmethod(bottleneck_block)
