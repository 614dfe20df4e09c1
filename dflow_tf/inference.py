"""Flow prediction for images of any size with a two- or three-frame flow model."""
import numpy as np
import tensorflow as tf

from dflow_tf import ops as flow_ops


def _frames_to_array(frames, num_frames):
    """Validates `frames` and returns ([B, F, H, W, 3] uint8 or float32 in [0, 1], batched)."""
    if isinstance(frames, (str, bytes)) or not hasattr(frames, "__len__"):
        raise ValueError(f"frames must be a sequence of {num_frames} images, got {type(frames).__name__}")
    if len(frames) != num_frames:
        raise ValueError(f"this model takes {num_frames} frames, got {len(frames)}")
    arrays = [np.asarray(f) for f in frames]
    for i, a in enumerate(arrays):
        if a.ndim not in (3, 4) or a.shape[-1] != 3:
            raise ValueError(f"frame {i} must be [H, W, 3] or [B, H, W, 3], got shape {a.shape}")
        if a.shape != arrays[0].shape:
            raise ValueError(f"frames differ in shape: frame 0 is {arrays[0].shape}, frame {i} is {a.shape}")
        if a.dtype != arrays[0].dtype:
            raise ValueError(f"frames differ in dtype: frame 0 is {arrays[0].dtype}, frame {i} is {a.dtype}")
    dtype = arrays[0].dtype
    stacked = np.stack(arrays, axis=-4)  # [(B,) F, H, W, 3]
    if np.issubdtype(dtype, np.floating):
        stacked = stacked.astype(np.float32)
        if stacked.size and (np.nanmin(stacked) < -1e-3 or np.nanmax(stacked) > 1.0 + 1e-3):
            raise ValueError(f"float frames must lie in [0, 1], got values in "
                             f"[{np.nanmin(stacked):.4g}, {np.nanmax(stacked):.4g}]")
    elif dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (0..255) or float (0..1), got {dtype}")
    batched = arrays[0].ndim == 4
    if not batched:
        stacked = stacked[np.newaxis]
    if min(stacked.shape[2:4]) == 0:
        raise ValueError(f"frames must not be empty, got shape {arrays[0].shape}")
    return stacked, batched


def padded_size(height, width, multiple):
    """The smallest (H', W') >= (height, width) with both multiples of `multiple` (ints or tensors;
    no floor division of negative numbers, which ONNX's integer Div would truncate)."""
    return ((height + multiple - 1) // multiple * multiple, (width + multiple - 1) // multiple * multiple)


def to_unit_range(frames):
    """uint8 frames (0..255) -> float32 in [0, 1]; float frames -> float32 unchanged."""
    frames = tf.convert_to_tensor(frames)
    if frames.dtype == tf.uint8:
        return tf.cast(frames, tf.float32) / 255.0
    return tf.cast(frames, tf.float32)


def predict_tensor(model, frames):
    """The inference of every entry point (predict_flow, make_predictor, evaluation, the exported
    serving signature): frames in, the flow of the model's pair at input resolution out.

    Frames are scaled to [0, 1] (uint8 / 255), bilinearly resized up to the next multiple of
    `model.size_multiple`, run through the model, and the flow is resized back with u scaled by
    W / W' and v by H / H' (see predict_flow). With static H, W the resize is skipped where the
    size already is a multiple; with dynamic H, W the padded size is computed in the graph and the
    resize always runs (at a multiple it is the identity: half-pixel bilinear resampling to the
    same size reads every pixel exactly). Wrap in tf.function (jit_compile allowed for static sizes).

    Args:
      model: TwoFramePWC / ThreeFramePWC (anything with `num_frames`, `size_multiple` and the
        output contract of docs/models.md: model(frames)["flow"]).
      frames: [B, F, H, W, 3], uint8 in 0..255 or float in [0, 1]; H, W static or dynamic.

    Returns:
      float32 [B, H, W, 2]: the flow frame 1 -> frame 2 (two frames) or centre -> next (three
      frames), in pixels of the input resolution.
    """
    frames = to_unit_range(frames)
    multiple = getattr(model, "size_multiple", 64)
    static = frames.shape[2:4].is_fully_defined()
    if static:
        height, width = int(frames.shape[2]), int(frames.shape[3])
    else:
        shape = tf.shape(frames)
        height, width = shape[2], shape[3]
    run_h, run_w = padded_size(height, width, multiple)
    if static and (run_h, run_w) == (height, width):
        return model(frames)["flow"]
    run_size = (run_h, run_w) if static else tf.stack([run_h, run_w])
    batch = tf.shape(frames)[0]
    images = tf.reshape(frames, tf.stack([-1, height, width, 3]))
    images = tf.image.resize(images, run_size, method="bilinear")
    frames = tf.reshape(images, tf.stack([batch, model.num_frames, run_h, run_w, 3]))
    flow = model(frames)["flow"]
    return flow_ops.resize_flow(flow, (height, width) if static else tf.stack([height, width]))


def make_predictor(model):
    """fn(frames) -> flow: frames [F, H, W, 3] (F = model.num_frames, any H, W; uint8 0..255 or
    float 0..1) -> numpy float32 [H, W, 2], the flow of the model's pair (predict_tensor). One
    graph per frame size (static sizes let the resize be skipped at multiples of 64)."""
    run = tf.function(lambda frames: predict_tensor(model, frames))

    def predict(frames):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[0] != model.num_frames or frames.shape[-1] != 3:
            raise ValueError(f"expected {model.num_frames} frames [F, H, W, 3], got shape {frames.shape}")
        return run(tf.convert_to_tensor(frames[None]))[0].numpy()

    return predict


def predict_flow(model, frames):
    """Predicts optical flow for images of any size.

    Args:
      model: a TwoFramePWC (frames = (first, second)) or ThreeFramePWC (frames = (previous,
        centre, next)); `model.num_frames` says which.
      frames: a sequence (list, tuple, or an array whose first axis indexes the frames) of
        model.num_frames images, each [H, W, 3] or [B, H, W, 3], all of the same shape and dtype;
        uint8 in 0..255 or float in 0..1. Any H, W.

    Returns:
      numpy float32 [H, W, 2] (or [B, H, W, 2] for batched input): the flow first -> second
      (two-frame model) or centre -> next (three-frame model), in pixels of the input
      resolution; channel 0 = u (x), channel 1 = v (y).

    Sizes: the network needs H, W multiples of 64. The frames are bilinearly *resized* up to the
    next multiple (a no-op when already a multiple) and the predicted flow is resized back with
    its u and v rescaled by W / W' and H / H'. This follows the authors' DDFlow / SelFlow test
    code (which resizes rather than pads), so imported checkpoints see inputs as in their
    published evaluation; unlike zero padding it adds no artificial border that the cost volume
    and the context network would have to see through. The stretch is at most 63 pixels per
    axis (e.g. 375x1242 -> 384x1280, under 3.1 %).

    Raises:
      ValueError: wrong number of frames, wrong ranks / channel count, frames of different
        shapes or dtypes, unsupported dtypes, float values outside [0, 1].
    """
    num_frames = getattr(model, "num_frames", None)
    if num_frames not in (2, 3):
        raise ValueError(f"model must have num_frames 2 or 3, got {num_frames!r}")
    array, batched = _frames_to_array(frames, num_frames)
    flow = predict_tensor(model, tf.convert_to_tensor(array))
    flow = np.asarray(flow, dtype=np.float32)
    return flow if batched else flow[0]
