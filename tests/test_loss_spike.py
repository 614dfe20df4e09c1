"""The loss-spike check: silent on a noisy falling loss, one line at a jump, and the trainer
prints it."""
import numpy as np
import pytest
import tensorflow as tf

from dflow_tf.models import TwoFramePWC
from dflow_tf.training import trainer
from dflow_tf.training.loss_spike import LossSpikeMonitor
from dflow_tf.training.unsupervised import UnsupervisedTask


def test_a_noisy_falling_loss_is_no_spike():
    """A loss falling from 100 to 1 over 300 steps with +-60 % batch noise and a few 3x outliers."""
    rng = np.random.default_rng(0)
    losses = 100.0 * np.exp(-np.arange(300) / 65.0) * rng.uniform(0.4, 1.6, 300)
    losses[[50, 120, 250]] *= 3.0
    monitor = LossSpikeMonitor(stage="s")
    assert [monitor.update(t, loss) for t, loss in enumerate(losses)] == [None] * 300


def test_a_jump_is_named_once_with_its_step_and_median():
    """The losses of a diverging run (4.2 for 40 steps, then 18.7, 4771, 2.5e5): 18.7 is 4.5 x
    the median, below the factor; 4771 is the spike (1136 x 4.2)."""
    monitor = LossSpikeMonitor(stage="rendered", factor=20.0)
    messages = [monitor.update(t, 4.2, 3e-4, None) for t in range(40)]
    messages += [monitor.update(40, 18.7, 3e-4, None), monitor.update(41, 4771.0, 3e-4, None),
                 monitor.update(42, 2.5e5, 3e-4, None)]
    assert messages[:41] == [None] * 41 and messages[42] is None
    assert messages[41] == (
        "[rendered] step 41: the loss jumped to 4771, 1136 x the median 4.2 of the previous 41 steps: the run "
        "may be diverging; most likely responsible: make_optimizer.learning_rate (now 0.0003), "
        "make_optimizer.clip_global_norm=None")


def test_non_finite_losses_and_the_first_steps_are_not_judged():
    monitor = LossSpikeMonitor(min_steps=5, window=5)
    assert monitor.update(0, 1.0) is None and monitor.update(1, 1e6) is None  # before min_steps
    for t in range(2, 8):
        assert monitor.update(t, float("nan")) is None
    assert len(monitor.recent) == 2
    with pytest.raises(ValueError, match="min_steps"):
        LossSpikeMonitor(min_steps=60, window=50)


class _SpikeTask(UnsupervisedTask):
    """The photometric task whose loss is multiplied by 1e4 on call `spike_at` (counted by calls)."""

    def __init__(self, spike_at):
        super().__init__(loss="photometric", occlusion=False)
        self.calls = tf.Variable(0, trainable=False)
        self.spike_at = spike_at

    def compute_loss(self, model, batch):
        loss, scalars, pictures = super().compute_loss(model, batch)
        self.calls.assign_add(1)
        return tf.where(tf.equal(self.calls, self.spike_at), loss * 1e4, loss), scalars, pictures


def test_the_trainer_prints_the_spike_line(tmp_path, capsys):
    import gin
    with gin.unlock_config():
        gin.bind_parameter("LossSpikeMonitor.min_steps", 3)
        gin.bind_parameter("LossSpikeMonitor.window", 3)
    try:
        trainer.train_stage(str(tmp_path / "stage"), model_fn=lambda: TwoFramePWC(num_levels=4),
                            task=_SpikeTask(spike_at=5), num_steps=6, batch_size=2,
                            dataset="synthetic_flow/tiny", data_dir=str(tmp_path / "tfds"), checkpoint_every=100,
                            log_every=1, image_every=0, eval_split=None, seed=3)
    finally:
        gin.clear_config()
    lines = [line for line in capsys.readouterr().out.splitlines() if "the loss jumped" in line]
    assert len(lines) == 1 and lines[0].startswith("[stage] step 5: the loss jumped to ") and lines[0].endswith(
        "make_optimizer.clip_global_norm=None; training on")
