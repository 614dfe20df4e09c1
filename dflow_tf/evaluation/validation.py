"""The evaluation inside training: a model on batches of the canonical schema (a stage's validation
split, the teachers; docs/datasets.md), and the summary line of the training logs."""
import json
import time

import numpy as np
import tensorflow as tf

from dflow_tf.data.frame_windows import model_window
from dflow_tf.data.schema import STEREO
from dflow_tf.inference import make_predictor, predict_tensor
from dflow_tf.metrics import DisparityMetrics, FlowMetrics
from dflow_tf.models.stereo import disparity_from_flow

#: The metrics of the training logs and the experiments' results table.
SUMMARY_KEYS = ("epe_all/pixel_pooled", "epe_noc/pixel_pooled", "epe_occ/pixel_pooled", "fl_all/pixel_pooled")
#: The metrics of the real-pair groups (mean over the pairs of a group, as benchmarks report; D1
#: of the stereo groups).
PAIR_KEYS = ("epe_all/per_image_mean", "epe_occ/per_image_mean", "d1_all/per_image_mean", "d1_noc/per_image_mean",
             "d1_occ/per_image_mean")
#: The disparity metrics of stereo validation splits, added to the log line where present.
DISPARITY_KEYS = ("d1_all/pixel_pooled", "d1_noc/pixel_pooled", "d1_occ/pixel_pooled")


def summary_line(metrics, keys=SUMMARY_KEYS + DISPARITY_KEYS):
    """'epe_all/pixel_pooled=1.234, ...' for the `keys` present in `metrics`."""
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in keys if k in metrics)


def evaluate_model(model, dataset, max_batches=None, progress=None, predict=None):
    """Runs `model` over `dataset` and returns its metrics (per-image and pooled keys).

    Flow examples are scored with FlowMetrics. Rectified stereo pairs (a true `stereo` key, the
    stereo builders) are scored with DisparityMetrics on the predicted disparity d = -u of the
    left -> right flow against the ground truth's -u (EPE and D1 over all / noc / occ, and the
    mean |v|, the rectification check). The result is FlowMetrics().result() when the dataset
    held flow examples only, DisparityMetrics().result() when stereo pairs only, and with both the
    flow result plus the disparity result under "stereo/<key>".

    Args:
      model: TwoFramePWC / ThreeFramePWC (any object with `num_frames` and the model call).
      dataset: batches with frames [B, N, H, W, 3] (uint8 or float in [0, 1]), flow, valid,
        occlusion, has_flow, has_occlusion and optionally stereo [B], as
        `dflow_tf.data.make_dataset` yields them.
      max_batches: stop after this many batches (None = all).
      progress: optional callable(done_batches, seconds_elapsed) called after every batch.
      predict: the traced fn(frames) -> flow to run (e.g. from SharedPredictions); None traces
        predict_tensor of `model` anew.
    """
    # One graph per frame size: predict_tensor needs static sizes (KITTI has several).
    predict = predict or tf.function(lambda frames: predict_tensor(model, frames))
    flow_metrics, disparity_metrics = FlowMetrics(), DisparityMetrics()
    seen = {"flow": False, "stereo": False}
    start, traced_batch = time.perf_counter(), None
    for n, batch in enumerate(dataset):
        if max_batches is not None and n >= max_batches:
            break
        frames = model_window(batch["frames"], model.num_frames)
        size = int(frames.shape[0])
        traced_batch = traced_batch or size
        if size < traced_batch:  # the last, smaller batch: padded to the traced size (no new graph)
            frames = tf.concat([frames, tf.repeat(frames[-1:], traced_batch - size, axis=0)], axis=0)
        flow = predict(frames).numpy()[:size]
        has_flow = np.asarray(batch["has_flow"]).astype(bool)
        stereo = np.asarray(batch[STEREO]).astype(bool) if STEREO in batch else np.zeros_like(has_flow)
        for kind, selected in (("flow", has_flow & ~stereo), ("stereo", has_flow & stereo)):
            if selected.any():
                _update(flow_metrics if kind == "flow" else disparity_metrics, kind, flow[selected],
                        {key: np.asarray(batch[key])[selected] for key in ("flow", "valid", "occlusion",
                                                                          "has_occlusion")})
                seen[kind] = True
        if progress is not None:
            progress(n + 1, time.perf_counter() - start)
    if seen["stereo"] and not seen["flow"]:
        return disparity_metrics.result()
    result = flow_metrics.result()
    if seen["stereo"]:
        result.update({f"stereo/{key}": value for key, value in disparity_metrics.result().items()})
    return result


def _update(metrics, kind, flow, truth):
    """Adds predictions flow [b, H, W, 2] and their ground truth (flow, valid, occlusion,
    has_occlusion of the same b examples) to FlowMetrics (kind "flow") or DisparityMetrics
    ("stereo": d = -u)."""
    valid = truth["valid"].astype(bool)
    occluded = truth["occlusion"].astype(bool) if truth["has_occlusion"].astype(bool).all() else None
    if kind == "flow":
        metrics.update(flow, truth["flow"], valid=valid, occluded=occluded)
    else:
        disparity, v = disparity_from_flow(flow)
        gt, _ = disparity_from_flow(truth["flow"])
        metrics.update(disparity, gt, valid=valid, occluded=occluded, v=v)


class SharedPredictions:
    """One traced prediction per model architecture, shared by the evaluations of several models
    (the stages of a dry run, dflow_tf.training.experiment.DryRun).

        shared = SharedPredictions()
        evaluate_model(model, dataset, predict=shared(model))

    `shared(model)` copies the weights of `model` into a model of the same class and
    configuration that the returned tf.function predicts with, so that models of one architecture
    are traced once (per frame size) instead of once each: the same graph on the same weights.
    None for a model without a Keras configuration (evaluate_model then traces its own).
    `shared.predictor(model)` does the same for inference.make_predictor's fn(frames) -> flow
    (the real pairs of evaluate_pair_groups).
    """

    def __init__(self):
        self._models = {}  # architecture -> (model the graph reads, its traced predict) or None
        self._predictors = {}  # id of such a model -> its make_predictor

    def __call__(self, model):
        entry = self._holding(model)
        return entry[1] if entry else None

    def predictor(self, model):
        """make_predictor(twin) of `model`'s architecture holding `model`'s weights, or None."""
        entry = self._holding(model)
        if entry is None:
            return None
        if id(entry[0]) not in self._predictors:
            self._predictors[id(entry[0])] = make_predictor(entry[0])
        return self._predictors[id(entry[0])]

    def _holding(self, model):
        """(twin, traced predict) of `model`'s architecture with `model`'s weights copied in, or None."""
        try:
            config = model.get_config()
            key = json.dumps([type(model).__module__, type(model).__qualname__,
                              {k: v for k, v in config.items() if k != "name"}], sort_keys=True)
        except (AttributeError, NotImplementedError, TypeError):
            return None
        if key not in self._models:
            try:
                self._models[key] = _traced_twin(model, config)
            except (TypeError, ValueError):  # a configuration its class does not take back
                self._models[key] = None
        if self._models[key] is None:
            return None
        twin, predict = self._models[key]
        if [tuple(w.shape) for w in twin.weights] != [tuple(w.shape) for w in model.weights]:
            return None
        for target, source in zip(twin.weights, model.weights):
            target.assign(source)
        return twin, predict


def _traced_twin(model, config):
    """(a new model of `model`'s class and `config`, built, and its traced predict_tensor)."""
    twin = type(model).from_config(config)
    size = getattr(model, "size_multiple", 64)
    twin(tf.zeros([1, model.num_frames, size, size, 3], tf.float32))
    return twin, tf.function(lambda frames: predict_tensor(twin, frames))
