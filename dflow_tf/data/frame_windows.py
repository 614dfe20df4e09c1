"""The frames a two- or three-frame model sees for one pair, including the first-frame fallback.

A two-frame model predicts the pair (t, t+1) from the frames (t, t+1); a three-frame model
predicts it from (t-1, t, t+1) (METHOD.md section 1). When frame t-1 does not exist (the first
frame of a sequence, or data that store only the pair, like the KITTI benchmark pairs) the
**fallback** is to repeat frame t as its own previous frame: the model sees (t, t, t+1), i.e. a
scene that was still before t. This is the choice everywhere in dflow_tf (training, evaluation,
prediction, submissions); it is a documented choice, not the authors' (their test lists always
give a real previous frame). The last frame of a sequence has no next frame, so it gets no flow.
"""
import tensorflow as tf

from dflow_tf.data import schema


def model_window(frames, model_frames):
    """The model's input window for the reference pair of stored windows.

    Args:
      frames: [B, N, H, W, C] (tensor or array), windows whose reference pair is (r, r + 1),
        r = (N - 1) // 2 (docs/datasets.md).
      model_frames: 2 or 3, the model's `num_frames`.

    Returns:
      [B, model_frames, H, W, C]: frames (r, r + 1), or (r - 1, r, r + 1) for three frames with
      (r, r, r + 1) as the fallback when N = 2.
    """
    frames = tf.convert_to_tensor(frames)
    n = int(frames.shape[1])
    r = schema.reference_index(n)
    if model_frames == 2:
        return frames[:, r:r + 2]
    if model_frames != 3:
        raise ValueError(f"model_frames must be 2 or 3, got {model_frames!r}")
    if r == 0:
        return tf.concat([frames[:, :1], frames[:, :2]], axis=1)
    return frames[:, r - 1:r + 2]


def sequence_window(index, length, model_frames):
    """Frame indices that predict the flow index -> index + 1 in a sequence of `length` frames.

    Two frames: [index, index + 1]; three frames: [index - 1, index, index + 1], with
    [0, 0, 1] at the first frame (the fallback). Raises ValueError for the last frame (no next).
    """
    if not 0 <= index < length - 1:
        raise ValueError(f"frame {index} of a sequence of {length} has no next frame")
    if model_frames == 2:
        return [index, index + 1]
    if model_frames != 3:
        raise ValueError(f"model_frames must be 2 or 3, got {model_frames!r}")
    return [max(index - 1, 0), index, index + 1]
