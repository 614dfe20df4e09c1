"""Evaluates a flow model on a dataset split or on folders of frame pairs (docs/evaluation.md).

    python -m dflow_tf.evaluate --checkpoint runs/teacher/census --dataset kitti_flow/2015 --split train
    python -m dflow_tf.evaluate --checkpoint runs/selflow_sintel --pairs ../shared/flowdata/sintel
    python -m dflow_tf.evaluate --checkpoint zero --pairs ../shared/flowdata/chairs     # zero-flow baseline

Prints the docs/method.md §5 metrics (EPE over all valid / non-occluded / occluded pixels, the
Sintel speed bins, KITTI Fl), each as the mean of per-image values and pixel-pooled, writes them
with per-image values to --out (JSON), and optionally error and flow pictures to --error_images.
The library is dflow_tf.evaluation.samples and .report; the pair folders are dflow_tf.io.pair_folders.
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
from dflow_tf.evaluation.report import format_table, write_report
from dflow_tf.evaluation.samples import dataset_samples, evaluate_samples, pair_samples
from dflow_tf.inference import make_predictor


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="tfds_builders NAME/CONFIG, e.g. kitti_flow/2015, sintel/final")
    source.add_argument("--pairs", help="folder of pair folders with ground truth (docs/evaluation.md)")
    parser.add_argument("--split", default="train", help="split of --dataset (default train)")
    add_model_arguments(parser)
    parser.add_argument("--out", help="write metrics and per-image values to this JSON file")
    parser.add_argument("--error_images", metavar="DIR", help="write error / flow / gt pictures here")
    parser.add_argument("--max_examples", type=int, help="evaluate only the first N examples")
    add_data_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    return _evaluate_command(build_parser().parse_args(argv))


@exit_on_input_error
def _evaluate_command(args):
    for path, argument, folder in ((args.out, "--out", False), (args.error_images, "--error_images", True)):
        if path:
            check_output_path(path, argument, folder=folder)
    model, description = load_model_from_args(args)
    if args.pairs:
        total, samples = pair_samples(args.pairs, model.num_frames)
        data = os.path.abspath(args.pairs)
    else:
        total, samples = dataset_samples(args.dataset, args.split, model.num_frames, args.data_dir, args.manual_dir)
        data = f"{args.dataset}:{args.split}"
    print(f"model: {description}\ndata: {data}", flush=True)
    results, per_image = evaluate_samples(make_predictor(model), samples, total, args.max_examples,
                                          args.error_images, progress=not args.quiet)
    print(format_table(results))
    if args.out:
        write_report(args.out, checkpoint=args.checkpoint, model=description, data=data, metrics=results,
                     per_image=per_image)
        print(f"wrote {args.out}")
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
