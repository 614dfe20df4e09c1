"""Frame windows: which frames of a window form its pair, and which frames a model sees for it.

A **window** is N consecutive frames (a stored example, a training sample); its **reference
pair** is frames[r] -> frames[r + 1] with r = reference_index(N) = (N - 1) // 2 (N = 2: 0 -> 1;
N = 3: 1 -> 2; N = 5: 2 -> 3). Training windows are 2 frames for a two-frame model and 5 for a
three-frame model (`training_window`: the two pairs (1, 2) and (2, 3) each have a previous and
a next frame, SelFlow's five-frame windows).

A two-frame model predicts the pair (t, t+1) from the frames (t, t+1); a three-frame model
predicts it from (t-1, t, t+1) (docs/method.md §1.6). When frame t-1 does not exist (the first
frame of a sequence, or data that store only the pair, like the KITTI benchmark pairs) the
**fallback** is to repeat frame t as its own previous frame: the model sees (t, t, t+1), i.e. a
scene that was still before t. This is the choice everywhere in dflow_tf (training, evaluation,
prediction, submissions); it is a documented choice, not the authors' (their test lists always
give a real previous frame). The last frame of a sequence has no next frame, so it gets no flow.
"""
import tensorflow as tf

#: Frames per training window of a three-frame model (a two-frame model trains on its pair).
THREE_FRAME_TRAINING_WINDOW = 5


def reference_index(num_frames):
    """Index r of the reference pair frames[r] -> frames[r + 1] in a window of `num_frames`."""
    if num_frames < 2:
        raise ValueError(f"a window needs at least 2 frames, got num_frames={num_frames}")
    return (num_frames - 1) // 2


def training_window(model_frames):
    """Frames per training window for models of `model_frames` frames (2 or 3): 2, or 5."""
    if model_frames not in (2, 3):
        raise ValueError(f"model_frames must be 2 or 3, got {model_frames!r}")
    return 2 if model_frames == 2 else THREE_FRAME_TRAINING_WINDOW


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
    r = reference_index(n)
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


def pair_window(frames, model_frames):
    """The model's frames for the pair frames[-2] -> frames[-1] of a list that starts with the
    pair's previous frame when it is known (2 or 3 frames): the last two for two frames, the
    three for three frames, and the fallback (frames[0], frames[0], frames[1]) without one."""
    return [frames[i] for i in sequence_window(len(frames) - 2, len(frames), model_frames)]
