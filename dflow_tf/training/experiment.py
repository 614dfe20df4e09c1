"""An experiment: training stages in order, their results and the results table.

    run_experiment(output_dir="runs/teacher", stages=["photometric", "census"])

Every stage is a gin scope: bindings under "<stage>/..." apply to that stage's `train_stage`
only. Stages run in order, each into <output_dir>/<stage>/; a finished stage is skipped (its
recorded result is used), a killed one resumes from its newest readable checkpoint. The gin
config is written to <output_dir>/config.gin, the validation metrics of every stage (and the
extra evaluations of its task, e.g. teachers given from outside the experiment) to
<output_dir>/results.json, and the table to stdout. The command line is dflow_tf.train.
"""
import json
import os

import gin

from dflow_tf.evaluation import SUMMARY_KEYS
from dflow_tf.training.trainer import train_stage

RESULTS_FILE = "results.json"
CONFIG_FILE = "config.gin"


@gin.configurable
def run_experiment(output_dir=gin.REQUIRED, stages=gin.REQUIRED):
    """Trains `stages` (gin scope names) in order under `output_dir`.

    Returns:
      {label: metrics}: per stage its validation metrics (None without evaluation), preceded by
      the extra evaluations its task returned (e.g. "teacher <path>").
    """
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, CONFIG_FILE), "w") as f:
        f.write(gin.config_str())
    results = {}
    for stage in stages:
        with gin.config_scope(stage):
            result = train_stage(os.path.join(output_dir, stage), experiment_dir=output_dir)
        results.update(result.extra_evaluations)
        results[stage] = result.evaluation
    with open(os.path.join(output_dir, RESULTS_FILE), "w") as f:
        json.dump(results, f, indent=1)
    print(results_table(results))
    return results


def results_table(results):
    """{label: metrics or None} -> a text table of the SUMMARY_KEYS, one row per label."""
    header = ["stage"] + [k.split("/")[0].replace("_", " ") for k in SUMMARY_KEYS]
    rows = [[stage] + [f"{r[k]:.3f}" if r and k in r else "-" for k in SUMMARY_KEYS] for stage, r in results.items()]
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines) + "\n(EPE in px, Fl in %; pixel-pooled over the validation split)"
