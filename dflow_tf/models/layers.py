"""Convolution building block shared by the flow networks."""
import keras
import tensorflow as tf

from dflow_tf.ops.conv import conv2d_same, portable_ops_active

#: LeakyReLU slope after every convolution of the flow networks (docs/method.md §1.1).
NEGATIVE_SLOPE = 0.2


def leaky_relu(x, negative_slope):
    """tf.nn.leaky_relu whose gradient reads the activation's output instead of its input.

    Same values and gradient (the output has the sign of the input). Under oneDNN, grappler's
    remapper fuses Conv2D + BiasAdd + LeakyRelu into one node and deletes the BiasAdd that the
    stock gradient, LeakyReluGrad(dy, features=BiasAdd), still reads; the pass then fails for the
    whole training graph ("remapper failed: ... fanout '.../LeakyReluGrad' exist for missing node
    '.../BiasAdd'") and the graph runs unfused. The fused node keeps the LeakyRelu's name, so a
    gradient that reads the output survives the fusion. Inside `ops.conv.portable_ops()` (exports)
    it is the stock op.
    """
    if portable_ops_active():
        return tf.nn.leaky_relu(x, alpha=negative_slope)

    @tf.custom_gradient
    def activation(x):
        y = tf.nn.leaky_relu(x, alpha=negative_slope)
        return y, lambda dy: tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=negative_slope)

    return activation(x)


@keras.saving.register_keras_serializable(package="dflow_tf")
class Conv(keras.layers.Conv2D):
    """3x3 (by default) 'same' convolution + bias, optionally followed by LeakyReLU.

    Same weights (``kernel`` HWIO, ``bias``) and TF "SAME" padding as ``keras.layers.Conv2D`` and
    TF1 ``slim.conv2d``. The convolution is ``dflow_tf.ops.conv2d_same``, which picks the fastest
    exact formulation for the device, dtype and shape (native, space-to-batch for dilations
    without a native gradient, row strips for oneDNN's slow batch of one; docs/models.md), then
    ``tf.nn.bias_add`` + ``tf.nn.leaky_relu``.

    Args:
      filters: output channels.
      negative_slope: LeakyReLU slope, or None for a linear output (the layers that output flow).
      kernel_size, strides, dilation_rate, name, ...: as ``keras.layers.Conv2D``.

    Call: x [B, H, W, C_in] -> [B, ceil(H / stride), ceil(W / stride), filters].
    """

    def __init__(self, filters, kernel_size=3, negative_slope=NEGATIVE_SLOPE, **kwargs):
        kwargs.setdefault("padding", "same")
        if kwargs.get("activation") is not None:
            raise ValueError("Conv takes negative_slope, not activation")
        kwargs.pop("activation", None)
        super().__init__(filters, kernel_size, **kwargs)
        if self.padding != "same" or self.data_format != "channels_last" or self.groups != 1:
            raise ValueError("Conv supports padding='same', channels_last, groups=1 only")
        if self.strides[0] != self.strides[1] or self.dilation_rate[0] != self.dilation_rate[1]:
            raise ValueError(f"Conv supports equal strides / dilations along H and W, got "
                             f"{self.strides} / {self.dilation_rate}")
        self.negative_slope = None if negative_slope is None else float(negative_slope)

    def call(self, inputs):
        x = conv2d_same(inputs, self.kernel, stride=self.strides[0], dilation=self.dilation_rate[0])
        if self.use_bias:
            x = tf.nn.bias_add(x, self.bias)
        if self.negative_slope is not None:
            x = leaky_relu(x, self.negative_slope)
        return x

    def get_config(self):
        config = super().get_config()
        config.pop("activation", None)
        config["negative_slope"] = self.negative_slope
        return config


class ConvStack(keras.layers.Layer):
    """Base of the layers made of a chain of `Conv`s held as named attributes.

    Subclasses create each conv as an attribute (so tf.train.Checkpoint and the TF1 importer see
    one name per conv) and list the names, in order, in `self._conv_names`.
    """

    @property
    def convs(self):
        """All convs in order."""
        return [getattr(self, name) for name in self._conv_names]

    def build(self, input_shape):
        c_in = input_shape[-1]
        for conv in self.convs:
            conv.build((None, None, None, c_in))
            c_in = conv.filters
