"""Predicts optical flow for frame pairs, a folder of frames or a video (docs/evaluation.md).

    python -m dflow_tf.predict --checkpoint runs/teacher/census --input a.png b.png --out flows/
    python -m dflow_tf.predict --checkpoint runs/selflow_kitti --input frames_dir/ --out flows/ --color
    python -m dflow_tf.predict --checkpoint runs/teacher/census --input clip.mp4 --out flows/ --format kitti_png
    python -m dflow_tf.predict --checkpoint runs/teacher/census --stereo --input left.png right.png --out disp/
    python -m dflow_tf.predict --checkpoint runs/teacher/census --input skimage:motorcycle --out disp/ --color

The frames form one sequence (the files in the given order, a folder's images sorted by name,
or a video's frames); for every consecutive pair t -> t+1 it writes the flow as `<name>.flo`
(or a 16-bit KITTI `<name>.png`) and with --color a picture `<name>_color.png`, where <name> is
frame t's file stem or `frame_NNNNNN` (0-based) for a video. N frames give N - 1 flows.
Three-frame models read (t-1, t, t+1); at the first frame, which has no previous one, frame t is
repeated as its previous frame (dflow_tf.data.frame_windows). All frames must have one size.

Stereo (--stereo; implied by an --input folder that is a stereo folder or holds stereo folders
and no images of its own, and by --input skimage:motorcycle):
rectified pairs, given as two images (left, right), a folder of stereo folders (Middlebury im0 +
im1, KITTI image_2/ + image_3/; dflow_tf.io.stereo_folders) or skimage:motorcycle. For each pair
it writes the disparity d = -u of the left -> right flow as `<name>.png` (16-bit KITTI, d x 256)
and `<name>.pfm` (float32), with --color a picture `<name>_color.png`, and prints the mean |v|
(0 on rectified pairs: the rectification check). <name> is the left file's stem or the pair's id.
The library is dflow_tf.io.sequences and dflow_tf.io.stereo_folders (files in and out) and
dflow_tf.evaluation.prediction.
"""
import argparse
import os
import sys

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

from dflow_tf.console import add_model_arguments, check_output_path, exit_on_input_error, load_model_from_args
from dflow_tf.evaluation.prediction import write_sequence_flows, write_stereo_disparities
from dflow_tf.inference import make_predictor
from dflow_tf.io.pair_folders import find_pairs
from dflow_tf.io.sequences import FLOW_FORMATS, image_files, open_sequence, open_stereo_pairs
from dflow_tf.io.stereo_folders import SKIMAGE_MOTORCYCLE, is_stereo_folder


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", nargs="+", required=True,
                        help="2+ images, a folder of images, or a video; with --stereo: left and right images or "
                             f"a folder of stereo folders (a stereo folder or {SKIMAGE_MOTORCYCLE} imply --stereo)")
    parser.add_argument("--stereo", action="store_true",
                        help="rectified stereo pairs: write the disparity -u as <name>.png (KITTI 16-bit) and .pfm")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--format", choices=sorted(FLOW_FORMATS),
                        help="flow files: flo (float32, the default) or kitti_png (16-bit, 1/64 px, |flow| < 512)")
    parser.add_argument("--color", action="store_true", help="also write colour pictures <name>_color.png")
    parser.add_argument("--max_flow", type=float,
                        help="flow speed (stereo: disparity) of full colour saturation (default: per picture)")
    add_model_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    return _predict_command(build_parser().parse_args(argv))


def is_stereo_input(args):
    """--stereo, or an --input that can only be stereo: skimage:motorcycle, a stereo folder, or a
    folder without images of its own that holds stereo folders."""
    if args.stereo:
        return True
    if len(args.input) != 1:
        return False
    source = args.input[0]
    return source == SKIMAGE_MOTORCYCLE or (os.path.isdir(source) and (
        is_stereo_folder(source) or (not image_files(source) and bool(find_pairs(source).stereo))))


@exit_on_input_error
def _predict_command(args):
    if is_stereo_input(args):
        return _predict_stereo(args)
    count, frames = open_sequence(args.input)
    check_output_path(args.out)
    model, description = load_model_from_args(args)
    print(f"model: {description}", flush=True)
    written = write_sequence_flows(make_predictor(model), model.num_frames, frames, args.out, count,
                                   args.format or "flo", args.color, args.max_flow, progress=not args.quiet)
    if written == 0:
        print("error: the input has fewer than 2 frames", file=sys.stderr)
        return 1
    print(f"wrote {written} flows to {args.out}")
    return 0


def _predict_stereo(args):
    if args.format:
        raise ValueError("--format is for flow files; stereo writes both <name>.png (KITTI 16-bit disparity) "
                         "and <name>.pfm")
    count, pairs = open_stereo_pairs(args.input)
    check_output_path(args.out)
    model, description = load_model_from_args(args)
    print(f"model: {description}", flush=True)
    checks = write_stereo_disparities(make_predictor(model), model.num_frames, pairs, args.out, count, args.color,
                                      args.max_flow, progress=not args.quiet)
    for name, v_abs in checks:
        print(f"{name}: mean |v| {v_abs:.3f} px (rectification check: 0 on rectified pairs)")
    print(f"wrote {len(checks)} disparities to {args.out}")
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
