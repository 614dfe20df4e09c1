"""Runs a training experiment described by gin files: one or more stages, then a results table.

    python -m dflow_tf.train --gin_file=gin/teacher.gin [--gin_param='train_stage.num_steps=50']

Every stage is a gin scope: bindings under "<stage>/..." apply to that stage only. Stages run in
order, each into <output_dir>/<stage>/; a finished stage is skipped when the command is run again,
and a killed one resumes from its last checkpoint. The final gin config is written to
<output_dir>/config.gin and the validation metrics to <output_dir>/results.json. A distillation
stage whose teachers were not trained in this experiment (checkpoints from elsewhere) also
evaluates them, so the table compares the student with every teacher.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: a readable console

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin config files, applied in order")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings, e.g. 'train_stage.num_steps=100'")
flags.DEFINE_string("output_dir", None, "overrides run_experiment.output_dir")


def _register_configurables():
    """Makes models and tasks nameable in gin files."""
    import gin

    from dflow_tf import models
    from dflow_tf.distillation import task, teachers, transforms  # noqa: F401  (register the student's parts)
    from dflow_tf.data import sources  # noqa: F401  (registers CombinedSource)
    from dflow_tf.training import supervised, unsupervised  # noqa: F401  (registers the tasks)
    gin.external_configurable(models.TwoFramePWC, module="dflow_tf.models")
    gin.external_configurable(models.ThreeFramePWC, module="dflow_tf.models")


def _results_table(results):
    from dflow_tf.training.trainer import SUMMARY_KEYS
    header = ["stage"] + [k.split("/")[0].replace("_", " ") for k in SUMMARY_KEYS]
    rows = [[stage] + [f"{r[k]:.3f}" if r and k in r else "-" for k in SUMMARY_KEYS] for stage, r in results.items()]
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines) + "\n(EPE in px, Fl in %; pixel-pooled over the validation split)"


def configurable_run_experiment():
    import gin

    from dflow_tf.training.trainer import DONE_FILE, train_stage

    @gin.configurable("run_experiment")
    def run_experiment(output_dir=gin.REQUIRED, stages=gin.REQUIRED):
        """Trains `stages` (gin scope names) in order under `output_dir`; returns {stage: metrics}."""
        output_dir = FLAGS.output_dir or output_dir
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "config.gin"), "w") as f:
            f.write(gin.config_str())
        results = {}
        for stage in stages:
            with gin.config_scope(stage):
                _, stage_results = train_stage(os.path.join(output_dir, stage), experiment_dir=output_dir)
            # Teachers given as checkpoints (not trained here) were evaluated by the student's stage
            # (done.json is written by the chief; other workers of a cluster may not see it).
            done = os.path.join(output_dir, stage, DONE_FILE)
            if os.path.exists(done):
                with open(done) as f:
                    for path, metrics in json.load(f).get("teacher_evaluations", {}).items():
                        results[f"teacher {os.path.relpath(path)}"] = metrics
            results[stage] = stage_results
        with open(os.path.join(output_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
        print(_results_table(results))
        return results

    return run_experiment


def main(argv):
    del argv
    import gin
    from absl import logging
    logging.set_verbosity(logging.ERROR)  # tfds' info and deprecation chatter
    _register_configurables()
    run_experiment = configurable_run_experiment()
    missing = [path for path in FLAGS.gin_file if not os.path.isfile(path)]
    if missing:
        sys.exit(f"error: gin file not found: {', '.join(missing)} (working directory {os.getcwd()})")
    if not FLAGS.gin_file:
        sys.exit("error: give at least one --gin_file (for example --gin_file=gin/teacher.gin)")
    try:
        gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_param)
    except (ValueError, KeyError, SyntaxError) as error:
        sys.exit(f"error in the gin configuration: {error}")
    from dflow_tf.training.trainer import TrainingDiverged
    try:
        run_experiment()
    except TrainingDiverged as error:
        sys.exit(f"error: {error}")
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    except AssertionError as error:  # tfds' way of saying that the manual download is missing
        if "Manual directory" not in str(error):
            raise
        sys.exit(f"error: a dataset needs a manual download: {error}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
