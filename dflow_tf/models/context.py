"""Dilated context network that refines the finest estimated flow."""
import keras

from dflow_tf.models.layers import NEGATIVE_SLOPE, Conv, ConvStack

DEFAULT_FILTERS = (128, 128, 128, 96, 64, 32)
DEFAULT_DILATIONS = (1, 2, 4, 8, 16, 1)


@keras.saving.register_keras_serializable(package="dflow_tf")
class ContextNetwork(ConvStack):
    """3x3 convs dilated_conv1..6 (LeakyReLU, dilated) and dilated_conv7 (2 channels, linear).

    Args:
      filters: widths of the hidden convs (default 128, 128, 128, 96, 64, 32).
      dilations: their dilation rates (default 1, 2, 4, 8, 16, 1); the output conv has rate 1.
      negative_slope: LeakyReLU slope (default 0.2).

    Call: x [B, h, w, C_in] -> [B, h, w, 2]. Whether the output is added to the flow (DDFlow) or
    replaces it (SelFlow) is the flow model's `context_residual` option.
    """

    def __init__(self, filters=DEFAULT_FILTERS, dilations=DEFAULT_DILATIONS, negative_slope=NEGATIVE_SLOPE,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.dilations = tuple(int(d) for d in dilations)
        if len(self.filters) != len(self.dilations):
            raise ValueError(f"ContextNetwork: filters {self.filters} and dilations "
                             f"{self.dilations} differ in length")
        self.negative_slope = float(negative_slope)
        # One attribute per conv (dilated_conv1 .. 7) so that tf.train.Checkpoint tracks them.
        self._conv_names = [f"dilated_conv{i}" for i in range(1, len(self.filters) + 2)]
        for name, f, d in zip(self._conv_names, self.filters, self.dilations):
            setattr(self, name, Conv(f, dilation_rate=d, negative_slope=self.negative_slope,
                                     name=name))
        setattr(self, self._conv_names[-1], Conv(2, negative_slope=None, name=self._conv_names[-1]))

    def call(self, x):
        for conv in self.convs:
            x = conv(x)
        return x

    def get_config(self):
        config = super().get_config()
        config.update(filters=list(self.filters), dilations=list(self.dilations),
                      negative_slope=self.negative_slope)
        return config
