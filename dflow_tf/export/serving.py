"""The deployable flow graph: uint8 frames of any size in, flow in input pixels out.

Every export format wraps `flow_from_frames` (or its `tf.function`s from `serving_function`):

    frame1, frame2 (, frame3): uint8 [B, H, W, 3] RGB, all of the same shape
    -> flow: float32 [B, H, W, 2] in pixels of the input resolution (u = x, v = y);
       two-frame models: frame1 -> frame2; three-frame models (previous, centre, next):
       centre -> next (frame2 -> frame3).

A stereo model (`dflow_tf.models.stereo.StereoFromFlow`, a flow model on rectified pairs) has
the inputs left, right: uint8 [B, H, W, 3] and the output disparity: float32 [B, H, W, 1] in
input pixels, -u of the left -> right flow (the same graph, its u negated).

This is `dflow_tf.inference.predict_tensor`, the inference of predict_flow and the evaluation,
behind in-graph input checks: frames / 255, a bilinear resize up to the next multiple of
`model.size_multiple` (64), the network, and the flow resized back with u scaled by W / W' and v
by H / H' (with dynamic H, W the padded size is computed in the graph).
"""
import tensorflow as tf

from dflow_tf.inference import predict_tensor
from dflow_tf.models.stereo import StereoFromFlow
from dflow_tf.ops.conv import portable_ops

FRAME_NAMES = ("frame1", "frame2", "frame3")
OUTPUT_NAME = "flow"
STEREO_NAMES = ("left", "right")
STEREO_OUTPUT_NAME = "disparity"


def input_names(model):
    """("frame1", "frame2") for a two-frame model, ("frame1", "frame2", "frame3") for three,
    ("left", "right") for a StereoFromFlow."""
    if isinstance(model, StereoFromFlow):
        return STEREO_NAMES
    return FRAME_NAMES[:model.num_frames]


def output_name(model):
    """"flow", or "disparity" for a StereoFromFlow."""
    return STEREO_OUTPUT_NAME if isinstance(model, StereoFromFlow) else OUTPUT_NAME


def check_frames(frames, names):
    """In-graph checks of the serving inputs (they reach TF Serving's REST / gRPC clients).

    Args:
      frames: list of uint8 tensors, each meant to be [B, H, W, 3] (any rank accepted here).
      names: their input names (for the messages).

    Returns:
      the frames with static shape [None, None, None, 3], after assertions that every frame has
      rank 4, 3 channels and H, W >= 1, and that all frames have the same shape. Every check is
      well defined for any rank (a wrong-rank frame fails with its own message, not with an
      out-of-range index somewhere else).
    """
    prefix = "dflow_tf flow model:"
    checks, dims = [], []
    for frame, name in zip(frames, names):
        shape = tf.shape(frame)
        rank = tf.size(shape)
        padded = tf.concat([shape, tf.zeros([4], tf.int32)], axis=0)[:4]  # any rank -> 4 numbers
        dims.append(tf.concat([[rank], padded], axis=0))
        checks += [
            tf.debugging.Assert(tf.equal(rank, 4), [
                f"{prefix} {name} must be a batch of RGB images [B, H, W, 3] (rank 4); got shape",
                shape], name=f"check_{name}_rank", summarize=5),
            tf.debugging.Assert(tf.equal(tf.concat([[0], shape], axis=0)[-1], 3), [
                f"{prefix} {name} must have 3 (RGB) channels, [B, H, W, 3]; got shape", shape],
                name=f"check_{name}_channels", summarize=5),
            tf.debugging.Assert(tf.reduce_all(padded[1:3] > 0), [
                f"{prefix} {name} is empty (H or W is 0); got shape", shape],
                name=f"check_{name}_size", summarize=5),
        ]
    for (frame, name), frame_dims in zip(zip(frames[1:], names[1:]), dims[1:]):
        checks.append(tf.debugging.Assert(tf.reduce_all(tf.equal(frame_dims, dims[0])), [
            f"{prefix} all frames must have the same shape [B, H, W, 3]; got {names[0]}",
            tf.shape(frames[0]), name, tf.shape(frame)], name=f"check_{name}_same_shape", summarize=5))
    with tf.control_dependencies(checks):
        return [tf.ensure_shape(tf.identity(frame), [None, None, None, 3]) for frame in frames]


def flow_from_frames(model, frames, names=None, check=True):
    """uint8 frames -> flow (or, for a StereoFromFlow, disparity) at input resolution, as a graph
    (see the module docstring).

    Args:
      model: TwoFramePWC / ThreeFramePWC, or StereoFromFlow.
      frames: list of uint8 tensors [B, H, W, 3] (static or dynamic H, W): model.num_frames
        frames, or (left, right).
      names: input names for the error messages (default input_names(model)).
      check: add the in-graph input assertions of `check_frames` (for formats that keep them).

    Returns:
      float32 [B, H, W, 2] (flow), or [B, H, W, 1] (disparity of a StereoFromFlow).
    """
    names = names or input_names(model)
    if check:
        frames = check_frames(frames, names)
    with portable_ops():  # the plain TF ops, whatever backend traces the export (docs/models.md)
        if isinstance(model, StereoFromFlow):
            return model.disparity(*frames)
        return predict_tensor(model, tf.stack(frames, axis=1))


def serving_function(model, height=None, width=None, batch=None, check=True, rank_known=False):
    """A tf.function {frame1, frame2[, frame3]: uint8} -> {"flow": float32 [B, H, W, 2]}; for a
    StereoFromFlow {left, right: uint8} -> {"disparity": float32 [B, H, W, 1]}.

    Args:
      model: TwoFramePWC / ThreeFramePWC, or StereoFromFlow.
      height, width, batch: fixed input sizes (None = dynamic).
      check: in-graph input assertions (`check_frames`).
      rank_known: declare the inputs as rank 4 (shape [batch, height, width, 3]). Without it and
        with all sizes dynamic the inputs are declared of unknown shape, so that a wrong rank or
        channel count reaches the in-graph assertions (with their messages) instead of whatever a
        serving runtime does with a feed that contradicts the declared shape.

    Returns:
      the tf.function; call `.get_concrete_function()` for the signature.
    """
    names, output = input_names(model), output_name(model)
    dynamic = height is None and width is None and batch is None
    shape = None if dynamic and not rank_known else [batch, height, width, 3]
    signature = [tf.TensorSpec(shape, tf.uint8, name=name) for name in names]

    @tf.function(input_signature=signature)
    def serve(*frames):
        result = flow_from_frames(model, list(frames), names, check=check)
        return {output: tf.identity(result, name=output)}

    return serve
