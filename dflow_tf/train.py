"""Command line of dflow_tf.training.experiment.run_experiment: gin files in, stages trained, a
results table out.

    python -m dflow_tf.train --gin_file=gin/teacher.gin [--gin_param='train_stage.num_steps=50']
    python -m dflow_tf.train --gin_file=gin/distill.gin --dry_run    # every stage 2 steps, 1 batch

Every stage is a gin scope: bindings under "<stage>/..." apply to that stage only. Stages run in
order, each into <output_dir>/<stage>/; a finished stage is skipped when the command is run again,
and a killed one resumes from its newest readable checkpoint. The final gin config is written to
<output_dir>/config.gin and the validation metrics to <output_dir>/results.json. A distillation
stage whose teachers were not trained in this experiment (checkpoints from elsewhere) also
evaluates them, so the table compares the student with every teacher. Bad input (gin, files,
unreadable checkpoints, an unwritable --output_dir) ends with one `error:` line. `--dry_run`
checks a configuration in a minute: every stage trains two steps and evaluates one batch, into a
new temporary folder unless --output_dir is given.
"""
import os
import sys
import tempfile

from dflow_tf.native_logs import hide_native_logs

if __name__ == "__main__":
    hide_native_logs()  # before TensorFlow loads: its native log lines off the console

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin config files, applied in order")
flags.DEFINE_multi_string("gin_param", [], "extra gin bindings, e.g. 'train_stage.num_steps=100'")
flags.DEFINE_string("output_dir", None, "overrides run_experiment.output_dir")
flags.DEFINE_boolean("dry_run", False, "every stage 2 steps and one evaluation batch, into a temporary "
                     "folder unless --output_dir is given")
flags.DEFINE_boolean("verbose", False, "keep TensorFlow's own log lines on the console")


def main(argv):
    del argv
    import gin
    from absl import logging
    logging.set_verbosity(logging.ERROR)  # tfds' info and deprecation chatter
    from dflow_tf import configurables  # noqa: F401  (every gin name)
    from dflow_tf.checkpoints import CorruptCheckpointError
    from dflow_tf.console import check_output_path
    from dflow_tf.training.experiment import run_experiment
    from dflow_tf.training.trainer import DRY_RUN_STEPS, TrainingDiverged
    missing = [path for path in FLAGS.gin_file if not os.path.isfile(path)]
    if missing:
        sys.exit(f"error: gin file not found: {', '.join(missing)} (working directory {os.getcwd()})")
    if not FLAGS.gin_file:
        sys.exit("error: give at least one --gin_file (for example --gin_file=gin/teacher.gin)")
    try:
        gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_param)
    except (ValueError, KeyError, SyntaxError) as error:
        sys.exit(f"error in the gin configuration: {error}")
    output_dir = FLAGS.output_dir
    if FLAGS.dry_run and not output_dir:
        output_dir = tempfile.mkdtemp(prefix="dflow_dry_run_")
        print(f"dry run: every stage {DRY_RUN_STEPS} steps and one evaluation batch, into {output_dir}")
    try:
        if output_dir:
            check_output_path(output_dir, "--output_dir")
            run_experiment(output_dir=output_dir, dry_run=FLAGS.dry_run)
        else:
            run_experiment(dry_run=FLAGS.dry_run)
    except (TrainingDiverged, OSError, CorruptCheckpointError) as error:  # each names its file or step
        sys.exit(f"error: {error}")
    except AssertionError as error:  # tfds' way of saying that the manual download is missing
        if "Manual directory" not in str(error):
            raise
        sys.exit(f"error: a dataset needs a manual download: {error}")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
