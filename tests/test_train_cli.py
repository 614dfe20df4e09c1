"""The train command: every shipped gin file parses; the distillation job trains or reuses teachers;
a missing manual download is explained (the other bad inputs: test_train_errors.py)."""
import glob
import json
import os
import subprocess
import sys

import gin
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def registered():
    from dflow_tf import configurables  # noqa: F401  (every gin name)
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


def test_missing_manual_dataset_exits_with_instructions(tmp_path):
    out = _train("--gin_file=gin/teacher.gin", '--gin_param=train_stage.dataset="kitti_flow/2015"',
                 f'--gin_param=train_stage.data_dir="{tmp_path / "tfds"}"', tmp_path=tmp_path)
    assert out.returncode != 0
    assert "manual download" in out.stderr and "data_scene_flow.zip" in out.stderr
    assert "Traceback" not in out.stderr


def _tiny_distill(tmp_path, *params):
    """gin/distill.gin on synthetic_flow/tiny (32x48), 4-level models, 2 steps per stage."""
    return ["--gin_file=gin/distill.gin", '--gin_param=train_stage.dataset="synthetic_flow/tiny"',
            f'--gin_param=train_stage.data_dir="{tmp_path / "tfds"}"', "--gin_param=TwoFramePWC.num_levels=4",
            "--gin_param=train_stage.batch_size=2", "--gin_param=TEACHER_CROP=None",
            "--gin_param=PHOTOMETRIC_STEPS=2", "--gin_param=student/train_stage.num_steps=2",
            "--gin_param=StudentTransforms.crop_size=(16, 32)", *params]


def test_distill_job_trains_teachers_then_reuses_given_ones_and_tables_every_model(tmp_path):
    # 1. no teacher checkpoints: the job trains its teacher stage, then the student
    first = _train(*_tiny_distill(tmp_path, '--gin_param=run_experiment.stages=["teacher_a/photometric", "student"]',
                                  '--gin_param=TeacherEnsemble.checkpoints=["teacher_a/photometric"]',
                                  '--gin_param=student/train_stage.init_from="teacher_a/photometric"'),
                   tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert list(results) == ["teacher_a/photometric", "student"]
    assert all(r["num_images"] > 0 and r["epe_all/pixel_pooled"] >= 0 for r in results.values())
    assert (run / "student" / "done.json").exists() and (run / "config.gin").exists()
    table = first.stdout[first.stdout.index("stage "):]
    assert "teacher_a/photometric" in table and "student" in table and "epe occ" in table
    # 2. the teacher given as a checkpoint from elsewhere: reused, not trained, and evaluated
    teacher = run / "teacher_a" / "photometric"
    second_dir = tmp_path / "second"
    second = subprocess.run(
        [sys.executable, "-m", "dflow_tf.train",
         *_tiny_distill(tmp_path, '--gin_param=run_experiment.stages=["student"]',
                        f'--gin_param=TeacherEnsemble.checkpoints=["{teacher}"]',
                        f'--gin_param=student/train_stage.init_from="{teacher}"'),
         f"--output_dir={second_dir}"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert not (second_dir / "teacher_a").exists()
    results = json.loads((second_dir / "results.json").read_text())
    assert list(results) == [f"teacher {os.path.relpath(teacher, REPO)}", "student"]
    # the reused teacher's evaluation is the one its own stage recorded (same weights, same split)
    own = json.loads((teacher / "done.json").read_text())["evaluation"]
    reused = results[f"teacher {os.path.relpath(teacher, REPO)}"]
    assert abs(reused["epe_all/pixel_pooled"] - own["epe_all/pixel_pooled"]) < 1e-4
    assert f"teacher {os.path.relpath(teacher, REPO)}" in second.stdout


def test_dry_run_of_the_distill_job_runs_every_stage_and_shares_the_second_teachers_steps(tmp_path):
    out = _train(*_tiny_distill(tmp_path), "--dry_run", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    stages = ["teacher_a/photometric", "teacher_a/census", "teacher_b/photometric", "teacher_b/census", "student"]
    run = tmp_path / "run"
    assert list(json.loads((run / "results.json").read_text())) == stages
    assert all(json.loads((run / stage / "done.json").read_text())["step"] == 2 for stage in stages)
    # teacher_b's stages differ from teacher_a's only by seed and init_from: the same graphs
    assert "[teacher_b/photometric] dry run: trains with the step traced for teacher_a/photometric" in out.stdout
    assert "[teacher_b/census] dry run: trains with the step traced for teacher_a/census" in out.stdout
    assert out.stdout.count("dry run: trains with the step traced") == 2
