"""Flow for a sequence of frames: every consecutive pair t -> t+1, written as flow files (the
library of `python -m dflow_tf.predict`, docs/evaluation.md)."""
import os

import numpy as np

from dflow_tf.console import CountProgress
from dflow_tf.data.frame_windows import sequence_window
from dflow_tf.io.sequences import write_flow


def predict_sequence(predict, num_frames, frames):
    """Yields (name of frame t, flow t -> t+1 [H, W, 2]) for a stream of (name, frame).

    predict: frames [num_frames, H, W, 3] -> flow (dflow_tf.inference.make_predictor). Three-frame
    models see (t-1, t, t+1), with the first-frame fallback of dflow_tf.data.frame_windows.
    ValueError when a frame's size differs from the previous one's.
    """
    window = []  # the last up to 3 (index, name, frame)
    for index, (name, frame) in enumerate(frames):
        if window and frame.shape != window[-1][2].shape:
            raise ValueError(f"frame {name} has shape {frame.shape}, the previous one {window[-1][2].shape}: "
                             "all frames of a sequence must have one size")
        window = (window + [(index, name, frame)])[-3:]
        if index == 0:
            continue
        t = index - 1
        by_index = {i: f for i, _, f in window}
        wanted = sequence_window(t, index + 1, num_frames)
        yield window[-2][1], predict(np.stack([by_index[i] for i in wanted]))


def write_sequence_flows(predict, num_frames, frames, out_dir, count=None, fmt="flo", color=False,
                         max_flow=None, progress=True):
    """Writes the flows of predict_sequence into `out_dir` (created) with
    dflow_tf.io.sequences.write_flow; `count` (frames, if known) sizes the progress line.
    Returns the number of flows written (0 for fewer than 2 frames)."""
    os.makedirs(out_dir, exist_ok=True)
    bar = CountProgress("predict", count - 1 if count else None, unit="flows", quiet=not progress)
    written = 0
    for name, flow in predict_sequence(predict, num_frames, frames):
        write_flow(out_dir, name, flow, fmt, color, max_flow)
        written += 1
        bar.update(written)
    bar.close()
    return written
