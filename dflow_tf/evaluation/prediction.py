"""Flow for a sequence of frames: every consecutive pair t -> t+1, written as flow files; and
disparity for rectified stereo pairs (-u of the left -> right flow), written as disparity files
(the library of `python -m dflow_tf.predict`, docs/evaluation.md)."""
import os

import numpy as np

from dflow_tf.console import CountProgress
from dflow_tf.data.frame_windows import sequence_window
from dflow_tf.io.flow_files import write_disparity, write_image
from dflow_tf.io.sequences import write_flow
from dflow_tf.io.visualize import error_map
from dflow_tf.models.stereo import disparity_from_flow, stereo_window


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


def output_base(directory, name):
    """`directory`/`name` for output files named after an id that may hold folders (`stereo/x`):
    the folders are created; empty, `.` and `..` parts are dropped (nothing lands outside)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    base = os.path.join(directory, *(parts or ["pair"]))
    os.makedirs(os.path.dirname(base) or ".", exist_ok=True)
    return base


def disparity_picture(disparity, valid=None, max_disparity=None):
    """Colour map of a disparity [H, W] (px) -> uint8 RGB [H, W, 3]: OpenCV TURBO from 0 (dark
    blue, far) to `max_disparity` (dark red, near; default the largest valid value), larger values
    saturate, negative ones count as 0; black where `valid` (bool [H, W]) is false or d is not finite."""
    disparity = np.asarray(disparity, np.float64)
    if disparity.ndim != 2:
        raise ValueError(f"disparity must be [H, W], got shape {list(disparity.shape)}")
    ok = np.isfinite(disparity) if valid is None else np.isfinite(disparity) & np.asarray(valid, bool)
    positive = np.where(ok, np.maximum(disparity, 0.0), 0.0)
    if max_disparity is None:
        max_disparity = float(positive.max()) if positive.size and positive.max() > 0 else 1.0
    zeros = np.zeros_like(positive)
    # the TURBO map of |d| = the endpoint-error map of the flow (d, 0) against zero flow
    return error_map(np.stack([positive, zeros], -1), np.stack([zeros, zeros], -1), ok, max_error=max_disparity)


def write_stereo_disparities(predict, num_frames, pairs, out_dir, count=None, color=False, max_disparity=None,
                             progress=True):
    """Predicts and writes the disparity of rectified stereo pairs into `out_dir` (created).

    predict: frames [num_frames, H, W, 3] -> flow (dflow_tf.inference.make_predictor); it sees
    stereo_window(left, right). pairs: (name, left uint8 [H, W, 3], right) of
    dflow_tf.io.sequences.open_stereo_pairs. For each pair writes <name>.png (KITTI 16-bit,
    d x 256), <name>.pfm (float32) and with `color` <name>_color.png (disparity_picture); a name
    with folders (a pair id) gets those folders. Returns [(name, mean |v| px)] (the vertical
    flow, 0 on rectified pairs: the rectification check).
    """
    os.makedirs(out_dir, exist_ok=True)
    bar = CountProgress("predict", count, unit="pairs", quiet=not progress)
    checks = []
    for name, left, right in pairs:
        disparity, v = disparity_from_flow(predict(np.stack(stereo_window(left, right, num_frames))))
        base = output_base(out_dir, name)
        write_disparity(base + ".png", disparity)
        write_disparity(base + ".pfm", disparity)
        if color:
            write_image(base + "_color.png", disparity_picture(disparity, max_disparity=max_disparity))
        checks.append((name, float(np.abs(v).mean())))
        bar.update(len(checks))
    bar.close()
    return checks
