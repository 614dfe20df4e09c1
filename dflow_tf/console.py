"""Shared pieces of the command-line tools (evaluate, predict, submission, precompute): data
arguments, the one-line error exit, progress lines with a time estimate."""
import functools
import sys
import time


def format_duration(seconds):
    """'mm:ss', or 'h:mm:ss' from an hour on."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def add_data_arguments(parser):
    """Adds --data_dir and --manual_dir, where the tfds_builders datasets live."""
    parser.add_argument("--data_dir", help="tfds data directory (default: TFDS_DATA_DIR or ~/tensorflow_datasets)")
    parser.add_argument("--manual_dir", help="manual download directory of KITTI / Sintel / FlyingChairs "
                                             "(default <data_dir>/downloads/manual)")


def exit_on_input_error(command):
    """Wraps a command body `command(args) -> exit status`: a FileNotFoundError or ValueError (a
    bad file, shape or argument, named in the message) ends with one `error: ...` line on stderr
    and status 1 instead of a traceback."""
    @functools.wraps(command)
    def run(args):
        try:
            return command(args)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return run


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
