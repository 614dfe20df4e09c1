"""Forward and backward flows of consecutive frame pairs, for two- and three-frame models.

Every unsupervised objective needs, for a pair (I_a, I_b), the flow a -> b and the flow b -> a
(the forward-backward check). `pair_flows` hides how each model produces them:

  * two-frame model, frames [B, 2, H, W, 3]: one bidirectional call gives the pair (0, 1).
  * three-frame model, frames [B, 5, H, W, 3] (SelFlow's five-frame windows): windows (0,1,2),
    (1,2,3), (2,3,4) run as one batch of 3B; the pair (1, 2) takes its forward flow from the
    centre of (0,1,2) and its backward flow from the centre of (1,2,3), the pair (2, 3) likewise.
"""
import tensorflow as tf

from dflow_tf.data.frame_windows import reference_index, training_window

#: The output of models that return the flow of every iteration (the RAFT family), [B, T, H, W, 2].
ITERATIONS_KEY = "flow_iterations"


def has_iterations(model):
    """Whether `model` returns ITERATIONS_KEY (a model with an `iterations` attribute does)."""
    return getattr(model, "iterations", None) is not None


def pair_flows(model, frames, key="flow"):
    """Runs `model` and returns the list of (image_a, image_b, flow_ab, flow_ba) pairs.

    Args:
      model: a flow model (docs/models.md), two- or three-frame.
      frames: float [B, training_window(model.num_frames), H, W, 3] in [0, 1].
      key: the output read as the flows: "flow", or ITERATIONS_KEY (flows [B, T, H, W, 2]).

    Returns:
      list of tuples of [B, H, W, 3], [B, H, W, 3], [B, H, W, 2], [B, H, W, 2] (full resolution).
    """
    want = training_window(model.num_frames)
    if frames.shape[1] != want:
        raise ValueError(f"a {type(model).__name__} trains on windows of {want} frames, got frames of shape "
                         f"{frames.shape}")
    if model.num_frames == 2:
        out = model.bidirectional(frames)
        return [(frames[:, 0], frames[:, 1], out["forward"][key], out["backward"][key])]
    windows = tf.concat([frames[:, 0:3], frames[:, 1:4], frames[:, 2:5]], axis=0)
    out = model.bidirectional(windows)
    fw = tf.split(out["forward"][key], 3, axis=0)   # centre -> next of each window
    bw = tf.split(out["backward"][key], 3, axis=0)  # centre -> previous of each window
    return [(frames[:, 1], frames[:, 2], fw[0], bw[1]),
            (frames[:, 2], frames[:, 3], fw[1], bw[2])]


def centre_pair_flows(model, frames, key="flow"):
    """Forward and backward flow of a window's reference pair (a, a + 1), a = (N - 1) // 2.

    Args:
      model: a flow model (docs/models.md), two- or three-frame.
      frames: float [B, N, H, W, 3]; N >= 2 for a two-frame model, N = 5 for a three-frame model
        (windows (a-1, a, a+1) and (a, a+1, a+2) give a -> a+1 and a+1 -> a).
      key: the output read as the flows: "flow", or ITERATIONS_KEY (flows [B, T, H, W, 2]).

    Returns:
      (flow_fw [B, H, W, 2] frame a -> a+1, flow_bw [B, H, W, 2] frame a+1 -> a).
    """
    n = int(frames.shape[1])
    a = reference_index(n)
    if model.num_frames == 2:
        out = model.bidirectional(frames[:, a:a + 2])
        return out["forward"][key], out["backward"][key]
    if n != training_window(3):
        raise ValueError(f"a three-frame model distils on windows of {training_window(3)} frames, got frames "
                         f"of shape {frames.shape}")
    out = model.bidirectional(tf.concat([frames[:, a - 1:a + 2], frames[:, a:a + 3]], axis=0))
    forward, _ = tf.split(out["forward"][key], 2, axis=0)
    _, backward = tf.split(out["backward"][key], 2, axis=0)
    return forward, backward
