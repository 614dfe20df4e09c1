"""Console progress (step, loss, steps/s, time left) and TensorBoard summaries of a training run."""
import sys
import time

import numpy as np
import tensorflow as tf

from dflow_tf.console import format_duration
from dflow_tf.io.visualize import flow_to_color


class Progress:
    """Prints a progress line every `every` steps and writes scalars / pictures to TensorBoard.

    The scalars of a line (and of its TensorBoard point) are means over the steps since the
    previous line, so that a line speaks for its whole interval, not for one batch.

    Args:
      name: stage name shown on the console.
      first_step, last_step: the run covers steps first_step+1 .. last_step.
      log_dir: TensorBoard directory (None: no summaries, e.g. on non-chief workers).
      every: console and scalar interval in steps.
      quiet: no console output (non-chief workers).
    """

    def __init__(self, name, first_step, last_step, log_dir=None, every=10, quiet=False, stream=sys.stdout):
        self.name = name
        self.first_step = first_step
        self.last_step = last_step
        self.every = max(1, int(every))
        self.quiet = quiet
        self.stream = stream
        self.writer = tf.summary.create_file_writer(log_dir) if log_dir else None
        self.start = time.perf_counter()
        self.window_start = self.start
        self.window_step = first_step
        self.window_sums = {}
        self.window_count = 0

    def step(self, step, scalars, learning_rate, totals=None):
        """Call after every step with host floats; logs when step is a multiple of `every`.

        `scalars` are averaged over the interval; `totals` (running counts) are shown as they are.
        """
        for key, value in scalars.items():
            self.window_sums[key] = self.window_sums.get(key, 0.0) + value
        self.window_count += 1
        if step % self.every and step != self.last_step:
            return
        scalars = {key: total / self.window_count for key, total in self.window_sums.items()}
        scalars.update(totals or {})
        self.window_sums, self.window_count = {}, 0
        now = time.perf_counter()
        rate = (step - self.window_step) / max(now - self.window_start, 1e-9)
        self.window_start, self.window_step = now, step
        done = step - self.first_step
        total_rate = done / max(now - self.start, 1e-9)
        left = (self.last_step - step) / max(total_rate, 1e-9)
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for key, value in scalars.items():
                    tf.summary.scalar(key, value)
                tf.summary.scalar("learning_rate", learning_rate)
                tf.summary.scalar("steps_per_second", rate)
        if not self.quiet:
            loss = " ".join(f"{k}={v:.4f}" for k, v in scalars.items())
            print(f"[{self.name}] step {step}/{self.last_step} {loss} lr={learning_rate:.2e} "
                  f"{rate:.2f} steps/s, elapsed {format_duration(now - self.start)}, "
                  f"left {format_duration(left)}", file=self.stream, flush=True)

    def pictures(self, step, pictures, max_outputs=2):
        """Writes frames, flow colour and masks ([B, H, W, C] numpy or tensors) as images."""
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for key, value in pictures.items():
                value = np.asarray(value)[:max_outputs]
                if value.shape[-1] == 2:
                    value = np.stack([flow_to_color(f) for f in value]).astype(np.float32) / 255.0
                tf.summary.image(key, np.clip(value, 0.0, 1.0), max_outputs=max_outputs)

    def scalars(self, step, values, prefix=""):
        """Writes extra scalars (e.g. validation metrics)."""
        if self.writer is None:
            return
        with self.writer.as_default(step=step):
            for key, value in values.items():
                if np.isfinite(value):
                    tf.summary.scalar(prefix + key, value)

    def close(self):
        if self.writer is not None:
            self.writer.flush()
