"""Evaluation of flow models (docs/evaluation.md).

  validation   a model on batches of the canonical schema: a stage's validation, the teachers
  samples      a predictor over the samples of a dataset split or of pair folders, per image
  pair_groups  a model on the groups of a folder of real pairs (a stage's `eval_pairs`)
  report       the metrics table and the JSON file of `python -m dflow_tf.evaluate`
  prediction   flow files for a sequence of frames (`python -m dflow_tf.predict`)
  submission   the KITTI and Sintel benchmark layouts (`python -m dflow_tf.submission`)
"""
from dflow_tf.evaluation.validation import DISPARITY_KEYS, PAIR_KEYS, SUMMARY_KEYS, evaluate_model, summary_line

__all__ = ["DISPARITY_KEYS", "PAIR_KEYS", "SUMMARY_KEYS", "evaluate_model", "summary_line"]
