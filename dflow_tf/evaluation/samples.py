"""Per-image evaluation of a predictor over samples of a dataset split or of pair folders (the
evaluation of `python -m dflow_tf.evaluate`, docs/evaluation.md).

A **sample** is (id, frames [F, H, W, 3] as the model takes them, flow [H, W, 2], valid bool
[H, W], occluded bool [H, W] or None).
"""
import math
import os
import sys

import numpy as np

from dflow_tf import io as flow_io
from dflow_tf.console import CountProgress
from dflow_tf.data.frame_windows import model_window, pair_window
from dflow_tf.evaluation.report import REGIONS
from dflow_tf.io.pair_folders import pair_folders, read_pair_folder
from dflow_tf.metrics import FlowMetrics


def pair_samples(root, model_frames):
    """(total, generator of samples) of the pair folders under `root` (dflow_tf.io.pair_folders);
    a pair without its previous frame gets the first-frame fallback for a three-frame model."""
    folders = pair_folders(root)
    if not folders:
        raise FileNotFoundError(f"no frame pairs under {root!r} (each folder needs img1 + img2 or "
                                f"frame10 + frame11 and flow.flo / flow.png / flow10.flo; docs/evaluation.md)")

    def generate():
        for pair_id, folder in folders:
            sample = read_pair_folder(folder)
            frames = np.stack(pair_window(sample["frames"], model_frames))
            yield pair_id, frames, sample["flow"], sample["valid"], sample["occluded"]

    return len(folders), generate()


def dataset_samples(source, split, model_frames, data_dir=None, manual_dir=None):
    """(total or None, generator of samples) of a tfds_builders split (frames float32 in [0, 1]);
    examples without ground truth are skipped."""
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

    def generate():
        for batch in ds:
            if not bool(batch["has_flow"][0]):
                continue
            frames = model_window(batch["frames"], model_frames)  # float32 in [0, 1]
            occluded = batch["occlusion"][0, ..., 0].numpy() > 0.5 if bool(batch["has_occlusion"][0]) else None
            yield (batch["id"][0].numpy().decode(), frames[0].numpy(), batch["flow"][0].numpy(),
                   batch["valid"][0, ..., 0].numpy() > 0.5, occluded)

    return total, generate()


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

    Returns (FlowMetrics().result(), [per-image dict with "id" and image_metrics]); with
    `error_images` (a folder) also writes write_error_images for every sample.
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
