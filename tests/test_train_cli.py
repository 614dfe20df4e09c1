"""The train command: every shipped gin file parses; bad input ends with one clear message."""
import glob
import os
import subprocess
import sys

import gin
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def registered():
    from dflow_tf import train
    train._register_configurables()
    train.configurable_run_experiment()
    yield
    gin.clear_config()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "gin", "**", "*.gin"), recursive=True)))
def test_shipped_gin_files_parse(registered, path, monkeypatch):
    monkeypatch.chdir(REPO)  # includes are relative to the repository root
    gin.clear_config()
    gin.parse_config_files_and_bindings([path], [], finalize_config=False)
    assert gin.query_parameter("run_experiment.stages")


def _train(*args, tmp_path):
    return subprocess.run([sys.executable, "-m", "dflow_tf.train", *args, f"--output_dir={tmp_path / 'run'}"],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["--gin_file=gin/teacher.gin", "--gin_param=train_stage.nonsense=3"], "doesn't have a parameter named 'nonsense'"),
    (["--gin_file=gin/missing.gin"], "gin file not found: gin/missing.gin"),
])
def test_bad_configuration_exits_with_one_message(args, message, tmp_path):
    out = _train(*args, tmp_path=tmp_path)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_manual_dataset_exits_with_instructions(tmp_path):
    out = _train("--gin_file=gin/teacher.gin", '--gin_param=train_stage.dataset="kitti_flow/2015"',
                 f'--gin_param=train_stage.data_dir="{tmp_path / "tfds"}"', tmp_path=tmp_path)
    assert out.returncode != 0
    assert "manual download" in out.stderr and "data_scene_flow.zip" in out.stderr
    assert "Traceback" not in out.stderr
