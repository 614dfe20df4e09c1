"""Building blocks of the RAFT networks: convolutions padded and initialised as in the reference
(princeton-vl/RAFT, PyTorch), and its three normalisations.

Every convolution is a `dflow_tf.models.layers.Conv` (HWIO kernel + bias, `conv2d_same`), linear
(the activations are applied where the forward passes say so). PyTorch pads k // 2 zeros on
every side; for stride 1 and odd kernels that is TF "SAME", for stride 2 it is not (TF "SAME"
puts the odd zero at the end), hence `SymmetricPaddingConv`.
"""
import keras
import tensorflow as tf

from dflow_tf.models.layers import Conv
from dflow_tf.ops.conv import conv2d_valid

#: PyTorch's InstanceNorm2d / BatchNorm2d epsilon.
NORM_EPSILON = 1e-5
#: The normalisations of the encoders (RAFT's `norm_fn`).
NORMALIZATIONS = ("instance", "batch", "none")


def shape_of(x):
    """The dimensions of `x`: Python ints where static, scalar int32 tensors elsewhere (a list
    that tf.reshape takes, keeping the static sizes)."""
    dynamic = tf.shape(x)
    return [size if size is not None else dynamic[axis] for axis, size in enumerate(x.shape)]


def at_least_float32(x):
    """`x` as a tensor, cast to float32 if it is float16 or bfloat16 (mixed precision)."""
    x = tf.convert_to_tensor(x)
    return tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x


def encoder_initializer():
    """He normal over the fan-out (the reference's kaiming_normal_(mode="fan_out",
    nonlinearity="relu") of the encoder convolutions)."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def default_initializer():
    """U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)): PyTorch's default Conv2d weight initialisation (the
    update block's convolutions)."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")


class SymmetricPaddingConv(Conv):
    """A linear `Conv` padded with kernel_size // 2 zeros on every side (PyTorch's padding).

    Stride 1 (odd kernels): TF "SAME", through `conv2d_same`. Stride s > 1: explicit symmetric
    zero padding and a VALID convolution (`conv2d_valid`), so output pixel i is centred on input
    pixel s * i as in the reference (TF "SAME" would centre it on s * i + (s - 1) / 2 for even
    sizes).

    Call: x [B, H, W, C_in] -> [B, ceil(H / s), ceil(W / s), filters].
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, negative_slope=None, **kwargs)

    def call(self, inputs):
        if self.strides[0] == 1:
            return super().call(inputs)
        pad_h, pad_w = self.kernel_size[0] // 2, self.kernel_size[1] // 2
        padded = tf.pad(inputs, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        return tf.nn.bias_add(conv2d_valid(padded, self.kernel, self.strides[0]), self.bias)


def instance_norm(x):
    """Per image and channel (x - mean) / sqrt(var + 1e-5) over H, W (PyTorch's InstanceNorm2d
    without affine parameters, RAFT's "instance"); statistics in float32. [B, H, W, C] -> same."""
    x32 = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(x32, axes=[1, 2], keepdims=True)
    return tf.cast((x32 - mean) * tf.math.rsqrt(variance + NORM_EPSILON), x.dtype)


def identity(x):
    """RAFT's "none" normalisation."""
    return x


class FrozenBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalisation that always runs in inference mode (RAFT's `freeze_bn`):
    (x - moving_mean) / sqrt(moving_variance + 1e-5) * gamma + beta. gamma and beta train; the
    moving statistics are never updated (they stay at what was loaded, initially 0 and 1)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("epsilon", NORM_EPSILON)
        super().__init__(**kwargs)

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False, mask=mask)


class Block(keras.layers.Layer):
    """A layer of named sub-layers whose input widths are known when it is created.

    Subclasses create their convolutions with `add_conv` (and other sub-layers with `add_layer`,
    normalisations with `add_normalization`), each stored as an attribute of its name (the names
    tf.train.Checkpoint records); `build` builds each with its recorded input width, under this
    layer's name scope.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._input_widths = {}

    def add_layer(self, name, layer, in_channels=None):
        """Stores `layer` as attribute `name`, to be built for `in_channels` input channels (None:
        a Block, which knows its own)."""
        setattr(self, name, layer)
        self._input_widths[name] = in_channels
        return layer

    def add_conv(self, name, filters, kernel_size, in_channels, stride=1, initializer=default_initializer):
        """A SymmetricPaddingConv (kernel from `initializer()`, bias zero) as attribute `name`."""
        return self.add_layer(name, SymmetricPaddingConv(filters, kernel_size, strides=stride,
                                                         kernel_initializer=initializer(), name=name),
                              in_channels)

    def add_normalization(self, name, kind, channels):
        """RAFT's `norm_fn` for `channels` channels as attribute `name`: "instance" -> instance_norm,
        "batch" -> a FrozenBatchNormalization, "none" -> identity."""
        if kind == "batch":
            return self.add_layer(name, FrozenBatchNormalization(name=name), channels)
        if kind not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}")
        setattr(self, name, instance_norm if kind == "instance" else identity)
        return getattr(self, name)

    def build(self, input_shape=None):
        for name, width in self._input_widths.items():
            getattr(self, name).build(None if width is None else (None, None, None, int(width)))
