"""Evaluates a flow model on a dataset split, on folders of frame pairs or on rectified stereo
pairs (docs/evaluation.md).

    python -m dflow_tf.evaluate --checkpoint runs/teacher/census --dataset kitti_flow/2015 --split train
    python -m dflow_tf.evaluate --checkpoint runs/selflow_sintel --pairs ../shared/flowdata/sintel
    python -m dflow_tf.evaluate --checkpoint zero --pairs ../shared/flowdata/chairs     # zero-flow baseline
    python -m dflow_tf.evaluate --checkpoint runs/teacher/census --stereo skimage:motorcycle

Prints the docs/method.md §5 metrics (EPE over all valid / non-occluded / occluded pixels, the
Sintel speed bins, KITTI Fl), each as the mean of per-image values and pixel-pooled, one table
per group (the first folder level under --pairs), writes them with per-image values to --out
(JSON), and optionally error and flow pictures to --error_images. Stereo pairs (--stereo, the
stereo folders under --pairs, a stereo dataset) are scored as disparity = -u of the left -> right
flow: EPE and KITTI D1 over all / noc / occ, and the mean |v| (rectification check).
The library is dflow_tf.evaluation.samples and .report; the folders are dflow_tf.io.pair_folders
and dflow_tf.io.stereo_folders.
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
from dflow_tf.evaluation.report import format_groups, write_report
from dflow_tf.evaluation.samples import dataset_sample_set, evaluate_groups, folder_sample_sets
from dflow_tf.inference import make_predictor
from dflow_tf.io.stereo_folders import SKIMAGE_MOTORCYCLE

#: The JSON keys of each kind: (over all samples, per group, per image).
REPORT_KEYS = {"flow": ("metrics", "groups", "per_image"),
               "stereo": ("stereo_metrics", "stereo_groups", "stereo_per_image")}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m dflow_tf.evaluate", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="tfds_builders NAME/CONFIG, e.g. kitti_flow/2015, sintel/final")
    source.add_argument("--pairs", help="folder of pair folders with ground truth; its stereo folders are "
                                        "evaluated as stereo pairs (docs/evaluation.md)")
    source.add_argument("--stereo", metavar="FOLDER",
                        help=f"folder of rectified stereo pairs with ground-truth disparity (Middlebury or KITTI "
                             f"layout), or {SKIMAGE_MOTORCYCLE} (scikit-image's bundled pair)")
    parser.add_argument("--split", default="train", help="split of --dataset (default train)")
    add_model_arguments(parser)
    parser.add_argument("--out", help="write metrics and per-image values to this JSON file")
    parser.add_argument("--error_images", metavar="DIR", help="write error / flow / gt pictures here")
    parser.add_argument("--max_examples", type=int,
                        help="evaluate only the first N examples (of each kind: flow pairs, stereo pairs)")
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
    if args.pairs or args.stereo:
        root = args.pairs or args.stereo
        sets = folder_sample_sets(root, model.num_frames, kinds=("flow", "stereo") if args.pairs else ("stereo",))
        data = root if root == SKIMAGE_MOTORCYCLE else os.path.abspath(root)
    else:
        sets = [dataset_sample_set(args.dataset, args.split, model.num_frames, args.data_dir, args.manual_dir)]
        data = f"{args.dataset}:{args.split}"
    print(f"model: {description}\ndata: {data}", flush=True)
    predict, report = make_predictor(model), {}
    for n, sample_set in enumerate(sets):
        if n:
            print()
        overall, groups, per_image = evaluate_groups(predict, sample_set, args.max_examples, args.error_images,
                                                     progress=not args.quiet, grouped=args.dataset is None)
        print(format_groups(sample_set.kind, overall, groups), flush=True)
        report.update(zip(REPORT_KEYS[sample_set.kind], (overall, groups, per_image)))
    if args.out:
        write_report(args.out, checkpoint=args.checkpoint, model=description, data=data, **report)
        print(f"wrote {args.out}")
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
