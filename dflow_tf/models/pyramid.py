"""Feature pyramid shared by all frames (PWC-Net style, as in DDFlow / SelFlow)."""
import keras

from dflow_tf.models.layers import NEGATIVE_SLOPE, Conv, ConvStack

DEFAULT_CHANNELS = (16, 32, 64, 96, 128, 192)


@keras.saving.register_keras_serializable(package="dflow_tf")
class FeaturePyramid(ConvStack):
    """len(channels) levels; level l: two 3x3 convs named conv{l}_1 (stride 2) and conv{l}_2.

    Args:
      channels: output channels per level, finest first (default 16, 32, 64, 96, 128, 192).
      negative_slope: LeakyReLU slope after every conv (default 0.2).

    Call: images [B, H, W, 3] -> list of features, index i = level i + 1, each
    [B, H / 2^(i+1), W / 2^(i+1), channels[i]] (H, W multiples of 2^len(channels); otherwise
    sizes round up as TF "SAME" padding does).
    """

    def __init__(self, channels=DEFAULT_CHANNELS, negative_slope=NEGATIVE_SLOPE, **kwargs):
        super().__init__(**kwargs)
        self.channels = tuple(int(c) for c in channels)
        self.negative_slope = float(negative_slope)
        # One attribute per conv (conv1_1, conv1_2, conv2_1, ...) so that tf.train.Checkpoint
        # tracks them (Keras 3 lists are invisible to TF object-based checkpoints).
        self._conv_names = []
        for level, c in enumerate(self.channels, start=1):
            for k in (1, 2):
                name = f"conv{level}_{k}"
                setattr(self, name, Conv(c, strides=2 if k == 1 else 1,
                                         negative_slope=self.negative_slope, name=name))
                self._conv_names.append(name)

    def call(self, images):
        features = []
        x = images
        for k, conv in enumerate(self.convs):
            x = conv(x)
            if k % 2 == 1:
                features.append(x)
        return features

    def get_config(self):
        config = super().get_config()
        config.update(channels=list(self.channels), negative_slope=self.negative_slope)
        return config
