"""Per-level flow estimator (plain CNN, no dense connections) of DDFlow / SelFlow."""
import keras

from dflow_tf.models.layers import NEGATIVE_SLOPE, Conv, ConvStack

DEFAULT_FILTERS = (128, 128, 96, 64, 32)


@keras.saving.register_keras_serializable(package="dflow_tf")
class FlowEstimator(ConvStack):
    """3x3 convs conv1..conv5 (LeakyReLU) and conv6 (2 channels, linear).

    Args:
      filters: widths of the hidden convs (default 128, 128, 96, 64, 32).
      negative_slope: LeakyReLU slope (default 0.2).

    Call: x [B, h, w, C_in] (the level's estimator input, see the flow models) ->
    (features [B, h, w, filters[-1]] = output of the last hidden conv, flow [B, h, w, 2]).
    The flow is the level's full flow, not a residual.
    """

    def __init__(self, filters=DEFAULT_FILTERS, negative_slope=NEGATIVE_SLOPE, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.negative_slope = float(negative_slope)
        # One attribute per conv (conv1 .. conv6) so that tf.train.Checkpoint tracks them.
        self._conv_names = [f"conv{i}" for i in range(1, len(self.filters) + 2)]
        for name, f in zip(self._conv_names, self.filters):
            setattr(self, name, Conv(f, negative_slope=self.negative_slope, name=name))
        setattr(self, self._conv_names[-1], Conv(2, negative_slope=None, name=self._conv_names[-1]))

    def call(self, x):
        *hidden, flow_conv = self.convs
        for conv in hidden:
            x = conv(x)
        return x, flow_conv(x)

    def get_config(self):
        config = super().get_config()
        config.update(filters=list(self.filters), negative_slope=self.negative_slope)
        return config
