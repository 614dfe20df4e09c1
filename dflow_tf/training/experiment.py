"""An experiment: training stages in order, their results and the results table.

    run_experiment(output_dir="runs/teacher", stages=["photometric", "census"])

Every stage is a gin scope: bindings under "<stage>/..." apply to that stage's `train_stage`
only. Stages run in order, each into <output_dir>/<stage>/; a finished stage is skipped (its
recorded result is used), a killed one resumes from its newest readable checkpoint. The gin
config is written to <output_dir>/config.gin, the validation metrics of every stage (and the
extra evaluations of its task, e.g. teachers given from outside the experiment) to
<output_dir>/results.json, and the table to stdout (with a second table of the real-pair groups
when stages evaluate `train_stage.eval_pairs`). A dry run (`dry_run=True`) runs every stage for
two steps and evaluates one batch, to check a configuration before a long run. The command line
is dflow_tf.train.
"""
import json
import os

import gin

from dflow_tf.evaluation import DISPARITY_KEYS, PAIR_KEYS, SUMMARY_KEYS
from dflow_tf.evaluation.report import format_columns, format_number
from dflow_tf.training.trainer import StagePaused, train_stage

RESULTS_FILE = "results.json"
CONFIG_FILE = "config.gin"


@gin.configurable(denylist=["dry_run"])
def run_experiment(output_dir=gin.REQUIRED, stages=gin.REQUIRED, dry_run=False):
    """Trains `stages` (gin scope names) in order under `output_dir` (`dry_run`: see train_stage).

    Returns:
      {label: metrics}: per stage its validation metrics (None without evaluation), preceded by
      the extra evaluations its task returned (e.g. "teacher <path>"); None when a stage paused
      (trainer.StagePaused: its budget or a signal; the message is printed, later stages wait).
    """
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, CONFIG_FILE), "w") as f:
        f.write(gin.config_str())
    results = {}
    for stage in stages:
        with gin.config_scope(stage):
            try:
                result = train_stage(os.path.join(output_dir, stage), experiment_dir=output_dir, dry_run=dry_run)
            except StagePaused as paused:  # a segment of a long run ended; the same command continues
                print(paused.message)
                return None
        results.update(result.extra_evaluations)
        results[stage] = result.evaluation
    with open(os.path.join(output_dir, RESULTS_FILE), "w") as f:
        json.dump(results, f, indent=1)
    print(results_table(results))
    return results


def results_table(results):
    """{label: metrics or None} -> the text table of the SUMMARY_KEYS (and of the DISPARITY_KEYS
    that some stage reports: D1 of stereo stages), one row per label, followed by the table of the
    real-pair groups when there are any."""
    keys = list(SUMMARY_KEYS) + [k for k in DISPARITY_KEYS if any(r and k in r for r in results.values())]
    header = ["stage"] + [k.split("/")[0].replace("_", " ") for k in keys]
    rows = [[stage] + [format_number((r or {}).get(k)) for k in keys] for stage, r in results.items()]
    text = format_columns(header, rows) + "\n(EPE in px, Fl and D1 in %; pixel-pooled over the validation split)"
    groups = sorted({g for r in results.values() if r for g in r.get("pairs", {})})
    if groups:
        columns = [(g, k) for g in groups for k in PAIR_KEYS
                   if any(r and k in r.get("pairs", {}).get(g, {}) for r in results.values())]
        header = ["stage"] + [f"{g} {k.split('/')[0].replace('_', ' ')}" for g, k in columns]
        rows = [[stage] + [format_number(r["pairs"].get(g, {}).get(k)) for g, k in columns]
                for stage, r in results.items() if r and "pairs" in r]
        text += "\n\nreal pairs\n" + format_columns(header, rows) + "\n(EPE in px, mean over the pairs of each group)"
    return text

