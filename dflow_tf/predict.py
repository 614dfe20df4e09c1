"""Predicts optical flow for frame pairs, a folder of frames or a video (docs/evaluation.md).

    python -m dflow_tf.predict --checkpoint runs/teacher/census --input a.png b.png --out flows/
    python -m dflow_tf.predict --checkpoint runs/selflow_kitti --input frames_dir/ --out flows/ --color
    python -m dflow_tf.predict --checkpoint runs/teacher/census --input clip.mp4 --out flows/ --format kitti_png

The frames form one sequence (the files in the given order, a folder's images sorted by name,
or a video's frames); for every consecutive pair t -> t+1 it writes the flow as `<name>.flo`
(or a 16-bit KITTI `<name>.png`) and with --color a picture `<name>_color.png`, where <name> is
frame t's file stem or `frame_NNNNNN` (0-based) for a video. N frames give N - 1 flows.
Three-frame models read (t-1, t, t+1); at the first frame, which has no previous one, frame t is
repeated as its previous frame (dflow_tf.data.frame_windows). All frames must have one size.
"""
import argparse
import os
import re
import sys

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

import numpy as np

from dflow_tf import io as flow_io
from dflow_tf.console import (
    CountProgress,
    add_model_arguments,
    check_output_path,
    exit_on_input_error,
    load_model_from_args,
)
from dflow_tf.data.frame_windows import sequence_window

IMAGE_EXTENSIONS = (".png", ".ppm", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
FORMATS = {"flo": ".flo", "kitti_png": ".png"}


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def image_files(folder):
    """Image files of `folder`, sorted by name with numbers in numeric order (frame_2 < frame_10)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]


def video_frames(path):
    """(name, uint8 RGB [H, W, 3]) for each frame of a video, read with OpenCV."""
    import cv2
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise flow_io.FlowFileError(f"{path}: OpenCV cannot open this video")
    try:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield f"frame_{index:06d}", np.ascontiguousarray(bgr[..., ::-1])
            index += 1
    finally:
        capture.release()


def open_sequence(inputs):
    """(frame count or None, generator of (name, uint8 RGB frame)) for the --input arguments."""
    if len(inputs) == 1 and os.path.isdir(inputs[0]):
        files = image_files(inputs[0])
        if len(files) < 2:
            raise FileNotFoundError(f"{inputs[0]}: need at least 2 images ({', '.join(IMAGE_EXTENSIONS)}), "
                                    f"found {len(files)}")
    elif len(inputs) == 1 and inputs[0].lower().endswith(VIDEO_EXTENSIONS):
        if not os.path.isfile(inputs[0]):
            raise FileNotFoundError(f"{inputs[0]}: video not found")
        import cv2
        capture = cv2.VideoCapture(inputs[0])
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        capture.release()
        return count, video_frames(inputs[0])
    elif len(inputs) >= 2:
        files = list(inputs)
    else:
        raise ValueError(f"--input takes two or more images, a folder of images or a video "
                         f"({', '.join(VIDEO_EXTENSIONS)}); got {inputs}")
    names = [os.path.splitext(os.path.basename(f))[0] for f in files]
    if len(set(names)) != len(names):
        raise ValueError("input frames must have distinct file names (they name the outputs)")
    return len(files), ((name, flow_io.read_image(f)) for name, f in zip(names, files))


def predict_sequence(predict, num_frames, frames):
    """Yields (name of frame t, flow t -> t+1 [H, W, 2]) for a stream of (name, frame).

    predict: frames [num_frames, H, W, 3] -> flow (dflow_tf.inference.make_predictor).
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


def write_flow(out_dir, name, flow, fmt="flo", color=False, max_flow=None):
    """Writes <name>.flo or <name>.png (KITTI 16-bit) and with `color` <name>_color.png; returns paths."""
    path = os.path.join(out_dir, name + FORMATS[fmt])
    if fmt == "flo":
        flow_io.write_flo(path, flow)
    else:
        flow_io.write_kitti_flow(path, flow)
    paths = [path]
    if color:
        paths.append(os.path.join(out_dir, name + "_color.png"))
        flow_io.write_flow_png(paths[-1], flow, max_flow)
    return paths


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", nargs="+", required=True, help="2+ images, a folder of images, or a video")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="flo",
                        help="flo (float32) or kitti_png (16-bit, 1/64 px, |flow| < 512)")
    parser.add_argument("--color", action="store_true", help="also write colour pictures <name>_color.png")
    parser.add_argument("--max_flow", type=float, help="flow speed of full colour saturation (default: per picture)")
    add_model_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    return _predict_command(build_parser().parse_args(argv))


@exit_on_input_error
def _predict_command(args):
    from dflow_tf.inference import make_predictor
    count, frames = open_sequence(args.input)
    check_output_path(args.out)
    model, description = load_model_from_args(args)
    os.makedirs(args.out, exist_ok=True)
    print(f"model: {description}", flush=True)
    bar = CountProgress("predict", count - 1 if count else None, unit="flows", quiet=args.quiet)
    written = 0
    for name, flow in predict_sequence(make_predictor(model), model.num_frames, frames):
        write_flow(args.out, name, flow, args.format, args.color, args.max_flow)
        written += 1
        bar.update(written)
    bar.close()
    if written == 0:
        print("error: the input has fewer than 2 frames", file=sys.stderr)
        return 1
    print(f"wrote {written} flows to {args.out}")
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
