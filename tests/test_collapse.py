"""The collapse check: CollapseMonitor on scalar sequences with known answers, and stages whose
task pulls their flow to zero: one stops (or warns) with one line naming the stage, the step and
the bindings, while a stage from random weights and one that keeps its flow train on."""
import contextlib
import glob
import io
import math
import re

import gin
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from dflow_tf import configurables, losses, train  # noqa: F401  (gin names)
from dflow_tf.distillation.task import DistillationTask
from dflow_tf.distillation.teachers import TeacherEnsemble
from dflow_tf.training.collapse import CollapseMonitor, likely_bindings
from dflow_tf.training.unsupervised import UnsupervisedTask, flow_magnitude


def _feed(monitor, magnitudes, errors, key="loss/census"):
    """Feeds steps 1.. of the sequences; returns [(step, message)] of the messages."""
    out = []
    for step, (magnitude, error) in enumerate(zip(magnitudes, errors), start=1):
        message = monitor.update(step, {"flow_magnitude": magnitude, key: error}, 1e-4)
        if message is not None:
            out.append((step, message))
    return out


def test_collapse_is_found_at_the_first_step_where_the_latest_window_is_below_the_fraction():
    # Start (steps 1-5): 5 px. From step 11 the flow is 0: the latest 5-step mean at step s is
    # 5 - (s - 10) px, below 0.2 * 5 = 1 px first at s = 15 (at s = 14 it is exactly 1).
    monitor = CollapseMonitor(stage="teacher_a/census", suspects=["UnsupervisedTask.consistency_weight=0.5"],
                              window=5, min_steps=10, fraction=0.2)
    found = _feed(monitor, [5.0] * 10 + [0.0] * 20, [1.0] * 30)
    assert [step for step, _ in found] == [15]  # once
    message = found[0][1]
    assert "\n" not in message
    assert message.startswith("[teacher_a/census] step 15: the flow collapsed: mean |flow| 0 px")
    assert "5 px over the first 3 of this run" in message and "loss/census did not fall (1 -> 1)" in message
    assert message.endswith("most likely responsible: UnsupervisedTask.consistency_weight=0.5, "
                            "make_optimizer.learning_rate (now 0.0001)")


def test_a_collapse_within_the_first_window_is_found():
    # Teacher B's census phase of gin/stereo.gin (2026-12-03): most of the flow gone in 10 steps
    # (10-step means 0.287, 0.075, 0.029 px). Here 1.2 * 0.6^(k-1) px for steps k = 1..10, then
    # 0.02 px; the start is the mean of steps 1-3, 0.784 px, and the latest window is below 0.157
    # px at the first judgement, step 40. A start averaged over the first 20 steps (0.17 px)
    # would be below min_start_magnitude.
    magnitudes = [1.2 * 0.6 ** k for k in range(10)] + [0.02] * 110
    errors = [2.97] * 10 + [3.1] * 110
    found = _feed(CollapseMonitor(), magnitudes, errors)
    assert [step for step, _ in found] == [40] and "0.784 px over the first 3" in found[0][1]


def test_no_judgement_before_min_steps():
    # The flow is gone from step 6 on; the latest window is all zeros from step 10, but the
    # first judgement comes at min_steps = 16.
    monitor = CollapseMonitor(window=5, min_steps=16)
    assert [step for step, _ in _feed(monitor, [5.0] * 5 + [0.0] * 20, [1.0] * 25)] == [16]


def test_a_collapse_whose_data_term_rises_is_found_and_one_whose_data_term_falls_is_not():
    magnitudes = [4.0] * 20 + [0.1] * 40
    rising = [1.0] * 20 + [1.3] * 40
    assert len(_feed(CollapseMonitor(window=10, min_steps=20), magnitudes, rising)) == 1
    # The flow shrinks from an overestimate while the frames match better: not a collapse. The
    # tolerance: a 4 % fall still counts as "did not fall", a 6 % fall does not.
    assert _feed(CollapseMonitor(window=10, min_steps=20), magnitudes, [1.0] * 20 + [0.7] * 40) == []
    assert len(_feed(CollapseMonitor(window=10, min_steps=20), magnitudes, [1.0] * 20 + [0.96] * 40)) == 1
    assert _feed(CollapseMonitor(window=10, min_steps=20), magnitudes, [1.0] * 20 + [0.94] * 40) == []


def test_healthy_runs_do_not_trigger():
    rng = np.random.default_rng(0)
    steps = np.arange(300)
    # Flow growing from a photometric start and settling, with per-batch noise; error falling.
    magnitudes = 2.0 + 1.5 * (1 - np.exp(-steps / 50)) + rng.normal(0, 0.6, 300).clip(-1.5, 1.5)
    errors = 1.0 - 0.2 * (1 - np.exp(-steps / 80)) + rng.normal(0, 0.05, 300)
    assert _feed(CollapseMonitor(), magnitudes, errors) == []
    # The flow halves (e.g. an overestimating start) with a flat error: above the fraction.
    assert _feed(CollapseMonitor(), [3.0] * 40 + [1.5] * 260, [1.0] * 300) == []


def test_a_stage_that_starts_without_motion_is_not_judged():
    # A photometric phase from random weights: near-zero flow at the start, then the flow grows
    # and shrinks again; below min_start_magnitude (0.25 px) the start is not a reference.
    magnitudes = [0.05] * 20 + [2.0] * 40 + [0.0] * 60
    assert _feed(CollapseMonitor(), magnitudes, [1.0] * 120) == []
    # The same sequence with a start of 0.6 px is judged: 0 < 0.2 * 0.6.
    assert len(_feed(CollapseMonitor(), [0.6] * 20 + magnitudes[20:], [1.0] * 120)) == 1


def test_stages_without_the_flow_magnitude_scalar_and_non_finite_steps():
    monitor = CollapseMonitor(start_steps=2, window=2, min_steps=4)
    for step in range(1, 50):  # SupervisedTask's scalars: no flow_magnitude, never judged
        assert monitor.update(step, {"loss/supervised_robust": 1.0, "train_epe": 0.0}) is None
    assert monitor.seen == 0
    # Non-finite steps (skipped by the trainer) are left out, not averaged in.
    monitor = CollapseMonitor(start_steps=2, window=2, min_steps=4)
    found = _feed(monitor, [4.0, 4.0, math.nan, 0.0, 0.0], [1.0, 1.0, 1.0, math.inf, 1.0], key="loss/photometric")
    assert found == [] and monitor.seen == 3
    found = _feed(monitor, [0.0], [1.0], key="loss/photometric")
    assert [step for step, _ in found] == [1] and "loss/photometric" in found[0][1]


def test_window_must_fit_twice_before_the_first_judgement():
    with pytest.raises(ValueError, match="min_steps >= 2 \\* window"):
        CollapseMonitor(window=20, min_steps=30)
    with pytest.raises(ValueError, match="start_steps <= window"):
        CollapseMonitor(start_steps=6, window=5, min_steps=10)


def test_likely_bindings_of_the_tasks():
    task = UnsupervisedTask("census", True, alpha2=1.0, consistency_weight=0.5)
    assert likely_bindings(task) == ["UnsupervisedTask.consistency_weight=0.5",
                                     "UnsupervisedTask.alpha2=1 (occlusion check)"]
    assert likely_bindings(UnsupervisedTask("photometric", False)) == []
    student = DistillationTask(teachers=TeacherEnsemble(["teacher_a/census", "teacher_b/census"]))
    assert likely_bindings(student) == [
        "TeacherEnsemble.checkpoints=['teacher_a/census', 'teacher_b/census'] (teachers at zero flow?)",
        "DistillationTask.distillation_weight=1", "DistillationTask.alpha2=0.5 (occlusion check)"]


def test_flow_magnitude_scalar():
    flow = tf.constant([[[[3.0, 4.0], [0.0, 0.0]]]])  # |flow| 5 and 0
    assert float(flow_magnitude(flow)) == pytest.approx(2.5)


# ---- stages whose task pulls the flow to zero ------------------------------------------------

SHIFT = 6.0


@gin.configurable
class CollapsingTask:
    """Frame b is frame a rolled SHIFT px to the right, so the true flow is (SHIFT, 0). The task's
    flow is the model's plus (SHIFT, 0) (a random model starts near the truth), and its loss
    pulls that flow to (target, 0): target 0 collapses it (the photometric error rises), target
    SHIFT keeps it."""

    def __init__(self, target=0.0):
        self.target = target

    def num_frames(self, model):
        return 2

    def compute_loss(self, model, batch):
        image_a = tf.cast(batch["frames"], tf.float32)[:, 0]
        image_b = tf.roll(image_a, int(SHIFT), axis=2)
        flow = tf.cast(model(tf.stack([image_a, image_b], axis=1))["flow"], tf.float32) + [SHIFT, 0.0]
        loss = tf.reduce_mean(tf.abs(flow - [self.target, 0.0]))
        error = losses.photometric_loss(image_a, image_b, flow, -flow, None, None)
        return loss, {"flow_magnitude": flow_magnitude(flow), "loss/photometric": error}, {}


WINDOW, MIN_STEPS, STEPS = 5, 10, 40

# Five stages of one experiment: "start" (5 steps, keeps the flow) gives the others trained
# weights; "random" pulls the flow to zero from random weights (not judged); "healthy" keeps the
# flow from "start"; "warn" and "collapse" pull it to zero from "start", the first with
# on_collapse "warn", the last with "stop" (the experiment ends there).
STAGES = ["start", "random", "healthy", "warn", "collapse"]


def _experiment_gin(tmp_path):
    return "\n".join([
        f"run_experiment.stages = {STAGES}", "make_optimizer.learning_rate = 3e-4",
        f"CollapseMonitor.window = {WINDOW}", f"CollapseMonitor.min_steps = {MIN_STEPS}",
        "train_stage.model_fn = @TwoFramePWC", "TwoFramePWC.num_levels = 4", "train_stage.task = @CollapsingTask()",
        f"train_stage.num_steps = {STEPS}", "train_stage.batch_size = 2",
        'train_stage.dataset = "synthetic_flow/tiny"', f'train_stage.data_dir = "{tmp_path / "tfds"}"',
        "train_stage.log_every = 1", "train_stage.image_every = 0", "train_stage.checkpoint_every = 100",
        "train_stage.eval_split = None", "train_stage.deterministic = True", "train_stage.seed = 5",
        "start/train_stage.num_steps = 5", f"start/CollapsingTask.target = {SHIFT}",
        "random/CollapsingTask.target = 0.0",
        f"healthy/CollapsingTask.target = {SHIFT}", 'healthy/train_stage.init_from = "start"',
        "warn/CollapsingTask.target = 0.0", 'warn/train_stage.init_from = "start"',
        'warn/train_stage.on_collapse = "warn"',
        "collapse/CollapsingTask.target = 0.0", 'collapse/train_stage.init_from = "start"',
        'collapse/train_stage.on_collapse = "stop"']) + "\n"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """Runs the train command on the five stages, in this process: (run folder, exit status,
    stdout, stderr lines)."""
    tmp_path = tmp_path_factory.mktemp("collapse")
    gin_file = tmp_path / "stages.gin"
    gin_file.write_text(_experiment_gin(tmp_path))
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", f"--gin_file={gin_file}", f"--output_dir={tmp_path / 'run'}"])
    gin.clear_config()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = train.main([])
    finally:
        gin.clear_config()
        flags.FLAGS.unparse_flags()
    return tmp_path / "run", status, out.getvalue(), [line for line in err.getvalue().splitlines() if line.strip()]


def _logged(stage_dir):
    """{step: {tag: value}} of the stage's TensorBoard scalars."""
    steps = {}
    for path in glob.glob(str(stage_dir / "tensorboard" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                steps.setdefault(event.step, {})[value.tag] = float(tf.make_ndarray(value.tensor))
    return steps


def _first_collapse(stage_dir):
    """(first step at which the rule holds on the logged per-step scalars, start and latest mean
    |flow| there), computed here independently of CollapseMonitor (start: |flow| of the first 3
    steps, data term of the first WINDOW; fraction 0.2, minimum start 0.25 px, tolerance 5 %)."""
    logged = _logged(stage_dir)
    steps = sorted(logged)
    assert steps == list(range(1, len(steps) + 1))
    magnitude = np.array([logged[s]["flow_magnitude"] for s in steps])
    error = np.array([logged[s]["loss/photometric"] for s in steps])
    start_m, start_e = magnitude[:3].mean(), error[:WINDOW].mean()
    assert start_m >= 0.25
    for i in range(MIN_STEPS - 1, len(steps)):
        latest_m, latest_e = magnitude[i - WINDOW + 1:i + 1].mean(), error[i - WINDOW + 1:i + 1].mean()
        if latest_m < 0.2 * start_m and latest_e >= 0.95 * start_e:
            return steps[i], start_m, latest_m
    return None, start_m, None


def test_a_collapsing_stage_stops_with_one_error_line_at_the_step_of_the_rule(experiment):
    run, status, _, err = experiment
    expected, start, latest = _first_collapse(run / "collapse")
    assert expected is not None and MIN_STEPS <= expected < STEPS
    errors = [line for line in err if line.startswith("error")]  # the others: tfds preparing the data
    assert status == 1 and len(errors) == 1 and "Traceback" not in "\n".join(err), err
    line = errors[0]
    assert line.startswith(f"error: [collapse] step {expected}: the flow collapsed: mean |flow| "), line
    numbers = re.search(r"\|flow\| ([\d.e-]+) px over the last (\d+) steps against ([\d.e-]+) px", line)
    assert int(numbers[2]) == WINDOW
    assert float(numbers[1]) == pytest.approx(latest, rel=2e-3) and float(numbers[3]) == pytest.approx(start, rel=2e-3)
    assert "make_optimizer.learning_rate (now 0.0003)" in line and 'on_collapse="warn"' in line
    assert max(_logged(run / "collapse")) == expected  # it stopped there
    assert not (run / "collapse" / "done.json").exists()


def test_warn_prints_the_line_once_and_trains_on(experiment):
    run, _, out, _ = experiment
    expected, _, _ = _first_collapse(run / "warn")
    warnings = [line for line in out.splitlines() if "the flow collapsed" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"[warn] step {expected}: the flow collapsed")
    assert warnings[0].endswith('training on (train_stage.on_collapse="warn")')
    assert max(_logged(run / "warn")) == STEPS and (run / "warn" / "done.json").exists()


def test_a_stage_that_keeps_its_flow_and_a_stage_from_random_weights_are_not_stopped(experiment):
    run, _, out, _ = experiment
    assert _first_collapse(run / "healthy")[0] is None
    # From random weights the same pull to zero satisfies the rule, but such a stage is not judged.
    assert _first_collapse(run / "random")[0] is not None
    assert not any(line.startswith(("[healthy]", "[random]")) and "collapsed" in line for line in out.splitlines())
    for stage in ("healthy", "random"):
        assert max(_logged(run / stage)) == STEPS and (run / stage / "done.json").exists()
