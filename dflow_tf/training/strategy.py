"""Choice of the tf.distribute strategy (a gin binding of the training stages)."""
import json
import os

import gin
import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


@gin.configurable
def make_strategy(kind="auto", devices=None):
    """Returns the tf.distribute strategy to train under.

    Args:
      kind: "auto" = MultiWorkerMirroredStrategy when the TF_CONFIG environment variable names a
        cluster, else MirroredStrategy over the local GPUs, else one CPU device (the default
        strategy); "mirrored" = MirroredStrategy over `devices` (default: all local GPUs, or the
        CPU); "multi_worker" = MultiWorkerMirroredStrategy; "default" = no distribution.
      devices: optional device names for "mirrored", e.g. ["/cpu:0", "/cpu:1"] for logical CPUs.
    """
    if kind not in STRATEGIES:
        raise ValueError(f"make_strategy.kind must be one of {STRATEGIES}, got {kind!r}")
    if kind == "auto":
        if _tf_config_has_cluster():
            kind = "multi_worker"
        elif tf.config.list_logical_devices("GPU") or devices:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def _tf_config_has_cluster():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return False
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error
    return bool(config.get("cluster"))


def is_chief(strategy):
    """True on the worker that writes checkpoints' primary copy, summaries and console output."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)
