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
unreadable checkpoints, an unwritable --output_dir, a crop the model cannot take, an unknown
dataset) ends with one `error:` line naming it, before any stage trains where it can
(dflow_tf.training.stage_checks). `--dry_run`
checks a configuration in about a minute: every stage trains two steps and evaluates one batch,
into a new temporary folder unless --output_dir is given; stages whose training step is the same
graph share one trace (dflow_tf.training.experiment.DryRun; docs/training.md).
"""
import os
import re
import sys
import tempfile
import tokenize

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
    """The command: returns the exit status, 0, or 1 after one `error: ...` line on stderr."""
    del argv
    import gin
    from absl import logging
    logging.set_verbosity(logging.ERROR)  # tfds' info and deprecation chatter
    from dflow_tf import configurables  # noqa: F401  (every gin name)
    from dflow_tf.checkpoints import CorruptCheckpointError
    from dflow_tf.console import InputError, check_output_path
    from dflow_tf.training.experiment import run_experiment
    from dflow_tf.training.stage_checks import check_stages
    from dflow_tf.training.trainer import DRY_RUN_STEPS, TrainingCollapsed, TrainingDiverged
    missing = [path for path in FLAGS.gin_file if not os.path.isfile(path)]
    if missing:
        return _error(f"gin file not found: {', '.join(missing)} (working directory {os.getcwd()})")
    if not FLAGS.gin_file:
        return _error("give at least one --gin_file (for example --gin_file=gin/teacher.gin)")
    try:
        gin.parse_config_files_and_bindings(FLAGS.gin_file, FLAGS.gin_param)
    except (ValueError, KeyError, SyntaxError, tokenize.TokenError) as error:
        return _error(_gin_error(error), prefix="error in the gin configuration")
    output_dir = FLAGS.output_dir
    try:
        if output_dir:
            check_output_path(output_dir, "--output_dir")
        experiment = gin.get_bindings("run_experiment")  # stages and output_dir (macros resolved)
        if "stages" in experiment:  # a dry run without --output_dir finds no finished stage
            check_stages(experiment["stages"], None if FLAGS.dry_run and not output_dir
                         else output_dir or experiment.get("output_dir"))
        if FLAGS.dry_run and not output_dir:
            output_dir = tempfile.mkdtemp(prefix="dflow_dry_run_")
            print(f"dry run: every stage {DRY_RUN_STEPS} steps and one evaluation batch, into {output_dir}")
        if output_dir:
            run_experiment(output_dir=output_dir, dry_run=FLAGS.dry_run)
        else:
            run_experiment(dry_run=FLAGS.dry_run)
    except (InputError, TrainingDiverged, TrainingCollapsed, OSError, CorruptCheckpointError) as error:
        # each names its input (a collapse: its stage, step and bindings)
        return _error(_one_line(error))
    except AssertionError as error:  # tfds' way of saying that the manual download is missing
        if "Manual directory" not in str(error):
            raise
        return _error(f"a dataset needs a manual download: {_without_gin_calls(error)}")
    return 0


def _error(message, prefix="error"):
    print(f"{prefix}: {message}", file=sys.stderr)
    return 1


def _without_gin_calls(error):
    """The message of `error` without the lines gin appends while it passes configurable calls
    ("  In call to configurable 'train_stage' ...")."""
    return str(error).split("\n  In call to configurable ")[0]


def _one_line(error):
    return " ".join(line.strip() for line in _without_gin_calls(error).splitlines() if line.strip())


def _gin_error(error):
    """A gin parse error in one line: gin's message and the statement it names, e.g. "Configurable
    'train_stage' doesn't have a parameter named 'crop_sise' (--gin_param train_stage.crop_sise=3)"."""
    if isinstance(error, tokenize.TokenError):  # e.g. an unclosed bracket
        return f"{error.args[0]} (an unclosed bracket or quote in a --gin_param or gin file?)"
    lines = [line for line in str(error).splitlines() if line.strip() and line.strip() != "^"]
    message = lines[0].strip().rstrip(".")
    if len(lines) >= 3:
        where, statement = lines[1].strip(), lines[2].strip()
        file_line = re.match(r'In file "(.*)", line (\d+)', where)
        if file_line:
            return f"{message} ({file_line[1]} line {file_line[2]}: {statement})"
        if where.startswith("In bindings string"):
            return f"{message} (--gin_param {statement})"
    return _one_line(error)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
