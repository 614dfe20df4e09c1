"""Notices a stage whose loss jumped far above its recent level (a diverging run).

    monitor = LossSpikeMonitor(stage="rendered")
    for each step: message = monitor.update(step, loss, learning_rate)   # a line, or None

A non-finite loss stops a stage by itself (trainer.TrainingDiverged); a finite loss that jumps by
orders of magnitude does not, and the run then trains on from weights that one step threw far
off. The cold start of gin/pretrain/rendered.gin without gradient clipping at a learning rate
of 3e-4 (2026-12-03, commit 42cdb47) went from a multi-scale loss of 4.2 at step 775 to 18.7 at
step 800, 4771 at 825 and 2.5e5 at 850, and stayed near 8e4 while its training EPE came back
to 5.5 px: nothing but the loss column said so.

Rule: once `min_steps` finite losses are in, a loss above `factor` times the median of the
previous `window` finite losses is a spike. `update` returns one line naming the stage, the
step, the loss, the median and the bindings most likely responsible (learning rate, gradient
clipping), once per run; the trainer prints it and trains on (a clipped run often recovers).
"""
import collections
import math
import statistics

import gin


@gin.configurable(denylist=["stage"])
class LossSpikeMonitor:
    """Fed each step's loss; returns a one-line message at the first spike (module docstring),
    else None.

    Args:
      stage: the stage's name, for the message.
      window: previous finite losses whose median is the reference.
      factor: a loss above factor x that median is a spike.
      min_steps: finite losses seen before the first judgement.
    """

    def __init__(self, stage="", window=50, factor=20.0, min_steps=20):
        if not 1 <= min_steps <= window or factor <= 1:
            raise ValueError(f"LossSpikeMonitor needs 1 <= min_steps <= window and factor > 1, got "
                             f"min_steps={min_steps}, window={window}, factor={factor}")
        self.stage = stage
        self.factor = float(factor)
        self.min_steps = int(min_steps)
        self.recent = collections.deque(maxlen=int(window))
        self.fired = False

    def update(self, step, loss, learning_rate=None, clip_global_norm=None):
        """Feeds the loss of `step`; returns the spike message the first time the rule holds, else
        None. `learning_rate` and `clip_global_norm` (the optimiser's) are named in the message."""
        loss = float(loss)
        if self.fired or not math.isfinite(loss):
            return None
        message = None
        if len(self.recent) >= self.min_steps:
            median = statistics.median(self.recent)
            if median > 0 and loss > self.factor * median:
                self.fired = True
                rate = f" (now {learning_rate:.2g})" if learning_rate is not None else ""
                message = (f"[{self.stage}] step {step}: the loss jumped to {loss:.4g}, {loss / median:.0f} x the "
                           f"median {median:.4g} of the previous {len(self.recent)} steps: the run may be "
                           f"diverging; most likely responsible: make_optimizer.learning_rate{rate}, "
                           f"make_optimizer.clip_global_norm={clip_global_norm}")
        self.recent.append(loss)
        return message
