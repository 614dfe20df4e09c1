"""Convolution building block shared by the flow networks."""
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="dflow_tf")
class Conv(keras.layers.Conv2D):
    """3x3 (by default) 'same' convolution + bias, optionally followed by LeakyReLU.

    Same weights (``kernel`` HWIO, ``bias``) and TF "SAME" padding as ``keras.layers.Conv2D`` and
    TF1 ``slim.conv2d``; the call goes straight to ``tf.nn.conv2d`` (which also handles dilation
    natively, much faster on CPU than the space-to-batch path Keras uses for dilated kernels) and
    ``tf.nn.bias_add`` + ``tf.nn.leaky_relu``, a pattern that grappler / oneDNN and XLA fuse.

    Args:
      filters: output channels.
      negative_slope: LeakyReLU slope, or None for a linear output (the layers that output flow).
      kernel_size, strides, dilation_rate, name, ...: as ``keras.layers.Conv2D``.

    Call: x [B, H, W, C_in] -> [B, ceil(H / stride), ceil(W / stride), filters].
    """

    def __init__(self, filters, kernel_size=3, negative_slope=0.2, **kwargs):
        kwargs.setdefault("padding", "same")
        if kwargs.get("activation") is not None:
            raise ValueError("Conv takes negative_slope, not activation")
        kwargs.pop("activation", None)
        super().__init__(filters, kernel_size, **kwargs)
        if self.padding != "same" or self.data_format != "channels_last" or self.groups != 1:
            raise ValueError("Conv supports padding='same', channels_last, groups=1 only")
        self.negative_slope = None if negative_slope is None else float(negative_slope)

    def call(self, inputs):
        x = tf.nn.conv2d(inputs, self.kernel, strides=self.strides, padding="SAME",
                         dilations=self.dilation_rate)
        if self.use_bias:
            x = tf.nn.bias_add(x, self.bias)
        if self.negative_slope is not None:
            x = tf.nn.leaky_relu(x, alpha=self.negative_slope)
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
