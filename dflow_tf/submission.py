"""Benchmark submissions: KITTI 2012 / 2015 flow PNGs and Sintel .flo trees (docs/evaluation.md).

    python -m dflow_tf.submission --checkpoint runs/kitti_ft/finetune --benchmark kitti2015 \
        --manual_dir /data/manual --out submissions/kitti2015

runs the model over the test split of the benchmark's builder and writes the official layout
(KITTI: <out>/flow/XXXXXX_10.png and a zip to upload; Sintel: <out>/clean/ and <out>/final/ .flo
trees for Sintel's `bundler`), as dflow_tf.evaluation.submission describes. Three-frame models
read the frame before each pair from the manual directory when it is there, otherwise the
first-frame fallback of dflow_tf.data.frame_windows applies and the count is printed.
"""
import argparse
import os
import sys

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

from dflow_tf.console import (
    add_data_arguments,
    add_model_arguments,
    check_output_path,
    exit_on_input_error,
    load_model_from_args,
)
from dflow_tf.evaluation.submission import BENCHMARKS, write_submission
from dflow_tf.inference import make_predictor


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.submission", description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    parser.add_argument("--out", required=True, help="output folder")
    add_data_arguments(parser)
    parser.add_argument("--no_zip", action="store_true", help="KITTI: write the folder only")
    add_model_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    return _submission_command(build_parser().parse_args(argv))


@exit_on_input_error
def _submission_command(args):
    check_output_path(args.out)
    model, description = load_model_from_args(args)
    print(f"model: {description}", flush=True)
    result = write_submission(make_predictor(model), model.num_frames, args.benchmark, args.out,
                              args.data_dir, args.manual_dir, not args.no_zip, not args.quiet)
    print(f"wrote {result['files']} flow files under {args.out}")
    if result["fallback"]:
        print(f"{result['fallback']} pairs had no previous frame: the centre frame was repeated (first-frame fallback)")
    if result["zip"]:
        print(f"upload {result['zip']}")
    if args.benchmark == "sintel":
        print(f"now run Sintel's bundler on {os.path.join(args.out, 'clean')} and "
              f"{os.path.join(args.out, 'final')} (docs/evaluation.md)")
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
