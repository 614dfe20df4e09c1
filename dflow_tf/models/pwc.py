"""PWC-Net-style flow models of DDFlow (two frames) and SelFlow (three frames).

Both models share the structure of docs/method.md §1: a feature pyramid (weights shared by
all frames), one FlowEstimator per level from the coarsest level down to level 2 (separate
weights per level), each predicting the level's full flow from a cost volume against the
warped target features, and a dilated ContextNetwork at level 2. The level-2 flow is
upsampled x4 (bilinear, vectors scaled) to the input resolution.

Output contract (docs/models.md), the same for both models:
  model(frames)               -> the output dict of the forward flow of the model's pair
                                 (two frames: 1 -> 2; three frames: centre -> next);
  model.bidirectional(frames) -> {"forward": dict, "backward": dict} (two frames: 2 -> 1;
                                 three frames: centre -> previous).
Output dicts (one per flow direction) hold, for a batch of B and input H x W:
  "flow":          [B, H, W, 2] full-resolution flow (the one the losses use);
  "flow_refined":  [B, H/4, W/4, 2] level-2 flow after the context network;
  "flow_level{l}": [B, H/2^l, W/2^l, 2] the estimator output of level l (l = num_levels .. 2),
                   before the context network.
"""
import keras
import tensorflow as tf

from dflow_tf import ops as flow_ops
from dflow_tf.models.context import ContextNetwork
from dflow_tf.models.estimator import FlowEstimator
from dflow_tf.models.layers import NEGATIVE_SLOPE
from dflow_tf.models.pyramid import DEFAULT_CHANNELS, FeaturePyramid
from dflow_tf.ops.correlation import SEARCH_RANGE

FINEST_LEVEL = 2  # the last estimator runs at 1/4 resolution


def _spatial_size(x):
    """(h, w) of an NHWC tensor: Python ints when static (XLA-friendly), else a tensor."""
    static = x.shape[1:3]
    if static.is_fully_defined():
        return tuple(int(s) for s in static)
    return tf.shape(x)[1:3]


def _swap_halves(x):
    """[2N, ...] -> the two batch halves exchanged (fw <-> bw in a stacked fw/bw batch)."""
    first, second = tf.split(x, 2, axis=0)
    return tf.concat([second, first], axis=0)


def _split_halves(outputs):
    """Dict of [2N, ...] tensors -> two dicts of [N, ...] tensors."""
    first, second = {}, {}
    for key, value in outputs.items():
        first[key], second[key] = tf.split(value, 2, axis=0)
    return first, second


def _normalize_images(images):
    """Per image and channel (x - mean) / std over H, W (SelFlow's `mvn`). [N,H,W,C] -> same."""
    mean, var = tf.nn.moments(images, axes=[1, 2], keepdims=True)
    return (images - mean) / tf.sqrt(var + 1e-12)


class _PyramidFlowModel(keras.Model):
    """Common machinery; subclasses define the frame count and the estimator/context inputs."""

    num_frames = None  # set by subclasses

    def __init__(self, num_levels=6, channels=None, negative_slope=NEGATIVE_SLOPE, search_range=SEARCH_RANGE,
                 context_residual=True, normalize_input=False, normalize_estimator_features=False,
                 **kwargs):
        super().__init__(**kwargs)
        num_levels = int(num_levels)
        if channels is None:
            if not FINEST_LEVEL <= num_levels <= len(DEFAULT_CHANNELS):
                raise ValueError(f"num_levels must be in [{FINEST_LEVEL}, {len(DEFAULT_CHANNELS)}] "
                                 f"without explicit channels, got {num_levels}")
            channels = DEFAULT_CHANNELS[:num_levels]
        channels = tuple(int(c) for c in channels)
        if len(channels) != num_levels or num_levels < FINEST_LEVEL:
            raise ValueError(f"channels {channels} must have num_levels={num_levels} (>= "
                             f"{FINEST_LEVEL}) entries")
        if int(search_range) < 0:
            raise ValueError(f"search_range must be >= 0, got {search_range}")
        self.num_levels = num_levels
        self.channels = channels
        self.negative_slope = float(negative_slope)
        self.search_range = int(search_range)
        self.context_residual = bool(context_residual)
        self.normalize_input = bool(normalize_input)
        self.normalize_estimator_features = bool(normalize_estimator_features)

        self.feature_pyramid = FeaturePyramid(channels, self.negative_slope,
                                              name="feature_extractor")
        # One attribute per estimator (estimator_level_6 .. _2): tf.train.Checkpoint tracks
        # attributes, not Keras 3 lists.
        for level in self.levels:
            setattr(self, f"estimator_level_{level}",
                    FlowEstimator(negative_slope=self.negative_slope, name=f"estimator_level_{level}"))
        self.context_network = ContextNetwork(negative_slope=self.negative_slope,
                                              name="context_network")
        self.build((None, self.num_frames, None, None, 3))

    # ----------------------------------------------------------------------------- structure
    @property
    def levels(self):
        """Estimator levels, coarsest first: (num_levels, ..., 2)."""
        return tuple(range(self.num_levels, FINEST_LEVEL - 1, -1))

    @property
    def estimators(self):
        """FlowEstimators of self.levels, coarsest first (separate weights per level)."""
        return [getattr(self, f"estimator_level_{level}") for level in self.levels]

    @property
    def size_multiple(self):
        """Input height and width must be multiples of this (2^num_levels)."""
        return 2 ** self.num_levels

    @property
    def cost_channels(self):
        return (2 * self.search_range + 1) ** 2

    def estimator_input_channels(self, level):
        raise NotImplementedError

    def context_input_channels(self):
        raise NotImplementedError

    def build(self, input_shape):
        self.feature_pyramid.build((None, None, None, 3))
        for level, estimator in zip(self.levels, self.estimators):
            estimator.build((None, None, None, self.estimator_input_channels(level)))
        self.context_network.build((None, None, None, self.context_input_channels()))

    # ----------------------------------------------------------------------------- forward
    def _check_frames(self, frames):
        frames = tf.convert_to_tensor(frames)
        shape = frames.shape
        if shape.rank != 5 or shape[1] != self.num_frames or shape[-1] != 3:
            raise ValueError(f"{type(self).__name__}: frames must be [B, {self.num_frames}, H, W, 3], "
                             f"got shape {shape}")
        for dim, name in ((shape[2], "H"), (shape[3], "W")):
            if dim is not None and dim % self.size_multiple:
                raise ValueError(f"{type(self).__name__}: {name}={dim} is not a multiple of "
                                 f"{self.size_multiple}; use dflow_tf.predict_flow for any size")
        if not frames.dtype.is_floating:
            raise ValueError(f"{type(self).__name__}: frames must be float in [0, 1], got "
                             f"{frames.dtype.name}")
        return tf.cast(frames, self.compute_dtype)

    def _features(self, frames):
        """[B, F, H, W, 3] -> list over frames of per-level feature lists (pyramid run once)."""
        images = tf.concat(tf.unstack(frames, axis=1), axis=0)  # [F*B, H, W, 3], frame-major
        if self.normalize_input:
            images = _normalize_images(images)
        features = self.feature_pyramid(images)
        per_frame = [tf.split(f, self.num_frames, axis=0) for f in features]
        return [[level[i] for level in per_frame] for i in range(self.num_frames)]

    def _estimator_input(self, cost, features, flow):
        raise NotImplementedError

    def _context_input(self, features, flow):
        raise NotImplementedError

    def _decode(self, reference, target, image_size):
        """Coarse-to-fine flow from `reference` to `target` features (lists over levels 1..L).

        Returns the output dict described in the module docstring.
        """
        outputs = {}
        flow = None
        for level, estimator in zip(self.levels, self.estimators):
            ref, tgt = reference[level - 1], target[level - 1]
            if flow is None:
                # Zeros of the features' shape, not zeros_like(features): ZerosLike takes the
                # features as an input, a fanout of the fused Conv2D + BiasAdd + LeakyRelu that
                # grappler's remapper breaks under oneDNN (docs/models.md, "CPU backends: how each
                # convolution runs", the LeakyReLU paragraph).
                flow = tf.zeros(tf.concat([tf.shape(ref)[:3], [2]], axis=0), ref.dtype)
                warped = tgt  # warping by zero flow is the identity
            else:
                flow = flow_ops.resize_flow(flow, _spatial_size(ref))
                warped, _ = flow_ops.backward_warp(tgt, flow)
            cost = flow_ops.cost_volume(ref, warped, max_displacement=self.search_range,
                                        normalize=True)
            if self.normalize_estimator_features:
                ref = tf.nn.l2_normalize(ref, axis=-1)
            features, flow = estimator(self._estimator_input(cost, ref, flow))
            outputs[f"flow_level{level}"] = flow
        refined = self.context_network(self._context_input(features, flow))
        if self.context_residual:
            refined = refined + flow
        outputs["flow_refined"] = refined
        outputs["flow"] = flow_ops.resize_flow(refined, image_size)
        return outputs

    def bidirectional(self, frames):
        """{"forward": dict, "backward": dict} (the output contract); see the subclasses."""
        raise NotImplementedError

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "num_levels": self.num_levels,
            "channels": list(self.channels),
            "negative_slope": self.negative_slope,
            "search_range": self.search_range,
            "context_residual": self.context_residual,
            "normalize_input": self.normalize_input,
            "normalize_estimator_features": self.normalize_estimator_features,
        }


@keras.saving.register_keras_serializable(package="dflow_tf")
class TwoFramePWC(_PyramidFlowModel):
    """DDFlow's two-frame network (4,273,628 parameters with the defaults).

    Estimator input at level l: [cost volume (2r+1)^2, frame-1 features C_l, flow 2]
    (275 / 211 / 179 / 147 / 115 channels at levels 6..2); context input [conv5 features 32,
    flow 2] = 34 channels.

    Args:
      num_levels: pyramid levels (default 6); estimators run at levels num_levels..2 and the
        input size must be a multiple of 2^num_levels.
      channels: pyramid channels per level (default 16, 32, 64, 96, 128, 192).
      negative_slope: LeakyReLU slope (default 0.2).
      search_range: cost-volume max displacement r (default 4 -> 81 channels).
      context_residual: add the context output to the flow (DDFlow: True).
      normalize_input: per image and channel (x - mean) / std of the inputs inside the model
        (SelFlow's Sintel fine-tuned release does this; default False = plain [0, 1] input).
      normalize_estimator_features: feed L2-normalised (along channels) frame-1 features to the
        estimator, as DDFlow's TF1 code does (default True); the cost volume always uses
        normalised features.

    Call:
      model(frames): frames float32 [B, 2, H, W, 3] in [0, 1], H and W multiples of 64 ->
        dict of the frame1 -> frame2 flow ("flow" [B, H, W, 2], "flow_refined",
        "flow_level6".."flow_level2"; see dflow_tf.models.pwc).
      model.bidirectional(frames): {"forward": dict (1 -> 2), "backward": dict (2 -> 1)}, the
        same as model(frames) and model(frames[:, ::-1]) but with the pyramid computed once and
        both directions decoded as one batch of 2B.
    """

    num_frames = 2

    def __init__(self, context_residual=True, normalize_estimator_features=True, **kwargs):
        super().__init__(context_residual=context_residual,
                         normalize_estimator_features=normalize_estimator_features, **kwargs)

    def estimator_input_channels(self, level):
        return self.cost_channels + self.channels[level - 1] + 2

    def context_input_channels(self):
        return self.estimators[-1].filters[-1] + 2

    def _estimator_input(self, cost, features, flow):
        return tf.concat([cost, features, flow], axis=-1)

    def _context_input(self, features, flow):
        return tf.concat([features, flow], axis=-1)

    def call(self, frames):
        frames = self._check_frames(frames)
        first, second = self._features(frames)
        return self._decode(first, second, _spatial_size(frames[:, 0]))

    def bidirectional(self, frames):
        frames = self._check_frames(frames)
        first, second = self._features(frames)
        reference = [tf.concat([a, b], axis=0) for a, b in zip(first, second)]
        target = [_swap_halves(x) for x in reference]
        forward, backward = _split_halves(
            self._decode(reference, target, _spatial_size(frames[:, 0])))
        return {"forward": forward, "backward": backward}


@keras.saving.register_keras_serializable(package="dflow_tf")
class ThreeFramePWC(_PyramidFlowModel):
    """SelFlow's three-frame network (4,790,876 parameters with the defaults).

    For the centre frame t of (t-1, t, t+1) it predicts the forward flow t -> t+1 and the
    backward flow t -> t-1 with the SAME estimator and context weights. At each level
    cv_fw = corr(f_t, warp(f_t+1, flow_fw)), cv_bw = corr(f_t, warp(f_t-1, flow_bw));
    forward estimator input [cv_fw, cv_bw, f_t, flow_fw, -flow_bw], backward input
    [cv_bw, cv_fw, f_t, flow_bw, -flow_fw] (358 / 294 / 262 / 230 / 198 channels at levels
    6..2); context input [conv5_fw, conv5_bw, flow_fw, -flow_bw] (mirrored for backward) = 68.
    Both directions run as one batch of 2B.

    Args: as TwoFramePWC, with SelFlow's defaults context_residual=False and
      normalize_estimator_features=False (SelFlow feeds the raw f_t to the estimator).

    Call:
      model.bidirectional(frames): frames float32 [B, 3, H, W, 3] in [0, 1] (previous, centre,
        next), H and W multiples of 64 -> {"forward": dict (t -> t+1), "backward": dict
        (t -> t-1)} (keys as in dflow_tf.models.pwc). Note "backward" is centre -> previous,
        not next -> centre.
      model(frames): the "forward" dict of model.bidirectional(frames) (both directions are
        computed: each direction's estimator reads the other's cost volume).
    """

    num_frames = 3

    def __init__(self, context_residual=False, normalize_estimator_features=False, **kwargs):
        super().__init__(context_residual=context_residual,
                         normalize_estimator_features=normalize_estimator_features, **kwargs)

    def estimator_input_channels(self, level):
        return 2 * self.cost_channels + self.channels[level - 1] + 4

    def context_input_channels(self):
        return 2 * self.estimators[-1].filters[-1] + 4

    def _estimator_input(self, cost, features, flow):
        return tf.concat([cost, _swap_halves(cost), features, flow, -_swap_halves(flow)], axis=-1)

    def _context_input(self, features, flow):
        return tf.concat([features, _swap_halves(features), flow, -_swap_halves(flow)], axis=-1)

    def call(self, frames):
        return self.bidirectional(frames)["forward"]

    def bidirectional(self, frames):
        frames = self._check_frames(frames)
        previous, centre, following = self._features(frames)
        # Stack (forward, backward) along the batch: reference f_t twice, targets f_t+1, f_t-1.
        reference = [tf.concat([c, c], axis=0) for c in centre]
        target = [tf.concat([n, p], axis=0) for n, p in zip(following, previous)]
        forward, backward = _split_halves(
            self._decode(reference, target, _spatial_size(frames[:, 1])))
        return {"forward": forward, "backward": backward}
