"""Per-image evaluation of a predictor over samples of a dataset split, of pair folders or of
stereo folders (the evaluation of `python -m dflow_tf.evaluate`, docs/evaluation.md).

A **sample** is (id, frames [F, H, W, 3] as the model takes them, flow [H, W, 2], valid bool
[H, W], occluded bool [H, W] or None). A **stereo sample** is (id, frames [F, H, W, 3] =
stereo_window(left, right), disparity [H, W] px, valid, occluded): the predictor's flow gives
the disparity -u (and v, the rectification check; dflow_tf.models.stereo).

A **sample set** (SampleSet) is the samples of one kind ("flow" or "stereo") from one source,
with the name of the group of ids that have no folder part (see group_of).
"""
import collections
import functools
import math
import os
import sys

import numpy as np

from dflow_tf import io as flow_io
from dflow_tf.console import CountProgress
from dflow_tf.data.frame_windows import model_window, pair_window
from dflow_tf.evaluation.prediction import disparity_picture, output_base
from dflow_tf.evaluation.report import REGIONS, STEREO_REGIONS
from dflow_tf.io.pair_folders import find_pairs, read_pair_folder
from dflow_tf.io.stereo_folders import SKIMAGE_MOTORCYCLE, read_stereo_pair, skimage_motorcycle
from dflow_tf.metrics import DisparityMetrics, FlowMetrics
from dflow_tf.models.stereo import disparity_from_flow, stereo_window

KINDS = ("flow", "stereo")
#: kind: what the samples' ground truth is, total (or None), a generator of samples, and the group
#: name of ids without a folder part.
SampleSet = collections.namedtuple("SampleSet", "kind total samples name")


def folder_pairs(root, kinds=KINDS):
    """{kind: [(id, read)]} of the pairs with ground truth under `root`, found in one walk
    (dflow_tf.io.pair_folders.find_pairs), of the `kinds` asked: "flow" the pair folders (`read()`
    gives read_pair_folder's sample), "stereo" the stereo pairs with ground truth (read_stereo_pair's
    stereo sample; pairs without, e.g. KITTI's `_11` frames, are left out), or scikit-image's
    Motorcycle pair when root is SKIMAGE_MOTORCYCLE. A kind with nothing under root is left out;
    FileNotFoundError names root when it is not a folder or nothing is left."""
    found = {}
    if root == SKIMAGE_MOTORCYCLE:
        if "stereo" in kinds:
            sample = skimage_motorcycle()
            found["stereo"] = [("motorcycle", lambda: sample)]
    elif not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: not a folder (docs/evaluation.md gives the layout)")
    else:
        pairs = find_pairs(root)
        found = {"flow": [(pair_id, functools.partial(read_pair_folder, folder)) for pair_id, folder in pairs.flow],
                 "stereo": [(pair_id, functools.partial(read_stereo_pair, pair)) for pair_id, pair in pairs.stereo
                            if pair.disparity or pair.disparity_noc]}
    found = {kind: readers for kind, readers in found.items() if kind in kinds and readers}
    if not found:
        raise FileNotFoundError(f"no {' or '.join(f'{k} pairs' for k in kinds)} with ground truth under {root!r} "
                                f"({'; '.join(_HINTS[k] for k in kinds)}; docs/evaluation.md)")
    return found


_HINTS = {"flow": "flow: img1 + img2 or frame10 + frame11 and flow.flo / flow.png / flow10.flo",
          "stereo": "stereo: im0 + im1 and disp0GT.pfm, or KITTI image_2/ + image_3/ and disp_occ_0/"}


def root_name(root):
    """The group of the ids without a folder part under `root` (group_of): the root folder's name,
    "skimage" for SKIMAGE_MOTORCYCLE."""
    return "skimage" if root == SKIMAGE_MOTORCYCLE else os.path.basename(os.path.abspath(root))


def read_samples(kind, readers, model_frames):
    """(total, generator of samples (kind "flow") or stereo samples (kind "stereo")) of the
    readers [(id, read)] of `folder_pairs`, with the frames a model of `model_frames` frames takes
    (a pair without its previous frame gets the first-frame fallback for a three-frame model)."""
    def generate():
        for pair_id, read in readers:
            sample = read()
            if kind == "stereo":
                frames = np.stack(stereo_window(sample["left"], sample["right"], model_frames))
                yield pair_id, frames, sample["disparity"], sample["valid"], sample["occluded"]
            else:
                frames = np.stack(pair_window(sample["frames"], model_frames))
                yield pair_id, frames, sample["flow"], sample["valid"], sample["occluded"]

    return len(readers), generate()


def folder_sample_sets(root, model_frames, kinds=KINDS):
    """The SampleSets of the pairs with ground truth under `root` (`folder_pairs`: one walk; the
    flow pair folders, then the stereo pairs), of the `kinds` asked."""
    return [SampleSet(kind, *read_samples(kind, readers, model_frames), root_name(root))
            for kind, readers in folder_pairs(root, kinds).items()]


def dataset_sample_set(source, split, model_frames, data_dir=None, manual_dir=None):
    """The SampleSet of a tfds_builders split (frames float32 in [0, 1]; examples without ground
    truth are skipped): samples, or for a stereo builder (schema key `stereo`: frames = (left,
    right), flow = (-d, 0)) stereo samples with the disparity -u of its flow."""
    from dflow_tf.data import schema
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
    stereo = schema.STEREO in builder.info.features.keys()

    def generate():
        for batch in ds:
            if not bool(batch["has_flow"][0]):
                continue
            frames = model_window(batch["frames"], model_frames)  # float32 in [0, 1]
            occluded = batch["occlusion"][0, ..., 0].numpy() > 0.5 if bool(batch["has_occlusion"][0]) else None
            flow = batch["flow"][0].numpy()
            yield (batch["id"][0].numpy().decode(), frames[0].numpy(), disparity_from_flow(flow)[0] if stereo else flow,
                   batch["valid"][0, ..., 0].numpy() > 0.5, occluded)

    return SampleSet("stereo" if stereo else "flow", total, generate(), source)


def image_metrics(flow, gt, valid, occluded):
    """The per-image values of one image: {"epe_all": ..., "fl_all": ..., "epe_noc": ...}."""
    result = FlowMetrics().update(flow, gt, valid=valid, occluded=occluded).result()
    return _region_values(result, ("epe", "fl"), REGIONS)


def stereo_image_metrics(disparity, gt, valid, occluded, v=None):
    """The per-image values of one stereo image: {"epe_all", "d1_all", "epe_noc", ..., "v_abs_mean"}."""
    result = DisparityMetrics().update(disparity, gt, valid=valid, occluded=occluded, v=v).result()
    out = _region_values(result, ("epe", "d1"), STEREO_REGIONS)
    if "v_abs_mean/pixel_pooled" in result and not math.isnan(result["v_abs_mean/pixel_pooled"]):
        out["v_abs_mean"] = result["v_abs_mean/pixel_pooled"]
    return out


def _region_values(result, metrics, regions):
    out = {}
    for region, _ in regions:
        for metric in metrics:
            key = f"{metric}_{region}/pixel_pooled"
            if key in result and not math.isnan(result[key]):
                out[f"{metric}_{region}"] = result[key]
    out["pixels_all"] = result["pixels_all"]
    return out


def write_error_images(directory, sample_id, flow, gt, valid, max_error=5.0):
    """Writes <id>_error.png (EPE colour map, black = no ground truth), <id>_flow.png and
    <id>_gt.png (flow colours scaled by the largest valid ground-truth speed)."""
    base = output_base(directory, sample_id)
    speed = np.sqrt(np.sum(gt ** 2, axis=-1))[valid]
    max_flow = float(speed.max()) if speed.size and speed.max() > 0 else None
    flow_io.write_image(base + "_error.png", flow_io.error_map(flow, gt, valid, max_error=max_error))
    flow_io.write_image(base + "_flow.png", flow_io.flow_to_color(flow, max_flow))
    flow_io.write_image(base + "_gt.png", flow_io.flow_to_color(np.where(valid[..., None], gt, np.nan), max_flow))


def write_stereo_error_images(directory, sample_id, disparity, gt, valid, max_error=5.0):
    """Writes <id>_error.png (|d - d_gt| colour map as for flow, black = no ground truth),
    <id>_disparity.png and <id>_gt.png (disparity_picture scaled by the largest valid ground truth)."""
    base = output_base(directory, sample_id)
    max_disparity = float(gt[valid].max()) if valid.any() and gt[valid].max() > 0 else None
    zeros = np.zeros_like(disparity)
    error = flow_io.error_map(np.stack([disparity, zeros], -1), np.stack([gt, zeros], -1), valid, max_error=max_error)
    flow_io.write_image(base + "_error.png", error)
    flow_io.write_image(base + "_disparity.png", disparity_picture(disparity, max_disparity=max_disparity))
    flow_io.write_image(base + "_gt.png", disparity_picture(gt, valid, max_disparity))


def group_of(sample_id, name):
    """The group of a sample id: its first folder (`sintel` of `sintel/alley_1-clean_0002`), or
    `name` (the root's) for an id without a folder part."""
    parts = sample_id.replace("\\", "/").split("/")
    return parts[0] if len(parts) > 1 else name


def evaluate_samples(predict, samples, total=None, max_examples=None, error_images=None, progress=True,
                     kind="flow"):
    """Runs `predict` (frames -> flow, see dflow_tf.inference.make_predictor) over samples
    (kind "flow") or stereo samples (kind "stereo": the disparity is -u of the predicted flow).

    Returns (FlowMetrics().result() or DisparityMetrics().result() with v, [per-image dict with
    "id" and image_metrics / stereo_image_metrics]); with `error_images` (a folder) also writes
    write_error_images / write_stereo_error_images for every sample.
    """
    results, _, per_image = evaluate_groups(predict, SampleSet(kind, total, samples, ""), max_examples,
                                            error_images, progress, grouped=False)
    return results, per_image


def evaluate_groups(predict, sample_set, max_examples=None, error_images=None, progress=True, grouped=True):
    """evaluate_samples over a SampleSet, also per group (group_of the ids).

    Returns (results over all samples, {group: results} (empty unless `grouped`), per-image list).
    ValueError when no sample had ground truth.
    """
    kind, total, samples, name = sample_set
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    metrics_class = DisparityMetrics if kind == "stereo" else FlowMetrics
    if max_examples is not None:
        total = max_examples if total is None else min(total, max_examples)
    bar = CountProgress("evaluate", total, quiet=not progress)
    metrics, groups, per_image = metrics_class(), {}, []
    for n, (sample_id, frames, gt, valid, occluded) in enumerate(samples):
        if max_examples is not None and n >= max_examples:
            break
        flow = predict(frames)
        accumulators = [metrics]
        if grouped:
            accumulators.append(groups.setdefault(group_of(sample_id, name), metrics_class()))
        if kind == "stereo":
            disparity, v = disparity_from_flow(flow)
            for acc in accumulators:
                acc.update(disparity, gt, valid=valid, occluded=occluded, v=v)
            per_image.append({"id": sample_id, **stereo_image_metrics(disparity, gt, valid, occluded, v)})
            if error_images:
                write_stereo_error_images(error_images, sample_id, disparity, gt, valid)
        else:
            for acc in accumulators:
                acc.update(flow, gt, valid=valid, occluded=occluded)
            per_image.append({"id": sample_id, **image_metrics(flow, gt, valid, occluded)})
            if error_images:
                write_error_images(error_images, sample_id, flow, gt, valid)
        bar.update(n + 1)
    bar.close()
    if not per_image:
        raise ValueError("no example with ground truth was evaluated (a test split has none)")
    return metrics.result(), {g: m.result() for g, m in sorted(groups.items())}, per_image
