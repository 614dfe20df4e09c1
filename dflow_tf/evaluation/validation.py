"""The evaluation inside training: a model on batches of the canonical schema (a stage's validation
split, the teachers; docs/datasets.md), and the summary line of the training logs."""
import time

import numpy as np
import tensorflow as tf

from dflow_tf.data.frame_windows import model_window
from dflow_tf.inference import predict_tensor
from dflow_tf.metrics import FlowMetrics

#: The metrics of the training logs and the experiments' results table.
SUMMARY_KEYS = ("epe_all/pixel_pooled", "epe_noc/pixel_pooled", "epe_occ/pixel_pooled", "fl_all/pixel_pooled")


def summary_line(metrics):
    """'epe_all/pixel_pooled=1.234, ...' for the SUMMARY_KEYS present in `metrics`."""
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in SUMMARY_KEYS if k in metrics)


def evaluate_model(model, dataset, max_batches=None, progress=None):
    """Runs `model` over `dataset` and returns FlowMetrics().result() (per-image and pooled keys).

    Args:
      model: TwoFramePWC / ThreeFramePWC (any object with `num_frames` and the model call).
      dataset: batches with frames [B, N, H, W, 3] (uint8 or float in [0, 1]), flow, valid,
        occlusion, has_flow, has_occlusion, as `dflow_tf.data.make_dataset` yields them.
      max_batches: stop after this many batches (None = all).
      progress: optional callable(done_batches, seconds_elapsed) called after every batch.
    """
    # One graph per frame size: predict_tensor needs static sizes (KITTI has several).
    predict = tf.function(lambda frames: predict_tensor(model, frames))
    metrics = FlowMetrics()
    start = time.perf_counter()
    for n, batch in enumerate(dataset):
        if max_batches is not None and n >= max_batches:
            break
        flow = predict(model_window(batch["frames"], model.num_frames)).numpy()
        has_flow = np.asarray(batch["has_flow"]).astype(bool)
        if not has_flow.any():
            continue
        valid = np.asarray(batch["valid"]).astype(bool)[has_flow]
        occluded = None
        if np.asarray(batch["has_occlusion"]).astype(bool)[has_flow].all():
            occluded = np.asarray(batch["occlusion"]).astype(bool)[has_flow]
        metrics.update(flow[has_flow], np.asarray(batch["flow"])[has_flow], valid=valid, occluded=occluded)
        if progress is not None:
            progress(n + 1, time.perf_counter() - start)
    return metrics.result()
