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
The library is dflow_tf.io.sequences (files in and out) and dflow_tf.evaluation.prediction.
"""
import argparse
import sys

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

from dflow_tf.console import add_model_arguments, check_output_path, exit_on_input_error, load_model_from_args
from dflow_tf.evaluation.prediction import write_sequence_flows
from dflow_tf.inference import make_predictor
from dflow_tf.io.sequences import FLOW_FORMATS, open_sequence


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", nargs="+", required=True, help="2+ images, a folder of images, or a video")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--format", choices=sorted(FLOW_FORMATS), default="flo",
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
    count, frames = open_sequence(args.input)
    check_output_path(args.out)
    model, description = load_model_from_args(args)
    print(f"model: {description}", flush=True)
    written = write_sequence_flows(make_predictor(model), model.num_frames, frames, args.out, count, args.format,
                                   args.color, args.max_flow, progress=not args.quiet)
    if written == 0:
        print("error: the input has fewer than 2 frames", file=sys.stderr)
        return 1
    print(f"wrote {written} flows to {args.out}")
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
