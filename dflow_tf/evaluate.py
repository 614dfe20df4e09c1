"""Evaluates a flow model on a dataset split or on folders of frame pairs (docs/evaluation.md).

    python -m dflow_tf.evaluate --checkpoint runs/teacher/census --dataset kitti_flow/2015 --split train
    python -m dflow_tf.evaluate --checkpoint runs/selflow_sintel --pairs ../shared/flowdata/sintel
    python -m dflow_tf.evaluate --checkpoint zero --pairs ../shared/flowdata/chairs     # zero-flow baseline

Prints the docs/method.md §5 metrics (EPE over all valid / non-occluded / occluded pixels, the
Sintel speed bins, KITTI Fl), each as the mean of per-image values and pixel-pooled, writes them
with per-image values to --out (JSON), and optionally error and flow pictures to --error_images.
"""
import argparse
import json
import math
import os
import sys

from dflow_tf.native_logs import add_verbose_argument, hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

import numpy as np

from dflow_tf import io as flow_io
from dflow_tf.console import (
    CountProgress,
    add_data_arguments,
    add_model_arguments,
    check_output_path,
    exit_on_input_error,
    load_model_from_args,
)
from dflow_tf.metrics import FlowMetrics

IMAGE_EXTENSIONS = (".png", ".ppm", ".jpg", ".jpeg", ".bmp")
#: (previous, first, second, ground truth) file stems of a pair folder, in order of preference.
PAIR_LAYOUTS = (("img0", "img1", "img2", "flow"), ("frame09", "frame10", "frame11", "flow10"))
UNKNOWN_FLOW = 1e9  # Middlebury: |u| or |v| above this = unknown
REGIONS = (("all", "all valid pixels"), ("noc", "non-occluded (Sintel: matched)"),
           ("occ", "occluded (Sintel: unmatched)"), ("s0-10", "gt speed < 10 px"),
           ("s10-40", "gt speed 10-40 px"), ("s40+", "gt speed >= 40 px"))


# ---------------------------------------------------------------------------------- pair folders

def _find(folder, stem, extensions):
    for ext in extensions:
        path = os.path.join(folder, stem + ext)
        if os.path.isfile(path):
            return path
    return None


def read_pair_folder(folder):
    """One folder of the pairs layout (docs/evaluation.md) -> sample dict, or None if not a pair.

    Returns {"frames": list of uint8 [H, W, 3] (previous frame first when the folder has one),
    "has_previous": bool, "flow": float32 [H, W, 2], "valid": bool [H, W], "occluded": bool
    [H, W] or None}.
    """
    for layout in PAIR_LAYOUTS:
        first = _find(folder, layout[1], IMAGE_EXTENSIONS)
        second = _find(folder, layout[2], IMAGE_EXTENSIONS)
        if first and second:
            break
    else:
        return None
    prev_stem, _, _, flow_stem = layout
    flo = _find(folder, flow_stem, (".flo",))
    kitti = os.path.join(folder, flow_stem + ".png")
    if flo:
        flow = flow_io.read_flo(flo)
        valid = np.all(np.isfinite(flow) & (np.abs(flow) < UNKNOWN_FLOW), axis=-1)
    elif os.path.isfile(kitti):
        flow, valid = flow_io.read_kitti_flow(kitti)
    else:
        raise flow_io.FlowFileError(f"{folder}: frames {os.path.basename(first)}, {os.path.basename(second)} "
                                    f"but no ground truth {flow_stem}.flo or {flow_stem}.png")
    frames = [flow_io.read_image(first), flow_io.read_image(second)]
    previous = _find(folder, prev_stem, IMAGE_EXTENSIONS)
    if previous:
        frames.insert(0, flow_io.read_image(previous))
    for path, frame in zip((first, second), frames[-2:]):
        if frame.shape[:2] != flow.shape[:2]:
            raise flow_io.FlowFileError(f"{path}: frame size {frame.shape[:2]} differs from the ground truth "
                                        f"{flow.shape[:2]}")
    invalid = os.path.join(folder, "invalid.png")
    if os.path.isfile(invalid):
        valid &= ~flow_io.read_mask(invalid)
    occ = os.path.join(folder, "occ.png")
    occluded = flow_io.read_mask(occ) if os.path.isfile(occ) else None
    flow = np.where(valid[..., None], flow, 0.0).astype(np.float32)
    return {"frames": frames, "has_previous": bool(previous), "flow": flow, "valid": valid,
            "occluded": occluded}


def pair_folders(root):
    """Sorted (id, path) of the pair folders under `root` (itself included); the id is the path
    relative to root, or root's own name when root is a pair folder."""
    found = []
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        if is_pair_folder(folder):
            rel = os.path.relpath(folder, root)
            found.append((os.path.basename(os.path.abspath(root)) if rel == "." else rel, folder))
    return sorted(found)


def is_pair_folder(folder):
    """True when `folder` holds a frame pair of one of PAIR_LAYOUTS."""
    return any(_find(folder, a, IMAGE_EXTENSIONS) and _find(folder, b, IMAGE_EXTENSIONS)
               for _, a, b, _ in PAIR_LAYOUTS)


def pair_samples(root, model_frames):
    """(total, generator of (id, frames [F, H, W, 3] uint8, flow, valid, occluded)) for --pairs."""
    folders = pair_folders(root)
    if not folders:
        raise FileNotFoundError(f"no frame pairs under {root!r} (each folder needs img1 + img2 or "
                                f"frame10 + frame11 and flow.flo / flow.png / flow10.flo; docs/evaluation.md)")

    def generate():
        for pair_id, folder in folders:
            sample = read_pair_folder(folder)
            frames = sample["frames"]
            if model_frames == 2:
                frames = frames[-2:]
            elif not sample["has_previous"]:
                frames = [frames[0]] + frames  # first-frame fallback (dflow_tf.data.frame_windows)
            yield pair_id, np.stack(frames), sample["flow"], sample["valid"], sample["occluded"]

    return len(folders), generate()


# ------------------------------------------------------------------------------------- datasets

def dataset_samples(source, split, model_frames, data_dir=None, manual_dir=None):
    """(total or None, generator of (id, frames, flow, valid, occluded)) of a tfds_builders split;
    examples without ground truth are skipped."""
    from dflow_tf.data import schema
    from dflow_tf.data.frame_windows import model_window
    from dflow_tf.data.pipeline import get_builder, make_dataset
    builder = get_builder(source, data_dir=data_dir, manual_dir=manual_dir)
    stored = builder.info.features[schema.FRAMES].shape[0]
    try:
        total = builder.info.splits[split].num_examples
    except (KeyError, ValueError, TypeError):
        total = None
    if model_frames > stored:
        print(f"note: {source} stores pairs; the three-frame model sees (frame 1, frame 1, frame 2) "
              "(first-frame fallback, docs/evaluation.md)", file=sys.stderr)
    ds = make_dataset(builder, split, batch_size=1, num_frames=min(model_frames, stored), augmentation=None,
                      shuffle=False, repeat=False, drop_remainder=False, prepare=False)

    def generate():
        for batch in ds:
            frames = model_window(batch["frames"], model_frames)  # float32 in [0, 1]
            occluded = batch["occlusion"][0, ..., 0].numpy() > 0.5 if bool(batch["has_occlusion"][0]) else None
            yield (batch["id"][0].numpy().decode(), frames[0].numpy(), batch["flow"][0].numpy(),
                   batch["valid"][0, ..., 0].numpy() > 0.5, occluded, bool(batch["has_flow"][0]))

    def with_flow():
        for *sample, has_flow in generate():
            if has_flow:
                yield tuple(sample)

    return total, with_flow()


# ----------------------------------------------------------------------------------- evaluation

def image_metrics(flow, gt, valid, occluded):
    """The per-image values of one image: {"epe_all": ..., "fl_all": ..., "epe_noc": ...}."""
    result = FlowMetrics().update(flow, gt, valid=valid, occluded=occluded).result()
    out = {}
    for region, _ in REGIONS:
        for metric in ("epe", "fl"):
            key = f"{metric}_{region}/pixel_pooled"
            if key in result and not math.isnan(result[key]):
                out[f"{metric}_{region}"] = result[key]
    out["pixels_all"] = result["pixels_all"]
    return out


def _safe_id(sample_id):
    parts = [p for p in sample_id.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return os.path.join(*parts) if parts else "pair"


def write_error_images(directory, sample_id, flow, gt, valid, max_error=5.0):
    """Writes <id>_error.png (EPE colour map, black = no ground truth), <id>_flow.png and
    <id>_gt.png (flow colours scaled by the largest valid ground-truth speed)."""
    base = os.path.join(directory, _safe_id(sample_id))
    os.makedirs(os.path.dirname(base) or ".", exist_ok=True)
    speed = np.sqrt(np.sum(gt ** 2, axis=-1))[valid]
    max_flow = float(speed.max()) if speed.size and speed.max() > 0 else None
    flow_io.write_image(base + "_error.png", flow_io.error_map(flow, gt, valid, max_error=max_error))
    flow_io.write_image(base + "_flow.png", flow_io.flow_to_color(flow, max_flow))
    flow_io.write_image(base + "_gt.png", flow_io.flow_to_color(np.where(valid[..., None], gt, np.nan), max_flow))


def evaluate_samples(predict, samples, total=None, max_examples=None, error_images=None, progress=True):
    """Runs `predict` (frames -> flow, see dflow_tf.inference.make_predictor) over samples.

    Returns (FlowMetrics().result(), [per-image dict with "id" and image_metrics]).
    """
    if max_examples is not None:
        total = max_examples if total is None else min(total, max_examples)
    bar = CountProgress("evaluate", total, quiet=not progress)
    metrics, per_image = FlowMetrics(), []
    for n, (sample_id, frames, gt, valid, occluded) in enumerate(samples):
        if max_examples is not None and n >= max_examples:
            break
        flow = predict(frames)
        metrics.update(flow, gt, valid=valid, occluded=occluded)
        per_image.append({"id": sample_id, **image_metrics(flow, gt, valid, occluded)})
        if error_images:
            write_error_images(error_images, sample_id, flow, gt, valid)
        bar.update(n + 1)
    bar.close()
    if not per_image:
        raise ValueError("no example with ground truth was evaluated (a test split has none)")
    return metrics.result(), per_image


def format_table(results):
    """The metrics of FlowMetrics().result() as a text table, one row per reported region."""
    header = ["region", "EPE mean/img", "EPE pooled", "Fl% mean/img", "Fl% pooled", "pixels", "images", ""]
    rows = []
    for region, meaning in REGIONS:
        if f"epe_{region}/pixel_pooled" not in results:
            continue
        rows.append([region] + [_num(results[f"{m}_{region}/{a}"]) for m in ("epe", "fl")
                                for a in ("per_image_mean", "pixel_pooled")]
                    + [str(results[f"pixels_{region}"]), str(results[f"images_{region}"]), meaning])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header] + rows]
    lines.append(f"{results['num_images']} images. EPE in px. 'mean/img' = mean over images of each image's "
                 "value; 'pooled' = over all pixels of all images.")
    lines.append("Fl: error > 3 px and > 5% of the ground-truth speed.")
    return "\n".join(lines)


def _num(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


# --------------------------------------------------------------------------------- command line

def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


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
    from dflow_tf.inference import make_predictor
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
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(_nan_to_none({"checkpoint": args.checkpoint, "model": description, "data": data,
                                    "metrics": results, "per_image": per_image}), f, indent=1)
        print(f"wrote {args.out}")
    return 0


def run():
    sys.exit(main())


if __name__ == "__main__":
    run()
