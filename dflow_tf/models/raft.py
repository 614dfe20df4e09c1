"""RAFT (Teed and Deng, ECCV 2020) and RAFT-small, after the reference code princeton-vl/RAFT `core/`.

The forward pass, for frames I1, I2 in [0, 1] (`_estimate`):
  1. images 2 I - 1; the feature encoder (instance norm) maps both frames to f1, f2 at 1/8
     resolution (one batch);
  2. the all-pairs correlation volume <f1, f2> / sqrt(C), average-pooled into 4 levels
     (`correlation="on_demand"`: no volume; frame 2's features average-pooled into 4 levels, and
     every lookup computes its windows from them, the same values in O(H W) memory);
  3. the context encoder maps I1 to the initial hidden state tanh(h) and the context relu(c);
  4. the flow starts at zero; each of `iterations` steps looks up the correlation around each
     pixel's target x + flow (radius 4, small: 3), runs the update block (motion encoder, GRU,
     flow head) and adds its delta to the flow, then upsamples the flow x8 (RAFT: convex
     combination with the mask head's weights; small: bilinear). The flow entering a step is a
     constant for the gradient (the reference's `coords1.detach()`).

Output contract (docs/models.md), that of the PWC family:
  model(frames)               -> the output dict of the flow frame 1 -> frame 2;
  model.bidirectional(frames) -> {"forward": dict, "backward": dict (frame 2 -> frame 1)}, both
                                 directions as one batch of 2B.
Output dicts, for a batch of B and input H x W (multiples of 8), T = iterations:
  "flow":            float32 [B, H, W, 2], the last iteration's flow at full resolution (px,
                     channel 0 = u);
  "flow_iterations": float32 [B, T, H, W, 2], every iteration's full-resolution flow in order
                     (flow_iterations[:, -1] is "flow").
"""
import keras
import tensorflow as tf

from dflow_tf import ops as flow_ops
from dflow_tf.models.raft_correlation import (
    CORRELATION_LEVELS,
    all_pairs_correlation,
    correlation_pyramid,
    feature_pyramid,
    lookup_correlation,
    lookup_on_demand,
)
from dflow_tf.models.raft_encoder import BasicEncoder, SmallEncoder
from dflow_tf.models.raft_layers import shape_of
from dflow_tf.models.raft_update import UpdateBlock
from dflow_tf.models.raft_upsampling import NEIGHBOURS, convex_upsample

#: The encoders' output stride: the update operator runs at 1/8 resolution.
STRIDE = 8
#: Default number of update iterations (the reference's `iters`).
ITERATIONS = 12
#: The two ways to compute the correlation windows (the `correlation` argument of both models).
CORRELATIONS = ("all_pairs", "on_demand")


def pixel_grid(height, width):
    """float32 [1, height, width, 2]: the (x, y) position of every pixel."""
    x, y = tf.meshgrid(tf.range(width, dtype=tf.float32), tf.range(height, dtype=tf.float32))
    return tf.stack([x, y], axis=-1)[tf.newaxis]


def _swap_halves(x):
    """[2N, ...] -> the two batch halves exchanged."""
    return tf.roll(x, shift=tf.shape(x)[0] // 2, axis=0)


class _RAFTFamily(keras.Model):
    """Common machinery; the subclasses give the sizes, the encoders, the update block and the
    upsampling."""

    num_frames = 2
    #: Input height and width must be multiples of this.
    size_multiple = STRIDE
    hidden_dim = context_dim = radius = feature_dim = None
    encoder_class = None  # BasicEncoder or SmallEncoder
    context_norm = None  # "batch" or "none"

    def __init__(self, iterations=ITERATIONS, correlation="all_pairs", **kwargs):
        super().__init__(**kwargs)
        if int(iterations) < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if correlation not in CORRELATIONS:
            raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
        self.iterations = int(iterations)
        self.correlation = correlation
        self.fnet = self.encoder_class(self.feature_dim, "instance", name="fnet")
        self.cnet = self.encoder_class(self.hidden_dim + self.context_dim, self.context_norm, name="cnet")
        self.update_block = self.make_update_block(name="update_block")
        self.build((None, self.num_frames, None, None, 3))

    @property
    def correlation_channels(self):
        """Channels of the looked-up correlation: levels * (2r+1)^2."""
        return CORRELATION_LEVELS * (2 * self.radius + 1) ** 2

    def make_update_block(self, name):
        raise NotImplementedError

    def upsample(self, flow, hidden):
        """flow [B, h, w, 2] at 1/8 resolution and the hidden state -> flow [B, 8h, 8w, 2] (px)."""
        raise NotImplementedError

    def build(self, input_shape):
        for layer in (self.fnet, self.cnet, self.update_block):
            layer.build(None)

    # ----------------------------------------------------------------------------- forward
    def _images(self, frames):
        """frames float [B, 2, H, W, 3] in [0, 1] -> (frame 1, frame 2), each [B, H, W, 3] in
        [-1, 1] (2 x - 1) in the compute dtype."""
        frames = tf.convert_to_tensor(frames)
        shape = frames.shape
        if shape.rank != 5 or shape[1] != self.num_frames or shape[-1] != 3 or not frames.dtype.is_floating:
            raise ValueError(f"{type(self).__name__}: frames must be float [B, 2, H, W, 3] in [0, 1], got "
                             f"{frames.dtype.name} {shape}")
        odd = [f"{axis}={size}" for axis, size in zip("HW", shape[2:4])
               if size is not None and size % self.size_multiple]
        if odd:
            raise ValueError(f"{type(self).__name__}: {', '.join(odd)} not a multiple of {self.size_multiple}; "
                             f"use dflow_tf.predict_flow for any size")
        images = 2.0 * tf.cast(frames, self.compute_dtype) - 1.0
        return images[:, 0], images[:, 1]

    def _estimate(self, features1, features2, images1):
        """The flow from frame 1 to frame 2 given both frames' features [B, h, w, feature_dim] and
        frame 1's images [B, H, W, 3] in [-1, 1]; returns the output dict (module docstring)."""
        if self.correlation == "all_pairs":
            pyramid = correlation_pyramid(all_pairs_correlation(features1, features2), CORRELATION_LEVELS)

            def lookup(targets):
                return lookup_correlation(pyramid, targets, self.radius)
        else:  # on_demand: frame 2's pooled features, the windows computed at every lookup
            pyramid2 = feature_pyramid(features2, CORRELATION_LEVELS)

            def lookup(targets):
                return lookup_on_demand(features1, pyramid2, targets, self.radius)
        hidden, context = tf.split(self.cnet(images1), [self.hidden_dim, self.context_dim], axis=-1)
        hidden, context = tf.tanh(hidden), tf.nn.relu(context)
        batch, height, width, _ = shape_of(features1)
        grid = pixel_grid(height, width)
        flow = tf.zeros([batch, height, width, 2], tf.float32)
        flows = []
        for _ in range(self.iterations):
            flow = tf.stop_gradient(flow)
            correlation = lookup(grid + flow)
            hidden, delta = self.update_block(hidden, context, tf.cast(correlation, hidden.dtype),
                                              tf.cast(flow, hidden.dtype))
            flow = flow + tf.cast(delta, tf.float32)
            flows.append(self.upsample(flow, hidden))
        return {"flow": flows[-1], "flow_iterations": tf.stack(flows, axis=1)}

    def call(self, frames):
        first, second = self._images(frames)
        features1, features2 = tf.split(self.fnet(tf.concat([first, second], axis=0)), 2, axis=0)
        return self._estimate(features1, features2, first)

    def bidirectional(self, frames):
        first, second = self._images(frames)
        images = tf.concat([first, second], axis=0)  # [2B]: frame 1 of every pair, then frame 2
        features = self.fnet(images)
        outputs = self._estimate(features, _swap_halves(features), images)  # 1 -> 2, then 2 -> 1
        halves = {key: tf.split(value, 2, axis=0) for key, value in outputs.items()}
        return {direction: {key: value[index] for key, value in halves.items()}
                for index, direction in enumerate(("forward", "backward"))}

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "iterations": self.iterations,
                "correlation": self.correlation}


@keras.saving.register_keras_serializable(package="dflow_tf")
class RAFT(_RAFTFamily):
    """RAFT (5,257,536 trainable parameters, as the reference; plus 2,880 batch-norm statistics).

    Feature encoder: BasicEncoder, instance norm, 256 channels; context encoder: BasicEncoder,
    frozen batch norm, 128 hidden + 128 context channels; correlation radius 4 (4 levels, 324
    channels); update block: motion encoder (324 -> 256 -> 192; flow 2 -> 128 -> 64; 126 + 2),
    separable ConvGRU (1x5, 5x1; hidden 128, input 256), flow head (256), mask head (256 -> 576);
    convex x8 upsampling.

    Args:
      iterations: update iterations T (default 12).
      correlation: "all_pairs" (default; the reference's volume, (H/8 * W/8)^2 values per pair) or
        "on_demand" (`lookup_on_demand`: the same windows computed from the features at every
        iteration, the reference's `alternate_corr`; memory linear in the pixel count).

    Call:
      model(frames): frames float32 [B, 2, H, W, 3] in [0, 1], H and W multiples of 8 ->
        {"flow": [B, H, W, 2], "flow_iterations": [B, T, H, W, 2]}, frame 1 -> frame 2.
      model.bidirectional(frames): {"forward": dict (1 -> 2), "backward": dict (2 -> 1)}, the
        encoders run once on both frames and both directions iterate as one batch of 2B.
    """

    hidden_dim, context_dim, radius, feature_dim = 128, 128, 4, 256
    encoder_class = BasicEncoder
    context_norm = "batch"

    def make_update_block(self, name):
        return UpdateBlock(self.hidden_dim, self.context_dim, self.correlation_channels, (256, 192), (128, 64),
                           126, ((1, 5), (5, 1)), 256, mask_channels=NEIGHBOURS * STRIDE ** 2, name=name)

    def upsample(self, flow, hidden):
        return convex_upsample(flow, self.update_block.upsampling_mask(hidden), STRIDE)


@keras.saving.register_keras_serializable(package="dflow_tf")
class RAFTSmall(_RAFTFamily):
    """RAFT-small (990,162 parameters, as the reference).

    Feature encoder: SmallEncoder, instance norm, 128 channels; context encoder: SmallEncoder, no
    normalisation, 96 hidden + 64 context channels; correlation radius 3 (4 levels, 196
    channels); update block: motion encoder (196 -> 96; flow 2 -> 64 -> 32; 80 + 2), ConvGRU (3x3;
    hidden 96, input 146), flow head (128); bilinear x8 upsampling (`dflow_tf.ops.resize_flow`).

    Args and call: as RAFT.
    """

    hidden_dim, context_dim, radius, feature_dim = 96, 64, 3, 128
    encoder_class = SmallEncoder
    context_norm = "none"

    def make_update_block(self, name):
        return UpdateBlock(self.hidden_dim, self.context_dim, self.correlation_channels, (96,), (64, 32), 80,
                           (3,), 128, name=name)

    def upsample(self, flow, hidden):
        _, height, width, _ = shape_of(flow)
        return flow_ops.resize_flow(flow, (STRIDE * height, STRIDE * width))
