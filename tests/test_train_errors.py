"""Bad input to the train command ends with one `error:` line naming it, and no traceback; the
inputs a stage would reject only when it starts are rejected before any stage runs."""
import glob
import os
import subprocess
import sys

import gin
import pytest
from absl import flags

from dflow_tf import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def run_train(monkeypatch, capsys):
    """fn(*args) -> (exit status, stdout, the non-empty stderr lines) of `python -m
    dflow_tf.train *args`, run in this process through train.main."""
    monkeypatch.chdir(REPO)  # the gin files' includes are relative to the repository root

    def run(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train", *args])
        gin.clear_config()
        try:
            status = train.main([])
        except SystemExit as stop:  # sys.exit("message"): the interpreter prints the message
            status = stop.code
            if isinstance(status, str):
                print(status, file=sys.stderr)
                status = 1
        finally:
            gin.clear_config()
            flags.FLAGS.unparse_flags()
        out, err = capsys.readouterr()
        return status, out, [line for line in err.splitlines() if line.strip()]

    return run


def _one_error_line(status, err, *names):
    assert status != 0
    assert "Traceback" not in "\n".join(err)
    assert len(err) == 1, err
    assert err[0].startswith("error"), err
    for name in names:
        assert name in err[0]


def _teacher(tmp_path, *params):
    """gin/teacher.gin on synthetic_flow/tiny under tmp_path (the checks read no data)."""
    return ["--gin_file=gin/teacher.gin", '--gin_param=train_stage.dataset="synthetic_flow/tiny"',
            f'--gin_param=train_stage.data_dir="{tmp_path / "tfds"}"', *[f"--gin_param={p}" for p in params],
            f"--output_dir={tmp_path / 'run'}"]


def test_unwritable_output_dir(run_train, tmp_path):
    status, _, err = run_train("--gin_file=gin/distill.gin", "--output_dir=/proc/nope")
    _one_error_line(status, err, "--output_dir /proc/nope", "cannot write in /proc")


def test_crop_size_that_the_model_cannot_take_is_named_with_the_allowed_sizes(run_train, tmp_path):
    status, _, err = run_train(*_teacher(tmp_path, "train_stage.crop_size=(100, 7)"))
    _one_error_line(status, err, "train_stage.crop_size=(100, 7)", "multiples of 64", "(128, 64)")
    assert not (tmp_path / "run").exists() and not (tmp_path / "tfds").exists()  # before any stage


def test_scoped_crop_size_names_its_scope_and_the_model_of_the_stage(run_train, tmp_path):
    # census trains a 4-level model (multiple 16): 80 fits it, 100 does not; photometric keeps 64
    status, _, err = run_train(*_teacher(tmp_path, "census/TwoFramePWC.num_levels=4",
                                         "census/train_stage.crop_size=(80, 100)"))
    _one_error_line(status, err, "census/train_stage.crop_size=(80, 100)", "multiples of 16", "(80, 96)")
    assert not (tmp_path / "run").exists()


def test_unknown_dataset_lists_the_known_ones(run_train, tmp_path):
    status, _, err = run_train(*_teacher(tmp_path, 'train_stage.dataset="nope_flow"'))
    _one_error_line(status, err, "train_stage.dataset='nope_flow'", "unknown dataset",
                    "synthetic_flow/{default, large, large_motion, tiny}", "kitti_flow/{2012, 2015",
                    "sintel/{clean, final", "@FootageSource()", "@CombinedSource()", "@MixedSource()")
    assert "abstract_reasoning" not in err[0]  # not tfds' catalogue
    assert not (tmp_path / "run").exists()


def test_unknown_dataset_config(run_train, tmp_path):
    status, _, err = run_train(*_teacher(tmp_path, 'train_stage.dataset="synthetic_flow/huge"'))
    _one_error_line(status, err, "train_stage.dataset='synthetic_flow/huge'", "no config 'huge'",
                    "synthetic_flow/{default, large, large_motion, tiny}")


def test_missing_gin_file(run_train, tmp_path):
    status, _, err = run_train("--gin_file=gin/missing.gin", f"--output_dir={tmp_path / 'run'}")
    _one_error_line(status, err, "gin file not found: gin/missing.gin")


def test_misspelled_binding(run_train, tmp_path):
    status, _, err = run_train(*_teacher(tmp_path, "train_stage.crop_sise=(128, 128)"))
    _one_error_line(status, err, "doesn't have a parameter named 'crop_sise'", "train_stage.crop_sise=(128, 128)")


def test_missing_footage_folder(run_train, tmp_path):
    status, _, err = run_train("--gin_file=gin/footage.gin", f"--gin_param=FOOTAGE_DIR='{tmp_path / 'clips'}'",
                               f"--gin_param=FootageSource.data_dir='{tmp_path / 'cache'}'",
                               f"--output_dir={tmp_path / 'run'}")
    _one_error_line(status, err, f"footage folder {tmp_path / 'clips'} not found", "FootageSource.footage_dir")


def test_footage_folder_without_clips(run_train, tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "notes.txt").write_text("no footage here")
    status, _, err = run_train("--gin_file=gin/footage.gin", f"--gin_param=FOOTAGE_DIR='{tmp_path / 'clips'}'",
                               f"--gin_param=FootageSource.data_dir='{tmp_path / 'cache'}'",
                               f"--output_dir={tmp_path / 'run'}")
    _one_error_line(status, err, f"{tmp_path / 'clips'}: no video files")
    assert not list((tmp_path / "run").glob("*/*/checkpoints"))  # no stage trained


def test_missing_eval_pairs_folder(run_train, tmp_path):
    status, _, err = run_train(*_teacher(tmp_path, "train_stage.crop_size=None", "TwoFramePWC.num_levels=4",
                                         f"train_stage.eval_pairs='{tmp_path / 'pairs'}'"), "--dry_run")
    _one_error_line(status, err, f"train_stage.eval_pairs='{tmp_path / 'pairs'}' is not a folder")
    assert not (tmp_path / "run").exists()  # found before the first stage, not after it


def test_every_shipped_gin_file_passes_the_checks(monkeypatch):
    from dflow_tf import configurables  # noqa: F401  (every gin name)
    from dflow_tf.training.stage_checks import check_stages
    monkeypatch.chdir(REPO)
    try:
        for path in sorted(glob.glob("gin/**/*.gin", recursive=True)):
            gin.clear_config()
            gin.parse_config_files_and_bindings([path], [], finalize_config=False)
            check_stages(gin.query_parameter("run_experiment.stages"), None)
    finally:
        gin.clear_config()


def test_the_command_line_exits_with_the_line(tmp_path):
    """The same through the console entry (absl's app.run): status 1, the line, no traceback."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               TFDS_DATA_DIR=str(tmp_path / "tfds"))
    out = subprocess.run([sys.executable, "-m", "dflow_tf.train", "--gin_file=gin/teacher.gin",
                          "--gin_param=train_stage.crop_size=(100, 7)", f"--output_dir={tmp_path / 'run'}"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "error: train_stage.crop_size=(100, 7): height and width must be multiples of 64 (the model's size "
        "multiple), e.g. (128, 64); None keeps the stored size"]
    assert not (tmp_path / "tfds").exists()
