"""Progress lines with a time estimate for the command-line tools (evaluate, predict, submission)."""
import sys
import time

from dflow_tf.training.progress import format_duration


class CountProgress:
    """Reports `done / total` items, the rate and the time left, at most every `every_s` seconds.

    On a terminal the line is rewritten in place; otherwise (logs, pipes) one line per report.
    total may be None (unknown): then no time left is shown.
    """

    def __init__(self, name, total=None, unit="images", every_s=2.0, stream=None, quiet=False):
        self.name, self.total, self.unit = name, total, unit
        self.every_s, self.stream, self.quiet = every_s, stream or sys.stderr, quiet
        self.start = self.last = time.perf_counter()
        self.done = 0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done=None):
        self.done = self.done + 1 if done is None else done
        now = time.perf_counter()
        if self.quiet or (now - self.last < self.every_s and self.done != self.total):
            return
        self.last = now
        elapsed = now - self.start
        rate = self.done / max(elapsed, 1e-9)
        of = f"/{self.total}" if self.total else ""
        left = ""
        if self.total:
            left = f", left {format_duration((self.total - self.done) / max(rate, 1e-9))}"
        line = f"[{self.name}] {self.done}{of} {self.unit}, {rate:.2f}/s, elapsed {format_duration(elapsed)}{left}"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self):
        if not self.quiet and self.tty:
            self.stream.write("\n")
            self.stream.flush()
